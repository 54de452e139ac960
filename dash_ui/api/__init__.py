"""JSON API on the app's Flask server (``/api/...``), for scripts and other tools.

Every error is JSON ``{"error": "<message>", "field": "<parameter or key path or null>"}`` with a 4xx
status (400 invalid input, 404 unknown run/symbol/route, 405 wrong method, 413 body too large). The
endpoints are documented in ``docs/dash.md`` and :mod:`dash_ui.openapi`.

Modules: :mod:`~dash_ui.api.common` (errors, strict request parsing, time formatting),
:mod:`~dash_ui.api.meta` (OpenAPI document, health, strategies), :mod:`~dash_ui.api.backtests` (jobs),
:mod:`~dash_ui.api.runs` (results folders), :mod:`~dash_ui.api.catalog` (catalog and candles).
:func:`register_api` puts them on one ``api`` blueprint, in that order, with the catch-all route and
the JSON error handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from dash_ui.api import backtests, catalog, meta, runs
from dash_ui.api.common import MAX_BODY, ApiError, _check_args, parse_json_body

if TYPE_CHECKING:
    from dash_ui.context import AppContext

__all__ = ["MAX_BODY", "ApiError", "parse_json_body", "register_api"]


def register_api(server: Flask, ctx: AppContext) -> None:
    """Add the ``/api`` routes and JSON error handlers to the app's Flask server."""
    bp = Blueprint("api", __name__, url_prefix="/api")

    @bp.before_request
    def check_query():
        _check_args()

    meta.register(bp, ctx)
    backtests.register(bp, ctx)
    runs.register(bp, ctx)
    catalog.register(bp, ctx)

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
