"""Reusable risk components any strategy of ``strategies/`` can opt into (docs/risk.md).

- :mod:`strategies.risk.config`: the ``risk`` sub-table (frozen msgspec structs, :func:`parse_risk`).
- :mod:`strategies.risk.sizing`: the one sizing module: equity read and entry quantity of every strategy, and the
  sizing formulas (fraction, fixed notional, fixed fractional, Kelly, ATR).
- :mod:`strategies.risk.stops`: stop / take-profit / trailing prices.
- :mod:`strategies.risk.limits`: drawdown pause and half size, daily loss, notional, leverage, heat.
- :mod:`strategies.risk.manager`: :class:`RiskManager`, the per-strategy component the base class calls.
"""

from strategies.risk.config import (
    LimitsConfig,
    RiskConfig,
    RiskConfigError,
    SizingConfig,
    StopsConfig,
    parse_risk,
)

__all__ = ["LimitsConfig", "RiskConfig", "RiskConfigError", "SizingConfig", "StopsConfig", "parse_risk"]
