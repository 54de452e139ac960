"""Plain NautilusTrader strategies, runnable unchanged in backtests and paper trading.

``REGISTRY`` maps the names used in run configs (``[[strategies]] name = "ema_cross"``) to the
strategy class and its config class, as ``module:Class`` paths for Nautilus's
``ImportableStrategyConfig``.
"""

from __future__ import annotations

from typing import NamedTuple


class StrategyEntry(NamedTuple):
    """Import paths of one registered strategy (``module:Class``)."""

    strategy_path: str
    config_path: str


REGISTRY: dict[str, StrategyEntry] = {
    "ema_cross": StrategyEntry("strategies.ema_cross:EMACross", "strategies.ema_cross:EMACrossConfig"),
    "buy_and_hold": StrategyEntry("strategies.buy_and_hold:BuyAndHold", "strategies.buy_and_hold:BuyAndHoldConfig"),
    "trend_following": StrategyEntry(
        "strategies.trend_following:TrendFollowing", "strategies.trend_following:TrendFollowingConfig"
    ),
    "mean_reversion": StrategyEntry(
        "strategies.mean_reversion:MeanReversion", "strategies.mean_reversion:MeanReversionConfig"
    ),
}
