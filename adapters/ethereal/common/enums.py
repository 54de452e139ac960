"""Ethereal enums and their mapping to Nautilus enums.

Venue values (SDK models ``ethereal/models/mainnet/rest.py``): ``OrderSide`` 0 = BUY, 1 = SELL;
order ``Status`` NEW, PENDING, FILLED_PARTIAL, FILLED, REJECTED, CANCELED, EXPIRED; ``TimeInForce``
GTD, IOC, FOK; order ``type`` MARKET, LIMIT.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from enum import Enum
from typing import Any

from nautilus_trader.model import AggressorSide, OrderSide, OrderStatus, PositionSide, TimeInForce


class EtherealNetwork(Enum):
    """Which Ethereal deployment to use."""

    MAINNET = "mainnet"
    TESTNET = "testnet"


class EtherealOrderStatus(Enum):
    """Venue order status (``OrderDto.status`` / WebSocket ``OrderUpdate.st``)."""

    NEW = "NEW"
    PENDING = "PENDING"
    FILLED_PARTIAL = "FILLED_PARTIAL"
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


SIDE_TO_VENUE = {OrderSide.BUY: 0, OrderSide.SELL: 1}
VENUE_TO_SIDE = {0: OrderSide.BUY, 1: OrderSide.SELL}
VENUE_TO_AGGRESSOR = {0: AggressorSide.BUY, 1: AggressorSide.SELL}
VENUE_TO_POSITION_SIDE = {0: PositionSide.LONG, 1: PositionSide.SHORT}

#: Venue order status -> Nautilus order status (reconciliation reports).
STATUS_TO_NAUTILUS = {
    EtherealOrderStatus.NEW: OrderStatus.ACCEPTED,
    EtherealOrderStatus.PENDING: OrderStatus.ACCEPTED,  # stop/OTO order waiting for its trigger
    EtherealOrderStatus.FILLED_PARTIAL: OrderStatus.PARTIALLY_FILLED,
    EtherealOrderStatus.FILLED: OrderStatus.FILLED,
    EtherealOrderStatus.REJECTED: OrderStatus.REJECTED,
    EtherealOrderStatus.CANCELED: OrderStatus.CANCELED,
    EtherealOrderStatus.EXPIRED: OrderStatus.EXPIRED,
}

#: Venue time in force -> Nautilus. GTD without an explicit expiry is what the venue calls a
#: resting order, reported as GTC.
TIF_TO_NAUTILUS = {"GTD": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}

#: Nautilus time in force -> venue (``None`` = not supported by Ethereal).
TIF_TO_VENUE = {
    TimeInForce.GTC: "GTD",
    TimeInForce.GTD: "GTD",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
}


_log = logging.getLogger(__name__)
_warned: set[str] = set()


def order_status(raw: Any, quantity: Any, available: Any, filled: Any) -> EtherealOrderStatus:
    """The venue status ``raw``; a status this adapter does not know (the venue may add some) is
    read from the quantities instead of failing: nothing available -> FILLED (everything filled) or
    CANCELED, else FILLED_PARTIAL / NEW (working). A warning names the unknown value once."""
    try:
        return EtherealOrderStatus(raw)
    except ValueError:
        pass
    q, a, f = Decimal(str(quantity)), Decimal(str(available)), Decimal(str(filled))
    if a <= 0:
        inferred = EtherealOrderStatus.FILLED if f >= q else EtherealOrderStatus.CANCELED
    else:
        inferred = EtherealOrderStatus.FILLED_PARTIAL if f > 0 else EtherealOrderStatus.NEW
    if str(raw) not in _warned:
        _warned.add(str(raw))
        _log.warning("Ethereal: unknown order status %r; treated as %s from its quantities "
                     "(quantity %s, available %s, filled %s)", raw, inferred.value, q, a, f)
    return inferred
