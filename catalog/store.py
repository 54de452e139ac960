"""Opening the Nautilus ``ParquetDataCatalog`` used by the platform."""

from __future__ import annotations

from pathlib import Path

from nautilus_trader.persistence import ParquetDataCatalog

from core.paths import default_catalog_path


def open_catalog(path: str | Path | None = None) -> ParquetDataCatalog:
    """Open (creating the directory if needed) the catalog at ``path``.

    ``None`` means :func:`core.paths.default_catalog_path` (``catalog/store``). Leftover
    staging directories of interrupted imports are removed first (see :mod:`catalog.writer`).
    """
    from catalog.writer import cleanup_stale_staging  # local import: writer imports this module

    root = Path(path) if path is not None else default_catalog_path()
    root.mkdir(parents=True, exist_ok=True)
    cleanup_stale_staging(root)
    return ParquetDataCatalog(str(root))


def ensure_catalog_root(path: str | Path | None = None) -> Path:
    """Create the catalog directory if needed (cleaning stale staging dirs) and return it."""
    root = Path(path) if path is not None else default_catalog_path()
    open_catalog(root)
    return root
