"""REST rate limits / 429 Retry-After and WebSocket reconnect + resubscribe, against the mock venue."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.ethereal.common.enums import EtherealNetwork
from adapters.ethereal.common.urls import urls_for
from adapters.ethereal.http.client import (
    EtherealHttpClient,
    EtherealRateLimitError,
    TokenBucket,
    retry_after_seconds,
)
from adapters.ethereal.websocket.client import EtherealWebSocketClient, WsSubscribeError
from nautilus_app.testkit.ethereal_mock import MockEtherealServer
from nautilus_app.testkit.ethereal_mock.testkit import FIXTURES


@pytest.fixture(scope="module")
def server():
    srv = MockEtherealServer(FIXTURES).start()
    yield srv
    srv.stop()


def http(server, **kw) -> EtherealHttpClient:
    return EtherealHttpClient(urls_for(EtherealNetwork.TESTNET, rest=server.rest_url), EtherealNetwork.TESTNET, **kw)


def test_429_retry_after_is_honoured(server):
    async def go():
        c = http(server)
        server.call(server.venue.rate_limit, 2, 0.4)
        t0 = time.perf_counter()
        cfg = await c.rpc_config_raw()
        dt = time.perf_counter() - t0
        await c.close()
        return cfg, dt, c.stats
    cfg, dt, stats = asyncio.run(go())
    assert cfg["domain"]["chainId"] == 13374202
    assert dt >= 0.8 - 0.05  # two waits of Retry-After 0.4 s
    assert stats["http_429"] == 2 and stats["retries"] == 2 and stats["requests"] == 3


def test_persistent_429_raises(server):
    async def go():
        c = http(server, max_retries=1)
        server.call(server.venue.rate_limit, 5, 0.05)
        try:
            await c.rpc_config_raw()
        finally:
            server.call(server.venue.rate_limit, 0, 0)
            await c.close()
    with pytest.raises(EtherealRateLimitError, match="HTTP 429"):
        asyncio.run(go())


def test_pagination_and_token_bucket(server):
    async def go():
        c = http(server, http_points_per_minute=120, share_budget=False)  # 2 requests per second
        products = await c.all_pages("product", "V1ProductGetParametersQuery", "PageOfProductDtos")
        await c.close()
        return products, c.http_bucket
    t0 = time.perf_counter()
    products, bucket = asyncio.run(go())
    assert [p.ticker for p in products] == ["BTCUSD", "ETHUSD", "SOLUSD"]  # one per page in the mock
    assert bucket.capacity == 120 and time.perf_counter() - t0 < 5


def test_token_bucket_waits_and_retry_after_parsing():
    async def go():
        b = TokenBucket(capacity=5, window_s=1.0)  # 5 per second
        t0 = time.perf_counter()
        for _ in range(8):
            await b.acquire()
        return time.perf_counter() - t0
    assert asyncio.run(go()) >= 0.55  # 3 extra tokens at 5/s
    import httpx
    assert retry_after_seconds(httpx.Headers({"Retry-After": "2.5"})) == 2.5
    assert retry_after_seconds(httpx.Headers({"RateLimit-Reset": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({})) == 1.0


def test_websocket_reconnects_and_resubscribes(server):
    async def go():
        got, connects, errors = [], [], []
        ws = EtherealWebSocketClient(server.ws_url, got.append, on_connected=lambda r: _note(connects, r),
                                     on_error=errors.append, backoff_initial_s=0.05, backoff_max_s=0.2)
        await ws.start()
        await ws.subscribe("L2Book", symbol="BTCUSD")
        await _until(lambda: len([m for m in got if m.get("e") == "L2Book"]) == 1)
        n = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(server.venue.drop_connections(), server.loop))
        await _until(lambda: len([m for m in got if m.get("e") == "L2Book"]) == 2)  # snapshot after resubscribe
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(server.venue.broadcast_raw("{oops"), server.loop))
        await _until(lambda: errors)
        with pytest.raises(WsSubscribeError, match="INVALID_SUBSCRIPTION"):
            await ws.subscribe("L2Book", symbol="NOPEUSD")
        await ws.stop()
        return n, connects, errors, ws
    n, connects, errors, ws = asyncio.run(go())
    assert n == 1 and connects == [False, True] and ws.connect_count == 2
    assert "invalid JSON frame" in errors[0]


async def _note(lst, reconnect):
    lst.append(reconnect)


async def _until(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def test_instrument_refresh_republishes_changed_products(server):
    from nautilus_trader.common import Clock
    from nautilus_trader.config import DataClientConfig

    from adapters.ethereal.config import EtherealDataClientConfig
    from adapters.ethereal.data import EtherealDataClient

    c = EtherealDataClient(name="ETHEREAL", config=DataClientConfig(), cache=None, clock=Clock.new_test(),
                           eth_config=EtherealDataClientConfig(network="testnet", rest_url=server.rest_url))
    published = []
    c._handle_instrument = published.append

    def set_fee(v, fee):
        v.by_symbol["ETHUSD"]["takerFee"] = fee

    async def go():
        await c.provider.load_all_async()
        first = await c.refresh_instruments()  # nothing changed
        server.call(set_fee, server.venue, "0.0005")
        second = await c.refresh_instruments()
        await c.http.close()
        return first, second

    try:
        first, second = asyncio.run(go())
    finally:
        server.call(set_fee, server.venue, "0.0003")
    assert (first, second) == (0, 1)
    assert [str(i.id) for i in published] == ["ETHUSD-PERP.ETHEREAL"] and published[0].info["taker_fee"] == "0.0005"
