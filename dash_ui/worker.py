"""Background backtest worker: ``python -m dash_ui.worker CONFIG.toml --results-dir DIR --run-id ID``.

Started by :class:`dash_ui.jobs.JobRunner` as a separate process (crash isolation: a strategy that
kills the interpreter, Nautilus's process-global logger, or a memory blow-up cannot take the app
down). Runs :func:`nautilus_app.backtest.run_backtest` with the progress bar on stderr (the runner
parses tqdm's percentage from it) and prints one JSON line on stdout when done.

Exit codes as the CLI: 0 done, 1 run failed (``error: ...`` on stderr), 2 invalid config.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m dash_ui.worker")
    p.add_argument("config", type=Path)
    p.add_argument("--results-dir", type=Path, required=True)
    p.add_argument("--run-id", required=True)
    args = p.parse_args(argv)

    from nautilus_app.backtest import BacktestFailed, run_backtest
    from nautilus_app.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("stage: loading data and building the engine", file=sys.stderr, flush=True)
    try:
        outcome = run_backtest(cfg, results_root=args.results_dir, run_id=args.run_id, progress=True,
                               config_text=args.config.read_text())
    except BacktestFailed as e:
        print(f"error: backtest failed: {e}", file=sys.stderr)
        return 1
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"run_id": outcome.run_id, "results_path": str(outcome.results_path),
                      "engine_seconds": round(outcome.engine_seconds, 3),
                      "total_seconds": round(outcome.total_seconds, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
