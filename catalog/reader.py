"""Fast column reads straight from the catalog's Parquet files (no Nautilus objects built).

Used where only a few columns are needed: row counts for the backtest completion check, bar
closes for the equity curve. Layout of Nautilus 2.0.0rc7's ``ParquetDataCatalog``:
``<root>/data/<kind folder>/<identifier>/<start>_<end>.parquet`` with ``ts_init`` in UTC ns.

Bars live in one of two stores per bar type: Nautilus's catalog, or the compact store
(:mod:`catalog.compact`, ``<root>/compact/bars/<bar type>/``) when the catalog has no files for
that bar type (:func:`bar_store`). :func:`read_columns` reads either and returns Nautilus's
schema (``ts_init`` uint64, prices/volume decimal128(38, 16)), so every reader works on both.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

#: Catalog sub-folder per data kind (Nautilus 2.0.0rc7 names).
KIND_FOLDERS = {"bars": "bars", "funding": "funding_rates", "mark": "mark_prices"}


def data_folder(root: Path, kind: str, identifier: str) -> Path:
    """Folder of one data kind (``bars``, ``funding``, ``mark``) and identifier (bar type or instrument id)."""
    return Path(root) / "data" / KIND_FOLDERS[kind] / identifier


def bar_store(root: Path, bar_type: str) -> str:
    """``"nautilus"`` if the catalog has Parquet files for ``bar_type``, else ``"compact"`` if the
    compact store has, else ``"nautilus"`` (nothing stored)."""
    if any(data_folder(root, "bars", bar_type).glob("*.parquet")):
        return "nautilus"
    from catalog.compact import compact_dir

    return "compact" if any(compact_dir(root, bar_type).glob("*.parquet")) else "nautilus"


def bar_files(root: Path, bar_type: str) -> list[Path]:
    """Sorted Parquet files holding ``bar_type``'s bars, in the store :func:`bar_store` picks."""
    if bar_store(root, bar_type) == "compact":
        from catalog.compact import compact_dir

        return sorted(compact_dir(root, bar_type).glob("*.parquet"))
    return sorted(data_folder(root, "bars", bar_type).glob("*.parquet"))


def read_columns(
    root: Path, kind: str, identifier: str, columns: list[str], start_ns: int | None = None,
    end_ns: int | None = None,
) -> pa.Table:
    """Columns of every row with ``start_ns <= ts_init < end_ns`` (UTC ns; None = unbounded), file order.

    Returns an empty table with the requested columns when the folder has no Parquet files.
    Bars come from the compact store when :func:`bar_store` says so (same schema).
    """
    if kind == "bars" and bar_store(root, identifier) == "compact":
        return _compact_columns(root, identifier, columns, start_ns, end_ns)
    files = sorted(str(p) for p in data_folder(root, kind, identifier).glob("*.parquet"))
    if not files:
        return pa.table({c: pa.array([], pa.int64()) for c in columns})
    dataset = ds.dataset(files, format="parquet")
    ts = ds.field("ts_init").cast(pa.int64())
    expr = None
    if start_ns is not None:
        expr = ts >= start_ns
    if end_ns is not None:
        expr = (ts < end_ns) if expr is None else expr & (ts < end_ns)
    return dataset.to_table(columns=columns, filter=expr)


def row_stats(root: Path, kind: str, identifier: str, start_ns: int | None = None,
              end_ns: int | None = None) -> tuple[int, int | None, int | None]:
    """(row count, first ts_init ns, last ts_init ns) within ``[start_ns, end_ns)``; (0, None, None) if empty."""
    table = read_columns(root, kind, identifier, ["ts_init"], start_ns, end_ns)
    if table.num_rows == 0:
        return 0, None, None
    ts = pc.cast(table.column("ts_init"), pa.int64())
    return table.num_rows, pc.min(ts).as_py(), pc.max(ts).as_py()


def _compact_columns(root: Path, bar_type: str, columns: list[str], start_ns: int | None,
                     end_ns: int | None) -> pa.Table:
    """Columns of compact-store bars in Nautilus's schema (``ts_event``/``ts_init`` = bar close)."""
    import numpy as np

    from catalog.compact import read_arrays
    from catalog.compact_codec import ticks_to_decimal

    arrs, pp, sp = read_arrays(root, bar_type, start_ns, end_ns)
    out = {}
    for c in columns:
        if c in ("ts_init", "ts_event"):
            out[c] = pa.array(arrs["ts"].view(np.uint64), pa.uint64())
        elif c in ("open", "high", "low", "close"):
            out[c] = ticks_to_decimal(arrs[c], pp)
        elif c == "volume":
            out[c] = ticks_to_decimal(arrs["volume"], sp)
        else:
            raise KeyError(f"compact bars of {bar_type} have no column {c!r}")
    return pa.table(out)
