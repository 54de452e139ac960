"""Background backtests for the app and the API: validate, queue, run in a subprocess, report progress.

A submission is a config mapping with the schema of ``docs/config.md`` (the same keys as a TOML run
config). It is validated with :func:`nautilus_app.config.parse_config` *before* anything is queued,
so a bad request fails at once with the :class:`~nautilus_app.config.ConfigError` message naming the
key. Only registered strategies can run (the config names them; no code is uploaded or executed).

Each job gets its run id up front (``<name>-<UTC time>-<config digest>``, as the CLI), is written to
``<results>/.jobs/<run_id>.toml`` (a hidden folder, never listed as a run) and runs as
``python -m dash_ui.worker`` in its own process (:class:`nautilus_app.worker_process.WorkerProcess`, the
runner research sweeps use too), at most ``max_parallel`` at a time (FIFO). Progress comes from the
worker as structured events on a pipe of its own (stage, fraction of simulated time done); after 100 %
the worker writes the results folder, which appears atomically (renamed from a dot-staging folder) when
done. A failed job's error is the first line of the error in the worker's result, else its last
``error: ...`` line on stderr, else its exit code and last line of stderr (an uncaught exception);
``log_tail`` keeps the end of its stderr.
Job states: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled`` (:meth:`JobRunner.cancel`: a
queued job is never started, a running worker is killed and its hidden staging folder left unlisted). State lives in memory and in
``.jobs/<run_id>.json`` (for inspection); a restart of the app forgets queued jobs.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from core import paths
from nautilus_app.worker_process import WorkerProcess

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SubmissionError(ValueError):
    """A submitted config is invalid. ``field`` is the key path (``venues[0].taker_fee``) or None."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def field_of(message: str) -> str | None:
    """Key path named by a :class:`ConfigError` message (``"...: key venues[0].taker_fee = ..."``)."""
    m = re.search(r"key ([A-Za-z_][\w.\[\]]*)", message)
    if m:
        return m.group(1)
    m = re.search(r"[Oo]bject missing required field `(\w+)`", message)
    if m:
        return m.group(1)
    m = re.search(r"unknown field `(\w+)`", message)
    return m.group(1) if m else None


#: run times accepted from the API/launcher (UTC): 1970-01-01 .. 2200-01-01
_TIME_RANGE = ("1970-01-01", "2200-01-01")


