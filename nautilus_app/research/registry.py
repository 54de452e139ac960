"""The research registry: strategies, parameter versions, sweeps, runs and their metrics in SQL.

By default an embedded SQLite file (``$NAUTILUS_REGISTRY_URL``, else ``sqlite:///<results dir>/registry.sqlite``)
so nothing needs a server; any SQLAlchemy URL works, e.g. ``postgresql+psycopg://user@host:5432/db``
(the URL a team shares so that cluster workers write to one registry). The schema is owned by the
Alembic migrations next to this file; :meth:`Registry.open` upgrades to head unless ``migrate=False``.

Python API (the CLI ``nautilus-app registry ...`` and the Dash app call the same methods)::

    reg = Registry.open()                                  # or Registry.open("postgresql+psycopg://...")
    reg.query_runs(strategy_type="ema_cross", min_metrics={"sharpe": 1.0},
                   max_metrics={"max_drawdown": 0.2}, params={"fast_period": 10})   # -> pandas DataFrame
    reg.sweep_ranking("ema_btc_week")                      # parameter sets ranked by the sweep objective
    reg.strategies_frame(); reg.sweeps_frame(); reg.run_detail(run_key)

Concurrency: every method is one short transaction. On SQLite the file runs in WAL mode with a 60 s
busy timeout, which is enough for a handful of local worker processes; a cluster should use PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased, sessionmaker

from core import paths
from nautilus_app.research.models import (
    Metric,
    ParameterSet,
    Run,
    RunComponent,
    Strategy,
    Sweep,
    utcnow,
)

HERE = Path(__file__).resolve().parent
ALEMBIC_INI = HERE / "alembic.ini"

#: Metric columns shown by :meth:`Registry.query_runs` (all metrics stay in the ``metrics`` column).
HEADLINE_METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "cagr", "trades", "win_rate",
                    "profit_factor", "exposure", "fees_paid_usdt", "final_equity")

_OPS = {"=": "__eq__", "==": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


class RegistryError(RuntimeError):
    """A registry request cannot be served (unknown sweep, a sweep name reused with another spec ...)."""


def default_registry_url() -> str:
    """``$NAUTILUS_REGISTRY_URL`` or ``sqlite:///<results dir>/registry.sqlite``."""
    url = os.environ.get("NAUTILUS_REGISTRY_URL")
    if url:
        return url
    return f"sqlite:///{paths.results_dir() / 'registry.sqlite'}"


