"""Parameter sweeps (grid, random, Optuna TPE): every trial a full Nautilus backtest, results in the registry.

Flow of :func:`run_sweep`:

1. the sweep row is created (or found: same name and same spec = resume; another spec is an error);
2. points are generated (grid: every combination in order; random: ``n_trials`` distinct seeded draws;
   optuna: ask/tell with ``TPESampler(seed)``), constraints filter them;
3. each point x shard becomes a run with an **idempotent key** = sha256 of (study name, run kind, the
   canonical run config, the strategy file's sha256). A key already ``done`` (or ``failed`` by the
   backtest itself) is skipped; a ``running`` key whose worker vanished is retried;
4. runs go to the executor (local processes or Ray, see :mod:`nautilus_app.research.execution`); the
   workers write metrics to the registry; the ranking is read back from the registry.

Provenance stored with every run: the full config (JSON) and its sha256, the git commit of the
repository (``+dirty`` with local changes, ``unknown`` outside git), the sha256 of each strategy's
source file, data range, catalog path and bar types.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from core import paths
from nautilus_app.config import BacktestConfig, ConfigError, parse_config
from nautilus_app.research.execution import Dispatcher, Job, make_executor
from nautilus_app.research.registry import Registry, sha256_json
from nautilus_app.research.spec import ParamSpec, Sweep

#: Strategy params that say *where* a strategy runs, not *how*: not part of a parameter version
#: (the run's ``shard`` / ``bar_types`` / config hold them).
INSTANCE_KEYS = ("instrument_id", "bar_type", "strategy_id", "order_id_tag")


def code_version() -> str:
    """Git commit of the repository, ``<sha>+dirty`` with uncommitted changes, ``unknown`` without git."""
    try:
        sha = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def strategy_file_sha256(strategy_type: str) -> str:
    """sha256 of the source file of a strategy's class (built-in or user name, or ``module:Class`` path)."""
    from nautilus_app.strategy_loader import resolve_strategy

    ref = resolve_strategy(strategy_path=strategy_type) if ":" in strategy_type else resolve_strategy(strategy_type)
    return ref.file_sha256()


def config_hash(cfg: BacktestConfig) -> str:
    """Full sha256 of the canonical JSON of a run config."""
    return hashlib.sha256(msgspec.json.encode(cfg, order="sorted")).hexdigest()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


@dataclass
class Study:
    """Shared plumbing of sweeps, walk-forward and portfolio studies: registry rows and run jobs.

    Attributes:
        registry: Open registry. name: study (sweep) name. sweep_id: its row.
        results_root: Folder of the run folders. objective: metric copied to ``runs.objective``.
    """

    registry: Registry
    name: str
    sweep_id: int
    results_root: Path
    objective: str | None = None
    keep_results: str = "all"
    lease_seconds: float = 600.0
    version: str = field(default_factory=code_version)
    _sha: dict[str, str] = field(default_factory=dict)
    _sid: dict[tuple[str, str], int] = field(default_factory=dict)

    def strategy_sha(self, strategy_type: str) -> str:
        """Cached :func:`strategy_file_sha256`."""
        if strategy_type not in self._sha:
            self._sha[strategy_type] = strategy_file_sha256(strategy_type)
        return self._sha[strategy_type]

    def strategy_id(self, name: str, strategy_type: str) -> int:
        """Registry id of a named strategy (cached)."""
        if (name, strategy_type) not in self._sid:
            self._sid[(name, strategy_type)] = self.registry.ensure_strategy(name, strategy_type)
        return self._sid[(name, strategy_type)]

    def prepare(self, cfg: BacktestConfig, *, kind: str, strategy_names: list[str] | None = None,
                trial_number: int | None = None, shard: str | None = None, label: str | None = None) -> tuple[Job, str]:
        """Register ``cfg`` as a run of this study; return its job and current status.

        ``strategy_names``: registry name per ``[[strategies]]`` entry (default: the types).
        """
        raw = msgspec.to_builtins(cfg)
        shas = [self.strategy_sha(s.label()) for s in cfg.strategies]
        key = sha256_json({"study": self.name, "kind": kind, "config": raw, "strategy_sha256": shas})
        names = strategy_names or [s.label() for s in cfg.strategies]
        components = []
        for nm, s, sha in zip(names, cfg.strategies, shas, strict=True):
            sid = self.strategy_id(nm, s.label())
            pid, _ = self.registry.ensure_parameter_set(
                sid, {k: v for k, v in s.params.items() if k not in INSTANCE_KEYS})
            components.append((sid, pid, sha))
        start = None if cfg.start is None else pd.Timestamp(cfg.start, tz="UTC").to_pydatetime()
        end = None if cfg.end is None else pd.Timestamp(cfg.end, tz="UTC").to_pydatetime()
        run_id = f"{kind}-{key[:16]}"
        state = self.registry.prepare_run(
            run_key=key, kind=kind, config=raw, config_hash=config_hash(cfg), code_version=self.version,
            components=components, sweep_id=self.sweep_id, trial_number=trial_number, shard=shard, label=label,
            data_start=start, data_end=end, catalog=str(cfg.catalog_path()), bar_types=cfg.bar_types,
            results_root=str(self.results_root), results_run_id=run_id)
        job = Job(run_key=key, registry_url=self.registry.url, config=raw, results_root=str(self.results_root),
                  results_run_id=run_id, objective=self.objective, keep_results=self.keep_results,
                  lease_seconds=self.lease_seconds)
        return job, state.status


