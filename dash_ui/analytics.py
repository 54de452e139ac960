"""Derived series and numbers of one run for the detail page, computed from the results files only.

- :func:`headline` : excess return over the benchmark, costs as a share of the starting equity, the span
  the annualised numbers come from.
- :func:`strategy_cum_pnl` : cumulative net PnL per strategy at each trade's exit (``trades.parquet``).
- :func:`margin_series` : gross notional, leverage, margin used and cumulative funding over time of a
  margin / perpetual run. The equity series' own ``leverage`` / ``margin_used`` / ``cash`` columns are
  used when the run wrote them; otherwise they are derived from the trades and the run's bars (formula in
  docs/dash.md) and labelled "derived".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns of equity.parquet written by newer runs (first present wins).
LEVERAGE_COLS = ("leverage", "gross_leverage")
MARGIN_COLS = ("margin_used", "margin", "margin_used_usdt", "initial_margin")
CASH_COLS = ("cash", "cash_usdt", "balance")


def _f(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def total_costs(metrics: dict, cost_lines: list[dict] | None = None) -> float | None:
    """``total_costs_usdt`` of metrics.json, else the sum of the recorded cost lines (None if none)."""
    v = _f(metrics.get("total_costs_usdt"))
    if v is not None:
        return v
    vals = [c["usdt"] for c in (cost_lines or []) if c.get("usdt") is not None]
    return float(sum(vals)) if vals else None


def headline(metrics: dict, cost_lines: list[dict] | None = None) -> dict:
    """``excess_return`` = total_return - buy_and_hold_return (fractions, None if either is missing);
    ``costs_pct_of_start`` = total costs / starting equity; ``span_days``; ``annualised_note``: the text
    shown beside annualised numbers (CAGR, volatility, Sharpe) of a run shorter than a year."""
    tr, bh = _f(metrics.get("total_return")), _f(metrics.get("buy_and_hold_return"))
    start = _f(metrics.get("starting_equity"))
    costs = total_costs(metrics, cost_lines)
    span = _f(metrics.get("span_days"))
    note = None
    if span is not None and span < 365:
        note = f"annualised from {span:,.1f} days" if span >= 1 else "run shorter than a day: not annualised"
    return {"excess_return": None if tr is None or bh is None else tr - bh,
            "costs_pct_of_start": None if costs is None or not start else costs / start,
            "span_days": span, "annualised_note": note}


def strategy_cum_pnl(trades: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{strategy_id: (exit times ns, cumulative pnl USDT)}`` in exit order (ties by entry time); open
    trades count at their mark (``exit_time`` = last close), as in ``by_strategy``."""
    if trades.empty or "pnl" not in trades.columns:
        return {}
    t = trades.sort_values(["exit_time", "entry_time"], kind="stable")
    key = t["strategy_id"].astype(str) if "strategy_id" in t.columns else pd.Series("all", index=t.index)
    out = {}
    for sid, g in t.groupby(key, sort=True):
        out[str(sid)] = (g["exit_time"].astype("int64").to_numpy(), g["pnl"].astype(float).cumsum().to_numpy())
    return out


def is_margin_run(run) -> bool:
    """A run with a MARGIN venue or perpetual instruments (leverage / margin / funding matter)."""
    venues = run.config.get("venues") or []
    if any(str(v.get("account_type", "")).upper() == "MARGIN" for v in venues):
        return True
    return any("-PERP." in bt for bt in run.bar_types())


def _leverage_of(config: dict, instrument_id: str) -> float:
    venue = instrument_id.rpartition(".")[2]
    for v in config.get("venues") or []:
        if v.get("name") == venue:
            lev = (v.get("leverages") or {}).get(instrument_id, v.get("default_leverage", 1.0))
            return float(lev or 1.0)
    return 1.0


