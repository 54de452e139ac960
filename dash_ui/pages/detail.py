"""Run detail: equity vs buy and hold, drawdown, monthly returns, trade returns, candles with trades and
indicators, trade table, cost breakdown, metrics table, config."""

from __future__ import annotations

import json
from urllib.parse import quote

import dash
import dash_ag_grid as dag
import numpy as np
import pandas as pd
from dash import Input, Output, State, dcc, html

from dash_ui import analytics, charts
from dash_ui.data import RunNotFound
from dash_ui.formatting import ag_format, fmt, label
from dash_ui.forms import labelled

KPIS = ["total_return", "buy_and_hold_return", "excess_return", "cagr", "sharpe", "max_drawdown", "exposure",
        "trades", "win_rate", "profit_factor", "costs_pct_of_start", "fees_paid_usdt", "funding_paid_usdt"]
#: KPIs annualised from the run's span (a note says from how many days on runs shorter than a year).
ANNUALISED = {"cagr", "sharpe", "annual_volatility", "sortino", "calmar"}
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


#: Trade table columns: (trades.parquet column, header with unit, kind: text/time/usdt/percent/qty/price/...).
TRADE_COLUMNS = [("trade_no", "#", "count"), ("strategy_id", "Strategy", "text"), ("instrument_id", "Instrument", "text"),
                 ("side", "Side", "text"), ("entry_time", "Entry (UTC)", "time"), ("exit_time", "Exit (UTC)", "time"),
                 ("duration_s", "Duration", "duration"), ("quantity", "Quantity", "qty"),
                 ("entry_price", "Entry price", "price"), ("exit_price", "Exit price", "price"),
                 ("pnl", "Net PnL (USDT)", "usdt"), ("return_frac", "Return (%)", "percent"),
                 ("fees", "Fees (USDT)", "usdt"), ("funding", "Funding (USDT, received > 0)", "usdt"),
                 ("slippage_cost", "Slippage (USDT)", "usdt"), ("exit_reason", "Exit reason", "text"),
                 ("is_open", "Open at end", "text"), ("liquidated", "Liquidated", "text")]
_KIND_KEY = {"usdt": "pnl_usdt", "percent": "return_frac", "count": "trades"}


def trades_frame(run) -> pd.DataFrame:
    """trades.parquet with a 1-based ``trade_no`` (entry order as stored) and ``duration_s``; cached."""
    with run._lock:
        hit = run._cache.get("trades_frame")
    if hit is not None:
        return hit
    t = run.trades().copy()
    t.insert(0, "trade_no", np.arange(1, len(t) + 1))
    if len(t) and "entry_time" in t.columns:
        t["duration_s"] = (t["exit_time"] - t["entry_time"]).dt.total_seconds()
    with run._lock:
        run._cache["trades_frame"] = t
    return t


def trade_column_defs(run) -> list[dict]:
    """AG Grid column definitions: labelled headers with units, USDT to 2 decimals, returns as percents,
    prices at the data's tick precision, green/red PnL, number filters in the displayed unit."""
    t = trades_frame(run)
    dec = charts.price_decimals(pd.concat([t["entry_price"], t["exit_price"]]).to_numpy()) if len(t) else 2
    known = {c for c, _, _ in TRADE_COLUMNS}
    cols = [(c, h, k) for c, h, k in TRADE_COLUMNS if c in t.columns]
    cols += [(c, c, "number" if pd.api.types.is_numeric_dtype(t[c]) and t[c].dtype != bool else "text")
             for c in t.columns if c not in known]
    out = []
    for c, h, k in cols:
        d = {"field": c, "headerName": h, "sortable": True, "resizable": True,
             "headerTooltip": f"trades.parquet column {c}"}
        if k in ("usdt", "percent", "count", "number", "qty", "price", "duration"):
            d |= {"filter": "agNumberColumnFilter", "type": "rightAligned"}
        elif k == "time":
            d |= {"filter": "agTextColumnFilter"}
        else:
            d |= {"filter": "agTextColumnFilter"}
        if k in _KIND_KEY:
            d |= ag_format(_KIND_KEY[k])
        elif k == "price":
            d["valueFormatter"] = {"function": f"params.value == null ? '' : d3.format(',.{dec}f')(params.value)"}
        elif k == "qty":
            d["valueFormatter"] = {"function": "params.value == null ? '' : d3.format(',.8~f')(params.value)"}
        elif k == "duration":
            d["valueFormatter"] = {"function": (
                "params.value == null ? '' : (params.value >= 86400 ? d3.format('d')(Math.floor(params.value / 86400))"
                " + 'd ' : '') + d3.format('02d')(Math.floor(params.value % 86400 / 3600)) + ':' + "
                "d3.format('02d')(Math.floor(params.value % 3600 / 60)) + ':' + d3.format('02d')(Math.round(params.value % 60))")}
            d["headerTooltip"] = "exit time - entry time"
        if c == "pnl" or c == "return_frac":
            d["cellStyle"] = {"styleConditions": [
                {"condition": "params.value > 0", "style": {"color": "#1b7f2a"}},
                {"condition": "params.value < 0", "style": {"color": "#c62828"}}]}
        if c == "funding":
            d["headerTooltip"] = "funding cash flow of the trade: paid < 0, received > 0"
        out.append(d)
    return out


