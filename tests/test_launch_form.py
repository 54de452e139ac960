"""The launcher's form (dash_ui/pages/launch.py) goes through the API's validation before anything is
queued: the config it builds is checked by JobRunner.submit (parse_config + the catalog data check), and
every refusal names the field. The timeframe picker makes the strategy trade bars Nautilus aggregates
from the stored 1m bars; a run launched that way records its indicators every 15 minutes. Real Binance
BTCUSDT 1m bars of the shared mirror (2 days)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dash_ui.jobs import JobRunner, SubmissionError
from dash_ui.pages.launch import build_config, traded_bar_type
from nautilus_app.testkit.dash_testing import SPOT_BAR

PERP = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from catalog.binance_vision import import_binance_vision
    from core.paths import shared_data_dir

    cat = tmp_path_factory.mktemp("launch") / "catalog"
    import_binance_vision(cat, base_url=shared_data_dir() / "binance-vision", market="spot", symbols=("BTCUSDT",),
                          interval="1m", start="2025-06-01", end="2025-06-03", kinds=("klines",))
    return cat


@pytest.fixture()
def runner(catalog: Path, tmp_path: Path):
    r = JobRunner(tmp_path / "results", catalog, max_parallel=0)  # validates; nothing ever runs
    yield r
    r.shutdown()


def form(**kw) -> dict:
    """The form's values (as the callback receives them) -> build_config's mapping."""
    params = {"fast_period": 10, "slow_period": 30, "position_fraction": 0.2} | kw.pop("params", {})
    args = {"name": "ui_run", "strategy": "ema_cross", "bar_types": [SPOT_BAR], "strategy_bar": SPOT_BAR,
            "start": "2025-06-01", "end": "2025-06-02", "balance": 100000, "maker": None, "taker": None,
            "leverage": 1, "account": "auto", "oms": "NETTING",
            "param_ids": [{"type": "launch-param", "name": k} for k in params], "param_values": list(params.values())}
    return build_config(**(args | kw))


@pytest.mark.parametrize("tf,expected", [
    ("stored", SPOT_BAR), (None, SPOT_BAR),
    ("15m", "BTCUSDT.BINANCE-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL"),
    ("1h", "BTCUSDT.BINANCE-1-HOUR-LAST-INTERNAL@1-MINUTE-EXTERNAL"),
    ("4h", "BTCUSDT.BINANCE-4-HOUR-LAST-INTERNAL@1-MINUTE-EXTERNAL"),
    ("1d", "BTCUSDT.BINANCE-1-DAY-LAST-INTERNAL@1-MINUTE-EXTERNAL"),
])
def test_timeframe_bar_types(tf, expected) -> None:
    assert traded_bar_type(SPOT_BAR, tf) == expected
    assert traded_bar_type(PERP, "15m") == "ETHUSDT-PERP.BINANCE_USDM-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL"


def test_timeframe_not_built_from_a_coarser_series() -> None:
    with pytest.raises(SubmissionError) as e:
        traded_bar_type("BTCUSDT.BINANCE-1-HOUR-LAST-EXTERNAL", "15m")
    assert e.value.field == "strategies[0].params.bar_type"
    with pytest.raises(SubmissionError):
        traded_bar_type(SPOT_BAR, "7m")


@pytest.mark.parametrize("kw,field", [
    ({"params": {"fast_period": 30, "slow_period": 10}}, "strategies[0].params.fast_period"),  # fast >= slow
    ({"params": {"fast_period": "abc"}}, "strategies[0].params.fast_period"),                  # wrong type
    ({"params": {"fast_period": 10.5}}, "strategies[0].params.fast_period"),                   # not a whole number
    ({"params": {"position_fraction": "lots"}}, "strategies[0].params.position_fraction"),
    ({"bar_types": ["DOGEUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"],
      "strategy_bar": "DOGEUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"}, "bar_types[0]"),               # unknown instrument
    ({"start": "2024-01-01", "end": "2024-01-03"}, "start"),                                    # dates without data
    ({"start": "2025-06-02", "end": "2025-06-01"}, "end"),
    ({"start": "someday"}, "start"),
    ({"name": "../x"}, "name"),
    ({"balance": None}, "venues[0].starting_balances[0]"),
])
def test_bad_form_values_name_the_field_and_queue_nothing(runner: JobRunner, kw: dict, field: str) -> None:
    with pytest.raises(SubmissionError) as e:
        runner.submit(form(**kw))
    assert e.value.field == field, str(e.value)
    assert runner.list() == []


def test_good_form_is_queued_with_the_timeframe(runner: JobRunner) -> None:
    job = runner.submit(form(timeframe="15m"))
    assert job.config["strategies"][0]["params"]["bar_type"] == "BTCUSDT.BINANCE-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL"
    assert job.config["bar_types"] == [SPOT_BAR]
    assert [j.id for j in runner.list()] == [job.id]


def test_a_15_minute_launch_trades_and_records_on_15_minute_bars(runner: JobRunner, tmp_path: Path) -> None:
    """The form's config run as the worker runs it: indicators recorded at every 15-minute close, equal to
    an EMA worked out here on 15-minute closes resampled with pandas from the catalog's 1m bars."""
    from nautilus_app.backtest import run_backtest

    raw, cfg = runner.validate(form(timeframe="15m", params={"fast_period": 5, "slow_period": 12}))
    out = run_backtest(cfg, results_root=tmp_path / "res", progress=False)
    ind = pd.read_parquet(Path(out.results_path) / "indicators.parquet")
    ts = pd.to_datetime(ind["ts"], utc=True)
    assert len(ts) == 96 and (ts.diff().dropna() == pd.Timedelta("15min")).all()  # one day of 15m closes
    assert (ts.dt.minute % 15 == 0).all() and (ts.dt.second == 0).all()
    import pyarrow.parquet as pq

    from catalog.reader import bar_files

    bars = pd.concat(pq.read_table(f).to_pandas() for f in bar_files(runner.catalog_root, SPOT_BAR))
    close = pd.Series(bars["close"].astype(float).to_numpy(), index=pd.to_datetime(bars["ts_init"], utc=True))
    close = close.sort_index()["2025-06-01 00:01":"2025-06-02 00:00"]
    c15 = close.groupby(close.index.ceil("15min")).last()  # bars stamped at their close
    got = ind["EMACross-000:EMA fast"].to_numpy()
    # Nautilus 2.0's EMA: NaN until `period` values, seeded with their mean, then e += alpha * (x - e)
    x, period = c15.reindex(ts).to_numpy(), 5
    expected = np.full(x.size, np.nan)
    expected[period - 1] = x[:period].mean()
    for i in range(period, x.size):
        expected[i] = expected[i - 1] + 2 / (period + 1) * (x[i] - expected[i - 1])
    assert np.isnan(got[:period - 1]).all()
    assert got[period - 1:] == pytest.approx(expected[period - 1:], rel=1e-12)
