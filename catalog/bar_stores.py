"""One interface over the two places bars are stored: Nautilus's ``ParquetDataCatalog`` and the compact
store (:mod:`catalog.compact`). Callers get a :class:`BarStore` for a bar type from
:func:`open_bar_store` and ask it for columns or Nautilus ``Bar`` objects, instead of dispatching on
the store's name (``"nautilus"`` / ``"compact"``, still recorded in ``run.json`` ``bar_stores``).

Windows are half-open on ``ts_init`` (the bar close, UTC ns; None = unbounded), like the backtest plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from catalog.reader import _compact_columns, bar_store, read_columns

__all__ = ["BarStore", "CompactBarStore", "NautilusBarStore", "open_bar_store"]


class BarStore(Protocol):
    """Bars of one catalog root, from one kind of store."""

    name: str
    root: Path

    def columns(self, bar_type: str, columns: list[str], start_ns: int | None = None,
                end_ns: int | None = None) -> pa.Table:
        """Columns in Nautilus's schema (``ts_init`` uint64, prices/volume decimal128(38, 16)), file order."""
        ...

    def bars(self, bar_type: str, start_ns: int | None = None, end_ns: int | None = None) -> list[Any]:
        """Nautilus ``Bar`` objects, sorted by ``ts_init``."""
        ...


class NautilusBarStore:
    """Bars in Nautilus's own catalog (``<root>/data/bars/<bar type>/``)."""

    name = "nautilus"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._catalog: Any = None

    def columns(self, bar_type: str, columns: list[str], start_ns: int | None = None,
                end_ns: int | None = None) -> pa.Table:
        return read_columns(self.root, "bars", bar_type, columns, start_ns, end_ns)

    def bars(self, bar_type: str, start_ns: int | None = None, end_ns: int | None = None) -> list[Any]:
        if self._catalog is None:
            from nautilus_trader.persistence import ParquetDataCatalog

            self._catalog = ParquetDataCatalog(str(self.root))
        # the catalog's start/end are inclusive
        return self._catalog.query_bars([bar_type], start=start_ns, end=None if end_ns is None else end_ns - 1)


class CompactBarStore:
    """Bars in the compact store (``<root>/compact/bars/<bar type>/``, :mod:`catalog.compact`)."""

    name = "compact"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def columns(self, bar_type: str, columns: list[str], start_ns: int | None = None,
                end_ns: int | None = None) -> pa.Table:
        return _compact_columns(self.root, bar_type, columns, start_ns, end_ns)

    def bars(self, bar_type: str, start_ns: int | None = None, end_ns: int | None = None) -> list[Any]:
        from catalog.compact_loader import load_bars

        return load_bars(self.root, bar_type, start_ns, end_ns)


def open_bar_store(root: str | Path, bar_type: str) -> BarStore:
    """The store holding ``bar_type``'s bars under ``root``: Nautilus's catalog if it has files for it,
    else the compact store if it has, else Nautilus's catalog (nothing stored; reads come back empty)."""
    return CompactBarStore(root) if bar_store(Path(root), bar_type) == "compact" else NautilusBarStore(root)
