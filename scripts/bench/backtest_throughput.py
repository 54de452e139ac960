"""Throughput of our runner vs Nautilus's plain ``BacktestEngine`` on the same real bars (issue 23).

Imports every BTCUSDT spot 1m bar of the Binance Vision mirror (``$BINANCE_VISION_URL``, default
``../shared/data/binance-vision``) into a catalog (``$CATALOG_PATH``; idempotent), then in one process:

1. ours: ``nautilus_app.backtest.run_backtest`` with ``strategies.ema_cross`` (10/20, long/flat,
   20 % of equity per entry, default venue models: next-bar-open fills through our Python fill
   model), results folder written;
2. plain: a minimal EMA(10/20) long/flat cross written directly against ``BacktestEngine`` with the
   same bars (loaded from the same catalog), venue and fees (Nautilus's own same-bar-close fills);
3. runner_only: the same minimal strategy as (2) run through our runner, isolating the runner's
   own cost (catalog loading, venue models, progress actor, completion check) from the strategy's.

Seconds are "load + run": for the plain engine ``catalog.query_bars`` + ``add_data`` + ``run``, for
ours ``run_backtest`` up to the end of the engine run (data loading included). Results writing
(reports, equity, metrics, Parquet, tearsheet) is reported separately as ``results_seconds``.

Cases (``ours`` and ``signals`` with ``costs = "fees_only"``: 0.1 % fees and next-bar-open fills
through the Python fill model, no latency or slippage, so that the per-order work is compared with the
plain engine's; ``ours_realistic`` adds the default realistic costs: volume slippage and latency):

- ``signals``: ``ema_cross_signals``, the vectorised-signals twin of (1) (``strategies.signals``: no
  Python per bar), which must give the same orders and final equity as ``ours``.
- ``no_strategy``: (2) without any strategy: Nautilus's own cost of reading and running every bar, the
  ceiling of any strategy whose bars all go through the engine (``no_strategy_ratio``).
- ``plain_slow`` / ``signals_slow`` / ``ours_slow``: (2), ``signals`` and (1) with EMA 100/400 (:data:`SLOW`): far fewer orders,
  so the ratio shows what feeding only the bars at which something can happen gains when Nautilus's own
  per-order work (~60 us an order) does not dominate (``signals_slow_ratio``, same rounds).

Every case runs in this one process, in ``ROUNDS`` (default 3) interleaved rounds; the JSON gives
medians and same-round ratios. ``seconds`` = load + run (the engine), ``results_seconds`` = writing
the results folder, ``end_to_end_seconds`` = both (``run_backtest`` from call to return).

Prints one JSON line with bars, orders, seconds and bars/s of each (medians), ``ratio`` = ours bars/s /
plain bars/s (goal >= 0.9), ``signals_ratio`` = signals bars/s / plain bars/s (goal >= 3),
``runner_ratio`` = runner_only bars/s / plain bars/s, the share of results writing in the end-to-end
time (goal: results < 25 % of the engine time) and the load average.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.execution import MakerTakerFeeModel
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model import (
    AccountType,
    BarType,
    Currency,
    InstrumentId,
    Money,
    OmsType,
    OrderSide,
    Quantity,
    TraderId,
    Venue,
)
from nautilus_trader.persistence import ParquetDataCatalog
from nautilus_trader.trading import Strategy, StrategyConfig

from catalog.binance_vision import import_binance_vision
from core import paths
from nautilus_app.backtest import run_backtest
from nautilus_app.config import parse_config
from strategies import REGISTRY, StrategyEntry

BAR_TYPE = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
#: EMA periods of the low-turnover pair (plain_slow, signals_slow): a tenth of the orders of 10/20
SLOW = (100, 400)
IID = "BTCUSDT.BINANCE"


class PlainEMAConfig(StrategyConfig):
    """Minimal config for the plain EMA cross (no parameters; the notes' ``__new__`` pattern)."""

    def __new__(cls, *args: object, **kwargs: object) -> PlainEMAConfig:
        return super().__new__(cls, order_id_tag=str(kwargs.get("order_id_tag", "000")))

    def __init__(self, **kwargs: object) -> None:
        super().__init__()


class PlainEMACross(Strategy):
    """EMA(10)/EMA(20) cross, long/flat, fixed 0.01 BTC: the least a Nautilus user would write."""

    def __new__(cls, *args: object, **kwargs: object) -> PlainEMACross:  # pyo3 base: no extra keywords
        return super().__new__(cls, *args)

    def __init__(self, config: PlainEMAConfig | None = None, periods: tuple[int, int] = (10, 20)) -> None:
        super().__init__(config or PlainEMAConfig())
        self.iid = InstrumentId.from_str(IID)
        self.bar_type = BarType.from_str(BAR_TYPE)
        self.fast = ExponentialMovingAverage(periods[0])
        self.slow = ExponentialMovingAverage(periods[1])
        self.prev: float | None = None
        self.qty = Quantity.from_str("0.01000")

    def on_start(self) -> None:
        self.register_indicator_for_bars(self.bar_type, self.fast)
        self.register_indicator_for_bars(self.bar_type, self.slow)
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar) -> None:  # noqa: ANN001
        if not self.slow.initialized:
            return
        diff = self.fast.value - self.slow.value
        if self.prev is not None:
            if self.prev <= 0.0 < diff and self.portfolio.is_net_flat(self.iid):
                self.submit_order(self.order_factory.market(self.iid, OrderSide.BUY, self.qty))
            elif self.prev >= 0.0 > diff and self.portfolio.is_net_long(self.iid):
                self.close_all_positions(self.iid)
        self.prev = diff

    def on_stop(self) -> None:
        self.close_all_positions(self.iid)


