"""Assemble a run's results from the collected tables: fill costs, round trips, equity, portfolio
series, benchmark, liquidations, attribution and metrics. Pure functions of DataFrames and configs
(no engine, no files): the second stage of :mod:`nautilus_app.results` (collect -> assemble -> write).

Equity is rebuilt from the fills, the funding settlements and the bar closes (all in the quote
currency USDT, linear instruments only):

    equity(t) = starting balances + sum over fills <= t of (-signed qty x fill price - commission)
                + sum over funding settlements <= t + sum over instruments of position qty(t) x close(t)

This identity holds for spot (cash and base balances) and USDT-margined perpetuals (balance +
unrealized PnL) alike; a test checks it against Nautilus's final account balance.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pandas as pd

from core.times import to_utc, utc_texts
from nautilus_app import metrics as metrics_mod
from nautilus_app.results.schema import (
    BORROW_COLUMNS,
    EXIT_REASONS,
    LIQUIDATION_COLUMNS,
    QUOTE,
    RISK_COLUMNS,
    TRADE_COLUMNS,
    _amount,
)
from nautilus_app.venue.models import leverage_for, venue_fees

if TYPE_CHECKING:
    from nautilus_app.config import BacktestConfig
    from nautilus_app.run_data import VenueSim

__all__ = ["BORROW_COLUMNS", "EXIT_REASONS", "RISK_COLUMNS", "add_fill_costs", "attribution", "breakdown_frame",
           "build_equity", "build_liquidations", "build_trades", "buy_and_hold", "buy_and_hold_basket",
           "cost_assumptions", "equity_table", "daily_returns_until_wipeout", "exit_reasons", "portfolio_series", "results_digest", "risk_metrics",
           "traded_instruments", "venue_settings"]


#: fields of a venue fill model's record (:class:`nautilus_app.venue.fill_timing.FillRecord`)
_FILL_RECORD_FIELDS = ["client_order_id", "instrument_id", "ts", "side", "kind", "reference_price", "fill_price",
                       "quantity"]


def _raw_fill_records(fill_model: Any) -> list:
    """The fill model's records as tuples (:data:`_FILL_RECORD_FIELDS`), without building an object per fill."""
    raw = getattr(fill_model, "records", None)
    if isinstance(raw, list) and (not raw or isinstance(raw[0], tuple)):
        return raw
    return [tuple(getattr(r, f) for f in _FILL_RECORD_FIELDS) for r in fill_model.fill_records()]


def add_fill_costs(fills: pd.DataFrame, orders: pd.DataFrame, sims: dict[str, VenueSim]) -> pd.DataFrame:
    """Cost columns per fill (all USDT; costs > 0 are paid).

    - ``reference_price``: the price before slippage decided by the venue fill model (the next bar's
      open, the signal bar's close, the stop's trigger...; :mod:`nautilus_app.venue.fill_timing`);
      for fills Nautilus matched itself (limit orders) the fill price.
    - ``slippage_cost``: ``(fill price - reference price) x qty`` for buys, ``(reference - fill) x qty``
      for sells: what slippage cost against the reference.
    - ``is_liquidation``: the order carries the ``LIQUIDATION`` tag.
    - ``liquidation_fee``: on liquidation fills the commission minus the taker fee (``qty x price x taker``),
      i.e. the clearance fee ``min(qty x price x liquidation_fee, margin left)``; else 0.
    - ``trading_fee``: ``commission - liquidation_fee`` (maker/taker fee).
    """
    out = fills.copy(deep=False)  # new columns only: the caller's frame is not changed (a deep copy took ~0.17 s for 26k fills)
    if out.empty:
        for c in ("reference_price", "slippage_cost", "trading_fee", "liquidation_fee"):
            out[c] = pd.Series(dtype=float)
        out["is_liquidation"] = pd.Series(dtype=bool)
        return out
    # the fill model's reference price of each fill, joined on (order, time); the last record of a key wins
    records = [r for sim in sims.values() for r in _raw_fill_records(sim.fill_model)]
    ts_ns = to_utc(out["ts_event"]).astype("int64").to_numpy()
    px = out["last_px"].astype(float).to_numpy()
    if records:
        cid_at, ts_at, ref_at = (_FILL_RECORD_FIELDS.index(k) for k in ("client_order_id", "ts", "reference_price"))
        by_key = {(r[cid_at], r[ts_at]): r[ref_at] for r in records}  # the last record of a key wins
        ref = np.array([by_key.get(k, p) for k, p in zip(
            zip(out["client_order_id"].astype(str).tolist(), ts_ns.tolist(), strict=True), px.tolist(), strict=True)],
            dtype=float)
        ref = np.where(np.isnan(ref), px, ref)
    else:
        ref = px.copy()
    sign = np.where(out["order_side"].astype(str) == "BUY", 1.0, -1.0)
    qty = out["last_qty"].astype(float).to_numpy()
    out["reference_price"] = ref
    out["slippage_cost"] = sign * (px - ref) * qty
    liq_orders: set[str] = set()
    if "tags" in orders.columns:
        tags = orders["tags"]
        has_tags = tags.notna().to_numpy(dtype=bool)  # most orders carry none: only the tagged ones are searched
        tagged = np.zeros(len(tags), dtype=bool)
        tagged[has_tags] = tags[has_tags].astype(str).str.contains("LIQUIDATION", na=False).to_numpy(dtype=bool)
        liq_orders = set(orders["client_order_id"].astype(str).to_numpy()[tagged].tolist())
    out["is_liquidation"] = out["client_order_id"].astype(str).isin(liq_orders)
    iids = out["instrument_id"].astype(str)
    taker_of = {iid: next((venue_fees(s.config)[1] for name, s in sims.items() if iid.endswith("." + name)), 0.0)
                for iid in iids.unique()}
    taker = iids.map(taker_of)
    commission = out["commission"].astype(float).fillna(0.0).to_numpy()
    # a liquidation fill is a taker fill; the rest of its commission is the (capped) clearance fee
    out["liquidation_fee"] = np.where(out["is_liquidation"],
                                      np.maximum(commission - qty * px * taker.astype(float).to_numpy(), 0.0), 0.0)
    out["trading_fee"] = out["commission"].astype(float).fillna(0.0) - out["liquidation_fee"]
    return out


