"""Ethereal (perpetuals DEX) adapter for NautilusTrader 2 (Python adapter SDK of rc7).

Layout follows Nautilus's own adapters:

* :mod:`adapters.ethereal.common` -- constants, enums, URLs, parsing, credentials, EIP-712 signing.
* :mod:`adapters.ethereal.http` -- REST client (wraps the official ``ethereal-sdk`` client and adds
  rate limiting and 429 ``Retry-After`` handling) and the SDK's pydantic models.
* :mod:`adapters.ethereal.websocket` -- WebSocket client (the SDK's client plus reconnect/backoff and
  resubscription) and msgspec message structs for the v2 stream.
* :mod:`adapters.ethereal.config` -- data/execution client configs.
* :mod:`adapters.ethereal.providers` -- products -> ``CryptoPerpetual`` instrument provider.
* :mod:`adapters.ethereal.data` / :mod:`adapters.ethereal.execution` -- the live clients.
* :mod:`adapters.ethereal.factories` -- factories for ``LiveNode.builder(...).add_data_client`` etc.
* :mod:`adapters.ethereal.history` -- funding and price history into the Parquet catalog.
* :mod:`nautilus_app.testkit.ethereal_mock` -- a local REST + WebSocket stand-in for the venue (tests, demos).

See docs/ethereal.md for the full description, decisions and what could not be verified offline.
"""

from adapters.ethereal.common.constants import ETHEREAL_VENUE, FUNDING_INTERVAL_MINUTES

__all__ = ["ETHEREAL_VENUE", "FUNDING_INTERVAL_MINUTES"]
