"""The rolling indicators of strategies/indicators.py against pandas, on real BTCUSDT 1m closes.

References are the trading-bot-plan.md formulas written with pandas' rolling windows:
Bollinger ``c.rolling(n).mean() +/- k x c.rolling(n).std()`` (sample std), band width
``(upper - lower) / middle``, z-score ``(c - mean) / std``, realised volatility
``log(c / c.shift(1)).rolling(n).std() x sqrt(periods per year)``. The indicators are also
registered with a Nautilus strategy (``register_indicator_for_bars``) to show they stream there.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.execution import MakerTakerFeeModel
from nautilus_trader.model import AccountType, Bar, Currency, Money, OmsType, Venue
from nautilus_trader.trading import Strategy

from strategies.indicators import (
    BollingerBandWidth,
    RealizedVolatility,
    RollingZScore,
    SampleBollingerBands,
)
from tests.test_adx import BAR_TYPE, ZIP, klines, make_bars  # noqa: F401 - fixture re-used

pytestmark = pytest.mark.skipif(not ZIP.exists(), reason=f"real data missing: {ZIP}")


def _feed(ind, closes: pd.Series) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    init, vals = [], []
    for c in closes:
        ind.update_raw(float(c))
        init.append(ind.initialized)
        vals.append(ind.value)
    return np.array(init), np.array(vals)


@pytest.mark.parametrize(("n", "k"), [(20, 2.0), (7, 2.5)])
def test_sample_bollinger_and_width_match_pandas(klines: pd.DataFrame, n: int, k: float) -> None:  # noqa: F811
    c = klines["close"].iloc[:5000].reset_index(drop=True)
    mid, sd = c.rolling(n).mean(), c.rolling(n).std()  # pandas default: ddof=1
    bb = SampleBollingerBands(n, k)
    rows = []
    for x in c:
        bb.update_raw(float(x))
        rows.append((bb.initialized, bb.middle, bb.upper, bb.lower, bb.width))
    got = pd.DataFrame(rows, columns=["init", "mid", "up", "lo", "width"])
    assert got["init"].tolist() == mid.notna().tolist()  # initialized after n closes
    ok = got["init"]
    np.testing.assert_allclose(got.loc[ok, "mid"], mid[ok], rtol=1e-12)
    np.testing.assert_allclose(got.loc[ok, "up"], (mid + k * sd)[ok], rtol=1e-10)
    np.testing.assert_allclose(got.loc[ok, "lo"], (mid - k * sd)[ok], rtol=1e-10)
    width_ref = ((mid + k * sd) - (mid - k * sd)) / mid
    np.testing.assert_allclose(got.loc[ok, "width"], width_ref[ok], rtol=1e-7, atol=1e-12)
    init, vals = _feed(BollingerBandWidth(n, k), c)
    np.testing.assert_allclose(vals[init], width_ref[ok], rtol=1e-7, atol=1e-12)
    # sample vs population std: the bands are wider by sqrt(n / (n - 1)) than Nautilus's ddof=0 bands
    pop = c.rolling(n).std(ddof=0)
    ratio = (got.loc[ok, "up"] - got.loc[ok, "mid"]) / (k * pop[ok])
    np.testing.assert_allclose(ratio[pop[ok] > 0], np.sqrt(n / (n - 1)), rtol=1e-6)


def test_rolling_zscore_matches_pandas(klines: pd.DataFrame) -> None:  # noqa: F811
    c = klines["close"].iloc[:5000].reset_index(drop=True)
    n = 20
    ref = (c - c.rolling(n).mean()) / c.rolling(n).std()
    init, vals = _feed(RollingZScore(n), c)
    assert init.tolist() == c.rolling(n).mean().notna().tolist()
    finite = init & np.isfinite(ref.to_numpy())
    np.testing.assert_allclose(vals[finite], ref[finite], rtol=1e-7, atol=1e-9)
    assert np.abs(vals[finite]).max() > 2.0  # real extremes, not a trivial series


@pytest.mark.parametrize(("n", "ppy"), [(20, 525_600.0), (60, 365.0 * 24 * 60)])
def test_realized_volatility_matches_pandas(klines: pd.DataFrame, n: int, ppy: float) -> None:  # noqa: F811
    c = klines["close"].iloc[:5000].reset_index(drop=True)
    ref = np.log(c / c.shift(1)).rolling(n).std() * np.sqrt(ppy)
    init, vals = _feed(RealizedVolatility(n, ppy), c)
    assert init.tolist() == ref.notna().tolist()  # after n + 1 closes
    np.testing.assert_allclose(vals[init], ref[init], rtol=1e-8)
    assert 0.05 < np.median(vals[init]) < 2.0  # annualised BTC volatility of a sane size


def test_reset_and_bad_period() -> None:
    z = RollingZScore(3)
    for x in (1.0, 2.0, 3.0):
        z.update_raw(x)
    assert z.initialized and z.value == pytest.approx(1.0)
    z.reset()
    assert not z.initialized and z.value == 0.0 and z.count == 0
    for x in (5.0, 5.0, 5.0):
        z.update_raw(x)
    assert z.value == 0.0  # flat window: 0 (pandas: NaN)
    with pytest.raises(ValueError):
        SampleBollingerBands(1)


class _Probe(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.inds = [SampleBollingerBands(20, 2.0), BollingerBandWidth(20, 2.0), RollingZScore(20),
                     RealizedVolatility(20)]
        self.seen: list[tuple[int, ...]] = []

    def on_start(self) -> None:
        for ind in self.inds:
            self.register_indicator_for_bars(BAR_TYPE, ind)
        self.subscribe_bars(BAR_TYPE)

    def on_bar(self, bar: Bar) -> None:
        self.seen.append(tuple(ind.count for ind in self.inds) + tuple(ind.value for ind in self.inds))


def test_indicators_register_with_nautilus(klines: pd.DataFrame) -> None:  # noqa: F811
    from core.instruments import build_instrument

    df = klines.iloc[:300].reset_index(drop=True)
    usdt = Currency.from_str("USDT")
    eng = BacktestEngine(BacktestEngineConfig(logging=LoggerConfig(stdout_level=LogLevel.WARNING)))
    eng.add_venue(Venue("BINANCE"), OmsType.NETTING, AccountType.CASH, [Money(10_000, usdt)],
                  fee_model=MakerTakerFeeModel(Decimal("0.001"), Decimal("0.001")))
    inst = build_instrument("BTCUSDT", "spot")
    eng.add_instrument(inst)
    eng.add_data(make_bars(df, inst.price_precision, inst.size_precision))
    probe = _Probe()
    eng.add_strategy(probe)
    eng.run()
    eng.dispose()
    assert [s[0] for s in probe.seen] == list(range(1, 301))  # updated before each on_bar
    c = df["close"]
    last = probe.seen[-1]
    assert last[4] == pytest.approx(c.iloc[-20:].mean(), rel=1e-12)
    assert last[6] == pytest.approx(((c - c.rolling(20).mean()) / c.rolling(20).std()).iloc[-1], rel=1e-7)
    assert last[7] == pytest.approx((np.log(c / c.shift(1)).rolling(20).std() * np.sqrt(525_600)).iloc[-1], rel=1e-8)
