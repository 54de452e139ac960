"""Run a backtest described by a :class:`~nautilus_app.config.BacktestConfig` through Nautilus's ``BacktestNode``.

Flow: config -> ``BacktestRunConfig`` (venues with fee models, catalog data for bars plus funding
rates and mark prices of perpetuals) -> ``BacktestNode`` with the registered strategies and a
progress actor -> failure checks -> :func:`nautilus_app.results.write_results`.

Failure detection. Nautilus 2.0.0rc7 logs exceptions raised in strategy callbacks and carries on,
and ``node.run()`` returns normally even with ``shutdown_on_error``. The runner therefore sets
``shutdown_on_error=True`` (processing stops at the failing event) and compares the engine's
iteration count with the number of data points it was given (counted from the catalog files).
Fewer iterations, no result, or an engine ``RuntimeError`` raise :class:`BacktestFailed`; then no
results folder is created.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from nautilus_trader.backtest import (
    BacktestDataConfig,
    BacktestEngineConfig,
    BacktestNode,
    BacktestRunConfig,
    BacktestVenueConfig,
)
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.execution import MakerTakerFeeModel
from nautilus_trader.model import BarType, InstrumentId, NautilusDataType, TraderId
from nautilus_trader.trading import ImportableStrategyConfig

from catalog.reader import row_stats
from nautilus_app import results as results_mod
from nautilus_app.config import BacktestConfig
from nautilus_app.progress import ProgressActor


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
        orders: Orders submitted.
        engine_seconds: Wall seconds inside ``BacktestNode.run()``.
        total_seconds: Wall seconds for the whole call, results included.
    """

    run_id: str
    results_path: Path
    metrics: dict
    iterations: int
    orders: int
    engine_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class DataPlan:
    """Data the run loads from the catalog, with the number of rows of each (for the completion check)."""

    data_configs: list[BacktestDataConfig]
    expected_iterations: int
    first_ns: int
    last_ns: int
    funding_instruments: list[str]
    mark_instruments: list[str]


def make_run_id(cfg: BacktestConfig) -> str:
    """``<name>-<UTC yyyymmddTHHMMSS>-<config digest>``, unique per second and config."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{cfg.name}-{stamp}-{cfg.digest()}"


def plan_data(cfg: BacktestConfig) -> DataPlan:
    """Build the ``BacktestDataConfig`` list and count what it will load.

    Bars for every configured bar type; for perpetual instruments (ids ending in ``-PERP``) also
    ``FundingRateUpdate`` and ``MarkPriceUpdate`` rows when the catalog has them.

    Raises:
        BacktestFailed: the catalog has no bars for a bar type in the date range, or no funding
            rates for a perpetual (a silent zero funding would flatter every perp backtest).
    """
    root = cfg.catalog_path()
    start, end = cfg.bar_window_ns()  # half-open on ts_init
    # Nautilus treats start_time and end_time as inclusive.
    nt_end = None if end is None else end - 1
    configs: list[BacktestDataConfig] = []
    expected = 0
    firsts: list[int] = []
    lasts: list[int] = []
    for bt in cfg.bar_types:
        bar_type = BarType.from_str(bt)
        n, first, last = row_stats(root, "bars", bt, start, end)
        if n == 0:
            raise BacktestFailed(
                f"catalog {root} has no bars for {bt} between {cfg.start or 'the start'} and {cfg.end or 'the end'}: "
                "import them first (see `nautilus-app import --help`)"
            )
        expected += n
        firsts.append(first)  # type: ignore[arg-type]
        lasts.append(last)  # type: ignore[arg-type]
        configs.append(BacktestDataConfig(
            data_type=NautilusDataType.Bar, catalog_path=str(root), instrument_id=bar_type.instrument_id,
            bar_types=[bt], start_time=start, end_time=nt_end,
        ))
    first_ns, last_ns = min(firsts), max(lasts)
    funding, mark = [], []
    for iid in cfg.instrument_ids():
        if not InstrumentId.from_str(iid).symbol.value.endswith("-PERP"):
            continue
        # Funding and mark rows over [start, end) of the config (the node otherwise runs on through
        # every loaded row, settling funding after the last bar); a settlement exactly at `end` is
        # outside the run, like the bar that opens at `end`.
        span = (cfg.start_ns() if cfg.start is not None else first_ns,
                cfg.end_ns() if cfg.end is not None else last_ns + 1)
        n_f, _, _ = row_stats(root, "funding", iid, *span)
        if n_f == 0:
            raise BacktestFailed(
                f"catalog {root} has no funding rates for perpetual {iid} in the run's span: import the "
                "fundingRate archives (or freqtrade funding_rate files) first"
            )
        configs.append(BacktestDataConfig(
            data_type=NautilusDataType.FundingRateUpdate, catalog_path=str(root),
            instrument_id=InstrumentId.from_str(iid), start_time=span[0], end_time=span[1] - 1,
        ))
        expected += n_f
        funding.append(iid)
        n_m, _, _ = row_stats(root, "mark", iid, *span)
        if n_m:
            configs.append(BacktestDataConfig(
                data_type=NautilusDataType.MarkPriceUpdate, catalog_path=str(root),
                instrument_id=InstrumentId.from_str(iid), start_time=span[0], end_time=span[1] - 1,
            ))
            expected += n_m
            mark.append(iid)
    return DataPlan(configs, expected, first_ns, last_ns, funding, mark)


def build_run_config(cfg: BacktestConfig, run_id: str, plan: DataPlan) -> BacktestRunConfig:
    """Translate our config into Nautilus's ``BacktestRunConfig`` (venues, data, engine settings)."""
    venues = []
    for v in cfg.venues:
        maker, taker = v.fees()
        venues.append(BacktestVenueConfig(
            name=v.name,
            oms_type=v.oms_type,
            account_type=v.account_type,
            starting_balances=list(v.starting_balances),
            fee_model=MakerTakerFeeModel(Decimal(str(maker)), Decimal(str(taker))),
            default_leverage=Decimal(str(v.default_leverage)),
            leverages={InstrumentId.from_str(k): Decimal(str(x)) for k, x in v.leverages.items()} or None,
        ))
    level = getattr(LogLevel, cfg.log_level)
    engine = BacktestEngineConfig(
        trader_id=TraderId("BACKTESTER-001"),
        logging=LoggerConfig(stdout_level=level),
        shutdown_on_error=True,
    )
    return BacktestRunConfig(
        venues=venues, data=plan.data_configs, engine=engine, id=run_id,
        dispose_on_completion=False, raise_exception=True,
    )


