"""Run detail: equity vs buy and hold, drawdown, monthly returns, trade returns, candles with trades and
indicators, trade table, cost breakdown, metrics table, config."""

from __future__ import annotations

import json
from urllib.parse import quote

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html

from dash_ui import charts
from dash_ui.data import RunNotFound
from dash_ui.formatting import fmt, label

KPIS = ["total_return", "buy_and_hold_return", "cagr", "sharpe", "max_drawdown", "trades", "win_rate",
        "profit_factor", "fees_paid_usdt", "funding_paid_usdt"]
GRAPH_CONFIG = {"displaylogo": False, "scrollZoom": False}


def _graph(id_: str, height: int = 380) -> dcc.Loading:
    """An empty graph filled by a callback (figures are sent as callback outputs, not inside the page
    layout: the renderer handles a large layout tree much more slowly than figure props)."""
    return dcc.Loading(dcc.Graph(id=id_, config=GRAPH_CONFIG, style={"height": f"{height}px"}), delay_show=300)


def metrics_table(metrics: dict) -> html.Table:
    """Every scalar metrics.json key with its label and formatted value (cell id ``metric-<key>``);
    the per-strategy / per-instrument lists have their own tables (:func:`breakdown_table`)."""
    rows = [html.Tr([html.Td(label(k)), html.Td(fmt(k, v), id=f"metric-{k}", className="num"),
                     html.Td(k, className="muted")]) for k, v in metrics.items() if not isinstance(v, list)]
    return html.Table([html.Thead(html.Tr([html.Th("Metric"), html.Th("Value"), html.Th("key")])), html.Tbody(rows)],
                      className="kv", id="metrics-table")


def cost_table(run) -> html.Table:
    rows = []
    for c in run.cost_breakdown():
        value = "not recorded" if c["usdt"] is None else f"{c['usdt']:,.2f} USDT"
        slug = c["label"].lower().replace(" ", "-")
        rows.append(html.Tr([html.Td(c["label"]), html.Td(value, id=f"cost-{slug}", className="num"),
                             html.Td(c["source"], className="muted")]))
    recorded = [c["usdt"] for c in run.cost_breakdown() if c["usdt"] is not None]
    rows.append(html.Tr([html.Td(html.B("Total recorded costs")),
                         html.Td(html.B(f"{sum(recorded):,.2f} USDT"), id="cost-total", className="num"),
                         html.Td("sum of the lines above", className="muted")]))
    liq = run.liquidation_count()
    rows.append(html.Tr([html.Td("Liquidations"), html.Td("not recorded" if liq is None else f"{liq:,}",
                                                          id="cost-liquidations", className="num"),
                         html.Td("metrics.json / trades.parquet" if liq is not None else "not recorded by this run",
                                 className="muted")]))
    return html.Table([html.Thead(html.Tr([html.Th("Cost (positive = paid)"), html.Th("USDT"), html.Th("source")])),
                       html.Tbody(rows)], className="kv", id="cost-table")


#: Columns of the per-strategy / per-instrument tables: (metrics key, header, formatting key).
BREAKDOWN_COLUMNS = [("trades", "Trades", "trades"), ("open_trades", "Open at end", "trades"),
                     ("win_rate", "Win rate", "win_rate"), ("profit_factor", "Profit factor", "profit_factor"),
                     ("net_pnl_usdt", "Net PnL", "net_pnl_usdt"),
                     ("pnl_before_costs_usdt", "PnL before costs", "pnl_before_costs_usdt"),
                     ("fees_paid_usdt", "Fees", "fees_paid_usdt"), ("funding_paid_usdt", "Funding (paid > 0)",
                                                                   "funding_paid_usdt"),
                     ("slippage_cost_usdt", "Slippage", "slippage_cost_usdt"), ("exposure", "Exposure", "exposure"),
                     ("return_contribution", "Return contribution", "total_return")]


def breakdowns(run) -> tuple[list[dict], list[dict]]:
    """``by_strategy`` and ``by_instrument`` records of ``metrics.json`` (docs/metrics.md); for results
    written before they existed, recomputed from ``trades.parquet`` (without borrowing interest)."""
    m = run.metrics
    if "by_strategy" in m or "by_instrument" in m:
        return list(m.get("by_strategy") or []), list(m.get("by_instrument") or [])
    t = run.trades()
    if t.empty or not m.get("starting_equity") or not m.get("start") or not m.get("end"):
        return [], []
    from nautilus_app.metrics import group_breakdown

    kw = dict(starting_equity=float(m["starting_equity"]), start=pd.Timestamp(m["start"]), end=pd.Timestamp(m["end"]))
    return group_breakdown(t, "strategy_id", **kw), group_breakdown(t, "instrument_id", **kw)


