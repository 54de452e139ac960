"""Market data client: book snapshot/diffs, gap and out-of-order handling, malformed messages,
quotes, trades, mark prices and funding (client driven directly with canonical payloads)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from nautilus_trader.common import Clock
from nautilus_trader.config import DataClientConfig
from nautilus_trader.model import (
    AggressorSide,
    BookAction,
    FundingRateUpdate,
    MarkPriceUpdate,
    OrderBookDeltas,
    QuoteTick,
    TradeTick,
)

from adapters.ethereal.config import EtherealDataClientConfig
from adapters.ethereal.data import EtherealDataClient
from nautilus_app.testkit.ethereal_mock.testkit import fixture

WS = fixture("ws_messages.json")


class _Ws:
    def __init__(self) -> None:
        self.resubscribed: list = []

    async def resubscribe(self, channel, **params):
        self.resubscribed.append((channel, params))


@pytest.fixture
def client():
    c = EtherealDataClient(name="ETHEREAL", config=DataClientConfig(), cache=None, clock=Clock.new_test(),
                           eth_config=EtherealDataClientConfig(rest_url="http://127.0.0.1:1"))
    c.provider.add_products(fixture("products.json")["data"])
    c.out = []
    c._handle_data = c.out.append
    c.ws = _Ws()
    c.tasks = []
    c.create_task = lambda coro, name="": (c.tasks.append(name), coro.close())
    for ch, out in (("L2Book", "deltas"), ("L2Book", "quotes"), ("Ticker", "mark"), ("Ticker", "funding"),
                    ("TradeFill", "trades")):
        c._users.setdefault((ch, "BTCUSD"), set()).add(out)
    from adapters.ethereal.data import BookState
    c._books["BTCUSD"] = BookState()
    return c


def book(c):
    st = c._books["BTCUSD"]
    return dict(st.bids), dict(st.asks)


def test_snapshot_then_diff(client):
    client._on_ws_message(WS["l2book_snapshot"])
    deltas, quote = client.out
    assert isinstance(deltas, OrderBookDeltas) and isinstance(quote, QuoteTick)
    d = deltas.deltas
    assert d[0].action == BookAction.CLEAR and len(d) == 5  # clear + 2 bids + 2 asks
    assert int(d[-1].flags) == 32 | 128  # F_SNAPSHOT | F_LAST
    assert (str(quote.bid_price), str(quote.ask_price), str(quote.bid_size), str(quote.ask_size)) == \
        ("95000", "95001", "0.4000", "0.5000")
    assert quote.ts_event == 1767225600200 * 1_000_000
    client.out.clear()
    client._on_ws_message(WS["l2book_diff"])  # ask 95001 removed, ask 95003 added, bid 95000 -> 0.7
    deltas, quote = client.out
    actions = sorted((str(x.order.price), x.action.name) for x in deltas.deltas)
    assert actions == [("95000", "UPDATE"), ("95001", "DELETE"), ("95003", "ADD")]
    assert int(deltas.deltas[-1].flags) == 128
    bids, asks = book(client)
    assert bids == {Decimal("95000"): Decimal("0.7"), Decimal("94999"): Decimal("0.5")}
    assert asks == {Decimal("95002"): Decimal("0.6"), Decimal("95003"): Decimal("1.25")}
    assert (str(quote.bid_price), str(quote.ask_price)) == ("95000", "95002")


def test_gap_invalidates_and_resubscribes(client):
    client._on_ws_message(WS["l2book_snapshot"])
    client._on_ws_message(WS["l2book_diff"])
    client.out.clear()
    client._on_ws_message(WS["l2book_diff_gap"])  # pt 1767225600600 != last t 1767225600400
    assert client.out == [] and client.stats["gaps"] == 1 and client.stats["resubscribes"] == 1
    assert not client._books["BTCUSD"].ready and book(client) == ({}, {})
    assert client.tasks == ["ethereal_resubscribe_BTCUSD"]
    # after the resubscription the next message is a snapshot again
    client._resubscribing.clear()
    snap = copy.deepcopy(WS["l2book_snapshot"])
    snap["data"]["t"] = 1767225601000
    client._on_ws_message(snap)
    assert client._books["BTCUSD"].ready and client.out[0].deltas[0].action == BookAction.CLEAR


def test_out_of_order_is_dropped(client):
    client._on_ws_message(WS["l2book_snapshot"])
    client._on_ws_message(WS["l2book_diff"])
    before = book(client)
    client.out.clear()
    stale = copy.deepcopy(WS["l2book_diff"])
    stale["data"]["t"] = 1767225600300  # older than the last t (…400)
    client._on_ws_message(stale)
    assert client.out == [] and client.stats["out_of_order"] == 1 and book(client) == before
    assert client._books["BTCUSD"].ready  # an old duplicate does not invalidate the book


def test_malformed_and_crossing_messages_leave_no_corrupted_state(client):
    client._on_ws_message(WS["l2book_snapshot"])
    before = book(client)
    client.out.clear()
    client._on_ws_message(WS["malformed_missing_px"])  # schema error: dropped, nothing changes
    client._on_ws_message("not json")
    assert client.stats["malformed"] == 2
    assert client.out == [] and book(client) == before and client._books["BTCUSD"].ready
    bad = copy.deepcopy(WS["malformed_bad_decimal"])  # 95001.5 on a tick-1 instrument
    client._on_ws_message(bad)
    assert client.out == [] and not client._books["BTCUSD"].ready and book(client) == ({}, {})
    # crossing diff: the book is rebuilt from a snapshot instead of publishing a crossed book
    client._resubscribing.clear()
    client._on_ws_message(WS["l2book_snapshot"])
    client.out.clear()
    cross = copy.deepcopy(WS["l2book_diff_crossing"])
    cross["data"]["pt"] = WS["l2book_snapshot"]["data"]["t"]
    client._on_ws_message(cross)
    assert client.out == [] and client.stats["crossed"] == 1 and not client._books["BTCUSD"].ready


def test_ticker_and_trades(client):
    client._on_ws_message(WS["ticker"])
    mark, funding = client.out
    assert isinstance(mark, MarkPriceUpdate) and str(mark.value) == "95001.123456"
    assert isinstance(funding, FundingRateUpdate) and funding.rate == Decimal("0.0000125")
    assert funding.interval == 60 and funding.next_funding_ns == 1767229200 * 10**9  # next whole hour
    client.out.clear()
    client._on_ws_message(WS["ticker"])  # same rate again: no duplicate funding update
    assert [type(x) for x in client.out] == [MarkPriceUpdate]
    client.out.clear()
    client._on_ws_message(WS["trade_fill"])
    t1, t2 = client.out
    assert isinstance(t1, TradeTick) and (str(t1.price), str(t1.size), t1.aggressor_side) == ("95002", "0.0100", AggressorSide.BUY)
    assert t2.aggressor_side == AggressorSide.SELL and t1.ts_event == 1767225601050 * 1_000_000
    client.out.clear()
    client._on_ws_message(WS["trade_fill"])  # replayed after a reconnect: de-duplicated
    assert client.out == []
