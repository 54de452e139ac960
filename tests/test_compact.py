"""Compact bar store: exact round trip on REAL bars (vs Nautilus's own catalog and the raw zips)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from catalog.compact import ROW_GROUP, compact_dir, convert_catalog_bars, load_bars, write_compact_arrays
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
    assert len(got) == len(ref) > 2 * ROW_GROUP
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
    assert nbytes / n < 9.0 < 30.0 < nautilus / n  # measured ~8.3 vs ~33 bytes per bar
    inv = catalog_inventory(cat)
    assert (inv.kind == "bars").sum() == 1  # compact copy of a stored bar type is not listed twice


def test_rejects_bad_input(tmp_path: Path) -> None:
    ts = np.arange(1, 4, dtype=np.int64) * MIN_NS
    p = np.array([100, 101, 102], dtype=np.int64)
    with pytest.raises(ValueError, match="high/low"):
        write_compact_arrays(tmp_path, BT, 2, 6, ts, p, p - 5, p, p, p)
    with pytest.raises(ValueError, match="increasing"):
        write_compact_arrays(tmp_path, BT, 2, 6, ts[::-1].copy(), p, p, p, p, p)