def _filter_trades(t: pd.DataFrame, filter_model: dict | None) -> pd.DataFrame:
    """Apply an AG Grid filter model. Number filters are typed in the displayed unit (a percent column
    filtered at 10 means 10 %, i.e. 0.10 in trades.parquet)."""
    for col, f in (filter_model or {}).items():
        if col not in t.columns:
            continue
        conds = f.get("conditions") or [f]
        masks = []
        for cond in conds:
            typ, val = cond.get("type"), cond.get("filter")
            s = t[col]
            if cond.get("filterType") == "number":
                scale = 0.01 if col == "return_frac" else 1.0
                v = None if val is None else float(val) * scale
                v2 = cond.get("filterTo")
                v2 = None if v2 is None else float(v2) * scale
                s = pd.to_numeric(s, errors="coerce")
                m = {"equals": s == v, "notEqual": s != v, "greaterThan": s > v, "greaterThanOrEqual": s >= v,
                     "lessThan": s < v, "lessThanOrEqual": s <= v,
                     "inRange": (s >= v) & (s <= (v2 if v2 is not None else v)),
                     "blank": s.isna(), "notBlank": s.notna()}.get(typ)
            else:
                txt = s.dt.strftime("%Y-%m-%d %H:%M:%S") if pd.api.types.is_datetime64_any_dtype(s) else s.astype(str)
                val = str(val or "").lower()
                low = txt.str.lower()
                m = {"contains": low.str.contains(val, regex=False), "notContains": ~low.str.contains(val, regex=False),
                     "equals": low == val, "notEqual": low != val, "startsWith": low.str.startswith(val),
                     "endsWith": low.str.endswith(val)}.get(typ)
            if m is not None:
                masks.append(m.fillna(False).to_numpy(bool))
        if masks:
            mask = masks[0]
            for m in masks[1:]:
                mask = (mask & m) if f.get("operator") == "AND" else (mask | m)
            t = t[mask]
    return t


def trades_block(run, start: int, end: int, sort_model: list | None, filter_model: dict | None) -> dict:
    """Rows ``[start, end)`` of the trade table after the grid's filter and sort (server side, so 100k
    trades stay fast): ``{"rowData": [...], "rowCount": n}`` for AG Grid's infinite row model."""
    t = _filter_trades(trades_frame(run), filter_model)
    if sort_model:
        t = t.sort_values([s["colId"] for s in sort_model], ascending=[s["sort"] == "asc" for s in sort_model],
                          kind="stable")
    chunk = t.iloc[start:end].copy()
    for c in chunk.columns:
        if pd.api.types.is_datetime64_any_dtype(chunk[c]):
            chunk[c] = chunk[c].dt.strftime("%Y-%m-%d %H:%M:%S")
        elif chunk[c].dtype == bool:
            chunk[c] = np.where(chunk[c], "yes", "no")
        elif pd.api.types.is_float_dtype(chunk[c]):
            chunk[c] = chunk[c].astype(object).where(np.isfinite(chunk[c]), None)
    return {"rowData": chunk.to_dict("records"), "rowCount": int(len(t))}


def trades_csv(run) -> str:
    """The whole trade table as CSV with the displayed headers (units in the header; USDT and prices
    unrounded, returns as fractions, times ISO 8601 UTC)."""
    t = trades_frame(run)
    names = {c: h for c, h, _ in TRADE_COLUMNS}
    names["return_frac"] = "Return (fraction)"
    names["duration_s"] = "Duration (s)"
    out = t.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    return out.rename(columns=names).to_csv(index=False)


