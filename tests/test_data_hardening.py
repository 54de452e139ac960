"""Issue 20, data side: one test per reported case, each asserting the clear error and that
nothing stored changed. Real Binance Vision / freqtrade files from the shared mirror; corrupt or
swapped files are built from them in tmp folders."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from catalog.errors import DataImportError
from catalog.freqtrade import import_freqtrade
from catalog.validation import validate_catalog
from core.paths import REPO_ROOT, shared_data_dir

BV = shared_data_dir() / "binance-vision"
DAILY = BV / "data/spot/daily/klines"
FT = shared_data_dir() / "freqtrade" / "binance"
BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden staging included) with its sha256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".import.lock"}


def vision_folder(base: Path, days: dict[str, bytes | Path]) -> Path:
    """A local Binance Vision folder with BTCUSDT spot daily zips: day -> source zip or CSV bytes."""
    d = base / "data/spot/daily/klines/BTCUSDT/1m"
    d.mkdir(parents=True, exist_ok=True)
    for day, content in days.items():
        name = f"BTCUSDT-1m-{day}"
        if isinstance(content, Path):
            shutil.copy(content, d / f"{name}.zip")
        else:
            with zipfile.ZipFile(d / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(f"{name}.csv", content)
    return base


def csv_of(symbol: str, day: str) -> str:
    name = f"{symbol}-1m-{day}"
    return zipfile.ZipFile(DAILY / f"{symbol}/1m/{name}.zip").read(f"{name}.csv").decode()


def stored_catalog(tmp_path: Path, store: str) -> tuple[Path, Path]:
    """A catalog holding BTCUSDT 2021-04-02..03 (real) in ``store``, and its source folder."""
    src = vision_folder(tmp_path / "src", {d: DAILY / f"BTCUSDT/1m/BTCUSDT-1m-{d}.zip" for d in ("2021-04-02", "2021-04-03")})
    cat = tmp_path / "cat"
    import_binance_vision(cat, base_url=src, symbols=["BTCUSDT"], store=store, metadata="offline")
    return cat, src


def mutate_row(text: str, row: int, column: int, value: str) -> str:
    lines = text.splitlines()
    parts = lines[row - 1].split(",")
    parts[column] = value
    lines[row - 1] = ",".join(parts)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("store", ["nautilus", "compact"])
@pytest.mark.parametrize("value,column,name", [("nan", 2, "high"), ("", 4, "close"), ("NaN", 1, "open")])
def test_nan_or_empty_price_names_file_and_row(tmp_path: Path, store: str, value: str, column: int,
                                               name: str) -> None:
    cat, src = stored_catalog(tmp_path, store)
    before = snapshot(cat)
    bad = mutate_row(csv_of("BTCUSDT", "2021-04-04"), 6, column, value)
    vision_folder(src, {"2021-04-04": bad, "2021-04-05": DAILY / "BTCUSDT/1m/BTCUSDT-1m-2021-04-05.zip"})
    with pytest.raises(DataImportError) as e:
        import_binance_vision(cat, base_url=src, symbols=["BTCUSDT"], store=store, metadata="offline")
    assert e.value.path.endswith("BTCUSDT-1m-2021-04-04.zip!BTCUSDT-1m-2021-04-04.csv") and e.value.row == 6
    assert f"column '{name}'" in str(e.value) and "empty or NaN" in str(e.value)
    assert snapshot(cat) == before  # nothing of the symbol written, not even the other day


@pytest.mark.parametrize("store", ["nautilus", "compact"])
@pytest.mark.parametrize("content", ["", "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                                         "taker_buy_volume,taker_buy_quote_volume,ignore\n"])
def test_empty_csv_refused_by_both_stores(tmp_path: Path, store: str, content: str) -> None:
    cat, src = stored_catalog(tmp_path, store)
    before = snapshot(cat)
    vision_folder(src, {"2021-04-04": content})
    with pytest.raises(DataImportError, match="(?i)empty CSV") as e:
        import_binance_vision(cat, base_url=src, symbols=["BTCUSDT"], store=store, metadata="offline")
    assert "BTCUSDT-1m-2021-04-04" in e.value.path
    assert snapshot(cat) == before


@pytest.mark.parametrize("store", ["nautilus", "compact"])
def test_other_symbol_under_this_name_is_refused(tmp_path: Path, store: str) -> None:
    """A day of ETHUSDT packed as BTCUSDT-1m-2021-04-04.zip: -96 % at the file boundary."""
    cat, src = stored_catalog(tmp_path, store)
    before = snapshot(cat)
    vision_folder(src, {"2021-04-04": csv_of("ETHUSDT", "2021-04-04")})
    with pytest.raises(DataImportError) as e:
        import_binance_vision(cat, base_url=src, symbols=["BTCUSDT"], store=store, metadata="offline")
    msg = str(e.value)
    assert "BTCUSDT-1m-2021-04-04.zip" in e.value.path and e.value.row == 1
    assert "price jumps -96." in msg and "(bar closing 2021-04-04 00:00 UTC, stored)" in msg
    assert snapshot(cat) == before
    # the same file before the stored days (its last bar does not continue into them): refused too
    cat2 = tmp_path / "cat2"
    import_binance_vision(cat2, base_url=src, symbols=["BTCUSDT"], store=store, metadata="offline",
                          start="2021-04-03", end="2021-04-03")
    shutil.rmtree(src)
    vision_folder(src, {"2021-04-02": csv_of("ETHUSDT", "2021-04-02")})
    with pytest.raises(DataImportError, match=r"price jumps \+\d+\.\d %"):
        import_binance_vision(cat2, base_url=src, symbols=["BTCUSDT"], store=store, metadata="offline")
    # with the check off (0) it goes in, and validate reports the jump inside the stored data
    shutil.rmtree(src)
    vision_folder(src, {"2021-04-04": csv_of("ETHUSDT", "2021-04-04")})
    import_binance_vision(cat, base_url=src, symbols=["BTCUSDT"], store=store, metadata="offline", max_jump=0)
    assert validate_catalog(cat, max_jump="off").query("check == 'jumps'").empty
    df = validate_catalog(cat)
    jumps = df[df["check"] == "jumps"]
    assert len(jumps) == 1 and jumps["severity"].iloc[0] == "error"
    assert "price jumps -96." in jumps["message"].iloc[0] and "2021-04-04 00:00" in jumps["message"].iloc[0]
    r = subprocess.run([sys.executable, "-m", "nautilus_app", "validate", "--catalog", str(cat)], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "jumps" in r.stdout


def test_freqtrade_feather_of_another_pair_is_refused(tmp_path: Path) -> None:
    """BTC_USDT-1m.feather whose second half is ETH's candles of the same minutes."""
    btc = pd.read_feather(FT / "BTC_USDT-1m.feather")
    eth = pd.read_feather(FT / "ETH_USDT-1m.feather").set_index("date")
    half = len(btc) // 2
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    btc.iloc[:half].reset_index(drop=True).to_feather(a / "BTC_USDT-1m.feather")
    swapped = eth.loc[btc["date"].iloc[half:]].reset_index()
    swapped.to_feather(b / "BTC_USDT-1m.feather")
    cat = tmp_path / "cat"
    import_freqtrade(cat, data_dir=a, metadata="offline")
    before = snapshot(cat)
    with pytest.raises(DataImportError) as e:
        import_freqtrade(cat, data_dir=b, metadata="offline")
    assert e.value.path == str(b / "BTC_USDT-1m.feather") and e.value.row == 1
    assert "price jumps -9" in str(e.value) and "stored" in str(e.value)
    assert snapshot(cat) == before


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nautilus_app", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("args,needle", [
    (["import-binance-vision", "--start", "2023-13-01"], "argument --start"),
    (["import-binance-vision", "--interval", "7x"], "argument --interval"),
    (["import-binance-vision", "--max-jump", "-1"], "argument --max-jump"),
    (["import-freqtrade", "--timeframes", "1m", "7x"], "argument --timeframes"),
    (["download-binance-vision", "--start", "2023-01-01", "--workers", "0"], "argument --workers"),
    (["download-data", "--start", "2023-01-01", "--api-url", "nourl"], "argument --api-url"),
    (["import-binance-vision", "--start", "2023-01-05", "--end", "2023-01-02"], "end 2023-01-02 before start"),
])
def test_importer_argument_errors_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    r = run_cli(*args, "--catalog", str(tmp_path / "cat"))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "cat").rglob("*.parquet")) if (tmp_path / "cat").exists() else True


