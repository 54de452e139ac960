"""The one place that defines the Binance instruments (spot and USDT-M perpetual) used by the platform.

Importers, downloaders, the backtest runner and paper trading all build instruments through
:func:`build_instrument`, so ids, precisions and limits cannot drift apart. ANY Binance symbol is
supported: :func:`resolve_spec` builds its :class:`InstrumentSpec` from (first wins) the
instruments.toml override file, the built-in :data:`SPECS` (BTCUSDT/ETHUSDT), Binance exchangeInfo
records (:func:`market_record`, cached by :mod:`catalog.instrument_meta`), or the precision the
imported data needs (see the "any Binance symbol" section below). Other ccxt exchanges
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

import os
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

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

if TYPE_CHECKING:
    from core.brackets import Bracket

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


#: ``InstrumentSpec.source`` of the curated entries of :data:`SPECS`
BUILTIN_SOURCE = "built-in table (core/instruments.py SPECS)"


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
    min_notional: str | None  # today's (MIN_)NOTIONAL filter; None = unknown (inferred offline)
    price_precision: int  # decimals covering every historical tick (>= decimals of tick_size)
    size_precision: int  # decimals covering every historical step (>= decimals of step_size)
    max_leverage: int | None = None  # perps only (first notional bracket)
    maint_margin_rate: str | None = None  # perps only (first notional bracket)
    mark_price_precision: int = 8  # Binance prints mark prices with 8 decimals
    source: str = BUILTIN_SOURCE  # where the values come from (built-in table, exchangeInfo, inferred ...)


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
    spec: InstrumentSpec | None = None,
) -> CurrencyPair | CryptoPerpetual:
    """Build the Nautilus instrument for ``symbol`` on ``market``.

    ``spec``: the :class:`InstrumentSpec` to build from (any symbol, e.g. from
    :func:`resolve_spec`); default the built-in :data:`SPECS` entry (``KeyError`` if none).
    ``ts_init`` (ns) is used for both ``ts_event`` and ``ts_init``; the default 0 keeps the catalog
    file name stable, so writing the same instrument twice is idempotent.
    ``margin_overrides=(margin_init, margin_maint)`` (fractions) replaces the default perp margins.
    A spec without ``min_notional`` (unknown offline) builds an instrument without one.
    """
    if spec is None:
        spec = get_spec(symbol, market)
    if spec.market != market:
        raise ValueError(f"spec of {spec.symbol} is for market {spec.market!r}, not {market!r}")
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
    )
    if spec.min_notional is not None:
        common["min_notional"] = Money(Decimal(spec.min_notional), quote)
    builtin = spec.source == BUILTIN_SOURCE
    if market == "spot":
        return CurrencyPair(**common) if builtin else CurrencyPair(**common, info={"source": spec.source})
    margin_init, margin_maint = margin_overrides or (Decimal("1"), Decimal(spec.maint_margin_rate or "0"))
    return CryptoPerpetual(
        **common,
        settlement_currency=quote,
        is_inverse=False,
        margin_init=margin_init,
        margin_maint=margin_maint,
        # the built-in entries keep their original info (catalog files stay byte-identical)
        info={"max_leverage": spec.max_leverage,
              "source": "Binance fapi exchangeInfo 2025" if builtin else spec.source},
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


# --------------------------------------------------------------------------- any Binance symbol
#
# Sources of an instrument's trading rules, highest priority first (resolve_spec):
#   1. the instruments.toml override file (per market and symbol, any subset of the keys);
#   2. the built-in SPECS entries (BTCUSDT/ETHUSDT: curated historical precisions, kept exactly);
#   3. Binance exchangeInfo as ccxt loads it (`load_markets`), cached in the catalog
#      (catalog/instrument_meta.py): tick, step, min quantity, min notional, max leverage;
#   4. offline: the data itself - price/size precision = the finest decimals seen in the imported
#      values, tick/step = one unit of that precision, no min notional.
# An instrument already stored in the catalog keeps its precisions (its stored bars were written
# with them and rc7 skips bars of any other precision); only an explicit precision in
# instruments.toml can change them.

#: Environment variable naming the instruments.toml override file (else ``<catalog>/instruments.toml``)
INSTRUMENTS_ENV = "NAUTILUS_INSTRUMENTS"
#: Quote assets recognised at the end of a symbol when nothing else gives base/quote (longest first)
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "BIDR", "AEUR", "DAI", "EUR", "TRY", "BRL",
                "GBP", "JPY", "BTC", "ETH", "BNB")
_OVERRIDE_KEYS = {
    "base": str, "quote": str, "tick_size": "dec", "step_size": "dec", "min_quantity": "dec", "min_notional": "dec",
    "max_leverage": int, "price_precision": int, "size_precision": int, "mark_price_precision": int,
    "maint_margin_rate": "dec", "brackets": list,
}


class InstrumentOverrideError(ValueError):
    """instruments.toml is malformed; the message names the file, the ``[market.SYMBOL]`` table and the key."""


def instruments_file_path(catalog: str | Path | None = None, explicit: str | Path | None = None) -> Path:
    """Location of the override file: ``explicit`` (``--instruments``), else ``$NAUTILUS_INSTRUMENTS``,
    else ``<userdir>/instruments.toml`` when a user directory is in force and has one (core/paths.py),
    else ``<catalog>/instruments.toml`` (``catalog`` None = the default catalog). It may not exist."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(INSTRUMENTS_ENV)
    if env:
        return Path(env)
    from core.paths import default_catalog_path, user_instruments_file

    user_file = user_instruments_file()  # <userdir>/instruments.toml (core/paths.py)
    if user_file is not None:
        return user_file
    return Path(catalog if catalog is not None else default_catalog_path()) / "instruments.toml"


