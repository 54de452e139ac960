"""Worker processes: the one way the app runs a job in a fresh interpreter and hears back from it.

Two users share it:

* the Dash launcher and the JSON API (:class:`dash_ui.jobs.JobRunner`): one backtest per process
  (``python -m dash_ui.worker``), its stderr kept for the error message, its progress shown in the
  page and returned by ``GET /api/backtests/<id>``;
* research sweeps (:class:`nautilus_app.research.execution.ProcessExecutor`): one registry run per
  process (``python -m nautilus_app.research.worker``), output left on the terminal, many at once
  (:func:`wait_any`).

Every job gets a fresh interpreter (never a fork: importing ``nautilus_trader`` starts Rust threads, and
its logger is process-global). Parent and child talk over pipes handed down with ``pass_fds``; the child
is told their numbers as ``--result-fd N`` and ``--progress-fd M``:

| channel | direction | content |
|---|---|---|
| stdin | parent -> child | the job as bytes, when given (research: the job as JSON) |
| result fd | child -> parent | one JSON document written at the end (:func:`write_result`) |
| progress fd (optional) | child -> parent | JSON lines, one event each (:class:`ProgressWriter`): ``{"stage": "loading data"}``, ``{"stage": "simulating", "progress": 0.42}``, ``{"stage": "writing results", "progress": 1.0}`` |
| stdout, stderr | child -> terminal or parent | inherited, or with ``capture_output`` stdout discarded and the last ``tail_bytes`` of stderr kept |

A progress line is written with one ``os.write`` and is far shorter than ``PIPE_BUF``, so it arrives
whole. Nothing parses a progress bar's text: terminal users still get the ``tqdm`` bar
(:class:`nautilus_app.progress.ProgressActor`), workers report the same fraction as events.

A job has ended when all its pipes are closed; when the process has exited but a grandchild it started
still holds a pipe open, what is buffered is read and the pipes are closed anyway.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: longest wait in one ``select`` call: how soon an exited process whose pipes a grandchild still holds
#: is noticed
POLL_S = 0.5


# ---- child side ------------------------------------------------------------------------------------


def write_result(fd: int, result: Any) -> None:
    """Child side: write ``result`` as one JSON document to the result pipe ``fd`` and close it."""
    with os.fdopen(fd, "wb") as fh:
        fh.write(json.dumps(result, default=str).encode())


class ProgressWriter:
    """Child side of the progress pipe: one JSON line per event.

    Called with a fraction (0..1) it is a :class:`~nautilus_app.progress.ProgressActor` sink (pass it
    as ``run_backtest(progress=...)``): stage ``simulating``, then ``writing results`` at 1.0 (the
    engine has reached the end of the data; the results folder is written next).

    Args:
        fd: Write end of the progress pipe (``--progress-fd``); None = report nothing.
    """

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def event(self, stage: str, progress: float | None = None) -> None:
        """Report ``stage`` (and the fraction done). A parent that went away only silences the writer."""
        if self._fd is None:
            return
        ev: dict[str, Any] = {"stage": stage}
        if progress is not None:
            ev["progress"] = round(float(progress), 6)
        try:
            os.write(self._fd, json.dumps(ev).encode() + b"\n")
        except OSError:
            self._fd = None

    def __call__(self, fraction: float) -> None:
        self.event("writing results" if fraction >= 1.0 else "simulating", fraction)


# ---- parent side -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerOutcome:
    """How a worker process ended: exit code, the parsed result document (None when it wrote none or
    not valid JSON) and the kept tail of its stderr (``""`` unless ``capture_output``)."""

    returncode: int
    result: Any
    stderr: str


class WorkerProcess:
    """One job in a fresh interpreter: ``python -m MODULE ARGS... --result-fd N [--progress-fd M]``.

    Args:
        module: Module run with ``-m`` (it must accept ``--result-fd``, and ``--progress-fd`` when
            ``on_progress`` is given).
        args: Arguments before those two.
        python: Interpreter (default: this one).
        stdin: Bytes written to the child's stdin, then closed; None = stdin inherited.
        env, cwd: Of the child (default: this process's).
        capture_output: Discard the child's stdout and keep the last ``tail_bytes`` of its stderr
            (:attr:`WorkerOutcome.stderr`); False = both inherited (shown on the terminal).
        on_progress: Called with each progress event (a dict, see the module docstring), in the
            thread that pumps this worker (:meth:`run`, :meth:`pump` or :func:`wait_any`).
    """

    def __init__(self, module: str, args: Sequence[str] = (), *, python: str | None = None,
                 stdin: bytes | None = None, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
                 capture_output: bool = False, on_progress: Callable[[dict], None] | None = None,
                 tail_bytes: int = 20_000) -> None:
        self.module, self.args, self.python = module, list(args), python or sys.executable
        self.stdin, self.env, self.cwd = stdin, env, cwd
        self.capture_output, self.on_progress, self.tail_bytes = capture_output, on_progress, tail_bytes
        self.proc: subprocess.Popen | None = None
        self._kind: dict[int, str] = {}  # open read fd -> "result" | "progress" | "stderr"
        self._result = bytearray()
        self._partial = b""  # progress bytes after the last newline
        self._err = b""

    # -- start and stop ----------------------------------------------------------------------------

    def start(self) -> subprocess.Popen:
        """Start the process; returns it (``kill()`` it to cancel the job)."""
        res_r, res_w = os.pipe()
        ends, cmd_fds = [res_w], ["--result-fd", str(res_w)]
        self._kind[res_r] = "result"
        if self.on_progress is not None:
            pro_r, pro_w = os.pipe()
            ends.append(pro_w)
            cmd_fds += ["--progress-fd", str(pro_w)]
            self._kind[pro_r] = "progress"
        try:
            self.proc = subprocess.Popen(
                [self.python, "-m", self.module, *self.args, *cmd_fds], pass_fds=tuple(ends),
                stdin=subprocess.PIPE if self.stdin is not None else None,
                stdout=subprocess.DEVNULL if self.capture_output else None,
                stderr=subprocess.PIPE if self.capture_output else None,
                env=None if self.env is None else dict(self.env), cwd=self.cwd)
        except BaseException:
            for fd in list(self._kind):
                os.close(fd)
            self._kind.clear()
            raise
        finally:
            for fd in ends:
                os.close(fd)
        if self.proc.stderr is not None:
            self._kind[self.proc.stderr.fileno()] = "stderr"
        if self.stdin is not None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(self.stdin)
                self.proc.stdin.close()
            except BrokenPipeError:  # the child died at once: reported by its exit code
                pass
        return self.proc

    def kill(self, wait_s: float = 10.0) -> None:
        """Kill the process (if still running), reap it and close the pipes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                pass
        self._close_all()

    # -- reading -----------------------------------------------------------------------------------

    @property
    def fds(self) -> list[int]:
        """Read ends still open (to ``select`` on)."""
        return list(self._kind)

    @property
    def done(self) -> bool:
        """All pipes closed: the job has ended (call :meth:`finish`)."""
        return self.proc is not None and not self._kind

    def handle(self, fd: int) -> None:
        """Read what is ready on ``fd`` (one of :attr:`fds`); EOF closes it."""
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            chunk = b""
        kind = self._kind[fd]
        if not chunk:
            self._close(fd)
            if kind == "progress" and self._partial.strip():
                self._line(self._partial)
                self._partial = b""
            return
        if kind == "result":
            self._result.extend(chunk)
        elif kind == "stderr":
            self._err = (self._err + chunk)[-self.tail_bytes:]
        else:
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                self._line(line)

    def pump(self, timeout: float | None = POLL_S) -> bool:
        """Read what arrives within ``timeout`` s (None: until something does); returns :attr:`done`."""
        if self.done:
            return True
        readable, _, _ = select.select(self.fds, [], [], timeout)
        for fd in readable:
            self.handle(fd)
        if not readable:
            self._drain_if_exited()
        return self.done

    def run(self) -> WorkerOutcome:
        """Start (unless started), read until the job ends, and return :meth:`finish`."""
        if self.proc is None:
            self.start()
        while not self.pump(POLL_S):
            pass
        return self.finish()

    def finish(self, timeout: float | None = None) -> WorkerOutcome:
        """Wait for the process to exit; the outcome (exit code, parsed result, stderr tail)."""
        assert self.proc is not None, "not started"
        code = self.proc.wait(timeout)
        self._close_all()
        try:
            result = json.loads(self._result.decode()) if self._result else None
        except ValueError:
            result = None
        return WorkerOutcome(code, result, self._err.decode(errors="replace"))

    # -- internals ---------------------------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        try:
            ev = json.loads(line)
        except ValueError:
            return  # not an event: ignored (the channel carries nothing else)
        if isinstance(ev, dict) and self.on_progress is not None:
            self.on_progress(ev)

    def _drain_if_exited(self) -> None:
        """The process has exited but a pipe is still open (a grandchild holds it): read what is buffered,
        then close every pipe."""
        if self.proc is None or self.proc.poll() is None:
            return
        while self._kind:
            readable, _, _ = select.select(self.fds, [], [], 0)
            if not readable:
                break
            for fd in readable:
                self.handle(fd)
        self._close_all()

    def _close(self, fd: int) -> None:
        kind = self._kind.pop(fd, None)
        if kind == "stderr":
            assert self.proc is not None and self.proc.stderr is not None
            self.proc.stderr.close()
        elif kind is not None:
            os.close(fd)

    def _close_all(self) -> None:
        for fd in list(self._kind):
            self._close(fd)


def wait_any(workers: Iterable[WorkerProcess], timeout: float | None = None) -> list[WorkerProcess]:
    """Pump several workers until at least one has ended (or ``timeout`` s); return the ended ones."""
    pending = [w for w in workers if w.proc is not None]
    out = [w for w in pending if w.done]
    deadline = None if timeout is None else time.monotonic() + timeout
    while not out and pending:
        left = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
        owner = {fd: w for w in pending for fd in w.fds}
        readable, _, _ = select.select(list(owner), [], [], left)
        for fd in readable:
            owner[fd].handle(fd)
        for w in pending:
            if not w.done and not any(owner.get(fd) is w for fd in readable):
                w._drain_if_exited()
        out = [w for w in pending if w.done]
        if deadline is not None and time.monotonic() >= deadline:
            break
    return out
