"""The paper session's recorder actor: bars, mark prices and funding of the live feed, stale-feed watch
(issue 22: split from paper.py).

Sandbox / Ethereal execution: it records every bar (market close time, wall arrival time, close) in
the session's Redis state, settles funding from the live ``markPrice`` stream into the session's
ledger (:meth:`PaperRecorder._settle_funding`) and writes status and results periodically.
Simulated execution: it hands every live bar to the session's bar sequencer
(:mod:`nautilus_app.paper_exec`) and keeps the announced funding and mark history the sequencer's
venue step settles with (:meth:`PaperRecorder.funding_for`).
Both: a timer marks the feed stale after ``stale_after_seconds`` without a bar (new orders are held,
:class:`nautilus_app.paper_hooks.StaleGuard`) and the next bar clears it.

``session`` arguments are the :class:`nautilus_app.paper.PaperSession` (typed ``Any``: that module
imports this one, and the modules of a package import one way, no cycle).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from decimal import Decimal
from typing import Any

import pandas as pd
from nautilus_trader.common import DataActor, DataActorConfig
from nautilus_trader.model import ActorId, BarType, InstrumentId

from nautilus_app.paper_events import event as _event


class PaperRecorder(DataActor):
    """Records the session (bars, funding, status, results) and watches the feed.

    Args:
        session: The owning :class:`PaperSession` (plan, state, results folder, stop handle).
    """

    def __new__(cls, *args: object, **kwargs: object) -> PaperRecorder:
        return super().__new__(cls)

    def __init__(self, session: Any) -> None:  # a nautilus_app.paper.PaperSession
        super().__init__(DataActorConfig(actor_id=ActorId("PAPER_RECORDER-001")))
        self.session = session
        self.plan = session.plan
        self.bars_seen = 0
        self.last_bar_wall: float | None = None
        self.last_market_ns: int | None = None
        self.last_close: dict[str, float] = {}
        self.next_funding: dict[str, tuple[int, Decimal]] = {}  # live iid -> (funding ns, rate)
        self.mark: dict[str, float] = {}
        self.mark_history: dict[str, list[tuple[int, float]]] = {}
        self.funding_schedule: dict[str, dict[int, Decimal]] = {}
        self.trade_bars: dict[str, Any] = {}  # Ethereal: live iid -> TradeBarBuilder (bars on the venue clock)
        self.pending_marks: list[Any] = []  # Ethereal: marks not yet handed to Nautilus (publish_bar)
        self.venue_ns = 0  # latest venue timestamp seen (Ethereal's clock)
        self._last_results = 0.0
        self._started_wall = time.monotonic()

    # -- lifecycle
    def on_start(self) -> None:
        ethereal_sim = self.plan.product == "ethereal" and self.session.sequencer is not None
        for bt in self.plan.bar_map.values():
            if ethereal_sim:  # bars from the trade stream on the venue clock (adapters/ethereal/bars.py)
                from adapters.ethereal.bars import TradeBarBuilder

                iid = BarType.from_str(bt).instrument_id
                inst = self.cache.instrument(iid)
                # for the history reads, which run in a worker thread (never touch this actor there)
                self.session.eth_precisions = {**getattr(self.session, "eth_precisions", {}),
                                               iid.value: (inst.price_precision, inst.size_precision)}
                self.trade_bars[iid.value] = TradeBarBuilder(bt, self.plan.interval_ns, inst.price_precision,
                                                             inst.size_precision)
                # trades and marks do not go straight into Nautilus's cache: the sequencer hands the cache
                # what the backtest's has at each bar (publish_bar)
                self.session.data_factory.last_client.trade_sink = self.on_trade
                self.session.data_factory.last_client.mark_sink = self.on_venue_mark
                self.subscribe_trades(iid)
                continue
            self.subscribe_bars(BarType.from_str(bt))
        for iid in self.plan.perps:
            live = InstrumentId.from_str(self.plan.id_map[iid])
            self.subscribe_mark_prices(live)
            self.subscribe_funding_rates(live)
        if self.plan.product == "ethereal" and not ethereal_sim:  # the quote-matching paper client
            for iid in self.plan.id_map.values():
                self.subscribe_quotes(InstrumentId.from_str(iid))
        period = max(self.plan.stale_after_s / 4, 0.05)
        self.clock.set_timer("paper-stale-check", dt.timedelta(seconds=period), callback=self._check_stale)
        self.last_bar_wall = time.monotonic()
        self.session.write_status(self, reason="start")

    def on_stop(self) -> None:
        self.session.write_status(self, reason="stop")

    # -- data
    def on_bar(self, bar: Any) -> None:
        if self.session.sequencer is not None:
            self._on_bar_simulated(bar)
            return
        now = time.monotonic()
        interval = self.plan.interval_ns
        market_ns = -(-bar.ts_event // interval) * interval  # Binance stamps close-1 ms: round up to the close
        live_iid = str(bar.bar_type.instrument_id)
        close = float(bar.close)
        self.last_close[live_iid] = close
        # wall arrival time = the data client's ts_init (set before any handler runs, so fills of
        # orders submitted on this bar are always later than it)
        self.session.state.add_bar(market_ns, int(bar.ts_init), self.plan.reverse_ids.get(live_iid, live_iid), close)
        if self.session.guard.stale:
            self.session.guard.stale = False
            _event(logging.WARNING, "market data feed recovered: orders allowed again",
                   silent_seconds=round(now - (self.last_bar_wall or now), 3), bar_ts=str(pd.Timestamp(market_ns, tz="UTC")))
        self.last_bar_wall = now
        self.last_market_ns = market_ns
        self.bars_seen += 1
        self._settle_funding(live_iid, market_ns)
        if self.bars_seen % self.plan.settings.status_every_bars == 0:
            self.session.write_status(self, reason="bar")
        if now - self._last_results >= self.plan.settings.results_every_seconds:
            self._last_results = now
            self.session.write_results_safe()
        self.session.on_bar_counted(self.bars_seen)

    def _on_bar_simulated(self, bar: Any) -> None:
        now = time.monotonic()
        if self.session.guard.stale:
            self.session.guard.stale = False
            _event(logging.WARNING, "market data feed recovered: orders allowed again",
                   silent_seconds=round(now - (self.last_bar_wall or now), 3))
        self.last_bar_wall = now
        self.bars_seen += 1
        self.session.sequencer.on_live_bar(str(bar.bar_type), bar)

    def on_trade(self, tick: Any) -> None:
        self.venue_ns = self.session.venue_ns = max(self.venue_ns, int(tick.ts_event))
        builder = self.trade_bars.get(tick.instrument_id.value)
        if builder is not None:
            for bar in builder.on_trade(int(tick.ts_event), tick.price, tick.size):
                self._on_bar_simulated(bar)

    def on_venue_mark(self, mark: Any) -> None:
        """Ethereal (simulated execution): a mark from the data client, before Nautilus sees it."""
        self.venue_ns = self.session.venue_ns = max(self.venue_ns, int(mark.ts_event))
        self.pending_marks.append(mark)
        self._record_mark(mark)
        builder = self.trade_bars.get(str(mark.instrument_id))
        if builder is not None:
            for bar in builder.on_venue_time(int(mark.ts_event)):
                self._on_bar_simulated(bar)

    def on_mark_price(self, mark: Any) -> None:
        if self.trade_bars:  # Ethereal: recorded by on_venue_mark already (this is its later hand-over)
            return
        self._record_mark(mark)

    def _record_mark(self, mark: Any) -> None:
        iid = str(mark.instrument_id)
        self.mark[iid] = float(mark.value)
        self.mark_history.setdefault(iid, []).append((int(mark.ts_event), float(mark.value)))
        del self.mark_history[iid][:-2000]

    def add_funding_history(self, iid: str, rates: dict[int, Decimal], marks: list[tuple[int, float]]) -> None:
        """Settlements and marks of ``iid`` from the venue's history (bars caught up after a restart)."""
        sched = self.funding_schedule.setdefault(iid, {})
        for t, rate in rates.items():
            sched.setdefault(t, rate)
        hist = self.mark_history.setdefault(iid, [])
        hist.extend(m for m in marks if m not in hist)
        hist.sort()
        if self.trade_bars:  # and into Nautilus's cache bar by bar (publish_bar), as the live marks
            from nautilus_trader.model import MarkPriceUpdate, Price

            known = {int(m.ts_event) for m in self.pending_marks}
            self.pending_marks += [MarkPriceUpdate(InstrumentId.from_str(iid), Price.from_str(repr(px)), t, t)
                                   for t, px in marks if t not in known]
            self.pending_marks.sort(key=lambda m: int(m.ts_event))

    def on_funding_rate(self, update: Any) -> None:
        nxt = getattr(update, "next_funding_ns", None)
        if nxt:
            self.next_funding[str(update.instrument_id)] = (int(nxt), Decimal(str(update.rate)))
            self.funding_schedule.setdefault(str(update.instrument_id), {})[int(nxt)] = Decimal(str(update.rate))

    def funding_for(self, iid: str, prev_ns: int, close_ns: int) -> tuple[int, Decimal, float] | None:
        """The announced settlement in ``(prev_ns, close_ns]`` of ``iid``: (time, rate, live mark at that time)."""
        sched = self.funding_schedule.get(iid, {})
        due = [f for f in sched if prev_ns < f <= close_ns]
        if not due:
            return None
        f_ns = min(due)
        marks = [v for t, v in self.mark_history.get(iid, []) if t <= f_ns]
        mark = marks[-1] if marks else self.session.sequencer.sim.last_bar.get(iid, {}).get("c")
        if mark is None:
            return None
        return f_ns, sched[f_ns], float(mark)

    def _settle_funding(self, live_iid: str, market_ns: int) -> None:
        """Settle a funding time the market clock has reached: ``-net qty x mark x rate`` (USDT)."""
        pending = self.next_funding.get(live_iid)
        if pending is None or market_ns < pending[0]:
            return
        funding_ns, rate = pending
        del self.next_funding[live_iid]
        iid = InstrumentId.from_str(live_iid)
        qty = 0.0
        pos_id = None
        for p in self.cache.positions_open(instrument_id=iid):
            qty += float(p.signed_qty)
            pos_id = str(p.id)
        mark = self.mark.get(live_iid, self.last_close.get(live_iid))
        if qty == 0.0 or mark is None:
            return
        amount = -qty * mark * float(rate)
        row = {"ts": funding_ns, "instrument_id": self.plan.reverse_ids.get(live_iid, live_iid),
               "position_id": pos_id, "amount": amount, "rate": str(rate), "mark": mark, "qty": qty}
        if self.session.state.add_funding(live_iid, funding_ns, row):
            _event(logging.INFO, "funding settled", **{**row, "ts": None, "funding_ts": str(pd.Timestamp(funding_ns, tz="UTC"))})

    # -- stale feed
    def _check_stale(self, event: Any) -> None:
        if self.last_bar_wall is None or self.session.guard.stale:
            return
        silent = time.monotonic() - self.last_bar_wall
        if silent > self.plan.stale_after_s:
            self.session.guard.stale = True
            _event(logging.WARNING, "market data feed is stale: holding new orders",
                   silent_seconds=round(silent, 3), stale_after_seconds=self.plan.stale_after_s,
                   last_bar_ts=None if self.last_market_ns is None else str(pd.Timestamp(self.last_market_ns, tz="UTC")))
            self.session.write_status(self, reason="stale")
