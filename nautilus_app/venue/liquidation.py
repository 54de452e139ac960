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
    OrderSide,
    PositionSide,
    Price,
    TimeInForce,
    Venue,
)

from nautilus_app.core.brackets import Bracket
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
        """The venue account's wallet balance (USDT); re-read only when positions changed.

        ``cache.account_for_venue`` copies the account's event history, so it is called only when
        the set of open positions, their sizes or their realized PnL (fees, funding) changed.
        """
        key = tuple((p.id.value, p.signed_qty, p.realized_pnl.as_double() if p.realized_pnl else 0.0)
                    for p in positions)
        if key != self._wb_key:
            account = self.cache.account_for_venue(Venue(self.venue_name))
            self._wb = account.balance_total(self._ccy).as_double()
            self._wb_key = key
        return self._wb

    # ---- per bar ---------------------------------------------------------------------------
    def on_bar(self, bar: Any) -> None:
        self.bars_seen += 1
        self._check(bar.bar_type.instrument_id, bar.ts_event, bar.close.as_double())

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
