"""Source-independent parsing helpers: exact decimals, timestamp units, row validation.

Conventions used across :mod:`catalog`:

* Timestamps are ``int64`` nanoseconds since the Unix epoch (UTC).
* Prices, sizes and volumes travel as Arrow ``decimal128(38, 16)`` arrays (exact; 16 is
  Nautilus's maximum precision) until they are written.
* A "bar table" is a ``pyarrow.Table`` with columns ``ts`` (int64 ns, bar CLOSE time),
  ``open``, ``high``, ``low``, ``close``, ``volume`` (decimal128(38, 16)).
* Row numbers in errors are 1-based lines of the source file (CSV header included) or 1-based
  rows of a feather file; ``lines[i]`` maps table row ``i`` to that number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.errors import DataImportError

DEC = pa.decimal128(38, 16)
PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")

_US_MIN = 10**14  # 1e14 ms is year 5138, 1e14 µs is 1973: anything >= is µs
_NS_MIN = 10**17
_MS_MIN = 10**11  # 1973-03-03 in ms: smaller values are not ms/µs/ns epoch times


def epoch_to_ns(values: np.ndarray, path: str, lines: np.ndarray) -> np.ndarray:
    """Convert Binance epoch times to ns, deciding the unit PER VALUE.

    ``values`` int64 in ms (Binance before 2025 and futures), µs (spot from 2025-01-01) or ns.
    Raises :class:`DataImportError` for values too small to be ms since 1973.
    """
    v = np.asarray(values, dtype=np.int64)
    bad = np.flatnonzero(v < _MS_MIN)
    if bad.size:
        i = int(bad[0])
        raise DataImportError(path, f"timestamp {int(v[i])} is not an epoch time in ms/µs/ns", int(lines[i]))
    return np.where(v >= _NS_MIN, v, np.where(v >= _US_MIN, v * 1_000, v * 1_000_000))


def decimals_needed(x: np.ndarray, max_decimals: int = 16) -> np.ndarray:
    """Per value, the fewest decimals ``d`` such that the float64 is exactly ``round(x, d)``.

    Exact test: ``rint(x * 10**d) / 10**d == x`` (correctly rounded division), so a value never
    gets fewer decimals than its shortest representation needs. Returns int array
    (``max_decimals + 1`` for values needing more).
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, max_decimals + 1, dtype=np.int64)
    todo = np.ones(x.shape, dtype=bool)
    for d in range(max_decimals + 1):
        if not todo.any():
            break
        scale = 10.0**d
        with np.errstate(over="ignore", invalid="ignore"):
            ok = todo & (np.rint(x * scale) / scale == x)
        out[ok] = d
        todo &= ~ok
    return out