def breakdown_table(records: list[dict], key: str, title: str, id_: str) -> html.Table:
    """One row per strategy (``key="strategy_id"``) or instrument, a total row that adds the groups up
    (cell ids ``<id_>-<row>-<metrics key>``, the total row ``<id_>-total-<key>``)."""
    cols = list(BREAKDOWN_COLUMNS)
    if key == "instrument_id":
        cols.append(("buy_and_hold_return", "Buy and hold", "buy_and_hold_return"))
    head = html.Thead(html.Tr([html.Th(title)] + [html.Th(h) for _, h, _ in cols]))
    rows = [html.Tr([html.Td(str(r.get(key)))] + [html.Td(fmt(f, r.get(k)), id=f"{id_}-{i}-{k}", className="num")
                                                  for k, _, f in cols]) for i, r in enumerate(records)]
    summable = {"trades", "open_trades", "net_pnl_usdt", "pnl_before_costs_usdt", "fees_paid_usdt",
                "funding_paid_usdt", "slippage_cost_usdt", "return_contribution"}
    if len(records) > 1:
        rows.append(html.Tr([html.Td(html.B("Sum"))] + [
            html.Td(html.B(fmt(f, sum(float(r.get(k) or 0.0) for r in records))) if k in summable else "",
                    id=f"{id_}-total-{k}", className="num") for k, _, f in cols]))
    return html.Table([head, html.Tbody(rows)], className="kv", id=id_)


TRADE_COLUMNS = ["instrument_id", "strategy_id", "side", "entry_time", "exit_time", "quantity", "entry_price",
                 "exit_price", "pnl", "return_frac", "fees", "funding"]


def _trade_columns(run) -> list[dict]:
    t = run.trades()
    cols = [c for c in TRADE_COLUMNS if c in t.columns] + [c for c in t.columns if c not in TRADE_COLUMNS]
    out = []
    for c in cols:
        d = {"name": c, "id": c}
        if c in t.columns and pd.api.types.is_numeric_dtype(t[c]):
            d["type"] = "numeric"
        out.append(d)
    return out


def trades_page(run, page: int, size: int, sort_by: list | None, filter_query: str | None) -> tuple[list[dict], int]:
    """One page of the trade table (server-side sort and filter so 100k trades stay fast).

    ``filter_query`` is DataTable's syntax; supported: ``{col} op value`` joined by `` && ``, with
    ops ``= != > >= < <= contains``. Returns (rows, page count).
    """
    t = run.trades()
    if filter_query:
        for part in filter_query.split(" && "):
            t = _apply_filter(t, part)
    if sort_by:
        t = t.sort_values([s["column_id"] for s in sort_by], ascending=[s["direction"] == "asc" for s in sort_by],
                          kind="stable")
    pages = max(1, int(np.ceil(len(t) / size)))
    chunk = t.iloc[page * size:(page + 1) * size].copy()
    for c in chunk.columns:
        if pd.api.types.is_datetime64_any_dtype(chunk[c]):
            chunk[c] = chunk[c].dt.strftime("%Y-%m-%d %H:%M:%S")
        elif pd.api.types.is_float_dtype(chunk[c]):
            chunk[c] = chunk[c].round(8)
    return chunk.to_dict("records"), pages


def _apply_filter(t: pd.DataFrame, part: str) -> pd.DataFrame:
    import re

    m = re.match(r"\{(.+?)\} (s?[<>]=?|s?=|s?!=|contains|scontains|icontains) (.+)", part.strip())
    if not m or m.group(1) not in t.columns:
        return t
    col, op, val = m.group(1), m.group(2).lstrip("s").lstrip("i"), m.group(3).strip().strip('"')
    s = t[col]
    if op == "contains":
        return t[s.astype(str).str.contains(val, case=False, regex=False)]
    try:
        if pd.api.types.is_datetime64_any_dtype(s):
            v = pd.Timestamp(val, tz="UTC")
        elif pd.api.types.is_numeric_dtype(s):
            v = float(val)
        else:
            v = val
            s = s.astype(str)
    except ValueError:
        return t
    ops = {"=": s == v, "!=": s != v, ">": s > v, ">=": s >= v, "<": s < v, "<=": s <= v}
    return t[ops[op]] if op in ops else t


