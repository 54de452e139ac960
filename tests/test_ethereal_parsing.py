"""Products -> instruments, stream messages -> typed structs (canonical payloads in tests/fixtures)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from nautilus_trader.model import CryptoPerpetual, InstrumentId

from adapters.ethereal.common.parsing import (
    ParseError,
    fee_overrides,
    next_funding_ns,
    price,
    product_to_instrument,
    qty,
    ticker_of,
)
from adapters.ethereal.providers import EtherealInstrumentProvider
from adapters.ethereal.websocket.messages import WsMessageError, decode_event
from nautilus_app.testkit.ethereal_mock.testkit import fixture

PRODUCTS = fixture("products.json")["data"]
WS = fixture("ws_messages.json")


def test_products_become_crypto_perpetuals():
    btc = next(p for p in PRODUCTS if p["ticker"] == "BTCUSD")
    inst = product_to_instrument(btc)
    assert isinstance(inst, CryptoPerpetual)
    assert inst.id == InstrumentId.from_str("BTCUSD-PERP.ETHEREAL") and ticker_of(inst.id) == "BTCUSD"
    assert inst.raw_symbol.value == "BTCUSD" and inst.base_currency.code == "BTC"
    assert inst.quote_currency.code == inst.settlement_currency.code == "USDE"
    assert inst.price_precision == 0 and str(inst.price_increment) == "1"  # tickSize "1"
    assert inst.size_precision == 4 and str(inst.size_increment) == "0.0001"  # lotSize "0.0001"
    assert str(inst.lot_size) == str(inst.min_quantity) == "0.0001"
    assert str(inst.max_quantity) == "100.0000" and str(inst.max_price) == "1000000" and inst.min_price is None
    assert inst.margin_init == Decimal(1)
    assert inst.margin_maint == Decimal(1) / (2 * Decimal(btc["maxLeverage"]))  # 1/(2*20) = 0.025
    assert inst.info["maker_fee"] == btc["makerFee"] and inst.info["taker_fee"] == btc["takerFee"]
    assert inst.info["max_leverage"] == str(btc["maxLeverage"]) and inst.info["funding_interval_minutes"] == "60"
    assert inst.info["onchain_id"] == "1" and inst.info["product_id"] == btc["id"]
    eth = product_to_instrument(next(p for p in PRODUCTS if p["ticker"] == "ETHUSD"))
    assert eth.price_precision == 1 and eth.size_precision == 3
    assert fee_overrides([inst, eth]) == {inst.id: (Decimal("0.0001"), Decimal("0.0003")),
                                          eth.id: (Decimal("0.0001"), Decimal("0.0003"))}


def test_provider_skips_inactive_and_bad_products():
    prov = EtherealInstrumentProvider(http=None)
    bad = dict(PRODUCTS[0], ticker="BADUSD", tickSize="0")
    added = prov.add_products(PRODUCTS + [bad])
    assert sorted(str(i.id) for i in added) == ["BTCUSD-PERP.ETHEREAL", "ETHUSD-PERP.ETHEREAL"]
    assert any("SOLUSD: status PENDING" in s for s in prov.skipped)
    assert any("BADUSD" in s and "must be positive" in s for s in prov.skipped)
    assert prov.instrument_for_product_id(PRODUCTS[1]["id"]).id.symbol.value == "ETHUSD-PERP"


def test_exact_price_and_quantity_conversion():
    assert str(price("95000", 0)) == "95000" and str(qty("0.0100", 4)) == "0.0100"
    with pytest.raises(ParseError, match="more than 0 decimals"):
        price("95000.5", 0)
    with pytest.raises(ParseError, match="not a decimal"):
        qty("abc", 4)
    with pytest.raises(ParseError, match="negative"):
        qty("-1", 4)
    hour = 3_600_000_000_000
    assert next_funding_ns(5 * hour) == 6 * hour and next_funding_ns(5 * hour + 1) == 6 * hour


def test_stream_messages_decode():
    e, t, d = decode_event(WS["l2book_diff"])
    assert e == "L2Book" and t == 1767225600500 and d.s == "BTCUSD" and d.pt == 1767225600200
    assert [(lv.price, lv.qty) for lv in d.a] == [("95001", "0"), ("95003", "1.2500")]
    _, _, tk = decode_event(WS["ticker"])
    assert tk.markPx == "95001.123456" and tk.fr1h == "0.0000125"
    _, _, tr = decode_event(WS["trade_fill"])
    assert [x.sd for x in tr.d] == [0, 1]
    _, _, ou = decode_event(WS["order_update"])
    assert ou.d[0].st == "NEW" and ou.d[0].po is True
    _, _, of = decode_event(WS["order_fill"])
    assert of.d[0].m is True and of.d[0].fee == "0.094"
    assert decode_event({"e": "TokenTransfer", "t": 1, "data": {}}) is None  # not consumed


def test_malformed_stream_messages_raise_clear_errors():
    with pytest.raises(WsMessageError, match=r"malformed TradeFill message: .*px.*\$\.d\[0\]"):
        decode_event(WS["malformed_missing_px"])
    with pytest.raises(WsMessageError, match="malformed stream frame"):
        decode_event(b"{not json")
    with pytest.raises(WsMessageError, match="malformed stream frame"):
        decode_event({"e": "L2Book", "data": {}})  # no t
    with pytest.raises(WsMessageError, match="malformed L2Book message"):
        decode_event({"e": "L2Book", "t": 1, "data": {"s": "BTCUSD", "t": "x", "a": [], "b": []}})
