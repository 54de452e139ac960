"""Footprint and speed of the compact bar store vs Nautilus's default catalog (one JSON line).

Imports every BTCUSDT 1m bar of the shared Binance Vision mirror (real data, 560,703 bars):

1. ``nautilus``: the platform importer into Nautilus's ParquetDataCatalog (zips -> validated ->
   decimal128 Parquet), bytes per bar on disk;
2. ``compact``: the same bars from the zips into the compact store (:mod:`catalog.compact`):
   pyarrow CSV parse straight to exact decimals at the instrument precision -> int64 ticks ->
   compact Parquet. ``import_s`` / ``import_bars_per_s`` cover this whole path; ``encode_write_s``
   only the encoding + Parquet write;
3. reads: one month (2025-06) and everything into Nautilus ``Bar`` objects, from the compact store
   (:func:`catalog.compact.load_bars`) and from Nautilus's catalog (``query_bars``).

Also: the Binance zip and freqtrade feather footprints of the same data, and an extrapolation to
500 symbols x 5 years (1,314,000,000 bars) from the measured per-bar figures. Set
``SYNTHETIC_BARS=N`` to add a run on N bars of a random walk seeded from the real returns
(labelled ``synthetic``) for the scaling figures.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from catalog.binance_vision import import_binance_vision  # noqa: E402
from catalog.compact import _files, decimal_to_ticks, load_bars, write_compact_arrays  # noqa: E402
from catalog.store import open_catalog  # noqa: E402
from nautilus_app.paths import shared_data_dir  # noqa: E402

BT = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
MIN_NS = 60_000_000_000
TARGET = 500 * 5 * 525_600  # 1,314,000,000 bars


def zips() -> list[Path]:
    bv = shared_data_dir() / "binance-vision" / "data/spot"
    return sorted((bv / "monthly/klines/BTCUSDT/1m").glob("*.zip")) + sorted((bv / "daily/klines/BTCUSDT/1m").glob("*.zip"))


def parse_zip(p: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(p) as z:
        data = z.read(z.namelist()[0])
    names = [f"c{i}" for i in range(12)]
    dec_p, dec_v = pa.decimal128(18, 2), pa.decimal128(18, 6)  # instrument precisions; more decimals -> error
    t = pacsv.read_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(column_names=names),
                       convert_options=pacsv.ConvertOptions(include_columns=names[:6], column_types={
                           "c0": pa.int64(), "c1": dec_p, "c2": dec_p, "c3": dec_p, "c4": dec_p, "c5": dec_v}))
    t0 = t["c0"].to_numpy()
    ts = np.where(t0 >= 10**14, t0 * 1_000, t0 * 1_000_000) + MIN_NS
    return {"ts": ts, **{k: decimal_to_ticks(t[c], 6 if k == "volume" else 2, k) for k, c in
                         zip(("open", "high", "low", "close", "volume"), ("c1", "c2", "c3", "c4", "c5"), strict=True)}}


def du(paths: list[Path]) -> int:
    return int(sum(p.stat().st_size for p in paths))


def main() -> None:
    files = zips()
    tmp = Path(tempfile.mkdtemp(prefix="footprint-"))
    out: dict = {"data": "real BTCUSDT spot 1m bars, shared Binance Vision mirror", "zip_files": len(files)}

    # 1. Nautilus default catalog via the platform importer
    t0 = time.perf_counter()
    import_binance_vision(tmp / "nautilus", base_url=shared_data_dir() / "binance-vision", symbols=["BTCUSDT"])
    out["nautilus_import_s"] = round(time.perf_counter() - t0, 3)
    nfiles = sorted((tmp / "nautilus/data/bars" / BT).glob("*.parquet"))

    # 2. compact import from the zips
    t0 = time.perf_counter()
    parts = [parse_zip(p) for p in files]
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(arr["ts"], kind="stable")
    arr = {k: a[order] for k, a in arr.items()}
    t1 = time.perf_counter()
    write_compact_arrays(tmp / "compact", BT, 2, 6, arr["ts"], arr["open"], arr["high"], arr["low"], arr["close"],
                         arr["volume"])
    t2 = time.perf_counter()
    n = int(arr["ts"].size)
    cbytes = du(_files(tmp / "compact", BT))
    nbytes = du(nfiles)
    out |= {
        "bars": n,
        "bytes_on_disk": cbytes,
        "bytes_per_bar": round(cbytes / n, 3),
        "import_s": round(t2 - t0, 3),
        "import_bars_per_s": round(n / (t2 - t0)),
        "parse_s": round(t1 - t0, 3),
        "encode_write_s": round(t2 - t1, 3),
        "encode_write_bars_per_s": round(n / (t2 - t1)),
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
    t0 = time.perf_counter()
    bars = load_bars(tmp / "compact", BT)
    dt_all = time.perf_counter() - t0
    out["read_all_s"] = round(dt_all, 3)
    out["read_all_bars_per_s"] = round(len(bars) / dt_all)
    del bars
    cat = open_catalog(tmp / "nautilus")
    t0 = time.perf_counter()
    ref = cat.query_bars([BT])
    out["nautilus_read_all_s"] = round(time.perf_counter() - t0, 3)
    out["nautilus_read_all_bars_per_s"] = round(len(ref) / (time.perf_counter() - t0))
    del ref

    # extrapolation (linear in bars)
    out["extrapolated_500_symbols_5_years"] = {
        "bars": TARGET,
        "compact_GB": round(TARGET * cbytes / n / 1e9, 1),
        "nautilus_GB": round(TARGET * nbytes / n / 1e9, 1),
        "binance_zip_GB": round(TARGET * du(files) / n / 1e9, 1),
        "compact_import_hours_1_core_path": round(TARGET / out["import_bars_per_s"] / 3600, 2),
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