def single_strategy_config(base: BacktestConfig, index: int, params: dict[str, Any], *, shard: str | None = None,
                           start: str | None = None, end: str | None = None, name: str | None = None) -> BacktestConfig:
    """Run config with only ``base.strategies[index]`` (params updated), on ``shard`` (a bar type) if given.

    The run loads only the shard's bar type, keeps only the venue it trades on (leverages filtered to
    its instrument), and keeps ``start``/``end`` (overridden when given). Validated by ``parse_config``.

    With a ``[universe]`` base config, ``base.strategies[index]`` is a template: the result is the
    single-symbol run of that template on the shard's symbol, filled in as
    :func:`nautilus_app.universe.expand_universe` does (``{symbol}``, ``{instrument_id}``, ``{bar_type}``
    placeholders replaced, ``instrument_id`` / ``bar_type`` set to the shard's), without the
    ``[universe]`` table (an ordinary config).

    Raises:
        ConfigError: the resulting config is invalid (e.g. a parameter value the strategy rejects is *not*
            caught here; the strategy raises at run time and the run is recorded as failed), or a universe
            base without a shard.
    """
    from nautilus_trader.model import BarType

    spec = base.strategies[index]
    template = dict(spec.params)
    if base.universe is not None:
        if shard is None:
            raise ConfigError(f"{base.name}: key shards: a [universe] base config needs a shard (bar type) per run")
        from nautilus_app.universe import fill_placeholders as _fill

        inst = BarType.from_str(shard).instrument_id
        symbol = str(inst.symbol).removesuffix("-PERP")
        template = _fill(template, {"symbol": symbol, "instrument_id": str(inst), "bar_type": shard})
    p = {**template, **params}
    bar_type = shard or str(p["bar_type"])
    iid = str(BarType.from_str(bar_type).instrument_id)
    p["instrument_id"], p["bar_type"] = iid, bar_type
    venue = iid.rsplit(".", 1)[1]
    raw = msgspec.to_builtins(base)
    raw.pop("universe", None)
    venues = [v for v in raw["venues"] if v["name"] == venue]
    for v in venues:
        v["leverages"] = {k: x for k, x in v.get("leverages", {}).items() if k == iid}
    raw.update(name=_slug(name or base.name), bar_types=[bar_type], venues=venues,
               strategies=[{**msgspec.to_builtins(spec), "params": p}], catalog=str(base.catalog_path()))
    if start is not None:
        raw["start"] = start
    if end is not None:
        raw["end"] = end
    return parse_config(raw, source=f"{base.name} (derived run config)")


# ---- sampling ------------------------------------------------------------------------------------------


def grid_points(sweep: Sweep) -> list[dict[str, Any]]:
    """Every combination of the grid values, in key order of ``params`` (last key varies fastest),
    minus those violating a constraint."""
    names = list(sweep.spec.params)
    grids = [sweep.spec.params[n].grid() for n in names]
    return [pt for combo in itertools.product(*grids) if sweep.satisfies(pt := dict(zip(names, combo, strict=True)))]