def _utc_times(col: pd.Series) -> pd.Series:
    """A position time column as datetime64[ns, UTC]: datetimes as they are; ISO texts (Nautilus's report
    leaves ``ts_closed`` as text when some positions are open) parsed each as ISO 8601, since whole-second
    ("...08:01:00+00:00") and nanosecond ("...08:00:00.000000001+00:00") times mix in one column."""
    if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
        return pd.to_datetime(col, utc=True, format="ISO8601")
    return to_utc(col)


def build_trades(positions: pd.DataFrame, funding: pd.DataFrame, fills: pd.DataFrame | None = None,
                 marks: dict[str, tuple[pd.Timestamp, float]] | None = None, orders: pd.DataFrame | None = None,
                 last_ts: pd.Timestamp | None = None, trailed: set[str] | None = None) -> pd.DataFrame:
    """Round trips from the normalised positions report (one row per position cycle).

    Columns as :mod:`nautilus_app.metrics` expects: ``instrument_id``, ``strategy_id``, ``side``
    (LONG/SHORT), ``entry_time``, ``exit_time``, ``quantity`` (peak, base units), ``entry_price``,
    ``exit_price``, ``pnl`` (USDT, net of commissions and funding, as Nautilus's realized PnL),
    ``return_frac`` (pnl / entry notional), and the cost breakdown (USDT): ``fees`` (maker/taker
    commissions, paid > 0), ``liquidation_fee`` (clearance fee, paid > 0), ``funding`` (cash flow,
    paid < 0), ``slippage_cost`` (paid > 0), plus ``liquidated`` (closed by a liquidation),
    ``is_open`` and ``unrealized_pnl``. The fills of a cycle are found through the cycle's
    ``trade_ids``; without ``fills`` the fill-based columns are 0 and ``fees`` is the cycle's total
    commission.

    ``marks`` (instrument id -> (time, price) of its last bar close): positions still open at the end
    (a strategy with ``close_positions_on_stop = false``) are kept as trades with ``is_open = True``,
    marked to market at that close: ``exit_time``/``exit_price`` are the mark, ``unrealized_pnl =
    side x open quantity x (mark - avg open price)`` and ``pnl`` = realized so far (entry commissions,
    funding, partial closes) + ``unrealized_pnl`` (no exit fee: nothing was sold). Without ``marks``
    only closed cycles are returned (``is_open`` all False).

    ``exit_reason`` / ``exit_tag`` (:func:`exit_reasons`) from ``orders`` (the normalised orders report),
    ``last_ts`` (the last bar's close) and ``trailed``; without ``orders``: ``end_of_run`` for open
    trades and "" otherwise.
    """
    cols = TRADE_COLUMNS
    if "ts_closed" in positions.columns:
        is_closed = positions["ts_closed"].notna()
        is_open = (~is_closed & (positions["quantity"].astype(float) > 0)
                   & positions["instrument_id"].astype(str).isin(list(marks or {})))
        rows = positions[is_closed | is_open]
        open_flag = is_open[is_closed | is_open].to_numpy()
    else:
        rows, open_flag = positions.iloc[0:0], np.zeros(0, dtype=bool)
    if rows.empty:
        out = pd.DataFrame(columns=cols)
        return out.astype({"is_open": bool, "liquidated": bool, "unrealized_pnl": float})
    fees = _commission_totals(rows["commissions"])
    funding_by_pos = funding.groupby("position_id")["amount"].sum() if not funding.empty else pd.Series(dtype=float)
    iids = rows["instrument_id"].astype(str)
    side_sign = np.where(rows["entry"].astype(str) == "BUY", 1.0, -1.0)
    exit_time = _utc_times(rows["ts_closed"])
    exit_price = rows["avg_px_close"].astype(float)
    unrealized = np.zeros(len(rows))
    if open_flag.any():
        assert marks is not None  # open rows exist only for instruments in marks
        mark_ts = pd.to_datetime(iids.map(lambda i: marks[i][0] if i in marks else pd.NaT), utc=True)
        mark_px = iids.map(lambda i: marks[i][1] if i in marks else np.nan).astype(float)
        opened = _utc_times(rows["ts_opened"])
        exit_time = exit_time.where(~open_flag, mark_ts.where(mark_ts >= opened, opened))
        exit_price = exit_price.where(~open_flag, mark_px)
        unrealized = np.where(open_flag, side_sign * rows["quantity"].astype(float).to_numpy()
                              * (mark_px.to_numpy() - rows["avg_px_open"].astype(float).to_numpy()), 0.0)
    trades = pd.DataFrame({
        "instrument_id": iids,
        "strategy_id": rows["strategy_id"].astype(str),
        "side": np.where(side_sign > 0, "LONG", "SHORT"),
        "entry_time": _utc_times(rows["ts_opened"]),
        "exit_time": exit_time,
        "quantity": rows["peak_qty"].astype(float),
        "entry_price": rows["avg_px_open"].astype(float),
        "exit_price": exit_price,
        "pnl": rows["realized_pnl"].astype(float) + unrealized,
        "fees": fees.astype(float),
        "funding": rows["position_id"].map(funding_by_pos).fillna(0.0).astype(float),
        "_closing_order_id": rows["closing_order_id"].astype(str) if "closing_order_id" in rows else "",
    })
    trades["liquidation_fee"] = 0.0
    trades["slippage_cost"] = 0.0
    trades["liquidated"] = False
    trades["is_open"] = open_flag
    trades["unrealized_pnl"] = unrealized
    if fills is not None and not fills.empty and "trade_ids" in rows.columns:
        by_trade = fills.groupby(fills["trade_id"].astype(str)).agg(
            slip=("slippage_cost", "sum"), liq_fee=("liquidation_fee", "sum"), liq=("is_liquidation", "any"))
        pairs = pd.DataFrame({
            "row": np.arange(len(rows)),
            "tid": _json_string_lists(rows["trade_ids"]),
        }).explode("tid").dropna()
        joined = pairs.join(by_trade, on="tid", how="inner")
        per_row = joined.groupby("row").agg(slip=("slip", "sum"), liq_fee=("liq_fee", "sum"), liq=("liq", "any"))
        per_row = per_row.reindex(np.arange(len(rows)))
        trades["liquidation_fee"] = per_row["liq_fee"].fillna(0.0).to_numpy()
        trades["slippage_cost"] = per_row["slip"].fillna(0.0).to_numpy()
        trades["liquidated"] = per_row["liq"].fillna(False).astype(bool).to_numpy()
        trades["fees"] = trades["fees"] - trades["liquidation_fee"]
    trades["return_frac"] = trades["pnl"] / (trades["quantity"] * trades["entry_price"])
    if orders is not None:
        trades["exit_reason"], trades["exit_tag"] = exit_reasons(trades, orders, last_ts, trailed)
    else:
        trades["exit_reason"] = np.where(trades["is_open"], "end_of_run", "")
        trades["exit_tag"] = ""
    return trades[cols].sort_values("exit_time").reset_index(drop=True)


