"""Users' own strategies, kept outside the package: strategy paths, the user folder, both Nautilus
config styles, CLI overrides, ``new-strategy`` and every bad-config case (issue 18).

Real data: the freqtrade BTC/USDT 1m feather in ``$SHARED_DATA``. Expected trades and equity are
computed here with pandas from that file (EMA seeded like Nautilus's, long/flat state rule, fills at
the signal bar's close, 0.1 % fee on notional), never copied from the run's output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.freqtrade import import_freqtrade
from core.paths import REPO_ROOT, shared_data_dir
from nautilus_app.cli import main as cli_main

FEATHER = shared_data_dir() / "freqtrade" / "binance" / "BTC_USDT-1m.feather"
BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
START, END = "2025-06-02", "2025-06-09"  # one week, 10,080 bars
FEE = 0.001
SIZE = Decimal("0.01")

# A plain Nautilus EMA cross written the way Nautilus's docs write it: fields as class attributes.
STRATEGY_CLASS_ATTRS = (Path(__file__).parent / "fixtures" / "plain_ema.py").read_text()

# The same strategy with the config's fields as __init__ arguments and no **kwargs.
STRATEGY_INIT_ARGS = STRATEGY_CLASS_ATTRS.replace('''class PlainEMACrossConfig(StrategyConfig):
    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal
    fast_ema_period: int = 10
    slow_ema_period: int = 20
''', '''class PlainEMACrossConfig(StrategyConfig):
    def __init__(self, instrument_id: InstrumentId, bar_type: BarType, trade_size: Decimal,
                 fast_ema_period: int = 10, slow_ema_period: int = 20) -> None:
        super().__init__()
        self.instrument_id = instrument_id
        self.bar_type = bar_type
        self.trade_size = trade_size
        self.fast_ema_period = fast_ema_period
        self.slow_ema_period = slow_ema_period
''')


def run_config(strategy: str, *, params: dict | None = None, venue_extra: str = "") -> str:
    p = {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BAR, "trade_size": "0.01", "fast_ema_period": 10,
         "slow_ema_period": 20, **(params or {})}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in p.items())
    return textwrap.dedent(f'''
        name = "user_ema"
        bar_types = ["{BAR}"]
        start = "{START}"
        end = "{END}"
        catalog = "CATALOG"

        [[venues]]
        name = "BINANCE"
        account_type = "CASH"
        starting_balances = ["100000 USDT"]
        maker_fee = {FEE}
        taker_fee = {FEE}
        fill_timing = "same_close"
        costs = "fees_only"
        {venue_extra}

        [[strategies]]
        {strategy}
        [strategies.params]
        ''') + lines + "\n"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    import_freqtrade(root, data_dir=FEATHER.parent, pairs=["BTC/USDT"], timeframes=["1m"], trading_mode="spot")
    return root


@pytest.fixture()
def outside(tmp_path: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder outside the repository holding the user's strategy and config; empty user folder."""
    folder = tmp_path / "my_research"
    folder.mkdir()
    assert not folder.resolve().is_relative_to(REPO_ROOT)
    monkeypatch.setenv("NAUTILUS_STRATEGY_DIR", str(tmp_path / "no_user_strategies"))
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path / "results"))
    return folder


def write(folder: Path, name: str, text: str, catalog: Path | None = None) -> Path:
    path = folder / name
    path.write_text(text.replace("CATALOG", str(catalog)) if catalog else text)
    return path


def nautilus_ema(x: np.ndarray, n: int) -> np.ndarray:
    """EMA seeded with the mean of the first n values (Nautilus's rule); NaN while not initialized."""
    out = np.full(len(x), np.nan)
    out[n - 1] = x[:n].mean()
    alpha = 2.0 / (n + 1)
    for i in range(n, len(x)):
        out[i] = alpha * x[i] + (1 - alpha) * out[i - 1]
    return out


