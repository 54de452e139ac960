"""Constants of the Ethereal adapter.

Sources: ``ethereal-sdk`` 0.2.1 (``ethereal/constants.py``, ``ethereal/models/config.py``,
``ethereal/ws/async_ws_base.py``) and the public docs (docs.ethereal.trade: "WebSockets",
"System Limits", "Funding Rates").
"""

from __future__ import annotations

from nautilus_trader.model import Venue

#: Nautilus venue name; instrument ids are ``<ticker>-PERP.ETHEREAL`` (e.g. ``BTCUSD-PERP.ETHEREAL``).
ETHEREAL = "ETHEREAL"
ETHEREAL_VENUE = Venue(ETHEREAL)

#: Ethereal settles funding every hour on the hour (docs "Funding Rates"); Nautilus wants minutes.
FUNDING_INTERVAL_MINUTES = 60
FUNDING_INTERVAL_NS = FUNDING_INTERVAL_MINUTES * 60 * 1_000_000_000

#: Every decimal on the API has 9 decimals ("precision: 9" in the SDK models); EIP-712 messages carry
#: quantity and price as integers scaled by 1e9 (``ethereal/rest/order.py::sign_order``).
API_DECIMALS = 9
EIP712_SCALE = 10**API_DECIMALS

#: ``engineType`` of perpetual products (``EngineType.perp`` in the SDK models).
ENGINE_TYPE_PERP = 0

#: Default expiry the venue applies to GTD orders without ``expiresAt``: signedAt + 6652800 s
#: (SDK model ``SubmitOrderLimitDtoData.expires_at``). Nautilus GTC orders are sent as GTD without
#: ``expiresAt`` and therefore live ~77 days at most.
DEFAULT_GTD_LIFETIME_S = 6_652_800

#: WebSocket stream path (SDK ``WS_PATH``) and channel names (docs "WebSockets", SDK docstrings).
WS_PATH = "/v1/stream"
WS_L2_BOOK = "L2Book"
WS_TICKER = "Ticker"
WS_TRADE_FILL = "TradeFill"
WS_ORDER_UPDATE = "OrderUpdate"
WS_ORDER_FILL = "OrderFill"
WS_POSITION_UPDATE = "PositionUpdate"
WS_SUBACCOUNT_LIQUIDATION = "SubaccountLiquidation"
WS_TOKEN_TRANSFER = "TokenTransfer"

#: Rate limits (docs "System Limits"): HTTP 20,000 points / 60 s per IP, account 220 points / 60 s
#: for signed requests (1 point per order or cancel). Used by the client-side limiter.
HTTP_POINTS_PER_MINUTE = 20_000
ACCOUNT_POINTS_PER_MINUTE = 220

#: Environment variable names for secrets (see :mod:`adapters.ethereal.common.credentials`).
ENV_PRIVATE_KEY = "ETHEREAL_PRIVATE_KEY"
ENV_PRIVATE_KEY_FILE = "ETHEREAL_PRIVATE_KEY_FILE"

#: Namespace of the deterministic client order ids sent to the venue: Nautilus ``ClientOrderId``s
#: contain dashes and can exceed 32 characters, while the venue accepts "a UUID or an alphanumeric
#: string up to 32 characters"; the adapter sends ``uuid5(CLOID_NAMESPACE, client_order_id)``, so
#: the mapping can be rebuilt from the cache after a restart.
CLOID_NAMESPACE = "7f6c3c1e-58b2-4b6e-9d0a-2e1e3a7b5c42"
