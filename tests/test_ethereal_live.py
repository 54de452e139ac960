"""Full loop on a real Nautilus LiveNode against the mock venue (REST + WebSocket on 127.0.0.1):
instruments -> market data -> signed orders -> fills -> restart -> reconciliation.

The mock verifies every order/cancel signature by recovering the signer with its own EIP-712
encoding and accepts only the subaccount owner or an ACTIVE linked signer.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from decimal import Decimal

import pytest
from nautilus_trader.common import Environment
from nautilus_trader.config import DataClientConfig, ExecutionClientConfig
from nautilus_trader.live import LiveNode
from nautilus_trader.model import (
    BarType,
    BookType,
    InstrumentId,
    OrderSide,
    PositionSide,
    Price,
    Quantity,
    TimeInForce,
    TraderId,
)
from nautilus_trader.trading import Strategy

from adapters.ethereal.config import EtherealDataClientConfig, EtherealExecClientConfig
from adapters.ethereal.execution import venue_cloid
from adapters.ethereal.factories import EtherealDataClientFactory, EtherealExecClientFactory
from nautilus_app.testkit.ethereal_mock import MockEtherealServer
from nautilus_app.testkit.ethereal_mock.testkit import (
    FIXTURES,
    account,
    fixture,
    main_key,
    run_in_node_thread,
    signer_key,
    wait_for,
)

# rc7 objects of a finished node (clock, logger) are sometimes freed by a later gc pass on the main
# thread; PyO3 then reports "unsendable ... dropped on another thread" (harmless, nothing runs).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

IID = InstrumentId.from_str("BTCUSD-PERP.ETHEREAL")
Q = Quantity.from_str("0.0100")


class Recorder(Strategy):
    """Records what it sees. The test thread must not touch Nautilus objects directly (a call from
    another thread aborts the process), so it hands closures to :meth:`do`, which a 20 ms timer
    runs on the node's own thread."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list = []
        self.orders: dict = {}
        self.positions_at_start = None
        self._jobs: queue.Queue = queue.Queue()

    def on_stop(self):
        self.stopped = True

    def do(self, fn, timeout: float = 10.0):
        if getattr(self, "stopped", False):  # node finished: this is the node's thread again
            return fn()
        box: dict = {}
        done = threading.Event()
        self._jobs.put((fn, box, done))
        if not done.wait(timeout):
            raise TimeoutError("node did not run the job")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _pump(self, _event=None):
        while not self._jobs.empty():
            fn, box, done = self._jobs.get()
            try:
                box["value"] = fn()
            except BaseException as e:
                box["error"] = e
            done.set()

    def on_start(self):
        self.clock.set_timer("pump", dt.timedelta(milliseconds=20), callback=self._pump)
        self.positions_at_start = [(str(p.instrument_id), p.side, str(p.quantity)) for p in self.cache.positions_open()]
        self.orders_at_start = [(str(o.client_order_id), o.status.name) for o in self.cache.orders_open()]
        self.subscribe_quotes(IID)
        self.subscribe_trades(IID)
        self.subscribe_book_deltas(IID, BookType.L2_MBP)
        self.subscribe_mark_prices(IID)
        self.subscribe_funding_rates(IID)
        self.subscribe_bars(BarType.from_str("BTCUSD-PERP.ETHEREAL-1-SECOND-LAST-INTERNAL"))

    def submit(self, name, order):
        self.orders[name] = order
        self.submit_order(order)

    def on_quote(self, q):
        self.events.append(("quote", str(q.bid_price), str(q.ask_price)))

    def on_trade(self, t):
        self.events.append(("trade", str(t.price), str(t.size)))

    def on_book_deltas(self, d):
        self.events.append(("deltas", len(d.deltas)))

    def on_mark_price(self, m):
        self.events.append(("mark", str(m.value)))

    def on_funding_rate(self, f):
        self.events.append(("funding", str(f.rate), f.interval))

    def on_bar(self, b):
        self.events.append(("bar", str(b.close), str(b.volume)))

    def on_order_event(self, e):
        self.events.append((type(e).__name__, str(e.client_order_id)))


