"""Runs list: every results folder with key metrics; sort, filter, search; select runs to compare.

The table is an AG Grid (dash-ag-grid) with the decision columns first: run name, total return, excess
return over buy and hold, Sharpe, max drawdown, trades, costs as % of the starting equity, period; then
the rest. Values keep metrics.json units (fractions, USDT) and are shown in their unit (percents,
USDT with 2 decimals); **filters are typed in the displayed unit** (10 on a percent column = 10 %),
both in the grid's column filters and in the min/max controls above it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from urllib.parse import quote

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import Input, Output, dcc, html

from dash_ui import grids
from dash_ui.analytics import headline
from dash_ui.formatting import kind, label
from dash_ui.forms import labelled

#: Decision columns first, then the others (metrics.json keys; ``period``/``span_days`` derived).
DECISION = ["name", "total_return", "excess_return", "sharpe", "max_drawdown", "trades", "costs_pct_of_start",
            "period"]
OTHERS = ["span_days", "cagr", "sortino", "win_rate", "profit_factor", "exposure", "fees_paid_usdt",
          "funding_paid_usdt", "buy_and_hold_return", "final_equity", "strategies", "instruments", "run_id"]
SHOWN = DECISION + OTHERS
#: Short headers of the decision columns (the unit is added by :func:`dash_ui.grids.header`).
SHORT = {"total_return": "Return", "excess_return": "Excess vs buy & hold", "max_drawdown": "Max drawdown",
         "costs_pct_of_start": "Costs, % of start", "buy_and_hold_return": "Buy & hold",
         "funding_paid_usdt": "Funding paid"}
FILTER_METRICS = ["total_return", "excess_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades",
                  "costs_pct_of_start", "win_rate", "profit_factor", "exposure", "fees_paid_usdt",
                  "funding_paid_usdt"]

_extra_cache: dict[str, tuple[float, dict]] = {}
_extra_lock = threading.Lock()


def extra_metrics(root: Path, run_id: str) -> dict:
    """``excess_return``, ``costs_pct_of_start`` and ``span_days`` of one run (:func:`dash_ui.analytics.headline`
    on its metrics.json), cached by the file's modification time."""
    p = Path(root) / run_id / "metrics.json"
    try:
        mt = p.stat().st_mtime
    except OSError:
        return {"excess_return": None, "costs_pct_of_start": None, "span_days": None}
    with _extra_lock:
        hit = _extra_cache.get(run_id)
    if hit and hit[0] == mt:
        return hit[1]
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError):
        m = {}
    h = headline(m)
    out = {k: h[k] for k in ("excess_return", "costs_pct_of_start", "span_days")}
    with _extra_lock:
        _extra_cache[run_id] = (mt, out)
    return out


def runs_frame(store) -> pd.DataFrame:
    """The store's runs list plus the derived decision columns."""
    df = store.list_runs()
    extra = [extra_metrics(store.root, r) for r in df["run_id"]]
    for k in ("excess_return", "costs_pct_of_start", "span_days"):
        df[k] = [e[k] for e in extra]
    return df


def column_defs() -> list[dict]:
    """AG Grid columns: labelled, with units, decision columns first and pinned name."""
    cols = []
    for k in SHOWN:
        if k == "name":
            cols.append(grids.link_col("name_link", "Run", pinned="left", minWidth=200, headerTooltip="run name (links to the run)",
                                       filterValueGetter={"function": "params.data.name + ' ' + params.data.run_id"}))
        elif k == "period":
            cols.append(grids.text_col("period", "Period (UTC)", minWidth=290,
                                       headerTooltip="first -> last sample of the run"))
        elif k in ("strategies", "instruments"):
            cols.append(grids.text_col(k, k.capitalize(), minWidth=180))
        elif k == "run_id":
            cols.append(grids.text_col("run_id", "Run id", minWidth=300))
        elif k == "span_days":
            cols.append(grids.number_col(k, "Days"))
        else:
            tip = {"excess_return": "total return - buy and hold return",
                   "costs_pct_of_start": "fees + funding + slippage + liquidation fees / starting equity"}.get(k)
            cols.append(grids.number_col(k, SHORT.get(k), tooltip=tip, signed=True if k in ("total_return", "excess_return", "cagr")
                                         else False))
    return cols


def filter_runs(df: pd.DataFrame, search: str | None, strategies: list | None, instruments: list | None,
                date_from: str | None, date_to: str | None, metric: str | None, lo: float | None,
                hi: float | None) -> pd.DataFrame:
    """Apply the filter controls: free-text search over id/name/strategies/instruments, strategy and
    instrument membership, run period overlapping [from, to] (UTC dates), and ``lo <= metric <= hi``
    with ``lo``/``hi`` **in the displayed unit** (percent for fraction metrics: 10 = 10 % = 0.10)."""
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
        scale = 0.01 if kind(metric) == "percent" else 1.0
        vals = pd.to_numeric(out[metric], errors="coerce")
        if lo is not None:
            keep = vals >= float(lo) * scale - 1e-12
            out, vals = out[keep], vals[keep]
        if hi is not None:
            out = out[vals <= float(hi) * scale + 1e-12]
    return out


