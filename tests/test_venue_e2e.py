"""The simulated exchange on real Binance data: liquidation, slippage, margin checks, funding.

Expected numbers are computed here from the raw files (Binance Vision CSVs, freqtrade feathers)
and Binance's published formulas written out by hand, never copied from the run's output.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from catalog.freqtrade import import_freqtrade
from core.paths import shared_data_dir
from nautilus_app.backtest import BacktestFailed, run_backtest
from nautilus_app.config import parse_config
from tests.test_backtest_e2e import read_kline_zip

MIRROR = shared_data_dir() / "binance-vision"
ETH_ZIP = MIRROR / "data/futures/um/monthly/klines/ETHUSDT/1m/ETHUSDT-1m-2023-07.zip"
FT_DIR = shared_data_dir() / "freqtrade/binance/futures/window-2023-07"
ETH_BAR = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
BTC_BAR = "BTCUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
ETH = "ETHUSDT-PERP.BINANCE_USDM"
BTC = "BTCUSDT-PERP.BINANCE_USDM"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venue_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-07-01", end="2023-07-31", kinds=("klines", "fundingRate"))
    return root


def perp_config(catalog: Path, strategy: str, venue: dict, start: str = "2023-07-14", end: str = "2023-07-15",
                **params) -> dict:
    return {
        "name": f"v_{strategy}", "catalog": str(catalog), "start": start, "end": end, "bar_types": [ETH_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "costs": "fees_only", "starting_balances": ["100000 USDT"], **venue}],
        "strategies": [{"name": strategy, "params": {"instrument_id": ETH, "bar_type": ETH_BAR, **params}}],
    }


def test_20x_isolated_long_is_liquidated_at_binance_price_on_the_right_bar(catalog: Path, tmp_path: Path) -> None:
    cfg = parse_config(perp_config(catalog, "buy_and_hold", {"leverages": {ETH: 20}, "margin_mode": "isolated",
                                                              "liquidation_fee": 0.0125}, position_fraction=1.0))
    out = run_backtest(cfg, results_root=tmp_path, progress=False)
    raw = read_kline_zip(ETH_ZIP)
    raw = raw[(raw.index > pd.Timestamp("2023-07-14", tz="UTC")) & (raw.index <= pd.Timestamp("2023-07-15", tz="UTC"))]
    fills = pd.read_parquet(out.results_path / "fills.parquet")
    entry = fills.iloc[0]
    assert entry["order_side"] == "BUY"
    # bought at the open of the second bar (decided on the first bar's close)
    assert entry["last_px"] == raw["open"].iloc[1]
    qty, ep = float(entry["last_qty"]), float(entry["last_px"])
    margin = qty * ep / 20
    # Binance: LP = (WB + cum - side x qty x EP) / (qty x MMR - side x qty); ETHUSDT bracket 1 (notional
    # < 100k USDT): MMR 0.5 %, cum 0 (leverageBracket, July 2023)
    assert qty * ep < 100_000
    lp = (margin + 0.0 - qty * ep) / (qty * 0.005 - qty)
    lp_tick = math.ceil(round(lp / 0.01, 6)) * 0.01  # on the tick grid, towards the long
    # the first bar after the entry whose low reaches LP
    after = raw.iloc[2:]
    hit_time = after.index[(after["low"] <= lp_tick).to_numpy()][0]
    liq = pd.read_parquet(out.results_path / "liquidations.parquet")
    assert len(liq) == 1
    row = liq.iloc[0]
    assert row["ts"] == hit_time
    assert row["liquidation_price"] == pytest.approx(lp_tick, abs=1e-9)
    assert row["fill_price"] == pytest.approx(lp_tick, abs=1e-9)
    # the close is a normal fill of the strategy's own order, tagged as a liquidation
    last = fills.iloc[-1]
    assert last["order_side"] == "SELL" and last["is_liquidation"] and last["strategy_id"] == "BuyAndHold-000"
    orders = pd.read_parquet(out.results_path / "orders.parquet")
    liq_order = orders[orders["client_order_id"] == last["client_order_id"]].iloc[0]
    assert "LIQUIDATION" in str(liq_order["tags"]) and liq_order["is_reduce_only"]
    # clearance fee: 1.25 % of notional, capped at the margin left at LP (maintenance 0.5 % of notional)
    # minus the taker fee 0.05 %
    assert row["liquidation_fee"] == pytest.approx((0.005 - 0.0005) * qty * lp_tick + (lp_tick - lp) * qty, abs=1e-6)
    # isolated: the loss including the clearance fee and the taker fee is the position's margin, no more
    assert row["loss"] + 0.0005 * qty * lp_tick == pytest.approx(margin, abs=1e-6)
    trades = pd.read_parquet(out.results_path / "trades.parquet")
    assert trades["liquidated"].tolist() == [True]
    assert trades["exit_reason"].tolist() == ["liquidation"]
    assert out.metrics["liquidations"] == 1
    assert out.metrics["liquidation_loss_usdt"] == pytest.approx(row["loss"], abs=1e-9)


def test_2x_long_through_the_same_drop_is_not_liquidated(catalog: Path, tmp_path: Path) -> None:
    cfg = parse_config(perp_config(catalog, "buy_and_hold", {"leverages": {ETH: 2}, "margin_mode": "isolated"},
                                   position_fraction=1.0))
    out = run_backtest(cfg, results_root=tmp_path, progress=False)
    assert out.metrics["liquidations"] == 0
    assert len(pd.read_parquet(out.results_path / "liquidations.parquet")) == 0
    raw = read_kline_zip(ETH_ZIP)
    fills = pd.read_parquet(out.results_path / "fills.parquet")
    # held to the end: sold at the last bar's close by close_positions_on_stop
    assert fills.iloc[-1]["last_px"] == raw.loc[pd.Timestamp("2023-07-15", tz="UTC"), "close"]


def test_fixed_slippage_next_open_and_cost_breakdown(catalog: Path, tmp_path: Path) -> None:
    cfg = parse_config(perp_config(catalog, "ema_cross", {"leverages": {ETH: 5}, "slippage": "fixed",
                                                           "slippage_bps": 10},
                                   fast_period=10, slow_period=30, allow_short=True, position_fraction=0.5))
    out = run_backtest(cfg, results_root=tmp_path, progress=False)
    raw = read_kline_zip(ETH_ZIP)
    fills = pd.read_parquet(out.results_path / "fills.parquet")
    assert len(fills) > 20
    ts = pd.to_datetime(fills["ts_event"], utc=True)
    next_open = raw["open"].shift(-1).reindex(ts).to_numpy()
    last_close = raw.loc[pd.Timestamp("2023-07-15", tz="UTC"), "close"]
    ref = np.where(np.isnan(next_open), last_close, next_open)
    buy = (fills["order_side"] == "BUY").to_numpy()
    # 10 bps against the trader, rounded to the 0.01 tick against the trader
    expected = np.where(buy, np.ceil(np.round(ref * 1.001 / 0.01, 6)) * 0.01, np.floor(np.round(ref * 0.999 / 0.01, 6)) * 0.01)
    np.testing.assert_allclose(fills["last_px"], expected, atol=1e-9)
    np.testing.assert_allclose(fills["reference_price"], ref, atol=1e-9)
    cost = np.where(buy, 1, -1) * (fills["last_px"] - ref) * fills["last_qty"]
    np.testing.assert_allclose(fills["slippage_cost"], cost, atol=1e-9)
    assert out.metrics["slippage_cost_usdt"] == pytest.approx(cost.sum(), rel=1e-9)
    assert out.metrics["slippage_cost_usdt"] > 0
    # taker fee 0.05 % of each fill's notional, no liquidation fees
    assert out.metrics["trading_fees_usdt"] == pytest.approx(0.0005 * (fills["last_px"] * fills["last_qty"]).sum(), rel=1e-9)
    assert out.metrics["liquidation_fees_usdt"] == 0.0
    trades = pd.read_parquet(out.results_path / "trades.parquet")
    assert trades["slippage_cost"].sum() == pytest.approx(cost.sum(), rel=1e-9)
    assert out.metrics["total_costs_usdt"] == pytest.approx(
        out.metrics["trading_fees_usdt"] + cost.sum() + out.metrics["funding_paid_usdt"], rel=1e-9)


def test_order_the_account_cannot_margin_is_denied(catalog: Path, tmp_path: Path) -> None:
    # 10 x equity notional at 5x needs twice the balance as initial margin
    cfg = parse_config(perp_config(catalog, "buy_and_hold", {"leverages": {ETH: 5}}, position_fraction=10.0))
    out = run_backtest(cfg, results_root=tmp_path, progress=False)
    orders = pd.read_parquet(out.results_path / "orders.parquet")
    assert orders["status"].tolist() == ["DENIED"]
    assert len(pd.read_parquet(out.results_path / "fills.parquet")) == 0


def test_constant_funding_rate_and_missing_funding(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-07-14", end="2023-07-15", kinds=("klines",))
    raw = perp_config(root, "buy_and_hold", {"leverages": {ETH: 2}}, start="2023-07-14", end="2023-07-16",
                      position_fraction=1.0)
    with pytest.raises(BacktestFailed, match="no funding rates for perpetual"):
        run_backtest(parse_config(raw), results_root=tmp_path / "r", progress=False)
    raw["venues"][0]["funding_rate"] = 0.0001
    out = run_backtest(parse_config(raw), results_root=tmp_path / "r", progress=False)
    funding = pd.read_parquet(out.results_path / "funding.parquet")
    bars = read_kline_zip(ETH_ZIP)
    qty = float(pd.read_parquet(out.results_path / "fills.parquet")["last_qty"].iloc[0])
    # every 8 h inside the run while long, on the last price (no mark prices in this catalog)
    grid = [pd.Timestamp(f"2023-07-14 {h:02d}:00", tz="UTC") for h in (8, 16)] + [pd.Timestamp("2023-07-15", tz="UTC"),
                                                                                 pd.Timestamp("2023-07-15 08:00", tz="UTC"),
                                                                                 pd.Timestamp("2023-07-15 16:00", tz="UTC")]
    assert funding["ts"].tolist() == grid
    np.testing.assert_allclose(funding["amount"], [-qty * bars.loc[t, "close"] * 0.0001 for t in grid], atol=1e-8)


def test_funding_equals_raw_feather_rows(tmp_path: Path) -> None:
    """BTC and ETH perpetuals held long and short through the freqtrade 2023-07 window."""
    root = tmp_path / "ft"
    import_freqtrade(root, data_dir=FT_DIR, pairs=["BTC/USDT:USDT", "ETH/USDT:USDT"], timeframes=["1m"],
                     trading_mode="futures")
    cfg = parse_config({
        "name": "ft_funding", "catalog": str(root), "start": "2023-07-05", "end": "2023-08-15",
        "bar_types": [BTC_BAR, ETH_BAR], "allow_gaps": True,  # the BTC perp file starts on 2023-07-18
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "costs": "fees_only", "starting_balances": ["100000 USDT"],
                    "default_leverage": 5}],
        "strategies": [
            {"name": "ema_cross", "params": {"instrument_id": iid, "bar_type": bt, "fast_period": 240,
                                             "slow_period": 960, "allow_short": True, "position_fraction": 0.4}}
            for iid, bt in ((BTC, BTC_BAR), (ETH, ETH_BAR))],
    })
    out = run_backtest(cfg, results_root=tmp_path / "r", progress=False)
    funding = pd.read_parquet(out.results_path / "funding.parquet")
    fills = pd.read_parquet(out.results_path / "fills.parquet")
    total = 0.0
    sides = set()
    for iid, pair in ((BTC, "BTC_USDT_USDT"), (ETH, "ETH_USDT_USDT")):
        rate = pd.read_feather(FT_DIR / f"{pair}-8h-funding_rate.feather")
        rate["ts"] = rate["date"].dt.floor("h")  # Binance stamps are a few ms late; the grid is the hour
        rate = rate.set_index("ts")["open"]
        mark = pd.read_feather(FT_DIR / f"{pair}-8h-mark.feather")
        mark = mark.set_index(mark["date"] + pd.Timedelta(hours=8))["close"]  # candle close, at its close time
        f = fills[fills["instrument_id"] == iid]
        signed = np.where(f["order_side"] == "BUY", 1.0, -1.0) * f["last_qty"]
        pos = pd.Series(signed.to_numpy(), index=pd.to_datetime(f["ts_event"], utc=True)).groupby(level=0).sum().cumsum()
        lo, hi = pd.to_datetime(f["ts_event"], utc=True).iloc[[0, -1]]
        for t, r in rate.items():
            if not (lo <= t < hi):
                continue
            q = float(pos[pos.index <= t].iloc[-1])
            if q != 0:
                sides.add(np.sign(q))
                total += -q * mark.loc[t] * r
    assert sides == {1.0, -1.0}  # held long and short
    assert len(funding) > 100
    assert funding["amount"].sum() == pytest.approx(total, abs=1e-6)
    assert out.metrics["funding_paid_usdt"] == pytest.approx(-total, abs=1e-6)


def test_latency_submit_to_fill_delays_equal_seeded_draws(catalog: Path, tmp_path: Path) -> None:
    latency = {"mean_ms": 300.0, "std_ms": 100.0, "min_ms": 50.0, "spike_probability": 0.25,
               "spike_multiplier": 250.0, "seed": 11}
    cfg = parse_config(perp_config(catalog, "ema_cross", {"leverages": {ETH: 5}, "latency": latency},
                                   fast_period=10, slow_period=30, position_fraction=0.5))
    out = run_backtest(cfg, results_root=tmp_path, progress=False)
    orders = pd.read_parquet(out.results_path / "orders.parquet").sort_values("ts_init", kind="stable")
    fills = pd.read_parquet(out.results_path / "fills.parquet")
    last_bar = pd.Timestamp("2023-07-15", tz="UTC")
    # the end-of-run close (on_stop, Rust close_all_positions) is not delayed
    sent = orders[pd.to_datetime(orders["ts_init"], utc=True) < last_bar]
    assert len(sent) > 20
    # the documented draw sequence, one per command in sending order
    rng = np.random.default_rng(11)
    expected = []
    for _ in range(len(sent)):
        x = rng.normal(300.0, 100.0)
        spike = rng.random() < 0.25
        expected.append(max(50.0, x) * (250.0 if spike else 1.0))
    expected = np.array(expected)
    assert (expected > 60_000).any()  # some spikes exceed a whole 1-minute bar
    recorded = pd.read_parquet(out.results_path / "latency.parquet")
    np.testing.assert_allclose(recorded["drawn_ms"], expected, rtol=0, atol=1e-9)
    first_fill = fills.groupby("client_order_id")["ts_event"].first()
    sent_ns = pd.to_datetime(sent["ts_init"], utc=True).astype("int64").to_numpy()
    fill_ns = pd.to_datetime(first_fill.reindex(sent["client_order_id"]), utc=True).astype("int64").to_numpy()
    np.testing.assert_allclose((fill_ns - sent_ns) / 1e6, expected, atol=1e-6)  # observed == drawn (ns rounding)
    # price: the open of the first bar closing after the arrival (the next bar's open for short delays)
    raw = read_kline_zip(ETH_ZIP)
    close_ns = raw.index.astype("int64").to_numpy()
    k = np.searchsorted(close_ns, fill_ns, side="right")
    px = fills.groupby("client_order_id")["last_px"].first().reindex(sent["client_order_id"]).to_numpy()
    np.testing.assert_allclose(px, raw["open"].to_numpy()[k], atol=1e-9)


def _eth_bracket(notional: float) -> tuple[float, float]:
    """ETHUSDT (mmr, cum) by notional: Binance's July 2023 brackets, cum by the continuity rule."""
    table = [(1e5, 0.005), (2.5e5, 0.0065), (2e6, 0.01), (1e7, 0.02)]
    cum, floor, prev = 0.0, 0.0, None
    for cap, mmr in table:
        if prev is not None:
            cum += floor * (mmr - prev)
        if notional < cap:
            return mmr, cum
        floor, prev = cap, mmr
    raise AssertionError("notional beyond the test's table")


