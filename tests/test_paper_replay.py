"""Paper trading with ``execution = "sandbox"`` (Nautilus's sandbox, kept as an option) fed by the local
Binance replay server (offline, real Redis). The default simulated execution client is tested in
tests/test_paper_sim.py.

The node is the real thing: ``scripts/run_paper.py`` in a subprocess, Nautilus's Rust Binance
USDT-M data client pointed at :class:`nautilus_app.testkit.replay.BinanceReplayServer`, the sandbox
execution client, Nautilus's Redis cache database at 127.0.0.1:6379. Each test uses its own
trader id (own Redis keys) and deletes its keys afterwards.

Expected values come from the raw Binance Vision CSVs (read here with pandas) and from a backtest
of the same config over the same bars (``run_backtest``), never from the paper output itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tomllib
import uuid
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import redis

from catalog.binance_vision import import_binance_vision
from core.paths import REPO_ROOT, shared_data_dir
from nautilus_app.backtest import run_backtest
from nautilus_app.config import parse_config
from nautilus_app.paper_state import PaperState
from nautilus_app.testkit.replay import BinanceReplayServer, load_funding, load_klines

MIRROR = shared_data_dir() / "binance-vision"
ZIP = MIRROR / "data/futures/um/daily/klines/ETHUSDT/1m/ETHUSDT-1m-2023-08-01.zip"
START, END = "2023-08-01T00:00", "2023-08-01T05:00"  # 300 bars; the 00:00 funding precedes any position
N_BARS = 300
FILL_COLS = ["ts_event", "instrument_id", "order_side", "last_qty", "last_px", "commission"]


def raw_closes() -> pd.Series:
    """Close prices of the window from the raw CSV, indexed by close time (open + 1 min)."""
    with zipfile.ZipFile(ZIP) as zf, zf.open(zf.namelist()[0]) as fh:
        df = pd.read_csv(fh)
    t = pd.to_datetime(df["open_time"], unit="ms", utc=True)
    df = df[(t >= pd.Timestamp(START, tz="UTC")) & (t < pd.Timestamp(END, tz="UTC"))]
    return pd.Series(df["close"].to_numpy(float), index=pd.to_datetime(df["open_time"], unit="ms", utc=True)
                     + pd.Timedelta(minutes=1))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paper_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-08-01", end="2023-08-01", kinds=("klines", "fundingRate"))
    return root


@pytest.fixture()
def trader_id():
    tid = f"PTEST-{uuid.uuid4().hex[:8]}"
    yield tid
    PaperState(tid).clear()


def write_config(tmp_path: Path, catalog: Path, *, allow_short: bool, trader_id: str) -> tuple[Path, dict]:
    """configs/paper_perp.toml with this test's catalog, window, short flag and trader id."""
    text = (REPO_ROOT / "configs/paper_perp.toml").read_text()
    text = text.replace('start = "2023-08-01"', f'start = "{START}"').replace('end = "2023-08-16"', f'end = "{END}"')
    text = text.replace("allow_short = true", f"allow_short = {str(allow_short).lower()}")
    text = text.replace("fast_period = 10", "fast_period = 5").replace("slow_period = 30", "slow_period = 15")
    text = text.replace('trader_id = "PAPER-001"', f'trader_id = "{trader_id}"')
    text = f'catalog = "{catalog}"\n' + text.replace("[paper]\n", '[paper]\nexecution = "sandbox"\n').replace(
        'fill_timing = "same_close"', 'fill_timing = "same_close"\nlatency = false')
    path = tmp_path / "paper.toml"
    path.write_text(text)
    raw = tomllib.loads(text)
    assert raw["paper"]["trader_id"] == trader_id and raw["start"] == START
    return path, raw


def start_server(bar_seconds: float = 0.02) -> BinanceReplayServer:
    k = load_klines("ETHUSDT", START, END)
    f = load_funding("ETHUSDT", "2023-07-31", "2023-08-02")
    return BinanceReplayServer({"ETHUSDT": k}, bar_seconds=bar_seconds, funding={"ETHUSDT": f}).start()


def paper_cmd(config: Path, server: BinanceReplayServer, results: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "scripts/run_paper.py"), str(config), "--results-dir", str(results),
            "--base-url-http", server.base_url_http, "--base-url-ws", server.base_url_ws, *extra]


