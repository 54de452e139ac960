"""What the pages, the API and the warm-up thread share (:class:`AppContext`), below all of them.

:mod:`dash_ui.app` builds one context per app; :mod:`dash_ui.api`, :mod:`dash_ui.pages` and
:mod:`dash_ui.warmup` receive it. Nothing here imports those modules, so imports point one way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dash_ui.data import ResultsStore
from dash_ui.jobs import JobRunner


@dataclass
class AppContext:
    """What the pages and the API share: results store, catalog root, job runner."""

    store: ResultsStore
    catalog_root: Path
    jobs: JobRunner
    warm_stop: threading.Event | None = None
    registry_url: str = ""
    _registry: object | None = field(default=None, repr=False)
    _inv: tuple | None = field(default=None, repr=False)
    _inv_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _catalog_signature(self) -> tuple:
        data = self.catalog_root / "data"
        if not data.is_dir():
            return ()
        return tuple(sorted((str(p.relative_to(data)), p.stat().st_size) for p in data.glob("*/*/*.parquet")))

    def inventory(self) -> pd.DataFrame:
        """``catalog.inventory.catalog_inventory`` of the catalog, recomputed when its files change."""
        from catalog.inventory import COLUMNS, catalog_inventory

        sig = self._catalog_signature()
        with self._inv_lock:
            if self._inv is not None and self._inv[0] == sig:
                return self._inv[1]
        inv = catalog_inventory(self.catalog_root) if sig else pd.DataFrame(columns=COLUMNS)
        with self._inv_lock:
            self._inv = (sig, inv)
        return inv

    def bar_types(self) -> list[str]:
        """Bar types stored in the catalog."""
        inv = self.inventory()
        return sorted(inv.loc[inv["kind"] == "bars", "identifier"].tolist())
