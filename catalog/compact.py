"""Compact bar store: under 8 bytes per 1-minute bar at rest, exact, read straight into Nautilus bars.

Three modules: this one (files: write, merge, read), :mod:`catalog.compact_codec` (ticks and the
column encoding) and :mod:`catalog.compact_loader` (the decoded ticks -> Nautilus bars).

Why: Nautilus 2's catalog stores a bar as five decimal128 (16-byte) columns + two timestamps,
zstd: ~35 bytes per real BTCUSDT 1m bar. Binance's zipped CSV needs ~50, freqtrade's feather
~27. For 500 symbols x 5 years (1.31 billion bars) that is ~46 GB vs ~10 GB.

Format ``nautilus-app-compact-bars/2`` (Parquet, one file per UTC calendar month and contiguous
block; a month of 1m bars is one row group)::

    <root>/compact/bars/<bar type>/<first ts>_<last ts>.parquet     (same name scheme as the catalog)

=========  ======  ============================================  ====================  =========
column     type    value                                         encoding              zstd level
=========  ======  ============================================  ====================  =========
``ts``     int64   bar close time, UTC ns                        DELTA_BINARY_PACKED   3
``cd``     int32*  zigzag(close - previous close) (ticks;        BYTE_STREAM_SPLIT     3
                   absolute close in a row group's first row)
``od``     int32*  zigzag(open - previous close) (ticks;         BYTE_STREAM_SPLIT     13
                   absolute in a row group's first row)
``hd``     int32*  high - max(open, close) (>= 0)                BYTE_STREAM_SPLIT     13
``ld``     int32*  min(open, close) - low (>= 0)                 BYTE_STREAM_SPLIT     13
``v``      int32*  volume in lots / ``volume_unit``              BYTE_STREAM_SPLIT     12
=========  ======  ============================================  ====================  =========

``*`` int64 when a value does not fit. zigzag maps 0, -1, 1, -2 ... to 0, 1, 2, 3 ... so small
moves of either sign leave the high byte streams all zero (two's complement would fill them
with 0x00/0xFF at random; with BYTE_STREAM_SPLIT instead of DELTA/PLAIN -0.24 B/bar measured). Schema metadata: ``format``, ``bar_type``,
``price_precision``, ``size_precision``, ``volume_unit`` (the gcd of the file's volumes in lots:
BTCUSDT volumes stored at 6 decimals but stepping by 1e-5 since 2021-09 lose the factor 10 -
monthly files make this per month). Dictionary encoding is off (high-cardinality columns).
Row groups hold at most :data:`ROW_GROUP` rows and decode independently; ``ts`` statistics
let a range read skip the others, and file names let it skip whole months.
Choices measured on all 560,703 real BTCUSDT 1m bars (``scripts/bench/catalog_footprint.py``):
format 1 (``c`` DELTA_BINARY_PACKED, two's-complement ``od`` PLAIN, zstd 9) 8.31 B/bar;
zigzag + BYTE_STREAM_SPLIT + monthly files at zstd 9: 8.07; zstd 15 (``v`` 12): 7.86 at 0.62 CPU-s per
560k bars; these levels 7.91 at 0.38 CPU-s (zstd 13 is where the zero-heavy ``od``/``hd``/``ld``
streams gain, ``cd`` gains 0.03 B/bar from 3 to 13); zstd 3 everywhere 8.12. Format 1 files
remain readable.

Exactness: ticks are the exact decimal values at the instrument precision (no floats anywhere);
:func:`write_bars_compact` refuses values with more decimals than the precision and
:func:`catalog.compact_loader.load_bars` returns ``Bar`` objects identical to Nautilus's own catalog's (tested).

Reading into the engine: :func:`catalog.compact_loader.load_bars` decodes the integer columns with numpy, builds
decimal128 Arrow arrays from the integer buffers (no Python objects) and hands record batches
to Nautilus's ``BarDataWrangler`` (Rust), i.e. Arrow straight into ``Bar`` objects. The
backtest runner does this for every bar type stored only here (:func:`catalog.reader.bar_store`).
Importing Binance Vision zips: ``import-binance-vision --store compact`` (through
:func:`catalog.binance_csv.parse_kline_csvs`) or :func:`catalog.binance_vision.import_kline_zips` for a list of zip files; writes merge
with the stored months (:func:`write_compact_arrays`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from catalog.compact_codec import (
    ROW_GROUP,
    _check_enclosed,
    _sort_unique,
    decimal_to_ticks,
    decode,
    encode,
    ticks_to_decimal,
)

ZSTD_LEVEL = 9
ENCODINGS = {"ts": "DELTA_BINARY_PACKED", "cd": "BYTE_STREAM_SPLIT", "od": "BYTE_STREAM_SPLIT",
             "hd": "BYTE_STREAM_SPLIT", "ld": "BYTE_STREAM_SPLIT", "v": "BYTE_STREAM_SPLIT"}
#: zstd level per column, chosen on the real BTCUSDT 1m bars (scripts/bench/catalog_footprint.py)
ZSTD_LEVELS = {"ts": 3, "cd": 3, "od": 13, "hd": 13, "ld": 13, "v": 12}


def compact_dir(root: str | Path, bar_type: str) -> Path:
    """Folder of one bar type in the compact store."""
    return Path(root) / "compact" / "bars" / str(bar_type)


# --------------------------------------------------------------------------- writing


def _name(ts0: int, ts1: int) -> str:
    from catalog.writer import ts_file_part

    return f"{ts_file_part(ts0)}_{ts_file_part(ts1)}.parquet"


def write_compact_arrays(root: str | Path, bar_type: str, price_precision: int, size_precision: int,
                         ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray,
                         *, split_gap_ns: int = 86_400_000_000_000,
                         zstd_level: int | dict[str, int] | None = None, workers: int | None = None) -> list[Path]:
    """Write bars given as int64 arrays (ts close ns sorted unique; prices in ticks; volume in
    lots). One file per UTC calendar month of ``ts - 1`` (a bar closing at 00:00 on the 1st
    belongs to the previous month; a month of 1m bars is one row group) and per contiguous block (a new
    file after a gap > ``split_gap_ns``); ``zstd_level``: one level or per column (default
    :data:`ZSTD_LEVELS`); files are compressed on ``workers`` threads (default: CPU count).

    Existing files whose time range meets the new rows' are merged: the union is written (same
    timestamp twice must be the same bar, else ``ValueError`` naming it and nothing is written).
    All or nothing: the new files are written into a staging folder, the untouched stored files
    hard-linked beside them, and the folder is swapped with the live one in one atomic step
    (:mod:`catalog.atomic`), so the replaced files vanish in the same step the merged ones appear. Rows already stored identically write
    nothing (returns ``[]``). Raises ``ValueError`` for unsorted rows, high/low not enclosing
    open/close, a bar conflicting with a stored one, or precisions differing from the stored files'.
    Returns the written paths."""
    ts = np.asarray(ts, dtype=np.int64)
    if ts.size > 1 and np.any(np.diff(ts) <= 0):
        raise ValueError("timestamps must be strictly increasing")
    from catalog.atomic import Staging, import_lock

    d = compact_dir(root, bar_type)
    _check_enclosed(o, h, lo, c)  # a bad row raises before anything is written
    with import_lock(root):
        merged = _merge_existing(d, price_precision, size_precision, ts, o, h, lo, c, v) if d.is_dir() else \
            (ts, o, h, lo, c, v, [])
        if merged is None:
            return []  # every row already stored, identical
        ts, o, h, lo, c, v, replaced = merged
        month = (ts - 1).astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
        brk = np.flatnonzero((np.diff(ts) > split_gap_ns) | (np.diff(month) != 0)) + 1
        levels = ZSTD_LEVELS if zstd_level is None else zstd_level
        edges = [0, *brk.tolist(), int(ts.size)]
        meta = {"bar_type": str(bar_type), "price_precision": str(price_precision),
                "size_precision": str(size_precision)}
        jobs = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if b <= a:
                continue
            jobs.append((a, b, _name(int(ts[a]), int(ts[b - 1]))))
        rel = d.relative_to(Path(root))
        with Staging(root) as staging:
            sd = staging.dir(rel)

            def write_one(job: tuple[int, int, str]) -> str:
                a, b, name = job
                t = encode(ts[a:b], o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b], meta)
                pq.write_table(t, sd / name, compression="zstd", compression_level=levels, use_dictionary=False,
                               column_encoding=ENCODINGS, row_group_size=ROW_GROUP, write_statistics=["ts"],
                               data_page_size=1 << 20)
                return name

            with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
                names = list(pool.map(write_one, jobs))  # zstd releases the GIL
            # one atomic swap: the new month files + the untouched stored ones; the replaced files
            # (their rows are in the new files) are not carried over
            staging.commit_dir(rel, remove={p.name for p in replaced})
    return [d / n for n in names]


def _merge_existing(d: Path, price_precision: int, size_precision: int, ts: np.ndarray, *cols: np.ndarray):
    """New rows merged with the stored files of folder ``d`` that hold bars of the same calendar
    months (so re-imports and later days of a month end up in one file per month).

    Returns ``(ts, o, h, l, c, v, replaced files)``, or None when every new row is already
    stored identically. Raises ``ValueError`` on a conflicting bar or different precisions."""
    if ts.size == 0:
        return None
    # the calendar months of the new rows (close time - 1 ns), so a month stays one file
    m0 = np.datetime64(int(ts[0]) - 1, "ns").astype("datetime64[M]")
    m1 = np.datetime64(int(ts[-1]) - 1, "ns").astype("datetime64[M]") + np.timedelta64(1, "M")
    lo_ns = int(m0.astype("datetime64[ns]").astype(np.int64)) + 1
    hi_ns = int(m1.astype("datetime64[ns]").astype(np.int64))
    touched = []
    for p in sorted(d.glob("*.parquet")):
        md = pq.read_metadata(p)
        if not md.num_rows:
            continue
        st = [md.row_group(i).column(0).statistics for i in range(md.num_row_groups)]
        if not (hi_ns < min(x.min for x in st) or lo_ns > max(x.max for x in st)):
            touched.append(p)
    if not touched:
        return (ts, *cols, [])
    keys = ("ts", "open", "high", "low", "close", "volume")
    old = []
    for p in touched:
        arrs, pp, sp = _read_file_arrays(p, None, None)
        if (pp, sp) != (price_precision, size_precision):
            raise ValueError(f"{p}: stored with precisions ({pp}, {sp}), new rows have ({price_precision}, "
                             f"{size_precision})")
        old.append(arrs)
    allc = {k: np.concatenate([a[k] for a in old] + [x]) for k, x in zip(keys, (ts, *cols), strict=True)}
    n_old = sum(a["ts"].size for a in old)
    allc, i = _sort_unique(allc)
    if i is not None:
        raise ValueError(f"{d}: bar at ts={int(allc['ts'][i])} ns differs from the stored one "
                         f"(stored {[int(allc[k][i]) for k in keys[1:]]}, new {[int(allc[k][i + 1]) for k in keys[1:]]})")
    if allc["ts"].size == n_old:
        return None
    return (*(allc[k] for k in keys), touched)


def write_bars_compact(root: str | Path, bar_type: str, price_precision: int, size_precision: int,
                       table: pa.Table, **kw) -> list[Path]:
    """Write a bar table (``ts`` int64 close ns or ``ts_init`` timestamp, ``open``..``volume``
    decimal128 - the shape of :mod:`catalog.common` tables and of Nautilus catalog files). Raises
    ``ValueError`` if a value needs more decimals than the precisions."""
    ts_col = "ts" if "ts" in table.column_names else "ts_init"
    ts = table[ts_col]
    if pa.types.is_timestamp(ts.type):
        ts = pc.cast(ts, pa.int64())
    ts_np = ts.to_numpy() if isinstance(ts, pa.ChunkedArray) else np.asarray(ts)
    arrs = {k: decimal_to_ticks(table[k], price_precision, k) for k in ("open", "high", "low", "close")}
    v = decimal_to_ticks(table["volume"], size_precision, "volume")
    return write_compact_arrays(root, bar_type, price_precision, size_precision, np.asarray(ts_np, np.int64),
                                arrs["open"], arrs["high"], arrs["low"], arrs["close"], v, **kw)


def convert_catalog_bars(root: str | Path, bar_type: str, price_precision: int | None = None,
                         size_precision: int | None = None) -> list[Path]:
    """Copy one bar type from Nautilus's catalog (``data/bars/<bar_type>``) into the compact store."""
    files = sorted((Path(root) / "data" / "bars" / bar_type).glob("*.parquet"))
    out = []
    for f in files:
        t = pq.read_table(f)
        md = t.schema.metadata or {}
        pp = price_precision if price_precision is not None else int(md[b"price_precision"])
        sp = size_precision if size_precision is not None else int(md[b"size_precision"])
        out += write_bars_compact(root, bar_type, pp, sp, t)
    return out