def decimals_of(value: str | Decimal) -> int:
    """Decimals of a decimal string without trailing zeros: ``"0.0100"`` -> 2, ``"10"`` -> 0."""
    exp = Decimal(str(value)).normalize().as_tuple().exponent
    return max(0, -int(exp))  # type: ignore[arg-type]


def _dec_str(value: object) -> str:
    """Exact, normalised decimal string (``0.10`` -> ``"0.1"``, ``1E+1`` -> ``"10"``)."""
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    return format(d.normalize(), "f")


def unit(precision: int) -> str:
    """One unit of ``precision`` decimals as a string: 3 -> ``"0.001"``, 0 -> ``"1"``."""
    return format(Decimal(1).scaleb(-precision), "f")


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"SOLUSDT"`` -> ``("SOL", "USDT")`` by the known quote assets (:data:`QUOTE_ASSETS`).

    Raises ``ValueError`` when no known quote asset ends the symbol (give ``base``/``quote`` in
    instruments.toml)."""
    sym = symbol.upper()
    for q in QUOTE_ASSETS:
        if sym.endswith(q) and len(sym) > len(q):
            return sym[: -len(q)], q
    raise ValueError(f"cannot tell base and quote asset of {symbol!r}: give base/quote in instruments.toml")


def load_overrides(path: str | Path | None) -> dict[tuple[Market, str], dict]:
    """Parse an instruments.toml override file into ``{(market, SYMBOL): {key: value}}``.

    Format (docs/data.md): one table per market and symbol, ``[um.SOLUSDT]`` / ``[spot.SOLUSDT]``,
    with any of ``base``, ``quote`` (strings), ``tick_size``, ``step_size``, ``min_quantity``,
    ``min_notional`` (quote currency), ``maint_margin_rate`` (fraction) as decimal strings or
    numbers; ``max_leverage``, ``price_precision``, ``size_precision``, ``mark_price_precision``
    (integers); ``brackets``: Binance maintenance brackets, either a list of
    ``[notional cap USDT, maintenance rate, max leverage]`` rows (valid from 1970) or a list of
    ``{effective_from = "YYYY-MM-DD", tiers = [[cap, rate, lev], ...]}`` versions. Decimal values are
    returned as normalised strings, brackets as ``[(effective_from, rows)]``. A missing file gives ``{}``.

    Raises:
        InstrumentOverrideError: unreadable TOML, unknown market or key, wrong value type.
    """
    if path is None or not Path(path).is_file():
        return {}
    import tomllib

    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InstrumentOverrideError(f"{p}: not valid TOML ({e})") from e
    out: dict[tuple[Market, str], dict] = {}
    for mkt, table in raw.items():
        if mkt not in ("spot", "um"):
            raise InstrumentOverrideError(f"{p}: [{mkt}]: unknown market (expected [spot.SYMBOL] or [um.SYMBOL])")
        if not isinstance(table, dict):
            raise InstrumentOverrideError(f"{p}: {mkt}: expected tables like [{mkt}.SOLUSDT]")
        for sym, entry in table.items():
            where = f"{p}: [{mkt}.{sym}]"
            if not isinstance(entry, dict):
                raise InstrumentOverrideError(f"{where}: expected a table of keys")
            clean: dict = {}
            for key, value in entry.items():
                kind = _OVERRIDE_KEYS.get(key)
                if kind is None:
                    raise InstrumentOverrideError(f"{where}.{key}: unknown key; known: {sorted(_OVERRIDE_KEYS)}")
                if kind == "dec":
                    try:
                        if isinstance(value, bool):
                            raise ValueError
                        d = _dec_str(value)
                        if Decimal(d) < 0 or (key != "maint_margin_rate" and key != "min_notional" and Decimal(d) == 0):
                            raise ValueError
                    except (ValueError, ArithmeticError):
                        raise InstrumentOverrideError(f"{where}.{key}: expected a positive decimal, got {value!r}") from None
                    clean[key] = d
                elif kind is int:
                    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (
                            key.endswith("precision") and value > 16) or (key == "max_leverage" and value < 1):
                        raise InstrumentOverrideError(f"{where}.{key}: expected an integer "
                                                      f"({'0..16' if key.endswith('precision') else '>= 1'}), got {value!r}")
                    clean[key] = value
                elif kind is str:
                    if not isinstance(value, str) or not value.strip():
                        raise InstrumentOverrideError(f"{where}.{key}: expected a string, got {value!r}")
                    clean[key] = value.strip().upper()
                else:
                    clean[key] = _parse_bracket_versions(value, f"{where}.brackets")
            out[(mkt, sym.upper())] = clean  # type: ignore[index]
    return out


def _parse_bracket_versions(value: object, where: str) -> list[tuple[str, list[tuple[float, float, float]]]]:
    from core.brackets import MarginError, make_brackets

    if not isinstance(value, list) or not value:
        raise InstrumentOverrideError(f"{where}: expected a non-empty list of [cap, rate, max_leverage] rows "
                                      "or of {effective_from, tiers} tables")
    versions = [{"effective_from": "1970-01-01", "tiers": value}] if isinstance(value[0], list) else value
    out = []
    for i, ver in enumerate(versions):
        if not isinstance(ver, dict) or set(ver) != {"effective_from", "tiers"}:
            raise InstrumentOverrideError(f"{where}[{i}]: expected {{effective_from = \"YYYY-MM-DD\", tiers = [...]}}")
        start = str(ver["effective_from"])[:10]
        try:
            import datetime as _dt

            _dt.date.fromisoformat(start)
            rows = [tuple(float(x) for x in row) for row in ver["tiers"]]
            if any(len(r) != 3 for r in rows):
                raise ValueError("each tier is [notional cap USDT, maintenance rate, max leverage]")
            make_brackets(rows, name=where)  # type: ignore[arg-type]
        except (ValueError, TypeError, MarginError) as e:
            raise InstrumentOverrideError(f"{where}[{i}]: {e}") from None
        out.append((start, rows))
    return out  # type: ignore[return-value]


def override_brackets(symbol: str, path: str | Path | None) -> list[tuple[str, tuple]] | None:
    """Bracket versions of USDT-M ``symbol`` from the override file at ``path`` (None if absent),
    in :data:`core.brackets.DEFAULT_BRACKETS` form."""
    from core.brackets import make_brackets

    entry = load_overrides(path).get(("um", symbol.upper()))
    if not entry or "brackets" not in entry:
        return None
    return [(start, make_brackets(rows, name=symbol)) for start, rows in entry["brackets"]]


def brackets_for(symbol: str, on_date: str | None = None,
                 overrides: dict[str, list[tuple[str, tuple[Bracket, ...]]]] | None = None,
                 *, instruments_file: str | object | None = None, catalog: str | object | None = None,
                 ) -> tuple[Bracket, ...]:
    """The bracket table of ``symbol`` (e.g. ``"BTCUSDT"``) effective on ``on_date`` (ISO date; None = newest).

    Lookup per symbol, first found wins: ``overrides`` (the run config's ``venues[].brackets``, same
    shape as :data:`core.brackets.DEFAULT_BRACKETS`), then the ``brackets`` of ``[um.SYMBOL]`` in the instruments.toml
    override file (``instruments_file``, else ``$NAUTILUS_INSTRUMENTS``, else
    ``<catalog>/instruments.toml`` with ``catalog`` None = the default catalog), then
    the shipped default table. Versions that start after ``on_date`` are skipped; if every version
    starts later, the oldest is used.

    Raises:
        MarginError: no table for the symbol anywhere (the message names the symbol and where to
            give one), or the override file is malformed.
    """
    from core.brackets import DEFAULT_BRACKETS, MarginError

    versions = (overrides or {}).get(symbol)
    toml_path = None
    if not versions:
        toml_path = instruments_file_path(catalog, instruments_file)  # type: ignore[arg-type]
        try:
            versions = override_brackets(symbol, toml_path)
        except InstrumentOverrideError as e:
            raise MarginError(str(e)) from e
    versions = versions or DEFAULT_BRACKETS.get(symbol)
    if not versions:
        raise MarginError(f"no maintenance-margin brackets for {symbol!r}: not in the shipped Binance table "
                          f"({len(DEFAULT_BRACKETS)} USDT-M perpetuals, core/binance_brackets.py); "
                          f"give them in the run config (venues[].brackets) or as [um.{symbol}] brackets in "
                          f"{toml_path} (instruments.toml, docs/data.md)")
    versions = sorted(versions, key=lambda v: v[0])
    if on_date is None:
        return versions[-1][1]
    chosen = versions[0][1]
    for start, table in versions:
        if start <= on_date[:10]:
            chosen = table
    return chosen


def market_record(market: dict) -> dict:
    """The trading rules of one ccxt Binance market (``exchange.markets[...]`` after
    ``load_markets``) as a JSON-friendly record with exact decimal strings.

    Keys: ``symbol`` (Binance id), ``base``, ``quote``, ``tick_size`` (PRICE_FILTER tickSize),
    ``step_size`` (LOT_SIZE stepSize), ``min_quantity`` (LOT_SIZE minQty), ``min_notional``
    (NOTIONAL/MIN_NOTIONAL filter, quote currency; None if absent), ``max_leverage`` (ccxt
    ``limits.leverage.max``; None when exchangeInfo has none), ``price_decimals`` /
    ``size_decimals`` (Binance's ``pricePrecision``/``quantityPrecision`` when given), ``status``.
    Values are read from the raw exchangeInfo filters in ``market['info']`` (exact strings), falling
    back to ccxt's parsed ``precision``/``limits``. Raises ``ValueError`` without a tick or step.
    """
    info = market.get("info") or {}
    filters = {f.get("filterType"): f for f in info.get("filters") or [] if isinstance(f, dict)}
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}

    def first(*vals: object) -> str | None:
        for v in vals:
            if v is not None and str(v).strip() not in ("", "None"):
                return _dec_str(v)
        return None

    tick = first(filters.get("PRICE_FILTER", {}).get("tickSize"), precision.get("price"))
    step = first(filters.get("LOT_SIZE", {}).get("stepSize"), precision.get("amount"))
    if tick is None or step is None or Decimal(tick) <= 0 or Decimal(step) <= 0:
        raise ValueError(f"market {market.get('symbol')!r}: exchangeInfo has no tick size / step size")
    notional = filters.get("NOTIONAL", {}).get("minNotional") or filters.get("MIN_NOTIONAL", {}).get("notional") \
        or filters.get("MIN_NOTIONAL", {}).get("minNotional")
    lev = (limits.get("leverage") or {}).get("max")
    return {
        "symbol": str(market.get("id") or info.get("symbol")).upper(),
        "base": str(market.get("base") or info.get("baseAsset")).upper(),
        "quote": str(market.get("quote") or info.get("quoteAsset")).upper(),
        "tick_size": tick,
        "step_size": step,
        "min_quantity": first(filters.get("LOT_SIZE", {}).get("minQty"), (limits.get("amount") or {}).get("min"), step),
        "min_notional": first(notional, (limits.get("cost") or {}).get("min")),
        "max_leverage": int(lev) if lev else None,
        "price_decimals": int(info["pricePrecision"]) if str(info.get("pricePrecision", "")).isdigit() else None,
        "size_decimals": int(info["quantityPrecision"]) if str(info.get("quantityPrecision", "")).isdigit() else None,
        "status": info.get("status"),
    }


def resolve_spec(
    symbol: str,
    market: Market,
    *,
    override: dict | None = None,
    exchange: dict | None = None,
    exchange_source: str = "Binance exchangeInfo",
    data_precision: tuple[int, int] | None = None,
    stored_precision: tuple[int, int] | None = None,
    mark_decimals: int | None = None,
    base_quote: tuple[str, str] | None = None,
    brackets_file: str | Path | None = None,
) -> InstrumentSpec:
    """The :class:`InstrumentSpec` of ANY Binance ``symbol`` on ``market`` (priorities in the comment above).

    Args:
        override: the symbol's instruments.toml entry (:func:`load_overrides`), highest priority.
        exchange: its cached exchangeInfo record (:func:`market_record`); ``exchange_source`` names
            it in ``spec.source`` (e.g. ``"Binance exchangeInfo fetched 2025-06-01T12:00:00Z"``).
        data_precision: ``(price, size)`` decimals the data being imported needs (inference).
        stored_precision: ``(price, size)`` of the instrument already in the catalog: kept.
        mark_decimals: decimals the mark prices being imported need (mark precision = max(8, this)).
        base_quote: base/quote assets when the source names them (freqtrade ``SOL_USDT_USDT``).
        brackets_file: instruments.toml path for the perp's first maintenance bracket (max leverage
            and maintenance rate when nothing else gives them).

    Precision (decimals): explicit ``price_precision``/``size_precision`` in the override, else the
    stored instrument's, else the built-in entry's, else ``max(decimals of tick/step, data_precision)``
    so every imported value fits exactly (rc7 needs bar precision == instrument precision). Without
    a tick/step, tick = step = one unit of the inferred precision and there is no min notional.
    A built-in symbol without override returns its :data:`SPECS` entry unchanged.

    Raises:
        ValueError: nothing gives a precision (no override, no metadata, no data), base/quote unknown,
            or a tick/step needs more decimals than a fixed precision.
    """
    sym = symbol.upper()
    ov = dict(override or {})
    builtin = SPECS.get((market, sym))
    if builtin is not None and not ov:
        return builtin
    ex = {} if builtin is not None else dict(exchange or {})
    base_src = {k: v for k, v in (asdict(builtin).items() if builtin is not None else ()) if v is not None}

    def pick(key: str) -> object:
        for src in (ov, base_src, ex):
            if src.get(key) is not None:
                return src[key]
        return None

    if pick("base") and pick("quote"):
        base, quote = str(pick("base")), str(pick("quote"))
    elif base_quote is not None:
        base, quote = base_quote
    else:
        base, quote = split_symbol(sym)
    tick, step = pick("tick_size"), pick("step_size")
    inferred: list[str] = []

    def precision(i: int, key: str, incr: object) -> int:
        if key in ov:
            return int(ov[key])
        if stored_precision is not None:
            return stored_precision[i]
        if builtin is not None:
            return max(getattr(builtin, key), decimals_of(str(incr)))
        cands = [decimals_of(str(incr))] if incr is not None else []
        if data_precision is not None:
            cands.append(data_precision[i])
            if incr is None or data_precision[i] > decimals_of(str(incr)):
                inferred.append(key.split("_")[0])
        if not cands:
            raise ValueError(f"{sym} ({market}): no instrument metadata and no data to infer the {key} from; "
                             "fetch exchangeInfo (nautilus-app fetch-instruments) or set it in instruments.toml")
        return max(cands)

    pp = precision(0, "price_precision", tick)
    sp = precision(1, "size_precision", step)
    tick = str(tick) if tick is not None else unit(pp)
    step = str(step) if step is not None else unit(sp)
    for what, incr, prec in (("tick_size", tick, pp), ("step_size", step, sp)):
        if decimals_of(incr) > prec:
            raise ValueError(f"{sym} ({market}): {what} {incr} needs {decimals_of(incr)} decimals, more than the "
                             f"instrument precision {prec} (stored in the catalog or set in instruments.toml)")
    max_lev = pick("max_leverage")
    maint = pick("maint_margin_rate")
    if market == "um" and (max_lev is None or maint is None):
        first = _first_bracket(sym, ov, brackets_file)
        if first is not None:
            max_lev = max_lev if max_lev is not None else int(first.max_leverage)
            maint = maint if maint is not None else _dec_str(first.mmr)
    sources = []
    if ov:
        sources.append("instruments.toml")
    if builtin is not None:
        sources.append("built-in table")
    if ex:
        sources.append(exchange_source)
    if not ex and builtin is None and not ov.keys() & {"tick_size", "step_size"}:
        sources.append("offline (no exchange metadata)")
    if inferred:
        sources.append(f"{'/'.join(inferred)} precision inferred from the data")
    if "mark_price_precision" in ov:
        mark_pp = int(ov["mark_price_precision"])
    elif builtin is not None:
        mark_pp = builtin.mark_price_precision
    else:
        mark_pp = max(8, mark_decimals or 0)
    min_qty = pick("min_quantity") or step
    min_qty = min_qty if decimals_of(str(min_qty)) <= sp else step
    return InstrumentSpec(
        sym, market, base, quote, tick_size=tick, step_size=step, min_quantity=str(min_qty),
        min_notional=str(pick("min_notional")) if pick("min_notional") is not None else None,
        price_precision=pp, size_precision=sp,
        max_leverage=int(max_lev) if market == "um" and max_lev is not None else None,
        maint_margin_rate=str(maint) if market == "um" and maint is not None else None,
        mark_price_precision=mark_pp, source=" + ".join(sources),
    )


def _first_bracket(symbol: str, override: dict, brackets_file: str | Path | None):  # noqa: ANN202 - Bracket | None
    from core.brackets import DEFAULT_BRACKETS, make_brackets

    if override.get("brackets"):
        _, rows = sorted(override["brackets"])[-1]
        return make_brackets(rows, name=symbol)[0]
    if brackets_file is not None:
        versions = override_brackets(symbol, brackets_file)
        if versions:
            return sorted(versions, key=lambda v: v[0])[-1][1][0]
    versions = DEFAULT_BRACKETS.get(symbol)
    return sorted(versions, key=lambda v: v[0])[-1][1][0] if versions else None
