"""Fault injection: kill -9 an import into each store at seeded random moments and at every step
of the commit (issue 20), then check that what is stored is readable, is exactly the old or the
new state (no holes, no overlaps, no duplicates), shows no staging files, and that re-running the
import gives the same state as an import that was never interrupted.

Real data: 20 days of Binance BTCUSDT spot 1m klines (2019-11-01..20) from the shared mirror,
imported over a catalog already holding 2019-11-05..08 and 2019-11-15..16 (so the import writes
several blocks around stored files, and the compact store merges and replaces its month file).

``CRASH_KILLS=50`` runs 50 random kills per store (default 3: a few in CI); ``CRASH_SEED`` seeds them.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog.atomic import FAULT_POINTS
from catalog.binance_vision import import_binance_vision
from core.paths import REPO_ROOT, shared_data_dir

SRC = shared_data_dir() / "binance-vision" / "data/spot/daily/klines/BTCUSDT/1m"
BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
DAYS = [f"2019-11-{d:02d}" for d in range(1, 21)]
PRE = [(f"2019-11-{a:02d}", f"2019-11-{b:02d}") for a, b in ((5, 8), (15, 16))]
KILLS = int(os.environ.get("CRASH_KILLS", "3"))
SEED = int(os.environ.get("CRASH_SEED", "20"))

pytestmark = pytest.mark.skipif(not (SRC / "BTCUSDT-1m-2019-11-20.zip").exists(), reason="shared data missing")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local Binance Vision folder holding the 20 daily zips (symlinks to the shared files)."""
    base = tmp_path_factory.mktemp("bv")
    d = base / "data/spot/daily/klines/BTCUSDT/1m"
    d.mkdir(parents=True)
    for day in DAYS:
        for suffix in (".zip", ".zip.CHECKSUM"):
            (d / f"BTCUSDT-1m-{day}{suffix}").symlink_to(SRC / f"BTCUSDT-1m-{day}{suffix}")
    return base


def cli_args(catalog: Path, source: Path, store: str) -> list[str]:
    return [sys.executable, "-m", "nautilus_app", "import-binance-vision", "--catalog", str(catalog),
            "--base-url", str(source), "--symbols", "BTCUSDT", "--start", DAYS[0], "--end", DAYS[-1],
            "--store", store, "--metadata", "offline"]


def bar_folder(catalog: Path, store: str) -> Path:
    return catalog / ("compact/bars" if store == "compact" else "data/bars") / BAR


def state(catalog: Path, store: str) -> tuple[tuple[str, ...], pa.Table]:
    """(file names, all stored bars sorted) of the bar folder; checks no overlaps/duplicates/strays."""
    from catalog.compact import _parse_name, read_arrays

    folder = bar_folder(catalog, store)
    names = tuple(sorted(p.name for p in folder.iterdir())) if folder.is_dir() else ()
    assert all(n.endswith(".parquet") and not n.startswith(".") for n in names), f"stray files in {folder}: {names}"
    spans = sorted(_parse_name(n[: -len(".parquet")]) for n in names)
    for (_a0, a1), (b0, _) in zip(spans, spans[1:], strict=False):
        assert a1 < b0, f"files overlap in time: {names}"
    if store == "compact":
        arrs, _, _ = read_arrays(catalog, BAR)
        t = pa.table({k: arrs[k] for k in ("ts", "open", "high", "low", "close", "volume")})
    else:
        parts = [pq.read_table(folder / n, columns=["ts_init", "open", "high", "low", "close", "volume"])
                 for n in names]
        t = pa.concat_tables(parts) if parts else pa.table({"ts_init": pa.array([], pa.uint64())})
        t = t.rename_columns(["ts", *t.column_names[1:]]).sort_by("ts")
        if t.num_rows:  # Nautilus can read every file, and gets the same number of bars
            from nautilus_trader.persistence import ParquetDataCatalog

            assert len(ParquetDataCatalog(str(catalog)).query_bars([BAR])) == t.num_rows
    ts = np.asarray(pc.cast(t["ts"], pa.int64()).to_numpy()) if t.num_rows else np.array([], np.int64)
    assert ts.size == 0 or np.all(np.diff(ts) > 0), "duplicate or unsorted bars"
    return names, t


def prepare(catalog: Path, source: Path, store: str) -> None:
    """The pre-existing state: two stored windows inside the range the import covers."""
    import shutil

    shutil.rmtree(catalog, ignore_errors=True)
    for a, b in PRE:
        import_binance_vision(catalog, base_url=source, symbols=["BTCUSDT"], start=a, end=b, store=store,
                              metadata="offline")


def run_cli(args: list[str], env: dict | None = None, kill_after: float | None = None) -> tuple[int, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=REPO_ROOT, env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, -signal.SIGKILL), (proc.returncode, out.decode()[-2000:], err.decode()[-2000:])
    return proc.returncode, time.perf_counter() - t0


@pytest.mark.parametrize("store", ["nautilus", "compact"])
def test_kill_during_import_leaves_old_or_new_state(tmp_path: Path, source: Path, store: str) -> None:
    ref = tmp_path / "ref"
    rc, seconds = run_cli(cli_args(ref, source, store))  # uninterrupted: the new state, and the timing
    assert rc == 0
    new_names, new_rows = state(ref, store)
    assert new_rows.num_rows == 25_777  # what the 20 shared daily files hold (gaps incl. the 2019-11-13 stops)

    work = tmp_path / "work"
    prepare(work, source, store)
    old_names, old_rows = state(work, store)
    assert 0 < old_rows.num_rows < new_rows.num_rows

    rng = random.Random(f"{SEED}-{store}")
    plans = [("fault", p) for p in FAULT_POINTS] + [("kill", rng.uniform(0.3, 1.1) * seconds) for _ in range(KILLS)]
    outcomes = []
    for kind, what in plans:
        env = {"NAUTILUS_FAULT_AT": what} if kind == "fault" else None
        rc, _ = run_cli(cli_args(work, source, store), env=env, kill_after=None if kind == "fault" else what)
        names, rows = state(work, store)
        if rows.equals(old_rows):
            outcomes.append("old")
            assert names == old_names
        else:
            assert rows.equals(new_rows), f"{kind} {what}: neither the old nor the new state ({rows.num_rows} rows)"
            outcomes.append("new")
            prepare(work, source, store)  # back to the old state for the next kill
        if kind == "fault":  # killed at that step: before the swap the old state, after it the new one
            assert rc == -signal.SIGKILL
            assert outcomes[-1] == ("old" if what in ("staged", "linked") else "new"), (what, outcomes)
    # an interrupted state, then the import re-run: identical to the uninterrupted import
    run_cli(cli_args(work, source, store), env={"NAUTILUS_FAULT_AT": "linked"})
    assert (work / ".staging").is_dir()  # the killed writer's staging (hidden) ...
    rc, _ = run_cli(cli_args(work, source, store))
    assert rc == 0
    names, rows = state(work, store)
    assert rows.equals(new_rows)
    assert not (work / ".staging").exists()  # ... removed by the next command
    rc, _ = run_cli(cli_args(work, source, store))  # a re-run writes nothing
    assert rc == 0 and state(work, store)[0] == names
    print(f"{store}: {len(plans)} kills -> {outcomes.count('old')} old, {outcomes.count('new')} new state")
