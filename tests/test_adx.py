"""ADX (strategies.indicators.AverageDirectionalIndex) against an independent pandas Wilder ADX.

Real data: BTCUSDT spot 1m klines of April 2023 (Binance Vision layout, shared data set).
The reference below is written with vectorised pandas (``ewm(alpha=1/n, adjust=False)`` started
from an SMA seed), not with the indicator's loop, so agreement to 1e-9 relative is meaningful.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.execution import MakerTakerFeeModel
from nautilus_trader.model import (
    AccountType,
    Bar,
    BarType,
    Currency,
    CurrencyPair,
    InstrumentId,
    Money,
    OmsType,
    Price,
    Quantity,
    Symbol,
    Venue,
)
from nautilus_trader.trading import Strategy

from core.paths import shared_data_dir
from strategies.indicators import AverageDirectionalIndex

ZIP = shared_data_dir() / "binance-vision/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2023-04.zip"
BAR_TYPE = BarType.from_str("BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL")
COLS = ["open_time", "open", "high", "low", "close", "volume", "close_time"]

pytestmark = pytest.mark.skipif(not ZIP.exists(), reason=f"real data missing: {ZIP}")


@pytest.fixture(scope="module")
def klines() -> pd.DataFrame:
    df = pd.read_csv(ZIP, header=None, usecols=range(7), names=COLS)
    assert len(df) == 43_200
    return df


def make_bars(df: pd.DataFrame, price_prec: int = 2, size_prec: int = 5) -> list[Bar]:
    """Nautilus bars stamped at the bar close (open_time + 1 minute), ts_event = ts_init."""
    ts = (df["open_time"].to_numpy(np.int64) + 60_000) * 1_000_000
    return [
        Bar(
            BAR_TYPE,
            Price(o, price_prec),
            Price(h, price_prec),
            Price(lo, price_prec),
            Price(c, price_prec),
            Quantity(round(v, size_prec), size_prec),
            int(t),
            int(t),
        )
        for o, h, lo, c, v, t in zip(
            df["open"], df["high"], df["low"], df["close"], df["volume"], ts, strict=True
        )
    ]


def _wilder(x: pd.Series, n: int) -> pd.Series:
    """Wilder smoothing: SMA of the first n valid inputs, then ewm(alpha=1/n, adjust=False)."""
    valid = x.dropna()
    seed = pd.Series([valid.iloc[:n].mean()], index=[valid.index[n - 1]])
    smoothed = pd.concat([seed, valid.iloc[n:]]).ewm(alpha=1.0 / n, adjust=False).mean()
    return smoothed.reindex(x.index)


def reference_adx(high: pd.Series, low: pd.Series, close: pd.Series, n: int) -> pd.DataFrame:
    prev_close = close.shift(1)
    tr = pd.concat([high, prev_close], axis=1).max(axis=1, skipna=False) - pd.concat(
        [low, prev_close], axis=1
    ).min(axis=1, skipna=False)
    up = high.diff()
    down = -low.diff()
    pdm = up.where((up > down) & (up > 0), 0.0).where(up.notna())
    mdm = down.where((down > up) & (down > 0), 0.0).where(down.notna())
    str_, spdm, smdm = _wilder(tr, n), _wilder(pdm, n), _wilder(mdm, n)
    plus = 100.0 * spdm / str_
    minus = 100.0 * smdm / str_
    dx = 100.0 * (plus - minus).abs() / (plus + minus)
    adx = _wilder(dx, n)
    return pd.DataFrame({"plus_di": plus, "minus_di": minus, "dx": dx, "adx": adx})


def run_indicator(ind: AverageDirectionalIndex, bars: list[Bar]) -> pd.DataFrame:
    rows = []
    for b in bars:
        ind.handle_bar(b)
        rows.append((ind.initialized, ind.di_initialized, ind.value, ind.plus_di, ind.minus_di, ind.dx))
    return pd.DataFrame(rows, columns=["init", "di_init", "adx", "plus_di", "minus_di", "dx"])


@pytest.mark.parametrize("period", [14, 5])
def test_adx_matches_pandas_wilder_reference(klines: pd.DataFrame, period: int) -> None:
    df = klines.iloc[:20_000].reset_index(drop=True)
    bars = make_bars(df)
    got = run_indicator(AverageDirectionalIndex(period), bars)
    # Reference on the CSV floats. Price.as_double() can be 1 ulp away from the CSV's float
    # (28480.07 -> 28480.070000000003), well inside the 1e-9 tolerance.
    np.testing.assert_allclose([b.close.as_double() for b in bars], df["close"], rtol=1e-15, atol=0)
    ref = reference_adx(df["high"], df["low"], df["close"], period)

    first_di, first_adx = period, 2 * period - 1
    assert ref["adx"].first_valid_index() == first_adx
    for col in ["plus_di", "minus_di", "dx"]:
        np.testing.assert_allclose(got[col][first_di:], ref[col][first_di:], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got["adx"][first_adx:], ref["adx"][first_adx:], rtol=1e-9, atol=0)
    # sanity: ADX is in range and not degenerate on real data
    assert got["adx"][first_adx:].between(0, 100).all()
    assert got["adx"][first_adx:].std() > 1.0


def test_adx_warmup_timing_and_reset(klines: pd.DataFrame) -> None:
    n = 14
    bars = make_bars(klines.iloc[:3000].reset_index(drop=True))
    ind = AverageDirectionalIndex(n)
    assert not ind.initialized and not ind.has_inputs and ind.value == 0.0
    got = run_indicator(ind, bars[:100])
    # ADX first available after 2n bars (index 2n-1), DI after n+1 bars (index n)
    assert not got["init"][: 2 * n - 1].any() and got["init"][2 * n - 1 :].all()
    assert not got["di_init"][:n].any() and got["di_init"][n:].all()
    assert (got["adx"][: 2 * n - 1] == 0.0).all() and got["adx"][2 * n - 1] > 0.0
    assert ind.count == 100

    ind.reset()
    assert not ind.initialized and not ind.has_inputs and ind.count == 0
    assert ind.value == ind.plus_di == ind.minus_di == 0.0
    # after reset the indicator behaves exactly like a fresh one on a new segment
    seg = bars[1000:1500]
    after_reset = run_indicator(ind, seg)
    fresh = run_indicator(AverageDirectionalIndex(n), seg)
    pd.testing.assert_frame_equal(after_reset, fresh)
    s = klines.iloc[1000:1500].reset_index(drop=True)
    ref = reference_adx(s["high"], s["low"], s["close"], n)
    np.testing.assert_allclose(after_reset["adx"][2 * n - 1 :], ref["adx"][2 * n - 1 :], rtol=1e-9)


def test_adx_invalid_period() -> None:
    with pytest.raises(ValueError):
        AverageDirectionalIndex(0)


class _AdxProbe(Strategy):
    """Registers the duck-typed ADX with nautilus and records its value seen in on_bar."""

    def __init__(self) -> None:
        super().__init__()
        self.adx = AverageDirectionalIndex(14)
        self.seen: list[tuple[int, float]] = []

    def on_start(self) -> None:
        self.register_indicator_for_bars(BAR_TYPE, self.adx)
        self.subscribe_bars(BAR_TYPE)

    def on_bar(self, bar: Bar) -> None:
        self.seen.append((self.adx.count, self.adx.value))


def test_adx_registers_with_nautilus_and_updates_before_on_bar(klines: pd.DataFrame) -> None:
    df = klines.iloc[:500].reset_index(drop=True)
    bars = make_bars(df)
    usdt, btc = Currency.from_str("USDT"), Currency.from_str("BTC")
    inst = CurrencyPair(
        instrument_id=InstrumentId.from_str("BTCUSDT.BINANCE"),
        raw_symbol=Symbol("BTCUSDT"),
        base_currency=btc,
        quote_currency=usdt,
        price_precision=2,
        size_precision=5,
        price_increment=Price.from_str("0.01"),
        size_increment=Quantity.from_str("0.00001"),
        ts_event=0,
        ts_init=0,
    )
    eng = BacktestEngine(BacktestEngineConfig(logging=LoggerConfig(stdout_level=LogLevel.WARNING)))
    eng.add_venue(
        Venue("BINANCE"),
        OmsType.NETTING,
        AccountType.CASH,
        [Money(10_000, usdt)],
        fee_model=MakerTakerFeeModel(Decimal("0.001"), Decimal("0.001")),
    )
    eng.add_instrument(inst)
    eng.add_data(bars)
    probe = _AdxProbe()
    eng.add_strategy(probe)
    eng.run()
    eng.dispose()
    assert [cnt for cnt, _ in probe.seen] == list(range(1, 501))  # updated before each on_bar
    ref = reference_adx(df["high"], df["low"], df["close"], 14)["adx"]
    np.testing.assert_allclose([v for _, v in probe.seen][27:], ref[27:], rtol=1e-9)
