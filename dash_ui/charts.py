"""Plotly figures of the app. Long series are downsampled server-side (:mod:`dash_ui.market`); trades,
monthly returns and the trade-return histogram are computed from every trade / every sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from catalog.inventory import bar_instrument_id
from dash_ui import market, sidecar
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

    key = [N_POINTS, sidecar.stat_key(run.path / "equity.parquet"), sidecar.stat_key(run.path / "metrics.json")]
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

    key = [sidecar.catalog_signature(Path(catalog_root), bar_type), run.strategies(), run.metrics.get("start"),
           run.metrics.get("end"), max_candles]
    name = "candles-" + hashlib.sha256(bar_type.encode()).hexdigest()[:12]
    return sidecar.load_or_build(run, name, key,
                                 lambda: _candle_data(run, bar_type, catalog_root, None, None, max_candles))


#: Above this many trades in view, position periods are shaded instead of one marker per entry/exit.
MAX_MARKERS = 300
#: Trades in view up to which every trade gets an entry-to-exit line.
MAX_TRADE_LINES = 300


def price_decimals(values: np.ndarray, max_decimals: int = 8) -> int:
    """Smallest number of decimals that writes every finite value exactly (to 1e-9 relative): the tick
    precision of prices read from the data."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)][:5000]
    for d in range(max_decimals + 1):
        if np.all(np.abs(np.round(v, d) - v) <= 1e-9 * np.maximum(np.abs(v), 1.0)):
            return d
    return max_decimals


def _trade_hover(t: pd.DataFrame, dec: int) -> list[str]:
    """Hover text of each trade: side, quantity, entry/exit price at tick precision, strategy, exit
    reason, duration, net PnL and return."""
    dur = (t["exit_time"] - t["entry_time"]).dt.total_seconds().to_numpy()
    reason = t["exit_reason"].astype(str).to_numpy() if "exit_reason" in t.columns else np.full(len(t), "")
    is_open = t["is_open"].astype(bool).to_numpy() if "is_open" in t.columns else np.zeros(len(t), bool)
    out = []
    for i, r in enumerate(t.itertuples(index=False)):
        rs = "open at the end" if is_open[i] else (reason[i] if reason[i] not in ("", "None", "nan") else "n/a")
        out.append(f"<b>{r.side}</b> {r.quantity:,.8g} {getattr(r, 'instrument_id', '')}<br>"
                   f"strategy {getattr(r, 'strategy_id', '')}<br>"
                   f"entry {r.entry_time:%Y-%m-%d %H:%M} @ {r.entry_price:,.{dec}f}<br>"
                   f"exit {r.exit_time:%Y-%m-%d %H:%M} @ {r.exit_price:,.{dec}f} ({rs})<br>"
                   f"duration {fmt_duration(dur[i])}<br>"
                   f"net PnL {r.pnl:,.2f} USDT, return {r.return_frac * 100:,.3f} %")
    return out


def fmt_duration(seconds: float) -> str:
    from dash_ui.formatting import duration

    return duration(seconds)


