"""Command-line options of ``nautilus-app paper`` (light: no Nautilus import, so the CLI starts fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def add_paper_arguments(p: Any) -> None:
    """Arguments of ``nautilus-app paper`` / ``scripts/run_paper.py`` (an ``argparse`` parser)."""
    p.add_argument("config", help="run config with a [paper] table (see configs/paper_*.toml, docs/paper.md)")
    p.add_argument("--results-dir", type=Path, default=None, help="default $RESULTS_DIR or ./results")
    p.add_argument("--run-id", default=None, help="results folder name (default: resumed from Redis or new)")
    p.add_argument("--fresh", action="store_true", help="delete this trader's Redis state first (no resume)")
    p.add_argument("--max-bars", type=int, default=None, help="stop after N bars (default: run until SIGINT/SIGTERM)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after S wall seconds")
    p.add_argument("--trader-id", default=None, help="override paper.trader_id")
    p.add_argument("--base-url-http", default=None, help="override paper.base_url_http (e.g. a replay server)")
    p.add_argument("--base-url-ws", default=None, help="override paper.base_url_ws")
    p.add_argument("--stale-after", type=float, default=None, help="override paper.stale_after_seconds")
