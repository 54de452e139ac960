"""Buy-and-hold benchmark: one market buy on the first bar, never sells by itself.

Import paths for ``ImportableStrategyConfig``::

    strategy_path="strategies.buy_and_hold:BuyAndHold",
    config_path="strategies.buy_and_hold:BuyAndHoldConfig"

Rule: on the first bar received (bar index 0) buy ``position_fraction`` (default 0.98, leaving
2 % for the fee and rounding on spot) x equity / close, rounded down to the size increment
(``strategies.risk.sizing``; on CASH accounts also capped at quote balance / (1 + fee_headroom)).
If that size is below the instrument minimums, or the order is denied, it does not retry.
The position is only closed by ``on_stop`` (``close_positions_on_stop=True``, default), which in
a backtest fills at the last bar's close. ``allow_short`` and ``max_gap_bars`` have no effect.

Fill: the buy decided on the first bar fills at the second bar's open by default (venue
``fill_timing = "next_open"``), stamped at the first bar's close; at the first bar's close with
``fill_timing = "same_close"``.
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.model import OrderSide, PositionSide

from strategies.base import BarStrategy, BarStrategyConfig
from strategies.params import EquityFraction


class BuyAndHoldConfig(BarStrategyConfig):
    """Buy-and-hold config; ``position_fraction`` defaults to 0.98 of equity."""

    def __init__(self, *, position_fraction: EquityFraction = 0.98, **kwargs: Any) -> None:
        super().__init__(position_fraction=position_fraction, **kwargs)


class BuyAndHold(BarStrategy):
    """Buy once on the first bar, hold."""

    def __init__(self, config: BuyAndHoldConfig) -> None:
        super().__init__(config)
        self.attempted = False

    def on_reset(self) -> None:
        super().on_reset()
        self.attempted = False

    def on_signal_bar(self, bar: Any, side: PositionSide) -> None:
        if self.attempted:
            return
        self.attempted = True
        if side == PositionSide.FLAT:
            self.enter(OrderSide.BUY, bar)
