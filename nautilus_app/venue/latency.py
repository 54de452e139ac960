"""Seeded random latency of order commands, released on the simulated clock.

Nautilus 2.0.0rc7's venue latency model is a fixed Rust ``StaticLatencyModel`` that Python cannot
replace or subclass (NAUTILUS_NOTES §7c). :class:`LatencyRouter` instead sits in front of each
strategy as an order gate (:mod:`strategies.hooks`: ``strategy.add_order_gate``; user strategies get
the hooks at load, see there): it takes the strategy's ``submit_order``, ``modify_order`` and
``cancel_order`` commands, draws a latency per command, and hands the command on to Nautilus when
the simulated clock reaches ``send time + latency`` (a clock time alert per command). The venue has no latency model of its own, so it processes the command at
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
While a command is held the order is not yet in Nautilus's cache; it counts in the strategy's
``commands_held`` (:class:`strategies.hooks.OrderCommand.hold`), which ``strategies.base`` treats as a
pending order, so its strategies do not send a second order meanwhile.
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
        self._sids: dict[int, str] = {}  # id(strategy) -> strategy id string

    def draw_ms(self) -> tuple[float, bool]:
        """Next latency in ms and whether it was a spike."""
        p = self.params
        rng = self.rng
        x = float(rng.normal(p.mean_ms, p.std_ms))
        spike = bool(rng.random() < p.spike_probability)
        return max(p.min_ms, x) * (p.spike_multiplier if spike else 1.0), spike

    def attach(self, strategy: Any) -> None:
        """Delay ``strategy``'s submit/modify/cancel of this venue's orders (an order gate, :mod:`strategies.hooks`)."""
        strategy.add_order_gate(self.gate)

    def gate(self, command: Any) -> Any:
        """Order gate: hold a submit/modify/cancel of this venue's order for its drawn latency, pass anything else.

        Runs once per order command: the strategy id string is cached per strategy."""
        name = command.name
        if name not in _DELAYED:
            return command.send()
        # submit_order takes an order; Nautilus rc7's cancel_order/modify_order may take a
        # ClientOrderId: OrderCommand.order resolves it through the cache to find the order's venue
        order = command.target if name == "submit_order" else command.order
        if order is None or order.instrument_id.venue.value != self.venue:
            return command.send()
        strategy = command.strategy
        clock = strategy.clock
        now = clock.timestamp_ns()
        drawn, spike = self.draw_ms()
        sid = self._sids.get(id(strategy))
        if sid is None:
            sid = self._sids[id(strategy)] = strategy.strategy_id.value
        arrival = max(now + round(drawn * 1_000_000), self._last_arrival.get(sid, 0))
        self._last_arrival[sid] = arrival
        self.records.append(LatencyRecord(sid, order.client_order_id.value, _DELAYED[command.name], now, drawn,
                                          (arrival - now) / 1e6, arrival, spike))
        if arrival <= now:
            return command.send()
        command.hold()
        self._n += 1
        clock.set_time_alert_ns(f"latency-{self._n}", arrival, lambda _event: command.release())
        return None


#: the commands the router delays, with their ``LatencyRecord.command`` names
_DELAYED = {"submit_order": "submit", "modify_order": "modify", "cancel_order": "cancel"}