def canonical_json(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) used for every hash in the registry."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sha256_json(value: Any) -> str:
    """sha256 hex of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def make_engine(url: str) -> sa.Engine:
    """SQLAlchemy engine; SQLite gets WAL, foreign keys and a 60 s busy timeout, its folder is created."""
    if url.startswith("sqlite"):
        db = sa.engine.make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def alembic_config(url: str):  # noqa: ANN201 - alembic.config.Config
    """Alembic ``Config`` of the packaged migrations, pointed at ``url``."""
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations on ``url`` up to ``revision`` (creates the schema on an empty database)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Run the Alembic migrations down to ``revision`` (``base`` drops every registry table)."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class RunState:
    """Where a run stands: ``status`` (pending/running/done/failed), attempts so far, worker ``host:pid``."""

    run_key: str
    status: str
    attempts: int
    worker: str | None
    heartbeat_at: dt.datetime | None


class Registry:
    """Access to one registry database (see the module docstring)."""

    def __init__(self, url: str, engine: sa.Engine) -> None:
        self.url = url
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> Registry:
        """Connect to ``url`` (default :func:`default_registry_url`); ``migrate`` upgrades the schema to head."""
        url = url or default_registry_url()
        engine = make_engine(url)
        if migrate:
            from alembic import command

            cfg = alembic_config(url)
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        return cls(url, engine)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def session(self) -> Session:
        """A new ORM session (use as a context manager)."""
        return self._session()

    # ---- writing ---------------------------------------------------------------------------------
    def ensure_strategy(self, name: str, strategy_type: str, *, description: str | None = None) -> int:
        """Id of strategy ``name`` (created on first use). Raises RegistryError if it exists with another type."""
        from nautilus_app.strategy_loader import StrategyLoadError, resolve_strategy

        try:
            ref = (resolve_strategy(strategy_path=strategy_type) if ":" in strategy_type
                   else resolve_strategy(strategy_type))
        except StrategyLoadError as e:
            raise RegistryError(f"strategy type {strategy_type!r}: {e}") from e
        with self.session() as s, s.begin():
            row = s.scalar(sa.select(Strategy).where(Strategy.name == name))
            if row is not None:
                if row.strategy_type != strategy_type:
                    raise RegistryError(f"strategy {name!r} is registered with type {row.strategy_type!r}, "
                                        f"not {strategy_type!r}")
                return row.id
            row = Strategy(name=name, strategy_type=strategy_type, strategy_path=ref.strategy_path,
                           config_path=ref.config_path, description=description)
            s.add(row)
            s.flush()
            return row.id

    def ensure_parameter_set(self, strategy_id: int, params: Mapping[str, Any]) -> tuple[int, int]:
        """(id, version) of this exact parameter dict for the strategy; a new dict gets the next version."""
        params = json.loads(canonical_json(dict(params)))
        h = sha256_json(params)
        for _ in range(5):  # two workers may add the same version concurrently: retry on the unique constraint
            try:
                with self.session() as s, s.begin():
                    row = s.scalar(sa.select(ParameterSet).where(
                        ParameterSet.strategy_id == strategy_id, ParameterSet.params_hash == h))
                    if row is not None:
                        return row.id, row.version
                    last = s.scalar(sa.select(sa.func.max(ParameterSet.version)).where(
                        ParameterSet.strategy_id == strategy_id)) or 0
                    row = ParameterSet(strategy_id=strategy_id, version=last + 1, params=params, params_hash=h)
                    s.add(row)
                    s.flush()
                    return row.id, row.version
            except sa.exc.IntegrityError:
                continue
        raise RegistryError(f"could not register parameter set {params} for strategy id {strategy_id}")

    def ensure_sweep(self, name: str, *, kind: str, spec: Mapping[str, Any], objective: str | None = None,
                     direction: str | None = None, strategy_id: int | None = None) -> int:
        """Id of sweep ``name``; created on first use. The same name with a different ``spec`` raises
        :class:`RegistryError` (re-running a sweep must mean re-running the *same* sweep)."""
        spec = json.loads(canonical_json(dict(spec)))
        h = sha256_json(spec)
        with self.session() as s, s.begin():
            row = s.scalar(sa.select(Sweep).where(Sweep.name == name))
            if row is not None:
                if row.spec_hash != h:
                    raise RegistryError(
                        f"sweep {name!r} already exists in {self.url} with a different spec; give the changed "
                        "sweep a new name (key `name`)")
                row.status = "running"
                return row.id
            row = Sweep(name=name, kind=kind, spec=spec, spec_hash=h, objective=objective, direction=direction,
                        strategy_id=strategy_id, status="running")
            s.add(row)
            s.flush()
            return row.id

    def finish_sweep(self, name: str, *, status: str = "done", summary: Mapping[str, Any] | None = None) -> None:
        """Set a sweep's final status and summary (JSON-able numbers)."""
        with self.session() as s, s.begin():
            row = self._sweep(s, name)
            row.status = status
            row.finished_at = utcnow()
            if summary is not None:
                row.summary = json.loads(canonical_json(dict(summary)))

    def prepare_run(self, *, run_key: str, kind: str, config: Mapping[str, Any], config_hash: str,
                    code_version: str, components: Sequence[tuple[int, int, str]], sweep_id: int | None = None,
                    trial_number: int | None = None, shard: str | None = None, label: str | None = None,
                    data_start: dt.datetime | None = None, data_end: dt.datetime | None = None,
                    catalog: str = "", bar_types: Sequence[str] = (), results_root: str | None = None,
                    results_run_id: str | None = None) -> RunState:
        """Insert the run as ``pending`` unless its ``run_key`` exists; return its current state.

        ``components``: ``(strategy_id, parameter_set_id, strategy_sha256)`` per ``[[strategies]]`` entry.
        """
        with self.session() as s, s.begin():
            row = s.scalar(sa.select(Run).where(Run.run_key == run_key))
            if row is None:
                row = Run(run_key=run_key, kind=kind, status="pending", sweep_id=sweep_id, trial_number=trial_number,
                          shard=shard, label=label, config=json.loads(canonical_json(dict(config))),
                          config_hash=config_hash, code_version=code_version, data_start=data_start,
                          data_end=data_end, catalog=catalog, bar_types=list(bar_types), results_root=results_root,
                          results_run_id=results_run_id, attempts=0)
                row.components = [RunComponent(position=i, strategy_id=sid, parameter_set_id=pid, strategy_sha256=sha)
                                  for i, (sid, pid, sha) in enumerate(components)]
                try:
                    with s.begin_nested():
                        s.add(row)
                except sa.exc.IntegrityError:  # inserted concurrently
                    row = s.scalar(sa.select(Run).where(Run.run_key == run_key))
            elif row.status == "pending" and trial_number is not None:
                row.trial_number = trial_number
            return _state(row)

    def run_state(self, run_key: str) -> RunState | None:
        """Current state of a run, or None."""
        with self.session() as s:
            row = s.scalar(sa.select(Run).where(Run.run_key == run_key))
            return None if row is None else _state(row)

    def claim_run(self, run_key: str, worker: str) -> RunState | None:
        """Worker side: mark ``running``, count the attempt. Returns None if the run is already done
        (nothing to do) or unknown."""
        now = utcnow()
        with self.session() as s, s.begin():
            row = s.scalar(sa.select(Run).where(Run.run_key == run_key).with_for_update())
            if row is None or row.status == "done":
                return None
            row.status = "running"
            row.attempts = (row.attempts or 0) + 1
            row.worker = worker
            row.started_at = now
            row.heartbeat_at = now
            row.error = None
            return _state(row)

    def heartbeat(self, run_key: str) -> None:
        """Worker side: refresh the lease of a running run."""
        with self.session() as s, s.begin():
            s.execute(sa.update(Run).where(Run.run_key == run_key, Run.status == "running")
                      .values(heartbeat_at=utcnow()))

    def finish_run(self, run_key: str, *, metrics: Mapping[str, Any], objective: float | None, results_path: str,
                   iterations: int, orders: int, engine_seconds: float, wall_seconds: float,
                   peak_rss_mb: float | None) -> None:
        """Worker side: store a completed run's metrics (JSON and one numeric row each) and mark it ``done``."""
        with self.session() as s, s.begin():
            row = s.scalar(sa.select(Run).where(Run.run_key == run_key))
            if row is None:
                raise RegistryError(f"unknown run {run_key}")
            row.status = "done"
            row.metrics = json.loads(canonical_json(dict(metrics)))
            row.objective = objective
            row.results_path = results_path
            row.iterations = iterations
            row.orders = orders
            row.engine_seconds = engine_seconds
            row.wall_seconds = wall_seconds
            row.peak_rss_mb = peak_rss_mb
            row.finished_at = utcnow()
            row.error = None
            s.execute(sa.delete(Metric).where(Metric.run_id == row.id))
            s.add_all(Metric(run_id=row.id, name=k, value=float(v)) for k, v in metrics.items()
                      if isinstance(v, int | float) and v is not None)

    def fail_run(self, run_key: str, error: str, *, retry: bool = False) -> None:
        """Mark a run ``failed`` with ``error`` (or back to ``pending`` when ``retry``: the attempt crashed)."""
        with self.session() as s, s.begin():
            s.execute(sa.update(Run).where(Run.run_key == run_key, Run.status != "done").values(
                status="pending" if retry else "failed", error=error[-4000:], finished_at=None if retry else utcnow()))

    def release_stale(self, run_keys: Iterable[str], *, lease_seconds: float) -> list[str]:
        """Reset ``running`` runs whose worker is gone to ``pending``; return their keys.

        A worker is gone when it ran on this host and its pid no longer exists, or when its last heartbeat
        is older than ``lease_seconds`` (workers beat every ``lease_seconds / 4``).
        """
        import socket

        host = socket.gethostname()
        now = utcnow()
        released = []
        keys = list(run_keys)
        with self.session() as s, s.begin():
            for i in range(0, len(keys), 500):
                rows = s.scalars(sa.select(Run).where(Run.run_key.in_(keys[i:i + 500]), Run.status == "running"))
                for row in rows:
                    w_host, _, w_pid = (row.worker or "").rpartition(":")
                    dead = w_host == host and w_pid.isdigit() and not _pid_alive(int(w_pid))
                    hb = row.heartbeat_at
                    if hb is not None and hb.tzinfo is None:
                        hb = hb.replace(tzinfo=dt.UTC)
                    expired = hb is None or (now - hb).total_seconds() > lease_seconds
                    if dead or expired:
                        row.status = "pending"
                        row.error = f"worker {row.worker} vanished (attempt {row.attempts}); retried"
                        released.append(row.run_key)
        return released

    def set_contributions(self, run_key: str, contributions: Mapping[int, float]) -> None:
        """Store each component's PnL contribution (USDT) of a portfolio run."""
        with self.session() as s, s.begin():
            row = s.scalar(sa.select(Run).where(Run.run_key == run_key))
            if row is None:
                raise RegistryError(f"unknown run {run_key}")
            for comp in row.components:
                if comp.position in contributions:
                    comp.contribution_usdt = float(contributions[comp.position])

    # ---- reading ---------------------------------------------------------------------------------
    def _sweep(self, s: Session, name: str) -> Sweep:
        row = s.scalar(sa.select(Sweep).where(Sweep.name == name))
        if row is None:
            raise RegistryError(f"no sweep named {name!r} in {self.url}")
        return row

    def sweep_info(self, name: str) -> dict[str, Any]:
        """A sweep's row as a dict (kind, objective, direction, spec, status, summary ...)."""
        with self.session() as s:
            row = self._sweep(s, name)
            return {c.name: _aware(getattr(row, c.name)) for c in Sweep.__table__.columns}

    def query_runs(
        self,
        *,
        strategy_type: str | None = None,
        strategy: str | None = None,
        sweep: str | None = None,
        kind: str | None = None,
        status: str | None = "done",
        min_metrics: Mapping[str, float] | None = None,
        max_metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | Sequence[tuple[str, str, Any]] | None = None,
        order_by: str | None = None,
        descending: bool = True,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Runs matching every filter, one row per run (and per component for multi-strategy runs).

        Args:
            strategy_type / strategy: registered type (``"ema_cross"``) / registry strategy name.
            sweep: sweep name. kind: run kind (trial, oos, holdout, portfolio, standalone, backtest).
            status: run status (default ``done``; None = any).
            min_metrics / max_metrics: ``{"sharpe": 1.0}`` keeps runs with metric >= / <= the value
                (metrics as in ``docs/metrics.md``: fractions, USDT).
            params: ``{"fast_period": 10}`` (equality) or ``[("fast_period", "<=", 20)]``; numbers compare
                numerically, strings and booleans by equality.
            order_by: a metric name or a column (``objective``, ``finished_at`` ...); default ``id``.
            limit: at most this many rows.

        Returns:
            DataFrame with ``run_id, run_key, kind, status, sweep, trial_number, shard, label, bar_types, strategy,
            strategy_type, param_version, params, objective`` + :data:`HEADLINE_METRICS` + ``data_start, data_end, catalog,
            code_version, strategy_sha256, config_hash, results_path, attempts, wall_seconds, engine_seconds,
            iterations, peak_rss_mb, error, metrics``.
        """
        comp, ps, st, sw = RunComponent, ParameterSet, Strategy, Sweep
        q = (sa.select(Run, comp, ps, st, sw.name.label("sweep_name"))
             .join(comp, comp.run_id == Run.id).join(ps, ps.id == comp.parameter_set_id)
             .join(st, st.id == comp.strategy_id).outerjoin(sw, sw.id == Run.sweep_id))
        if strategy_type:
            q = q.where(st.strategy_type == strategy_type)
        if strategy:
            q = q.where(st.name == strategy)
        if sweep:
            q = q.where(sw.name == sweep)
        if kind:
            q = q.where(Run.kind == kind)
        if status:
            q = q.where(Run.status == status)
        for bound, mapping in (("min", min_metrics or {}), ("max", max_metrics or {})):
            for name, value in mapping.items():
                m = aliased(Metric)
                q = q.join(m, sa.and_(m.run_id == Run.id, m.name == name))
                q = q.where(m.value >= float(value) if bound == "min" else m.value <= float(value))
        for key, op, value in _param_filters(params):
            elem = ps.params[key]
            if isinstance(value, bool):
                col, value = elem.as_boolean(), value
            elif isinstance(value, int | float):
                col, value = elem.as_float(), float(value)
            else:
                col, value = elem.as_string(), str(value)
            q = q.where(getattr(col, _OPS[op])(value))
        if order_by:
            if hasattr(Run, order_by) and order_by != "metrics":
                key = getattr(Run, order_by)
            else:
                m = aliased(Metric)
                q = q.outerjoin(m, sa.and_(m.run_id == Run.id, m.name == order_by))
                key = m.value
            key = key.desc() if descending else key.asc()
            q = q.order_by(sa.nulls_last(key), Run.id)
        else:
            q = q.order_by(Run.id, comp.position)
        if limit:
            q = q.limit(limit)
        rows = []
        with self.session() as s:
            for run, c, p, strat, sweep_name in s.execute(q):
                metrics = run.metrics or {}
                rows.append({
                    "run_id": run.id, "run_key": run.run_key, "kind": run.kind, "status": run.status,
                    "sweep": sweep_name, "trial_number": run.trial_number, "shard": run.shard, "label": run.label,
                    "bar_types": list(run.bar_types or []),
                    "component": c.position, "strategy": strat.name, "strategy_type": strat.strategy_type,
                    "param_version": p.version, "params": p.params, "objective": run.objective,
                    **{k: metrics.get(k) for k in HEADLINE_METRICS},
                    "contribution_usdt": c.contribution_usdt,
                    "data_start": _aware(run.data_start), "data_end": _aware(run.data_end), "catalog": run.catalog,
                    "code_version": run.code_version, "strategy_sha256": c.strategy_sha256,
                    "config_hash": run.config_hash, "results_path": run.results_path, "attempts": run.attempts,
                    "wall_seconds": run.wall_seconds, "engine_seconds": run.engine_seconds,
                    "iterations": run.iterations, "peak_rss_mb": run.peak_rss_mb, "error": run.error,
                    "metrics": metrics,
                })
        return pd.DataFrame(rows)

    def sweep_ranking(self, name: str) -> pd.DataFrame:
        """Parameter sets of a sweep ranked by the sweep objective (mean over shards), best first.

        Returns columns ``rank, param_version, params, objective`` (mean over the shards that finished),
        ``shards_done``, ``shards_total``, ``failed``, ``total_return`` and ``sharpe`` (means), ``run_keys``.
        Parameter sets with a missing objective on any shard rank last.
        """
        info = self.sweep_info(name)
        runs = self.query_runs(sweep=name, status=None, kind="trial")
        cols = ["rank", "param_version", "params", "objective", "shards_done", "shards_total", "failed",
                "total_return", "sharpe", "run_keys"]
        if runs.empty:
            return pd.DataFrame(columns=cols)
        out = []
        for version, g in runs.groupby("param_version", sort=False):
            done = g[g["status"] == "done"]
            objective = None
            if len(done) == len(g) and done["objective"].notna().all():
                objective = float(done["objective"].mean())
            out.append({"param_version": int(version), "params": g["params"].iloc[0], "objective": objective,
                        "shards_done": len(done), "shards_total": len(g), "failed": int((g["status"] == "failed").sum()),
                        "total_return": done["total_return"].astype(float).mean() if len(done) else None,
                        "sharpe": pd.to_numeric(done["sharpe"], errors="coerce").mean() if len(done) else None,
                        "run_keys": list(g["run_key"])})
        frame = pd.DataFrame(out)
        asc = info["direction"] == "minimize"
        frame = frame.sort_values("objective", ascending=asc, na_position="last", kind="stable").reset_index(drop=True)
        frame.insert(0, "rank", range(1, len(frame) + 1))
        return frame[cols]

    def strategies_frame(self) -> pd.DataFrame:
        """Registered strategies with their number of parameter versions and finished runs."""
        q = (sa.select(Strategy.id, Strategy.name, Strategy.strategy_type, Strategy.created_at,
                       sa.func.count(sa.distinct(ParameterSet.id)).label("param_versions"),
                       sa.func.count(sa.distinct(RunComponent.run_id)).label("runs"))
             .outerjoin(ParameterSet, ParameterSet.strategy_id == Strategy.id)
             .outerjoin(RunComponent, RunComponent.strategy_id == Strategy.id)
             .group_by(Strategy.id).order_by(Strategy.name))
        with self.session() as s:
            return pd.DataFrame([r._asdict() for r in s.execute(q)],
                                columns=["id", "name", "strategy_type", "created_at", "param_versions", "runs"])

    def sweeps_frame(self) -> pd.DataFrame:
        """Sweeps with kind, objective, status and run counts by status."""
        q = (sa.select(Sweep.name, Sweep.kind, Sweep.objective, Sweep.direction, Sweep.status, Sweep.created_at,
                       Sweep.finished_at, Run.status.label("run_status"), sa.func.count(Run.id).label("n"))
             .outerjoin(Run, Run.sweep_id == Sweep.id).group_by(Sweep.id, Run.status).order_by(Sweep.id))
        with self.session() as s:
            rows = [r._asdict() for r in s.execute(q)]
        if not rows:
            return pd.DataFrame(columns=["name", "kind", "objective", "direction", "status", "runs_done",
                                         "runs_failed", "runs_pending", "runs_running"])
        df = pd.DataFrame(rows)
        counts = df.pivot_table(index="name", columns="run_status", values="n", aggfunc="sum", fill_value=0)
        base = df.drop_duplicates("name").set_index("name")[["kind", "objective", "direction", "status",
                                                              "created_at", "finished_at"]]
        for st in ("done", "failed", "pending", "running"):
            base[f"runs_{st}"] = counts[st] if st in counts.columns else 0
        return base.reset_index()

    def run_detail(self, run_key: str) -> dict[str, Any]:
        """Everything stored about one run (key prefix allowed if unique), components included."""
        with self.session() as s:
            rows = list(s.scalars(sa.select(Run).where(Run.run_key.startswith(run_key)).limit(2)))
            if len(rows) != 1:
                raise RegistryError(f"run key {run_key!r}: {'no' if not rows else 'more than one'} run matches")
            run = rows[0]
            out = {c.name: _aware(getattr(run, c.name)) for c in Run.__table__.columns}
            out["components"] = [{"position": c.position, "strategy": c.strategy.name,
                                  "strategy_type": c.strategy.strategy_type, "param_version": c.parameter_set.version,
                                  "params": c.parameter_set.params, "strategy_sha256": c.strategy_sha256,
                                  "contribution_usdt": c.contribution_usdt} for c in run.components]
            return out


def _aware(value: Any) -> Any:
    """SQLite returns naive datetimes for ``DateTime(timezone=True)``: they are UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _state(row: Run) -> RunState:
    return RunState(row.run_key, row.status, row.attempts or 0, row.worker, _aware(row.heartbeat_at))


def _param_filters(params: Mapping[str, Any] | Sequence[tuple[str, str, Any]] | None) -> list[tuple[str, str, Any]]:
    if not params:
        return []
    if isinstance(params, Mapping):
        return [(k, "=", v) for k, v in params.items()]
    out = []
    for key, op, value in params:
        if op not in _OPS:
            raise ValueError(f"params: operator {op!r} for {key!r}: expected one of {sorted(_OPS)}")
        out.append((key, op, value))
    return out


def parse_filter(text: str) -> tuple[str, str, Any]:
    """``"fast_period<=20"`` -> ``("fast_period", "<=", 20)``; the value is parsed as JSON when possible."""
    for op in ("<=", ">=", "!=", "==", "<", ">", "="):
        if op in text:
            key, _, raw = text.partition(op)
            key = key.strip()
            if not key:
                break
            try:
                value = json.loads(raw.strip())
            except json.JSONDecodeError:
                value = raw.strip()
            return key, op, value
    raise ValueError(f"filter {text!r}: expected KEY OP VALUE with OP one of <=, >=, !=, =, <, >")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