def position_qty(trades: pd.DataFrame, instrument_id: str, ts: np.ndarray) -> np.ndarray:
    """Signed quantity held of ``instrument_id`` at each time of ``ts`` (int64 ns): the sum over its trades
    with ``entry_time <= t < exit_time`` of ``+quantity`` (LONG) / ``-quantity`` (SHORT); open trades
    until the end."""
    t = trades[trades["instrument_id"].astype(str) == instrument_id] if "instrument_id" in trades.columns else trades
    if t.empty:
        return np.zeros(ts.size)
    sign = np.where(t["side"].astype(str).str.upper() == "SHORT", -1.0, 1.0)
    q = sign * t["quantity"].astype(float).to_numpy()
    e = t["entry_time"].astype("int64").to_numpy()
    x = t["exit_time"].astype("int64").to_numpy()
    if "is_open" in t.columns:
        x = np.where(t["is_open"].astype(bool).to_numpy(), np.iinfo(np.int64).max, x)
    times = np.r_[e, x]
    deltas = np.r_[q, -q]
    order = np.argsort(times, kind="stable")
    cum = np.cumsum(deltas[order])
    idx = np.searchsorted(times[order], ts, side="right") - 1
    return np.where(idx >= 0, cum[np.clip(idx, 0, None)], 0.0)


def margin_series(run, catalog_root) -> dict[str, np.ndarray] | None:
    """Time series of a margin / perpetual run at every equity sample: ``ts`` (ns), ``equity``,
    ``gross_notional`` (sum over instruments of |qty held| x that instrument's last bar close, USDT),
    ``leverage`` (gross notional / equity), ``margin_used`` (sum of |notional| / the instrument's configured
    leverage, USDT), ``funding_cum`` (funding paid so far, paid > 0, from funding.parquet) and ``source``
    ("recorded" when equity.parquet has the columns, else "derived"). None for spot/CASH runs."""
    if not is_margin_run(run):
        return None
    from dash_ui import market

    a = run.equity_arrays()
    ts = a["ts"]
    out: dict[str, np.ndarray] = {"ts": ts, "equity": a["equity"]}
    eq = run.equity()
    lev_col = next((c for c in LEVERAGE_COLS if c in eq.columns), None)
    mar_col = next((c for c in MARGIN_COLS if c in eq.columns), None)
    if lev_col and mar_col:
        out["leverage"] = eq[lev_col].astype(float).to_numpy()
        out["margin_used"] = eq[mar_col].astype(float).to_numpy()
        out["gross_notional"] = out["leverage"] * a["equity"]
        out["source"] = np.array(["recorded"])
    else:
        trades = run.trades()
        gross = np.zeros(ts.size)
        margin = np.zeros(ts.size)
        for bt in run.bar_types():
            from catalog.inventory import bar_instrument_id

            iid = bar_instrument_id(bt)
            if trades.empty:
                continue
            qty = position_qty(trades, iid, ts)
            if not np.any(qty):
                continue
            bars = market.BARS.get(run.catalog_root(catalog_root), bt)
            if bars["ts"].size == 0:
                continue
            i = np.clip(np.searchsorted(bars["ts"], ts, side="right") - 1, 0, None)
            notional = np.abs(qty) * bars["close"][i]
            gross += notional
            margin += notional / _leverage_of(run.config, iid)
        out["gross_notional"] = gross
        with np.errstate(divide="ignore", invalid="ignore"):
            out["leverage"] = np.where(a["equity"] > 0, gross / a["equity"], np.nan)
        out["margin_used"] = margin
        out["source"] = np.array(["derived"])
    f = run.funding()
    if not f.empty and "amount" in f.columns:
        f = f.sort_values("ts", kind="stable")
        fts = f["ts"].astype("int64").to_numpy()
        paid = -f["amount"].astype(float).cumsum().to_numpy()
        i = np.searchsorted(fts, ts, side="right") - 1
        out["funding_cum"] = np.where(i >= 0, paid[np.clip(i, 0, None)], 0.0)
    else:
        out["funding_cum"] = np.zeros(ts.size)
    return out
