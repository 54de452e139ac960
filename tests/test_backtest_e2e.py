"""End to end on real Binance data: import -> catalog -> config-driven BacktestNode run -> results folder.

Every expected number is computed here, independently, from the raw Binance Vision CSVs with pandas
(or from the run's own equity curve with the formulas of docs/metrics.md), never copied from output.
"""

from __future__ import annotations

import json
import math
import zipfile
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app.backtest import BacktestFailed, run_backtest
from nautilus_app.cli import main as cli_main
from nautilus_app.config import parse_config

MIRROR = shared_data_dir() / "binance-vision"
SPOT_ZIP = MIRROR / "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip"
BTC_BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
PERP_BAR = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
PERP_ID = "ETHUSDT-PERP.BINANCE_USDM"


def read_kline_zip(path: Path) -> pd.DataFrame:
    """Raw Binance kline CSV -> DataFrame indexed by close time (UTC); header row and us/ms detected here."""
    with zipfile.ZipFile(path) as zf:
        with zf.open(zf.namelist()[0]) as fh:
            df = pd.read_csv(fh, header=None)
    if not str(df.iloc[0, 0]).isdigit():  # header row (futures files)
        df = df.iloc[1:].reset_index(drop=True)
    df = df.iloc[:, :6].astype(float)
    df.columns = ["open_time", "open", "high", "low", "close", "volume"]
    unit = "us" if df["open_time"].iloc[0] > 1e14 else "ms"
    opened = pd.to_datetime(df["open_time"].astype("int64"), unit=unit, utc=True)
    df.index = opened + pd.Timedelta(minutes=1)
    return df


def nautilus_ema(x: pd.Series, n: int) -> pd.Series:
    """EMA seeded with the SMA of the first n values (Nautilus's rule), NaN before that."""
    alpha = 2.0 / (n + 1)
    out = np.full(len(x), np.nan)
    vals = x.to_numpy()
    out[n - 1] = vals[:n].mean()
    for i in range(n, len(vals)):
        out[i] = alpha * vals[i] + (1 - alpha) * out[i - 1]
    return pd.Series(out, index=x.index)


def long_flat_orders(close: pd.Series, fast: int, slow: int) -> list[tuple[pd.Timestamp, str]]:
    """(signal bar close time, side) of a long/flat EMA cross, closed at the last bar."""
    diff = nautilus_ema(close, fast) - nautilus_ema(close, slow)
    prev = diff.shift(1)
    events = sorted([(t, "BUY") for t in diff.index[(prev <= 0) & (diff > 0)]]
                    + [(t, "SELL") for t in diff.index[(prev >= 0) & (diff < 0)]])
    out, long = [], False
    for t, side in events:
        if (side == "BUY") != long:
            out.append((t, side))
            long = not long
    if long:
        out.append((close.index[-1], "SELL"))
    return out


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2025-06-01", end="2025-06-30", kinds=("klines",))
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-07-01", end="2023-08-16", kinds=("klines", "fundingRate"))
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1h",
                          start="2023-07-01", end="2023-08-31", kinds=("markPriceKlines",))
    return root


def spot_config(catalog: Path, strategy: str, **params) -> dict:
    return {
        "name": f"t_{strategy}",
        "catalog": str(catalog),
        "start": "2025-06-01",
        "end": "2025-07-01",
        "bar_types": [BTC_BAR],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "costs": "fees_only", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": strategy, "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BTC_BAR, **params}}],
    }


