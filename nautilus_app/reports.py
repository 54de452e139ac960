"""The orders, fills, positions and account tables of a finished run, built from the engine's cache.

Same columns, dtypes, row order and values as ``normalise_report(engine.generate_*_report())``
(Nautilus's ``ReportProvider`` followed by :func:`nautilus_app.results.normalise_report`), which
stays the reference: ``tests/test_reports.py`` compares every table of real runs with it, value by value.
What is cheaper here (issue 23: results writing took longer than the engine on long runs):

- rows are sorted once on their key (``client_order_id``, ``(ts_opened, ts_closed, position_id)``) with the
  same pandas sort, and the frame is built once in that order (Nautilus builds, sorts and copies);
- timestamps are converted as whole columns, not one ``pd.Timestamp`` per row;
- positions are read from their attributes; ``Position.to_dict`` serialises every fill event of every
  snapshot (about 150 us per position on a NETTING run: most of the old positions report), and the
  positions report drops those events anyway;
- the normalisation decides each column's kind from its first non-null value as before, then converts
  with column-wide calls (``Money`` strings are split with ``str.partition``, not ``str.split(expand)``).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from pandas._libs import lib
from pandas.core.internals.construction import convert_object_array

from nautilus_app.results import _MONEY, _NUMBER

__all__ = ["account_frame", "fills_frame", "funding_frame", "orders_frame", "positions_frame", "run_reports"]


_JSON = json.JSONEncoder(default=str)  # what json.dumps(v, default=str) builds on every call
_UNSAFE = re.compile(r'[^ !#-\[\]-~]')  # characters json.dumps would escape (ensure_ascii) or quote


def _json_or_none(v: Any) -> str | None:
    """``json.dumps(v, default=str)``; a list of plain ASCII strings (ids, money) joined directly."""
    if v is None:
        return None
    if type(v) is list and all(type(x) is str for x in v):
        text = '", "'.join(v)
        if not _UNSAFE.search(text):
            return f'["{text}"]' if v else "[]"
    return _JSON.encode(v)


def _normalise_column(col: str, values: np.ndarray, out: dict[str, Any], currencies: dict[str, Any]) -> None:
    """One column of :func:`nautilus_app.results.normalise_report`: ``values`` is the object column as
    Nautilus's report frame holds it before pandas' type inference (which is applied here first)."""
    arr = convert_object_array([values], dtype=None)[0]
    if arr.dtype != object:  # numbers, bools, timestamps: normalise_report leaves them alone
        out[col] = arr
        return
    isna = pd.isna(arr)
    if isna.all():
        out[col] = pd.array(arr, dtype="string")
        return
    notna = ~isna
    first = arr[int(np.argmax(notna))]
    if isinstance(first, (list, dict, tuple)):
        out[col] = np.array([_json_or_none(v) for v in arr.tolist()], dtype=object)
        return
    text = str(first)
    plain = set(map(type, arr[notna].tolist())) == {str}
    if _NUMBER.fullmatch(text):
        # normalise_report: pd.to_numeric(s.astype(str)); None -> "None" -> NaN either way
        numeric = pd.to_numeric(arr if plain else arr.astype(str), errors="coerce")
        if not np.isnan(numeric[notna].astype(float)).any():
            out[col] = numeric
            return
    elif _MONEY.fullmatch(text):
        parts = [str(v).partition(" ") for v in arr.tolist()]
        amount = pd.to_numeric(np.array([p[0] for p in parts], dtype=object), errors="coerce")
        if not np.isnan(amount[notna].astype(float)).any():
            out[col] = amount
            currencies[f"{col}_currency"] = np.array([p[2] if p[1] else None for p in parts], dtype=object)
            return
    if plain:
        out[col] = np.where(notna, arr, None) if isna.any() else arr
    else:
        out[col] = np.array([str(v) if ok else None for v, ok in zip(arr.tolist(), notna.tolist(), strict=True)],
                            dtype=object)


def _build(rows: list[dict], keys: list[str], index_col: str, extra: dict[str, Any] | None = None,
           drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """Nautilus's report of ``rows`` (already in report order), ``index_col`` first, then normalised.

    ``extra``: columns replaced before normalising (e.g. timestamps); ``drop``: columns removed.
    """
    content = lib.dicts_to_array(rows, keys)
    out: dict[str, Any] = {}
    currencies: dict[str, Any] = {}
    order = [index_col] + [k for k in keys if k != index_col and k not in drop]
    for col in order:
        if extra and col in extra:
            out[col] = extra[col]
            continue
        _normalise_column(col, content[:, keys.index(col)], out, currencies)
    out.update(currencies)
    return pd.DataFrame(out, copy=False)


def _keys(rows: list[dict], same_schema: bool = False) -> list[str]:
    """Column names as pandas derives them from a list of dicts (first-seen order over all rows);
    ``same_schema``: every row has the first row's keys (one event type)."""
    if same_schema:
        return list(rows[0])
    return list(lib.fast_unique_multiple_list_gen((list(r) for r in rows), sort=False))


