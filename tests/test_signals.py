"""Vectorised-signals strategies (strategies/signals.py) against their event-driven twins on real data.

Every fill (time, side, quantity, price, commission), every trade's exit tag and the final equity of
the signals version equal the event-driven strategy's, with the default realistic venue (latency,
volume slippage, fees), on spot and on a perpetual with funding and hourly mark prices, long/short;
an isolated-margin liquidation found by the scheduled scan equals the per-bar actor's. Python is
called on a small fraction of the bars. Nautilus's EMA is reproduced to the bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app.backtest import run_backtest
from nautilus_app.config import parse_config

MIRROR = shared_data_dir() / "binance-vision"
SPOT_BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
PERP_BAR = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
ETH = "ETHUSDT-PERP.BINANCE_USDM"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signals_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2025-06-01", end="2025-06-30", kinds=("klines",))
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-07-01", end="2023-07-31", kinds=("klines", "fundingRate"))
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1h",
                          start="2023-07-01", end="2023-07-31", kinds=("markPriceKlines",))
    return root


def _run(catalog: Path, tmp: Path, strategy: str, params: dict, venue: dict, bar: str, strategy_bar: str | None = None,
         **span: str):
    """One run on the stored ``bar`` (the strategy trades ``strategy_bar``, default ``bar``)."""
    raw = {"name": strategy, "catalog": str(catalog), "bar_types": [bar], "venues": [venue],
           "strategies": [{"name": strategy, "params": {"bar_type": strategy_bar or bar, **params}}], **span}
    return run_backtest(parse_config(raw), results_root=tmp / strategy, progress=False)


def assert_twins(a, b) -> pd.DataFrame:
    cols = ["ts_event", "instrument_id", "order_side", "last_qty", "last_px", "commission", "slippage_cost"]
    fa, fb = (pd.read_parquet(o.results_path / "fills.parquet") for o in (a, b))
    key = ["ts_event", "order_side", "last_qty"]
    fa, fb = (f[cols].sort_values(key, kind="stable").reset_index(drop=True) for f in (fa, fb))
    pd.testing.assert_frame_equal(fa, fb, check_exact=True)
    ta, tb = (pd.read_parquet(o.results_path / "trades.parquet") for o in (a, b))
    assert ta["exit_tag"].tolist() == tb["exit_tag"].tolist()
    assert ta["exit_reason"].tolist() == tb["exit_reason"].tolist()
    assert a.metrics["final_equity"] == b.metrics["final_equity"]
    assert a.metrics["trades"] == b.metrics["trades"]
    return fa


SPOT = {"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}
PERP = {"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"],
        "margin_mode": "isolated", "leverages": {ETH: 10}}


@pytest.mark.parametrize("name", ["ema_cross", "trend_following", "mean_reversion"])
def test_signals_twin_equals_event_driven_on_spot(name: str, catalog: Path, tmp_path: Path) -> None:
    params = {"instrument_id": "BTCUSDT.BINANCE"}
    a = _run(catalog, tmp_path, name, params, SPOT, SPOT_BAR)
    b = _run(catalog, tmp_path, f"{name}_signals", params, SPOT, SPOT_BAR)
    fills = assert_twins(a, b)
    assert len(fills) > 100


@pytest.mark.parametrize("name", ["ema_cross", "trend_following", "mean_reversion"])
def test_signals_twin_equals_event_driven_on_a_perpetual_long_short(name: str, catalog: Path, tmp_path: Path) -> None:
    # funding every 8 h and hourly mark prices share their times with bars (see SignalStrategy.sizing_equity)
    params = {"instrument_id": ETH, "allow_short": True, "position_fraction": 3.0}
    span = {"start": "2023-07-05", "end": "2023-07-31"}
    a = _run(catalog, tmp_path, name, params, PERP, PERP_BAR, **span)
    b = _run(catalog, tmp_path, f"{name}_signals", params, PERP, PERP_BAR, **span)
    fills = assert_twins(a, b)
    assert len(fills) > 100 and (fills["order_side"] == "SELL").any()
    funding = pd.read_parquet(b.results_path / "funding.parquet")
    assert len(funding) > 0


@pytest.mark.parametrize(("name", "step"), [("trend_following", "1-HOUR"), ("mean_reversion", "15-MINUTE"),
                                          ("ema_cross", "5-MINUTE")])
@pytest.mark.parametrize("market", ["spot", "perpetual"])
def test_signals_twin_on_bars_nautilus_aggregates(name: str, step: str, market: str, catalog: Path,
                                                  tmp_path: Path) -> None:
    """The demos' setups: bars Nautilus aggregates from the stored 1m bars (``...-INTERNAL@1-MINUTE-EXTERNAL``).
    The signals twin builds them itself (nautilus_app/bar_aggregation.py) and is fed event by event; every
    fill equals the event-driven run's, on spot and on the perpetual, where funding and hourly mark prices
    share their times with the aggregated bars' closes."""
    if market == "spot":
        bar, venue, span = SPOT_BAR, SPOT, {}
        params: dict = {"instrument_id": "BTCUSDT.BINANCE"}
    else:
        bar, venue, span = PERP_BAR, PERP, {"start": "2023-07-05", "end": "2023-07-31"}
        params = {"instrument_id": ETH, "allow_short": True, "position_fraction": 3.0}
    aggregated = bar.replace("-1-MINUTE-LAST-EXTERNAL", f"-{step}-LAST-INTERNAL@1-MINUTE-EXTERNAL")
    a = _run(catalog, tmp_path, name, params, venue, bar, aggregated, **span)
    b = _run(catalog, tmp_path, f"{name}_signals", params, venue, bar, aggregated, **span)
    fills = assert_twins(a, b)
    assert len(fills) >= 10
    assert (a.feed, b.feed) == ("every_bar", "events")
    assert b.iterations < b.data_points / 4 and a.iterations == a.data_points


