"""Fast column reads straight from the catalog's Parquet files (no Nautilus objects built).

Used where only a few columns are needed: row counts for the backtest completion check, bar
closes for the equity curve. Layout of Nautilus 2.0.0rc7's ``ParquetDataCatalog``:
``<root>/data/<kind folder>/<identifier>/<start>_<end>.parquet`` with ``ts_init`` in UTC ns.
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


def read_columns(
    root: Path, kind: str, identifier: str, columns: list[str], start_ns: int | None = None,
    end_ns: int | None = None,
) -> pa.Table:
    """Columns of every row with ``start_ns <= ts_init < end_ns`` (UTC ns; None = unbounded), file order.

    Returns an empty table with the requested columns when the folder has no Parquet files.
    """
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
