"""Seeded random latency of order commands, released on the simulated clock.

Nautilus 2.0.0rc7's venue latency model is a fixed Rust ``StaticLatencyModel`` that Python cannot
replace or subclass (NAUTILUS_NOTES §7c). :class:`LatencyRouter` instead sits in front of each
strategy: it replaces the strategy object's ``submit_order``, ``modify_order`` and ``cancel_order``
(instance attributes, so the strategy class is unchanged), draws a latency per command, and hands
the command to Nautilus when the simulated clock reaches ``send time + latency`` (a clock time
alert per command). The venue has no latency model of its own, so it processes the command at
that moment: a market order's fill is timestamped ``send time + latency`` and, with the venue fill
model, priced at the open of the first bar closing after that time (for latencies shorter than a
bar: the next bar's open, as without latency).

Draws (one per command, in the order commands are sent; ``rng = numpy.random.default_rng(seed)``)::

    x = rng.normal(mean_ms, std_ms); spike = rng.random() < spike_probability
    latency_ms = max(min_ms, x) x (spike_multiplier if spike else 1)

Ordering: commands of one strategy arrive in the order they were sent (one connection, like a
websocket session): ``arrival_i = max(send_i + latency_i, arrival_{i-1})``; the effective latency is
recorded next to the drawn one. Commands of different strategies are independent, and every command
has its own timer, so a slow command never holds up another strategy's.

Not delayed: orders submitted by Nautilus's Rust helpers that bypass the Python methods
(``close_position``, ``close_all_positions``, ``cancel_all_orders``, ``submit_order_list``), e.g.
the end-of-run closes in ``on_stop``, and the liquidation actor's orders (the exchange's own).
While a command is held the order is not yet in Nautilus's cache; ``strategies.base`` counts
held orders as pending (``latency_held``), so its strategies do not send a second order meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatencyDraws:
    """Parameters (ms) of the latency distribution; see the module docstring for the formula."""

    mean_ms: float = 0.0
    std_ms: float = 0.0
    min_ms: float = 0.0
    spike_probability: float = 0.0
    spike_multiplier: float = 1.0
    seed: int = 0


@dataclass
class LatencyRecord:
    """One delayed command (times UTC ns, latencies ms)."""

    strategy_id: str
    client_order_id: str
    command: str  # submit / modify / cancel
    ts_sent: int
    drawn_ms: float
    effective_ms: float
    ts_arrival: int
    spike: bool


class LatencyRouter:
    """Delays one venue's commands of the given strategies (module docstring).

    Args:
        params: The distribution.
        venue: Only orders for instruments of this venue are delayed.
    """

    def __init__(self, params: LatencyDraws, venue: str) -> None:
        self.params = params
        self.venue = venue
        self.rng = np.random.default_rng(params.seed)
        self.records: list[LatencyRecord] = []
        self._last_arrival: dict[str, int] = {}
        self._n = 0

    def draw_ms(self) -> tuple[float, bool]:
        """Next latency in ms and whether it was a spike."""
        p = self.params
        x = float(self.rng.normal(p.mean_ms, p.std_ms))
        spike = bool(self.rng.random() < p.spike_probability)
        return max(p.min_ms, x) * (p.spike_multiplier if spike else 1.0), spike

    def attach(self, strategy: Any) -> None:
        """Route ``strategy``'s submit/modify/cancel of this venue's orders through the delay."""
        originals = {name: getattr(strategy, name) for name in ("submit_order", "modify_order", "cancel_order")}
        strategy.latency_held = 0

        def delayed(name: str) -> Any:
            original = originals[name]

            def call(target: Any, *args: Any, **kwargs: Any) -> None:
                # submit_order takes an order; Nautilus rc7's cancel_order/modify_order may take a
                # ClientOrderId: resolve it through the cache to find the order's venue
                order = target if hasattr(target, "instrument_id") else strategy.cache.order(target)
                if order is None or order.instrument_id.venue.value != self.venue:
                    original(target, *args, **kwargs)
                    return
                self._hold(strategy, name, original, target, order, args, kwargs)
            return call

        for name in originals:
            setattr(strategy, name, delayed(name))

    def _hold(self, strategy: Any, name: str, original: Any, target: Any, order: Any, args: tuple,
              kwargs: dict) -> None:
        clock = strategy.clock
        now = clock.timestamp_ns()
        drawn, spike = self.draw_ms()
        sid = strategy.strategy_id.value
        arrival = max(now + round(drawn * 1_000_000), self._last_arrival.get(sid, 0))
        self._last_arrival[sid] = arrival
        command = name.split("_")[0]
        self.records.append(LatencyRecord(sid, order.client_order_id.value, command, now, drawn,
                                          (arrival - now) / 1e6, arrival, spike))
        if arrival <= now:
            original(target, *args, **kwargs)
            return
        strategy.latency_held += 1
        self._n += 1

        def release(_event: Any) -> None:
            strategy.latency_held -= 1
            original(target, *args, **kwargs)

        clock.set_time_alert_ns(f"latency-{self._n}", arrival, release)
