"""Command-line options of ``nautilus-app live`` / ``alerts`` / ``metrics`` (light: no Nautilus import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

OPT_IN_FLAG = "--i-understand-this-trades-real-money"


def add_live_arguments(p: Any) -> None:
    """``nautilus-app live`` sub-commands (run | stop | flatten | status)."""
    p.add_argument("action_or_config", help="CONFIG to run, or one of: stop, flatten, status")
    p.add_argument("config", nargs="?", help="config (after stop/flatten/status)")
    p.add_argument(OPT_IN_FLAG, dest="opt_in", action="store_true",
                   help="required to start a live node (with [live] enabled = true in the config)")
    p.add_argument("--results-dir", type=Path, default=None)
    p.add_argument("--run-id", default=None)
    p.add_argument("--max-seconds", type=float, default=None)
    p.add_argument("--on-unknown", choices=["refuse", "adopt", "flatten"], default=None,
                   help="override live.on_unknown for this start")
    p.add_argument("--base-url-http", default=None)
    p.add_argument("--base-url-ws", default=None)
    p.add_argument("--base-url-ws-api", default=None, help="Binance spot: the WebSocket API endpoint")
    p.add_argument("--metrics-port", type=int, default=None)
    p.add_argument("--wait", type=float, default=0.0, help="stop/flatten: wait this many seconds for the node")



def add_alerts_arguments(p: Any) -> None:
    """``nautilus-app alerts test CONFIG``."""
    p.add_argument("action", choices=["test"], help="test: send one test alert to every webhook of [live.alerts]")
    p.add_argument("config", help="run config with a [live] table")


def add_metrics_arguments(p: Any) -> None:
    """``nautilus-app metrics``: /metrics for every paper/live session under the results folder."""
    p.add_argument("--results-dir", type=Path, default=None, help="default $RESULTS_DIR or ./results")
    p.add_argument("--port", type=int, default=9464)
    p.add_argument("--host", default="127.0.0.1")
