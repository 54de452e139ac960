"""Running backtests in worker processes: the worker entry point and two executors with one interface.

One engine per process
----------------------
Nautilus's logger and Rust runtime are process-global, so every run gets a **fresh process**:

* :class:`ProcessExecutor` starts one fresh interpreter per run (``python -m nautilus_app.research.worker``
  through :mod:`nautilus_app.worker_process`, the runner the Dash launcher uses too; the equivalent of
  ``multiprocessing``'s *spawn*): importing ``nautilus_trader`` starts Rust threads
  (2 extra OS threads, measured), so forking a process that imported it is unsafe. At most
  ``workers`` run at once.
* :class:`RayExecutor` submits a Ray task per run declared with ``max_calls=1`` (Ray replaces the
  worker process after every task) and ``max_retries=0`` (retries are ours, below).

Both call the same :func:`execute_job` in the worker, which claims the run in the registry, runs
:func:`nautilus_app.backtest.run_backtest`, and writes the metrics (or the failure) to the registry
itself. The driver (:class:`Dispatcher`) only sees "finished with a result" or "crashed" (the process
died: segfault, ``panic = abort``, OOM kill, ``kill -9``); a crashed run goes back to ``pending`` and is
submitted again until ``max_attempts``. Runs that *fail* (a strategy raised, data missing) are final.

Ray on a cluster: the registry URL must be a server both sides reach (PostgreSQL), and the catalog
path in the run config must exist on every node (shared file system or the same copy per node).
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import socket
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nautilus_app.worker_process import WorkerProcess, wait_any

#: Files deleted from a run folder with ``keep_results = "light"``.
BULKY_FILES = ("tearsheet.html", "orders.parquet", "fills.parquet", "positions.parquet", "account.parquet")


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to run one registry run (picklable, plain data).

    Attributes:
        run_key: Registry key of the run (the row exists, status ``pending``).
        registry_url: Registry the worker writes to.
        config: The run config as plain data (``msgspec.to_builtins`` of a ``BacktestConfig``).
        results_root / results_run_id: The run folder is ``results_root/results_run_id``.
        objective: Metric copied to ``runs.objective`` (None: no objective).
        keep_results: ``all`` or ``light`` (see :data:`BULKY_FILES`).
        lease_seconds: The worker refreshes its heartbeat every ``lease_seconds / 4``.
    """

    run_key: str
    registry_url: str
    config: dict[str, Any]
    results_root: str
    results_run_id: str
    objective: str | None = None
    keep_results: str = "all"
    lease_seconds: float = 600.0


def execute_job(job: Job) -> dict[str, Any]:
    """Worker entry: claim, run, record. Returns a small dict ``status`` (done/failed/skipped), ``run_key``,
    ``objective``, ``metrics``, ``results_path``, ``peak_rss_mb``, ``wall_seconds``, ``error``.

    Never raises for a failed backtest (the failure is recorded); an exception here means the registry
    itself is unreachable.
    """
    t0 = time.perf_counter()
    from nautilus_app.research.registry import Registry

    reg = Registry.open(job.registry_url, migrate=False)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        if reg.claim_run(job.run_key, worker) is None:
            return {"run_key": job.run_key, "status": "skipped"}
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(reg, job.run_key, job.lease_seconds / 4, stop), daemon=True)
        beat.start()
        try:
            outcome = _run(job)
        except Exception as e:  # noqa: BLE001 - every failure is recorded with its traceback
            from nautilus_app.backtest import BacktestFailed
            from nautilus_app.config import ConfigError

            known = isinstance(e, BacktestFailed | ConfigError)
            msg = f"{type(e).__name__}: {e}" if known else traceback.format_exc()
            reg.fail_run(job.run_key, msg)
            return {"run_key": job.run_key, "status": "failed", "error": msg}
        finally:
            stop.set()
            beat.join(timeout=5)
        metrics = outcome.metrics
        objective = metrics.get(job.objective) if job.objective else None
        if job.keep_results == "light":
            for name in BULKY_FILES:
                (outcome.results_path / name).unlink(missing_ok=True)
        peak = peak_rss_mb()
        wall = time.perf_counter() - t0
        reg.finish_run(job.run_key, metrics=metrics, objective=objective, results_path=str(outcome.results_path),
                       iterations=outcome.iterations, orders=outcome.orders, engine_seconds=outcome.engine_seconds,
                       wall_seconds=wall, peak_rss_mb=peak)
        return {"run_key": job.run_key, "status": "done", "objective": objective, "metrics": metrics,
                "results_path": str(outcome.results_path), "peak_rss_mb": peak, "wall_seconds": wall,
                "iterations": outcome.iterations}
    finally:
        reg.close()


