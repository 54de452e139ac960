"""Binance USDT-M maintenance margin and liquidation-price formulas (pure functions on the bracket tables of
:mod:`core.brackets`).

Liquidation price (Binance's published formula)
-----------------------------------------------
Source: https://www.binance.com/en/support/faq/how-to-calculate-liquidation-price-of-usd%E2%93%A2-m-futures-contracts-b3c689c1f50a44cabb3a84e663b81d93
(one-way mode, one position per symbol)::

    LP = (WB - TMM1 + UPNL1 + cumB - Side1 x Position1 x EP1) / (Position1 x MMR_B - Side1 x Position1)

``WB`` wallet balance (cross: the account's USDT wallet balance; isolated: the position's isolated
margin), ``TMM1`` maintenance margin of all *other* positions (cross only, 0 isolated), ``UPNL1``
unrealized PnL of all other positions (cross only, 0 isolated), ``cumB`` / ``MMR_B`` the bracket's
maintenance amount and rate, ``Side1`` +1 long / -1 short, ``Position1`` absolute size (base units),
``EP1`` entry price. The bracket is the one whose notional range contains ``LP x Position1``
(Binance evaluates maintenance at the liquidation mark price), found by trying every bracket.
At ``LP`` the margin rule is exactly at its limit: cross ``equity = total maintenance``, isolated
``isolated margin + unrealized PnL = maintenance``.
"""

from __future__ import annotations

from core.brackets import Bracket, MarginError, bracket_for_notional


def maintenance_margin(brackets: tuple[Bracket, ...], notional: float) -> float:
    """Maintenance margin in USDT of a position with notional ``abs(notional)`` USDT: ``N x mmr - cum``."""
    b = bracket_for_notional(brackets, notional)
    return abs(notional) * b.mmr - b.cum


def liquidation_price(
    *,
    side: int,
    qty: float,
    entry_price: float,
    wallet_balance: float,
    brackets: tuple[Bracket, ...],
    other_maintenance: float = 0.0,
    other_unrealized_pnl: float = 0.0,
) -> float:
    """Binance's liquidation price of one position (formula and symbols in the module docstring).

    Args:
        side: +1 long, -1 short.
        qty: Absolute position size, base units (> 0).
        entry_price: Average entry price, USDT.
        wallet_balance: Cross: account wallet balance (USDT). Isolated: the position's isolated margin.
        brackets: The instrument's bracket table.
        other_maintenance: Cross: maintenance margin of all other positions (USDT); isolated: 0.
        other_unrealized_pnl: Cross: unrealized PnL of all other positions (USDT); isolated: 0.

    Returns:
        The price (USDT) at which the margin rule is breached; 0.0 when a long can never be liquidated
        (the formula gives a price <= 0). For a short it is always positive.

    Raises:
        MarginError: side not +1/-1 or qty <= 0.
    """
    if side not in (1, -1) or qty <= 0:
        raise MarginError(f"liquidation_price: side must be +1/-1 and qty > 0 (got {side}, {qty})")
    candidates = []
    for b in brackets:
        denom = qty * b.mmr - side * qty
        lp = (wallet_balance - other_maintenance + other_unrealized_pnl + b.cum - side * qty * entry_price) / denom
        if lp <= 0:
            lp = 0.0
        if b.floor <= lp * qty < b.cap:
            return lp
        candidates.append(lp)
    # no bracket is self-consistent (only at the table's edge): use the bracket of the current notional
    return candidates[brackets.index(bracket_for_notional(brackets, qty * entry_price))]


def isolated_margin(qty: float, entry_price: float, leverage: float) -> float:
    """Initial (isolated) margin of a position: ``qty x entry_price / leverage`` USDT."""
    return abs(qty) * entry_price / leverage
