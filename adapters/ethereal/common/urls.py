"""Base URLs per network (``ethereal-sdk`` 0.2.1 ``constants.py`` plus docs "WebSockets").

The SDK's default WebSocket URL is testnet ``wss://ws2.etherealtest.net/``; the docs list
``wss://ws2.ethereal.trade/v1/stream`` for mainnet. The stream path ``/v1/stream`` is appended by the
client. Every URL can be overridden in the configs (the tests point them at 127.0.0.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ethereal.constants import ARCHIVE_NETWORK_URLS, NETWORK_URLS, TV_NETWORK_URLS

from adapters.ethereal.common.enums import EtherealNetwork

WS_NETWORK_URLS = {
    EtherealNetwork.MAINNET: "wss://ws2.ethereal.trade",
    EtherealNetwork.TESTNET: "wss://ws2.etherealtest.net",
}

#: EIP-712 chain ids per network (``ethereal/contracts/<chain id>/`` in the SDK: 5064014 is the
#: mainnet contract set, 13374202 testnet). The signing domain itself is always read from
#: ``GET /v1/rpc/config``; these are used only to check that the domain matches the network.
CHAIN_IDS = {EtherealNetwork.MAINNET: 5064014, EtherealNetwork.TESTNET: 13374202}


@dataclass(frozen=True, slots=True)
class EtherealUrls:
    """REST, TradingView (price history), archive and WebSocket base URLs (no trailing slash)."""

    rest: str
    tv: str
    archive: str
    ws: str


def urls_for(network: EtherealNetwork, *, rest: str | None = None, tv: str | None = None,
             archive: str | None = None, ws: str | None = None) -> EtherealUrls:
    """URLs of ``network`` with optional overrides (e.g. a local mock server)."""
    key = network.value
    return EtherealUrls(
        rest=(rest or NETWORK_URLS[key]).rstrip("/"),
        tv=(tv or rest or TV_NETWORK_URLS[key]).rstrip("/"),
        archive=(archive or rest or ARCHIVE_NETWORK_URLS[key]).rstrip("/"),
        ws=(ws or WS_NETWORK_URLS[network]).rstrip("/"),
    )