_TAG_REASONS = (("LIQUIDATION", "liquidation"), ("RISK_TP", "take_profit"), ("RISK_TRAIL", "trailing"),
                ("TRAILING_STOP", "trailing"), ("RISK_STOP", "stop"), ("TIME_STOP", "time"), ("MAX_HOLD", "time"),
                ("END_OF_RUN", "end_of_run"))


def exit_reasons(trades: pd.DataFrame, orders: pd.DataFrame, last_ts: pd.Timestamp | None,
                 trailed: set[str] | None = None) -> tuple[pd.Series, pd.Series]:
    """``(exit_reason, exit_tag)`` per trade, from the order that closed the position.

    ``exit_tag`` = the closing order's tags (e.g. ``WEAK_TREND``, ``RISK_STOP``; "" if none). Reason, first
    match: a ``LIQUIDATION`` tag -> ``liquidation``; ``RISK_TP`` -> ``take_profit``; ``RISK_TRAIL`` /
    ``TRAILING_STOP``, or a ``RISK_STOP`` order a trailing update had moved (``trailed``) -> ``trailing``;
    ``RISK_STOP`` -> ``stop``; ``TIME_STOP`` / ``MAX_HOLD`` -> ``time``; ``END_OF_RUN`` (the strategies'
    ``on_stop`` closes), an untagged close submitted at or after the last bar, or a position still open at
    the end -> ``end_of_run``; anything else (the strategy's own exit signal) -> ``signal``.
    """
    if trades.empty:
        return pd.Series([], dtype=object), pd.Series([], dtype=object)
    trailed = trailed or set()
    # column-wise (no loop per trade): the closing order's tags and submit time, looked up by its id
    cids = trades["_closing_order_id"].astype(str)
    order_ids = orders["client_order_id"].astype(str) if "client_order_id" in orders else pd.Series([], dtype=str)
    if "tags" in orders:
        raw = cids.map(pd.Series(orders["tags"].to_numpy(), index=order_ids.to_numpy()).groupby(level=0).last())
        raw = raw.where(raw.notna(), "")
    else:
        raw = pd.Series("", index=trades.index)
    # the reason of each distinct tag text, then spread to the trades (few distinct tags, many trades)
    texts, inverse = np.unique(raw.astype(str).to_numpy(dtype=object), return_inverse=True)
    tags = pd.Series(texts).str.strip("[]").str.replace('"', "", regex=False).str.replace("'", "", regex=False)
    reasons = np.full(len(texts), None, dtype=object)
    for key, r in reversed(_TAG_REASONS):  # the first matching key wins
        reasons = np.where(tags.str.contains(key, regex=False).to_numpy(), r, reasons)
    tag_np = tags.to_numpy(dtype=object)[inverse]
    reason = reasons[inverse]
    reason = np.where((reason == "stop") & cids.isin(trailed).to_numpy(), "trailing", reason)
    if "ts_init" in orders and last_ts is not None:  # the closing order submitted at or after the last bar
        ts_init = orders["ts_init"]  # ns integers (backtest reports) or timestamps
        ns = (ts_init.to_numpy(dtype=np.int64) if ts_init.dtype.kind in "iu"
              else pd.DatetimeIndex(to_utc(ts_init)).as_unit("ns").asi8)
        submitted = pd.Series(ns, index=order_ids.to_numpy())
        submitted = submitted.groupby(level=0).last()
        at = submitted.index.get_indexer(cids.to_numpy())
        late = (at >= 0) & (submitted.to_numpy()[at] >= last_ts.value)
    else:
        late = np.zeros(len(trades), dtype=bool)
    fallback = np.where((tag_np == "") & late, "end_of_run", "signal")
    reason = np.where(reason == None, fallback, reason)  # noqa: E711 - element-wise on an object array
    reason = np.where(trades["is_open"].to_numpy(dtype=bool), "end_of_run", reason)
    return (pd.Series(reason.astype(object), index=trades.index),
            pd.Series(tag_np, index=trades.index))


