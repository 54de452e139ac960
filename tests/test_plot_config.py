"""plot_config declared on the strategy classes (issue 24): the built-ins' class attributes, and the
vectorised-signals strategies whose plotted series are columns of their signal frame, recorded whole
(no bar subscription) and equal to the event-driven twin's values recorded bar by bar."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nautilus_app import plotting


def test_builtins_declare_plot_config_on_their_classes() -> None:
    from strategies.ema_cross import EMACross
    from strategies.mean_reversion import MeanReversion
    from strategies.signal_strategies import EMACrossSignals, MeanReversionSignals, TrendFollowingSignals
    from strategies.trend_following import TrendFollowing

    assert not hasattr(plotting, "BUILTIN_PLOT_CONFIGS")
    assert set(EMACross.plot_config["main_plot"]) == {"fast", "slow"}
    assert set(TrendFollowing.plot_config["subplots"]) == {"ADX", "ATR"}
    assert MeanReversion.plot_config["subplots"]["RSI"]["rsi"]["levels_from"] == ["rsi_lower", "rsi_exit", "rsi_upper"]
    # the signals twins plot the same series, under the same labels, from their frame columns
    for a, b in ((EMACross, EMACrossSignals), (TrendFollowing, TrendFollowingSignals),
                 (MeanReversion, MeanReversionSignals)):
        la = [s["label"] for s in a.plot_config["main_plot"].values()]
        lb = [s["label"] for s in b.plot_config["main_plot"].values()]
        assert la == lb
        assert list(a.plot_config.get("subplots", {})) == list(b.plot_config.get("subplots", {}))


def test_signals_strategy_records_its_frame_equal_to_the_event_driven_twin(tmp_path: Path) -> None:
    from catalog.binance_vision import import_binance_vision
    from core.paths import shared_data_dir
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import parse_config

    catalog = tmp_path / "catalog"
    import_binance_vision(catalog, base_url=str(shared_data_dir() / "binance-vision"), market="spot",
                          symbols=("BTCUSDT",), interval="1m", start="2025-06-02", end="2025-06-04", kinds=("klines",))
    bar = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"  # signals strategies trade stored (catalog) bars
    params = {"instrument_id": "BTCUSDT.BINANCE", "bar_type": bar, "fast_period": 5, "slow_period": 12,
              "position_fraction": 0.1}
    cfg = parse_config({
        "name": "plot_signals", "catalog": str(catalog), "start": "2025-06-02", "end": "2025-06-04",
        "bar_types": ["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": params}, {"name": "ema_cross_signals", "params": params}]})
    folder = run_backtest(cfg, results_root=tmp_path / "results", progress=False).results_path
    ind = pd.read_parquet(folder / "indicators.parquet")
    conf = json.loads((folder / "plot_config.json").read_text())
    assert len(conf) == 2
    (ev_id, ev), (sg_id, sg) = sorted(conf.items(), key=lambda kv: "SIGNALS" in kv[0].upper())
    assert list(ev["main_plot"]) == list(sg["main_plot"]) == ["EMA fast", "EMA slow"]
    a = ind[ind["strategy_id"] == ev_id].set_index("ts")
    b = ind[ind["strategy_id"] == sg_id].set_index("ts")
    # 1-minute bars over two days: one row per bar close
    assert len(b) == 2 * 1440 and b.index.is_monotonic_increasing
    assert (np.diff(b.index.to_numpy()) == 60 * 10**9).all()
    common = a.index.intersection(b.index)
    assert len(common) >= len(b) - 1
    for label in ("EMA fast", "EMA slow"):
        x = a.loc[common, ev["main_plot"][label]].to_numpy()
        y = b.loc[common, sg["main_plot"][label]].to_numpy()
        ok = ~np.isnan(x)
        assert ok.sum() > 2000
        np.testing.assert_allclose(y[ok], x[ok], rtol=0, atol=1e-9)
    assert not np.isnan(b[sg["main_plot"]["EMA slow"]].iloc[-1])
    assert b[sg["main_plot"]["EMA fast"]].iloc[-1] == pytest.approx(a[ev["main_plot"]["EMA fast"]].iloc[-1], abs=1e-9)


def test_frame_based_plans_do_not_subscribe() -> None:
    class FakeSignals:
        plot_config = {"main_plot": {"ema_fast": {"label": "EMA fast"}}}
        bar_type = "X.V-1-MINUTE-LAST-EXTERNAL"
        config = None

        def __init__(self) -> None:
            self.strategy_id = "S-1"
            self.frame = pd.DataFrame({"ts": [1, 2, 3], "ema_fast": [np.nan, 1.5, 2.5]})

        def signal_frame(self, precision):  # noqa: ANN001 - the marker of a vectorised strategy
            return self.frame

    rec = plotting.PlotRecorder([FakeSignals()])
    assert rec.plans and rec.plans[0].frame_based and rec._by_bar == {}
    df, conf = rec.frame()
    assert df["ts"].tolist() == [1, 2, 3]
    np.testing.assert_array_equal(df["S-1:EMA fast"].to_numpy(), [np.nan, 1.5, 2.5])
    assert conf["S-1"]["main_plot"] == {"EMA fast": "S-1:EMA fast"}


def test_plot_series_after_the_run_equals_the_per_bar_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EMACross's ``plot_series`` (computed once after the run, nothing recorded per bar) gives exactly the
    values the per-bar recorder reads from its indicators, across a one-day hole in the data where both
    restart their EMAs (the gap rule). The per-bar twin is a user's subclass kept outside the repository."""
    from catalog.binance_vision import import_binance_vision
    from core.paths import shared_data_dir
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import parse_config

    catalog = tmp_path / "catalog"
    for start, end in (("2025-06-02", "2025-06-02"), ("2025-06-04", "2025-06-04")):  # days, inclusive: 06-03 left out
        import_binance_vision(catalog, base_url=str(shared_data_dir() / "binance-vision"), market="spot",
                              symbols=("BTCUSDT",), interval="1m", start=start, end=end, kinds=("klines",))
    strats = tmp_path / "user_strats"
    strats.mkdir()
    (strats / "per_bar_ema.py").write_text(
        "from strategies.ema_cross import EMACross\n\n\n"
        "class PerBarEMACross(EMACross):\n"
        "    plot_series = None  # no after-run series: the recorder reads the indicators on every bar\n")
    taken: list[str] = []
    original = plotting._Plan.take_series

    def spy(self, series, precision):  # noqa: ANN001, ANN202
        taken.append(self.sid)
        return original(self, series, precision)

    monkeypatch.setattr(plotting._Plan, "take_series", spy)
    bar = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    params = {"instrument_id": "BTCUSDT.BINANCE", "bar_type": bar, "fast_period": 5, "slow_period": 12,
              "position_fraction": 0.1}
    cfg = parse_config({
        "name": "plot_after_run", "catalog": str(catalog), "start": "2025-06-02", "end": "2025-06-05",
        "allow_gaps": True, "bar_types": [bar],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": params},
                       {"strategy_path": str(strats / "per_bar_ema.py") + ":PerBarEMACross",
                        "config_path": "strategies.ema_cross:EMACrossConfig", "params": params}]})
    folder = run_backtest(cfg, results_root=tmp_path / "results", progress=False).results_path
    ind = pd.read_parquet(folder / "indicators.parquet")
    conf = json.loads((folder / "plot_config.json").read_text())
    (vec_id, vec), (rec_id, rec) = sorted(conf.items(), key=lambda kv: "PerBar" in kv[0])
    assert taken == [vec_id]  # only EMACross went the after-run way
    a = ind[ind["strategy_id"] == vec_id].reset_index(drop=True)
    b = ind[ind["strategy_id"] == rec_id].reset_index(drop=True)
    assert len(a) == len(b) == 2 * 1440
    assert (a["ts"].to_numpy() == b["ts"].to_numpy()).all()
    hole = int(np.flatnonzero(np.diff(a["ts"].to_numpy()) > 60 * 10**9)[0]) + 1  # first bar after the hole
    assert hole == 1440
    for label in ("EMA fast", "EMA slow"):
        x, y = a[vec["main_plot"][label]].to_numpy(), b[rec["main_plot"][label]].to_numpy()
        np.testing.assert_array_equal(x, y)  # bit for bit, NaN where not initialised
    slow = a[vec["main_plot"]["EMA slow"]].to_numpy()
    # the slow EMA (12) restarts after the hole: NaN for its first 11 bars, a value on the 12th
    assert np.isnan(slow[hole:hole + 11]).all() and not np.isnan(slow[hole + 11]) and not np.isnan(slow[hole - 1])
    # and it is the seeded EMA of the Nautilus doubles of the closes from the hole on (a hand-written reference)
    from nautilus_app.venue.fill_timing import load_bar_series

    s = load_bar_series(catalog, bar, None, None)
    c = [round(v, 2) for v in s.close[hole:hole + 40].tolist()]
    ema = sum(c[:12]) / 12
    ref = [ema]
    for v in c[12:]:
        ema = (2 / 13) * v + (1 - 2 / 13) * ema
        ref.append(ema)
    np.testing.assert_allclose(slow[hole + 11:hole + 40], ref, rtol=1e-12)


