"""The shipped sweep, configs/sweeps/ema_cross.toml, loads (its base_config resolves against the sweep
file's folder) and runs: every (point, shard) trial on a short real window, each trial's metrics equal to
a direct run_backtest of the same config."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import REPO_ROOT, shared_data_dir
from nautilus_app.backtest import run_backtest
from nautilus_app.config import load_config
from nautilus_app.research.registry import Registry
from nautilus_app.research.spec import load_sweep, parse_sweep
from nautilus_app.research.sweep import grid_points, run_sweep, single_strategy_config

SWEEP = REPO_ROOT / "configs" / "sweeps" / "ema_cross.toml"


def test_shipped_sweep_loads_with_its_base_config() -> None:
    sw = load_sweep(SWEEP)
    assert sw.base.strategies[sw.spec.strategy].label() == "ema_cross"
    points = grid_points(sw)
    # written out from the TOML by hand: fast in [20, 50], slow in 100..200 step 100, fast < slow
    assert sorted((p["fast_period"], p["slow_period"]) for p in points) == [(20, 100), (20, 200), (50, 100), (50, 200)]


def test_shipped_sweep_runs_on_a_short_window(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    import_binance_vision(catalog, base_url=str(shared_data_dir() / "binance-vision"), market="spot",
                          symbols=("BTCUSDT", "ETHUSDT"), interval="1m", start="2025-06-01", end="2025-06-04",
                          kinds=("klines",))
    raw = tomllib.loads(SWEEP.read_text())
    raw |= {"results_root": str(tmp_path / "res"), "workers": 2, "name": "ema_cross_demo_test"}
    raw.pop("walk_forward", None)
    base_path = SWEEP.parent / raw["base_config"]
    base = load_config(base_path, overrides={"catalog": str(catalog), "start": "2025-06-01", "end": "2025-06-04"})
    sw = parse_sweep(raw, source=str(SWEEP), base=base)
    reg = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    try:
        res = run_sweep(sw, registry=reg, progress=False)
        assert (res.runs, res.executed, res.failed) == (8, 8, 0)  # 4 points x 2 symbols
        runs = reg.query_runs(sweep=sw.spec.name)
        assert len(runs) == 8 and set(runs["status"]) == {"done"}
        # one trial against a direct backtest of the same derived config
        r = runs.iloc[0]
        params = dict(r["params"])
        cfg = single_strategy_config(sw.base, sw.spec.strategy, params, shard=r["shard"])
        direct = run_backtest(cfg, results_root=tmp_path / "direct", progress=False)
        trial = json.loads((Path(r["results_path"]) / "metrics.json").read_text())
        for key in ("total_return", "trades", "fees_paid_usdt"):
            assert trial[key] == pytest.approx(direct.metrics[key], rel=1e-12), key
    finally:
        reg.close()