def build_liquidations(sims: dict[str, VenueSim], fills: pd.DataFrame) -> pd.DataFrame:
    """One row per liquidation fill: the actor's record joined with its fill.

    Columns: ``ts`` (fill time, UTC), ``venue``, ``instrument_id``, ``strategy_id``, ``position_id``,
    ``client_order_id``, ``side`` (of the position), ``quantity``, ``entry_price``,
    ``liquidation_price`` (the formula's price on the tick grid), ``fill_price``, ``margin_mode``,
    ``margin_balance`` (cross: wallet balance, isolated: position margin; USDT),
    ``liquidation_fee`` (USDT), ``loss`` (USDT lost on the close: ``-(fill - entry) x side x qty``
    plus the clearance fee; > 0 is a loss).
    """
    cols = LIQUIDATION_COLUMNS
    rows = []
    liq_fills = fills[fills["is_liquidation"]] if not fills.empty else fills
    for sim in sims.values():
        if sim.liquidation is None:
            continue
        for r in sim.liquidation.records:
            f = liq_fills[liq_fills["client_order_id"].astype(str) == r.client_order_id]
            if f.empty:
                continue
            qty = float(f["last_qty"].sum())
            fill_px = float((f["last_qty"] * f["last_px"]).sum() / qty)
            fee = float(f["liquidation_fee"].sum())
            side = 1.0 if r.side == "LONG" else -1.0
            rows.append({
                "ts": pd.Timestamp(int(pd.Timestamp(f["ts_event"].iloc[-1]).value), tz="UTC"),
                "venue": r.venue, "instrument_id": r.instrument_id, "strategy_id": r.strategy_id,
                "position_id": r.position_id, "client_order_id": r.client_order_id, "side": r.side,
                "quantity": qty, "entry_price": r.entry_price, "liquidation_price": r.liquidation_price,
                "fill_price": fill_px, "margin_mode": r.margin_mode, "margin_balance": r.wallet_balance,
                "liquidation_fee": fee, "loss": -(fill_px - r.entry_price) * side * qty + fee,
            })
    return pd.DataFrame(rows, columns=cols)