def expected_run(fast: int, slow: int) -> tuple[list[tuple[pd.Timestamp, str, float]], float]:
    """(time, side, price) of every fill and the final equity (USDT), from the raw feather."""
    df = pd.read_feather(FEATHER)
    df["close_time"] = df["date"] + pd.Timedelta(minutes=1)  # Nautilus stamps bars at their close
    df = df[(df["date"] >= pd.Timestamp(START, tz="UTC")) & (df["date"] < pd.Timestamp(END, tz="UTC"))]
    close = df["close"].to_numpy()
    f, s = nautilus_ema(close, fast), nautilus_ema(close, slow)
    fills, long = [], False
    for i in range(len(close)):
        if np.isnan(f[i]) or np.isnan(s[i]):
            continue
        if f[i] >= s[i] and not long:
            fills.append((df["close_time"].iloc[i], "BUY", close[i]))
            long = True
        elif f[i] < s[i] and long:
            fills.append((df["close_time"].iloc[i], "SELL", close[i]))
            long = False
    if long:  # on_stop closes at the last bar's close
        fills.append((df["close_time"].iloc[-1], "SELL", close[-1]))
    cash = 100_000.0
    for _, side, px in fills:
        notional = float(SIZE) * px
        cash += (-notional if side == "BUY" else notional) - FEE * notional
    return fills, cash


def run_cli(args: list[str]) -> int:
    return cli_main(args)


