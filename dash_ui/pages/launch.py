"""Launch a backtest: a registered strategy with a parameter form built from its config class,
instruments, dates and venue settings; runs in the background with visible progress.

Only strategies on disk can be chosen: the built-ins (``strategies.REGISTRY``) and the classes in the
user strategy folder (:func:`nautilus_app.strategy_loader.discover_strategies`); nothing typed here is
executed as code. The form builds a config mapping (docs/config.md schema) that goes through the same validation
as a TOML file (:func:`nautilus_app.config.parse_config`); errors name the key.
"""

from __future__ import annotations

from urllib.parse import quote

import dash
from dash import ALL, Input, Output, State, dcc, html

from catalog.inventory import bar_instrument_id
from dash_ui.forms import labelled
from dash_ui.jobs import SubmissionError

FIXED = ("instrument_id", "bar_type")
#: timeframes the strategy can trade: Nautilus aggregates them from the stored bars during the run
#: (``BTCUSDT.BINANCE-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL``); "stored" = the stored series itself
TIMEFRAME_SPECS = {"3m": (3, "MINUTE"), "5m": (5, "MINUTE"), "15m": (15, "MINUTE"), "30m": (30, "MINUTE"),
                   "1h": (1, "HOUR"), "2h": (2, "HOUR"), "4h": (4, "HOUR"), "6h": (6, "HOUR"), "12h": (12, "HOUR"),
                   "1d": (1, "DAY")}
TIMEFRAME_OPTIONS = [{"label": "stored bars (as imported)", "value": "stored"}] + [
    {"label": f"{k} (built from the stored bars)", "value": k} for k in TIMEFRAME_SPECS]


def traded_bar_type(stored: str, timeframe: str | None) -> str:
    """The bar type a strategy trades: the stored series, or ``timeframe`` aggregated by Nautilus from it
    (``<iid>-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL``; the README's way to trade higher timeframes).

    Raises:
        SubmissionError: an unknown timeframe, one that is not a multiple of the stored step, or a stored
            series that is not an EXTERNAL time bar (field ``strategies[0].params.bar_type``).
    """
    from catalog.inventory import bar_interval_ns
    from dash_ui.market import TIMEFRAMES

    field = "strategies[0].params.bar_type"
    if timeframe in (None, "", "stored"):
        return stored
    if timeframe not in TIMEFRAME_SPECS:
        raise SubmissionError(f"key {field}: timeframe {timeframe!r} is not one of {list(TIMEFRAME_SPECS)}", field)
    iid = bar_instrument_id(stored)
    rest = stored[len(iid) + 1:].split("-")  # step, aggregation, price, source
    step = bar_interval_ns(stored)
    if len(rest) != 4 or rest[3] != "EXTERNAL" or not step:
        raise SubmissionError(f"key {field}: {stored} is not a stored (EXTERNAL) time bar series to build "
                              f"{timeframe} bars from", field)
    if TIMEFRAMES[timeframe] <= step or TIMEFRAMES[timeframe] % step:
        raise SubmissionError(f"key {field}: {timeframe} bars cannot be built from {stored} (not a larger multiple "
                              "of its step)", field)
    n, unit = TIMEFRAME_SPECS[timeframe]
    return f"{iid}-{n}-{unit}-{rest[2]}-INTERNAL@{rest[0]}-{rest[1]}-{rest[3]}"


def param_controls(name: str) -> list:
    """One labelled input per parameter of the strategy's config class (type taken from the default;
    number inputs bounded by the parameter's declared range, :meth:`StrategyParameter.bounds`, which
    the label shows too: ``fast_period (int >= 1)``)."""
    from nautilus_app.config import strategy_parameters
    from nautilus_app.strategy_loader import strategy_fields

    fields = strategy_fields(name)
    out = []
    for k, default in strategy_parameters(name).items():
        if k in FIXED:
            continue
        pid = {"type": "launch-param", "name": k}
        bounds = fields[k].bounds() if k in fields else {}
        if isinstance(default, bool):
            ctl = dcc.Dropdown(["true", "false"], "true" if default else "false", id=pid, clearable=False)
        elif isinstance(default, int | float):
            lo, hi = bounds.get("ge", bounds.get("gt")), bounds.get("le", bounds.get("lt"))
            limits = {k2: v for k2, v in (("min", lo), ("max", hi)) if v is not None}
            ctl = dcc.Input(id=pid, type="number", value=default, step=1 if isinstance(default, int) else "any",
                            **limits)
        else:
            ctl = dcc.Input(id=pid, type="text", value="" if default is None else str(default))
        kind = type(default).__name__ if default is not None else "text"
        rng = fields[k].range_text() if k in fields else ""
        out.append(labelled(f"{k} ({kind}{' ' + rng if rng else ''})", ctl, minWidth="150px"))
    return out


