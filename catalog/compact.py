"""Compact bar store: about 8 bytes per 1-minute bar at rest, exact, read straight into Nautilus bars.

Why: Nautilus 2's catalog stores a bar as five decimal128 (16-byte) columns + two timestamps,
zstd: ~33-35 bytes per real BTCUSDT 1m bar. Binance's zipped CSV needs ~50, freqtrade's feather
~27. For 500 symbols x 5 years that is the difference between ~43 GB and ~11 GB.

Format ``nautilus-app-compact-bars/1`` (Parquet, one file per contiguous block)::

    <root>/compact/bars/<bar type>/<first ts>_<last ts>.parquet     (same name scheme as the catalog)

=========  ======  ============================================  ====================  =======
column     type    value                                         encoding              codec
=========  ======  ============================================  ====================  =======
``ts``     int64   bar close time, UTC ns                        DELTA_BINARY_PACKED   zstd
``c``      int64   close in ticks (close * 10**price_precision)  DELTA_BINARY_PACKED   zstd
``od``     int32*  open - previous close (ticks; absolute in the  PLAIN                 zstd
                   first row of each row group)
``hd``     int32*  high - max(open, close) (>= 0)                BYTE_STREAM_SPLIT     zstd
``ld``     int32*  min(open, close) - low (>= 0)                 BYTE_STREAM_SPLIT     zstd
``v``      int64   volume in lots / ``volume_unit``              BYTE_STREAM_SPLIT     zstd
=========  ======  ============================================  ====================  =======

``*`` int64 when a value does not fit. Schema metadata: ``format``, ``bar_type``,
``price_precision``, ``size_precision``, ``volume_unit`` (the gcd of the file's volumes in lots,
so e.g. BTCUSDT volumes printed at 6 decimals but stepping by 1e-5 lose the constant factor 10).
Dictionary encoding is off (these columns are high-cardinality). Row groups hold
:data:`ROW_GROUP` rows (~45 days of 1m bars) so a one-month range read decodes at most two row
groups; ``ts`` statistics let pyarrow skip the others.

Exactness: ticks are the exact decimal values at the instrument precision (no floats anywhere);
:func:`write_bars_compact` refuses values with more decimals than the precision and
:func:`load_bars` returns ``Bar`` objects identical to Nautilus's own catalog's (tested).

Reading into the engine: :func:`load_bars` decodes the integer columns with numpy, builds
decimal128 Arrow arrays from the integer buffers (no Python objects) and hands one record batch
to Nautilus's ``BarDataWrangler`` (Rust), i.e. Arrow straight into ``Bar`` objects.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

FORMAT = "nautilus-app-compact-bars/1"
ROW_GROUP = 65_536
ZSTD_LEVEL = 9
DEC16 = pa.decimal128(38, 16)
ENCODINGS = {"ts": "DELTA_BINARY_PACKED", "c": "DELTA_BINARY_PACKED", "od": "PLAIN",
             "hd": "BYTE_STREAM_SPLIT", "ld": "BYTE_STREAM_SPLIT", "v": "BYTE_STREAM_SPLIT"}


def compact_dir(root: str | Path, bar_type: str) -> Path:
    """Folder of one bar type in the compact store."""
    return Path(root) / "compact" / "bars" / str(bar_type)


# --------------------------------------------------------------------------- conversions


def decimal_to_ticks(arr: pa.Array | pa.ChunkedArray, precision: int, what: str = "value") -> np.ndarray:
    """Exact int64 ticks (value * 10**precision) of a decimal128 array; raises ``ValueError`` if a
    value has more than ``precision`` decimals or does not fit in int64."""
    a = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    try:
        scaled = a.cast(pa.decimal128(38, precision))  # safe cast: raises on lost digits
    except pa.ArrowInvalid as e:
        raise ValueError(f"{what}: a value has more than {precision} decimals ({e})") from e
    words = np.frombuffer(scaled.buffers()[1], dtype=np.int64)[2 * scaled.offset: 2 * (scaled.offset + len(scaled))]
    lo, hi = words[0::2], words[1::2]
    if np.any(hi != np.where(lo < 0, -1, 0)):
        raise ValueError(f"{what}: a value does not fit in int64 ticks")
    return lo.copy()


def ticks_to_decimal(ticks: np.ndarray, precision: int, *, to16: bool = True) -> pa.Array:
    """decimal128 Arrow array (scale ``precision``, or 16 when ``to16``) from int64 ticks, exact."""
    x = np.ascontiguousarray(ticks, dtype=np.int64)
    buf = np.empty(2 * x.size, dtype=np.int64)
    buf[0::2] = x
    buf[1::2] = x >> 63  # sign extension
    arr = pa.Array.from_buffers(pa.decimal128(38, precision), x.size, [None, pa.py_buffer(buf)])
    return arr.cast(DEC16) if to16 else arr


def _narrow(x: np.ndarray) -> np.ndarray:
    return x.astype(np.int32) if x.size == 0 or (x.min() >= -(2**31) and x.max() < 2**31) else x


def encode(ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray,
           meta: dict[str, str]) -> pa.Table:
    """Compact table from int64 arrays (ts ns; o/h/l/c ticks; v lots), see the module docstring."""
    prev = np.empty_like(c)
    prev[1:] = c[:-1]
    prev[::ROW_GROUP] = 0  # each row group decodes on its own: its first open is absolute
    hd = h - np.maximum(o, c)
    ld = np.minimum(o, c) - lo
    if np.any(hd < 0) or np.any(ld < 0):
        i = int(np.flatnonzero((hd < 0) | (ld < 0))[0])
        raise ValueError(f"row {i}: high/low do not enclose open/close (o={o[i]} h={h[i]} l={lo[i]} c={c[i]} ticks)")
    unit = int(np.gcd.reduce(v)) if v.size and np.any(v) else 1
    unit = max(unit, 1)
    table = pa.table({"ts": ts.astype(np.int64), "c": c, "od": _narrow(o - prev), "hd": _narrow(hd),
                      "ld": _narrow(ld), "v": v // unit})
    return table.replace_schema_metadata(meta | {"format": FORMAT, "volume_unit": str(unit)})


def decode(table: pa.Table) -> dict[str, np.ndarray]:
    """int64 arrays ``ts``, ``open``, ``high``, ``low``, ``close`` (ticks), ``volume`` (lots) of a
    compact table holding whole row groups of one file, in order, starting at a row-group start
    (``od`` is absolute at every multiple of :data:`ROW_GROUP` rows)."""
    meta = table.schema.metadata or {}
    unit = int(meta.get(b"volume_unit", b"1"))
    c = table["c"].to_numpy().astype(np.int64, copy=False)
    od = table["od"].to_numpy().astype(np.int64)
    prev = np.empty_like(c)
    prev[1:] = c[:-1]
    prev[::ROW_GROUP] = 0
    o = prev + od
    hi = np.maximum(o, c) + table["hd"].to_numpy()
    lo = np.minimum(o, c) - table["ld"].to_numpy()
    v = table["v"].to_numpy().astype(np.int64, copy=False) * unit
    return {"ts": table["ts"].to_numpy(), "open": o, "high": hi, "low": lo, "close": c, "volume": v}


# --------------------------------------------------------------------------- writing


def _name(ts0: int, ts1: int) -> str:
    from catalog.writer import ts_file_part

    return f"{ts_file_part(ts0)}_{ts_file_part(ts1)}.parquet"


def write_compact_arrays(root: str | Path, bar_type: str, price_precision: int, size_precision: int,
                         ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray,
                         *, split_gap_ns: int = 86_400_000_000_000, zstd_level: int = ZSTD_LEVEL) -> list[Path]:
    """Write bars given as int64 arrays (ts close ns sorted unique; prices in ticks; volume in
    lots). One file per contiguous block (a new file after a gap > ``split_gap_ns``), each written
    to a temp name and renamed (atomic). An existing file with the same name is replaced; rows
    inside the time range of another existing file raise ``ValueError`` (no overlaps).
    Returns the written paths."""
    ts = np.asarray(ts, dtype=np.int64)
    if ts.size > 1 and np.any(np.diff(ts) <= 0):
        raise ValueError("timestamps must be strictly increasing")
    d = compact_dir(root, bar_type)
    d.mkdir(parents=True, exist_ok=True)
    existing = []
    for p in d.glob("*.parquet"):
        md = pq.read_metadata(p)
        if md.num_rows:
            st = [md.row_group(i).column(0).statistics for i in range(md.num_row_groups)]
            existing.append((p.name, min(s.min for s in st), max(s.max for s in st)))
    brk = np.flatnonzero(np.diff(ts) > split_gap_ns) + 1
    edges = [0, *brk.tolist(), int(ts.size)]
    meta = {"bar_type": str(bar_type), "price_precision": str(price_precision), "size_precision": str(size_precision)}
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        name = _name(int(ts[a]), int(ts[b - 1]))
        for ename, e0, e1 in existing:
            if ename != name and not (ts[b - 1] < e0 or ts[a] > e1):
                raise ValueError(f"{d / name}: rows overlap the existing file {ename}")
        t = encode(ts[a:b], o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b], meta)
        tmp = d / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        pq.write_table(t, tmp, compression="zstd", compression_level=zstd_level, use_dictionary=False,
                       column_encoding=ENCODINGS, row_group_size=ROW_GROUP, write_statistics=["ts"],
                       data_page_size=1 << 20)
        os.replace(tmp, d / name)
        out.append(d / name)
    return out


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


def _parse_name(stem: str) -> tuple[int, int]:
    import calendar
    import time

    vals = []
    for s in stem.split("_"):
        date, frac = s[:-1].rsplit("-", 1)
        vals.append(calendar.timegm(time.strptime(date, "%Y-%m-%dT%H-%M-%S")) * 1_000_000_000 + int(frac))
    return vals[0], vals[1]


def read_arrays(root: str | Path, bar_type: str, start_ns: int | None = None,
                end_ns: int | None = None) -> tuple[dict[str, np.ndarray], int, int]:
    """Decoded int64 arrays of every bar with ``start_ns <= ts < end_ns`` (None = unbounded),
    sorted; returns ``(arrays, price_precision, size_precision)``. Files outside the range (by
    name) are not opened; inside a file only row groups whose ``ts`` statistics overlap the range
    are read and decoded (each row group decodes on its own)."""
    parts = []
    pp = sp = None
    for f in _files(root, bar_type):
        f0, f1 = _parse_name(f.stem)
        if (start_ns is not None and f1 < start_ns) or (end_ns is not None and f0 >= end_ns):
            continue
        pf = pq.ParquetFile(f)
        md = pf.schema_arrow.metadata
        pp, sp = int(md[b"price_precision"]), int(md[b"size_precision"])
        groups = []
        for i in range(pf.metadata.num_row_groups):
            st = pf.metadata.row_group(i).column(0).statistics
            if (start_ns is not None and st.max < start_ns) or (end_ns is not None and st.min >= end_ns):
                continue
            groups.append(i)
        for i in groups:  # row groups decode independently
            t = pf.read_row_group(i).replace_schema_metadata(md)
            dec = decode(t)
            ts = dec["ts"]
            lo = 0 if start_ns is None else int(np.searchsorted(ts, start_ns, "left"))
            hi = ts.size if end_ns is None else int(np.searchsorted(ts, end_ns, "left"))
            if hi > lo:
                parts.append({k: a[lo:hi] for k, a in dec.items()} if (lo, hi) != (0, ts.size) else dec)
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


def load_bars(root: str | Path, bar_type: str, start_ns: int | None = None, end_ns: int | None = None) -> list:
    """Nautilus ``Bar`` objects of ``bar_type`` with ``start_ns <= ts_init < end_ns`` (UTC ns,
    None = unbounded), sorted, ``ts_event = ts_init`` = bar close; precisions from the files.

    Arrow straight into Nautilus: int64 ticks -> decimal128 buffers -> one IPC record batch ->
    ``BarDataWrangler.process_record_batch_bytes`` (Rust). Returns ``[]`` when nothing matches.
    """
    from nautilus_trader.persistence import BarDataWrangler

    arrs, pp, sp = read_arrays(root, bar_type, start_ns, end_ns)
    if arrs["ts"].size == 0:
        return []
    tsu = pa.array(arrs["ts"].astype(np.uint64), pa.uint64())
    batch = pa.record_batch({k: ticks_to_decimal(arrs[k], pp) for k in ("open", "high", "low", "close")}
                            | {"volume": ticks_to_decimal(arrs["volume"], sp), "ts_event": tsu, "ts_init": tsu})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    return BarDataWrangler(str(bar_type), pp, sp).process_record_batch_bytes(sink.getvalue().to_pybytes())


def dataset(root: str | Path, bar_type: str) -> ds.Dataset:
    """A pyarrow dataset over the compact files (raw encoded columns), for ad-hoc analysis."""
    return ds.dataset([str(p) for p in _files(root, bar_type)], format="parquet")
