"""Binance Vision import: real archives from the shared mirror, expectations computed here from
the raw zips with zipfile + pandas (never from importer output)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import shutil
import threading
import zipfile
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.model import Bar, InstrumentId, NautilusDataType

from catalog.binance_vision import import_binance_vision
from catalog.errors import DataImportError
from catalog.store import open_catalog
from core.paths import shared_data_dir

BV = shared_data_dir() / "binance-vision"
MIN_NS = 60_000_000_000
HOUR_NS = 3_600_000_000_000
COLS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "qv", "n", "tbv", "tbqv", "ignore"]

pytestmark = pytest.mark.skipif(not BV.is_dir(), reason="shared Binance Vision mirror not available")


def raw_csv(path: Path) -> pd.DataFrame:
    """The zip's CSV as strings (header row detected by looking at the first byte)."""
    with zipfile.ZipFile(path) as z:
        data = z.read(z.namelist()[0])
    header = 0 if not data[:1].isdigit() else None
    df = pd.read_csv(io.BytesIO(data), header=header, dtype=str)
    if header is None:
        df.columns = COLS[: df.shape[1]]
    return df


def to_ns(epoch: str) -> int:
    v = int(epoch)
    return v * 1_000 if v >= 10**14 else v * 1_000_000  # µs (spot 2025+) or ms