@pytest.fixture(scope="module")
def ema_run(catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    cfg = parse_config(spot_config(catalog, "ema_cross", fast_period=10, slow_period=30, position_fraction=0.2))
    return run_backtest(cfg, results_root=tmp_path_factory.mktemp("results"), progress=False)


def test_results_folder_is_complete(ema_run) -> None:
    files = {p.name for p in ema_run.results_path.iterdir()}
    assert {"config.json", "orders.parquet", "fills.parquet", "positions.parquet", "account.parquet",
            "trades.parquet", "equity.parquet", "metrics.json", "run.json"} <= files
    assert not [p for p in ema_run.results_path.parent.iterdir() if p.name.startswith(".")]
    # the tearsheet is written on demand, from the folder alone
    from nautilus_app.tearsheet import write_tearsheet

    html = write_tearsheet(ema_run.results_path).read_text()
    assert "plotly" in html.lower() and ema_run.run_id in html
    raw = read_kline_zip(SPOT_ZIP)
    equity = pd.read_parquet(ema_run.results_path / "equity.parquet")
    # one equity sample per bar of the month (bars that open in June)
    assert len(equity) == len(raw) == ema_run.iterations


def test_ema_cross_trades_at_independent_crossovers(ema_run) -> None:
    raw = read_kline_zip(SPOT_ZIP)
    close = raw["close"]

    # long/flat: enter at each up-cross when flat, exit at the next down-cross, close at the last bar
    expected = long_flat_orders(close, 10, 30)

    fills = pd.read_parquet(ema_run.results_path / "fills.parquet")
    orders = fills.groupby("client_order_id", sort=False).agg(
        ts=("ts_event", "first"), side=("order_side", "first"), n=("last_qty", "size"), px=("last_px", "first"))
    got = list(zip(pd.to_datetime(orders["ts"], utc=True), orders["side"], strict=True))
    assert len(expected) > 100
    assert got == expected
    # default fill timing "next_open": an order decided on bar N's close fills in one piece at bar
    # N+1's open (the raw CSV's next row), timestamped at bar N's close = bar N+1's open time; the
    # close at the end of the run (no next bar) fills at the last close
    assert (orders["n"] == 1).all()
    next_open = raw["open"].shift(-1).reindex(pd.to_datetime(orders["ts"], utc=True)).to_numpy()
    expected_px = np.where(np.isnan(next_open), close.iloc[-1], next_open)
    np.testing.assert_allclose(orders["px"].to_numpy(), expected_px, rtol=0, atol=1e-9)
    # on this data open[N+1] differs from close[N] often enough that the choice matters
    assert (np.abs(expected_px - close.reindex(pd.to_datetime(orders["ts"], utc=True)).to_numpy()) > 1e-9).mean() > 0.3


def test_metrics_recomputed_from_equity_curve(ema_run) -> None:
    metrics = json.loads((ema_run.results_path / "metrics.json").read_text())
    eq = pd.read_parquet(ema_run.results_path / "equity.parquet").set_index("ts")["equity"]
    start = 100_000.0  # the starting balance; the first sample already paid the first fill's fee
    assert metrics["starting_equity"] == start
    # total return and CAGR (365-day year, span first -> last sample)
    total = eq.iloc[-1] / start - 1
    days = (eq.index[-1] - eq.index[0]).total_seconds() / 86400
    assert metrics["total_return"] == pytest.approx(total, rel=1e-9)
    assert metrics["cagr"] == pytest.approx((1 + total) ** (365 / days) - 1, rel=1e-9)
    # max drawdown: largest peak-to-trough fall as a positive fraction
    running_max = np.maximum.accumulate(eq.to_numpy())
    assert metrics["max_drawdown"] == pytest.approx(float(np.max(1 - eq.to_numpy() / running_max)), rel=1e-9)
    # Sharpe on daily close-to-close returns, first day from the first sample, x sqrt(365)
    day_close = eq.groupby(eq.index.floor("D")).last()
    rets = day_close / pd.concat([pd.Series([start]), day_close.iloc[:-1]]).to_numpy() - 1
    sharpe = rets.mean() / rets.std(ddof=1) * math.sqrt(365)
    assert metrics["sharpe"] == pytest.approx(sharpe, rel=1e-9)
    # fees: sum of the fills' commissions = 0.1 % of traded notional
    fills = pd.read_parquet(ema_run.results_path / "fills.parquet")
    notional = (fills["last_qty"] * fills["last_px"]).sum()
    assert metrics["fees_paid_usdt"] == pytest.approx(0.001 * notional, rel=1e-6)
    trades = pd.read_parquet(ema_run.results_path / "trades.parquet")
    assert metrics["trades"] == len(trades) == fills["client_order_id"].nunique() // 2
    assert metrics["win_rate"] == pytest.approx((trades["pnl"] > 0).mean())


def test_final_equity_equals_account_balance(ema_run) -> None:
    eq = pd.read_parquet(ema_run.results_path / "equity.parquet")
    account = pd.read_parquet(ema_run.results_path / "account.parquet")
    usdt = account[account["currency"] == "USDT"]
    btc = account[account["currency"] == "BTC"]
    final_cash = float(usdt["total"].iloc[-1])
    final_btc = float(btc["total"].iloc[-1]) if len(btc) else 0.0
    assert final_btc == pytest.approx(0.0, abs=1e-12)  # flat at the end
    assert eq["equity"].iloc[-1] == pytest.approx(final_cash, abs=1e-6)


def test_buy_and_hold_return_matches_hand_computation(catalog: Path, tmp_path: Path) -> None:
    cfg = parse_config(spot_config(catalog, "buy_and_hold"))
    outcome = run_backtest(cfg, results_root=tmp_path, progress=False)
    raw = read_kline_zip(SPOT_ZIP)
    fills = pd.read_parquet(outcome.results_path / "fills.parquet")
    buys, sells = fills[fills["order_side"] == "BUY"], fills[fills["order_side"] == "SELL"]
    assert pd.Timestamp(buys["ts_event"].iloc[0]) == raw.index[0]  # bought on the first bar
    assert pd.Timestamp(sells["ts_event"].iloc[-1]) == raw.index[-1]  # sold at the last bar
    qty = buys["last_qty"].sum()
    first_px = (buys["last_qty"] * buys["last_px"]).sum() / qty  # volume-weighted first fill price
    last_close = raw["close"].iloc[-1]
    fee = 0.001
    expected_final = 100_000 - qty * first_px * (1 + fee) + qty * last_close * (1 - fee)
    metrics = outcome.metrics
    assert metrics["total_return"] == pytest.approx(expected_final / 100_000 - 1, abs=1e-9)
    # the quantity is the documented sizing: fraction x equity / close, floored to the 0.00001 lot step
    fraction = 0.98  # BuyAndHoldConfig default
    target = Decimal(str(fraction * 100_000 / raw["close"].iloc[0])).quantize(Decimal("0.00001"), ROUND_FLOOR)
    assert Decimal(str(qty)).quantize(Decimal("0.00001")) <= target
    # the run's benchmark (buy at first close, sell at last, taker fee both ways)
    assert metrics["buy_and_hold_return"] == pytest.approx(
        (1 - fee) ** 2 * last_close / raw["close"].iloc[0] - 1, rel=1e-9)


def test_perpetual_funding_equals_qty_x_mark_x_rate(catalog: Path, tmp_path: Path) -> None:
    cfg = parse_config({
        "name": "t_perp", "catalog": str(catalog), "start": "2023-07-05", "end": "2023-07-20",
        "bar_types": [PERP_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "costs": "fees_only", "starting_balances": ["100000 USDT"],
                    "leverages": {PERP_ID: 5}}],
        "strategies": [{"name": "ema_cross", "params": {"instrument_id": PERP_ID, "bar_type": PERP_BAR,
                        "fast_period": 60, "slow_period": 240, "allow_short": True, "position_fraction": 0.5}}],
    })
    outcome = run_backtest(cfg, results_root=tmp_path, progress=False)
    run_info = json.loads((outcome.results_path / "run.json").read_text())
    assert run_info["funding_mark_price_source"] == {PERP_ID: "MarkPriceUpdate"}
    funding = pd.read_parquet(outcome.results_path / "funding.parquet")
    fills = pd.read_parquet(outcome.results_path / "fills.parquet")
    assert len(funding) > 10

    # independent: raw funding CSV (8h grid), raw 1h mark klines (mark at t = close of the hour ending at t)
    fz = MIRROR / "data/futures/um/monthly/fundingRate/ETHUSDT/ETHUSDT-fundingRate-2023-07.zip"
    with zipfile.ZipFile(fz) as zf, zf.open(zf.namelist()[0]) as fh:
        rates = pd.read_csv(fh)
    rates["ts"] = pd.to_datetime((rates["calc_time"] // 3_600_000) * 3_600_000, unit="ms", utc=True)
    rate_at = rates.set_index("ts")["last_funding_rate"]
    mark = read_kline_zip(MIRROR / "data/futures/um/monthly/markPriceKlines/ETHUSDT/1h/ETHUSDT-1h-2023-07.zip")
    mark.index = mark.index + pd.Timedelta(minutes=59)  # 1h klines: close time = open + 1h
    signed = np.where(fills["order_side"] == "BUY", 1.0, -1.0) * fills["last_qty"]
    position = pd.Series(signed.to_numpy(), index=pd.to_datetime(fills["ts_event"], utc=True)).groupby(level=0).sum().cumsum()
    for _, row in funding.iterrows():
        t = row["ts"]
        qty = float(position[position.index <= t].iloc[-1])
        expected = -qty * mark["close"].loc[t] * rate_at.loc[t]
        assert row["amount"] == pytest.approx(expected, abs=1e-6), t
    # every settlement while a position was open was paid (none silently skipped)
    in_span = rate_at[(rate_at.index > pd.Timestamp(fills["ts_event"].iloc[0])) &
                      (rate_at.index < pd.Timestamp(fills["ts_event"].iloc[-1]))]
    open_at = [t for t in in_span.index if abs(float(position[position.index <= t].iloc[-1])) > 0]
    assert sorted(funding["ts"]) == open_at
    assert outcome.metrics["funding_paid_usdt"] == pytest.approx(-funding["amount"].sum())


def test_strategy_exception_fails_the_run(catalog: Path, tmp_path: Path, monkeypatch) -> None:
    import strategies

    monkeypatch.setitem(strategies.REGISTRY, "raises", strategies.StrategyEntry(
        "tests.raising_strategy:RaisingStrategy", "tests.raising_strategy:RaisingConfig"))
    cfg = parse_config(spot_config(catalog, "raises", raise_on_bar=500))
    with pytest.raises(BacktestFailed, match="stopped after"):
        run_backtest(cfg, results_root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing half-written


def test_missing_data_and_cli_exit_codes(catalog: Path, tmp_path: Path, capsys) -> None:
    raw = spot_config(catalog, "ema_cross")
    raw.update(start="2019-01-01", end="2019-02-01")
    cfg_path = tmp_path / "nodata.toml"
    cfg_path.write_text(_to_toml(raw))
    assert cli_main(["backtest", str(cfg_path), "--results-dir", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "no bars for BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL" in capsys.readouterr().err
    raw["venues"][0]["taker_fee"] = 2
    cfg_path.write_text(_to_toml(raw))
    assert cli_main(["backtest", str(cfg_path), "--no-progress"]) == 2
    assert "venues[0].taker_fee" in capsys.readouterr().err


def _to_toml(raw: dict) -> str:
    """Tiny TOML writer for the flat test configs (tomllib reads only)."""
    def val(v):
        return json.dumps(v) if not isinstance(v, bool) else str(v).lower()
    lines = [f"{k} = {val(v)}" for k, v in raw.items() if not isinstance(v, list) or k == "bar_types"]
    for v in raw["venues"]:
        lines.append("[[venues]]")
        lines += [f"{k} = {val(x)}" for k, x in v.items()]
    for s in raw["strategies"]:
        lines += ["[[strategies]]", f"name = {val(s['name'])}", "[strategies.params]"]
        lines += [f"{k} = {val(x)}" for k, x in s["params"].items()]
    return "\n".join(lines) + "\n"


def test_strategy_on_a_higher_timeframe_aggregated_from_1m(catalog: Path, tmp_path: Path) -> None:
    bar_15m = "BTCUSDT.BINANCE-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL"
    raw = spot_config(catalog, "ema_cross", fast_period=5, slow_period=12)
    raw["strategies"][0]["params"]["bar_type"] = bar_15m
    outcome = run_backtest(parse_config(raw), results_root=tmp_path, progress=False)
    one_minute = read_kline_zip(SPOT_ZIP)
    assert outcome.iterations == len(one_minute)  # the engine consumed the 1m bars
    # independent: 15-minute closes resampled from the raw 1m CSV (labelled by close time), then the
    # same long/flat crossover rule; the run closes at the last 1m bar, not a 15m bar
    close_15m = one_minute["close"].resample("15min", label="right", closed="right").last()
    expected = long_flat_orders(close_15m, 5, 12)
    if expected[-1][1] == "SELL" and expected[-1][0] == close_15m.index[-1]:
        expected[-1] = (one_minute.index[-1], "SELL")
    fills = pd.read_parquet(outcome.results_path / "fills.parquet")
    got = list(zip(pd.to_datetime(fills["ts_event"], utc=True), fills["order_side"], strict=True))
    assert len(expected) > 20
    assert got == expected