def _run(job: Job):  # noqa: ANN202 - BacktestOutcome
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import parse_config

    cfg = parse_config(job.config, source=f"run {job.run_key[:12]}")
    root = Path(job.results_root)
    final = root / job.results_run_id
    if final.exists():  # written by an attempt that died before recording it: this key owns the folder
        shutil.rmtree(final)
    return run_backtest(cfg, results_root=root, run_id=job.results_run_id, progress=False)


def _heartbeat(reg: Any, run_key: str, every: float, stop: threading.Event) -> None:
    while not stop.wait(max(every, 0.5)):
        try:
            reg.heartbeat(run_key)
        except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
            pass


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---- executors -------------------------------------------------------------------------------------


@dataclass
class Finished:
    """A job left the executor: ``result`` from :func:`execute_job`, or ``crash`` text if the process died."""

    job: Job
    result: dict[str, Any] | None
    crash: str | None = None


class ProcessExecutor:
    """Local pool: one fresh Python interpreter per job, at most ``workers`` at a time.

    Each job runs in ``python -m nautilus_app.research.worker`` through
    :class:`nautilus_app.worker_process.WorkerProcess` (the runner the Dash launcher uses too): a new
    interpreter, like the ``multiprocessing`` *spawn* start method, never a fork of this process, which
    may already run Nautilus's Rust threads. Unlike ``multiprocessing``'s spawn it does not re-import
    the caller's ``__main__`` (scripts need no ``if __name__ == "__main__"`` guard), and the result
    comes back on a dedicated pipe, separate from Nautilus's stdout logging. The job goes in as JSON on
    stdin.

    Args:
        workers: Concurrent processes (>= 1).
    """

    kind = "process"

    def __init__(self, workers: int = 2) -> None:
        self.capacity = max(1, int(workers))
        self._running: dict[WorkerProcess, Job] = {}
        env = dict(os.environ)
        from core.paths import REPO_ROOT

        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        self._env = env

    def submit(self, job: Job) -> None:
        """Start a worker process for ``job`` (the caller keeps ``in_flight < capacity``)."""
        worker = WorkerProcess("nautilus_app.research.worker", stdin=json.dumps(dataclasses.asdict(job)).encode(),
                               env=self._env)
        worker.start()
        self._running[worker] = job

    @property
    def in_flight(self) -> int:
        """Jobs submitted and not yet returned by :meth:`wait`."""
        return len(self._running)

    def wait(self, timeout: float | None = None) -> list[Finished]:
        """Block until at least one job ends (or ``timeout`` s); return the ended ones.

        A job ends when its result pipe reaches EOF (the process exited or closed it); a process that
        exits non-zero or without a complete result counts as crashed.
        """
        out: list[Finished] = []
        for worker in wait_any(list(self._running), timeout):
            job = self._running.pop(worker)
            end = worker.finish()
            result = end.result if isinstance(end.result, dict) else None
            if end.returncode == 0 and result is not None and result.get("status") != "error":
                out.append(Finished(job, result))
            else:
                why = f"worker process exited with code {end.returncode}"
                if result is not None and result.get("error"):
                    why += f": {result['error'][-2000:]}"
                out.append(Finished(job, None, crash=why))
        return out

    def shutdown(self) -> None:
        """Kill running workers (their runs stay ``running`` and are retried by the next invocation)."""
        for worker in list(self._running):
            worker.kill()
        self._running.clear()


def _ray_entry(job: Job) -> dict[str, Any]:
    return execute_job(job)


