"""Market data for the app: bars from the catalog, server-side resampling and downsampling, indicators.

Bars are read with :func:`catalog.reader.read_columns` (pyarrow, no Nautilus objects) and cached in
memory as float64 numpy arrays per (catalog root, bar type). Catalog bars are stamped at their
**close** (``ts_init``); candles here are labelled by their **open** time (``close - step``), as on
exchanges and in ccxt/freqtrade.

Higher timeframes are built from the stored 1-minute (or any time) bars, never read from elsewhere:
a candle of timeframe ``tf`` gathers the bars whose open time falls in ``[k*tf, (k+1)*tf)`` (UTC
epoch-aligned, so 1d candles start at 00:00 UTC) with open = first open, high = max, low = min,
close = last close, volume = sum. A candle with missing minutes (a data gap) is built from the
minutes present; ``bars`` in the output counts them.

Long series (equity, drawdown) are thinned for plotting with ``tsdownsample``'s MinMax algorithm
(the aggregation library behind plotly-resampler; plotly-resampler itself requires plotly < 7):
each of ``n/2`` equal-count bins keeps its minimum and its maximum sample, so peaks, troughs and the
maximum drawdown survive; the first and last samples are always kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from catalog.inventory import bar_interval_ns
from catalog.reader import bar_files, read_columns

#: Timeframes offered by the data explorer and the API, in nanoseconds.
TIMEFRAMES: dict[str, int] = {
    "1m": 60_000_000_000, "3m": 180_000_000_000, "5m": 300_000_000_000, "15m": 900_000_000_000,
    "30m": 1_800_000_000_000, "1h": 3_600_000_000_000, "2h": 7_200_000_000_000, "4h": 14_400_000_000_000,
    "6h": 21_600_000_000_000, "8h": 28_800_000_000_000, "12h": 43_200_000_000_000, "1d": 86_400_000_000_000,
    "1w": 7 * 86_400_000_000_000,
}
BAR_COLUMNS = ["open", "high", "low", "close", "volume"]


def _to_float(col: pa.ChunkedArray) -> np.ndarray:
    """float64 values of a numeric column; decimal128 is converted from its two 64-bit words
    (``hi * 2**64 + lo) / 10**scale``), 2x faster than Arrow's cast and exact to ~1e-16 relative."""
    if pa.types.is_decimal128(col.type) and col.null_count == 0:
        scale = col.type.scale
        parts = []
        for ch in col.chunks:
            words = np.frombuffer(ch.buffers()[1], dtype=np.uint64)[ch.offset * 2:(ch.offset + len(ch)) * 2]
            lo = words[0::2].astype(np.float64)
            hi = words[1::2].view(np.int64).astype(np.float64)
            parts.append((hi * 18446744073709551616.0 + lo) / 10.0 ** scale)
        return np.concatenate(parts) if parts else np.array([], dtype=np.float64)
    if pa.types.is_decimal(col.type):
        col = pc.cast(col, pa.float64(), safe=False)
    return col.to_numpy().astype(np.float64, copy=False)


def _to_ns(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.int64())
    return col.to_numpy().astype(np.int64, copy=False)


class BarCache:
    """Whole bar series per (catalog root, bar type) as numpy arrays, LRU-cached.

    The cache key includes the names and sizes of the Parquet files, so an import invalidates it.
    """

    def __init__(self, max_series: int = 6) -> None:
        self.max_series = max_series
        self._data: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, root: Path, bar_type: str) -> dict[str, np.ndarray]:
        """``{"ts": close time int64 ns, "open".."volume": float64}``, sorted by time, duplicates dropped.

        Empty arrays when the catalog has no such bars.
        """
        files = bar_files(Path(root), bar_type)
        key = (str(root), bar_type, tuple((f.name, f.stat().st_size) for f in files))
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        table = read_columns(Path(root), "bars", bar_type, ["ts_init", *BAR_COLUMNS])
        out = {"ts": _to_ns(table.column("ts_init"))}
        for c in BAR_COLUMNS:
            out[c] = _to_float(table.column(c)) if table.num_rows else np.array([], dtype=np.float64)
        ts = out["ts"]
        if ts.size > 1 and np.any(np.diff(ts) <= 0):
            order = np.argsort(ts, kind="stable")
            keep = np.ones(ts.size, dtype=bool)
            sorted_ts = ts[order]
            keep[:-1] = sorted_ts[:-1] != sorted_ts[1:]  # keep the last of equal timestamps
            idx = order[keep]
            out = {k: v[idx] for k, v in out.items()}
        with self._lock:
            self._data[key] = out
            while len(self._data) > self.max_series:
                self._data.popitem(last=False)
        return out


BARS = BarCache()


