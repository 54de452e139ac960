"""Binance kline / fundingRate / aggTrades CSV parsing: the one module every reader of Binance's files uses.

Kline CSV: 12 columns ``open_time, open, high, low, close, volume, close_time, quote_volume,
count, taker_buy_volume, taker_buy_quote_volume, ignore``, with or without a header row. Times
are epoch ms, or µs for spot from 2025-01-01; the unit is decided per value
(:func:`catalog.common.epoch_to_ns`). fundingRate CSV: ``calc_time`` (ms),
``funding_interval_hours``, ``last_funding_rate`` (fraction, 0.0001 = 0.01 %).

Two kline parsers with the same checks: :func:`parse_kline_csvs` (fast: one pyarrow call for many
files, exact integer ticks at the instrument precision; the Binance Vision import into the compact
store and :func:`catalog.binance_vision.import_kline_zips`) and :func:`parse_kline_csv` (a decimal
table per file with its line numbers; the import into the Nautilus catalog, and the row-locating
diagnosis when the fast parse fails). :func:`read_zip_csv` unzips an archive's single CSV
(zlib-ng, CRC checked). Used by :mod:`catalog.binance_vision` and :mod:`catalog.compact`'s callers;
it imports only :mod:`catalog.common`, :mod:`catalog.errors` and the tick codec :mod:`catalog.compact_codec`.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from catalog.common import DEC, bar_table, check_increasing, check_no_nulls, epoch_to_ns, snap_funding_times
from catalog.compact_codec import _F52, _sort_unique, decimal_to_ticks
from catalog.errors import DataImportError

if TYPE_CHECKING:
    from collections.abc import Sequence


KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)


_USED = ("open_time", "open", "high", "low", "close", "volume", "close_time")


FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")


AGGTRADE_COLUMNS = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
                    "is_buyer_maker", "is_best_match")


def _has_header(data: bytes) -> bool:
    first = data.lstrip()[:1]
    return bool(first) and not (first.isdigit() or first == b"-")


def _diagnose_csv(data: bytes, where: str, columns: Sequence[str], ints: set[str], decs: set[str],
                  header: bool, fallback: str) -> DataImportError:
    """Find the first malformed row with the csv module (slow path, only after a failure)."""
    text = io.StringIO(data.decode("utf-8", "replace"))
    for lineno, row in enumerate(csv.reader(text), start=1):
        if header and lineno == 1:
            if len(row) != len(columns):
                return DataImportError(where, f"header has {len(row)} columns, expected {len(columns)}", lineno)
            continue
        if not row:
            continue
        if len(row) != len(columns):
            return DataImportError(where, f"expected {len(columns)} columns, got {len(row)}: {','.join(row)!r}", lineno)
        for name, val in zip(columns, row, strict=True):
            if name in ints:
                try:
                    int(val)
                except ValueError:
                    return DataImportError(where, f"column {name!r}: non-numeric value {val!r}", lineno)
            elif name in decs:
                try:
                    d = Decimal(val)
                except InvalidOperation:
                    return DataImportError(where, f"column {name!r}: non-numeric value {val!r}", lineno)
                if not d.is_finite():
                    return DataImportError(where, f"column {name!r}: non-finite value {val!r}", lineno)
                if d.as_tuple().exponent < -16:  # type: ignore[operator]
                    return DataImportError(where, f"column {name!r}: {val!r} has more than 16 decimals", lineno)
    return DataImportError(where, f"CSV parse error: {fallback}")


def parse_kline_csv(data: bytes, where: str, interval_ns: int) -> tuple[pa.Table, np.ndarray]:
    """Parse a kline CSV into ``(table, lines)``.

    ``table`` columns: ``ts`` (int64 ns close time = open_time + interval), ``open``, ``high``,
    ``low``, ``close``, ``volume`` (decimal128(38, 16)); ``lines`` are the 1-based CSV lines.
    Validates column count, numbers, timestamp units, close_time vs interval, grid alignment and
    increasing order (not precision/OHLC: see :func:`catalog.common.validate_bars`).
    """
    header = _has_header(data)
    try:
        t = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(KLINE_COLUMNS), skip_rows=1 if header else 0),
            convert_options=pacsv.ConvertOptions(
                column_types={"open_time": pa.int64(), "close_time": pa.int64()} | {c: DEC for c in _USED[1:6]},
                include_columns=list(_USED),
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise _diagnose_csv(data, where, KLINE_COLUMNS, {"open_time", "close_time", "count"},
                            {"open", "high", "low", "close", "volume"}, header, str(e)) from e
    lines = np.arange(t.num_rows, dtype=np.int64) + 1 + int(header)
    if t.num_rows == 0:
        raise DataImportError(where, "empty CSV: no data rows" + (" after the header" if header else ""))
    check_no_nulls(t, _USED, where, lines)
    open_ns = epoch_to_ns(t["open_time"].to_numpy(), where, lines)
    close_ns = epoch_to_ns(t["close_time"].to_numpy(), where, lines)
    span = close_ns - open_ns
    bad = np.flatnonzero((span >= interval_ns) | (span < interval_ns - 1_000_000))
    if bad.size:
        i = int(bad[0])
        raise DataImportError(
            where, f"close_time - open_time = {int(span[i])} ns does not match the interval ({interval_ns} ns)",
            int(lines[i]),
        )
    if interval_ns <= 86_400_000_000_000:
        bad = np.flatnonzero(open_ns % interval_ns != 0)
        if bad.size:
            i = int(bad[0])
            raise DataImportError(where, f"open_time {int(open_ns[i])} ns is not on the interval grid", int(lines[i]))
    ts = open_ns + interval_ns
    check_increasing(ts, where, lines)
    return bar_table(ts, {c: t[c].combine_chunks() for c in _USED[1:6]}), lines


def parse_funding_csv(data: bytes, where: str) -> tuple[pa.Table, np.ndarray]:
    """Parse a fundingRate CSV into ``(table, lines)``: ``ts`` (int64 ns, snapped to the hour),
    ``rate`` (utf8, the decimal fraction as printed), ``hint_minutes`` (int64, from
    ``funding_interval_hours``)."""
    header = _has_header(data)
    ts_raw: list[int] = []
    hints: list[int] = []
    rates: list[str] = []
    lines: list[int] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(data.decode("utf-8", "replace"))), start=1):
        if header and lineno == 1:
            if [c.strip() for c in row] != list(FUNDING_COLUMNS):
                raise DataImportError(where, f"unexpected header {row!r}, expected {list(FUNDING_COLUMNS)}", lineno)
            continue
        if not row:
            continue
        if len(row) != 3:
            raise DataImportError(where, f"expected 3 columns, got {len(row)}: {','.join(row)!r}", lineno)
        try:
            t = int(row[0])
        except ValueError:
            raise DataImportError(where, f"column 'calc_time': non-numeric value {row[0]!r}", lineno) from None
        try:
            h = int(row[1]) if row[1].strip() else 0
        except ValueError:
            raise DataImportError(where, f"column 'funding_interval_hours': non-numeric value {row[1]!r}", lineno) from None
        try:
            r = Decimal(row[2])
        except InvalidOperation:
            raise DataImportError(where, f"column 'last_funding_rate': non-numeric value {row[2]!r}", lineno) from None
        if not r.is_finite() or abs(r) >= 1:
            raise DataImportError(where, f"column 'last_funding_rate': implausible rate {row[2]!r}", lineno)
        ts_raw.append(t)
        hints.append(h * 60)
        rates.append(row[2].strip())
        lines.append(lineno)
    ln = np.array(lines, dtype=np.int64)
    ts = snap_funding_times(epoch_to_ns(np.array(ts_raw, dtype=np.int64), where, ln), where, ln)
    check_increasing(ts, where, ln)
    return pa.table({"ts": pa.array(ts, pa.int64()), "rate": pa.array(rates, pa.string()),
                     "hint_minutes": pa.array(hints, pa.int64())}), ln


def parse_aggtrades_csv(data: bytes, where: str) -> tuple[pa.Table, np.ndarray]:
    """Parse an aggTrades CSV (spot: 8 columns, no header; futures/um: 7 columns with a header)
    into ``(table, lines)``: ``ts`` (int64 ns, ``transact_time``), ``price``, ``size``
    (decimal128(38, 16)), ``buyer_maker`` (bool: the buyer was the maker, i.e. the aggressor
    SOLD), ``trade_id`` (int64 aggregate trade id). Checks numbers, timestamp units, ids strictly
    increasing and times non-decreasing (several trades share a millisecond)."""
    header = _has_header(data)
    first_line = data.lstrip().split(b"\n", 1)[0]
    ncols = first_line.count(b",") + 1
    if ncols not in (7, 8):
        raise DataImportError(where, f"expected 7 or 8 aggTrades columns, got {ncols}", 1)
    names = list(AGGTRADE_COLUMNS[:ncols])
    try:
        t = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0),
            convert_options=pacsv.ConvertOptions(
                column_types={"agg_trade_id": pa.int64(), "price": DEC, "quantity": DEC, "transact_time": pa.int64(),
                              "is_buyer_maker": pa.bool_()},
                include_columns=["agg_trade_id", "price", "quantity", "transact_time", "is_buyer_maker"],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise _diagnose_csv(data, where, names, {"agg_trade_id", "first_trade_id", "last_trade_id", "transact_time"},
                            {"price", "quantity"}, header, str(e)) from e
    lines = np.arange(t.num_rows, dtype=np.int64) + 1 + int(header)
    check_no_nulls(t, ["agg_trade_id", "price", "quantity", "transact_time", "is_buyer_maker"], where, lines)
    ts = epoch_to_ns(t["transact_time"].to_numpy(), where, lines) if t.num_rows else np.array([], np.int64)
    ids = t["agg_trade_id"].to_numpy()
    if ts.size > 1:
        bad = np.flatnonzero(np.diff(ts) < 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise DataImportError(where, f"transact_time goes backwards ({int(ts[i])} ns after {int(ts[i - 1])} ns)",
                                  int(lines[i]))
        bad = np.flatnonzero(np.diff(ids) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise DataImportError(where, f"agg_trade_id {int(ids[i])} not after {int(ids[i - 1])}", int(lines[i]))
    zero = pa.scalar(0, DEC)
    for col in ("price", "quantity"):
        bad_mask = pc.less_equal(t[col].combine_chunks(), zero).to_numpy(zero_copy_only=False)
        if bad_mask.any():
            i = int(np.flatnonzero(bad_mask)[0])
            raise DataImportError(where, f"column {col!r}: value {t[col][i].as_py()} is not > 0", int(lines[i]))
    return pa.table({"ts": pa.array(ts, pa.int64()), "price": t["price"].combine_chunks(),
                     "size": t["quantity"].combine_chunks(), "buyer_maker": t["is_buyer_maker"].combine_chunks(),
                     "trade_id": pa.array(ids, pa.int64())}), lines


#: zip bytes parsed per pyarrow CSV call when importing many zips (~1 month of 1m bars)
_BATCH_ZIP_BYTES = 1 << 20


#: decimals Binance prints in kline CSVs (``28465.36000000``)
_PRINTED_DECIMALS = 8


#: Binance's CSVs never quote: without quote handling pyarrow's tokenizer is ~15 % faster
_NO_QUOTES = pacsv.ParseOptions(quote_char=False, double_quote=False, escape_char=False)


def _ticks_of(arr: pa.ChunkedArray | pa.Array, precision: int) -> np.ndarray:
    """Exact int64 ticks at ``precision`` of a decimal128 array parsed at a scale >= ``precision``.

    Fast path: the int128 values fit in int64 at the parse scale, so ticks are the low words
    divided by ``10**(scale - precision)`` - a non-zero remainder (a digit beyond the precision)
    raises ``ValueError``. Otherwise Arrow's checked decimal cast (:func:`decimal_to_ticks`)."""
    a = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if a.null_count:
        raise ValueError("empty value")
    scale = a.type.scale
    words = np.frombuffer(a.buffers()[1], dtype=np.int64)[2 * a.offset: 2 * (a.offset + len(a))]
    lo, hi = words[0::2], words[1::2]
    if scale < precision or np.any(hi != (lo >> 63)):
        return decimal_to_ticks(a, precision)
    if scale == precision:
        return lo.copy()
    f = 10 ** (scale - precision)
    if lo.size and max(int(lo.max()), -int(lo.min())) < _F52:  # float64 quotient exact if divisible
        q = (lo.astype(np.float64) / f).astype(np.int64)
    else:
        q = lo // f
    if not np.array_equal(q * f, lo):
        raise ValueError(f"a value has more than {precision} decimals")
    return q


