"""``python -m nautilus_app`` runs the CLI."""

import sys

from nautilus_app.cli import main

sys.exit(main())
