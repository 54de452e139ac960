"""Sweeps, resumability, crashes, walk-forward, portfolios and Ray, with real Nautilus backtests.

Data: one week (2025-06-01 .. 06-07) of real BTCUSDT and ETHUSDT spot 1m bars imported from the
shared Binance Vision mirror into a module-scoped catalog. Every trial runs in its own worker
process. Expected values (grid points, windows, best parameters, the stitched curve, contributions)
are computed here independently from the spec, from the runs' files and with pandas.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app.config import ConfigError, parse_config
from nautilus_app.research.execution import ProcessExecutor
from nautilus_app.research.portfolio import run_portfolio
from nautilus_app.research.registry import Registry
from nautilus_app.research.spec import parse_sweep
from nautilus_app.research.sweep import grid_points, random_points, run_sweep
from nautilus_app.research.walkforward import run_walk_forward

MIRROR = shared_data_dir() / "binance-vision"
BTC = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
ETH = "ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2025-06-01", end="2025-06-07", kinds=("klines",))
    return root


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("research")


@pytest.fixture(scope="module")
def reg(work: Path) -> Iterator[Registry]:
    r = Registry.open(f"sqlite:///{work / 'registry.sqlite'}")
    yield r
    r.close()


def base_config(catalog: Path, **over):
    raw = {"name": "week", "catalog": str(catalog), "start": "2025-06-01", "end": "2025-06-08", "bar_types": [BTC],
           "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
           "strategies": [{"name": "ema_cross", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BTC,
                                                            "fast_period": 10, "slow_period": 30}}]}
    raw.update(over)
    return parse_config(raw)


def sweep_of(catalog: Path, work: Path, **spec):
    raw = {"name": f"t-{uuid.uuid4().hex[:6]}", "base_config": "(inline)", "results_root": str(work / "res"),
           "workers": 2, **spec}
    return parse_sweep(raw, base=base_config(catalog))


GRID = {"fast_period": {"values": [5, 10]}, "slow_period": {"low": 30, "high": 60, "step": 30}}


def metrics_file(path: str) -> dict:
    return json.loads((Path(path) / "metrics.json").read_text())


# ---- trial sets --------------------------------------------------------------------------------------


def test_grid_and_random_points_match_the_spec(catalog: Path, work: Path) -> None:
    sw = sweep_of(catalog, work, params={"fast_period": {"low": 5, "high": 25, "step": 10},
                                         "slow_period": {"values": [10, 20, 40]},
                                         "position_fraction": {"low": 0.1, "high": 0.3, "step": 0.1}},
                  constraints=["fast_period < slow_period"])
    fast, slow, frac = [5, 15, 25], [10, 20, 40], [0.1, 0.2, 0.3]  # written out by hand from the spec
    expected = [{"fast_period": f, "slow_period": s, "position_fraction": p}
                for f, s, p in itertools.product(fast, slow, frac) if f < s]
    got = grid_points(sw)
    assert len(got) == len(expected) == 18  # 6 (fast, slow) pairs with fast < slow, x 3 fractions
    for g, e in zip(got, expected, strict=True):
        assert g.keys() == e.keys() and g["fast_period"] == e["fast_period"] and g["slow_period"] == e["slow_period"]
        assert g["position_fraction"] == pytest.approx(e["position_fraction"])

    rnd = parse_sweep({"name": "r", "base_config": "-", "method": "random", "n_trials": 6, "seed": 7,
                       "params": {"fast_period": {"low": 3, "high": 40}, "slow_period": {"values": [20, 50, 80]},
                                  "position_fraction": {"low": 0.05, "high": 0.5, "log": True}},
                       "constraints": ["fast_period < slow_period"]}, base=base_config(catalog))
    pts = random_points(rnd)
    assert len(pts) == 6 and len({json.dumps(p, sort_keys=True) for p in pts}) == 6
    for p in pts:
        assert isinstance(p["fast_period"], int) and 3 <= p["fast_period"] <= 40
        assert p["slow_period"] in (20, 50, 80) and p["fast_period"] < p["slow_period"]
        assert 0.05 <= p["position_fraction"] <= 0.5
    assert random_points(rnd) == pts  # same seed, same points (resumable)
    assert random_points(parse_sweep({**msgspec_raw(rnd), "seed": 8}, base=rnd.base)) != pts


def msgspec_raw(sw) -> dict:
    import msgspec

    return {k: v for k, v in msgspec.to_builtins(sw.spec).items() if v is not None}


def test_sweep_config_errors_name_the_key(catalog: Path, work: Path) -> None:
    cases = [
        ({"params": {"nope": {"values": [1]}}}, "key params.nope"),
        ({"params": {"fast_period": {"low": 5, "high": 3, "step": 1}}}, "key params.fast_period.high"),
        ({"params": {"fast_period": {"low": 5, "high": 9}}}, "key params.fast_period.step"),
        ({"params": GRID, "method": "random"}, "key n_trials"),
        ({"params": GRID, "objective": "sharp"}, "key objective"),
        ({"params": GRID, "constraints": ["fast_period << 3"]}, "key constraints[0]"),
        ({"params": GRID, "shards": ["ETHUSDT.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"]}, "key shards[0]"),
        ({"params": GRID, "walk_forward": {"train_days": 2, "test_days": 1, "step_days": 0.5}}, "key walk_forward.step_days"),
        ({"params": GRID, "wrkers": 2}, "wrkers"),
    ]
    for spec, msg in cases:
        with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            sweep_of(catalog, work, **spec)


# ---- running, resuming, crashing -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid_sweep(catalog: Path, work: Path, reg: Registry):
    sw = sweep_of(catalog, work, params=GRID, objective="total_return", name="grid-main")
    return sw, run_sweep(sw, registry=reg, progress=False)


def test_grid_sweep_runs_every_point_and_ranks_from_the_run_files(grid_sweep, reg: Registry) -> None:
    sw, res = grid_sweep
    assert (res.runs, res.executed, res.skipped, res.failed, res.crashes) == (4, 4, 0, 0, 0)
    runs = reg.query_runs(sweep=sw.spec.name)
    assert sorted((p["fast_period"], p["slow_period"]) for p in runs["params"]) == [(5, 30), (5, 60), (10, 30), (10, 60)]
    # objective and ranking recomputed from each run's metrics.json
    by_params = {}
    for _, r in runs.iterrows():
        m = metrics_file(r["results_path"])
        assert r["objective"] == m["total_return"] and r["sharpe"] == m["sharpe"]
        assert r["code_version"] and r["config_hash"] and len(r["strategy_sha256"]) == 64
        assert r["data_start"] == pd.Timestamp("2025-06-01", tz="UTC")
        by_params[(r["params"]["fast_period"], r["params"]["slow_period"])] = m["total_return"]
    expected_order = sorted(by_params, key=lambda k: -by_params[k])
    got_order = [(p["fast_period"], p["slow_period"]) for p in res.ranking["params"]]
    assert got_order == expected_order
    assert res.best["objective"] == max(by_params.values())
    # the recorded config is the swept point: the trial's config.json says so too
    cfg = json.loads((Path(runs["results_path"].iloc[0]) / "config.json").read_text())
    assert cfg["strategies"][0]["params"]["fast_period"] == runs["params"].iloc[0]["fast_period"]


def test_rerun_skips_finished_trials_and_retries_abandoned_ones(grid_sweep, reg: Registry) -> None:
    sw, _ = grid_sweep
    before = reg.query_runs(sweep=sw.spec.name).set_index("run_key")
    again = run_sweep(sw, registry=reg, progress=False)
    assert (again.executed, again.skipped) == (0, 4)
    after = reg.query_runs(sweep=sw.spec.name).set_index("run_key")
    assert (after["attempts"] == 1).all() and list(after.index) == list(before.index)
    # simulate a driver killed while a trial ran: its row says running, its worker pid is gone
    victim = before.index[0]
    with reg.engine.begin() as c:
        c.execute(sa.text("update runs set status='running', worker=:w, metrics=NULL where run_key=:k"),
                  {"w": f"{os.uname().nodename}:{_dead_pid()}", "k": victim})
    third = run_sweep(sw, registry=reg, progress=False)
    assert (third.executed, third.skipped) == (1, 3)
    detail = reg.run_detail(victim)
    assert detail["status"] == "done" and detail["attempts"] == 2
    assert detail["metrics"]["total_return"] == before.loc[victim, "objective"]  # deterministic re-run


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_killed_worker_is_retried(catalog: Path, work: Path, reg: Registry) -> None:
    sw = sweep_of(catalog, work, params={"fast_period": {"values": [7]}, "slow_period": {"values": [40]}},
                  name="crash", workers=1)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            df = reg.query_runs(sweep="crash", status="running")
            if len(df) and df["run_key"].notna().all():
                w = reg.run_detail(df["run_key"].iloc[0])["worker"]
                pid = int(w.rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)  # a real crash of the worker process mid-run
                killed.append(pid)
                return
            time.sleep(0.02)

    t = threading.Thread(target=killer)
    t.start()
    res = run_sweep(sw, registry=reg, progress=False)
    t.join()
    assert killed, "the worker was never seen running"
    assert res.crashes == 1 and res.failed == 0
    run = reg.query_runs(sweep="crash").iloc[0]
    assert run["status"] == "done" and run["attempts"] == 2
    assert run["total_return"] == metrics_file(run["results_path"])["total_return"]


# ---- optuna ------------------------------------------------------------------------------------------


def test_optuna_trials_follow_an_independent_tpe_study(catalog: Path, work: Path, reg: Registry) -> None:
    import optuna

    space = {"fast_period": {"values": [5, 10, 15]}, "slow_period": {"low": 40, "high": 80, "step": 20}}
    sw = sweep_of(catalog, work, params=space, method="optuna", n_trials=4, seed=11, objective="total_return",
                  name="opt", workers=1)
    res = run_sweep(sw, registry=reg, progress=False)
    assert res.executed == 4 and res.failed == 0
    runs = reg.query_runs(sweep="opt").sort_values("trial_number")
    got = [(r["fast_period"], r["slow_period"]) for r in runs["params"]]
    value_of = {(r["params"]["fast_period"], r["params"]["slow_period"]): r["objective"] for _, r in runs.iterrows()}
    # replay: the same sampler and seed, told the registry's objective for each asked point
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=11))
    dists = {"fast_period": optuna.distributions.CategoricalDistribution([5, 10, 15]),
             "slow_period": optuna.distributions.IntDistribution(40, 80, step=20)}
    expected = []
    while len(expected) < 4:
        trial = study.ask(dists)
        pt = (trial.params["fast_period"], trial.params["slow_period"])
        if pt in expected:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        expected.append(pt)
        study.tell(trial, value_of[pt])
    assert got == expected
    assert res.best["objective"] == max(value_of.values())


def test_random_sweep_runs_the_drawn_points(catalog: Path, work: Path, reg: Registry) -> None:
    sw = sweep_of(catalog, work, params={"fast_period": {"low": 5, "high": 20}, "slow_period": {"values": [40, 60]}},
                  method="random", n_trials=2, seed=3, name="rnd")
    res = run_sweep(sw, registry=reg, progress=False)
    assert res.executed == 2
    runs = reg.query_runs(sweep="rnd").sort_values("trial_number")
    assert list(runs["params"]) == random_points(sw)


# ---- Ray (real local Ray) on the real PostgreSQL registry ----------------------------------------------


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    name = f"research_sweep_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_local_ray_gives_the_same_metrics_as_the_process_pool(grid_sweep, catalog: Path, work: Path,
                                                              pg_url: str) -> None:
    from nautilus_app.research.execution import RayExecutor

    sw_pool, res_pool = grid_sweep
    sw = sweep_of(catalog, work, params=GRID, objective="total_return", name="grid-ray", executor="ray")
    pg = Registry.open(pg_url)
    ex = RayExecutor(workers=2)
    try:
        res = run_sweep(sw, registry=pg, executor=ex, progress=False)
    finally:
        ex.shutdown()
    assert (res.executed, res.failed) == (4, 0)
    ray_runs = pg.query_runs(sweep="grid-ray")
    pids = {r.rsplit(":", 1)[1] for r in (pg.run_detail(k)["worker"] for k in ray_runs["run_key"])}
    assert len(pids) == 4  # max_calls=1: one fresh worker process per trial
    local = Registry.open(f"sqlite:///{work / 'registry.sqlite'}", migrate=False)
    pool_runs = local.query_runs(sweep=sw_pool.spec.name)
    local.close()
    assert len(pool_runs) == 4 and res_pool.failed == 0
    pool = {json.dumps(r["params"], sort_keys=True): r["metrics"] for _, r in pool_runs.iterrows()}
    for _, r in ray_runs.iterrows():
        assert r["metrics"] == pool[json.dumps(r["params"], sort_keys=True)]
    pg.close()


# ---- walk-forward ------------------------------------------------------------------------------------


def test_walk_forward_windows_selection_and_stitched_curve(catalog: Path, work: Path, reg: Registry) -> None:
    sw = sweep_of(catalog, work, name="wf", objective="total_return",
                  params={"fast_period": {"values": [5, 20]}, "slow_period": {"values": [60]}},
                  walk_forward={"train_days": 2, "test_days": 1, "holdout_days": 1})
    res = run_walk_forward(sw, registry=reg, progress=False)
    # windows by hand: period 06-01 .. 06-08, holdout 06-07 .. 06-08, train 2 d, test 1 d, step 1 d
    day = pd.Timedelta(1, unit="D")
    t0 = pd.Timestamp("2025-06-01", tz="UTC")
    expected = [(t0 + k * day, t0 + k * day + 2 * day, t0 + k * day + 3 * day) for k in range(4)]
    got = [(r.train_start, r.train_end, r.test_end) for r in res.windows.itertuples()]
    assert got == expected
    assert list(res.windows["test_start"]) == [e[1] for e in expected]

    segments = []
    for w in res.windows.itertuples():
        # best in-sample point, from the window's runs' own metrics files
        is_runs = reg.query_runs(sweep=f"wf/w{w.window:02d}")
        assert len(is_runs) == 2
        assert set(is_runs["data_start"]) == {w.train_start} and set(is_runs["data_end"]) == {w.train_end}
        scores = {r["params"]["fast_period"]: metrics_file(r["results_path"])["total_return"] for _, r in is_runs.iterrows()}
        assert w.params["fast_period"] == max(scores, key=scores.get)
        oos = reg.run_detail(w.oos_run_keys[0])
        assert oos["kind"] == "oos" and oos["components"][0]["params"]["fast_period"] == w.params["fast_period"]
        assert (oos["data_start"], oos["data_end"]) == (w.test_start, w.test_end)
        eq = pd.read_parquet(Path(oos["results_path"]) / "equity.parquet").set_index("ts")["equity"]
        assert eq.index[0] > w.test_start and eq.index[-1] == w.test_end  # bars closing inside the window
        segments.append((eq, metrics_file(oos["results_path"])["starting_equity"]))
    # stitched by hand: compound each window's return path onto the previous window's end
    level, parts = 1.0, []
    for eq, s in segments:
        parts.append(eq / s * level)
        level = float(parts[-1].iloc[-1])
    stitched = pd.concat(parts) * segments[0][1]
    assert list(res.oos_equity.index) == list(stitched.index)
    np.testing.assert_allclose(res.oos_equity["equity"].to_numpy(), stitched.to_numpy(), rtol=1e-12)
    assert res.oos_metrics["total_return"] == pytest.approx(level - 1.0, rel=1e-12)
    # holdout: the last window's choice, on the last day only
    h = reg.run_detail(res.holdout["run_keys"][0])
    assert h["kind"] == "holdout" and h["components"][0]["params"]["fast_period"] == res.windows["params"].iloc[-1]["fast_period"]
    assert (h["data_start"], h["data_end"]) == (t0 + 6 * day, t0 + 7 * day)
    assert (res.report_path / "windows.csv").exists() and (res.report_path / "oos_equity.parquet").exists()


# ---- portfolio ---------------------------------------------------------------------------------------


def test_portfolio_contributions_sum_to_the_total(catalog: Path, work: Path, reg: Registry) -> None:
    cfg = base_config(catalog, bar_types=[BTC, ETH], strategies=[
        {"name": "ema_cross", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BTC, "fast_period": 10,
                                         "slow_period": 30}},
        {"name": "mean_reversion", "params": {"instrument_id": "ETHUSDT.BINANCE", "bar_type": ETH}},
        {"name": "trend_following", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BTC}},
    ])
    ex = ProcessExecutor(2)
    res = run_portfolio(cfg, name="pf", registry=reg, executor=ex, results_root=work / "res", progress=False)
    ex.shutdown()
    run = reg.run_detail(res.run_key)
    path = Path(run["results_path"])
    m = metrics_file(str(path))
    labels = [c for c in res.contributions.columns if c not in ("total", "unattributed_usdt")]
    assert len(labels) == 3
    total = m["final_equity"] - m["starting_equity"]
    assert res.contributions[labels].iloc[-1].sum() == pytest.approx(total, abs=1e-6)
    np.testing.assert_allclose(res.contributions[labels].sum(axis=1), res.contributions["total"], atol=1e-6)
    # independently: positions are flat at the end, so each strategy's PnL is the sum of its fills' cash flows
    fills = pd.read_parquet(path / "fills.parquet")
    sign = np.where(fills["order_side"] == "BUY", 1.0, -1.0)
    fills["cash"] = -sign * fills["last_qty"] * fills["last_px"] - fills["commission"]
    assert (fills.assign(q=sign * fills["last_qty"]).groupby(["strategy_id", "instrument_id"])["q"].sum().abs() < 1e-9).all()
    by_tag = fills.groupby(fills["strategy_id"].str[-3:])["cash"].sum()
    for i, label in enumerate(labels):
        assert res.contributions[label].iloc[-1] == pytest.approx(by_tag.get(f"{i:03d}", 0.0), abs=1e-6)
        assert run["components"][i]["contribution_usdt"] == pytest.approx(by_tag.get(f"{i:03d}", 0.0), abs=1e-6)
    # correlation of daily contribution changes, by hand
    daily = res.contributions[labels].resample("1D", label="right", closed="right").last()
    daily = pd.concat([pd.DataFrame([[0.0] * 3], columns=labels), daily.reset_index(drop=True)]).diff().iloc[1:]
    np.testing.assert_allclose(res.correlation.to_numpy(), daily.astype(float).corr().to_numpy(), atol=1e-12)
    # standalone runs: one per strategy, only its own bar type, compared in the table
    for i, key in enumerate(res.standalone_keys):
        solo = reg.run_detail(key)
        sm = solo["metrics"]
        assert solo["kind"] == "standalone" and len(solo["config"]["strategies"]) == 1
        assert solo["config"]["bar_types"] == [cfg.strategies[i].params["bar_type"]]
        assert res.comparison["standalone_pnl_usdt"].iloc[i] == pytest.approx(sm["final_equity"] - sm["starting_equity"])
