"""Sessions: paper and live sessions with status, equity curve, positions, open orders, recent fills and alerts.

A session is a results folder whose ``run.json`` says ``mode = "paper"`` or ``"live"``. Everything shown
comes from files the session rewrites while it runs: ``status.json`` (state, positions, open orders;
live sessions also recent fills and alerts), ``equity.parquet`` (equity curve), ``fills.parquet`` (paper
sessions' recent fills) and ``alerts.jsonl``. The page refreshes every 5 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dash_table, dcc, html, no_update


def list_sessions(root: Path) -> list[dict]:
    """One dict per paper/live results folder: run id, mode, running, venue, equity, halted, written_at."""
    out = []
    for run_json in sorted(Path(root).glob("*/run.json")):
        try:
            info = json.loads(run_json.read_text())
        except (OSError, ValueError):
            continue
        if info.get("mode") not in ("paper", "live"):
            continue
        try:
            st = json.loads((run_json.parent / "status.json").read_text())
        except (OSError, ValueError):
            st = {}
        out.append({"run_id": info.get("run_id", run_json.parent.name), "mode": info["mode"],
                    "running": bool(info.get("running")), "venue": info.get("venue") or info.get("data_source"),
                    "trader_id": info.get("trader_id"), "equity_usdt": st.get("equity_usdt"),
                    "positions": len(st.get("positions", [])), "open_orders": len(st.get("open_orders", [])),
                    "halted": st.get("halted") or ("feed stale" if st.get("feed_stale") else None),
                    "status_written_at": st.get("written_at"), "updated_at": info.get("updated_at")})
    return out


def session_detail(root: Path, run_id: str) -> dict:
    """Status, equity curve, recent fills and alerts of one session (missing pieces are empty)."""
    from nautilus_app.results.reader import open_results

    d = Path(root) / run_id
    folder = open_results(d)  # the one reader of results folders; missing files read empty
    out: dict = {"status": folder.status, "equity": pd.DataFrame(), "fills": [], "alerts": []}
    try:
        out["equity"] = folder.table("equity")
    except Exception:  # noqa: BLE001 - being rewritten by the session
        pass
    fills = out["status"].get("recent_fills")
    if fills is None:
        try:
            f = folder.table("fills").tail(20)
            fills = [{"ts": str(r.get("ts_event")), "instrument_id": r.get("instrument_id"),
                      "side": r.get("order_side"), "qty": r.get("last_qty"), "price": r.get("last_px"),
                      "commission": r.get("commission")} for r in f.to_dict("records")]
        except Exception:  # noqa: BLE001
            fills = []
    out["fills"] = fills
    try:
        lines = (d / "alerts.jsonl").read_text().splitlines()[-20:]
        out["alerts"] = [{k: a.get(k) for k in ("ts", "rule", "severity", "message")} | {
            "delivered": ", ".join(a["delivered"]) if isinstance(a.get("delivered"), list) else a.get("delivered")}
            for a in map(json.loads, lines)]
    except (OSError, ValueError):
        pass
    return out


def _table(id_: str, rows: list[dict]) -> dash_table.DataTable:
    cols = list(rows[0]) if rows else []
    return dash_table.DataTable(id=id_, data=rows, columns=[{"name": c, "id": c} for c in cols], page_size=20,
                                style_table={"overflowX": "auto"}, style_cell={"fontSize": 12})


def layout(ctx) -> html.Div:  # noqa: ANN001
    return html.Div([
        html.H2("Sessions (paper and live)"),
        dcc.Interval(id="sessions-tick", interval=5000),
        html.Div(id="sessions-list", className="card"),
        html.Div([html.Label("Session "), dcc.Dropdown(id="sessions-pick", style={"minWidth": "480px"})],
                 className="card"),
        html.Div(id="sessions-detail"),
    ])


def register(app, ctx) -> None:  # noqa: ANN001
    root = ctx.store.root

    @app.callback(Output("sessions-list", "children"), Output("sessions-pick", "options"),
                  Input("sessions-tick", "n_intervals"), State("sessions-pick", "options"))
    def refresh(_n, shown):  # noqa: ANN001, ANN202
        rows = list_sessions(root)
        options = [{"label": f"{r['run_id']} ({r['mode']}{', running' if r['running'] else ''})", "value": r["run_id"]}
                   for r in rows]
        # the picker's options are replaced only when they changed: replacing them re-renders the dropdown,
        # which drops what the user is typing into it (every 5 s otherwise)
        options_out = no_update if options == (shown or []) else options
        if not rows:
            return html.P("No paper or live sessions in the results folder."), options_out
        return _table("sessions-table", rows), options_out

    @app.callback(Output("sessions-detail", "children"), Input("sessions-pick", "value"),
                  Input("sessions-tick", "n_intervals"))
    def detail(run_id, _n):  # noqa: ANN001, ANN202
        if not run_id or not ctx.store.exists(run_id):
            return html.P("Pick a session.")
        d = session_detail(root, run_id)
        st = d["status"]
        fig = go.Figure()
        eq = d["equity"]
        if not eq.empty and "equity" in eq.columns:
            x = eq[eq.columns[0]] if eq.columns[0] != "equity" else eq.index
            fig.add_trace(go.Scatter(x=x, y=eq["equity"], name="equity"))
        fig.update_layout(height=300, margin={"l": 40, "r": 10, "t": 30, "b": 30}, title="Equity (USDT)")
        kv = {k: st.get(k) for k in ("mode", "running", "venue", "trader_id", "equity_usdt", "halted", "killed",
                                     "refused", "feed_stale", "written_at", "stop_reason")}
        return html.Div([
            html.Div([html.H3("Status"), _table("sessions-status", [{k: str(v) for k, v in kv.items()}])],
                     className="card"),
            html.Div(dcc.Graph(figure=fig), className="card"),
            html.Div([html.H3("Positions"), _table("sessions-positions", st.get("positions", []))], className="card"),
            html.Div([html.H3("Open orders"), _table("sessions-orders", st.get("open_orders", []))], className="card"),
            html.Div([html.H3("Recent fills"), _table("sessions-fills", d["fills"])], className="card"),
            html.Div([html.H3("Alerts"), _table("sessions-alerts", d["alerts"])], className="card"),
        ])
