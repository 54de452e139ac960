"""Indicator values recorded during a run (``indicators.parquet`` + ``plot_config.json`` written by
:mod:`nautilus_app.plotting`), sampled for the candle chart.

Values are recorded at the close of every bar of the timeframe the strategy traded (e.g. 15-minute bars
built from 1-minute bars); the chart shows each at the candles' close times: a candle shows the last
recorded value at or before its close (so a 15-minute series on 1-minute candles is a step line, and on
daily candles the value at the day's last 15-minute bar).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def load(run) -> tuple[pd.DataFrame, dict] | None:
    """``(indicators frame, plot config)`` of a run, cached on the run; None when it recorded none."""
    key = ("plotdata",)
    with run._lock:
        if key in run._cache:
            return run._cache[key]
    p, c = run.path / "indicators.parquet", run.path / "plot_config.json"
    out = None
    if p.exists() and c.exists():
        try:
            out = (pd.read_parquet(p), json.loads(c.read_text()))
        except (OSError, ValueError):
            out = None
    with run._lock:
        run._cache[key] = out
    return out


def _sample(ts: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    i = np.searchsorted(ts, at, side="right") - 1
    out = np.where(i >= 0, values[np.clip(i, 0, None)], np.nan)
    return out


def recorded_panels(run, bar_type: str, close_ts: np.ndarray) -> dict | None:
    """Overlays and sub-panels of the strategies that traded an instrument of ``bar_type`` (their own bar
    type may be a higher timeframe built from it), sampled at ``close_ts`` (int64 ns): ``{"overlays":
    {label: values}, "panels": [{"title", "series": {label: values}, "levels": [...]}]}``; None when the
    run recorded nothing for that instrument."""
    from catalog.inventory import bar_instrument_id

    loaded = load(run)
    if loaded is None:
        return None
    df, config = loaded
    iid = bar_instrument_id(bar_type)
    overlays: dict[str, np.ndarray] = {}
    panels: dict[str, dict] = {}
    multi = len(config) > 1
    for sid, spec in config.items():
        sbt = spec.get("bar_type", "")
        if bar_instrument_id(sbt.split("@")[0]) != iid:
            continue
        rows = df[df["strategy_id"] == sid]
        ts = rows["ts"].to_numpy(np.int64)
        tf = sbt.split(".", 1)[-1].split("-")[1:3] if "-" in sbt else []
        suffix = f" [{sid}{', ' + '-'.join(tf).lower() if tf else ''}]" if multi else \
            (f" [{'-'.join(tf).lower()}]" if tf else "")
        for label, col in spec.get("main_plot", {}).items():
            if col in rows.columns:
                overlays[label + suffix] = _sample(ts, rows[col].to_numpy(np.float64), close_ts)
        for title, sub in spec.get("subplots", {}).items():
            panel = panels.setdefault(title, {"title": title, "series": {}, "levels": []})
            for label, col in sub.get("series", {}).items():
                if col in rows.columns:
                    panel["series"][label + suffix] = _sample(ts, rows[col].to_numpy(np.float64), close_ts)
            panel["levels"] = sorted(set(panel["levels"]) | set(sub.get("levels", [])))
    if not overlays and not panels:
        return None
    return {"overlays": overlays, "panels": [p for p in panels.values() if p["series"]]}