def _sort_permutation(keys: list[Any], dtype: Any = object) -> list[int]:
    """Row order of ``DataFrame.set_index(key).sort_index()`` (the same pandas sort on the same keys)."""
    order = pd.Series(np.arange(len(keys)), index=pd.Index(keys, dtype=dtype)).sort_index()
    return order.to_numpy().tolist()


def _utc(ns: list[int | None]) -> pd.DatetimeIndex:
    """Nautilus's ``_ns_to_dt(ts or 0)`` for a whole column (datetime64[ns, UTC])."""
    return pd.to_datetime(np.array([t or 0 for t in ns], dtype=np.int64), utc=True)


def orders_frame(cache: Any, orders: list[Any] | None = None) -> pd.DataFrame:
    """``normalise_report(engine.generate_orders_report())``."""
    orders = cache.orders() if orders is None else orders
    if not orders:
        return _old_normalise(pd.DataFrame())
    rows = [o.to_dict() for o in orders]
    rows = [rows[i] for i in _sort_permutation([r["client_order_id"] for r in rows])]
    return _build(rows, _keys(rows, same_schema=len({type(o) for o in orders}) == 1), "client_order_id")


def fills_frame(cache: Any, orders: list[Any] | None = None) -> pd.DataFrame:
    """``normalise_report(engine.generate_fills_report())`` (one row per ``OrderFilled``)."""
    from nautilus_trader.model import OrderFilled

    orders = cache.orders() if orders is None else orders
    rows = [e.to_dict() for o in orders for e in o.events() if isinstance(e, OrderFilled)]
    if not rows:
        return _old_normalise(pd.DataFrame())
    rows = [rows[i] for i in _sort_permutation([r["client_order_id"] for r in rows])]
    extra = {"ts_event": _utc([r["ts_event"] for r in rows]), "ts_init": _utc([r["ts_init"] for r in rows])}
    return _build(rows, _keys(rows, same_schema=True), "client_order_id", extra, drop=("type",))


def _qty_str(total: Decimal, precision: int) -> str:
    return f"{total:.{precision}f}"


def _position_row(p: Any) -> dict[str, Any]:
    """The fields of ``Position.to_dict()`` the positions report keeps, read from the attributes."""
    prec = p.size_precision
    buy = sell = Decimal(0)
    for e in p.events():
        q = Decimal(str(e.last_qty))
        if e.order_side.name == "BUY":
            buy += q
        else:
            sell += q
    closing = p.closing_order_id
    ts_closed = p.ts_closed
    return {
        "type": "Position",
        "trader_id": p.trader_id.value,
        "strategy_id": p.strategy_id.value,
        "instrument_id": p.instrument_id.value,
        "position_id": p.id.value,
        "account_id": p.account_id.value,
        "opening_order_id": p.opening_order_id.value,
        "closing_order_id": None if closing is None else closing.value,
        "entry": p.entry.name,
        "side": p.side.name,
        "quantity": str(p.quantity),
        "peak_qty": str(p.peak_qty),
        "price_precision": p.price_precision,
        "size_precision": prec,
        "multiplier": str(p.multiplier),
        "is_inverse": p.is_inverse,
        "ts_init": p.ts_init,
        "ts_opened": p.ts_opened,
        "ts_last": p.ts_last,
        "ts_closed": ts_closed if ts_closed else None,
        "duration_ns": p.duration_ns,
        "avg_px_open": p.avg_px_open,
        "avg_px_close": p.avg_px_close if ts_closed else p.avg_px_close or None,
        "realized_return": p.realized_return,
        "realized_pnl": None if p.realized_pnl is None else str(p.realized_pnl),
        "venue_order_ids": [v.value for v in p.venue_order_ids()],
        "trade_ids": [t.value for t in p.trade_ids()],
        "buy_qty": _qty_str(buy, prec),
        "sell_qty": _qty_str(sell, prec),
        "commissions": [str(m) for m in p.commissions()],
    }


def _positions_sorted(cache: Any) -> tuple[list[Any], list[dict], list[bool]]:
    """Positions and snapshots in the positions report's order, their rows and snapshot flags."""
    live = list(cache.positions())
    snaps = list(cache.position_snapshots())
    objs = live + snaps
    rows = [_position_row(p) for p in objs]
    snapshot_ids = {p.id.value for p in snaps}
    if not rows:
        return [], [], []
    keys = pd.DataFrame({"ts_opened": [r["ts_opened"] for r in rows], "ts_closed": [r["ts_closed"] for r in rows],
                         "position_id": [r["position_id"] for r in rows]})
    perm = keys.sort_values(["ts_opened", "ts_closed", "position_id"]).index.tolist()
    flags = [rows[i]["position_id"] in snapshot_ids for i in perm]
    return [objs[i] for i in perm], [rows[i] for i in perm], flags


