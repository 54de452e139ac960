"""The demo runs (configs/demo_*.toml, the specification's setup) trade exactly as an independent
pandas implementation of trading-bot-plan.md's rules says, bar by bar, on the real data.

Trend following on 1h and mean reversion on 15m bars that Nautilus builds from the stored 1m bars;
here the 1h/15m bars are resampled with pandas from the raw Binance Vision CSV zips, the indicators
are the pandas references of tests/test_strategies_unit.py and the state machines follow the plan's
reference ``on_new_candle`` code. Compared: every order's decision bar, side and exit tag (the
strategy's reason), and each trade's ``exit_reason`` in trades.parquet. The runs use the default
(realistic) costs: fills at the next open plus slippage, 5 ms latency, so orders are matched by the
bar they were decided on (``ts_init``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.paths import shared_data_dir
from nautilus_app.golden import import_reference_data, run_reference
from tests.test_strategies_unit import (
    MR_DEFAULTS,
    TREND_DEFAULTS,
    _expected_mr_actions,
    _expected_trend_actions,
    _mr_frame,
    _trend_frame,
)

MIRROR = shared_data_dir() / "binance-vision" / "data"
RUNS = {"demo_spot": ("spot", "2025-05-20", "2025-08-18", ""), "demo_perp": ("um", "2023-07-19", "2023-08-17", "-PERP")}
REASON = {"WEAK_TREND": "signal", "EXTREME_VOLATILITY": "signal", "MA_CROSS_BACK": "signal",
          "MEAN_REVERTED": "signal", "MAX_HOLD": "time", "END_OF_RUN": "end_of_run"}

pytestmark = pytest.mark.skipif(not MIRROR.exists(), reason=f"real data missing: {MIRROR}")


def raw_ohlc(market: str, symbol: str, start: str, end: str) -> pd.DataFrame:
    """1m OHLC with open time in [start, end) from the mirror's zips, indexed by open time (UTC)."""
    base = MIRROR / ("spot" if market == "spot" else "futures/um")
    frames = []
    for period in ("monthly", "daily"):
        for path in sorted((base / period / "klines" / symbol / "1m").glob("*.zip")):
            month = path.stem.split("-1m-")[1][:7]
            if not start[:7] <= month <= end[:7]:
                continue
            with zipfile.ZipFile(path) as zf, zf.open(zf.namelist()[0]) as fh:
                df = pd.read_csv(fh, header=None)
            if not str(df.iloc[0, 0]).isdigit():
                df = df.iloc[1:]
            df = df.iloc[:, :5].astype(float)
            df.columns = ["open_time", "open", "high", "low", "close"]
            unit = "us" if df["open_time"].iloc[0] > 1e14 else "ms"
            df["opened"] = pd.to_datetime(df["open_time"].astype("int64"), unit=unit, utc=True)
            frames.append(df)
    raw = pd.concat(frames).drop_duplicates("opened").sort_values("opened")
    raw = raw[(raw["opened"] >= pd.Timestamp(start, tz="UTC")) & (raw["opened"] < pd.Timestamp(end, tz="UTC"))]
    return raw.set_index("opened")[["open", "high", "low", "close"]]


