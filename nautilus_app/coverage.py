"""Data coverage of a run: expected vs loaded bars per bar type, and every missing span.

A backtest over missing data must not look like a backtest over complete data. For each bar type the
run loads, :func:`bar_coverage` compares the bars stored in the run's range with the bars the range
should hold at the bar interval, and lists each missing span: before the first stored bar, after the
last one, and every interior gap. Interior gaps inside a known exchange stop
(:data:`catalog.validation.KNOWN_HALTS`) are real market history and only counted; every other missing
span fails the run (:class:`CoverageError`, exit 2) unless the config sets ``allow_gaps = true``. The
coverage of every run is written to ``run.json`` (``coverage``) and shown in the summary.

Conventions: bars are stamped at their close (``ts_init``); a run's range ``[start, end)`` selects the
bars that OPEN in it, so it should hold ``(end - start) / interval`` bars. Without ``start`` / ``end``
the range is the stored data's own first/last bar (only interior gaps can be missing then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nautilus_app.config import ConfigError


class CoverageError(ConfigError):
    """The run's range has bars missing beyond known exchange halts (or lies outside the stored data)."""


@dataclass(frozen=True)
class BarCoverage:
    """Coverage of one bar type over the run's range.

    Attributes:
        bar_type: e.g. ``BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL``.
        expected: Bars the range should hold at the interval.
        loaded: Bars stored in the range.
        halted: Missing bars inside known exchange halts (explained, not an error).
        missing_spans: Unexplained missing spans, ``(first missing bar open, last missing bar open, bars)``
            as ISO UTC strings.
        halt_spans: The same for the known halts.
    """

    bar_type: str
    expected: int
    loaded: int
    halted: int = 0
    missing_spans: list[tuple[str, str, int]] = field(default_factory=list)
    halt_spans: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def missing(self) -> int:
        """Unexplained missing bars."""
        return sum(n for _, _, n in self.missing_spans)

    @property
    def fraction(self) -> float:
        """Loaded / expected (1.0 for an empty range)."""
        return self.loaded / self.expected if self.expected else 1.0

    def to_json(self) -> dict[str, Any]:
        """Plain dict for ``run.json``."""
        return {"bar_type": self.bar_type, "expected": self.expected, "loaded": self.loaded,
                "coverage": round(self.fraction, 6), "known_halt_bars": self.halted, "missing_bars": self.missing,
                "missing_spans": [list(s) for s in self.missing_spans],
                "known_halts": [list(s) for s in self.halt_spans]}


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M")


def market_and_symbol(bar_type: str) -> tuple[str, str]:
    """(``"spot"`` or ``"um"``, Binance symbol) of a bar type, for the known-halt lookup."""
    from nautilus_trader.model import BarType

    iid = BarType.from_str(bar_type).instrument_id
    return ("um" if iid.venue.value.endswith("USDM") else "spot"), iid.symbol.value.removesuffix("-PERP")


def bar_coverage(bar_type: str, ts_close: np.ndarray, interval_ns: int, open_lo: int | None,
                 open_hi: int | None) -> BarCoverage:
    """Coverage of sorted bar close times ``ts_close`` (int64 UTC ns) over opens in ``[open_lo, open_hi)``.

    ``open_lo`` / ``open_hi`` None: the data's first open / last open + interval.
    """
    from catalog.validation import find_gaps

    ts = np.asarray(ts_close, dtype=np.int64)
    if ts.size == 0:
        lo, hi = int(open_lo or 0), int(open_hi or 0)
        n = max(0, (hi - lo) // interval_ns)
        return BarCoverage(bar_type, n, 0, 0, [(_iso(lo), _iso(hi - interval_ns), n)] if n else [])
    first_open, last_open = int(ts[0]) - interval_ns, int(ts[-1]) - interval_ns
    lo = first_open if open_lo is None else int(open_lo)
    hi = last_open + interval_ns if open_hi is None else int(open_hi)
    expected = max(0, -(-(hi - lo) // interval_ns))
    missing: list[tuple[str, str, int]] = []
    halts: list[tuple[str, str, int]] = []
    if first_open > lo:
        n = (first_open - lo + interval_ns - 1) // interval_ns
        missing.append((_iso(lo), _iso(first_open - interval_ns), int(n)))
    market, symbol = market_and_symbol(bar_type)
    for p in find_gaps(ts, interval_ns, market=market, symbol=symbol):
        i = int(p.first_row)
        span = (_iso(int(ts[i - 1])), _iso(int(ts[i]) - 2 * interval_ns), int(p.rows))
        (halts if p.known_halt else missing).append(span)
    if last_open + interval_ns < hi:
        n = (hi - last_open - interval_ns + interval_ns - 1) // interval_ns
        missing.append((_iso(last_open + interval_ns), _iso(hi - interval_ns), int(n)))
    return BarCoverage(bar_type, int(expected), int(ts.size), sum(n for _, _, n in halts), missing, halts)


def check_coverage(coverages: list[BarCoverage], *, allow_gaps: bool, source: str = "<config>") -> None:
    """Raise :class:`CoverageError` for the first bar type with unexplained missing bars (unless allowed).

    The message names the bar type, the missing spans (at most 5, then a count) and the switch.
    """
    if allow_gaps:
        return
    for c in coverages:
        if not c.missing:
            continue
        shown = "; ".join(f"{a} .. {b} ({n:,} bars)" for a, b, n in c.missing_spans[:5])
        more = f"; and {len(c.missing_spans) - 5} more spans" if len(c.missing_spans) > 5 else ""
        raise CoverageError(
            f"{source}: {c.bar_type}: {c.missing:,} of {c.expected:,} bars of the run's range are missing beyond "
            f"known exchange halts (bar open times, UTC): {shown}{more}. Import the missing data, narrow start/end, "
            "or set allow_gaps = true to run anyway (the gaps are then listed in run.json and the summary)")


def coverage_line(coverages: list[dict[str, Any]]) -> str:
    """One summary line: loaded of expected bars, known halts, and missing bars if gaps were allowed."""
    if not coverages:
        return "n/a"
    exp = sum(c["expected"] for c in coverages)
    got = sum(c["loaded"] for c in coverages)
    halted = sum(c["known_halt_bars"] for c in coverages)
    miss = sum(c["missing_bars"] for c in coverages)
    text = f"{got:,} of {exp:,} bars ({got / exp * 100 if exp else 100:.2f} %)"
    if halted:
        text += f", {halted:,} in known exchange halts"
    if miss:
        text += f", WARNING: {miss:,} missing (allow_gaps = true)"
    return text