def test_plot_series_is_used_only_for_bars_read_from_the_catalog() -> None:
    """A strategy with ``plot_series`` trading a stored bar type is computed after the run (no per-bar recorder
    installed); on a bar type Nautilus aggregates (not among the run's stored bars) it is recorded bar by bar."""

    class Fake:
        plot_config = {"main_plot": {"fast": {"label": "EMA fast"}}}
        config = None
        plot_recorder = None  # the slot BarStrategy offers: per-bar recording installs a closure here

        def __init__(self, bar_type: str) -> None:
            self.strategy_id = f"S-{bar_type[-8:]}"
            self.bar_type = bar_type

        def plot_series(self, bars):  # noqa: ANN001, ANN201
            return {"fast": bars["close"].to_numpy()}

    class Run:
        windows = {"X.V-1-MINUTE-LAST-EXTERNAL": (None, None)}

    stored = Fake("X.V-1-MINUTE-LAST-EXTERNAL")
    aggregated = Fake("X.V-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL")
    rec = plotting.PlotRecorder([stored, aggregated], Run())
    by_strategy = {p.strategy: p for p in rec.plans}
    assert by_strategy[stored].after_run and stored.plot_recorder is None
    assert not by_strategy[aggregated].after_run and callable(aggregated.plot_recorder)
    # without the run's bars (no RunData given) everything is recorded bar by bar, as before
    again = Fake("X.V-1-MINUTE-LAST-EXTERNAL")
    rec2 = plotting.PlotRecorder([again])
    assert not rec2.plans[0].after_run and callable(again.plot_recorder)


