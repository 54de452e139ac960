"""Stop, take-profit and trailing prices (pure functions; placement in :mod:`strategies.risk.manager`).

All prices in USDT per base unit. ``long`` is the side of the position being protected.

- fixed stop: ``fill x (1 - stop_loss_pct)`` (long) / ``fill x (1 + stop_loss_pct)`` (short);
  ATR stop: ``fill -/+ stop_loss_atr x ATR``; trailing (initial): ``fill -/+ trailing_pct x fill`` or
  ``trailing_atr x ATR``. With several configured, the ONE stop order uses the tightest of them
  (the highest trigger for a long, the lowest for a short).
- trailing update at each bar close after the fill: ``anchor x (1 - trailing_pct)`` or
  ``anchor - trailing_atr x ATR_t`` with ``anchor`` the highest high since the fill (lowest low
  for shorts); the trigger only ever tightens.
- take profit: ``fill x (1 + take_profit_pct)`` (long) / ``fill x (1 - take_profit_pct)`` (short).
- rounding to the tick AWAY from the market's current side of the position: a long's stop rounds
  down, a short's up; a long's take-profit rounds up, a short's down (never tighter than configured).

ATR = the value at the bar the entry was decided on (Nautilus ``AverageTrueRange``, Wilder).
"""

from __future__ import annotations

import math

from strategies.risk.config import StopsConfig

_EPS = 1e-9


def round_tick(price: float, tick: float, up: bool) -> float:
    """Round ``price`` to a multiple of ``tick``, up or down (float noise of 1e-9 tick tolerated)."""
    steps = price / tick
    n = math.ceil(steps - _EPS) if up else math.floor(steps + _EPS)
    return max(n, 1) * tick


def initial_stop(cfg: StopsConfig, long: bool, fill: float, atr: float | None) -> float | None:
    """Trigger price of the protective stop right after an entry fill at ``fill``; None if no stop is set."""
    sgn = -1.0 if long else 1.0
    cands = []
    if cfg.stop_loss_pct is not None:
        cands.append(fill * (1 + sgn * cfg.stop_loss_pct))
    if cfg.trailing_pct is not None:
        cands.append(fill * (1 + sgn * cfg.trailing_pct))
    if atr:
        if cfg.stop_loss_atr is not None:
            cands.append(fill + sgn * cfg.stop_loss_atr * atr)
        if cfg.trailing_atr is not None:
            cands.append(fill + sgn * cfg.trailing_atr * atr)
    cands = [c for c in cands if c > 0]
    if not cands:
        return None
    return max(cands) if long else min(cands)


def stop_distance(cfg: StopsConfig, price: float, atr: float | None) -> float | None:
    """``|price - initial stop|`` for an entry at ``price`` (USDT per base unit), None without a stop."""
    s = initial_stop(cfg, True, price, atr)
    return None if s is None else price - s


def take_profit(cfg: StopsConfig, long: bool, fill: float) -> float | None:
    """Take-profit limit price, or None."""
    if cfg.take_profit_pct is None:
        return None
    return fill * (1 + cfg.take_profit_pct) if long else fill * (1 - cfg.take_profit_pct)


def trailing_trigger(cfg: StopsConfig, long: bool, anchor: float, atr: float | None) -> float | None:
    """Trailing trigger from the anchor (highest high / lowest low since the fill); None if no trailing."""
    sgn = -1.0 if long else 1.0
    cands = []
    if cfg.trailing_pct is not None:
        cands.append(anchor * (1 + sgn * cfg.trailing_pct))
    if cfg.trailing_atr is not None and atr:
        cands.append(anchor + sgn * cfg.trailing_atr * atr)
    if not cands:
        return None
    return max(cands) if long else min(cands)
