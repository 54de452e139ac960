"""What strategies plot, recorded during the run: ``plot_config`` (FreqTrade's idea) and a recorder actor.

A strategy class declares what it wants drawn on the run's candle chart::

    class MyStrategy(Strategy):
        plot_config = {
            "main_plot": {"fast": {"label": "EMA fast"}, "slow": {}},      # on the price axis
            "subplots": {"RSI": {"rsi": {"levels": [30, 70]}},            # one panel per key
                         "ADX": {"adx": {}}},
        }

Each entry names an attribute of the strategy instance: an indicator (its ``value`` is recorded), a
dotted path to a number (``"bb.upper"``), or a plain float attribute. ``label`` (default: the attribute
path) and ``levels`` (horizontal guide lines of a sub-panel) or ``levels_from`` (names of config
values drawn as guide lines) are optional. The built-in strategies declare theirs on their classes
(``strategies/ema_cross.py``, ``trend_following.py``, ``mean_reversion.py``, ``signal_strategies.py``).

Vectorised-signals strategies (:class:`strategies.signals.SignalStrategy`, recognised by their
``signal_frame`` method) compute their indicators once, as columns of their signal frame
(``strategy.frame``, one row per bar of the traded timeframe, ``ts`` = bar close): their ``plot_config``
names those columns, which are taken whole at the end of the run (no per-bar recording, no bar
subscription, so the vectorised execution stays free of per-bar Python calls).

:class:`PlotRecorder` (a Nautilus ``DataActor``) subscribes to each plotting strategy's own bar type
and records the values at the close of every bar of the timeframe the strategy traded (e.g. 15-minute
bars aggregated by Nautilus from 1-minute bars). It listens to the source bars (the 1-minute ones: an
internal aggregator cannot have a second subscriber) and, for strategies that remember the last bar
they handled (``strategies.base.BarStrategy._last_ts``), records a row stamped with that bar's close
whenever it changes, so each row holds the values the strategy decided with on that bar, whatever the
order in which Nautilus calls the recorder and the strategy. Strategies without ``_last_ts`` are read
on each of their own (non-aggregated) bars. Uninitialised indicators are recorded as NaN.
A strategy may instead compute its series after the run: a ``plot_series(bars)`` method, given its bars as
:func:`strategies.signals.bar_frame` frames them (``ts``, OHLCV, gap ``segment``, ``close_nd`` ...), returns
``{path: array}`` with one value per bar, the value the path held at that bar's close (NaN until initialised).
For a strategy trading bars read from the catalog (not aggregated by Nautilus) nothing is then recorded per
bar (:class:`strategies.ema_cross.EMACross`: Nautilus's EMAs reproduced bit for bit, tests/test_plot_config.py;
560,703 bars: 0.2 s less engine time, 0.06 s more results). Paths it leaves out are NaN.
Strategies that offer a ``plot_recorder`` slot (``strategies.base.BarStrategy``) are not listened to:
they call the recorder themselves at the end of their ``on_bar`` (the same row, the values they
decided with on that bar, without a second Python bar handler per bar: ~3 us a bar less).

Results: ``indicators.parquet`` (columns ``strategy_id``, ``bar_type``, ``ts`` = bar close, UTC ns,
then one float column per series, ``<strategy_id>:<label>``) and ``plot_config.json`` (per strategy:
bar type, ``main_plot`` labels, ``subplots`` {title: {labels, levels}}, column names), written by
:func:`write_recorded` into the results folder. Nothing is recorded when no strategy plots anything.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from nautilus_trader.common import DataActor, DataActorConfig
from nautilus_trader.model import ActorId

from core.parquet import write_options

_RESULTS_KEY = "plot_records"


def plot_config_of(strategy: Any) -> dict | None:
    """The strategy's ``plot_config`` class attribute, else None."""
    cfg = getattr(type(strategy), "plot_config", None)
    if not cfg or not isinstance(cfg, dict):
        return None
    return cfg


def read_value(strategy: Any, path: str) -> float:
    """Value of ``path`` on the strategy: an indicator's ``value`` (NaN until initialised), a number
    reached by a dotted path (NaN if the owning indicator is not initialised)."""
    head, _, last = path.rpartition(".")
    return _read(strategy, tuple(head.split(".")) if head else (), last)


