"""Reusable risk components any strategy of ``strategies/`` can opt into (docs/risk.md).

- :mod:`nautilus_app.risk.config`: the ``risk`` sub-table (frozen msgspec structs, :func:`parse_risk`).
- :mod:`nautilus_app.risk.sizing`: sizing formulas (fraction, fixed notional, fixed fractional, Kelly, ATR).
- :mod:`nautilus_app.risk.stops`: stop / take-profit / trailing prices.
- :mod:`nautilus_app.risk.limits`: drawdown pause and half size, daily loss, notional, leverage, heat.
- :mod:`nautilus_app.risk.manager`: :class:`RiskManager`, the per-strategy component the base class calls.
"""

from nautilus_app.risk.config import (
    LimitsConfig,
    RiskConfig,
    RiskConfigError,
    SizingConfig,
    StopsConfig,
    parse_risk,
)

__all__ = ["LimitsConfig", "RiskConfig", "RiskConfigError", "SizingConfig", "StopsConfig", "parse_risk"]
