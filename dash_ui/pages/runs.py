"""Runs list: every results folder with key metrics; sort, filter, search; select runs to compare."""

from __future__ import annotations

from urllib.parse import quote

import dash
import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html
from dash.dash_table.Format import Format, Group, Scheme

from dash_ui.formatting import PERCENT_KEYS, RATIO_KEYS, label

SHOWN = ["run_id", "strategies", "instruments", "start", "end", "total_return", "cagr", "sharpe", "max_drawdown",
         "trades", "win_rate", "profit_factor", "exposure", "fees_paid_usdt", "funding_paid_usdt",
         "buy_and_hold_return"]
FILTER_METRICS = ["total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
                  "profit_factor", "exposure", "fees_paid_usdt", "funding_paid_usdt"]


def _columns() -> list[dict]:
    cols = []
    for k in SHOWN:
        c = {"name": label(k) if k != "run_id" else "Run", "id": k}
        if k == "run_id":
            c["presentation"] = "markdown"
        elif k in PERCENT_KEYS:
            c |= {"type": "numeric", "format": Format(precision=2, scheme=Scheme.percentage)}
        elif k in RATIO_KEYS:
            c |= {"type": "numeric", "format": Format(precision=3, scheme=Scheme.fixed)}
        elif k.endswith("_usdt"):
            c |= {"type": "numeric", "format": Format(precision=2, scheme=Scheme.fixed, group=Group.yes)}
        elif k == "trades":
            c |= {"type": "numeric"}
        cols.append(c)
    return cols


def filter_runs(df: pd.DataFrame, search: str | None, strategies: list | None, instruments: list | None,
                date_from: str | None, date_to: str | None, metric: str | None, lo: float | None,
                hi: float | None) -> pd.DataFrame:
    """Apply the filter controls: free-text search over id/name/strategies/instruments, strategy and
    instrument membership, run period overlapping [from, to] (UTC dates), and ``lo <= metric <= hi``."""
    out = df
    if search:
        s = search.lower()
        text = (out["run_id"] + " " + out["name"].astype(str) + " " + out["strategies"] + " " + out["instruments"]).str.lower()
        out = out[text.str.contains(s, regex=False)]
    if strategies:
        out = out[out["strategies"].apply(lambda v: any(x in v.split(", ") for x in strategies))]
    if instruments:
        out = out[out["instruments"].apply(lambda v: any(x in v.split(", ") for x in instruments))]
    if date_from:
        out = out[pd.to_datetime(out["end"], utc=True) >= pd.Timestamp(date_from, tz="UTC")]
    if date_to:
        out = out[pd.to_datetime(out["start"], utc=True) <= pd.Timestamp(date_to, tz="UTC") + pd.Timedelta(days=1)]
    if metric and metric in out.columns:
        vals = pd.to_numeric(out[metric], errors="coerce")
        if lo is not None:
            out = out[vals >= lo]
            vals = vals[vals >= lo]
        if hi is not None:
            out = out[vals <= hi]
    return out


def layout(ctx) -> html.Div:
    df = ctx.store.list_runs()
    strategies = sorted({s for v in df["strategies"] for s in v.split(", ") if s})
    instruments = sorted({s for v in df["instruments"] for s in v.split(", ") if s})
    return html.Div([
        html.H2(f"Runs ({len(df)})", id="runs-title"),
        html.Div([
            html.Div([html.Label("Search"), dcc.Input(id="runs-search", type="text", placeholder="id, strategy, instrument",
                                                      debounce=True)]),
            html.Div([html.Label("Strategy"), dcc.Dropdown(strategies, id="runs-strategy", multi=True)]),
            html.Div([html.Label("Instrument"), dcc.Dropdown(instruments, id="runs-instrument", multi=True)],
                     style={"minWidth": "260px"}),
            html.Div([html.Label("Period from (UTC)"), dcc.Input(id="runs-from", type="text", placeholder="YYYY-MM-DD",
                                                                debounce=True)]),
            html.Div([html.Label("Period to (UTC)"), dcc.Input(id="runs-to", type="text", placeholder="YYYY-MM-DD",
                                                              debounce=True)]),
            html.Div([html.Label("Metric"), dcc.Dropdown([{"label": label(m), "value": m} for m in FILTER_METRICS],
                                                          id="runs-metric")]),
            html.Div([html.Label("min"), dcc.Input(id="runs-min", type="number", debounce=True)]),
            html.Div([html.Label("max"), dcc.Input(id="runs-max", type="number", debounce=True)]),
        ], className="filters card"),
        html.Div([
            dcc.Link("Compare selected runs", id="runs-compare", href="/compare"),
            html.Span(" (tick rows in the first column; column headers sort, the row under them filters, "
                      "e.g. > 0.1 on a metric)", className="muted"),
        ], style={"marginBottom": "8px"}),
        dash_table.DataTable(
            id="runs-table", columns=_columns(), data=[], row_selectable="multi", selected_rows=[],
            sort_action="native", filter_action="native", page_size=25, markdown_options={"link_target": "_self"},
            style_table={"overflowX": "auto"}, style_cell={"fontSize": 13, "padding": "4px 8px"},
            style_header={"fontWeight": "600"},
        ),
        dcc.Interval(id="runs-refresh", interval=5000),
    ])


def register(app, ctx) -> None:
    from dash_ui.pages import titles

    titles.install(app)

    @app.callback(
        Output("runs-table", "data"), Output("runs-title", "children"),
        Input("runs-refresh", "n_intervals"), Input("runs-search", "value"), Input("runs-strategy", "value"),
        Input("runs-instrument", "value"), Input("runs-from", "value"), Input("runs-to", "value"),
        Input("runs-metric", "value"), Input("runs-min", "value"), Input("runs-max", "value"),
        State("runs-table", "data"),
    )
    def refresh(_n, search, strategies, instruments, date_from, date_to, metric, lo, hi, current):
        """Re-read the results root (cached per folder) every 5 s and on filter changes."""
        df = ctx.store.list_runs()
        total = len(df)
        try:
            df = filter_runs(df, search, strategies, instruments, date_from, date_to, metric, lo, hi)
        except ValueError:
            pass  # a half-typed date: keep the unfiltered list
        rows = []
        for r in df.to_dict("records"):
            r = {k: r.get(k) for k in SHOWN}
            rid = r["run_id"]
            r["id"] = rid
            r["run_id"] = f"[{rid}](/run/{quote(rid)})" + (" **SYNTHETIC**" if df.loc[df["run_id"] == rid, "synthetic"].any() else "")
            r["start"] = (r["start"] or "")[:16].replace("T", " ")
            r["end"] = (r["end"] or "")[:16].replace("T", " ")
            rows.append(r)
        if rows == current:  # nothing changed: keep the table (and the user's selection) as is
            return dash.no_update, dash.no_update
        return rows, f"Runs ({len(rows)} of {total})"

    @app.callback(Output("runs-compare", "href"), Output("runs-compare", "children"),
                  Input("runs-table", "selected_row_ids"), State("runs-table", "data"))
    def compare_link(ids, _data):
        ids = ids or []
        if not ids:
            return "/compare", "Compare selected runs (none selected)"
        return "/compare?runs=" + ",".join(quote(i) for i in ids), f"Compare selected runs ({len(ids)})"
