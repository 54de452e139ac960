"""Venue payloads -> Nautilus objects (instruments, market data, reports).

Conventions: venue decimals are strings/``Decimal`` with up to 9 decimals; venue times are epoch
milliseconds (``*_ms``) and Nautilus times nanoseconds. Prices and sizes are converted with the
instrument's precision via ``make_price`` / ``make_qty`` after checking they sit on the precision
grid (a finer value raises :class:`ParseError` rather than being rounded silently).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from nautilus_trader.model import (
    CryptoPerpetual,
    Currency,
    CurrencyType,
    InstrumentId,
    Money,
    Price,
    Quantity,
    Symbol,
)

from adapters.ethereal.common.constants import ETHEREAL

MS = 1_000_000
#: Ethereal's margin/settlement token is USDe (Ethena's USD stablecoin): products quote in "USD" and
#: margin, funding and PnL settle in USDe (docs "Perpetual Futures"). Nautilus has no built-in USDe,
#: so the adapter registers ``USDE`` (8 decimals like USDT; the venue sends 9) and uses it for quote,
#: settlement, balances, fees and funding. USDe is not USDT: a node trading Ethereal and a USDT venue
#: keeps the two amounts in separate currencies (Nautilus accounts and ``Money`` never mix them).
#: ``"USDT"`` is still accepted (``settlement_currency`` in the client configs, ``history`` import)
#: for code that values everything in USDT, e.g. backtests whose results only support USDT.
USDE = Currency("USDE", 8, 0, "Ethena USDe", CurrencyType.CRYPTO)
Currency.register(USDE)
SETTLEMENT_CURRENCY = "USDE"
#: Settlement currencies the adapter can use (USDE, or the legacy mapping to USDT).
SETTLEMENT_CURRENCIES = ("USDE", "USDT")
#: Balance token names the venue may report for the settlement token.
SETTLEMENT_TOKEN_NAMES = {"USD", "USDE", "WUSDE"}


class ParseError(ValueError):
    """A venue value cannot be represented exactly (bad decimal, too many decimals, bad side)."""


def dec(value: Any, field: str) -> Decimal:
    """Exact ``Decimal`` of a venue decimal string/number; raises :class:`ParseError`."""
    if value is None or value == "":
        raise ParseError(f"{field}: missing value")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ParseError(f"{field}: {value!r} is not a decimal") from None
    if not d.is_finite():
        raise ParseError(f"{field}: {value!r} is not finite")
    return d


def decimals_of(step: Decimal) -> int:
    """Number of decimals of a tick/lot step (``Decimal("0.0100")`` -> 2, ``Decimal("5")`` -> 0)."""
    exp = step.normalize().as_tuple().exponent
    return max(0, -int(exp))


def instrument_id_for(ticker: str) -> InstrumentId:
    """``BTCUSD`` -> ``BTCUSD-PERP.ETHEREAL`` (same ``-PERP`` convention as the Binance perps)."""
    return InstrumentId.from_str(f"{ticker.upper()}-PERP.{ETHEREAL}")


def ticker_of(instrument_id: InstrumentId) -> str:
    """``BTCUSD-PERP.ETHEREAL`` -> ``BTCUSD`` (the venue ticker / WebSocket symbol)."""
    sym = instrument_id.symbol.value
    return sym[: -len("-PERP")] if sym.endswith("-PERP") else sym


def price(value: Any, precision: int, field: str = "price") -> Price:
    """Exact ``Price`` at ``precision``; :class:`ParseError` if the value needs more decimals."""
    d = dec(value, field)
    q = d.quantize(Decimal(1).scaleb(-precision))
    if q != d:
        raise ParseError(f"{field}: {value} has more than {precision} decimals")
    return Price(q, precision)


def qty(value: Any, precision: int, field: str = "quantity") -> Quantity:
    """Exact non-negative ``Quantity`` at ``precision``; :class:`ParseError` otherwise."""
    d = dec(value, field)
    if d < 0:
        raise ParseError(f"{field}: {value} is negative")
    q = d.quantize(Decimal(1).scaleb(-precision))
    if q != d:
        raise ParseError(f"{field}: {value} has more than {precision} decimals")
    return Quantity(q, precision)


def fill_price(value: Any, precision: int, field: str = "price") -> Price:
    """A fill price, exact. On the instrument's grid it has the instrument's ``precision``; a price
    off the grid (liquidation / auto-deleveraging at the bankruptcy price) keeps its own decimals
    (at most the venue's 9) instead of being dropped or rounded: Nautilus accepts fills whose price
    has more decimals than the instrument."""
    try:
        return price(value, precision, field)
    except ParseError:
        d = dec(value, field)
        places = min(9, max(precision, decimals_of(d)))
        return Price(d.quantize(Decimal(1).scaleb(-places)), places)


def money(value: Any, currency: Currency, field: str = "amount") -> Money:
    """``Money`` rounded to the currency precision (8 decimals; the venue sends 9)."""
    return Money(dec(value, field), currency)


def settlement_currency(code: str | None = None) -> Currency:
    """The currency used for quote, settlement, balances, fees and funding: ``code`` (``USDE`` or
    ``USDT``), default :data:`SETTLEMENT_CURRENCY` (``USDE``)."""
    code = (code or SETTLEMENT_CURRENCY).upper()
    if code not in SETTLEMENT_CURRENCIES:
        raise ParseError(f"settlement currency {code!r}: expected one of {SETTLEMENT_CURRENCIES}")
    return Currency.from_str(code)


def product_to_instrument(
    p: Any,
    *,
    ts_init: int = 0,
    margin_overrides: tuple[Decimal, Decimal] | None = None,
    currency: str | None = None,
) -> CryptoPerpetual:
    """An Ethereal perpetual product (SDK ``ProductDto`` or its JSON dict) -> ``CryptoPerpetual``.

    * id ``<ticker>-PERP.ETHEREAL``, raw symbol = ticker (``BTCUSD``);
    * base = ``baseTokenName``; quote and settlement = ``currency`` (default
      :data:`SETTLEMENT_CURRENCY`, ``USDE``);
    * price/size increments = ``tickSize`` / ``lotSize`` with precisions = their decimals;
      ``lot_size`` and ``min_quantity`` = ``lotSize`` (``minQuantity`` is deprecated and equal to it);
      ``max_quantity`` = ``maxQuantity``; ``max_price`` / ``min_price`` from the product (0 = none);
    * margins: ``margin_init = 1`` and ``margin_maint = 1 / (2 x maxLeverage)`` (the SDK's
      ``get_maintenance_margin`` formula), the same convention as the Binance perps in
      :mod:`core.instruments` (initial margin = notional / leverage under Nautilus's
      default leveraged margin model); ``margin_overrides=(init, maint)`` replaces them;
    * ``info``: product id, onchain id, maker/taker fee (fractions), max leverage, funding
      interval (60 min) and funding APR parameters, all as strings.

    Fees are not instrument fields in Nautilus 2: use :func:`fee_overrides` for a
    ``MakerTakerFeeModel``. Raises :class:`ParseError` for inconsistent products.
    """
    g = (lambda k, a: p.get(a, p.get(k))) if isinstance(p, dict) else (lambda k, a: getattr(p, k))
    ticker = str(g("ticker", "ticker"))
    engine = g("engine_type", "engineType")
    if int(getattr(engine, "value", engine)) != 0:
        raise ParseError(f"product {ticker}: engineType {engine} is not a perpetual")
    tick = dec(g("tick_size", "tickSize"), f"{ticker}.tickSize")
    lot = dec(g("lot_size", "lotSize"), f"{ticker}.lotSize")
    if tick <= 0 or lot <= 0:
        raise ParseError(f"product {ticker}: tickSize {tick} and lotSize {lot} must be positive")
    pp, sp = decimals_of(tick), decimals_of(lot)
    max_lev = dec(g("max_leverage", "maxLeverage"), f"{ticker}.maxLeverage")
    if max_lev <= 0:
        raise ParseError(f"product {ticker}: maxLeverage {max_lev} must be positive")
    maker = dec(g("maker_fee", "makerFee"), f"{ticker}.makerFee")
    taker = dec(g("taker_fee", "takerFee"), f"{ticker}.takerFee")
    quote = settlement_currency(currency)
    base = Currency.from_str(str(g("base_token_name", "baseTokenName")).upper())
    margin_init, margin_maint = margin_overrides or (Decimal(1), (Decimal(1) / (2 * max_lev)).quantize(Decimal("1e-9")))
    max_qty = dec(g("max_quantity", "maxQuantity"), f"{ticker}.maxQuantity")
    max_px = dec(g("max_price", "maxPrice"), f"{ticker}.maxPrice")
    min_px = dec(g("min_price", "minPrice"), f"{ticker}.minPrice")
    status = g("status", "status")
    info = {
        "product_id": str(g("id", "id")),
        "onchain_id": str(g("onchain_id", "onchainId")),
        "ticker": ticker,
        "display_ticker": str(g("display_ticker", "displayTicker")),
        "maker_fee": str(maker),
        "taker_fee": str(taker),
        "max_leverage": str(max_lev),
        "funding_interval_minutes": "60",
        "funding_baseline_apr": str(g("funding_baseline_apr", "fundingBaselineApr")),
        "funding_clamp_apr": str(g("funding_clamp_apr", "fundingClampApr")),
        "funding_max_apr": str(g("funding_max_apr", "fundingMaxApr")),
        "max_position_notional_usd": str(g("max_position_notional_usd", "maxPositionNotionalUsd")),
        "status": str(getattr(status, "value", status)),
        "source": "Ethereal GET /v1/product",
    }
    return CryptoPerpetual(
        instrument_id=instrument_id_for(ticker),
        raw_symbol=Symbol(ticker),
        base_currency=base,
        quote_currency=quote,
        settlement_currency=quote,
        is_inverse=False,
        price_precision=pp,
        size_precision=sp,
        price_increment=Price(tick, pp),
        size_increment=Quantity(lot, sp),
        ts_event=ts_init,
        ts_init=ts_init,
        lot_size=Quantity(lot, sp),
        min_quantity=Quantity(lot, sp),
        max_quantity=Quantity(max_qty.quantize(Decimal(1).scaleb(-sp)), sp) if max_qty > 0 else None,
        max_price=Price(max_px.quantize(Decimal(1).scaleb(-pp)), pp) if max_px > 0 else None,
        min_price=Price(min_px.quantize(Decimal(1).scaleb(-pp)), pp) if min_px > 0 else None,
        margin_init=margin_init,
        margin_maint=margin_maint,
        info=info,
    )


def fee_overrides(instruments: list[CryptoPerpetual]) -> dict[InstrumentId, tuple[Decimal, Decimal]]:
    """``{instrument_id: (maker_fee, taker_fee)}`` from the instruments' ``info`` (fractions), for
    ``MakerTakerFeeModel(maker, taker, overrides=...)`` in backtests and the sandbox."""
    return {i.id: (Decimal(i.info["maker_fee"]), Decimal(i.info["taker_fee"])) for i in instruments}


def next_funding_ns(ts_ns: int) -> int:
    """The next whole hour strictly after ``ts_ns`` (Ethereal settles funding on the hour)."""
    hour = 3_600_000_000_000
    return (ts_ns // hour + 1) * hour