def trades_page(run, page: int, size: int, sort_by: list | None, filter_query: str | None) -> tuple[list[dict], int]:
    """One page of trades (kept for API-style callers): rows ``page*size .. +size`` sorted by DataTable-style
    ``sort_by``. Returns (rows, page count)."""
    sort_model = [{"colId": s["column_id"], "sort": s["direction"]} for s in (sort_by or [])]
    block = trades_block(run, page * size, (page + 1) * size, sort_model, None)
    return block["rowData"], max(1, int(np.ceil(block["rowCount"] / size)))


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
    head = analytics.headline(m, run.cost_breakdown())
    values = {**m, **{k: head[k] for k in ("excess_return", "costs_pct_of_start")}}
    notes = {"excess_return": "total return - buy and hold", "costs_pct_of_start": "fees + funding + slippage "
             "+ liquidation fees / starting equity"}
    if head["annualised_note"]:
        notes |= {k: head["annualised_note"] for k in ANNUALISED}
    kpis = html.Div([html.Div([html.Div(label(k), className="label"),
                               html.Div(fmt(k, values.get(k)), className="value", id=f"kpi-{k}"),
                               html.Div(notes[k], className="muted", style={"fontSize": "11px"}, id=f"kpi-note-{k}") if k in notes else None],
                              className="kpi") for k in KPIS], className="kpis")
    trades = run.trades()
    by_strategy, by_instrument = breakdowns(run)
    n_open = int(m.get("open_trades") or (trades["is_open"].sum() if "is_open" in trades.columns else 0))
    open_note = html.P(f"{n_open} position{'s' if n_open != 1 else ''} still open at the end (marked to market at "
                       "the last close, not closed: no exit fee); they are counted in trades and exposure and "
                       "flagged is_open in the trade table.", className="error", id="detail-open-warning") \
        if n_open else None
    margin_card = html.Div([
        html.P("Perpetual / margin run: gross notional of the open positions over equity, margin held and funding "
               "paid so far (positive = paid).", className="muted"),
        _graph("detail-margin", 520)], className="card") if analytics.is_margin_run(run) else None
    return html.Div([
        dcc.Store(id="detail-run", data=run_id), dcc.Store(id="detail-zoom"), dcc.Store(id="detail-candles-zoom"),
        dcc.Store(id="detail-stage2"),
        header, kpis, open_note,
        html.Div([_graph("detail-equity"), _graph("detail-drawdown", 240)], className="card"),
        html.Div([html.Div(_graph("detail-monthly", 340), className="card"),
                  html.Div(_graph("detail-hist", 340), className="card")],
                 className="grid2"),
        html.Div([
            labelled("Instrument", dcc.Dropdown(bar_types, bar_types[0] if bar_types else None, id="detail-bar-type",
                                                clearable=False), maxWidth="520px"),
            html.Div("", id="detail-tf", className="muted"),
            _graph("detail-candles", 520),
        ], className="card"),
        margin_card,
        html.Div([
            html.H3("Results per strategy and per instrument"),
            html.P("USDT; costs paid > 0; return contribution = net PnL / starting equity. Definitions: "
                   "docs/metrics.md (by_strategy, by_instrument).", className="muted"),
            breakdown_table(by_strategy, "strategy_id", "Strategy", "detail-by-strategy") if by_strategy else
            html.P("no per-strategy results in this run", className="muted"),
            breakdown_table(by_instrument, "instrument_id", "Instrument", "detail-by-instrument") if by_instrument
            else html.P("no per-instrument results in this run", className="muted"),
            _graph("detail-strategy-pnl", 360),
        ], className="card", style={"overflowX": "auto"}),
        html.Div([
            html.H3(f"Trades ({len(trades):,})", id="detail-trades-title"),
            html.Div([html.Button("Download CSV (all trades)", id="detail-trades-csv-btn", n_clicks=0),
                      dcc.Download(id="detail-trades-csv"),
                      html.Span(" Click a row to zoom the candles to that trade. Headers sort (Enter on a focused "
                                "header), the filter icon filters in the displayed unit (10 on Return = 10 %).",
                                className="muted")]),
            dag.AgGrid(
                id="detail-trades", columnDefs=trade_column_defs(run), rowModelType="infinite",
                defaultColDef={"minWidth": 90, "flex": 1, "filterParams": {"maxNumConditions": 1}},
                dashGridOptions={"cacheBlockSize": 100, "maxBlocksInCache": 20, "tooltipShowDelay": 300},
                style={"height": "460px"},
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

    # First paint = header, KPIs, equity + drawdown, the trade table's first rows (and the tables of the
    # layout); the figures further down (monthly, histogram, costs, candles, per-strategy PnL, margin) are
    # requested once the equity figure has arrived, so they do not compete with it for the server and the
    # browser's main thread (docs/dash.md, "Detail page timing").
    app.clientside_callback(
        """function(fig, run, done) {  // once per page: an equity zoom must not reload the figures below
            return (fig && done !== run) ? run : window.dash_clientside.no_update; }""",
        Output("detail-stage2", "data"), Input("detail-equity", "figure"), State("detail-run", "data"),
        State("detail-stage2", "data"), prevent_initial_call=True,
    )

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
                  Input("detail-stage2", "data"), prevent_initial_call=True)
    def static_figures(run_id):
        run = ctx.store.get(run_id)
        return charts.monthly_heatmap(run), charts.trade_histogram(run), charts.cost_figure(run)

    @app.callback(Output("detail-candles", "figure"), Output("detail-tf", "children"),
                  Output("detail-bar-type", "value"),
                  Input("detail-bar-type", "value"), Input("detail-trades", "cellClicked"),
                  Input("detail-stage2", "data"), State("detail-trades", "getRowsRequest"), State("detail-run", "data"))
    def candles(bar_type, cell, stage2, req, run_id):
        """Automatic timeframe over the whole run; a click on a trade row zooms to that trade (its
        instrument, entry to exit with a margin of half the trade's duration, at least 30 bars either side)."""
        run = ctx.store.get(run_id)
        if dash.ctx.triggered_id == "detail-trades" and cell and cell.get("rowIndex") is not None:
            # the clicked row under the grid's current sort and filter (those of its last block request)
            req = req or {}
            i = int(cell["rowIndex"])
            rows = trades_block(run, i, i + 1, req.get("sortModel"), req.get("filterModel"))["rowData"]
            if rows:
                n = int(rows[0]["trade_no"])
                r = trades_frame(run).iloc[n - 1]
                iid = str(r.get("instrument_id", ""))
                bt = next((b for b in run.bar_types() if b.startswith(iid + "-")), bar_type)
                e0, e1 = int(r["entry_time"].value), int(r["exit_time"].value)
                pad = max((e1 - e0) // 2, 30 * charts.market.bar_step_ns(bt))
                fig, tf = charts.candles_figure(run, bt, run.catalog_root(ctx.catalog_root), e0 - pad, e1 + pad,
                                                uirevision=f"trade-{n}")
                return (fig, f"trade #{n}: timeframe {tf} (double click the chart for the whole run)",
                        bt if bt != bar_type else dash.no_update)
        if not bar_type:
            return dash.no_update, "this run has no bar types", dash.no_update
        if not stage2:  # first paint: the candles come with the second stage
            return dash.no_update, "loading candles...", dash.no_update
        fig, tf = charts.candles_figure(run, bar_type, run.catalog_root(ctx.catalog_root))
        return fig, f"timeframe {tf} (zoom in for finer candles; trades are exact)", dash.no_update

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

    @app.callback(Output("detail-trades", "getRowsResponse"), Input("detail-trades", "getRowsRequest"),
                  State("detail-run", "data"), prevent_initial_call=True)
    def trade_rows(req, run_id):
        """Blocks of the trade table for AG Grid's infinite row model (server-side sort and filter)."""
        if not req:
            return dash.no_update
        run = ctx.store.get(run_id)
        return trades_block(run, int(req.get("startRow") or 0), int(req.get("endRow") or 100),
                            req.get("sortModel"), req.get("filterModel"))

    @app.callback(Output("detail-trades-csv", "data"), Input("detail-trades-csv-btn", "n_clicks"),
                  State("detail-run", "data"), prevent_initial_call=True)
    def trade_csv(_n, run_id):
        run = ctx.store.get(run_id)
        return dcc.send_string(trades_csv(run), f"{run_id.replace('/', '_')}-trades.csv")

    @app.callback(Output("detail-strategy-pnl", "figure"), Input("detail-stage2", "data"), prevent_initial_call=True)
    def strategy_pnl(run_id):
        return charts.strategy_pnl_figure(ctx.store.get(run_id))

    @app.callback(Output("detail-margin", "figure"), Input("detail-stage2", "data"), prevent_initial_call=True)
    def margin(run_id):
        run = ctx.store.get(run_id)
        fig = charts.margin_figure(run, ctx.catalog_root)
        return fig if fig is not None else dash.no_update

    app.clientside_callback(
        """function(cell) { const g = document.getElementById('detail-candles');
            if (cell && g) { g.scrollIntoView({behavior: 'instant', block: 'center'}); }
            return window.dash_clientside.no_update; }""",
        Output("detail-candles-zoom", "id"), Input("detail-trades", "cellClicked"), prevent_initial_call=True,
    )