def resample(m1: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Time bars as Nautilus builds them from 1m bars: the bar closing at T holds the 1m bars opened in
    [T - interval, T); ``ts`` = close time in ns (no bar for an interval without 1m bars)."""
    key = m1.index.floor(f"{minutes}min") + pd.Timedelta(minutes=minutes)
    g = m1.groupby(key)
    out = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(),
                        "close": g["close"].last()})
    out["ts"] = out.index.astype("int64")
    return out.reset_index(drop=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    catalog = tmp_path_factory.mktemp("demo_catalog")
    import_reference_data(catalog)
    out = tmp_path_factory.mktemp("demo_runs")
    for name in RUNS:
        run_reference(name, catalog, out)
    return {name: out / name for name in RUNS}


def _strategies(name: str) -> list[dict]:
    import tomllib

    from core import paths

    return tomllib.loads((paths.REPO_ROOT / "configs" / f"{name}.toml").read_text())["strategies"]


@pytest.mark.parametrize("name", list(RUNS))
def test_demo_trades_equal_the_pandas_rules_bar_by_bar(name: str, runs: dict[str, Path]) -> None:
    market, start, end, suffix = RUNS[name]
    path = runs[name]
    orders = pd.read_parquet(path / "orders.parquet")
    orders = orders.assign(ts=pd.to_datetime(orders["ts_init"], utc=True).astype("int64"))
    trades = pd.read_parquet(path / "trades.parquet")
    m1 = {sym: raw_ohlc(market, sym, start, end) for sym in ("BTCUSDT", "ETHUSDT")}
    checked = 0
    for i, spec in enumerate(_strategies(name)):
        p = spec["params"]
        sym = p["instrument_id"].split(".")[0].removesuffix("-PERP")
        minutes = 60 if "-1-HOUR-" in p["bar_type"] else 15
        bars = resample(m1[sym], minutes)
        allow_short = bool(p.get("allow_short", False)) and market != "spot"
        if spec["name"] == "trend_following":
            sid = f"TrendFollowing-{i:03d}"
            expected = _expected_trend_actions(_trend_frame(bars, TREND_DEFAULTS), TREND_DEFAULTS, allow_short)
            assert minutes == 60
        else:
            sid = f"MeanReversion-{i:03d}"
            expected = _expected_mr_actions(_mr_frame(bars, MR_DEFAULTS), MR_DEFAULTS, allow_short)
            assert minutes == 15
        mine = orders[orders["strategy_id"] == sid].sort_values(["ts", "client_order_id"])
        assert (mine["status"] == "FILLED").all()
        tags = mine["tags"].fillna("").astype(str).str.strip('[]"')
        got = [(int(t), s, tag or "ENTRY") for t, s, tag in zip(mine["ts"], mine["side"], tags, strict=True)]
        assert len(expected) >= 6, (sid, expected)
        # every decision (entry or exit, with its reason) on the bar the rules give, in order
        assert got[:-1] == expected[:-1], sid
        # the last one: an exit signal on the last bar, or the end-of-run close
        assert got[-1][1:] == expected[-1][1:], sid
        # trades.parquet: each trade's exit reason is the category of the strategy's exit tag
        t = trades[trades["strategy_id"] == sid].sort_values("entry_time")
        exits = [r for _, _, r in expected if r != "ENTRY"]
        assert t["exit_tag"].tolist() == exits
        assert t["exit_reason"].tolist() == [REASON[r] for r in exits]
        checked += 1
    assert checked == 4


@pytest.mark.parametrize("name", list(RUNS))
def test_portfolio_series_cash_margin_leverage(name: str, runs: dict[str, Path]) -> None:
    """equity.parquet: cash equals Nautilus's USDT balance after every account event; equity = cash +
    spot holdings + unrealized PnL; leverage = gross exposure / equity; margin = perp notional / 2x."""
    path = runs[name]
    eq = pd.read_parquet(path / "equity.parquet").set_index("ts")
    m = json.loads((path / "metrics.json").read_text())
    account = pd.read_parquet(path / "account.parquet")
    usdt = account[account["currency"] == "USDT"].copy()
    usdt["ts"] = pd.to_datetime(usdt["index"], utc=True)  # the account report's event time
    bal = usdt.groupby("ts")["total"].last().astype(float)
    at_bars = bal.reindex(bal.index.union(eq.index)).ffill().reindex(eq.index)
    ok = at_bars.notna()
    np.testing.assert_allclose(eq.loc[ok, "cash"], at_bars[ok], atol=1e-6)
    np.testing.assert_allclose(eq["leverage"], eq["gross_exposure"] / eq["equity"], rtol=1e-12)
    assert m["max_leverage"] == pytest.approx(eq["leverage"].max(), rel=1e-12)
    assert m["avg_leverage"] == pytest.approx(eq["leverage"].mean(), rel=1e-12)
    assert 1 <= m["max_concurrent_positions"] <= 4
    if name == "demo_spot":
        assert (eq["margin_used"] == 0).all() and (eq["unrealized_pnl"] == 0).all()
        assert (eq["cash"] > 0).all() and eq["leverage"].max() <= 1.0
    else:
        np.testing.assert_allclose(eq["margin_used"], eq["gross_exposure"] / 2.0, rtol=1e-12)
        assert eq["unrealized_pnl"].abs().max() > 0
    assert sum(m["exit_reasons"].values()) == m["trades"]
