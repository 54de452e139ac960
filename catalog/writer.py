"""Writing parsed data into Nautilus's ``ParquetDataCatalog``: dedupe, blocks, atomic files.

Layout (rc7, verified): ``<root>/data/bars/<bar_type>/``, ``data/mark_prices/<instrument_id>/``,
``data/funding_rates/<instrument_id>/``, ``data/currency_pair/<id>/``,
``data/crypto_perpetual/<id>/``. Data files are named
``<first ts_init>_<last ts_init>.parquet`` with each time written as
``YYYY-MM-DDTHH-MM-SS-nnnnnnnnnZ`` (e.g. ``2023-04-01T00-01-00-000000000Z_...``); the catalog derives
a file's interval from its name and refuses a write whose interval overlaps an existing file.

Rules implemented here:

* **Dedupe.** Rows whose timestamp falls inside an interval already in the catalog (for the same
  bar type / instrument) are skipped and counted as ``rows_skipped``; so re-importing, or
  importing freqtrade after Binance Vision for the same window, adds nothing twice. Gaps *inside*
  an existing file are invisible to the catalog and are not back-filled (documented limitation).
* **Blocks.** The remaining rows are split into contiguous blocks (a new block starts after a gap
  longer than ``max(1 day, 2 intervals)`` or where an existing file lies in between), and each
  block becomes one Parquet file, so a month of daily zips is one file, not 30.
* **All or nothing per kind and identifier.** Bars, mark prices and trades are written by
  Nautilus's own writers into a private staging catalog under ``<root>/.staging/<owner>/`` (same
  filesystem; funding files, which rc7 has no Python writer for, with pyarrow); the files already
  stored are hard-linked beside them and the whole folder (``data/bars/<bar type>/`` ...) is swapped
  with the live one in one atomic ``renameat2(RENAME_EXCHANGE)`` (:mod:`catalog.atomic`), under the
  catalog's write lock. A kill at any moment leaves the old or the new folder, never some blocks of
  an import. Instruments (one file each) are replaced with ``os.replace``. Stale staging folders of
  killed writers are removed by :func:`cleanup_stale_staging` (every command that opens the catalog).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.model import BarType, FundingRateUpdate, InstrumentId, NautilusDataType
from nautilus_trader.persistence import BarDataWrangler, ParquetDataCatalog
from nautilus_trader.serialization import get_arrow_schema_bytes

from catalog.atomic import STAGING_DIR, Staging, import_lock  # noqa: F401 - STAGING_DIR re-exported
from catalog.atomic import cleanup_stale_staging as _cleanup
from catalog.common import DEC

DAY_NS = 86_400_000_000_000


# --------------------------------------------------------------------------- report


@dataclass
class TypeStats:
    """Counts for one data type and identifier.

    ``rows_read``: rows parsed from the sources (after the date filter);
    ``rows_duplicate``: rows dropped because another selected source had the same timestamp;
    ``rows_skipped``: rows already covered by the catalog; ``rows_written``: rows written.
    """

    rows_read: int = 0
    rows_duplicate: int = 0
    rows_skipped: int = 0
    rows_written: int = 0
    files_written: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    """Result of one import call.

    ``stats`` is keyed ``"<kind>/<identifier>"`` with kind in ``bars``, ``funding_rates``,
    ``mark_prices``, ``instruments`` (identifier = bar type or instrument id); ``files_read`` lists
    the source files or URLs; ``notes`` says where instruments not in the built-in table came from
    (instruments.toml, exchange metadata, precision inferred from the data); ``seconds`` is the wall time.
    """

    source: str
    files_read: list[str] = field(default_factory=list)
    stats: dict[str, TypeStats] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def entry(self, kind: str, identifier: str) -> TypeStats:
        """The (created on demand) :class:`TypeStats` of ``kind``/``identifier``."""
        return self.stats.setdefault(f"{kind}/{identifier}", TypeStats())

    def total(self, kind: str) -> TypeStats:
        """Sum of the stats of every identifier of ``kind``."""
        tot = TypeStats()
        for key, st in self.stats.items():
            if key.split("/", 1)[0] == kind:
                tot.rows_read += st.rows_read
                tot.rows_duplicate += st.rows_duplicate
                tot.rows_skipped += st.rows_skipped
                tot.rows_written += st.rows_written
                tot.files_written += st.files_written
        return tot

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """One line per data type and identifier, for CLIs."""
        lines = [f"import from {self.source}: {len(self.files_read)} source files in {self.seconds:.2f} s"]
        for key, st in sorted(self.stats.items()):
            lines.append(
                f"  {key}: read {st.rows_read}, written {st.rows_written}, already present {st.rows_skipped}, "
                f"duplicate in input {st.rows_duplicate}, files {len(st.files_written)}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# --------------------------------------------------------------------------- staging


def cleanup_stale_staging(root: Path) -> None:
    """Remove staging dirs and temp files left by dead processes (see :mod:`catalog.atomic`)."""
    _cleanup(root)


class _Staging(Staging):
    """A private staging catalog under ``<root>/.staging``: each data folder is committed whole
    (:meth:`catalog.atomic.Staging.commit_dir`); single instrument files are promoted with os.replace."""

    def catalog(self) -> ParquetDataCatalog:
        """The staging folder as a Nautilus catalog (one per staging, built on first use)."""
        if getattr(self, "_catalog", None) is None:
            self._catalog = ParquetDataCatalog(str(self.path))
        return self._catalog

    def promote(self, rel: str) -> str:
        """Move one file ``rel`` (relative to the staging root) to the same place in the real catalog."""
        src = self.path / rel
        dst = self.root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        return rel


# --------------------------------------------------------------------------- planning


def ts_file_part(ns: int) -> str:
    """Catalog file-name form of a ns timestamp: ``2023-04-01T00-01-00-000000000Z``."""
    sec, frac = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(sec)) + f"-{frac:09d}Z"


def existing_intervals(root: Path, data_type: NautilusDataType, identifier: str) -> list[tuple[int, int]]:
    """Sorted ``[(start_ns, end_ns)]`` (inclusive) of the files already in the catalog."""
    d = {
        NautilusDataType.Bar: "bars",
        NautilusDataType.MarkPriceUpdate: "mark_prices",
        NautilusDataType.FundingRateUpdate: "funding_rates",
    }[data_type]
    if not (Path(root) / "data" / d / identifier).is_dir():
        return []
    cat = ParquetDataCatalog(str(root))
    return sorted((int(a), int(b)) for a, b in cat.get_intervals(data_type, identifier))


def plan_blocks(ts: np.ndarray, existing: list[tuple[int, int]], split_gap_ns: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Select rows not covered by ``existing`` and split them into writable blocks.

    ``ts`` sorted unique int64 ns. Returns ``(new_index, blocks)``: the indices of uncovered rows
    and ``[(i0, i1)]`` half-open ranges into ``new_index``; no block spans an existing interval or
    a gap longer than ``split_gap_ns``.
    """
    ts = np.asarray(ts, dtype=np.int64)
    if existing:
        starts = np.array([s for s, _ in existing], dtype=np.int64)
        ends = np.array([e for _, e in existing], dtype=np.int64)
        k = np.searchsorted(starts, ts, side="right") - 1
        covered = (k >= 0) & (ts <= ends[np.maximum(k, 0)])
    else:
        k = np.zeros(ts.size, dtype=np.int64)
        covered = np.zeros(ts.size, dtype=bool)
    new_index = np.flatnonzero(~covered)
    if new_index.size == 0:
        return new_index, []
    nts = ts[new_index]
    nk = k[new_index]
    brk = np.flatnonzero((np.diff(nts) > split_gap_ns) | (np.diff(nk) != 0)) + 1
    edges = [0, *brk.tolist(), int(new_index.size)]
    return new_index, list(zip(edges[:-1], edges[1:], strict=True))


