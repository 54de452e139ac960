"""The OpenAPI 3.1 document of the JSON API (:mod:`dash_ui.api`), served at ``GET /api/openapi.json``.

Written by hand next to the routes and checked against the real running server by
``tests/test_api_openapi.py`` (schemathesis: generated requests for every operation, every answer
validated against the documented status codes, content types and schemas), and the document's routes
against the server's URL map (no route undocumented, none documented that does not exist).

Conventions described here once: every error is ``{"error": <message>, "field": <parameter or key path
or null>}`` (plus ``status``/``job_error``/``log_tail`` for runs that failed); every time the API writes is
ISO 8601 UTC with nanoseconds, ``2025-06-01T00:01:00.000000000Z``; times it reads are ISO-8601
dates/datetimes (UTC when no offset) or epoch milliseconds, within 1970..2200.
"""

from __future__ import annotations

from typing import Any

#: strings without control characters (the API refuses NUL & co. with 400)
NO_CTRL = "^[^\\u0000-\\u001f]*$"
TIME_OUT = {"type": "string", "format": "date-time", "pattern": "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z$",
            "description": "ISO 8601 UTC with nanoseconds", "examples": ["2025-06-01T00:01:00.000000000Z"]}
TIME_OUT_NULL = {"anyOf": [TIME_OUT, {"type": "null"}]}
#: a time parameter as the API reads it: a date, a datetime (UTC when no offset) or epoch ms, 1970..2200
TIME_IN = {"type": "string", "pattern": (
    "^(?:(?:19[7-9]\\d|20\\d\\d|21\\d\\d)-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])"
    "(?:T(?:[01]\\d|2[0-3]):[0-5]\\d(?::[0-5]\\d(?:\\.\\d{1,9})?)?Z?)?|\\d{1,13})$"),
    "description": "ISO-8601 date or datetime (UTC when no offset) or epoch milliseconds; 1970..2200",
    "examples": ["2025-06-03", "2025-06-03T12:00:00Z", "1748908800000"]}
ERROR = {"$ref": "#/components/schemas/Error"}
ANY_OBJECT = {"type": "object", "additionalProperties": True}
NUM_NULL = {"type": ["number", "null"]}


def _err(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, schema: dict, description: str, where: str = "query", required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "description": description,
            "schema": schema}


def _op(summary: str, responses: dict, params: list | None = None, *, errors: tuple = (400,), **extra) -> dict:
    out = {"summary": summary, "parameters": params or [], "responses": dict(responses)}
    texts = {400: "invalid parameter or body (field names it)", 404: "unknown run, job, symbol or route",
             409: "the job is queued or running (results not there yet) / already finished (cancel)",
             413: "body larger than 256 kB", 401: "token missing or wrong (servers started with a token)",
             405: "method not allowed (Allow header lists the allowed ones)"}
    for code in (*errors, 401, 405):
        out["responses"].setdefault(str(code), _err(texts[code]))
    return out | extra


RUN_ID = _param("id", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,199}(/[A-Za-z0-9][A-Za-z0-9_.:+-]{0,199}){0,3}$"},
                "run id (results folder name) or a sweep trial's relative id `research/<sweep>/<run_id>`", "path")
