"""What one backtest run loads, planned once and shared (the base of the runner and of the results).

:class:`DataPlan` says what to load (windows per bar type, funding and mark-price spans); it is
built by :func:`nautilus_app.backtest.plan_data` and read by the results writer (``run.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataPlan:
    """What the run loads: windows per bar type, funding and mark-price spans per perpetual.

    Attributes:
        bars: ``(bar type, lo, hi)`` half-open windows on ``ts_init`` (UTC ns; None = open).
        funding: ``(instrument id, lo, hi)`` spans of catalog funding rows, half-open.
        marks: ``(instrument id, lo, hi)`` spans of catalog mark prices, half-open.
        constant_funding: instrument id -> (rate, interval hours, lo, hi) for configured constant rates.
        expected_iterations: Rows counted in the catalog (bars + funding + marks), before loading.
        first_ns / last_ns: First and last bar close time.
        funding_instruments / mark_instruments: Perpetuals with funding / mark prices.
        coverage: per bar type, expected vs loaded bars and missing spans (:mod:`nautilus_app.coverage`).
        bar_stores: bar type -> ``"nautilus"`` (Nautilus's catalog) or ``"compact"`` (the compact
            store, :mod:`catalog.compact`), see :func:`catalog.reader.bar_store`.
    """

    bars: list[tuple[str, int | None, int | None]]
    funding: list[tuple[str, int, int]]
    marks: list[tuple[str, int, int]]
    constant_funding: dict[str, tuple[float, int, int, int]]
    expected_iterations: int
    first_ns: int
    last_ns: int
    funding_instruments: list[str]
    mark_instruments: list[str]
    funding_source: dict[str, str] = field(default_factory=dict)
    bar_stores: dict[str, str] = field(default_factory=dict)
    coverage: list[dict[str, Any]] = field(default_factory=list)
