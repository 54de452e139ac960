"""SQLAlchemy models of the research registry (strategies, parameter versions, sweeps, runs, metrics).

The schema is created and changed **only** by the Alembic migrations in
``nautilus_app/research/migrations`` (``Registry.open(..., migrate=True)`` upgrades to head); these
models describe the current head. A test compares them with the migrated database
(``alembic.autogenerate.compare_metadata``), so a model change without a migration fails.

Tables
------
``strategies``       one row per named strategy (``name`` unique) of a registered type (``strategies.REGISTRY`` key).
``parameter_sets``   parameter versions of a strategy: ``version`` 1, 2, ... in order of first use; ``params_hash``
                     = sha256 of the canonical JSON of ``params`` (unique per strategy).
``sweeps``           a grid / random / optuna sweep, a walk-forward study or a portfolio study; ``spec`` is the
                     validated sweep config, ``summary`` the final report numbers.
``runs``             one backtest (a sweep trial on one shard, an out-of-sample window, a portfolio run ...).
                     ``run_key`` is the idempotent trial key (sha256 of sweep name, canonical run config and
                     strategy file digests): a re-run of a sweep finds finished keys and skips them.
``run_components``   the strategies of a run (one row per ``[[strategies]]`` entry), with their parameter set,
                     strategy file sha256 and (portfolio runs) their PnL contribution.
``metrics``          every numeric metric of a finished run as ``(run_id, name, value)`` for threshold queries.

Units: times are UTC (``DateTime(timezone=True)``); money in USDT; metric values as
:func:`nautilus_app.metrics.compute_metrics` defines them (fractions, not percent).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: JSON on SQLite (JSON1), JSONB on PostgreSQL (indexable, ``->>`` paths).
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Run states. ``pending`` -> ``running`` (a worker claimed it) -> ``done`` | ``failed``.
RUN_STATUSES = ("pending", "running", "done", "failed")
#: What a run is for.
RUN_KINDS = ("backtest", "trial", "oos", "holdout", "portfolio", "standalone")


def utcnow() -> dt.datetime:
    """Current time, UTC, timezone-aware."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names across SQLite and PostgreSQL)."""

    metadata = sa.MetaData(naming_convention=NAMING)


class Strategy(Base):
    """A named strategy of a registered type."""

    __tablename__ = "strategies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    strategy_type: Mapped[str] = mapped_column(sa.String(100), index=True)
    strategy_path: Mapped[str] = mapped_column(sa.String(300))
    config_path: Mapped[str] = mapped_column(sa.String(300))
    description: Mapped[str | None] = mapped_column(sa.Text())
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    parameter_sets: Mapped[list[ParameterSet]] = relationship(back_populates="strategy")


class ParameterSet(Base):
    """One version of a strategy's parameters."""

    __tablename__ = "parameter_sets"
    __table_args__ = (
        sa.UniqueConstraint("strategy_id", "params_hash"),
        sa.UniqueConstraint("strategy_id", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    strategy_id: Mapped[int] = mapped_column(sa.ForeignKey("strategies.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer())
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    params_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    strategy: Mapped[Strategy] = relationship(back_populates="parameter_sets")


class Sweep(Base):
    """A parameter sweep, walk-forward study or portfolio study."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(300), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(30))  # grid | random | optuna | walk_forward | portfolio
    strategy_id: Mapped[int | None] = mapped_column(sa.ForeignKey("strategies.id", ondelete="SET NULL"), index=True)
    objective: Mapped[str | None] = mapped_column(sa.String(100))
    direction: Mapped[str | None] = mapped_column(sa.String(10))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    spec_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(20), default="running")
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Run(Base):
    """One backtest run and its provenance, state and headline numbers."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), index=True, default="pending")
    sweep_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    trial_number: Mapped[int | None] = mapped_column(sa.Integer())
    shard: Mapped[str | None] = mapped_column(sa.String(300))
    label: Mapped[str | None] = mapped_column(sa.String(300))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    config_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    code_version: Mapped[str] = mapped_column(sa.String(80))
    data_start: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    data_end: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    catalog: Mapped[str] = mapped_column(sa.String(1000))
    bar_types: Mapped[list[str]] = mapped_column(JSONType)
    results_root: Mapped[str | None] = mapped_column(sa.String(1000))
    results_run_id: Mapped[str | None] = mapped_column(sa.String(300))
    results_path: Mapped[str | None] = mapped_column(sa.String(1000))
    objective: Mapped[float | None] = mapped_column(sa.Float())
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(sa.Integer(), default=0)
    worker: Mapped[str | None] = mapped_column(sa.String(300))
    error: Mapped[str | None] = mapped_column(sa.Text())
    iterations: Mapped[int | None] = mapped_column(sa.BigInteger())
    orders: Mapped[int | None] = mapped_column(sa.Integer())
    engine_seconds: Mapped[float | None] = mapped_column(sa.Float())
    wall_seconds: Mapped[float | None] = mapped_column(sa.Float())
    peak_rss_mb: Mapped[float | None] = mapped_column(sa.Float())
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))

    components: Mapped[list[RunComponent]] = relationship(
        back_populates="run", order_by="RunComponent.position", cascade="all, delete-orphan"
    )


class RunComponent(Base):
    """One strategy instance of a run."""

    __tablename__ = "run_components"

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)
    strategy_id: Mapped[int] = mapped_column(sa.ForeignKey("strategies.id", ondelete="CASCADE"), index=True)
    parameter_set_id: Mapped[int] = mapped_column(sa.ForeignKey("parameter_sets.id", ondelete="CASCADE"), index=True)
    strategy_sha256: Mapped[str] = mapped_column(sa.String(64))
    contribution_usdt: Mapped[float | None] = mapped_column(sa.Float())

    run: Mapped[Run] = relationship(back_populates="components")
    strategy: Mapped[Strategy] = relationship()
    parameter_set: Mapped[ParameterSet] = relationship()


class Metric(Base):
    """A numeric metric of a finished run (booleans as 0/1; ``None`` values are not stored)."""

    __tablename__ = "metrics"
    __table_args__ = (sa.Index("ix_metrics_name_value", "name", "value"),)

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    value: Mapped[float] = mapped_column(sa.Float())
