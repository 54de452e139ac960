"""The bar sequencer of a simulated paper session: one bar at a time -- venue step, strategies, orders,
commit (issue 22: split from paper_exec.py, whose module docstring describes the steps).

The strategies are driven through their hooks (:mod:`strategies.hooks`, installed by
:func:`nautilus_app.paper_hooks.sequence_strategy`): the session feeds each bar to the strategy's bar
driver, and the strategy's order gate reports each order it lets through (:meth:`BarSequencer.note_sent`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from nautilus_trader.model import (
    Bar,
    BarType,
    ClientOrderId,
    InstrumentId,
    OrderStatus,
    Price,
    Quantity,
    VenueOrderId,
)

from nautilus_app.paper_exec import SimExecutionClient, SimVenue, StepResult, _denied
from nautilus_app.paper_history import bar_record
from nautilus_app.paper_snapshot import restore_strategy, snapshot_strategy

log = logging.getLogger("nautilus_app.paper")

_OPEN_STATUSES = ("ACCEPTED", "PARTIALLY_FILLED", "SUBMITTED")

#: how a bar reached the strategies, stored with it in the feed (``[bar_type, close ns, o, h, l, c, v,
#: untraded 0|1, kind]``): warm-up history before the first live bar, a live bar, or a bar missed while the
#: node was down and taken from the venue's history at a restart
WARMUP, LIVE, CATCH_UP = "warmup", "live", "catch_up"


def feed_kinds(feed: list[list]) -> list[str]:
    """The kind of each stored feed record; records written before kinds were stored (8 fields): untraded
    ones before the first traded one are warm-up history, later untraded ones catch-up, traded ones live."""
    out: list[str] = []
    seen_live = False
    for r in feed:
        if len(r) > 8:
            kind = r[8]
        elif _untraded(r):
            kind = CATCH_UP if seen_live else WARMUP
        else:
            kind = LIVE
        seen_live = seen_live or kind != WARMUP
        out.append(kind)
    return out


def _untraded(rec: list) -> bool:
    return len(rec) > 7 and bool(rec[7])


def make_bar(rec: list) -> Bar:
    """A Nautilus ``Bar`` from a feed record (stamped at its close)."""
    bt, ts, o, h, low, c, v = rec[:7]
    return Bar(BarType.from_str(bt), Price.from_str(o), Price.from_str(h), Price.from_str(low), Price.from_str(c),
               Quantity.from_str(v), int(ts), int(ts))


class BarSequencer:
    """Processes bars one at a time: venue step, strategies, orders, commit (module docstring).

    Args:
        session: The paper session (strategies, indicators, status, stop handling).
        sim: The simulated venue.
        interval_ns: Bar interval.
        funding: callback ``(live iid, previous close ns, close ns) -> (settlement ns, rate, mark) | None``.
    """

    def __init__(self, session: Any, sim: SimVenue, interval_ns: int,
                 funding: Callable[[str, int, int], tuple[int, Decimal, float] | None]) -> None:
        self.session = session
        self.sim = sim
        self.interval_ns = interval_ns
        self.funding = funding
        self.client: SimExecutionClient | None = None
        self.queue: asyncio.Queue | None = None
        self.pending_live: list[list] = []
        self.market_now = 0
        self.sent_at: dict[str, tuple[int, int | None, float]] = {}
        self.awaiting: set[str] = set()
        self.closing = False
        self.stopping = False
        self.processed = 0
        self.warm = False
        self.trading = False
        self.warm_bars = 0  # history bars fed before the session's first live bar (a fresh start's warm-up)
        self.replayed_bars = 0  # stored feed bars fed again at this (re)start
        self.caught_up = 0  # bars missed while the node was down, processed at this start
        self.caught_up_traded = 0
        self.restarted = False
        self.funding_checked: set[str] = set()  # bar types whose missed settlements were looked up
        self.arrivals: set[int] = set()  # arrival times of the commands sent (orders, cancels, modifies)
        self.cancel_at: dict[str, list[int]] = {}  # client order id -> arrivals of cancels sent, not yet at the client
        self.phase = 0  # batches of events handed to the strategies (a venue step's fills, a bar's on_bar)
        self.cancel_phase: dict[str, int] = {}  # client order id -> the batch its (first) cancel was sent in
        self.last_ts: dict[str, int] = {}

    # -- input
    def on_live_bar(self, bar_type: str, bar: Any) -> None:
        """Called by the recorder for every live bar (any thread-safe context on the node's loop)."""
        ts = -(-bar.ts_event // self.interval_ns) * self.interval_ns
        rec = bar_record(bar_type, ts, bar)
        if self.queue is None:
            self.pending_live.append(rec)
        else:
            self.queue.put_nowait(rec)

    def on_order_arrived(self, rec: dict) -> None:
        self.awaiting.discard(rec["client_order_id"])

    def note_sent(self, strategy: Any, order: Any) -> None:
        """A strategy's Python path sent an order (called by the submit wrapper): latency and sent time."""
        sid = strategy.strategy_id.value
        arrival, drawn = self.sim.arrival(sid, self.market_now)
        self.sent_at[order.client_order_id.value] = (self.market_now, arrival, drawn)
        self.awaiting.add(order.client_order_id.value)
        self.arrivals.add(arrival)

    def note_command(self, strategy: Any, name: str, target: Any = None) -> None:
        """A strategy sent a cancel or modify: its latency draw, and its arrival time (the venue's matching
        engine iterates when it arrives, :meth:`SimVenue.at_arrival`; a cancel takes effect then)."""
        coid = getattr(getattr(target, "client_order_id", None), "value", None)
        if name == "cancel_order" and coid is not None:
            # Nautilus sends no cancel for a closed order or one pending cancel since an earlier batch of
            # events; a cancel sent on an event of the same batch goes out (the backtest applies the
            # pending-cancel state after the batch): the backtest draws latency for exactly those
            pending = target.status == OrderStatus.PENDING_CANCEL
            if bool(target.is_closed) or (pending and self.cancel_phase.get(coid) != self.phase):
                return
            self.cancel_phase[coid] = self.phase
        arrival, _drawn = self.sim.arrival(strategy.strategy_id.value, self.market_now)
        self.arrivals.add(arrival)
        if name == "cancel_order" and coid is not None:
            self.cancel_at.setdefault(coid, []).append(arrival)

    # -- main loop
    async def run(self) -> None:
        self.queue = asyncio.Queue()
        for rec in self.pending_live:
            self.queue.put_nowait(rec)
        self.pending_live.clear()
        try:
            await self.warm_up()
            while not self.closing:
                rec = await self.queue.get()
                if self.stopping:  # asked to stop: no new bar is started (the last one was completed)
                    break
                if rec[1] <= self.last_ts.get(rec[0], -1):
                    continue  # already processed (a replayed or duplicated bar)
                await self.catch_up(rec)
                await self.process(rec, live=True)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the session must hear of it
            log.exception("paper sequencer failed")
            self.session.sequencer_failed(e)

    async def warm_up(self) -> None:
        """Feed the stored feed (restart) or the history (first start) to the strategies without trading."""
        s = self.session
        book = self.sim.book
        s.set_warm_status(False, "warming up from history", 0)
        # the strategies register their indicators in on_start, after Nautilus's reconciliation
        t_end = time.monotonic() + 60
        while not all(_running(st) for st in s.strategies) and time.monotonic() < t_end:
            await asyncio.sleep(0.01)
        feed = book.feed()
        self.arrivals |= set(json.loads(book.meta().get("arrivals", "[]")))
        if feed:
            for rec in feed:
                s.feed_strategies(make_bar(rec), trading=False)
                self.last_ts[rec[0]] = max(self.last_ts.get(rec[0], -1), rec[1])
                self.market_now = rec[1]
            states = book.strategy_states()
            for strategy in s.strategies:
                st = states.get(strategy.strategy_id.value)
                if st is not None:
                    restore_strategy(strategy, st)
            self.restarted = True
            self.replayed_bars = len(feed)
            kinds = feed_kinds(feed)
            self.warm_bars = kinds.count(WARMUP)
            s.catch_up_bars = kinds.count(CATCH_UP)
            s.catch_up_traded = sum(1 for k, r in zip(kinds, feed, strict=True) if k == CATCH_UP and not _untraded(r))
            s.restart_replayed_bars = self.replayed_bars
            message = f"warm: restored from {self.replayed_bars} stored bars ({self.warm_bars} of them warm-up history)"
        else:
            history = await asyncio.get_running_loop().run_in_executor(None, s.history_bars)
            p = book.r.pipeline(transaction=True)
            for rec in history:
                s.feed_strategies(make_bar(rec), trading=False)
                self.last_ts[rec[0]] = max(self.last_ts.get(rec[0], -1), rec[1])
                p.rpush(book.k("feed"), json.dumps([*rec, 1, WARMUP]))
            for strategy in s.strategies:
                p.hset(book.k("strategies"), strategy.strategy_id.value, json.dumps(snapshot_strategy(strategy)))
            p.execute()
            self.warm_bars = len(history)
            message = f"warm: {self.warm_bars} history bars fed"
            for rec in history:  # the venue's last bar (for the first fills' slippage volume and checks)
                self.sim.last_bar[InstrumentId.from_str(BarType.from_str(rec[0]).instrument_id.value).value] = \
                    _bar_dict(rec)
        self.warm = True
        s.set_warm_status(True, message, self.warm_bars)

    async def catch_up(self, first_live: list) -> None:
        """Bars between the last processed one and ``first_live`` (missed while the node was down): fetched
        from the venue's recent klines and processed as live ones when at most ``max_catch_up_bars``.

        The funding settlements from the last processed bar's close on (the restarted node heard none of
        them announced; the one at that close is still to be applied) come from the venue's history
        (:func:`nautilus_app.paper_history.missed_funding`): when bars were missed, and at the first live bar
        after a restart even when none was."""
        bt = first_live[0]
        last = self.last_ts.get(bt)
        if last is None:
            return
        gap = first_live[1] - last > self.interval_ns
        first_after_restart = self.restarted and bt not in self.funding_checked
        if not gap and not first_after_restart:
            return
        loop = asyncio.get_running_loop()
        missing = await loop.run_in_executor(None, self.session.recent_bars, bt, last, first_live[1]) if gap else []
        trade = len(missing) <= self.session.plan.settings.max_catch_up_bars
        if missing or first_after_restart:
            from nautilus_app.paper_history import missed_funding

            self.funding_checked.add(bt)
            got = await loop.run_in_executor(
                None, missed_funding, self.session, bt, last - 1, first_live[1])  # incl. the one at `last`
            if got is not None and self.session.recorder is not None:
                self.session.recorder.add_funding_history(*got)
                if got[1]:
                    self.session.event("missed funding settlements from the venue's history", instrument_id=got[0],
                                       settlements=[str(t) for t in sorted(got[1])])
        for rec in missing:
            if self.stopping:
                break
            if last < rec[1] < first_live[1]:
                await self.process(rec, live=trade, kind=CATCH_UP)
                self.caught_up += 1
                self.caught_up_traded += int(trade)
                self.session.catch_up_bars = getattr(self.session, "catch_up_bars", 0) + 1
                self.session.catch_up_traded = getattr(self.session, "catch_up_traded", 0) + int(trade)
        if missing:
            self.session.event("missed bars processed", count=len(missing), traded=trade)

    async def process(self, rec: list, *, live: bool, kind: str = LIVE) -> None:
        """One bar: venue step, strategies, orders, commit (module docstring). ``kind``: :data:`LIVE` or
        :data:`CATCH_UP` (stored with the bar in the feed; ``live`` = traded)."""
        client = self.client
        assert client is not None
        s = self.session
        bt = rec[0]
        iid = BarType.from_str(bt).instrument_id.value
        bar = _bar_dict(rec)
        inst = client.cache.instrument(InstrumentId.from_str(iid))
        sim = self.sim
        self.market_now = rec[1]
        sim.note_close(iid, rec[1], bar["c"])  # orders arriving from this close on meet it

        def order_obj(coid: str) -> Any:
            return client.cache.order(ClientOrderId(coid))

        # 1. venue step (its own transaction, never applied twice)
        if sim.steps.get(iid, -1) < rec[1]:
            prev_ts = sim.last_bar.get(iid, {}).get("ts", rec[1] - self.interval_ns)
            res = StepResult()
            # funding settled at a time in [previous close, this close) -- i.e. at the previous bar's close
            # -- comes first: the backtest settles it after that bar's strategies and before the fills at
            # this bar's open (the settlement at the last processed bar's close is outside the window)
            sim.settle_funding(res, iid, bar, self.funding(iid, prev_ts - 1, rec[1] - 1))
            prev_bar = sim.last_bar.get(iid)
            # the commands that arrived since the previous bar, in time order (market fills at this open,
            # marketable limits, the matching engine's iteration at each arrival; the strategies' reactions
            # to these fills arrive in turn); done here, not at that bar's commit, so an order sent on a
            # session's last bar stays open, as at the end of the backtest's data
            if prev_bar is not None:
                await self._between_bars(iid, bar, prev_bar, inst, order_obj, res)
            seen: set[str] = set()
            opened = sim.fills_at_open(iid, bar, inst, order_obj, seen)
            res.fills += opened.fills
            res.orders += opened.orders
            decisions = sim.liquidations(iid, bar, inst)
            if decisions:
                # the close is the position's own strategy's order (as in the backtest); it must reach
                # Nautilus's cache and this client before it can be filled
                wanted = [(d, s.liquidation_order(d)) for d in decisions]
                await self._await_orders([c for _, c in wanted if c is not None])
                for d, coid in wanted:
                    rec_o = sim.orders.get(coid) if coid else None
                    if rec_o is not None:
                        sim.fill_liquidation(res, d, rec_o, inst, order_obj(coid))
                        if coid in client.new_orders:
                            client.new_orders.remove(coid)
            sim.end_step(iid, bar)
            sim.write(res, step=(iid, rec[1]))
            filled = client.emit(res)
            await self._reacted(res, filled)
            s.record_funding(res.funding)
            # orders the strategies sent on these fills (protective stops, take-profits, exits) arrive
            # before this bar's close: this bar's prices apply to them too, as in the backtest
            for _ in range(4):
                await self._await_orders(sorted(self.awaiting))
                new = [c for c in client.new_orders if c in sim.orders and sim.orders[c]["ts_arrival"] < rec[1]]
                if not new:
                    break
                res2 = sim.marketable_on_arrival(iid, inst, order_obj, new, prev_bar)
                more = sim.fills_at_open(iid, bar, inst, order_obj, seen)
                res2.fills += more.fills
                done = {o["client_order_id"] for o in res2.orders + more.orders}
                res2.orders = [sim.orders[c] for c in new if c not in done] + res2.orders + more.orders
                for c in new:
                    client.new_orders.remove(c)
                sim.write(res2)
                if not res2.fills:
                    break
                await self._reacted(res2, client.emit(res2))
            self.market_now = rec[1]
        elif iid not in sim.last_bar or sim.last_bar[iid]["ts"] < rec[1]:
            sim.end_step(iid, bar)
        # 2. strategies (the bar first into Nautilus's cache where the session needs it: positions priced
        # at its close, as in the backtest)
        bar_obj = make_bar(rec)
        if hasattr(s, "publish_bar"):
            await s.publish_bar(bar_obj)
        self.phase += 1
        s.feed_strategies(bar_obj, trading=live)
        # 3. the orders they sent reach the venue; same_close fills
        await self._await_orders(sorted(self.awaiting))
        res = sim.same_close(iid, inst, order_obj, list(client.new_orders))
        # 4. commit
        filled_now = {o["client_order_id"] for o in res.orders}
        res.orders = [sim.orders[c] for c in client.new_orders if c in sim.orders and c not in filled_now] + res.orders
        states = {st.strategy_id.value: json.dumps(snapshot_strategy(st)) for st in s.strategies}
        book = sim.book

        lo = min(sim.last_bar[i]["ts"] for i in sim.last_bar) if sim.last_bar else 0
        self.arrivals = {t for t in self.arrivals if t > lo}

        def extra(p: Any) -> None:
            p.rpush(book.k("feed"), json.dumps([*rec[:7], 0 if live else 1, kind]))
            p.hset(book.k("meta"), "arrivals", json.dumps(sorted(self.arrivals)))
            if states:
                p.hset(book.k("strategies"), mapping=states)
            p.hset(book.k("meta"), mapping={"latency_draws": sim.latency_draws,
                                            "last_arrival": json.dumps(sim._last_arrival)})

        sim.write(res, extra=extra)
        client.new_orders.clear()
        if res.fills:
            filled = client.emit(res)
            await self._await_applied(filled, client.publish_account())
        self.last_ts[bt] = rec[1]
        self.processed += 1
        s.on_bar_processed(rec, live)

    async def _between_bars(self, iid: str, bar: dict, prev_bar: dict, inst: Any, order_obj: Callable[[str], Any],
                            step: StepResult) -> None:
        """Every command arrival between ``prev_bar``'s close and ``bar``'s, in time order, as Nautilus's
        simulated exchange (:meth:`SimVenue.at_arrival`): each batch's fills are written, emitted and
        awaited in Nautilus's cache, and the orders the strategies send on them join the arrivals. The
        funding of ``step`` (settled before) is written with the first batch."""
        sim, client = self.sim, self.client
        assert client is not None
        lo = max(prev_bar["ts"], sim.iterated.get(iid, prev_bar["ts"]))
        while not self.stopping:
            # (arrival times of stored orders too: a restart, or orders sent outside the strategies' path)
            known = self.arrivals | {int(r["ts_arrival"]) for r in sim.orders.values()
                                     if r["instrument_id"] == iid and r["status"] in _OPEN_STATUSES}
            due = sorted(t for t in known if lo < t < bar["ts"])
            if not due:
                break
            t = lo = due[0]
            res = sim.at_arrival(iid, t, bar, prev_bar, inst, order_obj)
            if step.funding:  # the settlement before (its position is the one before these fills)
                res.funding, res.funding_marks = step.funding + res.funding, step.funding_marks + res.funding_marks
                s_funding, step.funding, step.funding_marks = step.funding, [], []
                self.session.record_funding(s_funding)
            sim.write(res)
            self.phase += 1
            for rec in res.canceled:
                order = order_obj(rec["client_order_id"])
                if order is not None:
                    client.generate_order_canceled(order, VenueOrderId(rec["venue_order_id"]), t)
            if res.fills:
                await self._reacted(res, client.emit(res))
            if res.fills or res.canceled:
                await self._await_orders(sorted(self.awaiting))

    async def _reacted(self, res: StepResult, filled: list[str]) -> None:
        """Until Nautilus applied the fills of ``res``; orders the strategies send on them count as sent at
        the (last) fill's time."""
        self.phase += 1
        if res.fills:
            self.market_now = max(int(f["ts"]) for f in res.fills)
        await self._await_applied(filled, self.client.publish_account())

    async def _await_orders(self, coids: list[str], timeout: float = 10.0) -> None:
        """Until every order in ``coids`` reached the client (or was denied before reaching it)."""
        client = self.client
        t_end = time.monotonic() + timeout
        while True:
            left = [c for c in coids if c not in client.received]
            left = [c for c in left if not _denied(client.cache.order(ClientOrderId(c)))]
            if not left:
                break
            if time.monotonic() > t_end:
                log.warning("orders did not reach the paper venue within %.0f s: %s", timeout, left)
                break
            await asyncio.sleep(0.001)
        for c in coids:
            self.awaiting.discard(c)
            self.sent_at.pop(c, None)

    async def _await_applied(self, filled: list[str], acct_ts: int, timeout: float = 10.0) -> None:
        """Until Nautilus's cache shows the fills and the account state just published."""
        cache = self.client.cache
        aid = self.client.account_id
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            ok = all((o := cache.order(ClientOrderId(c))) is not None and o.status == OrderStatus.FILLED for c in filled)
            if ok:
                acct = cache.account(aid)
                if acct is not None and acct.last_event is not None and acct.last_event.ts_event >= acct_ts:
                    return
            await asyncio.sleep(0.001)
        log.warning("Nautilus did not apply the paper fills within %.0f s: %s", timeout, filled)


def _running(component: Any) -> bool:
    r = getattr(component, "is_running", True)
    return bool(r() if callable(r) else r)


def _bar_dict(rec: list) -> dict:
    return {"ts": int(rec[1]), "o": float(rec[2]), "h": float(rec[3]), "l": float(rec[4]), "c": float(rec[5]),
            "v": float(rec[6])}
