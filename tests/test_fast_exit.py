"""``nautilus-app backtest`` as a process ends without Python's teardown (``nautilus_app.cli.fast_exit``), yet
keeps everything a normal exit delivers: the results folder, the printed summary, ``atexit`` callbacks (a user's
strategy may register one), and threads a strategy left running are still waited for.

Real data: one week of the freqtrade BTC/USDT 1m feather, the plain Nautilus EMA cross kept outside the
repository (tests/fixtures/plain_ema.py), run twice as a subprocess: as shipped and with
``NAUTILUS_APP_FAST_EXIT=0``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.paths import REPO_ROOT
from tests.test_user_strategies import STRATEGY_CLASS_ATTRS, catalog, run_config, write  # noqa: F401 (fixture)

# Appended to the user's strategy module: an atexit callback, an object whose __del__ only runs when the
# interpreter frees the module at teardown, and (MARK_THREAD set) a non-daemon thread started by on_stop
# that writes its file half a second later.
EXIT_PROBES = '''
import atexit as _atexit
import os as _os
import threading as _threading
import time as _time


def _mark(name: str, text: str) -> None:
    with open(_os.path.join(_os.environ["MARK_DIR"], name), "w") as f:
        f.write(text)


_atexit.register(_mark, "atexit", "ran")


class _FreedAtTeardown:
    def __del__(self, _path=_os.path.join(_os.environ["MARK_DIR"], "teardown"), _os=_os) -> None:
        fd = _os.open(_path, _os.O_WRONLY | _os.O_CREAT)
        _os.write(fd, b"ran")
        _os.close(fd)


# held by a module of its own in sys.modules: the interpreter's teardown clears those modules, which frees it
_sys_probe = __import__("types").ModuleType("_teardown_probe")
_sys_probe.probe = _FreedAtTeardown()
__import__("sys").modules["_teardown_probe"] = _sys_probe
del _sys_probe

_plain_on_stop = PlainEMACross.on_stop


def _on_stop(self) -> None:
    _plain_on_stop(self)
    if _os.environ.get("MARK_THREAD"):
        _threading.Thread(target=lambda: (_time.sleep(0.5), _mark("thread", "done"))).start()


PlainEMACross.on_stop = _on_stop
'''


def _run(folder: Path, cfg: Path, tag: str, **env: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    marks = folder / f"marks_{tag}"
    marks.mkdir()
    results = folder / f"results_{tag}"
    proc = subprocess.run(
        [sys.executable, "-m", "nautilus_app", "backtest", str(cfg), "--no-progress", "--results-dir", str(results)],
        capture_output=True, text=True, cwd=folder, timeout=300,
        env={**os.environ, "MARK_DIR": str(marks), "PYTHONPATH": str(REPO_ROOT), **env},
    )
    return proc, marks, results


def _setup(tmp_path: Path, catalog: Path) -> tuple[Path, Path]:  # noqa: F811 (the catalog fixture's value)
    folder = tmp_path / "my_research"
    folder.mkdir()
    write(folder, "plain_ema.py", STRATEGY_CLASS_ATTRS + EXIT_PROBES)
    cfg = write(folder, "run.toml", run_config('strategy_path = "plain_ema.py:PlainEMACross"'), catalog)
    return folder, cfg


def _metrics(results: Path) -> dict:
    runs = [p for p in results.iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1, runs
    assert {"fills.parquet", "orders.parquet", "equity.parquet", "run.json"} <= {p.name for p in runs[0].iterdir()}
    return json.loads((runs[0] / "metrics.json").read_text())


def test_backtest_process_skips_only_the_teardown(tmp_path: Path, catalog: Path) -> None:  # noqa: F811
    folder, cfg = _setup(tmp_path, catalog)
    fast, fast_marks, fast_results = _run(folder, cfg, "fast")
    slow, slow_marks, slow_results = _run(folder, cfg, "normal", NAUTILUS_APP_FAST_EXIT="0")
    for proc in (fast, slow):
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Results" in proc.stdout and "By instrument" in proc.stdout  # the summary was flushed
    m_fast, m_slow = _metrics(fast_results), _metrics(slow_results)
    assert m_fast["trades"] == m_slow["trades"] > 0 and m_fast["final_equity"] == m_slow["final_equity"]
    # atexit callbacks run either way; only the normal exit frees the module (its object's __del__ runs)
    assert (fast_marks / "atexit").read_text() == "ran" and (slow_marks / "atexit").read_text() == "ran"
    assert (slow_marks / "teardown").exists()
    assert not (fast_marks / "teardown").exists()


def test_a_thread_the_strategy_left_running_is_waited_for(tmp_path: Path, catalog: Path) -> None:  # noqa: F811
    """A non-daemon thread still running when the command is done: the exit waits for it, as Python's does."""
    folder, cfg = _setup(tmp_path, catalog)
    proc, marks, results = _run(folder, cfg, "thread", MARK_THREAD="1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _metrics(results)["trades"] > 0
    assert (marks / "thread").read_text() == "done"
    assert (marks / "atexit").read_text() == "ran"
