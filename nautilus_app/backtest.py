"""Run a backtest described by a :class:`~nautilus_app.config.BacktestConfig` on Nautilus's ``BacktestEngine``.

Flow: config -> :func:`plan_data` (what to load, with guards) -> :func:`load_data` (catalog ->
Nautilus objects; the one place that reads market data, so a faster store can replace it) ->
``BacktestEngine`` with one venue per config entry (fee model, the venue fill model for next-open
fills and slippage, leverage, Binance-like initial margin), the strategies, a progress actor and,
per MARGIN venue, the liquidation actor -> failure checks -> :func:`nautilus_app.results.write_results`.

Why the low-level engine and not ``BacktestNode``: Nautilus 2.0.0rc7 accepts a Python ``FillModel``
only through ``BacktestEngine.add_venue`` (``BacktestVenueConfig`` rejects it), and the venue fill
model is how orders fill at the next bar's open with slippage (nautilus_app/venue/fill_timing.py).

Failure detection. Nautilus 2.0.0rc7 logs exceptions raised in strategy callbacks and carries on,
and ``run()`` returns normally even with ``shutdown_on_error``. The runner therefore sets
``shutdown_on_error=True`` (processing stops at the failing event) and compares the engine's
iteration count with the number of data points it was given. Fewer iterations or an engine
``RuntimeError`` raise :class:`BacktestFailed`; then no results folder is created.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.data import DataEngineConfig
from nautilus_trader.model import (
    AccountType,
    BarType,
    CryptoPerpetual,
    FundingRateUpdate,
    InstrumentId,
    Money,
    NautilusDataType,
    OmsType,
    TraderId,
    Venue,
)
from nautilus_trader.persistence import ParquetDataCatalog

from catalog.bar_stores import open_bar_store
from catalog.inventory import bar_interval_ns
from catalog.reader import bar_store, read_columns, row_stats
from core.instruments import brackets_for
from nautilus_app import plotting, signal_feed
from nautilus_app import results as results_mod
from nautilus_app.bar_aggregation import aggregate_time_bars, source_bar_type
from nautilus_app.config import BacktestConfig, VenueConfig
from nautilus_app.coverage import CoverageError, bar_coverage, check_coverage
from nautilus_app.progress import ProgressActor, ProgressSink
from nautilus_app.run_data import DataPlan, RunData, VenueSim
from nautilus_app.signal_feed import SignalFeed
from nautilus_app.venue.fees import make_fee_model
from nautilus_app.venue.fill_timing import BarSeries, VenueFillModel
from nautilus_app.venue.latency import LatencyDraws, LatencyRouter
from nautilus_app.venue.liquidation import LiquidationActor
from nautilus_app.venue.models import bracket_overrides, leverage_for, slippage_model, venue_fees


class BacktestFailed(RuntimeError):
    """The run did not complete: a strategy raised, the engine stopped early, or data was missing."""


@dataclass(frozen=True)
class BacktestOutcome:
    """What a completed run produced.

    Attributes:
        run_id: Folder name under the results root.
        results_path: ``results/<run_id>/``, complete (written atomically).
        metrics: The content of ``metrics.json``.
        iterations: Data points the engine processed (bars + funding + mark updates).
        data_points: Data points of the run (bars + funding + mark updates); more than ``iterations`` when
            only the bars at which something could happen were fed (``feed == "events"``).
        feed: ``"every_bar"`` or ``"events"`` (:mod:`nautilus_app.signal_feed`).
        orders: Orders submitted.
        engine_seconds: Wall seconds to load the data and run the engine.
        total_seconds: Wall seconds for the whole call, results included.
        coverage: Expected vs loaded bars per bar type (:mod:`nautilus_app.coverage`), also in run.json.
    """

    run_id: str
    results_path: Path
    metrics: dict
    iterations: int
    orders: int
    engine_seconds: float
    total_seconds: float
    coverage: list[dict] = field(default_factory=list)
    data_points: int = 0
    feed: str = "every_bar"


def make_run_id(cfg: BacktestConfig) -> str:
    """``<name>-<UTC yyyymmddTHHMMSS>-<config digest>``, unique per second and config."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{cfg.name}-{stamp}-{cfg.digest()}"


def _venue_of(cfg: BacktestConfig, iid: str) -> VenueConfig:
    return next(v for v in cfg.venues if iid.endswith("." + v.name))


