"""The results folder schema: file names, fixed column lists, and the report normalisation every
writer applies (the base of :mod:`nautilus_app.results`; imports nothing else of the package).

A results folder ``results/<run_id>/`` (backtest, paper or live) holds the files of
:data:`TABLES` as Parquet and the JSON files of :data:`JSON_FILES`; docs/results.md and the
package docstring (:mod:`nautilus_app.results`) describe every column.
"""

from __future__ import annotations

import json
import re

import pandas as pd

QUOTE = "USDT"
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_MONEY = re.compile(r"-?[0-9]+(\.[0-9]+)? [A-Z0-9]+")
NUMBER, MONEY = _NUMBER, _MONEY

#: Parquet tables of a results folder (``<name>.parquet``); the optional ones are written only when
#: the run has them (``risk_refusals``/``borrowing``: a strategy with a risk table; ``indicators``: plot_config).
TABLES = ("orders", "fills", "positions", "account", "trades", "by_strategy", "by_instrument", "liquidations",
          "latency", "funding", "equity", "risk_refusals", "borrowing", "indicators")
#: JSON (and TOML) files of a results folder.
JSON_FILES = ("metrics.json", "run.json", "config.json", "config.toml", "plot_config.json", "status.json")

FUNDING_COLUMNS = ["ts", "instrument_id", "position_id", "amount"]
LATENCY_COLUMNS = ["venue", "strategy_id", "client_order_id", "command", "ts_sent", "drawn_ms", "effective_ms",
                   "ts_arrival", "spike"]
LIQUIDATION_COLUMNS = ["ts", "venue", "instrument_id", "strategy_id", "position_id", "client_order_id", "side",
                       "quantity", "entry_price", "liquidation_price", "fill_price", "margin_mode", "margin_balance",
                       "liquidation_fee", "loss"]
TRADE_COLUMNS = ["instrument_id", "strategy_id", "side", "entry_time", "exit_time", "quantity", "entry_price",
                 "exit_price", "pnl", "return_frac", "fees", "funding", "liquidation_fee", "slippage_cost", "liquidated",
                 "is_open", "unrealized_pnl", "exit_reason", "exit_tag"]
RISK_COLUMNS = ["ts", "strategy_id", "instrument_id", "side", "action", "reason", "detail", "requested_qty",
                "final_qty"]
BORROW_COLUMNS = ["ts", "strategy_id", "instrument_id", "signed_qty", "price", "equity", "borrowed_usdt",
                  "hourly_rate", "hours", "interest_usdt"]
#: ``trades.parquet`` ``exit_reason`` values (docs/metrics.md).
EXIT_REASONS = ("signal", "stop", "take_profit", "trailing", "time", "liquidation", "end_of_run")


def _amount(money: object) -> float:
    """``"12.5 USDT"`` (or a ``Money``) -> 12.5."""
    return float(str(money).split(" ", 1)[0])


def _money_amount(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split ``"12.5 USDT"`` strings into (amount float, currency str)."""
    parts = values.astype(str).str.split(" ", n=1, expand=True)
    amount = pd.to_numeric(parts[0], errors="coerce")
    currency = parts[1] if parts.shape[1] > 1 else pd.Series([None] * len(values), index=values.index)
    return amount, currency


def normalise_report(df: pd.DataFrame) -> pd.DataFrame:
    """Make a Nautilus report DataFrame Parquet-friendly.

    Numeric strings become float64, ``Money`` strings (``"10.5 USDT"``) become an amount column plus a
    ``<name>_currency`` column, lists/dicts become JSON strings; the index becomes a column. The kind
    of each column is decided from its first non-null value (report columns are homogeneous).
    """
    out = df.reset_index()
    for col in list(out.columns):
        s = out[col]
        if s.dtype != object:
            continue
        non_null = s.dropna()
        if non_null.empty:
            out[col] = s.astype("string")
            continue
        first = non_null.iloc[0]
        if isinstance(first, (list, dict, tuple)):
            out[col] = s.map(lambda v: None if v is None else json.dumps(v, default=str))
            continue
        text = str(first)
        if _NUMBER.fullmatch(text):
            numeric = pd.to_numeric(s.astype(str), errors="coerce")
            if numeric[s.notna()].notna().all():
                out[col] = numeric
                continue
        elif _MONEY.fullmatch(text):
            amount, currency = _money_amount(s)
            if amount[s.notna()].notna().all():
                out[col] = amount
                out[f"{col}_currency"] = currency
                continue
        out[col] = s.astype(str).where(s.notna(), None)
    return out
