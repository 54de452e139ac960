"""Alembic environment of the research registry (online mode only: it always talks to a database)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from nautilus_app.research.models import Base


def _url() -> str:
    from nautilus_app.research.registry import default_registry_url

    cfg = context.config
    url = cfg.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return url or cfg.get_main_option("sqlalchemy.url") or default_registry_url()


def run_migrations_online() -> None:
    """Upgrade/downgrade on a connection given by the caller (``config.attributes['connection']``) or the URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # noqa: ANN001 - sqlalchemy Connection
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER on SQLite goes through table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) mode is not supported: pass a database URL")
run_migrations_online()
