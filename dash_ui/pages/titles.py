"""Page titles and the document language: every page gets its own ``<title>`` (the run id on a run's
page) and ``<html lang="en">``. Installed by :func:`dash_ui.pages.runs.register` (the app's router lives in
:mod:`dash_ui.app`)."""

from __future__ import annotations

from dash import Input, Output

TITLES = {"/": "Runs", "/runs": "Runs", "/compare": "Compare runs", "/research": "Research",
          "/data": "Data explorer", "/launch": "Launch a backtest"}


def install(app) -> None:
    """Set ``lang="en"`` on the page's ``<html>`` and a title per path (a clientside callback on the URL)."""
    if "<html>" in app.index_string:
        app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)
    titles = ", ".join(f"'{k}': '{v}'" for k, v in TITLES.items())
    app.clientside_callback(
        """function(path) {
            const titles = {""" + titles + """};
            path = path || '/';
            let t = titles[path];
            if (!t && path.startsWith('/run/')) { t = decodeURIComponent(path.slice(5)) + ' - run'; }
            document.title = (t || 'Not found') + ' - nautilus-app';
            document.documentElement.lang = 'en';
            return window.dash_clientside.no_update;
        }""",
        Output("url", "refresh"), Input("url", "pathname"),
    )