def build_equity(
    cfg: BacktestConfig, fills: pd.DataFrame, funding: pd.DataFrame, closes: dict[str, pd.Series]
) -> tuple[pd.Series, float]:
    """Equity in USDT at every bar close of the run (see the module docstring for the identity).

    Returns:
        (equity series indexed by bar close time, starting equity in USDT = starting balances with
        base-currency balances valued at their instrument's first close). The first sample already
        includes fills on the first bar, so returns are measured from the starting equity.

    Args:
        cfg: Run config (starting balances; base-currency balances are valued at the instrument's close).
        fills: Normalised fills report (``instrument_id``, ``order_side``, ``last_qty``, ``last_px``,
            ``commission``, ``commission_currency``, ``ts_event``).
        funding: :func:`funding_settlements` output.
        closes: Close series per instrument id, indexed by bar close time.

    Raises:
        ValueError: a balance or commission is in a currency that cannot be valued in USDT here.
    """
    series = list(closes.values())
    index = series[0].index
    for other in series[1:]:
        index = index.union(other.index)
    index = pd.DatetimeIndex(index, name="ts")
    equity = np.zeros(len(index))
    start_cash = 0.0
    initial_qty: dict[str, float] = {}
    for v in cfg.venues:
        for bal in v.starting_balances:
            amount, ccy = bal.split()
            if ccy == QUOTE:
                start_cash += float(amount)
                continue
            matches = [iid for iid in closes if iid.endswith(f".{v.name}") and iid.startswith(ccy)
                       and "-PERP" not in iid]
            if not matches:
                raise ValueError(f"starting balance {bal!r} on {v.name}: no {ccy}{QUOTE} spot instrument in the run to value it")
            initial_qty[matches[0]] = initial_qty.get(matches[0], 0.0) + float(amount)
    cash = pd.Series(0.0, index=index)
    if not fills.empty:
        if set(fills["commission_currency"].dropna()) - {QUOTE}:
            raise ValueError(f"commissions in {set(fills['commission_currency'])}: only {QUOTE} is supported")
        sign = np.where(fills["order_side"].astype(str) == "BUY", 1.0, -1.0)
        f = pd.DataFrame({
            "ts": to_utc(fills["ts_event"]),
            "instrument_id": fills["instrument_id"].astype(str),
            "qty": sign * fills["last_qty"].astype(float),
            "cash": -sign * fills["last_qty"].astype(float) * fills["last_px"].astype(float)
            - fills["commission"].astype(float).fillna(0.0),
        }).sort_values("ts", kind="stable")
        cash_cum = f.groupby("ts")["cash"].sum().cumsum()
        cash = cash_cum.reindex(index, method="ffill").fillna(0.0)
    else:
        f = pd.DataFrame(columns=["ts", "instrument_id", "qty", "cash"])
    if not funding.empty:
        fund_cum = funding.groupby("ts")["amount"].sum().cumsum()
        cash = cash + fund_cum.reindex(index, method="ffill").fillna(0.0)
    equity += start_cash + cash.to_numpy()
    for iid, close in closes.items():
        px = close.reindex(index, method="ffill").to_numpy()
        fi = f[f["instrument_id"] == iid]
        qty = np.full(len(index), initial_qty.get(iid, 0.0))
        if not fi.empty:
            qcum = fi.groupby("ts")["qty"].sum().cumsum()
            qty = qty + qcum.reindex(index, method="ffill").fillna(0.0).to_numpy()
        held = np.nan_to_num(qty * px)  # before an instrument's first bar it is not held
        equity += held
    start_equity = start_cash + sum(q * float(closes[iid].iloc[0]) for iid, q in initial_qty.items())
    return pd.Series(equity, index=index, name="equity"), start_equity


#: the ``equity.parquet`` columns after ``ts``; the last five are :func:`portfolio_series`'s
EQUITY_TABLE_COLUMNS = ["equity", "benchmark_equity", "drawdown", "cash", "unrealized_pnl", "margin_used",
                        "gross_exposure", "leverage"]


def equity_table(cfg: BacktestConfig, fills: pd.DataFrame, closes: dict[str, pd.Series], equity: pd.Series,
                 bench: pd.Series, start_equity: float) -> pd.DataFrame:
    """The ``equity.parquet`` frame: ``ts`` then :data:`EQUITY_TABLE_COLUMNS` at every bar close.

    ``benchmark_equity = bench x start_equity``, ``drawdown = equity / running max - 1`` and the
    :func:`portfolio_series` columns, computed in place into one float64 block (no per-column frame,
    join or ``reset_index`` copy of the per-bar data): the same values as building them as Series.
    """
    block = np.empty((len(EQUITY_TABLE_COLUMNS), len(equity)))
    eq = block[0]
    eq[:] = equity.to_numpy(dtype=float)
    np.multiply(bench.to_numpy(dtype=float), start_equity, out=block[1])
    np.maximum.accumulate(eq, out=block[2])
    np.divide(eq, block[2], out=block[2])
    block[2] -= 1.0
    _portfolio_into(cfg, fills, closes, equity.index, eq, block[3:])
    frame = pd.DataFrame(block.T, columns=EQUITY_TABLE_COLUMNS, copy=False)
    frame.insert(0, "ts", equity.index)
    return frame


def portfolio_series(cfg: BacktestConfig, fills: pd.DataFrame, closes: dict[str, pd.Series],
                     equity: pd.Series) -> pd.DataFrame:
    """Cash, unrealized PnL, margin used, gross exposure and leverage at every bar close (USDT).

    Positions are tracked per (instrument, strategy) from the fills (netting: average entry price of
    the open quantity, reset on a flip) and marked at each bar close:

    - ``gross_exposure`` = sum of ``|qty| x close`` over every position (spot and perpetual);
    - ``unrealized_pnl`` = sum over perpetual positions of ``qty x (close - average entry price)``;
    - ``cash`` = ``equity - spot holdings x close - unrealized_pnl``: the USDT balance (spot: the quote
      balance; perpetuals: the wallet balance, realized PnL, fees and funding included), as
      platform-tech-spec.md's "FUTURES: value = cash + unrealized PnL, SPOT: value = cash + positions";
    - ``margin_used`` = sum over perpetual positions of ``|qty| x close / leverage`` (the instrument's
      leverage on its venue): initial margin at the mark;
    - ``leverage`` = ``gross_exposure / equity`` (NaN where equity <= 0).
    """
    block = np.empty((5, len(equity)))
    _portfolio_into(cfg, fills, closes, equity.index, equity.to_numpy(dtype=float), block)
    return pd.DataFrame(block.T, columns=EQUITY_TABLE_COLUMNS[3:], index=equity.index, copy=False)


