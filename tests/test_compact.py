"""Compact bar store: exact round trip on REAL bars (vs Nautilus's own catalog and the raw zips)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision, import_kline_zips
from catalog.compact import compact_dir, convert_catalog_bars, read_arrays, write_compact_arrays
from catalog.compact_codec import ROW_GROUP
from catalog.compact_loader import load_bars
from catalog.errors import DataImportError
from catalog.inventory import catalog_inventory
from catalog.store import open_catalog
from core.paths import shared_data_dir
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


def test_ticks_to_decimal_is_exact_against_python_decimals() -> None:
    from catalog.compact_codec import ticks_to_decimal

    rng = np.random.default_rng(3)
    small = rng.integers(-(2**51), 2**51, 2_000)  # float64 high-word path
    big = np.array([2**62, -(2**62), 2**63 - 1, -(2**63) + 1, 2**52, -(2**52), 0, 1, -1], dtype=np.int64)  # limb path
    for precision in (0, 2, 6, 8, 16):
        for ticks in (small, big):
            if precision == 0 and ticks is big:
                continue  # 2**63 * 10**16 needs 36 digits: fine for decimal128(38) but keep the case list short
            got = ticks_to_decimal(ticks, precision).to_pylist()
            exp = [Decimal(int(t)).scaleb(-precision) for t in ticks]
            assert got == exp, precision
    with pytest.raises(ValueError, match="precision"):
        ticks_to_decimal(small, 17)


def _zip_deflated(path: Path, name: str, text: str) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, text)
    return path


def test_parse_kline_zip_exact_at_the_printed_scale(tmp_path: Path) -> None:
    from catalog.binance_csv import parse_kline_zip

    row = "1699999980000,{o},{h},{lo},{c},{v},1700000039999,0,1,0,0,0"
    ok = [row.format(o="37000.10000000", h="37001.00000000", lo="36999.99000000", c="37000.50000000",
                     v="123456789012.12345600"),  # volume * 1e8 > int64: the checked Arrow cast path
          row.replace("1699999980000", "1700000040000").replace("1700000039999", "1700000099999").format(o="37000.5", h="37000.5", lo="37000.5", c="37000.5",
                                                                 v="0.000001")]  # fewer decimals than printed
    arr = parse_kline_zip(_zip_deflated(tmp_path / "ok.zip", "ok.csv", "\n".join(ok) + "\n"), 2, 6, MIN_NS)
    assert arr["open"].tolist() == [3700010, 3700050] and arr["low"].tolist() == [3699999, 3700050]
    assert arr["volume"].tolist() == [123456789012123456, 1]
    assert arr["ts"].tolist() == [1_700_000_040_000_000_000, 1_700_000_100_000_000_000]  # close = open + 1m
    # a close time that does not match the interval (a 5m file imported as 1m): refused with file and row
    five = ok[0] + "\n" + ok[1].replace("1700000099999", "1700000339999")
    with pytest.raises(DataImportError, match=r"five\.csv, row 2.*close_time - open_time = 299999000000 ns"):
        parse_kline_zip(_zip_deflated(tmp_path / "five.zip", "five.csv", five + "\n"), 2, 6, MIN_NS)
    # a digit beyond the precision within the printed 8 decimals, and one beyond 8 decimals: refused with row/column
    for bad_close, what in (("37000.50100000", "close"), ("37000.500000001", "close")):
        text = row.format(o="37000.10000000", h="37001.00000000", lo="36999.99000000", c=bad_close, v="1.00000000")
        with pytest.raises(DataImportError, match=rf"bad\.csv.*row 1.*{what}.*more than 2 decimals"):
            parse_kline_zip(_zip_deflated(tmp_path / "bad.zip", "bad.csv", text + "\n"), 2, 6, MIN_NS)


def test_read_zip_csv_refuses_corrupt_archives(tmp_path: Path) -> None:
    import zipfile

    from catalog.binance_csv import read_zip_csv

    text = "1700000000000,1,1,1,1,1,1700000059999,0,1,0,0,0\n" * 200
    z = _zip_deflated(tmp_path / "a.zip", "a.csv", text)
    assert read_zip_csv(z) == ("a.csv", text.encode())
    raw = bytearray(z.read_bytes())
    info = zipfile.ZipFile(z).infolist()[0]
    start = info.header_offset + 30 + len(info.filename)
    raw[start + info.compress_size // 2] ^= 0xFF  # flip a byte inside the deflate stream
    (tmp_path / "corrupt.zip").write_bytes(bytes(raw))
    with pytest.raises(DataImportError, match=r"corrupt\.zip.*(CRC|not a readable zip)"):
        read_zip_csv(tmp_path / "corrupt.zip")
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zz:
        zz.writestr("a.csv", text)
        zz.writestr("b.csv", text)
    with pytest.raises(DataImportError, match=r"two\.zip.*exactly one CSV"):
        read_zip_csv(tmp_path / "two.zip")


def test_writes_merge_with_stored_months_and_refuse_conflicts(tmp_path: Path) -> None:
    zips = sorted((BV / "data/spot/daily/klines/BTCUSDT/1m").glob("BTCUSDT-1m-2019-10-1[6-9].zip"))
    rows = sorted(r for z in zips for r in read_zip_rows(z))
    ts = np.array([int(r[0]) * 1_000_000 + MIN_NS for r in rows], dtype=np.int64)
    px = {k: np.array([int(Decimal(r[i]) * 100) for r in rows], dtype=np.int64) for i, k in enumerate("ohlc", 1)}
    vol = np.array([int(Decimal(r[5]) * 10**6) for r in rows], dtype=np.int64)

    def write(sl: slice, **kw: np.ndarray) -> list[Path]:
        cols = {"o": px["o"], "h": px["h"], "l": px["l"], "c": px["c"], "v": vol} | kw
        return write_compact_arrays(tmp_path, BT, 2, 6, ts[sl], cols["o"][sl], cols["h"][sl], cols["l"][sl],
                                    cols["c"][sl], cols["v"][sl])

    half = len(ts) // 2
    write(slice(0, half + 100))  # first half and a bit
    write(slice(half, None))  # overlapping second half: merged into the same month
    files = list(compact_dir(tmp_path, BT).glob("*.parquet"))
    arr, _, _ = read_arrays(tmp_path, BT)
    assert len(files) == 1 and arr["ts"].tolist() == ts.tolist() and arr["volume"].tolist() == vol.tolist()
    assert write(slice(10, 500)) == []  # already stored, identical: nothing written
    changed = vol.copy()
    changed[20] += 1
    with pytest.raises(ValueError, match=f"ts={int(ts[20])} ns differs from the stored one"):
        write(slice(0, 50), v=changed)
    assert read_arrays(tmp_path, BT)[0]["volume"].tolist() == vol.tolist()  # untouched
