"""Errors raised by the importers."""

from __future__ import annotations


class DataImportError(Exception):
    """A source file is corrupt or malformed; nothing of that file was written.

    ``path`` names the file (or URL, or ``zip!member``), ``row`` the 1-based line number in the
    CSV (header included) or the 1-based row in a feather file, or ``None`` when the problem is
    not tied to one row (bad zip, missing column ...).
    """

    def __init__(self, path: str, problem: str, row: int | None = None) -> None:
        self.path = str(path)
        self.row = row
        self.problem = problem
        where = f"{self.path}, row {row}" if row is not None else self.path
        super().__init__(f"{where}: {problem}")
