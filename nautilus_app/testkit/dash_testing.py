"""Helpers for the browser tests and the benchmark: serve the app in a thread, drive Debian's Chromium.

Chromium is the system one (``/usr/bin/chromium``, Debian packages ``chromium`` and
``chromium-driver``, installed by ``.ci/run``), driven through Playwright's Python package; no
browser is ever downloaded. The flags are those this machine needs headless as root with no network
(see docs/dash.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

#: JS predicate: the detail page is usable (every graph has data, metrics and the trade table shown).
DETAIL_READY = """() => {
  const g = [...document.querySelectorAll('.js-plotly-plot')];
  return g.length >= 6 && g.every(x => x._fullLayout && x.data && x.data.length > 0)
    && !!document.querySelector('#metrics-table')
    && (!!document.querySelector('#detail-trades .ag-row')
        || ((document.querySelector('#detail-trades-title') || {}).innerText || '').startsWith('Trades (0)'));
}"""


#: JS predicate: the detail page's first paint is usable: KPI cards, equity and drawdown drawn with data, the
#: metrics table and the first trade rows (the figures further down arrive after it: dash_ui/pages/detail.py).
FIRST_PAINT = """() => {
  const ok = id => { const g = document.querySelector('#' + id + ' .js-plotly-plot');
                     return !!g && !!g._fullLayout && !!g.data && g.data.length > 0; };
  return !!document.querySelector('#kpi-total_return') && ok('detail-equity') && ok('detail-drawdown')
    && !!document.querySelector('#metrics-table')
    && (!!document.querySelector('#detail-trades .ag-row')
        || ((document.querySelector('#detail-trades-title') || {}).innerText || '').startsWith('Trades (0)'));
}"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(results_root: Path, catalog_root: Path, warm_runs: int = 3) -> Iterator[tuple[str, object]]:
    """Run :func:`dash_ui.app.create_app` on a werkzeug server in a thread; yields (base URL, app)."""
    import logging

    from werkzeug.serving import make_server

    from dash_ui.app import create_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(results_root, catalog_root, warm_runs=warm_runs)
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.shutdown()
        if app._nautilus_ctx.warm_stop is not None:  # type: ignore[attr-defined]
            app._nautilus_ctx.warm_stop.set()  # type: ignore[attr-defined]
        app._nautilus_ctx.jobs.shutdown()  # type: ignore[attr-defined]


def chromium_available() -> bool:
    """True if the system Chromium is installed."""
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


@contextmanager
def browser(user_data_dir: Path) -> Iterator[object]:
    """A headless system Chromium (Playwright ``Browser``) with a fresh profile folder."""
    from playwright.sync_api import sync_playwright

    user_data_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield ctx
        finally:
            ctx.close()


SPOT_BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
PERP_BAR = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"


def spot_config(catalog: Path, name: str = "t_ema", start: str = "2025-06-02", end: str = "2025-06-09",
                fast: int = 10, slow: int = 30) -> dict:
    """A small real-data config: EMA cross on Binance BTCUSDT spot 1m bars of the shared mirror."""
    return {
        "name": name, "catalog": str(catalog), "start": start, "end": end, "bar_types": [SPOT_BAR],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": SPOT_BAR,
                                                        "fast_period": fast, "slow_period": slow,
                                                        "position_fraction": 0.2}}],
    }


def build_test_data(root: Path) -> tuple[Path, Path, str]:
    """Catalog (BTCUSDT spot 1m 2025-06-01..10 and ETHUSDT-PERP 1m 2023-07-01..03 from the shared
    Binance Vision mirror) and one real backtest (EMA cross, one week) under ``root``.

    Returns (catalog root, results root, run id).
    """
    from catalog.binance_vision import import_binance_vision
    from core.paths import shared_data_dir
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import parse_config

    mirror = str(shared_data_dir() / "binance-vision")
    catalog, results = root / "catalog", root / "results"
    import_binance_vision(catalog, base_url=mirror, market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2025-06-01", end="2025-06-10", kinds=("bars",))
    import_binance_vision(catalog, base_url=mirror, market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-07-01", end="2023-07-03", kinds=("bars",))
    outcome = run_backtest(parse_config(spot_config(catalog)), results_root=results, progress=False)
    return catalog, results, outcome.run_id
