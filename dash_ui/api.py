"""JSON API on the app's Flask server (``/api/...``), for scripts and other tools.

Every error is JSON ``{"error": "<message>", "field": "<parameter or key path or null>"}`` with a 4xx
status (400 invalid input, 404 unknown run/symbol/route, 405 wrong method, 413 body too large). The
endpoints are documented in ``docs/dash.md``.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from dash_ui import market
from dash_ui.data import RunNotFound, valid_run_key
from dash_ui.jobs import SubmissionError

if TYPE_CHECKING:
    from dash_ui.app import AppContext

MAX_BODY = 256 * 1024
#: deepest JSON nesting accepted in a request body (a run config needs 4)
MAX_DEPTH = 32
#: most values (objects, arrays, scalars) in one request body
MAX_ITEMS = 20_000
MAX_OHLCV_LIMIT = 50_000
MAX_TRADES_LIMIT = 100_000
#: most rows of one CSV answer (the default: a whole table)
MAX_CSV_ROWS = 10_000_000
#: times accepted in query parameters (UTC ns): 1970-01-01 .. 2200-01-01
MIN_TIME_NS = 0
MAX_TIME_NS = 7_258_118_400 * 1_000_000_000


class ApiError(Exception):
    """An invalid request: ``status`` (4xx), message and the offending ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.extra = status, message, field, extra or {}


def _check_args() -> None:
    """Query parameters: no NUL or control characters, none given twice or empty (``?limit=``)."""
    for name in request.args:
        values = request.args.getlist(name)
        if len(values) > 1:
            raise ApiError(400, f"{name}: given {len(values)} times, expected once", name)
        if any(ord(ch) < 32 for ch in name + values[0]):
            raise ApiError(400, f"{name}: control characters (NUL ...) are not allowed", name)
        if values[0] == "":
            raise ApiError(400, f"{name}: given empty; give a value or leave the parameter out", name)


