"""Nautilus's plotly tearsheet for a finished run, written on demand from its results folder.

Writing it costs about 0.4 s per run (more than the engine on short runs), so backtests skip it unless
the config sets ``tearsheet = true``; ``nautilus-app tearsheet RUN`` and the Dash app's "Nautilus
tearsheet" link write it from ``equity.parquet``, ``metrics.json`` and the ``stats_pnls`` kept in
``run.json`` (the same inputs the backtest would have used).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


class TearsheetError(ValueError):
    """The folder is not a complete run folder (the message names the missing file)."""


def write_tearsheet(run_folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``<run_folder>/tearsheet.html`` (atomically) and return its path.

    Raises:
        TearsheetError: no ``equity.parquet`` / ``metrics.json`` / ``run.json`` in the folder.
    """
    from nautilus_app.results import open_results
    from nautilus_app.results import write_tearsheet as draw_tearsheet

    folder = Path(run_folder)
    out = folder / "tearsheet.html"
    if out.exists() and not overwrite:
        return out
    for name in ("equity.parquet", "metrics.json", "run.json"):
        if not (folder / name).exists():
            raise TearsheetError(f"{folder}: no {name}: not a complete results folder")
    run = open_results(folder)
    eq = run.table("equity")
    ts = eq.columns[0]
    eq = eq.set_index(pd.to_datetime(eq[ts], utc=True))
    metrics = run.metrics
    info = run.info
    start = float(metrics["starting_equity"])

    class _Result:  # stats_pnls is all the tearsheet takes from a BacktestResult
        stats_pnls = info.get("stats_pnls") or {}

    tmp = folder / f".tearsheet.{os.getpid()}.html"
    bench = eq["benchmark_equity"] / start if "benchmark_equity" in eq else eq["equity"] * 0 + 1.0
    draw_tearsheet(tmp, _Result(), eq["equity"], bench, metrics, info.get("run_id", folder.name))
    tmp.replace(out)
    return out