# --------------------------------------------------------------------------- reading


def _files(root: str | Path, bar_type: str) -> list[Path]:
    return sorted(compact_dir(root, bar_type).glob("*.parquet"))


def _files_in_range(root: str | Path, bar_type: str, start_ns: int | None, end_ns: int | None) -> list[Path]:
    """Compact files of ``bar_type`` whose name range meets ``[start_ns, end_ns)`` (None = open)."""
    out = []
    for f in _files(root, bar_type):
        f0, f1 = _parse_name(f.stem)
        if not ((start_ns is not None and f1 < start_ns) or (end_ns is not None and f0 >= end_ns)):
            out.append(f)
    return out


def _parse_name(stem: str) -> tuple[int, int]:
    import calendar
    import time

    vals = []
    for s in stem.split("_"):
        date, frac = s[:-1].rsplit("-", 1)
        vals.append(calendar.timegm(time.strptime(date, "%Y-%m-%dT%H-%M-%S")) * 1_000_000_000 + int(frac))
    return vals[0], vals[1]


def _read_file_arrays(f: Path, start_ns: int | None, end_ns: int | None) -> tuple[dict[str, np.ndarray], int, int]:
    """Decoded arrays of one compact file, restricted to ``start_ns <= ts < end_ns``; only row
    groups whose ``ts`` statistics overlap are read (each decodes on its own)."""
    pf = pq.ParquetFile(f)
    md = pf.schema_arrow.metadata
    pp, sp = int(md[b"price_precision"]), int(md[b"size_precision"])
    parts = []
    for i in range(pf.metadata.num_row_groups):
        st = pf.metadata.row_group(i).column(0).statistics
        if (start_ns is not None and st.max < start_ns) or (end_ns is not None and st.min >= end_ns):
            continue
        dec = decode(pf.read_row_group(i).replace_schema_metadata(md))
        ts = dec["ts"]
        lo = 0 if start_ns is None else int(np.searchsorted(ts, start_ns, "left"))
        hi = ts.size if end_ns is None else int(np.searchsorted(ts, end_ns, "left"))
        if hi > lo:
            parts.append({k: a[lo:hi] for k, a in dec.items()} if (lo, hi) != (0, ts.size) else dec)
    if not parts:
        empty = np.array([], dtype=np.int64)
        return {k: empty for k in ("ts", "open", "high", "low", "close", "volume")}, pp, sp
    if len(parts) == 1:
        return parts[0], pp, sp
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, pp, sp


