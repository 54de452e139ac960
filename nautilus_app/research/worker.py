"""Worker process entry: ``python -m nautilus_app.research.worker --result-fd N`` (started by ProcessExecutor).

Reads one :class:`~nautilus_app.research.execution.Job` as JSON from stdin, runs
:func:`~nautilus_app.research.execution.execute_job` (which records the run in the registry) and
writes the result dict as JSON to file descriptor ``N``. Exit code 0 when a result was written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback


def main(argv: list[str] | None = None) -> int:
    """Run the job from stdin; see the module docstring."""
    p = argparse.ArgumentParser(prog="nautilus_app.research.worker")
    p.add_argument("--result-fd", type=int, required=True)
    args = p.parse_args(argv)
    from nautilus_app.research.execution import Job, execute_job

    code = 0
    try:
        job = Job(**json.loads(sys.stdin.read()))
        result = execute_job(job)
    except BaseException:  # noqa: BLE001 - reported to the driver, which retries or fails the run
        result = {"status": "error", "error": traceback.format_exc()}
        code = 3
    with os.fdopen(args.result_fd, "wb") as fh:
        fh.write(json.dumps(result, default=str).encode())
    return code


if __name__ == "__main__":
    sys.exit(main())
