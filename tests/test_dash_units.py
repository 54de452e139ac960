"""Server-side pieces of the app checked against independent references: indicator overlays against
Nautilus's own indicator classes, candle resampling against pandas, downsampling invariants, monthly
returns by hand, the results store's handling of staging folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.indicators import BollingerBands, ExponentialMovingAverage, SimpleMovingAverage

from dash_ui import market
from dash_ui.charts import monthly_table
from dash_ui.data import ResultsStore
from dash_ui.jobs import field_of


@pytest.fixture(scope="module")
def closes() -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 400))), 2)


def test_ema_matches_nautilus(closes: np.ndarray) -> None:
    for n in (5, 21):
        ind = ExponentialMovingAverage(n)
        ref = []
        for c in closes:
            ind.update_raw(float(c))
            ref.append(ind.value if ind.initialized else np.nan)
        ours = market.ema_nautilus(closes, n)
        assert np.isnan(ours[: n - 1]).all()
        assert ours[n - 1:] == pytest.approx(np.array(ref[n - 1:]), rel=1e-12)


def test_sma_and_bollinger_match_nautilus(closes: np.ndarray) -> None:
    sma = SimpleMovingAverage(20)
    bb = BollingerBands(20, 2.0)
    ref_sma, ref_up, ref_lo = [], [], []
    for c in closes:
        sma.update_raw(float(c))
        bb.update_raw(float(c))
        ref_sma.append(sma.value if sma.initialized else np.nan)
        ref_up.append(bb.upper if bb.initialized else np.nan)
        ref_lo.append(bb.lower if bb.initialized else np.nan)
    up, mid, lo = market.bollinger(closes, 20, 2.0)
    assert market.sma(closes, 20)[19:] == pytest.approx(np.array(ref_sma[19:]), rel=1e-12)
    assert mid[19:] == pytest.approx(np.array(ref_sma[19:]), rel=1e-12)
    assert up[19:] == pytest.approx(np.array(ref_up[19:]), rel=1e-9)
    assert lo[19:] == pytest.approx(np.array(ref_lo[19:]), rel=1e-9)


def test_indicators_restart_after_a_gap(closes: np.ndarray) -> None:
    step = 60_000_000_000
    ts = np.arange(1, closes.size + 1, dtype=np.int64) * step
    ts[200:] += 120 * step  # a 2-hour hole: more than max_gap_bars=60
    bars = {"ts": ts, "close": closes}
    ov = market.strategy_overlays("ema_cross", {"fast_period": 5, "slow_period": 10, "max_gap_bars": 60}, bars, step)
    fast = ov["EMA(5)"]
    assert np.isnan(fast[200:204]).all() and not np.isnan(fast[204])
    assert fast[204] == pytest.approx(closes[200:205].mean())


def test_resample_matches_pandas() -> None:
    rng = np.random.default_rng(2)
    n = 3 * 1440
    step = 60_000_000_000
    ts = (pd.Timestamp("2024-01-01", tz="UTC").value + step * np.arange(1, n + 1)).astype(np.int64)
    keep = np.ones(n, bool)
    keep[100:130] = False  # a gap inside one hour
    close = 100 + np.cumsum(rng.normal(0, 0.1, n))
    bars = {"ts": ts[keep], "open": close[keep] - 0.05, "high": close[keep] + 0.2, "low": close[keep] - 0.3,
            "close": close[keep], "volume": rng.uniform(1, 2, n)[keep]}
    out = market.resample(bars, step, market.TIMEFRAMES["1h"])
    df = pd.DataFrame({k: v for k, v in bars.items() if k != "ts"},
                      index=pd.to_datetime(bars["ts"] - step, utc=True))
    ref = df.resample("1h").agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    assert len(out) == len(ref) == 72
    assert (out["open_time"].to_numpy() == ref.index.to_numpy()).all()
    for c in ("open", "high", "low", "close", "volume"):
        assert out[c].to_numpy() == pytest.approx(ref[c].to_numpy())
    assert out["bars"].tolist() == df["close"].resample("1h").size().tolist()
    assert out["bars"].iloc[1:3].tolist() == [40, 50]  # open minutes 100..129 are missing
    with pytest.raises(ValueError, match="not a multiple"):
        market.resample(bars, step, 90_000_000_000)


def test_minmax_downsampling_keeps_extremes_and_ends() -> None:
    rng = np.random.default_rng(3)
    y = np.cumsum(rng.normal(0, 1, 1_000_000))
    idx = market.minmax_indices(y, 2000)
    assert idx.size <= 2002 and idx[0] == 0 and idx[-1] == y.size - 1
    assert y[idx].max() == y.max() and y[idx].min() == y.min()
    assert (np.diff(idx) > 0).all()
    x = np.arange(y.size, dtype=np.int64)
    xs, ys, raw = market.downsample_xy(x, {"y": y}, 2000, 500_000, 500_300)
    assert raw == 303 and ys["y"].tolist() == y[499_999:500_302].tolist()


def test_monthly_table_by_hand() -> None:
    ts = pd.to_datetime(["2024-01-15 00:00", "2024-01-31 23:59", "2024-02-10 00:00", "2024-03-31 00:00"], utc=True)
    eq = np.array([101.0, 110.0, 99.0, 121.0])
    table = monthly_table(ts.astype("int64").to_numpy(), eq, 100.0)
    assert table.loc[2024, 1] == pytest.approx(110 / 100 - 1)
    assert table.loc[2024, 2] == pytest.approx(99 / 110 - 1)
    assert table.loc[2024, 3] == pytest.approx(121 / 99 - 1)
    assert np.isnan(table.loc[2024, 4])


def test_store_ignores_staging_and_hidden_folders(tmp_path) -> None:
    for name in ("run-a", ".run-b.partial", ".jobs", "no-metrics"):
        (tmp_path / name).mkdir()
    for name in ("run-a", ".run-b.partial"):
        (tmp_path / name / "metrics.json").write_text(json.dumps({"total_return": 0.1, "trades": 3}))
    (tmp_path / "run-a" / "config.json").write_text(json.dumps({"bar_types": ["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"],
                                                                "strategies": [{"name": "ema_cross"}]}))
    store = ResultsStore(tmp_path)
    df = store.list_runs()
    assert df["run_id"].tolist() == ["run-a"]
    assert df.loc[0, "instruments"] == "BTCUSDT.BINANCE" and df.loc[0, "strategies"] == "ema_cross"
    assert not store.exists(".run-b.partial") and not store.exists("../run-a") and not store.exists("no-metrics")
    run = store.get("run-a")
    costs = {c["label"]: c for c in run.cost_breakdown()}
    assert costs["Slippage"]["usdt"] is None and costs["Slippage"]["source"] == "not recorded by this run"


def test_config_error_field_extraction() -> None:
    assert field_of("request: key venues[0].taker_fee = 0.5: expected ...") == "venues[0].taker_fee"
    assert field_of("request: key strategies[0].params.foo = 1: expected") == "strategies[0].params.foo"
    assert field_of("request: Object missing required field `venues`") == "venues"


def test_overview_sidecar_is_persisted_exact_and_invalidated(tmp_path, monkeypatch) -> None:
    """The persisted whole-run overview (dash_ui.sidecar) keeps the true extremes, the final equity and
    the monthly returns of equity.parquet; a new server reads it without touching the full series; a
    changed equity file gives a new key (rebuilt); the cache folder is never listed as a run."""
    import os

    from dash_ui import charts, sidecar
    from nautilus_app.testkit import synthetic

    folder = synthetic.make_synthetic_run(tmp_path / "results", tmp_path / "catalog", days=40, seed=5, fast=30,
                                          slow=120, run_id="SYNTHETIC-sidecar")
    eq = pd.read_parquet(folder / "equity.parquet")
    metrics = json.loads((folder / "metrics.json").read_text())
    store = ResultsStore(tmp_path / "results")
    run = store.get("SYNTHETIC-sidecar")
    ov = charts.equity_overview(run)
    files = sorted((tmp_path / "results" / ".cache" / "dash" / "SYNTHETIC-sidecar").glob("*.npz"))
    assert [f.name.split("-")[0] for f in files] == ["equity"]
    assert int(ov["raw"][0]) == len(eq) and len(ov["eq_x"]) < len(eq)
    assert ov["eq_equity"].max() == eq["equity"].max() and ov["eq_equity"].min() == eq["equity"].min()
    assert ov["eq_equity"][-1] == eq["equity"].iloc[-1]
    assert -ov["dd_y"].min() == pytest.approx(metrics["max_drawdown"], rel=1e-12)
    # monthly returns by hand with pandas (last sample of each month over the previous month's last)
    month_end = eq.set_index("ts")["equity"].groupby(lambda t: (t.year, t.month)).last()
    prev = month_end.shift(1).fillna(metrics["starting_equity"])
    expected = (month_end / prev - 1).to_numpy()
    assert ov["m_r"] == pytest.approx(expected, rel=1e-12)
    cat = run.catalog_root(tmp_path / "catalog")
    bt = run.bar_types()[0]
    candles = charts.candles_overview(run, bt, cat)
    assert len(list(files[0].parent.glob("candles-*.npz"))) == 1
    # a fresh server process: the overview comes from the files, the full series are never read
    market.BARS._data.clear()
    store2 = ResultsStore(tmp_path / "results")
    run2 = store2.get("SYNTHETIC-sidecar")
    monkeypatch.setattr(run2, "equity_arrays", lambda: pytest.fail("full equity series read"))
    monkeypatch.setattr(market.BARS, "get", lambda *a: pytest.fail("catalog bars read"))
    ov2 = charts.equity_overview(run2)
    for k in ov:
        np.testing.assert_array_equal(ov2[k], ov[k])
    c2 = charts.candles_overview(run2, bt, cat)
    for k in candles:
        np.testing.assert_array_equal(c2[k], candles[k])
    fig, _tf = charts.candles_figure(run2, bt, cat)  # trades come from trades.parquet, exact
    trades = pd.read_parquet(folder / "trades.parquet")
    exits = [t for t in fig.data if t.name.startswith("Exit")]
    assert sorted(y for t in exits for y in t.y) == pytest.approx(sorted(trades["exit_price"]))
    monkeypatch.undo()
    # a changed equity file -> new key -> rebuilt from the file, old file removed
    st = (folder / "equity.parquet").stat()
    os.utime(folder / "equity.parquet", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    run3 = ResultsStore(tmp_path / "results").get("SYNTHETIC-sidecar")
    calls = []
    real = run3.equity_arrays
    monkeypatch.setattr(run3, "equity_arrays", lambda: calls.append(1) or real())
    charts.equity_overview(run3)
    assert calls and len(list(files[0].parent.glob("equity-*.npz"))) == 1
    assert sidecar.CACHE_VERSION >= 1 and store.run_ids() == ["SYNTHETIC-sidecar"]


def test_detail_page_breakdown_tables_and_nested_metrics() -> None:
    """Per-strategy / per-instrument tables (with a sum row), the scalar-only metrics table, and how
    dict / list metrics are shown (compare page)."""
    from dash_ui.formatting import fmt
    from dash_ui.pages.detail import breakdown_table, metrics_table

    recs = [{"instrument_id": "BTCUSDT.BINANCE", "trades": 3, "open_trades": 1, "win_rate": 0.5, "profit_factor": None,
             "net_pnl_usdt": -10.0, "pnl_before_costs_usdt": 2.0, "fees_paid_usdt": 12.0, "funding_paid_usdt": 0.0,
             "slippage_cost_usdt": 0.0, "exposure": 0.25, "return_contribution": -0.0001, "buy_and_hold_return": 0.11},
            {"instrument_id": "ETHUSDT.BINANCE", "trades": 2, "open_trades": 0, "win_rate": 1.0, "profit_factor": 2.0,
             "net_pnl_usdt": 30.0, "pnl_before_costs_usdt": 31.0, "fees_paid_usdt": 1.0, "funding_paid_usdt": 0.0,
             "slippage_cost_usdt": 0.0, "exposure": 0.5, "return_contribution": 0.0003, "buy_and_hold_return": 0.765}]

    def cells(component) -> dict[str, str]:
        out = {}

        def walk(c) -> None:
            if getattr(c, "id", None) and isinstance(getattr(c, "children", None), str):
                out[c.id] = c.children
            kids = getattr(c, "children", None)
            for k in kids if isinstance(kids, list) else [kids] if kids is not None else []:
                if hasattr(k, "children"):
                    walk(k)
        walk(component)
        return out

    table = breakdown_table(recs, "instrument_id", "Instrument", "bi")
    c = cells(table)
    assert c["bi-0-net_pnl_usdt"] == "-10.00 USDT" and c["bi-1-buy_and_hold_return"] == "76.50 %"
    assert c["bi-0-profit_factor"] == "n/a" and c["bi-0-return_contribution"] == "-0.01 %"
    sum_row = table.children[1].children[-1]
    net_cell = next(td for td in sum_row.children if getattr(td, "id", None) == "bi-total-net_pnl_usdt")
    assert net_cell.children.children == "20.00 USDT"
    m = {"trades": 5, "by_strategy": [{"strategy_id": "A"}], "buy_and_hold_by_instrument": {"X": 0.1, "Y": -0.2}}
    keys = set(cells(metrics_table(m)))
    assert "metric-trades" in keys and "metric-by_strategy" not in keys
    assert fmt("buy_and_hold_by_instrument", {"X": 0.1, "Y": -0.2}) == "X: 10.00 %, Y: -20.00 %"
    assert fmt("by_strategy", [{}, {}]) == "2 rows"


def test_formatter_knows_metric_types_and_never_raises() -> None:
    """The risk table's nested counts (dicts of metrics.json) are counts per reason, not floats; any value
    of an unexpected type is shown as text instead of raising (the cause of the blank risk-run pages)."""
    from dash_ui.formatting import fmt, kind

    assert fmt("risk_refusals", {"below_minimum": 66, "drawdown_pause": 5}) == "below_minimum: 66, drawdown_pause: 5"
    assert fmt("risk_reductions", {}) == "none"
    assert fmt("risk_events", {"pause_start": 1234}) == "pause_start: 1,234"
    assert fmt("risk_refusals_total", 71) == "71"
    assert fmt("buy_and_hold_by_instrument", {"X": 0.1}) == "X: 10.00 %"
    assert fmt("total_return", -0.123456) == "-12.35 %"
    assert fmt("span_days", 2.5) == "2.50" and fmt("start", "2025-06-01T00:00:00+00:00") == "2025-06-01 00:00:00"
    assert fmt("max_drawdown_duration_s", 93784) == "1d 02:03:04 (93,784 s)"
    assert fmt("excess_return", 0.05) == "5.00 %" and kind("costs_pct_of_start") == "percent"
    for odd in ({"a": {"b": [1, 2]}}, [1, 2], "text", object(), float("nan"), None, True, {"x": None}):
        for key in ("sharpe", "total_return", "trades", "fees_paid_usdt", "risk_refusals", "unknown", "start"):
            assert isinstance(fmt(key, odd), str)


def test_headline_numbers_by_hand() -> None:
    from dash_ui import analytics

    h = analytics.headline({"total_return": 0.10, "buy_and_hold_return": 0.25, "starting_equity": 10_000.0,
                            "total_costs_usdt": 1_500.0, "span_days": 6.0})
    assert h["excess_return"] == pytest.approx(-0.15) and h["costs_pct_of_start"] == pytest.approx(0.15)
    assert h["annualised_note"] == "annualised from 6.0 days"
    h = analytics.headline({"total_return": 0.1, "starting_equity": 100.0, "span_days": 400.0},
                           [{"usdt": 2.0}, {"usdt": None}, {"usdt": 3.0}])
    assert h["excess_return"] is None and h["costs_pct_of_start"] == pytest.approx(0.05) and h["annualised_note"] is None


def test_position_quantity_and_cumulative_pnl_by_hand() -> None:
    from dash_ui import analytics

    ts = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:10", "2024-01-01 00:20", "2024-01-01 00:30"], utc=True)
    trades = pd.DataFrame({
        "instrument_id": ["A", "A", "B"], "strategy_id": ["s1", "s2", "s1"], "side": ["LONG", "SHORT", "LONG"],
        "quantity": [2.0, 0.5, 1.0], "entry_time": ts[[0, 1, 0]], "exit_time": ts[[2, 3, 1]],
        "pnl": [10.0, -4.0, 1.0], "is_open": [False, True, False]})
    at = np.array([t.value for t in ts] + [ts[-1].value + 10**12], dtype=np.int64)
    # A: +2 from 00:00 until 00:20, -0.5 from 00:10 (open at the end: held to the end)
    assert analytics.position_qty(trades, "A", at).tolist() == [2.0, 1.5, -0.5, -0.5, -0.5]
    assert analytics.position_qty(trades, "B", at).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    cum = analytics.strategy_cum_pnl(trades)
    assert cum["s1"][1].tolist() == [1.0, 11.0] and cum["s2"][1].tolist() == [-4.0]


def test_plot_source_bar_type_and_price_decimals() -> None:
    from dash_ui.charts import price_decimals
    from nautilus_app.plotting import source_bar_type

    assert source_bar_type("ETHUSDT-PERP.BINANCE_USDM-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL") == \
        "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
    assert source_bar_type("BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL") == "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    assert price_decimals(np.array([29367.3, 29367.31, 100.0])) == 2
    assert price_decimals(np.array([0.06551, 0.0655])) == 5