def test_cross_margin_two_positions_liquidated_at_the_cross_formula_price(catalog: Path, tmp_path: Path) -> None:
    # no clearance fee here: with one the account ends at exactly 0 (remaining margin forfeited),
    # which the metrics cannot annualise
    raw_cfg = perp_config(catalog, "buy_and_hold", {"leverages": {ETH: 20}, "margin_mode": "cross",
                                                    "liquidation_fee": 0.0}, position_fraction=10.0)
    raw_cfg["strategies"].append({"name": "buy_and_hold", "params": {"instrument_id": ETH, "bar_type": ETH_BAR,
                                                                      "position_fraction": 9.0}})
    out = run_backtest(parse_config(raw_cfg), results_root=tmp_path, progress=False)
    fills = pd.read_parquet(out.results_path / "fills.parquet")
    entries = fills[fills["order_side"] == "BUY"].groupby("strategy_id").agg(q=("last_qty", "sum"), px=("last_px", "first"))
    assert len(entries) == 2
    raw = read_kline_zip(ETH_ZIP)
    raw = raw[(raw.index > pd.Timestamp("2023-07-14", tz="UTC")) & (raw.index <= pd.Timestamp("2023-07-15", tz="UTC"))]
    # wallet balance: start - taker fees of the entries + funding settled so far (-q x close x rate, no marks here)
    fees = 0.0005 * float((entries["q"] * entries["px"]).sum())
    fz = MIRROR / "data/futures/um/monthly/fundingRate/ETHUSDT/ETHUSDT-fundingRate-2023-07.zip"
    import zipfile
    with zipfile.ZipFile(fz) as zf, zf.open(zf.namelist()[0]) as fh:
        rates = pd.read_csv(fh)
    rates.index = pd.to_datetime((rates["calc_time"] // 3_600_000) * 3_600_000, unit="ms", utc=True)
    q_total = float(entries["q"].sum())
    (qa, ea), (qb, eb) = [(float(r.q), float(r.px)) for r in entries.itertuples()]
    found = None
    for i in range(2, len(raw) - 1):
        t, c = raw.index[i], raw["close"].iloc[i]
        funding = sum(-q_total * raw.loc[ft, "close"] * r for ft, r in rates["last_funding_rate"].items()
                      if raw.index[1] < ft <= t)
        wb = 100_000 - fees + funding
        lps = []
        for (q1, e1), (q2, e2) in (((qa, ea), (qb, eb)), ((qb, eb), (qa, ea))):
            mmr2, cum2 = _eth_bracket(q2 * c)
            other_mm, other_upnl = q2 * c * mmr2 - cum2, (c - e2) * q2
            for mmr, cum in ((0.005, 0.0), (0.0065, 150.0), (0.01, 1025.0)):
                lp = (wb - other_mm + other_upnl + cum - q1 * e1) / (q1 * mmr - q1)
                if _eth_bracket(lp * q1) == (mmr, cum):
                    break
            lps.append((lp, q1))
        lp, q1 = max(lps)  # longs: the highest liquidation price is reached first
        if raw["low"].iloc[i + 1] <= lp:
            found = (raw.index[i + 1], math.ceil(round(lp / 0.01, 6)) * 0.01, q1)
            break
    assert found is not None
    liq = pd.read_parquet(out.results_path / "liquidations.parquet")
    assert len(liq) >= 1
    first = liq.sort_values("ts").iloc[0]
    assert first["ts"] == found[0]
    assert first["quantity"] == pytest.approx(found[2])
    assert first["liquidation_price"] == pytest.approx(found[1], abs=1e-9)
    assert first["margin_mode"] == "cross"
    # one liquidation per bar; the account never ends below zero by more than the taker fees
    assert liq["ts"].is_unique
    account = pd.read_parquet(out.results_path / "account.parquet")
    assert float(account["total"].iloc[-1]) > -0.0005 * 2 * float((entries["q"] * entries["px"]).sum())
