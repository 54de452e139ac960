"""Comparison: equity curves and drawdowns of the selected runs overlaid (normalised to their start; on a
calendar axis or by days since each run's start), the parameters that differ between their configs, and
the metrics side by side."""

from __future__ import annotations

import json

from dash import Input, Output, dcc, html

from dash_ui import charts
from dash_ui.data import RunNotFound
from dash_ui.formatting import fmt, label

COMPARE_KEYS = ["start", "end", "starting_equity", "final_equity", "total_return", "buy_and_hold_return", "cagr",
                "annual_volatility", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_duration_s",
                "trades", "win_rate", "profit_factor", "expectancy_usdt", "avg_trade_duration_s", "exposure",
                "fees_paid_usdt", "funding_paid_usdt"]


def comparison_table(runs) -> html.Table:
    """Rows = metrics, columns = runs (cell id ``cmp-<i>-<key>``)."""
    keys = list(COMPARE_KEYS)
    for r in runs:  # keys added by later versions of the metrics (slippage, liquidations ...)
        keys += [k for k in r.metrics if k not in keys]
    head = html.Tr([html.Th("Metric")] + [html.Th(r.run_id) for r in runs])
    body = [html.Tr([html.Td(label(k))] + [html.Td(fmt(k, r.metrics.get(k)), id=f"cmp-{i}-{k}", className="num")
                                          for i, r in enumerate(runs)]) for k in keys]
    return html.Table([html.Thead(head), html.Tbody(body)], className="kv", id="compare-table")


def flatten_config(value, prefix: str = "") -> dict[str, object]:
    """A config.json mapping as ``{dotted key: scalar}``: ``strategies[0].params.fast_period``,
    ``venues[0].taker_fee``, ``bar_types`` (lists of scalars kept whole, as JSON)."""
    out: dict[str, object] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out |= flatten_config(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for i, v in enumerate(value):
            out |= flatten_config(v, f"{prefix}[{i}]")
    else:
        out[prefix] = json.dumps(value, sort_keys=True) if isinstance(value, list) else value
    return out


#: config.json keys never worth a diff row (paths, names that differ by construction).
DIFF_IGNORED = ("name", "catalog", "results_dir", "run_id")


def config_diff(configs: list[dict]) -> tuple[list[str], dict[str, list[object]], int]:
    """Keys whose values differ between ``configs`` (a key missing in one run counts as different).

    Returns (sorted differing keys, ``{key: [value per config or None]}`` for them, number of identical keys).
    """
    flats = [flatten_config(c) for c in configs]
    keys = sorted({k for f in flats for k in f if k.split(".")[0].split("[")[0] not in DIFF_IGNORED})
    diff = {k: [f.get(k) for f in flats] for k in keys}
    differing = [k for k in keys if len({json.dumps(v, sort_keys=True, default=str) for v in diff[k]}) > 1
                 or any(k not in f for f in flats)]
    return differing, {k: diff[k] for k in differing}, len(keys) - len(differing)


def diff_table(runs) -> html.Div:
    """Rows = config keys that differ between the runs, columns = runs (cell id ``diff-<i>-<key>``)."""
    keys, values, same = config_diff([r.config for r in runs])
    if len(runs) < 2:
        return html.P("Select two runs or more to see what differs in their configs.", className="muted")
    if not keys:
        return html.P(f"The configs are identical ({same} keys, apart from name and catalog).", id="diff-none",
                      className="muted")
    head = html.Tr([html.Th("Config key")] + [html.Th(r.run_id) for r in runs])
    body = [html.Tr([html.Td(k, className="mono")] + [
        html.Td("(absent)" if v is None else str(v), id=f"diff-{i}-{k}", className="num") for i, v in enumerate(values[k])])
        for k in keys]
    return html.Div([html.P(f"{len(keys)} config keys differ; {same} are identical (not shown).",
                            className="muted", id="diff-summary"),
                     html.Table([html.Thead(head), html.Tbody(body)], className="kv", id="compare-diff")],
                    style={"overflowX": "auto"})


def _content(ctx, run_ids: list[str], axis: str = "calendar"):
    runs, missing = [], []
    for rid in run_ids:
        try:
            runs.append(ctx.store.get(rid))
        except RunNotFound:
            missing.append(rid)
    if not runs:
        return html.P("Select runs above (or tick rows on the Runs page).", id="compare-empty")
    return html.Div([
        html.P(f"not found: {', '.join(missing)}", className="error") if missing else None,
        html.Div([dcc.Graph(id="compare-equity", figure=charts.comparison_figure(runs, axis), style={"height": "420px"}),
                  dcc.Graph(id="compare-drawdown", figure=charts.comparison_drawdown_figure(runs, axis),
                            style={"height": "300px"})], className="card"),
        html.Div([html.H3("Parameters that differ"), diff_table(runs)], className="card"),
        html.Div(comparison_table(runs), className="card"),
    ])


def layout(ctx, run_ids: list[str]) -> html.Div:
    all_ids = ctx.store.run_ids()
    return html.Div([
        html.H2("Compare runs"),
        html.Div([
            html.Label("Runs", htmlFor="compare-select"),
            dcc.Dropdown(all_ids, [r for r in run_ids if r in all_ids], id="compare-select", multi=True),
            html.Label("Time axis", htmlFor="compare-axis", id="compare-axis-label"),
            dcc.RadioItems([{"label": " calendar (UTC)", "value": "calendar"},
                            {"label": " days since each run's start", "value": "days"}], "calendar",
                           id="compare-axis", inline=True, inputStyle={"marginLeft": "12px"}),
        ]),
        html.Div(_content(ctx, run_ids), id="compare-content"),
    ])


def register(app, ctx) -> None:
    @app.callback(Output("compare-content", "children"), Input("compare-select", "value"),
                  Input("compare-axis", "value"), prevent_initial_call=True)
    def update(run_ids, axis):
        return _content(ctx, run_ids or [], axis or "calendar")