def layout(ctx, run_id: str) -> html.Div:
    try:
        run = ctx.store.get(run_id)
    except RunNotFound:
        job = ctx.jobs.get(run_id)
        if job is not None:
            return html.Div([html.H2(run_id), html.P(f"Backtest {job.status} ({job.progress:.0%}, {job.stage}).",
                                                     id="detail-pending"),
                             html.P(job.error or "", className="error"), dcc.Link("Launch page", href="/launch")])
        return html.Div([html.H2("Run not found"), html.P(f"No results folder {run_id!r} in {ctx.store.root}.",
                                                          id="detail-missing")])
    m = run.metrics
    bar_types = run.bar_types()
    strategies = ", ".join(f"{s['name']}({', '.join(f'{k}={v}' for k, v in (s.get('params') or {}).items() if k not in ('instrument_id', 'bar_type'))})"
                           for s in run.strategies())
    header = html.Div([
        html.H2([run_id] + ([html.Span("SYNTHETIC DATA", className="badge", id="synthetic-badge")] if run.synthetic else []),
                id="detail-title"),
        html.Div([
            html.Span(f"{fmt('start', m.get('start'))} -> {fmt('end', m.get('end'))} UTC  |  "),
            html.Span(f"{', '.join(bar_types)}  |  "), html.Span(strategies),
        ], className="muted"),
        html.Div(run.info.get("note", ""), className="error") if run.synthetic else None,
        html.Div([
            html.A("Nautilus tearsheet", href=f"/files/{quote(run_id)}/tearsheet.html", target="_blank")
            if (run.path / "tearsheet.html").exists() or (run.path / "run.json").exists() else None,
            html.Span("  |  "), html.A("JSON", href=f"/api/runs/{quote(run_id)}", target="_blank"),
        ]),
    ])
    kpis = html.Div([html.Div([html.Div(label(k), className="label"),
                               html.Div(fmt(k, m.get(k)), className="value", id=f"kpi-{k}")], className="kpi")
                     for k in KPIS], className="kpis")
    trades = run.trades()
    by_strategy, by_instrument = breakdowns(run)
    n_open = int(m.get("open_trades") or (trades["is_open"].sum() if "is_open" in trades.columns else 0))
    open_note = html.P(f"{n_open} position{'s' if n_open != 1 else ''} still open at the end (marked to market at "
                       "the last close, not closed: no exit fee); they are counted in trades and exposure and "
                       "flagged is_open in the trade table.", className="error", id="detail-open-warning") \
        if n_open else None
    page_size = 20
    first_rows, pages = trades_page(run, 0, page_size, None, None)
    return html.Div([
        dcc.Store(id="detail-run", data=run_id), dcc.Store(id="detail-zoom"), dcc.Store(id="detail-candles-zoom"),
        header, kpis, open_note,
        html.Div([_graph("detail-equity"), _graph("detail-drawdown", 240)], className="card"),
        html.Div([html.Div(_graph("detail-monthly", 340), className="card"),
                  html.Div(_graph("detail-hist", 340), className="card")],
                 className="grid2"),
        html.Div([
            html.Div([html.Label("Instrument"),
                      dcc.Dropdown(bar_types, bar_types[0] if bar_types else None, id="detail-bar-type", clearable=False)],
                     style={"maxWidth": "520px"}),
            html.Div("", id="detail-tf", className="muted"),
            _graph("detail-candles", 520),
        ], className="card"),
        html.Div([
            html.H3("Results per strategy and per instrument"),
            html.P("USDT; costs paid > 0; return contribution = net PnL / starting equity. Definitions: "
                   "docs/metrics.md (by_strategy, by_instrument).", className="muted"),
            breakdown_table(by_strategy, "strategy_id", "Strategy", "detail-by-strategy") if by_strategy else
            html.P("no per-strategy results in this run", className="muted"),
            breakdown_table(by_instrument, "instrument_id", "Instrument", "detail-by-instrument") if by_instrument
            else html.P("no per-instrument results in this run", className="muted"),
        ], className="card", style={"overflowX": "auto"}),
        html.Div([
            html.H3(f"Trades ({len(trades):,})", id="detail-trades-title"),
            dash_table.DataTable(
                id="detail-trades", columns=_trade_columns(run), data=first_rows, page_current=0, page_size=page_size,
                page_count=pages, page_action="custom", sort_action="custom", sort_mode="multi", sort_by=[],
                filter_action="custom", filter_query="", style_table={"overflowX": "auto"},
                style_cell={"fontSize": 12, "padding": "2px 6px"},
            ),
        ], className="card"),
        html.Div([
            html.Div([html.H3("Costs"), cost_table(run), _graph("detail-costs", 320)],
                     className="card"),
            html.Div([html.H3("Metrics"), html.P("Definitions: docs/metrics.md", className="muted"),
                      metrics_table(m)], className="card"),
        ], className="grid2"),
        html.Div([html.H3("Config used"), html.Pre(run.config_text, id="detail-config"),
                  html.Details([html.Summary("run.json"), html.Pre(json.dumps(run.info, indent=2))])], className="card"),
    ])


