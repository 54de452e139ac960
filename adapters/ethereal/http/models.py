"""REST payload models: the official SDK's generated pydantic models (OpenAPI of the venue).

We do not duplicate them: ``ethereal-sdk`` 0.2.1 generates one module per network from the venue's
OpenAPI document (``ethereal/models/{mainnet,testnet}/rest.py``, ``tv.py`` for price history).
:func:`rest_models` returns the module of a network; the names used by the adapter are listed in
``USED`` for reference.
"""

from __future__ import annotations

from types import ModuleType

from ethereal.models import load_models

from adapters.ethereal.common.enums import EtherealNetwork

USED = (
    "ProductDto", "PageOfProductDtos", "FundingDto", "PageOfFundingDtos", "OrderDto", "PageOfOrderDtos",
    "OrderFillDto", "PageOfOrderFillDtos", "PositionDto", "PageOfPositionDtos", "SubaccountDto",
    "SubaccountBalanceDto", "SignerDto", "SubmitOrderDto", "SubmitOrderLimitDtoData",
    "SubmitOrderMarketDtoData", "SubmitOrderCreatedDto", "CancelOrderDto", "CancelOrderResultDto",
    "RpcConfigDto", "HistoryResponseDto (tv)",
)


def rest_models(network: EtherealNetwork) -> ModuleType:
    """The SDK's REST model module for ``network``."""
    return load_models("rest", network.value)


def tv_models(network: EtherealNetwork) -> ModuleType:
    """The SDK's TradingView (price history) model module for ``network``."""
    return load_models("tv", network.value)
