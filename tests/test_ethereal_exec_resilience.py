"""Execution client behaviour a live user depends on, on a real LiveNode against the mock venue:

* problem 2: a 5xx on ``POST /v1/order`` or a lookup that misses a queued order never rejects an
  order that may be live; it stays SUBMITTED and is resolved by client order id;
* problem 3: fill recovery asks only for recent fills of the product (``createdAfter``), and the
  data and execution clients share one per-IP rate budget that also charges rows of pages;
* problem 4: liquidations and auto-deleveraging (venue orders without client order id, reported
  through ``PositionUpdate`` / ``SubaccountLiquidation``) and fills at prices off the tick grid move
  the local position like the venue's;
* problem 5: a ``REJECTED`` update that arrives while the REST submit is in flight is applied; an
  unknown result code or order status neither leaves an order stuck nor fails start-up.

Each test failed on the client before its fix (see the commit messages).
"""

from __future__ import annotations

import queue
import time
from decimal import Decimal

import pytest
from nautilus_trader.common import Environment
from nautilus_trader.config import DataClientConfig, ExecutionClientConfig
from nautilus_trader.live import LiveNode
from nautilus_trader.model import OrderSide, Price, Quantity, TraderId
from nautilus_trader.trading import Strategy, StrategyConfig

from adapters.ethereal.config import EtherealDataClientConfig, EtherealExecClientConfig
from adapters.ethereal.execution import venue_cloid
from adapters.ethereal.factories import EtherealDataClientFactory, EtherealExecClientFactory
from nautilus_app.testkit.ethereal_mock import MockEtherealServer
from nautilus_app.testkit.ethereal_mock.testkit import (
    FIXTURES,
    account,
    run_in_node_thread,
    signer_key,
    wait_for,
)
from tests.test_ethereal_live import IID, Q, Recorder

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SID = account()["subaccounts"][0]["id"]
FAST = {"order_lookup_attempts": 4, "order_lookup_backoff_s": 0.2, "position_check_delay_s": 0.3}


class Claiming(Recorder):
    """A Recorder that claims external orders of its instrument (venue liquidation/ADL orders)."""

    def __init__(self) -> None:
        Strategy.__init__(self, StrategyConfig(external_order_instrument_ids=[IID]))
        self.events, self.orders, self.positions_at_start, self._jobs = [], {}, None, queue.Queue()


def build(server, strategy, **exec_kw):
    acct = account()
    known = set(EtherealExecClientConfig.__struct_fields__)
    dcfg = EtherealDataClientConfig(network="testnet", rest_url=server.rest_url, ws_url=server.ws_url,
                                    tickers=["BTCUSD", "ETHUSD"], instrument_refresh_mins=0)
    ecfg = EtherealExecClientConfig(network="testnet", rest_url=server.rest_url, ws_url=server.ws_url,
                                    tickers=["BTCUSD", "ETHUSD"], account_address=acct["subaccounts"][0]["account"],
                                    subaccount="primary", linked_signer=True,
                                    **{k: v for k, v in {**FAST, **exec_kw}.items() if k in known})
    dfac = EtherealDataClientFactory(dcfg)
    efac = EtherealExecClientFactory(ecfg, key=signer_key())
    node = (LiveNode.builder("ETH-TEST", TraderId("TESTER-001"), Environment.LIVE)
            .add_data_client("ETHEREAL", dfac, DataClientConfig())
            .add_exec_client("ETHEREAL", efac, ExecutionClientConfig())
            .with_timeout_connection(10).with_timeout_reconciliation(10).with_timeout_disconnection_secs(2)
            .with_delay_post_stop_secs(0).with_delay_shutdown_secs(0)
            .build())
    node.add_strategy(strategy)
    return node, strategy, dfac, efac


def status(s, name):
    return s.do(lambda: s.cache.order(s.orders[name].client_order_id).status.name)


def events_of(s, name):
    coid = s.do(lambda: str(s.orders[name].client_order_id))
    return [e[0] for e in s.events if len(e) > 1 and e[1] == coid]


def venue_order(server, s, name):
    cloid = venue_cloid(s.do(lambda: str(s.orders[name].client_order_id)))
    return next((dict(o) for o in server.call(lambda: list(server.venue.orders.values()))
                 if o["clientOrderId"] == cloid), None)


def positions(s):
    return s.do(lambda: [(p.side.name, str(p.quantity)) for p in s.cache.positions_open(instrument_id=IID)])


