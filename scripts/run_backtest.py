"""Run a TOML-configured backtest: ``python scripts/run_backtest.py configs/demo_spot.toml``.

A thin wrapper around ``nautilus-app backtest`` (see ``nautilus_app/cli.py``).
"""

import sys

from nautilus_app.cli import fast_exit, main

if __name__ == "__main__":
    fast_exit(main(["backtest", *sys.argv[1:]]))