def _portfolio_into(cfg: BacktestConfig, fills: pd.DataFrame, closes: dict[str, pd.Series], index: pd.DatetimeIndex,
                    eq: np.ndarray, out: np.ndarray) -> None:
    """:func:`portfolio_series`'s columns (cash, unrealized_pnl, margin_used, gross_exposure, leverage)
    written into the rows of ``out`` (shape (5, len(index)))."""
    out[1:4] = 0.0
    upnl, margin, gross = out[1], out[2], out[3]
    spot_value = np.zeros(len(index))
    lev_of = {}
    for v in cfg.venues:
        for iid in closes:
            if iid.endswith("." + v.name):
                lev_of[iid] = leverage_for(v, iid)
    if not fills.empty:
        f = pd.DataFrame({
            "ts": to_utc(fills["ts_event"]),
            "iid": fills["instrument_id"].astype(str),
            "sid": fills["strategy_id"].astype(str) if "strategy_id" in fills else "",
            "dq": np.where(fills["order_side"].astype(str) == "BUY", 1.0, -1.0) * fills["last_qty"].astype(float),
            "px": fills["last_px"].astype(float),
        }).sort_values("ts", kind="stable")
        for (iid, _sid), g in f.groupby(["iid", "sid"], sort=False):
            if iid not in closes:
                continue
            q = avg = 0.0
            qs, avgs = [], []
            for dq, px in zip(g["dq"].to_numpy(), g["px"].to_numpy(), strict=True):
                if q == 0.0 or (q > 0) == (dq > 0):
                    avg = (avg * abs(q) + px * abs(dq)) / (abs(q) + abs(dq))
                    q += dq
                elif abs(dq) <= abs(q) + 1e-12:
                    q += dq
                    if abs(q) < 1e-12:
                        q = avg = 0.0
                else:  # flip
                    q += dq
                    avg = px
                qs.append(q)
                avgs.append(avg)
            state = pd.DataFrame({"q": qs, "avg": avgs}, index=g["ts"]).groupby(level=0).last()
            # state.reindex(index, method="ffill").fillna(0.0), one position array for both columns
            at = state.index.get_indexer(index, method="ffill")
            missing = at < 0
            qv = state["q"].to_numpy()[at]
            qv[missing] = 0.0
            av = state["avg"].to_numpy()[at]
            av[missing] = 0.0
            del at, missing
            px = closes[iid].reindex(index, method="ffill").to_numpy()
            notional = np.nan_to_num(np.abs(qv) * px)
            gross += notional
            if "-PERP" in iid:
                upnl += np.nan_to_num(qv * (px - av))
                margin += notional / lev_of.get(iid, 1.0)
            else:
                spot_value += np.nan_to_num(qv * px)
    positive = eq > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out[4] = np.where(positive, gross / np.where(positive, eq, 1.0), np.nan)
    np.subtract(eq, spot_value, out=out[0])
    out[0] -= upnl


def buy_and_hold(close: pd.Series, taker_fee: float) -> pd.Series:
    """Benchmark equity as a multiple of the start: buy at the first close, value at each close, sell at the end.

    ``benchmark(t) = (1 - taker_fee) x close(t) / close(0)``, with a second ``(1 - taker_fee)`` on the
    last point for the exit fill; so the benchmark return is ``(1-f)^2 x last / first - 1``.
    """
    bench = (1.0 - taker_fee) * close / close.iloc[0]
    bench.iloc[-1] *= 1.0 - taker_fee
    return bench


def buy_and_hold_basket(
    closes: dict[str, pd.Series], taker_fees: dict[str, float], index: pd.DatetimeIndex
) -> tuple[pd.Series, dict[str, float]]:
    """Equal-weight buy-and-hold basket of several instruments, as a multiple of the start.

    The starting equity is split equally over the ``N`` instruments of ``closes``; each sleeve is
    :func:`buy_and_hold` of its instrument with that instrument's taker fee (bought at its first close,
    sold at its last), held as cash (1.0) before its first bar and carried forward after its last;
    nothing is rebalanced. ``basket(t) = mean_i sleeve_i(t)``, so the basket return is the mean of
    the instruments' own buy-and-hold returns. With one instrument it is that instrument's benchmark.

    Returns:
        (basket on ``index``, ``{instrument id: own buy-and-hold return (fraction)}``).
    """
    sleeves = {}
    returns = {}
    for iid, close in closes.items():
        own = buy_and_hold(close, taker_fees[iid])
        returns[iid] = float(own.iloc[-1] - 1.0)
        sleeves[iid] = own.reindex(index, method="ffill").fillna(1.0).to_numpy()
    basket = np.mean(np.vstack(list(sleeves.values())), axis=0)
    return pd.Series(basket, index=index, name="benchmark"), returns


def traded_instruments(cfg: BacktestConfig, closes: dict[str, pd.Series]) -> list[str]:
    """Instruments the run's strategies trade (their ``instrument_id`` params) that have bars in the
    run, in bar-type order; all instruments with bars if no strategy names one."""
    named = {str(s.params.get("instrument_id")) for s in cfg.strategies if s.params.get("instrument_id")}
    traded = [iid for iid in closes if iid in named]
    return traded or list(closes)