def build(server, strategy, *, linked: bool, key):
    acct = account()
    dcfg = EtherealDataClientConfig(network="testnet", rest_url=server.rest_url, ws_url=server.ws_url,
                                    tickers=["BTCUSD", "ETHUSD"], instrument_refresh_mins=0)
    ecfg = EtherealExecClientConfig(network="testnet", rest_url=server.rest_url, ws_url=server.ws_url,
                                    tickers=["BTCUSD", "ETHUSD"], account_address=acct["subaccounts"][0]["account"],
                                    subaccount="primary", linked_signer=linked)
    efac = EtherealExecClientFactory(ecfg, key=key)
    node = (LiveNode.builder("ETH-TEST", TraderId("TESTER-001"), Environment.LIVE)
            .add_data_client("ETHEREAL", EtherealDataClientFactory(dcfg), DataClientConfig())
            .add_exec_client("ETHEREAL", efac, ExecutionClientConfig())
            .with_timeout_connection(10).with_timeout_reconciliation(10).with_timeout_disconnection_secs(2)
            .with_delay_post_stop_secs(0).with_delay_shutdown_secs(0)
            .build())
    node.add_strategy(strategy)
    return node, efac


def names(events, kind):
    return [e for e in events if e[0] == kind]


def status_of(strategy, name):
    return strategy.do(lambda: strategy.cache.order(strategy.orders[name].client_order_id).status.name)


