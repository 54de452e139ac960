"""Per-strategy risk component: sizing, pre-trade limits and protective orders (docs/risk.md).

``strategies.base.BarStrategy`` creates one :class:`RiskManager` when the strategy's params carry a
``risk`` table and calls it from four places only:

- ``on_bar`` -> :meth:`RiskManager.on_bar` (equity/drawdown/daily state when such a limit is set,
  trailing-stop updates and the time stop while a position is open);
- ``enter`` -> :meth:`RiskManager.entry_quantity` (sizing method, then limits; a refused or
  reduced entry is recorded in :attr:`RiskManager.records` with its reason);
- ``on_order_filled`` -> :meth:`RiskManager.on_fill` (after an entry fill: a reduce-only STOP_MARKET
  for the stop and a reduce-only LIMIT for the take-profit, for the whole position; after a
  protective fill: the sibling is cancelled, i.e. one-cancels-other by hand);
- ``on_position_closed`` -> :meth:`RiskManager.on_position_closed` (trade return for Kelly, cancel
  what is left).

Protective orders are ordinary Nautilus orders sent with ``submit_order``, so they go through the
venue's fill model (stop-market: the trigger, or the bar's open on a gap, plus slippage; taker fee),
the latency model when one is configured, and appear in ``orders.parquet``/``fills.parquet`` with
the tags ``RISK_STOP`` / ``RISK_TP``. Trailing stops are the same STOP_MARKET order whose trigger is
moved with ``modify_order`` at bar closes (when a bar closes beyond the updated trigger, i.e. it
retraced more than the trail after its extreme, the position is closed by a market order tagged
``TRAILING_STOP`` at the next open instead: a venue rejects a stop already in the market) (not Nautilus's TRAILING_STOP_MARKET, which our venue fill
model does not price: it would fill without slippage at a price Nautilus derives from its synthetic
intrabar path).

Latency: protective orders are *submitted* through the strategy's ``submit_order`` (delayed by a
configured latency model like every order), but their cancels and trailing modifications call
Nautilus's ``Strategy.cancel_order`` / ``modify_order`` directly (by client order id), past the
strategy's order gates (:mod:`strategies.hooks`), i.e. they are not delayed by the latency gate
(``nautilus_app/venue/latency.py``).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from nautilus_trader.indicators import AverageTrueRange
from nautilus_trader.model import OrderSide, OrderType, PositionSide, Price, Quantity, TimeInForce
from nautilus_trader.trading import Strategy

from strategies.risk import borrowing as borrowing_mod
from strategies.risk import limits as limits_mod
from strategies.risk import stops as stops_mod
from strategies.risk.config import RiskConfig
from strategies.risk.sizing import quantity_from_notional, target_notional

STOP_TAG = "RISK_STOP"
TRAIL_TAG = "RISK_TRAIL"  # the protective stop when its initial level is the trailing one (the tightest)
TP_TAG = "RISK_TP"
TRAIL_EXIT_TAG = "TRAILING_STOP"  # market exit when a bar closes beyond the updated trailing trigger
BORROW_COLUMNS = ["ts", "strategy_id", "instrument_id", "signed_qty", "price", "equity", "borrowed_usdt",
                  "hourly_rate", "hours", "interest_usdt"]
RECORD_COLUMNS = ["ts", "strategy_id", "instrument_id", "side", "action", "reason", "detail",
                  "requested_qty", "final_qty"]


class RiskManager:
    """Risk state of one strategy (see the module docstring). ``records`` rows follow :data:`RECORD_COLUMNS`.

    ``action``: ``refused`` (no order sent), ``reduced`` (order sent with a smaller quantity), or a
    state event: ``pause_start``, ``pause_end``, ``half_size_start``, ``half_size_end``,
    ``daily_limit_hit``.
    """

    def __init__(self, cfg: RiskConfig) -> None:
        self.cfg = cfg
        period = cfg.needs_atr()
        self.atr = AverageTrueRange(period) if period else None
        lim = cfg.limits
        self.track_equity = lim.drawdown_pause is not None or lim.drawdown_half_size is not None \
            or lim.daily_loss_limit is not None
        self.dd = limits_mod.DrawdownState()
        self.records: list[tuple] = []
        self.trade_returns: deque[float] = deque(maxlen=cfg.sizing.kelly_window)
        self.entry_ids: set[str] = set()
        self.protective: dict[str, Any] = {}  # client order id -> order (open protective orders)
        self.stop_order: Any = None
        self.stop_trigger: float | None = None
        self.trailed: set[str] = set()  # stop orders a trailing update moved (their fill: exit reason trailing)
        self.long = True
        self.anchor = 0.0
        self.has_stops = any(v is not None for v in (cfg.stops.stop_loss_pct, cfg.stops.stop_loss_atr,
                                                        cfg.stops.take_profit_pct, cfg.stops.trailing_pct,
                                                        cfg.stops.trailing_atr))
        self.trailing = cfg.stops.trailing_pct is not None or cfg.stops.trailing_atr is not None
        self.last_equity: float | None = None
        bcfg = cfg.borrowing
        self.borrowing = bcfg.enabled()
        self.borrow_records: list[tuple] = []
        self.borrow_accrued = 0.0  # USDT, deducted from the equity sizing/limits use
        self._last_hour = -1
        self._borrow_on = False  # set in start()
        self._rate_short = bcfg.hourly_rate if bcfg.hourly_rate_short is None else bcfg.hourly_rate_short

    def records_bytes(self) -> bytes:
        """:attr:`records` as JSON (a list of objects with :data:`RECORD_COLUMNS`), UTF-8."""
        import json

        return json.dumps([dict(zip(RECORD_COLUMNS, r, strict=True)) for r in self.records]).encode()

    def borrow_bytes(self) -> bytes:
        """:attr:`borrow_records` as JSON (objects with :data:`BORROW_COLUMNS`), UTF-8."""
        import json

        return json.dumps([dict(zip(BORROW_COLUMNS, r, strict=True)) for r in self.borrow_records]).encode()

    def trailed_bytes(self) -> bytes:
        """Client order ids of the stop orders moved by a trailing update, as a JSON list (UTF-8)."""
        import json

        return json.dumps(sorted(self.trailed)).encode()

    def start(self, s: Any) -> None:
        """Called from the strategy's ``on_start`` once the instrument and account type are known."""
        self._borrow_on = self.borrowing_applies(s)
        if self.borrowing and not self._borrow_on:
            s.log.warning("risk.borrowing ignored: CASH account, or a perpetual without include_perpetuals")

    def borrowing_applies(self, s: Any) -> bool:
        """Borrowing is charged for this strategy: enabled, MARGIN account, spot (or perps if included)."""
        from nautilus_trader.model import CurrencyPair

        if not self.borrowing or s.is_cash:
            return False
        return isinstance(s.instrument, CurrencyPair) or self.cfg.borrowing.include_perpetuals

    def _accrue(self, s: Any, bar: Any) -> None:
        hour = bar.ts_event // borrowing_mod.HOUR_NS
        last, self._last_hour = self._last_hour, hour
        if last < 0 or hour == last:
            return
        q = float(s.net_quantity())
        if q == 0:
            return
        price = bar.close.as_double()
        eq = self._equity(s, bar.close)
        b, rate, interest = borrowing_mod.hourly_interest(q, price, eq, self.cfg.borrowing.hourly_rate,
                                                          self._rate_short, hour - last)
        if interest > 0:
            self.borrow_accrued += interest
            self.borrow_records.append((bar.ts_event, s.strategy_id.value, s.instrument_id.value, q, price, eq, b,
                                        rate, hour - last, interest))

    # ---- helpers ---------------------------------------------------------------------------
    def atr_value(self) -> float | None:
        a = self.atr
        return a.value if a is not None and a.initialized else None

    def record(self, s: Any, ts: int, side: str, action: str, reason: str, detail: str,
               requested: float = float("nan"), final: float = float("nan")) -> None:
        self.records.append((ts, s.strategy_id.value, s.instrument_id.value, side, action, reason, detail,
                             requested, final))
        if action in ("refused", "reduced"):
            s.log.info(f"risk {action} {side} entry: {reason} ({detail})")
        else:
            s.log.info(f"risk {action}: {detail}")

    def has_open_non_protective(self, s: Any) -> bool:
        """True if an open order of the strategy is not one of its protective orders (entry/exit resting)."""
        prot = self.protective
        return any(o.client_order_id.value not in prot
                   for o in s.cache.orders_open(instrument_id=s.instrument_id, strategy_id=s.strategy_id))

    def _equity(self, s: Any, price: Any) -> float:
        from strategies.risk.sizing import account_equity

        eq, _ = account_equity(s.portfolio, s.venue, s.instrument, price, s.is_cash)
        return float(eq) - self.borrow_accrued

    # ---- per bar ---------------------------------------------------------------------------
    def on_bar(self, s: Any, bar: Any) -> None:
        """Borrowing accrual, equity state (if a drawdown/daily limit is set), trailing update and time stop."""
        if self.borrowing and self._borrow_on:
            self._accrue(s, bar)
        if self.track_equity:
            eq = self._equity(s, bar.close)
            self.last_equity = eq
            for action, detail in self.dd.update(self.cfg.limits, s.bar_index, bar.ts_event, eq):
                self.record(s, bar.ts_event, "", action, action, detail)
        if s._side == PositionSide.FLAT:
            return
        st = self.cfg.stops
        stop = s.cache.order(self.stop_order.client_order_id) if (self.trailing and self.stop_order is not None) else None
        # (the order object we created is not updated by its events: its state is read from the cache)
        if stop is not None and stop.is_open:
            if self.long:
                self.anchor = max(self.anchor, bar.high.as_double())
            else:
                self.anchor = min(self.anchor, bar.low.as_double())
            trig = stops_mod.trailing_trigger(st, self.long, self.anchor, self.atr_value())
            if trig is not None:
                trig = stops_mod.round_tick(trig, s.instrument.price_increment.as_double(), up=not self.long)
                close = bar.close.as_double()
                if (trig >= close if self.long else trig <= close) and not s.trading_blocked:
                    # the bar retraced more than the trail after its extreme: the trailing stop was hit
                    # inside the bar (a venue rejects a stop already in the market) -> exit at market
                    s.exit_position(TRAIL_EXIT_TAG)
                    s.trading_blocked = True
                    return
                if self.stop_trigger is None or (trig > self.stop_trigger if self.long else trig < self.stop_trigger):
                    self.stop_trigger = trig
                    self.trailed.add(stop.client_order_id.value)
                    Strategy.modify_order(s, stop.client_order_id,
                                          trigger_price=Price(trig, s.instrument.price_precision))
        if st.time_stop_bars is not None and s.entry_bar_index is not None and s.bars_held() >= st.time_stop_bars \
                and not s.trading_blocked:
            s.exit_position("TIME_STOP")
            s.trading_blocked = True  # the strategy's own exit on this bar would double the close

    # ---- entries ---------------------------------------------------------------------------
    def entry_quantity(self, s: Any, side: Any, bar: Any, default_fraction: float) -> Quantity | None:
        """Sized and limit-checked entry quantity, or None (recorded as refused)."""
        ts = bar.ts_event
        sname = "BUY" if side == OrderSide.BUY else "SELL"
        blocked = self.dd.blocked(ts) if self.track_equity else None
        if blocked is not None:
            self.record(s, ts, sname, "refused", blocked, "entries paused")
            return None
        from strategies.risk.sizing import account_equity

        px_dec = bar.close.as_decimal()
        price = float(px_dec)
        equity_d, quote = account_equity(s.portfolio, s.venue, s.instrument, bar.close, s.is_cash)
        equity = float(equity_d) - self.borrow_accrued
        atr = self.atr_value()
        dist = stops_mod.stop_distance(self.cfg.stops, price, atr)
        notional, why = target_notional(self.cfg.sizing, equity=equity, price=price, default_fraction=default_fraction,
                                        stop_distance=dist, atr=atr, trade_returns=self.trade_returns)
        if notional is None:
            self.record(s, ts, sname, "refused", why, f"sizing {self.cfg.sizing.method}")
            return None
        lim = self.cfg.limits
        if self.track_equity and self.dd.half:
            self.record(s, ts, sname, "reduced", "drawdown_half_size", f"notional {notional:.2f} -> {notional / 2:.2f}",
                        notional / price, notional / 2 / price)
            notional /= 2
        qty = notional / price
        if (lim.max_position_notional_usdt is not None or lim.max_position_fraction is not None
                or lim.max_leverage is not None or lim.max_heat is not None):
            existing = abs(float(s.net_quantity()))
            open_risk = self.open_risk(s) if lim.max_heat is not None else 0.0
            capped, reasons = limits_mod.cap_quantity(lim, qty, price=price, equity=equity, existing_qty=existing,
                                                      stop_distance=dist, open_risk=open_risk)
            for reason, detail in reasons:
                self.record(s, ts, sname, "reduced", reason, detail, qty, capped)
            qty = capped
        if lim.max_correlated_exposure is not None and qty > 0:
            qty = self._cap_correlated(s, ts, sname, side, qty, price, equity)
        cash_cap = quote if (s.is_cash and side == OrderSide.BUY) else None
        q = quantity_from_notional(s.instrument, Decimal(repr(float(qty))) * px_dec, px_dec, cash_cap,
                                   Decimal(repr(s.config.fee_headroom)))
        inst = s.instrument
        if q <= 0 or (inst.min_quantity is not None and q < inst.min_quantity.as_decimal()) or (
                inst.min_notional is not None and q * px_dec < inst.min_notional.as_decimal()):
            self.record(s, ts, sname, "refused", "below_minimum", f"qty {q} after sizing/limits", qty, float(q))
            return None
        return Quantity.from_str(f"{q:.{inst.size_precision}f}")

    def _cap_correlated(self, s: Any, ts: int, sname: str, side: Any, qty: float, price: float, equity: float) -> float:
        """Reduce ``qty`` to the correlation-adjusted exposure cap (see :mod:`strategies.risk.limits`)."""
        import numpy as np
        from nautilus_trader.model import AggregationSource

        lim = self.cfg.limits
        net: dict[str, float] = {s.instrument_id.value: 0.0}
        for p in s.cache.positions_open():
            net[p.instrument_id.value] = net.get(p.instrument_id.value, 0.0) + float(p.signed_qty)
        ids = sorted(net)
        closes: dict[str, dict[int, float]] = {}
        last: dict[str, float] = {}
        n = lim.correlation_window
        for iid in ids:
            inst_id = type(s.instrument_id).from_str(iid)
            bts = s.cache.bar_types(AggregationSource.EXTERNAL, inst_id) or s.cache.bar_types(AggregationSource.INTERNAL, inst_id)
            bars = (s.cache.bars(bts[0]) or []) if bts else []
            series = {b.ts_event: b.close.as_double() for b in bars[: n + 1]}
            closes[iid] = series
            last[iid] = bars[0].close.as_double() if bars else price
        common = sorted(set.intersection(*(set(c) for c in closes.values())))[-(n + 1):]
        k = ids.index(s.instrument_id.value)
        if len(ids) > 1 and len(common) == n + 1:
            rets = np.array([[closes[i][t1] / closes[i][t0] - 1 for t0, t1 in zip(common[:-1], common[1:], strict=True)]
                             for i in ids])
            corr = np.corrcoef(rets)
        else:
            corr = np.ones((len(ids), len(ids)))
        w = np.array([net[i] * last[i] / equity for i in ids])
        unit = (1.0 if side == OrderSide.BUY else -1.0) * price / equity
        capped = limits_mod.max_entry_for_exposure(w, corr, k, unit, qty, lim.max_correlated_exposure)
        if capped < qty:
            self.record(s, ts, sname, "reduced", "max_correlated_exposure",
                        f"{qty} -> {capped} (exposure cap {lim.max_correlated_exposure}, instruments {ids})", qty, capped)
        return capped

    def open_risk(self, s: Any) -> float:
        """USDT at risk to stops in every open position on the trader (no resting stop: whole notional)."""
        stops: dict[tuple[str, str], float] = {}
        for o in s.cache.orders_open():
            if o.order_type == OrderType.STOP_MARKET and o.is_reduce_only:
                stops[(o.strategy_id.value, o.instrument_id.value)] = o.trigger_price.as_double()
        total = 0.0
        for p in s.cache.positions_open():
            q = abs(float(p.signed_qty))
            px = p.avg_px_open
            stop = stops.get((p.strategy_id.value, p.instrument_id.value))
            total += q * abs(px - stop) if stop is not None else q * px
        return total

    def adopt_open_orders(self, s: Any) -> None:
        """After a paper restart (state restored from a snapshot, orders reconciled from the venue's book):
        take the strategy's open reduce-only STOP_MARKET / LIMIT orders back as its protective stop and
        take-profit, since order objects are not part of the saved state. Never called in a backtest."""
        for o in s.cache.orders_open(instrument_id=s.instrument_id, strategy_id=s.strategy_id):
            if not o.is_reduce_only or o.order_type not in (OrderType.STOP_MARKET, OrderType.LIMIT):
                continue
            self.protective[o.client_order_id.value] = o
            if o.order_type == OrderType.STOP_MARKET:
                self.stop_order = o
                self.stop_trigger = o.trigger_price.as_double()

    def entry_submitted(self, order: Any) -> None:
        self.entry_ids.add(order.client_order_id.value)

    # ---- order events ----------------------------------------------------------------------
    def on_fill(self, s: Any, event: Any) -> None:
        cid = event.client_order_id.value
        if cid in self.entry_ids:
            self.entry_ids.discard(cid)
            if self.has_stops:
                self._place(s, event)
        elif cid in self.protective:
            self.protective.pop(cid, None)
            self.cancel_protective(s)

    def _place(self, s: Any, event: Any) -> None:
        self.cancel_protective(s)  # re-placed for the whole position
        net = s.net_quantity()
        if net == 0:
            return
        inst = s.instrument
        tick = inst.price_increment.as_double()
        self.long = net > 0
        fill = event.last_px.as_double()
        qty = Quantity.from_str(f"{abs(net):.{inst.size_precision}f}")
        exit_side = OrderSide.SELL if self.long else OrderSide.BUY
        st = self.cfg.stops
        atr = self.atr_value()
        self.anchor = fill
        stop = stops_mod.initial_stop(st, self.long, fill, atr)
        if stop is not None:
            trail = stops_mod.trailing_trigger(st, self.long, fill, atr)
            tag = TRAIL_TAG if trail is not None and abs(trail - stop) < 1e-12 * max(abs(stop), 1.0) else STOP_TAG
            stop = stops_mod.round_tick(stop, tick, up=not self.long)
            o = s.order_factory.stop_market(s.instrument_id, exit_side, qty, Price(stop, inst.price_precision),
                                            time_in_force=TimeInForce.GTC, reduce_only=True, tags=[tag])
            self.stop_order, self.stop_trigger = o, stop
            self.protective[o.client_order_id.value] = o
            s.submit_order(o)
        tp = stops_mod.take_profit(st, self.long, fill)
        if tp is not None:
            tp = stops_mod.round_tick(tp, tick, up=self.long)
            o = s.order_factory.limit(s.instrument_id, exit_side, qty, Price(tp, inst.price_precision),
                                      time_in_force=TimeInForce.GTC, reduce_only=True, post_only=False, tags=[TP_TAG])
            self.protective[o.client_order_id.value] = o
            s.submit_order(o)

    def cancel_protective(self, s: Any) -> None:
        """Cancel every still-open protective order of the strategy."""
        for o in list(self.protective.values()):
            cur = s.cache.order(o.client_order_id)  # current state (see on_bar)
            if cur is not None and cur.is_open:
                Strategy.cancel_order(s, cur.client_order_id)
        self.protective.clear()
        self.stop_order = None
        self.stop_trigger = None

    def on_position_closed(self, s: Any, event: Any) -> None:
        pnl = event.realized_pnl
        denom = event.peak_qty.as_double() * event.avg_px_open * s.instrument.multiplier.as_double()
        if pnl is not None and denom > 0:
            self.trade_returns.append(pnl.as_double() / denom)
        self.cancel_protective(s)