def plan_data(cfg: BacktestConfig) -> DataPlan:
    """Decide what to load and count it.

    Bars for every configured bar type; for perpetual instruments (ids ending in ``-PERP``) also
    ``FundingRateUpdate`` rows (required, unless the venue sets a constant ``funding_rate``) and
    ``MarkPriceUpdate`` rows when the catalog has them.

    Raises:
        CoverageError: (exit 2) no bars for a bar type in the range, or bars missing beyond known exchange
            halts without ``allow_gaps`` (:mod:`nautilus_app.coverage`).
        BacktestFailed: no funding
            rates for a perpetual without a configured constant rate (a silent zero funding would
            flatter every perp backtest).
    """
    root = cfg.catalog_path()
    start, end = cfg.bar_window_ns()  # half-open on ts_init
    bars: list[tuple[str, int | None, int | None]] = []
    expected = 0
    firsts: list[int] = []
    lasts: list[int] = []
    coverages = []
    for bt in cfg.bar_types:
        ts = np.sort(read_columns(root, "bars", bt, ["ts_init"], start, end).column("ts_init").to_numpy()
                     .astype(np.int64))
        n = int(ts.size)
        if n == 0:
            raise CoverageError(
                f"catalog {root} has no bars for {bt} between {cfg.start or 'the start'} and {cfg.end or 'the end'}: "
                "import them first (`nautilus-app import-binance-vision --help`, `import-freqtrade`, `download-data`)"
            )
        first, last = int(ts[0]), int(ts[-1])
        step = bar_interval_ns(bt)
        if step:
            coverages.append(bar_coverage(bt, ts, step, cfg.start_ns(), cfg.end_ns()))
        expected += n
        firsts.append(first)  # type: ignore[arg-type]
        lasts.append(last)  # type: ignore[arg-type]
        bars.append((bt, start, end))
    first_ns, last_ns = min(firsts), max(lasts)
    funding, marks, funding_iids, mark_iids = [], [], [], []
    constant: dict[str, tuple[float, int, int, int]] = {}
    source: dict[str, str] = {}
    for iid in cfg.instrument_ids():
        if not InstrumentId.from_str(iid).symbol.value.endswith("-PERP"):
            continue
        # Funding and mark rows over [start, end) of the config; a settlement exactly at `end` is
        # outside the run, like the bar that opens at `end`.
        span = (cfg.start_ns() if cfg.start is not None else first_ns,
                cfg.end_ns() if cfg.end is not None else last_ns + 1)
        venue = _venue_of(cfg, iid)
        if venue.funding_rate is not None:
            step = venue.funding_interval_hours * 3_600_000_000_000
            n_c = len(range(-(-span[0] // step) * step, span[1], step))
            constant[iid] = (venue.funding_rate, venue.funding_interval_hours, *span)
            expected += n_c
            source[iid] = f"constant rate {venue.funding_rate} every {venue.funding_interval_hours} h (config)"
        else:
            n_f, _, _ = row_stats(root, "funding", iid, *span)
            if n_f == 0:
                raise BacktestFailed(
                    f"catalog {root} has no funding rates for perpetual {iid} in the run's span: import the "
                    "fundingRate archives (or freqtrade funding_rate files) first, or set an explicit constant "
                    f"`funding_rate` on venue {venue.name}"
                )
            funding.append((iid, *span))
            expected += n_f
            source[iid] = "catalog FundingRateUpdate rows"
        funding_iids.append(iid)
        n_m, _, _ = row_stats(root, "mark", iid, *span)
        if n_m:
            marks.append((iid, *span))
            expected += n_m
            mark_iids.append(iid)
    stores = {bt: bar_store(root, bt) for bt, _, _ in bars}
    check_coverage(coverages, allow_gaps=cfg.allow_gaps, source=cfg.name)
    return DataPlan(bars, funding, marks, constant, expected, first_ns, last_ns, funding_iids, mark_iids, source,
                    stores, [c.to_json() for c in coverages])


def check_funding_rows(rows: list[Any], iid: str) -> None:
    """Guard against funding rows Nautilus would skip without a word (NAUTILUS_NOTES §5).

    Nautilus settles a ``FundingRateUpdate`` only if it carries ``next_funding_ns`` (settled then) or
    an ``interval`` with ``ts_event`` on that interval's grid. Rows with neither, off-grid rows, and
    a ``next_funding_ns`` before ``ts_event`` are rejected here.

    Raises:
        BacktestFailed: naming the instrument, the row's time and what is wrong.
    """
    for r in rows:
        when = pd.Timestamp(r.ts_event, unit="ns", tz="UTC")
        nxt, interval = r.next_funding_ns, r.interval
        if nxt is None and not interval:
            raise BacktestFailed(f"funding row of {iid} at {when}: no next_funding_ns and no interval; Nautilus would "
                                 "skip it silently (re-import the funding data)")
        if nxt is not None and nxt < r.ts_event:
            raise BacktestFailed(f"funding row of {iid} at {when}: next_funding_ns {nxt} is before ts_event")
        if nxt is None and r.ts_event % (interval * 60_000_000_000) != 0:
            raise BacktestFailed(f"funding row of {iid} at {when}: off the {interval}-minute funding grid; Nautilus "
                                 "would skip it silently (snap funding times to the grid when importing)")


#: bars per chunk handed to the engine: the run is fed in time windows of about this many bars of its
#: first bar type (with every other bar type, funding row and mark price of the window), each added,
#: run (Nautilus's streaming mode) and cleared before the next is read, so neither the Python ``Bar``
#: objects nor the engine's copy of them (~300 bytes a bar) exist for more than one window at a time
#: (a 5-year 1m run loaded at once peaked at 2.7 GB in ``query_bars`` alone)
CHUNK_BARS = 250_000


class DataChunks:
    """The run's data (:func:`load_data`), read from the catalog one time window at a time while iterated.

    Iterating yields lists of Nautilus objects, one per window ``[a, b)`` of bar close times (about
    :data:`CHUNK_BARS` bars of the first bar type): that window's bars of every bar type, then its
    funding rows and mark prices (the order one ``add_data`` of everything keeps after its stable
    sort). The funding rows and mark prices (few) are read once, up front: :attr:`other`.
    ``len()`` is the number of objects yielded so far (all of them once iterated).
    """

    def __init__(self, cfg: BacktestConfig, plan: DataPlan) -> None:
        self.cfg, self.plan, self.count = cfg, plan, 0
        self._other: list[Any] | None = None

    def __len__(self) -> int:
        return self.count

    @property
    def other(self) -> list[Any]:
        """Funding rows and mark prices of the whole run, in the order of the plan.

        Raises:
            BacktestFailed: malformed funding rows (:func:`check_funding_rows`).
        """
        if self._other is None:
            cfg, plan = self.cfg, self.plan
            catalog = ParquetDataCatalog(str(cfg.catalog_path()))
            out: list[Any] = []
            for iid, lo, hi in plan.funding:
                rows = catalog.query(NautilusDataType.FundingRateUpdate, identifiers=[iid], start=lo, end=hi - 1)
                check_funding_rows(rows, iid)
                out.extend(rows)
            for iid, (rate, hours, lo, hi) in plan.constant_funding.items():
                step = hours * 3_600_000_000_000
                inst = InstrumentId.from_str(iid)
                out.extend(FundingRateUpdate(inst, Decimal(str(rate)), t, t, None, t)
                           for t in range(-(-lo // step) * step, hi, step))
            for iid, lo, hi in plan.marks:
                out.extend(catalog.query(NautilusDataType.MarkPriceUpdate, identifiers=[iid], start=lo, end=hi - 1))
            self._other = out
        return self._other

    def __iter__(self) -> Any:
        root = self.cfg.catalog_path()
        bars = [(bt, lo, hi, open_bar_store(root, bt)) for bt, lo, hi in self.plan.bars]
        other = self.other
        bt0, lo0, hi0, store0 = bars[0]
        ts = np.sort(store0.columns(bt0, ["ts_init"], lo0, hi0).column("ts_init").to_numpy().astype(np.int64))
        edges = [int(t) for t in ts[CHUNK_BARS::CHUNK_BARS]]
        del ts
        for a, b in zip([None, *edges], [*edges, None], strict=True):  # [a, b) within each bar type's window
            chunk: list[Any] = []
            for bt, lo, hi, store in bars:
                wa = lo if a is None else (a if lo is None else max(a, lo))
                wb = hi if b is None else (b if hi is None else min(b, hi))
                if wa is None or wb is None or wa < wb:
                    chunk += store.bars(bt, wa, wb)  # half-open like the plan
            chunk += [d for d in other if (a is None or d.ts_init >= a) and (b is None or d.ts_init < b)]
            if chunk:
                self.count += len(chunk)
                yield chunk


def load_data(cfg: BacktestConfig, plan: DataPlan) -> DataChunks:
    """Everything :func:`plan_data` planned, as Nautilus objects (bars, funding, mark prices), in chunks.

    The only function that reads market data for the engine. Bars come from Nautilus's catalog
    (``query_bars``) or, for bar types stored only in the compact store, straight from its
    Parquet files into ``Bar`` objects (:func:`catalog.compact_loader.load_bars`). Constant-rate funding
    rows are generated here (``next_funding_ns`` = ``ts_event`` on the interval grid). Nothing is read
    until the result is iterated (:class:`DataChunks`; :func:`build_engine` adds chunk by chunk).

    Raises (while iterated):
        BacktestFailed: malformed funding rows (:func:`check_funding_rows`).
    """
    return DataChunks(cfg, plan)


def load_instruments(cfg: BacktestConfig) -> list[Any]:
    """The run's instruments from the catalog; perpetuals get ``margin_maint = margin_init``.

    With Nautilus's default leveraged margin model (margin = notional x rate / leverage) and
    ``margin_init = 1`` this locks ``notional / leverage`` for open positions as well as for orders,
    so the account's free balance is Binance's available balance (without unrealized PnL) and an
    order the account cannot margin is denied (``INITIAL_MARGIN_EXCEEDS_FREE_BALANCE``). Nautilus's
    own flat-rate liquidation stays off; maintenance and liquidation are the venue package's.

    Raises:
        BacktestFailed: an instrument is not in the catalog.
    """
    catalog = ParquetDataCatalog(str(cfg.catalog_path()))
    out = []
    for iid in cfg.instrument_ids():
        found = catalog.instruments(instrument_ids=[iid])
        if not found:
            raise BacktestFailed(f"catalog {cfg.catalog_path()} has no instrument {iid}: import it first")
        inst = found[-1]
        if isinstance(inst, CryptoPerpetual):
            d = CryptoPerpetual.to_dict(inst)
            d["margin_maint"] = d["margin_init"]
            inst = CryptoPerpetual.from_dict(d)
        out.append(inst)
    return out


def build_strategies(cfg: BacktestConfig) -> list[Any]:
    """One strategy object per ``[[strategies]]`` entry, with a unique order-id tag each.

    Strategies come from :mod:`nautilus_app.strategy_loader` (built-ins, the user strategy folder,
    ``strategy_path``); their params were validated when the config was loaded.

    Raises:
        BacktestFailed: a strategy or its config raised while being built.
    """
    from nautilus_app.strategy_loader import StrategyLoadError

    out = []
    hooks = any(v.latency is not None for v in cfg.venues)  # the latency router is an order gate (strategies.hooks)
    for i, spec in enumerate(cfg.strategies):
        try:
            out.append(spec.resolve().make_strategy(spec.params, order_id_tag=f"{i:03d}", hooks=hooks))
        except StrategyLoadError as e:
            raise BacktestFailed(f"strategies[{i}] ({spec.label()}): {e}") from e
    return out


def _prepare_signals(strategy: Any, plan: DataPlan, run: RunData, data_end: int, late_ts: frozenset[int]) -> None:
    """Hand a vectorised-signals strategy what it needs before the run: its bars (read from the run's bars, or
    built from their source for a bar type Nautilus aggregates), its alert names and its late-data times.

    ``run``: the run's bars (read once, shared with the fill models); ``data_end``: the run's last data point
    (UTC ns); ``late_ts``: times of the venue's mark-price and funding rows.

    Raises:
        BacktestFailed: the strategy's bars (or their source) are not among the run's bar types, or its
            aggregated bar type cannot be built (:func:`nautilus_app.bar_aggregation.aggregate_time_bars`).
    """
    bt = str(strategy.config.bar_type)
    source = source_bar_type(bt)  # a bar type Nautilus aggregates: built here from its source bars
    stored = source or bt
    stored_types = [b for b, _lo, _hi in plan.bars]
    if stored not in stored_types:
        raise BacktestFailed(f"{type(strategy).__name__}: a vectorised-signals strategy needs "
                             + (f"the source bar type {source} of its bar_type {bt}" if source else f"its bar_type {bt}")
                             + " among the run's bar_types")
    bars = run.series(stored)
    if source:
        try:
            bars = aggregate_time_bars(bars, bt, data_end)
        except ValueError as e:
            raise BacktestFailed(f"{type(strategy).__name__}: {e}") from e
    strategy.set_bars(bars)
    # Nautilus fires timers due at the same time in the order of their names (ties: in the order their components
    # were added). The event-driven twin's on_bar runs while Nautilus processes the data at that time (stored bars,
    # in the run's bar_types order) or, for an aggregated bar, from its aggregator's timer, named after the bar type;
    # the alerts are named to fire in that order. It decides e.g. which order gets which of the venue's latency
    # draws when strategies act at the same time.
    strategy.alert_prefix = (f"{BarType.from_str(bt).standard()}:" if source else
                             f"!{stored_types.index(stored):04d}:")
    # Nautilus emits an aggregated bar after every data point at its close time (nautilus_app/bar_aggregation.py),
    # so its on_bar already sees those mark prices and funding rows, as the signals alert does
    strategy.late_data_ts = frozenset() if source else late_ts


def build_engine(cfg: BacktestConfig, plan: DataPlan, data: DataChunks | list[Any], run: RunData | None = None,
                 ) -> tuple[BacktestEngine, dict[str, VenueSim], list[Any]]:
    """Engine with venues, instruments, data, strategies and the venue actors (not run yet).

    ``run``: the run's bars as floats (:class:`~nautilus_app.run_data.RunData`, read once and shared by the
    fill models, the liquidation actors and vectorised-signals strategies, then by the results).
    """
    run = run if run is not None else RunData(cfg.catalog_path(), plan)
    level = getattr(LogLevel, cfg.log_level)
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id=TraderId("BACKTESTER-001"), logging=LoggerConfig(stdout_level=level), shutdown_on_error=True,
        # Higher timeframes (INTERNAL@1-MINUTE-EXTERNAL bar types) are aggregated by Nautilus from the
        # loaded bars; without this it invents flat zero-volume bars across exchange halts and data
        # gaps (tests/test_timeframes.py).
        data_engine=DataEngineConfig(time_bars_build_with_no_updates=False),
    ))
    root = cfg.catalog_path()
    series: dict[str, BarSeries] = {}
    bar_type_of: dict[str, str] = {}
    for bt, _lo, _hi in plan.bars:
        iid = str(BarType.from_str(bt).instrument_id)
        if iid not in series:  # the first bar type of an instrument drives its fills
            series[iid] = run.series(bt)
            bar_type_of[iid] = bt
    strategies = build_strategies(cfg)
    other = data.other if isinstance(data, DataChunks) else [d for d in data if not hasattr(d, "bar_type")]
    data_end = max([plan.last_ns, *(d.ts_init for d in other)])
    late: dict[str, set[int]] = {}  # venue -> times of mark-price / funding rows (signals strategies' sizing)
    settlements: dict[str, set[int]] = {}  # venue -> times of funding rows (they change the wallet)
    for d in other:
        late.setdefault(d.instrument_id.venue.value, set()).add(d.ts_init)
        if hasattr(d, "rate"):
            settlements.setdefault(d.instrument_id.venue.value, set()).add(d.ts_init)
    for strategy in strategies:  # vectorised-signals strategies get their bars before the run
        if getattr(strategy, "signal_kind", False):
            _prepare_signals(strategy, plan, run, data_end, frozenset(late.get(strategy.instrument_id.venue.value, ())))
    sims: dict[str, VenueSim] = {}
    start_date = cfg.start or str(pd.Timestamp(plan.first_ns, unit="ns", tz="UTC").date())
    for v in cfg.venues:
        maker, taker = venue_fees(v)
        margin = v.account_type == "MARGIN"
        iids = [i for i in series if i.endswith("." + v.name)]
        fill_model = VenueFillModel({i: series[i] for i in iids}, v.fill_timing, slippage_model(v))
        liq_fee = v.liquidation_fee if (margin and v.liquidation) else 0.0
        fee_model = make_fee_model(maker, taker, liq_fee)
        engine.add_venue(
            Venue(v.name),
            getattr(OmsType, v.oms_type),
            getattr(AccountType, v.account_type),
            [Money.from_str(b) for b in v.starting_balances],
            default_leverage=Decimal(str(v.default_leverage)),
            leverages={InstrumentId.from_str(k): Decimal(str(x)) for k, x in v.leverages.items()} or None,
            fill_model=fill_model,
            fee_model=fee_model,
        )
        sim = VenueSim(v, fill_model)
        perps = [i for i in iids if InstrumentId.from_str(i).symbol.value.endswith("-PERP")]
        if margin and v.liquidation and perps:
            overrides = bracket_overrides(v)
            on_venue = [s for s in strategies if str(s.config.instrument_id).endswith("." + v.name)]
            # isolated margin with only vectorised-signals strategies on the instrument's own bars: the check is
            # scheduled by them (a scan per position over those bars) instead of running in Python on every bar
            scheduled = (v.margin_mode == "isolated" and bool(on_venue)
                         and all(getattr(s, "signal_kind", False)
                                 and bar_type_of.get(str(s.config.instrument_id)) == str(s.config.bar_type)
                                 for s in on_venue))
            sim.liquidation = LiquidationActor(
                venue=v.name, margin_mode=v.margin_mode, bar_types=[bar_type_of[i] for i in perps],
                series={i: series[i] for i in perps},
                brackets={i: brackets_for(i.split(".")[0].removesuffix("-PERP"), start_date, overrides,
                                                catalog=root) for i in perps},
                leverages={i: leverage_for(v, i) for i in perps}, strategies=strategies,
                actor_id=f"LIQUIDATION-{len(sims):03d}", fee_model=fee_model, fill_model=fill_model,
                scheduled=scheduled,
            )
            if scheduled:
                for s in on_venue:
                    s.liquidation = sim.liquidation
        sims[v.name] = sim
    for inst in load_instruments(cfg):
        engine.add_instrument(inst)
    if not isinstance(data, DataChunks):  # DataChunks are fed window by window by run_backtest
        engine.add_data(data)
    for name, sim in sims.items():  # the liquidation schedule is rescanned at funding settlements
        if sim.liquidation is not None:
            sim.liquidation.event_ts = np.array(sorted(settlements.get(name, ())), dtype=np.int64)
    for strategy in strategies:
        engine.add_strategy(strategy)
    for sim in sims.values():
        if sim.config.latency is not None:
            import msgspec

            sim.latency = LatencyRouter(LatencyDraws(**msgspec.structs.asdict(sim.config.latency)), sim.config.name)
            for strategy in strategies:
                sim.latency.attach(strategy)
    for sim in sims.values():
        sim.fill_model.clock = strategies[0].clock
        if sim.liquidation is not None:
            engine.add_actor(sim.liquidation)
    return engine, sims, strategies


def run_engine(engine: BacktestEngine, data: DataChunks | SignalFeed | list[Any], run_id: str | None = None) -> None:
    """Run a :func:`build_engine` engine over ``data``.

    :class:`DataChunks` go through Nautilus's streaming mode, one time window at a time (add, run,
    clear; then ``end``): the same processing as one run over all of it (same orders, fills and
    iteration count) in a fraction of the memory. A :class:`~nautilus_app.signal_feed.SignalFeed` feeds
    only the bars at which something can happen, event by event. A list was added by :func:`build_engine`: one run.
    """
    if isinstance(data, SignalFeed):
        data.run(engine, run_id)
        return
    if not isinstance(data, DataChunks):
        engine.run(run_config_id=run_id)
        return
    for chunk in data:
        engine.add_data(chunk)
        del chunk
        engine.run(run_config_id=run_id, streaming=True)
        engine.clear_data()
        release_memory()
    engine.end()


def release_memory() -> None:
    """Hand memory freed by the allocators back to the system (glibc's ``malloc_trim``, pyarrow's pool).

    The Python ``Bar`` objects and the engine's copy of a window are freed after each window, but glibc
    keeps freed heap pages mapped: without this a 5-year 1m run held ~500 MB more when results writing
    (the peak) started.
    """
    import ctypes

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


#: backtests run by this process so far (:func:`run_backtest`)
_RUNS_IN_PROCESS = 0


def run_backtest(
    cfg: BacktestConfig,
    *,
    results_root: Path | None = None,
    run_id: str | None = None,
    progress: bool | ProgressSink = True,
    config_text: str | None = None,
) -> BacktestOutcome:
    """Run one backtest and write ``results/<run_id>/``.

    Args:
        cfg: The validated run config.
        results_root: Folder holding result folders; default :func:`core.paths.results_dir`.
        run_id: Override the generated run id.
        progress: Show a progress bar on stderr; or a callable given the fraction of simulated time done
            (a worker process's structured progress, :class:`nautilus_app.worker_process.ProgressWriter`).
        config_text: The original TOML text, stored verbatim in the results (``config.toml``).

    Raises:
        BacktestFailed: a strategy raised, the engine stopped early or reported an error, or data is
            missing. Nothing is written to the results folder then.
    """
    global _RUNS_IN_PROCESS
    if _RUNS_IN_PROCESS:
        # whatever reference cycles the previous run left are collected here, on this thread (a user's strategy may
        # hold its own bound methods; ours are freed by reference counting, tests/test_strategy_hooks.py). Left to
        # the collector they could be freed on another thread (a results writer's, a Dash server's), where
        # Nautilus's strategies (PyO3 "unsendable" objects) refuse to be dropped: an error printed, the run leaked
        gc.collect()
    _RUNS_IN_PROCESS += 1
    t0 = time.perf_counter()
    run_id = run_id or make_run_id(cfg)
    plan = plan_data(cfg)
    data = load_data(cfg, plan)
    run = RunData(cfg.catalog_path(), plan)  # the bars as floats, read once (engine models and results)
    engine, sims, _strategies = build_engine(cfg, plan, data, run)
    try:
        engine.add_actor(ProgressActor(plan.first_ns, plan.last_ns, enabled=progress))
        plotting.attach(engine, _strategies, run)  # plot_config series recorded during the run (nautilus_app/plotting.py)
        feed: DataChunks | SignalFeed = data
        actors = [sim.liquidation for sim in sims.values() if sim.liquidation is not None]
        if cfg.feed == "auto" and signal_feed.eligible(_strategies, actors):
            feed = signal_feed.build_feed(plan, run, engine, _strategies, actors, data.other)
        try:
            run_engine(engine, feed, run_id)
        except RuntimeError as e:
            raise BacktestFailed(f"run {run_id}: the engine stopped with an error: {e}") from e
        expected = len(feed)
        feed_kind = "events" if isinstance(feed, SignalFeed) else "every_bar"
        del data, feed
        engine_seconds = time.perf_counter() - t0
        result = engine.get_result()
        for sim in sims.values():  # per-bar lookups only the run needed (the peak is results writing)
            for s in sim.fill_model.series.values():
                s.release_lookups()
        for strategy in _strategies:
            if hasattr(strategy, "release_run_arrays"):
                strategy.release_run_arrays()
        release_memory()
        if result.iterations != expected:
            raise BacktestFailed(
                f"run {run_id}: processing stopped after {result.iterations:,} of {expected:,} "
                "data points: a strategy or actor raised an exception (traceback in the ERROR log above)"
            )
        for name, sim in sims.items():
            liq = sim.liquidation
            if liq is not None and not liq.scheduled and liq.bars_seen == 0 and result.iterations:
                raise BacktestFailed(f"run {run_id}: the liquidation actor of venue {name} received no bars")
        # Building the results allocates hundreds of thousands of short-lived containers (a dict per Nautilus
        # object); the cyclic collector's passes over them took 4-10 % of it (gc.callbacks: 0.06 s of 1.46 s for
        # 5,692 orders, 0.55 s of 5.7 s for 26,020). Reference counting still frees everything at once; cycles
        # wait until the collector is back on, right after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            path, metrics = results_mod.write_results(
                engine, result, cfg, run_id, plan, sims, run_data=run,
                results_root=results_root, config_text=config_text, engine_seconds=engine_seconds, feed=feed_kind,
            )
        finally:
            if collecting:
                gc.enable()
    finally:
        engine.dispose()
    return BacktestOutcome(
        run_id=run_id, results_path=path, metrics=metrics, iterations=result.iterations,
        orders=result.total_orders, engine_seconds=engine_seconds, total_seconds=time.perf_counter() - t0,
        coverage=plan.coverage, data_points=plan.expected_iterations, feed=feed_kind,
    )
