"""One simulated execution client for paper trading on every venue (Binance spot, Binance USDT-M, Ethereal).

It applies the backtest's venue models (:mod:`nautilus_app.venue`, the same ``[[venues]]`` entry) to
the live bars, keeps its book (orders, fills, positions, balances, funding) in Redis and hands the
book back to Nautilus at start-up through reconciliation (order, fill and position reports), like
a real venue. It generalises the Ethereal paper execution client (:mod:`adapters.ethereal.paper_exec`,
fills at the next quote) to bar-based fills.

Why a sequencer. Nautilus's live node delivers bars to strategies and queues execution events
asynchronously, so a fill may reach a strategy one bar late, and a bar that arrives while the
previous one is still being handled updates the indicators too early. Paper sessions therefore do
not let Nautilus drive the strategies: :class:`BarSequencer` receives every live bar and processes
one bar at a time, in this order (``B`` = the bar, ``T`` = its close time, stamped like the
backtest's bars):

1. **venue step** at ``B``'s open (:meth:`SimVenue.venue_step`), exactly what the backtest's
   simulated exchange does between the previous bar and ``B``:
   a. market orders waiting for the next open (``fill_timing = "next_open"``) fill at ``B``'s open,
      slipped with the venue's slippage model against the volume of the last completed bar,
      timestamped at their arrival (send time + the seeded latency); resting stop orders trigger on
      ``B``'s range (the trigger, or the open when ``B`` gapped through it);
   b. liquidation (``liquidation = true``, MARGIN): each open position's Binance liquidation price
      from the state after (a) (isolated: the position's margin; cross: the wallet balance and the
      other positions at their last close, :mod:`nautilus_app.venue.margin`); the previous close
      beyond it -> closed at once at that price; ``B``'s low/high reaching it -> closed at that price
      at ``T``; taker fee plus the capped clearance fee (:class:`~nautilus_app.venue.fees.VenueFeeModel`);
   c. funding (applied first, before a.): a settlement time in ``[previous close, T)`` -- in practice
      the previous bar's close -- debits ``-qty x mark x rate`` from the balance, with the live mark
      price at the settlement time and the announced rate. As in the backtest, the strategies' ``on_bar``
      of the bar closing at a settlement sees the balance before it, and a settlement at the last
      processed bar's close is not applied yet.
   All fills, positions, balances and funding of the step are one Redis MULTI/EXEC, written before
   Nautilus hears of them; then the events are emitted and the sequencer waits until Nautilus's
   cache shows them.
2. the strategies' ``on_bar(B)`` (their registered indicators are updated first, by the sequencer);
3. the orders they sent are awaited at the client (latency drawn per command, seeded, as
   :class:`~nautilus_app.venue.latency.LatencyRouter`); ``fill_timing = "same_close"`` orders fill
   at ``B``'s close;
4. **commit**: the bar is appended to the session's feed, the new orders and any same-close fills
   are stored, and every strategy's state that bars cannot rebuild (:func:`snapshot_strategy`) is
   saved, in one MULTI/EXEC.

A ``kill -9`` therefore leaves either the whole bar or none of it (the venue step of the next bar is
its own transaction and is never applied twice), and a restarted session rebuilds the strategies by
feeding them the stored feed (indicators, signal memory) and restoring the snapshots, then processes
the bars it missed (the venue's recent klines) before live ones.

Modules (issue 22: split along these seams): this one holds the Redis book (:class:`SimBook`), the
venue models applied to it (:class:`SimVenue`) and the Nautilus execution client
(:class:`SimExecutionClient`); the sequencer is :mod:`nautilus_app.paper_sequencer`, the strategy
snapshots :mod:`nautilus_app.paper_snapshot`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import redis
from nautilus_trader.config import ExecutionClientConfig
from nautilus_trader.live.clients import ExecutionClient, ExecutionClientFactory
from nautilus_trader.model import (
    AccountBalance,
    AccountId,
    AccountType,
    ClientOrderId,
    Currency,
    ExecutionMassStatus,
    FillReport,
    InstrumentId,
    LiquiditySide,
    MarginBalance,
    Money,
    OmsType,
    OrderSide,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    PositionSide,
    PositionStatusReport,
    Price,
    Quantity,
    TimeInForce,
    TradeId,
    TriggerType,
    Venue,
    VenueOrderId,
)

from nautilus_app.venue.fees import VenueFeeModel
from nautilus_app.venue.fill_timing import LIQUIDATION_TAG
from nautilus_app.venue.latency import LatencyDraws, LatencyRouter
from nautilus_app.venue.margin import isolated_margin, liquidation_price, maintenance_margin
from nautilus_app.venue.models import slippage_model, venue_fees
from nautilus_app.venue.slippage import SlippageModel

log = logging.getLogger("nautilus_app.paper")

_OPEN = ("ACCEPTED", "PARTIALLY_FILLED", "SUBMITTED")
#: increments offered at (open, high, low, close) by a bar of 0-3 size increments (BarTickSizes::from_volume)
_SMALL_BAR_SIZES = {0: (0, 0, 0, 0), 1: (0, 0, 0, 1), 2: (0, 1, 1, 0), 3: (1, 1, 1, 0)}
_TYPES = {OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP_MARKET: "STOP_MARKET",
          OrderType.STOP_LIMIT: "STOP_LIMIT"}


# ---- the book in Redis ---------------------------------------------------------------------------
class SimBook:
    """The simulated venue's book in Redis, key space ``simpaper:<trader_id>:``.

    | key | type | what |
    |---|---|---|
    | ``orders`` | hash | client_order_id -> order JSON (status, side, qty, type, bar it was sent on, arrival) |
    | ``fills`` | hash | trade_id -> fill JSON (price, reference price, qty, fee, liquidity, kind, market time) |
    | ``positions`` | hash | ``<instrument_id>|<strategy_id>`` -> ``{qty (signed), avg_px, ts_last}`` |
    | ``balance`` | hash | currency -> total (decimal string) |
    | ``funding`` | hash | ``<instrument_id>|<settlement ns>`` -> settlement JSON |
    | ``steps`` | hash | instrument_id -> close time (ns) of the last bar whose venue step is applied |
    | ``feed`` | list | every bar fed to the strategies: ``[bar_type, close ns, o, h, l, c, v, warm]`` |
    | ``strategies`` | hash | strategy_id -> state snapshot after the last committed bar |
    | ``meta`` | hash | ``latency_draws``, ``last_close:<iid>``, ``live_from`` ... |
    | ``seq`` | string | counter for venue order ids and trade ids |
    """

    def __init__(self, trader_id: str, host: str = "127.0.0.1", port: int = 6379) -> None:
        self.r = redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=5)
        self.prefix = f"simpaper:{trader_id}:"

    def k(self, name: str) -> str:
        return self.prefix + name

    def next_seq(self) -> int:
        return int(self.r.incr(self.k("seq")))

    def hjson(self, name: str) -> dict[str, dict]:
        return {k: json.loads(v) for k, v in self.r.hgetall(self.k(name)).items()}

    def orders(self) -> dict[str, dict]:
        return self.hjson("orders")

    def fills(self) -> dict[str, dict]:
        return self.hjson("fills")

    def positions(self) -> dict[str, dict]:
        return self.hjson("positions")

    def funding(self) -> list[dict]:
        return list(self.hjson("funding").values())

    def balances(self) -> dict[str, str]:
        return self.r.hgetall(self.k("balance"))

    def meta(self) -> dict[str, str]:
        return self.r.hgetall(self.k("meta"))

    def steps(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(self.k("steps")).items()}

    def feed(self) -> list[list]:
        return [json.loads(x) for x in self.r.lrange(self.k("feed"), 0, -1)]

    def strategy_states(self) -> dict[str, dict]:
        return self.hjson("strategies")

    def init_balances(self, starting: dict[str, str]) -> None:
        for ccy, amount in starting.items():
            self.r.hsetnx(self.k("balance"), ccy, amount)

    def clear(self) -> int:
        keys = list(self.r.scan_iter(self.prefix + "*", count=1000))
        return self.r.delete(*keys) if keys else 0


# ---- in-memory state of the venue (mirrors the book) ------------------------------------------------
@dataclass
class Pos:
    qty: Decimal = Decimal(0)
    avg_px: Decimal = Decimal(0)
    ts_last: int = 0


@dataclass
class StepResult:
    """What one venue step or one commit changed (written in one transaction, then emitted)."""

    fills: list[dict] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    funding: list[dict] = field(default_factory=list)
    funding_marks: list[str] = field(default_factory=list)
    canceled: list[dict] = field(default_factory=list)  # orders whose cancel arrived (at_arrival)


def _d(x: Any) -> Decimal:
    return Decimal(str(x))


class SimVenue:
    """The venue models of one ``[[venues]]`` entry applied to live bars (module docstring).

    Args:
        venue_cfg: The config's :class:`~nautilus_app.config.VenueConfig`.
        live_venue: Nautilus venue of the live instruments (``BINANCE``, ``ETHEREAL``).
        book: The Redis book.
        brackets: live instrument id -> bracket table (perpetuals with liquidation).
        leverages: live instrument id -> leverage.
        cash: spot (CASH account) instead of margin.
    """

    def __init__(self, venue_cfg: Any, live_venue: str, book: SimBook, *, brackets: dict[str, Any],
                 leverages: dict[str, float], cash: bool) -> None:
        self.cfg = venue_cfg
        self.live_venue = live_venue
        self.book = book
        self.cash = cash
        maker, taker = venue_fees(venue_cfg)
        liq_fee = venue_cfg.liquidation_fee if (not cash and venue_cfg.liquidation) else 0.0
        self.fee_model = VenueFeeModel(maker, taker, liq_fee)
        self.slippage: SlippageModel = slippage_model(venue_cfg)
        self.timing = venue_cfg.fill_timing
        self.liquidation = (not cash) and bool(venue_cfg.liquidation) and bool(brackets)
        self.margin_mode = venue_cfg.margin_mode
        self.brackets = brackets
        self.leverages = leverages
        self.latency = (LatencyRouter(LatencyDraws(**_struct_dict(venue_cfg.latency)), live_venue)
                        if venue_cfg.latency is not None else None)
        self.latency_draws = 0
        self._last_arrival: dict[str, int] = {}
        self.settlement = "USDT"
        # state (loaded from the book)
        self.orders: dict[str, dict] = {}
        self.positions: dict[str, Pos] = {}
        self.balances: dict[str, Decimal] = {}
        self.last_bar: dict[str, dict] = {}  # iid -> last processed bar {ts, o, h, l, c, v}
        self.steps: dict[str, int] = {}
        self.funding_keys: set[str] = set()
        self.recent_fills: list[tuple[str, Decimal, int]] = []  # (position key, signed qty, ts): funding's position
        self.closes: dict[str, list[tuple[int, float]]] = {}  # iid -> recent (close ts, close): the market
        self.iterated: dict[str, int] = {}  # iid -> the last command arrival time matched (at_arrival)

    # -- state
    def load(self, starting: dict[str, str]) -> None:
        """Read the book (and set the starting balances once)."""
        self.book.init_balances(starting)
        self.orders = self.book.orders()
        self.positions = {k: Pos(_d(v["qty"]), _d(v["avg_px"]), int(v.get("ts_last", 0)))
                          for k, v in self.book.positions().items()}
        self.balances = {k: _d(v) for k, v in self.book.balances().items()}
        self.steps = self.book.steps()
        self.funding_keys = set(self.book.r.hkeys(self.book.k("funding")))
        since = min(self.steps.values(), default=0) - 86_400_000_000_000  # a day before the earliest step
        self.recent_fills = sorted(((f"{f['instrument_id']}|{f['strategy_id']}",
                                     _d(f["qty"]) * (1 if f["side"] == "BUY" else -1), int(f["ts"]))
                                    for f in self.book.fills().values() if int(f["ts"]) > since), key=lambda x: x[2])
        meta = self.book.meta()
        for key, val in meta.items():
            if key.startswith("last_bar:"):
                self.last_bar[key.split(":", 1)[1]] = json.loads(val)
            elif key.startswith("iterated:"):
                self.iterated[key.split(":", 1)[1]] = int(val)
        self.closes = {iid: [(int(b["ts"]), float(b["c"]))] for iid, b in self.last_bar.items()}
        self.latency_draws = int(meta.get("latency_draws", 0))
        if self.latency is not None:  # fast-forward the seeded generator to the committed draw count
            self.latency.rng = __import__("numpy").random.default_rng(self.latency.params.seed)
            for _ in range(self.latency_draws):
                self.latency.draw_ms()
        self._last_arrival = json.loads(meta.get("last_arrival", "{}"))

    def note_close(self, iid: str, ts: int, close: float) -> None:
        """A bar of ``iid`` closes at ``ts``: orders arriving from then on meet ``close``."""
        seq = [c for c in self.closes.get(iid, []) if c[0] < ts][-2:]
        self.closes[iid] = [*seq, (ts, close)]

    def market_at(self, iid: str, ts: int) -> float | None:
        """The price Nautilus's book shows at ``ts`` (the last close at or before it), or None."""
        px = [c for t, c in self.closes.get(iid, []) if t <= ts]
        return px[-1] if px else None

    def net_qty(self, iid: str, sid: str | None = None) -> Decimal:
        return sum((p.qty for k, p in self.positions.items()
                    if k.split("|")[0] == iid and (sid is None or k.split("|")[1] == sid)), Decimal(0))

    # -- latency
    def arrival(self, sid: str, sent_ns: int) -> tuple[int, float]:
        """Arrival time (market ns) of a command sent at ``sent_ns`` by strategy ``sid``; drawn latency ms."""
        if self.latency is None:
            return sent_ns, 0.0
        drawn, _spike = self.latency.draw_ms()
        self.latency_draws += 1
        arrival = max(sent_ns + round(drawn * 1_000_000), self._last_arrival.get(sid, 0))
        self._last_arrival[sid] = arrival
        return arrival, drawn

    # -- checks at arrival
    def check(self, rec: dict, instrument: Any) -> str | None:
        """Why the venue refuses the order (margin/balance), or None. Reference price: the last close."""
        iid = rec["instrument_id"]
        last = self.last_bar.get(iid)
        px = _d(last["c"]) if last else None
        qty = _d(rec["quantity"])
        buy = rec["side"] == "BUY"
        mkt = self.market_at(iid, rec["ts_arrival"])
        if rec.get("trigger") is not None and mkt is not None:
            # Nautilus rejects a stop whose trigger the market has already reached (its book: the last
            # close before the order's arrival)
            trig = float(rec["trigger"])
            if (trig <= mkt) if buy else (trig >= mkt):
                return f"{rec['type']} {rec['side']} trigger {rec['trigger']} is {'at or below' if buy else 'at or above'} " \
                       f"the market {mkt}"
        if self.cash:
            base = str(instrument.base_currency)
            quote = str(instrument.quote_currency)
            if buy and px is not None:
                need = qty * px * (1 + _d(self.fee_model.taker))
                if need > self.balances.get(quote, Decimal(0)):
                    return f"insufficient {quote} balance: {need} needed, {self.balances.get(quote, 0)} free"
            if not buy and qty > self.balances.get(base, Decimal(0)):
                return f"insufficient {base} balance: {qty} needed, {self.balances.get(base, 0)} held"
            return None
        held = self.net_qty(iid, rec["strategy_id"])
        signed = qty if buy else -qty
        if rec["reduce_only"]:
            if held == 0 or (held > 0) == (signed > 0) or qty > abs(held):
                return f"reduce-only order would increase the position ({held})"
            return None
        if px is None:
            return None
        reducing = min(qty, abs(held)) if held != 0 and (held > 0) != (signed > 0) else Decimal(0)
        opening = qty - reducing
        lev = _d(self.leverages.get(iid, self.cfg.default_leverage))
        used = sum((abs(p.qty) * p.avg_px / _d(self.leverages.get(k.split("|")[0], self.cfg.default_leverage))
                    for k, p in self.positions.items() if p.qty != 0), Decimal(0))
        free = self.balances.get(self.settlement, Decimal(0)) - used
        need = opening * px / lev
        if opening > 0 and need > free:
            return f"initial margin {need:.8f} exceeds the free balance {free:.8f}"
        return None

    # -- fills
    def _apply(self, res: StepResult, rec: dict, instrument: Any, order_obj: Any, px: float, ref: float, ts: int,
               kind: str, liquidity: str = "TAKER", qty: Decimal | None = None) -> None:
        """One fill of ``qty`` (default: the whole remaining quantity): positions, balances, order state, fee.
        Limit and stop-limit fills pay the fee of their own liquidity side (maker or taker)."""
        price = Price(px, instrument.price_precision)
        if qty is None:
            qty = _d(rec["quantity"]) - _d(rec["filled_qty"])
        quantity = Quantity(qty, instrument.size_precision)
        if order_obj is None or kind in ("limit", "stop_limit"):
            rate = self.fee_model.maker if liquidity == "MAKER" else self.fee_model.taker
            fee = Money(quantity.as_double() * price.as_double() * rate, instrument.quote_currency)
        else:
            fee = self.fee_model.get_commission(order_obj, quantity, price, instrument)
        pxd, feed_ = price.as_decimal(), fee.as_decimal()
        buy = rec["side"] == "BUY"
        signed = qty if buy else -qty
        realized = Decimal(0)
        if self.cash:
            base, quote = str(instrument.base_currency), str(instrument.quote_currency)
            self.balances[base] = self.balances.get(base, Decimal(0)) + signed
            self.balances[quote] = self.balances.get(quote, Decimal(0)) - signed * pxd - feed_
        key = f"{rec['instrument_id']}|{rec['strategy_id']}"
        pos = self.positions.setdefault(key, Pos())
        old, avg = pos.qty, pos.avg_px
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):
            avg = (abs(old) * avg + qty * pxd) / abs(new)
        else:
            closed = min(abs(old), qty)
            realized = closed * (pxd - avg) * (1 if old > 0 else -1)
            if new == 0:
                avg = Decimal(0)
            elif (new > 0) != (old > 0):
                avg = pxd
        pos.qty, pos.avg_px, pos.ts_last = new, avg, ts
        self.recent_fills.append((key, signed, int(ts)))
        del self.recent_fills[:-1000]
        if not self.cash:
            ccy = self.settlement
            self.balances[ccy] = self.balances.get(ccy, Decimal(0)) + realized - feed_
        before = _d(rec["filled_qty"])
        filled = before + qty
        avg_px = (before * _d(rec.get("avg_px") or 0) + qty * pxd) / filled
        rec.update(filled_qty=str(filled), avg_px=str(avg_px), ts_last=ts,
                   status="FILLED" if filled >= _d(rec["quantity"]) else "PARTIALLY_FILLED")
        res.fills.append({"trade_id": f"ST-{self.book.next_seq()}", "client_order_id": rec["client_order_id"],
                          "venue_order_id": rec["venue_order_id"], "instrument_id": rec["instrument_id"],
                          "strategy_id": rec["strategy_id"], "side": rec["side"], "qty": str(qty), "px": str(pxd),
                          "reference_px": ref, "fee": str(feed_), "liquidity": liquidity, "kind": kind, "ts": int(ts),
                          "realized_pnl": str(realized)})
        res.orders.append(rec)

    def market_price(self, rec: dict, instrument: Any, ref: float, volume: float) -> float:
        if self.slippage.kind == "none":
            return ref
        return self.slippage.price(ref, rec["side"] == "BUY", float(_d(rec["quantity"]) - _d(rec["filled_qty"])),
                                   volume, instrument.price_increment.as_double())

    def fills_at_open(self, iid: str, bar: dict, instrument: Any, order_obj: Callable[[str], Any],
                      seen: set[str] | None = None) -> StepResult:
        """Step (a): market orders waiting for this open (``next_open``), in arrival order, stop orders
        triggered by this bar's range, and limit / stop-limit orders the bar's prices reach
        (:meth:`_limit_fill`). ``seen``: orders already matched against this bar (skipped; updated)."""
        res = StepResult()
        prev = self.last_bar.get(iid)
        t_bar = bar["ts"]
        waiting = sorted((r for r in self.orders.values() if r["instrument_id"] == iid and r["status"] in _OPEN
                          and LIQUIDATION_TAG not in r["tags"] and r["ts_arrival"] < t_bar
                          and (seen is None or r["client_order_id"] not in seen)),
                         key=lambda r: (r["ts_arrival"], r["seq"]))
        if seen is not None:
            seen.update(r["client_order_id"] for r in waiting)
        for rec in waiting:
            if rec["type"] in ("LIMIT", "STOP_LIMIT"):
                hits = self._limit_fills(rec, bar, instrument.size_precision)
                kind = "limit" if rec["type"] == "LIMIT" else "stop_limit"
                for px, q, liquidity in hits:
                    self._apply(res, rec, instrument, order_obj(rec["client_order_id"]), px, px, t_bar, kind,
                                liquidity, q)
                if not hits and rec.pop("triggered_now", False):
                    res.orders.append(rec)  # the stop-limit triggered and rests as a limit: store that
                rec.pop("triggered_now", None)
                continue
            if rec["type"] == "MARKET" and self.timing == "next_open" and rec["ts_arrival"] < t_bar:
                # volume of the last bar completed when the order arrived
                vol = prev["v"] if prev is not None and prev["ts"] <= rec["ts_arrival"] else 0.0
                ref = bar["o"]
                self._apply(res, rec, instrument, order_obj(rec["client_order_id"]),
                            self.market_price(rec, instrument, ref, vol), ref, rec["ts_arrival"], "market")
            elif rec["type"] == "STOP_MARKET" and rec["ts_arrival"] < t_bar:
                trig = float(rec["trigger"])
                buy = rec["side"] == "BUY"
                if (bar["h"] >= trig) if buy else (bar["l"] <= trig):
                    ref = max(trig, bar["o"]) if buy else min(trig, bar["o"])
                    vol = bar["v"]  # the backtest's fill model: the bar being matched (closing at the fill)
                    self._apply(res, rec, instrument, order_obj(rec["client_order_id"]),
                                self.market_price(rec, instrument, ref, vol), ref, t_bar, "stop")
        return res

    @staticmethod
    def _points(bar: dict, size_precision: int) -> list[tuple[float, Decimal]]:
        """The bar as Nautilus's bar matching sees it (``BarTickSizes::from_volume``): open, high, low,
        close; with ``n`` size increments in the volume, open/high/low offer ``floor(n / 4)`` increments
        each and the close the rest (n = 1: the close only; 2: high and low one each; 3: open, high and
        low one each)."""
        unit = Decimal(1).scaleb(-size_precision)
        n = int((Decimal(repr(bar["v"])) / unit).to_integral_value(rounding=ROUND_DOWN))
        sizes = _SMALL_BAR_SIZES.get(n, (n // 4, n // 4, n // 4, n - 3 * (n // 4)))
        return [(p, k * unit) for p, k in zip((bar["o"], bar["h"], bar["l"], bar["c"]), sizes, strict=True)]

    def _limit_fills(self, rec: dict, bar: dict, size_precision: int) -> list[tuple[float, Decimal, str]]:
        """Nautilus's bar matching for a resting LIMIT / STOP_LIMIT (the backtest's rule for these types,
        which its fill model leaves to Nautilus), over the bar's prices open, high, low, close
        (:meth:`_points`, each with its size):

        * LIMIT buy at ``P``: each price at or below ``P`` fills up to its size, at ``P`` (at the open
          when the bar opened at or below ``P``); maker. Sell: mirrored. What is left rests.
        * STOP_LIMIT buy (trigger ``T``, limit ``P``): the first price at or above ``T`` triggers it; if
          that price is at or below ``P`` the order trades there up to its size (taker); what is left --
          or the whole order when the triggering price was above ``P`` -- keeps the liquidity side
          Nautilus gives a triggered limit (``determine_triggered_limit_liquidity``: taker unless ``T`` is
          beyond ``P``, stored as ``liq``) and fills up to the size of each later price at or below ``P``
          (this bar's and later bars'), at that price when taker, at ``P`` when maker. Sell: mirrored.

        Returns ``[(price, qty, liquidity)]``; marks a trigger in ``rec`` (``triggered``).
        """
        buy = rec["side"] == "BUY"
        limit = float(rec["price"])
        leaves = _d(rec["quantity"]) - _d(rec["filled_qty"])
        out: list[tuple[float, Decimal, str]] = []

        def crosses(p: float) -> bool:
            return p <= limit if buy else p >= limit

        points = self._points(bar, size_precision)
        start = 0
        stop_limit = rec["type"] == "STOP_LIMIT"
        if stop_limit and not rec.get("triggered"):
            trig = float(rec["trigger"])
            for i, (p, size) in enumerate(points):
                if (p >= trig) if buy else (p <= trig):
                    rec["triggered"] = True
                    rec["triggered_now"] = True
                    rec["liq"] = triggered_limit_liquidity(buy, limit, trig)
                    if crosses(p):
                        q = min(leaves, size)
                        if rec["liq"] == "TAKER":
                            out.append((p, q, "TAKER"))
                        else:
                            out.append((limit, q, "MAKER"))
                        leaves -= q
                    start = i + 1
                    break
            else:
                return out
        for i, (p, size) in enumerate(points[start:], start):
            if leaves <= 0:
                break
            if crosses(p):
                q = min(leaves, size)
                if q > 0:
                    if stop_limit and rec.get("liq", "TAKER") == "TAKER":
                        out.append((p, q, "TAKER"))
                    else:
                        out.append((p if i == 0 else limit, q, "MAKER"))
                    leaves -= q
        return [f for f in out if f[1] > 0]

    def at_arrival(self, iid: str, t: int, bar: dict, last: dict, instrument: Any,
                   order_obj: Callable[[str], Any]) -> StepResult:
        """What Nautilus's simulated exchange does when commands arrive at ``t``, between the bar ``last``
        (its book: the close, offering the close's size, :meth:`_points`) and ``bar``:

        1. the commands arriving at ``t``: cancels (the order is open until its cancel arrives), then in
           arrival order: a MARKET order (``next_open``) fills at
           ``bar``'s open (slipped on ``last``'s volume), stamped ``t``; a LIMIT order marketable against
           the close takes up to the close's size at the close (taker);
        2. then it iterates its matching engine (``settle_venues`` -> ``iterate_matching_engines``, after
           every batch of commands, cancels and modifies included): every open LIMIT (and triggered
           STOP_LIMIT) that crosses the close fills up to the close's size **again** at its limit price
           (maker), bids first (highest first), then asks (lowest first). Nautilus's book is not
           depleted by these fills, so an order larger than the close's size fills one such piece at
           every later arrival until the next bar.
        """
        res = StepResult()
        c = float(last["c"])
        csize = self._points(last, instrument.size_precision)[3][1]
        for rec in sorted((r for r in self.orders.values() if r["instrument_id"] == iid and r.get("cancel_at") == t
                           and r["status"] in _OPEN), key=lambda r: r["seq"]):
            rec.update(status="CANCELED", ts_last=t)  # a cancel takes effect when it arrives
            res.orders.append(rec)
            res.canceled.append(rec)
        arriving = sorted((r for r in self.orders.values() if r["instrument_id"] == iid and r["ts_arrival"] == t
                           and r["status"] in _OPEN and LIQUIDATION_TAG not in r["tags"]), key=lambda r: r["seq"])
        for rec in arriving:
            coid = rec["client_order_id"]
            if rec["type"] == "MARKET" and self.timing == "next_open" and t < bar["ts"]:
                vol = last["v"] if last["ts"] <= t else 0.0
                ref = bar["o"]
                self._apply(res, rec, instrument, order_obj(coid), self.market_price(rec, instrument, ref, vol), ref,
                            t, "market")
            elif rec["type"] == "LIMIT" and not rec.get("checked_on_arrival"):
                rec["checked_on_arrival"] = True
                limit = float(rec["price"])
                if (c <= limit) if rec["side"] == "BUY" else (c >= limit):
                    q = min(_d(rec["quantity"]) - _d(rec["filled_qty"]), csize)
                    if q > 0:
                        self._apply(res, rec, instrument, order_obj(coid), c, c, t, "limit", "TAKER", q)

        def crossing(r: dict) -> bool:
            if r["instrument_id"] != iid or r["status"] not in _OPEN or r["ts_arrival"] > t:
                return False
            if r["type"] != "LIMIT" and not (r["type"] == "STOP_LIMIT" and r.get("triggered")):
                return False
            limit = float(r["price"])
            return (c <= limit) if r["side"] == "BUY" else (c >= limit)

        resting = [r for r in self.orders.values() if crossing(r)]
        bids = sorted((r for r in resting if r["side"] == "BUY"), key=lambda r: (-float(r["price"]), r["seq"]))
        asks = sorted((r for r in resting if r["side"] == "SELL"), key=lambda r: (float(r["price"]), r["seq"]))
        for rec in bids + asks:
            q = min(_d(rec["quantity"]) - _d(rec["filled_qty"]), csize)
            if q > 0:
                # a triggered stop-limit keeps its liquidity side: taker fills at the book (the close)
                taker = rec["type"] == "STOP_LIMIT" and rec.get("liq", "TAKER") == "TAKER"
                px = c if taker else float(rec["price"])
                self._apply(res, rec, instrument, order_obj(rec["client_order_id"]), px, px, t,
                            "limit" if rec["type"] == "LIMIT" else "stop_limit", "TAKER" if taker else "MAKER", q)
        self.iterated[iid] = t
        return res

    def marketable_on_arrival(self, iid: str, instrument: Any, order_obj: Callable[[str], Any],
                              new: list[str], last: dict | None) -> StepResult:
        """LIMIT orders that can trade when they arrive (a buy at or above the last close, a sell at or
        below): as Nautilus's book after the last bar, up to the close's size at the close (taker), the
        rest at the limit price (maker), at the arrival time."""
        res = StepResult()
        if last is None:
            return res
        c = float(last["c"])
        csize = self._points(last, instrument.size_precision)[3][1]
        for coid in new:
            rec = self.orders.get(coid)
            if rec is None or rec["instrument_id"] != iid or rec["type"] != "LIMIT" or rec["status"] not in _OPEN \
                    or rec.get("checked_on_arrival"):
                continue
            rec["checked_on_arrival"] = True
            limit = float(rec["price"])
            if (c <= limit) if rec["side"] == "BUY" else (c >= limit):
                leaves = _d(rec["quantity"]) - _d(rec["filled_qty"])
                q = min(leaves, csize)
                if q > 0:
                    self._apply(res, rec, instrument, order_obj(coid), c, c, rec["ts_arrival"], "limit", "TAKER", q)
                if leaves - q > 0:
                    self._apply(res, rec, instrument, order_obj(coid), limit, limit, rec["ts_arrival"], "limit",
                                "MAKER", leaves - q)
        return res

    def liquidations(self, iid: str, bar: dict, instrument: Any) -> list[dict]:
        """Step (b): the backtest's :class:`~nautilus_app.venue.liquidation.LiquidationActor` decision for
        ``bar`` with the state after (a) (same formulas, :mod:`nautilus_app.venue.margin`). Returns
        ``{key, side, qty, price, ts, cap}`` per position to close."""
        prev = self.last_bar.get(iid)
        brackets = self.brackets.get(iid)
        if not self.liquidation or prev is None or brackets is None:
            return []
        hits = []
        cross = self.margin_mode == "cross"
        for key, p in self.positions.items():
            if key.split("|")[0] != iid or p.qty == 0:
                continue
            side = 1 if p.qty > 0 else -1
            qty, entry = float(abs(p.qty)), float(p.avg_px)
            other_mm = other_upnl = 0.0
            if not cross:
                wb = isolated_margin(qty, entry, self.leverages[iid])
            else:
                wb = float(self.balances.get(self.settlement, Decimal(0)))
                for k2, o in self.positions.items():
                    last = self.last_bar.get(k2.split("|")[0])
                    if k2 == key or o.qty == 0 or last is None:
                        continue
                    mark = float(last["c"])
                    other_mm += maintenance_margin(self.brackets[k2.split("|")[0]], float(o.qty) * mark)
                    other_upnl += (mark - float(o.avg_px)) * float(o.qty)
            lp = liquidation_price(side=side, qty=qty, entry_price=entry, wallet_balance=wb, brackets=brackets,
                                   other_maintenance=other_mm, other_unrealized_pnl=other_upnl)
            if lp <= 0.0:
                continue
            now = float(prev["c"])
            immediate = (now <= lp) if side == 1 else (now >= lp)
            if immediate or ((bar["l"] <= lp) if side == 1 else (bar["h"] >= lp)):
                left = wb + other_upnl + (lp - entry) * side * qty
                hits.append((lp * side, key, side, qty, lp, left, immediate))
        if cross and hits:
            hits = [max(hits, key=lambda h: h[0])]
        out = []
        tick = instrument.price_increment.as_double()
        for _, key, side, qty, lp, left, immediate in hits:
            n = math.ceil(lp / tick - 1e-9) if side == 1 else math.floor(lp / tick + 1e-9)
            trigger = Price(max(n, 1) * tick, instrument.price_precision).as_double()
            out.append({"key": key, "side": "SELL" if side == 1 else "BUY", "qty": qty, "price": trigger,
                        "ts": prev["ts"] if immediate else bar["ts"],
                        "cap": max(0.0, left + (trigger - lp) * side * qty)})
        return out

    def fill_liquidation(self, res: StepResult, d: dict, rec: dict, instrument: Any, order: Any) -> None:
        """Fill a liquidation order at its price (no slippage), taker fee plus the capped clearance fee."""
        self.fee_model.liquidation_fee_caps[rec["client_order_id"]] = d["cap"]
        self._apply(res, rec, instrument, order, d["price"], d["price"], d["ts"], "liquidation")

    def settle_funding(self, res: StepResult, iid: str, bar: dict,
                       funding: tuple[int, Decimal, float] | None) -> None:
        """Step (c): a settlement time in ``[previous close, this close)`` debits ``-qty x mark x rate``."""
        if funding is None or self.cash:
            return
        prev = self.last_bar.get(iid)
        f_ns, rate, mark = funding
        lo = prev["ts"] if prev is not None else bar["ts"] - 1
        fkey = f"{iid}|{f_ns}"
        if not (lo <= f_ns < bar["ts"]) or fkey in self.funding_keys:
            return
        for key, p in self.positions.items():
            # the position at the settlement time: without fills stamped after it (orders that arrived
            # after the previous close, e.g. marketable limits, filled before this step)
            qty = p.qty - sum((q for k, q, ts in self.recent_fills if k == key and ts > f_ns), Decimal(0))
            if key.split("|")[0] != iid or qty == 0:
                continue
            amount = Decimal(repr(-float(qty) * mark * float(rate)))
            self.balances[self.settlement] = self.balances.get(self.settlement, Decimal(0)) + amount
            res.funding.append({"ts": f_ns, "instrument_id": iid, "position_key": key, "amount": float(amount),
                                "rate": str(rate), "mark": mark, "qty": float(qty)})
        self.recent_fills = [f for f in self.recent_fills if f[2] > f_ns]
        self.funding_keys.add(fkey)
        res.funding_marks.append(fkey)

    def end_step(self, iid: str, bar: dict) -> None:
        """The bar is now the venue's last one of ``iid``."""
        self.last_bar[iid] = bar
        self.steps[iid] = bar["ts"]

    def same_close(self, iid: str, instrument: Any, order_obj: Callable[[str], Any], sent: list[str]) -> StepResult:
        """``fill_timing = "same_close"``: the orders sent on the last bar fill at its close."""
        res = StepResult()
        last = self.last_bar.get(iid)
        if self.timing != "same_close" or last is None:
            return res
        for coid in sent:
            rec = self.orders.get(coid)
            if rec is None or rec["instrument_id"] != iid or rec["type"] != "MARKET" or rec["status"] not in _OPEN:
                continue
            ref = float(last["c"])
            self._apply(res, rec, instrument, order_obj(coid), self.market_price(rec, instrument, ref, last["v"]),
                        ref, rec["ts_arrival"], "market")
        return res

    def fill_at_last_close(self, rec: dict, instrument: Any, order_obj: Any) -> StepResult:
        """An order arriving after the last bar (e.g. ``on_stop`` closes): the last close, as the backtest."""
        res = StepResult()
        last = self.last_bar.get(rec["instrument_id"])
        if last is None:
            return res
        ref = float(last["c"])
        self._apply(res, rec, instrument, order_obj, self.market_price(rec, instrument, ref, last["v"]), ref,
                    max(rec["ts_arrival"], last["ts"]), "market")
        return res

    # -- persistence
    def write(self, res: StepResult, *, step: tuple[str, int] | None = None, extra: Callable[[Any], None] | None = None
              ) -> None:
        """Write one step/commit in one MULTI/EXEC (fills, orders, positions, balances, funding, meta)."""
        b = self.book
        p = b.r.pipeline(transaction=True)
        for f in res.fills:
            p.hset(b.k("fills"), f["trade_id"], json.dumps(f))
        for o in res.orders:
            p.hset(b.k("orders"), o["client_order_id"], json.dumps(o))
        for f in res.funding:
            p.hset(b.k("funding"), f"{f['instrument_id']}|{f['ts']}|{f['position_key']}", json.dumps(f))
        for fkey in res.funding_marks:
            p.hset(b.k("funding"), fkey, json.dumps({"settled": True}))
        if res.fills or res.funding:
            p.delete(b.k("positions"))
            for key, pos in self.positions.items():
                p.hset(b.k("positions"), key, json.dumps({"qty": str(pos.qty), "avg_px": str(pos.avg_px),
                                                          "ts_last": pos.ts_last}))
            p.hset(b.k("balance"), mapping={c: str(v) for c, v in self.balances.items()})
        for iid, t in self.iterated.items():
            p.hset(b.k("meta"), f"iterated:{iid}", t)
        if step is not None:
            iid, ts = step
            p.hset(b.k("steps"), iid, ts)
            p.hset(b.k("meta"), f"last_bar:{iid}", json.dumps(self.last_bar[iid]))
        if extra is not None:
            extra(p)
        p.execute()


def triggered_limit_liquidity(buy: bool, limit: float, trigger: float) -> str:
    """The liquidity side Nautilus gives a triggered stop-limit that rests (``determine_triggered_limit_liquidity``):
    maker when the trigger lies beyond the limit (a buy triggered above its limit), else taker."""
    return "MAKER" if ((trigger > limit) if buy else (trigger < limit)) else "TAKER"


def _struct_dict(s: Any) -> dict:
    import msgspec

    return msgspec.structs.asdict(s)


# ---- the Nautilus execution client -----------------------------------------------------------------------
class SimExecutionClient(ExecutionClient):
    """Nautilus side of the simulated venue: receives orders, emits events, reports the book at start-up.

    Orders are recorded in memory when they arrive; they are stored in Redis with the bar that sent
    them (:meth:`BarSequencer.commit`). Fills are decided by :class:`SimVenue` under the sequencer.
    """

    def __init__(self, *, name: str, config: ExecutionClientConfig, cache: Any, clock: Any, trader_id: Any,
                 sim: SimVenue, account_type: str, starting: dict[str, str], account_id: str) -> None:
        super().__init__(name=name, config=config, cache=cache, clock=clock, trader_id=trader_id,
                         venue=Venue(sim.live_venue), account_id=AccountId(account_id),
                         account_type=getattr(AccountType, account_type), oms_type=OmsType.NETTING,
                         base_currency=None)
        self.sim = sim
        self.starting = starting
        self.sequencer: Any = None  # the session's nautilus_app.paper_sequencer.BarSequencer (simulated paper)
        self.received: dict[str, int] = {}  # client order id -> arrival order
        self.new_orders: list[str] = []  # arrived since the last commit
        self._account_ts = 0
        self.stats = {"fills": 0, "orders": 0}

    # -- lifecycle
    async def _connect(self) -> None:
        self.sim.book.r.ping()
        self.sim.load(self.starting)
        self.publish_account()
        if self.sequencer is not None:
            self.sequencer.client = self
            self.create_task(self.sequencer.run(), "paper-sequencer")

    async def _disconnect(self) -> None:
        if self.sequencer is not None:
            self.sequencer.closing = True

    def publish_account(self) -> int:
        """Publish the book's balances as the account state; returns its ``ts_event`` (unique)."""
        balances = []
        for ccy, total in sorted(self.sim.balances.items()):
            c = Currency.from_str(ccy)
            m = Money(total, c)
            balances.append(AccountBalance(m, Money(0, c), m))
        ts = max(self.clock.timestamp_ns(), self._account_ts + 1)
        self._account_ts = ts
        margins: list[MarginBalance] = []
        self.generate_account_state(balances, margins, True, ts)
        return ts

    # -- orders
    async def _submit_order(self, command: Any) -> None:
        self._submit(command.order)

    async def _submit_order_list(self, command: Any) -> None:
        for order in command.order_list.orders:
            self._submit(order)

    def _submit(self, order: Any) -> None:
        coid = order.client_order_id.value
        seq = self.sequencer
        self.received[coid] = len(self.received)
        if order.order_type not in _TYPES:
            self.generate_order_denied(order, f"order type {order.order_type} is not simulated "
                                              "(MARKET, LIMIT, STOP_MARKET, STOP_LIMIT)")
            return
        inst = self.cache.instrument(order.instrument_id)
        if inst is None:
            self.generate_order_denied(order, f"instrument {order.instrument_id} not loaded")
            return
        self.generate_order_submitted(order)
        sent = seq.sent_at.pop(coid, None) if seq is not None else None
        sid = order.strategy_id.value
        if sent is None:  # not sent by a strategy's Python path (on_stop closes, liquidations)
            sent_ns, arrival, drawn = (seq.market_now if seq else 0), None, 0.0
        else:
            sent_ns, arrival, drawn = sent
        if arrival is None:
            arrival = sent_ns
        rec = {"client_order_id": coid, "venue_order_id": f"SV-{self.sim.book.next_seq()}", "seq": len(self.received),
               "instrument_id": order.instrument_id.value, "strategy_id": sid,
               "side": "BUY" if order.side == OrderSide.BUY else "SELL",
               "type": _TYPES[order.order_type],
               "quantity": str(order.quantity), "filled_qty": "0", "avg_px": "0",
               "trigger": str(order.trigger_price) if _TYPES[order.order_type].startswith("STOP") else None,
               "price": str(order.price) if _TYPES[order.order_type].endswith("LIMIT") else None,
               "reduce_only": bool(order.is_reduce_only), "tags": list(order.tags or []), "status": "ACCEPTED",
               "ts_sent": sent_ns, "ts_arrival": arrival, "latency_ms": drawn,
               "bar_ts": seq.market_now if seq else 0, "ts_accepted": arrival, "ts_last": arrival}
        if LIQUIDATION_TAG not in rec["tags"]:
            reason = self.sim.check(rec, inst)
            if reason is not None:
                self.generate_order_rejected(order, reason, arrival, False)
                return
        self.sim.orders[coid] = rec
        self.new_orders.append(coid)
        self.stats["orders"] += 1
        self.generate_order_accepted(order, VenueOrderId(rec["venue_order_id"]), arrival)
        if seq is not None:
            seq.on_order_arrived(rec)
            if seq.stopping and rec["type"] == "MARKET":
                # after the last bar (on_stop closes): the last close, as the backtest's end of data
                res = self.sim.fill_at_last_close(rec, inst, order)
                res.orders = [r for r in res.orders] or [rec]
                self.sim.write(res)
                self.new_orders.remove(coid)
                self.emit(res)
                self.publish_account()

    async def _cancel_order(self, command: Any) -> None:
        self._cancel([self.cache.order(command.client_order_id)])

    async def _cancel_all_orders(self, command: Any) -> None:
        self._cancel(list(self.cache.orders_open(instrument_id=command.instrument_id)))

    def _cancel(self, orders: list) -> None:
        seq = self.sequencer
        for o in orders:
            if o is None:
                continue
            rec = self.sim.orders.get(o.client_order_id.value)
            now = seq.market_now if seq else self.clock.timestamp_ns()
            if rec is None or rec["status"] not in _OPEN:
                self.generate_order_cancel_rejected(o, o.venue_order_id, "order not open in the paper book", now)
                continue
            pending = seq.cancel_at.get(rec["client_order_id"]) if seq is not None else None
            arrival = pending.pop(0) if pending else None
            if pending == []:
                del seq.cancel_at[rec["client_order_id"]]
            if arrival is None:
                arrival = rec.get("cancel_at")  # a cancel already on its way: this one follows it
            if arrival is not None and arrival > now and not seq.stopping:
                # a strategy's cancel takes effect when it arrives (the sequencer's next venue step,
                # SimVenue.at_arrival): until then the order can still fill, as in the backtest
                if rec.get("cancel_at") is None or arrival < rec["cancel_at"]:
                    rec["cancel_at"] = arrival
                if rec["client_order_id"] not in self.new_orders:
                    self.new_orders.append(rec["client_order_id"])
                continue
            rec.update(status="CANCELED", ts_last=now)
            if rec["client_order_id"] not in self.new_orders:
                self.new_orders.append(rec["client_order_id"])
            self.generate_order_canceled(o, VenueOrderId(rec["venue_order_id"]), now)

    async def _modify_order(self, command: Any) -> None:
        """Quantity / price / trigger of an open order, at once (as the backtest applies the risk manager's
        trailing moves); a trigger moved to or through the market is rejected, as Nautilus does."""
        order = self.cache.order(command.client_order_id)
        rec = self.sim.orders.get(command.client_order_id.value)
        now = self.sequencer.market_now if self.sequencer else self.clock.timestamp_ns()
        if order is None or rec is None or rec["status"] not in _OPEN:
            self.generate_order_modify_rejected(order, command.venue_order_id, "order not open in the paper book", now)
            return
        trig = getattr(command, "trigger_price", None)
        price = getattr(command, "price", None)
        qty = getattr(command, "quantity", None)
        mkt = self.sim.market_at(rec["instrument_id"], now)
        if trig is not None and mkt is not None and rec["type"].startswith("STOP") and not rec.get("triggered"):
            t = trig.as_double()
            if (t <= mkt) if rec["side"] == "BUY" else (t >= mkt):
                self.generate_order_modify_rejected(order, command.venue_order_id,
                                                    f"trigger {trig} is through the market {mkt}", now)
                return
        if trig is not None and rec.get("trigger") is not None:
            rec["trigger"] = str(trig)
        if price is not None and rec.get("price") is not None:
            rec["price"] = str(price)
        if qty is not None:
            rec["quantity"] = str(qty)
        rec["ts_last"] = now
        if rec["client_order_id"] not in self.new_orders:
            self.new_orders.append(rec["client_order_id"])  # stored with the bar's commit
        inst = self.cache.instrument(order.instrument_id)
        self.generate_order_updated(
            order, VenueOrderId(rec["venue_order_id"]), Quantity(_d(rec["quantity"]), inst.size_precision),
            Price(_d(rec["price"]), inst.price_precision) if rec.get("price") else None,
            Price(_d(rec["trigger"]), inst.price_precision) if rec.get("trigger") else None, None, now)

    async def _query_account(self, command: Any) -> None:
        self.publish_account()

    async def _query_order(self, command: Any) -> None:
        return None

    # -- events for a step
    def emit(self, res: StepResult) -> list[str]:
        """Emit the fills of ``res`` (and the new account state); returns the client order ids filled."""
        done = []
        for f in res.fills:
            order = self.cache.order(ClientOrderId(f["client_order_id"]))
            inst = self.cache.instrument(InstrumentId.from_str(f["instrument_id"]))
            if order is None or inst is None:
                continue
            ccy = getattr(inst, "settlement_currency", None) or inst.quote_currency
            self.generate_order_filled(
                order, VenueOrderId(f["venue_order_id"]), None, TradeId(f["trade_id"]),
                Quantity(_d(f["qty"]), inst.size_precision), Price(_d(f["px"]), inst.price_precision),
                inst.quote_currency, Money(_d(f["fee"]), ccy),
                LiquiditySide.MAKER if f["liquidity"] == "MAKER" else LiquiditySide.TAKER, int(f["ts"]))
            self.stats["fills"] += 1
            done.append(f["client_order_id"])
        return done

    # -- reconciliation
    def _order_report(self, rec: dict) -> OrderStatusReport | None:
        inst = self.cache.instrument(InstrumentId.from_str(rec["instrument_id"]))
        if inst is None:
            return None
        filled = _d(rec["filled_qty"])
        typ = rec["type"]
        stop = typ.startswith("STOP")
        return OrderStatusReport(
            account_id=self.account_id, instrument_id=inst.id, venue_order_id=VenueOrderId(rec["venue_order_id"]),
            order_side=OrderSide.BUY if rec["side"] == "BUY" else OrderSide.SELL,
            order_type=getattr(OrderType, typ), time_in_force=TimeInForce.GTC,
            order_status=getattr(OrderStatus, rec["status"]), quantity=Quantity(_d(rec["quantity"]), inst.size_precision),
            filled_qty=Quantity(filled, inst.size_precision), ts_accepted=rec["ts_accepted"], ts_last=rec["ts_last"],
            ts_init=self.clock.timestamp_ns(), client_order_id=ClientOrderId(rec["client_order_id"]),
            trigger_price=Price(_d(rec["trigger"]), inst.price_precision) if stop else None,
            price=Price(_d(rec["price"]), inst.price_precision) if rec.get("price") else None,
            trigger_type=TriggerType.DEFAULT if stop else None,
            avg_px=_d(rec["avg_px"]) if filled > 0 else None, reduce_only=rec["reduce_only"],
        )

    def _fill_report(self, f: dict) -> FillReport | None:
        inst = self.cache.instrument(InstrumentId.from_str(f["instrument_id"]))
        if inst is None:
            return None
        ccy = getattr(inst, "settlement_currency", None) or inst.quote_currency
        return FillReport(
            account_id=self.account_id, instrument_id=inst.id, venue_order_id=VenueOrderId(f["venue_order_id"]),
            trade_id=TradeId(f["trade_id"]), order_side=OrderSide.BUY if f["side"] == "BUY" else OrderSide.SELL,
            last_qty=Quantity(_d(f["qty"]), inst.size_precision), last_px=Price(_d(f["px"]), inst.price_precision),
            commission=Money(_d(f["fee"]), ccy),
            liquidity_side=LiquiditySide.MAKER if f["liquidity"] == "MAKER" else LiquiditySide.TAKER,
            ts_event=f["ts"], ts_init=self.clock.timestamp_ns(), client_order_id=ClientOrderId(f["client_order_id"]),
        )

    def _position_reports(self) -> list[PositionStatusReport]:
        out = []
        for iid in sorted({k.split("|")[0] for k in self.sim.positions}):
            inst = self.cache.instrument(InstrumentId.from_str(iid))
            q = self.sim.net_qty(iid)
            if inst is None or q == 0:
                continue
            p = next(p for k, p in self.sim.positions.items() if k.split("|")[0] == iid and p.qty != 0)
            out.append(PositionStatusReport(
                account_id=self.account_id, instrument_id=inst.id,
                position_side=PositionSide.LONG if q > 0 else PositionSide.SHORT,
                quantity=Quantity(abs(q), inst.size_precision), ts_last=p.ts_last, ts_init=self.clock.timestamp_ns(),
                avg_px_open=p.avg_px))
        return out

    async def _generate_mass_status(self, lookback_mins: int | None) -> ExecutionMassStatus:
        if not self.sim.orders and not self.sim.balances:
            self.sim.load(self.starting)
        ms = ExecutionMassStatus(self.client_id, self.account_id, Venue(self.sim.live_venue), self.clock.timestamp_ns())
        stored = self.sim.book.orders()
        orders = [r for r in map(self._order_report, stored.values()) if r is not None]
        fills = [r for r in map(self._fill_report, self.sim.book.fills().values()) if r is not None]
        positions = self._position_reports()
        ms.add_order_reports(orders)
        ms.add_fill_reports(fills)
        ms.add_position_reports(positions)
        log.info("paper reconciliation: %d orders, %d fills, %d positions", len(orders), len(fills), len(positions))
        return ms

    async def _generate_order_status_report(self, command: Any) -> OrderStatusReport | None:
        rec = self.sim.orders.get(command.client_order_id.value) if command.client_order_id else None
        return self._order_report(rec) if rec else None

    async def _generate_order_status_reports(self, command: Any) -> list[OrderStatusReport]:
        return [r for r in map(self._order_report, self.sim.book.orders().values()) if r is not None and (
            not getattr(command, "open_only", False) or r.order_status in (OrderStatus.ACCEPTED,))]

    async def _generate_fill_reports(self, command: Any) -> list[FillReport]:
        return [r for r in map(self._fill_report, self.sim.book.fills().values()) if r is not None]

    async def _generate_position_status_reports(self, command: Any) -> list[PositionStatusReport]:
        return self._position_reports()


class SimExecClientFactory(ExecutionClientFactory):
    """Builds the session's :class:`SimExecutionClient` (one per node)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.last_client: SimExecutionClient | None = None

    def create(self, *, name: str, config: Any, cache: Any, clock: Any, trader_id: Any) -> SimExecutionClient:  # noqa: D102
        self.last_client = SimExecutionClient(name=name, config=config, cache=cache, clock=clock, trader_id=trader_id,
                                              **self.settings)
        return self.last_client


def _denied(order: Any) -> bool:
    return order is not None and order.status in (OrderStatus.DENIED, OrderStatus.REJECTED)