def venue_size(server):
    pid = server.venue.by_symbol["BTCUSD"]["id"]
    return server.call(lambda: server.venue._position(SID, pid)["size"])


def started(s):
    return wait_for(lambda: s.positions_at_start is not None, 10)


# ---------------------------------------------------------------------------------------------- 2


def test_5xx_or_missed_lookup_keeps_the_order_submitted_and_resolves_it_by_client_order_id():
    server = MockEtherealServer(FIXTURES).start()
    try:
        def drive(handle, s, dfac, efac):
            assert started(s)
            # a) 503, the venue takes the (taker) order 0.8 s later: it fills, it is never rejected
            server.call(lambda: server.venue.fail_next_order(503, process_after_s=0.8))
            s.do(lambda: s.submit("mkt", s.order_factory.market(IID, OrderSide.BUY, Q)))
            time.sleep(0.3)
            assert status(s, "mkt") == "SUBMITTED"  # not rejected while its fate is unknown
            assert wait_for(lambda: status(s, "mkt") == "FILLED", 10)
            # b) the client times out (status 0) and the venue takes the order 1.2 s after it was
            #    sent: a lookup right after the error misses it; later lookups find it resting
            server.call(lambda: server.venue.fail_next_order(500, process_after_s=1.2, hang_s=2.5))
            s.do(lambda: s.submit("slow", s.order_factory.limit(IID, OrderSide.BUY, Q, Price.from_str("90000"))))
            assert wait_for(lambda: status(s, "slow") == "ACCEPTED", 12)
            # c) 502 and the order never reaches the book: rejected only after the lookups and a
            #    cancel by client order id found nothing
            server.call(lambda: server.venue.fail_next_order(502, process=False))
            s.do(lambda: s.submit("lost", s.order_factory.limit(IID, OrderSide.BUY, Q, Price.from_str("90001"))))
            time.sleep(0.5)
            assert status(s, "lost") == "SUBMITTED"
            assert wait_for(lambda: status(s, "lost") == "REJECTED", 12)

        def after(s, dfac, efac):
            assert "OrderRejected" not in events_of(s, "mkt") and "OrderRejected" not in events_of(s, "slow")
            return efac.last_client.stats

        stats = run_in_node_thread(lambda: build(server, Recorder(), http_timeout_s=1), drive, after)
        assert stats["unknown_submissions"] == 3
        cloids = [o["clientOrderId"] for o in server.call(lambda: list(server.venue.orders.values()))]
        assert len(cloids) == len(set(cloids)) == 2  # mkt and slow exist once; lost never did
        cancels = [r for r in server.venue.requests if r[:2] == ("POST", "/v1/order/cancel")]
        assert len(cancels) == 1  # only the lost order needed the cancel by client order id
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------- 5


def test_rejected_while_in_flight_and_unknown_codes_do_not_leave_orders_stuck():
    server = MockEtherealServer(FIXTURES).start()
    try:
        def drive(handle, s, dfac, efac):
            assert started(s)
            server.call(server.venue.reject_next_after_ok, "RiskLimitExceeded")
            s.do(lambda: s.submit("rej", s.order_factory.limit(IID, OrderSide.BUY, Q, Price.from_str("90000"))))
            assert wait_for(lambda: status(s, "rej") == "REJECTED", 10)
            server.call(server.venue.next_result_code, "SomeFutureResultCode")  # the order rests
            s.do(lambda: s.submit("newcode", s.order_factory.limit(IID, OrderSide.BUY, Q, Price.from_str("90002"))))
            assert wait_for(lambda: status(s, "newcode") == "ACCEPTED", 10)
            s.do(lambda: s.submit("rest", s.order_factory.limit(IID, OrderSide.BUY, Q, Price.from_str("90003"))))
            assert wait_for(lambda: status(s, "rest") == "ACCEPTED", 10)
            vid = venue_order(server, s, "rest")["id"]
            server.call(server.venue.publish_order_status, vid, "CANCELED_BY_SYSTEM", "0")  # unknown, nothing left
            assert wait_for(lambda: status(s, "rest") == "CANCELED", 10)

        def after(s, dfac, efac):
            assert "OrderAccepted" not in events_of(s, "rej")
            return True

        assert run_in_node_thread(lambda: build(server, Recorder()), drive, after)
        # start-up with an order in a status the SDK does not know and a product in an unknown status
        newcode = next(o for o in server.venue.orders.values() if o["price"] == "90002")
        newcode["status"] = "PARKED"
        sol = dict(server.venue.by_symbol["SOLUSD"], status="SETTLING")
        server.call(lambda: server.venue.products.__setitem__(2, sol))

        def build2():
            return build(server, Recorder())

        open_orders = run_in_node_thread(build2, lambda h, s, d, e: started(s), lambda s, d, e: s.orders_at_start)
        assert [st for _, st in open_orders] == ["ACCEPTED"]  # PARKED with quantity left: still working
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------- 3


