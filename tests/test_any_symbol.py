"""Any symbol (issue 19): instruments from exchange metadata / instruments.toml / the data itself,
every importer on symbols beyond BTC/ETH. Real data from ../shared/data; expected values are
computed here with pandas/zipfile/Decimal on the raw files, never taken from the importers."""

from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog.binance_vision import import_binance_vision, list_symbols
from catalog.ccxt_download import download_data
from catalog.csv_import import import_csv
from catalog.errors import DataImportError
from catalog.freqtrade import import_freqtrade
from catalog.instrument_meta import InstrumentResolver, fetch_exchange_info, load_metadata, metadata_path
from catalog.store import open_catalog
from core import instruments as ins
from core.brackets import MarginError
from core.instruments import brackets_for
from core.paths import shared_data_dir
from tests.fixtures.binance_mock import BinanceMock

FT = shared_data_dir() / "freqtrade" / "binance"
WIN = FT / "futures" / "window-2023-07"
BV = shared_data_dir() / "binance-vision"
MIN_NS = 60_000_000_000
HOUR_NS = 60 * MIN_NS
DEC = pa.decimal128(38, 16)

pytestmark = pytest.mark.skipif(not WIN.is_dir(), reason="shared freqtrade window-2023-07 not available")


# --------------------------------------------------------------------------- helpers (independent of the code)


def window_files() -> dict[str, dict[str, Path]]:
    """symbol (``SOLUSDT``) -> {kind: file} of window-2023-07, from the file names."""
    out: dict[str, dict[str, Path]] = {}
    for p in sorted(WIN.glob("*.feather")):
        pair, kind = p.name.removesuffix(".feather").split("-", 1)
        base, quote, _settle = pair.split("_")
        out.setdefault(base + quote, {})[kind] = p
    return out


