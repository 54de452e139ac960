"""Plotly figures of the app. Long series are downsampled server-side (:mod:`dash_ui.market`); trades,
monthly returns and the trade-return histogram are computed from every trade / every sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from catalog.inventory import bar_instrument_id
from dash_ui import market
from dash_ui.data import Run

#: Points per long-series trace sent to the browser (per view; zooming re-samples the range).
N_POINTS = 2000
#: At most this many candles per view (the timeframe is the smallest that fits): 5 years -> 1w, 1 year -> 12h.
MAX_CANDLES = 1000
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
LAYOUT = dict(margin=dict(l=60, r=20, t=40, b=40), template="plotly_white",
              legend=dict(orientation="h", y=-0.12, yanchor="top", x=0))


def _dt(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(ns, unit="ns", utc=True).tz_localize(None)


def _ds_name(name: str, shown: int, raw: int) -> str:
    return f"{name} [{shown:,} of {raw:,} pts, zoom for detail]" if shown < raw else name


def ns_range(relayout: dict | None, axis: str = "xaxis") -> tuple[int | None, int | None] | None:
    """x range (UTC ns) from a plotly ``relayoutData`` dict; ``(None, None)`` on autorange/reset; None
    when the event is not an x-axis change."""
    if not relayout:
        return None
    if relayout.get(f"{axis}.autorange") or relayout.get("autosize") and len(relayout) == 1:
        return (None, None) if relayout.get(f"{axis}.autorange") else None
    lo = relayout.get(f"{axis}.range[0]")
    hi = relayout.get(f"{axis}.range[1]")
    if lo is None and isinstance(relayout.get(f"{axis}.range"), list):
        lo, hi = relayout[f"{axis}.range"]
    if lo is None or hi is None:
        return None
    return int(pd.Timestamp(lo, tz="UTC").value), int(pd.Timestamp(hi, tz="UTC").value)


def equity_overview(run: Run) -> dict[str, np.ndarray]:
    """Whole-run figure data, persisted as a sidecar (:mod:`dash_ui.sidecar`): equity and benchmark
    MinMax-downsampled together to :data:`N_POINTS` (``eq_x`` ns, ``eq_equity``, ``eq_benchmark``),
    the drawdown downsampled on its own (``dd_x``, ``dd_y``), the raw sample count (``raw``) and the
    monthly return table from every sample (``m_year``, ``m_month``, ``m_r``)."""
    from dash_ui import sidecar

    def build() -> dict[str, np.ndarray]:
        a = run.equity_arrays()
        ys = {"equity": a["equity"]}
        if "benchmark_equity" in a:
            ys["benchmark_equity"] = a["benchmark_equity"]
        x, out, raw = market.downsample_xy(a["ts"], ys, N_POINTS)
        dd = _drawdown(a)
        dx, dout, _ = market.downsample_xy(a["ts"], {"drawdown": dd}, N_POINTS)
        start = float(run.metrics.get("starting_equity") or a["equity"][0])
        table = monthly_table(a["ts"], a["equity"], start).stack(future_stack=True).dropna()
        data = {"eq_x": x, "eq_equity": out["equity"], "dd_x": dx, "dd_y": dout["drawdown"],
                "raw": np.array([raw], dtype=np.int64),
                "m_year": table.index.get_level_values(0).to_numpy(np.int64),
                "m_month": table.index.get_level_values(1).to_numpy(np.int64),
                "m_r": table.to_numpy(np.float64)}
        if "benchmark_equity" in out:
            data["eq_benchmark"] = out["benchmark_equity"]
        return data

    key = [N_POINTS, sidecar._stat_key(run.path / "equity.parquet"), sidecar._stat_key(run.path / "metrics.json")]
    return sidecar.load_or_build(run, "equity", key, build)


def _drawdown(a: dict[str, np.ndarray]) -> np.ndarray:
    dd = a.get("drawdown")
    if dd is None:
        eq = a["equity"]
        dd = eq / np.maximum.accumulate(eq) - 1.0
    return dd


def equity_figure(run: Run, x0: int | None = None, x1: int | None = None) -> go.Figure:
    """Equity (USDT) against the buy-and-hold benchmark, downsampled to :data:`N_POINTS` in the view
    (the whole-run view from the persisted overview, :func:`equity_overview`)."""
    if x0 is None and x1 is None:
        ov = equity_overview(run)
        x, raw = ov["eq_x"], int(ov["raw"][0])
        out = {"equity": ov["eq_equity"]}
        if "eq_benchmark" in ov:
            out["benchmark_equity"] = ov["eq_benchmark"]
    else:
        a = run.equity_arrays()
        ys = {"equity": a["equity"]}
        if "benchmark_equity" in a:
            ys["benchmark_equity"] = a["benchmark_equity"]
        x, out, raw = market.downsample_xy(a["ts"], ys, N_POINTS, x0, x1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=_dt(x), y=out["equity"], name=_ds_name("Strategy equity", x.size, raw),
                             mode="lines", line=dict(color="#1f77b4", width=1.5)))
    if "benchmark_equity" in out:
        fig.add_trace(go.Scatter(x=_dt(x), y=out["benchmark_equity"], mode="lines",
                                 name=_ds_name("Buy and hold (equal-weight basket of the traded instruments, taker "
                                              "fee in and out)", x.size, raw),
                                 line=dict(color="#999", width=1)))
    fig.update_layout(title="Equity vs buy and hold (USDT)", yaxis_title="USDT", uirevision="equity", **LAYOUT)
    if x0 is not None and x1 is not None:
        fig.update_xaxes(range=[_dt(np.array([x0]))[0], _dt(np.array([x1]))[0]])
    return fig


def drawdown_figure(run: Run, x0: int | None = None, x1: int | None = None) -> go.Figure:
    """Underwater curve ``equity / running peak - 1`` (<= 0); min/max downsampling keeps the deepest point."""
    if x0 is None and x1 is None:
        ov = equity_overview(run)
        x, out, raw = ov["dd_x"], {"drawdown": ov["dd_y"]}, int(ov["raw"][0])
    else:
        a = run.equity_arrays()
        x, out, raw = market.downsample_xy(a["ts"], {"drawdown": _drawdown(a)}, N_POINTS, x0, x1)
    fig = go.Figure(go.Scatter(x=_dt(x), y=out["drawdown"], fill="tozeroy", mode="lines",
                               name=_ds_name("Drawdown", x.size, raw), line=dict(color="#d62728", width=1)))
    fig.update_layout(title="Drawdown (underwater)", yaxis_tickformat=".1%", uirevision="dd", showlegend=True, **LAYOUT)
    if x0 is not None and x1 is not None:
        fig.update_xaxes(range=[_dt(np.array([x0]))[0], _dt(np.array([x1]))[0]])
    return fig


def monthly_table(ts_ns: np.ndarray, equity: np.ndarray, starting_equity: float) -> pd.DataFrame:
    """Year x month (1..12) returns: last sample of each UTC month over the previous month's last
    sample (the first month over ``starting_equity``); NaN where there is no data."""
    months = ts_ns.astype("datetime64[ns]").astype("datetime64[M]")
    last = np.flatnonzero(np.r_[months[1:] != months[:-1], True])
    m_end = equity[last]
    prev = np.r_[starting_equity, m_end[:-1]]
    r = m_end / prev - 1.0
    labels = months[last].astype(object)
    df = pd.DataFrame({"year": [d.year for d in labels], "month": [d.month for d in labels], "r": r})
    return df.pivot(index="year", columns="month", values="r").reindex(columns=range(1, 13))


def monthly_heatmap(run: Run) -> go.Figure:
    """Monthly returns heatmap (percent), every equity sample used."""
    ov = equity_overview(run)
    table = (pd.Series(ov["m_r"], index=pd.MultiIndex.from_arrays([ov["m_year"], ov["m_month"]]))
             .unstack().reindex(columns=range(1, 13)))
    z = table.to_numpy(np.float64)
    text = [[("" if np.isnan(v) else f"{v * 100:.1f}%") for v in row] for row in z]
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.01
    fig = go.Figure(go.Heatmap(z=z, x=MONTHS, y=[str(y) for y in table.index], text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmid=0, zmin=-lim, zmax=lim, colorbar=dict(tickformat=".0%"),
                               hovertemplate="%{y} %{x}: %{z:.2%}<extra></extra>"))
    fig.update_layout(title="Monthly returns (UTC calendar months)", **{**LAYOUT, "legend": {}})
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def trade_histogram(run: Run, bins: int = 60) -> go.Figure:
    """Distribution of trade returns (``return_frac`` = pnl / entry notional), binned server-side over
    every trade; losers red, winners green."""
    t = run.trades()
    fig = go.Figure()
    if t.empty or "return_frac" not in t.columns:
        fig.update_layout(title="Trade returns: no closed trades", **LAYOUT)
        return fig
    r = t["return_frac"].astype(float).to_numpy()
    r = r[np.isfinite(r)]
    counts, edges = np.histogram(r, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    colors = np.where(centers < 0, "#d62728", "#2ca02c")
    fig.add_trace(go.Bar(x=centers, y=counts, width=np.diff(edges), marker_color=colors, name="trades",
                         customdata=np.c_[edges[:-1], edges[1:]],
                         hovertemplate="%{customdata[0]:.3%} to %{customdata[1]:.3%}: %{y} trades<extra></extra>"))
    fig.add_vline(x=0, line_color="#333", line_width=1)
    fig.update_layout(title=f"Trade returns ({len(r):,} trades; mean {np.mean(r) * 100:.3f} %)",
                      xaxis_tickformat=".2%", yaxis_title="trades", bargap=0, **LAYOUT)
    return fig


def _candle_data(run: Run, bar_type: str, catalog_root, x0: int | None, x1: int | None,
                 max_candles: int) -> dict[str, np.ndarray]:
    """Candles of the run's bars in ``[x0, x1]`` (whole run when None) at the automatic timeframe, and
    the strategies' indicators (computed on every bar of the run) sampled at each candle's last bar.

    Returns arrays: ``open_time`` / ``close_ts`` (int64 ns), ``open high low close volume``, ``bars``,
    ``tf`` (ns), ``n_run`` / ``n_view`` (stored bars in the run / in view), ``ov_labels`` and ``ov_<i>``."""
    step = market.bar_step_ns(bar_type)
    bars_all = market.BARS.get(catalog_root, bar_type)
    start = run.metrics.get("start")
    end = run.metrics.get("end")
    lo = int(pd.Timestamp(start).value) if start else None
    hi = int(pd.Timestamp(end).value) + 1 if end else None
    bars_run = market.window(bars_all, lo, hi)
    n_run = int(bars_run["ts"].size)
    if n_run == 0:
        return {"n_run": np.array([0], np.int64)}
    v0 = x0 if x0 is not None else int(bars_run["ts"][0])
    v1 = x1 if x1 is not None else int(bars_run["ts"][-1])
    # one candle of margin either side so the edges are complete
    view = market.window(bars_run, v0 - 1, v1 + 1)
    tf_name, tf = market.auto_timeframe(max(v1 - v0, step), step, max_candles)
    lo_v = (int(view["ts"][0]) - step) // tf * tf + step if view["ts"].size else v0
    view = market.window(bars_run, lo_v, v1 + tf)
    candles = market.resample(view, step, tf)
    out = {"open_time": candles["open_time"].astype("int64").to_numpy(), "close_ts": candles["close_ts"].to_numpy(np.int64),
           **{c: candles[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")},
           "bars": candles["bars"].to_numpy(np.int64), "tf": np.array([tf], np.int64),
           "n_run": np.array([n_run], np.int64), "n_view": np.array([view["ts"].size], np.int64)}
    close_idx = np.searchsorted(bars_run["ts"], out["close_ts"])
    labels = []
    for spec in run.strategies():
        params = spec.get("params") or {}
        if params.get("bar_type") != bar_type:
            continue
        for label, values in _cached_overlays(run, spec["name"], params, bars_run, step).items():
            out[f"ov_{len(labels)}"] = values[close_idx]
            labels.append(label)
    out["ov_labels"] = np.array(labels, dtype=str)
    return out


def candles_overview(run: Run, bar_type: str, catalog_root, max_candles: int = MAX_CANDLES) -> dict[str, np.ndarray]:
    """:func:`_candle_data` of the whole run, persisted as a sidecar (:mod:`dash_ui.sidecar`); the key
    covers the bar type, the catalog files, the strategies' parameters and the run period."""
    import hashlib

    from dash_ui import sidecar

    key = [sidecar.catalog_signature(Path(catalog_root), bar_type), run.strategies(), run.metrics.get("start"),
           run.metrics.get("end"), max_candles]
    name = "candles-" + hashlib.sha256(bar_type.encode()).hexdigest()[:12]
    return sidecar.load_or_build(run, name, key,
                                 lambda: _candle_data(run, bar_type, catalog_root, None, None, max_candles))


