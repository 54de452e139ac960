"""Research over universes (issue 19): sweeps and walk-forward on a ``[universe]`` base config, and the
research page's strategy x symbol heatmap.

Data: three real USDT-M perpetuals (SOL, XRP, DOGE; 1m candles, 3 days of July 2023) imported from the
freqtrade feathers in ``$SHARED_DATA/freqtrade/binance/futures/window-2023-07``. Every sweep trial runs
in its own worker process; the reference for each trial is the same single-symbol run written out by
hand here (not via ``expand_universe``) and run in-process with ``run_backtest``. The heatmap cells
are checked against values read from the runs' own ``metrics.json`` / ``config.json`` files.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from catalog.freqtrade import import_freqtrade
from core.paths import shared_data_dir
from nautilus_app.backtest import run_backtest
from nautilus_app.config import ConfigError, parse_config
from nautilus_app.research.registry import Registry
from nautilus_app.research.spec import load_sweep, parse_sweep
from nautilus_app.research.sweep import run_sweep, single_strategy_config
from nautilus_app.research.walkforward import run_walk_forward

WINDOW = shared_data_dir() / "freqtrade" / "binance" / "futures" / "window-2023-07"
PAIRS = ["SOL/USDT:USDT", "XRP/USDT:USDT", "DOGE/USDT:USDT"]
SYMBOLS = sorted(p.split("/")[0] + "USDT" for p in PAIRS)  # DOGEUSDT, SOLUSDT, XRPUSDT
START, END = "2023-07-24", "2023-07-27"  # 3 days, 4,320 1m bars per symbol
VENUE = {"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["100000 USDT"],
         "default_leverage": 2, "margin_mode": "isolated"}
TEMPLATE = {"slow_period": 60, "allow_short": True, "position_fraction": 0.05}
FAST = [10, 20]


def iid(sym: str) -> str:
    return f"{sym}-PERP.BINANCE_USDM"


def bt(sym: str) -> str:
    return f"{sym}-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("perps3")
    import_freqtrade(root, data_dir=WINDOW, pairs=PAIRS, timeframes=["1m"], trading_mode="futures")
    return root


def universe_raw(catalog: Path, symbols="*", **universe) -> dict:
    return {"name": "uni", "catalog": str(catalog), "start": START, "end": END, "bar_types": [],
            "universe": {"market": "um", "symbols": symbols, "interval": "1m", **universe},
            "venues": [VENUE],
            "strategies": [{"name": "ema_cross", "params": {"fast_period": 10, **TEMPLATE}}]}


def toml_value(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v)  # strings, numbers and booleans are spelled the same in TOML


def write_base(path: Path, raw: dict) -> Path:
    """The base config as a TOML file (what `nautilus-app sweep FILE` reads)."""
    lines = [f"{k} = {toml_value(raw[k])}" for k in ("name", "catalog", "start", "end", "bar_types")]
    lines += ["[universe]", *(f"{k} = {toml_value(v)}" for k, v in raw["universe"].items())]
    lines += ["[[venues]]", *(f"{k} = {toml_value(v)}" for k, v in raw["venues"][0].items())]
    s = raw["strategies"][0]
    lines += ["[[strategies]]", f"name = {toml_value(s['name'])}", "[strategies.params]",
              *(f"{k} = {toml_value(v)}" for k, v in s["params"].items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def swept(catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 2-point grid over the `symbols = "*"` universe, loaded from TOML files like the CLI does."""
    work = tmp_path_factory.mktemp("uni_sweep")
    write_base(work / "base.toml", universe_raw(catalog))
    name = f"uni-{uuid.uuid4().hex[:6]}"
    (work / "sweep.toml").write_text(
        f'name = "{name}"\nbase_config = "base.toml"\nobjective = "total_return"\nworkers = 2\n'
        f'registry = "sqlite:///{work / "registry.sqlite"}"\nresults_root = "{work / "res"}"\n'
        f"[params.fast_period]\nvalues = {FAST}\n")
    sweep = load_sweep(work / "sweep.toml")
    result = run_sweep(sweep, progress=False)
    reg = Registry.open(sweep.spec.registry)
    yield SimpleNamespace(sweep=sweep, result=result, reg=reg, name=name, root=work / "res" / name)
    reg.close()