def register(app, ctx) -> None:
    # Initial figures and zoom updates are separate callbacks: Dash drops the response of a callback
    # that is re-requested while pending, and a graph emits an `autosize` relayout as soon as it
    # mounts, which would otherwise discard the initial figure.
    @app.callback(Output("detail-equity", "figure"), Output("detail-drawdown", "figure"), Input("detail-run", "data"))
    def equity(run_id):
        run = ctx.store.get(run_id)
        return charts.equity_figure(run), charts.drawdown_figure(run)

    # Zoom events are filtered in the browser: a graph also emits `autosize` relayout events, and a
    # server callback that fires again while pending has its earlier response dropped by Dash, which
    # would cancel a zoom. Only real x-range changes reach the stores below (and the server).
    app.clientside_callback(
        """function(a, b) {
            const t = window.dash_clientside.callback_context.triggered.map(x => x.prop_id)[0] || '';
            const r = t.startsWith('detail-drawdown') ? b : a;
            if (!r) { return window.dash_clientside.no_update; }
            if (r['xaxis.autorange']) { return {range: null, t: Date.now()}; }
            if (r['xaxis.range[0]'] !== undefined) {
                return {range: [r['xaxis.range[0]'], r['xaxis.range[1]']], t: Date.now()}; }
            if (Array.isArray(r['xaxis.range'])) { return {range: r['xaxis.range'], t: Date.now()}; }
            return window.dash_clientside.no_update;
        }""",
        Output("detail-zoom", "data"), Input("detail-equity", "relayoutData"), Input("detail-drawdown", "relayoutData"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """function(r) {
            if (!r) { return window.dash_clientside.no_update; }
            if (r['xaxis.autorange']) { return {range: null, t: Date.now()}; }
            if (r['xaxis.range[0]'] !== undefined) {
                return {range: [r['xaxis.range[0]'], r['xaxis.range[1]']], t: Date.now()}; }
            return window.dash_clientside.no_update;
        }""",
        Output("detail-candles-zoom", "data"), Input("detail-candles", "relayoutData"), prevent_initial_call=True,
    )

    @app.callback(
        Output("detail-equity", "figure", allow_duplicate=True), Output("detail-drawdown", "figure", allow_duplicate=True),
        Input("detail-zoom", "data"), State("detail-run", "data"), prevent_initial_call=True,
    )
    def equity_zoom(zoom, run_id):
        """The zoomed range re-downsampled from every sample (equity and drawdown axes linked);
        the full range on autorange (double click)."""
        rng = charts.ns_range({"xaxis.range[0]": zoom["range"][0], "xaxis.range[1]": zoom["range"][1]}) \
            if zoom and zoom.get("range") else (None, None)
        run = ctx.store.get(run_id)
        return charts.equity_figure(run, *rng), charts.drawdown_figure(run, *rng)

    @app.callback(Output("detail-monthly", "figure"), Output("detail-hist", "figure"), Output("detail-costs", "figure"),
                  Input("detail-run", "data"))
    def static_figures(run_id):
        run = ctx.store.get(run_id)
        return charts.monthly_heatmap(run), charts.trade_histogram(run), charts.cost_figure(run)

    @app.callback(Output("detail-candles", "figure"), Output("detail-tf", "children"),
                  Input("detail-bar-type", "value"), State("detail-run", "data"))
    def candles(bar_type, run_id):
        """Automatic timeframe over the whole run."""
        if not bar_type:
            return dash.no_update, "this run has no bar types"
        run = ctx.store.get(run_id)
        fig, tf = charts.candles_figure(run, bar_type, run.catalog_root(ctx.catalog_root))
        return fig, f"timeframe {tf} (zoom in for finer candles; trades are exact)"

    @app.callback(Output("detail-candles", "figure", allow_duplicate=True),
                  Output("detail-tf", "children", allow_duplicate=True),
                  Input("detail-candles-zoom", "data"), State("detail-bar-type", "value"),
                  State("detail-run", "data"), prevent_initial_call=True)
    def candles_zoom(zoom, bar_type, run_id):
        """Finer candles, indicators and the exact trades of the zoomed range (all on autorange)."""
        if not bar_type:
            return dash.no_update, dash.no_update
        rng = charts.ns_range({"xaxis.range[0]": zoom["range"][0], "xaxis.range[1]": zoom["range"][1]}) \
            if zoom and zoom.get("range") else (None, None)
        run = ctx.store.get(run_id)
        fig, tf = charts.candles_figure(run, bar_type, run.catalog_root(ctx.catalog_root), *rng)
        return fig, f"timeframe {tf} (zoom in for finer candles; trades are exact)"

    @app.callback(
        Output("detail-trades", "data"), Output("detail-trades", "page_count"),
        Input("detail-trades", "page_current"), Input("detail-trades", "page_size"),
        Input("detail-trades", "sort_by"), Input("detail-trades", "filter_query"),
        State("detail-run", "data"), prevent_initial_call=True,
    )
    def trade_page(page, size, sort_by, filter_query, run_id):
        run = ctx.store.get(run_id)
        return trades_page(run, page or 0, size or 20, sort_by, filter_query)