def _read(strategy: Any, head: tuple[str, ...], last: str) -> float:
    """:func:`read_value` with the path split once (the recorder calls this on every bar)."""
    owner = strategy
    for part in head:
        owner = getattr(owner, part, None)
        if owner is None:
            return math.nan
    target = getattr(owner, last, None)
    if not getattr(owner if head else target, "initialized", True):
        return math.nan
    if target is not None and not isinstance(target, int | float) and hasattr(target, "value"):
        target = target.value
    try:
        return float(target)
    except (TypeError, ValueError):
        return math.nan


def source_bar_type(bar_type: str) -> str:
    """The bar type a (possibly internally aggregated) bar type is built from:
    ``X-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL`` -> ``X-1-MINUTE-LAST-EXTERNAL``; others unchanged."""
    if "@" not in bar_type:
        return bar_type
    head, src = bar_type.split("@", 1)
    parts = head.split("-")
    # head = <instrument id with dashes>-<step>-<aggregation>-<price>-INTERNAL; src = <step>-<aggregation>-EXTERNAL
    instrument = "-".join(parts[:-4])
    step, agg, source = src.split("-")
    return f"{instrument}-{step}-{agg}-{parts[-2]}-{source}"


class _Plan:
    def __init__(self, strategy: Any, cfg: dict) -> None:
        self.strategy = strategy
        self.sid = strategy.id.value if hasattr(strategy, "id") else str(strategy.strategy_id)
        self.bar_type = strategy.bar_type
        self.bar_type_str = str(strategy.bar_type)
        self.paths: list[str] = []
        self.main: list[str] = []
        self.subplots: dict[str, dict] = {}
        config = getattr(strategy, "config", None)
        for path, spec in (cfg.get("main_plot") or {}).items():
            self.paths.append(path)
            self.main.append((spec or {}).get("label") or path)
        for title, series in (cfg.get("subplots") or {}).items():
            labels, levels = [], []
            for path, spec in (series or {}).items():
                spec = spec or {}
                self.paths.append(path)
                labels.append(spec.get("label") or path)
                levels += [float(x) for x in spec.get("levels", [])]
                levels += [float(getattr(config, k)) for k in spec.get("levels_from", [])
                           if isinstance(getattr(config, k, None), int | float)]
            self.subplots[str(title)] = {"labels": labels, "levels": sorted(set(levels))}
        self.labels = self.main + [lbl for s in self.subplots.values() for lbl in s["labels"]]
        # recorded per bar into flat typed buffers (8 bytes a value; Python lists of floats took ~120 bytes
        # a row: ~400 MB on a 5-year 1m run); frame-based plans take numpy arrays instead (take_frame)
        self.ts: Any = array("q")
        self.rows: Any = array("d")
        #: vectorised-signals strategy: the plotted series are columns of its signal frame
        self.frame_based = callable(getattr(strategy, "signal_frame", None))
        #: the series come from the strategy's ``plot_series`` after the run (set by PlotRecorder)
        self.after_run = False
        self._split: list[tuple[tuple[str, ...], str]] | None = None

    def take_series(self, series: Any, price_precision: int) -> None:
        """Rows of an after-run plan: the strategy's ``plot_series`` over the bars it was fed (``series``, a
        :class:`~nautilus_app.venue.fill_timing.BarSeries`), as :func:`strategies.signals.bar_frame` frames them
        (gap segments by the strategy's ``max_gap_ns``; none without one). Paths it does not return are NaN.

        Raises:
            ValueError: a returned series' length is not one value per bar.
        """
        from strategies.signals import bar_frame

        # the bar columns are read-only views of the run's arrays, not copies (a 5-year 1m run: 126 MB less)
        bars = bar_frame(series, getattr(self.strategy, "max_gap_ns", 2**62), price_precision, copy=False)
        values = self.strategy.plot_series(bars)
        n = len(bars)
        for path, v in values.items():
            if path in self.paths and v is not None and len(v) != n:
                raise ValueError(f"{self.sid}: plot_series()[{path!r}] has {len(v)} values for {n} bars")
        self._take_columns(bars["ts"], {p: v for p, v in values.items() if v is not None})

    def take_frame(self) -> None:
        """Rows of a frame-based plan from the strategy's signal frame (missing columns are NaN)."""
        frame = getattr(self.strategy, "frame", None)
        if frame is None or "ts" not in getattr(frame, "columns", ()):
            return
        self._take_columns(frame["ts"], frame)

    def _take_columns(self, ts: Any, columns: Any) -> None:
        """:attr:`ts` and :attr:`rows` from whole columns: ``columns[path]`` (a frame or a dict of arrays, one
        value per time); paths not in it are NaN. Arrays, not lists (a 5-year 1m run: 2.6M rows; as Python
        lists ~120 bytes a row and series)."""
        n = len(ts)
        self.ts = np.asarray(ts, dtype=np.int64)
        cols = [np.asarray(columns[p], dtype=np.float64) if p in columns else np.full(n, np.nan) for p in self.paths]
        self.rows = np.column_stack(cols) if cols and n else np.zeros((n, len(self.paths)))

    def snapshot(self) -> list[float]:
        if self._split is None:  # paths split once, resolved on every bar (a strategy may swap indicators)
            self._split = [(tuple(h.split(".")) if h else (), last) for h, _, last in
                           (p.rpartition(".") for p in self.paths)]
        strategy = self.strategy
        out = []
        for head, last in self._split:
            if not head:  # fast path, same value as _read: an attribute holding an indicator
                target = getattr(strategy, last, None)
                try:
                    out.append(float(target.value) if target.initialized else math.nan)
                    continue
                except (AttributeError, TypeError, ValueError):
                    pass
            out.append(_read(strategy, head, last))
        return out

    def record(self, ts: int) -> None:
        """Append the strategy's current values as the row of the bar closing at ``ts`` (once per ``ts``)."""
        t = self.ts
        if len(t) and t[-1] >= ts:
            return
        t.append(ts)
        self.rows.extend(self.snapshot())

    def recorder(self) -> Callable[[int], None]:
        """:meth:`record` as one closure, for a strategy that records itself on every bar: the same rows and
        values, with the paths split once and each value appended as it is read (no list per row)."""
        if any("." in path for path in self.paths):
            return self.record
        names = tuple(self.paths)
        strategy = self.strategy
        ts_arr, rows = self.ts, self.rows  # replaced only by frame(), after the run
        add_ts, add = ts_arr.append, rows.append
        nan = math.nan

        def record(ts: int) -> None:
            if ts_arr and ts_arr[-1] >= ts:
                return
            add_ts(ts)
            for name in names:
                target = getattr(strategy, name, None)
                try:  # an attribute holding an indicator; anything else as _read reads it
                    add(float(target.value) if target.initialized else nan)
                except (AttributeError, TypeError, ValueError):
                    add(_read(strategy, (), name))

        return record


