"""All-or-nothing commits of one data folder (one symbol and kind) in both stores, and staging hygiene.

Every write of a data kind of one identifier (``data/bars/<bar type>/``, ``data/funding_rates/<id>/``,
``data/mark_prices/<id>/``, ``data/trades/<id>/`` in Nautilus's catalog, ``compact/bars/<bar type>/``
in the compact store) goes through :class:`Staging`:

1. the new files are written into a private staging folder ``<root>/.staging/<owner>/<same rel path>``
   (same filesystem; readers never look into ``.staging``);
2. the files of the live folder that stay are hard-linked next to them (files a merge replaces are
   left out), so the staged folder is the complete new state;
3. **one** ``renameat2(RENAME_EXCHANGE)`` swaps the staged folder with the live one (a plain
   ``rename`` when the live folder does not exist yet). A reader lists either the old or the new
   folder, never a mix; files it already opened stay valid (same inodes);
4. the old folder, now in staging, is removed.

A kill -9 at any moment therefore leaves the old state (before step 3) or the new one (after),
never a hole (some months of an import missing) or an overlap (a merged file next to the files it
replaces). Writers of one catalog are serialised by an ``flock`` on ``<root>/.import.lock`` (held
from reading what is stored until the swap), so two imports cannot swap out each other's files.

Stale leftovers: a staging folder is named ``<pid>-<process start time>-<random>``; the next command
(:func:`cleanup_stale_staging`, called by ``open_catalog``/``ensure_catalog_root`` and every writer)
removes those whose process is gone (or whose pid now belongs to a process started at another
time), plus ``.<name>.<pid>.<random>.tmp`` files older code left inside compact folders.

Fault injection (tests): ``NAUTILUS_FAULT_AT=<point>`` SIGKILLs the process at a named point
(:data:`FAULT_POINTS`), ``NAUTILUS_FAULT_AT=<point>:<n>`` at its n-th pass (1-based).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import signal
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

STAGING_DIR = ".staging"
LOCK_FILE = ".import.lock"
#: where :func:`fault` can kill the process (tests/test_crash_safety.py)
FAULT_POINTS = ("staged", "linked", "exchanged", "committed")

_fault_counts: dict[str, int] = {}


def fault(point: str) -> None:
    """SIGKILL this process when ``$NAUTILUS_FAULT_AT`` names ``point`` (optionally ``point:n``)."""
    spec = os.environ.get("NAUTILUS_FAULT_AT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _fault_counts[point] = _fault_counts.get(point, 0) + 1
    if _fault_counts[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- owners


def _start_time(pid: int) -> str | None:
    """Start time of process ``pid`` (clock ticks since boot, /proc/<pid>/stat field 22), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tag() -> str:
    """``<pid>-<start time>`` of this process: names staging folders and marks writers."""
    return f"{os.getpid()}-{_start_time(os.getpid()) or 0}"


def owner_alive(tag: str) -> bool:
    """Whether the process that made ``<pid>-<start time>[-...]`` still runs (pid reuse detected
    by the start time). Tags of the old form ``<pid>-<uuid>`` are judged by the pid alone."""
    parts = tag.split("-")
    if not parts[0].isdigit():
        return False
    pid = int(parts[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if len(parts) >= 2 and parts[1].isdigit():
        st = _start_time(pid)
        return st is None or st == parts[1]
    return True


_LIVE: set[str] = set()


def cleanup_stale_staging(root: str | Path) -> list[Path]:
    """Remove staging folders and temp files left by dead processes (killed writers) under ``root``.
    Returns what was removed."""
    root = Path(root)
    removed: list[Path] = []
    base = root / STAGING_DIR
    if base.is_dir():
        for d in base.iterdir():
            if d.name in _LIVE or owner_alive(d.name):
                continue
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
            removed.append(d)
        try:
            base.rmdir()
        except OSError:
            pass
    for folder in (root / "compact" / "bars", root / "data"):
        if not folder.is_dir():
            continue
        for tmp in folder.glob("*/*.tmp") if folder.name == "bars" else folder.glob("*/*/*.tmp"):
            parts = tmp.name.split(".")  # .<name>.parquet.<pid>.<random>.tmp
            pid = next((p for p in reversed(parts) if p.isdigit()), None)
            if pid is None or not owner_alive(pid):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


# --------------------------------------------------------------------------- lock


_proc_locks: dict[str, tuple[int, int]] = {}
_proc_lock_guard = threading.RLock()


@contextmanager
def import_lock(root: str | Path):
    """Exclusive, re-entrant (per process) write lock of the catalog at ``root``."""
    key = str(Path(root).resolve())
    with _proc_lock_guard:
        fd, depth = _proc_locks.get(key, (-1, 0))
        if depth == 0:
            Path(root).mkdir(parents=True, exist_ok=True)
            fd = os.open(os.path.join(key, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        _proc_locks[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _proc_locks[key]
            if depth == 1:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                del _proc_locks[key]
            else:
                _proc_locks[key] = (fd, depth - 1)


# --------------------------------------------------------------------------- exchange


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """Atomically swap two existing directories (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    r = _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"cannot swap {a} and {b} atomically: {os.strerror(e)}")


class Staging:
    """A private staging area ``<root>/.staging/<owner>-<random>`` whose folders replace live
    folders of the catalog in one atomic step each (:meth:`commit_dir`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.name = f"{owner_tag()}-{uuid.uuid4().hex[:12]}"
        self.path = self.root / STAGING_DIR / self.name
        self.path.mkdir(parents=True)
        _LIVE.add(self.name)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dir(self, rel: str | Path) -> Path:
        """The staged counterpart of the live folder ``<root>/<rel>`` (created)."""
        p = self.path / rel
        p.mkdir(parents=True, exist_ok=True)
        return p

    def commit_dir(self, rel: str | Path, remove: set[str] | frozenset[str] = frozenset()) -> None:
        """Make the staged folder ``rel`` the live one, atomically: the live folder's files (except
        the names in ``remove``, and names the staged folder already has) are hard-linked into it,
        then the two folders are swapped. Call with :func:`import_lock` held."""
        staged = self.dir(rel)
        live = self.root / rel
        fault("staged")
        if live.is_dir():
            have = {p.name for p in staged.iterdir()}
            for f in live.iterdir():
                if f.name in remove or f.name in have or f.name.startswith(".") or not f.is_file():
                    continue
                os.link(f, staged / f.name)
            fault("linked")
            exchange(staged, live)
            fault("exchanged")
            shutil.rmtree(staged, ignore_errors=True)  # the old folder
        else:
            live.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staged, live)
            except OSError as e:  # pragma: no cover - only without the lock
                if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise OSError(e.errno, f"{live} appeared during the commit (another writer without the lock)") from e
                raise
            fault("exchanged")
        fault("committed")

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        _LIVE.discard(self.name)
        try:
            (self.root / STAGING_DIR).rmdir()
        except OSError:
            pass