@pytest.fixture(scope="module")
def perp_pair_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signals_pair")
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2023-07-19", end="2023-07-31", kinds=("klines", "fundingRate"))
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("BTCUSDT", "ETHUSDT"), interval="1h",
                          start="2023-07-19", end="2023-07-31", kinds=("markPriceKlines",))
    return root


def test_demo_perp_setup_signals_twins_equal_event_driven(perp_pair_catalog: Path, tmp_path: Path) -> None:
    """configs/demo_perp.toml as shipped (trend following 1h + mean reversion 15m on BTC and ETH perpetuals,
    aggregated by Nautilus from 1m bars; cross margin with liquidation, funding, hourly marks, the realistic
    venue's random latency) over 12 days, with each strategy replaced by its signals twin. Strategies acting at
    the same time send their orders in the event-driven order (they share the venue's latency draws, so any other
    order would change the fills): the window holds such a moment."""
    import tomllib

    raw = tomllib.loads((Path(__file__).resolve().parents[1] / "configs" / "demo_perp.toml").read_text())
    raw.update(catalog=str(perp_pair_catalog), start="2023-07-19", end="2023-07-31")
    runs = []
    for suffix in ("", "_signals"):
        cfg = dict(raw, name=f"demo_perp{suffix}",
                   strategies=[dict(s, name=s["name"] + suffix) for s in raw["strategies"]])
        runs.append(run_backtest(parse_config(cfg), results_root=tmp_path, progress=False))
    a, b = runs
    fills = assert_twins(a, b)
    assert len(fills) > 50 and b.feed == "events" and b.iterations < b.data_points / 10
    sent = pd.read_parquet(a.results_path / "latency.parquet")
    shared = sent.groupby("ts_sent")["strategy_id"].nunique()
    assert (shared > 1).any()  # two strategies sent orders at the same time
    sa, sb = (pd.read_parquet(o.results_path / "latency.parquet") for o in (a, b))
    assert sa["client_order_id"].tolist() == sb["client_order_id"].tolist()  # the same draw for the same order
    # the charts: every recorded indicator value of every strategy, NaN during warm-up in both
    ia, ib = (pd.read_parquet(o.results_path / "indicators.parquet") for o in (a, b))
    ib = ib.rename(columns=lambda c: c.replace("Signals-", "-"))
    ib["strategy_id"] = ib["strategy_id"].astype(str).str.replace("Signals-", "-")
    ia["strategy_id"] = ia["strategy_id"].astype(str)
    assert len(ia) > 1000 and ia.isna().any().any()
    pd.testing.assert_frame_equal(ia, ib[ia.columns], check_exact=True, check_categorical=False)