class PlotRecorder(DataActor):
    """Records each plotting strategy's ``plot_config`` series at every bar of its own bar type."""

    def __new__(cls, *args: object, **kwargs: object) -> PlotRecorder:  # pyo3 base takes no extra args
        return super().__new__(cls)

    def __init__(self, strategies: list[Any], run: Any = None) -> None:
        super().__init__(DataActorConfig(actor_id=ActorId("PLOTRECORDER-001")))
        #: the run's bars (:class:`nautilus_app.run_data.RunData`) for strategies with ``plot_series``
        self.run = run
        self.plans: list[_Plan] = []
        for s in strategies:
            cfg = plot_config_of(s)
            if cfg is not None and getattr(s, "bar_type", None) is not None:
                plan = _Plan(s, cfg)
                if plan.paths:
                    self.plans.append(plan)
        # Bars of the strategy's source series: a bar type aggregated inside Nautilus
        # ("X-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL") has one aggregator that a second subscriber cannot
        # share, so the recorder listens to the source bars and records whenever the strategy has seen a new bar.
        self._by_bar: dict[str, list[_Plan]] = {}
        stored = set(getattr(run, "windows", ()))  # bar types read from the catalog (not aggregated by Nautilus)
        for p in self.plans:
            if p.frame_based:
                continue
            if callable(getattr(p.strategy, "plot_series", None)) and p.bar_type_str in stored:
                p.after_run = True  # computed from the same bars after the run: no Python per bar for it
                continue
            if hasattr(type(p.strategy), "plot_recorder"):  # strategies.base.BarStrategy: records at the end of its on_bar
                p.strategy.plot_recorder = p.recorder()
                continue
            self._by_bar.setdefault(source_bar_type(str(p.bar_type)), []).append(p)

    def on_start(self) -> None:
        from nautilus_trader.model import BarType

        for src in self._by_bar:
            self.subscribe_bars(BarType.from_str(src))

    def _record(self, p: _Plan, ts: int) -> None:
        p.record(ts)

    def on_bar(self, bar: Any) -> None:
        ts = bar.ts_event
        key = str(bar.bar_type)
        for p in self._by_bar.get(key, ()):
            seen = getattr(p.strategy, "_last_ts", None)
            if seen is None:  # no record of the strategy's last bar: its own bars only, assumed handled
                if key == p.bar_type_str:
                    self._record(p, ts)
            elif 0 <= seen <= ts:  # the strategy's last bar (this one, or an earlier one if not yet handled)
                self._record(p, seen)

    def on_stop(self) -> None:
        for p in self.plans:  # the strategy's last bar, when the recorder ran before the strategy on it
            if p.frame_based or p.after_run:
                continue
            seen = getattr(p.strategy, "_last_ts", None)
            if seen is not None and 0 <= seen < 2**62:
                self._record(p, seen)

    def frame(self):
        """All recorded rows as a DataFrame (see the module docstring) and the plot config JSON."""
        import pandas as pd

        frames, config = [], {}
        # the two label columns as categoricals sharing their categories (one dictionary in Parquet, not a
        # string per row: ~200 MB less on a 5-year 1m run); readers compare them with strings as before
        sids = list(dict.fromkeys(p.sid for p in self.plans))
        bts = list(dict.fromkeys(str(p.bar_type) for p in self.plans))
        for p in self.plans:
            if p.frame_based and not len(p.ts):
                p.take_frame()
            elif p.after_run and not len(p.ts):
                from nautilus_trader.model import BarType

                instrument = self.cache.instrument(BarType.from_str(p.bar_type_str).instrument_id)
                if instrument is not None:  # as the strategy's indicators were fed: Price.as_double() at its precision
                    p.take_series(self.run.series(p.bar_type_str), instrument.price_precision)
            cols = [f"{p.sid}:{lbl}" for lbl in p.labels]
            arr = np.asarray(p.rows, dtype=np.float64).reshape(len(p.ts), len(p.paths))
            p.rows = []
            df = pd.DataFrame(arr, columns=cols, copy=False)
            df.insert(0, "ts", np.asarray(p.ts, dtype=np.int64))
            n = len(df)
            df.insert(0, "bar_type", pd.Categorical.from_codes(np.full(n, bts.index(str(p.bar_type)), np.int32), bts))
            df.insert(0, "strategy_id", pd.Categorical.from_codes(np.full(n, sids.index(p.sid), np.int32), sids))
            frames.append(df)
            config[p.sid] = {"bar_type": str(p.bar_type),
                             "main_plot": {lbl: f"{p.sid}:{lbl}" for lbl in p.main},
                             "subplots": {t: {"series": {lbl: f"{p.sid}:{lbl}" for lbl in s["labels"]},
                                              "levels": s["levels"]} for t, s in p.subplots.items()}}
        if not frames:
            return None, {}
        return pd.concat(frames, ignore_index=True), config