def only_run(results: Path) -> Path:
    runs = [p for p in results.iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1, runs
    return runs[0]


def test_plain_nautilus_strategy_outside_the_repo_matches_pandas(outside: Path, catalog: Path, tmp_path: Path) -> None:
    write(outside, "plain_ema.py", STRATEGY_CLASS_ATTRS)
    cfg = write(outside, "run.toml", run_config('strategy_path = "plain_ema:PlainEMACross"'), catalog)

    assert run_cli(["backtest", str(cfg), "--no-progress"]) == 0
    run = only_run(tmp_path / "results")
    fills = pd.read_parquet(run / "fills.parquet").sort_values("ts_event")
    want, equity = expected_run(10, 20)

    assert len(fills) == len(want) > 10
    assert [s for _, s, _ in want] == [str(x) for x in fills["order_side"]]
    got_ts = pd.to_datetime(fills["ts_event"], utc=True).tolist()
    assert got_ts == [t for t, _, _ in want]
    assert np.allclose(fills["last_px"].astype(float), [p for _, _, p in want], rtol=0, atol=1e-9)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["final_equity"] == pytest.approx(equity, abs=1e-6)
    # the strategy's own params were applied, not the class defaults (the rc7 trap)
    snapshot = json.loads((run / "config.json").read_text())
    assert snapshot["strategies"][0]["strategy_path"] == f"{outside / 'plain_ema.py'}:PlainEMACross"


def test_class_attribute_and_init_configs_give_identical_runs(outside: Path, catalog: Path, tmp_path: Path) -> None:
    write(outside, "attrs_style.py", STRATEGY_CLASS_ATTRS)
    write(outside, "init_style.py", STRATEGY_INIT_ARGS)
    fills = {}
    for style in ("attrs_style", "init_style"):
        cfg = write(outside, f"{style}.toml", run_config(f'strategy_path = "{style}.py:PlainEMACross"',
                                                         params={"fast_ema_period": 5, "slow_ema_period": 30}),
                    catalog)
        results = tmp_path / f"results_{style}"
        assert run_cli(["backtest", str(cfg), "--no-progress", "--results-dir", str(results)]) == 0
        df = pd.read_parquet(only_run(results) / "fills.parquet").sort_values("ts_event")
        fills[style] = df[["ts_event", "order_side", "last_qty", "last_px"]].astype(str).reset_index(drop=True)
    want, _ = expected_run(5, 30)  # 5/30, not the class defaults 10/20
    assert len(fills["attrs_style"]) == len(want)
    pd.testing.assert_frame_equal(fills["attrs_style"], fills["init_style"])


def test_user_folder_name_list_strategies_and_overrides(tmp_path: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    write(folder, "plain_ema.py", STRATEGY_CLASS_ATTRS)
    monkeypatch.setenv("NAUTILUS_STRATEGY_DIR", str(tmp_path / "elsewhere"))
    cfg = write(tmp_path, "run.toml", run_config('name = "PlainEMACross"'), catalog)

    assert run_cli(["--strategy-dir", str(folder), "list-strategies"]) == 0
    out = capsys.readouterr().out
    assert "PlainEMACross  [user" in out and "EMA cross, long/flat, fixed size" in out
    assert "fast_ema_period: int (default 10)" in out and "instrument_id: InstrumentId (required)" in out
    assert "ema_cross  [builtin" in out

    results = tmp_path / "results"
    code = run_cli(["backtest", str(cfg), "--no-progress", "--strategy-dir", str(folder), "--results-dir",
                    str(results), "--set", "strategies.0.params.fast_ema_period=5", "--set",
                    "strategies.0.params.slow_ema_period=30", "--start", "2025-06-03", "--end", "2025-06-05",
                    "--set", "venues.0.taker_fee=0.0004"])
    assert code == 0
    run = only_run(results)
    snap = tomllib.loads((run / "config.toml").read_text())
    assert snap["start"] == "2025-06-03" and snap["end"] == "2025-06-05"
    assert snap["strategies"][0]["params"]["fast_ema_period"] == 5
    assert snap["venues"][0]["taker_fee"] == 0.0004
    cfg_json = json.loads((run / "config.json").read_text())
    assert cfg_json["strategies"][0]["params"]["slow_ema_period"] == 30
    fills = pd.read_parquet(run / "fills.parquet")
    ts = pd.to_datetime(fills["ts_event"], utc=True)
    assert ts.min() > pd.Timestamp("2025-06-03", tz="UTC") and ts.max() <= pd.Timestamp("2025-06-05", tz="UTC")
    fee = fills["commission"].astype(float).sum()
    notional = (fills["last_qty"].astype(float) * fills["last_px"].astype(float)).sum()
    assert fee == pytest.approx(0.0004 * notional, rel=1e-6)  # the override reached the venue


BAD_CASES = [
    # (strategy line, params, text that must appear in the error)
    ('strategy_path = "plain_ema:PlainEMACross"', {"fast_ema_period": 10.5}, "strategies[0].params.fast_ema_period"),
    ('strategy_path = "plain_ema:PlainEMACross"', {"slow_period": 20}, "strategies[0].params.slow_period"),
    ('strategy_path = "plain_ema:PlainEMACross"', {"trade_size": "lots"}, "strategies[0].params.trade_size"),
    ('strategy_path = "plain_ema:PlainEMACross"', {"instrument_id": "BTCUSDT"}, "strategies[0].params.instrument_id"),
    ('strategy_path = "plain_ema:NoSuchClass"', {}, "strategies[0].strategy_path"),
    ('strategy_path = "no_such_module:PlainEMACross"', {}, "no_such_module"),
    ('name = "NoSuchStrategy"', {}, "strategies[0].name"),
    ('name = "ema_cross"\nstrategy_path = "plain_ema:PlainEMACross"', {}, "exactly one of"),
]


@pytest.mark.parametrize(("strategy", "params", "needle"), BAD_CASES)
def test_bad_strategy_configs_exit_2_and_write_nothing(outside: Path, catalog: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str], strategy: str,
                                                       params: dict, needle: str) -> None:
    write(outside, "plain_ema.py", STRATEGY_CLASS_ATTRS)
    cfg = write(outside, "bad.toml", run_config(strategy, params=params), catalog)
    assert run_cli(["backtest", str(cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and needle in err, err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_missing_required_field_and_raising_config_are_named(outside: Path, catalog: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    write(outside, "plain_ema.py", STRATEGY_CLASS_ATTRS)
    text = run_config('strategy_path = "plain_ema:PlainEMACross"').replace('trade_size = "0.01"\n', "")
    cfg = write(outside, "missing.toml", text, catalog)
    assert run_cli(["backtest", str(cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "strategies[0].params.trade_size" in err and "required" in err
    # a config class that rejects a value in its own __init__: exit 2, its message shown
    write(outside, "strict.py", STRATEGY_INIT_ARGS.replace(
        "        self.fast_ema_period = fast_ema_period\n",
        "        if fast_ema_period >= slow_ema_period:\n            raise ValueError('fast must be below slow')\n"
        "        self.fast_ema_period = fast_ema_period\n"))
    cfg = write(outside, "strict.toml", run_config('strategy_path = "strict:PlainEMACross"',
                                                   params={"fast_ema_period": 30}), catalog)
    assert run_cli(["backtest", str(cfg), "--no-progress"]) == 2
    assert "fast must be below slow" in capsys.readouterr().err


def test_two_classes_with_one_name_is_an_error_naming_both_files(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    write(folder, "a_ema.py", STRATEGY_CLASS_ATTRS)
    write(folder, "b_ema.py", STRATEGY_INIT_ARGS)
    assert run_cli(["--strategy-dir", str(folder), "list-strategies"]) == 2
    err = capsys.readouterr().err
    assert str(folder / "a_ema.py") in err and str(folder / "b_ema.py") in err


def test_new_strategy_template_runs_and_its_test_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "user_strategies"
    assert run_cli(["new-strategy", "MyBreakout", "--folder", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["my_breakout.py", "my_breakout.toml", "test_my_breakout.py"]
    assert run_cli(["new-strategy", "MyBreakout", "--folder", str(folder)]) == 2  # never overwrites silently
    assert run_cli(["new-strategy", "lower_case", "--folder", str(folder)]) == 2
    capsys.readouterr()
    assert run_cli(["--strategy-dir", str(folder), "list-strategies"]) == 0
    out = capsys.readouterr().out
    assert "MyBreakout  [user" in out and "fast_period: int (default 10)" in out
    env = {**os.environ, "NAUTILUS_STRATEGY_DIR": str(folder)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout


def test_sweep_over_a_user_strategy_kept_outside_the_repo(outside: Path, catalog: Path, tmp_path: Path) -> None:
    """The sweep's worker processes get the strategy through the config (absolute file), not the folder."""
    from nautilus_app.research.registry import Registry
    from nautilus_app.research.spec import load_sweep
    from nautilus_app.research.sweep import run_sweep

    write(outside, "plain_ema.py", STRATEGY_CLASS_ATTRS)
    write(outside, "base.toml", run_config('strategy_path = "plain_ema:PlainEMACross"'), catalog)
    sweep_file = write(outside, "sweep.toml", textwrap.dedent(f'''
        name = "user-ema-sweep"
        base_config = "base.toml"
        strategy = 0
        method = "grid"
        objective = "total_return"
        executor = "process"
        workers = 2
        results_root = "{tmp_path / 'sweeps'}"
        registry = "sqlite:///{tmp_path / 'registry.sqlite'}"
        [params.fast_ema_period]
        values = [5, 10]
        '''))
    sweep = load_sweep(sweep_file)
    reg = Registry.open(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    try:
        res = run_sweep(sweep, registry=reg, progress=False)
        assert (res.runs, res.executed, res.failed) == (2, 2, 0)
        runs = reg.query_runs(sweep="user-ema-sweep")
        assert runs["strategy_sha256"].tolist() == [
            __import__("hashlib").sha256((outside / "plain_ema.py").read_bytes()).hexdigest()] * 2
        for _, r in runs.iterrows():  # each trial is the pandas run of its own fast period
            _, equity = expected_run(r["params"]["fast_ema_period"], 20)
            m = json.loads((Path(r["results_path"]) / "metrics.json").read_text())
            assert m["final_equity"] == pytest.approx(equity, abs=1e-6)
    finally:
        reg.close()
