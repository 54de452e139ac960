"""Backtest progress that costs nothing per bar: a terminal bar, or structured events for a runner.

:class:`ProgressActor` is a Nautilus ``DataActor`` that sets one timer on the simulated clock and
reports simulated time done, so a run with millions of bars gets ~200 updates and no per-bar Python
callback (a per-bar ``on_bar`` would cost several percent of throughput). It reports to a ``tqdm``
bar on stderr (terminal users: ``nautilus-app backtest``) or, in a worker process, to a callable
given the fraction done (:class:`nautilus_app.worker_process.ProgressWriter` writes it as JSON lines
for the parent; nothing parses the bar's text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from nautilus_trader.common import DataActor, DataActorConfig
from nautilus_trader.model import ActorId

if TYPE_CHECKING:
    from tqdm import tqdm

#: Receives the fraction of simulated time done (0..1), e.g. :class:`nautilus_app.worker_process.ProgressWriter`.
ProgressSink = Callable[[float], None]


class ProgressActor(DataActor):
    """Advance a progress bar from ``start_ns`` to ``end_ns`` of simulated time (UTC nanoseconds).

    Args:
        start_ns: First data timestamp of the run, ns.
        end_ns: Last data timestamp of the run, ns.
        steps: Number of timer ticks over the span (default 200).
        enabled: True: a ``tqdm`` bar on stderr; a callable: called with the fraction of simulated
            time done (0..1, increasing, 1.0 last) instead of drawing a bar; False: a silent actor
            (used by tests and benchmarks; no timer is set).
    """

    def __new__(cls, *args: object, **kwargs: object) -> ProgressActor:  # pyo3 base takes no extra args
        return super().__new__(cls)

    def __init__(self, start_ns: int, end_ns: int, steps: int = 200,
                 enabled: bool | ProgressSink = True) -> None:
        super().__init__(DataActorConfig(actor_id=ActorId("PROGRESS-001")))
        self._start_ns = start_ns
        self._end_ns = max(end_ns, start_ns + 1)
        self._interval_ns = max((self._end_ns - start_ns) // steps, 60_000_000_000)
        self._enabled = bool(enabled)
        self._sink: ProgressSink | None = enabled if callable(enabled) else None
        self._bar: tqdm | None = None
        self._done_ns = start_ns

    def on_start(self) -> None:
        if not self._enabled:
            return
        if self._sink is None:
            from tqdm import tqdm  # only for a bar on stderr (a backtest with --no-progress never imports it)

            span_days = (self._end_ns - self._start_ns) / 86_400e9
            self._bar = tqdm(total=round(span_days, 2), unit="day", desc="backtest", leave=False,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} sim days "
                                        "[{elapsed}<{remaining}]")
        self.clock.set_timer(
            "progress",
            dt.timedelta(microseconds=self._interval_ns / 1000),
            callback=self._tick,
        )

    def _tick(self, event) -> None:  # noqa: ANN001 - nautilus TimeEvent
        self._advance(min(event.ts_event, self._end_ns))

    def _advance(self, ts_ns: int) -> None:
        if ts_ns <= self._done_ns:
            return
        if self._bar is not None:
            self._bar.update((ts_ns - self._done_ns) / 86_400e9)
        elif self._sink is not None:
            self._sink(min((ts_ns - self._start_ns) / (self._end_ns - self._start_ns), 1.0))
        self._done_ns = ts_ns

    def on_stop(self) -> None:
        if self._bar is not None:
            self._advance(self._end_ns)
            self._bar.close()
            self._bar = None
        elif self._sink is not None:
            self._advance(self._end_ns)