def read_arrays(root: str | Path, bar_type: str, start_ns: int | None = None,
                end_ns: int | None = None) -> tuple[dict[str, np.ndarray], int, int]:
    """Decoded int64 arrays of every bar with ``start_ns <= ts < end_ns`` (None = unbounded),
    sorted; returns ``(arrays, price_precision, size_precision)``. Files outside the range (by
    name) are not opened; inside a file only row groups whose ``ts`` statistics overlap the range
    are read and decoded (each row group decodes on its own)."""
    parts = []
    pp = sp = None
    for f in _files_in_range(root, bar_type, start_ns, end_ns):
        dec, pp, sp = _read_file_arrays(f, start_ns, end_ns)
        if dec["ts"].size:
            parts.append(dec)
    if not parts:
        empty = np.array([], dtype=np.int64)
        return {k: empty for k in ("ts", "open", "high", "low", "close", "volume")}, pp or 0, sp or 0
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if out["ts"].size > 1 and np.any(np.diff(out["ts"]) < 0):
        order = np.argsort(out["ts"], kind="stable")
        out = {k: a[order] for k, a in out.items()}
    return out, int(pp or 0), int(sp or 0)


def read_table(files: list[Path]) -> pa.Table:
    """Bars of compact ``files`` as a table ``ts`` (int64) + decimal128(38, 16) ``open``..``volume``
    (the shape :mod:`catalog.validation` checks)."""
    parts = []
    for f in sorted(files):
        t = pq.read_table(f)
        md = t.schema.metadata
        pp, sp = int(md[b"price_precision"]), int(md[b"size_precision"])
        d = decode(t)  # whole file = whole row groups from the start
        parts.append(pa.table({"ts": pa.array(d["ts"], pa.int64())}
                              | {k: ticks_to_decimal(d[k], pp) for k in ("open", "high", "low", "close")}
                              | {"volume": ticks_to_decimal(d["volume"], sp)}))
    return pa.concat_tables(parts) if parts else pa.table({"ts": pa.array([], pa.int64())})


def read_timestamps(files: list[Path]) -> np.ndarray:
    """Sorted int64 close times of compact ``files`` (only the ``ts`` column is read)."""
    if not files:
        return np.array([], dtype=np.int64)
    ts = np.concatenate([pq.read_table(f, columns=["ts"])["ts"].to_numpy() for f in files])
    return np.sort(ts, kind="stable") if ts.size > 1 and np.any(np.diff(ts) < 0) else ts


def dataset(root: str | Path, bar_type: str) -> ds.Dataset:
    """A pyarrow dataset over the compact files (raw encoded columns), for ad-hoc analysis."""
    return ds.dataset([str(p) for p in _files(root, bar_type)], format="parquet")