def window(arrays: dict[str, np.ndarray], start_ns: int | None, end_ns: int | None) -> dict[str, np.ndarray]:
    """Rows with ``start_ns <= ts < end_ns`` (None = unbounded) of sorted column arrays keyed like ``ts``."""
    ts = arrays["ts"]
    i0 = 0 if start_ns is None else int(np.searchsorted(ts, start_ns, side="left"))
    i1 = ts.size if end_ns is None else int(np.searchsorted(ts, end_ns, side="left"))
    return {k: v[i0:i1] for k, v in arrays.items()}


def resample(bars: dict[str, np.ndarray], bar_ns: int, tf_ns: int) -> pd.DataFrame:
    """Aggregate bars (close-stamped, step ``bar_ns``) into candles of ``tf_ns`` labelled by open time.

    Returns a DataFrame with ``open_time`` (UTC), ``open``, ``high``, ``low``, ``close``, ``volume``,
    ``bars`` (source bars per candle) and ``close_ts`` (int64 ns of the last source bar's close).

    Raises:
        ValueError: ``tf_ns`` is not a positive multiple of ``bar_ns``.
    """
    if tf_ns <= 0 or tf_ns % bar_ns:
        raise ValueError(f"timeframe of {tf_ns} ns is not a multiple of the stored bar step {bar_ns} ns")
    ts = bars["ts"]
    cols = ["open_time", "open", "high", "low", "close", "volume", "bars", "close_ts"]
    if ts.size == 0:
        return pd.DataFrame(columns=cols)
    open_ns = ts - bar_ns
    bucket = open_ns // tf_ns
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], ts.size]
    return pd.DataFrame({
        "open_time": pd.to_datetime(bucket[starts] * tf_ns, unit="ns", utc=True),
        "open": bars["open"][starts],
        "high": np.maximum.reduceat(bars["high"], starts),
        "low": np.minimum.reduceat(bars["low"], starts),
        "close": bars["close"][ends - 1],
        "volume": np.add.reduceat(bars["volume"], starts),
        "bars": (ends - starts).astype(np.int64),
        "close_ts": ts[ends - 1],
    }, columns=cols)


def auto_timeframe(span_ns: int, bar_ns: int, max_candles: int = 1500) -> tuple[str, int]:
    """Smallest timeframe (a multiple of ``bar_ns``) showing ``span_ns`` in at most ``max_candles`` candles."""
    for name, tf in TIMEFRAMES.items():
        if tf >= bar_ns and tf % bar_ns == 0 and span_ns / tf <= max_candles:
            return name, tf
    return "1w", TIMEFRAMES["1w"]


def minmax_indices(y: np.ndarray, n_out: int) -> np.ndarray:
    """Indices of a MinMax-downsampled series (``tsdownsample``): at most ``n_out`` points (+ ends).

    Keeps the min and max of each of ``n_out // 2`` equal-count bins and always the first and last
    sample. Returns all indices when ``len(y) <= n_out``. NaNs are treated as missing.
    """
    n = y.size
    if n <= n_out:
        return np.arange(n)
    from tsdownsample import MinMaxDownsampler, NaNMinMaxDownsampler

    yy = np.ascontiguousarray(y, dtype=np.float64)
    ds = NaNMinMaxDownsampler() if np.isnan(yy).any() else MinMaxDownsampler()
    idx = np.asarray(ds.downsample(yy, n_out=max(n_out - (n_out % 2), 4)), dtype=np.int64)
    return np.unique(np.r_[0, idx, n - 1])