def candles_figure(run: Run, bar_type: str, catalog_root, x0: int | None = None, x1: int | None = None,
                   max_candles: int = MAX_CANDLES, uirevision: str = "candles") -> tuple[go.Figure, str]:
    """Candlesticks of ``bar_type`` over the run (or the ``[x0, x1]`` view) at an automatic timeframe with
    a volume panel, the strategies' indicators (recorded during the run when the run has
    ``indicators.parquet``, price overlays on the candles and oscillators in panels of their own; else
    recomputed price overlays of the built-in strategies), and the trades in the view: with at most
    :data:`MAX_MARKERS` trades an exact marker per entry and exit (time = fill time, price = fill price)
    and an entry-to-exit line per trade; above that, position periods shaded (long green, short red).
    Liquidations are always marked. Hover: side, quantity, prices at tick precision, strategy, exit
    reason, duration, net PnL and return.

    Candles are drawn centred on their interval, so a candle spans open time to close time and a
    fill at a bar's close sits on that candle's right edge. Returns (figure, timeframe name).
    """
    from dash_ui import plotdata

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
    dec = price_decimals(data["close"])
    recorded = plotdata.recorded_panels(run, bar_type, data["close_ts"])
    panels = [] if recorded is None else recorded["panels"]
    n_sub = len(panels)
    # domains: price on top, volume under it, one panel per oscillator group
    vol_h, sub_h = 0.14, 0.16
    price_lo = vol_h + n_sub * sub_h + 0.02
    layout_axes = {"yaxis": dict(domain=[price_lo, 1.0], title="price"),
                   "yaxis2": dict(domain=[n_sub * sub_h, n_sub * sub_h + vol_h - 0.02], title="volume",
                                  showgrid=False)}
    for k in range(n_sub):
        lo = (n_sub - 1 - k) * sub_h
        layout_axes[f"yaxis{3 + k}"] = dict(domain=[lo + 0.01, lo + sub_h - 0.02], title=panels[k]["title"])
    fig.add_trace(go.Candlestick(x=mid, open=data["open"], high=data["high"], low=data["low"],
                                 close=data["close"], name=f"{bar_type.split('-1-')[0]} {tf_name}",
                                 text=[f"open {t} UTC" for t in _dt(open_ns).strftime("%Y-%m-%d %H:%M")],
                                 hoverinfo="x+y+text", yhoverformat=f",.{dec}f",
                                 increasing_line_color="#26a69a", decreasing_line_color="#ef5350"))
    up = data["close"] >= data["open"]
    fig.add_trace(go.Bar(x=mid, y=data["volume"], name="volume", yaxis="y2", showlegend=False,
                         marker_color=np.where(up, "#9fd4cf", "#f3b1b0"), marker_line_width=0,
                         hovertemplate="volume %{y:,.4g}<extra></extra>"))
    close_x = _dt(data["close_ts"])
    palette = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    if recorded is not None:
        for k, (lbl, vals) in enumerate(recorded["overlays"].items()):
            fig.add_trace(go.Scatter(x=close_x, y=vals, mode="lines", name=f"{lbl} (recorded)",
                                     line=dict(width=1, color=palette[k % len(palette)])))
        for p, panel in enumerate(panels):
            for k, (lbl, vals) in enumerate(panel["series"].items()):
                fig.add_trace(go.Scatter(x=close_x, y=vals, mode="lines", name=f"{lbl} (recorded)",
                                         yaxis=f"y{3 + p}", line=dict(width=1, color=palette[(k + 2) % len(palette)])))
            for level in panel.get("levels", []):
                fig.add_trace(go.Scatter(x=[close_x[0], close_x[-1]], y=[level, level], mode="lines",
                                         yaxis=f"y{3 + p}", showlegend=False, hoverinfo="skip",
                                         line=dict(width=0.8, color="#aaa", dash="dot")))
    else:
        for k, lbl in enumerate(data["ov_labels"].tolist()):
            fig.add_trace(go.Scatter(x=close_x, y=data[f"ov_{k}"], mode="lines", name=str(lbl),
                                     line=dict(width=1, color=palette[k % len(palette)])))
    n_view = int(data["n_view"][0])
    iid = bar_instrument_id(bar_type)
    t = run.trades()
    shaded = False
    if not t.empty:
        liq_all = run.liquidation_mask()
        sel = (t["instrument_id"].astype(str) == iid).to_numpy() if "instrument_id" in t.columns else np.ones(len(t), bool)
        entry_ns = t["entry_time"].astype("int64").to_numpy()
        exit_ns = t["exit_time"].astype("int64").to_numpy()
        lo_ns, hi_ns = (x0 if x0 is not None else -2**62), (x1 if x1 is not None else 2**62)
        in_e = sel & (entry_ns >= lo_ns) & (entry_ns <= hi_ns)
        in_x = sel & (exit_ns >= lo_ns) & (exit_ns <= hi_ns)
        overlap = sel & (entry_ns <= hi_ns) & (exit_ns >= lo_ns)
        still_open = t["is_open"].astype(bool).to_numpy() if "is_open" in t.columns else np.zeros(len(t), bool)
        in_x &= ~still_open  # a position open at the end has no exit (its exit_price is the last close)
        long = (t["side"].astype(str).str.upper() == "LONG").to_numpy()
        n_in_view = int(overlap.sum())
        hover = np.array(_trade_hover(t[overlap], dec), dtype=object) if n_in_view <= 5 * MAX_MARKERS else None
        hv = np.full(len(t), "", dtype=object)
        if hover is not None:
            hv[overlap] = hover
        if n_in_view > MAX_MARKERS:
            shaded = True
            for side_mask, name, color in ((long, "Long periods", "rgba(44,160,44,0.18)"),
                                           (~long, "Short periods", "rgba(214,39,40,0.18)")):
                m = overlap & side_mask
                if not m.any():
                    continue
                a, b = np.maximum(entry_ns[m], lo_ns), np.minimum(exit_ns[m], hi_ns)
                xs = np.c_[a, a, b, b, a].astype("int64")
                xx = [v for row in _dt(xs.ravel()).to_numpy().reshape(-1, 5) for v in [*row, None]]
                yy = [0, 1, 1, 0, 0, None] * int(m.sum())
                fig.add_trace(go.Scatter(x=xx, y=yy, yaxis="y9", fill="toself", mode="lines", line=dict(width=0),
                                         fillcolor=color, name=f"{name} ({int(m.sum()):,} trades)", hoverinfo="skip"))
            layout_axes["yaxis9"] = dict(overlaying="y", range=[0, 1], visible=False, fixedrange=True)
        else:
            if overlap.any():  # entry-to-exit lines, green for winners, red for losers
                pnl = t["pnl"].astype(float).to_numpy()
                for win, color, name in ((True, "#2ca02c", "winning trades"), (False, "#d62728", "losing trades")):
                    m = overlap & ((pnl > 0) == win)
                    if not m.any():
                        continue
                    xs = np.c_[entry_ns[m], exit_ns[m]].ravel()
                    xd = _dt(xs).to_numpy().reshape(-1, 2)
                    ys = np.c_[t["entry_price"].to_numpy()[m], t["exit_price"].to_numpy()[m]]
                    fig.add_trace(go.Scatter(
                        x=[v for row in xd for v in [*row, None]], y=[v for row in ys for v in [*row, None]],
                        mode="lines", line=dict(color=color, width=1.2, dash="dot"), hoverinfo="skip",
                        name=f"Entry-exit lines, {name} ({int(m.sum()):,})"))
            for mask, name, sym, color in ((in_e & long, "Long entry", "triangle-up", "#2ca02c"),
                                           (in_e & ~long, "Short entry", "triangle-down", "#d62728")):
                if mask.any():
                    fig.add_trace(go.Scatter(x=_dt(entry_ns[mask]), y=t["entry_price"].to_numpy()[mask], mode="markers",
                                             name=f"{name} ({int(mask.sum()):,})", hovertext=hv[mask].tolist(),
                                             hoverinfo="text",
                                             marker=dict(symbol=sym, size=9, color=color,
                                                         line=dict(width=0.5, color="#000"))))
            normal = in_x & ~liq_all
            if normal.any():
                fig.add_trace(go.Scatter(x=_dt(exit_ns[normal]), y=t["exit_price"].to_numpy()[normal], mode="markers",
                                         name=f"Exit ({int(normal.sum()):,})", hovertext=hv[normal].tolist(),
                                         hoverinfo="text",
                                         marker=dict(symbol="x-thin", size=9, line=dict(width=2, color="#333"))))
        lq = in_x & liq_all
        if lq.any():
            fig.add_trace(go.Scatter(x=_dt(exit_ns[lq]), y=t["exit_price"].to_numpy()[lq], mode="markers",
                                     name=f"Liquidation ({int(lq.sum()):,})", hovertext=hv[lq].tolist(), hoverinfo="text",
                                     marker=dict(symbol="x", size=14, color="#ff0000", line=dict(width=1, color="#000"))))
    title = f"{bar_type} - {tf_name} candles from {n_view:,} stored bars in view"
    if shaded:
        title += f" (more than {MAX_MARKERS} trades in view: positions shaded; zoom in for markers)"
    fig.update_layout(title=title, xaxis_rangeslider_visible=False, uirevision=uirevision, hovermode="closest",
                      **layout_axes, **LAYOUT)
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


