"""One vocabulary for the kinds of market data, in every command, config key and API parameter.

| kind | what | Binance Vision archive folder | catalog folder |
|---|---|---|---|
| ``bars`` | OHLCV candles (``Bar``) | ``klines`` | ``bars`` |
| ``funding`` | funding-rate settlements (``FundingRateUpdate``), USDT-M perpetuals | ``fundingRate`` | ``funding_rates`` |
| ``mark`` | mark-price candles, stored as ``MarkPriceUpdate`` at each close | ``markPriceKlines`` | ``mark_prices`` |
| ``trades`` | aggregated trades (``TradeTick``) | ``aggTrades`` | ``trades`` |

The catalog folder names are Nautilus's and stay what ``inventory`` lists; ``inventory --gaps`` takes
either (``funding/BTCUSDT-PERP.BINANCE_USDM`` or ``funding_rates/...``).

The importers used to take their source's own words (``klines / fundingRate / markPriceKlines /
aggTrades`` for Binance Vision, ``ohlcv`` for ccxt). Those spellings are still accepted everywhere
:func:`canonical_kinds` is applied, with a logged deprecation warning naming the old and the new word.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

#: The kinds, in the order the commands list them.
KINDS = ("bars", "funding", "mark", "trades")

#: Old spelling -> kind (accepted with a deprecation warning).
DEPRECATED_KINDS: dict[str, str] = {
    "klines": "bars",
    "ohlcv": "bars",
    "fundingRate": "funding",
    "markPriceKlines": "mark",
    "aggTrades": "trades",
}

#: Kind -> the Binance Vision archive folder holding it (``data/futures/um/monthly/<folder>/...``).
VISION_FOLDERS: dict[str, str] = {"bars": "klines", "funding": "fundingRate", "mark": "markPriceKlines",
                                  "trades": "aggTrades"}

#: Kind -> the catalog folder (``<catalog>/data/<folder>/<identifier>/``) and inventory ``kind`` holding it.
STORE_FOLDERS: dict[str, str] = {"bars": "bars", "funding": "funding_rates", "mark": "mark_prices", "trades": "trades"}

_log = logging.getLogger("catalog.kinds")


def canonical_kind(kind: str, *, where: str = "kinds") -> str:
    """``kind`` in this module's vocabulary: an old spelling is translated (logging a deprecation
    warning that names ``where``, the old and the new word); anything else is returned unchanged, for
    the caller to check against the kinds it supports."""
    new = DEPRECATED_KINDS.get(kind)
    if new is None:
        return kind
    _log.warning("%s: %r is deprecated, use %r (the old spelling is still accepted for now)", where, kind, new)
    return new


def canonical_kinds(kinds: Iterable[str] | str, *, where: str = "kinds") -> tuple[str, ...]:
    """Each of ``kinds`` through :func:`canonical_kind`, in order, duplicates dropped (a single string
    is one kind)."""
    items = [kinds] if isinstance(kinds, str) else list(kinds)
    return tuple(dict.fromkeys(canonical_kind(k, where=where) for k in items))


def unknown_kinds(kinds: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The entries of ``kinds`` (already canonical) that are not in ``allowed``, sorted."""
    ok = set(allowed)
    return sorted({k for k in kinds if k not in ok})


def cli_choices(allowed: Iterable[str]) -> list[str]:
    """argparse ``choices`` for a ``--kinds`` option: ``allowed`` plus their old spellings."""
    allowed = list(allowed)
    return allowed + [old for old, new in DEPRECATED_KINDS.items() if new in allowed]
