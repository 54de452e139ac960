"""Slippage models: the price a taker order pays relative to its reference price.

``slipped = reference x (1 + s x bps / 10_000)`` with ``s = +1`` for buys and ``-1`` for sells, then
rounded to the instrument's tick *against* the trader (buys up, sells down). Models:

- ``none``: 0 bps.
- ``fixed``: ``bps = base_bps``.
- ``volume``: ``bps = min(base_bps + impact_bps x sqrt(order qty / bar volume), max_bps)``, the
  square-root market-impact law, with ``bar volume`` the base-asset volume of the last *completed*
  bar when the order arrives (known at that time; no future information). A bar volume of 0 gives
  ``max_bps``.

Limit orders (makers) get no slippage; market and triggered stop orders do; liquidation closes
are filled at the liquidation price exactly (docs/simulation.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

SlippageKind = Literal["none", "fixed", "volume"]


@dataclass(frozen=True)
class SlippageModel:
    """Slippage parameters (all in basis points, 1 bp = 0.01 %).

    Attributes:
        kind: ``"none"``, ``"fixed"`` or ``"volume"``.
        base_bps: Fixed part, bps (>= 0).
        impact_bps: Coefficient of ``sqrt(qty / bar volume)``, bps (``volume`` only).
        max_bps: Upper bound of the total, bps (``volume`` only).
    """

    kind: SlippageKind = "none"
    base_bps: float = 0.0
    impact_bps: float = 0.0
    max_bps: float = 100.0

    def bps(self, qty: float, bar_volume: float) -> float:
        """Slippage in bps for an order of ``qty`` base units against a bar of ``bar_volume`` base units."""
        if self.kind == "none":
            return 0.0
        if self.kind == "fixed":
            return self.base_bps
        if bar_volume <= 0.0:
            return self.max_bps
        return min(self.base_bps + self.impact_bps * math.sqrt(abs(qty) / bar_volume), self.max_bps)

    def price(self, reference: float, is_buy: bool, qty: float, bar_volume: float, tick: float) -> float:
        """Slipped price rounded to ``tick`` against the trader (buy up, sell down), never below one tick."""
        bps = self.bps(qty, bar_volume)
        raw = reference * (1.0 + (bps if is_buy else -bps) / 10_000.0)
        steps = raw / tick
        # 1e-9 guards against float noise turning an exact tick price into the next tick
        n = math.ceil(steps - 1e-9) if is_buy else math.floor(steps + 1e-9)
        return max(n, 1) * tick
