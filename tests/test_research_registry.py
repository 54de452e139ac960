"""Research registry on SQLite and on the real PostgreSQL server (127.0.0.1:5432, a temporary database).

Expected results are built by hand in each test (which runs must match which filter), never read
back from the code under test.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from nautilus_app.research import registry as registry_mod
from nautilus_app.research.models import Base
from nautilus_app.research.registry import Registry, RegistryError, parse_filter

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    name = f"research_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path, pg_url: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite'}"
        return
    yield pg_url
    # empty the PostgreSQL database between tests: downgrade to base drops every registry table
    registry_mod.downgrade(pg_url, "base")


def test_migrations_upgrade_from_empty_match_models(url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(url)
    assert [t for t in sa.inspect(engine).get_table_names() if t != "alembic_version"] == []
    registry_mod.upgrade(url)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"strategies", "parameter_sets", "sweeps", "runs", "run_components", "metrics", "alembic_version"} <= tables
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diffs == [], f"models and migrations differ: {diffs}"
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == "0001_registry"
    registry_mod.downgrade(url, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    registry_mod.upgrade(url)  # and up again
    assert "runs" in sa.inspect(engine).get_table_names()
    engine.dispose()


def _add_run(reg: Registry, key: str, strategy: str, stype: str, params: dict, metrics: dict | None,
             status: str = "done") -> None:
    sid = reg.ensure_strategy(strategy, stype)
    pid, _ = reg.ensure_parameter_set(sid, params)
    reg.prepare_run(run_key=key, kind="trial", config={"k": key}, config_hash="h" * 64, code_version="abc",
                    components=[(sid, pid, "s" * 64)], catalog="/cat", bar_types=["X"],
                    data_start=dt.datetime(2025, 6, 1, tzinfo=dt.UTC), data_end=dt.datetime(2025, 6, 8, tzinfo=dt.UTC))
    if metrics is not None:
        assert reg.claim_run(key, "w:1") is not None
        reg.finish_run(key, metrics=metrics, objective=metrics.get("sharpe"), results_path="/r", iterations=10,
                       orders=2, engine_seconds=0.1, wall_seconds=1.0, peak_rss_mb=300.0)


def test_registry_versions_and_queries(url: str) -> None:
    reg = Registry.open(url)
    sid = reg.ensure_strategy("btc_fast", "ema_cross")
    assert reg.ensure_strategy("btc_fast", "ema_cross") == sid
    with pytest.raises(RegistryError, match="registered with type 'ema_cross'"):
        reg.ensure_strategy("btc_fast", "mean_reversion")
    with pytest.raises(RegistryError, match="strategy type 'nope'"):
        reg.ensure_strategy("x", "nope")
    # parameter versions: 1, 2 in order of first use; same dict (any key order) = same version
    assert reg.ensure_parameter_set(sid, {"fast_period": 5, "slow_period": 30})[1] == 1
    assert reg.ensure_parameter_set(sid, {"fast_period": 10, "slow_period": 30})[1] == 2
    assert reg.ensure_parameter_set(sid, {"slow_period": 30, "fast_period": 5})[1] == 1

    runs = {  # key: (strategy, type, params, metrics)
        "a" * 64: ("btc_fast", "ema_cross", {"fast_period": 5, "slow_period": 30}, {"sharpe": 2.0, "max_drawdown": 0.10, "trades": 40}),
        "b" * 64: ("btc_fast", "ema_cross", {"fast_period": 10, "slow_period": 30}, {"sharpe": 0.5, "max_drawdown": 0.05, "trades": 12}),
        "c" * 64: ("eth_mr", "mean_reversion", {"bb_period": 20}, {"sharpe": 3.0, "max_drawdown": 0.30, "trades": 7}),
        "d" * 64: ("btc_slow", "ema_cross", {"fast_period": 20, "slow_period": 60}, {"sharpe": 1.5, "max_drawdown": 0.25, "trades": 9}),
    }
    for key, (name, stype, params, metrics) in runs.items():
        _add_run(reg, key, name, stype, params, metrics)
    _add_run(reg, "e" * 64, "btc_fast", "ema_cross", {"fast_period": 5, "slow_period": 30}, None)  # pending

    def keys(df) -> set[str]:
        return {k[0] for k in df["run_key"]} if len(df) else set()

    assert keys(reg.query_runs(strategy_type="ema_cross")) == {"a", "b", "d"}
    assert keys(reg.query_runs(strategy_type="ema_cross", status=None)) == {"a", "b", "d", "e"}
    assert keys(reg.query_runs(min_metrics={"sharpe": 1.0})) == {"a", "c", "d"}
    assert keys(reg.query_runs(min_metrics={"sharpe": 1.0}, max_metrics={"max_drawdown": 0.2})) == {"a"}
    assert keys(reg.query_runs(params={"fast_period": 10})) == {"b"}
    assert keys(reg.query_runs(params=[("fast_period", "<=", 10), ("slow_period", "=", 30)])) == {"a", "b"}
    assert keys(reg.query_runs(params=[parse_filter("slow_period>30")])) == {"d"}
    assert keys(reg.query_runs(strategy="btc_fast", min_metrics={"trades": 20})) == {"a"}
    ordered = reg.query_runs(order_by="sharpe")
    assert [k[0] for k in ordered["run_key"]] == ["c", "a", "d", "b"]
    row = ordered.iloc[0]
    assert row["strategy_type"] == "mean_reversion" and row["params"] == {"bb_period": 20}
    assert row["data_start"] == dt.datetime(2025, 6, 1, tzinfo=dt.UTC) and row["code_version"] == "abc"
    frame = reg.strategies_frame().set_index("name")
    assert frame.loc["btc_fast", "param_versions"] == 2 and frame.loc["btc_fast", "runs"] == 3
    detail = reg.run_detail("c" * 10)
    assert detail["metrics"]["trades"] == 7 and detail["components"][0]["strategy"] == "eth_mr"
    with pytest.raises(ValueError, match="expected KEY OP VALUE"):
        parse_filter("fast_period")
    reg.close()


def test_sweep_identity_and_stale_runs(url: str) -> None:
    reg = Registry.open(url)
    reg.ensure_sweep("s1", kind="grid", spec={"a": 1})
    assert reg.ensure_sweep("s1", kind="grid", spec={"a": 1})  # same spec: resume
    with pytest.raises(RegistryError, match="different spec"):
        reg.ensure_sweep("s1", kind="grid", spec={"a": 2})
    for k in "xyzw":
        _add_run(reg, k * 64, "btc_fast", "ema_cross", {"fast_period": 5}, None)
    # x: claimed by a process of this host that has exited; y: another host, lease expired;
    # z: another host, fresh heartbeat (still owned); w: pending
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    reg.claim_run("x" * 64, f"{host}:{dead.pid}")
    reg.claim_run("y" * 64, "otherhost:1")
    reg.claim_run("z" * 64, "otherhost:2")
    with reg.engine.begin() as c:
        c.execute(sa.text("update runs set heartbeat_at = :t where run_key = :k"),
                  {"t": dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), "k": "y" * 64})
    released = reg.release_stale([k * 64 for k in "xyzw"], lease_seconds=600)
    assert sorted(k[0] for k in released) == ["x", "y"]
    assert reg.run_state("z" * 64).status == "running"
    assert reg.run_state("x" * 64).status == "pending" and reg.run_state("x" * 64).attempts == 1
    # a live pid of this host is not released
    reg.claim_run("w" * 64, f"{host}:{os.getpid()}")
    assert reg.release_stale(["w" * 64], lease_seconds=600) == []
    reg.close()


def test_cli_registry_queries_and_sweep_config_errors(tmp_path, capsys) -> None:
    from nautilus_app.cli import main

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert main(["registry", "--url", url, "init"]) == 0
    reg = Registry.open(url)
    _add_run(reg, "a" * 64, "btc_fast", "ema_cross", {"fast_period": 5}, {"sharpe": 2.0, "max_drawdown": 0.1})
    _add_run(reg, "b" * 64, "btc_fast", "ema_cross", {"fast_period": 10}, {"sharpe": 0.2, "max_drawdown": 0.1})
    reg.close()
    capsys.readouterr()
    assert main(["registry", "--url", url, "--json", "runs", "--min", "sharpe=1", "--param", "fast_period<=5"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert [r["run_key"][0] for r in rows] == ["a"]
    assert main(["registry", "--url", url, "runs", "--min", "sharpe=5"]) == 1  # nothing matches
    assert main(["registry", "--url", url, "runs", "--min", "sharpe"]) == 2
    assert "expected NAME=NUMBER" in capsys.readouterr().err
    bad = tmp_path / "sweep.toml"
    bad.write_text('name = "x"\nbase_config = "configs/demo_spot.toml"\n[params.fast_perod]\nvalues = [1]\n')
    assert main(["sweep", str(bad), "--registry", url]) == 2
    assert "key params.fast_perod" in capsys.readouterr().err
