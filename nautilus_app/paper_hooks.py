"""How a paper session sits between its strategies and Nautilus: through the strategies' hooks.

Every paper strategy is built with the platform's hooks (:mod:`strategies.hooks`; a user's plain
Nautilus ``Strategy`` gets them at load, ``make_strategy(..., hooks=True)``), and the session adds:

* sandbox / Ethereal execution: :func:`guard_strategy` (an order gate: new orders are held while the
  feed is stale) and :func:`clock_strategy` (before-bar work: the market clock of fills);
* simulated execution (:mod:`nautilus_app.paper_exec`): :func:`sequence_strategy` (the bar sequencer
  drives the strategy: an external bar driver, and an order gate that lets orders through only
  while the session may trade).

Nothing here replaces a method of a strategy object.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from nautilus_app.paper_events import event


class StaleGuard:
    """Shared flag: while the feed is stale, new orders from strategies are held (not submitted)."""

    def __init__(self) -> None:
        self.stale = False
        self.held: list[dict[str, Any]] = []

    def holds(self, strategy: Any, order: Any) -> bool:
        """True (and the order recorded and logged) when ``order`` must be held: the feed is stale and
        the order is not reduce-only (reducing risk on a stale feed stays possible)."""
        if not self.stale or getattr(order, "is_reduce_only", False):
            return False
        info = {"strategy_id": str(strategy.id), "client_order_id": str(order.client_order_id),
                "side": str(order.side), "quantity": str(order.quantity)}
        self.held.append(info)
        event(logging.WARNING, "order held: market data feed is stale", **info)
        return True


def guard_strategy(strategy: Any, guard: StaleGuard) -> None:
    """Order gate: ``submit_order`` of a new (not reduce-only) order is held (logged, not sent) while the
    feed is stale. Closing orders through ``close_all_positions`` and cancels pass."""

    def gate(command: Any) -> Any:
        if command.name == "submit_order" and guard.holds(strategy, command.target):
            return None
        return command.send()

    strategy.add_order_gate(gate)


def clock_strategy(strategy: Any, session: Any) -> None:
    """Before-bar work: record (wall time at entry, market time of the bar) in Redis.

    Orders are created synchronously inside ``on_bar``, so an order's ``ts_init`` (wall clock) falls
    after the entry of the ``on_bar`` call that created it and before the next one: that is how
    fills are stamped with the market time of their bar. (The data client's ``ts_init`` of a bar
    cannot be used: under load several bars are parsed before the strategy processes the first.)
    """
    interval = session.plan.interval_ns
    state = session.state

    def before_bar(bar: Any) -> None:
        state.add_mark(time.time_ns(), -(-bar.ts_event // interval) * interval)

    strategy.add_before_bar(before_bar)


def sequence_strategy(strategy: Any, session: Any, bar_type: str) -> None:
    """Let :class:`~nautilus_app.paper_exec.BarSequencer` drive ``strategy`` (simulated execution).

    The strategy's bars come from the sequencer (``drive_bars_externally``: indicators registered
    with ``register_indicator_for_bars`` are updated by the sequencer before each ``on_bar``, bars
    from Nautilus are ignored), and an order gate lets commands through only while the session may
    trade (warm and not replaying history; a suppressed ``submit_order`` is counted). New orders are
    held while the feed is stale; a sent order and each cancel/modify draw their latency (as in the
    backtest) from the sequencer. Appends ``(strategy, bar type, bar driver)`` to ``session.fed``.
    """
    driver = strategy.drive_bars_externally()
    guard = session.guard

    def gate(command: Any) -> Any:
        if not session.trading:
            if command.name == "submit_order":
                session.suppressed += 1
            return None
        if command.name == "submit_order":
            if guard.holds(strategy, command.target):
                return None
            session.sequencer.note_sent(strategy, command.target)
        elif command.name in ("cancel_order", "modify_order"):  # the backtest's latency draws for these too
            session.sequencer.note_command(strategy, command.name, command.order)
        return command.send()

    strategy.add_order_gate(gate)
    session.fed.append((strategy, bar_type, driver))
