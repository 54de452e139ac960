"""The worker-process runner (nautilus_app/worker_process.py) shared by the Dash launcher and research
sweeps: structured progress events and the result arrive on their own pipes, stdin and stderr are
handed over, a process that exits while a grandchild still holds its pipes is noticed, and several
workers are pumped at once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from core.paths import REPO_ROOT
from nautilus_app.worker_process import WorkerProcess, wait_any

CHILD = """
import argparse, subprocess, sys, time
from nautilus_app.worker_process import ProgressWriter, write_result

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("--result-fd", type=int)
p.add_argument("--progress-fd", type=int)
a = p.parse_args()
if a.mode == "report":
    w = ProgressWriter(a.progress_fd)
    w.event("loading data")
    for f in (0.25, 0.5, 1.0):
        w(f)
    print("noise on stderr", file=sys.stderr)
    write_result(a.result_fd, {"ok": True, "stdin": sys.stdin.read()})
elif a.mode == "orphan":  # exits at once, a grandchild keeps the result pipe open
    g = subprocess.Popen(["sleep", "30"], pass_fds=(a.result_fd,))
    print(f"grandchild {g.pid}", file=sys.stderr, flush=True)
    sys.exit(3)
else:  # sleep N, then a result
    time.sleep(float(a.mode))
    write_result(a.result_fd, {"slept": float(a.mode)})
"""


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "wp_child.py").write_text(CHILD)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(tmp_path)]))


def test_progress_result_stdin_and_stderr(tmp_path: Path) -> None:
    events: list[dict] = []
    w = WorkerProcess("wp_child", ["report"], stdin=b"the job", env=_env(tmp_path), cwd=tmp_path,
                      capture_output=True, on_progress=events.append)
    out = w.run()
    assert out.returncode == 0 and out.result == {"ok": True, "stdin": "the job"}
    assert "noise on stderr" in out.stderr
    assert events == [{"stage": "loading data"}, {"stage": "simulating", "progress": 0.25},
                      {"stage": "simulating", "progress": 0.5}, {"stage": "writing results", "progress": 1.0}]


def test_exit_is_noticed_while_a_grandchild_holds_the_pipe(tmp_path: Path) -> None:
    w = WorkerProcess("wp_child", ["orphan"], env=_env(tmp_path), cwd=tmp_path, capture_output=True)
    t0 = time.monotonic()
    out = w.run()
    pid = int(out.stderr.split("grandchild ")[1].split()[0])
    os.kill(pid, signal.SIGKILL)
    assert out.returncode == 3 and out.result is None
    assert time.monotonic() - t0 < 15  # not the grandchild's 30 s


def test_wait_any_returns_the_first_to_end_and_kill(tmp_path: Path) -> None:
    env = _env(tmp_path)
    slow, fast, killed = (WorkerProcess("wp_child", [s], env=env, cwd=tmp_path) for s in ("20", "0.2", "20"))
    for w in (slow, fast, killed):
        w.start()
    assert wait_any([slow, fast, killed], timeout=15) == [fast]
    assert fast.finish().result == {"slept": 0.2}
    assert wait_any([slow, killed], timeout=0.2) == []
    killed.kill()
    ended = wait_any([slow, killed], timeout=5)
    assert ended == [killed] and killed.finish().returncode != 0
    slow.kill()
    assert slow.done
