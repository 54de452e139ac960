"""Binance spot paper trading against the replay server (offline, real Redis).

Nautilus's Rust spot data client asks for ``/api/v3/exchangeInfo`` in SBE only (``Accept:
application/sbe``, ``X-MBX-SBE: 3:5``); the replay server answers in SBE (schema 3:5), then the
client uses the public JSON kline streams. Expected fills come from a backtest of the same config
over the same bars and from the raw Binance Vision CSV (pandas), never from the paper output.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tomllib
import uuid
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import REPO_ROOT, shared_data_dir
from nautilus_app.backtest import run_backtest
from nautilus_app.config import parse_config
from nautilus_app.paper_state import PaperState
from nautilus_app.testkit.replay import BinanceReplayServer, load_klines, sbe_exchange_info_spot

MIRROR = shared_data_dir() / "binance-vision"
ZIP = MIRROR / "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2023-04.zip"
START, END = "2023-04-01T00:00", "2023-04-01T05:00"
N_BARS = 300
FILL_COLS = ["ts_event", "instrument_id", "order_side", "last_qty", "last_px", "commission"]


def test_sbe_exchange_info_layout() -> None:
    """Header and first symbol fields decoded by hand from the bytes (schema spot_3_5.xml)."""
    b = sbe_exchange_info_spot(["BTCUSDT"])
    assert struct.unpack_from("<HHHH", b, 0) == (0, 103, 3, 5)  # blockLength, ExchangeInfoResponse, schema 3:5
    assert struct.unpack_from("<HI", b, 8) == (11, 0) and struct.unpack_from("<HI", b, 14) == (0, 0)
    assert struct.unpack_from("<HI", b, 20) == (19, 1)  # one symbol, 19-byte block
    filters_at = 26 + 19
    assert struct.unpack_from("<HI", b, filters_at) == (0, 3)
    n = b[filters_at + 6]  # first filter: PriceFilter (template 1), tick 0.01 = 1_000_000 x 1e-8
    hdr = struct.unpack_from("<HHHH", b, filters_at + 7)
    exp, mn, mx, tick = struct.unpack_from("<bqqq", b, filters_at + 15)
    assert n == 8 + 25 and hdr == (25, 1, 3, 5) and exp == -8 and tick == 1_000_000 and mn == 1_000_000
    assert b.endswith(b"\x07BTCUSDT\x03BTC\x04USDT" + struct.pack("<HI", 0, 0))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paper_spot_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2023-04-01", end="2023-04-01", kinds=("klines",))
    return root


def raw_closes() -> pd.Series:
    with zipfile.ZipFile(ZIP) as zf, zf.open(zf.namelist()[0]) as fh:
        df = pd.read_csv(fh, header=None)
    t = pd.to_datetime(df[0], unit="ms", utc=True)
    df = df[(t >= pd.Timestamp(START, tz="UTC")) & (t < pd.Timestamp(END, tz="UTC"))]
    return pd.Series(df[4].to_numpy(float), index=pd.to_datetime(df[0], unit="ms", utc=True) + pd.Timedelta(minutes=1))


def test_spot_paper_fills_equal_backtest_fills(tmp_path: Path, catalog: Path) -> None:
    trader = f"PSPOT-{uuid.uuid4().hex[:8]}"
    text = (REPO_ROOT / "configs/paper_spot.toml").read_text()
    text = text.replace('start = "2023-04-01"', f'start = "{START}"').replace('end = "2023-04-08"', f'end = "{END}"')
    text = text.replace("fast_period = 10", "fast_period = 5").replace("slow_period = 30", "slow_period = 15")
    text = f'catalog = "{catalog}"\n' + text.replace('trader_id = "PAPER_SPOT-001"', f'trader_id = "{trader}"')
    text = text.replace("[paper]\n", '[paper]\nexecution = "sandbox"\n').replace(
        'fill_timing = "same_close"', 'fill_timing = "same_close"\nlatency = false')  # the sandbox option (simulated: test_paper_sim)
    config = tmp_path / "paper_spot.toml"
    config.write_text(text)
    raw = tomllib.loads(text)
    server = BinanceReplayServer({"BTCUSDT": load_klines("BTCUSDT", START, END, market="spot")}, bar_seconds=0.02,
                                 market="spot").start()
    try:
        proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/run_paper.py"), str(config),
                               "--results-dir", str(tmp_path / "results"), "--base-url-http", server.base_url_http,
                               "--base-url-ws", server.base_url_ws, "--fresh", "--max-bars", str(N_BARS)],
                              capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    finally:
        server.stop()
        PaperState(trader).clear()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.cursor == N_BARS and not server.stats.unhandled
    assert "GET /api/v3/exchangeInfo" in server.stats.http_requests
    path = Path(proc.stdout.strip().splitlines()[-1])
    paper = pd.read_parquet(path / "fills.parquet")
    bt = pd.read_parquet(run_backtest(parse_config(raw), results_root=tmp_path / "bt", progress=False).results_path
                         / "fills.parquet")
    assert len(bt) >= 4, "the window must trade for the comparison to mean something"
    pd.testing.assert_frame_equal(paper[FILL_COLS].reset_index(drop=True), bt[FILL_COLS].reset_index(drop=True))
    closes = raw_closes()
    assert len(closes) == N_BARS
    assert (paper["last_px"].to_numpy() == closes.reindex(paper["ts_event"]).to_numpy()).all()
    fee = paper["last_qty"] * paper["last_px"] * 0.001  # Binance spot taker 0.1 %, in USDT
    assert (paper["commission"] - fee).abs().max() < 1e-6
