"""What the runner built for one simulated venue: its config and venue models (fill model,
liquidation actor, latency router), kept for the results (:mod:`nautilus_app.results`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nautilus_app.config import VenueConfig
    from nautilus_app.venue.fill_timing import VenueFillModel
    from nautilus_app.venue.latency import LatencyRouter
    from nautilus_app.venue.liquidation import LiquidationActor


@dataclass
class VenueSim:
    """What the runner built for one venue (kept for the results)."""

    config: VenueConfig
    fill_model: VenueFillModel
    liquidation: LiquidationActor | None = None
    latency: LatencyRouter | None = None