def strategy_configs(cfg: BacktestConfig) -> list[ImportableStrategyConfig]:
    """One ``ImportableStrategyConfig`` per ``[[strategies]]`` entry, with a unique order-id tag each."""
    from strategies import REGISTRY

    out = []
    for i, spec in enumerate(cfg.strategies):
        entry = REGISTRY[spec.name]
        params = dict(spec.params)
        params.setdefault("order_id_tag", f"{i:03d}")
        out.append(ImportableStrategyConfig(
            strategy_path=entry.strategy_path, config_path=entry.config_path, config=params,
        ))
    return out


def run_backtest(
    cfg: BacktestConfig,
    *,
    results_root: Path | None = None,
    run_id: str | None = None,
    progress: bool = True,
    config_text: str | None = None,
) -> BacktestOutcome:
    """Run one backtest and write ``results/<run_id>/``.

    Args:
        cfg: The validated run config.
        results_root: Folder holding result folders; default :func:`nautilus_app.paths.results_dir`.
        run_id: Override the generated run id.
        progress: Show a progress bar on stderr.
        config_text: The original TOML text, stored verbatim in the results (``config.toml``).

    Raises:
        BacktestFailed: a strategy raised, the engine stopped early or reported an error, or data is
            missing. Nothing is written to the results folder then.
    """
    t0 = time.perf_counter()
    run_id = run_id or make_run_id(cfg)
    plan = plan_data(cfg)
    node = BacktestNode([build_run_config(cfg, run_id, plan)])
    try:
        node.build()
        for sc in strategy_configs(cfg):
            node.add_strategy_from_config(run_id, sc)
        node.add_actor(run_id, ProgressActor(plan.first_ns, plan.last_ns, enabled=progress))
        t1 = time.perf_counter()
        try:
            run_results = node.run()
        except RuntimeError as e:
            raise BacktestFailed(f"run {run_id}: the engine stopped with an error: {e}") from e
        engine_seconds = time.perf_counter() - t1
        if len(run_results) != 1:
            raise BacktestFailed(f"run {run_id}: the engine returned no result (see the ERROR log lines above)")
        result = run_results[0]
        if result.iterations != plan.expected_iterations:
            raise BacktestFailed(
                f"run {run_id}: processing stopped after {result.iterations:,} of {plan.expected_iterations:,} "
                "data points: a strategy or actor raised an exception (traceback in the ERROR log above)"
            )
        path, metrics = results_mod.write_results(
            node, result, cfg, run_id, plan,
            results_root=results_root, config_text=config_text, engine_seconds=engine_seconds,
        )
    finally:
        node.dispose()
    return BacktestOutcome(
        run_id=run_id, results_path=path, metrics=metrics, iterations=result.iterations,
        orders=result.total_orders, engine_seconds=engine_seconds, total_seconds=time.perf_counter() - t0,
    )
