"""Removing what killed writers leave behind in the results folder (issue 20).

A results writer builds ``results/.<run_id>.partial`` and renames it into place when complete, so a
kill leaves a hidden partial folder (never listed as a run) that nothing used to remove. The next
command calls :func:`cleanup_stale_results`:

* a partial folder holding an owner marker (``.owner``: ``<pid>-<process start time>``, written by
  :func:`mark_owner`) is removed when that process is gone (pid reuse is detected by the start time);
* a partial folder without a marker (writers that do not mark) is removed when nothing in it changed
  for :data:`STALE_AFTER_S` seconds (a writer fills its folder in seconds);
* the same for ``.<name>.json.tmp`` files of the job store (``results/.jobs``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from catalog.atomic import owner_alive, owner_tag

OWNER_FILE = ".owner"
#: a partial folder without an owner marker and unchanged this long is stale
STALE_AFTER_S = 15 * 60


def mark_owner(stage: Path) -> None:
    """Write this process's owner marker into a staging folder."""
    (Path(stage) / OWNER_FILE).write_text(owner_tag())


def _newest_mtime(p: Path) -> float:
    try:
        t = p.stat().st_mtime
    except OSError:
        return 0.0
    if p.is_dir():
        for q in p.rglob("*"):
            try:
                t = max(t, q.stat().st_mtime)
            except OSError:
                continue
    return t


def is_stale(stage: Path, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether a ``.<id>.partial`` folder (or temp file) was left by a writer that is gone."""
    marker = stage / OWNER_FILE
    if stage.is_dir() and marker.is_file():
        try:
            return not owner_alive(marker.read_text().strip())
        except OSError:
            return False
    now = time.time() if now is None else now
    return now - _newest_mtime(stage) > stale_after_s


def cleanup_stale_results(results_root: Path, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove stale ``.<id>.partial`` folders (nested ones of sweeps too, one level down) and stale
    ``.jobs/.*.tmp`` files under ``results_root``; returns what was removed."""
    root = Path(results_root)
    if not root.is_dir():
        return []
    now = time.time()
    removed: list[Path] = []
    candidates = list(root.glob(".*.partial")) + list(root.glob("*/.*.partial")) + list(root.glob(".jobs/.*.tmp"))
    for p in candidates:
        if is_stale(p, now, stale_after_s):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed
