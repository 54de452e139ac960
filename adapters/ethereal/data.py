"""Live market data client for Ethereal (Nautilus 2 ``live.clients.MarketDataClient``).

Streams (v2 WebSocket) -> Nautilus data:

============================  ==========================  =====================================
Nautilus subscription         Ethereal channel            Output
============================  ==========================  =====================================
``subscribe_order_book_deltas``  ``L2Book`` (symbol)      ``OrderBookDeltas`` (snapshot, then diffs)
``subscribe_quote_ticks``     ``L2Book`` (symbol)         ``QuoteTick`` whenever the top of book changes
``subscribe_trade_ticks``     ``TradeFill`` (symbol)      ``TradeTick`` (aggressor = taker side ``sd``)
``subscribe_mark_prices``     ``Ticker`` (symbol)         ``MarkPriceUpdate`` (``markPx``)
``subscribe_funding_rates``   ``Ticker`` (symbol)         ``FundingRateUpdate`` (``fr1h``, interval 60 min,
                                                          ``next_funding_ns`` = next whole hour), on change
``subscribe_bars`` INTERNAL   (none)                      aggregated by Nautilus from trades/quotes
============================  ==========================  =====================================

Book integrity. A full book is the ``L2Book`` message *without* ``pt`` (the venue's marker; it follows
the subscribe ack); every diff carries ``pt`` = the ``t`` of the previous book message for the
symbol. A snapshot always replaces the book; a diff reaching a book that has no snapshot yet is
never applied (it is in flight from a previous subscription, or the snapshot was lost, and then the
client resubscribes). A diff with ``t`` not after the last one is dropped as out of order; a ``pt``
that differs from the last ``t`` (a missed message), an unparsable level or a crossed book marks the
book invalid, emits nothing further for it and resubscribes to get a fresh snapshot. Diffs are
parsed completely before the local book is changed, so a malformed message never leaves a
half-applied book. After a WebSocket reconnect the books are reset *before* the subscriptions are
replayed, so the replayed snapshots become the books.

Instruments are loaded at connect and refreshed every ``instrument_refresh_mins``; changed
definitions are republished. Counters of messages, drops, gaps and resubscriptions are in
:attr:`EtherealDataClient.stats`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from nautilus_trader.common import Logger
from nautilus_trader.config import DataClientConfig
from nautilus_trader.live.clients import MarketDataClient
from nautilus_trader.model import (
    BookAction,
    BookOrder,
    FundingRateUpdate,
    MarkPriceUpdate,
    OrderBookDelta,
    OrderBookDeltas,
    OrderSide,
    Price,
    QuoteTick,
    RecordFlag,
    TradeId,
    TradeTick,
)

from adapters.ethereal.common.constants import (
    ETHEREAL_VENUE,
    FUNDING_INTERVAL_MINUTES,
    WS_L2_BOOK,
    WS_TICKER,
    WS_TRADE_FILL,
)
from adapters.ethereal.common.enums import VENUE_TO_AGGRESSOR
from adapters.ethereal.common.parsing import MS, ParseError, dec, next_funding_ns, price, qty, ticker_of
from adapters.ethereal.config import EtherealDataClientConfig
from adapters.ethereal.http.client import EtherealHttpClient
from adapters.ethereal.providers import EtherealInstrumentProvider
from adapters.ethereal.websocket.client import EtherealWebSocketClient
from adapters.ethereal.websocket.messages import (
    L2BookData,
    TickerData,
    TradeFillData,
    WsMessageError,
    decode_event,
)

log = logging.getLogger(__name__)

F_LAST = int(RecordFlag.F_LAST.value)
F_SNAPSHOT = int(RecordFlag.F_SNAPSHOT.value)


@dataclass
class BookState:
    """Local L2 book of one symbol: ``bids``/``asks`` price -> size (Decimal), ``last_t`` (ms of the
    last applied message), ``ready`` (a snapshot has been applied since the last (re)subscribe)."""

    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_t: int | None = None
    ready: bool = False
    sequence: int = 0
    last_top: tuple | None = None

    def reset(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.last_t = None
        self.ready = False
        self.last_top = None

    def top(self) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
        if not self.bids or not self.asks:
            return None
        b = max(self.bids)
        a = min(self.asks)
        return b, self.bids[b], a, self.asks[a]


class EtherealDataClient(MarketDataClient):
    """Ethereal market data (see module docstring). Build it with
    :class:`adapters.ethereal.factories.EtherealDataClientFactory`."""

    def __init__(self, *, name: str, config: DataClientConfig, cache, clock,
                 eth_config: EtherealDataClientConfig) -> None:
        self.eth = eth_config.validate()
        self.http = EtherealHttpClient(eth_config.urls(), eth_config.network_enum(),
                                       timeout_s=eth_config.http_timeout_s,
                                       max_retries=eth_config.http_max_retries)
        provider = EtherealInstrumentProvider(self.http, eth_config.tickers, currency=eth_config.settlement_currency)
        super().__init__(name=name, config=config, cache=cache, clock=clock, venue=ETHEREAL_VENUE,
                         instrument_provider=provider)
        self.provider = provider
        self.ws: EtherealWebSocketClient | None = None
        self._books: dict[str, BookState] = {}
        self._users: dict[tuple[str, str], set[str]] = {}  # (channel, symbol) -> wanted outputs
        self._last_funding: dict[str, tuple[Decimal, int]] = {}
        # paper sessions build their bars from the trades themselves (adapters/ethereal/bars.py): with a
        # sink set, trade ticks go to it instead of into Nautilus (whose cache would otherwise price
        # positions at trades the strategies have not been shown yet)
        self.trade_sink = None
        self.mark_sink = None  # likewise for mark prices (the session hands them to Nautilus bar by bar)
        self._seen_trades: deque[str] = deque(maxlen=10_000)
        self._seen_trade_set: set[str] = set()
        self._resubscribing: set[str] = set()
        self.stats = {"messages": 0, "malformed": 0, "out_of_order": 0, "gaps": 0, "crossed": 0,
                      "resubscribes": 0, "reconnects": 0, "instrument_refreshes": 0,
                      "awaiting_snapshot": 0}

    # ------------------------------------------------------------------ lifecycle

    async def _connect(self) -> None:
        try:
            await self.provider.load_all_async()
        except Exception as e:  # Nautilus only logs "connection failed": say why
            msg = f"Ethereal data client start-up failed loading products from {self.http.urls.rest}: {e}"
            Logger("EtherealDataClient").error(msg)
            log.error(msg)
            raise
        for inst in self.provider.list_all():
            self._handle_instrument(inst)
        urls = self.eth.urls()
        self.ws = EtherealWebSocketClient(
            urls.ws, self._on_ws_message, on_connected=self._on_ws_connected, on_open=self._on_ws_open,
            on_error=self._on_ws_error,
            backoff_initial_s=self.eth.ws_backoff_initial_s, backoff_max_s=self.eth.ws_backoff_max_s,
        )
        await self.ws.start()
        if self.eth.instrument_refresh_mins > 0:
            self.create_task(self._refresh_loop(), "ethereal_instrument_refresh")

    async def _disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.stop()
        await self.http.close()

    async def _on_ws_open(self, reconnect: bool) -> None:
        # Called before the subscriptions are replayed: the replayed L2Book snapshots (sent with the
        # subscribe acks) must land on empty books, not be wiped after they were applied.
        for st in self._books.values():
            st.reset()
        self._resubscribing.clear()  # a resubscription of the old connection is void

    async def _on_ws_connected(self, reconnect: bool) -> None:
        if reconnect:
            self.stats["reconnects"] += 1
            log.warning("Ethereal data stream reconnected; order books were rebuilt from fresh snapshots")

    def _on_ws_error(self, text: str) -> None:
        self.stats["malformed"] += 1
        log.error(text)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.eth.instrument_refresh_mins * 60)
            await self.refresh_instruments()

    async def refresh_instruments(self) -> int:
        """Reload products and republish changed or new instruments; returns how many."""
        before = {i.id: _signature(i) for i in self.provider.list_all()}
        try:
            await self.provider.load_all_async()
        except Exception as e:
            log.error("Ethereal instrument refresh failed (keeping the previous definitions): %r", e)
            return 0
        self.stats["instrument_refreshes"] += 1
        changed = 0
        for inst in self.provider.list_all():
            if before.get(inst.id) != _signature(inst):
                self._handle_instrument(inst)
                changed += 1
        return changed

    # ------------------------------------------------------------------ subscriptions

    async def _want(self, channel: str, instrument_id, output: str) -> None:
        symbol = ticker_of(instrument_id)
        if self.provider.instrument_for_symbol(symbol) is None:
            log.error("Ethereal: cannot subscribe %s %s: instrument not loaded", channel, instrument_id)
            return
        users = self._users.setdefault((channel, symbol), set())
        first = not users
        users.add(output)
        if channel == WS_L2_BOOK:
            st = self._books.setdefault(symbol, BookState())
            if output == "deltas" and st.ready:  # joined a running book: start from its current state
                inst = self.provider.instrument_for_symbol(symbol)
                ts = st.last_t * MS
                self._emit_deltas(inst, st, True, [], [], {}, {}, ts, self.clock.timestamp_ns())
        if first and self.ws is not None:
            await self.ws.subscribe(channel, symbol=symbol)

    async def _unwant(self, channel: str, instrument_id, output: str) -> None:
        symbol = ticker_of(instrument_id)
        users = self._users.get((channel, symbol))
        if not users:
            return
        users.discard(output)
        if not users:
            del self._users[(channel, symbol)]
            if channel == WS_L2_BOOK:
                self._books.pop(symbol, None)
            if self.ws is not None:
                await self.ws.unsubscribe(channel, symbol=symbol)

    def _wants(self, channel: str, symbol: str, output: str) -> bool:
        return output in self._users.get((channel, symbol), ())

    async def _subscribe_instruments(self, command) -> None:
        pass  # instruments are pushed at connect and on refresh

    async def _subscribe_instrument(self, command) -> None:
        pass

    async def _unsubscribe_instruments(self, command) -> None:
        pass

    async def _unsubscribe_instrument(self, command) -> None:
        pass

    async def _subscribe_book_deltas(self, command) -> None:
        await self._want(WS_L2_BOOK, command.instrument_id, "deltas")

    async def _unsubscribe_book_deltas(self, command) -> None:
        await self._unwant(WS_L2_BOOK, command.instrument_id, "deltas")

    async def _subscribe_quotes(self, command) -> None:
        await self._want(WS_L2_BOOK, command.instrument_id, "quotes")

    async def _unsubscribe_quotes(self, command) -> None:
        await self._unwant(WS_L2_BOOK, command.instrument_id, "quotes")

    async def _subscribe_trades(self, command) -> None:
        await self._want(WS_TRADE_FILL, command.instrument_id, "trades")

    async def _unsubscribe_trades(self, command) -> None:
        await self._unwant(WS_TRADE_FILL, command.instrument_id, "trades")

    async def _subscribe_mark_prices(self, command) -> None:
        await self._want(WS_TICKER, command.instrument_id, "mark")

    async def _unsubscribe_mark_prices(self, command) -> None:
        await self._unwant(WS_TICKER, command.instrument_id, "mark")

    async def _subscribe_funding_rates(self, command) -> None:
        await self._want(WS_TICKER, command.instrument_id, "funding")

    async def _unsubscribe_funding_rates(self, command) -> None:
        await self._unwant(WS_TICKER, command.instrument_id, "funding")

    async def _subscribe_bars(self, command) -> None:
        if command.bar_type.is_externally_aggregated():
            log.error("Ethereal has no live candle stream: subscribe to %s with aggregation source "
                      "INTERNAL (bars are then built by Nautilus from trades/quotes)", command.bar_type)

    async def _unsubscribe_bars(self, command) -> None:
        pass

    # ------------------------------------------------------------------ stream handling

    def _on_ws_message(self, message: dict) -> None:
        self.stats["messages"] += 1
        try:
            decoded = decode_event(message)
        except WsMessageError as e:
            self.stats["malformed"] += 1
            log.error("Ethereal: dropped message: %s", e)
            return
        if decoded is None:
            return
        event, _server_ms, data = decoded
        if event == WS_L2_BOOK:
            self._on_l2_book(data)
        elif event == WS_TICKER:
            self._on_ticker(data)
        elif event == WS_TRADE_FILL:
            self._on_trades(data)

    def _invalidate(self, symbol: str, reason: str) -> None:
        st = self._books.get(symbol)
        if st is None:
            return
        log.error("Ethereal %s book invalid (%s); resubscribing for a fresh snapshot", symbol, reason)
        st.reset()
        if symbol in self._resubscribing or self.ws is None:
            return
        self._resubscribing.add(symbol)
        self.stats["resubscribes"] += 1

        async def _resub() -> None:
            try:
                await self.ws.resubscribe(WS_L2_BOOK, symbol=symbol)
            except Exception as e:
                log.error("Ethereal %s resubscribe failed: %r", symbol, e)
            finally:
                self._resubscribing.discard(symbol)

        self.create_task(_resub(), f"ethereal_resubscribe_{symbol}")

    def _on_l2_book(self, d: L2BookData) -> None:
        st = self._books.get(d.s)
        inst = self.provider.instrument_for_symbol(d.s)
        if st is None or inst is None:
            return  # not (or no longer) subscribed
        snapshot = d.pt is None  # the venue's marker of a full book (every diff carries pt)
        if not snapshot:
            if not st.ready:
                # A diff without a base: in flight from the previous subscription (dropped), or the
                # snapshot was lost (then ask for a new one). It never becomes the book.
                self.stats["awaiting_snapshot"] += 1
                if d.s not in self._resubscribing:
                    self._invalidate(d.s, "diff received before any snapshot")
                return
            if st.last_t is not None and d.t <= st.last_t:
                self.stats["out_of_order"] += 1
                log.warning("Ethereal %s L2Book t=%d not after last t=%d: dropped", d.s, d.t, st.last_t)
                return
            if d.pt is None or d.pt != st.last_t:
                self.stats["gaps"] += 1
                self._invalidate(d.s, f"gap: pt={d.pt} but last t={st.last_t}")
                return
        try:  # parse everything before touching the book
            bids = [(dec(lv.price, "bid price"), dec(lv.qty, "bid qty")) for lv in d.b]
            asks = [(dec(lv.price, "ask price"), dec(lv.qty, "ask qty")) for lv in d.a]
            for p, q in bids + asks:
                price(p, inst.price_precision)
                qty(q, inst.size_precision)
        except ParseError as e:
            self.stats["malformed"] += 1
            if snapshot:
                log.error("Ethereal %s: malformed L2Book snapshot dropped: %s", d.s, e)
            else:
                self._invalidate(d.s, f"malformed diff: {e}")
            return
        new_bids = {} if snapshot else dict(st.bids)
        new_asks = {} if snapshot else dict(st.asks)
        for book, levels in ((new_bids, bids), (new_asks, asks)):
            for p, q in levels:
                if q == 0:
                    book.pop(p, None)
                else:
                    book[p] = q
        if new_bids and new_asks and max(new_bids) >= min(new_asks):
            self.stats["crossed"] += 1
            self._invalidate(d.s, f"crossed book: bid {max(new_bids)} >= ask {min(new_asks)}")
            return
        old_bids, old_asks = st.bids, st.asks
        st.bids, st.asks, st.last_t, st.ready = new_bids, new_asks, d.t, True
        ts_event = d.t * MS
        ts_init = self.clock.timestamp_ns()
        if self._wants(WS_L2_BOOK, d.s, "deltas"):
            self._emit_deltas(inst, st, snapshot, bids, asks, old_bids, old_asks, ts_event, ts_init)
        if self._wants(WS_L2_BOOK, d.s, "quotes"):
            top = st.top()
            if top is not None and top != st.last_top:
                st.last_top = top
                b, bs, a, as_ = top
                self._handle_data(QuoteTick(
                    inst.id, price(b, inst.price_precision), price(a, inst.price_precision),
                    qty(bs, inst.size_precision), qty(as_, inst.size_precision), ts_event, ts_init,
                ))

    def _emit_deltas(self, inst, st: BookState, snapshot: bool, bids, asks, old_bids, old_asks,
                     ts_event: int, ts_init: int) -> None:
        pp, sp = inst.price_precision, inst.size_precision
        out: list[OrderBookDelta] = []
        st.sequence += 1
        seq = st.sequence
        if snapshot:
            out.append(OrderBookDelta.clear(inst.id, seq, ts_event, ts_init))
            levels = [(OrderSide.BUY, p, q) for p, q in st.bids.items()] + \
                     [(OrderSide.SELL, p, q) for p, q in st.asks.items()]
            for side, p, q in levels:
                out.append(OrderBookDelta(inst.id, BookAction.ADD, BookOrder(side, price(p, pp), qty(q, sp), 0),
                                          F_SNAPSHOT, seq, ts_event, ts_init))
        else:
            for side, levels, old in ((OrderSide.BUY, bids, old_bids), (OrderSide.SELL, asks, old_asks)):
                for p, q in levels:
                    if q == 0:
                        if p not in old:
                            continue
                        action = BookAction.DELETE
                    else:
                        action = BookAction.UPDATE if p in old else BookAction.ADD
                    out.append(OrderBookDelta(inst.id, action, BookOrder(side, price(p, pp), qty(q, sp), 0),
                                              0, seq, ts_event, ts_init))
        if not out:
            return
        last = out[-1]
        out[-1] = OrderBookDelta(inst.id, last.action, last.order, int(last.flags) | F_LAST, seq, ts_event, ts_init)
        self._handle_data(OrderBookDeltas(inst.id, out))

    def _on_ticker(self, d: TickerData) -> None:
        inst = self.provider.instrument_for_symbol(d.s)
        if inst is None:
            return
        ts_event = d.t * MS
        ts_init = self.clock.timestamp_ns()
        try:
            if d.markPx is not None and self._wants(WS_TICKER, d.s, "mark"):
                mark = dec(d.markPx, "markPx")
                update = MarkPriceUpdate(inst.id, Price.from_str(str(mark)), ts_event, ts_init)
                if self.mark_sink is not None:
                    self.mark_sink(update)
                else:
                    self._handle_data(update)
            if d.fr1h is not None and self._wants(WS_TICKER, d.s, "funding"):
                rate = dec(d.fr1h, "fr1h")
                nxt = next_funding_ns(ts_event)
                # announce each settlement, also when the rate stays the same across the hour
                if self._last_funding.get(d.s) != (rate, nxt):
                    self._last_funding[d.s] = (rate, nxt)
                    self._handle_data(FundingRateUpdate(
                        inst.id, rate, ts_event, ts_init,
                        interval=FUNDING_INTERVAL_MINUTES, next_funding_ns=nxt,
                    ))
        except ParseError as e:
            self.stats["malformed"] += 1
            log.error("Ethereal %s: malformed Ticker dropped: %s", d.s, e)

    def _on_trades(self, d: TradeFillData) -> None:
        inst = self.provider.instrument_for_symbol(d.s)
        if inst is None or not self._wants(WS_TRADE_FILL, d.s, "trades"):
            return
        ts_init = self.clock.timestamp_ns()
        ticks = []
        try:
            for item in d.d:
                if item.id in self._seen_trade_set:
                    continue  # replayed after a reconnect
                if item.sd not in VENUE_TO_AGGRESSOR:
                    raise ParseError(f"trade {item.id}: side {item.sd} is not 0 or 1")
                ticks.append((item.id, TradeTick(
                    inst.id, price(item.px, inst.price_precision, "px"), qty(item.sz, inst.size_precision, "sz"),
                    VENUE_TO_AGGRESSOR[item.sd], TradeId(item.id), d.t * MS, ts_init,
                )))
        except ParseError as e:
            self.stats["malformed"] += 1
            log.error("Ethereal %s: malformed TradeFill dropped: %s", d.s, e)
            return
        for trade_id, tick in ticks:
            if len(self._seen_trades) == self._seen_trades.maxlen:
                self._seen_trade_set.discard(self._seen_trades[0])
            self._seen_trades.append(trade_id)
            self._seen_trade_set.add(trade_id)
            if self.trade_sink is not None:
                self.trade_sink(tick)
            else:
                self._handle_data(tick)


def _signature(inst) -> tuple:
    return (str(inst.price_increment), str(inst.size_increment), str(inst.margin_init), str(inst.margin_maint),
            str(inst.max_quantity), tuple(sorted((inst.info or {}).items())))
