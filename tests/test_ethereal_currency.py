"""USDe is Nautilus currency ``USDE`` (registered by the adapter), not USDT: instruments, balances,
fees and fills of the live clients are in USDE, and USDE and USDT amounts never mix."""

from __future__ import annotations

from decimal import Decimal

import pytest
from nautilus_trader.model import Currency, Money, OrderSide

from adapters.ethereal.common.parsing import product_to_instrument, settlement_currency
from nautilus_app.testkit.ethereal_mock import MockEtherealServer
from nautilus_app.testkit.ethereal_mock.testkit import FIXTURES, fixture, run_in_node_thread, wait_for
from tests.test_ethereal_exec_resilience import build, started, status
from tests.test_ethereal_live import IID, Q, Recorder

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_instruments_quote_and_settle_in_usde():
    btc = next(p for p in fixture("products.json")["data"] if p["ticker"] == "BTCUSD")
    inst = product_to_instrument(btc)
    assert inst.quote_currency.code == inst.settlement_currency.code == "USDE"
    assert Currency.from_str("USDE").precision == 8
    assert product_to_instrument(btc, currency="USDT").quote_currency.code == "USDT"  # legacy mapping
    assert settlement_currency().code == "USDE"
    usde, usdt = Money.from_str("1 USDE"), Money.from_str("1 USDT")
    with pytest.raises(Exception):  # noqa: B017 - Nautilus refuses to add different currencies
        _ = usde + usdt


def test_live_balances_fees_and_fills_are_usde_and_apart_from_usdt():
    server = MockEtherealServer(FIXTURES).start()
    try:
        def drive(handle, s, dfac, efac):
            assert started(s)
            s.do(lambda: s.submit("mkt", s.order_factory.market(IID, OrderSide.BUY, Q)))
            assert wait_for(lambda: status(s, "mkt") == "FILLED", 10)

        def after(s, dfac, efac):
            order = s.cache.order(s.orders["mkt"].client_order_id)
            comms = order.commissions()
            comms = list(comms.values()) if isinstance(comms, dict) else list(comms)
            account = s.cache.account_for_venue(IID.venue)
            inst = s.cache.instrument(IID)
            return ([c.currency.code for c in comms], sorted(c.code for c in account.currencies()),
                    inst.quote_currency.code, str(account.balance_total(Currency.from_str("USDE"))))

        comm_ccys, acct_ccys, quote, total = run_in_node_thread(lambda: build(server, Recorder()), drive, after)
        assert comm_ccys == ["USDE"] and quote == "USDE"
        assert acct_ccys == ["USDE"]  # no USDT balance is invented for the Ethereal account
        assert Decimal(total.split()[0]) > 0 and total.endswith("USDE")
    finally:
        server.stop()