def typed_params(name: str, names: list[dict], values: list) -> dict:
    """Form values -> typed params (int/float/bool from the defaults; a blank optional parameter whose
    default is None is left out; a JSON object typed for one is parsed, e.g. the ``risk`` table).

    Raises:
        SubmissionError: a required value left blank, a malformed JSON object (field
            ``strategies[0].params.<name>``). Wrong types are left to the config validation.
    """
    from nautilus_app.config import strategy_parameters

    defaults = strategy_parameters(name)
    out: dict = {}
    for pid, v in zip(names, values, strict=True):
        k = pid["name"]
        d = defaults.get(k)
        field = f"strategies[0].params.{k}"
        if (v is None or v == "") and k in defaults and d is None:
            continue  # optional parameter left blank: the strategy's default (None) applies
        if v is None or v == "":
            raise SubmissionError(f"key {field}: a value is required", field)
        if d is None and isinstance(v, str) and v.strip().startswith("{"):
            import json

            try:  # an optional table parameter (e.g. ``risk``, docs/risk.md) typed as a JSON object
                out[k] = json.loads(v)
            except ValueError as exc:
                raise SubmissionError(f"key {field} = {v!r}: expected a JSON object ({exc})", field) from None
            continue
        out[k] = _as_type(v, d)
    return out


def _as_type(v, default):
    """A form value as the type of the parameter's default when it converts exactly (``"10"`` -> 10,
    ``10.0`` -> 10 for an int); otherwise the value as typed, so that the config validation (the API's
    parse_config path) refuses it with its message naming the parameter (``expected int``)."""
    if isinstance(default, bool):
        return {"true": True, "false": False}.get(str(v).lower(), v) if not isinstance(v, bool) else v
    try:
        if isinstance(default, int):
            f = float(v)
            return int(f) if f.is_integer() else (f if isinstance(v, int | float) else v)
        if isinstance(default, float):
            return float(v)
    except (TypeError, ValueError, OverflowError):
        return v
    return str(v) if isinstance(default, str) else v


def build_config(*, name, strategy, bar_types, strategy_bar, start, end, balance, maker, taker, leverage,
                 account, oms, param_ids, param_values, timeframe: str | None = None) -> dict:
    """The config mapping (docs/config.md schema) described by the launch form.

    Venues are derived from the chosen bar types; the account type is MARGIN for ``-PERP``
    instruments and CASH otherwise unless chosen explicitly. ``timeframe`` (``15m``, ``1h``, ...): the
    strategy trades bars of that size built by Nautilus from ``strategy_bar`` (:func:`traded_bar_type`).
    Nothing is checked here beyond the form's own shape: the mapping goes through the API's validation
    (:meth:`dash_ui.jobs.JobRunner.submit`: parse_config and the data check).
    """
    if not strategy:
        raise SubmissionError("key strategies[0].name: choose a strategy", "strategies[0].name")
    if not bar_types:
        raise SubmissionError("key bar_types: choose at least one instrument", "bar_types")
    strategy_bar = strategy_bar if strategy_bar in bar_types else bar_types[0]
    venues: dict[str, dict] = {}
    for bt in bar_types:
        iid = bar_instrument_id(bt)
        vname = iid.rpartition(".")[2]
        acct = account if account in ("CASH", "MARGIN") else ("MARGIN" if "-PERP." in iid else "CASH")
        v = venues.setdefault(vname, {"name": vname, "account_type": acct, "oms_type": oms or "NETTING",
                                      "starting_balances": [f"{balance} USDT"]})
        if maker not in (None, ""):
            v["maker_fee"] = float(maker)
        if taker not in (None, ""):
            v["taker_fee"] = float(taker)
        if acct == "MARGIN" and leverage not in (None, ""):
            v["default_leverage"] = float(leverage)
    params = typed_params(strategy, param_ids, param_values)
    params |= {"instrument_id": bar_instrument_id(strategy_bar), "bar_type": traded_bar_type(strategy_bar, timeframe)}
    raw = {"name": name or "ui_run", "bar_types": list(bar_types), "venues": list(venues.values()),
           "strategies": [{"name": strategy, "params": params}]}
    if start:
        raw["start"] = start
    if end:
        raw["end"] = end
    return raw


