"""Mean reversion (trading-bot-plan.md section 3.3): fade RSI + Bollinger extremes unless the trend is strongly against it.

Import paths for ``ImportableStrategyConfig``::

    strategy_path="strategies.mean_reversion:MeanReversion",
    config_path="strategies.mean_reversion:MeanReversionConfig"

Indicators (closes of closed bars, updated before the decision):

* ``rsi`` = nautilus ``RelativeStrengthIndex(rsi_period)``. **Scale 0..100** in rc7 (verified:
  classic Wilder RSI, average gain/loss seeded with the simple mean of the first n close-to-close
  changes, then ``avg = (avg*(n-1) + x)/n``; initialized after n + 1 closes, 0.0 before).
  ``rsi_lower`` / ``rsi_upper`` / ``rsi_exit`` are therefore on the 0..100 scale.
* ``bb`` = :class:`strategies.indicators.SampleBollingerBands` ``(bb_period, bb_k)``: middle = SMA(n)
  of closes, upper/lower = middle +/- k x **sample** standard deviation (ddof=1, pandas' default, as
  trading-bot-plan.md's ``BollingerBands``) of the last n closes (Nautilus's ``BollingerBands`` uses
  the population one: bands 2.5 % narrower for n = 20).
* ``trend`` = nautilus ``SimpleMovingAverage(trend_ma_period)`` of closes (default 50).

Rules on bar t (trading-bot-plan.md section 3.3 and its reference ``MeanReversionStrategy``; ``close``
= the bar's decimal close; ``dev = (close - trend) / trend``):

* not ready (``rsi``, ``bb`` or ``trend`` not initialized): nothing;
* in a position: exit after ``max_hold_bars`` bars (tag ``MAX_HOLD``); else a long exits when
  ``close >= bb.middle`` or ``rsi >= rsi_exit`` (default 50), a short when ``close <= bb.middle`` or
  ``rsi <= rsi_exit`` (tag ``MEAN_REVERTED``; a level test, not a cross: nothing is missed after a
  gap reset); else hold;
* flat, cooldown over: long entry when ``rsi < rsi_lower`` and ``close < bb.lower`` and NOT a strong
  downtrend (``dev < -trend_threshold``); short entry (``allow_short`` only; never on CASH accounts)
  when ``rsi > rsi_upper`` and ``close > bb.upper`` and NOT a strong uptrend (``dev > trend_threshold``).
* cooldown, counted as the plan counts it (``bars_since_exit`` is 0 on the exit bar and +1 on every
  later bar; entries need ``bars_since_exit >= cooldown_bars``): after an exit submitted on bar j the
  first possible new entry is bar ``j + cooldown_bars``. Bars = bars received.

Exit reasons in ``trades.parquet``: ``MAX_HOLD`` -> ``time``, ``MEAN_REVERTED`` -> ``signal``.
Difference to the plan's reference code: its trend filter falls back to the band middle (its indicator
manager never computes ``sma_trend``); here it is the 50-bar SMA its parameters (``trend_filter_ma: 50``)
and logic specification ("using 50 MA on same timeframe") name.

Max hold: the exit is submitted on bar entry_bar + max_hold_bars (position held exactly that many
bar intervals). Gap rule and fill timing as in ``strategies.base``: a market order decided on bar N
fills at bar N+1's open by default (venue ``fill_timing = "next_open"``), stamped at bar N's close
time; at bar N's close with ``fill_timing = "same_close"`` (Nautilus's own bar execution).
"""

from __future__ import annotations

from typing import Any, ClassVar

from nautilus_trader.indicators import RelativeStrengthIndex, SimpleMovingAverage
from nautilus_trader.model import OrderSide, PositionSide

from strategies.base import BarStrategy, BarStrategyConfig
from strategies.indicators import SampleBollingerBands, _px
from strategies.params import Bars, BarsOrZero, Fraction, Level100, Multiple, set_checked


