"""Results app (Dash) and JSON API: runs list, run detail, comparison, data explorer, backtest launcher.

Start with ``nautilus-app dash`` (127.0.0.1:8050); see docs/dash.md. Modules: :mod:`dash_ui.app`
(app factory, CLI options), :mod:`dash_ui.api` (``/api`` routes), :mod:`dash_ui.data` (results
folders), :mod:`dash_ui.market` (catalog bars, resampling, downsampling, indicators),
:mod:`dash_ui.charts` (figures), :mod:`dash_ui.jobs` / :mod:`dash_ui.worker` (background backtests),
:mod:`dash_ui.pages` (page layouts and callbacks). Test and benchmark helpers (server thread, system
Chromium, a labelled synthetic long run) live in :mod:`nautilus_app.testkit.dash_testing` and
:mod:`nautilus_app.testkit.synthetic`.
"""