def _draw(ps: ParamSpec, rng: np.random.Generator) -> Any:
    if ps.values is not None:
        return ps.values[int(rng.integers(len(ps.values)))]
    lo, hi = ps.low, ps.high
    assert lo is not None and hi is not None
    if ps.step is not None:
        grid = ps.grid()
        if ps.log:  # log-uniform over the grid values
            x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            return min(grid, key=lambda g: abs(g - x))
        return grid[int(rng.integers(len(grid)))]
    if ps.is_int:
        if ps.log:
            return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi + 1) - 1e-12) - 0.5)))
        return int(rng.integers(int(lo), int(hi) + 1))
    if ps.log:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return float(rng.uniform(lo, hi))


def random_points(sweep: Sweep) -> list[dict[str, Any]]:
    """``n_trials`` distinct points drawn with ``numpy.random.default_rng(seed)``, one parameter after
    another in ``params`` order, redrawing points that violate a constraint or repeat an earlier one
    (at most ``100 x n_trials`` draws; fewer points if the space is smaller)."""
    rng = np.random.default_rng(sweep.spec.seed)
    n = int(sweep.spec.n_trials or 0)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for _ in range(100 * n):
        if len(out) == n:
            break
        pt = {name: _draw(ps, rng) for name, ps in sweep.spec.params.items()}
        key = json.dumps(pt, sort_keys=True)
        if key in seen or not sweep.satisfies(pt):
            continue
        seen.add(key)
        out.append(pt)
    return out


def optuna_distributions(sweep: Sweep) -> dict[str, Any]:
    """Optuna distribution per parameter: Categorical for ``values``, Int / Float for ranges."""
    import optuna

    out = {}
    for name, ps in sweep.spec.params.items():
        if ps.values is not None:
            out[name] = optuna.distributions.CategoricalDistribution(ps.values)
        elif ps.is_int:
            out[name] = optuna.distributions.IntDistribution(int(ps.low), int(ps.high), step=int(ps.step or 1), log=ps.log)
        else:
            out[name] = optuna.distributions.FloatDistribution(float(ps.low), float(ps.high), step=ps.step, log=ps.log)
    return out


