"""Binance USDT-M maintenance-margin brackets and liquidation-price formulas (pure functions).

Brackets
--------
Binance sets maintenance margin per *notional bracket*: a position of notional ``N`` (USDT, at the
mark price) in bracket ``b`` needs maintenance ``N x mmr_b - cum_b``, where ``cum_b`` (the
"maintenance amount") makes the function continuous across brackets:
``cum_b = cum_{b-1} + floor_b x (mmr_b - mmr_{b-1})``. Each bracket also caps the leverage.

Binance changes brackets from time to time, so tables are versioned by the date from which they
apply (:data:`DEFAULT_BRACKETS`); :func:`brackets_for` picks the newest version effective at a
run's start. The shipped table is Binance's ``GET /fapi/v1/leverageBracket`` answer as snapshotted
in freqtrade 2023.7 (``freqtrade/exchange/binance_leverage_tiers.json``, released July 2023), i.e.
the brackets in force for the July-August 2023 data in ``../shared/data``, for **every one of its
198 USDT-margined perpetuals** (:mod:`nautilus_app.venue.binance_brackets`). Any other table can be
given per instrument in the run config (``venues[].brackets``, docs/config.md) or per symbol in the
instruments.toml override file (``[um.SYMBOL] brackets = ...``, docs/data.md); a perpetual with no
table anywhere is a :class:`MarginError` naming it.

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

import bisect
from dataclasses import dataclass


class MarginError(ValueError):
    """A bracket table or a margin input is invalid (message names the instrument/bracket)."""


@dataclass(frozen=True)
class Bracket:
    """One notional bracket.

    Attributes:
        floor: Lowest notional of the bracket, USDT (inclusive).
        cap: Highest notional, USDT (exclusive; the last bracket's cap is the position limit).
        mmr: Maintenance margin rate, fraction of notional (0.004 = 0.4 %).
        cum: Maintenance amount, USDT (subtracted from ``notional x mmr``).
        max_leverage: Highest leverage allowed in this bracket.
    """

    floor: float
    cap: float
    mmr: float
    cum: float
    max_leverage: float


def make_brackets(rows: list[tuple[float, float, float]], *, name: str = "brackets") -> tuple[Bracket, ...]:
    """Brackets from ``(cap, mmr, max_leverage)`` rows in increasing order; floors and ``cum`` derived.

    ``cum`` follows Binance's continuity rule ``cum_b = cum_{b-1} + floor_b x (mmr_b - mmr_{b-1})``.

    Raises:
        MarginError: empty table, caps not increasing, rates not in (0, 1) or not non-decreasing,
            leverage below 1.
    """
    if not rows:
        raise MarginError(f"{name}: empty bracket table")
    out: list[Bracket] = []
    floor, cum, prev_mmr = 0.0, 0.0, None
    for i, (cap, mmr, lev) in enumerate(rows):
        if cap <= floor:
            raise MarginError(f"{name}[{i}]: notional cap {cap} must exceed the previous cap {floor}")
        if not 0.0 < mmr < 1.0 or (prev_mmr is not None and mmr < prev_mmr):
            raise MarginError(f"{name}[{i}]: maintenance rate {mmr} must be in (0, 1) and not below the previous bracket's")
        if lev < 1.0:
            raise MarginError(f"{name}[{i}]: max leverage {lev} must be >= 1")
        if prev_mmr is not None:
            cum += floor * (mmr - prev_mmr)
        out.append(Bracket(floor, float(cap), float(mmr), round(cum, 8), float(lev)))
        floor, prev_mmr = float(cap), mmr
    return tuple(out)


# (notional cap USDT, maintenance rate, max leverage); source: see the module docstring.
_BTC_2023 = [(5e4, 0.004, 125), (2.5e5, 0.005, 100), (3e6, 0.01, 50), (1.5e7, 0.025, 20), (3e7, 0.05, 10),
             (8e7, 0.1, 5), (1e8, 0.125, 4), (2e8, 0.15, 3), (3e8, 0.25, 2), (5e8, 0.5, 1)]
_ETH_2023 = [(1e5, 0.005, 100), (2.5e5, 0.0065, 75), (2e6, 0.01, 50), (1e7, 0.02, 20), (2.5e7, 0.05, 10),
             (5e7, 0.1, 5), (6e7, 0.125, 4), (8e7, 0.15, 3), (1.5e8, 0.25, 2), (3e8, 0.5, 1)]

def _default_brackets() -> dict[str, list[tuple[str, tuple[Bracket, ...]]]]:
    from nautilus_app.venue.binance_brackets import BRACKETS_2023_07

    out = {sym: [("2023-01-01", make_brackets(rows, name=sym))] for sym, rows in BRACKETS_2023_07.items()}
    # the hand-checked BTC/ETH tables (tests/test_venue_margin.py) are the same rows
    out["BTCUSDT"] = [("2023-01-01", make_brackets(_BTC_2023, name="BTCUSDT"))]
    out["ETHUSDT"] = [("2023-01-01", make_brackets(_ETH_2023, name="ETHUSDT"))]
    return out


#: Versioned default brackets: symbol -> [(effective from 'YYYY-MM-DD', brackets)], oldest first.
#: Every USDT-M perpetual of Binance's July 2023 table (198 symbols).
DEFAULT_BRACKETS: dict[str, list[tuple[str, tuple[Bracket, ...]]]] = _default_brackets()


def brackets_for(symbol: str, on_date: str | None = None,
                 overrides: dict[str, list[tuple[str, tuple[Bracket, ...]]]] | None = None,
                 *, instruments_file: str | object | None = None, catalog: str | object | None = None,
                 ) -> tuple[Bracket, ...]:
    """The bracket table of ``symbol`` (e.g. ``"BTCUSDT"``) effective on ``on_date`` (ISO date; None = newest).

    Lookup per symbol, first found wins: ``overrides`` (the run config's ``venues[].brackets``, same
    shape as :data:`DEFAULT_BRACKETS`), then the ``brackets`` of ``[um.SYMBOL]`` in the instruments.toml
    override file (``instruments_file``, else ``$NAUTILUS_INSTRUMENTS``, else
    ``<catalog>/instruments.toml`` with ``catalog`` None = the default catalog), then
    :data:`DEFAULT_BRACKETS`. Versions that start after ``on_date`` are skipped; if every version
    starts later, the oldest is used.

    Raises:
        MarginError: no table for the symbol anywhere (the message names the symbol and where to
            give one), or the override file is malformed.
    """
    versions = (overrides or {}).get(symbol)
    toml_path = None
    if not versions:
        from nautilus_app.instruments import InstrumentOverrideError, instruments_file_path, override_brackets

        toml_path = instruments_file_path(catalog, instruments_file)  # type: ignore[arg-type]
        try:
            versions = override_brackets(symbol, toml_path)
        except InstrumentOverrideError as e:
            raise MarginError(str(e)) from e
    versions = versions or DEFAULT_BRACKETS.get(symbol)
    if not versions:
        raise MarginError(f"no maintenance-margin brackets for {symbol!r}: not in the shipped Binance table "
                          f"({len(DEFAULT_BRACKETS)} USDT-M perpetuals, nautilus_app/venue/binance_brackets.py); "
                          f"give them in the run config (venues[].brackets) or as [um.{symbol}] brackets in "
                          f"{toml_path} (instruments.toml, docs/data.md)")
    versions = sorted(versions, key=lambda v: v[0])
    if on_date is None:
        return versions[-1][1]
    chosen = versions[0][1]
    for start, table in versions:
        if start <= on_date[:10]:
            chosen = table
    return chosen


def bracket_for_notional(brackets: tuple[Bracket, ...], notional: float) -> Bracket:
    """The bracket whose ``[floor, cap)`` holds ``abs(notional)`` (the last one above all caps)."""
    caps = [b.cap for b in brackets]
    i = bisect.bisect_right(caps, abs(notional))
    return brackets[min(i, len(brackets) - 1)]


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
