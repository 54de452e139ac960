"""Instrument provider: Ethereal products (``GET /v1/product``, all pages) -> ``CryptoPerpetual``.

Only ``ACTIVE`` perpetual products are loaded (``engineType`` 0); a product that cannot be parsed
is skipped with an error log naming it, so one bad listing does not block the others. The
provider also keeps the product lookups the clients need (ticker, product UUID, onchain id).
The data client calls :meth:`EtherealInstrumentProvider.load_all_async` again every
``instrument_refresh_mins`` and republishes changed instruments (fees, leverage, limits).
"""

from __future__ import annotations

import logging
from typing import Any

from nautilus_trader.live.providers import InstrumentProvider, InstrumentProviderConfig
from nautilus_trader.model import CryptoPerpetual, InstrumentId

from adapters.ethereal.common.parsing import ParseError, instrument_id_for, product_to_instrument
from adapters.ethereal.http.client import EtherealHttpClient

log = logging.getLogger(__name__)


class EtherealInstrumentProvider(InstrumentProvider):
    """Loads Ethereal perpetuals. ``tickers`` limits loading to those tickers (``None`` = all).

    After loading: ``product(instrument_id)`` returns the SDK ``ProductDto``,
    ``instrument_for_symbol("BTCUSD")`` / ``instrument_for_product_id(uuid)`` map stream keys.
    """

    def __init__(self, http: EtherealHttpClient, tickers: list[str] | None = None,
                 config: InstrumentProviderConfig | None = None, currency: str | None = None) -> None:
        super().__init__(config or InstrumentProviderConfig(load_all=True))
        self._http = http
        self.currency = currency  # settlement currency code (None = USDE, the default)
        self._tickers = {t.upper() for t in tickers} if tickers else None
        self._products: dict[InstrumentId, Any] = {}
        self._by_symbol: dict[str, CryptoPerpetual] = {}
        self._by_product_id: dict[str, CryptoPerpetual] = {}
        self.skipped: list[str] = []

    async def load_all_async(self, filters: dict | None = None) -> None:
        """Fetch every product page and (re)build the instruments."""
        products = await self._http.all_pages("product", "V1ProductGetParametersQuery", "PageOfProductDtos")
        self.add_products(products)

    def add_products(self, products: list[Any]) -> list[CryptoPerpetual]:
        """Parse and store products (SDK models or dicts); returns the instruments added."""
        added = []
        self.skipped = []
        for p in products:
            ticker = str(p["ticker"] if isinstance(p, dict) else p.ticker).upper()
            if self._tickers is not None and ticker not in self._tickers:
                continue
            status = p["status"] if isinstance(p, dict) else getattr(p.status, "value", p.status)
            if status != "ACTIVE":  # PENDING, or a status the SDK does not know yet: not tradable
                self.skipped.append(f"{ticker}: status {status}")
                if status != "PENDING":
                    log.warning("Ethereal product %s has status %r; not loaded", ticker, status)
                continue
            try:
                inst = product_to_instrument(p, currency=self.currency)
            except (ParseError, ValueError, KeyError, AttributeError) as e:
                msg = f"{ticker}: cannot parse product ({e})"
                self.skipped.append(msg)
                log.error("Ethereal instrument skipped: %s", msg)
                continue
            self.add(inst)
            self._products[inst.id] = p
            self._by_symbol[ticker] = inst
            self._by_product_id[inst.info["product_id"]] = inst
            added.append(inst)
        if self._tickers:
            missing = self._tickers - set(self._by_symbol)
            if missing:
                log.error("Ethereal products not found or not active: %s", sorted(missing))
        return added

    def product(self, instrument_id: InstrumentId) -> Any | None:
        """The venue product of ``instrument_id`` (SDK ``ProductDto``), or ``None``."""
        return self._products.get(instrument_id)

    def instrument_for_symbol(self, symbol: str) -> CryptoPerpetual | None:
        """Instrument of a venue ticker (``BTCUSD``)."""
        return self._by_symbol.get(symbol.upper())

    def instrument_for_product_id(self, product_id: str) -> CryptoPerpetual | None:
        """Instrument of a product UUID (string)."""
        return self._by_product_id.get(str(product_id))

    @staticmethod
    def instrument_id(ticker: str) -> InstrumentId:
        """``BTCUSD`` -> ``BTCUSD-PERP.ETHEREAL``."""
        return instrument_id_for(ticker)