def _compare_x(run: Run, ts: np.ndarray, axis: str):
    """x values of a comparison trace: UTC times, or days since the run's first equity sample."""
    if axis == "days":
        first = int(run.equity_arrays()["ts"][0])
        return (ts.astype(np.int64) - first) / 86_400e9
    return _dt(ts)


def comparison_figure(runs: list[Run], axis: str = "calendar") -> go.Figure:
    """Equity of several runs normalised to 1.0 at their starting equity, each downsampled. ``axis``:
    ``calendar`` (UTC time) or ``days`` (days since each run's first sample: runs of different periods
    start together)."""
    fig = go.Figure()
    for run in runs:
        a = run.equity_arrays()
        start = float(run.metrics.get("starting_equity") or a["equity"][0])
        x, out, raw = market.downsample_xy(a["ts"], {"e": a["equity"] / start}, N_POINTS)
        fig.add_trace(go.Scatter(x=_compare_x(run, x, axis), y=out["e"], mode="lines",
                                 name=_ds_name(run.run_id, x.size, raw)))
    fig.update_layout(title="Equity normalised to the starting equity (1.0 = start)", yaxis_title="x start",
                      xaxis_title="days since the run's start" if axis == "days" else "time (UTC)", **LAYOUT)
    return fig


def comparison_drawdown_figure(runs: list[Run], axis: str = "calendar") -> go.Figure:
    """Drawdown (equity / running peak - 1, in %) of several runs overlaid; the minimum of each trace is
    ``-max_drawdown`` of its metrics.json (MinMax downsampling keeps the extremes)."""
    fig = go.Figure()
    for run in runs:
        a = run.equity_arrays()
        dd = _drawdown(a) * 100.0
        x, out, raw = market.downsample_xy(a["ts"], {"dd": dd}, N_POINTS)
        fig.add_trace(go.Scatter(x=_compare_x(run, x, axis), y=out["dd"], mode="lines",
                                 name=_ds_name(run.run_id, x.size, raw)))
    fig.update_layout(title="Drawdown (%, equity / running peak - 1)", yaxis_title="%",
                      xaxis_title="days since the run's start" if axis == "days" else "time (UTC)", **LAYOUT)
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


