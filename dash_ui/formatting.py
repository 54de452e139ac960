"""How metric values are shown: every metrics.json key has a declared type (units of docs/metrics.md:
fractions, USDT, seconds, counts, ISO times, and the nested objects/records added by the runner).

:func:`kind` says what a key holds, :func:`fmt` turns any value into a display string and never raises:
a value of an unexpected type (a mapping where a number was expected, a string in a number column) is
shown as text, not converted. Mappings are formatted entry by entry with the type of their entries
(``risk_refusals`` = counts per reason, ``buy_and_hold_by_instrument`` = fractions per instrument).
"""

from __future__ import annotations

import math
import numbers

#: Keys holding fractions, shown as percent with two decimals.
PERCENT_KEYS = {"total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate", "expectancy_return",
                "exposure", "buy_and_hold_return", "return_contribution", "excess_return", "costs_pct_of_start",
                "return_frac"}
#: Keys holding ratios, shown with three decimals.
RATIO_KEYS = {"sharpe", "sortino", "calmar", "profit_factor"}
#: Keys holding counts.
COUNT_KEYS = {"trades", "wins", "losses", "longest_win_streak", "longest_loss_streak", "liquidations",
              "liquidation_count", "liquidations_count", "open_trades", "risk_refusals_total"}
#: Keys holding ISO 8601 UTC timestamps.
TIME_KEYS = {"start", "end", "max_drawdown_peak", "max_drawdown_trough"}
#: Keys holding a day count.
DAY_KEYS = {"span_days"}
#: Mappings ``{name: value}`` and the kind of their values.
MAPPING_KEYS = {"buy_and_hold_by_instrument": "percent", "risk_refusals": "count", "risk_reductions": "count",
                "risk_events": "count"}
#: Lists of records (tables of their own on the detail page).
RECORD_KEYS = {"by_strategy", "by_instrument"}

LABELS = {
    "start": "Start (UTC)", "end": "End (UTC)", "span_days": "Span (days)", "starting_equity": "Starting equity",
    "final_equity": "Final equity", "total_return": "Total return", "cagr": "CAGR",
    "annual_volatility": "Annual volatility", "sharpe": "Sharpe", "sortino": "Sortino", "calmar": "Calmar",
    "max_drawdown": "Max drawdown", "max_drawdown_duration_s": "Max drawdown duration",
    "max_drawdown_peak": "Max drawdown peak", "max_drawdown_trough": "Max drawdown trough",
    "max_drawdown_recovered": "Max drawdown recovered", "trades": "Trades", "wins": "Wins", "losses": "Losses",
    "win_rate": "Win rate", "profit_factor": "Profit factor", "gross_profit_usdt": "Gross profit",
    "gross_loss_usdt": "Gross loss", "expectancy_usdt": "Expectancy", "expectancy_return": "Expectancy (return)",
    "avg_win_usdt": "Average win", "avg_loss_usdt": "Average loss", "largest_win_usdt": "Largest win",
    "largest_loss_usdt": "Largest loss", "avg_trade_duration_s": "Average trade duration",
    "longest_win_streak": "Longest win streak", "longest_loss_streak": "Longest loss streak",
    "exposure": "Exposure", "fees_paid_usdt": "Fees paid", "funding_paid_usdt": "Funding paid (net)",
    "buy_and_hold_return": "Buy and hold return",
    "buy_and_hold_by_instrument": "Buy and hold per instrument", "open_trades": "Open at the end",
    "unrealized_pnl_usdt": "Unrealized PnL (open at the end)", "trading_fees_usdt": "Trading fees",
    "liquidation_fees_usdt": "Liquidation fees", "slippage_cost_usdt": "Slippage cost",
    "total_costs_usdt": "Total costs", "liquidations": "Liquidations", "liquidation_loss_usdt": "Liquidation loss",
    "borrow_interest_usdt": "Borrowing interest", "risk_refusals": "Risk: entries refused (per reason)",
    "risk_refusals_total": "Risk: entries refused", "risk_reductions": "Risk: entries reduced (per reason)",
    "risk_events": "Risk: events (per action)", "excess_return": "Excess return over buy and hold",
    "costs_pct_of_start": "Costs (% of starting equity)", "net_pnl_usdt": "Net PnL",
    "pnl_before_costs_usdt": "PnL before costs", "return_contribution": "Return contribution",
    "by_strategy": "Results per strategy", "by_instrument": "Results per instrument",
}