def test_import_of_zero_rows_fails_unless_allowed(tmp_path: Path) -> None:
    cat = tmp_path / "cat"
    args = ["import-binance-vision", "--catalog", str(cat), "--base-url", str(BV), "--start", "2030-01-01",
            "--end", "2030-01-02"]
    r = run_cli(*args)
    assert r.returncode == 1 and "nothing imported: 0 data rows" in r.stderr and "--allow-empty" in r.stderr
    assert not list(cat.rglob("*.parquet"))  # not even the instrument
    r = run_cli(*args, "--allow-empty")
    assert r.returncode == 0 and "no klines rows in the selected range" in r.stdout


def test_mistyped_http_base_url_fails(tmp_path: Path) -> None:
    """An HTTP base that answers 404 for every archive (a typo in the path) imports 0 rows: exit 1."""
    (tmp_path / "www").mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"), **k)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        r = run_cli("import-binance-vision", "--catalog", str(tmp_path / "cat"), "--base-url",
                    f"http://127.0.0.1:{srv.server_port}/dta", "--start", "2025-06-01", "--end", "2025-06-02")
    finally:
        srv.shutdown()
    assert r.returncode == 1, r.stderr
    assert "nothing imported" in r.stderr and f"127.0.0.1:{srv.server_port}/dta" in r.stderr


