"""freqtrade feather import: expectations computed here with pandas on the original files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.model import NautilusDataType

from catalog.binance_vision import import_binance_vision
from catalog.errors import DataImportError
from catalog.freqtrade import import_freqtrade
from catalog.store import open_catalog
from core.paths import shared_data_dir

FT = shared_data_dir() / "freqtrade" / "binance"
BV = shared_data_dir() / "binance-vision"
WIN = FT / "futures" / "window-2023-07"
MIN_NS = 60_000_000_000
HOUR_NS = 3_600_000_000_000

pytestmark = pytest.mark.skipif(not FT.is_dir(), reason="shared freqtrade data not available")


def open_ns(df: pd.DataFrame) -> pd.Series:
    return df["date"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64")


def dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def test_spot_1m(tmp_path: Path) -> None:
    df = pd.read_feather(FT / "BTC_USDT-1m.feather")
    rep = import_freqtrade(tmp_path, data_dir=FT, pairs=["BTC/USDT"], timeframes=["1m"], trading_mode="spot")
    bars = open_catalog(tmp_path).query_bars(["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"])
    assert len(bars) == len(df) == rep.total("bars").rows_written == 130_708
    ts = open_ns(df)
    for b, i in ((bars[0], 0), (bars[-1], len(df) - 1), (bars[77_777], 77_777)):
        row = df.iloc[i]
        assert (b.open.as_decimal(), b.high.as_decimal(), b.low.as_decimal(), b.close.as_decimal()) == (
            dec(row.open), dec(row.high), dec(row.low), dec(row.close))
        assert b.volume.as_decimal() == dec(row.volume)
        assert b.ts_event == b.ts_init == int(ts.iloc[i]) + MIN_NS
    assert set(rep.stats) == {"instruments/BTCUSDT.BINANCE", "bars/BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"}


def test_futures_window(tmp_path: Path) -> None:
    rep = import_freqtrade(tmp_path, data_dir=WIN, pairs=["BTC/USDT:USDT"], timeframes=["1m"])
    cat = open_catalog(tmp_path)
    iid = "BTCUSDT-PERP.BINANCE_USDM"
    k = pd.read_feather(WIN / "BTC_USDT_USDT-1m-futures.feather")
    bars = cat.query_bars([f"{iid}-1-MINUTE-LAST-EXTERNAL"])
    assert len(bars) == len(k) == 43_199
    assert bars[-1].close.as_decimal() == dec(k.close.iloc[-1])
    assert bars[0].ts_event == int(open_ns(k).iloc[0]) + MIN_NS

    f = pd.read_feather(WIN / "BTC_USDT_USDT-8h-funding_rate.feather")
    raw = open_ns(f)
    assert (raw % (8 * HOUR_NS) != 0).any()  # the source really has ms offsets
    fr = cat.query(NautilusDataType.FundingRateUpdate, [iid])
    assert len(fr) == len(f) == rep.total("funding_rates").rows_written == 131
    for u, r, t in zip(fr, f["open"], raw, strict=True):
        assert u.rate == dec(r)
        assert u.ts_event % (8 * HOUR_NS) == 0 and abs(u.ts_event - int(t)) < 1_000_000_000
        assert u.ts_event == u.ts_init == u.next_funding_ns
        assert u.interval == 480

    m = pd.read_feather(WIN / "BTC_USDT_USDT-8h-mark.feather")
    marks = cat.query_mark_price_updates([iid])
    assert len(marks) == len(m) == 131
    assert [x.value.as_decimal() for x in marks] == [dec(c) for c in m["close"]]
    assert [x.ts_event for x in marks] == [int(t) + 8 * HOUR_NS for t in open_ns(m)]


def test_reimport_and_overlap_with_binance_vision(tmp_path: Path) -> None:
    """BV daily+monthly 2025-05-20 .. 2025-08-17 then freqtrade 2025-05-20 .. 2025-08-18 18:27:
    the union has exactly the freqtrade rows, with no duplicates; re-importing adds nothing."""
    bv = import_binance_vision(tmp_path, base_url=BV, symbols=["BTCUSDT"], start="2025-05-20", end="2025-08-31")
    assert bv.total("bars").rows_written == 17_280 + 43_200 + 44_640 + 24_480
    ft = import_freqtrade(tmp_path, data_dir=FT, pairs=["BTCUSDT"], timeframes=["1m"], trading_mode="spot")
    df = pd.read_feather(FT / "BTC_USDT-1m.feather")
    expected_ts = set((open_ns(df) + MIN_NS).tolist())
    bars = open_catalog(tmp_path).query_bars(["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"])
    ts = [b.ts_event for b in bars]
    assert len(ts) == len(set(ts)) == len(expected_ts) == 130_708
    assert set(ts) == expected_ts
    assert ft.total("bars").rows_skipped == bv.total("bars").rows_written
    files = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    again = import_freqtrade(tmp_path, data_dir=FT, pairs=["BTCUSDT"], timeframes=["1m"], trading_mode="spot")
    assert again.total("bars").rows_written == 0
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == files


def test_funding_overlap_binance_vision_then_freqtrade(tmp_path: Path) -> None:
    import_binance_vision(tmp_path, base_url=BV, market="um", symbols=["BTCUSDT"], start="2023-07-01",
                          end="2023-08-31", kinds=("fundingRate",))
    import_freqtrade(tmp_path, data_dir=WIN, pairs=["BTC/USDT:USDT"], timeframes=[])
    fr = open_catalog(tmp_path).query(NautilusDataType.FundingRateUpdate)
    ts = [u.ts_event for u in fr]
    assert len(ts) == len(set(ts)) == 186  # freqtrade's window lies inside July-August


def test_bad_feather(tmp_path: Path) -> None:
    d = tmp_path / "ft"
    d.mkdir()
    (d / "BTC_USDT-1m.feather").write_bytes(b"not a feather file")
    with pytest.raises(DataImportError, match="BTC_USDT-1m.feather"):
        import_freqtrade(tmp_path / "cat", data_dir=d)
    df = pd.read_feather(FT / "BTC_USDT-5m.feather").iloc[:100].copy()
    df.loc[41, "high"] = df.loc[41, "low"] - 1
    df.to_feather(d / "BTC_USDT-1m.feather")
    (d / "BTC_USDT-1m.feather").rename(d / "BTC_USDT-5m.feather")
    with pytest.raises(DataImportError, match=r"BTC_USDT-5m.feather, row 42: high < low"):
        import_freqtrade(tmp_path / "cat", data_dir=d)
    assert not list((tmp_path / "cat").rglob("*.parquet"))
