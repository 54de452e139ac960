"""Run a paper-trading session: ``python scripts/run_paper.py configs/paper_perp.toml [--max-bars N]``.

Same as ``nautilus-app paper CONFIG``; see docs/paper.md. Stops on SIGINT/SIGTERM (graceful), after
``--max-bars`` bars or ``--max-seconds`` seconds. Prints the results folder on exit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nautilus_app.paper import add_paper_arguments, run_paper_from_args  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="run_paper.py", description=__doc__.split("\n\n")[0])
    add_paper_arguments(p)
    return run_paper_from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
