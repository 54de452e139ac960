"""Command-line options of ``nautilus-app dash`` (light: no Dash import, so the CLI starts fast)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``dash`` command (shared by the CLI and scripts/run_dash.py)."""
    p.add_argument("--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--results-dir", type=Path, default=None, help="default $RESULTS_DIR or ./results")
    p.add_argument("--catalog", type=Path, default=None, help="default $CATALOG_PATH or catalog/store")
    p.add_argument("--jobs", type=int, default=1, help="backtests run in parallel by the launcher (default 1)")
    p.add_argument("--registry", default=None,
                   help="research registry URL (default $NAUTILUS_REGISTRY_URL or sqlite:///<results>/registry.sqlite)")
    p.add_argument("--warm-runs", type=int, default=3,
                   help="newest runs whose detail-page overview is precomputed in the background (default 3)")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (reloader, dev tools)")
    p.add_argument("--token-file", type=Path, default=None,
                   help="require the token in this file on every request (default $NAUTILUS_DASH_TOKEN; on a "
                        "non-loopback --host without either, a token is generated and printed)")
