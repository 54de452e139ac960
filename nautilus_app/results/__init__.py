"""One results package for backtests, paper and live sessions, research and the Dash app.

Stages: :mod:`~nautilus_app.results.collect` (tables from an engine's or a live node's cache) ->
:mod:`~nautilus_app.results.assemble` (equity, trades, costs, metrics: pure functions) ->
:mod:`~nautilus_app.results.writer` (one folder schema, :mod:`~nautilus_app.results.schema`, written
atomically) -> :mod:`~nautilus_app.results.reader` (the one reader of results folders).

A backtest folder ``results/<run_id>/`` is written atomically: everything is first written to a hidden staging folder ``results/.<run_id>.partial`` and then
renamed in one ``os.rename``, so a results folder without a leading dot is always complete.

Folder contents:

| file | what |
|---|---|
| ``config.toml`` / ``config.json`` | the config as given, and as validated (all defaults filled in) |
| ``orders.parquet``, ``fills.parquet``, ``positions.parquet``, ``account.parquet`` | Nautilus's reports, numbers as float64, ``Money`` split into amount and ``*_currency``; fills also carry ``reference_price``, ``slippage_cost``, ``trading_fee``, ``liquidation_fee``, ``is_liquidation`` (:func:`add_fill_costs`) |
| ``trades.parquet`` | round trips (one row per position cycle), net PnL incl. fees and funding, with the cost breakdown (fees, liquidation fee, funding, slippage cost), a ``liquidated`` flag, and ``is_open`` / ``unrealized_pnl`` for positions still open at the end (marked to market at the last close) |
| ``by_strategy.parquet``, ``by_instrument.parquet`` | results per strategy id and per instrument (:func:`nautilus_app.metrics.group_breakdown`; the same records as ``metrics.json`` ``by_strategy`` / ``by_instrument``) |
| ``latency.parquet`` | every delayed command: strategy, order, command, send time (ns), drawn and effective latency (ms), arrival time, spike flag |
| ``liquidations.parquet`` | every liquidation: time, position, side, size, entry and liquidation price, margin mode, loss and clearance fee |
| ``funding.parquet`` | every funding settlement: time, instrument, position id, amount in USDT (paid < 0) |
| ``equity.parquet`` | equity (balance + unrealized PnL, USDT) at every bar close, with the buy-and-hold benchmark (an equal-weight basket of the traded instruments, :func:`buy_and_hold_basket`) |
| ``metrics.json`` | :func:`nautilus_app.metrics.compute_metrics` output (formulas in ``docs/metrics.md``) |
| ``run.json`` | run id, timings, data loaded, Nautilus version, a sha256 of fills and metrics |
| ``tearsheet.html`` | Nautilus's plotly tearsheet fed with the equity-curve returns |

Equity is rebuilt from the fills, the funding settlements and the bar closes (all in the quote
currency USDT, linear instruments only):

    equity(t) = starting balances + sum over fills <= t of (-signed qty x fill price - commission)
                + sum over funding settlements <= t + sum over instruments of position qty(t) x close(t)

This identity holds for spot (cash and base balances) and USDT-margined perpetuals (balance +
unrealized PnL) alike; a test checks it against Nautilus's final account balance.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> submodule; imported on first use, so that reading a folder
#: (``nautilus_app.results.reader``, the Dash app) does not import the engine-side collection
_EXPORTS = {
    **dict.fromkeys(("add_fill_costs", "attribution", "breakdown_frame", "build_equity", "build_liquidations",
                     "build_trades", "buy_and_hold", "buy_and_hold_basket", "cost_assumptions",
                     "daily_returns_until_wipeout", "exit_reasons", "portfolio_series", "results_digest",
                     "risk_metrics", "session_metrics", "traded_instruments", "venue_settings"), "assemble"),
    **dict.fromkeys(("build_borrowing", "build_risk_records", "build_trailed", "funding_settlements",
                     "paper_session_tables", "read_bar_closes", "run_reports", "session_reports"), "collect"),
    **dict.fromkeys(("ResultsFolder", "is_complete", "open_results", "read_json"), "reader"),
    **dict.fromkeys(("BORROW_COLUMNS", "EXIT_REASONS", "QUOTE", "RISK_COLUMNS", "TABLES", "normalise_report"),
                    "schema"),
    **dict.fromkeys(("write_results", "write_session_results", "write_tearsheet"), "writer"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