def floats_to_decimal(x: np.ndarray, precision: int, path: str, column: str, lines: np.ndarray) -> pa.Array:
    """Exact float64 -> decimal128(38, 16) conversion at ``precision`` decimals.

    Raises :class:`DataImportError` naming the first row that is NaN/inf or needs more than
    ``precision`` decimals (nothing is rounded away).
    """
    x = np.asarray(x, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        i = int(bad[0])
        raise DataImportError(path, f"column {column!r}: non-numeric value {x[i]!r}", int(lines[i]))
    need = decimals_needed(x, 16)
    bad = np.flatnonzero(need > precision)
    if bad.size:
        i = int(bad[0])
        raise DataImportError(
            path,
            f"column {column!r}: value {x[i]!r} needs {int(need[i])} decimals, more than the instrument "
            f"precision {precision} (see core/instruments.py); refusing to truncate",
            int(lines[i]),
        )
    scaled = np.rint(x * 10.0**precision)
    if np.any(np.abs(scaled) >= 2**53):
        i = int(np.flatnonzero(np.abs(scaled) >= 2**53)[0])
        raise DataImportError(path, f"column {column!r}: value {x[i]!r} too large for exact conversion", int(lines[i]))
    ints = scaled.astype(np.int64)
    buf = np.empty(2 * len(ints), dtype=np.int64)
    buf[0::2] = ints
    buf[1::2] = np.where(ints < 0, -1, 0)
    arr = pa.Array.from_buffers(pa.decimal128(38, precision), len(ints), [None, pa.py_buffer(buf.tobytes())])
    return arr.cast(DEC)


def check_precision(arr: pa.Array, precision: int, path: str, column: str, lines: np.ndarray) -> None:
    """Raise :class:`DataImportError` on the first value of a decimal128 array with more than
    ``precision`` decimals (the value would be truncated at that precision)."""
    arr = arr.cast(DEC) if arr.type != DEC else arr
    rounded = arr.cast(pa.decimal128(38, precision), safe=False).cast(DEC)
    diff = pc.not_equal(rounded, arr)
    if pc.any(diff).as_py():
        i = int(np.flatnonzero(diff.to_numpy(zero_copy_only=False))[0])
        raise DataImportError(
            path,
            f"column {column!r}: value {arr[i].as_py()} has more than {precision} decimals (the instrument "
            f"precision, see core/instruments.py); refusing to truncate",
            int(lines[i]),
        )


def check_no_nulls(table: pa.Table, columns: Sequence[str], path: str, lines: np.ndarray) -> None:
    """Raise :class:`DataImportError` naming file, 1-based row and column at the first empty or
    NaN value (Arrow's CSV reader turns ``""``, ``nan``, ``NaN``, ``NA``, ``null`` ... into nulls)."""
    for col in columns:
        if col in table.column_names and table[col].null_count:
            i = int(np.flatnonzero(table[col].is_null().to_numpy(zero_copy_only=False))[0])
            raise DataImportError(path, f"column {col!r}: empty or NaN value (a number is required)", int(lines[i]))


def _first_true(mask: pa.Array) -> int | None:
    arr = mask.to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(arr)
    return int(idx[0]) if idx.size else None


def validate_bars(table: pa.Table, path: str, lines: np.ndarray, price_precision: int, size_precision: int) -> None:
    """Check a bar table: precisions fit, prices > 0, volume >= 0, low <= open/close <= high,
    timestamps strictly increasing. Raises :class:`DataImportError` on the first bad row."""
    check_no_nulls(table, BAR_COLUMNS, path, lines)
    for col in PRICE_COLUMNS:
        check_precision(table[col].combine_chunks(), price_precision, path, col, lines)
    check_precision(table["volume"].combine_chunks(), size_precision, path, "volume", lines)
    zero = pa.scalar(0, DEC)
    o, h, lo, c, v = (table[k].combine_chunks() for k in ("open", "high", "low", "close", "volume"))
    checks = [
        (pc.less_equal(lo, zero), "price <= 0 (low)"),
        (pc.less(v, zero), "negative volume"),
        (pc.less(h, lo), "high < low"),
        (pc.or_(pc.greater(o, h), pc.less(o, lo)), "open outside [low, high]"),
        (pc.or_(pc.greater(c, h), pc.less(c, lo)), "close outside [low, high]"),
    ]
    for mask, problem in checks:
        i = _first_true(mask)
        if i is not None:
            raise DataImportError(
                path,
                f"{problem}: open={o[i].as_py()} high={h[i].as_py()} low={lo[i].as_py()} close={c[i].as_py()} "
                f"volume={v[i].as_py()}",
                int(lines[i]),
            )
    check_increasing(table["ts"].to_numpy(), path, lines)


def check_increasing(ts: np.ndarray, path: str, lines: np.ndarray) -> None:
    """Raise :class:`DataImportError` at the first timestamp that is not after the previous one."""
    ts = np.asarray(ts)
    if ts.size > 1:
        bad = np.flatnonzero(np.diff(ts) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise DataImportError(
                path, f"timestamps not strictly increasing ({int(ts[i])} ns after {int(ts[i - 1])} ns)", int(lines[i])
            )


def bar_table(ts_ns: np.ndarray, columns: dict[str, pa.Array]) -> pa.Table:
    """Assemble a bar table (``ts`` int64 ns + five decimal128(38, 16) columns)."""
    data = {"ts": pa.array(np.asarray(ts_ns, dtype=np.int64), pa.int64())}
    for k in ("open", "high", "low", "close", "volume"):
        data[k] = columns[k].cast(DEC) if columns[k].type != DEC else columns[k]
    return pa.table(data)


def snap_funding_times(ts_ns: np.ndarray, path: str, lines: np.ndarray, grid_ns: int = 3_600_000_000_000,
                       tolerance_ns: int = 60_000_000_000) -> np.ndarray:
    """Snap funding times to the hour grid (Binance settles on the hour; real rows are 1-15 ms off).

    Raises :class:`DataImportError` for a row more than ``tolerance_ns`` (1 min) off the grid.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    snapped = ((ts + grid_ns // 2) // grid_ns) * grid_ns
    bad = np.flatnonzero(np.abs(ts - snapped) > tolerance_ns)
    if bad.size:
        i = int(bad[0])
        raise DataImportError(path, f"funding time {int(ts[i])} ns is more than 1 min off the hour grid", int(lines[i]))
    return snapped


STANDARD_FUNDING_MINUTES = (60, 120, 240, 480)


def funding_intervals(ts_ns: Sequence[int] | np.ndarray, hint_minutes: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Funding interval (MINUTES) of each settlement from the gaps between consecutive times.

    ``ts_ns`` sorted, unique, on the hour grid. For row i the interval is the gap to the
    previous settlement (the period it settles); for the first row, or when that gap is not a
    Binance schedule (1/2/4/8 h, e.g. a missing row), the gap to the next row; failing that the
    source's own value (``hint_minutes``, e.g. fundingRate CSV ``funding_interval_hours*60``) or the
    largest standard interval whose grid the time lies on. Returns ``(minutes uint64, warnings)``;
    warnings list rows where the derived value disagrees with the hint.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    n = ts.size
    out = np.zeros(n, dtype=np.uint64)
    warnings: list[str] = []
    gaps = np.diff(ts) // 60_000_000_000 if n > 1 else np.array([], dtype=np.int64)
    std = set(STANDARD_FUNDING_MINUTES)
    for i in range(n):
        prev_gap = int(gaps[i - 1]) if i > 0 else None
        next_gap = int(gaps[i]) if i < n - 1 else None
        hint = int(hint_minutes[i]) if hint_minutes is not None and hint_minutes[i] > 0 else None
        if prev_gap in std:
            val = prev_gap
        elif next_gap in std:
            val = next_gap
        elif hint is not None:
            val = hint
        else:
            minute = int(ts[i] // 60_000_000_000)
            val = max(m for m in STANDARD_FUNDING_MINUTES if minute % m == 0) if minute % 60 == 0 else 60
        if hint is not None and hint != val:
            warnings.append(f"funding at {int(ts[i])} ns: interval from gaps {val} min != source {hint} min")
        out[i] = val
    return out, warnings
