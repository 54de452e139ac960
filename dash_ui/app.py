"""The Dash app: runs list, run detail, comparison, data explorer, backtest launcher, and a JSON API.

Start it with ``nautilus-app dash`` (or ``python scripts/run_dash.py``, ``make dash``); it listens on
``127.0.0.1:8050`` by default. Pages:

| path | page |
|---|---|
| ``/`` | runs list: every results folder with key metrics; sort, filter, search, select to compare |
| ``/run/<run_id>`` | run detail: equity vs buy and hold, drawdown, monthly returns, trade returns, candles with trades and indicators, trades, costs, metrics, config |
| ``/compare?runs=a,b`` | normalised equity curves and metrics side by side |
| ``/data`` | catalog inventory, gaps, candles for an instrument/timeframe/date range |
| ``/research`` | research registry runs and sweeps, filtered by strategy type and metric thresholds |
| ``/launch`` | launch a backtest of a registered strategy in the background, with progress |
| ``/api/...`` | JSON API (:mod:`dash_ui.api`) |
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import parse_qs

import dash
from dash import Input, Output, dcc, html
from flask import abort, send_file

from core import paths
from dash_ui.api import MAX_BODY
from dash_ui.context import AppContext
from dash_ui.data import ResultsStore
from dash_ui.jobs import JobRunner
from dash_ui.options import DEFAULT_HOST, DEFAULT_PORT, add_arguments  # noqa: F401 - re-exported

#: body limit of non-API requests (Dash callbacks); API bodies are limited to ``api.MAX_BODY``
MAX_OTHER_BODY = 16 * 1024 * 1024
TOKEN_ENV = "NAUTILUS_DASH_TOKEN"
TOKEN_COOKIE = "nautilus_token"


class RequestGuard:
    """WSGI middleware in front of the Flask server (every route, the API and Dash's own).

    * **Body limits also for streamed bodies**: a request with a Content-Length over the limit is
      refused with 413 before it is read; a chunked/streamed body (no Content-Length) is read up to
      limit + 1 bytes only, refused with 413 beyond, else handed on as a plain body. Limits:
      :data:`dash_ui.api.MAX_BODY` (256 kB) under ``/api/``, :data:`MAX_OTHER_BODY` elsewhere.
    * **Token** (when ``token`` is set): every request needs ``Authorization: Bearer <token>``,
      ``X-Auth-Token: <token>``, the ``nautilus_token`` cookie, or ``?token=<token>`` (which also sets
      the cookie, so a browser opens ``http://host:port/?token=...`` once). Else 401 JSON.
    """

    def __init__(self, app, token: str | None = None, api_limit: int | None = None,
                 other_limit: int = MAX_OTHER_BODY) -> None:
        self.app, self.token = app, token
        self.api_limit, self.other_limit = api_limit or MAX_BODY, other_limit

    @staticmethod
    def _json(start_response, status: str, message: str, field: str | None, extra: list | None = None):
        import json

        body = json.dumps({"error": message, "field": field}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                ("Connection", "close"), *(extra or [])])
        return [body]

    def _token_ok(self, environ: dict) -> tuple[bool, bool]:
        """(authorised, came from the query string)."""
        import hmac
        from http.cookies import SimpleCookie
        from urllib.parse import parse_qs

        assert self.token is not None
        want = self.token.encode()
        auth = environ.get("HTTP_AUTHORIZATION", "")
        given = [auth[7:].strip()] if auth.lower().startswith("bearer ") else []
        given.append(environ.get("HTTP_X_AUTH_TOKEN", ""))
        try:
            c = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            given.append(c[TOKEN_COOKIE].value if TOKEN_COOKIE in c else "")
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no token
            pass
        if any(g and hmac.compare_digest(g.encode(), want) for g in given):
            return True, False
        q = parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[-1]
        return bool(q) and hmac.compare_digest(q.encode(), want), True

    def __call__(self, environ: dict, start_response):
        import io

        path = environ.get("PATH_INFO", "")
        set_cookie = False
        if self.token is not None:
            ok, from_query = self._token_ok(environ)
            if not ok:
                return self._json(start_response, "401 UNAUTHORIZED",
                                  "a token is required: send 'Authorization: Bearer <token>' (printed at the "
                                  f"server's start, or set by ${TOKEN_ENV} / --token-file), or open /?token=<token> "
                                  "once in a browser", "token", [("WWW-Authenticate", "Bearer")])
            set_cookie = from_query
        limit = self.api_limit if path.startswith("/api/") else self.other_limit
        length = environ.get("CONTENT_LENGTH") or ""
        if length.strip():
            try:
                n = int(length)
            except ValueError:
                return self._json(start_response, "400 BAD REQUEST", f"bad Content-Length {length!r}", "body")
            if n > limit:
                return self._json(start_response, "413 REQUEST ENTITY TOO LARGE", f"body larger than {limit} bytes",
                                  "body")
        elif environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            data = environ["wsgi.input"].read(limit + 1)
            if len(data) > limit:
                return self._json(start_response, "413 REQUEST ENTITY TOO LARGE",
                                  f"body larger than {limit} bytes (streamed)", "body")
            environ["wsgi.input"] = io.BytesIO(data)
            environ["CONTENT_LENGTH"] = str(len(data))
            environ.pop("wsgi.input_terminated", None)
            environ.pop("HTTP_TRANSFER_ENCODING", None)  # werkzeug ignores Content-Length when chunked
        if not set_cookie:
            return self.app(environ, start_response)

        def start(status, headers, exc_info=None):
            headers = [*headers, ("Set-Cookie", f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/")]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` exposes the server to this machine only."""
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token_file: Path | None = None) -> tuple[str | None, str]:
    """The token the server requires and where it came from: ``--token-file``, else
    ``$NAUTILUS_DASH_TOKEN``, else (only when ``host`` is not loopback) a new random one; None on
    loopback without either. Raises ``ValueError`` for an unreadable or empty token file."""
    import secrets

    if token_file is not None:
        try:
            tok = Path(token_file).read_text().strip()
        except OSError as e:
            raise ValueError(f"--token-file {token_file}: cannot read ({e.strerror})") from None
        if len(tok) < 16:
            raise ValueError(f"--token-file {token_file}: the token must have at least 16 characters")
        return tok, f"from {token_file}"
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        if len(env) < 16:
            raise ValueError(f"${TOKEN_ENV}: the token must have at least 16 characters")
        return env, f"from ${TOKEN_ENV}"
    if is_loopback(host):
        return None, "none (loopback only)"
    return secrets.token_urlsafe(24), "generated for this start"


NAV = [("/", "Runs"), ("/compare", "Compare"), ("/research", "Research"), ("/data", "Data explorer"),
       ("/launch", "Launch backtest"), ("/sessions", "Sessions")]

CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0; background: #f6f7f9; color: #222; }
.nav { background: #1d2733; padding: 10px 20px; display: flex; gap: 24px; align-items: center; }
.nav a { color: #dfe6ee; text-decoration: none; font-weight: 500; }
.nav .brand { color: #fff; font-weight: 700; margin-right: 20px; }
.page { padding: 16px 24px; }
.card { background: #fff; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 12px 16px; margin-bottom: 16px; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
.kpi { background: #fff; border-radius: 6px; padding: 10px 14px; min-width: 130px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.kpi .label { font-size: 12px; color: #667; } .kpi .value { font-size: 20px; font-weight: 600; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.badge { background: #b00020; color: white; border-radius: 4px; padding: 2px 8px; font-size: 12px; margin-left: 8px; }
.muted { color: #667; font-size: 13px; }
table.kv { border-collapse: collapse; width: 100%; font-size: 13px; }
table.kv td, table.kv th { border-bottom: 1px solid #eee; padding: 4px 8px; text-align: left; }
table.kv td.num { text-align: right; font-variant-numeric: tabular-nums; }
.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; margin-bottom: 10px; }
.filters > div { min-width: 160px; }
.progress { background: #e5e7eb; border-radius: 4px; height: 14px; width: 100%; overflow: hidden; }
.progress > div { background: #2e7d32; height: 100%; }
.error { color: #b00020; white-space: pre-wrap; }
pre { background: #f3f4f6; padding: 10px; overflow-x: auto; font-size: 12px; }
label { font-size: 12px; color: #445; display: block; }
"""


#: Partial plotly.js bundle (core + bar, heatmap, candlestick, waterfall; 1.2 MB instead of 4.8 MB),
#: built by dash_ui/plotly_bundle/build.sh from the plotly.js version bundled with plotly.py.
PLOTLY_PARTIAL = Path(__file__).resolve().parent / "static" / "plotly-app.min.js"


def _plotly_early_loader(url: str) -> str:
    """A ``<script>`` that starts loading plotly.js from ``url`` as soon as the page starts, instead of
    when the first graph mounts (after the layout and page callbacks). ``window.Plotly`` is a promise
    until the script has run; dcc.Graph waits on ``Promise.resolve(window.Plotly || <its own loader>)``,
    so it adopts this promise and never adds its own (full, 4.8 MB) plotly.js. Chromium compiles async
    scripts off the main thread, so the parse overlaps the page's callbacks (docs/dash.md)."""
    return ("<script>(function(){if(window.Plotly){return;}var s=document.createElement('script');"
            f"s.src='{url}';s.async=true;var p=new Promise(function(res,rej){{"
            "s.onload=function(){if(window.Plotly===p){window.Plotly=undefined;rej(new Error('plotly.js failed'));}"
            "else{res(window.Plotly);}};s.onerror=function(e){window.Plotly=undefined;rej(e);};});"
            "window.Plotly=p;"
            "document.head.appendChild(s);})();</script>")


def create_app(results_root: Path | None = None, catalog_root: Path | None = None, *,
               max_parallel_jobs: int = 1, warm_runs: int = 3, registry_url: str | None = None,
               full_plotly: bool = False, auth_token: str | None = None) -> dash.Dash:
    """Build the Dash app (pages, callbacks, JSON API) over a results root and a catalog.

    Args:
        results_root: Default ``$RESULTS_DIR`` or ``results/``.
        catalog_root: Default ``$CATALOG_PATH`` or ``catalog/store``.
        max_parallel_jobs: Backtests run at the same time by the launcher.
        warm_runs: How many of the newest runs get their detail-page overview precomputed and
            persisted by a background thread (:mod:`dash_ui.warmup`, :mod:`dash_ui.sidecar`) at start and every 15 s; 0 = none
            (the overview is then built and persisted at the first open of a run).
        registry_url: Research registry read by the Research page (SQLAlchemy URL); default
            ``$NAUTILUS_REGISTRY_URL``, else ``sqlite:///<results_root>/registry.sqlite``.
        full_plotly: Load the full plotly.js bundled with plotly.py instead of the app's partial bundle
            (:data:`PLOTLY_PARTIAL`), e.g. to draw trace types the app does not use.
        auth_token: Require this token on every request (:class:`RequestGuard`); None = no token.
            Body limits apply either way.
    """
    from dash_ui import api, warmup
    from dash_ui.pages import compare, detail, explorer, launch, research, runs, sessions

    results_root = Path(results_root or paths.results_dir()).resolve()
    catalog_root = Path(catalog_root or paths.default_catalog_path()).resolve()
    results_root.mkdir(parents=True, exist_ok=True)
    ctx = AppContext(store=ResultsStore(results_root), catalog_root=catalog_root,
                     jobs=JobRunner(results_root, catalog_root, max_parallel=max_parallel_jobs),
                     registry_url=registry_url or os.environ.get("NAUTILUS_REGISTRY_URL")
                     or f"sqlite:///{results_root / 'registry.sqlite'}")
    app = dash.Dash(__name__, title="nautilus-app results", suppress_callback_exceptions=True,
                    update_title=None)
    prefix = app.config.requests_pathname_prefix
    plotly_url = (f"{prefix}_app/plotly-app.min.js" if not full_plotly and PLOTLY_PARTIAL.exists()
                  else f"{prefix}_dash-component-suites/plotly/package_data/plotly.min.js")
    app.index_string = app.index_string.replace(
        "{%css%}", "{%css%}<style>" + CSS + "</style>" + _plotly_early_loader(plotly_url))
    app.layout = html.Div([
        dcc.Location(id="url"),
        html.Div([html.Span("nautilus-app", className="brand")]
                 + [dcc.Link(label, href=href, id=f"nav-{label.split()[0].lower()}") for href, label in NAV],
                 className="nav"),
        html.Div(id="page", className="page"),
    ])

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def route(pathname: str | None, search: str | None):
        pathname = pathname or "/"
        query = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}
        if pathname in ("/", "/runs"):
            return runs.layout(ctx)
        if pathname.startswith("/run/"):
            return detail.layout(ctx, pathname[len("/run/"):].strip("/"))
        if pathname == "/compare":
            return compare.layout(ctx, [r for r in query.get("runs", "").split(",") if r])
        if pathname == "/data":
            return explorer.layout(ctx)
        if pathname == "/launch":
            return launch.layout(ctx)
        if pathname == "/research":
            return research.layout(ctx, query)
        if pathname == "/sessions":
            return sessions.layout(ctx)
        return html.Div([html.H2("Not found"), html.P(f"No page at {pathname}.")])

    for page in (runs, detail, compare, explorer, launch, research, sessions):
        page.register(app, ctx)
    api.register_api(app.server, ctx)

    @app.server.get("/_app/plotly-app.min.js")
    def plotly_partial():
        return send_file(PLOTLY_PARTIAL, mimetype="text/javascript", max_age=86400)

    @app.server.get("/files/<path:run_id>/tearsheet.html")
    def tearsheet(run_id: str):
        if not ctx.store.exists(run_id):
            abort(404)
        p = ctx.store.root / run_id / "tearsheet.html"
        if not p.exists():  # written on demand (backtests skip it unless `tearsheet = true`)
            from nautilus_app.tearsheet import TearsheetError, write_tearsheet

            try:
                p = write_tearsheet(ctx.store.root / run_id)
            except TearsheetError:
                abort(404)
        return send_file(p)

    if warm_runs > 0:
        ctx.warm_stop = warmup.start_warm_up(ctx, warm_runs)
    app.server.wsgi_app = RequestGuard(app.server.wsgi_app, auth_token)  # type: ignore[method-assign]
    app.server.config["NAUTILUS_CTX"] = ctx
    app._nautilus_ctx = ctx  # type: ignore[attr-defined]
    return app


def main(argv: list[str] | None = None) -> int:
    """``nautilus-app dash``: serve the app (blocking)."""
    p = argparse.ArgumentParser(prog="nautilus-app dash", description="Serve the results app and JSON API")
    add_arguments(p)
    return serve(p.parse_args(argv))


def serve(args: argparse.Namespace) -> int:
    """Run the app with the arguments of :func:`add_arguments`."""
    import sys

    from nautilus_app.housekeeping import cleanup_stale_results

    try:
        token, origin = resolve_token(args.host, getattr(args, "token_file", None))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app = create_app(args.results_dir, args.catalog, max_parallel_jobs=args.jobs,
                     warm_runs=getattr(args, "warm_runs", 3), registry_url=getattr(args, "registry", None),
                     auth_token=token)
    ctx = app._nautilus_ctx  # type: ignore[attr-defined]
    cleanup_stale_results(ctx.store.root)
    print(f"nautilus-app dash: http://{args.host}:{args.port}/  (results {ctx.store.root}, catalog {ctx.catalog_root})",
          flush=True)
    if token is not None:
        shown = token if origin == "generated for this start" else "<as configured>"
        print(f"token ({origin}): {shown}\n  API: -H 'Authorization: Bearer <token>'; browser: "
              f"http://{args.host}:{args.port}/?token=<token> once", flush=True)
    try:
        app.run(host=args.host, port=args.port, debug=args.debug, threaded=True,
                dev_tools_disable_version_check=True)
    finally:
        ctx.jobs.shutdown()
        if ctx.warm_stop is not None:
            ctx.warm_stop.set()
    return 0