def positions_frame(cache: Any, sorted_positions: tuple | None = None) -> pd.DataFrame:
    """``normalise_report(engine.generate_positions_report().drop(columns=["events", "adjustments"]))``."""
    _objs, rows, flags = sorted_positions if sorted_positions is not None else _positions_sorted(cache)
    if not rows:
        return _old_normalise(pd.DataFrame())
    keys = list(rows[0].keys()) + ["is_snapshot"]
    closed = [r["ts_closed"] for r in rows]
    extra = {
        "ts_opened": _utc([r["ts_opened"] for r in rows]),
        # Nautilus's [Timestamp or pd.NA] column as normalise_report leaves it: datetimes when every
        # position is closed, text ("2023-07-10 00:46:00+00:00", None) when some are open, "string" if none is
        "ts_closed": (pd.array([pd.NA] * len(rows), dtype="string") if all(t is None for t in closed) else
                      np.array([None if t is None else str(pd.Timestamp(t, tz="UTC")) for t in closed], dtype=object)
                      if any(t is None for t in closed) else
                      pd.array([pd.Timestamp(t, tz="UTC") for t in closed], dtype="datetime64[ns, UTC]")),
        "is_snapshot": np.array(flags, dtype=bool),
    }
    return _build(rows, keys, "position_id", extra)


def funding_frame(sorted_positions: tuple) -> pd.DataFrame:
    """:func:`nautilus_app.results.funding_settlements` from the positions' ``PositionAdjusted`` events."""
    objs, rows, _flags = sorted_positions
    out: dict[str, dict[str, Any]] = {}
    for p, row in zip(objs, rows, strict=True):
        for adj in p.adjustments():
            if str(adj.adjustment_type.name if hasattr(adj.adjustment_type, "name") else adj.adjustment_type
                   ).upper() != "FUNDING":
                continue
            key = str(adj.event_id or adj.reason or (row["position_id"], adj.ts_event))
            out[key] = {
                "ts": pd.Timestamp(int(adj.ts_event), unit="ns", tz="UTC"),
                "instrument_id": row["instrument_id"],
                "position_id": row["position_id"],
                "amount": float(str(adj.pnl_change).split(" ", 1)[0]),
            }
    frame = pd.DataFrame(out.values(), columns=["ts", "instrument_id", "position_id", "amount"])
    return frame.sort_values("ts").reset_index(drop=True)


def account_frame(cache: Any, venue: str) -> pd.DataFrame:
    """``normalise_report(engine.generate_account_report(venue).drop(columns=["margins", "info"]))``."""
    from nautilus_trader.model import Venue

    account = cache.account_for_venue(Venue(venue))
    states = account.events if account is not None else []
    rows = []
    for s in states:
        d = s.to_dict()
        balances = d.pop("balances", [])
        for b in balances:
            rows.append({**b, **d})
    if not rows:
        return _old_normalise(pd.DataFrame())
    ts = [r["ts_event"] for r in rows]
    rows = [rows[i] for i in _sort_permutation(ts, np.int64)]
    keys = ["index"] + _keys(rows, same_schema=True)
    extra = {"index": _utc([r["ts_event"] for r in rows])}
    return _build(rows, keys, "index", extra, drop=("ts_event", "ts_init", "type", "event_id", "margins", "info"))


def _old_normalise(df: pd.DataFrame) -> pd.DataFrame:
    from nautilus_app.results import normalise_report

    return normalise_report(df)


def run_reports(engine: Any, venues: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                          pd.DataFrame]:
    """``(orders, fills, positions, funding, account)`` of a finished run (fills without cost columns;
    account: one frame for all ``venues`` with a ``venue`` column), as :func:`nautilus_app.results.write_results`
    built them from Nautilus's reports."""
    cache = engine.cache
    orders_list = cache.orders()
    orders = orders_frame(cache, orders_list)
    fills = fills_frame(cache, orders_list)
    sorted_positions = _positions_sorted(cache)
    positions = positions_frame(cache, sorted_positions)
    funding = funding_frame(sorted_positions)
    accounts = []
    for v in venues:
        acc = account_frame(cache, v)
        acc["venue"] = v
        accounts.append(acc)
    account = pd.concat(accounts, ignore_index=True) if accounts else pd.DataFrame()
    return orders, fills, positions, funding, account


def legacy_reports(engine: Any, venues: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                             pd.DataFrame]:
    """What :func:`run_reports` replaces (Nautilus's ``generate_*_report`` + ``normalise_report``): the
    reference the tests compare it with."""
    from nautilus_trader.model import Venue

    from nautilus_app.results import funding_settlements, normalise_report

    orders = normalise_report(engine.generate_orders_report())
    fills = normalise_report(engine.generate_fills_report())
    positions_raw = engine.generate_positions_report()
    funding = funding_settlements(positions_raw)
    positions = normalise_report(positions_raw.drop(columns=["events", "adjustments"], errors="ignore"))
    accounts = []
    for v in venues:
        acc = engine.generate_account_report(venue=Venue(v))
        acc = normalise_report(acc.drop(columns=[c for c in ("margins", "info") if c in acc.columns]))
        acc["venue"] = v
        accounts.append(acc)
    account = pd.concat(accounts, ignore_index=True) if accounts else pd.DataFrame()
    return orders, fills, positions, funding, account
