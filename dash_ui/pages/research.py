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

import dash_ag_grid as dag
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dash_ui import grids
from dash_ui.forms import labelled
from nautilus_app.research.registry import HEADLINE_METRICS
from nautilus_app.research.spec import OBJECTIVES

SHOWN = ["run", "sweep", "kind", "status", "strategy", "strategy_type", "instrument", "param_version", "params",
         "objective", *HEADLINE_METRICS, "results"]
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


# ---- ranking across instruments, parameter heatmap, return vs drawdown -------------------------------------


def ranking_table(hm: Heatmap) -> pd.DataFrame:
    """Rank the heatmap's rows (strategies or strategy versions) across instruments.

    Within each instrument (a column of ``hm.values``) the rows are ranked on the cell value, 1 = best
    (highest; lowest for :data:`LOWER_IS_BETTER`; ties share the lowest rank, ``method="min"``). A row's
    ``mean_rank`` is the mean of its ranks over the instruments where it has a value. Also per row:
    ``instruments`` (with a value), ``mean`` / ``median`` / ``worst`` / ``best`` cell value, and
    ``wins`` = instruments where it ranks first. Sorted by mean rank, then by mean value (better first).
    """
    v = hm.values
    lower = hm.metric in LOWER_IS_BETTER
    ranks = v.rank(axis=0, ascending=lower, method="min")
    out = pd.DataFrame({
        "strategy": v.index,
        "instruments": v.notna().sum(axis=1).to_numpy(),
        "mean_rank": ranks.mean(axis=1, skipna=True).to_numpy(),
        "wins": (ranks == 1).sum(axis=1).to_numpy(),
        "mean": v.mean(axis=1, skipna=True).to_numpy(),
        "median": v.median(axis=1, skipna=True).to_numpy(),
        "worst": (v.max(axis=1) if lower else v.min(axis=1)).to_numpy(),
        "best": (v.min(axis=1) if lower else v.max(axis=1)).to_numpy(),
    })
    out = out[out["instruments"] > 0]
    out = out.sort_values(["mean_rank", "mean"], ascending=[True, lower], kind="stable").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def param_names(df: pd.DataFrame) -> list[str]:
    """Parameter names with at least two distinct numeric values among the runs (heatmap axes)."""
    seen: dict[str, set] = {}
    for p in (df["params"] if len(df) and "params" in df.columns else []):
        for k, v in (p or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                seen.setdefault(k, set()).add(v)
    return sorted(k for k, vals in seen.items() if len(vals) > 1)


@dataclass(frozen=True)
class ParamHeatmap:
    """``values``: rows = values of parameter ``y``, columns = values of ``x``; ``counts`` = runs per cell."""

    values: pd.DataFrame
    counts: pd.DataFrame
    x: str
    y: str
    metric: str
    agg: str
    used: int


def param_heatmap_table(df: pd.DataFrame, x: str, y: str, metric: str, agg: str = "best") -> ParamHeatmap:
    """``metric`` over two parameters: each cell aggregates the runs whose params have ``x`` and ``y`` at
    the cell's values (``best``: max, min for :data:`LOWER_IS_BETTER`; ``mean``: mean), over whatever
    else varies (other parameters, instruments, windows). Runs without both parameters or the metric are
    left out."""
    if agg not in ("best", "mean"):
        raise ValueError(f"agg must be best|mean, not {agg!r}")
    cells: dict[tuple, list[float]] = {}
    for r in (df.to_dict("records") if len(df) else []):
        p = r.get("params") or {}
        v = _value((r.get("metrics") or {}).get(metric))
        xv, yv = p.get(x), p.get(y)
        if v is None or not isinstance(xv, int | float) or not isinstance(yv, int | float):
            continue
        cells.setdefault((yv, xv), []).append(v)
    ys, xs = sorted({k[0] for k in cells}), sorted({k[1] for k in cells})
    values = pd.DataFrame(np.nan, index=pd.Index(ys, name=y), columns=pd.Index(xs, name=x))
    counts = pd.DataFrame(0, index=values.index, columns=values.columns)
    pick = min if metric in LOWER_IS_BETTER else max
    for (yv, xv), vals in cells.items():
        values.loc[yv, xv] = pick(vals) if agg == "best" else float(np.mean(vals))
        counts.loc[yv, xv] = len(vals)
    return ParamHeatmap(values=values, counts=counts, x=x, y=y, metric=metric, agg=agg,
                        used=sum(len(v) for v in cells.values()))


def param_heatmap_figure(ph: ParamHeatmap) -> go.Figure:
    """Plotly heatmap of :func:`param_heatmap_table` (value printed in each cell, green = better)."""
    from dash_ui.charts import LAYOUT

    z = ph.values.to_numpy(np.float64)
    fig = go.Figure()
    if not z.size:
        fig.update_layout(title=f"{ph.metric}: no runs with both {ph.x!r} and {ph.y!r} and this metric",
                          **{**LAYOUT, "legend": {}})
        return fig
    text = [["" if np.isnan(v) else _fmt(ph.metric, v) for v in row] for row in z]
    how = "best run" if ph.agg == "best" else "mean over runs"
    fig.add_trace(go.Heatmap(
        z=z, x=[str(c) for c in ph.values.columns], y=[str(i) for i in ph.values.index], text=text,
        texttemplate="%{text}", customdata=ph.counts.to_numpy(), colorscale="RdYlGn",
        reversescale=ph.metric in LOWER_IS_BETTER,
        hovertemplate=ph.x + "=%{x}<br>" + ph.y + "=%{y}<br>" + ph.metric + " (" + how
                      + "): %{z}<br>%{customdata} runs<extra></extra>"))
    fig.update_layout(title=f"{ph.metric} by {ph.x} x {ph.y} ({how})", xaxis_title=ph.x, yaxis_title=ph.y,
                      **{**LAYOUT, "legend": {}})
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def scatter_points(df: pd.DataFrame) -> pd.DataFrame:
    """One point per run with both ``total_return`` and ``max_drawdown`` (fractions): run key, strategy,
    instrument (None for multi-instrument runs), params as JSON."""
    out = []
    for r in (df.to_dict("records") if len(df) else []):
        m = r.get("metrics") or {}
        tr, dd = _value(m.get("total_return")), _value(m.get("max_drawdown"))
        if tr is None or dd is None:
            continue
        out.append({"run_key": r["run_key"], "strategy": r.get("strategy"), "instrument": run_instrument(r),
                    "total_return": tr, "max_drawdown": dd,
                    "params": json.dumps(r.get("params") or {}, sort_keys=True)})
    return pd.DataFrame(out, columns=["run_key", "strategy", "instrument", "total_return", "max_drawdown", "params"])


def scatter_figure(points: pd.DataFrame) -> go.Figure:
    """Total return (%) against max drawdown (%), one trace per strategy; hover names the run."""
    from dash_ui.charts import LAYOUT

    fig = go.Figure()
    for strat, g in points.groupby("strategy", sort=True):
        fig.add_trace(go.Scatter(
            x=g["max_drawdown"] * 100, y=g["total_return"] * 100, mode="markers", name=str(strat),
            customdata=np.stack([g["run_key"].str[:12], g["instrument"].fillna("several"), g["params"]], axis=1),
            hovertemplate="%{customdata[0]} %{customdata[1]}<br>max drawdown %{x:.2f} %<br>return %{y:.2f} %"
                          "<br>%{customdata[2]}<extra>" + str(strat) + "</extra>"))
    fig.add_hline(y=0, line_color="#999", line_width=1)
    fig.update_layout(title=f"Total return vs max drawdown ({len(points)} runs; up and left is better)",
                      xaxis_title="Max drawdown (%)", yaxis_title="Total return (%)", **LAYOUT)
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
        row["instrument"] = run_instrument(r) or "several"
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


#: Headers of the runs table's text columns.
TEXT_HEADERS = {"run": "Run key", "sweep": "Sweep", "kind": "Kind", "status": "Status", "strategy": "Strategy",
                "strategy_type": "Strategy type", "instrument": "Instrument", "params": "Parameters",
                "results": "Results folder"}


def _columns() -> list[dict]:
    """AG Grid columns of the runs table: metrics in their unit (percents, USDT 2 decimals), filters in
    the displayed unit, the results folder as a link."""
    cols = []
    for k in SHOWN:
        if k == "results":
            cols.append(grids.link_col(k, TEXT_HEADERS[k], minWidth=220))
        elif k == "param_version":
            cols.append(grids.number_col(k, "Param. version", fmt_key="trades", signed=False))
        elif k == "objective":
            cols.append(grids.number_col(k, "Objective", fmt_key="sharpe", signed=False))
        elif k in METRICS:
            cols.append(grids.number_col(k, signed=k in ("total_return", "cagr")))
        else:
            cols.append(grids.text_col(k, TEXT_HEADERS.get(k, k), minWidth=200 if k == "params" else 110))
    return cols


RANK_COLUMNS = [("rank", "Rank"), ("strategy", "Strategy"), ("instruments", "Instruments"),
                ("mean_rank", "Mean rank (1 = best)"), ("wins", "Ranked first on"), ("mean", "Mean"),
                ("median", "Median"), ("worst", "Worst instrument"), ("best", "Best instrument")]


def ranking_columns(metric: str) -> list[dict]:
    """Ranking grid columns; value columns in ``metric``'s unit."""
    out = []
    for f, h in RANK_COLUMNS:
        if f == "strategy":
            out.append(grids.text_col(f, h, minWidth=200))
        elif f in ("rank", "instruments", "wins"):
            out.append(grids.number_col(f, h, fmt_key="trades", signed=False))
        elif f == "mean_rank":
            out.append(grids.number_col(f, h, fmt_key="span_days", signed=False) | {"headerName": h})
        else:
            out.append(grids.number_col(f, f"{h}: {metric}", fmt_key=metric, signed=False))
    return out


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
    sweep_cols = list(sweeps.columns) if len(sweeps) else []
    sweeps_table = dag.AgGrid(
        id="research-sweeps", rowData=sweeps.astype(str).to_dict("records") if len(sweeps) else [],
        columnDefs=[grids.text_col(c, c.replace("_", " ").capitalize()) for c in sweep_cols],
        defaultColDef={"flex": 1, "minWidth": 110},
        dashGridOptions={**grids.GRID_OPTIONS, "domLayout": "autoHeight"}, style={"width": "100%"})
    num = {"type": "number", "debounce": True}
    return html.Div([
        header,
        html.Div([html.H3(f"Sweeps ({len(sweep_names)})"), sweeps_table], className="card"),
        html.Div([
            labelled("Strategy type", dcc.Dropdown(types, q.get("strategy_type"), id="research-type")),
            labelled("Sweep", dcc.Dropdown(sweep_names, q.get("sweep"), id="research-sweep")),
            labelled("Status", dcc.Dropdown(["done", "failed", "pending", "running"], q.get("status", "done"),
                                            id="research-status")),
            labelled("Metric", dcc.Dropdown(metric_opts, q.get("metric"), id="research-metric")),
            labelled("min (fractions: 0.1 = 10 %)", dcc.Input(id="research-min", value=_num(q.get("min")), **num)),
            labelled("max", dcc.Input(id="research-max", value=_num(q.get("max")), **num)),
            labelled("Metric 2", dcc.Dropdown(metric_opts, q.get("metric2"), id="research-metric2")),
            labelled("min", dcc.Input(id="research-min2", value=_num(q.get("min2")), **num)),
            labelled("max", dcc.Input(id="research-max2", value=_num(q.get("max2")), **num)),
        ], className="filters card"),
        html.Div([
            html.H3("Strategy x symbol"),
            html.Div(HEATMAP_TEXT, className="muted", id="research-heatmap-help"),
            html.Div([
                labelled("Heatmap metric", dcc.Dropdown(list(OBJECTIVES), q.get("hm_metric", "sharpe"),
                                                        id="research-hm-metric", clearable=False)),
                labelled("Cell", dcc.Dropdown([{"label": "best run", "value": "best"},
                                               {"label": "mean over runs", "value": "mean"}],
                                              q.get("hm_agg", "best"), id="research-hm-agg", clearable=False)),
                labelled("Rows", dcc.Dropdown([{"label": "strategy", "value": "strategy"},
                                               {"label": "strategy + parameter version", "value": "version"}],
                                              q.get("hm_rows", "strategy"), id="research-hm-rows", clearable=False)),
                labelled("Run kind", dcc.Dropdown(KINDS, q.get("hm_kind"), id="research-hm-kind", placeholder="any")),
            ], className="filters"),
            html.Div("", className="muted", id="research-heatmap-caption"),
            dcc.Graph(id="research-heatmap", figure=go.Figure()),
            html.H3("Ranking across instruments"),
            html.Div("The rows of the heatmap ranked within each instrument on its metric (1 = best; lowest for "
                     "drawdown and cost metrics), then by their mean rank over the instruments they ran on. Value "
                     "columns: the heatmap cells (best run or mean, as chosen) in the metric's unit.",
                     className="muted"),
            dag.AgGrid(id="research-ranking", rowData=[], columnDefs=ranking_columns("sharpe"),
                       defaultColDef={"flex": 1, "minWidth": 100, "wrapHeaderText": True, "autoHeaderHeight": True},
                       dashGridOptions={**grids.GRID_OPTIONS, "domLayout": "autoHeight"}, style={"width": "100%"}),
        ], className="card"),
        html.Div([
            html.H3("Parameter heatmap"),
            html.Div("The heatmap metric over two parameters of the filtered runs (same cell rule: best run or mean "
                     "over the runs sharing both values, whatever else varies).", className="muted"),
            html.Div([
                labelled("x parameter", dcc.Dropdown([], q.get("px"), id="research-px")),
                labelled("y parameter", dcc.Dropdown([], q.get("py"), id="research-py")),
            ], className="filters"),
            html.Div("", className="muted", id="research-param-caption"),
            dcc.Graph(id="research-param-heatmap", figure=go.Figure()),
        ], className="card"),
        html.Div([dcc.Graph(id="research-scatter", figure=go.Figure(), style={"height": "460px"})], className="card"),
        html.H3("Runs", id="research-count"),
        dag.AgGrid(
            id="research-runs", columnDefs=_columns(), rowData=[], getRowId="params.data.id",
            defaultColDef={"minWidth": 100, "flex": 1, "filterParams": {"maxNumConditions": 1},
                           "wrapHeaderText": True, "autoHeaderHeight": True},
            dashGridOptions={**grids.GRID_OPTIONS, "pagination": True, "paginationPageSize": 50,
                             "domLayout": "autoHeight"},
            style={"width": "100%"}),
    ])


def register(app, ctx) -> None:
    @app.callback(
        Output("research-runs", "rowData"), Output("research-count", "children"),
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

    @app.callback(
        Output("research-ranking", "rowData"), Output("research-ranking", "columnDefs"),
        Output("research-px", "options"), Output("research-py", "options"),
        Output("research-px", "value"), Output("research-py", "value"),
        Output("research-param-heatmap", "figure"), Output("research-param-caption", "children"),
        Output("research-scatter", "figure"),
        Input("research-type", "value"), Input("research-sweep", "value"), Input("research-status", "value"),
        Input("research-metric", "value"), Input("research-min", "value"), Input("research-max", "value"),
        Input("research-metric2", "value"), Input("research-min2", "value"), Input("research-max2", "value"),
        Input("research-hm-metric", "value"), Input("research-hm-agg", "value"), Input("research-hm-rows", "value"),
        Input("research-hm-kind", "value"), Input("research-px", "value"), Input("research-py", "value"),
    )
    def analysis(stype, sweep, status, m1, lo1, hi1, m2, lo2, hi2, metric, agg, rows_by, kind, px, py):
        """Ranking across instruments, the parameter heatmap and the return/drawdown scatter of the filtered runs."""
        metric, agg = metric or "sharpe", agg or "best"
        try:
            df = query(ctx, stype, sweep, status, [(m1, _num(lo1), _num(hi1)), (m2, _num(lo2), _num(hi2))],
                       kind=kind)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            empty = go.Figure()
            return [], ranking_columns(metric), [], [], None, None, empty, f"error: {exc}", empty
        rank = ranking_table(heatmap_table(df, metric, agg, rows_by or "strategy"))
        rank_rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                     for r in rank.to_dict("records")]
        names = param_names(df)
        px = px if px in names else (names[0] if names else None)
        py = py if py in names and py != px else next((n for n in names if n != px), None)
        if px and py:
            ph = param_heatmap_table(df, px, py, metric, agg)
            pfig = param_heatmap_figure(ph)
            caption = f"{ph.values.shape[1]} x {ph.values.shape[0]} parameter values from {ph.used} runs"
        else:
            pfig = go.Figure()
            pfig.update_layout(title="no two parameters vary among these runs")
            caption = "choose runs (a sweep) where at least two numeric parameters vary"
        return (rank_rows, ranking_columns(metric), names, names, px, py, pfig, caption,
                scatter_figure(scatter_points(df)))
