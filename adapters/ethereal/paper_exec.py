"""Paper execution for Ethereal: simulated fills on live Ethereal quotes, the book kept in Redis.

rc7 refuses a Nautilus cache database on nodes with Python clients (NAUTILUS_NOTES §8), so this
execution client keeps its own book in Redis and hands it back to Nautilus at start-up through
reconciliation (``_generate_mass_status``: order, fill and position reports), like a real venue.

Matching (checked every ``poll_ms`` on the node's event loop, against ``cache.quote(instrument)``):

* MARKET: fills in full at the first quote whose ``ts_event`` is later than the order's
  submission (the *next* quote): buys at the ask, sells at the bid; taker fee.
* LIMIT: a marketable limit at submission is a taker fill at the quote (post-only: rejected);
  otherwise it rests and fills in full at its limit price once the opposite quote reaches it
  (ask <= limit for a buy, bid >= limit for a sell); maker fee.
* Fees: ``qty x price x fee`` in USDT (Ethereal settles in USDe, mapped to USDT; docs/ethereal.md),
  ``maker_fee`` / ``taker_fee`` fractions from the paper config.
* Reduce-only orders that would open or increase a position are rejected at submission.
* Netting position per instrument; realized PnL ``closed qty x (exit - avg entry)`` and fees go to
  the USDT balance. No margin check, no liquidation, no funding (the recorder's ledger has it).

Redis keys (``ethpaper:<trader_id>:``): ``orders`` hash client_order_id -> JSON, ``fills`` hash
trade_id -> JSON, ``positions`` hash instrument_id -> JSON ``{qty (signed), avg_px}``, ``balance``
hash currency -> total, ``seq`` counter (venue order ids ``P-<n>``, trade ids ``PT-<n>``).
Every fill is one MULTI/EXEC transaction (fill + order + position + balance) written *before*
Nautilus hears of it, so a ``kill -9`` either loses the whole fill (the order is still open and
fills again at a later quote) or keeps it, and the restart reports it exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

import redis
from nautilus_trader.config import ExecutionClientConfig
from nautilus_trader.live.clients import ExecutionClient, ExecutionClientFactory
from nautilus_trader.model import (
    AccountBalance,
    AccountId,
    AccountType,
    ClientOrderId,
    ExecutionMassStatus,
    FillReport,
    InstrumentId,
    LiquiditySide,
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
    VenueOrderId,
)

from adapters.ethereal.common.constants import ETHEREAL_VENUE
from adapters.ethereal.common.parsing import settlement_currency

log = logging.getLogger("adapters.ethereal.paper")

_OPEN = ("ACCEPTED", "PARTIALLY_FILLED")


class RedisPaperBook:
    """The paper venue's book in Redis (see the module docstring for the keys).

    Args:
        trader_id: Nautilus trader id; names the key space ``ethpaper:<trader_id>:``.
        host, port: Redis server.
    """

    def __init__(self, trader_id: str, host: str = "127.0.0.1", port: int = 6379) -> None:
        self.r = redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=5)
        self.prefix = f"ethpaper:{trader_id}:"

    def next_seq(self) -> int:
        """A new sequence number (venue order ids and trade ids)."""
        return int(self.r.incr(self.prefix + "seq"))

    def orders(self) -> dict[str, dict]:
        """client_order_id -> order record."""
        return {k: json.loads(v) for k, v in self.r.hgetall(self.prefix + "orders").items()}

    def fills(self) -> dict[str, dict]:
        """trade_id -> fill record."""
        return {k: json.loads(v) for k, v in self.r.hgetall(self.prefix + "fills").items()}

    def positions(self) -> dict[str, dict]:
        """instrument_id -> ``{"qty": signed str, "avg_px": str, "ts_last": ns}``."""
        return {k: json.loads(v) for k, v in self.r.hgetall(self.prefix + "positions").items()}

    def balances(self) -> dict[str, str]:
        """currency -> total (decimal string)."""
        return self.r.hgetall(self.prefix + "balance")

    def init_balances(self, starting: dict[str, str]) -> None:
        """Set the starting balances once (HSETNX: a restart keeps the stored ones)."""
        for ccy, amount in starting.items():
            self.r.hsetnx(self.prefix + "balance", ccy, amount)

    def put_order(self, rec: dict) -> None:
        """Store/replace one order record."""
        self.r.hset(self.prefix + "orders", rec["client_order_id"], json.dumps(rec))

    def apply_fill(self, order: dict, fill: dict, currency: str) -> tuple[dict, dict, str]:
        """Apply one fill atomically (one MULTI/EXEC). Returns (order, position, balance) after it.

        Raises:
            ValueError: the trade id is already stored (would duplicate a fill).
        """
        if self.r.hexists(self.prefix + "fills", fill["trade_id"]):
            raise ValueError(f"fill {fill['trade_id']} already applied")
        q, px, fee = Decimal(fill["qty"]), Decimal(fill["px"]), Decimal(fill["fee"])
        signed = q if fill["side"] == "BUY" else -q
        pos = self.positions().get(fill["instrument_id"], {"qty": "0", "avg_px": "0"})
        old, avg = Decimal(pos["qty"]), Decimal(pos["avg_px"])
        realized = Decimal(0)
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):  # open or add: weighted average entry
            avg = (abs(old) * avg + q * px) / abs(new)
        else:
            closed = min(abs(old), q)
            realized = closed * (px - avg) * (1 if old > 0 else -1)
            if new == 0:
                avg = Decimal(0)
            elif (new > 0) != (old > 0):  # flipped: the remainder opens at this price
                avg = px
        pos = {"qty": str(new), "avg_px": str(avg), "ts_last": fill["ts"]}
        bal = Decimal(self.balances().get(currency, "0")) + realized - fee
        filled = Decimal(order["filled_qty"]) + q
        order = {**order, "filled_qty": str(filled), "ts_last": fill["ts"],
                 "avg_px": str(((Decimal(order.get("avg_px") or 0) * (filled - q)) + q * px) / filled),
                 "status": "FILLED" if filled >= Decimal(order["quantity"]) else "PARTIALLY_FILLED"}
        fill = {**fill, "realized_pnl": str(realized)}
        p = self.r.pipeline(transaction=True)
        p.hset(self.prefix + "fills", fill["trade_id"], json.dumps(fill))
        p.hset(self.prefix + "orders", order["client_order_id"], json.dumps(order))
        p.hset(self.prefix + "positions", fill["instrument_id"], json.dumps(pos))
        p.hset(self.prefix + "balance", currency, str(bal))
        p.execute()
        return order, pos, str(bal)

    def clear(self) -> int:
        """Delete every key of this trader; returns the count."""
        keys = list(self.r.scan_iter(self.prefix + "*"))
        return self.r.delete(*keys) if keys else 0


class EtherealPaperExecutionClient(ExecutionClient):
    """Simulated Ethereal execution (venue ``ETHEREAL``, NETTING, MARGIN) with its book in Redis.

    Args:
        trader_id: the node's trader id (names the Redis keys).
        starting_balances: e.g. ``["100000 USDT"]``; used only when Redis has no balance yet.
        maker_fee, taker_fee: fee fractions (0.0002 = 2 bps).
        redis_host, redis_port: Redis server.
        poll_ms: matching cadence against the cached quotes.
    """

    def __init__(self, *, name: str, config: ExecutionClientConfig, cache, clock, trader_id,
                 starting_balances: list[str], maker_fee: Decimal, taker_fee: Decimal,
                 redis_host: str = "127.0.0.1", redis_port: int = 6379, account_id: str = "ETHEREAL-001",
                 poll_ms: int = 20) -> None:
        super().__init__(name=name, config=config, cache=cache, clock=clock, trader_id=trader_id,
                         venue=ETHEREAL_VENUE, account_id=AccountId(account_id), account_type=AccountType.MARGIN,
                         oms_type=OmsType.NETTING, base_currency=None)
        self.book = RedisPaperBook(str(trader_id), redis_host, redis_port)
        # the book's currency is the starting balance's ("USDT": the legacy mapping of USDe; else USDE)
        ccys = {b.split()[1].upper() for b in starting_balances}
        self.currency = settlement_currency("USDT" if ccys == {"USDT"} else None)
        self.maker_fee, self.taker_fee = Decimal(str(maker_fee)), Decimal(str(taker_fee))
        self.poll_s = poll_ms / 1000
        starting = {}
        for b in starting_balances:
            amount, ccy = b.split()
            starting[ccy] = amount
        self.starting = starting
        self._task: asyncio.Task | None = None
        self.stats = {"fills": 0}

    # ---------------------------------------------------------------- lifecycle
    async def _connect(self) -> None:
        self.book.r.ping()
        self.book.init_balances(self.starting)
        self.publish_account()
        self._task = self.create_task(self._match_loop(), "ethereal-paper-match")

    async def _disconnect(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def publish_account(self) -> None:
        """Publish the Redis balances as the account state (no locked margin is modelled)."""
        balances = []
        for ccy, total in self.book.balances().items():
            m = Money(Decimal(total), self.currency if ccy == self.currency.code else Money.from_str(f"0 {ccy}").currency)
            zero = Money(0, m.currency)
            balances.append(AccountBalance(m, zero, m))
        self.generate_account_state(balances, [], True, self.clock.timestamp_ns())

    # ---------------------------------------------------------------- orders
    async def _submit_order(self, command) -> None:
        self._submit(command.order)

    async def _submit_order_list(self, command) -> None:
        for order in command.order_list.orders:
            self._submit(order)

    def _submit(self, order) -> None:
        if order.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            self.generate_order_denied(order, f"order type {order.order_type} not simulated (MARKET, LIMIT)")
            return
        if self.cache.instrument(order.instrument_id) is None:
            self.generate_order_denied(order, f"instrument {order.instrument_id} not loaded")
            return
        coid = str(order.client_order_id)
        self.generate_order_submitted(order)
        now = self.clock.timestamp_ns()
        if coid in self.book.r.hkeys(self.book.prefix + "orders"):
            self.generate_order_rejected(order, f"duplicate client order id {coid}", now, False)
            return
        if order.is_reduce_only:
            held = Decimal(self.book.positions().get(str(order.instrument_id), {"qty": "0"})["qty"])
            reduces = (held > 0 and order.side == OrderSide.SELL) or (held < 0 and order.side == OrderSide.BUY)
            if not reduces or Decimal(str(order.quantity)) > abs(held):
                self.generate_order_rejected(order, f"reduce-only order would increase the position ({held})", now,
                                             False)
                return
        rec = {"client_order_id": coid, "venue_order_id": f"P-{self.book.next_seq()}",
               "instrument_id": str(order.instrument_id), "side": "BUY" if order.side == OrderSide.BUY else "SELL",
               "type": "MARKET" if order.order_type == OrderType.MARKET else "LIMIT",
               "quantity": str(order.quantity), "filled_qty": "0", "avg_px": "0",
               "price": None if order.order_type == OrderType.MARKET else str(order.price),
               "tif": str(order.time_in_force).split(".")[-1], "post_only": bool(getattr(order, "is_post_only", False)),
               "reduce_only": bool(order.is_reduce_only), "status": "ACCEPTED",
               "ts_submitted": now, "ts_accepted": now, "ts_last": now}
        if rec["type"] == "LIMIT":
            q = self.cache.quote(order.instrument_id)
            if q is not None and self._crosses(rec, q) and rec["post_only"]:
                self.generate_order_rejected(order, "post-only limit would take liquidity", now, True)
                return
            rec["taker_at_submit"] = q is not None and self._crosses(rec, q)
        self.book.put_order(rec)
        self.generate_order_accepted(order, VenueOrderId(rec["venue_order_id"]), now)

    @staticmethod
    def _crosses(rec: dict, q) -> bool:
        px = Decimal(rec["price"])
        return Decimal(str(q.ask_price)) <= px if rec["side"] == "BUY" else Decimal(str(q.bid_price)) >= px

    async def _cancel_order(self, command) -> None:
        self._cancel([self.cache.order(command.client_order_id)])

    async def _cancel_all_orders(self, command) -> None:
        self._cancel([o for o in self.cache.orders_open(instrument_id=command.instrument_id)])

    def _cancel(self, orders: list) -> None:
        stored = self.book.orders()
        now = self.clock.timestamp_ns()
        for o in orders:
            if o is None:
                continue
            rec = stored.get(str(o.client_order_id))
            if rec is None or rec["status"] not in _OPEN:
                self.generate_order_cancel_rejected(o, o.venue_order_id, "order not open in the paper book", now)
                continue
            rec.update(status="CANCELED", ts_last=now)
            self.book.put_order(rec)
            self.generate_order_canceled(o, VenueOrderId(rec["venue_order_id"]), now)

    async def _modify_order(self, command) -> None:
        order = self.cache.order(command.client_order_id)
        self.generate_order_modify_rejected(order, command.venue_order_id, "modify not simulated (Ethereal has no amend)",
                                            self.clock.timestamp_ns())

    async def _query_account(self, command) -> None:
        self.publish_account()

    # ---------------------------------------------------------------- matching
    async def _match_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                self.match_once()
            except Exception as e:  # keep matching; the error is logged
                log.error("paper matching failed: %r", e)

    def match_once(self) -> int:
        """Fill every open order its instrument's current quote allows; returns the fills made."""
        n = 0
        for rec in self.book.orders().values():
            if rec["status"] not in _OPEN:
                continue
            iid = InstrumentId.from_str(rec["instrument_id"])
            q = self.cache.quote(iid)
            if q is None:
                continue
            buy = rec["side"] == "BUY"
            if rec["type"] == "MARKET":
                if q.ts_event <= rec["ts_submitted"]:
                    continue  # wait for the next quote
                px, liq = (q.ask_price if buy else q.bid_price), "TAKER"
            elif rec.get("taker_at_submit"):
                px, liq = (q.ask_price if buy else q.bid_price), "TAKER"
                if not self._crosses(rec, q):
                    rec["taker_at_submit"] = False
                    self.book.put_order(rec)
                    continue
            elif self._crosses(rec, q):
                px, liq = Price.from_str(rec["price"]), "MAKER"
            else:
                continue
            self._fill(rec, iid, Decimal(str(px)), liq, q.ts_event)
            n += 1
        return n

    def _fill(self, rec: dict, iid: InstrumentId, px: Decimal, liq: str, ts: int) -> None:
        inst = self.cache.instrument(iid)
        q = Decimal(rec["quantity"]) - Decimal(rec["filled_qty"])
        fee_rate = self.taker_fee if liq == "TAKER" else self.maker_fee
        fee = (q * px * fee_rate).quantize(Decimal(10) ** -self.currency.precision)
        fill = {"trade_id": f"PT-{self.book.next_seq()}", "client_order_id": rec["client_order_id"],
                "venue_order_id": rec["venue_order_id"], "instrument_id": rec["instrument_id"], "side": rec["side"],
                "qty": str(q), "px": str(px), "fee": str(fee), "liquidity": liq, "ts": int(ts)}
        self.book.apply_fill(rec, fill, self.currency.code)  # Redis first: kill -9 safe
        self.stats["fills"] += 1
        order = self.cache.order(ClientOrderId(rec["client_order_id"]))
        if order is not None:
            self.generate_order_filled(
                order, VenueOrderId(rec["venue_order_id"]), None, TradeId(fill["trade_id"]),
                Quantity(q, inst.size_precision), Price(px, inst.price_precision), self.currency,
                Money(fee, self.currency), LiquiditySide.MAKER if liq == "MAKER" else LiquiditySide.TAKER, int(ts))
        self.publish_account()

    # ---------------------------------------------------------------- reconciliation
    def _order_report(self, rec: dict) -> OrderStatusReport | None:
        inst = self.cache.instrument(InstrumentId.from_str(rec["instrument_id"]))
        if inst is None:
            return None
        limit = rec["type"] == "LIMIT"
        filled = Decimal(rec["filled_qty"])
        return OrderStatusReport(
            account_id=self.account_id, instrument_id=inst.id, venue_order_id=VenueOrderId(rec["venue_order_id"]),
            order_side=OrderSide.BUY if rec["side"] == "BUY" else OrderSide.SELL,
            order_type=OrderType.LIMIT if limit else OrderType.MARKET,
            time_in_force=getattr(TimeInForce, rec["tif"], TimeInForce.GTC),
            order_status=getattr(OrderStatus, rec["status"]), quantity=Quantity(Decimal(rec["quantity"]), inst.size_precision),
            filled_qty=Quantity(filled, inst.size_precision), ts_accepted=rec["ts_accepted"], ts_last=rec["ts_last"],
            ts_init=self.clock.timestamp_ns(), client_order_id=ClientOrderId(rec["client_order_id"]),
            price=Price(Decimal(rec["price"]), inst.price_precision) if limit else None,
            avg_px=Decimal(rec["avg_px"]) if filled > 0 else None,
            post_only=rec["post_only"], reduce_only=rec["reduce_only"],
        )

    def _fill_report(self, f: dict) -> FillReport | None:
        inst = self.cache.instrument(InstrumentId.from_str(f["instrument_id"]))
        if inst is None:
            return None
        return FillReport(
            account_id=self.account_id, instrument_id=inst.id, venue_order_id=VenueOrderId(f["venue_order_id"]),
            trade_id=TradeId(f["trade_id"]), order_side=OrderSide.BUY if f["side"] == "BUY" else OrderSide.SELL,
            last_qty=Quantity(Decimal(f["qty"]), inst.size_precision), last_px=Price(Decimal(f["px"]), inst.price_precision),
            commission=Money(Decimal(f["fee"]), self.currency),
            liquidity_side=LiquiditySide.MAKER if f["liquidity"] == "MAKER" else LiquiditySide.TAKER,
            ts_event=f["ts"], ts_init=self.clock.timestamp_ns(), client_order_id=ClientOrderId(f["client_order_id"]),
        )

    def _position_report(self, iid: str, p: dict) -> PositionStatusReport | None:
        inst = self.cache.instrument(InstrumentId.from_str(iid))
        if inst is None:
            return None
        q = Decimal(p["qty"])
        side = PositionSide.FLAT if q == 0 else (PositionSide.LONG if q > 0 else PositionSide.SHORT)
        return PositionStatusReport(
            account_id=self.account_id, instrument_id=inst.id, position_side=side,
            quantity=Quantity(abs(q), inst.size_precision), ts_last=p["ts_last"], ts_init=self.clock.timestamp_ns(),
            avg_px_open=Decimal(p["avg_px"]) if q != 0 else None,
        )

    async def _generate_mass_status(self, lookback_mins: int | None) -> ExecutionMassStatus:
        ms = ExecutionMassStatus(self.client_id, self.account_id, ETHEREAL_VENUE, self.clock.timestamp_ns())
        orders = [r for r in map(self._order_report, self.book.orders().values()) if r is not None]
        fills = [r for r in map(self._fill_report, self.book.fills().values()) if r is not None]
        positions = [r for r in (self._position_report(k, v) for k, v in self.book.positions().items())
                     if r is not None and r.position_side != PositionSide.FLAT]
        ms.add_order_reports(orders)
        ms.add_fill_reports(fills)
        ms.add_position_reports(positions)
        log.info("Ethereal paper reconciliation: %d orders, %d fills, %d positions", len(orders), len(fills),
                 len(positions))
        return ms

    async def _generate_order_status_report(self, command) -> OrderStatusReport | None:
        rec = self.book.orders().get(str(command.client_order_id)) if command.client_order_id else None
        return self._order_report(rec) if rec else None

    async def _generate_order_status_reports(self, command) -> list[OrderStatusReport]:
        return [r for r in map(self._order_report, self.book.orders().values())
                if r is not None and (not getattr(command, "open_only", False) or r.order_status in (
                    OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED))]

    async def _generate_fill_reports(self, command) -> list[FillReport]:
        return [r for r in map(self._fill_report, self.book.fills().values()) if r is not None]

    async def _generate_position_status_reports(self, command) -> list[PositionStatusReport]:
        return [r for r in (self._position_report(k, v) for k, v in self.book.positions().items()) if r is not None]


class EtherealPaperExecClientFactory(ExecutionClientFactory):
    """Builds :class:`EtherealPaperExecutionClient` with the given keyword settings (see its Args)."""

    def __init__(self, **settings) -> None:
        self.settings = settings
        self.last_client: EtherealPaperExecutionClient | None = None

    def create(self, *, name, config, cache, clock, trader_id) -> EtherealPaperExecutionClient:  # noqa: D102
        self.last_client = EtherealPaperExecutionClient(name=name, config=config, cache=cache, clock=clock,
                                                        trader_id=trader_id, **self.settings)
        return self.last_client