class RayExecutor:
    """Ray tasks, one fresh worker process per run (``max_calls=1``).

    Args:
        workers: Concurrent tasks; with no ``address`` also the ``num_cpus`` of the local Ray started here.
        address: Existing cluster: ``"auto"`` or the head's ``"host:6379"`` GCS address (``ray://`` client
            addresses need the ``ray[client]`` extra, not installed); None starts a local Ray. A cluster
            started with ``ray start`` (Ray 2.60) uses token auth: the driver needs ``RAY_AUTH_MODE=token``
            and the token (``RAY_AUTH_TOKEN_PATH``, ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``).
        init_kwargs: Extra ``ray.init`` arguments (e.g. ``runtime_env``).

    Raises:
        ImportError: Ray is not installed (``pip install ray``).
    """

    kind = "ray"

    def __init__(self, workers: int = 2, address: str | None = None, **init_kwargs: Any) -> None:
        import ray

        self._ray = ray
        self.capacity = max(1, int(workers))
        self._owns = False
        if ray.is_initialized():
            if address and address != "auto":  # never run silently on another (e.g. a local) Ray
                current = ray.get_runtime_context().gcs_address
                if address.split("://")[-1].split(":")[-1] != current.split(":")[-1]:
                    raise RuntimeError(f"Ray is already initialised in this process for {current}, not {address}: "
                                       "call ray.shutdown() first or run the sweep in a new process")
        else:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, **init_kwargs}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=self.capacity, **kwargs)
            self._owns = True
        self._remote = ray.remote(num_cpus=1, max_calls=1, max_retries=0)(_ray_entry)
        self._refs: dict[Any, Job] = {}

    def submit(self, job: Job) -> None:
        """Submit ``job`` as a Ray task."""
        self._refs[self._remote.remote(job)] = job

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet returned by :meth:`wait`."""
        return len(self._refs)

    def wait(self, timeout: float | None = None) -> list[Finished]:
        """Block until at least one task ends (or ``timeout`` s); return the ended ones."""
        if not self._refs:
            return []
        ray = self._ray
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:
            more, _ = ray.wait([r for r in self._refs if r not in ready], num_returns=len(self._refs) - len(ready),
                               timeout=0)
            ready = list(ready) + list(more)
        out = []
        for ref in ready:
            job = self._refs.pop(ref)
            try:
                out.append(Finished(job, ray.get(ref)))
            except ray.exceptions.RayError as e:  # worker died (WorkerCrashedError), task raised, node lost ...
                out.append(Finished(job, None, crash=f"ray task failed: {type(e).__name__}: {str(e)[-2000:]}"))
        return out

    def shutdown(self) -> None:
        """Cancel outstanding tasks; stop the local Ray if this executor started it."""
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001
                pass
        self._refs.clear()
        if self._owns:
            self._ray.shutdown()


def make_executor(kind: str = "process", workers: int = 2, ray_address: str | None = None) -> ProcessExecutor | RayExecutor:  # noqa: E501
    """``process`` -> :class:`ProcessExecutor`, ``ray`` -> :class:`RayExecutor`."""
    if kind == "process":
        return ProcessExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, address=ray_address)
    raise ValueError(f"executor {kind!r}: expected 'process' or 'ray'")


# ---- dispatching with retries ------------------------------------------------------------------------


@dataclass
class Dispatcher:
    """Feeds jobs to an executor, retries crashed ones, and reports each job's final result once.

    ``submit`` queues; ``poll`` starts queued jobs while the executor has capacity and returns the
    results of jobs that finished for good (``status`` done / failed / skipped, or ``failed`` after
    ``max_attempts`` crashes).
    """

    executor: Any
    registry: Any
    max_attempts: int = 3
    queue: deque = field(default_factory=deque)
    attempts: dict[str, int] = field(default_factory=dict)
    crashes: int = 0

    def submit(self, job: Job) -> None:
        """Queue ``job``."""
        self.queue.append(job)

    @property
    def busy(self) -> int:
        """Jobs queued or running."""
        return len(self.queue) + self.executor.in_flight

    def _fill(self) -> None:
        while self.queue and self.executor.in_flight < self.executor.capacity:
            self.executor.submit(self.queue.popleft())

    def poll(self, timeout: float | None = 1.0) -> list[dict[str, Any]]:
        """Start what fits, wait up to ``timeout`` s, return finished results (may be empty)."""
        self._fill()
        out = []
        for fin in self.executor.wait(timeout):
            if fin.result is not None:
                out.append(fin.result)
                continue
            self.crashes += 1
            state = self.registry.run_state(fin.job.run_key)
            if state is not None and state.status == "done":  # died after recording: nothing lost
                out.append({"run_key": fin.job.run_key, "status": "done", "from_registry": True})
                continue
            # the worker counts an attempt when it claims the run; count here too if it died before that
            tries = max(state.attempts if state is not None else 0, self.attempts.get(fin.job.run_key, 0) + 1)
            self.attempts[fin.job.run_key] = tries
            retry = tries < self.max_attempts
            self.registry.fail_run(fin.job.run_key, f"attempt {tries}: {fin.crash}", retry=retry)
            if retry:
                self.queue.append(fin.job)
            else:
                out.append({"run_key": fin.job.run_key, "status": "failed", "error": fin.crash})
        self._fill()
        return out

    def drain(self) -> list[dict[str, Any]]:
        """Run everything queued to the end; return all final results."""
        out = []
        while self.busy:
            out.extend(self.poll(1.0))
        return out
