"""Binance USDT-M maintenance-margin brackets: the tables instruments are defined with (base layer, pure data).

Binance sets maintenance margin per *notional bracket*: a position of notional ``N`` (USDT, at the
mark price) in bracket ``b`` needs maintenance ``N x mmr_b - cum_b``, where ``cum_b`` (the
"maintenance amount") makes the function continuous across brackets:
``cum_b = cum_{b-1} + floor_b x (mmr_b - mmr_{b-1})``. Each bracket also caps the leverage.

Binance changes brackets from time to time, so tables are versioned by the date from which they
apply (:data:`DEFAULT_BRACKETS`); :func:`core.instruments.brackets_for` picks the newest
version effective at a run's start. The shipped table is Binance's ``GET /fapi/v1/leverageBracket`` answer as snapshotted
in freqtrade 2023.7 (``freqtrade/exchange/binance_leverage_tiers.json``, released July 2023), i.e.
the brackets in force for the July-August 2023 data in ``../shared/data``, for **every one of its
198 USDT-margined perpetuals** (:mod:`core.binance_brackets`). Any other table can be
given per instrument in the run config (``venues[].brackets``, docs/config.md) or per symbol in the
instruments.toml override file (``[um.SYMBOL] brackets = ...``, docs/data.md); a perpetual with no
table anywhere is a :class:`MarginError` naming it.

The liquidation-price and maintenance formulas that use these tables are venue models:
:mod:`nautilus_app.venue.margin`.
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
    from core.binance_brackets import BRACKETS_2023_07

    out = {sym: [("2023-01-01", make_brackets(rows, name=sym))] for sym, rows in BRACKETS_2023_07.items()}
    # the hand-checked BTC/ETH tables (tests/test_venue_margin.py) are the same rows
    out["BTCUSDT"] = [("2023-01-01", make_brackets(_BTC_2023, name="BTCUSDT"))]
    out["ETHUSDT"] = [("2023-01-01", make_brackets(_ETH_2023, name="ETHUSDT"))]
    return out


#: Versioned default brackets: symbol -> [(effective from 'YYYY-MM-DD', brackets)], oldest first.
#: Every USDT-M perpetual of Binance's July 2023 table (198 symbols).
DEFAULT_BRACKETS: dict[str, list[tuple[str, tuple[Bracket, ...]]]] = _default_brackets()


def bracket_for_notional(brackets: tuple[Bracket, ...], notional: float) -> Bracket:
    """The bracket whose ``[floor, cap)`` holds ``abs(notional)`` (the last one above all caps)."""
    caps = [b.cap for b in brackets]
    i = bisect.bisect_right(caps, abs(notional))
    return brackets[min(i, len(brackets) - 1)]
