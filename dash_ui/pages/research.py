"""Research: runs and sweeps of the research registry (:mod:`nautilus_app.research.registry`).

Reads the registry with its own API (``Registry.query_runs``, ``Registry.sweeps_frame``), never with
raw SQL. Filters: strategy type, sweep, status, and up to two metric thresholds (``min <= metric <=
max``, metrics in the units of docs/metrics.md: fractions, USDT). The controls can be preset from the
URL: ``/research?strategy_type=ema_cross&sweep=s&status=done&metric=sharpe&min=1&metric2=max_drawdown&max2=0.2``.
A run links to its detail page when its results folder (``results_path``) still exists under the app's
results root (sweep runs live in ``<results>/research/<sweep>/<run_id>``).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from dash import Input, Output, dash_table, dcc, html

from nautilus_app.research.registry import HEADLINE_METRICS

SHOWN = ["run", "sweep", "kind", "status", "strategy", "strategy_type", "param_version", "params", "objective",
         *HEADLINE_METRICS, "results"]
METRICS = list(HEADLINE_METRICS)


def open_registry(ctx):
    """The app's :class:`~nautilus_app.research.registry.Registry` (cached), or None when its SQLite file
    does not exist. Other errors (unreachable server, old schema) propagate to the caller."""
    from nautilus_app.research.registry import Registry

    url = ctx.registry_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None
    if ctx._registry is None or ctx._registry.url != url:
        ctx._registry = Registry.open(url, migrate=False)
    return ctx._registry


def detail_key(ctx, results_path: str | None) -> str | None:
    """The ``/run/<key>`` key of a registry run's results folder, or None if the folder is gone or
    outside the app's results root."""
    if not results_path:
        return None
    p = Path(results_path)
    if not (p / "metrics.json").exists():
        return None
    try:
        rel = p.resolve().relative_to(ctx.store.root.resolve())
    except ValueError:
        return None
    key = rel.as_posix()
    return key if ctx.store.exists(key) else None


def _num(v):
    try:
        return None if v is None or v == "" else float(v)
    except (TypeError, ValueError):
        return None


def query(ctx, strategy_type=None, sweep=None, status=None, thresholds=()) -> pd.DataFrame:
    """Registry runs for the page's filters. ``thresholds``: ``[(metric, min, max), ...]`` (None = open)."""
    reg = open_registry(ctx)
    if reg is None:
        return pd.DataFrame()
    mins, maxs = {}, {}
    for metric, lo, hi in thresholds:
        if metric and lo is not None:
            mins[metric] = lo
        if metric and hi is not None:
            maxs[metric] = hi
    return reg.query_runs(strategy_type=strategy_type or None, sweep=sweep or None, status=status or None,
                          min_metrics=mins, max_metrics=maxs)


def rows(ctx, df: pd.DataFrame) -> list[dict]:
    """DataTable rows: the run key (first 12 characters), metrics as numbers, params as JSON and a
    markdown link to the detail page (or why there is none)."""
    out = []
    for r in df.to_dict("records"):
        key = detail_key(ctx, r.get("results_path"))
        row = {k: r.get(k) for k in SHOWN if k in r}
        row["id"] = f"{r['run_key']}:{r.get('component', 0)}"
        row["run"] = r["run_key"][:12]
        row["params"] = json.dumps(r.get("params") or {}, sort_keys=True)
        for m in ("objective", *METRICS):
            v = r.get(m)
            row[m] = None if v is None or (isinstance(v, float) and pd.isna(v)) else float(v)
        if key:
            row["results"] = f"[{key.rsplit('/', 1)[-1]}](/run/{quote(key)})"
        elif not r.get("results_path"):
            row["results"] = "no results folder recorded"
        elif not (Path(r["results_path"]) / "metrics.json").exists():
            row["results"] = "results folder not found"
        else:
            row["results"] = "outside the app's results root"
        out.append(row)
    return out


def _columns() -> list[dict]:
    cols = []
    for k in SHOWN:
        c = {"name": k, "id": k}
        if k == "results":
            c["presentation"] = "markdown"
        elif k in METRICS or k in ("objective", "param_version"):
            c["type"] = "numeric"
        cols.append(c)
    return cols


