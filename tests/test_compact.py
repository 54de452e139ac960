"""Compact bar store: exact round trip on REAL bars (vs Nautilus's own catalog and the raw zips)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from catalog.compact import (
    ROW_GROUP,
    compact_dir,
    convert_catalog_bars,
    import_kline_zips,
    load_bars,
    read_arrays,
    write_compact_arrays,
)
from catalog.errors import DataImportError
from catalog.inventory import catalog_inventory
from catalog.store import open_catalog
from nautilus_app.paths import shared_data_dir
from tests.fixtures.binance_mock import read_zip_rows

BV = shared_data_dir() / "binance-vision"
BT = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
MIN_NS = 60_000_000_000

pytestmark = pytest.mark.skipif(not BV.is_dir(), reason="shared Binance Vision mirror not available")


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compact")
    # 2019 (6-decimal volumes, ms) with maintenance gaps, and 2025-06 (µs timestamps, > ROW_GROUP rows)
    import_binance_vision(root, base_url=BV, symbols=["BTCUSDT"], start="2019-10-16", end="2019-11-13")
    import_binance_vision(root, base_url=BV, symbols=["BTCUSDT"], start="2025-05-20", end="2025-07-31")
    convert_catalog_bars(root, BT)
    return root


def test_round_trip_identical_to_nautilus_catalog(cat: Path) -> None:
    ref = open_catalog(cat).query_bars([BT])
    got = load_bars(cat, BT, None, None)
    assert len(got) == len(ref) > ROW_GROUP
    assert len(list(compact_dir(cat, BT).glob("*.parquet"))) >= 4  # one file per calendar month
    assert got == ref  # Bar equality: type, o/h/l/c/v (value and precision), ts_event, ts_init
    assert [str(b) for b in got[:1000:97]] == [str(b) for b in ref[:1000:97]]


def test_round_trip_equals_raw_zip_rows_and_range_read(cat: Path) -> None:
    rows = read_zip_rows(BV / "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip")  # µs open times
    s = pd.Timestamp("2025-06-01", tz="UTC").value
    e = pd.Timestamp("2025-07-01", tz="UTC").value
    bars = load_bars(cat, BT, s + MIN_NS, e + MIN_NS)  # ts = close: June's bars close 00:01 .. 07-01 00:00
    assert len(bars) == len(rows) == 43_200
    for b, r in zip(bars, rows, strict=True):
        assert b.ts_init == int(r[0]) * 1_000 + MIN_NS
        assert (b.open.as_decimal(), b.high.as_decimal(), b.low.as_decimal(), b.close.as_decimal(),
                b.volume.as_decimal()) == tuple(Decimal(x) for x in r[1:6])
    assert load_bars(cat, BT, e + 10 * 365 * 86_400 * 10**9, None) == []


def test_footprint_and_inventory(cat: Path) -> None:
    n = len(open_catalog(cat).query_bars([BT]))
    nbytes = sum(p.stat().st_size for p in compact_dir(cat, BT).glob("*.parquet"))
    nautilus = sum(p.stat().st_size for p in (cat / "data/bars" / BT).glob("*.parquet"))
    assert nbytes / n < 8.0 < 30.0 < nautilus / n  # measured ~7.5 vs ~33 bytes per bar on these months
    inv = catalog_inventory(cat)
    assert (inv.kind == "bars").sum() == 1  # compact copy of a stored bar type is not listed twice


def test_rejects_bad_input(tmp_path: Path) -> None:
    ts = np.arange(1, 4, dtype=np.int64) * MIN_NS
    p = np.array([100, 101, 102], dtype=np.int64)
    with pytest.raises(ValueError, match="high/low"):
        write_compact_arrays(tmp_path, BT, 2, 6, ts, p, p - 5, p, p, p)
    with pytest.raises(ValueError, match="increasing"):
        write_compact_arrays(tmp_path, BT, 2, 6, ts[::-1].copy(), p, p, p, p, p)


def test_import_kline_zips_equals_raw_rows_and_refuses_bad_rows(tmp_path: Path) -> None:
    import zipfile

    zips = [BV / "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip",  # µs, 5-dp volumes
            *sorted((BV / "data/spot/daily/klines/BTCUSDT/1m").glob("BTCUSDT-1m-2019-10-1[6-9].zip"))]  # ms, 6 dp
    n, _ = import_kline_zips(tmp_path, BT, zips, 2, 6, MIN_NS)
    rows = [r for z in zips for r in read_zip_rows(z)]
    exp = sorted((int(r[0]) * (1_000 if int(r[0]) >= 10**14 else 1_000_000) + MIN_NS,
                  *(int(Decimal(x) * 100) for x in r[1:5]), int(Decimal(r[5]) * 10**6)) for r in rows)
    arr, pp, sp = read_arrays(tmp_path, BT)
    got = list(zip(*(arr[k].tolist() for k in ("ts", "open", "high", "low", "close", "volume")), strict=True))
    assert n == len(rows) == len(got) and (pp, sp) == (2, 6)
    assert got == exp
    # a price with more decimals than the instrument precision: refused, naming the file and row
    text = zipfile.ZipFile(zips[1]).read(zipfile.ZipFile(zips[1]).namelist()[0]).decode().splitlines()
    cells = text[5].split(",")
    cells[2] = cells[2][:-8] + "12345678"  # e.g. 8240.00000000 -> 8240.12345678
    text[5] = ",".join(cells)
    bad = tmp_path / "BTCUSDT-1m-2019-10-20.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("BTCUSDT-1m-2019-10-20.csv", "\n".join(text))
    with pytest.raises(DataImportError, match=r"BTCUSDT-1m-2019-10-20.*row 6.*high.*8160.12345678.*more than 2 decimals"):
        import_kline_zips(tmp_path / "other", BT, [bad], 2, 6, MIN_NS)
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").rglob("*.parquet"))
