"""Binance spot SBE (schema id 3, version 5) encoder and decoder for the offline stand-in.

rc7's Rust spot clients ask every REST answer in SBE (``Accept: application/sbe``, ``X-MBX-SBE: 3:5``) and
take the WebSocket API's answers and user-data events in SBE too (``/ws-api/v3?responseFormat=sbe``). The
stand-in (:mod:`nautilus_app.testkit.binance_spot_standin`) builds those bytes here, from a declaration of
the messages it answers with: :data:`ENUMS` and :data:`MESSAGES` below were transcribed mechanically from
Binance's published schema ``sbe/schemas/spot_3_5.xml`` (binance-spot-api-docs; message ids, field order,
primitive types, optional presence, group dimension types, var-data length prefixes; ``constant`` fields
take no space and are left out). Nothing is copied from the client's output: the tests decode what the
stand-in sends with :func:`decode` and Nautilus's own decoders read it on the wire.

Encoding rules (the SBE standard, little endian): message header ``blockLength templateId schemaId
version`` (4 x uint16); the root block's fixed fields in order; each group: dimension (``groupSizeEncoding``
uint16 blockLength + uint32 count, ``groupSize16Encoding`` uint16 + uint16), its entries (fixed block, nested
groups, var data); then var data (length prefix uint8/uint16/uint32 + bytes). Optional fields left out are
written as the type's null value (int: minimum, uint: maximum, enum: 255); enums are given by their
``validValue`` names and sets by lists of ``choice`` names. Decimal numbers are an exponent field plus
int64 mantissas (:func:`mantissa`).
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

SCHEMA_ID, SCHEMA_VERSION = 3, 5

_PRIM: dict[str, tuple[str, int]] = {  # primitive -> (struct code, SBE null value)
    "int8": ("b", -(2**7)), "uint8": ("B", 2**8 - 1), "int16": ("h", -(2**15)), "uint16": ("H", 2**16 - 1),
    "int32": ("i", -(2**31)), "uint32": ("I", 2**32 - 1), "int64": ("q", -(2**63)), "uint64": ("Q", 2**64 - 1),
}
_DATA_LEN = {"varString": "H", "varString8": "B", "optionalVarString": "H", "optionalVarString8": "B",
             "messageData": "I", "messageData16": "H", "messageData8": "B", "optionalMessageData": "I",
             "optionalMessageData16": "H"}
_DIM = {"groupSizeEncoding": "<HI", "groupSize16Encoding": "<HH"}

# ---- transcribed from spot_3_5.xml (schema id 3, version 5); see the module docstring ----
ENUMS: dict[str, tuple[str, dict[str, int]]] = {
    'accountType': ('uint8', {'Spot': 0, 'Unknown': 2, 'NonRepresentable': 254}),
    'boolEnum': ('uint8', {'False': 0, 'True': 1}),
    'executionType': ('uint8', {'New': 0, 'Canceled': 1, 'Replaced': 2, 'Rejected': 3, 'Trade': 4, 'Expired': 5, 'TradePrevention': 8, 'Unknown': 253, 'NonRepresentable': 254}),
    'expiryReason': ('uint8', {'Rejected': 1, 'ExchangeCanceled': 2, 'OcoTrigger': 3, 'OtoPhaseOneExpired': 4, 'UnfilledIocQuantityExpired': 5, 'UnfilledFokOrderExpired': 6, 'InsufficientLiquidity': 7, 'ExecutionRulePriceRangeExceeded': 8, 'NonRepresentable': 254}),
    'floor': ('uint8', {'Exchange': 1, 'Broker': 2, 'Sor': 3, 'NonRepresentable': 254}),
    'matchType': ('uint8', {'AutoMatch': 1, 'OnePartyTradeReport': 2, 'NonRepresentable': 254}),
    'orderCapacity': ('uint8', {'Principal': 1, 'Agency': 2, 'NonRepresentable': 254}),
    'orderSide': ('uint8', {'Buy': 0, 'Sell': 1, 'NonRepresentable': 254}),
    'orderStatus': ('uint8', {'New': 0, 'PartiallyFilled': 1, 'Filled': 2, 'Canceled': 3, 'PendingCancel': 4, 'Rejected': 5, 'Expired': 6, 'ExpiredInMatch': 9, 'PendingNew': 11, 'Unknown': 253, 'NonRepresentable': 254}),
    'orderType': ('uint8', {'Market': 0, 'Limit': 1, 'StopLoss': 2, 'StopLossLimit': 3, 'TakeProfit': 4, 'TakeProfitLimit': 5, 'LimitMaker': 6, 'NonRepresentable': 254}),
    'pegOffsetType': ('uint8', {'PriceLevel': 1, 'NonRepresentable': 254}),
    'pegPriceType': ('uint8', {'PrimaryPeg': 1, 'MarketPeg': 2, 'NonRepresentable': 254}),
    'rateLimitInterval': ('uint8', {'Second': 0, 'Minute': 1, 'Hour': 2, 'Day': 3, 'NonRepresentable': 254}),
    'rateLimitType': ('uint8', {'RawRequests': 0, 'Connections': 1, 'RequestWeight': 2, 'Orders': 3, 'NonRepresentable': 254}),
    'selfTradePreventionMode': ('uint8', {'None': 1, 'ExpireTaker': 2, 'ExpireMaker': 3, 'ExpireBoth': 4, 'Decrement': 5, 'Transfer': 6, 'NonRepresentable': 254}),
    'timeInForce': ('uint8', {'Gtc': 0, 'Ioc': 1, 'Fok': 2, 'NonRepresentable': 254}),
}
MESSAGES: dict[str, tuple] = {
    'WebSocketResponse': (50, [
        ('sbeSchemaIdVersionDeprecated', ('enum', 'boolEnum'), False),
        ('status', ('prim', 'uint16'), False),
    ], [
        ('rateLimits', 'groupSize16Encoding', [
            ('rateLimitType', ('enum', 'rateLimitType'), False),
            ('interval', ('enum', 'rateLimitInterval'), False),
            ('intervalNum', ('prim', 'uint8'), False),
            ('rateLimit', ('prim', 'int64'), False),
            ('current', ('prim', 'int64'), False),
        ], [
        ], []),
    ], [('id', 'varString8'), ('result', 'messageData')]),
    'WebSocketSessionLogonResponse': (51, [
        ('authorizedSince', ('prim', 'int64'), False),
        ('connectedSince', ('prim', 'int64'), False),
        ('returnRateLimits', ('enum', 'boolEnum'), False),
        ('serverTime', ('prim', 'int64'), False),
        ('userDataStream', ('enum', 'boolEnum'), True),
    ], [
    ], [('loggedOnApiKey', 'varString')]),
    'ErrorResponse': (100, [
        ('code', ('prim', 'int16'), False),
        ('serverTime', ('prim', 'int64'), True),
        ('retryAfter', ('prim', 'int64'), True),
    ], [
    ], [('msg', 'varString'), ('data', 'optionalMessageData')]),
    'ServerTimeResponse': (102, [
        ('serverTime', ('prim', 'int64'), False),
    ], [
    ], []),
    'NewOrderAckResponse': (300, [
        ('orderId', ('prim', 'int64'), False),
        ('orderListId', ('prim', 'int64'), True),
        ('transactTime', ('prim', 'int64'), False),
    ], [
    ], [('symbol', 'varString8'), ('clientOrderId', 'varString8')]),
    'NewOrderResultResponse': (301, [
        ('priceExponent', ('prim', 'int8'), False),
        ('qtyExponent', ('prim', 'int8'), False),
        ('orderId', ('prim', 'int64'), False),
        ('orderListId', ('prim', 'int64'), True),
        ('transactTime', ('prim', 'int64'), False),
        ('price', ('prim', 'int64'), False),
        ('origQty', ('prim', 'int64'), False),
        ('executedQty', ('prim', 'int64'), False),
        ('cummulativeQuoteQty', ('prim', 'int64'), False),
        ('status', ('enum', 'orderStatus'), False),
        ('timeInForce', ('enum', 'timeInForce'), False),
        ('orderType', ('enum', 'orderType'), False),
        ('side', ('enum', 'orderSide'), False),
        ('stopPrice', ('prim', 'int64'), True),
        ('trailingDelta', ('prim', 'int64'), True),
        ('trailingTime', ('prim', 'int64'), True),
        ('workingTime', ('prim', 'int64'), True),
        ('icebergQty', ('prim', 'int64'), True),
        ('strategyId', ('prim', 'int64'), True),
        ('strategyType', ('prim', 'int32'), True),
        ('orderCapacity', ('enum', 'orderCapacity'), False),
        ('workingFloor', ('enum', 'floor'), False),
        ('selfTradePreventionMode', ('enum', 'selfTradePreventionMode'), False),
        ('tradeGroupId', ('prim', 'int64'), True),
        ('preventedQuantity', ('prim', 'int64'), False),
        ('usedSor', ('enum', 'boolEnum'), False),
        ('origQuoteOrderQty', ('prim', 'int64'), False),
        ('pegPriceType', ('enum', 'pegPriceType'), True),
        ('pegOffsetType', ('enum', 'pegOffsetType'), True),
        ('pegOffsetValue', ('prim', 'uint8'), True),
        ('peggedPrice', ('prim', 'int64'), True),
        ('expiryReason', ('enum', 'expiryReason'), True),
    ], [
    ], [('symbol', 'varString8'), ('clientOrderId', 'varString8')]),
    'NewOrderFullResponse': (302, [
        ('priceExponent', ('prim', 'int8'), False),
        ('qtyExponent', ('prim', 'int8'), False),
        ('orderId', ('prim', 'int64'), False),
        ('orderListId', ('prim', 'int64'), True),
        ('transactTime', ('prim', 'int64'), False),
        ('price', ('prim', 'int64'), False),
        ('origQty', ('prim', 'int64'), False),
        ('executedQty', ('prim', 'int64'), False),
        ('cummulativeQuoteQty', ('prim', 'int64'), False),
        ('status', ('enum', 'orderStatus'), False),
        ('timeInForce', ('enum', 'timeInForce'), False),
        ('orderType', ('enum', 'orderType'), False),
        ('side', ('enum', 'orderSide'), False),
        ('stopPrice', ('prim', 'int64'), True),
        ('trailingDelta', ('prim', 'int64'), True),
        ('trailingTime', ('prim', 'int64'), True),
        ('workingTime', ('prim', 'int64'), True),
        ('icebergQty', ('prim', 'int64'), True),
        ('strategyId', ('prim', 'int64'), True),
        ('strategyType', ('prim', 'int32'), True),
        ('orderCapacity', ('enum', 'orderCapacity'), False),
        ('workingFloor', ('enum', 'floor'), False),
        ('selfTradePreventionMode', ('enum', 'selfTradePreventionMode'), False),
        ('tradeGroupId', ('prim', 'int64'), True),
        ('preventedQuantity', ('prim', 'int64'), False),
        ('usedSor', ('enum', 'boolEnum'), False),
        ('origQuoteOrderQty', ('prim', 'int64'), False),
        ('pegPriceType', ('enum', 'pegPriceType'), True),
        ('pegOffsetType', ('enum', 'pegOffsetType'), True),
        ('pegOffsetValue', ('prim', 'uint8'), True),
        ('peggedPrice', ('prim', 'int64'), True),
        ('expiryReason', ('enum', 'expiryReason'), True),
    ], [
        ('fills', 'groupSizeEncoding', [
            ('commissionExponent', ('prim', 'int8'), False),
            ('matchType', ('enum', 'matchType'), False),
            ('price', ('prim', 'int64'), False),
            ('qty', ('prim', 'int64'), False),
            ('commission', ('prim', 'int64'), False),
            ('tradeId', ('prim', 'int64'), True),
            ('allocId', ('prim', 'int64'), True),
        ], [
        ], [('commissionAsset', 'optionalVarString8')]),
        ('preventedMatches', 'groupSizeEncoding', [
            ('preventedMatchId', ('prim', 'int64'), False),
            ('makerOrderId', ('prim', 'int64'), True),
            ('price', ('prim', 'int64'), True),
            ('takerPreventedQuantity', ('prim', 'int64'), True),
            ('makerPreventedQuantity', ('prim', 'int64'), True),
        ], [
        ], [('makerSymbol', 'optionalVarString8')]),
    ], [('symbol', 'varString8'), ('clientOrderId', 'varString8')]),
    'OrderResponse': (304, [
        ('priceExponent', ('prim', 'int8'), False),
        ('qtyExponent', ('prim', 'int8'), False),
        ('orderId', ('prim', 'int64'), False),
        ('orderListId', ('prim', 'int64'), True),
        ('price', ('prim', 'int64'), False),
        ('origQty', ('prim', 'int64'), False),
        ('executedQty', ('prim', 'int64'), False),
        ('cummulativeQuoteQty', ('prim', 'int64'), False),
        ('status', ('enum', 'orderStatus'), False),
        ('timeInForce', ('enum', 'timeInForce'), False),
        ('orderType', ('enum', 'orderType'), False),
        ('side', ('enum', 'orderSide'), False),
        ('stopPrice', ('prim', 'int64'), True),
        ('trailingDelta', ('prim', 'int64'), True),
        ('trailingTime', ('prim', 'int64'), True),
        ('icebergQty', ('prim', 'int64'), True),
        ('time', ('prim', 'int64'), False),
        ('updateTime', ('prim', 'int64'), False),
        ('isWorking', ('enum', 'boolEnum'), False),
        ('workingTime', ('prim', 'int64'), True),
        ('origQuoteOrderQty', ('prim', 'int64'), False),
        ('strategyId', ('prim', 'int64'), True),
        ('strategyType', ('prim', 'int32'), True),
        ('orderCapacity', ('enum', 'orderCapacity'), False),
        ('workingFloor', ('enum', 'floor'), False),
        ('selfTradePreventionMode', ('enum', 'selfTradePreventionMode'), False),
        ('preventedMatchId', ('prim', 'int64'), True),
        ('preventedQuantity', ('prim', 'int64'), False),
        ('usedSor', ('enum', 'boolEnum'), False),
        ('pegPriceType', ('enum', 'pegPriceType'), True),
        ('pegOffsetType', ('enum', 'pegOffsetType'), True),
        ('pegOffsetValue', ('prim', 'uint8'), True),
        ('peggedPrice', ('prim', 'int64'), True),
        ('expiryReason', ('enum', 'expiryReason'), True),
    ], [
    ], [('symbol', 'varString8'), ('clientOrderId', 'varString8')]),
    'CancelOrderResponse': (305, [
        ('priceExponent', ('prim', 'int8'), False),
        ('qtyExponent', ('prim', 'int8'), False),
        ('orderId', ('prim', 'int64'), False),
        ('orderListId', ('prim', 'int64'), True),
        ('transactTime', ('prim', 'int64'), False),
        ('price', ('prim', 'int64'), False),
        ('origQty', ('prim', 'int64'), False),
        ('executedQty', ('prim', 'int64'), False),
        ('cummulativeQuoteQty', ('prim', 'int64'), False),
        ('status', ('enum', 'orderStatus'), False),
        ('timeInForce', ('enum', 'timeInForce'), False),
        ('orderType', ('enum', 'orderType'), False),
        ('side', ('enum', 'orderSide'), False),
        ('stopPrice', ('prim', 'int64'), True),
        ('trailingDelta', ('prim', 'int64'), True),
        ('trailingTime', ('prim', 'int64'), True),
        ('icebergQty', ('prim', 'int64'), True),
        ('strategyId', ('prim', 'int64'), True),
        ('strategyType', ('prim', 'int32'), True),
        ('orderCapacity', ('enum', 'orderCapacity'), False),
        ('workingFloor', ('enum', 'floor'), False),
        ('selfTradePreventionMode', ('enum', 'selfTradePreventionMode'), False),
        ('preventedQuantity', ('prim', 'int64'), False),
        ('usedSor', ('enum', 'boolEnum'), False),
        ('origQuoteOrderQty', ('prim', 'int64'), False),
        ('pegPriceType', ('enum', 'pegPriceType'), True),
        ('pegOffsetType', ('enum', 'pegOffsetType'), True),
        ('pegOffsetValue', ('prim', 'uint8'), True),
        ('peggedPrice', ('prim', 'int64'), True),
    ], [
    ], [('symbol', 'varString8'), ('origClientOrderId', 'varString8'), ('clientOrderId', 'varString8')]),
    'CancelOpenOrdersResponse': (306, [
    ], [
        ('responses', 'groupSizeEncoding', [
        ], [
        ], [('response', 'messageData16')]),
    ], []),
    'OrdersResponse': (308, [
    ], [
        ('orders', 'groupSizeEncoding', [
            ('priceExponent', ('prim', 'int8'), False),
            ('qtyExponent', ('prim', 'int8'), False),
            ('orderId', ('prim', 'int64'), False),
            ('orderListId', ('prim', 'int64'), True),
            ('price', ('prim', 'int64'), False),
            ('origQty', ('prim', 'int64'), False),
            ('executedQty', ('prim', 'int64'), False),
            ('cummulativeQuoteQty', ('prim', 'int64'), False),
            ('status', ('enum', 'orderStatus'), False),
            ('timeInForce', ('enum', 'timeInForce'), False),
            ('orderType', ('enum', 'orderType'), False),
            ('side', ('enum', 'orderSide'), False),
            ('stopPrice', ('prim', 'int64'), True),
            ('trailingDelta', ('prim', 'int64'), True),
            ('trailingTime', ('prim', 'int64'), True),
            ('icebergQty', ('prim', 'int64'), True),
            ('time', ('prim', 'int64'), False),
            ('updateTime', ('prim', 'int64'), False),
            ('isWorking', ('enum', 'boolEnum'), False),
            ('workingTime', ('prim', 'int64'), True),
            ('origQuoteOrderQty', ('prim', 'int64'), False),
            ('strategyId', ('prim', 'int64'), True),
            ('strategyType', ('prim', 'int32'), True),
            ('orderCapacity', ('enum', 'orderCapacity'), False),
            ('workingFloor', ('enum', 'floor'), False),
            ('selfTradePreventionMode', ('enum', 'selfTradePreventionMode'), False),
            ('preventedMatchId', ('prim', 'int64'), True),
            ('preventedQuantity', ('prim', 'int64'), False),
            ('usedSor', ('enum', 'boolEnum'), False),
            ('pegPriceType', ('enum', 'pegPriceType'), True),
            ('pegOffsetType', ('enum', 'pegOffsetType'), True),
            ('pegOffsetValue', ('prim', 'uint8'), True),
            ('peggedPrice', ('prim', 'int64'), True),
            ('expiryReason', ('enum', 'expiryReason'), True),
        ], [
        ], [('symbol', 'varString8'), ('clientOrderId', 'varString8')]),
    ], []),
    'AccountResponse': (400, [
        ('commissionExponent', ('prim', 'int8'), False),
        ('commissionRateMaker', ('prim', 'int64'), False),
        ('commissionRateTaker', ('prim', 'int64'), False),
        ('commissionRateBuyer', ('prim', 'int64'), False),
        ('commissionRateSeller', ('prim', 'int64'), False),
        ('canTrade', ('enum', 'boolEnum'), False),
        ('canWithdraw', ('enum', 'boolEnum'), False),
        ('canDeposit', ('enum', 'boolEnum'), False),
        ('brokered', ('enum', 'boolEnum'), False),
        ('requireSelfTradePrevention', ('enum', 'boolEnum'), False),
        ('preventSor', ('enum', 'boolEnum'), False),
        ('updateTime', ('prim', 'int64'), False),
        ('accountType', ('enum', 'accountType'), False),
        ('tradeGroupId', ('prim', 'int64'), True),
        ('uid', ('prim', 'int64'), False),
    ], [
        ('balances', 'groupSizeEncoding', [
            ('exponent', ('prim', 'int8'), False),
            ('free', ('prim', 'int64'), False),
            ('locked', ('prim', 'int64'), False),
        ], [
        ], [('asset', 'varString8')]),
        ('permissions', 'groupSizeEncoding', [
        ], [
        ], [('permission', 'varString8')]),
        ('reduceOnlyAssets', 'groupSizeEncoding', [
        ], [
        ], [('asset', 'varString8')]),
    ], []),
    'AccountTradesResponse': (401, [
    ], [
        ('trades', 'groupSizeEncoding', [
            ('priceExponent', ('prim', 'int8'), False),
            ('qtyExponent', ('prim', 'int8'), False),
            ('commissionExponent', ('prim', 'int8'), False),
            ('id', ('prim', 'int64'), False),
            ('orderId', ('prim', 'int64'), False),
            ('orderListId', ('prim', 'int64'), True),
            ('price', ('prim', 'int64'), False),
            ('qty', ('prim', 'int64'), False),
            ('quoteQty', ('prim', 'int64'), False),
            ('commission', ('prim', 'int64'), False),
            ('time', ('prim', 'int64'), False),
            ('isBuyer', ('enum', 'boolEnum'), False),
            ('isMaker', ('enum', 'boolEnum'), False),
            ('isBestMatch', ('enum', 'boolEnum'), False),
        ], [
        ], [('symbol', 'varString8'), ('commissionAsset', 'optionalVarString8')]),
    ], []),
    'AccountCommissionResponse': (405, [
        ('commissionExponent', ('prim', 'int8'), False),
        ('discountExponent', ('prim', 'int8'), False),
        ('standardCommissionMaker', ('prim', 'int64'), False),
        ('standardCommissionTaker', ('prim', 'int64'), False),
        ('standardCommissionBuyer', ('prim', 'int64'), False),
        ('standardCommissionSeller', ('prim', 'int64'), False),
        ('taxCommissionMaker', ('prim', 'int64'), False),
        ('taxCommissionTaker', ('prim', 'int64'), False),
        ('taxCommissionBuyer', ('prim', 'int64'), False),
        ('taxCommissionSeller', ('prim', 'int64'), False),
        ('discountEnabledForAccount', ('enum', 'boolEnum'), False),
        ('discountEnabledForSymbol', ('enum', 'boolEnum'), False),
        ('discount', ('prim', 'int64'), False),
        ('specialCommissionMaker', ('prim', 'int64'), True),
        ('specialCommissionTaker', ('prim', 'int64'), True),
        ('specialCommissionBuyer', ('prim', 'int64'), True),
        ('specialCommissionSeller', ('prim', 'int64'), True),
    ], [
    ], [('symbol', 'varString8'), ('discountAsset', 'optionalVarString8')]),
    'UserDataStreamSubscribeResponse': (503, [
        ('subscriptionId', ('prim', 'uint16'), True),
    ], [
    ], []),
    'BalanceUpdateEvent': (601, [
        ('eventTime', ('prim', 'int64'), False),
        ('clearTime', ('prim', 'int64'), True),
        ('qtyExponent', ('prim', 'int8'), False),
        ('freeQtyDelta', ('prim', 'int64'), False),
        ('subscriptionId', ('prim', 'uint16'), True),
    ], [
    ], [('asset', 'varString8')]),
    'EventStreamTerminatedEvent': (602, [
        ('eventTime', ('prim', 'int64'), False),
        ('subscriptionId', ('prim', 'uint16'), True),
    ], [
    ], []),
    'ExecutionReportEvent': (603, [
        ('eventTime', ('prim', 'int64'), False),
        ('transactTime', ('prim', 'int64'), False),
        ('priceExponent', ('prim', 'int8'), False),
        ('qtyExponent', ('prim', 'int8'), False),
        ('commissionExponent', ('prim', 'int8'), False),
        ('orderCreationTime', ('prim', 'int64'), True),
        ('workingTime', ('prim', 'int64'), True),
        ('orderId', ('prim', 'int64'), False),
        ('orderListId', ('prim', 'int64'), True),
        ('origQty', ('prim', 'int64'), False),
        ('price', ('prim', 'int64'), False),
        ('origQuoteOrderQty', ('prim', 'int64'), False),
        ('icebergQty', ('prim', 'int64'), False),
        ('stopPrice', ('prim', 'int64'), False),
        ('orderType', ('enum', 'orderType'), False),
        ('side', ('enum', 'orderSide'), False),
        ('timeInForce', ('enum', 'timeInForce'), False),
        ('executionType', ('enum', 'executionType'), False),
        ('orderStatus', ('enum', 'orderStatus'), False),
        ('tradeId', ('prim', 'int64'), True),
        ('executionId', ('prim', 'int64'), False),
        ('executedQty', ('prim', 'int64'), False),
        ('cummulativeQuoteQty', ('prim', 'int64'), False),
        ('lastQty', ('prim', 'int64'), False),
        ('lastPrice', ('prim', 'int64'), False),
        ('quoteQty', ('prim', 'int64'), False),
        ('commission', ('prim', 'int64'), False),
        ('isWorking', ('enum', 'boolEnum'), False),
        ('isMaker', ('enum', 'boolEnum'), False),
        ('isBestMatch', ('enum', 'boolEnum'), False),
        ('matchType', ('enum', 'matchType'), False),
        ('selfTradePreventionMode', ('enum', 'selfTradePreventionMode'), False),
        ('orderCapacity', ('enum', 'orderCapacity'), False),
        ('workingFloor', ('enum', 'floor'), False),
        ('usedSor', ('enum', 'boolEnum'), False),
        ('allocId', ('prim', 'int64'), True),
        ('trailingDelta', ('prim', 'uint64'), True),
        ('trailingTime', ('prim', 'int64'), True),
        ('tradeGroupId', ('prim', 'int64'), True),
        ('preventedQty', ('prim', 'int64'), False),
        ('lastPreventedQty', ('prim', 'int64'), True),
        ('preventedMatchId', ('prim', 'int64'), True),
        ('preventedExecutionQty', ('prim', 'int64'), True),
        ('preventedExecutionPrice', ('prim', 'int64'), True),
        ('preventedExecutionQuoteQty', ('prim', 'int64'), True),
        ('strategyType', ('prim', 'int32'), True),
        ('strategyId', ('prim', 'int64'), True),
        ('counterOrderId', ('prim', 'int64'), True),
        ('subscriptionId', ('prim', 'uint16'), True),
        ('pegPriceType', ('enum', 'pegPriceType'), True),
        ('pegOffsetType', ('enum', 'pegOffsetType'), True),
        ('pegOffsetValue', ('prim', 'uint8'), True),
        ('peggedPrice', ('prim', 'int64'), True),
        ('expiryReason', ('enum', 'expiryReason'), True),
    ], [
    ], [('symbol', 'varString8'), ('clientOrderId', 'varString8'), ('origClientOrderId', 'optionalVarString8'), ('commissionAsset', 'optionalVarString8'), ('rejectReason', 'optionalVarString8'), ('counterSymbol', 'optionalVarString8')]),
    'OutboundAccountPositionEvent': (607, [
        ('eventTime', ('prim', 'int64'), False),
        ('updateTime', ('prim', 'int64'), False),
        ('subscriptionId', ('prim', 'uint16'), True),
    ], [
        ('balances', 'groupSizeEncoding', [
            ('exponent', ('prim', 'int8'), False),
            ('free', ('prim', 'int64'), False),
            ('locked', ('prim', 'int64'), False),
        ], [
        ], [('asset', 'varString8')]),
    ], []),
}


def mantissa(value: Decimal | str | int, exponent: int) -> int:
    """The int64 mantissa of ``value`` at ``exponent`` (``1.5`` at -8 -> 150000000); exact or ValueError."""
    m = Decimal(value).scaleb(-exponent)
    if m != m.to_integral_value():
        raise ValueError(f"{value} is not representable with exponent {exponent}")
    return int(m)


def _size(fields: list) -> int:
    n = 0
    for _name, (kind, ref), _opt in fields:
        if kind == "char":
            n += ref
        else:
            n += struct.calcsize(_PRIM[ENUMS[ref][0] if kind in ("enum", "set") else ref][0])
    return n


def _block(fields: list, values: dict, where: str) -> bytes:
    out = bytearray()
    for name, (kind, ref), optional in fields:
        v = values.get(name)
        if kind == "char":  # mantissa128: signed little-endian 16 bytes, null -2**127
            out += (-(2**127) if v is None else int(v)).to_bytes(ref, "little", signed=True)
            continue
        enc = ENUMS[ref][0] if kind == "enum" else ref
        code, null = _PRIM[enc]
        if v is None:
            if not optional and kind != "enum":
                raise ValueError(f"SBE {where}.{name} is required")
            raw = null  # enums: the SBE null value (255) stands for "not applicable" on every uint8 enum
        elif kind == "enum":
            try:
                raw = ENUMS[ref][1][v]
            except KeyError:
                raise ValueError(f"SBE {where}.{name}: {v!r} is not a {ref} value") from None
        else:
            raw = int(v)
        out += struct.pack("<" + code, raw)
    return bytes(out)


def _data(datas: list, values: dict, where: str) -> bytes:
    out = bytearray()
    for name, composite in datas:
        v = values.get(name)
        if v is None:
            if not composite.startswith("optional"):
                raise ValueError(f"SBE {where}.{name} is required")
            v = b""
        b = v.encode() if isinstance(v, str) else bytes(v)
        out += struct.pack("<" + _DATA_LEN[composite], len(b)) + b
    return bytes(out)


def _entry(fields: list, groups: list, datas: list, values: dict, where: str) -> bytes:
    known = {f[0] for f in fields} | {g[0] for g in groups} | {d[0] for d in datas}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"SBE {where}: unknown fields {sorted(unknown)}")
    out = bytearray(_block(fields, values, where))
    for gname, dim, gfields, ggroups, gdatas in groups:
        rows = values.get(gname) or []
        out += struct.pack(_DIM[dim], _size(gfields), len(rows))
        for i, row in enumerate(rows):
            out += _entry(gfields, ggroups, gdatas, row, f"{where}.{gname}[{i}]")
    out += _data(datas, values, where)
    return bytes(out)


def encode(message: str, values: dict[str, Any] | None = None) -> bytes:
    """``message`` (a :data:`MESSAGES` name) with its header; ``values`` by schema field name (groups:
    lists of dicts, var data: str/bytes, enums: validValue names). Unknown names raise ValueError."""
    template_id, fields, groups, datas = MESSAGES[message]
    body = _entry(fields, groups, datas, dict(values or {}), message)
    return struct.pack("<HHHH", _size(fields), template_id, SCHEMA_ID, SCHEMA_VERSION) + body


_BY_ID = {v[0]: k for k, v in MESSAGES.items()}


def _read_entry(buf: bytes, pos: int, block_len: int, fields: list, groups: list, datas: list) -> tuple[dict, int]:
    out: dict[str, Any] = {}
    p = pos
    for name, (kind, ref), _opt in fields:
        if kind == "char":
            out[name] = int.from_bytes(buf[p:p + ref], "little", signed=True)
            p += ref
            continue
        enc = ENUMS[ref][0] if kind == "enum" else ref
        code, null = _PRIM[enc]
        (raw,) = struct.unpack_from("<" + code, buf, p)
        p += struct.calcsize(code)
        if kind == "enum":
            out[name] = next((k for k, x in ENUMS[ref][1].items() if x == raw), None if raw == null else raw)
        else:
            out[name] = None if raw == null else raw
    p = pos + block_len  # a newer block may be longer: skip what this declaration does not know
    for gname, dim, gfields, ggroups, gdatas in groups:
        blen, count = struct.unpack_from(_DIM[dim], buf, p)
        p += struct.calcsize(_DIM[dim])
        rows = []
        for _ in range(count):
            row, p = _read_entry(buf, p, blen, gfields, ggroups, gdatas)
            rows.append(row)
        out[gname] = rows
    for name, composite in datas:
        code = "<" + _DATA_LEN[composite]
        (n,) = struct.unpack_from(code, buf, p)
        p += struct.calcsize(code)
        out[name] = bytes(buf[p:p + n])
        p += n
    return out, p


def decode(buf: bytes) -> tuple[str, dict[str, Any]]:
    """``(message name, values)`` of one SBE message (var data as bytes; the inverse of :func:`encode`)."""
    block_len, template_id, schema_id, version = struct.unpack_from("<HHHH", buf, 0)
    if schema_id != SCHEMA_ID:
        raise ValueError(f"SBE schema id {schema_id}, expected {SCHEMA_ID}")
    name = _BY_ID[template_id]
    _tid, fields, groups, datas = MESSAGES[name]
    values, end = _read_entry(buf, 8, block_len, fields, groups, datas)
    if end != len(buf):
        raise ValueError(f"SBE {name}: {len(buf) - end} trailing bytes")
    return name, values
