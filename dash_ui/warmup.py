"""Warm-up of the detail page: a daemon thread that builds the persisted overview sidecars
(:mod:`dash_ui.sidecar`) of the newest runs when the app starts and then every ``interval_s`` seconds
(runs finished by the launcher are picked up), and primes the detail page once so the first real
request costs what a warm one does.
"""

from __future__ import annotations

import logging
import threading

from dash_ui import charts
from dash_ui.pages import detail

#: the warm-up logs under the sidecar's name (as before it moved out of dash_ui/sidecar.py)
log = logging.getLogger("dash_ui.sidecar")


def warm_up(ctx, n_runs: int = 3) -> list[str]:
    """Build the overview sidecars (equity and candles of every bar type) of the ``n_runs`` newest runs.

    Returns the run ids visited. Errors of one run are logged and do not stop the others.
    """
    done = []
    for run_id in ctx.store.run_ids()[:n_runs]:
        try:
            run = ctx.store.get(run_id)
            charts.equity_overview(run)
            for bt in run.bar_types():
                charts.candles_overview(run, bt, run.catalog_root(ctx.catalog_root))
            run.trades()
            done.append(run_id)
        except Exception:  # noqa: BLE001 - a broken run folder must not stop the warm-up
            log.exception("sidecar warm-up of %s failed", run_id)
    return done


def prime(ctx, run_id: str) -> None:
    """Build the detail page of ``run_id`` once and throw it away, so a fresh server process has
    imported and initialised everything the page needs (plotly's validators, Dash's JSON encoder,
    table formatting): the first real request then costs what a warm one does."""
    import plotly.io as pio

    run = ctx.store.get(run_id)
    detail.layout(ctx, run_id).to_plotly_json()
    figs = [charts.equity_figure(run), charts.drawdown_figure(run), charts.monthly_heatmap(run),
            charts.trade_histogram(run), charts.cost_figure(run)]
    figs += [charts.candles_figure(run, bt, run.catalog_root(ctx.catalog_root))[0] for bt in run.bar_types()[:1]]
    for f in figs:
        pio.to_json(f)


def start_warm_up(ctx, n_runs: int = 3, interval_s: float = 15.0) -> threading.Event:
    """Start the warm-up daemon thread (:func:`warm_up` now, then every ``interval_s``). Set the
    returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        first = True
        while not stop.is_set():
            visited = warm_up(ctx, n_runs)
            if first and visited:
                try:
                    prime(ctx, visited[0])
                except Exception:  # noqa: BLE001 - priming is an optimisation only
                    log.exception("priming the detail page of %s failed", visited[0])
                first = False
            stop.wait(interval_s)

    threading.Thread(target=loop, name="dash-sidecar-warm-up", daemon=True).start()
    return stop