def strategy_pnl_figure(run: Run) -> go.Figure:
    """Cumulative net PnL (USDT) of each strategy at its trades' exits, and of all strategies together
    (:func:`dash_ui.analytics.strategy_cum_pnl`); each line ends at the strategy's net PnL of the trades."""
    from dash_ui import analytics

    series = analytics.strategy_cum_pnl(run.trades())
    fig = go.Figure()
    if not series:
        fig.update_layout(title="Cumulative PnL per strategy: no trades", **LAYOUT)
        return fig
    t = run.trades().sort_values(["exit_time", "entry_time"], kind="stable")
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    for k, (sid, (x, y)) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=_dt(x), y=y, mode="lines", line=dict(shape="hv", width=1.5,
                                                                         color=palette[k % len(palette)]),
                                 name=f"{sid} ({y[-1]:,.2f} USDT)",
                                 hovertemplate=f"{sid}<br>%{{x}}<br>%{{y:,.2f}} USDT<extra></extra>"))
    if len(series) > 1:
        y = t["pnl"].astype(float).cumsum().to_numpy()
        fig.add_trace(go.Scatter(x=_dt(t["exit_time"].astype("int64").to_numpy()), y=y, mode="lines",
                                 name=f"All strategies ({y[-1]:,.2f} USDT)",
                                 line=dict(shape="hv", width=1, color="#333", dash="dot"),
                                 hovertemplate="all<br>%{x}<br>%{y:,.2f} USDT<extra></extra>"))
    fig.add_hline(y=0, line_color="#999", line_width=1)
    fig.update_layout(title="Cumulative net PnL per strategy (USDT, at each trade's exit)", yaxis_title="USDT",
                      **LAYOUT)
    return fig


def margin_figure(run: Run, catalog_root) -> go.Figure | None:
    """Leverage (gross notional / equity), margin used (USDT) and funding paid so far (USDT, paid > 0) over
    time for margin / perpetual runs (:func:`dash_ui.analytics.margin_series`); None for spot runs."""
    from plotly.subplots import make_subplots

    from dash_ui import analytics

    s = analytics.margin_series(run, catalog_root)
    if s is None:
        return None
    src = str(s["source"][0])
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("Leverage (gross notional / equity, x)", "Margin used (USDT)",
                                        "Funding paid so far (USDT, paid > 0)"))
    ys = {"leverage": s["leverage"], "margin_used": s["margin_used"], "funding_cum": s["funding_cum"]}
    x, out, raw = market.downsample_xy(s["ts"], {k: np.nan_to_num(v) for k, v in ys.items()}, N_POINTS)
    for row, (k, name, color) in enumerate((("leverage", "leverage", "#9467bd"), ("margin_used", "margin used", "#8c564b"),
                                            ("funding_cum", "funding paid", "#d62728")), start=1):
        fig.add_trace(go.Scatter(x=_dt(x), y=out[k], mode="lines", name=_ds_name(name, x.size, raw),
                                 line=dict(color=color, width=1)), row=row, col=1)
    fig.update_layout(title=f"Leverage, margin and funding ({src}: "
                            + ("equity.parquet columns)" if src == "recorded" else
                               "positions from trades.parquet x bar closes, margin = notional / configured leverage)"),
                      showlegend=False, **{**LAYOUT, "margin": dict(l=60, r=20, t=70, b=40)})
    return fig