class MeanReversionConfig(BarStrategyConfig):
    """Mean-reversion config.

    Parameters (bars unless stated)
    -------------------------------
    rsi_period: RSI length, default 14. rsi_lower / rsi_upper: entry levels on the 0..100 scale
        (default 30 / 70). rsi_exit: exit level (0..100), default 50: longs exit at RSI >= it, shorts at RSI <= it.
    bb_period: Bollinger length, default 20. bb_k: band width in standard deviations, default 2.0.
    trend_ma_period: trend SMA length, default 50. trend_threshold: strong-trend distance from the
        trend SMA as a fraction (0.02 = 2 %).
    max_hold_bars: forced exit after this many bars, default 50.
    cooldown_bars: the first new entry is possible this many bars after an exit, default 10.
    """

    def __init__(
        self,
        *,
        rsi_period: Bars = 14,
        rsi_lower: Level100 = 30.0,
        rsi_upper: Level100 = 70.0,
        rsi_exit: Level100 = 50.0,
        bb_period: Bars = 20,
        bb_k: Multiple = 2.0,
        trend_ma_period: Bars = 50,
        trend_threshold: Fraction = 0.02,
        max_hold_bars: Bars = 50,
        cooldown_bars: BarsOrZero = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        set_checked(self, rsi_period=rsi_period, rsi_lower=rsi_lower, rsi_upper=rsi_upper, rsi_exit=rsi_exit,
                    bb_period=bb_period, bb_k=bb_k, trend_ma_period=trend_ma_period, trend_threshold=trend_threshold,
                    max_hold_bars=max_hold_bars, cooldown_bars=cooldown_bars)  # declared types and ranges
        self.rsi_period: int
        self.rsi_lower: float
        self.rsi_upper: float
        self.rsi_exit: float
        self.bb_period: int
        self.bb_k: float
        self.trend_ma_period: int
        self.trend_threshold: float
        self.max_hold_bars: int
        self.cooldown_bars: int
        if not self.rsi_lower < self.rsi_exit < self.rsi_upper:
            raise ValueError(
                "need 0 <= rsi_lower < rsi_exit < rsi_upper <= 100 (RSI is on a 0..100 scale), got "
                f"{rsi_lower}, {rsi_exit}, {rsi_upper}"
            )


class MeanReversion(BarStrategy):
    """RSI + Bollinger (sample std) mean reversion with a trend veto, max hold and cooldown."""

    __slots__ = ("rsi", "bb", "trend")  # read on every bar (see BarStrategy.__slots__)

    #: What the run's candle chart draws (nautilus_app/plotting.py: recorded at every bar the strategy trades).
    plot_config: ClassVar[dict] = {
        "main_plot": {"bb.upper": {"label": "BB upper"}, "bb.middle": {"label": "BB middle"},
                      "bb.lower": {"label": "BB lower"}, "trend": {"label": "trend SMA"}},
        "subplots": {"RSI": {"rsi": {"label": "RSI", "levels_from": ["rsi_lower", "rsi_exit", "rsi_upper"]}}}}

    def __init__(self, config: MeanReversionConfig) -> None:
        super().__init__(config)
        self.rsi = RelativeStrengthIndex(config.rsi_period)
        self.bb = SampleBollingerBands(config.bb_period, config.bb_k)
        self.trend = SimpleMovingAverage(config.trend_ma_period)
        self.indicators = [self.rsi, self.bb, self.trend]

    def on_signal_bar(self, bar: Any, side: PositionSide) -> None:
        cfg = self.config
        if not (self.rsi.initialized and self.bb.initialized and self.trend.initialized):
            return
        close = _px(bar.close)
        rsi = self.rsi.value
        bb = self.bb
        if side != PositionSide.FLAT:
            if self.entry_bar_index is not None and self.bars_held() >= cfg.max_hold_bars:
                self.exit_position("MAX_HOLD")
            elif side == PositionSide.LONG and (close >= bb.middle or rsi >= cfg.rsi_exit):
                self.exit_position("MEAN_REVERTED")
            elif side == PositionSide.SHORT and (close <= bb.middle or rsi <= cfg.rsi_exit):
                self.exit_position("MEAN_REVERTED")
            return
        if self.last_exit_bar_index is not None and self.bar_index - self.last_exit_bar_index < cfg.cooldown_bars:
            return
        trend = self.trend.value
        dev = (close - trend) / trend
        if rsi < cfg.rsi_lower and close < bb.lower and not dev < -cfg.trend_threshold:
            self.enter(OrderSide.BUY, bar)
        elif self.allow_short and rsi > cfg.rsi_upper and close > bb.upper and not dev > cfg.trend_threshold:
            self.enter(OrderSide.SELL, bar)