def data_ranges(ctx, bar_types: list[str] | None) -> html.Div | str:
    """The stored range of each chosen bar series (catalog inventory: first and last bar close, UTC, rows,
    gaps) and the range they all cover (the dates a run over all of them can use)."""
    if not bar_types:
        return "Choose instruments to see their stored data range."
    inv = ctx.inventory()
    inv = inv[(inv["kind"] == "bars") & inv["identifier"].isin(bar_types)] if len(inv) else inv
    rows, firsts, lasts = [], [], []
    for bt in bar_types:
        r = inv[inv["identifier"] == bt] if len(inv) else inv
        if not len(r):
            rows.append(html.Li(f"{bt}: no stored bars", className="error"))
            continue
        r = r.iloc[0]
        firsts.append(r["first"])
        lasts.append(r["last"])
        rows.append(html.Li(f"{bt}: {r['first']:%Y-%m-%d %H:%M} -> {r['last']:%Y-%m-%d %H:%M} UTC "
                            f"({int(r['rows']):,} bars, {int(r['gaps'])} gaps)"))
    common = ""
    if firsts and len(firsts) == len(bar_types):
        lo, hi = max(firsts), min(lasts)
        common = (f"All chosen series: {lo:%Y-%m-%d %H:%M} -> {hi:%Y-%m-%d %H:%M} UTC" if lo <= hi
                  else "The chosen series do not overlap in time.")
    return html.Div([html.B("Stored data (bar close times)"), html.Ul(rows, id="launch-range-list"),
                     html.Div(common, id="launch-range-common")])


def error_block(job) -> html.Div | None:
    """A failed job's error as one line, the worker's log (traceback) behind a toggle."""
    if not job.error:
        return None
    first = next((line for line in str(job.error).splitlines() if line.strip()), str(job.error))
    first = first if len(first) <= 300 else first[:297] + "..."
    return html.Div([
        html.Div(first, className="error", id="launch-job-error"),
        html.Details([html.Summary("traceback and log"), html.Pre(job.log_tail or str(job.error), id="launch-job-log",
                                                                  style={"maxHeight": "360px", "overflow": "auto"})],
                     id="launch-job-details") if (job.log_tail or "\n" in str(job.error)) else None,
    ])


def layout(ctx) -> html.Div:
    from nautilus_app.strategy_loader import StrategyLoadError, discover_strategies

    bar_types = ctx.bar_types()
    try:  # built-ins and the user strategy folder's classes: picked from disk, never typed in as code
        names = list(discover_strategies().strategies)
    except StrategyLoadError as e:  # two classes with one name: shown, built-ins still offered
        from strategies import REGISTRY

        names = sorted(REGISTRY)
        dash.get_app().logger.warning("user strategies not offered: %s", e)
    return html.Div([
        html.H2("Launch a backtest"),
        html.P("Built-in strategies and those in the user strategy folder. The run appears in the Runs list "
               "when done.", className="muted"),
        html.Div([
            html.Div([
                labelled("Run name", dcc.Input(id="launch-name", type="text", value="ui_run")),
                labelled("Strategy", dcc.Dropdown(names, "ema_cross", id="launch-strategy", clearable=False)),
                labelled("Instruments (bar series)", dcc.Dropdown(bar_types, bar_types[:1], id="launch-bar-types",
                                                                  multi=True), minWidth="420px"),
                labelled("Strategy trades", dcc.Dropdown(bar_types, bar_types[0] if bar_types else None,
                                                         id="launch-strategy-bar", clearable=False), minWidth="420px"),
                labelled("Timeframe", dcc.Dropdown(TIMEFRAME_OPTIONS, "stored", id="launch-timeframe",
                                                   clearable=False), minWidth="240px"),
            ], className="filters"),
            html.Div(data_ranges(ctx, bar_types[:1]), id="launch-ranges", className="muted"),
            html.Div([
                labelled("Start (UTC, inclusive)", dcc.Input(id="launch-start", type="text", placeholder="YYYY-MM-DD")),
                labelled("End (UTC, exclusive)", dcc.Input(id="launch-end", type="text", placeholder="YYYY-MM-DD")),
                labelled("Starting balance (USDT)", dcc.Input(id="launch-balance", type="number", value=100000, min=1)),
                labelled("Account", dcc.Dropdown(["auto", "CASH", "MARGIN"], "auto", id="launch-account",
                                                 clearable=False)),
                labelled("OMS", dcc.Dropdown(["NETTING", "HEDGING"], "NETTING", id="launch-oms", clearable=False)),
                labelled("Maker fee (fraction, blank = Binance default)",
                         dcc.Input(id="launch-maker", type="number", step="any")),
                labelled("Taker fee (fraction, blank = Binance default)",
                         dcc.Input(id="launch-taker", type="number", step="any")),
                labelled("Leverage (MARGIN)", dcc.Input(id="launch-leverage", type="number", value=1, min=1, max=125)),
            ], className="filters"),
            html.H4("Strategy parameters"),
            html.Div(param_controls("ema_cross"), id="launch-params", className="filters"),
            html.Button("Run backtest", id="launch-submit", n_clicks=0),
            html.Button("Cancel this backtest", id="launch-cancel", n_clicks=0, style={"marginLeft": "12px"}),
            html.Div(id="launch-message", style={"marginTop": "8px"}),
        ], className="card"),
        dcc.Store(id="launch-job"),
        html.Div(id="launch-status", className="card"),
        html.Div(id="launch-jobs", className="card"),
        dcc.Interval(id="launch-poll", interval=700),
    ])