def risk_metrics(records: pd.DataFrame) -> dict[str, Any]:
    """``risk_refusals`` / ``risk_reductions`` (count per reason) and ``risk_events`` (count per action)."""
    refused = records[records["action"] == "refused"]
    reduced = records[records["action"] == "reduced"]
    events = records[~records["action"].isin(["refused", "reduced"])]
    return {
        "risk_refusals": {str(k): int(v) for k, v in refused["reason"].value_counts().sort_index().items()},
        "risk_refusals_total": len(refused),
        "risk_reductions": {str(k): int(v) for k, v in reduced["reason"].value_counts().sort_index().items()},
        "risk_events": {str(k): int(v) for k, v in events["action"].value_counts().sort_index().items()},
    }


def _as_text(col: pd.Series) -> pd.Series:
    """``col.astype(str)``; UTC times by :func:`core.times.utc_texts` (whole seconds formatted by numpy;
    ``str(Timestamp)`` per element took 32 ms for 5,692 fill times against 5 ms), the others as pandas does."""
    if not (isinstance(col.dtype, pd.DatetimeTZDtype) and str(col.dtype.tz) == "UTC"):
        return col.astype(str)
    text = utc_texts(pd.DatetimeIndex(col).as_unit("ns").asi8)
    text[col.isna().to_numpy()] = "NaT"
    return pd.Series(text, index=col.index, name=col.name)


def _csv_text(columns: dict[str, list[str]]) -> str:
    """``pd.DataFrame(columns).to_csv(index=False)`` for columns of texts. Joined directly when no text needs
    CSV quoting (no comma, quote or line break, none empty; the usual case: ~0.02 s against to_csv's 0.16 s
    for 26,020 fills), else written by pandas."""
    texts = list(columns.values())

    def plain(col: list[str]) -> bool:
        joined = "\x00".join(col)
        return all(col) and not any(ch in joined for ch in (",", '"', "\n", "\r"))

    if len(texts) < 2 or not all(plain(col) for col in texts):
        return pd.DataFrame(columns).to_csv(index=False)
    lines = [",".join(columns), *(",".join(row) for row in zip(*texts, strict=True))]
    return "\n".join(lines) + "\n"


def _hash_frame(df: pd.DataFrame, cols: list[str]) -> str:
    present = [c for c in cols if c in df.columns]
    payload = _csv_text({c: _as_text(df[c]).tolist() for c in present}).encode()
    return hashlib.sha256(payload).hexdigest()


def results_digest(fills: pd.DataFrame, metrics: dict) -> str:
    """sha256 over every fill (time, instrument, side, qty, price, commission) and all metrics.

    The golden regression tests pin this value per reference run: any change to results shows up.
    """
    h = hashlib.sha256()
    h.update(_hash_frame(fills, ["ts_event", "instrument_id", "order_side", "last_qty", "last_px", "commission"]).encode())
    h.update(json.dumps(metrics, sort_keys=True, default=str).encode())
    return h.hexdigest()


def attribution(strategy_ids: list[str], cfg: BacktestConfig, trades: pd.DataFrame, borrowing: pd.DataFrame | None,
                metrics: dict, bench_by_iid: dict[str, float]) -> tuple[list[dict], list[dict]]:
    """Per-strategy and per-instrument results (:func:`nautilus_app.metrics.group_breakdown`): the
    ``by_strategy`` / ``by_instrument`` records of ``metrics.json`` (also written as Parquet).

    Every strategy of the run (``strategy_ids``) and every instrument with bars in the run gets a record, with or
    without trades; ``by_instrument`` records also carry the instrument's own ``buy_and_hold_return``
    (``None`` for an instrument outside the benchmark basket).
    """
    from nautilus_trader.model import BarType

    common = dict(starting_equity=metrics["starting_equity"], start=pd.Timestamp(metrics["start"]),
                  end=pd.Timestamp(metrics["end"]), borrowing=borrowing)
    strategies = sorted(strategy_ids)
    instruments = list(dict.fromkeys(str(BarType.from_str(bt).instrument_id) for bt in cfg.bar_types))
    by_strategy = metrics_mod.group_breakdown(trades, "strategy_id", groups=strategies, **common)
    by_instrument = metrics_mod.group_breakdown(trades, "instrument_id", groups=instruments, **common)
    for rec in by_instrument:
        rec["buy_and_hold_return"] = metrics_mod.json_safe(bench_by_iid.get(rec["instrument_id"]))
    return by_strategy, by_instrument


def breakdown_frame(records: list[dict], key: str) -> pd.DataFrame:
    """``by_strategy`` / ``by_instrument`` records as a frame for Parquet (``None`` -> NaN in float columns)."""
    cols = [key, *metrics_mod.BREAKDOWN_KEYS] + (["buy_and_hold_return"] if key == "instrument_id" else [])
    frame = pd.DataFrame(records, columns=cols)
    for c in cols[1:]:
        if c in ("trades", "open_trades", "wins", "losses"):
            frame[c] = frame[c].astype("int64")
        else:
            frame[c] = frame[c].astype("float64")
    return frame


