"""catalog.validation on REAL rows (copies altered in memory where a defect is needed)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from catalog.binance_vision import import_binance_vision
from catalog.validation import (
    ValidationError,
    find_gaps,
    funding_interval_changes,
    missing_funding,
    validate_bar_table,
    validate_catalog,
)
from core.paths import shared_data_dir
from tests.fixtures.binance_mock import read_zip_rows

BV = shared_data_dir() / "binance-vision"
MIN_NS = 60_000_000_000
HOUR_NS = 60 * MIN_NS

pytestmark = pytest.mark.skipif(not BV.is_dir(), reason="shared Binance Vision mirror not available")


def day_table(day: str, symbol: str = "BTCUSDT") -> pa.Table:
    rows = read_zip_rows(BV / f"data/spot/daily/klines/{symbol}/1m/{symbol}-1m-{day}.zip")
    ts = [int(r[0]) * 1_000_000 + MIN_NS for r in rows]
    cols = {c: pa.array([Decimal(r[i]) for r in rows], pa.decimal128(38, 16))
            for i, c in enumerate(("open", "high", "low", "close", "volume"), start=1)}
    return pa.table({"ts": pa.array(ts, pa.int64())} | cols)


def test_known_halt_is_info_not_error() -> None:
    t = day_table("2023-03-24")
    _, res = validate_bar_table(t, MIN_NS, market="spot", symbol="BTCUSDT")
    assert res.errors == []
    gaps = [p for p in res.problems if p.check == "gaps"]
    assert len(gaps) == 1 and gaps[0].known_halt and gaps[0].severity == "info" and gaps[0].rows == 80
    # the same gap on another venue/symbol is not a known halt -> warning
    g = find_gaps(t["ts"].to_numpy(), MIN_NS, market="um", symbol="BTCUSDT")
    assert len(g) == 1 and g[0].severity == "warning" and not g[0].known_halt


def test_unknown_gap_is_warning() -> None:
    t = day_table("2024-08-05")
    keep = np.ones(t.num_rows, bool)
    keep[100:110] = False  # 10 bars removed from a complete real day
    _, res = validate_bar_table(t.filter(pa.array(keep)), MIN_NS, market="spot", symbol="BTCUSDT")
    gaps = [p for p in res.problems if p.check == "gaps"]
    assert len(gaps) == 1 and gaps[0].severity == "warning" and gaps[0].rows == 10


def test_ohlc_refused_then_repaired() -> None:
    t = day_table("2024-08-05")
    hi, lo = t["high"].to_pylist(), t["low"].to_pylist()
    hi[10], lo[10] = lo[10], hi[10]  # swapped high/low (row 10)
    bad = t.set_column(2, "high", pa.array(hi, t["high"].type)).set_column(3, "low", pa.array(lo, t["low"].type))
    _, res = validate_bar_table(bad, MIN_NS)
    with pytest.raises(ValidationError, match=r"\[ohlc\].*row 10"):
        res.raise_if_errors("test.zip")
    fixed, res2 = validate_bar_table(bad, MIN_NS, repair={"ohlc"})
    assert res2.errors == [] and res2.problems[0].repaired
    r = {c: fixed[c][10].as_py() for c in ("open", "high", "low", "close")}
    assert r["high"] == max(r.values()) and r["low"] == min(r.values())
    assert fixed.num_rows == t.num_rows


def test_duplicates_and_order() -> None:
    t = day_table("2024-08-05")
    idx = list(range(t.num_rows))
    dup = t.take(pa.array(idx[:6] + [5] + idx[6:]))  # row 5 twice
    _, res = validate_bar_table(dup, MIN_NS)
    assert [p.check for p in res.errors] == ["duplicates"]
    fixed, _ = validate_bar_table(dup, MIN_NS, repair={"duplicates"})
    assert fixed.equals(t)
    swapped = t.take(pa.array(idx[:20] + [21, 20] + idx[22:]))
    _, res = validate_bar_table(swapped, MIN_NS)
    assert [p.check for p in res.errors] == ["order"]
    fixed, _ = validate_bar_table(swapped, MIN_NS, repair={"order"})
    assert fixed.equals(t)
    with pytest.raises(ValueError, match="cannot repair"):
        validate_bar_table(t, MIN_NS, repair={"gaps"})


def test_funding_missing_and_interval_change(tmp_path: Path) -> None:
    rows = read_zip_rows(BV / "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2023-08.zip")
    f = np.array([int(r[0]) * 1_000_000 for r in rows], dtype=np.int64)
    bars = np.arange(f[0] + MIN_NS, f[0] + 3 * 86_400_000_000_000, MIN_NS)  # 3 days of minute closes
    assert missing_funding(bars, f) == []
    holes = missing_funding(bars, np.delete(f, [3, 4]))  # 2023-08-02 00:00 and 08:00 removed
    assert len(holes) == 1 and holes[0].rows == 2 and "2023-08-02 00:00 .. 2023-08-02 08:00" in holes[0].message
    # a schedule change 8 h -> 4 h on real settlement times
    t = np.r_[f[:5], f[4] + np.arange(1, 4) * 4 * HOUR_NS]
    ch = funding_interval_changes(t)
    assert len(ch) == 1 and "480 to 240" in ch[0].message


def test_validate_catalog_flags_perp_without_funding(tmp_path: Path) -> None:
    import_binance_vision(tmp_path, base_url=BV, market="um", symbols=["BTCUSDT"], start="2023-08-01", end="2023-08-02")
    df = validate_catalog(tmp_path)
    miss = df[df.check == "funding_missing"]
    assert len(miss) == 1 and miss.iloc[0].severity == "error"
    # bar closes 08-01 00:01 .. 08-03 00:00; settlements strictly inside: 08-01 08:00, 16:00, 08-02 00:00, 08:00, 16:00
    assert miss.iloc[0].rows == 5
