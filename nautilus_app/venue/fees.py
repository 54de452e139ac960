"""Maker/taker fees per venue with Binance's VIP tiers, and the liquidation clearance fee.

Rates are fractions of notional (0.0005 = 0.05 % = 5 bps). A venue's rates come, in order, from its
explicit ``maker_fee``/``taker_fee``, else its ``fee_tier`` row of :data:`FEE_TIERS`, else VIP 0.

:data:`FEE_TIERS` holds Binance's published regular-user tiers without BNB discount
(https://www.binance.com/en/fee/schedule for spot, https://www.binance.com/en/fee/futureFee for
USDT-M), as published in 2023-2024; Binance revises them, so check the pages and override with
explicit fees when it matters. The tier is fixed for the run (Binance re-rates daily on 30-day
volume; that feedback is not simulated).

Liquidation clearance fee: Binance charges a liquidated position a clearance fee on the closed
notional (it goes to the insurance fund), never more than the margin left. :class:`VenueFeeModel`
adds ``min(liquidation_fee x notional, margin left at the liquidation price)`` to the commission of
fills of orders tagged ``LIQUIDATION``, on top of the taker fee, so it is a normal commission in
Nautilus's accounts and fills; results split it out again. The cap (isolated: the position's margin
plus its PnL at the liquidation price, i.e. its maintenance margin; cross: the account equity at
that price) is set per order by the liquidation actor; the clearance fee takes at most what is left
after the taker fee, so an isolated position never loses more than its margin and the clearance fee
never pushes a balance below zero.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nautilus_trader.execution import FeeModel, MakerTakerFeeModel
from nautilus_trader.model import LiquiditySide, Money, OrderType

from nautilus_app.venue.fill_timing import LIQUIDATION_TAG

#: venue -> tier -> (maker, taker), fractions of notional.
FEE_TIERS: dict[str, dict[str, tuple[float, float]]] = {
    "BINANCE": {
        "VIP0": (0.001, 0.001), "VIP1": (0.0009, 0.001), "VIP2": (0.0008, 0.001), "VIP3": (0.00042, 0.0006),
        "VIP4": (0.00042, 0.00054), "VIP5": (0.00036, 0.00048), "VIP6": (0.0003, 0.00042),
        "VIP7": (0.00024, 0.00036), "VIP8": (0.00018, 0.0003), "VIP9": (0.00012, 0.00024),
    },
    "BINANCE_USDM": {
        "VIP0": (0.0002, 0.0005), "VIP1": (0.00016, 0.0004), "VIP2": (0.00014, 0.00035), "VIP3": (0.00012, 0.00032),
        "VIP4": (0.0001, 0.0003), "VIP5": (0.00008, 0.00027), "VIP6": (0.00006, 0.00025),
        "VIP7": (0.00004, 0.00022), "VIP8": (0.00002, 0.0002), "VIP9": (0.0, 0.00017),
    },
}


def tier_rates(venue: str, tier: str) -> tuple[float, float]:
    """(maker, taker) of ``tier`` (e.g. ``"VIP3"``) on ``venue``.

    Raises:
        KeyError: unknown venue or tier (message lists the known ones).
    """
    if venue not in FEE_TIERS or tier not in FEE_TIERS[venue]:
        raise KeyError(f"no fee tier {tier!r} for venue {venue!r}; known: "
                       f"{ {v: sorted(t) for v, t in FEE_TIERS.items()} }")
    return FEE_TIERS[venue][tier]


class VenueFeeModel(FeeModel):
    """Maker/taker commission plus the liquidation clearance fee on ``LIQUIDATION``-tagged orders.

    ``commission = notional x (maker if the fill is maker else taker) [+ notional x liquidation_fee]``,
    in the instrument's quote currency; the clearance part is capped by :attr:`liquidation_fee_caps`. Maker = the fill's liquidity side is MAKER (limit orders
    resting in the book); market, stop and liquidation fills are takers.

    Args:
        maker: Maker rate, fraction of notional.
        taker: Taker rate, fraction of notional.
        liquidation_fee: Clearance fee rate on liquidation closes, fraction of notional.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> VenueFeeModel:
        return super().__new__(cls)

    def __init__(self, maker: float, taker: float, liquidation_fee: float = 0.0) -> None:
        super().__init__()
        self.maker = maker
        self.taker = taker
        self.liquidation_fee = liquidation_fee
        #: client order id -> highest clearance fee (USDT), set by the liquidation actor: the margin
        #: left at the liquidation price (isolated: the position's; cross: the account's equity)
        self.liquidation_fee_caps: dict[str, float] = {}

    def get_commission(self, order: Any, fill_quantity: Any, fill_px: Any, instrument: Any) -> Money:
        notional = fill_quantity.as_double() * fill_px.as_double()
        maker = order.liquidity_side == LiquiditySide.MAKER or (
            order.liquidity_side == LiquiditySide.NO_LIQUIDITY_SIDE and order.order_type == OrderType.LIMIT)
        fee = notional * (self.maker if maker else self.taker)
        if self.liquidation_fee and LIQUIDATION_TAG in (order.tags or []):
            clearance = notional * self.liquidation_fee
            cap = self.liquidation_fee_caps.get(order.client_order_id.value)
            # the clearance fee takes at most what is left after the taker fee: never below zero
            fee += clearance if cap is None else max(0.0, min(clearance, cap - fee))
        return Money(fee, instrument.quote_currency)


def make_fee_model(maker: float, taker: float, liquidation_fee: float = 0.0) -> Any:
    """Nautilus's Rust ``MakerTakerFeeModel`` when no clearance fee is needed (fastest), else :class:`VenueFeeModel`."""
    if liquidation_fee == 0.0:
        return MakerTakerFeeModel(Decimal(str(maker)), Decimal(str(taker)))
    return VenueFeeModel(maker, taker, liquidation_fee)