def direct_config(catalog: Path, sym: str, fast: int) -> dict:
    """The single-symbol run a universe trial stands for, written out by hand."""
    return {"name": f"direct-{sym}-{fast}", "catalog": str(catalog), "start": START, "end": END,
            "bar_types": [bt(sym)], "venues": [VENUE],
            "strategies": [{"name": "ema_cross", "params": {"instrument_id": iid(sym), "bar_type": bt(sym),
                                                            "fast_period": fast, **TEMPLATE}}]}


def test_universe_shards_default_to_the_catalog_symbols(swept) -> None:
    assert swept.sweep.shards() == [bt(s) for s in SYMBOLS]


def test_every_point_x_symbol_trial_runs_and_equals_the_direct_single_symbol_run(
        swept, catalog: Path, tmp_path: Path) -> None:
    r = swept.result
    assert (r.runs, r.executed, r.failed, r.crashes) == (6, 6, 0, 0)
    runs = swept.reg.query_runs(sweep=swept.name)
    assert len(runs) == 6 and set(runs["status"]) == {"done"}
    seen = set()
    for row in runs.to_dict("records"):
        sym = next(s for s in SYMBOLS if row["shard"] == bt(s))
        fast = row["params"]["fast_period"]
        seen.add((sym, fast))
        trial = json.loads((Path(row["results_path"]) / "metrics.json").read_text())
        cfg = json.loads((Path(row["results_path"]) / "config.json").read_text())
        # an ordinary single-symbol config: no [universe] table, only the symbol's bar type and strategy
        assert cfg.get("universe") is None and cfg["bar_types"] == [bt(sym)] and len(cfg["strategies"]) == 1
        assert cfg["strategies"][0]["params"]["instrument_id"] == iid(sym)
        out = run_backtest(parse_config(direct_config(catalog, sym, fast)), results_root=tmp_path, progress=False)
        direct = json.loads((out.results_path / "metrics.json").read_text())
        assert trial["trades"] > 0, (sym, fast)
        for k in ("total_return", "final_equity", "trades", "fees_paid_usdt", "funding_paid_usdt", "max_drawdown"):
            assert trial[k] == direct[k], (sym, fast, k)
    assert seen == {(s, f) for s in SYMBOLS for f in FAST}


def independent_cells(root: Path, metric: str) -> dict[tuple[int, str], float]:
    """(fast_period, instrument) -> metric, read from the run folders' own config.json / metrics.json."""
    out = {}
    for folder in sorted(p for p in root.iterdir() if (p / "metrics.json").exists()):
        cfg = json.loads((folder / "config.json").read_text())
        p = cfg["strategies"][0]["params"]
        out[(p["fast_period"], p["instrument_id"])] = json.loads((folder / "metrics.json").read_text())[metric]
    return out


@pytest.mark.parametrize("metric", ["total_return", "max_drawdown"])
def test_heatmap_cells_match_the_runs_metrics_files(swept, metric: str) -> None:
    from dash_ui.pages.research import LOWER_IS_BETTER, heatmap_figure, heatmap_table, query

    cells = independent_cells(swept.root, metric)
    assert len(cells) == 6
    ctx = SimpleNamespace(registry_url=swept.reg.url, _registry=None)
    df = query(ctx, sweep=swept.name, status="done")
    strategy = "ema_cross"  # registry name = the template's type (no strategy_name in the sweep)
    iids = [iid(s) for s in SYMBOLS]

    # rows = strategy, best run per cell (max; min for max_drawdown)
    pick = min if metric in LOWER_IS_BETTER else max
    hm = heatmap_table(df, metric, "best", "strategy")
    fig = heatmap_figure(hm)
    heat = fig.data[0]
    assert heat.type == "heatmap" and list(heat.x) == iids and list(heat.y) == [strategy]
    assert len(heat.x) == 3 and hm.used == 6 and hm.skipped == 0
    for j, i in enumerate(iids):
        assert heat.z[0][j] == pick(cells[(f, i)] for f in FAST)
        assert heat.customdata[0][j] == 2

    # mean over the cell's runs
    hm = heatmap_table(df, metric, "mean", "strategy")
    for i in iids:
        assert hm.values.loc[strategy, i] == pytest.approx(np.mean([cells[(f, i)] for f in FAST]), rel=1e-12)

    # rows = strategy + parameter version: one run per cell, the version's own value
    versions = {r["param_version"]: r["params"]["fast_period"] for r in df.to_dict("records")}
    assert sorted(versions.values()) == FAST
    hm = heatmap_table(df, metric, "best", "version")
    heat = heatmap_figure(hm).data[0]
    assert list(heat.y) == [f"{strategy} v{v}" for v in sorted(versions)] and list(heat.x) == iids
    for r, v in enumerate(sorted(versions)):
        for j, i in enumerate(iids):
            assert heat.z[r][j] == cells[(versions[v], i)]


