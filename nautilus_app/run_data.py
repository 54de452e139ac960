"""What one backtest run loads, planned once and loaded once (shared by the runner and the results).

:class:`DataPlan` says what to load (windows per bar type, funding and mark-price spans); it is
built by :func:`nautilus_app.backtest.plan_data` and read by the results writer (``run.json``).

:class:`RunData` holds the run's bars as float arrays (:class:`~nautilus_app.venue.fill_timing.BarSeries`),
read once per bar type from its store (:func:`catalog.bar_stores.open_bar_store`: Nautilus's catalog or
the compact store) and shared by everything that needs prices besides the engine: the venue fill model,
the liquidation model, vectorised-signals strategies and the results' equity curve and benchmark
(:meth:`RunData.closes`). Before, each of those read the bars again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from catalog.bar_stores import BarStore
    from nautilus_app.config import VenueConfig
    from nautilus_app.venue.fill_timing import BarSeries, VenueFillModel
    from nautilus_app.venue.latency import LatencyRouter
    from nautilus_app.venue.liquidation import LiquidationActor


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


class RunData:
    """The bars of one run, loaded once per bar type and shared (see the module docstring).

    Args:
        root: The catalog root.
        plan: The run's :class:`DataPlan` (its ``bars`` windows are the default windows).
    """

    def __init__(self, root: Path, plan: DataPlan) -> None:
        from catalog.bar_stores import open_bar_store

        self.root = root
        self.plan = plan
        self.windows = {bt: (lo, hi) for bt, lo, hi in plan.bars}
        self.stores: dict[str, BarStore] = {bt: open_bar_store(root, bt) for bt in self.windows}
        self._series: dict[tuple[str, int | None, int | None], BarSeries] = {}

    def store(self, bar_type: str) -> BarStore:
        """The store holding ``bar_type`` (opened on first use for bar types outside the plan)."""
        if bar_type not in self.stores:
            from catalog.bar_stores import open_bar_store

            self.stores[bar_type] = open_bar_store(self.root, bar_type)
        return self.stores[bar_type]

    def series(self, bar_type: str, start_ns: int | None = None, end_ns: int | None = None) -> BarSeries:
        """OHLCV floats of ``bar_type`` over ``[start_ns, end_ns)`` (default: the plan's window), read once."""
        from nautilus_app.venue.fill_timing import BAR_COLUMNS, bar_series_from_table

        if start_ns is None and end_ns is None and bar_type in self.windows:
            start_ns, end_ns = self.windows[bar_type]
        key = (bar_type, start_ns, end_ns)
        if key not in self._series:
            table = self.store(bar_type).columns(bar_type, BAR_COLUMNS, start_ns, end_ns)
            self._series[key] = bar_series_from_table(table)
        return self._series[key]

    def instrument_bar_types(self) -> dict[str, str]:
        """Instrument id -> its first bar type in the plan (the one that drives its fills and its equity marks)."""
        out: dict[str, str] = {}
        for bt in self.windows:
            out.setdefault(_instrument_of(bt), bt)
        return out

    def closes(self) -> dict[str, pd.Series]:
        """Close prices per instrument id (its first bar type), indexed by bar close time (UTC)."""
        import pandas as pd

        from core.times import utc_index

        out = {}
        for iid, bt in self.instrument_bar_types().items():
            s = self.series(bt)
            out[iid] = pd.Series(s.close, index=utc_index(s.ts), name=bt)
        return out


def _instrument_of(bar_type: str) -> str:
    from nautilus_trader.model import BarType

    return str(BarType.from_str(bar_type).instrument_id)


@dataclass
class VenueSim:
    """What the runner built for one simulated venue: its config and venue models (fill model,
    liquidation actor, latency router), kept for the results (:mod:`nautilus_app.results`)."""

    config: VenueConfig
    fill_model: VenueFillModel
    liquidation: LiquidationActor | None = None
    latency: LatencyRouter | None = None
