"""EMA crossover: long on a fast-over-slow cross, flat (or short) on the opposite cross.

Import paths for ``ImportableStrategyConfig``::

    strategy_path="strategies.ema_cross:EMACross", config_path="strategies.ema_cross:EMACrossConfig"

Indicators: nautilus ``ExponentialMovingAverage(fast_period)`` and ``(slow_period)`` on bar
closes. Nautilus seeds an EMA(n) with the simple mean of its first n closes (value 0.0 and
``initialized=False`` before that), then ``ema = alpha*close + (1-alpha)*ema`` with
``alpha = 2/(n+1)``. (pandas ``ewm(span=n, adjust=False)`` seeds with the first close instead,
so an independent reference must seed with the SMA of the first n closes.)

Crossover rule (evaluated on every closed bar)
----------------------------------------------
``d_t = fast_t - slow_t``, defined only on bars where both EMAs are initialized (i.e. from the
``slow_period``-th bar after the start or after the last gap reset). With ``d_prev`` the value on
the immediately preceding bar (``None`` on the first bar after warm-up or a reset):

* **up-cross** on bar t:   ``d_prev <= 0 and d_t > 0``  -> close a short (if any), then buy
  (if not already long);
* **down-cross** on bar t: ``d_prev >= 0 and d_t < 0``  -> close a long (if any), then sell
  short if ``allow_short`` (never on CASH/spot accounts).

No trade happens at warm-up merely because fast > slow; only crossings trade. Gap rule: if two
consecutive bars are more than ``max_gap_bars`` bar intervals apart, both EMAs and ``d_prev`` are
reset before the new bar is processed (positions are kept; see ``strategies.base``).

Fill: a market order decided on bar N fills at bar N+1's open by default (venue ``fill_timing = "next_open"``), stamped at bar N's close
time; at bar N's close with ``fill_timing = "same_close"`` (Nautilus's own bar execution). Entry size: ``position_fraction`` x equity /
close, rounded down to the size increment (``strategies.risk.sizing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model import OrderSide, PositionSide

from strategies.base import BarStrategy, BarStrategyConfig
from strategies.params import Bars, set_checked
from strategies.signals import nautilus_ema, until_ready

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd


def ema_lines(bars: pd.DataFrame, fast_period: int, slow_period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fast, slow, ready)`` over a bar frame (:func:`strategies.signals.bar_frame`): Nautilus's two EMAs of
    ``close_nd``, bit for bit, restarted at every ``segment`` (the gap rule), NaN until initialised, and where
    both are initialised. Shared by :meth:`EMACross.plot_series` and its vectorised twin."""
    seg = bars["segment"].to_numpy()
    close = bars["close_nd"].to_numpy()
    fast, fast_ok = nautilus_ema(close, fast_period, seg)
    slow, slow_ok = nautilus_ema(close, slow_period, seg)
    return until_ready(fast, fast_ok), until_ready(slow, slow_ok), fast_ok & slow_ok


class EMACrossConfig(BarStrategyConfig):
    """EMA cross config. ``fast_period`` / ``slow_period``: EMA lengths in bars (fast < slow).

    See :class:`strategies.base.BarStrategyConfig` for the shared fields.
    """

    def __init__(self, *, fast_period: Bars = 10, slow_period: Bars = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        set_checked(self, fast_period=fast_period, slow_period=slow_period)  # int >= 1 each
        self.fast_period: int
        self.slow_period: int
        if self.fast_period >= self.slow_period:
            raise ValueError(f"fast_period ({fast_period}) must be < slow_period ({slow_period})")


class EMACross(BarStrategy):
    """Long on EMA up-cross; exit (and short if allowed) on down-cross."""

    __slots__ = ("fast", "slow", "prev_diff", "warmed_up")  # read on every bar (see BarStrategy.__slots__)

    #: What the run's candle chart draws (nautilus_app/plotting.py: recorded at every bar the strategy trades).
    plot_config: ClassVar[dict] = {"main_plot": {"fast": {"label": "EMA fast"}, "slow": {"label": "EMA slow"}}}

    def __init__(self, config: EMACrossConfig) -> None:
        super().__init__(config)
        self.fast = ExponentialMovingAverage(config.fast_period)
        self.slow = ExponentialMovingAverage(config.slow_period)
        self.indicators = [self.fast, self.slow]
        self.prev_diff: float | None = None
        self.warmed_up = False

    def on_gap(self) -> None:
        self.prev_diff = None
        self.warmed_up = False

    @property
    def plot_series(self) -> Callable[[pd.DataFrame], dict[str, np.ndarray]] | None:
        """:meth:`ema_plot_series`, or None when ``fast`` / ``slow`` are not Nautilus EMAs (a subclass swapped
        them for other indicators): their values are then recorded bar by bar (nautilus_app/plotting.py)."""
        if type(self.fast) is ExponentialMovingAverage and type(self.slow) is ExponentialMovingAverage:
            return self.ema_plot_series
        return None

    def ema_plot_series(self, bars: pd.DataFrame) -> dict[str, np.ndarray]:
        """The ``plot_config`` series for the bars this strategy was fed, computed once after the run
        (nautilus_app/plotting.py; nothing is recorded per bar): the values ``fast`` and ``slow`` held at each
        bar's close, NaN until initialised (:func:`ema_lines`)."""
        fast, slow, _ready = ema_lines(bars, self.fast.period, self.slow.period)
        return {"fast": fast, "slow": slow}

    def on_signal_bar(self, bar: Any, side: PositionSide) -> None:
        fast, slow = self.fast, self.slow
        if not self.warmed_up:  # checked until both EMAs are initialized, then skipped
            if not (fast.initialized and slow.initialized):
                self.prev_diff = None
                return
            self.warmed_up = True
        diff = fast.value - slow.value
        prev = self.prev_diff
        self.prev_diff = diff
        if prev is None:
            return
        if prev <= 0.0 < diff:  # up-cross
            if side == PositionSide.SHORT:
                self.exit_position("EMA_UP_CROSS")
            if side != PositionSide.LONG:
                self.enter(OrderSide.BUY, bar)
        elif prev >= 0.0 > diff:  # down-cross
            if side == PositionSide.LONG:
                self.exit_position("EMA_DOWN_CROSS")
            if side != PositionSide.SHORT and self.allow_short:
                self.enter(OrderSide.SELL, bar)
