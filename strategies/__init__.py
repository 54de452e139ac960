"""Bar strategies for the platform (plain nautilus ``Strategy`` subclasses).

``STRATEGIES`` maps a short name to the ``(strategy_path, config_path)`` pair expected by
``ImportableStrategyConfig``. Every config takes JSON-able kwargs: ``instrument_id`` (str),
``bar_type`` (str), ``position_fraction`` (float), ``allow_short`` (bool), ``max_gap_bars`` (int),
``close_positions_on_stop`` (bool), ``fee_headroom`` (float), optional ``strategy_id`` /
``order_id_tag`` (str), plus the strategy's own parameters (see each module).
"""

STRATEGIES: dict[str, tuple[str, str]] = {
    "ema_cross": ("strategies.ema_cross:EMACross", "strategies.ema_cross:EMACrossConfig"),
    "buy_and_hold": ("strategies.buy_and_hold:BuyAndHold", "strategies.buy_and_hold:BuyAndHoldConfig"),
    "trend_following": (
        "strategies.trend_following:TrendFollowing",
        "strategies.trend_following:TrendFollowingConfig",
    ),
    "mean_reversion": (
        "strategies.mean_reversion:MeanReversion",
        "strategies.mean_reversion:MeanReversionConfig",
    ),
}
