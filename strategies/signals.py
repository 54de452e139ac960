"""Vectorised-signals strategies (FreqTrade style), executed through Nautilus with the same venue models.

A :class:`SignalStrategy` computes its indicators and entry/exit signals **once**, on whole arrays,
before the first bar (``populate_indicators`` -> ``populate_entry_trend`` -> ``populate_exit_trend``
on a pandas DataFrame, as FreqTrade's ``IStrategy``), and is then executed bar by bar by Nautilus
without Python being called on every bar: the strategy subscribes to no bars; it sets a clock alert
at the close time of the next bar on which a signal can act given its position (the next entry
signal while flat, the next exit signal / max-hold bar while in a position) and is called only
there and at its fills. Orders go through the same ``enter`` / ``exit_position`` as the event-driven
strategies (``strategies.base``: exact-decimal sizing from the account's equity, reduce-only exits,
latency), so next-open fills, slippage, fees, funding, margin, liquidation and the risk of being
denied are the venue's, unchanged.

No look-ahead. Row ``t`` of the frame is the bar that closes at ``ts[t]``; a signal in row ``t`` is
acted on when that bar has closed (the alert fires at ``ts[t]``, after Nautilus processed the bar),
and the order fills like an order sent from ``on_bar(bar t)``: at bar t+1's open by default. The
populate functions receive the whole history, so they must only use rows ``<= t`` for row ``t``
(rolling/ewm/shift(+k) are fine, ``shift(-1)`` is look-ahead); :func:`check_no_lookahead` tests a
strategy by recomputing its signals on truncated histories.

Frame columns given to ``populate_indicators``: ``ts`` (bar close time, UTC ns), ``open``, ``high``,
``low``, ``close``, ``volume`` (floats nearest the bars' decimal values), ``segment`` (0, 1, ...: a new
segment starts after a gap longer than ``max_gap_bars`` bar intervals, where the event-driven
strategies reset their indicators), ``close_nd`` / ``high_nd`` / ``low_nd`` (the floats Nautilus's
``Price.as_double()`` gives, what Nautilus's own indicators are fed). The signal columns the
executor reads (missing ones are False / ""):

- ``enter_long``, ``enter_short`` (bool): open a position when flat (short only with ``allow_short``);
- ``exit_long``, ``exit_short`` (bool): close the position; ``exit_tag`` (str) tags the closing order;
- ``ready`` (bool, default True): False where the strategy's indicators are not all initialized (nothing
  happens on such a bar, not even a max-hold exit, as in the event-driven strategies).

Execution rules per bar ``t`` (the event-driven strategies' order, :class:`SignalStrategy` class
attributes select the variants): while an order is in flight nothing happens (as ``trading_blocked``);
in a position: an ``exit_*`` whose tag is in ``exit_tags_before_max_hold``, else ``max_hold_bars``
reached (tag ``MAX_HOLD``), else any ``exit_*`` -> exit; with ``reverse_on_exit`` an entry in the other
direction may follow on the same bar (EMA cross), otherwise not. Flat: after ``cooldown_bars`` since
the last exit, ``enter_long`` else ``enter_short``.
"""

from __future__ import annotations

import bisect
import math
from array import array
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from nautilus_trader.model import InstrumentId, OrderSide, OrderType, PositionSide, Price, TimeInForce

from strategies.base import BarStrategy

__all__ = ["SignalStrategy", "bar_frame", "check_no_lookahead", "nautilus_doubles", "nautilus_ema", "run_indicator",
           "segment_ids", "until_ready"]


def nautilus_doubles(values: np.ndarray, precision: int) -> np.ndarray:
    """``Price(v, precision).as_double()`` for a whole array (Nautilus stores prices as integers
    scaled by 1e16 and divides by 1e16: not always the float nearest the decimal)."""
    return (np.round(np.asarray(values, dtype=np.float64) * 10.0 ** precision) * 10.0 ** (16 - precision)) / 1e16


