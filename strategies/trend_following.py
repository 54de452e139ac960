"""Trend following (trading-bot-plan.md section 3.2): SMA alignment + ADX strength, ATR volatility guard, max hold.

Import paths for ``ImportableStrategyConfig``::

    strategy_path="strategies.trend_following:TrendFollowing",
    config_path="strategies.trend_following:TrendFollowingConfig"

Indicators (all on closed bars, updated in this order before the decision):

* ``fast``  = nautilus ``SimpleMovingAverage(ma_fast)`` of closes (default 20 bars);
* ``slow``  = nautilus ``SimpleMovingAverage(ma_slow)`` of closes (default 50 bars);
* ``adx``   = :class:`strategies.indicators.AverageDirectionalIndex` (Wilder, default 14 bars,
  0..100 scale, available after 2 x period bars);
* ``atr``   = nautilus ``AverageTrueRange(atr_period)`` (default 14; Wilder smoothing seeded with
  the mean of the first n true ranges, first TR = high - low; price units, e.g. USDT);
* ``atr_mean`` = nautilus ``SimpleMovingAverage(atr_mean_period)`` (default 20) fed with the ATR
  value of every bar on which the ATR is initialized (so it includes the current bar's ATR).

Rules on bar t, in the order of trading-bot-plan.md's reference ``TrendFollowingStrategy.on_new_candle``
(the first rule that applies decides the bar; no entry on the bar of an exit):

1. not ready (``fast``, ``slow``, ``adx`` or ``atr_mean`` not initialized): nothing (an open position
   is kept: this only happens after a data-gap reset, see below);
2. **extreme volatility**: ``atr > atr_critical_mult x atr_mean`` -> flat: an open position exits
   (tag ``EXTREME_VOLATILITY``), no entry;
3. **weak trend**: ``adx < adx_threshold`` -> an open position exits (tag ``WEAK_TREND``), no entry;
4. in a position: exit after ``max_hold_bars`` bars (tag ``MAX_HOLD``: the exit is submitted on bar
   entry bar + ``max_hold_bars``, bars received); else a long exits when ``fast < slow`` and a short
   when ``fast > slow`` (tag ``MA_CROSS_BACK``, the plan's "trend reversal"); else hold;
5. flat: long entry when ``fast > slow`` and ``close > fast`` and ``close > slow``; short entry (only
   if ``allow_short``; never on CASH accounts) when ``fast < slow`` and ``close < fast`` and
   ``close < slow``.

So an entry needs ``adx >= adx_threshold`` and ``atr <= atr_critical_mult x atr_mean`` (steps 2-3).
Moving averages are simple ones (the plan's ``sma_fast`` / ``sma_slow``). Exit reasons in
``trades.parquet``: ``MAX_HOLD`` -> ``time``, the others -> ``signal`` (the tag is kept as ``exit_tag``).
Differences to the plan's reference code, on purpose: its "extreme volatility" branch returns a zero
target without resetting its own position state (so it would re-enter on the next calm bar without
an entry signal): here the exit is a real exit; and the close is compared as the decimal price (no
1-ulp float noise).

Gap rule: see ``strategies.base`` (all indicators including ``atr_mean`` reset when consecutive
bars are more than ``max_gap_bars`` intervals apart). Fill: a market order decided on bar N
fills at bar N+1's open by default (venue ``fill_timing = "next_open"``), stamped at bar N's close
time; at bar N's close with ``fill_timing = "same_close"`` (Nautilus's own bar execution); a latency model delays it further.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nautilus_trader.indicators import AverageTrueRange, SimpleMovingAverage
from nautilus_trader.model import OrderSide, PositionSide

from strategies.base import BarStrategy, BarStrategyConfig
from strategies.indicators import AverageDirectionalIndex, _px
from strategies.params import Bars, Level100, Multiple, set_checked


class TrendFollowingConfig(BarStrategyConfig):
    """Trend-following config.

    Parameters (bars unless stated)
    -------------------------------
    ma_fast / ma_slow: SMA lengths (ma_fast < ma_slow), default 20 / 50.
    adx_period: ADX length, default 14. adx_threshold: minimum ADX (0..100 scale), default 25.
    atr_period: ATR length, default 14. atr_mean_period: length of the ATR average, default 20.
    atr_critical_mult: flat (exit, no entry) when ATR > this multiple of its average, default 3.0.
    max_hold_bars: forced exit after this many bars, default 200.
    """

    def __init__(
        self,
        *,
        ma_fast: Bars = 20,
        ma_slow: Bars = 50,
        adx_period: Bars = 14,
        adx_threshold: Level100 = 25.0,
        atr_period: Bars = 14,
        atr_mean_period: Bars = 20,
        atr_critical_mult: Multiple = 3.0,
        max_hold_bars: Bars = 200,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        set_checked(self, ma_fast=ma_fast, ma_slow=ma_slow, adx_period=adx_period, adx_threshold=adx_threshold,
                    atr_period=atr_period, atr_mean_period=atr_mean_period, atr_critical_mult=atr_critical_mult,
                    max_hold_bars=max_hold_bars)  # declared types and ranges
        self.ma_fast: int
        self.ma_slow: int
        self.adx_period: int
        self.adx_threshold: float
        self.atr_period: int
        self.atr_mean_period: int
        self.atr_critical_mult: float
        self.max_hold_bars: int
        if self.ma_fast >= self.ma_slow:
            raise ValueError(f"ma_fast ({ma_fast}) must be < ma_slow ({ma_slow})")


class TrendFollowing(BarStrategy):
    """SMA alignment + ADX filter + ATR spike guard; exits on extreme volatility, weak trend, max hold or MA cross back."""

    __slots__ = ("fast", "slow", "adx", "atr", "atr_mean")  # read on every bar (see BarStrategy.__slots__)

    #: What the run's candle chart draws (nautilus_app/plotting.py: recorded at every bar the strategy trades).
    plot_config: ClassVar[dict] = {
        "main_plot": {"fast": {"label": "SMA fast"}, "slow": {"label": "SMA slow"}},
        "subplots": {"ADX": {"adx": {"label": "ADX", "levels_from": ["adx_threshold"]}},
                     "ATR": {"atr": {"label": "ATR"}, "atr_mean": {"label": "ATR mean"}}}}

    def __init__(self, config: TrendFollowingConfig) -> None:
        super().__init__(config)
        self.fast = SimpleMovingAverage(config.ma_fast)
        self.slow = SimpleMovingAverage(config.ma_slow)
        self.adx = AverageDirectionalIndex(config.adx_period)
        self.atr = AverageTrueRange(config.atr_period)
        self.atr_mean = SimpleMovingAverage(config.atr_mean_period)
        self.indicators = [self.fast, self.slow, self.adx, self.atr]

    def on_gap(self) -> None:
        self.atr_mean.reset()

    def on_signal_bar(self, bar: Any, side: PositionSide) -> None:
        cfg = self.config
        atr = self.atr
        if atr.initialized:
            self.atr_mean.update_raw(atr.value)
        if not (self.fast.initialized and self.slow.initialized and self.adx.initialized
                and self.atr_mean.initialized):
            return
        fast, slow = self.fast.value, self.slow.value
        in_position = side != PositionSide.FLAT
        if atr.value > cfg.atr_critical_mult * self.atr_mean.value:
            if in_position:
                self.exit_position("EXTREME_VOLATILITY")
            return
        if self.adx.value < cfg.adx_threshold:
            if in_position:
                self.exit_position("WEAK_TREND")
            return
        if in_position:
            if self.entry_bar_index is not None and self.bars_held() >= cfg.max_hold_bars:
                self.exit_position("MAX_HOLD")
            elif (side == PositionSide.LONG and fast < slow) or (side == PositionSide.SHORT and fast > slow):
                self.exit_position("MA_CROSS_BACK")
            return
        close = _px(bar.close)
        if fast > slow and close > fast and close > slow:
            self.enter(OrderSide.BUY, bar)
        elif self.allow_short and fast < slow and close < fast and close < slow:
            self.enter(OrderSide.SELL, bar)