def downsample_xy(x_ns: np.ndarray, ys: dict[str, np.ndarray], n_out: int,
                  x0: int | None = None, x1: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Downsample several series sharing the x axis, optionally inside ``[x0, x1]`` (ns, inclusive).

    Each series is thinned on its own (min/max kept) and the union of indices is used for all, so
    every returned series has values at the same x. Returns (x, {name: y}, number of raw points in
    the window).
    """
    i0 = 0 if x0 is None else max(int(np.searchsorted(x_ns, x0, side="left")) - 1, 0)
    i1 = x_ns.size if x1 is None else min(int(np.searchsorted(x_ns, x1, side="right")) + 1, x_ns.size)
    raw = i1 - i0
    per = max(n_out // max(len(ys), 1), 4)
    idx_sets = [minmax_indices(y[i0:i1], per) for y in ys.values()]
    idx = np.unique(np.concatenate(idx_sets)) + i0 if idx_sets else np.arange(i0, i1)
    return x_ns[idx], {k: v[idx] for k, v in ys.items()}, raw


# --------------------------------------------------------------------------- indicators


def _segments(ts: np.ndarray, bar_ns: int, max_gap_bars: int) -> np.ndarray:
    """Segment id per bar: a new segment starts where consecutive bars are more than
    ``max_gap_bars`` steps apart (the strategies' gap rule resets their indicators there)."""
    if max_gap_bars <= 0 or ts.size < 2:
        return np.zeros(ts.size, dtype=np.int64)
    return np.r_[0, np.cumsum(np.diff(ts) > max_gap_bars * bar_ns)].astype(np.int64)


def ema_nautilus(close: np.ndarray, period: int, seg: np.ndarray | None = None) -> np.ndarray:
    """EMA as Nautilus 2.0.0rc7 computes it: NaN for the first ``period - 1`` bars, the SMA of the
    first ``period`` closes at bar ``period - 1``, then ``ema = a*close + (1-a)*ema``, ``a = 2/(period+1)``
    (strategies/ema_cross.py). Restarted at every segment start."""
    out = np.full(close.size, np.nan)
    seg = np.zeros(close.size, dtype=np.int64) if seg is None else seg
    bounds = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        c = close[a:b]
        if c.size < period:
            continue
        seeded = c[period - 1:].copy()
        seeded[0] = c[:period].mean()
        out[a + period - 1:b] = pd.Series(seeded).ewm(alpha=2.0 / (period + 1), adjust=False).mean().to_numpy()
    return out


def sma(close: np.ndarray, period: int, seg: np.ndarray | None = None) -> np.ndarray:
    """Simple moving average of the last ``period`` closes (NaN until ``period`` bars), per segment."""
    s = pd.Series(close)
    if seg is None:
        return s.rolling(period).mean().to_numpy()
    return s.groupby(seg).transform(lambda x: x.rolling(period).mean()).to_numpy()


def bollinger(close: np.ndarray, period: int, k: float, seg: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(upper, middle, lower): SMA(period) +/- k x population std (ddof=0) of the last ``period`` closes,
    as Nautilus's ``BollingerBands`` fed closes (strategies/mean_reversion.py)."""
    s = pd.Series(close)
    if seg is None:
        mid = s.rolling(period).mean()
        sd = s.rolling(period).std(ddof=0)
    else:
        g = s.groupby(seg)
        mid = g.transform(lambda x: x.rolling(period).mean())
        sd = g.transform(lambda x: x.rolling(period).std(ddof=0))
    return (mid + k * sd).to_numpy(), mid.to_numpy(), (mid - k * sd).to_numpy()


def strategy_overlays(name: str, params: dict, bars: dict[str, np.ndarray], bar_ns: int) -> dict[str, np.ndarray]:
    """Price-scale indicators of a registered strategy, recomputed from the bars it traded.

    Returns ``{label: values aligned with bars["ts"]}``: ``ema_cross`` -> EMA(fast), EMA(slow);
    ``trend_following`` -> SMA(ma_fast), SMA(ma_slow); ``mean_reversion`` -> Bollinger upper/middle/
    lower and the trend SMA; ``buy_and_hold`` -> nothing. Oscillators (RSI, ADX, ATR) are not on the
    price scale and are not drawn. Indicators restart after gaps longer than ``max_gap_bars`` as the
    strategies do. Recomputed here with the formulas documented in each strategy module (a test
    checks them against Nautilus's own indicator classes), not recorded during the run.
    """
    from nautilus_app.config import strategy_parameters

    if not name:  # a strategy given by strategy_path: no known overlays
        return {}
    try:
        p = {**strategy_parameters(name), **(params or {})}
    except (KeyError, ValueError):  # not a strategy on disk any more (StrategyLoadError is a ValueError)
        return {}
    close = bars["close"]
    seg = _segments(bars["ts"], bar_ns, int(p.get("max_gap_bars") or 0))
    one_segment = seg.size == 0 or seg[-1] == 0
    sg = None if one_segment else seg
    if name == "ema_cross":
        f, s = int(p["fast_period"]), int(p["slow_period"])
        return {f"EMA({f})": ema_nautilus(close, f, sg), f"EMA({s})": ema_nautilus(close, s, sg)}
    if name == "trend_following":
        f, s = int(p["ma_fast"]), int(p["ma_slow"])
        return {f"SMA({f})": sma(close, f, sg), f"SMA({s})": sma(close, s, sg)}
    if name == "mean_reversion":
        n, k, t = int(p["bb_period"]), float(p["bb_k"]), int(p["trend_ma_period"])
        up, mid, lo = bollinger(close, n, k, sg)
        return {f"BB({n},{k:g}) upper": up, f"BB({n},{k:g}) middle": mid, f"BB({n},{k:g}) lower": lo,
                f"trend SMA({t})": sma(close, t, sg)}
    return {}


def bar_step_ns(bar_type: str) -> int:
    """Step of a time bar type in ns (1-MINUTE -> 60e9).

    Raises:
        ValueError: not a time bar type.
    """
    step = bar_interval_ns(bar_type)
    if step is None:
        raise ValueError(f"{bar_type!r} is not a time bar type (e.g. BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL)")
    return step
