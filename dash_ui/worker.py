"""Background backtest worker: ``python -m dash_ui.worker CONFIG.toml --results-dir DIR --run-id ID``.

Started by :class:`dash_ui.jobs.JobRunner` through :class:`nautilus_app.worker_process.WorkerProcess`
as a separate process (crash isolation: a strategy that kills the interpreter, Nautilus's
process-global logger, or a memory blow-up cannot take the app down). Runs
:func:`nautilus_app.backtest.run_backtest`, reporting progress as JSON-line events on
``--progress-fd`` (stage ``loading data``, then ``simulating`` with the fraction of simulated time
done, ``writing results`` at 1.0) and the outcome as one JSON document on ``--result-fd``
(``run_id``, ``results_path``, ``engine_seconds``, ``total_seconds``; or ``error``). Run by hand without
those options, it draws the usual progress bar on stderr and prints the outcome on stdout.

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
    p.add_argument("--result-fd", type=int, default=None, help="write the outcome as JSON to this file descriptor")
    p.add_argument("--progress-fd", type=int, default=None,
                   help="write progress events (JSON lines) to this file descriptor instead of drawing a bar")
    args = p.parse_args(argv)

    from nautilus_app.backtest import BacktestFailed, run_backtest
    from nautilus_app.config import ConfigError, load_config
    from nautilus_app.worker_process import ProgressWriter, write_result

    def report(result: dict) -> None:
        if args.result_fd is not None:
            write_result(args.result_fd, result)
        else:
            print(json.dumps(result), flush=True)

    def fail(message: str, code: int) -> int:
        print(f"error: {message}", file=sys.stderr)
        if args.result_fd is not None:
            write_result(args.result_fd, {"error": message})
        return code

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        return fail(str(e), 2)
    writer = ProgressWriter(args.progress_fd) if args.progress_fd is not None else None
    if writer is not None:
        writer.event("loading data")
    else:
        print("stage: loading data and building the engine", file=sys.stderr, flush=True)
    try:
        outcome = run_backtest(cfg, results_root=args.results_dir, run_id=args.run_id,
                               progress=writer if writer is not None else True,
                               config_text=args.config.read_text())
    except BacktestFailed as e:
        return fail(f"backtest failed: {e}", 1)
    except FileExistsError as e:
        return fail(str(e), 1)
    report({"run_id": outcome.run_id, "results_path": str(outcome.results_path),
            "engine_seconds": round(outcome.engine_seconds, 3),
            "total_seconds": round(outcome.total_seconds, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
