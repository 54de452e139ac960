"""Liquidation at Binance's liquidation price, per position, isolated or cross margin.

Nautilus 2.0.0rc7's own liquidation is account-wide with one flat maintenance rate, never fires on
bar data and closes at market (NAUTILUS_NOTES §6), so the runner leaves it off and adds
:class:`LiquidationActor` to every MARGIN venue with ``liquidation = true``.

How it works (bars are stamped at their close; Nautilus's matching engine processes a bar before
any strategy or actor sees it, and in rc7 strategies receive a bar before actors, whatever the order
they were added in: observed, and relied on by tests/test_venue_e2e.py, whose liquidation case
enters on the bar before it is checked):

1. After every strategy has handled bar N of an instrument, the actor takes each open position in
   it and computes Binance's liquidation price ``LP`` (:func:`nautilus_app.venue.margin.liquidation_price`)
   from the state *after* bar N: entry price, size, the instrument's maintenance bracket, and
   - isolated: the position's margin ``qty x entry / leverage``;
   - cross: the account's wallet balance, plus the maintenance margin and unrealized PnL of every
     other open position of the venue, marked at their latest bar close.
2. It looks at the venue's next bar of the instrument (the simulator holds the data; the strategy
   never sees it). If that bar's adverse extreme (low for longs, high for shorts) reaches ``LP``,
   it submits, **on behalf of the position's own strategy**, a reduce-only ``STOP_MARKET`` for the
   whole position with trigger ``LP`` (rounded one tick towards the position's side) and tag
   ``LIQUIDATION``. Nautilus triggers it while matching that bar; the venue fill model fills it at
   exactly ``LP`` (:mod:`.fill_timing`), the fee model adds the clearance fee (:mod:`.fees`).
   If the bar's close is already beyond ``LP`` (cross: after another position's liquidation changed
   the balance), the position is closed at once with a reduce-only market order tagged
   ``LIQUIDATION``, filled at ``LP`` at that bar's close time.
3. So the close is a normal fill of the strategy's own order: the strategy receives the order
   events, ``on_order_filled`` and ``on_position_closed``; results count it as a liquidation.

The check of step 1-2 is not run on every bar: the wallet and every position change only at fills
(the venue fill model counts them: ``VenueFillModel.fill_calls``) and funding settlements (the
venue's funding rows, :attr:`LiquidationActor.event_ts`; mark prices change neither: the check marks
at bar closes), so after each check the actor scans
the bar arrays, vectorised (:meth:`LiquidationActor._schedule`), for the first bar on which the check
could act with the state as it is (isolated: a constant ``LP`` per position; cross: ``LP`` as a
function of the other positions' marks, on the shared bar timeline), capped at the next funding
row, and skips the bars before it unless a fill happened or a liquidation order is pending. The
scan repeats the check's float operations and compares with a small slack, so it never skips a bar
the check acts on: results are those of the check on every bar (``LiquidationActor.schedule =
False``; tests/test_liquidation_schedule.py, and ``verify`` runs both). The bars still reach the
actor (a Python call per bar, returning at once): an alert cannot stand in for the subscription,
because the check must run right after the strategies' handling of the bar, before later data at
the same time (other instruments' bars, funding rows), as it does today.

Equivalent to a resting reduce-only stop kept at ``LP`` and updated whenever margin, brackets or
(cross) other positions change, except that the order exists only for the one bar in which it
fires, so strategies never see an unexplained resting order. Simplifications (docs/simulation.md):
last price instead of mark price for the trigger, other cross positions held at their last close
during the bar, one position per strategy and instrument (several strategies on one instrument
are separate positions, not netted as in Binance's one-way mode), the whole position is closed
(Binance may liquidate in steps), no insurance-fund/ADL modelling. Cross: one position is liquidated
per timestamp (the one whose price is reached first); the account is re-checked on the next bar
with the new wallet balance, so a second position of an account that is already below maintenance
is closed one bar later at its own formula price (its remaining margin is forfeited through the
capped clearance fee, as Binance's trader would lose it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nautilus_trader.common import DataActor, DataActorConfig
from nautilus_trader.model import (
    ActorId,
    BarType,
    Currency,
    Money,
    OrderSide,
    PositionSide,
    Price,
    TimeInForce,
    Venue,
)

from core.brackets import Bracket
from nautilus_app.venue.fill_timing import LIQUIDATION_TAG, BarSeries
from nautilus_app.venue.margin import isolated_margin, liquidation_price, maintenance_margin


@dataclass
class LiquidationRecord:
    """One liquidation decided by the actor (prices USDT, quantity base units, times UTC ns)."""

    ts_decided: int
    ts_bar: int
    venue: str
    instrument_id: str
    strategy_id: str
    position_id: str
    client_order_id: str
    side: str  # LONG / SHORT (the position)
    quantity: float
    entry_price: float
    liquidation_price: float
    margin_mode: str
    wallet_balance: float  # isolated: the position margin


class LiquidationActor(DataActor):
    """Closes positions of one venue at Binance's liquidation price (module docstring).

    Args:
        venue: Venue name, e.g. ``"BINANCE_USDM"``.
        margin_mode: ``"cross"`` or ``"isolated"``.
        bar_types: One bar type per instrument to watch (the bars the venue matches on).
        series: Bar series per instrument id (the same data, for the next-bar look-up).
        brackets: Bracket table per instrument id.
        leverages: Leverage per instrument id.
        strategies: The run's strategy objects (orders are submitted through their owner).
        fee_model: The venue's :class:`~nautilus_app.venue.fees.VenueFeeModel` (clearance-fee caps).
        fill_model: The venue's :class:`~nautilus_app.venue.fill_timing.VenueFillModel` (prices of
            immediate liquidations).
        settlement: Settlement currency code (``"USDT"``).
        actor_id: Unique actor id.
    """

    #: False: run the per-bar check on every bar (the reference the schedule is tested against)
    schedule = True
    #: tests: also run the per-bar check on the bars the schedule skips and record in :attr:`missed`
    #: those it acts on (there must be none)
    verify = False

    def __new__(cls, *args: Any, **kwargs: Any) -> LiquidationActor:
        return super().__new__(cls)

    def __init__(self, *, venue: str, margin_mode: str, bar_types: list[str], series: dict[str, BarSeries],
                 brackets: dict[str, tuple[Bracket, ...]], leverages: dict[str, float], strategies: list[Any],
                 settlement: str = "USDT", actor_id: str = "LIQUIDATION-001", fee_model: Any = None,
                 fill_model: Any = None, scheduled: bool = False) -> None:
        super().__init__(DataActorConfig(actor_id=ActorId(actor_id)))
        self.venue_name = venue
        self.margin_mode = margin_mode
        self._bar_types = [BarType.from_str(b) for b in bar_types]
        self.series = series
        self.brackets = brackets
        self.leverages = leverages
        self._strategies = {s.strategy_id.value: s for s in strategies}
        self._ccy = Currency.from_str(settlement)
        self.records: list[LiquidationRecord] = []
        self.fee_model = fee_model  # VenueFeeModel: gets the clearance-fee cap of each liquidation order
        self.fill_model = fill_model  # VenueFillModel: gets the price of immediate (market) liquidations
        self._pending: list[Any] = []
        self._wb_key: Any = None
        self._last_cross_ts = -1
        self._wb = 0.0
        self._instruments: dict[str, Any] = {}
        self.bars_seen = 0
        #: scheduled mode (isolated margin, vectorised-signals strategies): no bar subscription; the
        #: strategies ask for the first bar that can liquidate their position (first_check_index) and
        #: run the same check there (check_bar)
        self.scheduled = scheduled
        self._close_nd: dict[str, Any] = {}
        #: bar-subscribed mode: times (UTC ns, sorted int64 array) of the venue's funding rows (set by the
        #: runner): a funding settlement changes the wallet
        self.event_ts: Any = None
        self._next_ts = 0  # bars closing before this cannot be acted on (unless a fill happened)
        self._fills_seen = -1  # fill_model.fill_calls at the last scan
        self.checks = 0  # per-bar checks actually run
        self.scans = 0
        self.missed: list[tuple[str, int]] = []  # verify mode: bars the schedule skipped yet the check acted on
        self._chunk = 64  # bars the next scan covers per instrument
        self._bracket_np: dict[str, tuple[Any, Any, Any]] = {}

    def on_start(self) -> None:
        for bt in self._bar_types:
            self._instruments[bt.instrument_id.value] = self.cache.instrument(bt.instrument_id)
            if not self.scheduled:
                self.subscribe_bars(bt)

    # ---- state ---------------------------------------------------------------------------
    def _mark(self, iid: str, t: int) -> float | None:
        s = self.series[iid]
        j = s.next_index(t) - 1
        return float(s.close[j]) if j >= 0 else None

    def _wallet_balance(self, positions: list[Any]) -> float:
        """The venue account's wallet balance (USDT); re-read only when positions changed (the set of open
        positions, their sizes or their realized PnL: fees, funding).

        Read as ``Portfolio.equity(venue)`` (balance total + unrealized PnL, O(1)) minus the open
        instruments' ``Portfolio.unrealized_pnl``, in exact decimals: the account's balance total to the
        bit (checked against it on every call of real cross-margin runs), without
        ``cache.account_for_venue``, which copies the account's whole event history on every call
        (a run with 6,922 orders spent 2.3 s of its 7 s there).
        """
        key = tuple((p.id.value, p.signed_qty, p.realized_pnl.as_double() if p.realized_pnl else 0.0)
                    for p in positions)
        if key != self._wb_key:
            venue = Venue(self.venue_name)
            portfolio = next(iter(self._strategies.values())).portfolio if self._strategies else None
            if portfolio is None:
                self._wb = self.cache.account_for_venue(venue).balance_total(self._ccy).as_double()
            else:
                equity = portfolio.equity(venue)[self._ccy].as_decimal()
                for iid in {p.instrument_id for p in positions}:
                    upnl = portfolio.unrealized_pnl(iid)
                    if upnl is not None:
                        equity -= upnl.as_decimal()
                self._wb = Money(equity, self._ccy).as_double()
            self._wb_key = key
        return self._wb

    # ---- per bar ---------------------------------------------------------------------------
    def on_bar(self, bar: Any) -> None:
        self.bars_seen += 1
        t = bar.ts_event
        fm = self.fill_model
        if fm is not None and self.schedule and t < self._next_ts and not self._pending and fm.fill_calls == self._fills_seen:
            # nothing changed since the last scan and no bar before _next_ts can reach a liquidation price
            if self.verify:
                n = len(self.records)
                self._check(bar.bar_type.instrument_id, t, bar.close.as_double())
                if len(self.records) != n:
                    self.missed.append((bar.bar_type.instrument_id.value, t))
            return
        self.checks += 1
        self._check(bar.bar_type.instrument_id, t, bar.close.as_double())
        if fm is not None and self.schedule and self.event_ts is not None:  # without event_ts: check every bar
            self._schedule(t)

    def next_check_ts(self, after: int, next_bar_after: Any) -> int | None:
        """Close time (UTC ns) of the first bar after ``after`` on which :meth:`on_bar` would run the check
        (the event-by-event feed of vectorised-signals runs, nautilus_app/signal_feed.py, feeds it):
        the next bar after a fill, while a liquidation order is pending, or without a schedule; else the
        first bar at or after the scheduled time. ``next_bar_after(t)`` gives the first bar close ``> t``."""
        fm = self.fill_model
        if (fm is None or not self.schedule or self.event_ts is None or self._pending
                or fm.fill_calls != self._fills_seen):
            return next_bar_after(after)
        return next_bar_after(max(self._next_ts, after + 1) - 1)

    # ---- the schedule (bar-subscribed mode) -------------------------------------------------
    def _schedule(self, t: int) -> None:
        """Set :attr:`_next_ts`: the first close time ``>= t`` at which the per-bar check could act with
        the state as it is now (positions, wallet), capped at the venue's next funding row ``>= t``.

        Between fills (seen through the fill model's call counter) and funding settlements the wallet
        and every position are constant, so each position's liquidation price is a function of the
        other positions' marks only (cross) or a constant (isolated): a vectorised scan of the bar
        arrays finds the first bar whose close, or whose next bar's low (long) / high (short), reaches
        it. The scan computes the liquidation price with the same float operations, in the same order,
        as :meth:`_check` and compares with a small slack, so it never skips a bar the check acts on;
        bars at ``t`` itself are always included (other instruments' bars at ``t`` may come later).
        The scan covers a window of bars that starts small after a fill (the next fill usually comes
        soon) and grows 4x at each rescan without one; the check runs again at the window's end."""
        import numpy as np

        self.scans += 1
        fills = self.fill_model.fill_calls
        self._chunk = 64 if fills != self._fills_seen else min(self._chunk * 4, 1 << 20)
        self._fills_seen = fills
        horizon = np.iinfo(np.int64).max
        ev = self.event_ts
        if ev is not None and len(ev):
            j = int(np.searchsorted(ev, t, side="left"))
            if j < len(ev):
                horizon = int(ev[j])
        venue_positions = self.cache.positions_open(venue=Venue(self.venue_name))
        first = horizon
        by_iid: dict[str, list[Any]] = {}
        for p in venue_positions:
            if p.side != PositionSide.FLAT:
                by_iid.setdefault(p.instrument_id.value, []).append(p)
        if not by_iid:
            self._next_ts = first
            return
        wb_cross = self._wallet_balance(venue_positions) if self.margin_mode == "cross" else 0.0
        for iid, positions in by_iid.items():
            s = self.series.get(iid)
            if s is None or len(s) < 2:
                continue
            lo = int(np.searchsorted(s.ts, t, side="left"))
            hi = min(len(s) - 2, int(np.searchsorted(s.ts, first, side="right")) - 1)
            if lo > hi:
                continue
            end = min(hi, lo + self._chunk - 1)
            nd = self._close_nd.get(iid)
            if nd is None:
                nd = self._close_nd[iid] = _nautilus_doubles(s.close, self._instruments[iid].price_precision)
            n = self._first_hit(iid, s, nd, positions, venue_positions, wb_cross, lo, end)
            if n is not None:
                first = min(first, int(s.ts[n]))
            elif end < hi:  # not scanned beyond ``end``: check (and rescan) at the next bar
                first = min(first, int(s.ts[end + 1]))
        self._next_ts = first

    def _bracket_arrays(self, iid: str) -> tuple[Any, Any, Any]:
        arrays = self._bracket_np.get(iid)
        if arrays is None:
            import numpy as np

            table = self.brackets[iid]
            arrays = self._bracket_np[iid] = (np.array([b.cap for b in table]), np.array([b.mmr for b in table]),
                                              np.array([b.cum for b in table]))
        return arrays

    def _first_hit(self, iid: str, s: BarSeries, nd: Any, positions: list[Any], venue_positions: list[Any],
                   wb_cross: float, lo: int, end: int) -> int | None:
        """First index in ``[lo, end]`` of ``iid``'s bars at which :meth:`_check` could act on one of
        ``positions`` (None: none)."""
        import numpy as np

        cross = self.margin_mode == "cross"
        ts = s.ts[lo:end + 1]
        close_now = nd[lo:end + 1]
        low_next = s.low[lo + 1:end + 2]
        high_next = s.high[lo + 1:end + 2]
        brackets = self.brackets[iid]
        hit = np.zeros(len(ts), dtype=bool)
        marks: dict[str, tuple[Any, Any]] = {}  # instrument -> (mark at each bar, has a mark)
        zeros = np.zeros(len(ts))
        for p in positions:
            side = 1 if p.side == PositionSide.LONG else -1
            qty = p.quantity.as_double()
            entry = p.avg_px_open
            other_mm = other_upnl = zeros
            if cross:
                wb = wb_cross
                for o in venue_positions:
                    if o.id == p.id:
                        continue
                    o_iid = o.instrument_id.value
                    if o_iid not in marks:
                        os_ = self.series[o_iid]
                        jm = np.searchsorted(os_.ts, ts, side="right") - 1
                        marks[o_iid] = (os_.close[np.maximum(jm, 0)], jm >= 0)
                    mark, ok = marks[o_iid]
                    o_qty = o.signed_qty
                    notional = np.abs(o_qty * mark)
                    caps, mmrs, cums = self._bracket_arrays(o_iid)
                    bi = np.minimum(np.searchsorted(caps, notional, side="right"), len(caps) - 1)
                    mm = notional * mmrs[bi] - cums[bi]
                    other_mm = np.where(ok, other_mm + mm, other_mm)
                    other_upnl = np.where(ok, other_upnl + (mark - o.avg_px_open) * o_qty, other_upnl)
            else:
                wb = isolated_margin(qty, entry, self.leverages[iid])
            lp = _liquidation_prices(side, qty, entry, wb, brackets, other_mm, other_upnl)
            slack = 1e-9 * np.abs(lp) + 1e-9
            if side == 1:
                h = (lp > 0.0) & ((close_now <= lp + slack) | (low_next <= lp + slack))
            else:
                h = (lp > 0.0) & ((close_now >= lp - slack) | (high_next >= lp - slack))
            hit |= h
        found = np.flatnonzero(hit)
        return lo + int(found[0]) if len(found) else None

    def _check(self, iid: Any, t: int, close: float) -> None:
        """The check after the strategies handled the bar of ``iid`` closing at ``t`` (``close`` as
        ``Price.as_double()``)."""
        for order in self._pending:  # a liquidation stop that did not fire (should not happen)
            if order.is_open:
                self._strategies[order.strategy_id.value].cancel_order(order)
        self._pending = [o for o in self._pending if o.is_open]
        s = self.series.get(iid.value)
        if s is None:
            return
        positions = self.cache.positions_open(instrument_id=iid)
        if not positions:
            return
        k = s.next_index(t)
        if k >= len(s):
            return
        cross = self.margin_mode == "cross"
        if cross and self._last_cross_ts == t:
            return  # one cross liquidation per timestamp; the account is re-evaluated on the next bar
        venue_positions = self.cache.positions_open(venue=Venue(self.venue_name)) if cross else []
        hits = []
        for p in positions:
            if p.side == PositionSide.FLAT or any(o.instrument_id == iid and o.strategy_id == p.strategy_id
                                                  for o in self._pending):
                continue
            side = 1 if p.side == PositionSide.LONG else -1
            qty = p.quantity.as_double()
            entry = p.avg_px_open
            brackets = self.brackets[iid.value]
            if self.margin_mode == "isolated":
                wb = isolated_margin(qty, entry, self.leverages[iid.value])
                other_mm = other_upnl = 0.0
            else:
                wb = self._wallet_balance(venue_positions)
                other_mm = other_upnl = 0.0
                for o in venue_positions:
                    if o.id == p.id:
                        continue
                    mark = self._mark(o.instrument_id.value, t)
                    if mark is None:
                        continue
                    o_qty = o.signed_qty
                    other_mm += maintenance_margin(self.brackets[o.instrument_id.value], o_qty * mark)
                    other_upnl += (mark - o.avg_px_open) * o_qty
            lp = liquidation_price(side=side, qty=qty, entry_price=entry, wallet_balance=wb, brackets=brackets,
                                   other_maintenance=other_mm, other_unrealized_pnl=other_upnl)
            if lp <= 0.0:
                continue
            now = close
            if (now <= lp) if side == 1 else (now >= lp):
                # already beyond LP at this close (cross: another liquidation moved the balance):
                # close now, at LP, with a reduce-only market order
                left = wb + other_upnl + (lp - entry) * side * qty
                hits.append((lp * side, p, side, qty, entry, lp, wb, left, True))
                continue
            hit = s.low[k] <= lp if side == 1 else s.high[k] >= lp
            if hit:
                # margin left at LP: isolated margin + PnL, or (cross) account equity with the others marked
                left = wb + other_upnl + (lp - entry) * side * qty
                hits.append((lp * side, p, side, qty, entry, lp, wb, left, False))
        if cross and hits:
            # the cross account breaches once: close the position whose LP the price reaches first
            # (highest LP of a long, lowest of a short); the others are re-checked with the new balance
            hits = [max(hits, key=lambda h: h[0])]
            self._last_cross_ts = t
        for _, p, side, qty, entry, lp, wb, left, now in hits:
            self._liquidate(p, side, qty, entry, lp, wb, t, t if now else int(s.ts[k]), left, now)

    def _liquidate(self, p: Any, side: int, qty: float, entry: float, lp: float, wb: float, t: int, ts_bar: int,
                   margin_left: float, immediate: bool = False) -> None:
        inst = self._instruments[p.instrument_id.value]
        tick = inst.price_increment.as_double()
        # trigger on the tick grid, rounded towards the position (a long is liquidated at or above LP)
        n = math.ceil(lp / tick - 1e-9) if side == 1 else math.floor(lp / tick + 1e-9)
        trigger = Price(max(n, 1) * tick, inst.price_precision)
        strategy = self._strategies.get(p.strategy_id.value)
        if strategy is None:
            self.log.error(f"liquidation of {p.id}: strategy {p.strategy_id} is not one of the run's strategies")
            return
        close_side = OrderSide.SELL if side == 1 else OrderSide.BUY
        if immediate:
            order = strategy.order_factory.market(p.instrument_id, close_side, p.quantity, time_in_force=TimeInForce.GTC,
                                                  reduce_only=True, tags=[LIQUIDATION_TAG])
            if self.fill_model is not None:
                self.fill_model.liquidation_prices[order.client_order_id.value] = trigger.as_double()
        else:
            order = strategy.order_factory.stop_market(
                p.instrument_id, close_side, p.quantity, trigger,
                time_in_force=TimeInForce.GTC, reduce_only=True, tags=[LIQUIDATION_TAG],
            )
        if self.fee_model is not None and hasattr(self.fee_model, "liquidation_fee_caps"):
            left = margin_left + (trigger.as_double() - lp) * side * qty
            self.fee_model.liquidation_fee_caps[order.client_order_id.value] = max(0.0, left)
        strategy.submit_order(order, position_id=p.id)
        self._pending.append(order)
        self.records.append(LiquidationRecord(
            t, ts_bar, self.venue_name, p.instrument_id.value, p.strategy_id.value, p.id.value,
            order.client_order_id.value, "LONG" if side == 1 else "SHORT", qty, entry, trigger.as_double(),
            self.margin_mode, wb))

    # ---- scheduled mode (isolated margin) ----------------------------------------------------
    def _isolated_lp(self, p: Any) -> tuple[int, float]:
        side = 1 if p.side == PositionSide.LONG else -1
        iid = p.instrument_id.value
        qty, entry = p.quantity.as_double(), p.avg_px_open
        wb = isolated_margin(qty, entry, self.leverages[iid])
        return side, liquidation_price(side=side, qty=qty, entry_price=entry, wallet_balance=wb,
                                       brackets=self.brackets[iid], other_maintenance=0.0, other_unrealized_pnl=0.0)

    def first_check_index(self, strategy: Any, start: int, stop: int | None = None) -> int | None:
        """First bar index ``N >= start`` (``<= stop``) of the strategy's instrument on which the per-bar
        check would act for the strategy's open position: its close already beyond the isolated
        liquidation price, or the next bar's low (long) / high (short) reaching it. A vectorised scan of
        the bar arrays; the price depends only on the position (size, entry, leverage, brackets), so it
        is rescanned after every fill. None: no position, or not reached (by ``stop``)."""
        import numpy as np

        from strategies.signals import nautilus_doubles

        if self.margin_mode != "isolated":
            raise ValueError("scheduled liquidation checks are for isolated margin only")
        iid = strategy.instrument_id
        s = self.series.get(iid.value)
        if s is None:
            return None
        positions = [p for p in self.cache.positions_open(instrument_id=iid, strategy_id=strategy.strategy_id)
                     if p.side != PositionSide.FLAT]
        if not positions:
            return None
        nd = self._close_nd.get(iid.value)
        if nd is None:
            nd = self._close_nd[iid.value] = nautilus_doubles(s.close, self._instruments[iid.value].price_precision)
        last = len(s) - 2  # the check needs a next bar
        hi = last if stop is None else min(stop, last)
        best = None
        for p in positions:
            side, lp = self._isolated_lp(p)
            if lp <= 0.0 or start > hi:
                continue
            lo, chunk = start, 4096
            while lo <= hi:
                end = min(hi, lo + chunk - 1)
                if side == 1:
                    hit = (nd[lo:end + 1] <= lp) | (s.low[lo + 1:end + 2] <= lp)
                else:
                    hit = (nd[lo:end + 1] >= lp) | (s.high[lo + 1:end + 2] >= lp)
                found = np.flatnonzero(hit)
                if len(found):
                    n = lo + int(found[0])
                    best = n if best is None else min(best, n)
                    break
                lo, chunk = end + 1, chunk * 4
        return best

    def check_bar(self, strategy: Any, i: int) -> None:
        """Run the per-bar check for bar ``i`` of the strategy's instrument (after the strategy acted)."""
        iid = strategy.instrument_id
        s = self.series[iid.value]
        nd = self._close_nd.get(iid.value)
        close = float(nd[i]) if nd is not None else float(s.close[i])
        self._check(iid, int(s.ts[i]), close)


def _nautilus_doubles(values: Any, precision: int) -> Any:
    from strategies.signals import nautilus_doubles

    return nautilus_doubles(values, precision)


def _liquidation_prices(side: int, qty: float, entry: float, wallet_balance: float, brackets: tuple[Bracket, ...],
                        other_maintenance: Any, other_unrealized_pnl: Any) -> Any:
    """:func:`~nautilus_app.venue.margin.liquidation_price` for arrays of ``other_maintenance`` /
    ``other_unrealized_pnl`` (same float operations in the same order, element by element)."""
    import numpy as np

    from core.brackets import bracket_for_notional

    out = np.full(len(other_maintenance), np.nan)
    todo = np.ones(len(out), dtype=bool)
    default = brackets.index(bracket_for_notional(brackets, qty * entry))
    base = wallet_balance - other_maintenance + other_unrealized_pnl
    sqe = side * qty * entry
    for k, b in enumerate(brackets):
        denom = qty * b.mmr - side * qty
        lp = (base + b.cum - sqe) / denom
        lp[lp <= 0] = 0.0
        notional = lp * qty
        ok = todo & (b.floor <= notional) & (notional < b.cap)
        out[ok] = lp[ok]
        todo &= ~ok
        if not todo.any():
            return out
        if k == default:
            fallback = lp
    # no bracket is self-consistent (only at the table's edge): the bracket of the entry notional
    out[todo] = fallback[todo]
    return out