def segment_ids(ts: np.ndarray, max_gap_ns: int) -> np.ndarray:
    """0, 1, ... per bar: a new segment starts where the time since the previous bar exceeds ``max_gap_ns``."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(np.diff(ts) > max_gap_ns)]).astype(np.int64)


def _segments(seg: np.ndarray) -> list[tuple[int, int]]:
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if len(seg) else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(seg)]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


#: values per step of :func:`nautilus_ema`'s recurrence: the Python floats of one step are freed before the next,
#: so a 5-year 1m series never holds millions of them at once (2,629,800 closes: 0.40 -> 0.24 s an EMA alone,
#: 0.64 -> 0.26 s inside the 5-year run's results, whose heap is large; ~170 MB less at its peak)
_EMA_CHUNK = 1 << 16


def nautilus_ema(x: np.ndarray, period: int, seg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nautilus's ``ExponentialMovingAverage(period)`` over ``x`` (restarted at every segment):
    ``(value, initialized)``. Value 0.0 for the first ``period - 1`` inputs, then the mean of the first
    ``period`` inputs, then ``fma(alpha, x, (1 - alpha) x previous)`` with ``alpha = 2 / (period + 1)``
    (bit-identical to rc7's indicator, tests/test_signals.py)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = np.zeros(n, dtype=np.float64)
    ready = np.zeros(n, dtype=bool)
    a = 2.0 / (period + 1)
    b = 1.0 - a
    fma = math.fma
    for lo, hi in _segments(seg if seg is not None else np.zeros(n, dtype=np.int64)):
        if hi - lo < period:
            continue
        acc = 0.0
        for v in x[lo:lo + period].tolist():
            acc += v
        prev = acc / period
        out[lo + period - 1] = prev
        # the recurrence as one comprehension per chunk, carried by the assignment expression: the same
        # operations in the same order as an indexed loop, ~2.5x faster (560,703 closes: 62 -> 24 ms)
        for c in range(lo + period, hi, _EMA_CHUNK):
            e = min(c + _EMA_CHUNK, hi)
            out[c:e] = [prev := fma(a, v, b * prev) for v in x[c:e].tolist()]
        ready[lo + period - 1:hi] = True
    return out, ready


def bar_frame(series: Any, max_gap_ns: int, price_precision: int, *, copy: bool = True) -> pd.DataFrame:
    """The frame ``populate_indicators`` is given (module docstring) for a bar series
    (:class:`nautilus_app.venue.fill_timing.BarSeries`: float64 arrays by bar close time): ``ts`` (UTC ns),
    ``open``/``high``/``low``/``close``/``volume``, ``segment`` (:func:`segment_ids` with ``max_gap_ns``, the
    gap in ns after which the event-driven strategies reset their indicators) and ``close_nd``/``high_nd``/
    ``low_nd`` (:func:`nautilus_doubles` at ``price_precision`` decimals). One row per bar.

    ``copy=False``: ``ts`` and the OHLCV columns are read-only views of the series' arrays instead of copies
    (a 5-year 1m series: 126 MB and ~0.2 s less); writing into them raises ``ValueError`` (assignment
    destination is read-only) instead of changing the bars the run's fill models and results read."""
    raw = {"ts": series.ts, "open": series.open, "high": series.high, "low": series.low, "close": series.close,
           "volume": series.volume}
    if copy:
        df = pd.DataFrame(raw)
    else:
        views = {}
        for k, v in raw.items():
            views[k] = np.asarray(v).view()
            views[k].flags.writeable = False
        df = pd.DataFrame(views, copy=False)
    df["segment"] = segment_ids(series.ts, max_gap_ns)
    for col in ("close", "high", "low"):
        df[f"{col}_nd"] = nautilus_doubles(df[col].to_numpy(), price_precision)
    return df


def until_ready(values: np.ndarray, initialized: np.ndarray) -> np.ndarray:
    """``values`` with NaN where the indicator is not initialized yet: what an event-driven strategy's plot
    recorder stores there (nautilus_app/plotting.py), so that a plotted column draws no warm-up values (e.g. an
    EMA's 0.0 before its first ``period`` bars). Use it on ``plot_config`` columns; signals masked by ``ready``
    are unaffected."""
    return np.where(np.asarray(initialized, dtype=bool), np.asarray(values, dtype=np.float64), np.nan)