def read_zip_csv(source: str | Path | bytes, where: str | None = None) -> tuple[str, bytes]:
    """``(member name, bytes)`` of the single CSV in a zip archive (a path, or the archive's bytes
    with ``where`` naming it in errors).

    Deflated members are inflated with zlib-ng (about 1.6x faster than the standard library's
    zlib on Binance's archives) and checked against the member's CRC-32, like ``zipfile`` does.
    Raises :class:`catalog.errors.DataImportError` naming the file if the zip is unreadable,
    holds no or several CSVs, or its CRC does not match.
    """
    import io
    import struct
    import zipfile

    from zlib_ng import zlib_ng

    from catalog.errors import DataImportError

    path = io.BytesIO(source) if isinstance(source, bytes) else source
    where = where or str(source if not isinstance(source, bytes) else "<zip bytes>")
    try:
        with zipfile.ZipFile(path) as z:
            names = [i for i in z.infolist() if i.filename.lower().endswith(".csv")]
            if len(names) != 1:
                raise DataImportError(where, f"expected exactly one CSV in the zip, found {z.namelist()}")
            info = names[0]
            if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:
                return info.filename, z.read(info)  # stored/encrypted/other: the standard path
            fp = z.fp
            assert fp is not None
            fp.seek(info.header_offset)
            header = fp.read(30)
            if header[:4] != b"PK\x03\x04":
                raise DataImportError(where, f"bad local header for {info.filename}")
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            fp.seek(info.header_offset + 30 + name_len + extra_len)
            data = zlib_ng.decompress(fp.read(info.compress_size), wbits=-15)
    except (zipfile.BadZipFile, OSError, EOFError, zlib_ng.error) as e:
        raise DataImportError(where, f"not a readable zip archive ({e})") from e
    if len(data) != info.file_size or zlib_ng.crc32(data) != info.CRC:
        raise DataImportError(where, f"{info.filename}: CRC/size mismatch (corrupt archive)")
    return info.filename, data


