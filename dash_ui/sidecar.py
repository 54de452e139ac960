"""Persisted per-run overview cache ("sidecar") so the first open of a big run's detail page is fast.

The detail page's first render needs only small things: the downsampled equity/benchmark/drawdown
curves over the whole run, the monthly return table, and the candles (at the automatic timeframe) with
the strategy indicators sampled at each candle close. Computing them for a 5-year 1-minute run means
reading 2.6M equity rows and 2.6M catalog bars (~2 s on the 2-core machine). They are computed once and
stored as small ``.npz`` files (a few hundred kB) in

    <results root>/.cache/dash/<run_id>/<name>-<key>.npz

(a dot-folder, so never listed as a run). ``key`` is a hash of everything the content depends on:
:data:`CACHE_VERSION`, the size and modification time of ``equity.parquet`` and ``metrics.json``, the
number of points, and for candles the bar type, the names/sizes/mtimes of the catalog's Parquet files,
the strategies' parameters and the run period. A changed input gives a new key (the stale file is
removed when the new one is written). Files are written to a temporary name and renamed (atomic).

Only the overview (no zoom) is cached: a zoom re-downsamples from every sample as before, and trades
are never cached (markers are always built from ``trades.parquet``, exact).

:mod:`dash_ui.warmup` runs a daemon thread that builds the sidecars of the newest runs when the app
starts and then every ``interval_s`` seconds (runs finished by the launcher are picked up). This module
is below :mod:`dash_ui.charts` (which builds the arrays it caches) and imports nothing of the app.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Bump when the content or the computation of a sidecar changes.
CACHE_VERSION = 1

log = logging.getLogger(__name__)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def cache_dir(run) -> Path:
    """``<results root>/.cache/dash/<run_id>`` of a :class:`dash_ui.data.Run`."""
    return run.path.parent / ".cache" / "dash" / run.path.name


def stat_key(path: Path) -> list:
    """Name, size and modification time (ns) of a file (a cache key part); Nones when it is missing."""
    try:
        st = path.stat()
        return [path.name, st.st_size, st.st_mtime_ns]
    except OSError:
        return [path.name, None, None]


def _digest(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def load_or_build(run, name: str, key_parts: object, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The cached arrays ``name`` of ``run`` for ``key_parts``: from memory, else from the sidecar file,
    else ``build()`` (then written atomically, older files of the same ``name`` removed).

    Args:
        run: a :class:`dash_ui.data.Run`.
        name: file name prefix (``equity``, ``candles-<hash of bar type>``).
        key_parts: JSON-able description of every input (see the module docstring).
        build: computes ``{array name: numpy array}`` (no object arrays).

    A corrupt or unreadable file is rebuilt; a failed write (read-only results folder) is logged and the
    built arrays are still returned.
    """
    key = _digest([CACHE_VERSION, name, key_parts])
    mem_key = ("sidecar", name, key)
    with run._lock:
        hit = run._cache.get(mem_key)
    if hit is not None:
        return hit
    folder = cache_dir(run)
    path = folder / f"{name}-{key}.npz"
    with _lock_for(str(path)):
        with run._lock:
            hit = run._cache.get(mem_key)
        if hit is not None:
            return hit
        data = None
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    data = {k: z[k] for k in z.files}
            except (OSError, ValueError) as exc:
                log.warning("sidecar %s unreadable (%s); rebuilding", path, exc)
        if data is None:
            data = build()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{name}-{key}.{os.getpid()}.{threading.get_ident()}.tmp.npz"
                np.savez(tmp, **data)
                os.replace(tmp, path)
                for old in folder.glob(f"{name}-*.npz"):
                    if old != path:
                        old.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not write sidecar %s: %s", path, exc)
        with run._lock:
            run._cache[mem_key] = data
        return data


def catalog_signature(catalog_root: Path, bar_type: str) -> list:
    """Names, sizes and mtimes of the Parquet files of ``bar_type`` in the catalog (cache key part)."""
    from catalog.reader import bar_files

    files = bar_files(Path(catalog_root), bar_type)
    return [str(catalog_root), bar_type, [stat_key(f) for f in files]]
