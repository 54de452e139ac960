"""How metric values are shown (units follow docs/metrics.md: fractions, USDT, seconds)."""

from __future__ import annotations

import math

#: Keys holding fractions, shown as percent with two decimals.
PERCENT_KEYS = {"total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate", "expectancy_return",
                "exposure", "buy_and_hold_return", "return_contribution"}
#: Keys holding ratios, shown with three decimals.
RATIO_KEYS = {"sharpe", "sortino", "calmar", "profit_factor"}
#: Keys holding counts.
COUNT_KEYS = {"trades", "wins", "losses", "longest_win_streak", "longest_loss_streak", "liquidations",
              "liquidation_count", "liquidations_count", "open_trades"}

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
    "unrealized_pnl_usdt": "Unrealized PnL (open at the end)",
}


def label(key: str) -> str:
    """Human label of a metrics.json key (the key itself when unknown)."""
    return LABELS.get(key, key)


def duration(seconds: float) -> str:
    """``93784`` -> ``"1d 02:03:04"``."""
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def fmt(key: str, value: object) -> str:
    """Display string of one metric value: ``n/a`` for null, ``12.34 %`` for fractions,
    ``1,234.56 USDT`` for money, ``1.234`` for ratios, ``1d 02:03:04 (93,784 s)`` for durations."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.replace("T", " ").replace("+00:00", "")
    if isinstance(value, dict):  # e.g. buy_and_hold_by_instrument: {instrument id: fraction}
        inner = "buy_and_hold_return" if key == "buy_and_hold_by_instrument" else key
        return ", ".join(f"{k}: {fmt(inner, v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):  # by_strategy / by_instrument records: tables of their own on the detail page
        return f"{len(value)} rows"
    v = float(value)  # type: ignore[arg-type]
    if key in PERCENT_KEYS:
        return f"{v * 100:,.2f} %"
    if key in RATIO_KEYS:
        return f"{v:,.3f}"
    if key in COUNT_KEYS:
        return f"{int(v):,}"
    if key.endswith("_usdt") or key in ("starting_equity", "final_equity"):
        return f"{v:,.2f} USDT"
    if key.endswith("_s"):
        return f"{duration(v)} ({v:,.0f} s)"
    return f"{v:,.4f}"