def data_files(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under data/."""
    out = {}
    for p in sorted((root / "data").rglob("*")) if (root / "data").exists() else []:
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_bar_equals_row(bar: Bar, row: pd.Series, interval_ns: int) -> None:
    assert bar.open.as_decimal() == Decimal(row["open"])
    assert bar.high.as_decimal() == Decimal(row["high"])
    assert bar.low.as_decimal() == Decimal(row["low"])
    assert bar.close.as_decimal() == Decimal(row["close"])
    assert bar.volume.as_decimal() == Decimal(row["volume"])
    assert bar.ts_event == bar.ts_init == to_ns(row["open_time"]) + interval_ns


@pytest.mark.parametrize("month", ["2023-04", "2025-06"])  # ms timestamps, µs timestamps
def test_spot_month(tmp_path: Path, month: str) -> None:
    src = BV / f"data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-{month}.zip"
    df = raw_csv(src)
    y, m = map(int, month.split("-"))
    rep = import_binance_vision(tmp_path, base_url=BV, symbols=["BTCUSDT"], start=f"{month}-01",
                                end=str((pd.Timestamp(y, m, 1) + pd.offsets.MonthEnd(0)).date()))
    cat = open_catalog(tmp_path)
    bars = cat.query_bars(["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"])
    assert len(bars) == len(df) == rep.total("bars").rows_written
    assert_bar_equals_row(bars[0], df.iloc[0], MIN_NS)
    assert_bar_equals_row(bars[-1], df.iloc[-1], MIN_NS)
    # bar precision == instrument precision (the matching engine skips bars otherwise)
    inst = cat.instruments(["BTCUSDT.BINANCE"])[0]
    assert {b.open.precision for b in bars[:100]} == {inst.price_precision}
    assert {b.volume.precision for b in bars[:100]} == {inst.size_precision}
    # one Parquet file for the month
    assert len(list((tmp_path / "data/bars").rglob("*.parquet"))) == 1


@pytest.fixture(scope="module")
def perp_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("perp")
    rep = import_binance_vision(root, base_url=BV, market="um", symbols=["BTCUSDT"], interval="1m",
                                start="2023-07-01", end="2023-08-31",
                                kinds=("klines", "fundingRate", "markPriceKlines"), mark_interval="1h")
    return root, rep


def test_perp_window_bars_funding_mark(perp_catalog: tuple[Path, object]) -> None:
    root, rep = perp_catalog
    um = BV / "data/futures/um"
    kfiles = [um / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2023-07.zip",
              *sorted((um / "daily/klines/BTCUSDT/1m").glob("BTCUSDT-1m-2023-08-*.zip"))]
    assert len(kfiles) == 17
    src = pd.concat([raw_csv(f) for f in kfiles], ignore_index=True)
    cat = open_catalog(root)
    bars = cat.query_bars(["BTCUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"])
    assert len(bars) == len(src) == 19_487 + 23_040
    assert_bar_equals_row(bars[0], src.iloc[0], MIN_NS)
    assert_bar_equals_row(bars[-1], src.iloc[-1], MIN_NS)
    assert len(list((root / "data/bars").rglob("*.parquet"))) == 1  # monthly + 16 daily = one block

    fsrc = pd.concat([raw_csv(um / f"monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2023-{m}.zip")
                      for m in ("07", "08")], ignore_index=True)
    iid = "BTCUSDT-PERP.BINANCE_USDM"
    fr = cat.query(NautilusDataType.FundingRateUpdate, [iid])
    assert len(fr) == len(fsrc) == 186
    for u, (_, row) in zip(fr, fsrc.iterrows(), strict=True):
        assert u.rate == Decimal(row["last_funding_rate"])
        assert u.ts_event % (8 * HOUR_NS) == 0
        assert abs(u.ts_event - int(row["calc_time"]) * 1_000_000) < 1_000_000_000
        assert u.ts_event == u.ts_init == u.next_funding_ns
        assert u.interval == 480 == int(row["funding_interval_hours"]) * 60
        assert u.instrument_id == InstrumentId.from_str(iid)

    msrc = pd.concat([raw_csv(um / f"monthly/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2023-{m}.zip")
                      for m in ("07", "08")], ignore_index=True)
    marks = cat.query_mark_price_updates([iid])
    assert len(marks) == len(msrc) == 1488
    for mk, i in ((marks[0], 0), (marks[-1], len(msrc) - 1), (marks[500], 500)):
        assert mk.value.as_decimal() == Decimal(msrc["close"].iloc[i])
        assert mk.ts_event == to_ns(msrc["open_time"].iloc[i]) + HOUR_NS


def test_reimport_adds_nothing(tmp_path: Path) -> None:
    kw = dict(base_url=BV, market="um", symbols=["BTCUSDT"], start="2023-07-25", end="2023-08-05",
              kinds=("klines", "fundingRate", "markPriceKlines"), mark_interval="1h")
    first = import_binance_vision(tmp_path, **kw)
    before = data_files(tmp_path)
    n_bars = len(open_catalog(tmp_path).query_bars())
    again = import_binance_vision(tmp_path, **kw)
    assert data_files(tmp_path) == before
    assert len(open_catalog(tmp_path).query_bars()) == n_bars == first.total("bars").rows_written
    for kind in ("bars", "funding_rates", "mark_prices", "instruments"):
        assert again.total(kind).rows_written == 0
        assert again.total(kind).rows_skipped == first.total(kind).rows_read
    # a wider window only adds the missing rows, in new files next to the old ones
    wider = import_binance_vision(tmp_path, **(kw | {"start": "2023-07-20", "end": "2023-08-08"}))
    assert wider.total("bars").rows_skipped == n_bars
    bars = open_catalog(tmp_path).query_bars()
    ts = [b.ts_event for b in bars]
    assert len(ts) == len(set(ts)) == n_bars + wider.total("bars").rows_written


# ------------------------------------------------------------------ broken inputs


def _local_layout(tmp_path: Path) -> Path:
    """A local Binance Vision folder with two good spot daily files copied from the mirror."""
    base = tmp_path / "bv"
    d = base / "data/spot/daily/klines/BTCUSDT/1m"
    d.mkdir(parents=True)
    for day in ("2023-03-17", "2023-03-18"):
        shutil.copy(BV / f"data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{day}.zip", d)
    return base


def _write_zip(path: Path, csv_text: str) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(path.name.replace(".zip", ".csv"), csv_text)


def _good_lines() -> list[str]:
    with zipfile.ZipFile(BV / "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-03-19.zip") as z:
        return z.read(z.namelist()[0]).decode().splitlines()


def _break(kind: str) -> tuple[str, int, str]:
    """(csv text, 1-based bad line, expected words in the message)."""
    lines = _good_lines()
    bad = 101
    f = lines[bad - 1].split(",")
    if kind == "non_numeric":
        f[2] = "abc"
        words = "non-numeric"
    elif kind == "columns":
        f = f[:-2]
        words = "columns"
    elif kind == "high_low":
        f[2], f[3] = f[3], f[2]
        f[2] = str(Decimal(f[3]) - 1)  # high below low
        words = "high < low"
    elif kind == "order":
        lines[bad - 1], lines[bad - 2] = lines[bad - 2], lines[bad - 1]
        return "\n".join(lines) + "\n", bad, "not strictly increasing"
    lines[bad - 1] = ",".join(f)
    return "\n".join(lines) + "\n", bad, words


@pytest.mark.parametrize("kind", ["non_numeric", "columns", "high_low", "order"])
def test_malformed_row_rejected(tmp_path: Path, kind: str) -> None:
    base = _local_layout(tmp_path)
    cat = tmp_path / "cat"
    import_binance_vision(cat, base_url=base, start="2023-03-17", end="2023-03-18")
    before = data_files(cat)
    text, line, words = _break(kind)
    _write_zip(base / "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-03-19.zip", text)
    with pytest.raises(DataImportError) as ei:
        import_binance_vision(cat, base_url=base, start="2023-03-17", end="2023-03-19")
    e = ei.value
    assert "BTCUSDT-1m-2023-03-19" in str(e) and e.row == line and f"row {line}" in str(e)
    assert words in str(e)
    assert data_files(cat) == before  # nothing of the broken import written
    assert not (cat / ".staging").exists()


def test_corrupt_zip_rejected(tmp_path: Path) -> None:
    base = _local_layout(tmp_path)
    bad = base / "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-03-19.zip"
    good = (BV / "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-03-19.zip").read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # truncated download
    cat = tmp_path / "cat"
    with pytest.raises(DataImportError, match=r"BTCUSDT-1m-2023-03-19\.zip.*zip"):
        import_binance_vision(cat, base_url=base, start="2023-03-17", end="2023-03-19")
    assert data_files(cat) == {}  # nothing written, not even the instrument


def test_bad_checksum_rejected(tmp_path: Path) -> None:
    base = _local_layout(tmp_path)
    d = base / "data/spot/daily/klines/BTCUSDT/1m"
    (d / "BTCUSDT-1m-2023-03-18.zip.CHECKSUM").write_text("0" * 64 + "  BTCUSDT-1m-2023-03-18.zip\n")
    with pytest.raises(DataImportError, match="sha256"):
        import_binance_vision(tmp_path / "cat", base_url=base, start="2023-03-17", end="2023-03-18")


# ------------------------------------------------------------------ HTTP


@pytest.fixture()
def http_mirror() -> str:
    handler = functools.partial(_QuietHandler, directory=str(BV))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        _QuietHandler.requested.append(f"{args[1] if len(args) > 1 else ''} {self.path}")


def test_http_base(tmp_path: Path, http_mirror: str) -> None:
    # August 2023 has no monthly um file: the monthly URL 404s and the daily files are used
    rep = import_binance_vision(tmp_path, base_url=http_mirror, market="um", symbols=["BTCUSDT"],
                                start="2023-08-01", end="2023-08-03", kinds=("klines", "fundingRate"))
    daily = [raw_csv(BV / f"data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-08-0{d}.zip") for d in (1, 2, 3)]
    cat = open_catalog(tmp_path)
    bars = cat.query_bars()
    assert len(bars) == sum(len(x) for x in daily) == 3 * 1440
    assert_bar_equals_row(bars[0], daily[0].iloc[0], MIN_NS)
    assert all(u.startswith(http_mirror) for u in rep.files_read)
    assert any(" 404 " in f" {r} " or r.startswith("404") for r in _QuietHandler.requested)
    fsrc = raw_csv(BV / "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2023-08.zip")
    fr = cat.query(NautilusDataType.FundingRateUpdate)
    assert len(fr) == 9  # 3 days x 3 settlements, filtered from the monthly file
    assert [u.rate for u in fr] == [Decimal(x) for x in fsrc["last_funding_rate"].iloc[:9]]
    # spot monthly archive through HTTP (µs timestamps)
    import_binance_vision(tmp_path, base_url=http_mirror, symbols=["ETHUSDT"], start="2025-06-01", end="2025-06-30")
    src = raw_csv(BV / "data/spot/monthly/klines/ETHUSDT/1m/ETHUSDT-1m-2025-06.zip")
    eth = open_catalog(tmp_path).query_bars(["ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"])
    assert len(eth) == len(src)
    assert_bar_equals_row(eth[-1], src.iloc[-1], MIN_NS)


# ------------------------------------------------------------------ read back by the backtest node


def test_funding_loaded_by_backtest_node(perp_catalog: tuple[Path, object]) -> None:
    """BacktestDataConfig(FundingRateUpdate) loads the hand-written files and the simulated
    exchange settles them: a 0.01 BTC long opened on the first bar pays every settlement
    after its entry, computed independently from the raw CSV and the mark closes. The run goes
    on to the end of all loaded data (funding and mark rows continue to 2023-08-31 after the last
    bar on 08-16), so every settlement after the entry counts."""
    from decimal import Decimal as D

    from nautilus_trader.backtest import (
        BacktestDataConfig,
        BacktestEngineConfig,
        BacktestNode,
        BacktestRunConfig,
        BacktestVenueConfig,
    )
    from nautilus_trader.common import LoggerConfig, LogLevel
    from nautilus_trader.execution import MakerTakerFeeModel
    from nautilus_trader.model import BarType, OrderSide, Quantity, TraderId
    from nautilus_trader.trading import Strategy

    root, _ = perp_catalog
    iid = InstrumentId.from_str("BTCUSDT-PERP.BINANCE_USDM")
    bt = BarType.from_str("BTCUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL")

    class Holder(Strategy):
        def on_start(self) -> None:
            self.fundings = 0
            self.bars = 0
            self.subscribe_bars(bt)
            self.subscribe_funding_rates(iid)

        def on_bar(self, bar: Bar) -> None:
            self.bars += 1
            if self.bars == 1:
                self.submit_order(self.order_factory.market(iid, OrderSide.BUY, Quantity.from_str("0.010")))

        def on_funding_rate(self, update: object) -> None:
            self.fundings += 1

    data = [BacktestDataConfig(data_type=t, catalog_path=str(root), instrument_id=iid)
            for t in (NautilusDataType.Bar, NautilusDataType.MarkPriceUpdate, NautilusDataType.FundingRateUpdate)]
    venue = BacktestVenueConfig(name="BINANCE_USDM", oms_type="NETTING", account_type="MARGIN",
                                starting_balances=["100000 USDT"], default_leverage=D("10"),
                                fee_model=MakerTakerFeeModel(D("0"), D("0")))
    cfg = BacktestRunConfig(venues=[venue], data=data, id="funding", dispose_on_completion=False,
                            raise_exception=True,
                            engine=BacktestEngineConfig(trader_id=TraderId("TEST-001"),
                                                        logging=LoggerConfig(stdout_level=LogLevel.ERROR)))
    node = BacktestNode([cfg])
    node.build()
    strat = Holder()
    node.add_strategy("funding", strat)
    results = node.run()
    assert len(results) == 1
    cache = node.get_engine_cache("funding")
    pos = cache.positions()
    assert len(pos) == 1
    adj = [a for a in pos[0].adjustments() if "FUNDING" in str(a.adjustment_type).upper()]

    um = BV / "data/futures/um"
    kl = raw_csv(um / "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2023-07.zip")
    first_close = to_ns(kl["open_time"].iloc[0]) + MIN_NS
    fsrc = pd.concat([raw_csv(um / f"monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2023-{m}.zip")
                      for m in ("07", "08")], ignore_index=True)
    fts = [round(int(t) / 28_800_000) * 28_800_000 * 1_000_000 for t in fsrc["calc_time"]]
    in_run = [(t, D(r)) for t, r in zip(fts, fsrc["last_funding_rate"], strict=True) if t > first_close]
    msrc = pd.concat([raw_csv(um / f"monthly/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2023-{m}.zip")
                      for m in ("07", "08")], ignore_index=True)
    mark_at = {to_ns(o) + HOUR_NS: D(c) for o, c in zip(msrc["open_time"], msrc["close"], strict=True)}
    assert strat.fundings >= len(in_run) > 80
    assert len(adj) == len(in_run)
    expected = [-D("0.010") * mark_at[t] * r for t, r in in_run]
    got = [a.pnl_change.as_decimal() for a in adj]
    assert all(abs(g - e) <= D("0.00000001") for g, e in zip(got, expected, strict=True))
    node.dispose()


def test_default_base_is_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BINANCE_VISION_URL", str(BV))
    rep = import_binance_vision(tmp_path, symbols=["ETHUSDT"], start="2021-12-01", end="2021-12-01")
    assert rep.total("bars").rows_written == 1440
    assert os.fspath(BV) in rep.source


def test_interrupted_import_leaves_catalog_consistent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2019-11-10..13 and 2019-11-16..20 (11-14/15 are missing) are two blocks of one import; a
    crash after both are staged but before the folder swap leaves nothing (all or nothing, issue
    20), stale staging is removed by the next command, which writes both blocks."""
    import catalog.atomic as atomic

    kw = dict(base_url=BV, symbols=["BTCUSDT"], start="2019-11-10", end="2019-11-20")
    d = BV / "data/spot/daily/klines/BTCUSDT/1m"
    first = sum(len(raw_csv(d / f"BTCUSDT-1m-2019-11-{x}.zip")) for x in (10, 11, 12, 13))
    second = sum(len(raw_csv(d / f"BTCUSDT-1m-2019-11-{x}.zip")) for x in range(16, 21))
    real = atomic.Staging.commit_dir

    def crash(self: atomic.Staging, rel, remove=frozenset()) -> None:
        if "/bars/" in str(rel):
            assert len(list((self.path / rel).glob("*.parquet"))) == 2  # both blocks staged
            raise KeyboardInterrupt("simulated crash")
        return real(self, rel, remove)

    monkeypatch.setattr(atomic.Staging, "commit_dir", crash)
    with pytest.raises(KeyboardInterrupt):
        import_binance_vision(tmp_path, **kw)
    monkeypatch.setattr(atomic.Staging, "commit_dir", real)
    assert not list((tmp_path / "data/bars").rglob("*.parquet")) if (tmp_path / "data/bars").exists() else True
    stale = tmp_path / ".staging" / "999999999-dead"  # as left by a killed process
    stale.mkdir(parents=True)
    (stale / "half.parquet").write_bytes(b"partial")
    rep = import_binance_vision(tmp_path, **kw)
    assert not stale.exists()
    assert rep.total("bars").rows_skipped == 0 and rep.total("bars").rows_written == first + second
    assert len(list((tmp_path / "data/bars").rglob("*.parquet"))) == 2
    assert len(open_catalog(tmp_path).query_bars()) == first + second
