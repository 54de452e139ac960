"""Peak memory and decile slowdown of a 5-year 1-minute single-symbol backtest (issue 23, goal 4).

Data: SYNTHETIC (not market data): 2,629,800 1m bars (5 x 365.25 days) of a seeded random walk
(:func:`nautilus_app.testkit.synthetic.synthetic_bars`) written as ``BTCUSDT.BINANCE`` bars with the real
instrument's precisions into a throwaway catalog (``$LONG_RUN_DIR``, default ``/tmp/long_run_bench``;
reused when present).

Cases, each in a fresh child process (so peak RSS is the run's own): ``ours`` = EMA cross 10/20,
20 % of equity, default realistic venue (next-open fills, volume slippage, latency); ``signals`` = its
vectorised-signals twin. Per case: engine, results and end-to-end seconds, orders, peak RSS of the
process, and the wall time of each tenth of the simulated span (taken by an actor woken 10 times
on the engine clock), with ``decile_slowdown`` = last decile / first decile - 1 (goal < 10 %) and
``peak_rss_mb`` (goal < 2,048). Prints one JSON line; ``DAYS`` shortens the run (default 1826.25).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

BAR_TYPE = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
IID = "BTCUSDT.BINANCE"


def make_catalog(root: Path, days: float) -> int:
    """The SYNTHETIC catalog (bars + the BTCUSDT spot instrument); returns the bar count."""
    marker = root / f"bars-{days}.ok"
    if marker.exists():
        return int(marker.read_text())
    import pyarrow as pa
    from nautilus_trader.model import BarType

    from catalog.common import bar_table
    from catalog.writer import ImportReport, write_bars, write_instruments
    from core.instruments import build_instrument
    from nautilus_app.testkit.synthetic import synthetic_bars

    inst = build_instrument("BTCUSDT", "spot")
    bars = synthetic_bars(days, seed=7, start="2020-01-01")
    bars["volume"] = bars["volume"].round(inst.size_precision)
    cols = {k: pa.array(bars[k].to_numpy(), pa.float64()) for k in ("open", "high", "low", "close", "volume")}
    report = ImportReport(source="synthetic")
    write_instruments(root, [inst], report)
    write_bars(root, BarType.from_str(BAR_TYPE), inst.price_precision, inst.size_precision, 60_000_000_000,
               [bar_table(bars["ts"].to_numpy(), cols)], report)
    marker.write_text(str(len(bars)))
    return len(bars)


def child(root: Path, strategy: str) -> dict:
    """One run in this process: run_backtest with a 10-alert decile clock in place of the progress actor."""
    from nautilus_trader.common import DataActor, DataActorConfig
    from nautilus_trader.model import ActorId

    from nautilus_app import backtest as bt
    from nautilus_app.config import parse_config

    marks: list[tuple[int, float]] = []

    class DecileClock(DataActor):
        def __new__(cls, *args: object, **kwargs: object) -> DecileClock:
            return super().__new__(cls)

        def __init__(self, start_ns: int, end_ns: int, steps: int = 10, enabled: bool = True) -> None:
            super().__init__(DataActorConfig(actor_id=ActorId("DECILES-001")))
            self.start_ns = start_ns
            self.bounds = [start_ns + (end_ns - start_ns) * k // 10 for k in range(1, 10)] + [end_ns]

        def on_start(self) -> None:
            # from the first bar (after every strategy's on_start, e.g. a signals strategy's precompute)
            self.clock.set_time_alert_ns("decile-start", self.start_ns, lambda e: marks.append((0, time.perf_counter())))
            for k, t in enumerate(self.bounds):
                self.clock.set_time_alert_ns(f"decile-{k}", t, lambda e, k=k: marks.append((k + 1, time.perf_counter())))

    bt.ProgressActor = DecileClock
    cfg = parse_config({
        "name": f"long_{strategy}", "catalog": str(root), "bar_types": [BAR_TYPE], "allow_gaps": True,
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": strategy, "params": {"instrument_id": IID, "bar_type": BAR_TYPE, "fast_period": 10,
                                                     "slow_period": 20, "position_fraction": 0.2}}],
    }, source="bench")
    t_call = time.perf_counter()
    out = bt.run_backtest(cfg, results_root=root / "results", progress=False)
    deciles = [b - a for (_, a), (_, b) in zip(marks, marks[1:], strict=False)]
    return {
        "bars": out.data_points, "fed_to_engine": out.iterations, "orders": out.orders, "trades": out.metrics["trades"],
        "final_equity": round(out.metrics["final_equity"], 6),
        "engine_seconds": round(out.engine_seconds, 2), "end_to_end_seconds": round(out.total_seconds, 2),
        "results_seconds": round(out.total_seconds - out.engine_seconds, 2),
        "precompute_and_start_seconds": round(marks[0][1] - t_call, 3) if marks else None,
        "decile_seconds": [round(d, 3) for d in deciles],
        "decile_slowdown": round(deciles[-1] / deciles[0] - 1.0, 3) if len(deciles) == 10 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(Path(sys.argv[2]), sys.argv[3])))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "--make-catalog":
        print(make_catalog(Path(sys.argv[2]), float(sys.argv[3])))
        return 0
    days = float(os.environ.get("DAYS", str(5 * 365.25)))
    root = Path(os.environ.get("LONG_RUN_DIR", "/tmp/long_run_bench"))
    root.mkdir(parents=True, exist_ok=True)
    # the catalog is written by a child too: Linux hands a forked child the parent's peak RSS as its own
    # ru_maxrss, so a parent that had built 2.6M bars made every run report ~4.1 GB
    made = subprocess.run([sys.executable, __file__, "--make-catalog", str(root), str(days)], capture_output=True,
                          text=True, check=True)
    bars = int(made.stdout.strip().splitlines()[-1])
    out: dict = {"benchmark": "long_run", "data": f"SYNTHETIC random walk, {bars:,} 1m bars ({days:g} days)",
                 "bars": bars}
    for name, strategy in (("ours", "ema_cross"), ("signals", "ema_cross_signals")):
        proc = subprocess.run([sys.executable, __file__, "--child", str(root), strategy], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed: {proc.stderr[-3000:]}")
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
