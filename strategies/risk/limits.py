"""Pre-trade limits: drawdown pause / half size, daily loss limit, notional, leverage and heat caps.

Checked by :class:`strategies.risk.manager.RiskManager` in ``enter()`` before the order is created,
so a refused entry never reaches Nautilus's RiskEngine or the venue. (Nautilus's own
``RiskEngineConfig.max_notional_per_order`` is per order and venue-wide, and its denials surface only
as ``DENIED`` orders without our reasons; these limits are per strategy/account state, so they are a
pre-trade component here.)

Equity ``E_t`` = account equity at bar t's close (MARGIN: balance + unrealized PnL marked at the
close; CASH: quote + base x close), read once per bar only when a drawdown or daily limit is set.

- drawdown ``dd_t = E_t / max(E_peak..t) - 1``. ``dd_t <= -drawdown_pause``: entries refused
  (``drawdown_pause``) while the drawdown stays there: framework-prd.md's ``is_trading_allowed()``
  (``current_drawdown < max_drawdown_pause``), so the pause ends on the first bar whose drawdown is
  back under the threshold (``pause_end``; the peak is kept). Open positions (and their stops) keep
  running and are what can end a pause: a strategy left flat in a pause stays paused. With
  ``drawdown_pause_bars = n`` (the earlier rule, opt-in) the pause lasts n bars instead, then the peak
  is reset to the current equity.
  ``-drawdown_pause < dd_t <= -drawdown_half_size``: entry notional x 0.5 (``drawdown_half_size``).
- daily loss: ``E_t / E_day_open - 1 <= -daily_loss_limit`` with ``E_day_open`` the equity at the
  first bar of the UTC day: entries refused (``daily_loss_limit``) until the next UTC day.
- position notional: ``|existing qty + new qty| x P <= max_position_notional_usdt`` (reduced), and
  ``<= max_position_fraction x E`` (reduced).
- leverage: ``(|existing qty| + new qty) x P / E <= max_leverage`` (reduced).
- heat: ``(sum over open positions of qty x |avg open - stop trigger| + new qty x D) / E <= max_heat``
  (reduced); a position without a resting stop counts its whole notional ``qty x avg open``.
- correlation-adjusted exposure: ``sqrt(w' C w) <= max_correlated_exposure`` with ``w_i`` = signed
  notional of instrument i (all open positions on the trader, at the last close, plus the entry) / E
  and ``C`` the Pearson correlation of the instruments' simple bar-close returns over the last
  ``correlation_window`` bars common to all of them (from Nautilus's bar cache); fewer than
  ``correlation_window`` common returns: correlation 1 (the sum of exposures, conservative). The
  entry is reduced to the largest quantity meeting the cap (root of a quadratic, :func:`max_entry_for_exposure`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from strategies.risk.config import LimitsConfig

DAY_NS = 86_400_000_000_000


@dataclass
class DrawdownState:
    """Per-strategy equity tracking for the drawdown and daily limits (equity in USDT)."""

    peak: float = 0.0
    day: int = -1
    day_open: float = 0.0
    pause_until: int = -1  # bar index at which the current pause ends (exclusive)
    paused: bool = False
    half: bool = False
    daily_hit_day: int = -1

    def update(self, lim: LimitsConfig, bar_index: int, ts: int, equity: float) -> list[tuple[str, str]]:
        """Advance to bar ``bar_index`` (close time ``ts`` ns) with equity ``equity``; return events.

        Events are ``(action, detail)`` pairs: ``pause_start``, ``pause_end``, ``half_size_start``,
        ``half_size_end``, ``daily_limit_hit``.
        """
        ev: list[tuple[str, str]] = []
        by_bars = lim.drawdown_pause_bars is not None
        if self.paused and by_bars and bar_index >= self.pause_until:
            self.paused = False
            self.peak = equity
            ev.append(("pause_end", f"peak reset to {equity:.2f}"))
        self.peak = max(self.peak, equity)
        dd = equity / self.peak - 1.0 if self.peak > 0 else 0.0
        if self.paused and not by_bars and not (lim.drawdown_pause is not None and dd <= -lim.drawdown_pause):
            self.paused = False
            ev.append(("pause_end", f"drawdown {dd:.4f} back under {lim.drawdown_pause}"))
        if not self.paused and lim.drawdown_pause is not None and dd <= -lim.drawdown_pause:
            self.paused = True
            if by_bars:
                self.pause_until = bar_index + int(lim.drawdown_pause_bars or 0)
            ev.append(("pause_start", f"drawdown {dd:.4f} <= -{lim.drawdown_pause}"))
        if lim.drawdown_half_size is not None:
            half = dd <= -lim.drawdown_half_size
            if half != self.half:
                ev.append(("half_size_start" if half else "half_size_end", f"drawdown {dd:.4f}"))
                self.half = half
        day = ts // DAY_NS
        if day != self.day:
            self.day, self.day_open = day, equity
        if (lim.daily_loss_limit is not None and self.daily_hit_day != day and self.day_open > 0
                and equity / self.day_open - 1.0 <= -lim.daily_loss_limit):
            self.daily_hit_day = day
            ev.append(("daily_limit_hit", f"equity {equity:.2f} vs day open {self.day_open:.2f}"))
        return ev

    def blocked(self, ts: int) -> str | None:
        """Reason entries are refused now, or None."""
        if self.paused:
            return "drawdown_pause"
        if self.daily_hit_day == ts // DAY_NS:
            return "daily_loss_limit"
        return None


def cap_quantity(lim: LimitsConfig, qty: float, *, price: float, equity: float, existing_qty: float,
                 stop_distance: float | None, open_risk: float) -> tuple[float, list[tuple[str, str]]]:
    """Largest quantity <= ``qty`` (base units) within the notional, leverage and heat caps.

    Args:
        price: expected fill price, USDT per base unit. equity: USDT.
        existing_qty: absolute quantity the strategy already holds in the instrument (same side).
        stop_distance: USDT per base unit to the stop of the new position (None: no stop -> price).
        open_risk: USDT at risk to stops in all open positions of the trader.

    Returns ``(qty, [(reason, detail), ...])`` for every cap that reduced it (qty may become 0).
    """
    out: list[tuple[str, str]] = []
    if lim.max_position_fraction is not None and equity > 0:
        room = max(lim.max_position_fraction * equity / price - existing_qty, 0.0)
        if qty > room:
            out.append(("max_position_fraction",
                        f"{qty} -> {room} (cap {lim.max_position_fraction} of equity {equity:.2f})"))
            qty = room
    if lim.max_position_notional_usdt is not None:
        room = max(lim.max_position_notional_usdt / price - existing_qty, 0.0)
        if qty > room:
            out.append(("max_position_notional", f"{qty} -> {room} (cap {lim.max_position_notional_usdt} USDT)"))
            qty = room
    if lim.max_leverage is not None and equity > 0:
        room = max(lim.max_leverage * equity / price - existing_qty, 0.0)
        if qty > room:
            out.append(("max_leverage", f"{qty} -> {room} (cap {lim.max_leverage}x of equity {equity:.2f})"))
            qty = room
    if lim.max_heat is not None and equity > 0:
        d = stop_distance if stop_distance else price
        room = max((lim.max_heat * equity - open_risk) / d, 0.0)
        if qty > room:
            out.append(("max_heat", f"{qty} -> {room} (open risk {open_risk:.2f}, cap {lim.max_heat} of {equity:.2f})"))
            qty = room
    return qty, out


def correlated_exposure(w: np.ndarray, corr: np.ndarray) -> float:
    """``sqrt(w' C w)``: exposure as a multiple of equity (w: signed notional / equity per instrument)."""
    return float(math.sqrt(max(float(w @ corr @ w), 0.0)))


def max_entry_for_exposure(w: np.ndarray, corr: np.ndarray, k: int, unit: float, qty: float, cap: float) -> float:
    """Largest ``x`` in ``[0, qty]`` with ``sqrt((w + x u e_k)' C (w + x u e_k)) <= cap``.

    ``unit`` = signed notional per base unit / equity (``+-price / E``), ``k`` the entry's instrument.
    The constraint is ``a x^2 + b x + c <= 0`` with ``a = u^2 C_kk``, ``b = 2 u (C w)_k``,
    ``c = w' C w - cap^2``. When the cap is already exceeded (``c > 0``): 0 if the entry adds to the
    exposure, otherwise the entry may go as far as it lowers the exposure (to the far root of the cap,
    or to the exposure minimum ``-b / 2a`` when the cap cannot be reached).
    """
    cw = corr @ w
    a = unit * unit * corr[k, k]
    b = 2 * unit * cw[k]
    c = float(w @ cw) - cap * cap
    if a * qty * qty + b * qty + c <= 0:
        return float(qty)
    if a <= 0:
        return 0.0
    disc = b * b - 4 * a * c
    if c <= 0:  # within the cap now: up to the upper root
        return float(min(max((-b + math.sqrt(max(disc, 0.0))) / (2 * a), 0.0), qty))
    if b >= 0:  # above the cap and the entry adds to the exposure
        return 0.0
    if disc >= 0:  # above the cap, the entry brings it back within: the far root
        return float(min((-b + math.sqrt(disc)) / (2 * a), qty))
    return float(min(-b / (2 * a), qty))  # cannot reach the cap: as far as it lowers the exposure