def test_fill_recovery_is_incremental_and_the_rate_budget_is_shared():
    server = MockEtherealServer(FIXTURES).start()
    try:
        def drive(handle, s, dfac, efac):
            assert started(s)
            for i in range(3):  # some fill history the recovery must not re-read
                s.do(lambda i=i: s.submit(f"old{i}", s.order_factory.market(IID, OrderSide.BUY, Q)))
                assert wait_for(lambda i=i: status(s, f"old{i}") == "FILLED", 10)
            time.sleep(0.05)
            t_submit = server.venue.now_ms()
            n_before = len(server.venue.requests)
            server.call(server.venue.drop_fill_messages, 1)  # the stream loses the next fill
            s.do(lambda: s.submit("lostfill", s.order_factory.market(IID, OrderSide.SELL, Q)))
            assert wait_for(lambda: status(s, "lostfill") == "FILLED", 10)
            s.recovery = [q for m, p, q in server.venue.requests[n_before:] if p == "/v1/order/fill"]
            s.t_submit = t_submit

        def after(s, dfac, efac):
            d, e = dfac.last_client.http, efac.last_client.http
            return s.recovery, s.t_submit, d.http_bucket is e.http_bucket, e.http_bucket.spent, \
                d.stats, e.stats, efac.last_client.stats

        recovery, t_submit, shared, spent, dstats, estats, xstats = run_in_node_thread(
            lambda: build(server, Recorder()), drive, after)
        assert xstats["recovered_fills"] == 1
        assert recovery, "the missing fill was not fetched"
        for q in recovery:
            assert int(q["createdAfter"]) >= t_submit - 5_000  # only recent fills, not the history
            assert q["productIds"] == server.venue.by_symbol["BTCUSD"]["id"]
        assert shared  # one per-IP budget for data and execution
        requests = dstats["requests"] + estats["requests"]
        assert spent == pytest.approx(requests + dstats["rows"] + estats["rows"])  # rows of pages cost points
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------- 4


def test_liquidation_adl_and_off_grid_fills_move_the_local_position_like_the_venue():
    server = MockEtherealServer(FIXTURES).start()
    try:
        def drive(handle, s, dfac, efac):
            assert started(s)
            s.do(lambda: s.submit("open", s.order_factory.market(IID, OrderSide.BUY, Quantity.from_str("0.0300"))))
            assert wait_for(lambda: positions(s) == [("LONG", "0.0300")], 10)
            # auto-deleveraging takes 0.01 at a price off the tick grid (tick 1); no OrderFill on the stream
            server.call(server.venue.auto_deleverage, SID, "BTCUSD", "0.01", "94500.25")
            assert wait_for(lambda: positions(s) == [("LONG", "0.0200")], 10), positions(s)
            # a fill of our own resting order at an off-grid price
            s.do(lambda: s.submit("rest", s.order_factory.limit(IID, OrderSide.BUY, Q, Price.from_str("89000"))))
            assert wait_for(lambda: status(s, "rest") == "ACCEPTED", 10)
            server.call(server.venue.fill_resting, venue_order(server, s, "rest")["id"], None, "89000.5")
            assert wait_for(lambda: status(s, "rest") == "FILLED", 10)
            assert wait_for(lambda: positions(s) == [("LONG", "0.0300")], 10), positions(s)
            # liquidation of the whole position at a bankruptcy price off the grid
            server.call(server.venue.liquidate, SID, "BTCUSD", "94321.123456789")
            assert wait_for(lambda: positions(s) == [], 10), positions(s)
            s.closed = s.do(lambda: [(str(p.avg_px_close), str(p.realized_pnl)) for p in s.cache.positions_closed()])

        def after(s, dfac, efac):
            return s.closed, s.do(lambda: s.cache.order(s.orders["rest"].client_order_id).avg_px)

        closed, rest_px = run_in_node_thread(lambda: build(server, Claiming()), drive, after)
        assert venue_size(server) == 0
        assert Decimal(str(rest_px)) == Decimal("89000.5")
        assert len(closed) == 1
    finally:
        server.stop()