def run_plain(catalog: ParquetDataCatalog, strategy: bool = True, periods: tuple[int, int] = (10, 20)) -> dict:
    """The plain engine; ``strategy=False``: the same engine, bars and venue with no strategy at all (the
    floor of any run that feeds every bar through Nautilus)."""
    t0 = time.perf_counter()
    instrument = catalog.instruments(instrument_ids=[IID])[0]
    bars = catalog.query_bars([BAR_TYPE])
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id=TraderId("PLAIN-001"), logging=LoggerConfig(stdout_level=LogLevel.WARNING),
        shutdown_on_error=True))
    engine.add_venue(
        Venue("BINANCE"), OmsType.NETTING, AccountType.CASH, [Money(100_000, Currency.from_str("USDT"))],
        fee_model=MakerTakerFeeModel(Decimal("0.001"), Decimal("0.001")),
    )
    engine.add_instrument(instrument)
    engine.add_data(bars)
    if strategy:
        engine.add_strategy(PlainEMACross(periods=periods))
    t1 = time.perf_counter()
    engine.run()
    t2 = time.perf_counter()
    result = engine.get_result()
    engine.dispose()
    if result.iterations != len(bars):
        raise SystemExit(f"plain engine stopped after {result.iterations} of {len(bars)} bars (see the log)")
    return {"bars": len(bars), "orders": result.total_orders, "seconds": t2 - t0, "run_seconds": t2 - t1}


def run_ours(catalog_path: Path, results_root: Path, strategy: str, params: dict, costs: str = "fees_only") -> dict:
    cfg = parse_config({
        "name": f"bench_{strategy}",
        "catalog": str(catalog_path),
        "bar_types": [BAR_TYPE],
        "allow_gaps": True,  # the mirror holds windows of BTCUSDT history, months apart
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"], "costs": costs}],
        "strategies": [{"name": strategy, "params": params}],
    }, source="bench")
    outcome = run_backtest(cfg, results_root=results_root, progress=False)
    return {"bars": outcome.data_points, "fed_to_engine": outcome.iterations, "orders": outcome.orders,
            "seconds": outcome.engine_seconds,
            "results_seconds": outcome.total_seconds - outcome.engine_seconds,
            "end_to_end_seconds": outcome.total_seconds, "trades": outcome.metrics["trades"],
            "final_equity": round(outcome.metrics["final_equity"], 6)}