def test_next_command_removes_stale_staging_and_partials(tmp_path: Path) -> None:
    """Leftovers of killed writers (a dead pid): staging folders, compact .tmp files, results partials."""
    cat, src = stored_catalog(tmp_path, "compact")
    dead = "999999999"
    stage = cat / ".staging" / f"{dead}-123-abc"
    stage.mkdir(parents=True)
    (stage / "x.parquet").write_bytes(b"half")
    tmp = cat / "compact/bars" / BAR / f".2021-04.parquet.{dead}.deadbeef.tmp"
    tmp.write_bytes(b"half")
    results = tmp_path / "results"
    partial = results / ".run-a.partial"
    partial.mkdir(parents=True)
    (partial / ".owner").write_text(f"{dead}-1")
    old = results / ".run-b.partial"  # no owner marker, untouched for an hour
    old.mkdir()
    (old / "fills.parquet").write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(old / "fills.parquet", (hour_ago, hour_ago))
    os.utime(old, (hour_ago, hour_ago))
    live = results / ".run-c.partial"  # a writer at work (this process)
    live.mkdir()
    from nautilus_app.housekeeping import mark_owner

    mark_owner(live)
    fresh = results / ".run-d.partial"  # no marker, just written: could be a writer at work
    fresh.mkdir()
    before = {p.name for p in (cat / "compact/bars" / BAR).glob("*.parquet")}
    r = run_cli("import-binance-vision", "--catalog", str(cat), "--base-url", str(src), "--store", "compact",
                "--metadata", "offline", env={"RESULTS_DIR": str(results)})
    assert r.returncode == 0, r.stderr
    assert not stage.exists() and not tmp.exists() and not partial.exists() and not old.exists()
    assert live.exists() and fresh.exists()
    assert {p.name for p in (cat / "compact/bars" / BAR).glob("*.parquet")} == before
