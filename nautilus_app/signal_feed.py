"""Feed the engine only the bars at which something can happen: the fast path of vectorised-signals runs.

A run whose strategies are all vectorised-signals strategies (:class:`strategies.signals.SignalStrategy`)
calls Python only at signal and fill events, yet Nautilus would still process every bar (its matching
engine, the portfolio, the data engine: ~2.2 us a bar with no strategy at all, and the ``Bar`` objects
themselves). :class:`SignalFeed` drives the engine event by event instead, with Nautilus's streaming
mode (one ``add_data`` / ``run(streaming=True)`` / ``clear_data`` per step; measured ~1 us a step):

1. the next time ``T`` at which something can happen is the earliest of: a strategy's armed wake-up
   (:meth:`SignalStrategy.next_wake_ts`: the next bar on which a signal can act given its position,
   the bar after a fill, every bar while an order is in flight, the first bar that can liquidate an
   isolated position; for a wake-up at a time no stored bar closes at, e.g. an hour bar aggregated from
   1m bars whose last minute is missing, the next bar after it, whose arrival moves the clock past it)
   and a bar-subscribed liquidation actor's next check
   (:meth:`nautilus_app.venue.liquidation.LiquidationActor.next_check_ts`: the bar after a fill, every bar
   while a liquidation order is pending, the first bar its vectorised scan says can liquidate);
2. the step feeds, in time order, every funding row and mark price up to ``T`` (with, before each
   funding row, each bar type's last bar at or before it: Nautilus settles funding at the mark, or at the
   last price when there is none) and each bar type's last bar at or before ``T``;
3. the step runs; the strategies' alerts at ``T`` fire after the bars at ``T`` (as after ``on_bar``),
   orders fill through the venue's fill model, which prices from the run's full bar arrays
   (:class:`nautilus_app.venue.fill_timing.VenueFillModel`), and the next ``T`` is asked for.

Why the results are those of feeding every bar: between two steps no strategy acts, no liquidation
check can act, and no order rests on the book (market orders fill at once; the only resting order, a
liquidation stop, makes its strategy and the actor wake on the next bar), so the bars left out change
nothing but Nautilus's last price, and every bar a step feeds brings the last price of each bar type
to what it would be at ``T``. Time alerts (latency releases, progress) fire as time advances, as with
every bar. The first step feeds the earliest bar (the strategies start there) and the last step each bar
type's last bar (the final marks). tests/test_signal_feed.py runs the same configs both ways and compares every fill,
order, position, funding payment, account state and metric.

Used automatically (``feed = "auto"`` in the run config) when every strategy of the run is a
vectorised-signals strategy and no liquidation actor runs in ``verify`` mode; ``feed = "every_bar"``
turns it off.
"""

from __future__ import annotations

import bisect
from array import array
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from nautilus_trader.model import Bar, BarType, Price, Quantity

from nautilus_app.venue.fill_timing import BAR_COLUMNS, bar_rows

__all__ = ["RawBars", "SignalFeed", "build_feed", "eligible"]

_U64 = (1 << 64) - 1