def test_plot_series_of_the_wrong_length_is_refused() -> None:
    from nautilus_app.venue.fill_timing import BarSeries

    class Fake:
        plot_config = {"main_plot": {"fast": {}}, "subplots": {"X": {"other": {}}}}
        config = None
        strategy_id = "S-1"
        bar_type = "X.V-1-MINUTE-LAST-EXTERNAL"

        def plot_series(self, bars):  # noqa: ANN001, ANN201
            return {"fast": bars["close"].to_numpy()[:-1]}

    series = BarSeries(*(np.arange(3, dtype=float) for _ in range(6)))
    plan = plotting._Plan(Fake(), Fake.plot_config)
    with pytest.raises(ValueError, match=r"plot_series\(\)\['fast'\] has 2 values for 3 bars"):
        plan.take_series(series, 2)

    class Good(Fake):
        def plot_series(self, bars):  # noqa: ANN001, ANN201
            return {"fast": bars["close_nd"].to_numpy() * 2}

    plan = plotting._Plan(Good(), Good.plot_config)
    plan.take_series(BarSeries(np.array([1, 2, 3]), *(np.array([1.004, 2.0, 3.0]) for _ in range(5))), 2)
    assert plan.ts.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(plan.rows[:, 0], [2.0, 4.0, 6.0])  # close rounded to 2 decimals, as Nautilus feeds it
    assert np.isnan(plan.rows[:, 1]).all()  # a path plot_series leaves out


def test_ema_cross_subclass_with_other_indicators_is_recorded_bar_by_bar() -> None:
    """A user's EMACross subclass that swaps an EMA for another indicator must not get EMAs drawn for it: the
    after-run series apply only while ``fast`` and ``slow`` are Nautilus EMAs."""
    from nautilus_trader.indicators import SimpleMovingAverage

    from strategies.ema_cross import EMACross, EMACrossConfig

    class SMAFast(EMACross):
        def __init__(self, config: EMACrossConfig) -> None:
            super().__init__(config)
            self.fast = SimpleMovingAverage(config.fast_period)
            self.indicators = [self.fast, self.slow]

    bar = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    cfg = EMACrossConfig(instrument_id="BTCUSDT.BINANCE", bar_type=bar)
    plain, swapped = EMACross(cfg), SMAFast(cfg)
    assert callable(plain.plot_series) and swapped.plot_series is None

    class Run:
        windows = {bar: (None, None)}

    rec = plotting.PlotRecorder([plain, swapped], Run())
    assert [p.after_run for p in rec.plans] == [True, False]
    assert plain.plot_recorder is None and callable(swapped.plot_recorder)


def test_plot_series_cannot_write_into_the_runs_bars() -> None:
    """``plot_series`` gets the run's bar arrays as read-only columns (no copy): an in-place write raises instead
    of changing the bars the fill models and results read; new columns and the derived ``*_nd`` ones are free."""
    from nautilus_app.venue.fill_timing import BarSeries

    class Writer:
        plot_config = {"main_plot": {"fast": {}}}
        config = None
        strategy_id = "S-1"
        bar_type = "X.V-1-MINUTE-LAST-EXTERNAL"

        def plot_series(self, bars):  # noqa: ANN001, ANN201
            bars["fast"] = bars["close"] * 2  # a new column: allowed
            bars.loc[0, "close_nd"] = 0.0  # a derived column: allowed
            bars.loc[0, "close"] = -1.0  # the run's own close: refused
            return {"fast": bars["fast"].to_numpy()}

    close = np.array([1.0, 2.0, 3.0])
    series = BarSeries(np.array([1, 2, 3]), close, close.copy(), close.copy(), close, close.copy())
    with pytest.raises(ValueError, match="read-only"):
        plotting._Plan(Writer(), Writer.plot_config).take_series(series, 2)
    np.testing.assert_array_equal(series.close, [1.0, 2.0, 3.0])
