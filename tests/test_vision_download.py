"""Binance Vision HTTP downloader against a local server serving the REAL shared mirror
(tests/fixtures/vision_server.py). Expected bars come from the raw zips read here."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog.vision_download import ChecksumError, download_binance_vision, plan_archives
from core.paths import shared_data_dir
from tests.fixtures.binance_mock import read_zip_rows
from tests.fixtures.vision_server import VisionServer

BV = shared_data_dir() / "binance-vision"
SPOT = "data/spot"
MIN_NS = 60_000_000_000
BT = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"

pytestmark = pytest.mark.skipif(not BV.is_dir(), reason="shared Binance Vision mirror not available")


def expected(paths: list[Path]) -> list[tuple]:
    out = []
    for p in paths:
        for r in read_zip_rows(p):
            t = int(r[0])
            out.append(((t * 1_000 if t >= 10**14 else t * 1_000_000) + MIN_NS, *(Decimal(x) for x in r[1:6])))
    return sorted(out)


def stored_bars(root: Path) -> list[tuple]:
    rows = []
    for f in sorted((root / "data/bars" / BT).glob("*.parquet")):
        t = pq.read_table(f)
        ts = pc.cast(t["ts_init"], "int64").to_pylist()
        cols = [t[c].to_pylist() for c in ("open", "high", "low", "close", "volume")]
        rows += [(ts[i], *(c[i] for c in cols)) for i in range(t.num_rows)]
    return sorted(rows)


def test_plan_monthly_then_current_month_daily() -> None:
    plan = plan_archives("klines", "spot", "BTCUSDT", "1m", dt.date(2025, 6, 20), dt.date(2025, 8, 17),
                         today=dt.date(2025, 8, 18))
    assert [m for m, _ in plan] == ["data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip",
                                    "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-07.zip", ""]
    assert len(plan[0][1]) == 11 and len(plan[2][1]) == 17  # fallback days 06-20..30; Aug 1..17


def test_download_monthly_preferred_daily_fallback_and_current_month(tmp_path: Path) -> None:
    kl = BV / SPOT / "monthly/klines/BTCUSDT/1m"
    dl = BV / SPOT / "daily/klines/BTCUSDT/1m"
    sources = ([dl / f"BTCUSDT-1m-2025-05-{d:02d}.zip" for d in range(20, 32)]  # no monthly May: daily
               + [kl / "BTCUSDT-1m-2025-06.zip", kl / "BTCUSDT-1m-2025-07.zip"]
               + [dl / f"BTCUSDT-1m-2025-08-{d:02d}.zip" for d in range(1, 18)])  # current month: daily
    with VisionServer(BV) as srv:
        rep = download_binance_vision(tmp_path, base_url=srv.url, symbols=["BTCUSDT"], start="2025-05-20",
                                      end="2025-08-17", today=dt.date(2025, 8, 18), progress=False, workers=4)
        # monthly archives were used for June/July: no daily June/July request
        assert srv.count("BTCUSDT-1m-2025-06-") == 0 and srv.count("BTCUSDT-1m-2025-07-") == 0
        assert srv.count("monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-08.zip") == 0  # current month: no monthly
        assert len(rep.downloaded) == len(sources)
        assert stored_bars(tmp_path) == expected(sources)
        # rerun: everything from the cache, nothing written
        n = len(srv.requests)
        rep2 = download_binance_vision(tmp_path, base_url=srv.url, symbols=["BTCUSDT"], start="2025-05-20",
                                       end="2025-08-17", today=dt.date(2025, 8, 18), progress=False)
        assert all(".zip" not in r or "2025-05.zip" in r for r in srv.requests[n:])  # only the absent May monthly
        assert len(rep2.cached) == len(sources) and rep2.imported.total("bars").rows_written == 0


def test_bad_checksum_names_file_and_imports_nothing(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    rel = "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-08-05.zip"
    good = (BV / rel).read_bytes()
    # same CSV, one price changed, re-zipped: the published CHECKSUM no longer matches
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        name = z.namelist()[0]
        text = z.read(name).decode()
    first = text.split("\n", 1)[0].split(",")
    first[2] = str(Decimal(first[2]) + 1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, ",".join(first) + "\n" + text.split("\n", 1)[1])
    (overlay / rel).parent.mkdir(parents=True)
    (overlay / rel).write_bytes(buf.getvalue())
    assert hashlib.sha256(buf.getvalue()).hexdigest() != (BV / (rel + ".CHECKSUM")).read_text().split()[0]
    cat = tmp_path / "cat"
    with VisionServer(overlay, BV) as srv, pytest.raises(ChecksumError) as ei:
        download_binance_vision(cat, base_url=srv.url, symbols=["BTCUSDT"], start="2024-08-03", end="2024-08-07",
                                today=dt.date(2024, 9, 30), progress=False)
    assert "BTCUSDT-1m-2024-08-05.zip" in str(ei.value) and "CHECKSUM" in str(ei.value)
    assert not (cat / "data/bars").exists()  # nothing imported
    assert not (cat / ".downloads/binance-vision" / rel).exists()  # the bad file was not cached


def test_retries_429_and_dropped_connection(tmp_path: Path) -> None:
    rel = "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-08-05.zip"
    with VisionServer(BV) as srv:
        srv.faults = [(rel + ".CHECKSUM", "429"), (rel, "drop")]
        download_binance_vision(tmp_path, base_url=srv.url, symbols=["BTCUSDT"], start="2024-08-05", end="2024-08-05",
                                today=dt.date(2024, 9, 30), progress=False, backoff_s=0.01)
        assert srv.faults == []
    assert stored_bars(tmp_path) == expected([BV / rel])


def test_aggtrades_format_to_trade_ticks(tmp_path: Path) -> None:
    """Format test (the mirror holds no aggTrades): five rows in Binance's documented spot
    aggTrades layout (no header, 8 columns) become TradeTicks with the right aggressor side."""
    from nautilus_trader.model import AggressorSide, NautilusDataType
    from nautilus_trader.persistence import ParquetDataCatalog

    rel = "data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-08-05.zip"
    rows = [
        "3100000001,57552.01000000,0.00100000,3500000001,3500000001,1722816000123,True,True",
        "3100000002,57552.02000000,0.01500000,3500000002,3500000004,1722816000123,False,True",
        "3100000003,57551.99000000,0.20000000,3500000005,3500000005,1722816001500,True,True",
        "3100000004,57553.00000000,1.00000000,3500000006,3500000010,1722816002000,False,True",
        "3100000005,57553.01000000,0.00042000,3500000011,3500000011,1722816002001,False,True",
    ]
    folder = tmp_path / "srv"
    (folder / rel).parent.mkdir(parents=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("BTCUSDT-aggTrades-2024-08-05.csv", "\n".join(rows) + "\n")
    (folder / rel).write_bytes(buf.getvalue())
    (folder / (rel + ".CHECKSUM")).write_text(f"{hashlib.sha256(buf.getvalue()).hexdigest()}  {rel.rsplit('/', 1)[1]}\n")
    cat = tmp_path / "cat"
    with VisionServer(folder) as srv:
        download_binance_vision(cat, base_url=srv.url, symbols=["BTCUSDT"], start="2024-08-05", end="2024-08-05",
                                kinds=["aggTrades"], today=dt.date(2024, 9, 30), progress=False)
    ticks = ParquetDataCatalog(str(cat)).query(NautilusDataType.TradeTick, ["BTCUSDT.BINANCE"])
    assert len(ticks) == 5
    for tick, line in zip(ticks, rows, strict=True):
        f = line.split(",")
        assert str(tick.trade_id) == f[0]
        assert tick.price.as_decimal() == Decimal(f[1]) and tick.size.as_decimal() == Decimal(f[2])
        assert tick.ts_event == int(f[5]) * 1_000_000
        assert tick.aggressor_side == (AggressorSide.SELL if f[6] == "True" else AggressorSide.BUY)