def _raw_int128(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Low (unsigned) and high (signed) 64-bit words of a ``decimal128`` array's unscaled values."""
    words = np.frombuffer(arr.buffers()[1], dtype="<i8")[2 * arr.offset: 2 * (arr.offset + len(arr))]
    return words[0::2], words[1::2]


class RawBars:
    """One bar type's bars as exact fixed-point integers, turned into Nautilus ``Bar`` objects on demand.

    Built from a table in Nautilus's bar schema (``ts_init`` plus ``decimal128(38, 16)`` open, high,
    low, close, volume: the unscaled value *is* Nautilus's 16-digit raw value), sorted and deduplicated
    by :func:`nautilus_app.venue.fill_timing.bar_rows` as the float series are (so index ``i`` is the same
    bar in both). ``bar(i)`` gives the ``Bar`` the catalog would (``ts_event = ts_init`` = close time),
    equal to it field by field; ~5 us a bar.
    """

    def __init__(self, bar_type: str, table: pa.Table, price_precision: int, size_precision: int) -> None:
        self.bar_type = BarType.from_str(bar_type)
        ts, rows = bar_rows(pc.cast(table.column("ts_init"), pa.int64()).to_numpy())
        #: close times (UTC ns); an ``array`` so that bisect and indexing give Python ints without numpy's per-call cost
        self.ts = array("q", ts.tobytes())
        self._words = {}
        for c in ("open", "high", "low", "close", "volume"):
            col = table.column(c).combine_chunks() if len(table) else pa.array([], pa.decimal128(38, 16))
            self._words[c] = _raw_int128(col.take(pa.array(rows)))
        self.pp, self.sp = price_precision, size_precision

    def __len__(self) -> int:
        return len(self.ts)

    def _raw(self, col: str, i: int) -> int:
        lo, hi = self._words[col]
        return (int(hi[i]) << 64) | (int(lo[i]) & _U64)

    def bar(self, i: int) -> Bar:
        pp, raw = self.pp, self._raw
        t = self.ts[i]
        return Bar(self.bar_type, Price.from_raw(raw("open", i), pp), Price.from_raw(raw("high", i), pp),
                   Price.from_raw(raw("low", i), pp), Price.from_raw(raw("close", i), pp),
                   Quantity.from_raw(raw("volume", i), self.sp), t, t)

    def last_at_or_before(self, t: int, lo: int = 0) -> int:
        """Index of the last bar closing at or before ``t`` (-1: none); ``lo``: no earlier bar qualifies."""
        return bisect.bisect_right(self.ts, t, lo) - 1


def eligible(strategies: list[Any], liquidation_actors: list[Any]) -> bool:
    """True when the event-by-event feed gives the every-bar results: at least one strategy and every
    strategy a vectorised-signals one (nothing else reads bars as they come), and no liquidation actor
    verifying its schedule on the skipped bars."""
    return (bool(strategies) and all(getattr(s, "signal_kind", False) for s in strategies)
            and not any(getattr(a, "verify", False) for a in liquidation_actors))


class SignalFeed:
    """The engine driver of the module docstring.

    Args:
        bars: :class:`RawBars` per bar type, in the plan's order (the order Nautilus keeps for bars
            with the same close time).
        other: Funding rows and mark prices of the whole run (``DataChunks.other``), any order.
        strategies: The run's vectorised-signals strategies (asked for their next wake-up).
        liquidation_actors: Bar-subscribed liquidation actors (asked for their next check); scheduled
            ones are driven by their strategies.

    ``len()`` is the number of data points fed so far (the engine's iteration count at the end);
    :attr:`steps` counts engine steps.
    """

    def __init__(self, bars: list[RawBars], other: list[Any], strategies: list[Any],
                 liquidation_actors: list[Any]) -> None:
        self.bars = bars
        self.other = sorted(other, key=lambda d: d.ts_init)  # stable: the plan's order at equal times
        self._other_ts = [d.ts_init for d in self.other]
        self.strategies = strategies
        self.actors = [a for a in liquidation_actors if not getattr(a, "scheduled", False)]
        self.count = 0
        self.steps = 0
        self._fed = [-1] * len(bars)
        self._rank = {b.bar_type: k for k, b in enumerate(bars)}
        self._other_next = 0
        self._cursor = -1

    def __len__(self) -> int:
        return self.count

    def _next_bar_ts_after(self, t: int) -> int | None:
        """Earliest close time ``> t`` over every bar type."""
        best = None
        for b in self.bars:
            k = bisect.bisect_right(b.ts, t)
            if k < len(b) and (best is None or b.ts[k] < best):
                best = b.ts[k]
        return best

    def _next_target(self, end: int) -> int:
        cur = self._cursor
        cands = [end]
        for s in self.strategies:
            w = s.next_wake_ts()
            if w is not None and w > cur:
                cands.append(w)
            elif w is not None:  # armed at a time no bar closes at (an aggregated bar whose last source bar is
                # missing): its alert fires when the clock passes it, before the next data point, as Nautilus emits it
                nxt = self._next_bar_ts_after(cur)
                if nxt is not None:
                    cands.append(nxt)
        for a in self.actors:
            w = a.next_check_ts(cur, self._next_bar_ts_after)
            if w is not None and w > cur:
                cands.append(w)
        return min(cands)

    def _bars_up_to(self, t: int, out: list[Any]) -> None:
        for k, b in enumerate(self.bars):
            j = b.last_at_or_before(t, max(self._fed[k], 0))
            if j > self._fed[k]:
                out.append(b.bar(j))
                self._fed[k] = j

    def _step(self, target: int) -> list[Any]:
        chunk: list[Any] = []
        hi = bisect.bisect_right(self._other_ts, target)
        for d in self.other[self._other_next:hi]:
            if hasattr(d, "rate"):  # a funding row: the last prices before it (settled at the last price without a mark)
                self._bars_up_to(d.ts_init, chunk)
            chunk.append(d)
        self._other_next = hi
        self._bars_up_to(target, chunk)
        # the order of feeding every bar: by time; at equal times bars (in the plan's bar-type order) before
        # funding rows and mark prices (already in order; the sort is stable)
        if len(chunk) > 1:
            rank = self._rank
            chunk.sort(key=lambda d: (d.ts_init, rank.get(getattr(d, "bar_type", None), len(rank))))
        return chunk

    def run(self, engine: Any, run_id: str | None = None) -> None:
        """Run ``engine`` (built, strategies added, no data added) to the end of the data, then ``end()`` it."""
        firsts = [int(b.ts[0]) for b in self.bars if len(b)]
        lasts = [int(b.ts[-1]) for b in self.bars if len(b)]
        if not firsts:
            engine.end()
            return
        end = max(lasts + self._other_ts[-1:])
        target = min(firsts)
        while True:
            chunk = self._step(target)
            if chunk:
                self.count += len(chunk)
                engine.add_data(chunk)  # sorted already; Nautilus re-sorts stably by ts_init
                engine.run(run_config_id=run_id, streaming=True)
                engine.clear_data()
                self.steps += 1
            self._cursor = target
            if target >= end:
                break
            target = self._next_target(end)
        engine.end()


def build_feed(plan: Any, run: Any, engine: Any, strategies: list[Any], liquidation_actors: list[Any],
               other: list[Any]) -> SignalFeed:
    """A :class:`SignalFeed` over the plan's bar types (read from their stores over the plan's windows,
    precisions from the engine's instruments) and ``other`` (funding rows, mark prices)."""
    bars = []
    for bt, lo, hi in plan.bars:
        inst = engine.cache.instrument(BarType.from_str(bt).instrument_id)
        table = run.store(bt).columns(bt, BAR_COLUMNS, lo, hi)
        bars.append(RawBars(bt, table, inst.price_precision, inst.size_precision))
    return SignalFeed(bars, other, strategies, liquidation_actors)
