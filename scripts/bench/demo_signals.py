"""The demos with their strategies written as vectorised signals: how much faster, and the same fills? (issue 23)

Workload: ``configs/demo_spot.toml`` and ``configs/demo_perp.toml`` exactly as shipped (REAL Binance data of the
catalog ``make demo-data`` fills: trend following on 1h bars and mean reversion on 15m bars, both aggregated by
Nautilus from the stored 1m bars, on BTCUSDT and ETHUSDT; spot: 89 days, a CASH account; perpetuals: 29 days,
cross margin with liquidation, funding and hourly mark prices; the realistic venue's slippage and random
latency), and the same configs with every strategy replaced by its signals twin (``trend_following_signals``,
``mean_reversion_signals``; written to a temporary folder).

Each run is a fresh ``nautilus-app backtest`` process, timed from interpreter start to exit, in ``ROUNDS``
(default 3) interleaved rounds. Prints ONE JSON line: per demo and style the median process seconds, the
engine seconds and data points that went through the engine (``run.json``), trades and final equity, the
same-round speed-up ``event_driven / signals`` (process and engine), and whether the two runs' fills are
identical (time, instrument, side, quantity, price, commission, slippage: they must be).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import tomli_w  # noqa: E402

DEMOS = ("demo_spot", "demo_perp")
FILL_COLUMNS = ["ts_event", "instrument_id", "order_side", "last_qty", "last_px", "commission", "slippage_cost"]


def _configs(tmp: Path) -> dict[tuple[str, str], Path]:
    out = {}
    for demo in DEMOS:
        raw = tomllib.loads((REPO / "configs" / f"{demo}.toml").read_text())
        out[(demo, "event_driven")] = REPO / "configs" / f"{demo}.toml"
        twin = dict(raw, name=f"{demo}_signals", strategies=[dict(s, name=s["name"] + "_signals")
                                                              for s in raw["strategies"]])
        path = tmp / f"{demo}_signals.toml"
        path.write_text(tomli_w.dumps(twin))
        out[(demo, "signals")] = path
    return out


def _run(config: Path, results: Path) -> tuple[float, Path]:
    before = set(results.iterdir()) if results.exists() else set()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nautilus_app", "backtest", str(config), "--no-progress",
                           "--results-dir", str(results)], capture_output=True, text=True, cwd=str(REPO))
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{config} failed: {proc.stderr[-2000:]}")
    (folder,) = set(results.iterdir()) - before
    return dt, folder


def _fills(folder: Path) -> pd.DataFrame:
    f = pd.read_parquet(folder / "fills.parquet")[FILL_COLUMNS]
    return f.sort_values(["ts_event", "instrument_id", "order_side", "last_qty"], kind="stable").reset_index(drop=True)


def main() -> int:
    rounds = int(os.environ.get("ROUNDS", "3"))
    tmp = Path(tempfile.mkdtemp(prefix="demo_signals_"))
    configs = _configs(tmp)
    results = tmp / "results"
    results.mkdir()
    process: dict[tuple[str, str], list[float]] = {k: [] for k in configs}
    engine: dict[tuple[str, str], list[float]] = {k: [] for k in configs}
    last: dict[tuple[str, str], Path] = {}
    for _ in range(rounds):
        for key, config in configs.items():
            dt, folder = _run(config, results)
            process[key].append(dt)
            engine[key].append(json.loads((folder / "run.json").read_text())["engine_seconds"])
            last[key] = folder
    out: dict = {"benchmark": "demo_signals", "data": "REAL Binance (configs/demo_spot.toml, demo_perp.toml)",
                 "rounds": rounds, "loadavg_1m": round(os.getloadavg()[0], 2)}
    for demo in DEMOS:
        rec: dict = {}
        for style in ("event_driven", "signals"):
            folder = last[(demo, style)]
            run = json.loads((folder / "run.json").read_text())
            metrics = json.loads((folder / "metrics.json").read_text())
            rec[style] = {"process_s": round(statistics.median(process[(demo, style)]), 3),
                          "engine_s": round(statistics.median(engine[(demo, style)]), 3),
                          "fed_to_engine": run["iterations"], "data_points": run["data_points"], "feed": run["feed"],
                          "trades": metrics["trades"], "final_equity": round(metrics["final_equity"], 6)}
        ev, sg = (demo, "event_driven"), (demo, "signals")
        rec["speedup_process"] = round(statistics.median(a / b for a, b in zip(process[ev], process[sg], strict=True)), 2)
        rec["speedup_engine"] = round(statistics.median(a / b for a, b in zip(engine[ev], engine[sg], strict=True)), 2)
        rec["fills_identical"] = bool(_fills(last[ev]).equals(_fills(last[sg])))
        out[demo] = rec
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
