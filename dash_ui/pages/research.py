"""Research: runs and sweeps of the research registry (:mod:`nautilus_app.research.registry`).

Reads the registry with its own API (``Registry.query_runs``, ``Registry.sweeps_frame``), never with
raw SQL. Filters: strategy type, sweep, status, and up to two metric thresholds (``min <= metric <=
max``, metrics in the units of docs/metrics.md: fractions, USDT). The controls can be preset from the
URL: ``/research?strategy_type=ema_cross&sweep=s&status=done&metric=sharpe&min=1&metric2=max_drawdown&max2=0.2``.
A run links to its detail page when its results folder (``results_path``) still exists under the app's
results root (sweep runs live in ``<results>/research/<sweep>/<run_id>``).

Strategy x symbol heatmap (:func:`heatmap_table`, :func:`heatmap_figure`): the runs of the same filters
(plus a run kind), one row per registry strategy name (or strategy + parameter version), one column per
instrument, each cell the **best** run's value of the chosen metric (max; min for drawdown / cost
metrics, :data:`LOWER_IS_BETTER`) or the **mean** over the cell's runs. A run's instrument is its
``shard`` (sweep, walk-forward and per-symbol universe runs) or its only bar type; runs over several
instruments or with several strategies (portfolio, shared-universe runs) have no single cell and are
left out (counted in the caption).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dash_table, dcc, html

from nautilus_app.research.registry import HEADLINE_METRICS
from nautilus_app.research.spec import OBJECTIVES

SHOWN = ["run", "sweep", "kind", "status", "strategy", "strategy_type", "param_version", "params", "objective",
         *HEADLINE_METRICS, "results"]
METRICS = list(HEADLINE_METRICS)
#: Metrics where smaller is better: "best" in the heatmap is their minimum.
LOWER_IS_BETTER = frozenset({"max_drawdown", "max_drawdown_duration_s", "annual_volatility", "fees_paid_usdt",
                             "funding_paid_usdt", "losses"})
#: Run kinds offered by the heatmap's kind filter (None = any).
KINDS = ["trial", "oos", "holdout", "universe", "standalone", "backtest"]
HEATMAP_TEXT = ("Rows: registry strategy name (or strategy + parameter version). Columns: the run's instrument "
                "(its shard, or its only bar type). Cell: the best run's value of the metric (max; min for "
                "drawdown and cost metrics) or the mean over the cell's runs, as chosen; hover shows the number "
                "of runs. Same filters as the runs table below; runs over several instruments or strategies "
                "(portfolio, shared-universe runs) are left out.")


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


def query(ctx, strategy_type=None, sweep=None, status=None, thresholds=(), kind=None) -> pd.DataFrame:
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
                          min_metrics=mins, max_metrics=maxs, kind=kind or None)


# ---- strategy x symbol heatmap ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Heatmap:
    """Cells of the strategy x instrument heatmap.

    Attributes:
        values: rows (strategy labels) x columns (instrument ids), NaN where no run has the metric.
        counts: runs aggregated into each cell (0 where none).
        used: runs in the cells. skipped: runs left out (several instruments or strategies, or no value).
        metric / agg / rows: what was asked.
    """

    values: pd.DataFrame
    counts: pd.DataFrame
    used: int
    skipped: int
    metric: str
    agg: str
    rows: str


def run_instrument(run: dict) -> str | None:
    """Instrument id of a registry run: its ``shard``'s, else that of its only bar type; None if it has
    several instruments (a portfolio or a shared-universe run)."""
    from catalog.inventory import bar_instrument_id

    if run.get("shard"):
        return bar_instrument_id(run["shard"])
    iids = {bar_instrument_id(bt) for bt in (run.get("bar_types") or [])}
    return iids.pop() if len(iids) == 1 else None


def _value(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def heatmap_table(df: pd.DataFrame, metric: str, agg: str = "best", rows: str = "strategy") -> Heatmap:
    """Strategy x instrument cells of ``metric`` from :meth:`Registry.query_runs` rows.

    Args:
        df: ``query_runs`` frame (one row per run and strategy component; ``metrics`` holds all metrics).
        metric: A numeric metric of ``docs/metrics.md``.
        agg: ``best`` (max, or min for :data:`LOWER_IS_BETTER`) or ``mean`` over the cell's runs.
        rows: ``strategy`` (registry strategy name) or ``version`` (``<strategy> v<parameter version>``).
    """
    if agg not in ("best", "mean") or rows not in ("strategy", "version"):
        raise ValueError(f"agg must be best|mean and rows strategy|version, not {agg!r}, {rows!r}")
    cells: dict[tuple[str, str], list[float]] = {}
    skipped = 0
    records = df.to_dict("records") if len(df) else []
    components: dict[str, int] = {}
    for r in records:
        components[r["run_key"]] = components.get(r["run_key"], 0) + 1
    for r in records:
        iid = run_instrument(r) if components[r["run_key"]] == 1 else None
        v = _value((r.get("metrics") or {}).get(metric))
        if iid is None or v is None:
            skipped += 1
            continue
        label = r["strategy"] if rows == "strategy" else f"{r['strategy']} v{r['param_version']}"
        cells.setdefault((label, iid), []).append(v)
    labels = sorted({k[0] for k in cells}, key=_natural)
    iids = sorted({k[1] for k in cells})
    values = pd.DataFrame(np.nan, index=pd.Index(labels, name="strategy"), columns=pd.Index(iids, name="instrument"))
    counts = pd.DataFrame(0, index=values.index, columns=values.columns)
    pick = min if metric in LOWER_IS_BETTER else max
    for (label, iid), vals in cells.items():
        values.loc[label, iid] = pick(vals) if agg == "best" else float(np.mean(vals))
        counts.loc[label, iid] = len(vals)
    return Heatmap(values=values, counts=counts, used=sum(len(v) for v in cells.values()), skipped=skipped,
                   metric=metric, agg=agg, rows=rows)


def _natural(label: str) -> tuple:
    """Sort ``ema v2`` before ``ema v10``."""
    head, sep, tail = label.rpartition(" v")
    return (head, int(tail)) if sep and tail.isdigit() else (label, 0)


def _fmt(metric: str, v: float) -> str:
    if metric in ("total_return", "cagr", "max_drawdown", "win_rate", "exposure", "annual_volatility",
                  "expectancy_return"):
        return f"{v * 100:.2f}%"
    if metric in ("trades", "wins", "losses"):
        return f"{v:.0f}"
    return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.3g}"


def heatmap_figure(hm: Heatmap) -> go.Figure:
    """Plotly heatmap of :func:`heatmap_table` cells: rows top-down as listed, the value printed in each
    cell, green = better (reversed scale for :data:`LOWER_IS_BETTER`)."""
    from dash_ui.charts import LAYOUT

    z = hm.values.to_numpy(np.float64)
    how = "best run" if hm.agg == "best" else "mean over runs"
    if not z.size:
        fig = go.Figure()
        fig.update_layout(title=f"{hm.metric}: no single-instrument runs with this metric for these filters",
                          **{**LAYOUT, "legend": {}})
        return fig
    text = [["" if np.isnan(v) else _fmt(hm.metric, v) for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(hm.values.columns), y=list(hm.values.index), text=text, texttemplate="%{text}",
        customdata=hm.counts.to_numpy(), colorscale="RdYlGn", reversescale=hm.metric in LOWER_IS_BETTER,
        hovertemplate="%{y}<br>%{x}<br>" + hm.metric + " (" + how + "): %{z}<br>%{customdata} runs<extra></extra>"))
    fig.update_layout(title=f"{hm.metric} by strategy and instrument ({how})",
                      height=max(260, 90 + 34 * len(hm.values.index)), **{**LAYOUT, "legend": {}})
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


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
        html.Div([
            html.H3("Strategy x symbol"),
            html.Div(HEATMAP_TEXT, className="muted", id="research-heatmap-help"),
            html.Div([
                html.Div([html.Label("Heatmap metric"),
                          dcc.Dropdown(list(OBJECTIVES), q.get("hm_metric", "sharpe"), id="research-hm-metric",
                                       clearable=False)]),
                html.Div([html.Label("Cell"),
                          dcc.Dropdown([{"label": "best run", "value": "best"},
                                        {"label": "mean over runs", "value": "mean"}],
                                       q.get("hm_agg", "best"), id="research-hm-agg", clearable=False)]),
                html.Div([html.Label("Rows"),
                          dcc.Dropdown([{"label": "strategy", "value": "strategy"},
                                        {"label": "strategy + parameter version", "value": "version"}],
                                       q.get("hm_rows", "strategy"), id="research-hm-rows", clearable=False)]),
                html.Div([html.Label("Run kind"), dcc.Dropdown(KINDS, q.get("hm_kind"), id="research-hm-kind",
                                                               placeholder="any")]),
            ], className="filters"),
            html.Div("", className="muted", id="research-heatmap-caption"),
            dcc.Graph(id="research-heatmap", figure=go.Figure()),
        ], className="card"),
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

    @app.callback(
        Output("research-heatmap", "figure"), Output("research-heatmap-caption", "children"),
        Input("research-type", "value"), Input("research-sweep", "value"), Input("research-status", "value"),
        Input("research-metric", "value"), Input("research-min", "value"), Input("research-max", "value"),
        Input("research-metric2", "value"), Input("research-min2", "value"), Input("research-max2", "value"),
        Input("research-hm-metric", "value"), Input("research-hm-agg", "value"), Input("research-hm-rows", "value"),
        Input("research-hm-kind", "value"),
    )
    def heatmap(stype, sweep, status, m1, lo1, hi1, m2, lo2, hi2, metric, agg, rows_by, kind):
        """Strategy x instrument heatmap of the filtered runs."""
        try:
            df = query(ctx, stype, sweep, status, [(m1, _num(lo1), _num(hi1)), (m2, _num(lo2), _num(hi2))],
                       kind=kind)
            hm = heatmap_table(df, metric or "sharpe", agg or "best", rows_by or "strategy")
        except Exception as exc:  # noqa: BLE001 - shown to the user
            return go.Figure(), f"error reading {ctx.registry_url}: {exc}"
        caption = (f"{hm.values.shape[0]} rows x {hm.values.shape[1]} instruments from {hm.used} runs"
                   + (f"; {hm.skipped} runs left out (several instruments/strategies or no {hm.metric})"
                      if hm.skipped else ""))
        return heatmap_figure(hm), caption
