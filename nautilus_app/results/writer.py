"""Write a results folder: the last stage of :mod:`nautilus_app.results` (collect -> assemble -> write).

A backtest folder is written atomically: everything goes to a hidden staging folder
``results/.<run_id>.partial`` first, which is then renamed in one ``os.rename``, so a results folder
without a leading dot is always complete (:func:`write_results`). A paper or live session rewrites
its folder while it runs: each file is replaced atomically (temp file + ``os.replace``) and
``metrics.json`` is written last (:func:`write_session_results`). Both write the same schema
(:mod:`nautilus_app.results.schema`) and are read by :mod:`nautilus_app.results.reader`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pandas as pd

from core import paths
from core.parquet import write_options
from nautilus_app import metrics as metrics_mod
from nautilus_app.housekeeping import mark_owner
from nautilus_app.results.assemble import (
    add_fill_costs,
    attribution,
    breakdown_frame,
    build_equity,
    build_liquidations,
    build_trades,
    buy_and_hold_basket,
    cost_assumptions,
    daily_returns_until_wipeout,
    equity_table,
    results_digest,
    risk_metrics,
    traded_instruments,
    venue_settings,
)
from nautilus_app.results.schema import EXIT_REASONS, LATENCY_COLUMNS
from nautilus_app.venue.models import venue_fees

if TYPE_CHECKING:
    from nautilus_trader.backtest import BacktestEngine, BacktestResult

    from nautilus_app.config import BacktestConfig
    from nautilus_app.run_data import DataPlan, VenueSim


def write_results(
    engine: BacktestEngine,
    result: BacktestResult,
    cfg: BacktestConfig,
    run_id: str,
    plan: DataPlan,
    sims: dict[str, VenueSim],
    *,
    results_root: Path | None = None,
    config_text: str | None = None,
    engine_seconds: float = 0.0,
    run_data: Any = None,
    feed: str = "every_bar",
) -> tuple[Path, dict]:
    """Collect reports from the engine, compute equity, costs and metrics, write the folder atomically.

    ``feed``: how the engine was fed (``"every_bar"`` or ``"events"``, :mod:`nautilus_app.signal_feed`), kept
    in ``run.json``.

    Returns:
        (final folder path, metrics dict).

    Raises:
        FileExistsError: ``results/<run_id>`` already exists (nothing is overwritten).
    """
    import nautilus_trader
    from nautilus_trader.model import BarType

    root = Path(results_root) if results_root is not None else paths.results_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / run_id
    if final.exists():
        raise FileExistsError(f"results folder {final} already exists")

    # Nautilus's orders/fills/positions/account reports, normalised (normalise_report), and the funding
    # settlements of the positions' adjustments: built from the engine's cache (nautilus_app/results/collect.py)
    from nautilus_app.results.collect import (
        build_borrowing,
        build_risk_records,
        build_trailed,
        read_bar_closes,
        run_reports,
    )

    stage = root / f".{run_id}.partial"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir()
    mark_owner(stage)  # so the next command can tell a dead writer's folder (nautilus_app/housekeeping.py)
    out = _TableWriter(stage)
    try:
        orders, fills, positions, funding, account = run_reports(engine, [v.name for v in cfg.venues])
        for name, table in (("orders", orders), ("positions", positions), ("account", account), ("funding", funding)):
            out.put(name, table)  # final: encoded on a writer thread while the rest is computed
        fills = add_fill_costs(fills, orders, sims)
        out.put("fills", fills)

        if run_data is not None:  # the closes the run's fill models used (RunData: bars read once)
            closes: dict[str, pd.Series] = run_data.closes()
        else:
            closes = {}
            for bt in cfg.bar_types:
                iid = str(BarType.from_str(bt).instrument_id)
                closes.setdefault(iid, read_bar_closes(cfg, bt))
        equity, start_equity = build_equity(cfg, fills, funding, closes)
        borrowing = build_borrowing(engine)  # None unless a strategy has a risk table
        if borrowing is not None and len(borrowing):
            # not debited by Nautilus (docs/risk.md): deducted from the equity curve here
            accrued = borrowing.groupby("ts")["interest_usdt"].sum().cumsum()
            equity = equity - accrued.reindex(equity.index, method="ffill").fillna(0.0)
        # positions a strategy left open (close_positions_on_stop = false) are marked at their last close
        marks = {iid: (c.index[-1], float(c.iloc[-1])) for iid, c in closes.items() if len(c)}
        last_ts = max(c.index[-1] for c in closes.values() if len(c)) if closes else None
        trades = build_trades(positions, funding, fills, marks=marks, orders=orders, last_ts=last_ts,
                              trailed=build_trailed(engine))
        out.put("trades", trades)
        liquidations = build_liquidations(sims, fills)

        # equal-weight basket of the traded instruments; a sleeve holds cash (1.0) before its first bar
        bench_iids = traded_instruments(cfg, closes)
        taker = {iid: venue_fees(next(v for v in cfg.venues if iid.endswith("." + v.name)))[1] for iid in bench_iids}
        bench, bench_by_iid = buy_and_hold_basket({iid: closes[iid] for iid in bench_iids}, taker, equity.index)
        fees_paid = float(fills["trading_fee"].sum()) if not fills.empty else 0.0
        funding_paid = -float(funding["amount"].sum()) if not funding.empty else 0.0  # paid > 0
        # equity.parquet's frame (equity, benchmark, drawdown, portfolio columns), built in place in one block
        equity_frame = equity_table(cfg, fills, closes, equity, bench, start_equity)
        # the curve from here on is a view of the frame's column (the built series is freed)
        equity = pd.Series(equity_frame["equity"].to_numpy(), index=equity.index, name=equity.name, copy=False)
        metrics = metrics_mod.compute_metrics(
            equity, trades, fees_paid=fees_paid, funding_paid=funding_paid,
            buy_and_hold_return=float(bench.iloc[-1] - 1.0), starting_equity=start_equity,
            leverage=pd.Series(equity_frame["leverage"].to_numpy(), index=equity.index, copy=False),
        )
        metrics["exit_reasons"] = {r: int((trades["exit_reason"] == r).sum()) for r in EXIT_REASONS}
        metrics.update(metrics_mod.execution_costs(fills, liquidations, funding_paid=funding_paid))
        risk_records = build_risk_records(engine)  # None unless a strategy has a risk table
        if risk_records is not None:
            metrics.update(risk_metrics(risk_records))
        if borrowing is not None:
            borrow_total = float(borrowing["interest_usdt"].sum())
            metrics["borrow_interest_usdt"] = borrow_total
            metrics["total_costs_usdt"] = metrics["total_costs_usdt"] + borrow_total
        metrics["costs"] = {name: cost_assumptions(sim.config) for name, sim in sims.items()}
        metrics["buy_and_hold_by_instrument"] = {iid: metrics_mod.json_safe(r) for iid, r in bench_by_iid.items()}
        metrics.update(metrics_mod.open_trades_summary(trades))
        strategy_ids = [sid.value for sid in engine.cache.strategy_ids()]
        metrics["by_strategy"], metrics["by_instrument"] = attribution(strategy_ids, cfg, trades, borrowing, metrics,
                                                                       bench_by_iid)

    except BaseException:
        out.abort()
        shutil.rmtree(stage, ignore_errors=True)
        raise
    try:
        if config_text is not None:
            (stage / "config.toml").write_text(config_text)
        (stage / "config.json").write_bytes(msgspec.json.format(msgspec.json.encode(cfg), indent=2))
        tables = {}  # orders, fills, positions, account, funding and trades are being written already
        tables["by_strategy"] = breakdown_frame(metrics["by_strategy"], "strategy_id")
        tables["by_instrument"] = breakdown_frame(metrics["by_instrument"], "instrument_id")
        tables["liquidations"] = liquidations
        latency_rows = [vars(r) | {"venue": name} for name, sim in sims.items() if sim.latency is not None
                        for r in sim.latency.records]
        tables["latency"] = pd.DataFrame(latency_rows, columns=LATENCY_COLUMNS)
        if risk_records is not None:
            tables["risk_refusals"] = risk_records
        if borrowing is not None:
            tables["borrowing"] = borrowing
        tables["equity"] = equity_frame
        del equity_frame
        for name, table in tables.items():
            out.put(name, table)
        out.finish()
        from nautilus_app import plotting

        plotting.write_recorded(engine, stage)  # indicators.parquet + plot_config.json (strategies' plot_config)
        (stage / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        run_info = {
            "run_id": run_id,
            "name": cfg.name,
            "config_digest": cfg.digest(),
            "nautilus_trader": nautilus_trader.__version__,
            "iterations": result.iterations,
            # every bar, funding row and mark price of the run; "events": only those at which something could
            # happen went through the engine (nautilus_app/signal_feed.py), iterations counts them
            "data_points": plan.expected_iterations,
            "feed": feed,
            "orders": result.total_orders,
            "positions": result.total_positions,
            "engine_seconds": round(engine_seconds, 3),
            "bars_per_second": round(plan.expected_iterations / engine_seconds) if engine_seconds else None,
            "first_bar": str(pd.Timestamp(plan.first_ns, unit="ns", tz="UTC")),
            "last_bar": str(pd.Timestamp(plan.last_ns, unit="ns", tz="UTC")),
            "funding_instruments": plan.funding_instruments,
            "funding_source": plan.funding_source,
            "bar_stores": plan.bar_stores,
            "coverage": plan.coverage,
            "allow_gaps": cfg.allow_gaps,
            "engine": "BacktestEngine (low level; Python venue fill model)",
            "venues": {name: venue_settings(sim) for name, sim in sims.items()},
            "funding_mark_price_source": {
                iid: ("MarkPriceUpdate" if iid in plan.mark_instruments else "last price (bar close)")
                for iid in plan.funding_instruments
            },
            "results_digest": results_digest(fills, metrics),
            # what Nautilus's tearsheet takes from the engine, so it can be written later on demand
            "stats_pnls": {str(k): {s: metrics_mod.json_safe(v) for s, v in d.items()}
                           for k, d in (result.stats_pnls or {}).items()},
        }
        (stage / "run.json").write_text(json.dumps(run_info, indent=2))
        if cfg.tearsheet:  # else on demand: `nautilus-app tearsheet RUN`, or the Dash app's link
            write_tearsheet(stage / "tearsheet.html", result, equity, bench, metrics, run_id)
        os.rename(stage, final)
    except BaseException:
        out.abort()
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return final, metrics


class _TableWriter:
    """``<name>.parquet`` files of a staging folder written on worker threads while the caller goes on:
    Arrow's encoding and compression release the GIL, so the files overlap with the rest of the results
    (a frame handed to :meth:`put` must not be modified afterwards)."""

    def __init__(self, folder: Path, workers: int = 4) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.folder = folder
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.futures: list[Any] = []

    def put(self, name: str, df: pd.DataFrame) -> None:
        self.futures.append(self.pool.submit(df.to_parquet, self.folder / f"{name}.parquet", **write_options(df)))

    def finish(self) -> None:
        """Wait for every file; raises the first writer error."""
        self.pool.shutdown(wait=True)
        for f in self.futures:
            f.result()

    def abort(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def write_folder(final: Path, *, texts: dict[str, str | bytes], tables: dict[str, pd.DataFrame]) -> Path:
    """Write a complete results folder ``final`` atomically: a hidden staging folder ``.<name>.partial``
    (owner-marked, :mod:`nautilus_app.housekeeping`) gets ``tables`` as ``<name>.parquet`` (on writer threads)
    and ``texts`` (file name -> content), then is renamed to ``final`` in one ``os.rename``; on any error it
    is removed. For folders assembled outside :func:`write_results` (e.g. a combined universe run).
    """
    stage = final.parent / f".{final.name}.partial"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    mark_owner(stage)
    out = _TableWriter(stage)
    try:
        for name, df in tables.items():
            out.put(name, df)
        for name, data in texts.items():
            (stage / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        out.finish()
        os.rename(stage, final)
    except BaseException:
        out.abort()
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return final


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    """``<name>.parquet`` for every frame (pandas' ``to_parquet``, index dropped), written concurrently:
    Arrow's encoding and compression release the GIL, so the files of a run overlap on several cores."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, len(tables) or 1)) as pool:
        futures = [pool.submit(df.to_parquet, folder / f"{name}.parquet", **write_options(df))
                   for name, df in tables.items()]
    for f in futures:
        f.result()


def replace_file(path: Path, data: bytes) -> None:
    """Write ``path`` atomically (a hidden temp file beside it, then ``os.replace``)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def replace_parquet(path: Path, df: pd.DataFrame) -> None:
    """``df.to_parquet(path)`` atomically (a hidden temp file beside it, then ``os.replace``)."""
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, **write_options(df))
    os.replace(tmp, path)


def write_tearsheet(path: Path, result: Any, equity: pd.Series, bench: pd.Series, metrics: dict, run_id: str) -> None:
    """Nautilus's plotly tearsheet, fed with daily returns of *our* equity curve.

    ``BacktestResult.returns_series`` holds per-position gross returns (no fees, no sizing), which
    misstate a run's performance, so daily equity returns are passed instead.
    """
    from nautilus_trader.analysis.tearsheet import create_tearsheet_from_stats

    daily = daily_returns_until_wipeout(equity, metrics["starting_equity"])
    bench_daily = metrics_mod.daily_returns(bench, starting_equity=1.0)
    stats_returns = {k: metrics[k] for k in ("sharpe", "sortino", "annual_volatility", "cagr", "max_drawdown",
                                              "calmar", "profit_factor", "win_rate") if k in metrics}
    create_tearsheet_from_stats(
        stats_pnls=result.stats_pnls, stats_returns=stats_returns, stats_general={},
        returns=daily, output_path=str(path), title=f"Backtest {run_id}",
        benchmark_returns=bench_daily, benchmark_name="Buy and hold",
    )


def write_session_results(
    out: Path,
    *,
    cfg: Any,
    run_info: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    config_text: str | None = None,
    equity: pd.Series | None = None,
    trades: pd.DataFrame | None = None,
    starting_equity: float | None = None,
    bench: pd.Series | None = None,
    tearsheet: bool = False,
    on_tearsheet_error: Any = None,
    redact: Any = None,
) -> dict | None:
    """Rewrite a running (or just stopped) paper/live session's folder ``out`` in the backtest schema.

    Each file is replaced atomically; ``metrics.json`` is written last, so a reader that sees it sees
    the files of the same or a later rewrite. ``tables``: ``orders``, ``fills``, ``positions``,
    ``account``, ``funding`` (normalised like a backtest's, :func:`nautilus_app.results.collect.session_reports`).
    With ``equity`` (samples in USDT) and ``trades`` also ``trades.parquet``, ``equity.parquet`` and
    ``metrics.json`` (:func:`nautilus_app.results.assemble.session_metrics`; ``run_info`` gains
    ``first_bar``/``last_bar``/``results_digest``) and, with ``tearsheet``, ``tearsheet.html`` (errors go to
    ``on_tearsheet_error``). ``redact`` (text -> text) is applied to every text file (live: secrets).
    Returns the metrics (None before the first equity sample).
    """
    from nautilus_app.results.assemble import session_metrics

    def text(path: Path, value: str) -> None:
        replace_file(path, (value if redact is None else redact(value)).encode())

    out.mkdir(parents=True, exist_ok=True)
    if config_text is not None and not (out / "config.toml").exists():
        text(out / "config.toml", config_text)
    text(out / "config.json", msgspec.json.format(msgspec.json.encode(cfg), indent=2).decode())
    for name, df in tables.items():
        replace_parquet(out / f"{name}.parquet", df)
    if equity is None or trades is None or not len(equity):
        text(out / "run.json", json.dumps(run_info, indent=2, default=str))
        return None
    start = float(equity.iloc[0]) if starting_equity is None else starting_equity
    fills, funding = tables["fills"], tables["funding"]
    metrics, eq = session_metrics(equity, trades, fills, funding, starting_equity=start, bench=bench)
    replace_parquet(out / "trades.parquet", trades)
    replace_parquet(out / "equity.parquet", eq)
    run_info.update(first_bar=str(equity.index[0]), last_bar=str(equity.index[-1]),
                    results_digest=results_digest(fills, metrics))
    text(out / "run.json", json.dumps(run_info, indent=2, default=str))
    if tearsheet:
        try:
            class _Result:  # stats_pnls is all the tearsheet takes from a result
                stats_pnls: dict = {}

            write_tearsheet(out / "tearsheet.html", _Result(), equity,
                            bench if bench is not None else equity / equity.iloc[0], metrics,
                            str(run_info.get("run_id", out.name)))
        except Exception as e:  # noqa: BLE001 - the tearsheet is optional
            if on_tearsheet_error is not None:
                on_tearsheet_error(e)
    text(out / "metrics.json", json.dumps(metrics, indent=2, default=str))
    return metrics