def parse_kline_zip(path: str | Path, price_precision: int, size_precision: int,
                    interval_ns: int) -> dict[str, np.ndarray]:
    """One Binance Vision kline zip as int64 arrays: ``ts`` (close, ns), ``open``..``close``
    (ticks at ``price_precision``), ``volume`` (lots at ``size_precision``).
    See :func:`parse_kline_zips` (the checks and errors are the same)."""
    return parse_kline_zips([path], price_precision, size_precision, interval_ns)


def parse_kline_zips(paths: list[str | Path], price_precision: int, size_precision: int,
                     interval_ns: int) -> dict[str, np.ndarray]:
    """Several Binance Vision kline zips parsed together, rows in the order of ``paths``:
    int64 ``ts`` (close, ns), ``open``..``close`` (ticks at ``price_precision``), ``volume`` (lots
    at ``size_precision``).

    The CSVs (headers dropped) go through ONE pyarrow CSV call: a call costs ~0.4 ms before the
    first byte, as much as parsing 1,000 rows, so daily files parsed one by one spend about a
    third of their time in fixed costs. Values are parsed into exact decimals at the scale
    Binance prints (8 decimals, or the instrument precision if finer: ~35 % faster than parsing
    at the instrument's scale, which makes Arrow rescale every value); the int64 ticks at the
    instrument precision are then taken with a remainder check, so a value with a non-zero digit
    beyond the precision is refused, never rounded. Quoting is off (Binance's CSVs never quote; a
    quote character fails the parse).
    Checks per file: one CSV in the zip, open times on the ``interval_ns`` grid and strictly
    increasing, close time = open time + interval - 1 ms (or 1 µs), OHLC enclosed, low > 0,
    volume >= 0.
    Raises :class:`catalog.errors.DataImportError` naming the zip, CSV member and row (a parse
    failure is located by the slow diagnostic parser :func:`parse_kline_csv`).
    """
    csvs = []
    for p in paths:
        member, data = read_zip_csv(p)
        csvs.append((f"{p}!{member}", data))
    return parse_kline_csvs(csvs, price_precision, size_precision, interval_ns)


