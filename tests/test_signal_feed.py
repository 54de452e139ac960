"""The event-by-event feed of vectorised-signals runs (nautilus_app/signal_feed.py) gives the results of
feeding every bar.

Each case runs one config twice on real Binance data, ``feed = "every_bar"`` and ``feed = "auto"``, and
compares every results table (fills, orders, positions, trades, funding, liquidations, account states,
equity, breakdowns) exactly, and every metric; the fast run must also have fed the engine a small
part of the bars. Cases: three strategies on two spot instruments with the default realistic venue;
a long/short perpetual pair on cross margin with liquidations, funding and hourly marks; isolated
margin with a liquidation; orders in flight for more than a bar (90 s latency).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app.backtest import run_backtest
from nautilus_app.config import parse_config

MIRROR = shared_data_dir() / "binance-vision"
BTC, ETH = "BTCUSDT.BINANCE", "ETHUSDT.BINANCE"
BTC_P, ETH_P = "BTCUSDT-PERP.BINANCE_USDM", "ETHUSDT-PERP.BINANCE_USDM"


def bar(iid: str) -> str:
    return f"{iid}-1-MINUTE-LAST-EXTERNAL"


#: columns that differ between any two runs (random UUIDs of Nautilus events)
VOLATILE = {"init_id", "id", "event_id", "report_id"}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: metrics.json keys measured in wall-clock time
WALL_CLOCK = {"engine_seconds", "results_seconds", "total_seconds", "run_id", "created"}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("feed_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2025-06-01", end="2025-06-15", kinds=("bars",))
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2023-07-01", end="2023-08-16", kinds=("bars", "funding"))
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("BTCUSDT", "ETHUSDT"), interval="1h",
                          start="2023-07-01", end="2023-08-16", kinds=("mark",))
    return root


def _both(catalog: Path, tmp: Path, raw: dict) -> tuple:
    outs = []
    for feed in ("every_bar", "auto"):
        cfg = parse_config({**raw, "catalog": str(catalog), "feed": feed})
        outs.append(run_backtest(cfg, results_root=tmp / feed, progress=False))
    return tuple(outs)


def _frame(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    for c in df.columns:
        if df[c].dtype == object or str(df[c].dtype) == "string":
            # random UUIDs inside ids (spot position ids end in one); Nautilus's trade ids end in its matching
            # engine's count of processed prices ("T-<hash>-<count>": fewer bars, smaller counts)
            df[c] = (df[c].astype("string").str.replace(UUID, "<uuid>", regex=True)
                     .str.replace(r"(T-[0-9a-f]{16})-\d+", r"\1", regex=True))
    return df.drop(columns=[c for c in df.columns if c in VOLATILE])


def assert_same_results(full, fast, bars_in_run: int) -> None:
    names = sorted(p.name for p in full.results_path.glob("*.parquet"))
    assert names == sorted(p.name for p in fast.results_path.glob("*.parquet"))
    assert {"fills.parquet", "orders.parquet", "positions.parquet", "account.parquet", "equity.parquet"} <= set(names)
    for name in names:
        pd.testing.assert_frame_equal(_frame(full.results_path / name), _frame(fast.results_path / name),
                                      check_exact=True, obj=name)
    ma, mb = (json.loads((o.results_path / "metrics.json").read_text()) for o in (full, fast))
    for m in (ma, mb):
        for k in WALL_CLOCK:
            m.pop(k, None)
    assert ma == mb
    # every bar went through the engine in the reference run, a small part of them in the fast one
    feeds = [json.loads((o.results_path / "run.json").read_text())["feed"] for o in (full, fast)]
    assert feeds == ["every_bar", "events"]
    assert full.iterations >= bars_in_run
    assert fast.iterations < full.iterations / 4


def test_spot_three_strategies_two_instruments_realistic_venue(catalog: Path, tmp_path: Path) -> None:
    raw = {"name": "feed_spot", "bar_types": [bar(BTC), bar(ETH)], "start": "2025-06-01", "end": "2025-06-15",
           "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
           "strategies": [
               {"name": "ema_cross_signals", "params": {"instrument_id": BTC, "bar_type": bar(BTC)}},
               {"name": "mean_reversion_signals", "params": {"instrument_id": ETH, "bar_type": bar(ETH)}},
               {"name": "trend_following_signals", "params": {"instrument_id": BTC, "bar_type": bar(BTC)}}]}
    full, fast = _both(catalog, tmp_path, raw)
    assert full.metrics["trades"] > 100
    assert_same_results(full, fast, 2 * 14 * 1440)


def test_cross_margin_long_short_pair_with_liquidations_funding_and_marks(catalog: Path, tmp_path: Path) -> None:
    raw = {"name": "feed_cross", "bar_types": [bar(BTC_P), bar(ETH_P)], "start": "2023-07-19", "end": "2023-08-16",
           "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"],
                       "margin_mode": "cross", "max_leverage": 50, "leverages": {BTC_P: 50, ETH_P: 50}}],
           "strategies": [
               {"name": "ema_cross_signals", "params": {"instrument_id": BTC_P, "bar_type": bar(BTC_P),
                                                        "allow_short": True, "position_fraction": 2.0}},
               {"name": "buy_and_hold_signals", "params": {"instrument_id": ETH_P, "bar_type": bar(ETH_P),
                                                           "position_fraction": 10.0}},
               {"name": "buy_and_hold_signals", "params": {"instrument_id": BTC_P, "bar_type": bar(BTC_P),
                                                           "position_fraction": 10.0}}]}
    full, fast = _both(catalog, tmp_path, raw)
    assert full.metrics["liquidations"] >= 1
    assert full.metrics["funding_paid_usdt"] != 0
    assert_same_results(full, fast, 2 * 28 * 1440)


def test_isolated_margin_liquidation(catalog: Path, tmp_path: Path) -> None:
    raw = {"name": "feed_isolated", "bar_types": [bar(ETH_P)], "start": "2023-07-14", "end": "2023-07-24",
           "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"],
                       "margin_mode": "isolated", "leverages": {ETH_P: 20}}],
           "strategies": [
               {"name": "buy_and_hold_signals", "params": {"instrument_id": ETH_P, "bar_type": bar(ETH_P),
                                                           "position_fraction": 10.0}},
               {"name": "mean_reversion_signals", "params": {"instrument_id": ETH_P, "bar_type": bar(ETH_P),
                                                             "allow_short": True, "position_fraction": 2.0}}]}
    full, fast = _both(catalog, tmp_path, raw)
    assert full.metrics["liquidations"] >= 1
    assert_same_results(full, fast, 10 * 1440)


def test_orders_in_flight_across_bars(catalog: Path, tmp_path: Path) -> None:
    raw = {"name": "feed_latency", "bar_types": [bar(BTC)], "start": "2025-06-01", "end": "2025-06-08",
           "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"],
                       "latency": {"mean_ms": 90_000, "std_ms": 40_000, "min_ms": 10_000, "seed": 3}}],
           "strategies": [{"name": "ema_cross_signals", "params": {"instrument_id": BTC, "bar_type": bar(BTC)}}]}
    full, fast = _both(catalog, tmp_path, raw)
    lat = pd.read_parquet(full.results_path / "latency.parquet")
    assert (lat.filter(like="ms").max() > 60_000).any()  # some orders were in flight for more than a bar
    assert_same_results(full, fast, 7 * 1440)


def test_bars_from_the_compact_store(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """The feed builds its ``Bar`` objects from the store's raw decimals: the compact store's too."""
    root = tmp_path_factory.mktemp("feed_compact")
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-08-01", end="2023-08-10", kinds=("bars", "funding"), store="compact")
    raw = {"name": "feed_compact", "bar_types": [bar(ETH_P)], "start": "2023-08-01", "end": "2023-08-10",
           "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"],
                       "margin_mode": "cross", "leverages": {ETH_P: 5}}],
           "strategies": [{"name": "trend_following_signals", "params": {"instrument_id": ETH_P, "bar_type": bar(ETH_P),
                                                                        "allow_short": True}}]}
    full, fast = _both(root, tmp_path, raw)
    assert json.loads((fast.results_path / "run.json").read_text())["bar_stores"] == {bar(ETH_P): "compact"}
    assert full.metrics["trades"] > 10
    assert_same_results(full, fast, 9 * 1440)


def test_a_run_with_an_event_driven_strategy_feeds_every_bar(catalog: Path, tmp_path: Path) -> None:
    raw = {"name": "feed_mixed", "catalog": str(catalog), "bar_types": [bar(BTC)], "start": "2025-06-01",
           "end": "2025-06-03", "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
           "strategies": [{"name": "ema_cross_signals", "params": {"instrument_id": BTC, "bar_type": bar(BTC)}},
                          {"name": "ema_cross", "params": {"instrument_id": BTC, "bar_type": bar(BTC)}}]}
    out = run_backtest(parse_config(raw), results_root=tmp_path, progress=False)
    assert json.loads((out.results_path / "run.json").read_text())["feed"] == "every_bar"
    assert out.iterations == out.data_points == 2 * 1440


def test_raw_bars_equal_the_catalogs_bars_field_by_field(catalog: Path) -> None:
    """Every bar :class:`RawBars` builds for the fast feed (from the raw 128-bit decimal words) equals the bar
    Nautilus's catalog returns: prices, volume (raw values and precisions), bar type and both timestamps."""
    from nautilus_trader.persistence import ParquetDataCatalog

    from catalog.reader import read_columns
    from nautilus_app.signal_feed import RawBars
    from nautilus_app.venue.fill_timing import BAR_COLUMNS

    cat = ParquetDataCatalog(str(catalog))
    for iid in (BTC, ETH_P):
        inst = cat.instruments(instrument_ids=[iid])[0]
        expected = cat.query_bars([bar(iid)])
        table = read_columns(catalog, "bars", bar(iid), BAR_COLUMNS)  # Parquet rows as stored, in file order
        raw = RawBars(bar(iid), table, inst.price_precision, inst.size_precision)
        assert len(raw) == len(expected) > 10_000
        for i, want in enumerate(expected):
            got = raw.bar(i)
            assert (got.bar_type, got.ts_event, got.ts_init) == (want.bar_type, want.ts_event, want.ts_init), i
            for field in ("open", "high", "low", "close", "volume"):
                g, w = getattr(got, field), getattr(want, field)
                assert (g.raw, g.precision) == (w.raw, w.precision), (i, field, g, w)