def grid_rows(df: pd.DataFrame) -> list[dict]:
    """Row data: metrics as numbers in metrics.json units (None for missing), a markdown link to the run."""
    rows = []
    for r in df.to_dict("records"):
        rid = r["run_id"]
        row = {"id": rid, "run_id": rid, "name": str(r.get("name") or rid),
               "name_link": f"[{r.get('name') or rid}](/run/{quote(rid)})" + (" **SYNTHETIC**" if r.get("synthetic") else ""),
               "strategies": r.get("strategies"), "instruments": r.get("instruments")}
        start, end = (r.get("start") or "")[:16].replace("T", " "), (r.get("end") or "")[:16].replace("T", " ")
        row["period"] = f"{start} -> {end}" if start else ""
        for k in SHOWN:
            if k in row or k in ("name", "period"):
                continue
            v = r.get(k)
            try:
                v = None if v is None or isinstance(v, bool) else float(v)
            except (TypeError, ValueError):
                v = None
            row[k] = None if v is None or v != v or v in (float("inf"), float("-inf")) else v
        rows.append(row)
    return rows


def layout(ctx) -> html.Div:
    df = ctx.store.list_runs()
    strategies = sorted({s for v in df["strategies"] for s in v.split(", ") if s})
    instruments = sorted({s for v in df["instruments"] for s in v.split(", ") if s})
    return html.Div([
        html.H2(f"Runs ({len(df)})", id="runs-title"),
        html.Div([
            labelled("Search", dcc.Input(id="runs-search", type="text", placeholder="id, strategy, instrument",
                                         debounce=True)),
            labelled("Strategy", dcc.Dropdown(strategies, id="runs-strategy", multi=True)),
            labelled("Instrument", dcc.Dropdown(instruments, id="runs-instrument", multi=True), minWidth="260px"),
            labelled("Period from (UTC)", dcc.Input(id="runs-from", type="text", placeholder="YYYY-MM-DD",
                                                    debounce=True)),
            labelled("Period to (UTC)", dcc.Input(id="runs-to", type="text", placeholder="YYYY-MM-DD",
                                                  debounce=True)),
            labelled("Metric", dcc.Dropdown([{"label": label(m) + (" (%)" if kind(m) == "percent" else ""),
                                              "value": m} for m in FILTER_METRICS], id="runs-metric"),
                     minWidth="220px"),
            labelled("min (displayed unit: 10 = 10 %)", dcc.Input(id="runs-min", type="number", debounce=True)),
            labelled("max (displayed unit)", dcc.Input(id="runs-max", type="number", debounce=True)),
        ], className="filters card"),
        html.Div([
            dcc.Link("Compare selected runs", id="runs-compare", href="/compare"),
            html.Span(" (tick rows in the first column; headers sort with the mouse or Enter; the filter icon "
                      "filters in the displayed unit: 10 on a percent column = 10 %)", className="muted"),
        ], style={"marginBottom": "8px"}),
        dag.AgGrid(
            id="runs-table", columnDefs=column_defs(), rowData=[], getRowId="params.data.id",
            defaultColDef={"minWidth": 105, "flex": 1, "filterParams": {"maxNumConditions": 1},
                           "wrapHeaderText": True, "autoHeaderHeight": True},
            dashGridOptions={**grids.GRID_OPTIONS, "rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": True,
                                                              "enableClickSelection": False},
                             "selectionColumnDef": {"pinned": "left", "maxWidth": 50},
                             "pagination": True, "paginationPageSize": 50, "domLayout": "autoHeight"},
            style={"width": "100%"},
        ),
        html.Div("", id="runs-filter-note", className="muted"),
        dcc.Interval(id="runs-refresh", interval=5000),
    ])


def register(app, ctx) -> None:
    from dash_ui.pages import titles

    titles.install(app)

    @app.callback(
        Output("runs-table", "rowData"), Output("runs-title", "children"), Output("runs-filter-note", "children"),
        Input("runs-refresh", "n_intervals"), Input("runs-search", "value"), Input("runs-strategy", "value"),
        Input("runs-instrument", "value"), Input("runs-from", "value"), Input("runs-to", "value"),
        Input("runs-metric", "value"), Input("runs-min", "value"), Input("runs-max", "value"),
        dash.State("runs-table", "rowData"),
    )
    def refresh(_n, search, strategies, instruments, date_from, date_to, metric, lo, hi, current):
        """Re-read the results root (cached per folder) every 5 s and on filter changes."""
        df = runs_frame(ctx.store)
        total = len(df)
        note = ""
        try:
            df = filter_runs(df, search, strategies, instruments, date_from, date_to, metric, lo, hi)
        except ValueError:
            note = "a date could not be read (YYYY-MM-DD): showing the list without the date filter"
        if metric and (lo is not None or hi is not None):
            u = " %" if kind(metric) == "percent" else ""
            note = (note + "  " if note else "") + (
                f"{label(metric)}: {'' if lo is None else f'{lo}{u} <= '}value{'' if hi is None else f' <= {hi}{u}'}"
                + (" - no run matches" if df.empty else ""))
        rows = grid_rows(df)
        title = f"Runs ({len(rows)} of {total})"
        if rows == current:  # nothing changed: keep the table (and the user's selection) as is
            return dash.no_update, title, note
        return rows, title, note

    @app.callback(Output("runs-compare", "href"), Output("runs-compare", "children"),
                  Input("runs-table", "selectedRows"))
    def compare_link(selected):
        ids = [r["id"] for r in (selected or [])]
        if not ids:
            return "/compare", "Compare selected runs (none selected)"
        return "/compare?runs=" + ",".join(quote(i) for i in ids), f"Compare selected runs ({len(ids)})"