# ---- running ---------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """Outcome of :func:`run_sweep`.

    Attributes:
        name: Sweep name. ranking: :meth:`Registry.sweep_ranking` (best first).
        runs: Runs in the sweep (points x shards). executed: runs executed by this call.
        skipped: runs already finished before this call. failed: runs that ended failed.
        crashes: worker crashes seen (each retried up to ``max_attempts``). wall_seconds: duration.
    """

    name: str
    ranking: pd.DataFrame
    runs: int
    executed: int
    skipped: int
    failed: int
    crashes: int
    wall_seconds: float

    @property
    def best(self) -> dict[str, Any] | None:
        """Best parameter set (``params``, ``objective``) or None if none finished with an objective."""
        if self.ranking.empty or self.ranking["objective"].isna().iloc[0]:
            return None
        row = self.ranking.iloc[0]
        return {"params": row["params"], "objective": row["objective"], "param_version": row["param_version"]}


def sweep_spec_json(sweep: Sweep) -> dict[str, Any]:
    """The part of a sweep that defines its results (stored in the registry; resume needs it unchanged).

    Execution settings (executor, workers, registry, ray address, lease, attempts) are left out so a sweep
    can be resumed elsewhere, e.g. started locally and finished on Ray.
    """
    spec = msgspec.to_builtins(sweep.spec)
    for k in ("executor", "workers", "ray_address", "registry", "max_attempts", "lease_seconds", "results_root"):
        spec.pop(k, None)
    return {"sweep": spec, "base": msgspec.to_builtins(sweep.base)}


def open_study(sweep: Sweep, registry: Registry, *, name: str | None = None, kind: str | None = None,
               extra: dict[str, Any] | None = None) -> Study:
    """Create/find the sweep row and return its :class:`Study` (results under ``results_root``).

    ``extra`` (e.g. a walk-forward window's dates) is stored in the spec, so it is part of the identity.
    """
    name = name or sweep.spec.name
    spec = sweep_spec_json(sweep)
    if name != sweep.spec.name:
        spec["study"] = name
    if extra:
        spec["extra"] = extra
    sid = registry.ensure_strategy(sweep.strategy_name, sweep.strategy_type)
    sweep_id = registry.ensure_sweep(name, kind=kind or sweep.spec.method, spec=spec, objective=sweep.spec.objective,
                                     direction=sweep.spec.direction, strategy_id=sid)
    root = Path(sweep.spec.results_root) if sweep.spec.results_root else paths.results_dir() / "research"
    return Study(registry=registry, name=name, sweep_id=sweep_id, results_root=root / _slug(sweep.spec.name),
                 objective=sweep.spec.objective, keep_results=sweep.spec.keep_results,
                 lease_seconds=sweep.spec.lease_seconds)


def run_sweep(sweep: Sweep, *, registry: Registry | None = None, executor: Any = None, name: str | None = None,
              start: str | None = None, end: str | None = None, progress: bool = True) -> SweepResult:
    """Run (or resume) a sweep; return the registry ranking.

    Args:
        sweep: Loaded sweep (:func:`nautilus_app.research.spec.load_sweep`).
        registry: Open registry (default: ``sweep.spec.registry`` / the default URL, migrated).
        executor: A :class:`~nautilus_app.research.execution.ProcessExecutor` / ``RayExecutor``; default one
            built from ``executor``/``workers``/``ray_address`` of the spec (shut down at the end).
        name / start / end: Override the study name and date range (walk-forward windows use this).
        progress: Print one line per finished run to stderr.

    Raises:
        RegistryError: the sweep name exists with a different spec.
        ConfigError: a derived run config is invalid.
    """
    t0 = time.perf_counter()
    reg = registry or Registry.open(sweep.spec.registry)
    own_exec = executor is None
    study = open_study(sweep, reg, name=name, extra={"start": start, "end": end} if (start or end) else None)
    ex = executor or make_executor(sweep.spec.executor, sweep.spec.workers, sweep.spec.ray_address)
    disp = Dispatcher(ex, reg, max_attempts=sweep.spec.max_attempts)
    counts = {"runs": 0, "executed": 0, "skipped": 0, "failed": 0}
    try:
        if sweep.spec.method == "optuna":
            _run_optuna(sweep, study, disp, counts, start, end, progress)
        else:
            _release_and_queue(reg, disp, prepare_points(sweep, study, start, end, counts), sweep.spec.lease_seconds,
                               counts)
            for res in _drain(disp, progress, study.name):
                counts["executed"] += 1
                counts["failed"] += res["status"] == "failed"
        reg.finish_sweep(study.name, status="done")
    except BaseException:
        reg.finish_sweep(study.name, status="interrupted")
        raise
    finally:
        if own_exec:
            ex.shutdown()
    ranking = reg.sweep_ranking(study.name)
    return SweepResult(name=study.name, ranking=ranking, runs=counts["runs"], executed=counts["executed"],
                       skipped=counts["skipped"], failed=counts["failed"], crashes=disp.crashes,
                       wall_seconds=time.perf_counter() - t0)


def prepare_points(sweep: Sweep, study: Study, start: str | None, end: str | None,
                   counts: dict[str, int]) -> list[tuple[Job, str]]:
    """Register every grid / random point x shard of ``sweep`` as runs of ``study``; return (job, status) pairs."""
    points = grid_points(sweep) if sweep.spec.method == "grid" else random_points(sweep)
    jobs = []
    for number, pt in enumerate(points):
        jobs.extend(_point_jobs(sweep, study, pt, number, start, end, counts))
    return jobs


def _point_jobs(sweep: Sweep, study: Study, pt: dict[str, Any], number: int, start: str | None, end: str | None,
                counts: dict[str, int]) -> list[tuple[Job, str]]:
    out = []
    for shard in sweep.shards():
        cfg = single_strategy_config(sweep.base, sweep.spec.strategy, pt, shard=shard, start=start, end=end,
                                     name=sweep.spec.name)
        job, status = study.prepare(cfg, kind="trial", strategy_names=[sweep.strategy_name], trial_number=number,
                                    shard=shard)
        counts["runs"] += 1
        out.append((job, status))
    return out


def _release_and_queue(reg: Registry, disp: Dispatcher, jobs: list[tuple[Job, str]], lease: float,
                       counts: dict[str, int]) -> list[str]:
    """Queue pending jobs; reset stale ``running`` ones first; count finished ones as skipped."""
    released = set(reg.release_stale([j.run_key for j, st in jobs if st == "running"], lease_seconds=lease))
    queued = []
    for job, status in jobs:
        if status == "pending" or job.run_key in released:
            disp.submit(job)
            queued.append(job.run_key)
        elif status in ("done", "failed"):
            counts["skipped"] += 1
        else:  # running with a live lease: another driver owns it
            print(f"[{job.run_key[:12]}] is running elsewhere ({status}); not submitted again", file=sys.stderr)
    return queued


def _drain(disp: Dispatcher, progress: bool, label: str) -> Iterator[dict[str, Any]]:
    while disp.busy:
        for res in disp.poll(1.0):
            if progress:
                _report(label, res)
            yield res


def _report(label: str, res: dict[str, Any]) -> None:
    extra = f" objective={res.get('objective')}" if res.get("status") == "done" else f" {res.get('error', '')[:200]}"
    print(f"[{label}] {res['run_key'][:12]} {res['status']}{extra}", file=sys.stderr)


def _run_optuna(sweep: Sweep, study: Study, disp: Dispatcher, counts: dict[str, int], start: str | None,
                end: str | None, progress: bool) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = optuna_distributions(sweep)
    direction = sweep.spec.direction
    ost = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=sweep.spec.seed))
    reg = study.registry
    n_trials = int(sweep.spec.n_trials or 0)
    # resume: feed the points already finished in the registry to the sampler
    done = reg.sweep_ranking(study.name)
    seen: set[str] = set()
    finished = 0
    for _, row in done.iterrows():
        params = {k: row["params"][k] for k in dists}
        if row["shards_done"] + row["failed"] < row["shards_total"]:
            continue  # unfinished: it will be proposed again or dropped
        seen.add(json.dumps(params, sort_keys=True))
        finished += 1
        ok = row["objective"] is not None and not pd.isna(row["objective"])
        ost.add_trial(optuna.trial.create_trial(
            params=params, distributions=dists, value=float(row["objective"]) if ok else None,
            state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL))
        counts["skipped"] += int(row["shards_total"])
        counts["runs"] += int(row["shards_total"])
    pending: dict[str, tuple[Any, set[str]]] = {}  # point json -> (optuna trial, run keys not finished)
    key_point: dict[str, str] = {}
    values: dict[str, list[float | None]] = {}
    asked = finished
    rejected = 0
    limit = 20 * n_trials
    while True:
        while asked < n_trials and disp.busy < disp.executor.capacity and rejected < limit:
            trial = ost.ask(dists)
            pt = dict(trial.params)
            pj = json.dumps(pt, sort_keys=True)
            if not sweep.satisfies(pt) or pj in seen:
                # a constraint violation or a repeat costs no backtest and does not count as a trial
                ost.tell(trial, state=optuna.trial.TrialState.PRUNED)
                rejected += 1
                continue
            seen.add(pj)
            jobs = _point_jobs(sweep, study, pt, asked, start, end, counts)
            asked += 1
            keys = {j.run_key for j, _ in jobs}
            pending[pj] = (trial, keys)
            values[pj] = []
            for k in keys:
                key_point[k] = pj
            queued = set(_release_and_queue(reg, disp, jobs, sweep.spec.lease_seconds, counts))
            for j, _ in jobs:
                if j.run_key not in queued:  # finished before (an earlier invocation): use the stored result
                    st = reg.run_detail(j.run_key)
                    _settle(ost, pending, values, key_point, j.run_key, st["objective"] if st["status"] == "done" else None)
        if not pending:
            break
        for res in disp.poll(1.0):
            if progress:
                _report(study.name, res)
            counts["executed"] += 1
            counts["failed"] += res["status"] == "failed"
            obj = res.get("objective") if res["status"] == "done" else None
            if res.get("from_registry"):
                obj = reg.run_detail(res["run_key"])["objective"]
            _settle(ost, pending, values, key_point, res["run_key"], obj)


def _settle(ost: Any, pending: dict, values: dict, key_point: dict, run_key: str, objective: float | None) -> None:
    import optuna

    pj = key_point.get(run_key)
    if pj is None or pj not in pending:
        return
    trial, keys = pending[pj]
    keys.discard(run_key)
    values[pj].append(objective)
    if keys:
        return
    del pending[pj]
    vals = values.pop(pj)
    if any(v is None for v in vals):
        ost.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        ost.tell(trial, float(np.mean(vals)))