def check_time(raw: dict, key: str) -> None:
    """``raw[key]`` (if present) must be an ISO date/datetime string between 1970 and 2200 UTC.

    Raises:
        SubmissionError: naming ``key`` (a far-future ``end`` would overflow nanosecond times later).
    """
    import pandas as pd

    if key not in raw:
        return
    v = raw[key]
    try:
        if not isinstance(v, str):
            raise TypeError
        ts = pd.Timestamp(v)
        if ts is pd.NaT:
            raise ValueError
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        ok = pd.Timestamp(_TIME_RANGE[0], tz="UTC") <= ts <= pd.Timestamp(_TIME_RANGE[1], tz="UTC")
    except (TypeError, ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise SubmissionError(f"key {key} = {v!r}: expected an ISO-8601 date or datetime in UTC, e.g. 2025-06-01",
                              key) from None
    if not ok:
        raise SubmissionError(f"key {key} = {v!r}: outside {_TIME_RANGE[0]} .. {_TIME_RANGE[1]} UTC", key)


def param_field(field: str | None, message: str, raw: dict) -> str | None:
    """``strategies[i].params`` refined to the first parameter the message names (a config class that
    rejects ``fast_period (30) must be < slow_period (10)`` -> ``strategies[0].params.fast_period``)."""
    m = re.fullmatch(r"strategies\[(\d+)\]\.params", field or "")
    if not m:
        return field
    try:
        params = raw["strategies"][int(m.group(1))]["params"]
    except (KeyError, IndexError, TypeError):
        return field
    tail = message.split("rejected the values", 1)[-1]
    hits = sorted((mm.start(), k) for k in params if isinstance(k, str)
                  for mm in [re.search(rf"(?<![\w.]){re.escape(k)}(?!\w)", tail)] if mm)
    return f"{field}.{hits[0][1]}" if hits else field


def check_data(cfg: Any) -> None:
    """The data a run needs is in its catalog, checked before queueing with the run's own data plan
    (:func:`nautilus_app.backtest.plan_data`: bars of every bar type in ``[start, end)``, coverage beyond
    known exchange halts unless ``allow_gaps``, funding rates for perpetuals).

    Raises:
        SubmissionError: ``bar_types[i]`` for a series the catalog does not hold at all (unknown
            instrument), ``start`` / ``end`` for dates outside the stored data, ``allow_gaps`` for gaps.
    """
    from catalog.reader import bar_files
    from nautilus_app.backtest import BacktestFailed, plan_data
    from nautilus_app.coverage import CoverageError

    root = cfg.catalog_path()
    for i, bt in enumerate(cfg.bar_types):
        if not bar_files(Path(root), bt):
            raise SubmissionError(f"key bar_types[{i}] = {bt!r}: not in the catalog {root} (no stored bars; "
                                  "GET /api/catalog/symbols lists what is there)", f"bar_types[{i}]")
    try:
        plan_data(cfg)
    except (CoverageError, BacktestFailed) as e:
        msg = str(e)
        if "no funding rates" in msg:
            field = "venues"
        elif "allow_gaps" in msg and "missing beyond" in msg:
            field = "start" if cfg.start is not None else "allow_gaps"
        else:
            field = "start" if cfg.start is not None else ("end" if cfg.end is not None else "bar_types")
        raise SubmissionError(f"no data for this run: {msg}", field) from None


def strip_none(value: Any) -> Any:
    """Drop ``None`` values recursively (TOML has no null; absent keys take the config defaults)."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value if v is not None]
    return value


@dataclass
class Job:
    """One submitted backtest (all times UTC epoch seconds)."""

    id: str
    name: str
    status: str = "queued"
    progress: float = 0.0  # fraction of simulated time done, 0..1
    stage: str = "queued"
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    config: dict = field(default_factory=dict)
    log_tail: str = ""

    def to_dict(self) -> dict:
        """JSON-safe dict (config included)."""
        return asdict(self)


class JobRunner:
    """Queue and run backtests in subprocesses.

    Args:
        results_root: Where results folders are written (and ``.jobs/``).
        catalog_root: Catalog used when a submission gives none; a submission naming a different
            catalog is refused (field ``catalog``).
        max_parallel: Concurrent worker processes (default 1: a backtest uses a whole core).
        python: Interpreter for the workers (default: this one).
        check_data: Refuse a submission whose data is not in the catalog (:func:`check_data`); off only for
            tests with stand-in workers and no catalog.
    """

    def __init__(self, results_root: Path, catalog_root: Path, max_parallel: int = 1, python: str | None = None,
                 check_data: bool = True) -> None:
        self.results_root = Path(results_root)
        self.check_data = check_data
        self.catalog_root = Path(catalog_root)
        self.python = python or sys.executable
        self.jobs: dict[str, Job] = {}
        self._q: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        # one job file write at a time: cancel (caller's thread) and the worker thread may save the same
        # job at once, and both write through the same temp path
        self._save_lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen] = {}
        self._threads = [threading.Thread(target=self._loop, daemon=True, name=f"backtest-worker-{i}")
                         for i in range(max_parallel)]
        for t in self._threads:
            t.start()

    @property
    def jobs_dir(self) -> Path:
        """``<results>/.jobs`` (hidden: not a run)."""
        return self.results_root / ".jobs"

    def validate(self, raw: Any) -> tuple[dict, Any]:
        """Check a submission; returns (normalised raw mapping, ``BacktestConfig``).

        Raises:
            SubmissionError: not a mapping, bad ``name``, foreign ``catalog``, or any
                :class:`ConfigError` (message and field passed through).
        """
        from nautilus_app.config import ConfigError, parse_config

        if not isinstance(raw, dict):
            raise SubmissionError("the backtest config must be a JSON object (the TOML schema of docs/config.md)")
        raw = strip_none(dict(raw))
        name = raw.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SubmissionError(f"key name = {name!r}: expected 1-64 characters of letters, digits, '_', '.', '-' "
                                  "(it becomes part of the results folder name)", "name")
        cat = raw.get("catalog")
        if cat is not None and Path(str(cat)).resolve() != self.catalog_root.resolve():
            raise SubmissionError(f"key catalog = {cat!r}: this server runs on the catalog {self.catalog_root}; "
                                  "leave catalog out", "catalog")
        raw["catalog"] = str(self.catalog_root)
        for key in ("start", "end"):
            check_time(raw, key)
        try:
            cfg = parse_config(raw, source="request")
        except ConfigError as e:
            raise SubmissionError(str(e), param_field(field_of(str(e)), str(e), raw)) from e
        except (ValueError, TypeError, OverflowError, KeyError, AttributeError) as e:  # never a 500
            raise SubmissionError(f"invalid config: {type(e).__name__}: {e}", field_of(str(e))) from e
        if self.check_data:
            check_data(cfg)
        return raw, cfg

    def submit(self, raw: Any) -> Job:
        """Validate and queue a backtest; returns the job (its ``id`` is the future run id).

        Raises:
            SubmissionError: invalid config (nothing is queued).
        """
        from nautilus_app.backtest import make_run_id

        raw, cfg = self.validate(raw)
        with self._lock:
            base = make_run_id(cfg)
            run_id, n = base, 1
            while run_id in self.jobs or (self.results_root / run_id).exists():
                n += 1
                run_id = f"{base}-{n}"
            job = Job(id=run_id, name=cfg.name, config=raw)
            self.jobs[run_id] = job
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        (self.jobs_dir / f"{run_id}.toml").write_text(
            f"# submitted through the app at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
            + tomli_w.dumps(raw))
        self._save(job)
        self._q.put(run_id)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, or None if this server never saw it."""
        return self.jobs.get(job_id)

    def list(self) -> list[Job]:
        """All jobs of this server, newest first."""
        return sorted(self.jobs.values(), key=lambda j: j.submitted, reverse=True)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (a running worker process is killed); None if unknown. A job
        already done, failed or cancelled is returned unchanged."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.status not in ("queued", "running"):
                return job
            job.status, job.stage, job.finished = "cancelled", "cancelled", time.time()
            job.error = "cancelled by the user"
            proc = self._procs.get(job_id)
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._save(job)
        return job

    def wait(self, job_id: str, timeout: float = 300.0) -> Job:
        """Block until the job is done or failed (tests, scripts)."""
        t_end = time.time() + timeout
        while time.time() < t_end:
            job = self.jobs[job_id]
            if job.status in ("done", "failed", "cancelled"):
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} still {self.jobs[job_id].status} after {timeout} s")

    def shutdown(self) -> None:
        """Kill running worker processes (their staging folders are left hidden and never listed)."""
        for proc in list(self._procs.values()):
            if proc.poll() is None:
                proc.kill()

    def _save(self, job: Job) -> None:
        """Write the job's current state to ``.jobs/<id>.json`` atomically (temp file, then rename)."""
        with self._save_lock:
            tmp = self.jobs_dir / f".{job.id}.json.tmp"
            tmp.write_text(json.dumps(job.to_dict(), indent=2, default=str))
            os.replace(tmp, self.jobs_dir / f"{job.id}.json")

    def _loop(self) -> None:
        while True:
            job_id = self._q.get()
            try:
                self._run(self.jobs[job_id])
            except Exception as e:  # noqa: BLE001 - a job failure must never kill the worker thread
                job = self.jobs[job_id]
                job.status, job.stage, job.error, job.finished = "failed", "failed", f"internal error: {e}", time.time()
                self._save(job)

    def _run(self, job: Job) -> None:
        with self._lock:
            if job.status == "cancelled":  # cancelled while queued: never started
                return
            job.status, job.stage, job.started = "running", "starting", time.time()
        self._save(job)
        env = dict(os.environ, CATALOG_PATH=str(self.catalog_root), PYTHONUNBUFFERED="1")
        last_save = 0.0

        def on_progress(event: dict) -> None:
            nonlocal last_save
            if isinstance(event.get("progress"), int | float):
                job.progress = min(float(event["progress"]), 1.0)
            if isinstance(event.get("stage"), str):
                job.stage = event["stage"]
            if time.time() - last_save > 0.5:
                self._save(job)
                last_save = time.time()

        worker = WorkerProcess("dash_ui.worker", [str(self.jobs_dir / f"{job.id}.toml"), "--results-dir",
                                                  str(self.results_root), "--run-id", job.id],
                               python=self.python, env=env, cwd=paths.REPO_ROOT, capture_output=True,
                               on_progress=on_progress)
        proc = worker.start()
        with self._lock:
            self._procs[job.id] = proc
            cancelled = job.status == "cancelled"
        if cancelled:  # cancelled between the status change and the start of the process
            proc.kill()
        outcome = worker.run()
        rc = outcome.returncode
        self._procs.pop(job.id, None)
        text = outcome.stderr.replace("\r", "\n")
        job.log_tail = "\n".join(line for line in text.splitlines() if line.strip())[-4000:]
        if job.status == "cancelled":
            job.stage = "cancelled"
            self._save(job)
            return
        job.finished = time.time()
        if rc == 0 and (self.results_root / job.id / "metrics.json").exists():
            job.status, job.stage, job.progress = "done", "done", 1.0
        else:
            reported = outcome.result.get("error") if isinstance(outcome.result, dict) else None
            errors = [line for line in text.splitlines() if line.startswith("error:")]
            job.status, job.stage = "failed", "failed"
            lines = [line for line in job.log_tail.splitlines() if line.strip()]
            last = lines[-1].strip() if lines else "no output"  # an uncaught exception: its last traceback line
            if reported:
                job.error = str(reported).splitlines()[0]
            elif errors:
                job.error = errors[-1][len("error: "):]
            else:
                job.error = f"worker exited with code {rc}: {last[:500]}"
        self._save(job)