def main() -> int:
    catalog_path = paths.default_catalog_path()
    catalog_path.mkdir(parents=True, exist_ok=True)
    base_url = os.environ.get("BINANCE_VISION_URL") or str(paths.shared_data_dir() / "binance-vision")
    t0 = time.perf_counter()
    report = import_binance_vision(catalog_path, base_url=base_url, market="spot", symbols=("BTCUSDT",),
                                   interval="1m", kinds=("bars",))
    import_seconds = time.perf_counter() - t0
    print(f"import: {report}", file=sys.stderr)
    catalog = ParquetDataCatalog(str(catalog_path))
    # the bench's minimal strategy, registered for this process only (as a user would add their own)
    REGISTRY["bench_plain_ema"] = StrategyEntry("backtest_throughput:PlainEMACross", "backtest_throughput:PlainEMAConfig")
    ema = {"instrument_id": IID, "bar_type": BAR_TYPE, "fast_period": 10, "slow_period": 20, "position_fraction": 0.2}
    rounds = int(os.environ.get("ROUNDS", "3"))
    runs: dict[str, list[dict]] = {k: [] for k in ("plain", "ours", "signals", "ours_realistic", "runner_only",
                                                   "no_strategy", "plain_slow", "signals_slow", "ours_slow")}
    slow = dict(ema, fast_period=SLOW[0], slow_period=SLOW[1])
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            runs["plain"].append(run_plain(catalog))
            runs["ours"].append(run_ours(catalog_path, Path(tmp), "ema_cross", ema))
            runs["signals"].append(run_ours(catalog_path, Path(tmp), "ema_cross_signals", ema))
            runs["ours_realistic"].append(run_ours(catalog_path, Path(tmp), "ema_cross", ema, costs="realistic"))
            runs["runner_only"].append(run_ours(catalog_path, Path(tmp), "bench_plain_ema", {}))
            runs["no_strategy"].append(run_plain(catalog, strategy=False))
            runs["plain_slow"].append(run_plain(catalog, periods=SLOW))
            runs["signals_slow"].append(run_ours(catalog_path, Path(tmp), "ema_cross_signals", slow))
            runs["ours_slow"].append(run_ours(catalog_path, Path(tmp), "ema_cross", slow))
    bars = runs["plain"][0]["bars"]
    for name, rs in runs.items():
        if any(r["bars"] != bars for r in rs):
            raise SystemExit(f"bar counts differ: {name} vs plain {bars}")
    for a, b in (("ours", "signals"), ("ours_slow", "signals_slow")):
        o, g = runs[a][0], runs[b][0]
        if (o["orders"], o["trades"], o["final_equity"]) != (g["orders"], g["trades"], g["final_equity"]):
            raise SystemExit(f"signals twin {b} differs from {a}: {g} vs {o}")

    def bps(run: dict) -> float:
        return run["bars"] / run["seconds"]

    def summary(rs: list[dict]) -> dict:
        keys = [k for k in rs[0] if isinstance(rs[0][k], float) and k != "final_equity"]
        out = {k: round(statistics.median(r[k] for r in rs), 3) for k in keys}
        out |= {k: rs[0][k] for k in ("orders", "trades", "final_equity", "fed_to_engine") if k in rs[0]}
        return out | {"bars_per_s": round(statistics.median(bps(r) for r in rs))}

    def ratio(name: str, base: str = "plain") -> float:
        return round(statistics.median(bps(a) / bps(p) for a, p in zip(runs[name], runs[base], strict=True)), 3)

    print(json.dumps({
        "benchmark": "backtest_throughput",
        "data": f"real BTCUSDT spot 1m, {bars:,} bars",
        "bars": bars,
        "rounds": rounds,
        "import_seconds": round(import_seconds, 2),
        **{name: summary(rs) for name, rs in runs.items()},
        "ratio": ratio("ours"),
        "signals_ratio": ratio("signals"),
        "realistic_ratio": ratio("ours_realistic"),
        "runner_ratio": ratio("runner_only"),
        "no_strategy_ratio": ratio("no_strategy"),
        "signals_slow_ratio": ratio("signals_slow", "plain_slow"),
        "results_share_of_engine": {n: round(statistics.median(r["results_seconds"] / r["seconds"] for r in runs[n]), 3)
                                    for n in ("ours", "signals", "runner_only")},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
