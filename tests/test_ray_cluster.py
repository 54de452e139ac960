"""A per_symbol universe on a real two-node Ray cluster equals the same universe on the local process pool.

The cluster runs on this machine: ``ray start --head`` and a second ``ray start --address`` as another
node, 1 CPU each, each with its own ``--temp-dir`` (so its own logs and sockets) and its own ports, token
authentication with a token made for this test (``RAY_AUTH_TOKEN_PATH``, never ``~/.ray``). Both
``ray start`` processes run with ``--block`` in their own process group: the finalizer SIGTERMs them
(Ray stops the processes each one started; draining is off), then kills whatever is left of exactly those
process groups. It never runs ``ray stop``, which would kill every Ray on the machine.

The universe (4 real USDT-M perpetuals, 3 days of 1m bars, ``ema_cross``) runs through the CLI
(``nautilus-app backtest``) with ``executor = "ray"``, ``ray_address`` = the head, ``workers = 2``, the
registry in a fresh PostgreSQL database, and the catalog in a folder both nodes read. Checks:

* every symbol's run is ``done`` and its per-instrument net PnL, trades and fees equal the run of the
  same universe with the local process executor;
* the tasks ran on both nodes: the registry's ``worker`` column holds each run's ``host:pid``, and
  Ray's worker log ``python-core-worker-*_<pid>.log`` of that pid is in exactly one node's temp dir,
  which is that node's own (its raylet socket, from ``ray.nodes()``, lives there too); both nodes appear.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import tomli_w

from catalog.freqtrade import import_freqtrade
from core.paths import REPO_ROOT, shared_data_dir
from nautilus_app.config import parse_config
from nautilus_app.research.registry import Registry

try:  # run_universe moved to nautilus_app.research.universe_run; older trees have it in nautilus_app.universe
    from nautilus_app.research.universe_run import run_universe
except ImportError:  # pragma: no cover
    from nautilus_app.universe import run_universe

WINDOW = shared_data_dir() / "freqtrade" / "binance" / "futures" / "window-2023-07"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
START, END = "2023-07-24", "2023-07-27"  # 3 days, 4,320 1m bars per symbol
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STARTUP_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _ray_cli() -> list[str]:
    exe = Path(sys.executable).with_name("ray")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]


@dataclass
class Node:
    name: str
    temp_dir: Path
    proc: subprocess.Popen
    log: Path


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    nodes: list[Node]
    info: list[dict]  # ray.nodes() as seen by a driver once both nodes were alive


def _wait_started(node: Node) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        text = node.log.read_text(errors="replace") if node.log.exists() else ""
        if "Ray runtime started" in text:
            return
        if node.proc.poll() is not None:
            raise RuntimeError(f"ray start ({node.name}) exited with {node.proc.returncode}:\n{text[-4000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"ray start ({node.name}) not up after {STARTUP_TIMEOUT} s:\n{node.log.read_text()[-4000:]}")


def _start_node(name: str, root: Path, env: dict[str, str], args: list[str]) -> Node:
    temp_dir = root / name  # short: Ray's unix socket paths live below it
    temp_dir.mkdir()
    log = root / f"{name}.log"
    ports = ["--node-manager-port", "--object-manager-port", "--metrics-export-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port"]
    cmd = [*_ray_cli(), "start", *args, "--num-cpus", "1", "--temp-dir", str(temp_dir), "--block",
           "--disable-usage-stats", *(x for p in ports for x in (p, str(_free_port())))]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=root)
    return Node(name, temp_dir, proc, log)


def _stop_node(node: Node) -> None:
    """SIGTERM the ``ray start --block`` process (it stops the processes it started), then SIGKILL what is
    left of its process group (its pid is the group id: ``start_new_session``)."""
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(node.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        node.proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def _group_members(pgid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(d.name))
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="raycl_", dir="/tmp"))
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("RAY_ADDRESS", None)
    nodes: list[Node] = []
    try:
        gcs_port = _free_port()
        nodes.append(_start_node("head", root, env, ["--head", "--port", str(gcs_port), "--include-dashboard",
                                                     "false", "--dashboard-port", str(_free_port())]))
        _wait_started(nodes[0])
        address = f"127.0.0.1:{gcs_port}"
        nodes.append(_start_node("node2", root, env, ["--address", address]))
        _wait_started(nodes[1])
        probe = ("import json, sys, time, ray\n"
                 "ray.init(address=sys.argv[1], log_to_driver=False, include_dashboard=False)\n"
                 "deadline = time.monotonic() + float(sys.argv[2])\n"
                 "while sum(n['Alive'] for n in ray.nodes()) < 2 and time.monotonic() < deadline:\n"
                 "    time.sleep(0.5)\n"
                 "print(json.dumps([{k: n[k] for k in ('NodeID', 'Alive', 'Resources', 'RayletSocketName')}\n"
                 "                  for n in ray.nodes()]))\n")
        res = subprocess.run([sys.executable, "-c", probe, address, str(STARTUP_TIMEOUT)], env=env, capture_output=True,
                             text=True, timeout=STARTUP_TIMEOUT + 60, cwd=root)
        assert res.returncode == 0, res.stderr[-4000:]
        info = json.loads(res.stdout.strip().splitlines()[-1])
        yield Cluster(address, env, nodes, info)
    finally:
        for node in reversed(nodes):
            _stop_node(node)
        left = {n.name: _group_members(n.proc.pid) for n in nodes}
        shutil.rmtree(root, ignore_errors=True)
        assert not any(left.values()), f"Ray processes left behind: {left}"


@pytest.fixture(scope="module")
def pg_registry() -> Iterator[str]:
    """A fresh PostgreSQL database for the Ray run's registry, dropped afterwards."""
    name = f"ray_cluster_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def universe_config(catalog: Path, **universe) -> dict:
    return {
        "name": "ray_universe", "catalog": str(catalog), "start": START, "end": END, "bar_types": [],
        "universe": {"market": "um", "symbols": SYMBOLS, "interval": "1m", "mode": "per_symbol", "workers": 2,
                     **universe},
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["100000 USDT"],
                    "margin_mode": "isolated"}],
        "strategies": [{"name": "ema_cross", "params": {"fast_period": 20, "slow_period": 60, "allow_short": True,
                                                        "position_fraction": 0.05}}],
    }


