"""Import a user's own OHLCV CSV files (``nautilus-app import-csv``) into the catalog.

Default layout: a header row and the columns ``timestamp,open,high,low,close,volume`` (any
other columns are ignored). Options:

* ``columns``: our field -> the file's column, e.g. ``{"timestamp": "Date", "volume": "Vol"}``
  (fields not given keep their default name); without a header row (``header=False``) the
  values are 1-based column numbers (default 1..6 in the order above).
* ``time_unit``: ``"s"``, ``"ms"`` (default), ``"us"``, ``"ns"`` - integer epoch times, UTC - or
  ``"iso"``: date/time strings (``2023-07-01 00:05:00``, ``2023-07-01T00:05:00+02:00``, ...);
  strings without an offset are local times in ``timezone`` (default ``"UTC"``, any IANA name;
  an ambiguous or non-existent local time at a DST change is an error naming the row).
* ``timestamp_is``: ``"open"`` (default; the bar's open time, as Binance/freqtrade) or
  ``"close"`` (the bar's close time; Binance-style ``close_time`` = next open - 1 ms/µs/ns is
  accepted and snapped up).
* ``symbol`` (any Binance symbol, e.g. ``SOLUSDT``), ``market`` (``spot`` or ``um``),
  ``interval`` (``1m``, ``5m``, ``1h`` ...): the bar type is
  ``SOLUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL`` (spot) or ``SOLUSDT-PERP.BINANCE_USDM-...`` (um).
* ``delimiter`` (default ``,``).

Stored like every importer's bars: ``ts_event = ts_init`` = bar close (ns), prices and volumes
as exact decimals at the instrument's precisions (:mod:`catalog.instrument_meta`: instruments.toml,
built-in table, cached exchange metadata, else inferred from the file = the finest decimals in
it; reported in ``report.notes``). Checks (errors name file, 1-based line (header = line 1),
column and value): every value parses (numbers exactly: no float rounding; at most 16 decimals),
timestamps plausible for the unit (1973..2200), on the interval grid, strictly increasing within
a file; prices > 0, volume >= 0, low <= open/close <= high; values fit the instrument precision.
All files are read and checked before anything is written (nothing already stored is touched by
a refused import); rows already in the catalog are skipped, and among several files the first
file wins on equal timestamps.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from catalog.common import DEC, bar_table, validate_bars
from catalog.errors import DataImportError
from catalog.store import ensure_catalog_root
from catalog.writer import ImportReport, write_bars, write_instruments
from core import instruments as ins

FIELDS = ("timestamp", "open", "high", "low", "close", "volume")
TIME_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_MIN_NS = 100_000_000 * 1_000_000_000  # 1973-03-03
_MAX_NS = 7_258_118_400 * 1_000_000_000  # 2200-01-01


def _column_map(columns: dict[str, str] | None, header: bool) -> dict[str, str]:
    """Our field -> the name of the Arrow column holding it."""
    columns = dict(columns or {})
    unknown = set(columns) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown column mapping key(s) {sorted(unknown)}; fields are {list(FIELDS)}")
    out = {}
    for i, f in enumerate(FIELDS):
        v = str(columns.get(f, f if header else i + 1)).strip()
        if not header:
            if not v.isdigit() or int(v) < 1:
                raise ValueError(f"without a header row, columns are 1-based numbers: {f}={v!r}")
            v = f"f{int(v) - 1}"
        out[f] = v
    if len(set(out.values())) != len(out):
        raise ValueError(f"two fields mapped to the same column: {columns}")
    return out


def _line_numbers(data: bytes, header: bool, n: int) -> np.ndarray:
    """1-based line numbers of the ``n`` data rows (blank lines skipped, as Arrow does)."""
    lines = np.arange(n, dtype=np.int64) + 1 + int(header)
    if b"\n\n" in data or b"\n\r\n" in data or data.startswith((b"\n", b"\r\n")):
        nums = [i + 1 for i, line in enumerate(data.split(b"\n")) if line.strip()]
        nums = nums[int(header):]
        if len(nums) == n:
            lines = np.array(nums, dtype=np.int64)
    return lines


def _diagnose(data: bytes, where: str, cmap: dict[str, str], header: bool, time_unit: str, delimiter: str,
              fallback: str) -> DataImportError:
    """The first bad row/column/value, found with the csv module (slow path, after a failure)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", "replace")), delimiter=delimiter)
    idx: dict[str, int] = {}
    for lineno, row in enumerate(reader, start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if not idx:
            if header:
                names = [c.strip() for c in row]
                idx = {f: names.index(c) for f, c in cmap.items() if c in names}
                continue
            idx = {f: int(c[1:]) for f, c in cmap.items()}
        for f, i in idx.items():
            if i >= len(row):
                return DataImportError(where, f"has {len(row)} columns, column {_user(cmap, f, header)} is missing", lineno)
            val = row[i].strip()
            if f == "timestamp":
                if time_unit != "iso":
                    try:
                        int(val)
                    except ValueError:
                        return DataImportError(where, f"column {_user(cmap, f, header)}: {val!r} is not an integer "
                                               f"epoch time in {time_unit} (use --time-unit iso for date strings)", lineno)
                continue
            try:
                d = Decimal(val)
            except InvalidOperation:
                return DataImportError(where, f"column {_user(cmap, f, header)}: non-numeric value {val!r}", lineno)
            if not d.is_finite():
                return DataImportError(where, f"column {_user(cmap, f, header)}: non-finite value {val!r}", lineno)
            if -int(d.as_tuple().exponent) > 16:  # type: ignore[operator]
                return DataImportError(where, f"column {_user(cmap, f, header)}: {val!r} has more than 16 decimals",
                                       lineno)
    return DataImportError(where, f"CSV parse error: {fallback}")


def _user(cmap: dict[str, str], field: str, header: bool) -> str:
    """How the user calls our field's column: ``'Close'`` or ``#5``."""
    c = cmap[field]
    return repr(c) if header else f"#{int(c[1:]) + 1} ({field})"


def _timestamps(raw: pa.ChunkedArray, where: str, lines: np.ndarray, field: str, time_unit: str,
                timezone: str) -> np.ndarray:
    """Timestamp column -> int64 ns UTC (checks described in the module docstring)."""
    if time_unit == "iso":
        s = pd.Series(raw.to_pylist(), dtype="object")
        parsed = pd.to_datetime(s, errors="coerce", format="ISO8601", utc=False)
        if parsed.isna().any():
            i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise DataImportError(where, f"column {field}: {s.iloc[i]!r} is not an ISO date/time", int(lines[i]))
        if parsed.dtype == object:  # mixed offsets / naive and aware
            aware = [getattr(x, "tzinfo", None) is not None for x in parsed]
            if any(aware) and not all(aware):
                i = aware.index(not aware[0])
                raise DataImportError(where, f"column {field}: {s.iloc[i]!r} mixes times with and without a UTC "
                                      "offset", int(lines[i]))
            parsed = pd.to_datetime(parsed, utc=True)
        idx = pd.DatetimeIndex(parsed)
        if idx.tz is None:
            idx = idx.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
            if idx.hasnans:
                i = int(np.flatnonzero(idx.isna())[0])
                raise DataImportError(where, f"column {field}: local time {s.iloc[i]!r} is ambiguous or does not exist "
                                      f"in {timezone} (DST change); give times with a UTC offset", int(lines[i]))
        ns = idx.tz_convert("UTC").as_unit("ns").asi8.astype(np.int64)
    else:
        v = raw.to_numpy().astype(np.int64)
        big = np.flatnonzero(np.abs(v) > np.iinfo(np.int64).max // TIME_UNITS[time_unit])
        if big.size:
            i = int(big[0])
            raise DataImportError(where, f"column {field}: {int(v[i])} is too large for an epoch time in {time_unit}",
                                  int(lines[i]))
        ns = v * TIME_UNITS[time_unit]
    bad = np.flatnonzero((ns < _MIN_NS) | (ns >= _MAX_NS))
    if bad.size:
        i = int(bad[0])
        shown = raw[i].as_py()
        raise DataImportError(where, f"column {field}: {shown!r} is {pd.Timestamp(int(ns[i]), tz='UTC')} as "
                              f"{'an ISO time' if time_unit == 'iso' else 'epoch ' + time_unit}: outside 1973..2200 "
                              "(wrong --time-unit?)", int(lines[i]))
    return ns


def read_csv_bars(path: str | Path, *, interval: str = "1m", columns: dict[str, str] | None = None,
                  time_unit: str = "ms", timezone: str = "UTC", timestamp_is: str = "open",
                  delimiter: str = ",", header: bool = True) -> tuple[pa.Table, np.ndarray]:
    """Parse one CSV file into ``(bar table, lines)`` (see :mod:`catalog.common`: ``ts`` = bar
    close ns, decimal128(38, 16) prices/volume; ``lines`` = 1-based file lines). Checks parsing,
    timestamps, grid and order, not precision/OHLC (:func:`catalog.common.validate_bars`).

    Raises :class:`DataImportError` naming the file, line, column and value.
    """
    path = Path(path)
    where = str(path)
    if time_unit not in (*TIME_UNITS, "iso"):
        raise ValueError(f"time_unit must be one of {[*TIME_UNITS, 'iso']}, not {time_unit!r}")
    if time_unit != "iso" and timezone.upper() != "UTC":
        raise ValueError("timezone applies only to time_unit='iso' (epoch numbers are UTC by definition)")
    if timestamp_is not in ("open", "close"):
        raise ValueError(f"timestamp_is must be 'open' or 'close', not {timestamp_is!r}")
    if len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character, not {delimiter!r}")
    step = ins.interval_ns(interval)
    cmap = _column_map(columns, header)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataImportError(where, f"cannot read ({e})") from e
    if header:
        first = data.lstrip(b"\r\n").split(b"\n", 1)[0].decode("utf-8", "replace")
        names = [c.strip() for c in next(csv.reader([first], delimiter=delimiter), [])]
        missing = [f"{f}={c!r}" for f, c in cmap.items() if c not in names]
        if missing:
            raise DataImportError(where, f"header has no column for {', '.join(missing)}; header is {names} "
                                  "(map them with --columns field=NAME)", 1)
    types = {cmap[f]: DEC for f in FIELDS[1:]}
    types[cmap["timestamp"]] = pa.string() if time_unit == "iso" else pa.int64()
    try:
        t = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(autogenerate_column_names=not header),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(cmap.values()),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise _diagnose(data, where, cmap, header, time_unit, delimiter, str(e)) from e
    lines = _line_numbers(data, header, t.num_rows)
    for f in FIELDS:  # empty cells
        col = t[cmap[f]]
        if col.null_count:
            i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataImportError(where, f"column {_user(cmap, f, header)}: empty value", int(lines[i]))
    if t.num_rows == 0:
        return bar_table(np.array([], np.int64), {c: pa.array([], DEC) for c in FIELDS[1:]}), lines
    ts = _timestamps(t[cmap["timestamp"]], where, lines, _user(cmap, "timestamp", header), time_unit, timezone)
    if timestamp_is == "close":
        rem = ts % step
        late = (rem != 0) & (step - rem <= 1_000_000)  # Binance close_time: next open - 1 ms/µs/ns
        ts = np.where(late, ts + (step - rem), ts)
        open_ns = ts - step
    else:
        open_ns = ts
    if step <= 86_400_000_000_000:
        bad = np.flatnonzero(open_ns % step != 0)
        if bad.size:
            i = int(bad[0])
            raise DataImportError(where, f"column {_user(cmap, 'timestamp', header)}: "
                                  f"{t[cmap['timestamp']][i].as_py()!r} ({pd.Timestamp(int(ts[i]), tz='UTC')}) is not "
                                  f"on the {interval} grid as a bar {timestamp_is} time", int(lines[i]))
    close_ns = open_ns + step
    d = np.diff(close_ns)
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        what = "repeats" if d[bad[0]] == 0 else "goes back from"
        raise DataImportError(where, f"column {_user(cmap, 'timestamp', header)}: {t[cmap['timestamp']][i].as_py()!r} "
                              f"{what} the previous row's time (rows must be in increasing time order)", int(lines[i]))
    return bar_table(close_ns, {f: t[cmap[f]].combine_chunks() for f in FIELDS[1:]}), lines


def import_csv(
    catalog_path: str | Path | None,
    *,
    files: Sequence[str | Path],
    symbol: str,
    market: str = "spot",
    interval: str = "1m",
    columns: dict[str, str] | None = None,
    time_unit: str = "ms",
    timezone: str = "UTC",
    timestamp_is: str = "open",
    delimiter: str = ",",
    header: bool = True,
    instruments_file: str | Path | None = None,
    metadata: str = "cache",
) -> ImportReport:
    """Import OHLCV CSV ``files`` of one ``symbol`` (any Binance symbol) into the catalog.

    Options as in the module docstring. Every file is parsed and checked first; a problem raises
    :class:`DataImportError` naming file, line, column and value, and nothing is written. Returns
    an :class:`ImportReport` (``report.notes`` say where the instrument's precision came from).
    """
    from catalog.instrument_meta import InstrumentResolver, decimal_decimals
    from catalog.validation import report_gaps

    t0 = time.perf_counter()
    if market not in ("spot", "um"):
        raise ValueError(f"market must be 'spot' or 'um', not {market!r}")
    mkt: ins.Market = market  # type: ignore[assignment]
    sym = symbol.strip().upper()
    if not sym.isalnum():
        raise ValueError(f"symbol must be a Binance symbol like SOLUSDT, not {symbol!r}")
    if not files:
        raise ValueError("no CSV files given")
    step = ins.interval_ns(interval)
    cmap = _column_map(columns, header)
    report = ImportReport(source=", ".join(str(f) for f in files))
    parsed = []
    for f in files:
        t, lines = read_csv_bars(f, interval=interval, columns=columns, time_unit=time_unit, timezone=timezone,
                                 timestamp_is=timestamp_is, delimiter=delimiter, header=header)
        parsed.append((str(f), t, lines))
        report.files_read.append(str(f))
    root = ensure_catalog_root(catalog_path)
    resolver = InstrumentResolver(root, instruments_file=instruments_file, metadata=metadata, report=report)
    data_precision = None
    if resolver.needs_data(sym, mkt):
        rows = [t for _, t, _ in parsed if t.num_rows]
        if rows:
            data_precision = (max(decimal_decimals(t[c]) for t in rows for c in ("open", "high", "low", "close")),
                              max(decimal_decimals(t["volume"]) for t in rows))
    spec = resolver.spec(sym, mkt, data_precision=data_precision, where=str(files[0]))
    for where, t, lines in parsed:
        try:
            validate_bars(t, where, lines, spec.price_precision, spec.size_precision)
        except DataImportError as e:
            problem = e.problem
            for fld in FIELDS[1:]:
                if cmap[fld] != fld or not header:
                    problem = problem.replace(f"column {fld!r}", f"column {_user(cmap, fld, header)}")
            raise DataImportError(e.path, problem, e.row) from None
    bt = ins.bar_type(sym, mkt, interval)
    write_instruments(root, [ins.build_instrument(sym, mkt, spec=spec)], report, count_once=True)
    tables = [t for _, t, _ in parsed]
    if any(t.num_rows for t in tables):
        report_gaps(report, str(bt), np.unique(np.concatenate([t["ts"].to_numpy() for t in tables])), step,
                    market=mkt)
    write_bars(root, bt, spec.price_precision, spec.size_precision, step, tables, report)
    report.seconds = time.perf_counter() - t0
    return report