def test_isolated_liquidation_by_the_scheduled_scan_equals_the_per_bar_actor(catalog: Path, tmp_path: Path) -> None:
    venue = dict(PERP, starting_balances=["100000 USDT"], leverages={ETH: 20}, costs="fees_only", liquidation_fee=0.0125)
    params = {"instrument_id": ETH, "position_fraction": 1.0}
    span = {"start": "2023-07-14", "end": "2023-07-15"}
    a = _run(catalog, tmp_path, "buy_and_hold", params, venue, PERP_BAR, **span)
    b = _run(catalog, tmp_path, "buy_and_hold_signals", params, venue, PERP_BAR, **span)
    assert_twins(a, b)
    la, lb = (pd.read_parquet(o.results_path / "liquidations.parquet") for o in (a, b))
    assert len(la) == 1
    drop = ["strategy_id", "position_id"]
    pd.testing.assert_frame_equal(la.drop(columns=drop), lb.drop(columns=drop), check_exact=True)


def test_nautilus_ema_is_bit_identical_and_signals_have_no_lookahead(catalog: Path) -> None:
    from nautilus_trader.indicators import ExponentialMovingAverage
    from nautilus_trader.model import Price

    from nautilus_app.venue.fill_timing import load_bar_series
    from strategies.ema_cross import EMACrossConfig
    from strategies.signal_strategies import EMACrossSignals
    from strategies.signals import check_no_lookahead, nautilus_doubles, nautilus_ema

    s = load_bar_series(catalog, SPOT_BAR, None, None)
    nd = nautilus_doubles(s.close, 2)
    assert nd.tolist() == [Price(float(x), 2).as_double() for x in s.close]
    seg = (np.arange(len(nd)) >= len(nd) // 2).astype(np.int64)  # a restart half way, as after a gap
    for n in (10, 20):
        ours, ready = nautilus_ema(nd, n, seg)
        ref, ref_ready = [], []
        for lo, hi in ((0, len(nd) // 2), (len(nd) // 2, len(nd))):
            ema = ExponentialMovingAverage(n)
            for x in nd[lo:hi].tolist():
                ema.update_raw(x)
                ref.append(ema.value)
                ref_ready.append(ema.initialized)
        assert ours.tolist() == ref and ready.tolist() == ref_ready
    strat = EMACrossSignals(EMACrossConfig(instrument_id="BTCUSDT.BINANCE", bar_type=SPOT_BAR))
    strat.set_bars(s)
    df = strat.signal_frame(2)[["ts", "open", "high", "low", "close", "volume", "segment", "close_nd", "high_nd",
                                "low_nd"]]
    check_no_lookahead(strat, df, [500, 10_000, 20_001])


def test_python_is_called_only_at_signal_and_fill_events(catalog: Path, tmp_path: Path) -> None:
    from nautilus_app import backtest as bt

    raw = {"name": "w", "catalog": str(catalog), "bar_types": [SPOT_BAR], "venues": [SPOT],
           "strategies": [{"name": "ema_cross_signals", "params": {"instrument_id": "BTCUSDT.BINANCE",
                                                                   "bar_type": SPOT_BAR}}]}
    cfg = parse_config(raw)
    plan = bt.plan_data(cfg)
    data = bt.load_data(cfg, plan)
    engine, _sims, strategies = bt.build_engine(cfg, plan, data)
    try:
        bt.run_engine(engine, data)
        strat = strategies[0]
        orders = len(engine.cache.orders())
        assert orders > 100
        # one call per signal bar acted on plus one after each order to see it resolved
        assert strat.wakeups <= 2 * orders + 2
        assert strat.wakeups < len(data) / 10
    finally:
        engine.dispose()
