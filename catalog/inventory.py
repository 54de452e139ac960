"""Catalog inventory: what is stored, over which time range, how many rows, where the gaps are.

Two functions, also used by the Dash app:

* :func:`catalog_inventory` - one row per (kind, identifier) with time range, row count, file
  count, bytes on disk and the number of gaps.
* :func:`gap_list` - the gaps of one (kind, identifier).

Both read only the ``ts_init`` column of the Parquet files with pyarrow (no Nautilus objects), so
an inventory of the whole shared mirror (900k bars) takes a fraction of a second.

Kinds and folders (Nautilus 2.0.0rc7 layout, see :mod:`catalog.writer`):

=================  =====================================  ====================
kind               folder                                 identifier
=================  =====================================  ====================
``bars``           ``data/bars/<bar type>/``              bar type string
``funding_rates``  ``data/funding_rates/<instrument id>/`` instrument id
``mark_prices``    ``data/mark_prices/<instrument id>/``  instrument id
``trades``         ``data/trades/<instrument id>/``       instrument id
``instruments``    ``data/<instrument class>/<id>/``      instrument id
``bars`` (compact) ``compact/bars/<bar type>/``           bar type string
=================  =====================================  ====================

Compact bar files (:mod:`catalog.compact`) are listed as kind ``bars`` too when no Nautilus bars
exist for the same bar type; otherwise they are an archive copy and not listed twice.

What counts as a gap (``gaps`` column, :func:`gap_list`): two consecutive timestamps further apart
than one expected interval. The interval is

* bars: the bar type's step (``1-MINUTE`` = 60 s);
* funding rates: the ``interval`` column (minutes) of the later row, falling back to the median
  spacing; a change of funding interval (8 h -> 4 h) is therefore not a gap;
* mark prices: the median spacing of the timestamps;
* trades and instruments: not defined, ``gaps`` is 0.

``missing`` in :func:`gap_list` is the number of expected rows absent in between
(``(first_after - last_before) / interval - 1``). A gap is data, not necessarily an error: Binance
spot maintenance stops are real gaps (``../shared/data/README.md`` lists them); see
:mod:`catalog.validation` for the policy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: kind -> folder under ``<root>/data``.
KIND_DIRS = {
    "bars": "bars",
    "funding_rates": "funding_rates",
    "mark_prices": "mark_prices",
    "trades": "trades",
}
#: Folders of instrument definitions (rc7 names, snake case of the class).
INSTRUMENT_DIRS = ("currency_pair", "crypto_perpetual", "crypto_future", "crypto_option", "equity",
                   "futures_contract", "options_contract", "betting_instrument", "binary_option",
                   "commodity", "index_instrument", "cfd", "perpetual_contract")
COLUMNS = ["kind", "identifier", "instrument_id", "first", "last", "rows", "files", "bytes", "gaps"]
GAP_COLUMNS = ["last_before", "first_after", "missing"]

_UNIT_NS = {"SECOND": 1_000_000_000, "MINUTE": 60_000_000_000, "HOUR": 3_600_000_000_000,
            "DAY": 86_400_000_000_000, "WEEK": 7 * 86_400_000_000_000, "MILLISECOND": 1_000_000}


def bar_interval_ns(bar_type: str) -> int | None:
    """Step of a time bar type in ns (``BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL`` -> 60e9); None
    for non-time aggregations (tick/volume bars) or strings that are not bar types."""
    parts = str(bar_type).split("-")
    for i in range(len(parts) - 1):
        if parts[i].isdigit() and parts[i + 1] in _UNIT_NS:
            return int(parts[i]) * _UNIT_NS[parts[i + 1]]
    return None


def bar_instrument_id(bar_type: str) -> str:
    """Instrument id part of a bar type string (everything before ``-<step>-<AGG>-``)."""
    parts = str(bar_type).split("-")
    for i in range(len(parts) - 1):
        if parts[i].isdigit() and (parts[i + 1] in _UNIT_NS or parts[i + 1] in ("TICK", "VOLUME", "VALUE")):
            return "-".join(parts[:i])
    return str(bar_type)


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def _read_ts(files: list[Path], column: str = "ts_init") -> np.ndarray:
    """Sorted int64 ns of ``column`` over ``files``."""
    parts = []
    for f in files:
        t = pq.read_table(f, columns=[column])
        col = t.column(column)
        if pa.types.is_timestamp(col.type):
            col = pc.cast(col, pa.int64())
        parts.append(col.to_numpy())
    if not parts:
        return np.array([], dtype=np.int64)
    ts = np.concatenate(parts).astype(np.int64)
    if ts.size > 1 and np.any(np.diff(ts) < 0):
        ts = np.sort(ts, kind="stable")
    return ts


def _funding_expected(files: list[Path]) -> np.ndarray | None:
    """Per-row expected spacing (ns) from the funding ``interval`` column (minutes); None if absent."""
    parts = []
    for f in files:
        if "interval" not in pq.read_schema(f).names:
            return None
        t = pq.read_table(f, columns=["ts_init", "interval"])
        ts = pc.cast(t.column("ts_init"), pa.int64()).to_numpy() if pa.types.is_timestamp(
            t.column("ts_init").type) else t.column("ts_init").to_numpy()
        iv = t.column("interval").to_numpy(zero_copy_only=False)
        parts.append((ts, iv))
    if not parts:
        return None
    ts = np.concatenate([p[0] for p in parts]).astype(np.int64)
    iv = np.concatenate([p[1] for p in parts]).astype(np.float64)
    order = np.argsort(ts, kind="stable")
    iv = iv[order]
    if np.any(~np.isfinite(iv)) or np.any(iv <= 0):
        return None
    return (iv * 60_000_000_000).astype(np.int64)


def _expected_spacing(kind: str, identifier: str, files: list[Path], ts: np.ndarray) -> np.ndarray | int | None:
    """Expected spacing between consecutive rows in ns (scalar or per row), None = not defined."""
    if ts.size < 2:
        return None
    if kind == "bars":
        return bar_interval_ns(identifier)
    if kind == "funding_rates":
        per_row = _funding_expected(files)
        if per_row is not None and per_row.size == ts.size:
            return per_row
    if kind in ("funding_rates", "mark_prices"):
        d = np.diff(ts)
        d = d[d > 0]
        return int(np.median(d)) if d.size else None
    return None


def _gap_mask(ts: np.ndarray, spacing: np.ndarray | int | None) -> tuple[np.ndarray, np.ndarray]:
    """(indices i such that ts[i] -> ts[i+1] is a gap, expected spacing at those gaps)."""
    if spacing is None or ts.size < 2:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    d = np.diff(ts)
    if np.isscalar(spacing) or isinstance(spacing, int | np.integer):
        sp = np.full(d.shape, int(spacing), dtype=np.int64)
    else:
        # spacing of row i+1 = the period it closes
        sp = np.asarray(spacing, dtype=np.int64)[1:]
    idx = np.flatnonzero(d > sp)
    return idx, sp[idx]


def _entries(root: Path) -> list[tuple[str, str, str, list[Path]]]:
    """(kind, identifier, instrument_id, files) of every stored dataset."""
    root = Path(root)
    out: list[tuple[str, str, str, list[Path]]] = []
    data = root / "data"
    nautilus_bars: set[str] = set()
    for kind, folder in KIND_DIRS.items():
        base = data / folder
        if not base.is_dir():
            continue
        for d in sorted(p for p in base.iterdir() if p.is_dir()):
            files = _files(d)
            if not files:
                continue
            iid = bar_instrument_id(d.name) if kind == "bars" else d.name
            if kind == "bars":
                nautilus_bars.add(d.name)
            out.append((kind, d.name, iid, files))
    compact = root / "compact" / "bars"
    if compact.is_dir():
        for d in sorted(p for p in compact.iterdir() if p.is_dir()):
            files = _files(d)
            if files and d.name not in nautilus_bars:
                out.append(("bars", d.name, bar_instrument_id(d.name), files))
    for folder in INSTRUMENT_DIRS:
        base = data / folder
        if not base.is_dir():
            continue
        for d in sorted(p for p in base.iterdir() if p.is_dir()):
            files = _files(d)
            if files:
                out.append(("instruments", d.name, d.name, files))
    return out


def _ts_column(kind: str, files: list[Path]) -> str:
    names = pq.read_schema(files[0]).names
    if "ts_init" in names:
        return "ts_init"
    if "ts" in names:  # compact bars
        return "ts"
    raise ValueError(f"{files[0]}: no ts_init/ts column (kind {kind})")


def _compact_ts(files: list[Path]) -> np.ndarray:
    from catalog.compact import read_timestamps  # local: compact imports nautilus

    return read_timestamps(files)


def _timestamps(kind: str, files: list[Path]) -> np.ndarray:
    col = _ts_column(kind, files)
    if col == "ts":
        return _compact_ts(files)
    return _read_ts(files, col)


def catalog_inventory(root: Path) -> pd.DataFrame:
    """Everything stored in the catalog at ``root``, one row per (kind, identifier).

    Columns: ``kind`` (``'bars'|'funding_rates'|'mark_prices'|'trades'|'instruments'``),
    ``identifier`` (bar type or instrument id), ``instrument_id``, ``first``/``last``
    (``pandas.Timestamp`` UTC of the first/last ``ts_init``; bars are stamped at their close;
    ``NaT`` for instruments), ``rows`` (int), ``files`` (int, Parquet files), ``bytes`` (int, on
    disk), ``gaps`` (int, number of spacings longer than one expected interval, see the module
    docstring). Sorted by kind then identifier; an empty frame with these columns when the
    catalog is empty or missing. Raises ``OSError``/``pyarrow.ArrowInvalid`` on unreadable files.
    """
    rows = []
    for kind, ident, iid, files in _entries(Path(root)):
        nbytes = int(sum(f.stat().st_size for f in files))
        if kind == "instruments":
            n = int(sum(pq.read_metadata(f).num_rows for f in files))
            rows.append((kind, ident, iid, pd.NaT, pd.NaT, n, len(files), nbytes, 0))
            continue
        ts = _timestamps(kind, files)
        spacing = _expected_spacing(kind, ident, files, ts)
        gaps, _ = _gap_mask(ts, spacing)
        first = pd.Timestamp(int(ts[0]), unit="ns", tz="UTC") if ts.size else pd.NaT
        last = pd.Timestamp(int(ts[-1]), unit="ns", tz="UTC") if ts.size else pd.NaT
        rows.append((kind, ident, iid, first, last, int(ts.size), len(files), nbytes, int(gaps.size)))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["first"] = pd.to_datetime(df["first"], utc=True)
    df["last"] = pd.to_datetime(df["last"], utc=True)
    for c in ("rows", "files", "bytes", "gaps"):
        df[c] = df[c].astype("int64")
    return df.sort_values(["kind", "identifier"], kind="stable").reset_index(drop=True)


def gap_list(root: Path, kind: str, identifier: str) -> pd.DataFrame:
    """Gaps of one dataset: columns ``last_before``, ``first_after`` (UTC Timestamps of the
    ``ts_init`` either side) and ``missing`` (int, expected rows absent in between).

    ``kind`` as in :func:`catalog_inventory` (``funding_rates`` ...) or a :mod:`catalog.kinds` word
    (``funding``); raises ``KeyError`` naming the stored datasets when
    (kind, identifier) is not in the catalog. Empty frame when there are no gaps or the spacing
    is not defined (trades, instruments).
    """
    from catalog.kinds import STORE_FOLDERS, canonical_kind

    kind = STORE_FOLDERS.get(canonical_kind(kind, where="gaps"), kind)  # "funding" -> "funding_rates" ...
    entries = _entries(Path(root))
    match = [e for e in entries if e[0] == kind and e[1] == identifier]
    if not match:
        known = [f"{k}/{i}" for k, i, _, _ in entries]
        raise KeyError(f"no {kind!r} data for {identifier!r} in {root}; stored: {known}")
    files = match[0][3]
    if kind == "instruments":
        return _empty_gaps()
    ts = _timestamps(kind, files)
    spacing = _expected_spacing(kind, identifier, files, ts)
    idx, sp = _gap_mask(ts, spacing)
    if idx.size == 0:
        return _empty_gaps()
    before, after = ts[idx], ts[idx + 1]
    missing = (after - before) // sp - 1 + ((after - before) % sp > 0)
    return pd.DataFrame({
        "last_before": pd.to_datetime(before, unit="ns", utc=True),
        "first_after": pd.to_datetime(after, unit="ns", utc=True),
        "missing": missing.astype("int64"),
    })


def gaps_from_timestamps(ts_ns: np.ndarray, interval_ns: int) -> pd.DataFrame:
    """Gaps of sorted int64 ns timestamps at a fixed interval (same columns as :func:`gap_list`)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    idx, sp = _gap_mask(ts, int(interval_ns))
    if idx.size == 0:
        return _empty_gaps()
    before, after = ts[idx], ts[idx + 1]
    return pd.DataFrame({
        "last_before": pd.to_datetime(before, unit="ns", utc=True),
        "first_after": pd.to_datetime(after, unit="ns", utc=True),
        "missing": ((after - before) // sp - 1 + ((after - before) % sp > 0)).astype("int64"),
    })


def _empty_gaps() -> pd.DataFrame:
    return pd.DataFrame({
        "last_before": pd.Series([], dtype="datetime64[ns, UTC]"),
        "first_after": pd.Series([], dtype="datetime64[ns, UTC]"),
        "missing": pd.Series([], dtype="int64"),
    })


def format_inventory(df: pd.DataFrame) -> str:
    """Human-readable table of :func:`catalog_inventory` output (for the CLI)."""
    if df.empty:
        return "catalog is empty"
    show = df.copy()
    show["first"] = show["first"].dt.strftime("%Y-%m-%d %H:%M")
    show["last"] = show["last"].dt.strftime("%Y-%m-%d %H:%M")
    show["MB"] = (show["bytes"] / 1e6).round(2)
    return show[["kind", "identifier", "first", "last", "rows", "files", "MB", "gaps"]].fillna("").to_string(index=False)