def candles_figure(run: Run, bar_type: str, catalog_root, x0: int | None = None, x1: int | None = None,
                   max_candles: int = MAX_CANDLES) -> tuple[go.Figure, str]:
    """Candlesticks of ``bar_type`` over the run (or the ``[x0, x1]`` view) at an automatic timeframe,
    the strategies' price indicators, and every trade entry, exit and liquidation in the view as an
    exact marker (time = fill time = close of the deciding bar, price = fill price).

    Candles are drawn centred on their interval, so a candle spans open time to close time and a
    fill at a bar's close sits on that candle's right edge. Returns (figure, timeframe name).
    """
    if x0 is None and x1 is None:
        data = candles_overview(run, bar_type, catalog_root, max_candles)
    else:
        data = _candle_data(run, bar_type, catalog_root, x0, x1, max_candles)
    fig = go.Figure()
    if int(data["n_run"][0]) == 0:
        fig.update_layout(title=f"{bar_type}: no bars in the catalog {catalog_root} for the run's period", **LAYOUT)
        return fig, "-"
    tf = int(data["tf"][0])
    tf_name = next((k for k, v in market.TIMEFRAMES.items() if v == tf), f"{tf // 60_000_000_000}m")
    open_ns = data["open_time"]
    mid = _dt(open_ns + tf // 2)
    open_txt = _dt(open_ns).strftime("%Y-%m-%d %H:%M")
    fig.add_trace(go.Candlestick(x=mid, open=data["open"], high=data["high"], low=data["low"],
                                 close=data["close"], name=f"{bar_type.split('-1-')[0]} {tf_name}",
                                 text=[f"open {t} UTC" for t in open_txt], hoverinfo="x+y+text",
                                 increasing_line_color="#26a69a", decreasing_line_color="#ef5350"))
    iid = bar_instrument_id(bar_type)
    close_x = _dt(data["close_ts"])
    palette = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    for k, label in enumerate(data["ov_labels"].tolist()):
        fig.add_trace(go.Scatter(x=close_x, y=data[f"ov_{k}"], mode="lines", name=str(label),
                                 line=dict(width=1, color=palette[k % len(palette)])))
    n_view = int(data["n_view"][0])
    # trades: exact
    t = run.trades()
    if not t.empty:
        liq = run.liquidation_mask()
        sel = (t["instrument_id"].astype(str) == iid).to_numpy() if "instrument_id" in t.columns else np.ones(len(t), bool)
        entry_ns = t["entry_time"].astype("int64").to_numpy() if len(t) else np.array([], np.int64)
        exit_ns = t["exit_time"].astype("int64").to_numpy() if len(t) else np.array([], np.int64)
        lo_ns, hi_ns = (x0 if x0 is not None else -2**62), (x1 if x1 is not None else 2**62)
        long = (t["side"].astype(str) == "LONG").to_numpy()
        in_e = sel & (entry_ns >= lo_ns) & (entry_ns <= hi_ns)
        in_x = sel & (exit_ns >= lo_ns) & (exit_ns <= hi_ns)
        pnl = t["pnl"].astype(float).to_numpy()
        for mask, name, sym, color in ((in_e & long, "Long entry", "triangle-up", "#2ca02c"),
                                       (in_e & ~long, "Short entry", "triangle-down", "#d62728")):
            if mask.any():
                fig.add_trace(go.Scatter(x=_dt(entry_ns[mask]), y=t["entry_price"].to_numpy()[mask], mode="markers",
                                         name=f"{name} ({int(mask.sum()):,})",
                                         marker=dict(symbol=sym, size=9, color=color, line=dict(width=0.5, color="#000"))))
        still_open = t["is_open"].astype(bool).to_numpy() if "is_open" in t.columns else np.zeros(len(t), bool)
        in_x &= ~still_open  # a position open at the end has no exit (its exit_price is the last close)
        normal = in_x & ~liq
        if normal.any():
            fig.add_trace(go.Scatter(x=_dt(exit_ns[normal]), y=t["exit_price"].to_numpy()[normal], mode="markers",
                                     name=f"Exit ({int(normal.sum()):,})", customdata=pnl[normal],
                                     hovertemplate="exit %{x}<br>%{y}<br>PnL %{customdata:,.2f} USDT<extra></extra>",
                                     marker=dict(symbol="x-thin", size=9, line=dict(width=2, color="#333"))))
        lq = in_x & liq
        if lq.any():
            fig.add_trace(go.Scatter(x=_dt(exit_ns[lq]), y=t["exit_price"].to_numpy()[lq], mode="markers",
                                     name=f"Liquidation ({int(lq.sum()):,})", customdata=pnl[lq],
                                     hovertemplate="LIQUIDATION %{x}<br>%{y}<br>PnL %{customdata:,.2f} USDT<extra></extra>",
                                     marker=dict(symbol="x", size=14, color="#ff0000", line=dict(width=1, color="#000"))))
    fig.update_layout(title=f"{bar_type} - {tf_name} candles from {n_view:,} stored bars in view",
                      xaxis_rangeslider_visible=False, uirevision="candles", yaxis_title="price", **LAYOUT)
    if x0 is not None and x1 is not None:
        fig.update_xaxes(range=[_dt(np.array([x0]))[0], _dt(np.array([x1]))[0]])
    return fig, tf_name


def _cached_overlays(run: Run, name: str, params: dict, bars: dict, step: int) -> dict:
    key = ("overlays", name, tuple(sorted((k, str(v)) for k, v in params.items())), int(bars["ts"].size))
    with run._lock:
        hit = run._cache.get(key)
    if hit is None:
        hit = market.strategy_overlays(name, params, bars, step)
        with run._lock:
            run._cache[key] = hit
    return hit


def cost_figure(run: Run) -> go.Figure:
    """Waterfall from PnL before costs to net PnL: each recorded cost (fees, funding, slippage,
    liquidation fees; positive = paid) is subtracted; costs not recorded by the run are left out
    (and listed as such in the cost table)."""
    m = run.metrics
    net = float(m.get("final_equity", 0.0)) - float(m.get("starting_equity", 0.0))
    lines = [c for c in run.cost_breakdown() if c["usdt"] is not None]
    gross = net + sum(c["usdt"] for c in lines)
    fig = go.Figure(go.Waterfall(
        x=["PnL before costs", *[c["label"] for c in lines], "Net PnL"],
        measure=["absolute", *["relative"] * len(lines), "total"],
        y=[gross, *[-c["usdt"] for c in lines], 0],
        text=[f"{gross:,.2f}", *[f"{-c['usdt']:,.2f}" for c in lines], f"{net:,.2f}"],
        decreasing=dict(marker=dict(color="#d62728")), increasing=dict(marker=dict(color="#2ca02c")),
        totals=dict(marker=dict(color="#1f77b4")),
    ))
    fig.update_layout(title="Cost breakdown (USDT): PnL before costs -> net", **{**LAYOUT, "legend": {}})
    return fig


def comparison_figure(runs: list[Run]) -> go.Figure:
    """Equity of several runs normalised to 1.0 at their starting equity, each downsampled."""
    fig = go.Figure()
    for run in runs:
        a = run.equity_arrays()
        start = float(run.metrics.get("starting_equity") or a["equity"][0])
        x, out, raw = market.downsample_xy(a["ts"], {"e": a["equity"] / start}, N_POINTS)
        fig.add_trace(go.Scatter(x=_dt(x), y=out["e"], mode="lines", name=_ds_name(run.run_id, x.size, raw)))
    fig.update_layout(title="Equity normalised to the starting equity (1.0 = start)", yaxis_title="x start",
                      **LAYOUT)
    return fig


def ohlc_figure(candles: pd.DataFrame, title: str, tf_ns: int) -> go.Figure:
    """Candlesticks (centred on their interval) with a volume bar panel, for the data explorer."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.03)
    if len(candles):
        mid = _dt(candles["open_time"].astype("int64").to_numpy() + tf_ns // 2)
        fig.add_trace(go.Candlestick(x=mid, open=candles["open"], high=candles["high"], low=candles["low"],
                                     close=candles["close"], name="OHLC"), row=1, col=1)
        fig.add_trace(go.Bar(x=mid, y=candles["volume"], name="volume", marker_color="#888"), row=2, col=1)
    fig.update_layout(title=title, xaxis_rangeslider_visible=False, showlegend=False, **LAYOUT)
    return fig