def venue_settings(sim: VenueSim) -> dict[str, Any]:
    """The simulated-exchange settings of one venue as recorded in ``run.json``."""
    v = sim.config
    maker, taker = venue_fees(v)
    out: dict[str, Any] = {
        "fill_timing": v.fill_timing, "slippage": {
            "kind": v.slippage, "base_bps": v.slippage_bps, "impact_bps": v.slippage_impact_bps,
            "max_bps": v.slippage_max_bps},
        "maker_fee": maker, "taker_fee": taker, "fee_tier": v.fee_tier,
        "latency": None if v.latency is None else msgspec.structs.asdict(v.latency),
    }
    if v.account_type == "MARGIN":
        out.update({"margin_mode": v.margin_mode, "liquidation": v.liquidation, "liquidation_fee": v.liquidation_fee,
                    "max_leverage": v.max_leverage,
                    "brackets": None if sim.liquidation is None else {
                        iid: [[b.floor, b.cap, b.mmr, b.cum, b.max_leverage] for b in br]
                        for iid, br in sim.liquidation.brackets.items()}})
    return out


def cost_assumptions(v: Any) -> str:
    """One line saying which execution costs a venue simulated (``metrics.json`` ``costs``, the summary)."""
    maker, taker = venue_fees(v)
    fee = f"fees maker {maker * 100:.3g} % / taker {taker * 100:.3g} %" if (maker or taker) else "no fees"
    if v.slippage == "none":
        slip = "no slippage"
    elif v.slippage == "fixed":
        slip = f"slippage {v.slippage_bps:g} bps"
    else:
        slip = (f"slippage {v.slippage_bps:g} bps + {v.slippage_impact_bps:g} bps x sqrt(qty / 1m bar volume), "
                f"max {v.slippage_max_bps:g}")
    lat = v.latency
    lat_s = "no latency" if lat is None else (
        f"latency {lat.mean_ms:g}+-{lat.std_ms:g} ms (min {lat.min_ms:g}, {lat.spike_probability * 100:g} % "
        f"spikes x{lat.spike_multiplier:g})")
    return f"{v.costs}: {fee}, {slip}, {lat_s}, fills at {v.fill_timing.replace('_', ' ')}"


def daily_returns_until_wipeout(equity: pd.Series, starting_equity: float) -> pd.Series:
    """Daily returns of the equity curve; after a day that closes at or below zero (an account wiped
    out by losses and liquidation fees) the remaining days' returns are 0 and the wipe-out day is -100 %.
    """
    if (equity > 0).all():
        return metrics_mod.daily_returns(equity, starting_equity=starting_equity)
    first_bad = equity.index[(equity <= 0).to_numpy()][0]
    alive = equity[equity.index.floor("D") < first_bad.floor("D")]
    days = pd.date_range(equity.index[0].floor("D"), equity.index[-1].floor("D"), freq="D")
    out = pd.Series(0.0, index=days, name="daily_return")
    if len(alive):
        before = metrics_mod.daily_returns(alive, starting_equity=starting_equity)
        out.loc[before.index] = before.to_numpy()
    out.loc[first_bad.floor("D")] = -1.0
    return out


def session_metrics(equity: pd.Series, trades: pd.DataFrame, fills: pd.DataFrame, funding: pd.DataFrame, *,
                    starting_equity: float, bench: pd.Series | None = None) -> tuple[dict, pd.DataFrame]:
    """Metrics and the equity frame of a paper or live session (``metrics.json``, ``equity.parquet``).

    ``equity``: the session's equity samples (USDT); ``bench``: the buy-and-hold benchmark as a multiple
    of the start on the same index (None: no benchmark, return 0). Fees are the fills' commissions,
    funding paid the negated funding ledger.
    """
    fees_paid = float(fills["commission"].sum()) if not fills.empty and "commission" in fills.columns else 0.0
    funding_paid = -float(funding["amount"].sum()) if not funding.empty else 0.0
    metrics = metrics_mod.compute_metrics(
        equity, trades, fees_paid=fees_paid, funding_paid=funding_paid,
        buy_and_hold_return=0.0 if bench is None else float(bench.iloc[-1] - 1.0), starting_equity=starting_equity,
    )
    eq = pd.DataFrame({"equity": equity} if bench is None else
                      {"equity": equity, "benchmark_equity": bench * starting_equity})
    eq["drawdown"] = equity / equity.cummax() - 1.0
    return metrics, eq.reset_index().rename(columns={"index": "ts"})


def _json_string_lists(values: pd.Series) -> list[list[str]]:
    """JSON lists of strings (``'["a", "b"]'``, as the reports write id lists) -> lists of str. Plain lists
    are split as text (no JSON decoder per row); values with escapes, None or non-strings use ``json.loads``."""
    def parse(v: Any) -> list[str]:
        if type(v) is str and v.startswith('["') and v.endswith('"]') and "\\" not in v:
            return v[2:-2].split('", "')
        if v == "[]" or v is None or v == "" or (isinstance(v, float) and v != v):  # empty, None or NaN
            return []
        return [str(t) for t in (json.loads(v) if isinstance(v, str) else (v or []))]

    return list(map(parse, values.tolist()))


def _commission_totals(values: pd.Series) -> pd.Series:
    """Sum of each row's commissions (a JSON list of ``"1.5 USDT"`` strings; "" / None -> 0.0), as
    ``sum(amount of each)``; a single commission (the usual case) is read directly."""
    lists = _json_string_lists(values)
    total = np.fromiter((float(lst[0].partition(" ")[0]) if len(lst) == 1 else sum(_amount(m) for m in lst)
                         for lst in lists), dtype=float, count=len(lists))
    return pd.Series(total, index=values.index)