def test_full_loop_with_linked_signer_then_restart_reconciles():
    server = MockEtherealServer(FIXTURES).start()
    venue = server.venue
    sid = account()["subaccounts"][0]["id"]
    try:
        # ---- run 1: data, every order flavour, fills, cancel (linked signer key) ----
        def build1():
            s = Recorder()
            node, efac = build(server, s, linked=True, key=signer_key())
            return node, s, efac

        def drive1(handle, s1, efac):
            assert wait_for(lambda: names(s1.events, "quote"), 10), "no quote from the L2Book snapshot"

            def first_orders():
                f = s1.order_factory
                s1.submit("mkt", f.market(IID, OrderSide.BUY, Q))                                # taker at 95001
                s1.submit("rest", f.limit(IID, OrderSide.BUY, Q, Price.from_str("90000"), post_only=True))
                s1.submit("po_cross", f.limit(IID, OrderSide.BUY, Q, Price.from_str("95005"), post_only=True))
                s1.submit("fok", f.limit(IID, OrderSide.BUY, Quantity.from_str("0.6000"), Price.from_str("95001"),
                                         time_in_force=TimeInForce.FOK))
                s1.submit("ro_wrong", f.market(IID, OrderSide.BUY, Q, reduce_only=True))       # would increase
                s1.submit("gtd_rest", f.limit(IID, OrderSide.BUY, Q, Price.from_str("89000"),
                                              time_in_force=TimeInForce.GTD, expire_time=_in_days(2)))
            s1.do(first_orders)
            assert wait_for(lambda: status_of(s1, "rest") == "ACCEPTED" and status_of(s1, "mkt") == "FILLED", 10)
            s1.do(lambda: s1.cancel_order(s1.orders["rest"].client_order_id))
            gtd_coid = s1.do(lambda: str(s1.orders["gtd_rest"].client_order_id))
            assert wait_for(lambda: status_of(s1, "gtd_rest") == "ACCEPTED", 10)
            vid = next(o["id"] for o in server.call(lambda: list(venue.orders.values()))
                       if o["clientOrderId"] == venue_cloid(gtd_coid))
            server.call(venue.fill_resting, vid)  # another trader takes our resting order: maker fill
            server.call(venue.publish_ticker, "BTCUSD", "95001.5", "0.0000125")
            assert wait_for(lambda: status_of(s1, "rest") == "CANCELED" and status_of(s1, "gtd_rest") == "FILLED"
                            and names(s1.events, "funding"), 10)
            s1.do(lambda: s1.submit("ioc", s1.order_factory.limit(  # reduce-only IOC sells the 0.02 long
                IID, OrderSide.SELL, Quantity.from_str("0.0200"), Price.from_str("94990"),
                time_in_force=TimeInForce.IOC, reduce_only=True)))
            assert wait_for(lambda: status_of(s1, "ioc") == "FILLED", 10)
            time.sleep(1.2)  # let one internal 1-second bar close

        def after1(s1, efac):
            ev = s1.events
            st = {k: s1.cache.order(o.client_order_id).status.name for k, o in s1.orders.items()}
            assert st == {"mkt": "FILLED", "rest": "CANCELED", "po_cross": "REJECTED", "fok": "REJECTED",
                          "ro_wrong": "REJECTED", "gtd_rest": "FILLED", "ioc": "FILLED"}
            # the market order took 0.01 at the best ask 95001; taker fee = 0.0003 x notional
            mkt = s1.cache.order(s1.orders["mkt"].client_order_id)
            assert float(mkt.avg_px) == 95001.0 and mkt.liquidity_side.name == "TAKER"
            fee = Decimal("95001") * Decimal("0.01") * Decimal("0.0003")  # 0.285003
            comms = mkt.commissions()
            (paid,) = list(comms.values()) if isinstance(comms, dict) else comms
            assert abs(paid.as_decimal() - fee) < Decimal("1e-8") and paid.currency.code == "USDE"
            gtd = s1.cache.order(s1.orders["gtd_rest"].client_order_id)
            assert gtd.liquidity_side.name == "MAKER" and float(gtd.avg_px) == 89000.0
            assert names(ev, "deltas") and names(ev, "trade") and names(ev, "bar")
            assert ("mark", "95001.5") in ev and ("funding", "0.0000125", 60) in ev
            reasons = [e for e in ev if e[0] == "OrderRejected"]
            assert len(reasons) == 3
            assert efac.last_client.stats["duplicate_fills"] == 0 and efac.last_client.stats["fills"] == 3  # mkt, gtd maker, ioc
            return True

        assert run_in_node_thread(build1, drive1, after1)
        orders = server.call(lambda: list(venue.orders.values()))
        assert {o["sender"].lower() for o in orders} == {signer_key().address.lower()}  # signed by the linked signer

        # ---- run 2: open a position and leave a resting order, then stop ----
        def build0():
            s = Recorder()
            node, _ = build(server, s, linked=True, key=signer_key())
            return node, s

        def drive0(handle, s0):
            assert wait_for(lambda: s0.positions_at_start is not None, 10)
            s0.do(lambda: (s0.submit("open", s0.order_factory.market(IID, OrderSide.BUY, Quantity.from_str("0.0300"))),
                           s0.submit("resting", s0.order_factory.limit(IID, OrderSide.SELL, Q, Price.from_str("99000")))))
            assert wait_for(lambda: status_of(s0, "open") == "FILLED" and status_of(s0, "resting") == "ACCEPTED", 10)

        run_in_node_thread(build0, drive0, lambda s0: None)

        # ---- run 3 (a restart with empty state, main wallet key): reconciliation before on_start ----
        def build2():
            s = Recorder()
            node, _ = build(server, s, linked=False, key=main_key())
            return node, s

        start = run_in_node_thread(build2, lambda h, s2: wait_for(lambda: s2.positions_at_start is not None, 10),
                                   lambda s2: (s2.positions_at_start, s2.orders_at_start))
        venue_pos = server.call(lambda: {k: dict(v) for k, v in venue.positions.items()})
        assert venue_pos[(sid, fixture("products.json")["data"][0]["id"])]["size"] == Decimal("0.03")
        positions, open_orders = start
        assert positions == [("BTCUSD-PERP.ETHEREAL", PositionSide.LONG, "0.0300")]
        assert len(open_orders) == 1 and open_orders[0][1] == "ACCEPTED"
    finally:
        server.stop()


def _in_days(days: int):
    return time.time_ns() + days * 86_400 * 1_000_000_000


def test_wrong_key_for_account_is_a_clear_startup_error():
    server = MockEtherealServer(FIXTURES).start()
    try:
        def build_bad():
            s = Recorder()
            node, efac = build(server, s, linked=False, key=signer_key())  # signer key, linked_signer=false
            return node, s, efac

        err = run_in_node_thread(build_bad, lambda h, s, efac: wait_for(lambda: efac.last_client.startup_error, 10),
                                 lambda s, efac: (efac.last_client.startup_error, s.positions_at_start), timeout_s=20)
        message, started = err
        assert started is None  # the strategy never started
        assert message == (f"Ethereal execution client start-up failed: signing key address {signer_key().address} "
                           f"is not account_address {account()['subaccounts'][0]['account']}; "
                           "set linked_signer=true if it is a linked signer key")
        assert account()["signerKeyForTests"][2:] not in message
    finally:
        server.stop()
