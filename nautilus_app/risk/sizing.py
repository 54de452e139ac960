"""Position sizing methods: the notional (USDT) of an entry, before limits and lot rounding.

Symbols: ``E`` account equity (USDT; MARGIN: balance + unrealized PnL, CASH: quote + base x price,
see ``strategies.sizing.account_equity``), ``P`` the signal bar's close (USDT per base unit),
``D`` the stop distance (USDT per base unit), ``ATR`` the average true range (USDT per base unit).
The quantity is ``notional / P`` (base units), rounded DOWN to the lot step by
:func:`quantity_from_notional`.

=================  =========================================  =====================================
method             notional (USDT)                            notes
=================  =========================================  =====================================
fraction           ``f x E``                                  ``f = sizing.fraction`` (or the
                                                              strategy's ``position_fraction``)
fixed_notional     ``N``                                      ``N = sizing.notional_usdt``
fixed_fractional   ``r x E / D x P``  (qty = ``r x E / D``)   loss at the stop = ``r x E``
kelly              ``clip(k x K, 0, cap) x E``                ``K`` by ``kelly_formula`` (below)
volatility         ``v x E / ATR x P`` (qty = ``v x E/ATR``)  one ATR move = ``v x E``
=================  =========================================  =====================================

Kelly. Statistics from the strategy's last ``kelly_window`` closed trades: per-trade return
``R = realized PnL (net of fees and funding) / (peak qty x average open price)``; ``p`` = share of
trades with ``R > 0``, ``W`` = mean ``R`` of winners, ``L`` = mean ``|R|`` of losers.

- ``kelly_formula = "win_loss_ratio"`` (default): framework-prd.md Appendix B and its
  ``BankrollManager.kelly_size``: ``K = p - (1 - p) / (W / L)`` (the classic Kelly for a bet that
  wins ``W/L`` times what it loses, stake = the amount at risk); then ``x kelly_fraction`` (0.5) and
  the cap. ``K`` does not depend on the size of ``W`` and ``L``, only on their ratio.
- ``kelly_formula = "stake_returns"``: ``K = p / L - (1 - p) / W`` (Kelly 1956; Thorp 2006, eq. 3.3:
  the growth-optimal *notional* when the notional gains ``+W`` or loses ``-L`` of itself). For
  ``W = L = 1 %`` and ``p = 0.55`` it gives 10 (1,000 % of equity) where the default gives 0.10:
  it sizes the position, not the risk; use it with a tight ``kelly_cap``.

With fewer than ``kelly_min_trades`` trades the ``fraction`` method is used; with no loser (``L``
undefined) the cap applies; ``K <= 0`` refuses the entry (``kelly_non_positive``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from nautilus_app.risk.config import SizingConfig


def kelly_fraction(returns: Sequence[float], formula: str = "win_loss_ratio") -> float | None:
    """Full Kelly fraction from per-trade returns (fractions); None if no trade.

    ``formula``: ``"win_loss_ratio"`` -> ``p - (1 - p) / (W / L)`` (framework-prd.md Appendix B),
    ``"stake_returns"`` -> ``p / L - (1 - p) / W``. Returns ``inf`` when there is no losing trade and
    ``-inf`` when there is no winning trade (either formula).
    """
    n = len(returns)
    if n == 0:
        return None
    wins = [r for r in returns if r > 0]
    losses = [-r for r in returns if r <= 0]
    p = len(wins) / n
    if not wins:
        return float("-inf")
    if not losses or sum(losses) == 0:
        return float("inf")
    w = sum(wins) / len(wins)
    loss = sum(losses) / len(losses)
    if formula == "stake_returns":
        return p / loss - (1 - p) / w
    if formula != "win_loss_ratio":
        raise ValueError(f"kelly formula {formula!r}: expected 'win_loss_ratio' or 'stake_returns'")
    return p - (1 - p) / (w / loss)


def target_notional(
    cfg: SizingConfig,
    *,
    equity: float,
    price: float,
    default_fraction: float,
    stop_distance: float | None = None,
    atr: float | None = None,
    trade_returns: Sequence[float] = (),
) -> tuple[float | None, str]:
    """Notional (USDT) of the next entry by ``cfg.method``, or ``(None, reason)`` if it must be skipped.

    Args:
        equity: account equity, USDT.
        price: expected fill price (signal close), USDT per base unit.
        default_fraction: the strategy's ``position_fraction`` (used when ``cfg.fraction`` is None).
        stop_distance: ``|price - stop|``, USDT per base unit (``fixed_fractional``).
        atr: current ATR, USDT per base unit (``volatility``); None/0 while it warms up.
        trade_returns: the strategy's closed-trade returns, oldest first (``kelly``).

    Reasons: ``ok``, ``kelly_fallback`` (fraction used), ``no_stop_distance``, ``atr_not_ready``,
    ``kelly_non_positive``, ``non_positive_equity``.
    """
    if equity <= 0 or price <= 0:
        return None, "non_positive_equity"
    frac = cfg.fraction if cfg.fraction is not None else default_fraction
    m = cfg.method
    if m == "fraction":
        return frac * equity, "ok"
    if m == "fixed_notional":
        return cfg.notional_usdt, "ok"
    if m == "fixed_fractional":
        if not stop_distance or stop_distance <= 0:
            return None, "no_stop_distance"
        return cfg.risk_fraction * equity / stop_distance * price, "ok"
    if m == "volatility":
        if not atr or atr <= 0:
            return None, "atr_not_ready"
        return cfg.vol_risk_fraction * equity / atr * price, "ok"
    # kelly
    recent = list(trade_returns)[-cfg.kelly_window:]
    if len(recent) < cfg.kelly_min_trades:
        return frac * equity, "kelly_fallback"
    k = kelly_fraction(recent, cfg.kelly_formula)
    assert k is not None
    f = min(cfg.kelly_fraction * k, cfg.kelly_cap)
    if f <= 0:
        return None, "kelly_non_positive"
    return f * equity, "ok"


def quantity_from_notional(instrument: Any, notional: Decimal, price: Decimal,
                           quote_available: Decimal | None = None, fee_headroom: Decimal = Decimal(0)) -> Decimal:
    """``notional / (price x multiplier)`` rounded DOWN to the lot step, clipped to ``max_quantity``.

    CASH accounts pass ``quote_available``: the notional is capped at ``quote_available / (1 +
    fee_headroom)`` first (same rule as ``strategies.sizing.entry_quantity``). Returns base units (may be 0).
    """
    if quote_available is not None:
        notional = min(notional, quote_available / (Decimal(1) + fee_headroom))
    if notional <= 0 or price <= 0:
        return Decimal(0)
    inc = instrument.size_increment.as_decimal()
    qty = (notional / (price * instrument.multiplier.as_decimal()) / inc).to_integral_value(rounding=ROUND_FLOOR) * inc
    max_q = instrument.max_quantity
    if max_q is not None and qty > max_q.as_decimal():
        qty = (max_q.as_decimal() / inc).to_integral_value(rounding=ROUND_FLOOR) * inc
    return qty
