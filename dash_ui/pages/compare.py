"""Comparison: equity curves of the selected runs overlaid (normalised to their start), metrics side by side."""

from __future__ import annotations

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


def _content(ctx, run_ids: list[str]):
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
        html.Div(dcc.Graph(id="compare-equity", figure=charts.comparison_figure(runs), style={"height": "460px"}),
                 className="card"),
        html.Div(comparison_table(runs), className="card"),
    ])


def layout(ctx, run_ids: list[str]) -> html.Div:
    all_ids = ctx.store.run_ids()
    return html.Div([
        html.H2("Compare runs"),
        dcc.Dropdown(all_ids, [r for r in run_ids if r in all_ids], id="compare-select", multi=True),
        html.Div(_content(ctx, run_ids), id="compare-content"),
    ])


def register(app, ctx) -> None:
    @app.callback(Output("compare-content", "children"), Input("compare-select", "value"), prevent_initial_call=True)
    def update(run_ids):
        return _content(ctx, run_ids or [])