_ACTIVE: dict[int, PlotRecorder] = {}


def attach(engine: Any, strategies: list[Any], run: Any = None) -> PlotRecorder | None:
    """Add a :class:`PlotRecorder` for ``strategies`` to the engine (None when none of them plots); ``run``:
    the run's :class:`~nautilus_app.run_data.RunData`, whose bars feed ``plot_series`` after the run."""
    rec = PlotRecorder(strategies, run)
    if not rec.plans:
        return None
    engine.add_actor(rec)
    _ACTIVE.clear()  # one engine runs at a time per process; drop recorders of runs that failed
    _ACTIVE[id(engine)] = rec
    return rec


def write_recorded(engine: Any, folder: Path) -> None:
    """Write ``indicators.parquet`` and ``plot_config.json`` of the engine's recorder into ``folder``."""
    rec = _ACTIVE.pop(id(engine), None)
    if rec is None:
        return
    df, config = rec.frame()
    for p in rec.plans:  # Nautilus strategies may only be dropped on the thread that made them
        if getattr(p.strategy, "plot_recorder", None) is not None:
            p.strategy.plot_recorder = None
        p.strategy = None
    if df is None:
        return
    df.to_parquet(Path(folder) / "indicators.parquet", **write_options(df))
    (Path(folder) / "plot_config.json").write_text(json.dumps(config, indent=2))