def test_heatmap_leaves_out_multi_instrument_runs() -> None:
    import pandas as pd

    from dash_ui.pages.research import heatmap_table

    df = pd.DataFrame([
        {"run_key": "a", "shard": None, "bar_types": [bt("SOLUSDT")], "strategy": "s", "param_version": 1,
         "metrics": {"sharpe": 1.5}},
        {"run_key": "b", "shard": None, "bar_types": [bt("SOLUSDT"), bt("XRPUSDT")], "strategy": "s",
         "param_version": 1, "metrics": {"sharpe": 9.0}},  # a portfolio / shared-universe run
        {"run_key": "c", "shard": bt("XRPUSDT"), "bar_types": [bt("XRPUSDT")], "strategy": "s", "param_version": 2,
         "metrics": {"sharpe": None}},  # no value
    ])
    hm = heatmap_table(df, "sharpe")
    assert list(hm.values.columns) == [iid("SOLUSDT")] and hm.values.iloc[0, 0] == 1.5
    assert (hm.used, hm.skipped) == (1, 2)


def test_walk_forward_over_a_listed_universe(catalog: Path, tmp_path: Path) -> None:
    raw = universe_raw(catalog, symbols=["XRPUSDT", "SOLUSDT", "DOGEUSDT"])
    sweep = parse_sweep({"name": "uni-wf", "base_config": "(inline)", "objective": "total_return",
                         "params": {"fast_period": {"values": FAST}}, "results_root": str(tmp_path / "res"),
                         "walk_forward": {"train_days": 2, "test_days": 1}}, base=parse_config(raw))
    # a listed universe keeps its order
    assert sweep.shards() == [bt(s) for s in ("XRPUSDT", "SOLUSDT", "DOGEUSDT")]
    reg = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    try:
        res = run_walk_forward(sweep, registry=reg, progress=False)
        assert len(res.windows) == 1
        is_runs = reg.query_runs(sweep="uni-wf/w00")
        assert len(is_runs) == 6 and set(is_runs["shard"]) == set(sweep.shards())
        oos = reg.query_runs(sweep="uni-wf", kind="oos")
        assert sorted(oos["shard"]) == sorted(sweep.shards())
        chosen = res.windows["params"].iloc[0]
        # the chosen point is the best mean total return over the 3 symbols in the train window
        means = {f: np.mean([m["total_return"] for m, p in zip(is_runs["metrics"], is_runs["params"], strict=True)
                             if p["fast_period"] == f]) for f in FAST}
        assert chosen["fast_period"] == max(means, key=means.get)
        assert set(oos["params"].map(lambda p: p["fast_period"])) == {chosen["fast_period"]}
        assert res.oos_metrics["trades"] == sum(int(m["trades"]) for m in oos["metrics"])
    finally:
        reg.close()


def test_universe_errors_name_the_key_and_explicit_shards_win(catalog: Path) -> None:
    spec = {"name": "u", "base_config": "(inline)", "params": {"fast_period": {"values": FAST}}}
    for universe, pattern in (({"symbols": ["FOOUSDT"]}, "key universe.symbols: ['FOOUSDT']"),
                              ({"symbols": "*", "interval": "5m"}, "key universe.symbols = '*': matches no um")):
        raw = universe_raw(catalog, **universe)
        with pytest.raises(ConfigError, match=re.escape(pattern)):
            parse_sweep(spec, base=parse_config(raw))
    sweep = parse_sweep(spec, base=parse_config(universe_raw(catalog)))
    with pytest.raises(ConfigError, match=re.escape("key universe.symbols = '*': matches no um symbol")):
        sweep.with_universe_range("2024-01-01", "2024-01-05")
    explicit = parse_sweep({**spec, "shards": [bt("XRPUSDT")]}, base=parse_config(universe_raw(catalog)))
    assert explicit.shards() == [bt("XRPUSDT")] and explicit.universe_shards is None
    cfg = single_strategy_config(explicit.base, 0, {"fast_period": 20}, shard=bt("XRPUSDT"))
    assert cfg.universe is None and cfg.bar_types == [bt("XRPUSDT")]
    assert cfg.strategies[0].params == {"instrument_id": iid("XRPUSDT"), "bar_type": bt("XRPUSDT"),
                                        "fast_period": 20, **TEMPLATE}