def parse_kline_csvs(csvs: list[tuple[str, bytes]], price_precision: int, size_precision: int,
                     interval_ns: int, sources: list | None = None) -> dict[str, np.ndarray]:
    """:func:`parse_kline_zips` for already unzipped kline CSVs ``(where, bytes)`` (``where``
    names the file in errors). Rows in the order given. ``sources``: if given, one
    ``(where, ts, open, close, first row number)`` per file is appended (views of the result), for
    content checks that name the file (:func:`catalog.validation.check_import_jumps`)."""
    from catalog.common import _MS_MIN, _US_MIN, epoch_to_ns
    from catalog.errors import DataImportError

    files = []  # (where, csv bytes as stored, csv bytes without header, number of its first data line)
    for where, data in csvs:
        body, first = data, 1
        if _has_header(data):
            cut = data.find(b"\n")
            body, first = (data[cut + 1:] if cut >= 0 else b""), 2
        if not body.strip():
            raise DataImportError(where, "empty CSV: no data rows" + (" after the header" if first == 2 else ""))
        if not body.endswith(b"\n"):
            body += b"\n"
        files.append((where, data, body, first))
    try:
        out, open_ms = _parse_csv_bytes(b"".join(f[2] for f in files), price_precision, size_precision)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as e:
        _diagnose(files, price_precision, size_precision, interval_ns, e)
        raise  # not reached: _diagnose raises
    counts = np.array([f[2].count(b"\n") for f in files], dtype=np.int64)
    if open_ms.size != int(counts.sum()):  # blank lines (Arrow skips them): rows are counted without them
        counts = np.array([sum(1 for line in f[2].split(b"\n") if line.strip()) for f in files], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])

    def fail(i: int, problem: str) -> DataImportError:
        j = int(np.searchsorted(starts, i, "right")) - 1
        return DataImportError(files[j][0], problem, i - int(starts[j]) + files[j][3])

    def to_ns(raw: np.ndarray) -> np.ndarray:
        if raw.size and (raw.min() < _MS_MIN or raw.max() >= _US_MIN):  # not all in ms: unit per value
            bad = np.flatnonzero(raw < _MS_MIN)
            if bad.size:
                raise fail(int(bad[0]), f"timestamp {int(raw[bad[0]])} is not an epoch time in ms/µs/ns")
            return epoch_to_ns(raw, "", np.zeros(0, dtype=np.int64))
        return raw * 1_000_000

    open_ns = to_ns(open_ms)
    span = to_ns(out.pop("close_time")) - open_ns  # Binance: close_time = open_time + interval - 1 ms (or 1 µs)
    bad = np.flatnonzero((span >= interval_ns) | (span < interval_ns - 1_000_000))
    if bad.size:
        raise fail(int(bad[0]), f"close_time - open_time = {int(span[bad[0]])} ns does not match the "
                                f"{interval_ns} ns interval (wrong interval or corrupt row)")
    if interval_ns <= 86_400_000_000_000:
        bad = np.flatnonzero(open_ns % interval_ns)
        if bad.size:
            raise fail(int(bad[0]), f"open_time {int(open_ns[bad[0]])} ns is not on the interval grid")
    out["ts"] = open_ns + interval_ns
    o, h, lo, c, v = (out[k] for k in ("open", "high", "low", "close", "volume"))
    bad = np.flatnonzero((lo <= 0) | (v < 0) | (h < o) | (h < c) | (lo > o) | (lo > c))
    if bad.size:
        i = int(bad[0])
        raise fail(i, "OHLC/volume check failed: " + ", ".join(
            f"{k}={int(out[k][i])}" for k in ("open", "high", "low", "close", "volume")) + " (ticks/lots)")
    if open_ns.size > 1:
        back = np.flatnonzero(np.diff(open_ns) <= 0) + 1
        back = back[~np.isin(back, starts[1:-1])]  # only inside a file: the next file may start anywhere
        if back.size:
            raise fail(int(back[0]), "timestamps not strictly increasing")
    if sources is not None:
        for j, f in enumerate(files):
            a, b = int(starts[j]), int(starts[j + 1])
            sources.append((f[0], out["ts"][a:b], out["open"][a:b], out["close"][a:b], f[3]))
    return out