def per_instrument(metrics: dict) -> dict[str, tuple]:
    return {r["instrument_id"]: (r["trades"], round(r["net_pnl_usdt"], 9), round(r["fees_paid_usdt"], 9),
                                 round(r["funding_paid_usdt"], 9))
            for r in metrics["by_instrument"]}


def test_per_symbol_universe_on_a_two_node_ray_cluster(cluster: Cluster, pg_registry: str, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    import_freqtrade(catalog, data_dir=WINDOW, pairs=SYMBOLS, timeframes=["1m"], trading_mode="futures")

    # the same universe on the local process pool (SQLite registry)
    local = run_universe(parse_config(universe_config(catalog, registry=f"sqlite:///{tmp_path / 'local.sqlite'}")),
                         results_root=tmp_path / "res_local", progress=False)

    # on the cluster, driven by the CLI like a user would (its own process: Ray's auth mode and state stay there)
    cfg_file = tmp_path / "ray_universe.toml"
    cfg_file.write_text(tomli_w.dumps(universe_config(catalog, executor="ray", ray_address=cluster.address,
                                                      registry=pg_registry)))
    res_ray = tmp_path / "res_ray"
    proc = subprocess.run([sys.executable, "-m", "nautilus_app", "backtest", str(cfg_file), "--results-dir",
                           str(res_ray), "--no-progress"], env=cluster.env, capture_output=True, text=True,
                          timeout=240, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folders = [p for p in res_ray.iterdir() if (p / "universe.json").exists()]
    assert len(folders) == 1
    metrics = json.loads((folders[0] / "metrics.json").read_text())

    # same per-symbol results as the local pool
    expected = per_instrument(local.metrics)
    assert sorted(expected) == sorted(f"{s}-PERP.BINANCE_USDM" for s in SYMBOLS)
    assert sum(v[0] for v in expected.values()) > 0  # the strategy traded: the comparison means something
    assert per_instrument(metrics) == expected
    assert metrics["final_equity"] == pytest.approx(local.metrics["final_equity"], abs=1e-6)

    # the runs were recorded in PostgreSQL by the Ray workers
    reg = Registry.open(pg_registry)
    try:
        runs = reg.query_runs(status=None)
        assert sorted(runs["label"]) == sorted(SYMBOLS)
        assert set(runs["status"]) == {"done"}
        workers = {row.label: reg.run_detail(row.run_key)["worker"] for row in runs.itertuples()}
    finally:
        reg.close()

    # ... on both nodes: each worker pid has its Ray core-worker log in exactly one node's temp dir
    assert len(cluster.info) == 2 and all(n["Alive"] and n["Resources"].get("CPU") == 1.0 for n in cluster.info)
    for node in cluster.nodes:  # each node's raylet lives under its own temp dir
        assert sum(n["RayletSocketName"].startswith(str(node.temp_dir) + "/") for n in cluster.info) == 1
    node_of = {}
    for sym, worker in workers.items():
        host, _, pid = worker.rpartition(":")
        assert host == socket.gethostname() and int(pid) != os.getpid()
        where = [node.name for node in cluster.nodes
                 if list(node.temp_dir.glob(f"session_*/logs/python-core-worker-*_{int(pid)}.log"))]
        assert len(where) == 1, (sym, worker, where)
        node_of[sym] = where[0]
    assert set(node_of.values()) == {"head", "node2"}, node_of
