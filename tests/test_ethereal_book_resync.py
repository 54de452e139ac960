"""Order book correctness across resubscribes and reconnects, against the mock venue's WebSocket.

The venue marks a full book by the absence of ``pt``; the data client must (a) take only such a
message as a snapshot, (b) reset its books before subscriptions are replayed after a reconnect, and
(c) not drop a snapshot that arrives together with the subscribe ack of a resubscription. In each
scenario the client's book is compared with the mock venue's own book after a later diff.
"""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal

from nautilus_trader.common import Clock
from nautilus_trader.config import DataClientConfig
from nautilus_trader.model import InstrumentId

from adapters.ethereal.config import EtherealDataClientConfig
from adapters.ethereal.data import BookState, EtherealDataClient
from nautilus_app.testkit.ethereal_mock import MockEtherealServer
from nautilus_app.testkit.ethereal_mock.testkit import FIXTURES, fixture

IID = InstrumentId.from_str("BTCUSD-PERP.ETHEREAL")
WS = fixture("ws_messages.json")


def make_client(server) -> EtherealDataClient:
    cfg = EtherealDataClientConfig(network="testnet", rest_url=server.rest_url, ws_url=server.ws_url,
                                   tickers=["BTCUSD"], instrument_refresh_mins=0,
                                   ws_backoff_initial_s=0.05, ws_backoff_max_s=0.2)
    c = EtherealDataClient(name="ETHEREAL", config=DataClientConfig(), cache=None, clock=Clock.new_test(),
                           eth_config=cfg)
    c.out = []
    c._handle_data = c.out.append
    c._handle_instrument = lambda inst: None
    c.create_task = lambda coro, name="": asyncio.get_running_loop().create_task(coro, name=name)
    return c


def venue_book(server, symbol="BTCUSD"):
    def get():
        b = server.venue.books[symbol]
        return dict(b["bids"]), dict(b["asks"])
    return server.call(get)


async def until(pred, timeout=5.0):
    end = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < end:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


def local_book(c, symbol="BTCUSD"):
    st = c._books[symbol]
    return dict(st.bids), dict(st.asks)


async def _session(server, scenario):
    c = make_client(server)
    await c._connect()
    try:
        await c._want("L2Book", IID, "deltas")
        assert await until(lambda: c._books["BTCUSD"].ready)
        assert local_book(c) == venue_book(server)
        await scenario(c)
        # a diff after the event: applied on top of a correct book it must equal the venue's book
        await asyncio.to_thread(server.call, server.venue.publish_book_diff, "BTCUSD", [["94998", "2.5"]], [])
        assert await until(lambda: c._books["BTCUSD"].ready and Decimal("94998") in c._books["BTCUSD"].bids)
        await asyncio.sleep(0.1)
        return local_book(c), c.stats
    finally:
        await c._disconnect()


def test_resubscribe_after_gap_keeps_the_snapshot_sent_with_the_ack():
    """A gap makes the client resubscribe; the mock answers the subscribe with ack + snapshot at once.
    Before the fix the snapshot was dropped while the symbol was flagged as resubscribing and the
    next diff became the whole book."""
    server = MockEtherealServer(FIXTURES).start()
    try:
        async def gap(c):
            server.venue.corrupt_pt = True
            await asyncio.to_thread(server.call, server.venue.publish_book_diff, "BTCUSD", [], [["95010", "3"]])
            assert await until(lambda: c.stats["gaps"] == 1)
            assert await until(lambda: not c._resubscribing and c._books["BTCUSD"].ready)

        book, stats = asyncio.run(_session(server, gap))
        assert stats["resubscribes"] == 1
        assert book == venue_book(server)
    finally:
        server.stop()


def test_reconnect_resets_books_before_replaying_subscriptions():
    """The venue closes connections (at least every ~4 h); after the reconnect the replayed
    subscription's snapshot must become the book. Before the fix books were reset after the replay,
    i.e. after that snapshot had been applied, and the next diff became the book."""
    server = MockEtherealServer(FIXTURES).start()
    try:
        async def reconnect(c):
            await asyncio.to_thread(server.call, server.venue.publish_book_diff, "BTCUSD", [["94990", "1"]], [])
            n = c.ws.connect_count
            await asyncio.to_thread(server.call, server.venue.drop_connections)
            assert await until(lambda: c.ws.connect_count == n + 1 and c.stats["reconnects"] == 1)
            assert await until(lambda: c._books["BTCUSD"].ready)

        book, stats = asyncio.run(_session(server, reconnect))
        assert stats["reconnects"] == 1
        assert book == venue_book(server)
    finally:
        server.stop()


def test_snapshot_is_the_message_without_pt():
    """Only a message without ``pt`` is a full book. A diff (with ``pt``) reaching a book that waits
    for its snapshot (e.g. in flight from the previous subscription) must not become the book."""
    c = EtherealDataClient(name="ETHEREAL", config=DataClientConfig(), cache=None, clock=Clock.new_test(),
                           eth_config=EtherealDataClientConfig(rest_url="http://127.0.0.1:1"))
    c.provider.add_products(fixture("products.json")["data"])
    c.out = []
    c._handle_data = c.out.append
    c._users[("L2Book", "BTCUSD")] = {"deltas"}
    c._books["BTCUSD"] = BookState()
    c._resubscribing.add("BTCUSD")  # a resubscription is in flight: its snapshot is still to come
    stale = copy.deepcopy(WS["l2book_diff"])
    c._on_ws_message(stale)
    assert not c._books["BTCUSD"].ready and c.out == []
    c._on_ws_message(WS["l2book_snapshot"])  # no pt: the full book, even while the flag is set
    assert c._books["BTCUSD"].ready
    assert local_book(c) == ({Decimal("95000"): Decimal("0.4"), Decimal("94999"): Decimal("0.5")},
                             {Decimal("95001"): Decimal("0.5"), Decimal("95002"): Decimal("0.6")})
