"""``/api/catalog/...`` and ``/api/ohlcv``: what the catalog holds, and candles of one instrument."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, jsonify, request

from dash_ui import market
from dash_ui.api.common import MAX_OHLCV_LIMIT, ApiError, _int_arg, _records, _time_arg, iso_ns, iso_time

if TYPE_CHECKING:
    from dash_ui.context import AppContext


def symbols(ctx: AppContext) -> list[dict]:
    """Bar series in the catalog grouped by instrument: symbol, instrument id, venue, trading mode
    (``futures`` for ``-PERP`` instruments, else ``spot``), bar types, first/last bar close, rows."""
    inv = ctx.inventory()
    bars = inv[inv["kind"] == "bars"]
    out: dict[str, dict] = {}
    for _, row in bars.iterrows():
        iid = row["instrument_id"]
        sym, _, venue = iid.rpartition(".")
        entry = out.setdefault(iid, {
            "symbol": sym.removesuffix("-PERP"), "instrument_id": iid, "venue": venue,
            "trading_mode": "futures" if sym.endswith("-PERP") else "spot", "bar_types": [],
            "first": None, "last": None, "rows": 0,
        })
        entry["bar_types"].append(row["identifier"])
        entry["rows"] += int(row["rows"])
        first, last = iso_time(row["first"]), iso_time(row["last"])
        entry["first"] = min(entry["first"] or first, first)
        entry["last"] = max(entry["last"] or last, last)
    return sorted(out.values(), key=lambda e: e["instrument_id"])

def resolve_symbol(ctx: AppContext, symbol: str | None, trading_mode: str | None) -> dict:
    """Find a catalog instrument by instrument id (``BTCUSDT.BINANCE``), raw symbol (``BTCUSDT``,
    ``BTCUSDT-PERP``) or ccxt form (``BTC/USDT``, ``BTC/USDT:USDT`` = futures).

    Raises:
        ApiError: missing/unknown/ambiguous symbol (field ``symbol``), bad ``trading_mode``.
    """
    if not symbol:
        raise ApiError(400, "symbol is required (e.g. BTCUSDT.BINANCE, BTCUSDT or BTC/USDT)", "symbol")
    if trading_mode not in (None, "", "spot", "futures"):
        raise ApiError(400, f"trading_mode={trading_mode!r}: expected 'spot' or 'futures'", "trading_mode")
    known = symbols(ctx)
    s = symbol.strip()
    mode = trading_mode or None
    if "/" in s:
        base_quote, _, settle = s.partition(":")
        s = base_quote.replace("/", "")
        mode = mode or ("futures" if settle else "spot")
    if s.endswith("-PERP"):
        s, mode = s.removesuffix("-PERP"), mode or "futures"
    hits = [e for e in known if e["instrument_id"] == symbol.strip()]
    if not hits:
        hits = [e for e in known if e["symbol"] == s and (mode is None or e["trading_mode"] == mode)]
    if not hits:
        names = ", ".join(e["instrument_id"] for e in known) or "none"
        raise ApiError(404, f"symbol={symbol!r}: not in the catalog (instruments with bars: {names})", "symbol")
    if len(hits) > 1:
        raise ApiError(400, f"symbol={symbol!r} is ambiguous ({', '.join(h['instrument_id'] for h in hits)}): "
                            "give trading_mode=spot|futures or the instrument id", "trading_mode")
    return hits[0]

def ohlcv(ctx: AppContext, entry: dict, timeframe: str, start_ns: int | None, end_ns: int | None,
          limit: int) -> dict:
    """Candles of one instrument (resampled from its finest stored time bars), at most ``limit``,
    the first ones at or after ``start``. Candle times are **open** times in epoch ms (UTC)."""
    if timeframe not in market.TIMEFRAMES:
        raise ApiError(400, f"timeframe={timeframe!r}: expected one of {list(market.TIMEFRAMES)}", "timeframe")
    tf = market.TIMEFRAMES[timeframe]
    steps = []
    for bt in entry["bar_types"]:
        try:
            steps.append((market.bar_step_ns(bt), bt))
        except ValueError:
            continue
    usable = sorted((s, bt) for s, bt in steps if tf % s == 0)
    if not usable:
        raise ApiError(400, f"timeframe={timeframe!r}: no stored bars of {entry['instrument_id']} divide it "
                            f"(stored: {entry['bar_types']})", "timeframe")
    step, bar_type = usable[0]
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise ApiError(400, "end must be after start", "end")
    bars = market.BARS.get(ctx.catalog_root, bar_type)
    # candle open time in [start, end): source bars whose open time (close - step) is in that range
    lo = None if start_ns is None else (start_ns // tf) * tf + step
    hi = None if end_ns is None else end_ns + step
    view = market.window(bars, lo, hi)
    candles = market.resample(view, step, tf)
    if start_ns is not None:
        candles = candles[candles["open_time"].astype("int64") >= start_ns]
    truncated = len(candles) > limit
    candles = candles.iloc[:limit]
    times = iso_ns(candles["open_time"].astype("int64").to_numpy())
    values = candles[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float)
    rows = [[t, *map(float, r)] for t, r in zip(times, values, strict=True)]
    return {"symbol": entry["symbol"], "instrument_id": entry["instrument_id"], "trading_mode": entry["trading_mode"],
            "timeframe": timeframe, "source_bar_type": bar_type,
            "columns": ["open_time", "open", "high", "low", "close", "volume"],
            "bars_per_candle": [int(b) for b in candles["bars"]], "count": len(rows), "truncated": truncated,
            "data": rows}


def register(bp: Blueprint, ctx: AppContext) -> None:
    """Add the catalog and candle routes to the ``api`` blueprint."""

    @bp.get("/catalog/symbols")
    def catalog_symbols():
        mode = request.args.get("trading_mode")
        if mode not in (None, "", "spot", "futures"):
            raise ApiError(400, f"trading_mode={mode!r}: expected 'spot' or 'futures'", "trading_mode")
        return jsonify([s for s in symbols(ctx) if not mode or s["trading_mode"] == mode])

    @bp.get("/catalog/trading_modes")
    def trading_modes():
        return jsonify(sorted({s["trading_mode"] for s in symbols(ctx)}))

    @bp.get("/catalog/inventory")
    def inventory():
        return jsonify(_records(ctx.inventory()))

    @bp.get("/ohlcv")
    def get_ohlcv():
        allowed = {"symbol", "trading_mode", "timeframe", "start", "end", "limit"}
        unknown = sorted(set(request.args) - allowed)
        if unknown:
            raise ApiError(400, f"unknown query parameter(s) {unknown}; allowed: {sorted(allowed)}", unknown[0])
        entry = resolve_symbol(ctx, request.args.get("symbol"), request.args.get("trading_mode"))
        timeframe = request.args.get("timeframe") or "1m"
        limit = _int_arg("limit", 1000, 1, MAX_OHLCV_LIMIT)
        return jsonify(ohlcv(ctx, entry, timeframe, _time_arg("start"), _time_arg("end"), limit))
