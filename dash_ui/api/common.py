"""What every API route shares: :class:`ApiError` (the JSON error of every 4xx answer), strict
parsing of request bodies and query parameters (limits below), and the API's one time format
(ISO 8601 UTC with nanoseconds) for values and tables.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
from flask import request

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