def merge_sources(tables: list[pa.Table]) -> tuple[pa.Table, int]:
    """Concatenate tables with a ``ts`` column in priority order, sort by ``ts`` (stable) and
    keep the first row of each timestamp. Returns ``(table, n_duplicates_dropped)``."""
    if not tables:
        raise ValueError("no tables")
    t = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    ts = t["ts"].to_numpy()
    order = np.argsort(ts, kind="stable")
    ts_sorted = ts[order]
    keep = np.ones(ts_sorted.size, dtype=bool)
    keep[1:] = ts_sorted[1:] != ts_sorted[:-1]
    idx = order[keep]
    if idx.size == t.num_rows and np.all(np.diff(idx) > 0):
        return t, 0
    return t.take(pa.array(idx)), int(t.num_rows - idx.size)


def _split_gap(interval_ns: int) -> int:
    return max(DAY_NS, 2 * interval_ns)


# --------------------------------------------------------------------------- writers


def _ipc_bytes(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _check_complete(table: pa.Table, ident: str) -> None:
    """Refuse empty (null) prices/volumes before anything is written (a last line of defence:
    the importers name file and row earlier)."""
    for k in ("open", "high", "low", "close", "volume"):
        if table[k].null_count:
            i = int(np.flatnonzero(table[k].is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"{ident}: empty {k} at ts={int(table['ts'][i].as_py())} ns; nothing written")


def _commit_blocks(root: Path, st: TypeStats, ts: np.ndarray, existing: Callable[[], list[tuple[int, int]]],
                   split_gap_ns: int, folder: str, write_block: Callable[[_Staging, np.ndarray], tuple[str, int]]) -> None:
    """The all-or-nothing commit every writer shares: under the catalog's import lock, skip rows already
    stored (:func:`plan_blocks` against ``existing()``), write each new contiguous block with
    ``write_block(staging, row indices) -> (file, rows)`` into a staging folder, then swap ``folder``
    (e.g. ``data/bars/<id>``) in one step; files and row counts go to the report entry ``st``."""
    with import_lock(root):
        new_index, blocks = plan_blocks(ts, existing(), split_gap_ns)
        st.rows_skipped += int(ts.size - new_index.size)
        if not blocks:
            return
        files, n = [], 0
        with _Staging(root) as staging:
            for i0, i1 in blocks:
                f, k = write_block(staging, new_index[i0:i1])
                files.append(f)
                n += k
            staging.commit_dir(folder)
    st.files_written += files
    st.rows_written += n


def write_bars(
    root: Path,
    bar_type: BarType,
    price_precision: int,
    size_precision: int,
    interval_ns: int,
    tables: list[pa.Table],
    report: ImportReport,
) -> None:
    """Write bar tables (see :mod:`catalog.common`; ``ts`` = close time ns, used for both
    ``ts_event`` and ``ts_init``) for ``bar_type`` with the instrument precisions.

    Tables are merged in priority order (first wins on equal ``ts``), rows already in the catalog
    are skipped, and each contiguous block is written as one file via the staging catalog.
    """
    ident = str(bar_type)
    st = report.entry("bars", ident)
    tables = [t for t in tables if t.num_rows]
    st.rows_read += sum(t.num_rows for t in tables)
    if not tables:
        return
    table, dups = merge_sources(tables)
    st.rows_duplicate += dups
    ts = table["ts"].to_numpy()
    _check_complete(table, ident)
    wrangler = BarDataWrangler(ident, price_precision, size_precision)

    def write_block(staging: _Staging, idx: np.ndarray) -> tuple[str, int]:
        sel = table.take(pa.array(idx))
        tsu = pa.array(sel["ts"].to_numpy().astype(np.uint64), pa.uint64())
        batch = pa.record_batch(
            {k: sel[k].combine_chunks().cast(DEC) for k in ("open", "high", "low", "close", "volume")}
            | {"ts_event": tsu, "ts_init": tsu}
        )
        bars = wrangler.process_record_batch_bytes(_ipc_bytes(batch))
        if len(bars) != idx.size:
            raise ValueError(f"{ident}: Nautilus built {len(bars)} bars from {idx.size} rows (precision "
                             f"{price_precision}/{size_precision}?); nothing written")
        return str(staging.catalog().write_bars(bars)), len(bars)

    # every block is built and staged first; then the folder is swapped in one step
    _commit_blocks(root, st, ts, lambda: existing_intervals(root, NautilusDataType.Bar, ident),
                   _split_gap(interval_ns), f"data/bars/{ident}", write_block)


def write_mark_prices(
    root: Path,
    instrument_id: InstrumentId,
    precision: int,
    tables: list[pa.Table],
    report: ImportReport,
    interval_ns: int,
) -> None:
    """Write ``MarkPriceUpdate`` rows from tables with ``ts`` (int64 ns) and ``value``
    (decimal128) columns, at ``precision`` decimals; dedupe and blocks as for bars."""
    from nautilus_trader.model import MarkPriceUpdate, Price

    ident = str(instrument_id)
    st = report.entry("mark_prices", ident)
    tables = [t for t in tables if t.num_rows]
    st.rows_read += sum(t.num_rows for t in tables)
    if not tables:
        return
    table, dups = merge_sources(tables)
    st.rows_duplicate += dups
    ts = table["ts"].to_numpy()
    if table["value"].null_count:
        raise ValueError(f"{ident}: a mark price is empty; nothing written")
    # Exact: decimal -> scaled int -> Price.from_raw would need FIXED_SCALAR handling; the
    # string route is exact and fast enough for mark prices (one per hour).
    values = table["value"].combine_chunks().cast(pa.decimal128(38, precision)).cast(pa.string()).to_pylist()
    def write_block(staging: _Staging, idx: np.ndarray) -> tuple[str, int]:
        ups = [MarkPriceUpdate(instrument_id, Price.from_str(values[i]), int(ts[i]), int(ts[i])) for i in idx.tolist()]
        return str(staging.catalog().write_mark_price_updates(ups)), len(ups)

    _commit_blocks(root, st, ts, lambda: existing_intervals(root, NautilusDataType.MarkPriceUpdate, ident),
                   _split_gap(interval_ns), f"data/mark_prices/{ident}", write_block)


def funding_schema(instrument_id: InstrumentId) -> pa.Schema:
    """Parquet schema of a funding file: Nautilus's Arrow schema for ``FundingRateUpdate``
    (``rate`` utf8 decimal string, ``interval`` uint64 minutes, ``next_funding_ns``/``ts_event``/
    ``ts_init`` timestamp[ns, UTC]) without the ``identifier`` column, like the catalog's own files,
    plus metadata ``type_name`` and ``instrument_id``."""
    sch = pa.ipc.read_schema(pa.py_buffer(get_arrow_schema_bytes(FundingRateUpdate)))
    fields = [f for f in sch if f.name != "identifier"]
    return pa.schema(fields, metadata={"type_name": "FundingRateUpdate", "instrument_id": str(instrument_id)})


def write_funding_rates(
    root: Path,
    instrument_id: InstrumentId,
    tables: list[pa.Table],
    report: ImportReport,
    hint_column: str | None = "hint_minutes",
) -> None:
    """Write ``FundingRateUpdate`` rows.

    Input tables: ``ts`` (int64 ns, already snapped to the hour grid), ``rate`` (utf8 decimal
    fraction, e.g. ``"0.00010000"`` = 0.01 %) and optionally ``hint_minutes`` (int64, the source's
    own interval, 0 if unknown). Each row is written with ``ts_event = ts_init = next_funding_ns =
    ts`` and ``interval`` (minutes) derived from the gaps over the merged input
    (:func:`catalog.common.funding_intervals`); disagreements with the hint become report warnings.
    """
    from catalog.common import funding_intervals

    ident = str(instrument_id)
    st = report.entry("funding_rates", ident)
    tables = [t for t in tables if t.num_rows]
    st.rows_read += sum(t.num_rows for t in tables)
    if not tables:
        return
    cols = ["ts", "rate", "hint_minutes"]
    tables = [
        t if "hint_minutes" in t.column_names else t.append_column("hint_minutes", pa.array(np.zeros(t.num_rows, np.int64)))
        for t in tables
    ]
    table, dups = merge_sources([t.select(cols) for t in tables])
    st.rows_duplicate += dups
    ts = table["ts"].to_numpy()
    minutes, warns = funding_intervals(ts, table["hint_minutes"].to_numpy())
    report.warnings += [f"{ident}: {w}" for w in warns]
    schema = funding_schema(instrument_id)
    rates = table["rate"].combine_chunks()
    if rates.null_count:
        raise ValueError(f"{ident}: a funding rate is empty; nothing written")
    def write_block(staging: _Staging, idx: np.ndarray) -> tuple[str, int]:
        tsa = pa.array(ts[idx], pa.timestamp("ns", tz="UTC"))
        out = pa.table(
            {
                "rate": rates.take(pa.array(idx)),
                "interval": pa.array(minutes[idx], pa.uint64()),
                "next_funding_ns": tsa,
                "ts_event": tsa,
                "ts_init": tsa,
            },
            schema=schema,
        )
        rel = f"data/funding_rates/{ident}/{ts_file_part(ts[idx[0]])}_{ts_file_part(ts[idx[-1]])}.parquet"
        tmp = staging.path / rel
        tmp.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(out, tmp, compression="zstd")
        return rel, int(idx.size)

    _commit_blocks(root, st, ts, lambda: existing_intervals(root, NautilusDataType.FundingRateUpdate, ident),
                   DAY_NS, f"data/funding_rates/{ident}", write_block)


def write_instruments(root: Path, instruments: list, report: ImportReport, count_once: bool = False) -> None:
    """Write instrument definitions (idempotent: an identical file is left alone, a changed
    definition replaces the old file atomically and is reported as a warning). With
    ``count_once`` an instrument already handled in this ``report`` is not written again."""
    if count_once:
        instruments = [i for i in instruments if f"instruments/{i.id}" not in report.stats]
    if not instruments:
        return
    with import_lock(root), _Staging(root) as staging:
        cat = staging.catalog()
        for inst in instruments:
            st = report.entry("instruments", str(inst.id))
            st.rows_read += 1
            rels = cat.write_instruments([inst])
            for rel in rels:
                rel = str(rel)
                src, dst = staging.path / rel, Path(root) / rel
                siblings = [p for p in dst.parent.glob("*.parquet")] if dst.parent.is_dir() else []
                if dst.exists() and _same_rows(src, dst):
                    st.rows_skipped += 1
                    continue
                if siblings and not dst.exists():
                    report.warnings.append(f"{inst.id}: another instrument file exists: {[p.name for p in siblings]}")
                elif dst.exists():
                    report.warnings.append(f"{inst.id}: instrument definition changed; replaced {rel}")
                st.files_written.append(staging.promote(rel))
                st.rows_written += 1


def _same_rows(a: Path, b: Path) -> bool:
    try:
        return pq.read_table(a).equals(pq.read_table(b))
    except Exception:
        return False


def write_trades(
    root: Path,
    instrument_id: InstrumentId,
    price_precision: int,
    size_precision: int,
    tables: list[pa.Table],
    report: ImportReport,
) -> None:
    """Write ``TradeTick`` rows (Binance aggTrades) into ``data/trades/<instrument_id>/``.

    Input tables: ``ts`` (int64 ns trade time), ``price``, ``size`` (decimal128), ``buyer_maker``
    (bool; True = the aggressor sold), ``trade_id`` (int64). Rows are merged, sorted by
    (ts, trade_id) and deduplicated on ``trade_id`` (several trades share one timestamp, so the
    bar rule "first row per timestamp" would lose trades); rows whose time lies inside an
    existing trades file are skipped; blocks split at gaps > 1 day; one file per block, atomic.
    """
    from nautilus_trader.persistence import TradeTickDataWrangler

    ident = str(instrument_id)
    st = report.entry("trades", ident)
    tables = [t for t in tables if t.num_rows]
    st.rows_read += sum(t.num_rows for t in tables)
    if not tables:
        return
    t = pa.concat_tables([x.select(["ts", "price", "size", "buyer_maker", "trade_id"]) for x in tables])
    ts = t["ts"].to_numpy()
    ids = t["trade_id"].to_numpy()
    order = np.lexsort((ids, ts))
    keep = np.ones(order.size, dtype=bool)
    sorted_ids = ids[order]
    _, first = np.unique(sorted_ids, return_index=True)
    keep[:] = False
    keep[first] = True
    idx = order[keep]
    idx = idx[np.lexsort((ids[idx], ts[idx]))]
    st.rows_duplicate += int(t.num_rows - idx.size)
    t = t.take(pa.array(idx))
    ts = t["ts"].to_numpy()
    wrangler = TradeTickDataWrangler(ident, price_precision, size_precision)
    def write_block(staging: _Staging, idx: np.ndarray) -> tuple[str, int]:
        sel = t.take(pa.array(idx))
        tsu = pa.array(sel["ts"].to_numpy().astype(np.uint64), pa.uint64())
        side = np.where(sel["buyer_maker"].to_numpy(zero_copy_only=False), "SELLER", "BUYER")
        batch = pa.record_batch({
            "price": sel["price"].combine_chunks().cast(DEC),
            "size": sel["size"].combine_chunks().cast(DEC),
            "aggressor_side": pa.array(side.tolist(), pa.string()),
            "trade_id": pc_cast_str(sel["trade_id"]),
            "ts_event": tsu,
            "ts_init": tsu,
        })
        ticks = wrangler.process_record_batch_bytes(_ipc_bytes(batch))
        return str(staging.catalog().write_trade_ticks(ticks)), len(ticks)

    # plan_blocks works for non-decreasing ts too
    _commit_blocks(root, st, ts, lambda: existing_intervals_kind(root, "trades", ident), DAY_NS,
                   f"data/trades/{ident}", write_block)


def pc_cast_str(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """int64 -> utf8 Arrow array."""
    import pyarrow.compute as pc

    a = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return pc.cast(a, pa.string())


def existing_intervals_kind(root: Path, folder: str, identifier: str) -> list[tuple[int, int]]:
    """Sorted inclusive ``(start_ns, end_ns)`` of the files in ``data/<folder>/<identifier>``,
    parsed from the file names (``<start>_<end>.parquet``, see :func:`ts_file_part`)."""
    import calendar

    d = Path(root) / "data" / folder / identifier
    out = []
    for p in d.glob("*.parquet") if d.is_dir() else []:
        parts = p.stem.split("_")
        if len(parts) != 2:
            continue
        vals = []
        for s in parts:
            date, frac = s[:-1].rsplit("-", 1)
            tm = time.strptime(date, "%Y-%m-%dT%H-%M-%S")
            vals.append(calendar.timegm(tm) * 1_000_000_000 + int(frac))
        out.append((vals[0], vals[1]))
    return sorted(out)