def label(key: str) -> str:
    """Human label of a metrics.json key (the key itself when unknown)."""
    return LABELS.get(key, key)


def kind(key: str) -> str:
    """What ``key`` holds: ``percent``, ``ratio``, ``count``, ``usdt``, ``duration``, ``days``, ``time``,
    ``mapping``, ``records``, or ``number`` (anything else numeric)."""
    if key in MAPPING_KEYS:
        return "mapping"
    if key in RECORD_KEYS:
        return "records"
    if key in PERCENT_KEYS:
        return "percent"
    if key in RATIO_KEYS:
        return "ratio"
    if key in COUNT_KEYS:
        return "count"
    if key in TIME_KEYS:
        return "time"
    if key in DAY_KEYS:
        return "days"
    if key.endswith("_usdt") or key in ("starting_equity", "final_equity"):
        return "usdt"
    if key.endswith("_s"):
        return "duration"
    return "number"


def unit(key: str) -> str:
    """Unit shown in a column header: ``%``, ``USDT``, ``days`` ... ('' for counts, ratios, text)."""
    return {"percent": "%", "usdt": "USDT", "days": "days", "time": "UTC"}.get(kind(key), "")


def duration(seconds: float) -> str:
    """``93784`` -> ``"1d 02:03:04"``."""
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def _number(k: str, v: float) -> str:
    if k == "percent":
        return f"{v * 100:,.2f} %"
    if k == "ratio":
        return f"{v:,.3f}"
    if k == "count":
        return f"{int(v):,}" if v == int(v) else f"{v:,.2f}"
    if k == "usdt":
        return f"{v:,.2f} USDT"
    if k == "duration":
        return f"{duration(v)} ({v:,.0f} s)"
    if k == "days":
        return f"{v:,.2f}"
    return f"{v:,.4f}"


def fmt_as(k: str, value: object) -> str:
    """``value`` shown as kind ``k`` (see :func:`kind`); never raises."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.replace("T", " ").replace("+00:00", "") if k == "time" else value
    if isinstance(value, dict):
        inner = k if k not in ("mapping", "records") else "number"
        return ", ".join(f"{name}: {fmt_as(inner, v)}" for name, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return f"{len(value)} rows"
    if isinstance(value, numbers.Real):
        v = float(value)
        return _number(k, v) if math.isfinite(v) else "n/a"
    return str(value)


def fmt(key: str, value: object) -> str:
    """Display string of one metric value by its key's type: ``n/a`` for null, ``12.34 %`` for fractions,
    ``1,234.56 USDT`` for money, ``1.234`` for ratios, ``1d 02:03:04 (93,784 s)`` for durations,
    ``below_minimum: 66, drawdown_pause: 5`` for count mappings, ``3 rows`` for records. Never raises."""
    k = kind(key)
    if k == "mapping" and isinstance(value, dict):
        inner = MAPPING_KEYS[key]
        return ", ".join(f"{name}: {fmt_as(inner, v)}" for name, v in value.items()) or "none"
    return fmt_as(k, value)


def ag_format(key: str) -> dict:
    """An AG Grid ``valueFormatter`` (``{"function": ...}``) showing ``key``'s values in its unit with
    :func:`fmt`'s decimals (dash-ag-grid evaluates the string with d3-format available as ``d3``)."""
    k = kind(key)
    fn = {"percent": "d3.format(',.2f')(params.value * 100) + ' %'", "ratio": "d3.format(',.3f')(params.value)",
          "count": "d3.format(',')(params.value)", "usdt": "d3.format(',.2f')(params.value)",
          "days": "d3.format(',.2f')(params.value)", "number": "d3.format(',.4f')(params.value)"}.get(k)
    if fn is None:
        return {}
    return {"valueFormatter": {"function": f"(params.value == null || !isFinite(params.value)) ? 'n/a' : {fn}"}}