def open_ns(df: pd.DataFrame) -> np.ndarray:
    return df["date"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64").to_numpy()


def dec_strings(x: pd.Series) -> pa.Array:
    """Source floats as exact decimals (their shortest repr, which is what Binance printed)."""
    return pa.array([repr(float(v)) for v in x], pa.string()).cast(DEC)


def decimals_in(arr: pa.Array) -> int:
    """Most decimals of any value (trailing zeros dropped), by string inspection."""
    out = 0
    for s in set(arr.cast(pa.string()).to_pylist()):
        frac = s.split(".")[1].rstrip("0") if "." in s else ""
        out = max(out, len(frac))
    return out


def stored_table(root: Path, kind: str, ident: str) -> pa.Table:
    files = sorted((root / "data" / kind / ident).glob("*.parquet"))
    assert files, f"nothing stored in data/{kind}/{ident}"
    t = pa.concat_tables([pq.read_table(f) for f in files])
    return t.sort_by([("ts_init", "ascending")])


def data_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def stored_instrument(root: Path, iid: str) -> dict:
    kind = "crypto_perpetual" if "-PERP." in iid else "currency_pair"
    files = sorted((root / "data" / kind / iid).glob("*.parquet"))
    assert len(files) == 1
    return pq.read_table(files[0]).to_pylist()[0]


# --------------------------------------------------------------------------- the 61 perpetuals


def test_import_all_61_perpetuals_offline(tmp_path: Path) -> None:
    """1m where present else 5m, plus 8h funding and 8h mark, for every symbol of the window; row
    counts equal the source files, every price and volume is stored exactly, and the inferred
    precisions (bar precision == instrument precision) hold every stored value."""
    files = window_files()
    assert len(files) == 61
    rep = import_freqtrade(tmp_path, data_dir=WIN, timeframes=["1m", "5m"], one_timeframe=True,
                           trading_mode="futures", metadata="offline")
    assert not [w for w in rep.warnings if "gap" not in w]
    n_bars = 0
    for sym, kinds in files.items():
        iid = f"{sym}-PERP.BINANCE_USDM"
        inst = stored_instrument(tmp_path, iid)
        if sym in ("BTCUSDT", "ETHUSDT"):  # built-in table, unchanged
            assert (inst["price_precision"], inst["size_precision"]) == (2, 3)
            assert inst["price_increment"] == ("0.10" if sym == "BTCUSDT" else "0.01")
        tf = "1m" if "1m-futures" in kinds else "5m" if "5m-futures" in kinds else None
        if tf is not None:
            src = pd.read_feather(kinds[f"{tf}-futures"])
            step = MIN_NS * (1 if tf == "1m" else 5)
            t = stored_table(tmp_path, "bars", f"{iid}-{tf[:-1]}-MINUTE-LAST-EXTERNAL")
            assert t.num_rows == len(src), sym
            n_bars += t.num_rows
            assert pc.cast(t["ts_init"], pa.int64()).to_numpy().tolist() == (open_ns(src) + step).tolist()
            meta = pq.read_schema(sorted((tmp_path / "data" / "bars" / f"{iid}-{tf[:-1]}-MINUTE-LAST-EXTERNAL")
                                         .glob("*.parquet"))[0]).metadata
            pp, sp = int(meta[b"price_precision"]), int(meta[b"size_precision"])
            assert (pp, sp) == (inst["price_precision"], inst["size_precision"]), sym  # rc7: must be equal
            for c in ("open", "high", "low", "close", "volume"):
                got = t[c].combine_chunks()
                assert got.equals(dec_strings(src[c])), f"{sym} {c}"
                assert decimals_in(got) <= (sp if c == "volume" else pp), f"{sym} {c}"
        fund = pd.read_feather(kinds["8h-funding_rate"])
        ft = stored_table(tmp_path, "funding_rates", iid)
        assert ft.num_rows == len(fund), sym
        raw = open_ns(fund)
        snapped = pc.cast(ft["ts_event"], pa.int64()).to_numpy()
        assert np.all(snapped % (8 * HOUR_NS) == 0) and np.all(np.abs(snapped - raw) < 1_000_000_000)
        assert [Decimal(r) for r in ft["rate"].to_pylist()] == [Decimal(repr(float(v))) for v in fund["open"]]
        mark = pd.read_feather(kinds["8h-mark"])
        mt = open_catalog(tmp_path).query_mark_price_updates([iid])
        assert len(mt) == len(mark), sym
        assert [m.value.as_decimal() for m in mt] == [Decimal(repr(float(v))) for v in mark["close"]]
    assert n_bars == 861_051 + 42 * 8_639  # the data README: 1m of 18 symbols + 5m of 42
    notes = "\n".join(rep.notes)
    assert "SOLUSDT-PERP.BINANCE_USDM: price precision 3, size precision 0" in notes
    assert "inferred from the data" in notes and "offline" in notes


def test_unknown_pair_names_it_and_writes_nothing(tmp_path: Path) -> None:
    import_freqtrade(tmp_path, data_dir=WIN, pairs=["SOL/USDT:USDT"], timeframes=["1m"])
    before = data_files(tmp_path)
    with pytest.raises(DataImportError, match=r"NOPE/USDT:USDT") as e:
        import_freqtrade(tmp_path, data_dir=WIN, pairs=["XRP/USDT:USDT", "NOPE/USDT:USDT"], timeframes=["1m"])
    assert "XRP" not in str(e.value)  # only the missing pair is named
    assert data_files(tmp_path) == before
    with pytest.raises(DataImportError, match=r"\['NOPEUSDT'\] not in the source"):
        import_binance_vision(tmp_path, base_url=BV, market="spot", symbols=["BTCUSDT", "NOPEUSDT"])
    assert data_files(tmp_path) == before


def test_brackets_for_every_perpetual_of_the_window() -> None:
    for sym in window_files():
        first = brackets_for(sym, "2023-07-15")[0]
        assert 0 < first.mmr < 0.05 and first.max_leverage >= 8, sym
    assert brackets_for("SOLUSDT")[0].mmr == 0.01 and brackets_for("SOLUSDT")[0].max_leverage == 50
    with pytest.raises(MarginError, match="'NOPEUSDT'"):
        brackets_for("NOPEUSDT", instruments_file="/nonexistent/instruments.toml")


def test_builtin_symbols_unchanged_whatever_the_metadata(tmp_path: Path) -> None:
    with BinanceMock() as mock:
        fetch_exchange_info(tmp_path, urls=mock.ccxt_urls())  # BTC perp served with tick 0.10, precision 1
    r = InstrumentResolver(tmp_path)
    for mkt, sym in ins.SPECS:
        assert r.spec(sym, mkt, data_precision=(8, 8)) == ins.SPECS[(mkt, sym)]
        assert ins.build_instrument(sym, mkt, spec=r.spec(sym, mkt)) == ins.build_instrument(sym, mkt)


# --------------------------------------------------------------------------- exchange metadata via ccxt


def _sol_rows(day: str) -> list[list[str]]:
    df = pd.read_feather(WIN / "SOL_USDT_USDT-1m-futures.feather")
    df = df[df["date"].dt.strftime("%Y-%m-%d") == day]
    t = open_ns(df) // 1_000_000
    return [[str(int(a)), repr(o), repr(h), repr(lo), repr(c), repr(v), str(int(a) + 59_999), "0", "0", "0", "0", "0"]
            for a, o, h, lo, c, v in zip(t, df.open, df.high, df.low, df["close"], df.volume, strict=True)]


def test_metadata_from_ccxt_against_local_exchangeinfo(tmp_path: Path) -> None:
    """The REAL ccxt binance/binanceusdm classes load a local stand-in serving Binance's
    exchangeInfo; the cached records, the imported instrument and a download-data of SOLUSDT carry
    exactly the tick/step/min notional the stand-in served."""
    rows = _sol_rows("2023-07-20")
    with BinanceMock() as mock:
        mock.add_symbol("fapi", "SOLUSDT", "SOL", tick_size="0.0010", step_size="1", min_qty="1",
                        min_notional="5", price_precision=4, quantity_precision=0)
        mock.add_symbol("spot", "SOLUSDT", "SOL", tick_size="0.01000000", step_size="0.00100000",
                        min_qty="0.00100000", min_notional="5.00000000")
        mock.add_klines("fapi", "SOLUSDT", "1m", rows)
        counts = fetch_exchange_info(tmp_path, urls=mock.ccxt_urls())
        assert counts == {"spot": 3, "um": 3}
        assert mock.count("/fapi/v1/exchangeInfo") >= 1 and mock.count("/api/v3/exchangeInfo") >= 1
        meta = load_metadata(tmp_path)
        assert meta is not None and metadata_path(tmp_path).is_file()
        rec = meta["markets"]["um"]["symbols"]["SOLUSDT"]
        assert (rec["tick_size"], rec["step_size"], rec["min_quantity"], rec["min_notional"]) == ("0.001", "1", "1", "5")
        assert meta["markets"]["spot"]["symbols"]["SOLUSDT"]["tick_size"] == "0.01"
        assert pd.Timestamp(meta["markets"]["um"]["fetched_at"]).year >= 2024
        assert not list(metadata_path(tmp_path).parent.glob("*.tmp"))  # atomic write left no temp file

        rep = import_freqtrade(tmp_path, data_dir=WIN, pairs=["SOL/USDT:USDT"], timeframes=["1m"])
        inst = stored_instrument(tmp_path, "SOLUSDT-PERP.BINANCE_USDM")
        assert Decimal(inst["price_increment"]) == Decimal("0.001") and Decimal(inst["size_increment"]) == 1
        assert Decimal(inst["min_quantity"]) == 1 and inst["min_notional"].startswith("5.0") and "USDT" in inst["min_notional"]
        assert json.loads(inst["info"])["max_leverage"] == 50  # from the July 2023 bracket table
        assert "Binance exchangeInfo fetched" in " ".join(rep.notes)

        # download-data of a non-built-in symbol through ccxt
        cat2 = tmp_path / "dl"
        dl = download_data(cat2, market="um", symbols=["SOLUSDT"], start="2023-07-20", end="2023-07-20",
                           urls=mock.ccxt_urls(), rate_limit_ms=1, backoff_s=0.01, progress=False,
                           now_ms=1_700_000_000_000)
    assert dl.total("bars").rows_written == len(rows) == 1440
    t = stored_table(cat2, "bars", "SOLUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL")
    assert t["close"].combine_chunks().equals(pa.array([r[4] for r in rows]).cast(DEC))
    assert t["volume"].combine_chunks().equals(pa.array([r[5] for r in rows]).cast(DEC))
    inst = stored_instrument(cat2, "SOLUSDT-PERP.BINANCE_USDM")
    assert Decimal(inst["price_increment"]) == Decimal("0.001") and inst["price_precision"] == 3


def test_metadata_unreachable_falls_back_to_inference(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    dead = {"public": f"http://127.0.0.1:{port}/api/v3", "fapiPublic": f"http://127.0.0.1:{port}/fapi/v1"}
    from catalog.writer import ImportReport

    rep = ImportReport(source="x")
    r = InstrumentResolver(tmp_path, metadata="fetch", urls=dead, report=rep)
    assert r.metadata is None and "unreachable" in rep.warnings[0]
    spec = r.spec("SOLUSDT", "um", data_precision=(3, 0))
    assert (spec.tick_size, spec.step_size, spec.min_notional) == ("0.001", "1", None)


# --------------------------------------------------------------------------- instruments.toml


def test_instruments_toml_wins_and_carries_brackets(tmp_path: Path) -> None:
    toml = tmp_path / "cat" / "instruments.toml"
    toml.parent.mkdir()
    toml.write_text(
        "[um.SOLUSDT]\n"
        'tick_size = "0.0010"\nstep_size = 1\nmin_notional = "7"\nmax_leverage = 20\nprice_precision = 4\n'
        "brackets = [[10000, 0.02, 20], [100000, 0.05, 10]]\n"
        "[um.NEWUSDT]\n"
        'brackets = [{effective_from = "2023-01-01", tiers = [[5000, 0.03, 10]]}]\n'
    )
    with BinanceMock() as mock:  # metadata says otherwise: the override wins
        mock.add_symbol("fapi", "SOLUSDT", "SOL", tick_size="0.0100", step_size="1", min_qty="1", min_notional="5")
        fetch_exchange_info(tmp_path / "cat", ("um",), urls=mock.ccxt_urls())
    import_freqtrade(tmp_path / "cat", data_dir=WIN, pairs=["SOLUSDT"], timeframes=["1m"])
    inst = stored_instrument(tmp_path / "cat", "SOLUSDT-PERP.BINANCE_USDM")
    assert (inst["price_precision"], inst["price_increment"], inst["min_notional"][:4]) == (4, "0.0010", "7.00")
    assert json.loads(inst["info"])["max_leverage"] == 20 and Decimal(inst["margin_maint"]) == Decimal("0.02")
    bars = stored_table(tmp_path / "cat", "bars", "SOLUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL")
    meta = pq.read_schema(sorted((tmp_path / "cat" / "data" / "bars").rglob("*.parquet"))[0]).metadata
    assert meta[b"price_precision"] == b"4" and bars.num_rows == 43_200
    b = brackets_for("SOLUSDT", "2023-07-20", catalog=tmp_path / "cat")
    assert [(x.cap, x.mmr, x.max_leverage) for x in b] == [(10000, 0.02, 20), (100000, 0.05, 10)]
    assert brackets_for("NEWUSDT", instruments_file=toml)[0].mmr == 0.03
    # the run config's brackets still win over the file
    from core.brackets import make_brackets

    cfg = {"SOLUSDT": [("2023-01-01", make_brackets([(1e6, 0.01, 50)]))]}
    assert brackets_for("SOLUSDT", "2023-07-20", cfg, catalog=tmp_path / "cat")[0].cap == 1e6

    toml.write_text('[um.SOLUSDT]\ntick_size = "abc"\n')
    with pytest.raises(ins.InstrumentOverrideError, match=r"\[um.SOLUSDT\].tick_size"):
        import_freqtrade(tmp_path / "cat", data_dir=WIN, pairs=["SOLUSDT"], timeframes=["1m"])
    toml.write_text("[um.SOLUSDT]\nbrackets = [[1000, 0.5, 1], [500, 0.6, 1]]\n")
    with pytest.raises(MarginError, match="notional cap"):
        brackets_for("SOLUSDT", catalog=tmp_path / "cat")


# --------------------------------------------------------------------------- Binance Vision, any symbol / ALL


def _zip(rows: list[str], name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, "\n".join(rows) + "\n")
    return buf.getvalue()


@pytest.mark.parametrize("store", ["nautilus", "compact"])
def test_binance_vision_all_symbols_of_a_folder(tmp_path: Path, store: str) -> None:
    """A Binance Vision folder holding XRPUSDT and DOGEUSDT USDT-M 1m klines (daily zips written
    here from the real feathers) imports with --symbols ALL; bars equal the source exactly."""
    mirror = tmp_path / "bv"
    expected = {}
    for sym, pair in (("XRPUSDT", "XRP_USDT_USDT"), ("DOGEUSDT", "DOGE_USDT_USDT")):
        df = pd.read_feather(WIN / f"{pair}-1m-futures.feather")
        df = df[(df["date"] >= "2023-07-20") & (df["date"] < "2023-07-22")]
        t = open_ns(df) // 1_000_000
        for day in ("2023-07-20", "2023-07-21"):
            sel = df["date"].dt.strftime("%Y-%m-%d") == day
            rows = ["open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                    "taker_buy_quote_volume,ignore"]
            rows += [f"{a},{o!r},{h!r},{lo!r},{c!r},{v!r},{a + 59_999},0,0,0,0,0" for a, o, h, lo, c, v in zip(
                t[sel.to_numpy()], df.open[sel], df.high[sel], df.low[sel], df["close"][sel], df.volume[sel], strict=True)]
            d = mirror / "data/futures/um/daily/klines" / sym / "1m"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{sym}-1m-{day}.zip").write_bytes(_zip(rows, f"{sym}-1m-{day}.csv"))
        expected[sym] = df
    assert list_symbols(mirror, "um") == ["DOGEUSDT", "XRPUSDT"]
    rep = import_binance_vision(tmp_path / "cat", base_url=mirror, market="um", symbols="ALL", store=store)
    assert rep.total("bars").rows_written == 2 * 2880
    from catalog.reader import bar_store  # noqa: F401 - the store both backtests and this test read

    for sym, df in expected.items():
        bt = f"{sym}-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
        if store == "nautilus":
            t = stored_table(tmp_path / "cat", "bars", bt)
            got = {c: t[c].combine_chunks() for c in ("open", "high", "low", "close", "volume")}
            ts = pc.cast(t["ts_init"], pa.int64()).to_numpy()
        else:
            from catalog.compact_loader import load_bars

            bars = load_bars(tmp_path / "cat", bt)
            got = {c: pa.array([str(getattr(b, c)) for b in bars]).cast(DEC) for c in ("open", "high", "low", "close",
                                                                                           "volume")}
            ts = np.array([b.ts_init for b in bars])
        assert ts.tolist() == (open_ns(df) + MIN_NS).tolist()
        for c in got:
            assert got[c].equals(dec_strings(df[c])), f"{sym} {c}"
    inst = stored_instrument(tmp_path / "cat", "XRPUSDT-PERP.BINANCE_USDM")
    assert (inst["price_precision"], inst["size_precision"]) == (4, 1)  # the finest decimals in the data
    assert list_symbols(BV, "spot") == ["BTCUSDT", "ETHUSDT"]


# --------------------------------------------------------------------------- import-csv


def _user_csv(tmp_path: Path, variant: str) -> tuple[Path, pd.DataFrame, dict]:
    """A user CSV built from the real ADAUSDT 1m feather (2 days)."""
    df = pd.read_feather(WIN / "ADA_USDT_USDT-1m-futures.feather")
    df = df[(df["date"] >= "2023-07-10") & (df["date"] < "2023-07-12")].reset_index(drop=True)
    p = tmp_path / f"ada-{variant}.csv"
    cols = [repr(float(x)) for x in df.open], [repr(float(x)) for x in df.high], \
        [repr(float(x)) for x in df.low], [repr(float(x)) for x in df["close"]], [repr(float(x)) for x in df.volume]
    if variant == "default":  # timestamp,open,high,low,close,volume; epoch ms of the bar open
        ts = [str(int(x) // 1_000_000) for x in open_ns(df)]
        text = "timestamp,open,high,low,close,volume\n" + "".join(
            f"{t},{o},{h},{lo},{c},{v}\n" for t, o, h, lo, c, v in zip(ts, *cols, strict=True))
        kw: dict = {}
    else:  # own column names, ';', ISO local times in Berlin, stamped at the bar CLOSE, extra column
        close = pd.DatetimeIndex(df["date"]).tz_convert("Europe/Berlin").shift(1, freq="min")
        ts = [x.strftime("%Y-%m-%d %H:%M:%S") for x in close]
        text = "Vol;Date;Open;High;Low;Close;Note\n" + "".join(
            f"{v};{t};{o};{h};{lo};{c};x\n" for t, o, h, lo, c, v in zip(ts, *cols, strict=True))
        kw = dict(columns={"timestamp": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close",
                           "volume": "Vol"}, time_unit="iso", timezone="Europe/Berlin", timestamp_is="close",
                  delimiter=";")
    p.write_text(text)
    return p, df, kw


@pytest.mark.parametrize("variant", ["default", "iso_berlin_close"])
def test_import_csv_round_trips_exactly(tmp_path: Path, variant: str) -> None:
    p, df, kw = _user_csv(tmp_path, variant)
    rep = import_csv(tmp_path / "cat", files=[p], symbol="ADAUSDT", market="um", interval="1m", **kw)
    assert rep.total("bars").rows_written == len(df) == 2880
    t = stored_table(tmp_path / "cat", "bars", "ADAUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL")
    assert pc.cast(t["ts_init"], pa.int64()).to_numpy().tolist() == (open_ns(df) + MIN_NS).tolist()
    for c in ("open", "high", "low", "close", "volume"):
        assert t[c].combine_chunks().equals(dec_strings(df[c])), c
    again = import_csv(tmp_path / "cat", files=[p], symbol="ADAUSDT", market="um", **kw)
    assert again.total("bars").rows_written == 0 and again.total("bars").rows_skipped == 2880


def _set(row: str, i: int, value: str) -> str:
    parts = row.split(",")
    parts[i] = value
    return ",".join(parts)


@pytest.mark.parametrize("line, edit, match", [
    (57, lambda r: _set(r, 4, "1.2.3"), r"ada-default.csv, row 57: column 'close': non-numeric value '1\.2\.3'"),
    (9, lambda r: _set(r, 0, "abc"), r"row 9: column 'timestamp': 'abc' is not an integer epoch time in ms"),
    (30, lambda r: _set(r, 5, ""), r"row 30: column 'volume': empty value"),
    (40, lambda r: _set(r, 1, "0.2"), r"row 40: open outside \[low, high\]"),
    (5, lambda r: _set(r, 0, str(int(r.split(",")[0]) + 1)), r"row 5: column 'timestamp': .* not on the 1m grid"),
])
def test_import_csv_bad_row_names_file_row_column(tmp_path: Path, line: int, edit, match: str) -> None:  # noqa: ANN001
    p, _, _ = _user_csv(tmp_path, "default")
    cat = tmp_path / "cat"
    import_csv(cat, files=[p], symbol="ADAUSDT", market="um")  # something already stored
    before = data_files(cat)
    rows = p.read_text().splitlines()
    rows[line - 1] = edit(rows[line - 1])
    bad = tmp_path / "ada-default.csv"
    bad.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataImportError, match=match):
        import_csv(cat, files=[bad], symbol="ADAUSDT", market="um")
    assert data_files(cat) == before  # nothing lost or half-written


def test_import_csv_more_decimals_than_the_stored_instrument(tmp_path: Path) -> None:
    p, _, _ = _user_csv(tmp_path, "default")
    import_csv(tmp_path / "cat", files=[p], symbol="ADAUSDT", market="um")  # precision 4 inferred and stored
    rows = p.read_text().splitlines()
    parts = rows[100].split(",")
    parts[4] = parts[4] + "1" if "." in parts[4] else parts[4] + ".00001"
    rows[100] = ",".join(parts)
    q = tmp_path / "more.csv"
    q.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataImportError, match=r"more.csv, row 101: column 'close'.*more than 4 decimals"):
        import_csv(tmp_path / "cat", files=[q], symbol="ADAUSDT", market="um")


def test_cli_import_csv_and_fetch_instruments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nautilus_app.cli import main

    p, df, _ = _user_csv(tmp_path, "default")
    cat = tmp_path / "cat"
    with BinanceMock() as mock:
        mock.add_symbol("fapi", "ADAUSDT", "ADA", tick_size="0.00010", step_size="1", min_qty="1", min_notional="5")
        urls = mock.ccxt_urls()
        assert main(["fetch-instruments", "--catalog", str(cat), "--api-url", f"public={urls['public']}",
                     "--api-url", f"fapiPublic={urls['fapiPublic']}"]) == 0
    assert main(["import-csv", str(p), "--catalog", str(cat), "--symbol", "ADAUSDT", "--market", "um"]) == 0
    out = capsys.readouterr().out
    assert "cached {'spot': 2, 'um': 3} symbols" in out and f"read {len(df)}, written {len(df)}" in out
    assert "Binance exchangeInfo fetched" in out
    rows = p.read_text().splitlines()
    rows[3] = _set(rows[3], 2, "x")
    p.write_text("\n".join(rows) + "\n")
    assert main(["import-csv", str(p), "--catalog", str(cat), "--symbol", "ADAUSDT", "--market", "um"]) == 2
    assert "row 4: column 'high': non-numeric value 'x'" in capsys.readouterr().err
    assert main(["import-freqtrade", "--catalog", str(cat), "--datadir", str(WIN), "--pairs", "NOPE/USDT:USDT"]) == 2
    assert "NOPE/USDT:USDT" in capsys.readouterr().err