LIMIT = _param("limit", {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 1000}, "rows per page")
OFFSET = _param("offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "default": 0}, "first row")
FORMAT = _param("format", {"type": "string", "enum": ["json", "csv"], "default": "json"},
                "`csv`: the table (every row unless limit/offset given) as text/csv, times ISO 8601 UTC")

TABLE_DOCS = {
    "trades": "closed round trips (and positions open at the end, `is_open`): entry/exit time and price, side, "
              "quantity, pnl, return_frac, fees, funding, slippage_cost, liquidation flags, exit_reason (docs/metrics.md)",
    "fills": "every fill (Nautilus fills report): order, side, last_qty, last_px, commission, reference_price, "
             "slippage_cost, ts_event",
    "orders": "every order (Nautilus orders report): side, type, quantity, status, filled_qty, avg_px, ts_init, ts_last",
    "positions": "every position (Nautilus positions report, snapshots included): entry, side, peak_qty, "
                 "avg_px_open/close, realized_pnl, ts_opened, ts_closed, duration_ns",
    "funding": "funding payments of perpetual positions: ts, instrument_id, position_id, amount (USDT, paid < 0); "
               "empty for spot runs",
}


def _schemas() -> dict:
    job = {"type": "object", "required": ["id", "status", "progress", "stage"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
        "progress": {"type": "number", "minimum": 0, "maximum": 1}, "stage": {"type": "string"},
        "submitted": TIME_OUT_NULL, "started": TIME_OUT_NULL, "finished": TIME_OUT_NULL,
        "error": {"type": ["string", "null"]}, "log_tail": {"type": "string"}, "config": ANY_OBJECT,
    }}
    return {
        "Error": {"type": "object", "required": ["error", "field"], "properties": {
            "error": {"type": "string", "minLength": 1}, "field": {"type": ["string", "null"]},
            "status": {"type": "string"}, "job_error": {"type": ["string", "null"]}, "log_tail": {"type": "string"}}},
        "Job": job,
        "RunStatus": {"type": "object", "required": ["id", "status", "progress", "stage", "error"], "properties": {
            **job["properties"], "metrics": ANY_OBJECT, "run": ANY_OBJECT,
            "links": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "RunRow": {"type": "object", "required": ["run_id", "name", "start", "end", "created"], "properties": {
            "run_id": {"type": "string"}, "name": {"type": "string"}, "strategies": {"type": "string"},
            "instruments": {"type": "string"}, "start": TIME_OUT_NULL, "end": TIME_OUT_NULL, "created": TIME_OUT,
            "synthetic": {"type": "boolean"}, "total_return": NUM_NULL, "sharpe": NUM_NULL, "max_drawdown": NUM_NULL,
            "trades": {"type": ["integer", "null"]}}},
        "Table": {"type": "object", "required": ["id", "total", "offset", "limit", "columns"], "properties": {
            "id": {"type": "string"}, "total": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer"}, "limit": {"type": "integer"},
            "columns": {"type": "array", "items": {"type": "string"}},
            **{name: {"type": "array", "items": ANY_OBJECT} for name in TABLE_DOCS}}},
        "Equity": {"type": "object", "required": ["columns", "data", "points", "raw_points", "downsampled"],
                   "properties": {
                       "id": {"type": "string"}, "columns": {"type": "array", "items": {"type": "string"}, "minItems": 2,
                                   "description": "`ts` (ISO 8601 UTC), then equity, benchmark_equity, drawdown"},
                       "points": {"type": "integer"}, "raw_points": {"type": "integer"},
                       "downsampled": {"type": "boolean"}, "method": {"type": ["string", "null"]},
                       "data": {"type": "array", "items": {"type": "array", "minItems": 2, "items": {
                           "anyOf": [TIME_OUT, {"type": ["number", "null"]}]}}}}},
        "Symbol": {"type": "object", "required": ["symbol", "instrument_id", "venue", "trading_mode", "bar_types",
                                                  "first", "last", "rows"], "properties": {
            "symbol": {"type": "string"}, "instrument_id": {"type": "string"}, "venue": {"type": "string"},
            "trading_mode": {"type": "string", "enum": ["spot", "futures"]},
            "bar_types": {"type": "array", "items": {"type": "string"}}, "first": TIME_OUT, "last": TIME_OUT,
            "rows": {"type": "integer", "minimum": 0}}},
        "Ohlcv": {"type": "object", "required": ["columns", "data", "count", "truncated", "bars_per_candle",
                                                 "source_bar_type", "timeframe"], "properties": {
            "symbol": {"type": "string"}, "instrument_id": {"type": "string"}, "trading_mode": {"type": "string"},
            "timeframe": {"type": "string"}, "source_bar_type": {"type": "string"},
            "columns": {"const": ["open_time", "open", "high", "low", "close", "volume"]},
            "bars_per_candle": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "count": {"type": "integer", "minimum": 0}, "truncated": {"type": "boolean"},
            "data": {"type": "array", "items": {"type": "array", "minItems": 6, "maxItems": 6, "items": {
                "anyOf": [TIME_OUT, {"type": "number"}]}, "description": "[open_time (ISO 8601 UTC), open, high, low, "
                                                                       "close, volume]"}}}},
        "BacktestRequest": {
            "description": "A run config (the TOML schema of docs/config.md as JSON; `catalog` may be left out) "
                           "or the short form `{strategy, params, config}`. Validated with the same code as a "
                           "TOML file (nautilus_app.config.parse_config) plus the data it needs (bars in "
                           "[start, end), funding for perpetuals) before anything is queued.",
            "oneOf": [
                {"type": "object", "required": ["strategy"], "additionalProperties": False, "properties": {
                    "strategy": {"type": "string", "minLength": 1, "pattern": NO_CTRL},
                    "params": ANY_OBJECT, "config": ANY_OBJECT}},
                {"type": "object", "required": ["name", "bar_types", "venues", "strategies"],
                 "not": {"required": ["strategy"]},
                 "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
                                "start": {"type": "string"}, "end": {"type": "string"},
                                "bar_types": {"type": "array", "items": {"type": "string"}},
                                "venues": {"type": "array", "items": ANY_OBJECT},
                                "strategies": {"type": "array", "items": ANY_OBJECT}}},
            ]},
        "Submitted": {"type": "object", "required": ["id", "status", "status_url", "page"], "properties": {
            "id": {"type": "string"}, "status": {"const": "queued"}, "status_url": {"type": "string"},
            "page": {"type": "string"}}},
    }


def openapi_document(example_run: str | None = None, example_symbol: str | None = None) -> dict[str, Any]:
    """The OpenAPI document. ``example_run`` / ``example_symbol``: values of this server's results and
    catalog given as examples (a client, or schemathesis, then also tries requests that succeed)."""
    run_id = dict(RUN_ID, schema=dict(RUN_ID["schema"]))
    if example_run:
        run_id["schema"]["examples"] = [example_run]
    symbol_schema = {"type": "string", "minLength": 1, "pattern": NO_CTRL}
    if example_symbol:
        symbol_schema["examples"] = [example_symbol]
    run_ops = {
        f"/api/runs/{{id}}/{name}": {"get": _op(
            f"{name} of a run: a JSON page (limit/offset) or CSV (format=csv). {doc}",
            {"200": {"description": f"a page of {name}, or CSV",
                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Table"}},
                                 "text/csv": {"schema": {"type": "string"}}}}},
            [run_id, LIMIT, OFFSET, FORMAT], errors=(400, 404, 409))}
        for name, doc in TABLE_DOCS.items()}
    paths = {
        "/api/openapi.json": {"get": _op("this document", {"200": _json("OpenAPI 3.1 document", ANY_OBJECT)})},
        "/api/health": {"get": _op("liveness, results root and catalog", {"200": _json("ok", {
            "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"},
                                                                      "results": {"type": "string"},
                                                                      "catalog": {"type": "string"}}})})},
        "/api/strategies": {"get": _op("registered strategies (built-in and user folder) with parameters, defaults "
                                       "and types", {"200": _json("by name", {"type": "object", "additionalProperties": {
                                           "type": "object", "required": ["parameters", "types"], "properties": {
                                               "parameters": ANY_OBJECT, "types": ANY_OBJECT}}})})},
        "/api/backtests": {
            "get": _op("jobs submitted to this server (newest first)", {"200": _json("jobs", {
                "type": "array", "items": {"$ref": "#/components/schemas/Job"}})}),
            "post": _op("validate and queue a backtest (nothing is queued when invalid)",
                        {"202": _json("queued", {"$ref": "#/components/schemas/Submitted"})},
                        errors=(400, 413),
                        requestBody={"required": True, "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/BacktestRequest"}}}}),
        },
        "/api/backtests/{id}": {
            "get": _op("status of a job or run (same as GET /api/runs/{id})",
                       {"200": _json("status", {"$ref": "#/components/schemas/RunStatus"})}, [run_id],
                       errors=(400, 404)),
            "delete": _op("cancel a queued (never started) or running (worker killed) job",
                          {"200": _json("the cancelled job", {"$ref": "#/components/schemas/Job"})}, [run_id],
                          errors=(400, 404, 409)),
        },
        "/api/runs": {"get": _op("every complete run with its key metrics (the runs list), newest first",
                                 {"200": _json("runs", {"type": "array", "items": {"$ref": "#/components/schemas/RunRow"}})},
                                 [_param("trials", {"type": "string", "enum": ["true", "false"], "default": "false"},
                                         "`true`: also the sweep trials under the results root, by relative id "
                                         "(`research/<sweep>/<run_id>`)")])},
        "/api/runs/{id}": {"get": _op(
            "status of a run: `done` with metrics, run.json and links; a job's queued/running/failed/cancelled "
            "state with its error", {"200": _json("status", {"$ref": "#/components/schemas/RunStatus"})}, [run_id],
            errors=(400, 404))},
        "/api/runs/{id}/metrics": {"get": _op("metrics.json (docs/metrics.md; times in the API's format)",
                                              {"200": _json("metrics", ANY_OBJECT)}, [run_id], errors=(400, 404, 409))},
        "/api/runs/{id}/config": {"get": _op("config.json: the validated config the run used",
                                             {"200": _json("config", ANY_OBJECT)}, [run_id], errors=(400, 404, 409))},
        "/api/runs/{id}/equity": {"get": _op(
            "equity, buy-and-hold benchmark and drawdown; MinMax-downsampled to max_points (0 = every sample)",
            {"200": _json("equity", {"$ref": "#/components/schemas/Equity"})},
            [run_id, _param("max_points", {"type": "integer", "minimum": 0, "maximum": 100_000_000, "default": 5000},
                            "points after downsampling; 0 = every sample"),
             _param("start", TIME_IN, "first time (inclusive)"), _param("end", TIME_IN, "last time (inclusive)")],
            errors=(400, 404, 409))},
        **run_ops,
        "/api/catalog/symbols": {"get": _op(
            "instruments with stored bars: symbol, instrument id, venue, trading mode, bar types, first/last bar close",
            {"200": _json("symbols", {"type": "array", "items": {"$ref": "#/components/schemas/Symbol"}})},
            [_param("trading_mode", {"type": "string", "enum": ["spot", "futures"]}, "only this mode")])},
        "/api/catalog/trading_modes": {"get": _op("trading modes present", {"200": _json("modes", {
            "type": "array", "items": {"type": "string", "enum": ["spot", "futures"]}})})},
        "/api/catalog/inventory": {"get": _op("the catalog inventory (kind, series, instrument, first/last, rows, "
                                              "files, size, gaps)", {"200": _json("rows", {
                                                  "type": "array", "items": ANY_OBJECT})})},
        "/api/ohlcv": {"get": _op(
            "candles of an instrument resampled on the server from its finest stored time bars; open times in "
            "[start, end), the first `limit`",
            {"200": _json("candles", {"$ref": "#/components/schemas/Ohlcv"})},
            [_param("symbol", symbol_schema, "instrument id, raw symbol or ccxt symbol (BTC/USDT, BTC/USDT:USDT)",
                    required=True),
             _param("trading_mode", {"type": "string", "enum": ["spot", "futures"]},
                    "needed when a raw symbol exists in both modes"),
             _param("timeframe", {"type": "string", "enum": ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h",
                                                             "8h", "12h", "1d", "1w"], "default": "1m"}, "candle size"),
             _param("start", TIME_IN, "first candle open time (inclusive)"),
             _param("end", TIME_IN, "candle open times before this"),
             _param("limit", {"type": "integer", "minimum": 1, "maximum": 50_000, "default": 1000}, "most candles")],
            errors=(400, 404))},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "nautilus-app results API", "version": "1",
                 "description": __doc__.split("\n\n", 2)[2].strip() if __doc__ else ""},
        "paths": paths,
        "components": {"schemas": _schemas(), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "required when the server was started "
                       "with a token (non-loopback host, --token-file, $NAUTILUS_DASH_TOKEN)"}}},
        "security": [{}, {"bearer": []}],
    }
