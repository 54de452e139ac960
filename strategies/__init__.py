"""Bar strategies for the platform (plain nautilus ``Strategy`` subclasses).

``REGISTRY`` maps a short name to a :class:`StrategyEntry` holding the ``strategy_path`` /
``config_path`` pair expected by ``ImportableStrategyConfig`` (
entries also unpack as ``(strategy_path, config_path)`` tuples). Every config takes JSON-able
kwargs: ``instrument_id`` (str), ``bar_type`` (str), ``position_fraction`` (float),
``allow_short`` (bool), ``max_gap_bars`` (int), ``close_positions_on_stop`` (bool),
``fee_headroom`` (float), optional ``strategy_id`` / ``order_id_tag`` (str), plus the strategy's
own parameters (see each module). Unknown keys raise ``TypeError``.
"""

from typing import NamedTuple


class StrategyEntry(NamedTuple):
    """Import paths of one strategy for ``ImportableStrategyConfig``."""

    strategy_path: str
    config_path: str


REGISTRY: dict[str, StrategyEntry] = {
    "ema_cross": StrategyEntry("strategies.ema_cross:EMACross", "strategies.ema_cross:EMACrossConfig"),
    "buy_and_hold": StrategyEntry(
        "strategies.buy_and_hold:BuyAndHold", "strategies.buy_and_hold:BuyAndHoldConfig"
    ),
    "trend_following": StrategyEntry(
        "strategies.trend_following:TrendFollowing", "strategies.trend_following:TrendFollowingConfig"
    ),
    "mean_reversion": StrategyEntry(
        "strategies.mean_reversion:MeanReversion", "strategies.mean_reversion:MeanReversionConfig"
    ),
    # vectorised-signals twins (strategies.signals): same configs and rules, signals computed once
    "ema_cross_signals": StrategyEntry(
        "strategies.signal_strategies:EMACrossSignals", "strategies.ema_cross:EMACrossConfig"
    ),
    "trend_following_signals": StrategyEntry(
        "strategies.signal_strategies:TrendFollowingSignals", "strategies.trend_following:TrendFollowingConfig"
    ),
    "mean_reversion_signals": StrategyEntry(
        "strategies.signal_strategies:MeanReversionSignals", "strategies.mean_reversion:MeanReversionConfig"
    ),
    "buy_and_hold_signals": StrategyEntry(
        "strategies.signal_strategies:BuyAndHoldSignals", "strategies.buy_and_hold:BuyAndHoldConfig"
    ),
}
