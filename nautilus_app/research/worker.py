"""Worker process entry: ``python -m nautilus_app.research.worker --result-fd N`` (started by ProcessExecutor
through :class:`nautilus_app.worker_process.WorkerProcess`).

Reads one :class:`~nautilus_app.research.execution.Job` as JSON from stdin, runs
:func:`~nautilus_app.research.execution.execute_job` (which records the run in the registry) and
writes the result dict as JSON to file descriptor ``N``. Exit code 0 when a result was written.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback


def main(argv: list[str] | None = None) -> int:
    """Run the job from stdin; see the module docstring."""
    p = argparse.ArgumentParser(prog="nautilus_app.research.worker")
    p.add_argument("--result-fd", type=int, required=True)
    args = p.parse_args(argv)
    from nautilus_app.research.execution import Job, execute_job
    from nautilus_app.worker_process import write_result

    code = 0
    try:
        job = Job(**json.loads(sys.stdin.read()))
        result = execute_job(job)
    except BaseException:  # noqa: BLE001 - reported to the driver, which retries or fails the run
        result = {"status": "error", "error": traceback.format_exc()}
        code = 3
    write_result(args.result_fd, result)
    return code


if __name__ == "__main__":
    sys.exit(main())
