"""Compact bar store -> Nautilus ``Bar`` objects (:func:`load_bars`): Arrow record batches built from the
decoded integer ticks, handed to Nautilus's Rust ``BarDataWrangler``. The store is :mod:`catalog.compact`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from catalog.compact import _files_in_range, _read_file_arrays, compact_dir
from catalog.compact_codec import ticks_to_decimal

#: month files decoded ahead (on 2 threads) of the wrangler in :func:`load_bars`
_READ_AHEAD = 12


def _ipc_batch(arrs: dict[str, np.ndarray], pp: int, sp: int) -> bytes:
    """One Arrow IPC stream (Nautilus's bar schema: decimal128(38, 16) o/h/l/c/v + uint64 ts)."""
    tsu = pa.array(arrs["ts"].astype(np.uint64), pa.uint64())
    batch = pa.record_batch({k: ticks_to_decimal(arrs[k], pp) for k in ("open", "high", "low", "close")}
                            | {"volume": ticks_to_decimal(arrs["volume"], sp), "ts_event": tsu, "ts_init": tsu})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()


def load_bars(root: str | Path, bar_type: str, start_ns: int | None = None, end_ns: int | None = None) -> list:
    """Nautilus ``Bar`` objects of ``bar_type`` with ``start_ns <= ts_init < end_ns`` (UTC ns,
    None = unbounded), sorted, ``ts_event = ts_init`` = bar close; precisions from the files.

    Arrow straight into Nautilus, a month per batch: decode the integer columns (numpy), build
    the decimal128(38, 16) columns exactly from the int64 ticks (:func:`ticks_to_decimal`), one
    Arrow IPC record batch per month file, then Nautilus's Rust
    ``BarDataWrangler.process_record_batch_bytes`` makes the ``Bar`` objects (the floor: one
    272-byte Python object per bar, ~3 M bars/s of CPU). Up to :data:`_READ_AHEAD` months are
    prepared on 2 threads before the wrangler (which holds the GIL) turns them into bars; the
    batches of a window are then freed, so memory stays ~100 bytes/bar x that window.
    Returns ``[]`` when nothing matches; raises ``ValueError`` if files overlap in time.
    """
    from nautilus_trader.persistence import BarDataWrangler

    files = _files_in_range(root, bar_type, start_ns, end_ns)

    def prepare(f: Path) -> tuple[bytes | None, int, int, int, int]:
        arrs, pp, sp = _read_file_arrays(f, start_ns, end_ns)
        if not arrs["ts"].size:
            return None, pp, sp, 0, 0
        return _ipc_batch(arrs, pp, sp), pp, sp, int(arrs["ts"][0]), int(arrs["ts"][-1])

    out: list = []
    wranglers: dict[tuple[int, int], BarDataWrangler] = {}
    last_ts = None
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i in range(0, len(files), _READ_AHEAD):
            for f, (ipc, pp, sp, first, last) in zip(files[i:i + _READ_AHEAD],
                                                     list(pool.map(prepare, files[i:i + _READ_AHEAD])), strict=True):
                if ipc is None:
                    continue
                if last_ts is not None and first <= last_ts:
                    raise ValueError(f"{compact_dir(root, bar_type)}: files overlap in time at {first} ns ({f.name})")
                last_ts = last
                w = wranglers.get((pp, sp)) or wranglers.setdefault((pp, sp), BarDataWrangler(str(bar_type), pp, sp))
                out += w.process_record_batch_bytes(ipc)
    return out