def _parse_csv_bytes(data: bytes, price_precision: int, size_precision: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(ticks/lots arrays + ``close_time`` int64 as printed, open_time int64 as printed) of
    headerless kline CSV bytes; raises Arrow errors or ``ValueError`` (a digit beyond a
    precision, an empty value)."""
    import io


    if not data:
        return ({k: np.array([], dtype=np.int64) for k in ("open", "high", "low", "close", "volume", "close_time")},
                np.array([], np.int64))
    cols = list(KLINE_COLUMNS)
    dec = pa.decimal128(38, max(_PRINTED_DECIMALS, price_precision, size_precision))
    t = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=cols, use_threads=False, block_size=1 << 24),
        parse_options=_NO_QUOTES,
        convert_options=pacsv.ConvertOptions(
            include_columns=cols[:7],
            column_types={"open_time": pa.int64(), "open": dec, "high": dec, "low": dec, "close": dec, "volume": dec,
                          "close_time": pa.int64()}),
    )
    out = {k: _ticks_of(t[k], price_precision) for k in ("open", "high", "low", "close")}
    out["volume"] = _ticks_of(t["volume"], size_precision)
    out["close_time"] = _int_column(t["close_time"])
    return out, _int_column(t["open_time"])


def _int_column(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    a = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if a.null_count:
        raise ValueError("empty value")
    return a.to_numpy(zero_copy_only=False)


def _diagnose(files: list[tuple[str, bytes, bytes, int]], price_precision: int, size_precision: int,
              interval_ns: int, error: Exception) -> None:
    """Raise the precise :class:`DataImportError` (file, row, column) for a failed fast parse:
    each file's stored CSV goes through the slow, row-locating parser and checks."""
    from catalog.common import validate_bars
    from catalog.errors import DataImportError

    for where, data, _, _ in files:
        tab, lines = parse_kline_csv(data, where, interval_ns)
        validate_bars(tab, where, lines, price_precision, size_precision)
    where = files[0][0] if len(files) == 1 else f"{files[0][0]} .. {files[-1][0]}"
    raise DataImportError(where, f"cannot parse at the instrument precisions ({error})") from error


def size_batches(items: list, sizes: list[int], limit: int | None = None) -> list[list]:
    """Consecutive ``items`` grouped into batches of about ``limit`` bytes (default
    :data:`_BATCH_ZIP_BYTES`) by their ``sizes``; each batch has at least one item."""
    limit = _BATCH_ZIP_BYTES if limit is None else limit
    batches: list[list] = []
    size = limit
    for item, n in zip(items, sizes, strict=True):
        if size >= limit:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += n
    return batches


def combine_bar_parts(parts: list[dict[str, np.ndarray]], what: str) -> dict[str, np.ndarray]:
    """Bars of several parsed files/batches as one sorted array set; a timestamp present in two
    parts (a monthly and a daily archive) must hold the same bar (kept once), else
    :class:`catalog.errors.DataImportError` naming ``what`` and the time."""
    from catalog.errors import DataImportError

    keys = ("ts", "open", "high", "low", "close", "volume")
    parts = sorted((p for p in parts if p["ts"].size), key=lambda p: int(p["ts"][0]))  # usually no sort needed
    if not parts:
        e = np.array([], dtype=np.int64)
        return {k: e for k in keys}
    arr, i = _sort_unique({k: np.concatenate([p[k] for p in parts]) for k in keys})
    if i is not None:
        raise DataImportError(what, f"two different bars at ts={int(arr['ts'][i])} ns in the archives")
    return arr
