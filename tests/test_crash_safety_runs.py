"""kill -9 during a backtest and during a sweep (issue 20): no visible half-written results, stale
staging removed by the next command, and a re-run gives the same results as an uninterrupted run.

Seeded kill moments (``CRASH_SEED``); ``CRASH_KILLS`` (default 2) kills per case. Real data: one week
of BTCUSDT spot 1m bars from the Binance Vision mirror. The reference digests come from uninterrupted
runs of the same configs, not from stored numbers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import REPO_ROOT, shared_data_dir

KILLS = int(os.environ.get("CRASH_KILLS", "2"))
SEED = int(os.environ.get("CRASH_SEED", "7"))
BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash_cat")
    import_binance_vision(root, base_url=str(shared_data_dir() / "binance-vision"), market="spot",
                          symbols=("BTCUSDT",), interval="1m", start="2025-06-01", end="2025-06-07", kinds=("klines",))
    return root


def write_config(folder: Path, catalog: Path) -> Path:
    path = folder / "run.toml"
    path.write_text(textwrap.dedent(f'''
        name = "crash"
        bar_types = ["{BAR}"]
        start = "2025-06-01"
        end = "2025-06-08"
        catalog = "{catalog}"
        tearsheet = true
        [[venues]]
        name = "BINANCE"
        account_type = "CASH"
        starting_balances = ["100000 USDT"]
        [[strategies]]
        name = "ema_cross"
        [strategies.params]
        instrument_id = "BTCUSDT.BINANCE"
        bar_type = "{BAR}"
        fast_period = 10
        slow_period = 30
        '''))
    return path


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "nautilus_app", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL the process group after ``seconds``; False if it had already finished."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def visible_runs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if not p.name.startswith(".")) if results.exists() else []


def digest(run: Path) -> str:
    return json.loads((run / "run.json").read_text())["results_digest"]


def test_killed_backtests_leave_no_visible_half_results(catalog: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, catalog)
    ref_root = tmp_path / "reference"
    assert cli("backtest", str(cfg), "--no-progress", "--results-dir", str(ref_root)).wait() == 0
    [ref] = visible_runs(ref_root)
    t0 = time.monotonic()
    # how long a whole run takes: kills are drawn inside it (start-up, engine, results writing)
    assert cli("backtest", str(cfg), "--no-progress", "--results-dir", str(tmp_path / "timing")).wait() == 0
    whole = time.monotonic() - t0
    rng = random.Random(SEED)
    results = tmp_path / "results"
    killed = 0
    for _ in range(KILLS):
        if kill_after(cli("backtest", str(cfg), "--no-progress", "--results-dir", str(results)),
                      rng.uniform(0.3, 1.0) * whole):
            killed += 1
        for run in visible_runs(results):  # whatever is visible is complete and correct
            assert (run / "metrics.json").exists() and (run / "tearsheet.html").exists()
            assert digest(run) == digest(ref)
    assert killed >= 1
    # the next command removes staging folders of the killed writers, then runs to the same result
    assert cli("backtest", str(cfg), "--no-progress", "--results-dir", str(results)).wait() == 0
    assert not [p for p in results.iterdir() if p.name.startswith(".") and p.name.endswith(".partial")]
    runs = visible_runs(results)
    assert runs and all(digest(r) == digest(ref) for r in runs)


def test_killed_sweep_resumes_to_the_same_ranking(catalog: Path, tmp_path: Path) -> None:
    write_config(tmp_path, catalog)  # the sweep's base_config
    sweep = tmp_path / "sweep.toml"

    def sweep_file(name: str) -> Path:
        sweep.write_text(textwrap.dedent(f'''
            name = "{name}"
            base_config = "run.toml"
            strategy = 0
            method = "grid"
            objective = "total_return"
            executor = "process"
            workers = 2
            results_root = "{tmp_path / 'sweeps'}"
            registry = "sqlite:///{tmp_path / 'registry.sqlite'}"
            [params.fast_period]
            values = [5, 10, 15, 20]
            '''))
        return sweep

    assert cli("sweep", str(sweep_file("reference"))).wait() == 0
    t0 = time.monotonic()
    assert cli("sweep", str(sweep_file("timing"))).wait() == 0
    whole = time.monotonic() - t0
    rng = random.Random(SEED + 1)
    for _ in range(KILLS):
        kill_after(cli("sweep", str(sweep_file("killed"))), rng.uniform(0.3, 0.9) * whole)
    assert cli("sweep", str(sweep_file("killed"))).wait() == 0  # resumes: finished trials are skipped

    from nautilus_app.research.registry import Registry

    reg = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    try:
        ref = reg.query_runs(sweep="reference")
        got = reg.query_runs(sweep="killed")
        assert sorted(got["status"]) == ["done"] * 4
        by = {r["params"]["fast_period"]: r["objective"] for _, r in ref.iterrows()}
        assert {r["params"]["fast_period"]: r["objective"] for _, r in got.iterrows()} == by
        for _, r in got.iterrows():  # every recorded run folder is complete
            assert (Path(r["results_path"]) / "metrics.json").exists()
    finally:
        reg.close()
