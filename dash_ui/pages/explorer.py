"""Data explorer: the catalog inventory (with gaps), and candles of an instrument, timeframe and range."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html

from catalog.inventory import bar_instrument_id
from dash_ui import charts, market


def _inventory_rows(ctx) -> list[dict]:
    inv = ctx.inventory().copy()
    for c in ("first", "last"):
        inv[c] = inv[c].dt.strftime("%Y-%m-%d %H:%M").fillna("")
    inv["MB"] = (inv["bytes"] / 1e6).round(2)
    return inv.drop(columns=["bytes"]).to_dict("records")


def layout(ctx) -> html.Div:
    rows = _inventory_rows(ctx)
    bar_types = ctx.bar_types()
    cols = ["kind", "identifier", "instrument_id", "first", "last", "rows", "files", "MB", "gaps"]
    return html.Div([
        html.H2("Data explorer"),
        html.P(f"Catalog {ctx.catalog_root}. Times are UTC bar close times (ts_init). Click a row for its gaps.",
               className="muted"),
        html.Div(dash_table.DataTable(
            id="inv-table", columns=[{"name": c, "id": c} for c in cols], data=rows, sort_action="native",
            filter_action="native", page_size=20, style_cell={"fontSize": 13, "padding": "3px 8px"},
        ), className="card"),
        html.Div(id="inv-gaps", className="card"),
        html.Div([
            html.H3("Candles"),
            html.Div([
                html.Div([html.Label("Bar series"), dcc.Dropdown(bar_types, bar_types[0] if bar_types else None,
                                                                id="ex-bar-type", clearable=False)],
                         style={"minWidth": "420px"}),
                html.Div([html.Label("Timeframe"), dcc.Dropdown(list(market.TIMEFRAMES), "1h", id="ex-tf",
                                                               clearable=False)]),
                html.Div([html.Label("From (UTC, candle open)"), dcc.Input(id="ex-start", type="text",
                                                                           placeholder="YYYY-MM-DD")]),
                html.Div([html.Label("To (UTC, exclusive)"), dcc.Input(id="ex-end", type="text",
                                                                       placeholder="YYYY-MM-DD")]),
                html.Div([html.Label("Max candles"), dcc.Input(id="ex-limit", type="number", value=2000, min=1,
                                                               max=50000)]),
                html.Button("Show", id="ex-show", n_clicks=0),
            ], className="filters"),
            html.Div(id="ex-info", className="muted"),
            dcc.Graph(id="ex-graph", style={"height": "560px"}),
        ], className="card"),
    ])


def register(app, ctx) -> None:
    @app.callback(Output("inv-gaps", "children"), Input("inv-table", "active_cell"), State("inv-table", "derived_viewport_data"),
                  prevent_initial_call=True)
    def gaps(cell, view):
        from catalog.inventory import gap_list

        if not cell or not view:
            return ""
        row = view[cell["row"]]
        g = gap_list(ctx.catalog_root, row["kind"], row["identifier"])
        if g.empty:
            return html.P(f"{row['kind']}/{row['identifier']}: no gaps.", id="inv-gap-text")
        g = g.assign(last_before=g["last_before"].dt.strftime("%Y-%m-%d %H:%M"),
                     first_after=g["first_after"].dt.strftime("%Y-%m-%d %H:%M"))
        return html.Div([html.P(f"{row['kind']}/{row['identifier']}: {len(g)} gaps, {int(g['missing'].sum()):,} "
                                "missing rows", id="inv-gap-text"),
                         dash_table.DataTable(data=g.to_dict("records"), page_size=10,
                                              columns=[{"name": c, "id": c} for c in g.columns])])

    @app.callback(Output("ex-graph", "figure"), Output("ex-info", "children"),
                  Input("ex-show", "n_clicks"), State("ex-bar-type", "value"), State("ex-tf", "value"),
                  State("ex-start", "value"), State("ex-end", "value"), State("ex-limit", "value"))
    def show(_n, bar_type, tf_name, start, end, limit):
        if not bar_type:
            return charts.ohlc_figure(pd.DataFrame(), "catalog has no bars", 60), "The catalog has no bars."
        try:
            step = market.bar_step_ns(bar_type)
            tf = market.TIMEFRAMES[tf_name]
            s = pd.Timestamp(start, tz="UTC").value if start else None
            e = pd.Timestamp(end, tz="UTC").value if end else None
            candles = market.resample(market.window(market.BARS.get(ctx.catalog_root, bar_type),
                                                    None if s is None else s // tf * tf + step,
                                                    None if e is None else e + step), step, tf)
        except (ValueError, KeyError) as err:
            return charts.ohlc_figure(pd.DataFrame(), "invalid input", 60), html.Span(str(err), className="error")
        if s is not None:
            candles = candles[candles["open_time"].astype("int64") >= s]
        limit = int(limit or 2000)
        truncated = len(candles) > limit
        candles = candles.iloc[:limit]
        partial = int((candles["bars"] < tf // step).sum()) if len(candles) else 0
        title = f"{bar_type} - {tf_name} candles (resampled server-side from {step // 60_000_000_000} m bars)"
        q = urlencode({k: v for k, v in {"symbol": bar_instrument_id(bar_type), "timeframe": tf_name, "start": start,
                                         "end": end, "limit": limit}.items() if v})
        info = [f"{len(candles):,} candles" + (f" (first {limit}; more in range)" if truncated else "")
                + f", {partial:,} built from fewer bars than a full candle (data gaps).  API: ",
                html.A(f"/api/ohlcv?{q}", href=f"/api/ohlcv?{q}", target="_blank")]
        return charts.ohlc_figure(candles, title, tf), html.Span(info, id="ex-count")
