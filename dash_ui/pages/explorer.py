"""Data explorer: the catalog inventory (with gaps), and candles of an instrument, timeframe and range."""

from __future__ import annotations

from urllib.parse import urlencode

import dash_ag_grid as dag
import pandas as pd
from dash import Input, Output, State, dcc, html

from catalog.inventory import bar_instrument_id
from dash_ui import charts, grids, market
from dash_ui.forms import labelled

#: Inventory columns: (field, header, kind).
INVENTORY_COLUMNS = [("kind", "Kind", "text"), ("identifier", "Series", "text"), ("instrument_id", "Instrument", "text"),
                     ("first", "First (UTC)", "text"), ("last", "Last (UTC)", "text"), ("rows", "Rows", "count"),
                     ("files", "Files", "count"), ("MB", "Size (MB)", "mb"), ("gaps", "Gaps", "count")]


def inventory_column_defs() -> list[dict]:
    out = []
    for f, h, k in INVENTORY_COLUMNS:
        if k == "text":
            out.append(grids.text_col(f, h, minWidth=150 if f in ("first", "last") else 120,
                                      flex=3 if f == "identifier" else 1))
        else:
            d = grids.number_col(f, h, fmt_key="trades" if k == "count" else "span_days", signed=False)
            out.append(d | {"headerName": h})
    return out


def gap_column_defs(columns) -> list[dict]:
    names = {"last_before": "Last bar before (UTC)", "first_after": "First bar after (UTC)",
             "missing": "Missing rows"}
    return [grids.number_col(c, names.get(c, c), fmt_key="trades", signed=False) if c == "missing"
            else grids.text_col(c, names.get(c, c)) for c in columns]


def _inventory_rows(ctx) -> list[dict]:
    inv = ctx.inventory().copy()
    for c in ("first", "last"):
        inv[c] = inv[c].dt.strftime("%Y-%m-%d %H:%M").fillna("")
    inv["MB"] = (inv["bytes"] / 1e6).round(2)
    return inv.drop(columns=["bytes"]).to_dict("records")


def layout(ctx) -> html.Div:
    rows = _inventory_rows(ctx)
    bar_types = ctx.bar_types()
    return html.Div([
        html.H2("Data explorer"),
        html.P(f"Catalog {ctx.catalog_root}. Times are UTC bar close times (ts_init). Click a row for its gaps.",
               className="muted"),
        html.Div(dag.AgGrid(
            id="inv-table", columnDefs=inventory_column_defs(), rowData=rows,
            getRowId="params.data.kind + '/' + params.data.identifier",
            defaultColDef={"minWidth": 90, "flex": 1, "filterParams": {"maxNumConditions": 1}},
            dashGridOptions={**grids.GRID_OPTIONS, "pagination": True, "paginationPageSize": 20,
                             "domLayout": "autoHeight"},
            style={"width": "100%"},
        ), className="card"),
        html.Div(id="inv-gaps", className="card"),
        html.Div([
            html.H3("Candles"),
            html.Div([
                labelled("Bar series", dcc.Dropdown(bar_types, bar_types[0] if bar_types else None, id="ex-bar-type",
                                                    clearable=False), minWidth="420px"),
                labelled("Timeframe", dcc.Dropdown(list(market.TIMEFRAMES), "1h", id="ex-tf", clearable=False)),
                labelled("From (UTC, candle open)", dcc.Input(id="ex-start", type="text", placeholder="YYYY-MM-DD")),
                labelled("To (UTC, exclusive)", dcc.Input(id="ex-end", type="text", placeholder="YYYY-MM-DD")),
                labelled("Max candles", dcc.Input(id="ex-limit", type="number", value=2000, min=1, max=50000)),
                html.Button("Show", id="ex-show", n_clicks=0),
            ], className="filters"),
            html.Div(id="ex-info", className="muted"),
            dcc.Graph(id="ex-graph", style={"height": "560px"}),
        ], className="card"),
    ])


def register(app, ctx) -> None:
    @app.callback(Output("inv-gaps", "children"), Input("inv-table", "cellClicked"), State("inv-table", "rowData"),
                  prevent_initial_call=True)
    def gaps(cell, data):
        from catalog.inventory import gap_list

        if not cell or not data:
            return ""
        row = next((r for r in data if str(r.get("kind")) + "/" + str(r.get("identifier")) == cell.get("rowId")), None)
        if row is None:
            return ""
        g = gap_list(ctx.catalog_root, row["kind"], row["identifier"])
        if g.empty:
            return html.P(f"{row['kind']}/{row['identifier']}: no gaps.", id="inv-gap-text")
        g = g.assign(last_before=g["last_before"].dt.strftime("%Y-%m-%d %H:%M"),
                     first_after=g["first_after"].dt.strftime("%Y-%m-%d %H:%M"))
        return html.Div([html.P(f"{row['kind']}/{row['identifier']}: {len(g)} gaps, {int(g['missing'].sum()):,} "
                                "missing rows", id="inv-gap-text"),
                         dag.AgGrid(id="inv-gap-table", rowData=g.to_dict("records"),
                                    columnDefs=gap_column_defs(g.columns),
                                    defaultColDef={"flex": 1, "minWidth": 120},
                                    dashGridOptions={**grids.GRID_OPTIONS, "pagination": True,
                                                     "paginationPageSize": 10, "domLayout": "autoHeight"})])

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
