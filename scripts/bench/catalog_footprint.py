"""Footprint and speed of the compact bar store vs Nautilus's default catalog (one JSON line).

Imports every BTCUSDT 1m bar of the shared Binance Vision mirror (real data, 560,703 bars):

1. ``nautilus``: the platform importer into Nautilus's ParquetDataCatalog (zips -> validated ->
   decimal128 Parquet), bytes per bar on disk;
2. ``compact``: the same bars from the zips into the compact store
   (:func:`catalog.compact.import_kline_zips`: unzip + pyarrow CSV parse straight to exact
   decimals at the instrument precision on 2 threads -> int64 ticks -> checks -> compact Parquet
   compressed on 2 threads). ``import_s`` / ``import_bars_per_s`` cover this whole path
   (``import_cpu_s``: CPU time of the process, a figure less sensitive to other jobs on a shared
   machine); ``encode_write_s`` only the encoding + Parquet write;
3. reads: one month (2025-06) and everything into Nautilus ``Bar`` objects, from the compact store
   (:func:`catalog.compact.load_bars`) and from Nautilus's catalog (``query_bars``); the compact
   read split into its stages: decode to int64 numpy arrays (``read_to_numpy``), numpy -> Arrow
   decimal IPC batch, and Nautilus's ``BarDataWrangler`` IPC -> ``Bar`` objects (the floor).

Also: the Binance zip and freqtrade feather footprints of the same data, and an extrapolation to
500 symbols x 5 years (1,314,000,000 bars) from the measured per-bar figures. Set
``SYNTHETIC_BARS=N`` to add a run on N bars of a random walk seeded from the real returns
(labelled ``synthetic``) for the scaling figures.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from catalog.binance_vision import import_binance_vision  # noqa: E402
from catalog.compact import (  # noqa: E402
    _files,
    import_kline_zips,
    load_bars,
    read_arrays,
    ticks_to_decimal,
    write_compact_arrays,
)
from catalog.store import open_catalog  # noqa: E402
from nautilus_app.paths import shared_data_dir  # noqa: E402

BT = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
MIN_NS = 60_000_000_000
TARGET = 500 * 5 * 525_600  # 1,314,000,000 bars


def zips() -> list[Path]:
    bv = shared_data_dir() / "binance-vision" / "data/spot"
    return sorted((bv / "monthly/klines/BTCUSDT/1m").glob("*.zip")) + sorted((bv / "daily/klines/BTCUSDT/1m").glob("*.zip"))


def du(paths: list[Path]) -> int:
    return int(sum(p.stat().st_size for p in paths))


def main() -> None:
    files = zips()
    tmp = Path(tempfile.mkdtemp(prefix="footprint-"))
    out: dict = {"load_average_1m_at_start": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),"data": "real BTCUSDT spot 1m bars, shared Binance Vision mirror", "zip_files": len(files)}

    # 1. Nautilus default catalog via the platform importer
    t0 = time.perf_counter()
    import_binance_vision(tmp / "nautilus", base_url=shared_data_dir() / "binance-vision", symbols=["BTCUSDT"])
    out["nautilus_import_s"] = round(time.perf_counter() - t0, 3)
    nfiles = sorted((tmp / "nautilus/data/bars" / BT).glob("*.parquet"))

    # 2. compact import from the zips (catalog.compact.import_kline_zips: parse + check + write)
    t0, c0 = time.perf_counter(), time.process_time()
    n_imp, _ = import_kline_zips(tmp / "compact", BT, files, 2, 6, MIN_NS)
    t2, c2 = time.perf_counter(), time.process_time()
    arr, _, _ = read_arrays(tmp / "compact", BT)
    t1 = time.perf_counter()  # encode + write alone, same arrays, fresh folder
    write_compact_arrays(tmp / "compact-w", BT, 2, 6, arr["ts"], arr["open"], arr["high"], arr["low"], arr["close"],
                         arr["volume"])
    ew = time.perf_counter() - t1
    n = int(arr["ts"].size)
    assert n == n_imp
    cbytes = du(_files(tmp / "compact", BT))
    nbytes = du(nfiles)
    out |= {
        "bars": n,
        "bytes_on_disk": cbytes,
        "bytes_per_bar": round(cbytes / n, 3),
        "import_s": round(t2 - t0, 3),
        "import_bars_per_s": round(n / (t2 - t0)),
        "import_cpu_s": round(c2 - c0, 3),
        "import_bars_per_cpu_s": round(n / (c2 - c0)),
        "encode_write_s": round(ew, 3),
        "encode_write_bars_per_s": round(n / ew),
        "nautilus_bytes_per_bar": round(nbytes / n, 3),
        "binance_zip_bytes_per_bar": round(du(files) / n, 3),
    }
    ft = shared_data_dir() / "freqtrade/binance/BTC_USDT-1m.feather"
    if ft.exists():
        out["freqtrade_feather_bytes_per_bar"] = round(ft.stat().st_size / len(pd.read_feather(ft, columns=["date"])), 3)

    # 3. reads into Nautilus Bar objects
    s, e = pd.Timestamp("2025-06-01", tz="UTC").value + MIN_NS, pd.Timestamp("2025-07-01", tz="UTC").value + MIN_NS
    load_bars(tmp / "compact", BT, s, e)  # warm-up (imports, page cache)
    t0 = time.perf_counter()
    month = load_bars(tmp / "compact", BT, s, e)
    out["read_month_s"] = round(time.perf_counter() - t0, 4)
    out["read_month_bars"] = len(month)
    t0, c0 = time.perf_counter(), time.process_time()
    bars = load_bars(tmp / "compact", BT)
    dt_all = time.perf_counter() - t0
    out["read_all_s"] = round(dt_all, 3)
    out["read_all_bars_per_s"] = round(len(bars) / dt_all)
    out["read_all_bars_per_cpu_s"] = round(len(bars) / (time.process_time() - c0))
    del bars
    # where the read time goes: decode to int64 numpy arrays; -> Arrow decimal batch; -> Bars (Rust wrangler)
    from nautilus_trader.persistence import BarDataWrangler

    t0 = time.perf_counter()
    ra, pp, sp = read_arrays(tmp / "compact", BT)
    t1 = time.perf_counter()
    tsu = pa.array(ra["ts"].astype(np.uint64), pa.uint64())
    batch = pa.record_batch({k: ticks_to_decimal(ra[k], pp) for k in ("open", "high", "low", "close")}
                            | {"volume": ticks_to_decimal(ra["volume"], sp), "ts_event": tsu, "ts_init": tsu})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    ipc = sink.getvalue().to_pybytes()
    t2, c2 = time.perf_counter(), time.process_time()
    wb = BarDataWrangler(BT, pp, sp).process_record_batch_bytes(ipc)
    t3, c3 = time.perf_counter(), time.process_time()
    out["wrangler_ipc_to_bars_per_cpu_s"] = round(len(wb) / (c3 - c2))
    out["read_to_numpy_bars_per_s"] = round(n / (t1 - t0))
    out["numpy_to_arrow_ipc_bars_per_s"] = round(n / (t2 - t1))
    out["wrangler_ipc_to_bars_per_s"] = round(len(wb) / (t3 - t2))
    del wb
    cat = open_catalog(tmp / "nautilus")
    t0, c0 = time.perf_counter(), time.process_time()
    ref = cat.query_bars([BT])
    t1, c1 = time.perf_counter(), time.process_time()
    out["nautilus_read_all_s"] = round(t1 - t0, 3)
    out["nautilus_read_all_bars_per_s"] = round(len(ref) / (t1 - t0))
    out["nautilus_read_all_bars_per_cpu_s"] = round(len(ref) / (c1 - c0))
    del ref

    # extrapolation (linear in bars)
    out["extrapolated_500_symbols_5_years"] = {
        "bars": TARGET,
        "compact_GB": round(TARGET * cbytes / n / 1e9, 1),
        "nautilus_GB": round(TARGET * nbytes / n / 1e9, 1),
        "binance_zip_GB": round(TARGET * du(files) / n / 1e9, 1),
        "compact_import_hours_at_measured_rate": round(TARGET / out["import_bars_per_s"] / 3600, 2),
        "compact_import_cpu_hours": round(TARGET / out["import_bars_per_cpu_s"] / 3600, 2),
        "nautilus_import_hours": round(TARGET / (n / out["nautilus_import_s"]) / 3600, 2),
    }

    syn = int(os.environ.get("SYNTHETIC_BARS", "0"))
    if syn:
        rng = np.random.default_rng(7)
        close = arr["close"].astype(np.float64)
        rets = np.diff(np.log(close))[np.diff(arr["ts"]) == MIN_NS]
        path = np.exp(np.cumsum(rng.choice(rets, syn)) + np.log(close[0]))
        c = np.rint(path * 100).astype(np.int64)
        o = np.r_[c[0], c[:-1]]
        wick = np.abs(rng.choice(arr["high"] - np.maximum(arr["open"], arr["close"]), syn))
        h = np.maximum(o, c) + wick
        lo = np.minimum(o, c) - np.abs(rng.choice(np.minimum(arr["open"], arr["close"]) - arr["low"], syn))
        v = rng.choice(arr["volume"], syn)
        ts = arr["ts"][0] + np.arange(syn, dtype=np.int64) * MIN_NS
        t0 = time.perf_counter()
        write_compact_arrays(tmp / "synthetic", BT, 2, 6, ts, o, h, lo, c, v)
        w = time.perf_counter() - t0
        sb = du(_files(tmp / "synthetic", BT))
        t0 = time.perf_counter()
        nb = len(load_bars(tmp / "synthetic", BT))
        r = time.perf_counter() - t0
        out["synthetic"] = {"label": "SYNTHETIC random walk seeded from real returns", "bars": syn,
                            "bytes_per_bar": round(sb / syn, 3), "encode_write_bars_per_s": round(syn / w),
                            "read_all_bars_per_s": round(nb / r)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
