"""Serve the results app: ``python scripts/run_dash.py [--host 127.0.0.1] [--port 8050] [--results-dir DIR]``.

Same as ``nautilus-app dash`` (see docs/dash.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dash_ui.app import add_arguments, serve  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="run_dash.py", description="Serve the results app and JSON API")
    add_arguments(parser)
    sys.exit(serve(parser.parse_args()))
