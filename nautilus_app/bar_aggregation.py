"""Time bars of a bar type Nautilus aggregates (``...-1-HOUR-LAST-INTERNAL@1-MINUTE-EXTERNAL``), built from
the run's source bars with numpy exactly as Nautilus's time-bar aggregator builds them in a backtest.

Vectorised-signals strategies (:mod:`strategies.signals`) need their whole bar history before the run;
their event-driven twins get these bars from Nautilus while it runs. The rules, as the runner configures
Nautilus (``DataEngineConfig(time_bars_build_with_no_updates=False)``, every other time-bar option at its
default), verified against the engine on real data by ``tests/test_bar_aggregation.py``:

- a bar of step ``S`` closes at every multiple ``g`` of ``S`` since the epoch (UTC) and holds the source
  bars closing in ``(g - S, g]``: open of the first, highest high, lowest low, close of the last, summed
  volume; it is stamped ``g`` (``ts_event = ts_init = g``);
- an interval with no source bar gives no bar (exchange halts, data gaps); a first interval the data
  enters half way gives a partial bar;
- a bar is emitted when the engine's clock reaches ``g``: after every data point at ``g`` (bars, mark prices,
  funding), or, when no source bar closes at ``g``, before the next data point. An interval still open when
  the run's data ends (its ``g`` after the run's last data point) is never emitted.

Only steps that divide a day are taken (1, 5, 15 minutes, 1 or 4 hours, 1 day...): their multiples of ``S``
since the epoch are the ones Nautilus aligns to; other steps raise.
"""

from __future__ import annotations

import numpy as np
from nautilus_trader.model import BarType

from catalog.inventory import bar_interval_ns
from nautilus_app.venue.fill_timing import BarSeries

__all__ = ["aggregate_time_bars", "source_bar_type"]

_DAY_NS = 86_400_000_000_000


def source_bar_type(bar_type: str) -> str | None:
    """The bar type Nautilus aggregates ``bar_type`` from (``X-1-HOUR-LAST-INTERNAL@1-MINUTE-EXTERNAL`` ->
    ``X-1-MINUTE-LAST-EXTERNAL``), or None for a bar type read as it is stored."""
    bt = BarType.from_str(bar_type)
    return str(bt.composite()) if bt.is_composite() else None


def aggregate_time_bars(source: BarSeries, bar_type: str, data_end_ns: int) -> BarSeries:
    """The bars of ``bar_type`` (a time bar type aggregated by Nautilus) from its ``source`` bars.

    Args:
        source: The source bar type's bars over the run's window (:class:`BarSeries`, floats, sorted by close
            time, UTC ns).
        bar_type: e.g. ``"BTCUSDT.BINANCE-1-HOUR-LAST-INTERNAL@1-MINUTE-EXTERNAL"``.
        data_end_ns: Time of the run's last data point of any kind (UTC ns): bars closing after it are
            never emitted.

    Returns:
        A :class:`BarSeries` (module docstring for the rules). Prices are the source floats, so exactly the
        floats of Nautilus's aggregated bars; volume is the float sum of the source volumes (within a few
        ulps of the float of Nautilus's exact decimal sum).

    Raises:
        ValueError: ``bar_type`` is not an aggregated time bar type, or its step is not a whole multiple of
            the source's or does not divide a day.
    """
    source_type = source_bar_type(bar_type)
    step = bar_interval_ns(bar_type)
    source_step = bar_interval_ns(source_type) if source_type else None
    if source_type is None or not step or not source_step:
        raise ValueError(f"{bar_type}: not a time bar type aggregated from time bars "
                         "(expected e.g. BTCUSDT.BINANCE-1-HOUR-LAST-INTERNAL@1-MINUTE-EXTERNAL)")
    if step % source_step or _DAY_NS % step:
        raise ValueError(f"{bar_type}: the step must be a whole multiple of the source's ({source_type}) and "
                         "divide a day (e.g. 5-MINUTE, 15-MINUTE, 1-HOUR, 4-HOUR, 1-DAY); store bars of this "
                         "step in the catalog instead")
    ts = np.asarray(source.ts, dtype=np.int64)
    if not len(ts):
        return source
    close_of = -(-ts // step) * step  # the multiple of the step each source bar's close falls in (g - S, g]
    starts = np.flatnonzero(np.r_[True, close_of[1:] != close_of[:-1]])
    ends = np.r_[starts[1:], len(ts)] - 1
    keep = close_of[starts] <= data_end_ns
    starts, ends = starts[keep], ends[keep]
    if not len(starts):
        empty = np.array([], dtype=np.float64)
        return BarSeries(np.array([], dtype=np.int64), empty, empty, empty, empty, empty)
    last = ends[-1] + 1
    return BarSeries(
        close_of[starts],
        source.open[starts],
        np.maximum.reduceat(source.high[:last], starts),
        np.minimum.reduceat(source.low[:last], starts),
        source.close[ends],
        np.add.reduceat(source.volume[:last], starts),
    )