def register(app, ctx) -> None:
    @app.callback(Output("launch-params", "children"), Input("launch-strategy", "value"), prevent_initial_call=True)
    def params(strategy):
        return param_controls(strategy) if strategy else []

    @app.callback(Output("launch-ranges", "children"), Input("launch-bar-types", "value"), prevent_initial_call=True)
    def ranges(bar_types):
        return data_ranges(ctx, bar_types or [])

    @app.callback(Output("launch-message", "children", allow_duplicate=True), Input("launch-cancel", "n_clicks"),
                  State("launch-job", "data"), prevent_initial_call=True)
    def cancel(_n, job_id):
        job = ctx.jobs.cancel(job_id) if job_id else None
        if job is None:
            return html.Span("No backtest launched from this page to cancel.", id="launch-cancelled")
        return html.Span(f"{job.id}: {job.status}", id="launch-cancelled")

    @app.callback(Output("launch-strategy-bar", "options"), Output("launch-strategy-bar", "value"),
                  Input("launch-bar-types", "value"), State("launch-strategy-bar", "value"), prevent_initial_call=True)
    def strategy_bar(bar_types, current):
        bar_types = bar_types or []
        return bar_types, current if current in bar_types else (bar_types[0] if bar_types else None)

    @app.callback(
        Output("launch-message", "children"), Output("launch-job", "data"),
        Input("launch-submit", "n_clicks"),
        State("launch-name", "value"), State("launch-strategy", "value"), State("launch-bar-types", "value"),
        State("launch-strategy-bar", "value"), State("launch-start", "value"), State("launch-end", "value"),
        State("launch-balance", "value"), State("launch-maker", "value"), State("launch-taker", "value"),
        State("launch-leverage", "value"), State("launch-account", "value"), State("launch-oms", "value"),
        State({"type": "launch-param", "name": ALL}, "id"), State({"type": "launch-param", "name": ALL}, "value"),
        State("launch-timeframe", "value"),
        prevent_initial_call=True,
    )
    def submit(_n, name, strategy, bar_types, sbar, start, end, balance, maker, taker, leverage, account, oms,
               pids, pvals, timeframe):
        try:
            raw = build_config(name=name, strategy=strategy, bar_types=bar_types, strategy_bar=sbar, start=start,
                               end=end, balance=balance, maker=maker, taker=taker, leverage=leverage,
                               account=account, oms=oms, param_ids=pids, param_values=pvals, timeframe=timeframe)
            job = ctx.jobs.submit(raw)
        except SubmissionError as e:
            return html.Div([html.B(f"Invalid field {e.field}: " if e.field else "Invalid: "), str(e)],
                            className="error", id="launch-error"), dash.no_update
        return html.Span(f"Queued {job.id}", id="launch-queued"), job.id

    @app.callback(Output("launch-status", "children"), Output("launch-jobs", "children"),
                  Input("launch-poll", "n_intervals"), Input("launch-job", "data"))
    def poll(_n, job_id):
        status = html.P("No backtest launched from this page yet.", className="muted")
        job = ctx.jobs.get(job_id) if job_id else None
        if job is not None:
            done = job.status == "done" and ctx.store.exists(job.id)
            status = html.Div([
                html.H4(job.id),
                html.Div(html.Div(style={"width": f"{job.progress * 100:.0f}%"}), className="progress"),
                html.P(f"{job.status}: {job.stage} ({job.progress:.0%})", id="launch-progress-text"),
                dcc.Link("Open results", href=f"/run/{quote(job.id)}", id="launch-result-link") if done else None,
                error_block(job),
            ])
        rows = [html.Tr([html.Td(dcc.Link(j.id, href=f"/run/{quote(j.id)}")), html.Td(j.status),
                         html.Td(f"{j.progress:.0%}"), html.Td(j.stage)]) for j in ctx.jobs.list()]
        jobs = html.Div([html.H4("Backtests started by this server"),
                         html.Table([html.Thead(html.Tr([html.Th("run"), html.Th("status"), html.Th("progress"),
                                                         html.Th("stage")])), html.Tbody(rows)], className="kv")])
        return status, jobs