def run_paper(config: Path, server: BinanceReplayServer, results: Path, *extra: str, timeout: float = 90) -> Path:
    proc = subprocess.run(paper_cmd(config, server, results, *extra), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def backtest_fills(raw: dict, tmp_path: Path) -> tuple[pd.DataFrame, dict]:
    out = run_backtest(parse_config(raw), results_root=tmp_path / "bt", progress=False)
    return pd.read_parquet(out.results_path / "fills.parquet"), out.metrics


def test_replay_serves_the_raw_csv_klines() -> None:
    """The server's bars are the CSV rows, in order, one per minute."""
    closes = raw_closes()
    k = load_klines("ETHUSDT", START, END)
    assert len(k) == len(closes) == N_BARS
    assert [float(x.close) for x in k] == closes.tolist()
    assert all(b.open_time - a.open_time == 60_000 for a, b in zip(k, k[1:], strict=False))


def test_paper_fills_equal_backtest_fills(tmp_path: Path, catalog: Path, trader_id: str) -> None:
    """Parity: long/flat EMA cross on 300 replayed bars gives the backtest's fills exactly."""
    config, raw = write_config(tmp_path, catalog, allow_short=False, trader_id=trader_id)
    server = start_server()
    try:
        path = run_paper(config, server, tmp_path / "results", "--fresh", "--max-bars", str(N_BARS))
    finally:
        server.stop()
    assert server.cursor == N_BARS and not server.stats.unhandled
    paper = pd.read_parquet(path / "fills.parquet")
    bt, bt_metrics = backtest_fills(raw, tmp_path)
    assert len(bt) >= 4, "the window must trade for the comparison to mean something"
    pd.testing.assert_frame_equal(paper[FILL_COLS].reset_index(drop=True), bt[FILL_COLS].reset_index(drop=True))
    # independently: every fill is at the close of its bar (same_close timing), taker fee 0.05 %
    closes = raw_closes()
    assert (paper["last_px"].to_numpy() == closes.reindex(paper["ts_event"]).to_numpy()).all()
    fee = paper["last_qty"] * paper["last_px"] * 0.0005
    assert (paper["commission"] - fee).abs().max() < 1e-6
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["final_equity"] == pytest.approx(bt_metrics["final_equity"], abs=1e-6)
    equity = pd.read_parquet(path / "equity.parquet")
    assert len(equity) == N_BARS and equity["ts"].iloc[-1] == closes.index[-1]
    run = json.loads((path / "run.json").read_text())
    assert run["mode"] == "paper" and run["running"] is False and run["bars_recorded"] == N_BARS
    assert {"orders.parquet", "positions.parquet", "account.parquet", "trades.parquet", "funding.parquet",
            "status.json", "tearsheet.html", "paper.log.jsonl"} <= {p.name for p in path.iterdir()}


def read_nautilus_state(trader_id: str) -> dict:
    """Orders, positions and account of the trader straight from Nautilus's Redis keys."""
    r = redis.Redis(decode_responses=True)
    out: dict = {"orders": {}, "positions": {}, "accounts": {}}
    for kind in out:
        for key in r.scan_iter(f"trader-{trader_id}:{kind}:*"):
            t = r.type(key)
            out[kind][key.split(":", 2)[2]] = r.lrange(key, 0, -1) if t == "list" else r.get(key)
    return out


def wait_for(pred, timeout: float, what: str) -> None:  # noqa: ANN001
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_9_and_restart_preserves_state(tmp_path: Path, catalog: Path, trader_id: str) -> None:
    """kill -9 with a position open; the restarted node has the same position, balance and orders,
    and the session ends with the backtest's fills (none lost, none duplicated)."""
    config, raw = write_config(tmp_path, catalog, allow_short=False, trader_id=trader_id)
    results = tmp_path / "results"
    server = start_server(bar_seconds=0.05)
    try:
        proc = subprocess.Popen(paper_cmd(config, server, results, "--fresh"), cwd=REPO_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        run_id = None

        def position_open() -> bool:
            nonlocal run_id
            run_id = PaperState(trader_id).meta().get("run_id")
            st = results / str(run_id) / "status.json"
            return st.exists() and bool(json.loads(st.read_text())["positions"])

        wait_for(position_open, 60, "an open position")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        cursor_at_kill = server.cursor
        before = read_nautilus_state(trader_id)
        status_before = json.loads((results / str(run_id) / "status.json").read_text())
        assert before["positions"] and before["orders"]
        # restart: same trader id, no --fresh; run to the end of the replay
        remaining = N_BARS - cursor_at_kill
        proc2 = subprocess.Popen(paper_cmd(config, server, results, "--max-bars", str(remaining + 1)),
                                 cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start_status = results / str(run_id) / "status.json"
        wait_for(lambda: json.loads(start_status.read_text()).get("start_number") == 2, 60, "restarted node status")
        restored = json.loads(start_status.read_text())
        # the server holds its clock while unsubscribed, so the replay ends; stop the node then
        assert server.wait_done(90)
        time.sleep(1.0)
        proc2.send_signal(signal.SIGTERM)
        out, err = proc2.communicate(timeout=60)
        assert proc2.returncode == 0, err[-3000:]
    finally:
        server.stop()
    # same positions and balances right after the restart (first status is written at start)
    assert restored["start_number"] == 2
    pos_b = {(p["instrument_id"], p["quantity"], p["avg_px_open"]) for p in status_before["positions"]}
    pos_a = {(p["instrument_id"], p["quantity"], p["avg_px_open"]) for p in restored["positions"]}
    assert pos_a == pos_b
    assert restored["balances"] == status_before["balances"]
    assert restored["open_orders"] == status_before["open_orders"]
    # no fill lost or duplicated: the whole session's fills equal the backtest's
    path = results / str(run_id)
    paper = pd.read_parquet(path / "fills.parquet")
    assert paper["trade_id"].is_unique
    bt, _ = backtest_fills(raw, tmp_path)
    pd.testing.assert_frame_equal(paper[FILL_COLS].reset_index(drop=True), bt[FILL_COLS].reset_index(drop=True))
    run = json.loads((path / "run.json").read_text())
    assert run["starts"] == 2


def test_dropped_connection_and_stale_feed_are_recovered(tmp_path: Path, catalog: Path, trader_id: str) -> None:
    """Two dropped WebSocket connections and a silent feed: the client reconnects and resubscribes,
    the stale feed is flagged and cleared, and the session's fills still equal the backtest's."""
    config, raw = write_config(tmp_path, catalog, allow_short=False, trader_id=trader_id)
    results = tmp_path / "results"
    server = start_server(bar_seconds=0.03)
    try:
        proc = subprocess.Popen(paper_cmd(config, server, results, "--fresh", "--max-bars", str(N_BARS),
                                          "--stale-after", "1.0"),
                                cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert server.wait_cursor(60, 60)
        assert server.drop_connections() >= 1
        assert server.wait_cursor(120, 60)
        server.pause()
        time.sleep(2.5)  # > stale_after: the node must flag the feed
        server.resume()
        assert server.wait_cursor(180, 60)
        assert server.drop_connections() >= 1
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err[-3000:]
    finally:
        server.stop()
    path = Path(out.strip().splitlines()[-1])
    assert server.stats.drops >= 2 and server.stats.ws_connections >= 6  # 2 sockets x (1 + 2 reconnects)
    subs = [m for m in server.stats.ws_messages_in if "kline_1m" in m and "SUBSCRIBE" in m]
    assert len(subs) >= 3, subs  # subscribed again after each drop
    events = [json.loads(line) for line in (path / "paper.log.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert "market data feed is stale: holding new orders" in names
    assert "market data feed recovered: orders allowed again" in names
    run = json.loads((path / "run.json").read_text())
    assert run["bars_recorded"] == N_BARS
    paper = pd.read_parquet(path / "fills.parquet")
    bt, _ = backtest_fills(raw, tmp_path)
    pd.testing.assert_frame_equal(paper[FILL_COLS].reset_index(drop=True), bt[FILL_COLS].reset_index(drop=True))


def test_funding_is_settled_from_the_live_funding_updates(tmp_path: Path, trader_id: str) -> None:
    """Buy and hold across the 08:00 settlement: the ledger holds -qty x mark x rate, with the rate of
    the raw fundingRate CSV and the 08:00 price (the replay's markPrice carries the bar close)."""
    text = (REPO_ROOT / "configs/paper_perp.toml").read_text()
    text = text.replace('name = "ema_cross"', 'name = "buy_and_hold"')
    text = text.replace("fast_period = 10\nslow_period = 30\nallow_short = true\n", "")
    text = text.replace('trader_id = "PAPER-001"', f'trader_id = "{trader_id}"')
    config = tmp_path / "bh.toml"
    config.write_text(text.replace("[paper]\n", '[paper]\nexecution = "sandbox"\n').replace(
        'fill_timing = "same_close"', 'fill_timing = "same_close"\nlatency = false'))
    k = load_klines("ETHUSDT", "2023-08-01T07:50", "2023-08-01T08:10")
    server = BinanceReplayServer({"ETHUSDT": k}, bar_seconds=0.05,
                                 funding={"ETHUSDT": load_funding("ETHUSDT", "2023-08-01", "2023-08-02")}).start()
    try:
        path = run_paper(config, server, tmp_path / "results", "--fresh", "--max-bars", "20")
    finally:
        server.stop()
    with zipfile.ZipFile(MIRROR / "data/futures/um/monthly/fundingRate/ETHUSDT/ETHUSDT-fundingRate-2023-08.zip") as zf:
        rates = pd.read_csv(zf.open(zf.namelist()[0]))
    rate = float(rates.loc[rates["calc_time"] == 1690876800000, "last_funding_rate"].iloc[0])
    with zipfile.ZipFile(ZIP) as zf:
        bars = pd.read_csv(zf.open(zf.namelist()[0]))
    close_0800 = float(bars.loc[bars["open_time"] == 1690876740000, "close"].iloc[0])  # 07:59 bar closes 08:00
    fills = pd.read_parquet(path / "fills.parquet")
    qty = float(fills["last_qty"].iloc[0])
    funding = pd.read_parquet(path / "funding.parquet")
    assert len(funding) == 1 and funding["ts"].iloc[0] == pd.Timestamp("2023-08-01 08:00", tz="UTC")
    assert funding["amount"].iloc[0] == pytest.approx(-qty * close_0800 * rate, abs=1e-9)
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["funding_paid_usdt"] == pytest.approx(qty * close_0800 * rate, abs=1e-9)
