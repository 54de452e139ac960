"""Mean reversion: fade RSI + Bollinger-band extremes unless the trend is strongly against it.

Import paths for ``ImportableStrategyConfig``::

    strategy_path="strategies.mean_reversion:MeanReversion",
    config_path="strategies.mean_reversion:MeanReversionConfig"

Indicators (closes of closed bars, updated before the decision):

* ``rsi`` = nautilus ``RelativeStrengthIndex(rsi_period)``. **Scale 0..100** in rc7 (verified:
  classic Wilder RSI, average gain/loss seeded with the simple mean of the first n close-to-close
  changes, then ``avg = (avg*(n-1) + x)/n``; initialized after n + 1 closes, 0.0 before).
  ``rsi_lower`` / ``rsi_upper`` / ``rsi_exit`` are therefore on the 0..100 scale.
* ``bb`` = nautilus ``BollingerBands(bb_period, bb_k)``: middle = SMA(n) of closes,
  upper/lower = middle +/- k x **population** standard deviation (ddof=0) of the last n closes.
* ``trend`` = nautilus ``SimpleMovingAverage(trend_ma_period)`` of closes (default 50).

Rules on bar t (all indicators initialized):

* long entry (flat, cooldown over): ``rsi < rsi_lower`` and ``close < bb.lower`` and NOT a strong
  downtrend, i.e. NOT ``close < trend x (1 - trend_threshold)``;
* short entry (``allow_short`` only; never on CASH accounts): ``rsi > rsi_upper`` and
  ``close > bb.upper`` and NOT ``close > trend x (1 + trend_threshold)``;
* long exit: ``close >= bb.middle``, or RSI crosses ``rsi_exit`` upward
  (``rsi_prev < rsi_exit <= rsi``), or ``max_hold_bars`` bars after the entry bar;
* short exit: ``close <= bb.middle``, or ``rsi_prev > rsi_exit >= rsi``, or max hold.
  (``rsi_prev`` = RSI on the previous bar, only when it was initialized and no gap reset
  happened in between.)
* cooldown: after an exit submitted on bar j no entry is taken on bars j .. j + cooldown_bars;
  the first possible new entry is bar j + cooldown_bars + 1. Bars = bars received.

Max hold: the exit is submitted on bar entry_bar + max_hold_bars (position held exactly that many
bar intervals). Gap rule and fill timing as in ``strategies.base``: a market order decided on bar N
fills at bar N+1's open by default (venue ``fill_timing = "next_open"``), stamped at bar N's close
time; at bar N's close with ``fill_timing = "same_close"`` (Nautilus's own bar execution).
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.indicators import BollingerBands, RelativeStrengthIndex, SimpleMovingAverage
from nautilus_trader.model import OrderSide, PositionSide

from strategies.base import BarStrategy, BarStrategyConfig


class MeanReversionConfig(BarStrategyConfig):
    """Mean-reversion config.

    Parameters (bars unless stated)
    -------------------------------
    rsi_period: RSI length, default 14. rsi_lower / rsi_upper: entry levels on the 0..100 scale
        (default 30 / 70). rsi_exit: exit-cross level (0..100), default 50.
    bb_period: Bollinger length, default 20. bb_k: band width in standard deviations, default 2.0.
    trend_ma_period: trend SMA length, default 50. trend_threshold: strong-trend distance from the
        trend SMA as a fraction (0.02 = 2 %).
    max_hold_bars: forced exit after this many bars, default 50.
    cooldown_bars: bars without entries after an exit, default 10.
    """

    def __init__(
        self,
        *,
        rsi_period: int = 14,
        rsi_lower: float = 30.0,
        rsi_upper: float = 70.0,
        rsi_exit: float = 50.0,
        bb_period: int = 20,
        bb_k: float = 2.0,
        trend_ma_period: int = 50,
        trend_threshold: float = 0.02,
        max_hold_bars: int = 50,
        cooldown_bars: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rsi_period: int = self._positive_int("rsi_period", rsi_period)
        self.rsi_lower: float = float(rsi_lower)
        self.rsi_upper: float = float(rsi_upper)
        self.rsi_exit: float = float(rsi_exit)
        self.bb_period: int = self._positive_int("bb_period", bb_period)
        self.bb_k: float = float(bb_k)
        self.trend_ma_period: int = self._positive_int("trend_ma_period", trend_ma_period)
        self.trend_threshold: float = float(trend_threshold)
        self.max_hold_bars: int = self._positive_int("max_hold_bars", max_hold_bars)
        self.cooldown_bars: int = int(cooldown_bars)
        if not 0.0 <= self.rsi_lower < self.rsi_exit < self.rsi_upper <= 100.0:
            raise ValueError(
                "need 0 <= rsi_lower < rsi_exit < rsi_upper <= 100 (RSI is on a 0..100 scale), got "
                f"{rsi_lower}, {rsi_exit}, {rsi_upper}"
            )
        if self.bb_k <= 0.0 or self.trend_threshold < 0.0 or self.cooldown_bars < 0:
            raise ValueError("bb_k must be > 0, trend_threshold >= 0 and cooldown_bars >= 0")


class MeanReversion(BarStrategy):
    """RSI + Bollinger mean reversion with a trend veto, max hold and cooldown."""

    def __init__(self, config: MeanReversionConfig) -> None:
        super().__init__(config)
        self.rsi = RelativeStrengthIndex(config.rsi_period)
        self.bb = BollingerBands(config.bb_period, config.bb_k)
        self.trend = SimpleMovingAverage(config.trend_ma_period)
        self.indicators = [self.rsi, self.bb, self.trend]
        self.prev_rsi: float | None = None

    def on_gap(self) -> None:
        self.prev_rsi = None

    def on_signal_bar(self, bar: Any, side: PositionSide) -> None:
        cfg = self.config
        close = bar.close.as_double()
        rsi = self.rsi.value if self.rsi.initialized else None
        prev_rsi = self.prev_rsi
        self.prev_rsi = rsi

        if side != PositionSide.FLAT:
            if self.entry_bar_index is not None and self.bars_held() >= cfg.max_hold_bars:
                self.exit_position("MAX_HOLD")
                return
            if not self.bb.initialized:
                return
            crossed_up = prev_rsi is not None and rsi is not None and prev_rsi < cfg.rsi_exit <= rsi
            crossed_dn = prev_rsi is not None and rsi is not None and prev_rsi > cfg.rsi_exit >= rsi
            if side == PositionSide.LONG and (close >= self.bb.middle or crossed_up):
                self.exit_position("MEAN_REVERTED")
            elif side == PositionSide.SHORT and (close <= self.bb.middle or crossed_dn):
                self.exit_position("MEAN_REVERTED")
            return

        if (
            self.last_exit_bar_index is not None
            and self.bar_index - self.last_exit_bar_index <= cfg.cooldown_bars
        ):
            return
        if rsi is None or not (self.bb.initialized and self.trend.initialized):
            return
        trend = self.trend.value
        if rsi < cfg.rsi_lower and close < self.bb.lower and not close < trend * (1.0 - cfg.trend_threshold):
            self.enter(OrderSide.BUY, bar)
        elif (
            self.allow_short
            and rsi > cfg.rsi_upper
            and close > self.bb.upper
            and not close > trend * (1.0 + cfg.trend_threshold)
        ):
            self.enter(OrderSide.SELL, bar)
