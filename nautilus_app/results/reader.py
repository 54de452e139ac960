"""The one reader of results folders (backtest, paper, live; written by :mod:`nautilus_app.results.writer`).

Used by the Dash app, research, paper parity, the golden runs and the tearsheet command, so the
folder schema (:mod:`nautilus_app.results.schema`) is read in one place. A folder is *complete* when
its ``metrics.json`` exists (a backtest's folder appears with everything at once; a paper or live
session writes ``metrics.json`` last on every rewrite).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ResultsFolder", "is_complete", "open_results", "read_json"]


def read_json(path: Path) -> dict:
    """A JSON object file; ``{}`` when missing or unreadable (a session may be rewriting it)."""
    try:
        out = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def is_complete(path: str | Path) -> bool:
    """True for a results folder with ``metrics.json`` (hidden staging folders are never complete)."""
    p = Path(path)
    return not p.name.startswith(".") and (p / "metrics.json").is_file()


class ResultsFolder:
    """One results folder: its JSON files and Parquet tables, read on demand (JSON cached per instance).

    Tables that are not in the folder read as empty frames (e.g. ``trades`` of a session before its
    first bar), so callers check ``.empty`` rather than the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._json: dict[str, dict] = {}

    def __repr__(self) -> str:
        return f"ResultsFolder({str(self.path)!r})"

    @property
    def run_id(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return self.path.is_dir()

    def is_complete(self) -> bool:
        return is_complete(self.path)

    def json(self, name: str, *, required: bool = False) -> dict:
        """``<name>`` (e.g. ``"metrics.json"``) as a dict; ``{}`` when missing, unless ``required``.

        Raises:
            FileNotFoundError: ``required`` and the file is missing or not a JSON object.
        """
        if name not in self._json:
            self._json[name] = read_json(self.path / name)
        if required and not self._json[name]:
            raise FileNotFoundError(f"{self.path / name}: missing or not a JSON object")
        return self._json[name]

    @property
    def metrics(self) -> dict:
        return self.json("metrics.json")

    @property
    def info(self) -> dict:
        """``run.json``."""
        return self.json("run.json")

    @property
    def config(self) -> dict:
        """``config.json`` (the validated config as a mapping)."""
        return self.json("config.json")

    @property
    def status(self) -> dict:
        """``status.json`` of a paper or live session."""
        return self.json("status.json")

    @property
    def mode(self) -> str:
        """``backtest``, ``paper`` or ``live`` (``run.json`` ``mode``; backtests do not write one)."""
        return str(self.info.get("mode") or "backtest")

    def has(self, table: str) -> bool:
        return (self.path / f"{table}.parquet").is_file()

    def arrow(self, table: str, columns: list[str] | None = None) -> pa.Table | None:
        """``<table>.parquet`` as an Arrow table (only ``columns`` if given); None when missing."""
        p = self.path / f"{table}.parquet"
        if not p.is_file():
            return None
        return pq.read_table(p, columns=columns)

    def table(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """``<table>.parquet`` as a DataFrame (only ``columns`` if given); empty when missing."""
        p = self.path / f"{table}.parquet"
        if not p.is_file():
            return pd.DataFrame()
        return pd.read_parquet(p, columns=columns)

    def equity(self) -> pd.Series:
        """``equity.parquet``'s ``equity`` column indexed by ``ts`` (UTC)."""
        eq = self.table("equity", columns=["ts", "equity"])
        if eq.empty:
            return pd.Series(dtype=float, name="equity")
        return eq.set_index("ts")["equity"]

    def starting_equity(self) -> float | None:
        v: Any = self.metrics.get("starting_equity")
        return None if v is None else float(v)


def open_results(path: str | Path) -> ResultsFolder:
    """The :class:`ResultsFolder` at ``path``."""
    return ResultsFolder(path)
