"""The one place that defines the Binance instruments (spot and USDT-M perpetual) used by the platform.

Importers, downloaders, the backtest runner and paper trading all build instruments through
:func:`build_instrument`, so ids, precisions and limits cannot drift apart. Other ccxt exchanges
(``download-data --exchange bybit`` ...) get theirs from the ccxt market through
:func:`from_ccxt_market` (venue ``BYBIT`` / ``BYBIT_PERP``, today's tick and step).

Venues and ids
--------------
* Spot: venue ``BINANCE``, ``CurrencyPair`` id ``BTCUSDT.BINANCE`` (for a CASH account).
* USDT-M perpetual: venue ``BINANCE_USDM``, ``CryptoPerpetual`` id ``BTCUSDT-PERP.BINANCE_USDM``
  (a separate venue so a spot CASH account and a perp MARGIN account can be in the same run).

Precision decision (verified on nautilus 2.0.0rc7)
--------------------------------------------------
The simulated matching engine **skips** every bar whose price precision differs from the
instrument's ``price_precision`` or whose volume precision differs from its ``size_precision``
(``WARN Skipping bar ... Invalid bar volume precision 8, expected 5``); the strategy still gets
``on_bar`` but no order ever fills on those bars. So "bars carry their own precision" is not an
option: bar precision must equal instrument precision, and the instrument precision must cover
the data. Therefore:

* ``price_precision`` / ``size_precision`` = the finest tick / lot step the symbol has had in
  Binance's history (checked against every file in the shared data set), e.g. BTCUSDT spot
  volumes carry 6 decimals before Sept 2021 (step 0.000001 then, 0.00001 now), BTCUSDT perp
  prices carry 2 decimals in 2019-2021 (tick 0.01 then, 0.10 now).
* ``price_increment`` / ``size_increment`` = today's Binance tick / step, written with that
  precision (``Price("0.10")`` with precision 2, ``Quantity("0.000010")`` with precision 6);
  ``instrument.make_price`` / ``make_qty`` round to today's tick / step.
* The importers write bars with exactly these precisions and raise ``DataImportError`` when a
  value needs more decimals: nothing is ever truncated.
* Mark prices keep Binance's 8 decimals (``mark_price_precision``); verified that the exchange
  settles funding on an 8-decimal mark for a 1- or 2-decimal instrument.

Margin defaults (document of choice)
------------------------------------
``margin_init = 1`` and ``margin_maint`` = Binance's first-bracket maintenance margin rate.
Under Nautilus's default ``LeveragedMarginModel`` (margin = notional x rate / leverage) this makes
the initial margin ``notional / leverage`` exactly as on Binance; maintenance margin there is
divided by leverage too, i.e. understated. Runs that need Binance-like maintenance should use
``StandardMarginModel`` and pass ``margin_init=1/L`` (``margin_overrides``) to
:func:`build_instrument`. Spot pairs carry no margin rates (CASH accounts).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from nautilus_trader.model import (
    BarType,
    CryptoPerpetual,
    Currency,
    CurrencyPair,
    InstrumentId,
    Money,
    Price,
    Quantity,
    Symbol,
)

Market = Literal["spot", "um"]

SPOT_VENUE = "BINANCE"
PERP_VENUE = "BINANCE_USDM"

#: Binance kline interval -> (Nautilus bar step, aggregation, duration in ns).
INTERVALS: dict[str, tuple[int, str, int]] = {
    "1s": (1, "SECOND", 1_000_000_000),
    "1m": (1, "MINUTE", 60_000_000_000),
    "3m": (3, "MINUTE", 180_000_000_000),
    "5m": (5, "MINUTE", 300_000_000_000),
    "15m": (15, "MINUTE", 900_000_000_000),
    "30m": (30, "MINUTE", 1_800_000_000_000),
    "1h": (1, "HOUR", 3_600_000_000_000),
    "2h": (2, "HOUR", 7_200_000_000_000),
    "4h": (4, "HOUR", 14_400_000_000_000),
    "6h": (6, "HOUR", 21_600_000_000_000),
    "8h": (8, "HOUR", 28_800_000_000_000),
    "12h": (12, "HOUR", 43_200_000_000_000),
    "1d": (1, "DAY", 86_400_000_000_000),
}


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """Static trading rules of one Binance symbol on one market.

    Prices and sizes are decimal strings; ``*_precision`` are numbers of decimals; rates are
    fractions (0.004 = 0.4 %); ``min_notional`` is in the quote currency.
    """

    symbol: str
    market: Market
    base: str
    quote: str
    tick_size: str  # today's PRICE_FILTER tickSize
    step_size: str  # today's LOT_SIZE stepSize
    min_quantity: str  # today's LOT_SIZE minQty
    min_notional: str  # today's (MIN_)NOTIONAL filter
    price_precision: int  # decimals covering every historical tick (>= decimals of tick_size)
    size_precision: int  # decimals covering every historical step (>= decimals of step_size)
    max_leverage: int | None = None  # perps only (first notional bracket)
    maint_margin_rate: str | None = None  # perps only (first notional bracket)
    mark_price_precision: int = 8  # Binance prints mark prices with 8 decimals


#: Source: Binance exchangeInfo (api/v3/exchangeInfo and fapi/v1/exchangeInfo) as of 2025, and
#: fapi/v1/leverageBracket first bracket; historical precisions from the data in shared/data
#: (BTCUSDT spot volumes 6 dp before 2021-09, ETHUSDT spot volumes 5 dp, BTCUSDT perp prices 2 dp
#: in 2019-2021). Re-check against exchangeInfo before trusting min sizes for live trading.
SPECS: dict[tuple[Market, str], InstrumentSpec] = {
    ("spot", "BTCUSDT"): InstrumentSpec(
        "BTCUSDT", "spot", "BTC", "USDT", tick_size="0.01", step_size="0.00001",
        min_quantity="0.00001", min_notional="5", price_precision=2, size_precision=6,
    ),
    ("spot", "ETHUSDT"): InstrumentSpec(
        "ETHUSDT", "spot", "ETH", "USDT", tick_size="0.01", step_size="0.0001",
        min_quantity="0.0001", min_notional="5", price_precision=2, size_precision=5,
    ),
    ("um", "BTCUSDT"): InstrumentSpec(
        "BTCUSDT", "um", "BTC", "USDT", tick_size="0.10", step_size="0.001",
        min_quantity="0.001", min_notional="100", price_precision=2, size_precision=3,
        max_leverage=125, maint_margin_rate="0.004",
    ),
    ("um", "ETHUSDT"): InstrumentSpec(
        "ETHUSDT", "um", "ETH", "USDT", tick_size="0.01", step_size="0.001",
        min_quantity="0.001", min_notional="20", price_precision=2, size_precision=3,
        max_leverage=125, maint_margin_rate="0.005",
    ),
}


def get_spec(symbol: str, market: Market) -> InstrumentSpec:
    """Return the :class:`InstrumentSpec` of ``symbol`` (e.g. ``"BTCUSDT"``) on ``market``.

    Raises ``KeyError`` naming the known symbols when there is no entry.
    """
    try:
        return SPECS[(market, symbol.upper())]
    except KeyError:
        known = ", ".join(f"{s} ({m})" for m, s in SPECS)
        raise KeyError(f"no instrument spec for {symbol!r} on market {market!r}; known: {known}") from None


def venue_for(market: Market) -> str:
    """Nautilus venue name for a market: ``BINANCE`` (spot) or ``BINANCE_USDM`` (USDT-M perps)."""
    if market == "spot":
        return SPOT_VENUE
    if market == "um":
        return PERP_VENUE
    raise ValueError(f"unknown market {market!r} (expected 'spot' or 'um')")


def instrument_id(symbol: str, market: Market) -> InstrumentId:
    """``BTCUSDT.BINANCE`` for spot, ``BTCUSDT-PERP.BINANCE_USDM`` for the USDT-M perpetual."""
    sym = symbol.upper()
    if market == "um":
        return InstrumentId.from_str(f"{sym}-PERP.{PERP_VENUE}")
    return InstrumentId.from_str(f"{sym}.{venue_for(market)}")


def interval_ns(interval: str) -> int:
    """Duration of a Binance interval string (``"1m"``, ``"1h"``, ``"8h"`` ...) in nanoseconds."""
    try:
        return INTERVALS[interval][2]
    except KeyError:
        raise ValueError(f"unsupported interval {interval!r}; supported: {', '.join(INTERVALS)}") from None


def bar_type(symbol: str, market: Market, interval: str) -> BarType:
    """External LAST bar type, e.g. ``BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL``."""
    if interval not in INTERVALS:
        interval_ns(interval)  # raises a clear error
    step, agg, _ = INTERVALS[interval]
    return BarType.from_str(f"{instrument_id(symbol, market)}-{step}-{agg}-LAST-EXTERNAL")


def _price(value: str, precision: int) -> Price:
    return Price(Decimal(value), precision)


def _qty(value: str, precision: int) -> Quantity:
    return Quantity(Decimal(value), precision)


def build_instrument(
    symbol: str,
    market: Market,
    *,
    ts_init: int = 0,
    margin_overrides: tuple[Decimal, Decimal] | None = None,
) -> CurrencyPair | CryptoPerpetual:
    """Build the Nautilus instrument for ``symbol`` on ``market`` from :data:`SPECS`.

    ``ts_init`` (ns) is used for both ``ts_event`` and ``ts_init``; the default 0 keeps the catalog
    file name stable, so writing the same instrument twice is idempotent.
    ``margin_overrides=(margin_init, margin_maint)`` (fractions) replaces the default perp margins.
    """
    spec = get_spec(symbol, market)
    base = Currency.from_str(spec.base)
    quote = Currency.from_str(spec.quote)
    common = dict(
        instrument_id=instrument_id(spec.symbol, market),
        raw_symbol=Symbol(spec.symbol),
        base_currency=base,
        quote_currency=quote,
        price_precision=spec.price_precision,
        size_precision=spec.size_precision,
        price_increment=_price(spec.tick_size, spec.price_precision),
        size_increment=_qty(spec.step_size, spec.size_precision),
        ts_event=ts_init,
        ts_init=ts_init,
        lot_size=_qty(spec.step_size, spec.size_precision),
        min_quantity=_qty(spec.min_quantity, spec.size_precision),
        min_notional=Money(Decimal(spec.min_notional), quote),
    )
    if market == "spot":
        return CurrencyPair(**common)
    margin_init, margin_maint = margin_overrides or (Decimal("1"), Decimal(spec.maint_margin_rate or "0"))
    return CryptoPerpetual(
        **common,
        settlement_currency=quote,
        is_inverse=False,
        margin_init=margin_init,
        margin_maint=margin_maint,
        info={"max_leverage": spec.max_leverage, "source": "Binance fapi exchangeInfo 2025"},
    )


def all_instruments() -> list[CurrencyPair | CryptoPerpetual]:
    """Every instrument in :data:`SPECS` (spot and perps)."""
    return [build_instrument(sym, mkt) for (mkt, sym) in SPECS]


# --------------------------------------------------------------------------- any ccxt exchange


def ccxt_venue(exchange_id: str, market: Market) -> str:
    """Nautilus venue of a non-Binance ccxt exchange: ``BYBIT`` (spot), ``BYBIT_PERP`` (linear
    perpetuals; a separate venue like ``BINANCE_USDM`` so CASH and MARGIN accounts can coexist)."""
    base = exchange_id.upper()
    return base if market == "spot" else f"{base}_PERP"


def _ccxt_step(value: object, precision_mode: int, what: str, where: str) -> Decimal:
    """Tick/step of a ccxt ``market['precision'][...]`` entry as an exact ``Decimal``.

    ccxt ``precisionMode`` 4 (TICK_SIZE): the value is the step (``0.01``); 2 (DECIMAL_PLACES):
    the number of decimals (``2`` -> ``0.01``). SIGNIFICANT_DIGITS (3) has no fixed tick: refused.
    """
    if value is None:
        raise ValueError(f"{where}: market has no precision[{what!r}]")
    if precision_mode == 4:
        step = Decimal(repr(float(value))) if isinstance(value, float) else Decimal(str(value))
    elif precision_mode == 2:
        step = Decimal(1).scaleb(-int(value))
    else:
        raise ValueError(f"{where}: ccxt precisionMode {precision_mode} (significant digits) has no fixed tick size")
    if step <= 0:
        raise ValueError(f"{where}: precision[{what!r}] = {value!r} is not a positive step")
    return step.normalize()


def _decimals(step: Decimal) -> int:
    exp = step.as_tuple().exponent
    return max(0, -int(exp))  # type: ignore[arg-type]


def from_ccxt_market(
    market: dict,
    exchange_id: str,
    *,
    precision_mode: int = 4,
    ts_init: int = 0,
    maint_margin_rate: Decimal | str = "0",
) -> CurrencyPair | CryptoPerpetual:
    """Build a Nautilus instrument from a ccxt market structure (``exchange.markets[symbol]``).

    * ``market['spot']`` -> ``CurrencyPair`` ``<id>.<EXCHANGE>`` (e.g. ``BTCUSDT.BYBIT``);
      a linear perpetual swap (``swap`` and ``linear``) -> ``CryptoPerpetual``
      ``<id>-PERP.<EXCHANGE>_PERP`` with ``multiplier = contractSize`` (sizes/volumes in contracts,
      as the exchange reports them), ``margin_init = 1``, ``margin_maint = maint_margin_rate``
      (fraction; ccxt has no generic maintenance rate - pass the exchange's first tier).
      Anything else (inverse, futures with expiry, options) raises ``ValueError``.
    * ``price_increment`` / ``size_increment`` (= ``lot_size``) from ``market['precision']``
      interpreted with ``precision_mode`` (the exchange's ``precisionMode``: 4 tick size,
      2 decimal places); ``price_precision`` / ``size_precision`` = their decimals. Data with
      more decimals than today's tick is refused by the importers (never truncated).
    * ``min_quantity`` = ``limits.amount.min`` (else one step), ``min_notional`` =
      ``limits.cost.min`` in the quote currency (omitted when absent).

    Raises ``ValueError`` naming the market and the missing/unsupported field.
    """
    where = f"{exchange_id} market {market.get('symbol')!r}"
    spot = bool(market.get("spot"))
    perp = bool(market.get("swap")) and bool(market.get("linear"))
    if not (spot or perp):
        raise ValueError(f"{where}: only spot and linear perpetual swap markets are supported "
                         f"(type={market.get('type')!r}, linear={market.get('linear')!r})")
    mkt: Market = "spot" if spot else "um"
    tick = _ccxt_step((market.get("precision") or {}).get("price"), precision_mode, "price", where)
    step = _ccxt_step((market.get("precision") or {}).get("amount"), precision_mode, "amount", where)
    pp, sp = _decimals(tick), _decimals(step)
    base = Currency.from_str(str(market["base"]))
    quote = Currency.from_str(str(market["quote"]))
    limits = market.get("limits") or {}
    min_qty = (limits.get("amount") or {}).get("min")
    min_cost = (limits.get("cost") or {}).get("min")
    raw = str(market["id"])
    venue = ccxt_venue(exchange_id, mkt)
    iid = InstrumentId.from_str(f"{raw}.{venue}" if spot else f"{raw}-PERP.{venue}")
    common: dict = dict(
        instrument_id=iid,
        raw_symbol=Symbol(raw),
        base_currency=base,
        quote_currency=quote,
        price_precision=pp,
        size_precision=sp,
        price_increment=Price(tick, pp),
        size_increment=Quantity(step, sp),
        ts_event=ts_init,
        ts_init=ts_init,
        lot_size=Quantity(step, sp),
        min_quantity=Quantity(Decimal(repr(float(min_qty))) if min_qty is not None else step, sp),
    )
    if min_cost is not None and float(min_cost) > 0:
        common["min_notional"] = Money(Decimal(repr(float(min_cost))), quote)
    if spot:
        return CurrencyPair(**common)
    contract = market.get("contractSize") or 1
    settle = Currency.from_str(str(market.get("settle") or market["quote"]))
    return CryptoPerpetual(
        **common,
        settlement_currency=settle,
        is_inverse=False,
        multiplier=Quantity.from_str(str(Decimal(repr(float(contract))).normalize())),
        margin_init=Decimal("1"),
        margin_maint=Decimal(str(maint_margin_rate)),
        info={"source": f"ccxt {exchange_id} market {market.get('symbol')}"},
    )


def bar_type_for(instrument: InstrumentId | str, interval: str) -> BarType:
    """External LAST bar type of any instrument id, e.g. ``BTCUSDT.BYBIT-1-MINUTE-LAST-EXTERNAL``."""
    if interval not in INTERVALS:
        interval_ns(interval)
    step, agg, _ = INTERVALS[interval]
    return BarType.from_str(f"{instrument}-{step}-{agg}-LAST-EXTERNAL")
