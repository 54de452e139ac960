"""Does a perpetual run get the vectorised-signals speed-up a spot run gets? (issue 23, goal 3)

Data: REAL Binance 1m bars of the shared mirror (``$SHARED_DATA/binance-vision``), imported into a
throwaway catalog: BTCUSDT and ETHUSDT USDT-M perpetuals 2023-07-19 .. 2023-08-16 with their funding
rates and hourly mark prices, and BTCUSDT and ETHUSDT spot 2025-06-01 .. 2025-06-29 (the same number of
days). Per market, EMA cross 100/400 (``PERIODS``, default ``100,400``: an order every few hundred bars, so that
the bars the feed leaves out, not Nautilus's own per-order work, decide; 20 % of equity, default realistic
venue: volume slippage, latency; perps: long/short, cross margin 5x with Binance's liquidation) on both
instruments, run three ways:

* ``event_driven``: ``ema_cross`` (Python on every bar);
* ``signals_every_bar``: ``ema_cross_signals`` with ``feed = "every_bar"``;
* ``signals``: ``ema_cross_signals`` with the default feed (only the bars at which something can happen).

Each in this process, ``ROUNDS`` (default 3) interleaved rounds, medians of the engine seconds (data loading
included) and same-round speed-ups ``event_driven / signals`` and ``signals_every_bar / signals``, with the
orders, trades and final equity of each (the three must agree). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from catalog.binance_vision import import_binance_vision  # noqa: E402
from core import paths  # noqa: E402
from nautilus_app.backtest import run_backtest  # noqa: E402
from nautilus_app.config import parse_config  # noqa: E402

MARKETS = {
    "perp": {"ids": ["BTCUSDT-PERP.BINANCE_USDM", "ETHUSDT-PERP.BINANCE_USDM"], "start": "2023-07-19",
             "end": "2023-08-16",
             "venue": {"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"],
                       "margin_mode": "cross", "default_leverage": 5, "liquidation": True},
             "params": {"allow_short": True}},
    "spot": {"ids": ["BTCUSDT.BINANCE", "ETHUSDT.BINANCE"], "start": "2025-06-01", "end": "2025-06-29",
             "venue": {"name": "BINANCE", "account_type": "CASH", "starting_balances": ["10000 USDT"]},
             "params": {}},
}


def make_catalog(root: Path) -> None:
    base = str(paths.shared_data_dir() / "binance-vision")
    import_binance_vision(root, base_url=base, market="um", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2023-07-19", end="2023-08-16", kinds=("bars", "funding"))
    import_binance_vision(root, base_url=base, market="um", symbols=("BTCUSDT", "ETHUSDT"), interval="1h",
                          start="2023-07-19", end="2023-08-16", kinds=("mark",))
    import_binance_vision(root, base_url=base, market="spot", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2025-06-01", end="2025-06-29", kinds=("bars",))


def run(root: Path, results: Path, market: str, strategy: str, feed: str) -> dict:
    m = MARKETS[market]
    bars = [f"{i}-1-MINUTE-LAST-EXTERNAL" for i in m["ids"]]
    fast, slow = (int(x) for x in os.environ.get("PERIODS", "100,400").split(","))
    cfg = parse_config({
        "name": f"perp_signals_{market}", "catalog": str(root), "bar_types": bars, "start": m["start"], "end": m["end"],
        "feed": feed, "venues": [m["venue"]],
        "strategies": [{"name": strategy, "params": {"instrument_id": i, "bar_type": b, "position_fraction": 0.2,
                                                     "fast_period": fast, "slow_period": slow, **m["params"]}} for i, b in zip(m["ids"], bars, strict=True)],
    }, source="bench")
    out = run_backtest(cfg, results_root=results, progress=False)
    return {"seconds": out.engine_seconds, "data_points": out.data_points, "fed_to_engine": out.iterations,
            "orders": out.orders, "trades": out.metrics["trades"], "liquidations": out.metrics["liquidations"],
            "final_equity": round(out.metrics["final_equity"], 6)}


def main() -> int:
    rounds = int(os.environ.get("ROUNDS", "3"))
    out: dict = {"benchmark": "perp_signals", "data": "real Binance 1m: BTC+ETH USDT-M perps 2023-07-19..08-16 "
                 "(funding, 1h marks), BTC+ETH spot 2025-06-01..06-29", "rounds": rounds}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "catalog"
        make_catalog(root)
        cases = {"event_driven": ("ema_cross", "auto"), "signals_every_bar": ("ema_cross_signals", "every_bar"),
                 "signals": ("ema_cross_signals", "auto")}
        for market in MARKETS:
            runs: dict[str, list[dict]] = {k: [] for k in cases}
            for _ in range(rounds):
                for name, (strategy, feed) in cases.items():
                    runs[name].append(run(root, Path(tmp) / "results", market, strategy, feed))
            answers = {n: {k: rs[0][k] for k in ("orders", "trades", "liquidations", "final_equity")}
                       for n, rs in runs.items()}
            if len({json.dumps(a, sort_keys=True) for a in answers.values()}) != 1:
                raise SystemExit(f"{market}: the three runs disagree: {answers}")
            out[market] = {
                **answers["signals"], "data_points": runs["signals"][0]["data_points"],
                "fed_to_engine": runs["signals"][0]["fed_to_engine"],
                **{f"{n}_seconds": round(statistics.median(r["seconds"] for r in rs), 3) for n, rs in runs.items()},
                "speedup_vs_event_driven": round(statistics.median(
                    a["seconds"] / b["seconds"] for a, b in zip(runs["event_driven"], runs["signals"], strict=True)), 3),
                "speedup_vs_every_bar": round(statistics.median(
                    a["seconds"] / b["seconds"] for a, b in zip(runs["signals_every_bar"], runs["signals"], strict=True)), 3),
            }
    out["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