def run_indicator(make: Any, inputs: list[np.ndarray], seg: np.ndarray, fields: tuple[str, ...] = ("value",)
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """Any streaming indicator (Nautilus's or ``strategies.indicators``) run once over whole arrays,
    a fresh one per segment: ``update_raw(*inputs[t])`` for every row, then ``fields`` and
    ``initialized`` read after each row. Used for indicators whose floating-point recipe is not
    reproduced in numpy, so their values are the event-driven strategy's to the bit."""
    n = len(seg)
    cols = [np.asarray(c, dtype=np.float64).tolist() for c in inputs]
    outs = [[0.0] * n for _ in fields]
    ready = [False] * n
    for lo, hi in _segments(seg):
        ind = make()
        upd = ind.update_raw
        for i in range(lo, hi):
            upd(*[c[i] for c in cols])
            for k, f in enumerate(fields):
                outs[k][i] = getattr(ind, f)
            ready[i] = ind.initialized
    return [np.array(o) for o in outs], np.array(ready, dtype=bool)


def _tag_column(tags: pd.Series) -> pd.Categorical:
    """``exit_tag`` as a categorical of strings, missing -> "" (the same labels as ``fillna("").astype(str)``,
    without making a Python string per row)."""
    cat = tags.astype("category").array if not isinstance(tags.dtype, pd.CategoricalDtype) else tags.array
    names = [str(c) for c in cat.categories]
    if len(set(names)) != len(names):  # distinct values with one text (1 and "1"): the slow, exact way
        return pd.Categorical(tags.fillna("").astype(str))
    cat = cat.rename_categories(names)
    if cat.isna().any():
        cat = (cat if "" in names else cat.add_categories([""])).fillna("")
    return cat


class _Bar:
    """What ``enter`` reads from a bar (its close as a Nautilus ``Price``)."""

    __slots__ = ("close",)

    def __init__(self, close: Price) -> None:
        self.close = close


class SignalStrategy(BarStrategy):
    """Base class of vectorised-signals strategies (module docstring).

    Subclasses implement :meth:`populate_indicators`, :meth:`populate_entry_trend` and
    :meth:`populate_exit_trend`; the config is any :class:`strategies.base.BarStrategyConfig`. The
    runner hands the bars over with :meth:`set_bars` before the run (only bar types loaded from the
    catalog, not Nautilus-aggregated ones). ``risk`` tables are not supported (per-bar work).
    """

    signal_kind: ClassVar[bool] = True
    #: a fixed order quantity (base units, e.g. "0.01") instead of ``position_fraction`` of equity
    fixed_quantity: ClassVar[str | None] = None
    reverse_on_exit: ClassVar[bool] = False
    exit_tags_before_max_hold: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: Any) -> None:
        if getattr(config, "risk_config", None) is not None:
            raise ValueError(f"{type(self).__name__}: a risk table is not supported by vectorised-signals strategies")
        super().__init__(config)
        self.max_hold_bars: int | None = getattr(config, "max_hold_bars", None)
        self.cooldown_bars: int = int(getattr(config, "cooldown_bars", 0) or 0)
        self._series: Any = None
        self.frame: pd.DataFrame | None = None
        self._done = -1
        self._armed: set[int] = set()
        self._pre_armed: set[int] = set()
        self.wakeups = 0
        self.liquidation: Any = None  # LiquidationActor in scheduled mode (isolated margin), set by the runner
        #: close times of bars at which the run also holds mark prices / funding rows of this venue (set by
        #: the runner): Nautilus processes those after the bar, so an event-driven strategy's on_bar sees
        #: the state before them, while an alert at that time fires after them (see sizing_equity)
        self.late_data_ts: frozenset[int] = frozenset()
        #: start of this strategy's alert names (set by the runner): Nautilus fires alerts due at the same time in
        #: name order, and the runner names them so that strategies act in the order their event-driven twins'
        #: on_bar would run (nautilus_app/backtest.py, build_engine)
        self.alert_prefix = ""
        self._pre: dict[int, dict[str, Any]] = {}
        self._current = -1
        self._in_alert = False

    # ---- to implement ----------------------------------------------------------------------
    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        return df

    # ---- set-up ---------------------------------------------------------------------------
    def set_bars(self, series: Any) -> None:
        """The bars of ``bar_type`` the run feeds (a :class:`nautilus_app.venue.fill_timing.BarSeries`)."""
        self._series = series

    def signal_frame(self, price_precision: int) -> pd.DataFrame:
        """The populated frame (indicators + signals) for the bars given to :meth:`set_bars`."""
        df = self.populate_indicators(bar_frame(self._series, self.max_gap_ns, price_precision))
        df = self.populate_entry_trend(df)
        df = self.populate_exit_trend(df)
        n = len(df)
        for col in ("enter_long", "enter_short", "exit_long", "exit_short"):
            df[col] = df[col].fillna(False).astype(bool) if col in df else np.zeros(n, dtype=bool)
        df["exit_tag"] = _tag_column(df["exit_tag"]) if "exit_tag" in df else pd.Categorical.from_codes(
            np.zeros(n, dtype=np.int8), categories=[""])
        df["ready"] = df["ready"].fillna(False).astype(bool) if "ready" in df else np.ones(n, dtype=bool)
        return df

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.instrument_id)
        if self.instrument is None or self._series is None:
            self.log.error(f"{self.id}: no instrument or no bars handed over (set_bars); strategy does nothing")
            return
        account = self.portfolio.account(self.venue)
        self.is_cash = bool(account.is_cash_account()) if account is not None else False
        if self.is_cash and self.allow_short:
            self.log.warning("allow_short=True ignored on a CASH account (long/flat only)")
            self.allow_short = False
        prec = self.instrument.price_precision
        df = self.frame = self.signal_frame(prec)
        # compact per-bar lookups (8 bytes per bar for times/prices, 1 for flags, exit tags as codes):
        # indexing gives Python ints/floats as cheaply as lists, at a fraction of their memory
        self._ts_list = array("q", df["ts"].to_numpy(np.int64).tobytes())
        self._close = array("d", df["close"].to_numpy(np.float64).tobytes())
        self._prec = prec
        el, es = df["enter_long"].to_numpy(), df["enter_short"].to_numpy()
        xl, xs = df["exit_long"].to_numpy(), df["exit_short"].to_numpy()
        self._el, self._es, self._xl, self._xs = (bytes(a.astype(np.uint8)) for a in (el, es, xl, xs))
        tags = pd.Categorical(df["exit_tag"])
        self._tag_names = [str(c) for c in tags.categories]
        self._tag_codes = array("q", tags.codes.astype(np.int64).tobytes())
        self._ready = bytes(df["ready"].to_numpy().astype(np.uint8))
        self._idx_enter = np.flatnonzero(el | (es & self.allow_short)).tolist()
        self._idx_exit_long = np.flatnonzero(xl).tolist()
        self._idx_exit_short = np.flatnonzero(xs).tolist()
        # only what is drawn after the run stays (``plot_config`` columns, nautilus_app/plotting.py): the
        # whole frame is ~15 float columns per bar (a 5-year 1m run: ~300 MB)
        self.frame = df[["ts", *[c for c in self._plotted_columns() if c in df.columns and c != "ts"]]].copy()
        del df
        self._schedule_after(-1)

    def release_run_arrays(self) -> None:
        """Drop the per-bar lookups once the run is over (the runner calls this before writing results;
        :attr:`frame` stays for the plots)."""
        for name in ("_ts_list", "_close", "_el", "_es", "_xl", "_xs", "_tag_codes", "_ready", "_idx_enter",
                     "_idx_exit_long", "_idx_exit_short"):
            if hasattr(self, name):
                setattr(self, name, None)
        self._series = None

    def _plotted_columns(self) -> list[str]:
        cfg = getattr(type(self), "plot_config", None) or {}
        cols = list((cfg.get("main_plot") or {}).keys())
        for series in (cfg.get("subplots") or {}).values():
            cols += list((series or {}).keys())
        return list(dict.fromkeys(cols))

    # ---- scheduling -------------------------------------------------------------------------
    def _wake(self, i: int | None) -> None:
        if i is None or i >= len(self._ts_list) or i <= self._done or i in self._armed:
            return
        self._armed.add(i)
        t = self._ts_list[i]
        if t in self.late_data_ts and t - 1 > self.clock.timestamp_ns():
            self._pre_armed.add(i)
            self.clock.set_time_alert_ns(f"pre-{i}", t - 1, self._on_pre_alert)
        self.clock.set_time_alert_ns(self._alert_name(i), t, self._on_alert)

    def _alert_name(self, i: int) -> str:
        """The wake-up alert of bar ``i`` (:meth:`_on_alert` reads ``i`` back from its end)."""
        return f"{self.alert_prefix}sig-{i}"

    def _cancel_wakes(self) -> None:
        """Cancel every armed wake-up (they were chosen from a state that no longer holds)."""
        for i in self._armed:
            self.clock.cancel_timer(self._alert_name(i))
            if i in self._pre_armed:
                self.clock.cancel_timer(f"pre-{i}")
                self._pre_armed.discard(i)
            self._pre.pop(i, None)
        self._armed.clear()

    def next_wake_ts(self) -> int | None:
        """Close time (UTC ns) of the earliest bar this strategy is armed to act on (None: none armed).
        The event-by-event feed (nautilus_app/signal_feed.py) makes sure that bar reaches the engine."""
        if not self._armed:
            return None
        return self._ts_list[min(self._armed)]

    def _on_pre_alert(self, event: Any) -> None:
        """1 ns before a bar that shares its time with mark prices / funding: the unrealized PnL the
        event-driven strategy would still see on that bar."""
        i = int(event.name[4:])
        self._pre_armed.discard(i)
        venue_iids = {p.instrument_id for p in self.cache.positions_open(venue=self.venue)}
        self._pre[i] = {iid.value: self.portfolio.unrealized_pnl(iid) for iid in venue_iids}

    def sizing_equity(self, bar: Any) -> tuple[Any, Any]:
        """The account's equity as an event-driven strategy reads it in ``on_bar`` of this bar.

        At a bar that shares its close time with mark-price updates or funding settlements, the alert
        fires after Nautilus applied them; the unrealized PnL is taken from 1 ns before the bar (as the
        event-driven strategy sees it, marks being unchanged in between) and the funding settled at
        that time is taken out again."""
        equity, quote = super().sizing_equity(bar)
        pre = self._pre.get(self._current)
        if pre is None or self.is_cash:
            return equity, quote
        t = self._ts_list[self._current]
        delta = Decimal(0)
        for iid_s, before in pre.items():
            now = self.portfolio.unrealized_pnl(InstrumentId.from_str(iid_s))
            delta += (now.as_decimal() if now is not None else Decimal(0)) - (
                before.as_decimal() if before is not None else Decimal(0))
        for p in self.cache.positions(venue=self.venue):
            for adj in p.adjustments():
                if adj.ts_event == t and adj.pnl_change is not None:
                    delta += adj.pnl_change.as_decimal()
        return equity - delta, quote - delta

    @staticmethod
    def _next(idx: list[int], after: int) -> int | None:
        k = bisect.bisect_right(idx, after)
        return idx[k] if k < len(idx) else None

    def _schedule_after(self, i: int) -> None:
        """Arm the next bar on which something can happen after bar ``i``."""
        if self.has_pending_orders():
            self._wake(i + 1)  # refresh after the order resolved, as on_bar does on the next bar
            return
        if self._state_dirty:
            # our orders were filled at once (no latency): what on_bar would read on the next bar
            # (nothing else can fill before it), read now instead of waking up for it
            self._refresh_state()
        side = self.position_side()
        cands: list[int | None] = []
        if side == PositionSide.FLAT:
            start = i
            if self.last_exit_bar_index is not None and self.cooldown_bars:
                start = max(i, self.last_exit_bar_index + self.cooldown_bars - 1)
            cands.append(self._next(self._idx_enter, start))
        else:
            cands.append(self._next(self._idx_exit_long if side == PositionSide.LONG else self._idx_exit_short, i))
            if self.max_hold_bars and self.entry_bar_index is not None:
                cands.append(max(i + 1, self.entry_bar_index + self.max_hold_bars))
            if self.liquidation is not None:
                others = [c for c in cands if c is not None]
                cands.append(self.liquidation.first_check_index(self, i + 1, min(others) if others else None))
        nxt = [c for c in cands if c is not None]
        if nxt:
            self._wake(min(nxt))

    def _on_alert(self, event: Any) -> None:
        i = int(event.name.rsplit("-", 1)[1])
        self._armed.discard(i)
        if i <= self._done:
            return
        self._in_alert = True
        try:
            self._process(i)
        finally:
            self._in_alert = False

    def _process(self, i: int) -> None:
        self._done = i
        self.wakeups += 1
        self.bar_index = i
        self._current = i
        if self._state_dirty:
            self._refresh_state()
        self._act(i, self._side)
        # the venue's liquidation check of this bar, after the strategy (as the per-bar actor runs)
        if self.liquidation is not None and self.liquidation.first_check_index(self, i, i) == i:
            n = len(self.liquidation.records)
            self.liquidation.check_bar(self, i)
            if len(self.liquidation.records) > n:
                # a liquidation stop, triggered by the next bar: wake there (the order is only accepted
                # after this callback, so _schedule_after cannot see it yet)
                self._wake(i + 1)
        self._schedule_after(i)
        self._pre.pop(i, None)

    def on_order_filled(self, event: Any) -> None:
        super().on_order_filled(event)
        if self._series is not None and not self._in_alert:  # a liquidation, an order the latency model released
            if event.order_type == OrderType.MARKET:  # filled when the command was processed: next bar's on_bar
                if (self._done >= 0 and event.ts_event == self._ts_list[self._done]
                        and not self.has_pending_orders()):
                    # our own order of this wake-up, filled at once and nothing else in flight: the state
                    # the next bar's on_bar would read is known now, so arm the next bar that can act on it
                    # (the next bar itself if it can) instead of waking on the next bar to find out; the
                    # wake-ups armed at the end of the wake-up saw the order unfilled and are dropped
                    self._cancel_wakes()
                    self._refresh_state()
                    self._schedule_after(self._done)
                    return
                self._wake(bisect.bisect_right(self._ts_list, event.ts_event))
            else:  # a resting order triggered while Nautilus matched the bar closing now: this bar's on_bar
                self._wake(bisect.bisect_left(self._ts_list, event.ts_event))

    # ---- the rules --------------------------------------------------------------------------
    def _act(self, i: int, side: PositionSide) -> None:
        if self.trading_blocked or not self._ready[i]:
            return
        if side != PositionSide.FLAT:
            sig = self._xl[i] if side == PositionSide.LONG else self._xs[i]
            tag = self._tag_names[self._tag_codes[i]]
            chosen = None
            if sig and tag in self.exit_tags_before_max_hold:
                chosen = tag
            elif (self.max_hold_bars and self.entry_bar_index is not None
                  and self.bars_held() >= self.max_hold_bars):
                chosen = "MAX_HOLD"
            elif sig:
                chosen = tag
            if chosen is None:
                return
            self.exit_position(chosen)
            if not self.reverse_on_exit:
                return
        elif self.last_exit_bar_index is not None and i - self.last_exit_bar_index < self.cooldown_bars:
            return
        if self._el[i] and side != PositionSide.LONG:
            self.enter(OrderSide.BUY, self._bar(i))
        elif self._es[i] and side != PositionSide.SHORT and self.allow_short:
            self.enter(OrderSide.SELL, self._bar(i))

    def _bar(self, i: int) -> Any:
        """Bar ``i`` as Nautilus holds it (the cache keeps the latest bar of every bar type, subscribed or
        not; its decimal close is what ``on_bar`` would see), else one built from the float close."""
        bar = self.cache.bar(self.bar_type)
        if bar is not None and bar.ts_event == self._ts_list[i]:
            return bar
        return _Bar(Price(self._close[i], self._prec))

    def enter(self, side: OrderSide, bar: Any, fraction: float | None = None) -> bool:
        """``BarStrategy.enter``, or a market order of :attr:`fixed_quantity` when set."""
        if self.fixed_quantity is None:
            return super().enter(side, bar, fraction)
        if self.trading_blocked or (side == OrderSide.SELL and not self.allow_short):
            return False
        qty = self.instrument.make_qty(Decimal(self.fixed_quantity))
        self.submit_order(self.order_factory.market(self.instrument_id, side, qty, time_in_force=TimeInForce.GTC))
        self._state_dirty = True
        self.entry_bar_index = self.bar_index
        return True

    def on_signal_bar(self, bar: Any, side: PositionSide) -> None:  # pragma: no cover - no bars subscribed
        raise NotImplementedError


def check_no_lookahead(strategy: SignalStrategy, df: pd.DataFrame, cuts: list[int]) -> None:
    """Raise ``AssertionError`` if a signal in row ``t`` changes when rows after ``t`` are removed.

    ``df`` is the frame given to ``populate_indicators`` (``strategy.signal_frame`` builds it);
    each cut recomputes the signals on ``df[:cut]`` and compares them with the full run's rows.
    """
    def signals(frame: pd.DataFrame) -> pd.DataFrame:
        out = strategy.populate_exit_trend(strategy.populate_entry_trend(strategy.populate_indicators(frame.copy())))
        cols = [c for c in ("enter_long", "enter_short", "exit_long", "exit_short", "exit_tag") if c in out]
        return out[cols]

    full = signals(df)
    for cut in cuts:
        part = signals(df.iloc[:cut].reset_index(drop=True))
        pd.testing.assert_frame_equal(part.reset_index(drop=True), full.iloc[:cut].reset_index(drop=True),
                                      check_exact=True, obj=f"signals on the first {cut} rows")
