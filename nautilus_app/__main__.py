"""``python -m nautilus_app`` runs the CLI (:func:`nautilus_app.cli.run`: exits without Python's teardown)."""

from nautilus_app.cli import run

run()