def _path_of(path: list) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def parse_json_body(data: bytes) -> Any:
    """A request body parsed as strict JSON: UTF-8, at most :data:`MAX_BODY` bytes (checked by the
    caller), nesting <= :data:`MAX_DEPTH`, <= :data:`MAX_ITEMS` values, no ``NaN``/``Infinity``
    (nor numbers that overflow to them), no NUL/control characters in keys or strings.

    Raises:
        ApiError: 400 naming the offending key path (``venues[0].starting_balances[0]``) or ``body``.
    """
    import re

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"request body is not UTF-8 ({e.reason} at byte {e.start})", "body") from None
    if not text.strip():
        raise ApiError(400, "request body must be a JSON object (Content-Type: application/json)", "body")
    # nesting depth before parsing (deep nesting would exhaust the parser's recursion)
    bare = np.frombuffer(re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', data), dtype=np.uint8)
    step = (np.isin(bare, (ord("["), ord("{"))).astype(np.int64) - np.isin(bare, (ord("]"), ord("}"))))
    depth = int(np.cumsum(step).max()) if step.size else 0
    if depth > MAX_DEPTH:
        raise ApiError(400, f"JSON nested {depth} levels deep; at most {MAX_DEPTH} allowed", "body")

    def no_constant(name: str) -> Any:
        raise ApiError(400, f"{name} is not allowed in JSON (give a finite number)", "body")

    try:
        value = json.loads(text, parse_constant=no_constant)
    except ApiError:
        raise
    except (ValueError, RecursionError) as e:
        raise ApiError(400, f"request body is not valid JSON ({e})", "body") from None
    count = 0
    stack: list[tuple[Any, list]] = [(value, [])]
    while stack:
        v, path = stack.pop()
        count += 1
        if count > MAX_ITEMS:
            raise ApiError(400, f"JSON body holds more than {MAX_ITEMS} values", "body")
        if isinstance(v, float) and not math.isfinite(v):
            raise ApiError(400, f"{_path_of(path)}: number out of range (overflows to infinity)", _path_of(path))
        if isinstance(v, str) and any(ord(ch) < 32 and ch not in "\t\n\r" for ch in v):
            raise ApiError(400, f"{_path_of(path)}: control characters (NUL ...) are not allowed in strings",
                           _path_of(path))
        if isinstance(v, dict):
            for k, x in v.items():
                if any(ord(ch) < 32 for ch in k):
                    raise ApiError(400, f"{_path_of(path)}: a key holds control characters (NUL ...)",
                                   _path_of(path))
                stack.append((x, [*path, k]))
        elif isinstance(v, list):
            stack.extend((x, [*path, i]) for i, x in enumerate(v))
    return value


def read_body() -> bytes:
    """The request body, at most :data:`MAX_BODY` bytes, also when it is chunked/streamed without a
    Content-Length (reads at most ``MAX_BODY + 1`` bytes). Raises ApiError 413 beyond."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"body larger than {MAX_BODY} bytes", "body")
    data = request.stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise ApiError(413, f"body larger than {MAX_BODY} bytes", "body")
    return data


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}={raw!r}: expected an integer", name) from None
    if not lo <= v <= hi:
        raise ApiError(400, f"{name}={v}: expected {lo} <= {name} <= {hi}", name)
    return v


def _time_arg(name: str) -> int | None:
    """UTC ns from an ISO date/datetime or epoch milliseconds; None if absent."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        if raw.lstrip("-").isdigit():
            ns = int(raw) * 1_000_000
        else:
            ts = pd.Timestamp(raw)
            if ts is pd.NaT:
                raise ValueError("not a time")
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            ns = int(ts.value)
    except (ValueError, OverflowError, TypeError, pd.errors.OutOfBoundsDatetime):
        raise ApiError(400, f"{name}={raw!r}: expected an ISO-8601 date/datetime (UTC) or epoch milliseconds",
                       name) from None
    if not MIN_TIME_NS <= ns <= MAX_TIME_NS:
        raise ApiError(400, f"{name}={raw!r}: outside 1970-01-01 .. 2200-01-01 UTC", name)
    return ns


def _finite(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


#: ISO-8601 UTC times as the API writes them: ``2025-06-01T00:01:00.000000000Z`` (nanoseconds always shown)
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)$")


def iso_ns(ns: Any) -> Any:
    """UTC ns (int or int array) -> ISO-8601 ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (None for None/NaT)."""
    if ns is None:
        return None
    arr = np.asarray(ns, dtype="int64").astype("datetime64[ns]")
    txt = np.char.add(np.datetime_as_string(arr, unit="ns"), "Z")
    return str(txt) if txt.ndim == 0 else txt.astype(object)


def iso_time(v: Any) -> Any:
    """Any time value (ISO string with an offset, pandas/py datetime, epoch seconds float) -> :func:`iso_ns`."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    if isinstance(v, int | float) and not isinstance(v, bool):  # epoch seconds (job times; µs precision)
        return iso_ns(round(v * 1e6) * 1000)
    ts = pd.Timestamp(v)
    if ts is pd.NaT:
        return None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return iso_ns(ts.value)


def norm_times(v: Any) -> Any:
    """Every ISO-8601 time string in a JSON value (metrics.json's ``start``, ``max_drawdown_peak``, ...)
    rewritten in the API's one format (:data:`ISO_RE` -> :func:`iso_ns`)."""
    if isinstance(v, dict):
        return {k: norm_times(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm_times(x) for x in v]
    if isinstance(v, str) and ISO_RE.match(v):
        try:
            return iso_time(v)
        except (ValueError, OverflowError):
            return v
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _time_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns and int64 ``ts_*`` columns (UTC ns, e.g. orders' ``ts_init``) as ISO strings."""
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_datetime64_any_dtype(col):
            utc = col.dt.tz_convert("UTC").dt.tz_localize(None) if col.dt.tz is not None else col
            vals = utc.to_numpy(dtype="datetime64[ns]")
            txt = np.char.add(np.datetime_as_string(vals, unit="ns"), "Z").astype(object)
            txt[np.isnat(vals)] = None
            out[c] = txt
        elif str(c).startswith("ts_") and pd.api.types.is_integer_dtype(col):
            out[c] = iso_ns(col.to_numpy(dtype="int64"))
    return out


def _records(df: pd.DataFrame) -> list[dict]:
    """JSON records; times as ISO-8601 UTC strings with all nanoseconds (pandas' ISO output keeps µs)."""
    return json.loads(_time_columns(df).to_json(orient="records", date_format="iso", date_unit="ns"))


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


def _check_key(run_id: str) -> None:
    if not valid_run_key(run_id):
        raise ApiError(400, f"id={run_id!r}: not a valid run id (a folder name, or research/<sweep>/<run_id> for "
                            "a sweep trial)", "id")


def job_json(job) -> dict:
    """A job as JSON: times ISO-8601 UTC, the worker log only for failed jobs."""
    d = job.to_dict()
    for k in ("submitted", "started", "finished"):
        d[k] = iso_time(d.get(k))
    d["log_tail"] = (job.log_tail or "")[-2000:] if job.status == "failed" else ""
    return d


def run_status(ctx: AppContext, run_id: str) -> dict:
    """Status of a run id: ``done`` (results folder exists), or the job's state; 404 if unknown."""
    _check_key(run_id)
    job = ctx.jobs.get(run_id)
    if ctx.store.exists(run_id):
        run = ctx.store.get(run_id)
        return {"id": run_id, "status": "done", "progress": 1.0, "stage": "done", "run": norm_times(run.info),
                "metrics": norm_times(run.metrics), "error": None,
                "links": {k: f"/api/runs/{run_id}/{k}" for k in ("metrics", "config", *TABLES, "equity")}
                | {"page": f"/run/{run_id}"}}
    if job is None:
        raise ApiError(404, f"id={run_id!r}: no such run or job", "id")
    return {k: v for k, v in job_json(job).items() if k != "config"}


def _get_run(ctx: AppContext, run_id: str):
    """The results of a run. A queued/running job: 409 (not there yet); a failed or cancelled job: 404 with
    the job's error (``status``, ``job_error``, ``log_tail``); unknown: 404."""
    _check_key(run_id)
    try:
        return ctx.store.get(run_id)
    except RunNotFound:
        job = ctx.jobs.get(run_id)
        if job is not None and job.status in ("queued", "running"):
            raise ApiError(409, f"id={run_id!r}: run is {job.status} ({job.progress:.0%}), results not available "
                                "yet", "id", {"status": job.status}) from None
        if job is not None:
            raise ApiError(404, f"id={run_id!r}: run {job.status}: {job.error}", "id",
                           {"status": job.status, "job_error": job.error,
                            "log_tail": (job.log_tail or "")[-2000:]}) from None
        raise ApiError(404, f"id={run_id!r}: no such run", "id") from None


#: per-run tables served as JSON pages or CSV: name -> (Run method, sort column or None)
TABLES = {"trades": "trades", "fills": "fills", "orders": "orders", "positions": "positions", "funding": "funding"}


def table_of(run, name: str) -> pd.DataFrame:
    """``<name>.parquet`` of a run (empty frame when the run has none: a spot run has no funding)."""
    return run._parquet(TABLES[name])


def csv_text(df: pd.DataFrame) -> str:
    """A table as CSV: header row, times ISO-8601 UTC with nanoseconds, floats in their shortest exact form."""
    return _time_columns(df).to_csv(index=False, lineterminator="\n")


def register_api(server: Flask, ctx: AppContext) -> None:
    """Add the ``/api`` routes and JSON error handlers to the app's Flask server."""
    bp = Blueprint("api", __name__, url_prefix="/api")

    @bp.get("/openapi.json")
    def openapi_doc():
        from dash_ui.openapi import openapi_document

        ids = ctx.store.run_ids()
        syms = symbols(ctx)
        return jsonify(openapi_document(ids[0] if ids else None, syms[0]["instrument_id"] if syms else None))

    @bp.get("/health")
    def health():
        return jsonify({"status": "ok", "results": str(ctx.store.root), "catalog": str(ctx.catalog_root)})

    @bp.get("/strategies")
    def strategies():
        from nautilus_app.strategy_loader import REQUIRED, StrategyLoadError, discover_strategies

        try:
            cat = discover_strategies()
        except StrategyLoadError as e:
            raise ApiError(500, str(e), "strategies") from e
        return jsonify({n: {"origin": ref.origin, "strategy_path": ref.strategy_path, "doc": ref.doc(),
                            "parameters": {k: None if f.default is REQUIRED else f.default
                                           for k, f in ref.parameters().items()},
                            "types": {k: f.type_name() for k, f in ref.parameters().items()}}
                        for n, ref in cat.strategies.items()})

    @bp.before_request
    def check_query():
        _check_args()

    @bp.post("/backtests")
    def submit():
        body = parse_json_body(read_body())
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object (Content-Type: application/json)", "body")
        if "strategy" in body:
            # short form: {"strategy": name, "params": {...}, "config": {...rest of the config...}}
            extra = set(body) - {"strategy", "params", "config"}
            if extra:
                raise ApiError(400, f"unknown key(s) {sorted(extra)} next to 'strategy' (short form takes "
                                    "strategy, params, config)", sorted(extra)[0])
            cfg = body.get("config") or {}
            if not isinstance(cfg, dict):
                raise ApiError(400, "config must be an object", "config")
            params = body.get("params") or {}
            if not isinstance(params, dict):
                raise ApiError(400, "params must be an object", "params")
            if "strategies" in cfg:
                raise ApiError(400, "give either strategy/params or config.strategies, not both", "strategies")
            if not isinstance(body["strategy"], str) or not body["strategy"]:
                raise ApiError(400, f"strategy = {body['strategy']!r}: expected a strategy name (GET /api/strategies)",
                               "strategy")
            body = {**cfg, "strategies": [{"name": body["strategy"], "params": params}]}
        try:
            job = ctx.jobs.submit(body)
        except SubmissionError as e:
            raise ApiError(400, str(e), e.field) from None
        return jsonify({"id": job.id, "status": job.status, "status_url": f"/api/runs/{job.id}",
                        "page": f"/run/{job.id}"}), 202

    @bp.get("/backtests")
    def list_jobs():
        return jsonify([{k: v for k, v in job_json(j).items() if k != "log_tail"} for j in ctx.jobs.list()])

    @bp.get("/backtests/<path:run_id>")
    def job_status(run_id: str):
        return jsonify(run_status(ctx, run_id))

    @bp.delete("/backtests/<path:run_id>")
    def cancel_job(run_id: str):
        """Cancel a queued (never started) or running (worker killed) job: 200 with the job; 409 when it
        already finished (done, failed, cancelled) or is a run this server did not launch; 404 unknown."""
        _check_key(run_id)
        job = ctx.jobs.get(run_id)
        if job is None:
            if ctx.store.exists(run_id):
                raise ApiError(409, f"id={run_id!r}: a finished run (not a job of this server): nothing to cancel",
                               "id", {"status": "done"})
            raise ApiError(404, f"id={run_id!r}: no such job", "id")
        if job.status not in ("queued", "running"):
            raise ApiError(409, f"id={run_id!r}: job already {job.status}: nothing to cancel", "id",
                           {"status": job.status})
        job = ctx.jobs.cancel(run_id)
        return jsonify({k: v for k, v in job_json(job).items() if k != "config"})

    @bp.get("/runs")
    def runs():
        trials = request.args.get("trials", "false")
        if trials not in ("true", "false"):
            raise ApiError(400, f"trials={trials!r}: expected true or false", "trials")
        df = ctx.store.list_runs(trials=trials == "true")
        return jsonify([{k: norm_times(_safe(v)) for k, v in r.items()} for r in df.to_dict("records")])

    @bp.get("/runs/<path:run_id>/metrics")
    def metrics(run_id: str):
        return jsonify(norm_times(_get_run(ctx, run_id).metrics))

    @bp.get("/runs/<path:run_id>/config")
    def config(run_id: str):
        return jsonify(_get_run(ctx, run_id).config)

    def table(run_id: str, name: str):
        r = _get_run(ctx, run_id)
        fmt = request.args.get("format", "json")
        if fmt not in ("json", "csv"):
            raise ApiError(400, f"format={fmt!r}: expected json or csv", "format")
        t = table_of(r, name)
        if fmt == "csv":
            limit = _int_arg("limit", MAX_CSV_ROWS, 1, MAX_CSV_ROWS)
            offset = _int_arg("offset", 0, 0, 10**9)
            body = csv_text(t.iloc[offset:offset + limit])
            fname = f"{run_id.replace('/', '_')}-{name}.csv"
            return Response(body, mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{fname}"'})
        limit = _int_arg("limit", 1000, 1, MAX_TRADES_LIMIT)
        offset = _int_arg("offset", 0, 0, 10**9)
        page = t.iloc[offset:offset + limit]
        return jsonify({"id": run_id, "total": len(t), "offset": offset, "limit": limit,
                        "columns": [str(c) for c in t.columns], name: _records(page)})

    for _name in TABLES:
        bp.add_url_rule(f"/runs/<path:run_id>/{_name}", f"table_{_name}",
                        lambda run_id, _n=_name: table(run_id, _n), methods=["GET"])

    @bp.get("/runs/<path:run_id>/equity")
    def equity(run_id: str):
        r = _get_run(ctx, run_id)
        max_points = _int_arg("max_points", 5000, 0, 10**8)
        start, end = _time_arg("start"), _time_arg("end")
        if start is not None and end is not None and end < start:
            raise ApiError(400, "end must not be before start", "end")
        a = r.equity_arrays()
        cols = [c for c in ("equity", "benchmark_equity", "drawdown") if c in a]
        if max_points == 0:
            sel = market.window(a, start, None if end is None else end + 1)
            x, ys, raw = sel["ts"], {c: sel[c] for c in cols}, sel["ts"].size
        else:
            x, ys, raw = market.downsample_xy(a["ts"], {c: a[c] for c in cols}, max_points, start, end)
            keep = np.ones(x.size, bool)
            if start is not None:
                keep &= x >= start
            if end is not None:
                keep &= x <= end
            x, ys = x[keep], {c: v[keep] for c, v in ys.items()}
            raw = int(np.count_nonzero((a["ts"] >= (start or -2**62)) & (a["ts"] <= (end or 2**62))))
        times = iso_ns(np.asarray(x, dtype=np.int64)) if x.size else []
        vals = np.c_[tuple(ys[c] for c in cols)] if x.size else np.empty((0, len(cols)))
        return jsonify({"id": run_id, "columns": ["ts", *cols], "points": int(x.size), "raw_points": int(raw),
                        "downsampled": bool(x.size < raw), "method": "minmax (tsdownsample)" if x.size < raw else None,
                        "data": [[t, *map(_finite, row)] for t, row in zip(times, vals, strict=True)]})

    @bp.get("/runs/<path:run_id>")
    def run(run_id: str):
        return jsonify(run_status(ctx, run_id))

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

    @bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    def unknown(rest: str):
        allowed = _allowed_methods(server, request.path)
        if allowed:
            e = ApiError(405, f"{request.method} not allowed on {request.path}; allowed: {', '.join(allowed)}",
                         "method")
            e.allow = allowed  # type: ignore[attr-defined]
            raise e
        raise ApiError(404, f"no API endpoint /api/{rest} (see docs/dash.md)", None)

    server.register_blueprint(bp)

    @server.errorhandler(ApiError)
    def api_error(e: ApiError):
        resp = jsonify({"error": e.message, "field": e.field, **e.extra})
        if getattr(e, "allow", None):
            resp.headers["Allow"] = ", ".join(e.allow)  # type: ignore[attr-defined]
        return resp, e.status

    @server.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if request.path.startswith("/api/"):
            resp = jsonify({"error": f"{e.code} {e.name}: {e.description}", "field": None})
            if e.code == 405:
                resp.headers["Allow"] = ", ".join(_allowed_methods(server, request.path))
            return resp, e.code
        return e

    @server.errorhandler(Exception)
    def internal_error(e: Exception):
        """Never a bare 500 page on the API: a JSON error (the server log has the traceback)."""
        if isinstance(e, HTTPException):
            return http_error(e)
        server.logger.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith("/api/"):
            return jsonify({"error": f"internal error ({type(e).__name__}); see the server log", "field": None}), 500
        return "internal error", 500


def _allowed_methods(server: Flask, path: str) -> list[str]:
    """Methods of the API routes (other than the catch-all) that match ``path``."""
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    adapter = server.url_map.bind("localhost")
    out = set()
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        try:
            endpoint, _ = adapter.match(path, method=method)
        except (NotFound, MethodNotAllowed):
            continue
        if endpoint != "api.unknown":
            out.add(method)
    return sorted(out)