def layout(ctx, query_args: dict | None = None) -> html.Div:
    q = query_args or {}
    try:
        reg = open_registry(ctx)
        error = None
    except Exception as exc:  # noqa: BLE001 - shown to the user
        reg, error = None, f"cannot open the registry {ctx.registry_url}: {exc}"
    types = sorted(reg.strategies_frame()["strategy_type"].unique()) if reg is not None else []
    sweeps = reg.sweeps_frame() if reg is not None else pd.DataFrame()
    sweep_names = sweeps["name"].tolist() if len(sweeps) else []
    metric_opts = [{"label": m, "value": m} for m in METRICS]
    header = html.Div([
        html.H2("Research registry", id="research-title"),
        html.Div(f"registry: {ctx.registry_url}", className="muted", id="research-url"),
        html.Div(error or ("" if reg is not None else "No registry yet (run `nautilus-app sweep ...` to create "
                                                      "one, or start the app with --registry URL)."),
                 className="error", id="research-error"),
    ])
    sweeps_table = dash_table.DataTable(
        id="research-sweeps", data=sweeps.astype(str).to_dict("records") if len(sweeps) else [],
        columns=[{"name": c, "id": c} for c in (sweeps.columns if len(sweeps) else [])],
        style_table={"overflowX": "auto"}, style_cell={"fontSize": 12, "padding": "2px 6px"})
    return html.Div([
        header,
        html.Div([html.H3(f"Sweeps ({len(sweep_names)})"), sweeps_table], className="card"),
        html.Div([
            html.Div([html.Label("Strategy type"),
                      dcc.Dropdown(types, q.get("strategy_type"), id="research-type")]),
            html.Div([html.Label("Sweep"), dcc.Dropdown(sweep_names, q.get("sweep"), id="research-sweep")]),
            html.Div([html.Label("Status"), dcc.Dropdown(["done", "failed", "pending", "running"],
                                                         q.get("status", "done"), id="research-status")]),
            html.Div([html.Label("Metric"), dcc.Dropdown(metric_opts, q.get("metric"), id="research-metric")]),
            html.Div([html.Label("min"), dcc.Input(id="research-min", type="number", value=_num(q.get("min")),
                                                   debounce=True)]),
            html.Div([html.Label("max"), dcc.Input(id="research-max", type="number", value=_num(q.get("max")),
                                                   debounce=True)]),
            html.Div([html.Label("Metric 2"), dcc.Dropdown(metric_opts, q.get("metric2"), id="research-metric2")]),
            html.Div([html.Label("min"), dcc.Input(id="research-min2", type="number", value=_num(q.get("min2")),
                                                   debounce=True)]),
            html.Div([html.Label("max"), dcc.Input(id="research-max2", type="number", value=_num(q.get("max2")),
                                                   debounce=True)]),
        ], className="filters card"),
        html.H3("Runs", id="research-count"),
        dash_table.DataTable(
            id="research-runs", columns=_columns(), data=[], sort_action="native", filter_action="native",
            page_size=50, markdown_options={"link_target": "_self"}, style_table={"overflowX": "auto"},
            style_cell={"fontSize": 12, "padding": "2px 6px"}),
    ])


def register(app, ctx) -> None:
    @app.callback(
        Output("research-runs", "data"), Output("research-count", "children"),
        Input("research-type", "value"), Input("research-sweep", "value"), Input("research-status", "value"),
        Input("research-metric", "value"), Input("research-min", "value"), Input("research-max", "value"),
        Input("research-metric2", "value"), Input("research-min2", "value"), Input("research-max2", "value"),
    )
    def refresh(stype, sweep, status, m1, lo1, hi1, m2, lo2, hi2):
        """Query the registry with the filters (one short read transaction)."""
        try:
            df = query(ctx, stype, sweep, status, [(m1, _num(lo1), _num(hi1)), (m2, _num(lo2), _num(hi2))])
        except Exception as exc:  # noqa: BLE001 - shown to the user
            return [], f"Runs: error reading {ctx.registry_url}: {exc}"
        data = rows(ctx, df)
        return data, f"Runs ({len(data)})"
