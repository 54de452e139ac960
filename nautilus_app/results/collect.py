"""Collect a run's raw material: the orders, fills, positions and account tables from an engine's
(or a live node's) cache, the records strategies left in the cache (risk, borrowing, trailed stops),
and the funding settlements. First stage of :mod:`nautilus_app.results` (collect -> assemble -> write).

Engine tables: same columns, dtypes, row order and values as ``normalise_report(engine.generate_*_report())``
(Nautilus's ``ReportProvider`` followed by :func:`nautilus_app.results.schema.normalise_report`), which
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
from collections.abc import Callable
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas._libs import lib, missing
from pandas.core.internals.construction import convert_object_array

from catalog.reader import read_columns
from core.times import utc_index, utc_texts
from nautilus_app.results.schema import (
    BORROW_COLUMNS,
    FUNDING_COLUMNS,
    RISK_COLUMNS,
    _amount,
    normalise_report,
)
from nautilus_app.results.schema import MONEY as _MONEY
from nautilus_app.results.schema import NUMBER as _NUMBER

__all__ = ["account_frame", "build_borrowing", "build_risk_records", "build_trailed", "fills_frame", "funding_frame",
           "funding_settlements", "orders_frame", "positions_frame", "read_bar_closes", "run_reports",
           "session_reports"]


_JSON = json.JSONEncoder(default=str)  # what json.dumps(v, default=str) builds on every call
_UNSAFE = re.compile(r'[^ !#-\[\]-~]')  # characters json.dumps would escape (ensure_ascii) or quote


def _json_or_none(v: Any) -> str | None:
    """``json.dumps(v, default=str)``; a list of plain ASCII strings (ids, money) joined directly."""
    if v is None:
        return None
    if type(v) is list and all(type(x) is str for x in v):
        if not _UNSAFE.search("".join(v)):  # the items, not the '", "' between them (a quote is unsafe)
            return '["' + '", "'.join(v) + '"]' if v else "[]"
    return _JSON.encode(v)


#: value types whose only missing marker is None (pd.isna is needed for float NaN, NaT, pd.NA)
_NONE_OR_PLAIN = {type(None), str, bool, int, list, dict, tuple}


def _normalise_column(col: str, values: np.ndarray, out: dict[str, Any], currencies: dict[str, Any]) -> None:
    """One column of :func:`nautilus_app.results.normalise_report`: ``values`` is the object column as
    Nautilus's report frame holds it before pandas' type inference (which is applied here first)."""
    arr = convert_object_array([values], dtype=None)[0]
    if arr.dtype != object:  # numbers, bools, timestamps: normalise_report leaves them alone
        out[col] = arr
        return
    if lib.is_string_array(arr, skipna=True):  # texts and missing values only (most columns): checked in C
        types = None
        isna = missing.isnaobj(arr)
    else:
        types = set(map(type, arr.tolist()))
        # pd.isna is slow on object columns; without floats (NaN) or other missing markers, missing is None
        isna = (arr == None) if types <= _NONE_OR_PLAIN else pd.isna(arr)  # noqa: E711 - element-wise
    if isna.all():
        out[col] = pd.array(arr, dtype="string")
        return
    notna = ~isna
    first = arr[int(np.argmax(notna))]
    if isinstance(first, (list, dict, tuple)):
        out[col] = np.array([_json_or_none(v) for v in arr.tolist()], dtype=object)
        return
    text = str(first)
    if types is None:
        plain = True
    elif types <= _NONE_OR_PLAIN:
        plain = types - {type(None)} == {str}
    else:
        plain = set(map(type, arr[notna].tolist())) == {str}
    if _NUMBER.fullmatch(text):
        # normalise_report: pd.to_numeric(s.astype(str)); None -> "None" -> NaN either way
        numeric = _parse_numbers(arr) if plain else pd.to_numeric(arr.astype(str), errors="coerce")
        if not np.isnan(numeric[notna].astype(float)).any():
            out[col] = numeric
            return
    elif _MONEY.fullmatch(text):
        parts = [str(v).partition(" ") for v in arr.tolist()]
        amount = _parse_numbers(np.array([p[0] for p in parts], dtype=object))
        if not np.isnan(amount[notna].astype(float)).any():
            out[col] = amount
            currencies[f"{col}_currency"] = np.array([p[2] if p[1] else None for p in parts], dtype=object)
            return
    if plain:
        out[col] = np.where(notna, arr, None) if isna.any() else arr
    else:
        out[col] = np.array([str(v) if ok else None for v, ok in zip(arr.tolist(), notna.tolist(), strict=True)],
                            dtype=object)


def _parse_numbers(texts: np.ndarray) -> np.ndarray:
    """``pd.to_numeric(texts, errors="coerce")`` for an object array of decimal texts and None/NaN (-> NaN;
    integers only -> int64), parsed by Arrow: 0.8 ms for 5,692 texts against pandas' 5.7 ms, and correctly
    rounded (the float nearest each decimal; pandas' parser can be an ulp off for 16-digit texts, Nautilus's
    reports carry at most the instruments' and currencies' precisions). Texts Arrow does not read as numbers
    go to ``pd.to_numeric``."""
    try:
        arr = pa.array(texts, pa.string(), from_pandas=True)  # None and NaN -> null
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.to_numeric(texts, errors="coerce")
    # integers only -> int64; tried only when every text is digits and signs: a failed cast costs ~6 ms for
    # 5,692 texts (Arrow builds its error), the check 0.2 ms
    if not arr.null_count and not pc.any(pc.match_substring_regex(arr, r"[^0-9+\-]")).as_py():
        try:
            return pc.cast(arr, pa.int64()).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    try:
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(texts, errors="coerce")


def _build(rows: list[dict], keys: list[str], index_col: str, extra: dict[str, Any] | None = None,
           drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """Nautilus's report of ``rows`` (already in report order), ``index_col`` first, then normalised.

    ``extra``: columns replaced before normalising (e.g. timestamps); ``drop``: columns removed.
    """
    content = lib.dicts_to_array(rows, keys)
    return _build_columns({k: content[:, i] for i, k in enumerate(keys)}, keys, index_col, extra, drop)


def _build_columns(columns: dict[str, np.ndarray], keys: list[str], index_col: str,
                   extra: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """:func:`_build` from object columns (``columns[k]``: the report's column ``k`` before type inference)."""
    out: dict[str, Any] = {}
    currencies: dict[str, Any] = {}
    order = [index_col] + [k for k in keys if k != index_col and k not in drop]
    for col in order:
        if extra and col in extra:
            out[col] = extra[col]
            continue
        _normalise_column(col, columns[col], out, currencies)
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
    return utc_index(np.array([t or 0 for t in ns], dtype=np.int64))


def _attr(path: str) -> Callable[[list[Any]], list[Any]]:
    """A column of ``path`` (e.g. ``"trade_id.value"``) read from each object, by ``operator.attrgetter`` in C."""
    get = attrgetter(path)
    return lambda objs: list(map(get, objs))


def _text(path: str) -> Callable[[list[Any]], list[Any]]:
    """A column of ``str(path)`` of each object (None stays None)."""
    get = attrgetter(path)
    return lambda objs: [None if x is None else str(x) for x in map(get, objs)]


def _id_value(path: str) -> Callable[[list[Any]], list[Any]]:
    """A column of the identifier ``path``'s ``value`` of each object (None stays None)."""
    get = attrgetter(path)
    return lambda objs: [None if x is None else x.value for x in map(get, objs)]


def orders_frame(cache: Any, orders: list[Any] | None = None) -> pd.DataFrame:
    """``normalise_report(engine.generate_orders_report())``."""
    orders = cache.orders() if orders is None else orders
    if not orders:
        return _old_normalise(pd.DataFrame())
    ids = [o.client_order_id.value for o in orders]
    orders = [orders[i] for i in _sort_permutation(ids)]
    fast = _order_columns(orders)
    if fast is not None:
        keys, columns = fast
        return _build_columns(columns, keys, "client_order_id")
    rows = [o.to_dict() for o in orders]
    return _build(rows, _keys(rows, same_schema=len({type(o) for o in orders}) == 1), "client_order_id")


def _name_or_none(path: str) -> Callable[[list[Any]], list[Any]]:
    """A column of the enum ``path``'s ``name`` of each object (None stays None)."""
    get = attrgetter(path)
    return lambda objs: [None if x is None else x.name for x in map(get, objs)]


def _expire_time_ns(objs: list[Any]) -> list[Any]:
    out = []
    for o in objs:
        ns = getattr(o, "expire_time_ns", None)
        if ns is None and getattr(o, "expire_time", None) is not None:
            ns = pd.Timestamp(o.expire_time).value
        out.append(ns or None)
    return out


#: every key of the orders' ``to_dict()`` (rc7: market, limit and stop orders), read from the attributes; an
#: order type with a key not listed here, or whose sampled orders differ from their ``to_dict()``, sends the
#: whole table through the dictionaries (:func:`_order_columns`)
_ORDER_COLUMNS: dict[str, Callable[[list[Any]], list[Any]]] = {
    "trader_id": _attr("trader_id.value"),
    "strategy_id": _attr("strategy_id.value"),
    "instrument_id": _attr("instrument_id.value"),
    "client_order_id": _attr("client_order_id.value"),
    "side": _attr("side.name"),
    "type": _attr("order_type.name"),
    "quantity": _text("quantity"),
    "status": _attr("status.name"),
    "time_in_force": _attr("time_in_force.name"),
    "is_reduce_only": _attr("is_reduce_only"),
    "is_quote_quantity": _attr("is_quote_quantity"),
    "filled_qty": _text("filled_qty"),
    "init_id": _attr("init_id.value"),
    "ts_init": _attr("ts_init"),
    "ts_last": _attr("ts_last"),
    "commissions": lambda objs: [[str(m) for m in o.commissions().values()] or None for o in objs],
    "venue_order_id": _id_value("venue_order_id"),
    "emulation_trigger": _name_or_none("emulation_trigger"),
    "contingency_type": _name_or_none("contingency_type"),
    "order_list_id": _id_value("order_list_id"),
    "linked_order_ids": lambda objs: [None if x is None else [i.value for i in x]
                                      for x in map(attrgetter("linked_order_ids"), objs)],
    "parent_order_id": _id_value("parent_order_id"),
    "exec_algorithm_id": _id_value("exec_algorithm_id"),
    "exec_algorithm_params": _attr("exec_algorithm_params"),
    "exec_spawn_id": _id_value("exec_spawn_id"),
    "tags": lambda objs: [None if x is None else list(x) for x in map(attrgetter("tags"), objs)],
    "account_id": _id_value("account_id"),
    "slippage": _text("slippage"),
    "position_id": _id_value("position_id"),
    "liquidity_side": _name_or_none("liquidity_side"),
    "last_trade_id": _id_value("last_trade_id"),
    "avg_px": _text("avg_px"),
    "price": _text("price"),
    "trigger_price": _text("trigger_price"),
    "trigger_type": _name_or_none("trigger_type"),
    "expire_time_ns": _expire_time_ns,
    "display_qty": _text("display_qty"),
    "trigger_instrument_id": _id_value("trigger_instrument_id"),
    "is_post_only": _attr("is_post_only"),
}
_SAMPLES_PER_TYPE = 24  # orders of each type compared with their to_dict() (first, last and spread between)


def _order_columns(orders: list[Any]) -> tuple[list[str], dict[str, np.ndarray]] | None:
    """``(keys, object columns)`` of the orders report (``orders`` in report order) read from the attributes,
    as ``lib.dicts_to_array`` builds them from the ``to_dict()`` rows: keys in first-seen order, NaN where an
    order type has no such key. None (the caller uses the dictionaries) when an order type has a key
    :data:`_ORDER_COLUMNS` does not read, or when any sampled order differs from its ``to_dict()``."""
    by_type: dict[type, list[int]] = {}
    for i, o in enumerate(orders):
        by_type.setdefault(type(o), []).append(i)
    type_keys: dict[type, list[str]] = {}
    for cls, idx in by_type.items():  # in order of first appearance
        step = max(1, len(idx) // _SAMPLES_PER_TYPE)
        sample = [orders[i] for i in sorted({*idx[::step], idx[-1]})]
        dicts = [o.to_dict() for o in sample]
        keys = list(dicts[0])
        if any(list(d) != keys for d in dicts) or any(k not in _ORDER_COLUMNS for k in keys):
            return None
        try:
            if any(_ORDER_COLUMNS[k](sample) != [d[k] for d in dicts] for k in keys):
                return None
        except AttributeError:
            return None
        type_keys[cls] = keys
    all_keys = list(lib.fast_unique_multiple_list_gen(list(type_keys.values()), sort=False))
    n = len(orders)
    columns: dict[str, np.ndarray] = {}
    for k in all_keys:
        col = np.empty(n, dtype=object)
        for cls, idx in by_type.items():
            if k in type_keys[cls]:
                values = _object_array(_ORDER_COLUMNS[k]([orders[i] for i in idx]))
            else:
                values = np.full(len(idx), np.nan, dtype=object)
            col[np.asarray(idx, dtype=np.int64)] = values
        columns[k] = col
    return all_keys, columns


def fills_frame(cache: Any, orders: list[Any] | None = None) -> pd.DataFrame:
    """``normalise_report(engine.generate_fills_report())`` (one row per ``OrderFilled``)."""
    from nautilus_trader.model import OrderFilled

    orders = cache.orders() if orders is None else orders
    # one to_dict() per fill: reading the attributes column by column measured no faster here (each getter
    # builds its Nautilus object, then the text), unlike the orders and account tables
    rows = [e.to_dict() for o in orders for e in o.events() if isinstance(e, OrderFilled)]
    if not rows:
        return _old_normalise(pd.DataFrame())
    rows = [rows[i] for i in _sort_permutation([r["client_order_id"] for r in rows])]
    extra = {"ts_event": _utc([r["ts_event"] for r in rows]), "ts_init": _utc([r["ts_init"] for r in rows])}
    return _build(rows, _keys(rows, same_schema=True), "client_order_id", extra, drop=("type",))


def _object_array(values: list[Any]) -> np.ndarray:
    """``values`` as a 1-d object array (list, tuple and dict values kept whole, not broadcast by numpy)."""
    out = np.empty(len(values), dtype=object)
    if set(map(type, values)) & {list, tuple, dict}:
        for i, v in enumerate(values):
            out[i] = v
    else:
        out[:] = values
    return out


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


def _closed_column(closed: list[int | None]) -> Any:
    """Nautilus's [Timestamp or pd.NA] ``ts_closed`` column as normalise_report leaves it: datetimes when every
    position is closed, text ("2023-07-10 00:46:00+00:00", None) when some are open, "string" if none is."""
    is_open = np.array([t is None for t in closed], dtype=bool)
    if is_open.all():
        return pd.array([pd.NA] * len(closed), dtype="string")
    ns = np.array([0 if t is None else t for t in closed], dtype=np.int64)
    if not is_open.any():
        return utc_index(ns)
    texts = utc_texts(ns)
    texts[is_open] = None
    return texts


def positions_frame(cache: Any, sorted_positions: tuple | None = None) -> pd.DataFrame:
    """``normalise_report(engine.generate_positions_report().drop(columns=["events", "adjustments"]))``."""
    _objs, rows, flags = sorted_positions if sorted_positions is not None else _positions_sorted(cache)
    if not rows:
        return _old_normalise(pd.DataFrame())
    keys = list(rows[0].keys()) + ["is_snapshot"]
    closed = [r["ts_closed"] for r in rows]
    extra = {
        "ts_opened": _utc([r["ts_opened"] for r in rows]),
        "ts_closed": _closed_column(closed),
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
    frame = pd.DataFrame(out.values(), columns=FUNDING_COLUMNS)
    return frame.sort_values("ts").reset_index(drop=True)


def _amount_text(path: str) -> Callable[[list[Any]], list[Any]]:
    """A column of the amount text of the ``Money`` at ``path`` of each object (``"98933.98184680"``)."""
    get = attrgetter(path)
    return lambda objs: [str(m).partition(" ")[0] for m in map(get, objs)]


#: ``AccountState.to_dict()`` / ``AccountBalance.to_dict()`` keys in their order (rc7; checked on each run)
_STATE_KEYS = ("type", "account_id", "account_type", "balances", "margins", "reported", "event_id", "info", "ts_event",
               "ts_init", "base_currency")
_BALANCE_KEYS = ("type", "total", "locked", "free", "currency")
#: the state fields the account table keeps, read from the attributes (the others are dropped by the report)
_STATE_COLUMNS: tuple[tuple[str, Callable[[list[Any]], list[Any]]], ...] = (
    ("account_id", _attr("account_id.value")),
    ("account_type", _attr("account_type.name")),
    ("reported", _attr("is_reported")),
    ("ts_event", _attr("ts_event")),
    ("base_currency", lambda objs: ["None" if c is None else c.code for c in map(attrgetter("base_currency"), objs)]),
)
_BALANCE_COLUMNS: tuple[tuple[str, Callable[[list[Any]], list[Any]]], ...] = (
    ("type", lambda objs: ["AccountBalance"] * len(objs)),
    ("total", _amount_text("total")),
    ("locked", _amount_text("locked")),
    ("free", _amount_text("free")),
    ("currency", _attr("currency.code")),
)
_ACCOUNT_DROP = ("ts_event", "ts_init", "type", "event_id", "margins", "info")


def _account_columns(states: list[Any]) -> tuple[list[str], dict[str, np.ndarray]] | None:
    """``(keys, columns)`` of the account table, the columns read from the states' attributes
    (one row per balance of each state, as the report builds ``{**balance, **state}``); None when the first or
    last state with balances is not exactly its ``to_dict()`` (the caller then uses the dictionaries)."""
    balances = [st.balances for st in states]
    counts = np.array([len(bs) for bs in balances], dtype=np.int64)
    with_balances = np.flatnonzero(counts)
    if not len(with_balances):
        return None
    for i in {int(with_balances[0]), int(with_balances[-1])}:
        d = states[i].to_dict()
        if tuple(d) != _STATE_KEYS or any(tuple(bd) != _BALANCE_KEYS for bd in d["balances"]):
            return None
        if any(col([states[i]])[0] != d[k] for k, col in _STATE_COLUMNS):
            return None
        if any(col(balances[i]) != [bd[k] for bd in d["balances"]] for k, col in _BALANCE_COLUMNS):
            return None
    flat = [b for bs in balances for b in bs]
    columns = {k: _object_array(col(flat)) for k, col in _BALANCE_COLUMNS if k not in _ACCOUNT_DROP}
    columns |= {k: np.repeat(_object_array(col(states)), counts) for k, col in _STATE_COLUMNS}
    keys = [*_BALANCE_KEYS, *(k for k in _STATE_KEYS if k not in _BALANCE_KEYS and k != "balances")]
    return keys, columns


def account_frame(cache: Any, venue: str) -> pd.DataFrame:
    """``normalise_report(engine.generate_account_report(venue).drop(columns=["margins", "info"]))``."""
    from nautilus_trader.model import Venue

    account = cache.account_for_venue(Venue(venue))
    events = list(account.events) if account is not None else []
    fast = _account_columns(events) if events else None
    if fast is not None:
        first, columns = fast
    else:  # the dictionaries themselves (another Nautilus version), column by column
        states = [s.to_dict() for s in events]
        balances = [d.pop("balances", None) or [] for d in states]
        counts = np.array([len(b) for b in balances], dtype=np.int64)
        if not counts.sum():
            return _old_normalise(pd.DataFrame())
        i0 = int(np.argmax(counts > 0))
        first = list({**balances[i0][0], **states[i0]})
        state_keys = set(states[i0])
        flat = [b for bs in balances for b in bs]
        columns = {}
        for k in first:
            if k in _ACCOUNT_DROP and k != "ts_event":
                continue
            columns[k] = np.repeat(_object_column(states, k), counts) if k in state_keys else _object_column(flat, k)
    perm = np.array(_sort_permutation(columns["ts_event"].tolist(), np.int64), dtype=np.int64)
    columns = {k: v[perm] for k, v in columns.items()}
    keys = ["index", *first]
    extra = {"index": _utc(columns["ts_event"].tolist())}
    return _build_columns(columns, keys, "index", extra, drop=_ACCOUNT_DROP)


def _object_column(dicts: list[dict], key: str) -> np.ndarray:
    """``[d[key] for d in dicts]`` as a 1-d object array (a missing key reads None; values never broadcast)."""
    try:
        values = list(map(itemgetter(key), dicts))
    except KeyError:
        values = [d.get(key) for d in dicts]
    out = np.empty(len(values), dtype=object)
    if set(map(type, values)) & {list, tuple, dict}:  # assigned one by one: numpy would broadcast them
        for i, v in enumerate(values):
            out[i] = v
    else:
        out[:] = values
    return out


def _old_normalise(df: pd.DataFrame) -> pd.DataFrame:
    return normalise_report(df)


def run_reports(engine: Any, venues: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                          pd.DataFrame]:
    """``(orders, fills, positions, funding, account)`` of a finished run (fills without cost columns;
    account: one frame for all ``venues`` with a ``venue`` column), as :func:`nautilus_app.results.writer.write_results`
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


def funding_settlements(positions_raw: pd.DataFrame) -> pd.DataFrame:
    """Funding payments from the positions report's ``adjustments`` (Nautilus ``PositionAdjusted`` FUNDING).

    Returns columns ``ts`` (UTC), ``instrument_id``, ``position_id``, ``amount`` (USDT; paid < 0).
    Snapshots repeat the adjustments of earlier cycles only for their own cycle, so each
    adjustment is counted once by its event id.
    """
    rows: dict[str, dict[str, Any]] = {}
    if "adjustments" in positions_raw.columns:
        with_adjustments = positions_raw[positions_raw["adjustments"].map(bool)]
        for pos_id, row in with_adjustments.iterrows():
            for adj in row["adjustments"]:
                if str(adj.get("adjustment_type", "")).upper() != "FUNDING":
                    continue
                key = str(adj.get("event_id") or adj.get("reason") or (pos_id, adj.get("ts_event")))
                rows[key] = {
                    "ts": pd.Timestamp(int(adj["ts_event"]), unit="ns", tz="UTC"),
                    "instrument_id": str(row["instrument_id"]),
                    "position_id": str(pos_id),
                    "amount": _amount(adj.get("pnl_change")),
                }
    frame = pd.DataFrame(rows.values(), columns=FUNDING_COLUMNS)
    return frame.sort_values("ts").reset_index(drop=True)


def build_trailed(engine: Any) -> set[str]:
    """Client order ids of risk stops moved by a trailing update (``risk_trailed:<strategy id>`` in the cache)."""
    out: set[str] = set()
    for sid in engine.cache.strategy_ids():
        raw = engine.cache.get(f"risk_trailed:{sid.value}")
        if raw is not None:
            out.update(json.loads(bytes(raw)))
    return out


def build_risk_records(engine: Any) -> pd.DataFrame | None:
    """Risk refusals, reductions and pause events of every strategy with a ``risk`` table (docs/risk.md).

    Read from the engine's cache (``risk_records:<strategy id>``, JSON written by the strategy's
    ``on_stop``). Returns None when no strategy has a risk table (then nothing about risk is written,
    so runs without one keep their results and digests). ``ts`` is UTC (bar close of the decision).
    """
    df = _strategy_records(engine, "risk_records", RISK_COLUMNS)
    return None if df is None else df.astype({"requested_qty": "float64", "final_qty": "float64"})


def build_borrowing(engine: Any) -> pd.DataFrame | None:
    """Hourly borrowing-interest accruals of the strategies with a ``risk`` table (docs/risk.md).

    Read from the cache (``risk_borrow:<strategy id>``). None when no strategy has a risk table.
    Columns :data:`BORROW_COLUMNS` (USDT; ``ts`` UTC).
    """
    return _strategy_records(engine, "risk_borrow", BORROW_COLUMNS)


def _strategy_records(engine: Any, key: str, columns: list[str]) -> pd.DataFrame | None:
    """Rows the strategies stored as JSON under ``<key>:<strategy id>`` in the engine's cache, with
    ``ts`` (ns) as UTC timestamps; None when no strategy stored any."""
    rows: list[dict] = []
    found = False
    for sid in engine.cache.strategy_ids():
        raw = engine.cache.get(f"{key}:{sid.value}")
        if raw is None:
            continue
        found = True
        rows.extend(json.loads(bytes(raw)))
    if not found:
        return None
    df = pd.DataFrame(rows, columns=columns)
    df["ts"] = pd.to_datetime(df["ts"].astype("int64"), unit="ns", utc=True)
    return df


def _back_ids(df: pd.DataFrame, reverse_ids: dict[str, str]) -> pd.DataFrame:
    """Instrument ids of a live venue mapped back to the config's (``reverse_ids``: live id -> config id)."""
    if "instrument_id" in df.columns:
        df["instrument_id"] = df["instrument_id"].astype(str).map(lambda x: reverse_ids.get(x, x))
    return df


def session_reports(cache: Any, live_venue: str, venue_name: str, reverse_ids: dict[str, str]
                    ) -> tuple[list[Any], pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(orders list, orders, fills, positions, account)`` of a paper or live node's cache, normalised like
    a backtest's, with the config's instrument ids (``reverse_ids``) and ``account.venue = venue_name``.

    Built with Nautilus's ``ReportProvider`` (a live cache holds few orders; the engine path
    :func:`run_reports` is the fast one for long backtests).
    """
    from nautilus_trader.analysis import ReportProvider
    from nautilus_trader.model import Venue

    orders_all = list(cache.orders())
    orders = _back_ids(normalise_report(ReportProvider.generate_orders_report(orders_all)), reverse_ids)
    fills = _back_ids(normalise_report(ReportProvider.generate_fills_report(orders_all)), reverse_ids)
    pos_raw = ReportProvider.generate_positions_report(list(cache.positions()))
    positions = _back_ids(normalise_report(pos_raw.drop(columns=["events", "adjustments"], errors="ignore")),
                          reverse_ids)
    acct = cache.account_for_venue(Venue(live_venue))
    account = pd.DataFrame()
    if acct is not None:
        a = ReportProvider.generate_account_report(acct)
        account = normalise_report(a.drop(columns=[c for c in ("margins", "info") if c in a.columns]))
        account["venue"] = venue_name
    return orders_all, orders, fills, positions, account


def read_bar_closes(cfg: Any, bar_type: str) -> pd.Series:
    """Close prices (float) of one bar type in the run's range, indexed by bar close time (UTC)."""
    table = read_columns(cfg.catalog_path(), "bars", bar_type, ["ts_init", "close"], *cfg.bar_window_ns())
    ts = pc.cast(table.column("ts_init"), pa.int64()).to_numpy()
    close = pc.cast(table.column("close"), pa.float64()).to_numpy()
    s = pd.Series(close, index=utc_index(ts), name=bar_type)
    return s[~s.index.duplicated(keep="last")].sort_index()


def wall_to_market(wall_ns: np.ndarray, marks: list[tuple[int, int]]) -> np.ndarray:
    """Market time (ns) of the last ``on_bar`` entered at or before each wall time (``marks`` =
    ``(wall_ns, market_ns)`` pairs; times before the first mark get the first mark's market time)."""
    if not marks:
        return wall_ns
    walls = np.array([m[0] for m in marks], dtype=np.int64)
    markets = np.array([m[1] for m in marks], dtype=np.int64)
    order = np.argsort(walls, kind="stable")
    walls, markets = walls[order], np.maximum.accumulate(markets[order])
    idx = np.searchsorted(walls, wall_ns, side="right") - 1
    return np.where(idx >= 0, markets[np.clip(idx, 0, None)], markets[0])


def _book_fills(session: Any, orders_all: list[Any]) -> pd.DataFrame:
    """fills.parquet of a simulated paper session from its Redis book (market times, config instrument ids)."""
    rev = session.plan.reverse_ids
    types = {o.client_order_id.value: str(o.order_type).split(".")[-1] for o in orders_all}
    rows = []
    for f in session.book.fills().values():
        iid = rev.get(f["instrument_id"], f["instrument_id"])
        rows.append({
            "client_order_id": f["client_order_id"], "trader_id": session.plan.settings.trader_id,
            "strategy_id": f["strategy_id"], "instrument_id": iid, "venue_order_id": f["venue_order_id"],
            "account_id": f"{session.plan.live_venue}-001", "trade_id": f["trade_id"], "order_side": f["side"],
            "order_type": types.get(f["client_order_id"], "MARKET"), "last_qty": float(f["qty"]),
            "last_px": float(f["px"]), "currency": "USDT", "liquidity_side": f["liquidity"],
            "ts_event": pd.Timestamp(int(f["ts"]), tz="UTC"), "position_id": f"{iid}-{f['strategy_id']}",
            "commission": float(f["fee"]), "commission_currency": "USDT", "reference_px": float(f["reference_px"]),
            "kind": f["kind"], "realized_pnl": float(f["realized_pnl"]),
        })
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["ts_event", "instrument_id", "order_side", "last_qty", "last_px", "commission",
                                     "trade_id", "client_order_id"])
    df["_n"] = df["trade_id"].str.split("-").str[-1].astype(int)
    return df.sort_values(["ts_event", "_n"], kind="stable").drop(columns="_n").reset_index(drop=True)


def paper_session_tables(session: Any) -> tuple[list[Any], dict[str, pd.DataFrame], dict[str, pd.Series], int]:
    """``(orders list, tables, closes, bars recorded)`` of a paper session (:class:`nautilus_app.paper.PaperSession`).

    ``tables``: ``orders``, ``fills``, ``positions``, ``account``, ``funding`` as a backtest's, stamped in
    *market* time (the close of the bar they belong to; wall-clock times kept in ``ts_event_wall`` for
    fills and ``ts_opened_wall``/``ts_closed_wall`` for positions), with the config's instrument ids.
    A simulated session's fills and funding come from its Redis book (complete across restarts),
    otherwise from the node's cache and the recorder's funding ledger. ``closes``: the recorded bar
    closes per config instrument id (the equity curve's marks).
    """
    plan, cache = session.plan, session.cache
    rev = plan.reverse_ids
    bars = session.state.bars()
    marks = session.state.marks()
    orders_all, orders, fills, positions, account = session_reports(cache, plan.live_venue, plan.venue.name, rev)
    # market time of each order = the bar whose on_bar created it (order ts_init vs on_bar entries)
    order_market = {str(o.client_order_id): int(m) for o, m in zip(
        orders_all, wall_to_market(np.array([o.ts_init for o in orders_all], dtype=np.int64), marks), strict=True)}
    fill_market: dict[int, int] = {}
    if session.simulated:  # the book is the record (reconciled orders may carry their fills as one)
        fills = _book_fills(session, orders_all)
    elif not fills.empty:
        wall = pd.to_datetime(fills["ts_event"], utc=True)
        fills["ts_event_wall"] = wall
        market = fills["client_order_id"].astype(str).map(order_market).astype("int64")
        fill_market = dict(zip(wall.astype("int64"), market, strict=True))
        fills["ts_event"] = pd.to_datetime(market.to_numpy(), utc=True)
        fills = fills.sort_values(["ts_event", "ts_event_wall"], kind="stable").reset_index(drop=True)
    for col in ("ts_opened", "ts_closed"):
        if col in positions.columns and not positions.empty:
            t = pd.to_datetime(positions[col], utc=True)
            w = t.fillna(pd.Timestamp(0, tz="UTC")).astype("int64").to_numpy()
            if session.simulated:
                m = w
            else:
                m = np.array([fill_market.get(int(x), y) for x, y in zip(w, wall_to_market(w, marks), strict=True)],
                             dtype=np.int64)  # the opening/closing fill's market time
            positions[f"{col}_wall"] = t
            positions[col] = pd.to_datetime(m, utc=True).where(t.notna(), pd.NaT)
    if session.simulated:
        frows = [{"ts": r["ts"], "instrument_id": rev.get(r["instrument_id"], r["instrument_id"]),
                  "position_id": f"{rev.get(r['instrument_id'], r['instrument_id'])}-{r['position_key'].split('|')[1]}",
                  "amount": r["amount"]} for r in session.book.funding() if "amount" in r]
    else:
        frows = session.state.funding()
    funding = pd.DataFrame(frows, columns=FUNDING_COLUMNS) if frows else pd.DataFrame(columns=FUNDING_COLUMNS)
    funding["ts"] = pd.to_datetime(funding["ts"], utc=True)
    funding = funding.sort_values("ts").reset_index(drop=True)
    closes: dict[str, pd.Series] = {}
    if bars:
        b = pd.DataFrame(bars, columns=["ts", "wall", "instrument_id", "close"])
        for iid in plan.id_map:
            sub = b[b["instrument_id"] == iid]
            if not sub.empty:
                s = pd.Series(sub["close"].to_numpy(), index=pd.to_datetime(sub["ts"], utc=True), name=iid)
                closes[iid] = s[~s.index.duplicated(keep="last")].sort_index()
    tables = {"orders": orders, "fills": fills, "positions": positions, "account": account, "funding": funding}
    return orders_all, tables, closes, len(bars)
