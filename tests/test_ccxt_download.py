"""ccxt downloader against a local HTTP server mimicking Binance's REST API with REAL rows from
the shared mirror (tests/fixtures/binance_mock.py). The real ccxt code path runs (binance /
binanceusdm classes, only ``urls['api']`` overridden). Expected values are taken from the source
files with zipfile/pandas here, never from the downloader."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog.ccxt_download import download_data, missing_ranges
from catalog.ccxt_exchange import DownloadError
from core.paths import shared_data_dir
from tests.fixtures.binance_mock import BinanceMock, read_zip_rows

DATA = shared_data_dir()
BV = DATA / "binance-vision"
MIN_NS = 60_000_000_000
HOUR_NS = 60 * MIN_NS
SPOT_BT = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
PERP_BT = "BTCUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
PERP = "BTCUSDT-PERP.BINANCE_USDM"

pytestmark = pytest.mark.skipif(not BV.is_dir(), reason="shared Binance Vision mirror not available")


def spot_rows(days: list[str]) -> list[list[str]]:
    rows = []
    for d in days:
        rows += read_zip_rows(BV / f"data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{d}.zip")
    return rows


def days(first: str, last: str) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(first, last, freq="D")]


def expected_bars(rows: list[list[str]], interval_ns: int = MIN_NS) -> list[tuple]:
    out = []
    for r in rows:
        t = int(r[0])
        t_ns = t * 1_000 if t >= 10**14 else t * 1_000_000
        out.append((t_ns + interval_ns, *(Decimal(x) for x in r[1:6])))
    return out


def stored(root: Path, kind: str, ident: str, cols: list[str]) -> list[tuple]:
    files = sorted((root / "data" / kind / ident).glob("*.parquet"))
    rows = []
    for f in files:
        t = pq.read_table(f, columns=["ts_init", *cols])
        ts = pc.cast(t["ts_init"], "int64").to_pylist()
        vals = [t[c].to_pylist() for c in cols]
        rows += [(ts[i], *(v[i] for v in vals)) for i in range(t.num_rows)]
    return sorted(rows)


def fast(mock: BinanceMock, **kw) -> dict:
    return dict(urls=mock.ccxt_urls(), rate_limit_ms=1, backoff_s=0.01, progress=False) | kw


@pytest.fixture(scope="module")
def march_2023() -> list[list[str]]:
    """15 real days of BTCUSDT spot 1m (21,520 bars) including the 2023-03-24 halt."""
    return spot_rows(days("2023-03-17", "2023-03-31"))


def test_missing_ranges() -> None:
    assert missing_ranges([], 0, 10, 1) == [(0, 10)]
    assert missing_ranges([(3, 5)], 0, 10, 1) == [(0, 2), (6, 10)]
    assert missing_ranges([(0, 10)], 0, 10, 1) == []
    assert missing_ranges([(-5, 2), (8, 20)], 0, 10, 1) == [(3, 7)]


def test_spot_many_pages_equal_source_and_idempotent(tmp_path: Path, march_2023: list[list[str]]) -> None:
    with BinanceMock() as m:
        m.add_klines("spot", "BTCUSDT", "1m", march_2023)
        rep = download_data(tmp_path, market="spot", symbols=["BTCUSDT"], start="2023-03-17", end="2023-03-31", **fast(m))
        pages = m.count("/api/v3/klines")
        assert pages >= 22  # 21,520 bars at <= 1000 per page
        assert stored(tmp_path, "bars", SPOT_BT, ["open", "high", "low", "close", "volume"]) == expected_bars(march_2023)
        assert rep.total("bars").rows_written == len(march_2023)
        # the 2023-03-24 halt is reported as a known halt, not an error
        assert any("80 bars" in w and "known" in w for w in rep.warnings), rep.warnings
        # second run: nothing missing -> no kline request, nothing written
        rep2 = download_data(tmp_path, market="spot", symbols=["BTCUSDT"], start="2023-03-17", end="2023-03-31",
                             **fast(m))
        assert m.count("/api/v3/klines") == pages
        assert rep2.total("bars").rows_written == 0


def test_429_then_success_honours_retry_after(tmp_path: Path, march_2023: list[list[str]]) -> None:
    rows = march_2023[:3000]
    with BinanceMock() as m:
        m.add_klines("spot", "BTCUSDT", "1m", rows)
        m.faults = [("/api/v3/klines", "429")]
        t0 = time.perf_counter()
        rep = download_data(tmp_path, market="spot", symbols=["BTCUSDT"], start="2023-03-17", end="2023-03-18",
                            **fast(m))
        elapsed = time.perf_counter() - t0
    # Retry-After: 1 was honoured (backoff alone would have waited 0.01 s)
    assert elapsed >= 1.0
    assert any("DDoSProtection" in w or "RateLimit" in w for w in rep.warnings)
    assert stored(tmp_path, "bars", SPOT_BT, ["open", "high", "low", "close", "volume"]) == expected_bars(rows[:2880])


def test_dropped_connection_and_5xx_are_retried(tmp_path: Path, march_2023: list[list[str]]) -> None:
    rows = march_2023[:2880]
    with BinanceMock() as m:
        m.add_klines("spot", "BTCUSDT", "1m", rows)
        m.faults = [("/api/v3/klines", "drop"), ("/api/v3/klines", "500")]
        rep = download_data(tmp_path, market="spot", symbols=["BTCUSDT"], start="2023-03-17", end="2023-03-18",
                            **fast(m))
        assert m.faults == []  # both faults were hit
    assert sum("retry" in w for w in rep.warnings) == 2
    assert stored(tmp_path, "bars", SPOT_BT, ["open", "high", "low", "close", "volume"]) == expected_bars(rows)


def test_resume_after_interrupted_run(tmp_path: Path, march_2023: list[list[str]]) -> None:
    with BinanceMock() as m:
        m.add_klines("spot", "BTCUSDT", "1m", march_2023)
        m.fail_after = ("/api/v3/klines", 5)  # an outage after 5 pages
        with pytest.raises(DownloadError, match="giving up"):
            download_data(tmp_path, market="spot", symbols=["BTCUSDT"], start="2023-03-17", end="2023-03-31",
                          flush_rows=1000, max_retries=1, **fast(m))
        partial = stored(tmp_path, "bars", SPOT_BT, ["open", "high", "low", "close", "volume"])
        assert partial == expected_bars(march_2023[:5000])  # the 5 pages fetched were kept
        m.fail_after = None
        n_before = len(m.requests)
        download_data(tmp_path, market="spot", symbols=["BTCUSDT"], start="2023-03-17", end="2023-03-31", **fast(m))
        resumed = [r for r in m.requests[n_before:] if r.startswith("/api/v3/klines")]
    # the second run starts right after the last stored bar (its close = next open, in ms)
    last_close_ms = partial[-1][0] // 1_000_000
    assert f"startTime={last_close_ms}" in resumed[0]
    assert len(resumed) <= 18  # 16,520 remaining bars: not a restart from scratch
    assert stored(tmp_path, "bars", SPOT_BT, ["open", "high", "low", "close", "volume"]) == expected_bars(march_2023)


def test_perp_klines_mark_and_funding(tmp_path: Path) -> None:
    kl = []
    for d in days("2023-08-01", "2023-08-03"):
        kl += read_zip_rows(BV / f"data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{d}.zip")
    mark = []
    for mo in ("2023-07", "2023-08"):
        mark += read_zip_rows(BV / f"data/futures/um/monthly/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-{mo}.zip")
    # real exchange funding rows with their 1-15 ms offsets (freqtrade window file)
    fr = pd.read_feather(DATA / "freqtrade/binance/futures/window-2023-07/BTC_USDT_USDT-8h-funding_rate.feather")
    f_ms = (fr["date"].astype("int64") // 1_000_000).tolist()
    f_rates = [f"{x:.8f}" for x in fr["open"]]
    with BinanceMock(funding_max_limit=50) as m:
        m.add_klines("fapi", "BTCUSDT", "1m", kl)
        m.add_klines("mark", "BTCUSDT", "1h", mark)
        m.add_funding("BTCUSDT", f_ms, f_rates)
        rep = download_data(tmp_path, market="um", symbols=["BTCUSDT"], start="2023-07-01", end="2023-08-31",
                            kinds=["ohlcv", "mark", "funding"], mark_timeframe="1h", **fast(m))
        assert m.count("/fapi/v1/fundingRate") >= 3  # 131 rows at 50 per page
    assert stored(tmp_path, "bars", PERP_BT, ["open", "high", "low", "close", "volume"]) == expected_bars(kl)
    exp_mark = sorted((int(r[0]) * 1_000_000 + HOUR_NS, Decimal(r[4])) for r in mark)
    assert stored(tmp_path, "mark_prices", PERP, ["value"]) == exp_mark
    got = stored(tmp_path, "funding_rates", PERP, ["rate", "interval"])
    exp = [(round(t / (HOUR_NS / 1e6)) * HOUR_NS, r) for t, r in zip(f_ms, f_rates, strict=True)]
    assert [(t, Decimal(r)) for t, r, _ in got] == [(t, Decimal(r)) for t, r in exp]
    assert {iv for *_, iv in got} == {480}
    assert any(t % HOUR_NS for t in [x * 1_000_000 for x in f_ms])  # the source really had offsets
    assert (tmp_path / "data/crypto_perpetual" / PERP).is_dir()
    assert rep.total("funding_rates").rows_written == len(f_ms)


def test_rejects_unknown_exchange_and_kinds(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="unknown ccxt exchange id"):
        download_data(tmp_path, exchange_id="no_such_exchange", start="2024-01-01", end="2024-01-02", progress=False)
    with pytest.raises(ValueError, match="only for market='um'"):
        download_data(tmp_path, market="spot", kinds=["funding"], start="2024-01-01", progress=False)


def test_bybit_spot_and_linear_from_ccxt_markets(tmp_path: Path, march_2023: list[list[str]]) -> None:
    """A non-Binance ccxt exchange end to end: ccxt's real ``bybit`` class against a local server in
    Bybit's v5 format (newest rows first), instruments built from the ccxt markets."""
    from nautilus_trader.model import CryptoPerpetual, CurrencyPair

    from tests.fixtures.bybit_mock import BybitMock

    kl = []
    for d in days("2023-08-01", "2023-08-02"):
        kl += read_zip_rows(BV / f"data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{d}.zip")
    spot_src = [r for r in march_2023 if "2023-03-23" <= pd.Timestamp(int(r[0]), unit="ms").strftime("%F") <= "2023-03-25"]
    with BybitMock() as m:
        m.add_klines("spot", "BTCUSDT", spot_src)
        m.add_klines("linear", "BTCUSDT", kl)
        download_data(tmp_path, exchange_id="bybit", market="spot", symbols=["BTC/USDT"], start="2023-03-23",
                      end="2023-03-25", **fast(m))
        download_data(tmp_path, exchange_id="bybit", market="um", symbols=["BTCUSDT"], start="2023-08-01",
                      end="2023-08-02", **fast(m))
        n_kline = m.count("/v5/market/kline")
        # rerun: everything stored, no kline request
        download_data(tmp_path, exchange_id="bybit", market="um", symbols=["BTCUSDT"], start="2023-08-01",
                      end="2023-08-02", **fast(m))
        assert m.count("/v5/market/kline") == n_kline
    # 2023-03-24 has the ~100 min halt: rows are fewer than 3 x 1440 and still all present
    assert len(spot_src) < 3 * 1440
    assert stored(tmp_path, "bars", "BTCUSDT.BYBIT-1-MINUTE-LAST-EXTERNAL",
                  ["open", "high", "low", "close", "volume"]) == expected_bars(spot_src)
    assert stored(tmp_path, "bars", "BTCUSDT-PERP.BYBIT_PERP-1-MINUTE-LAST-EXTERNAL",
                  ["open", "high", "low", "close", "volume"]) == expected_bars(kl)
    from catalog.store import open_catalog

    insts = {str(i.id): i for i in open_catalog(tmp_path).instruments()}
    spot, perp = insts["BTCUSDT.BYBIT"], insts["BTCUSDT-PERP.BYBIT_PERP"]
    assert isinstance(spot, CurrencyPair) and isinstance(perp, CryptoPerpetual)
    # values of the mock's instruments-info (Bybit's own fields), independently of the builder
    assert (str(spot.price_increment), str(spot.size_increment), str(spot.min_quantity)) == ("0.01", "0.000001", "0.000048")
    assert spot.min_notional.as_decimal() == Decimal("1")
    assert (str(perp.price_increment), str(perp.size_increment), perp.min_notional.as_decimal()) == ("0.1", "0.001", Decimal("5"))
    assert str(perp.multiplier) == "1" and not perp.is_inverse


def test_from_ccxt_market_refuses_what_it_cannot_map() -> None:
    from core.instruments import from_ccxt_market

    base = {"id": "BTCUSD", "symbol": "BTC/USD:BTC", "base": "BTC", "quote": "USD", "spot": False, "swap": True,
            "linear": False, "inverse": True, "precision": {"price": 0.5, "amount": 1.0}, "limits": {}}
    with pytest.raises(ValueError, match="only spot and linear perpetual"):
        from_ccxt_market(base, "bybit")
    spot = base | {"symbol": "BTC/USDT", "quote": "USDT", "spot": True, "swap": False, "inverse": None}
    with pytest.raises(ValueError, match="significant digits"):
        from_ccxt_market(spot, "x", precision_mode=3)
    # DECIMAL_PLACES mode: 2 -> tick 0.01; 4 -> step 0.0001
    inst = from_ccxt_market(spot | {"precision": {"price": 2, "amount": 4}}, "x", precision_mode=2)
    assert (str(inst.price_increment), str(inst.size_increment), str(inst.id)) == ("0.01", "0.0001", "BTCUSD.X")
