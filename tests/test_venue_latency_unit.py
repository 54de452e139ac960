"""Latency router: commands given as a ClientOrderId (Nautilus rc7's cancel_order/modify_order) are
resolved through the cache and delayed like order objects."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from nautilus_app.venue.latency import LatencyDraws, LatencyRouter
from strategies.hooks import StrategyHooks


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000_000
        self.alerts: list[tuple[int, object]] = []

    def timestamp_ns(self) -> int:
        return self.now

    def set_time_alert_ns(self, name: str, ts: int, callback: object) -> None:
        self.alerts.append((ts, callback))


def make_order(cid: str, venue: str) -> SimpleNamespace:
    return SimpleNamespace(client_order_id=SimpleNamespace(value=cid),
                           instrument_id=SimpleNamespace(venue=SimpleNamespace(value=venue)))


def test_cancel_by_client_order_id_is_delayed_by_the_drawn_latency() -> None:
    orders = {"O-1": make_order("O-1", "BINANCE"), "O-2": make_order("O-2", "OTHER")}
    calls: list[tuple[str, object]] = []

    class FakeNautilusStrategy:  # what the order commands reach after the gates
        def submit_order(self, o: object) -> None:
            calls.append(("submit", o))

        def modify_order(self, o: object, *a: object) -> None:
            calls.append(("modify", o))

        def cancel_order(self, o: object) -> None:
            calls.append(("cancel", o))

    class FakeStrategy(StrategyHooks, FakeNautilusStrategy):
        clock = FakeClock()
        strategy_id = SimpleNamespace(value="S-000")
        cache = SimpleNamespace(order=lambda cid: orders.get(cid))

    strategy = FakeStrategy()
    router = LatencyRouter(LatencyDraws(mean_ms=50.0, std_ms=10.0, min_ms=5.0, seed=7), "BINANCE")
    router.attach(strategy)
    strategy.cancel_order("O-1")  # an id, not an order object
    strategy.cancel_order("O-2")  # another venue: passes straight through
    assert calls == [("cancel", "O-2")]
    # the delay equals the seeded draw, computed independently with the same generator
    rng = np.random.default_rng(7)
    expected_ms = max(5.0, float(rng.normal(50.0, 10.0)))
    ((ts, release),) = strategy.clock.alerts
    assert ts == 1_000_000_000 + round(expected_ms * 1_000_000)
    assert router.records[0].client_order_id == "O-1" and router.records[0].command == "cancel"
    assert strategy.commands_held == 1  # a held command counts as a pending order
    release(None)
    assert calls[-1] == ("cancel", "O-1") and strategy.commands_held == 0
