"""Paper sessions on the simulated execution client (nautilus_app/paper_exec.py) against the replay server.

Offline, real Redis, the node in a subprocess (``scripts/run_paper.py``). Every session is compared
with a backtest of the same config over the same replayed real bars through
:func:`nautilus_app.paper_parity.compare` (the ``paper-vs-backtest`` command), with the **default
venue models** (``costs = "realistic"``: next-open fills, volume slippage, seeded latency,
liquidation, funding): zero differences expected. Expected values of the funding and the
liquidation also come from the raw Binance Vision CSVs.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import redis

from catalog.binance_vision import import_binance_vision
from core.paths import REPO_ROOT, shared_data_dir
from nautilus_app.paper_parity import FILL_COLS, compare
from nautilus_app.paper_state import PaperState
from nautilus_app.testkit.replay import BinanceReplayServer, load_funding, load_klines

MIRROR = shared_data_dir() / "binance-vision"


@pytest.fixture(scope="module")
def um_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim_um")
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-08-01", end="2023-08-01", kinds=("klines", "fundingRate"))
    return root


@pytest.fixture(scope="module")
def spot_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim_spot")
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2023-04-01", end="2023-04-01", kinds=("klines",))
    return root


@pytest.fixture()
def trader_id():
    ids: list[str] = []

    def make() -> str:
        ids.append(f"PSIM-{uuid.uuid4().hex[:8]}")
        return ids[-1]

    yield make
    for tid in ids:
        PaperState(tid).clear()


def um_config(tmp: Path, catalog: Path, tid: str, start: str, end: str, *, venue: str = "", strategy: str = "ema_cross",
              params: str = "fast_period = 5\nslow_period = 15\nallow_short = true\n", name: str = "cfg") -> Path:
    text = f'''catalog = "{catalog}"
name = "sim_um"
start = "{start}"
end = "{end}"
bar_types = ["ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"]

[[venues]]
name = "BINANCE_USDM"
account_type = "MARGIN"
starting_balances = ["100000 USDT"]
default_leverage = 5
{venue}
[[strategies]]
name = "{strategy}"
[strategies.params]
instrument_id = "ETHUSDT-PERP.BINANCE_USDM"
bar_type = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
position_fraction = 0.5
close_positions_on_stop = false
{params}
[paper]
trader_id = "{tid}"
'''
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def um_server(start: str, end: str, bar_seconds: float = 0.03) -> BinanceReplayServer:
    return BinanceReplayServer({"ETHUSDT": load_klines("ETHUSDT", start, end)}, bar_seconds=bar_seconds,
                               funding={"ETHUSDT": load_funding("ETHUSDT", "2023-07-31", "2023-08-02")}).start()


def cmd(config: Path, server: BinanceReplayServer, results: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "scripts/run_paper.py"), str(config), "--results-dir", str(results),
            "--base-url-http", server.base_url_http, "--base-url-ws", server.base_url_ws, *extra]


def run_session(config: Path, server: BinanceReplayServer, results: Path, n_bars: int) -> Path:
    proc = subprocess.run(cmd(config, server, results, "--fresh", "--max-bars", str(n_bars)), capture_output=True,
                          text=True, timeout=240, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def assert_parity(path: Path, tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rep = compare(path, tmp / "parity")
    assert rep.ok, rep.text()
    assert rep.paper_fills == rep.backtest_fills
    return pd.read_parquet(path / "fills.parquet"), pd.read_parquet(rep.backtest_path / "fills.parquet")


def test_um_default_models_parity_with_funding(tmp_path: Path, um_catalog: Path, trader_id) -> None:
    """Buy-and-hold across the 08:00 settlement, default models: fills and funding equal the backtest's;
    the funding is debited from the paper balance (-qty x mark x rate of the raw CSV)."""
    start, end = "2023-08-01T07:00", "2023-08-01T09:00"
    config = um_config(tmp_path, um_catalog, trader_id(), start, end, strategy="buy_and_hold", params="")
    server = um_server(start, end)
    try:
        path = run_session(config, server, tmp_path / "res", 120)
    finally:
        server.stop()
    paper, _bt = assert_parity(path, tmp_path)
    funding = pd.read_parquet(path / "funding.parquet")
    assert len(funding) == 1 and funding["ts"].iloc[0] == pd.Timestamp("2023-08-01 08:00", tz="UTC")
    with zipfile.ZipFile(MIRROR / "data/futures/um/monthly/fundingRate/ETHUSDT/ETHUSDT-fundingRate-2023-08.zip") as zf:
        rates = pd.read_csv(zf.open(zf.namelist()[0]))
    rate = float(rates.loc[rates["calc_time"] == 1690876800000, "last_funding_rate"].iloc[0])
    k = {x.open_time: float(x.close) for x in load_klines("ETHUSDT", start, end)}
    qty = float(paper["last_qty"].iloc[0])
    assert funding["amount"].iloc[0] == pytest.approx(-qty * k[1690876740000] * rate, abs=1e-8)
    status = json.loads((path / "status.json").read_text())
    fee = float(paper["commission"].sum())
    assert status["balances"]["USDT"] == pytest.approx(100000 - fee + funding["amount"].sum(), abs=1e-6)
    assert status["warm"] is True and status["execution"] == "simulated"


def test_um_default_models_parity_with_isolated_liquidation(tmp_path: Path, um_catalog: Path, trader_id) -> None:
    """75x isolated long: liquidated at Binance's liquidation price inside the window, as in the backtest."""
    start, end = "2023-08-01T13:00", "2023-08-01T17:00"
    venue = 'default_leverage = 75\nmax_leverage = 100\nmargin_mode = "isolated"\n'
    config = um_config(tmp_path, um_catalog, trader_id(), start, end, venue=venue.replace("default_leverage = 75\n", ""),
                       strategy="buy_and_hold", params="")
    config.write_text(config.read_text().replace("default_leverage = 5", "default_leverage = 75"))
    server = um_server(start, end)
    try:
        path = run_session(config, server, tmp_path / "res", 240)
    finally:
        server.stop()
    paper, _bt = assert_parity(path, tmp_path)
    orders = pd.read_parquet(path / "orders.parquet")
    assert orders["tags"].astype(str).str.contains("LIQUIDATION").sum() == 1
    assert len(paper) == 2 and paper["order_side"].tolist() == ["BUY", "SELL"]
    status = json.loads((path / "status.json").read_text())
    assert status["positions"] == []


def test_spot_default_models_parity(tmp_path: Path, spot_catalog: Path, trader_id) -> None:
    start, end = "2023-04-01T00:00", "2023-04-01T03:00"
    tid = trader_id()
    text = (REPO_ROOT / "configs/paper_spot.toml").read_text()
    text = text.replace('start = "2023-04-01"', f'start = "{start}"').replace('end = "2023-04-08"', f'end = "{end}"')
    text = text.replace('fill_timing = "same_close"\nslippage = "none"\n', "")
    text = text.replace("fast_period = 10", "fast_period = 5").replace("slow_period = 30", "slow_period = 15")
    text = text.replace("position_fraction = 0.5", "position_fraction = 0.5\nclose_positions_on_stop = false")
    text = f'catalog = "{spot_catalog}"\n' + text.replace('trader_id = "PAPER_SPOT-001"', f'trader_id = "{tid}"')
    config = tmp_path / "spot.toml"
    config.write_text(text)
    server = BinanceReplayServer({"BTCUSDT": load_klines("BTCUSDT", start, end, market="spot")}, bar_seconds=0.03,
                                 market="spot").start()
    try:
        path = run_session(config, server, tmp_path / "res", 180)
    finally:
        server.stop()
    paper, _ = assert_parity(path, tmp_path)
    assert len(paper) >= 4


def _wait(pred, timeout: float, what: str) -> None:  # noqa: ANN001
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _feed_len(tid: str) -> int:
    return int(redis.Redis().llen(f"simpaper:{tid}:feed"))


def _uninterrupted_session(tmp_path: Path, um_catalog: Path, tid: str, start: str, end: str, strategy: str,
                           params: str, results: Path, n: int) -> Path:
    """The reference: a USDT-M session over ``[start, end)`` run through its ``n`` bars without a kill."""
    cfg = um_config(tmp_path, um_catalog, tid, start, end, strategy=strategy, params=params, name="ref")
    server = um_server(start, end, 0.03)
    try:
        return run_session(cfg, server, results, n)
    finally:
        server.stop()


def test_kill_9_restarts_trade_identically(tmp_path: Path, um_catalog: Path, trader_id) -> None:
    """Issue 20 item 6: kill -9 at seeded moments (3 kills), restart each time: the session's fills,
    balances and positions equal an uninterrupted session's (and the backtest's); none lost or doubled."""
    start, end = "2023-08-01T00:00", "2023-08-01T03:00"
    n = 180
    params = "rsi_period = 7\nbb_period = 10\ntrend_ma_period = 20\ncooldown_bars = 5\nmax_hold_bars = 15\n" \
             "allow_short = true\n"
    results = tmp_path / "res"
    # uninterrupted
    ref = _uninterrupted_session(tmp_path, um_catalog, trader_id(), start, end, "mean_reversion", params, results, n)
    ref_fills = pd.read_parquet(ref / "fills.parquet")
    assert len(ref_fills) >= 4, "the window must trade"
    ref_status = json.loads((ref / "status.json").read_text())
    # killed at seeded moments
    tid = trader_id()
    cfg = um_config(tmp_path, um_catalog, tid, start, end, strategy="mean_reversion", params=params, name="killed")
    # at 0.03 s per bar the killed node may hold a backlog of received, unprocessed bars (4 seen): the
    # restart must still trade them, as the uninterrupted session did
    cfg.write_text(cfg.read_text().replace("[paper]\n", "[paper]\nmax_catch_up_bars = 1000\n"))
    rng = random.Random(20)
    kills = sorted(rng.sample(range(20, n - 20), 3))
    server = um_server(start, end, 0.03)
    try:
        extra = ["--fresh"]
        for at in kills:
            proc = subprocess.Popen(cmd(cfg, server, results, *extra), cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            _wait(lambda at=at: _feed_len(tid) >= at, 90, f"{at} bars processed")
            time.sleep(rng.random() * 0.03)  # anywhere inside the next bar's processing
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            extra = []
        proc = subprocess.Popen(cmd(cfg, server, results), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _wait(lambda: _feed_len(tid) >= n, 120, "every bar processed")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
    finally:
        server.stop()
    path = Path(out.strip().splitlines()[-1])
    fills = pd.read_parquet(path / "fills.parquet")
    assert fills["trade_id"].is_unique
    pd.testing.assert_frame_equal(fills[FILL_COLS].reset_index(drop=True), ref_fills[FILL_COLS].reset_index(drop=True))
    status = json.loads((path / "status.json").read_text())
    assert status["balances"] == ref_status["balances"]
    assert [(p["quantity"], p["avg_px_open"]) for p in status["positions"]] == \
        [(p["quantity"], p["avg_px_open"]) for p in ref_status["positions"]]
    run = json.loads((path / "run.json").read_text())
    assert run["starts"] == 4
    assert_parity(path, tmp_path / "killed")


@pytest.mark.parametrize("case", ["market_goes_on", "killed_on_the_settlement_bar"])
def test_kill_9_across_a_funding_settlement_settles_it_from_the_venue_history(tmp_path: Path, um_catalog: Path,
                                                                              trader_id, case: str) -> None:
    """USDT-M buy-and-hold killed (kill -9) around the 08:00 settlement, restarted: the settlement the
    restarted node did not hear announced comes from Binance's history (``/fapi/v1/fundingRate`` +
    ``markPriceKlines``): the same funding and balances as an uninterrupted session, 0 differences from the
    backtest, and run.json counts the caught-up bars apart from the (absent) warm-up.

    ``market_goes_on``: killed at a seeded bar before 08:00, bars go by while the node is down (the replay
    clock runs on) until a seeded bar after it: the missed bars come from the klines. ``killed_on_the_settlement_bar``:
    killed just after committing the bar closing at 08:00 (the replay paused there): no bar is missed, but
    the settlement at that close, applied at the next bar, was announced only to the killed node."""
    start, end = "2023-08-01T07:00", "2023-08-01T09:00"
    n = 120
    settle_bar = 60  # the bar closing at 08:00
    results = tmp_path / "res"
    ref = _uninterrupted_session(tmp_path, um_catalog, trader_id(), start, end, "buy_and_hold", "", results, n)
    ref_funding = pd.read_parquet(ref / "funding.parquet")
    assert len(ref_funding) == 1 and ref_funding["ts"].iloc[0] == pd.Timestamp("2023-08-01 08:00", tz="UTC")
    ref_status = json.loads((ref / "status.json").read_text())

    tid = trader_id()
    cfg = um_config(tmp_path, um_catalog, tid, start, end, strategy="buy_and_hold", params="", name="killed")
    cfg.write_text(cfg.read_text().replace("[paper]\n", "[paper]\nmax_catch_up_bars = 1000\n"))
    rng = random.Random(25)
    kill_at = rng.randrange(settle_bar - 20, settle_bar - 3)  # bars processed when killed
    resume_at = rng.randrange(settle_bar + 3, settle_bar + 20)  # replay steps emitted before the restart
    server = um_server(start, end, 0.05)
    try:
        proc = subprocess.Popen(cmd(cfg, server, results, "--fresh"), cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if case == "market_goes_on":
            _wait(lambda: _feed_len(tid) >= kill_at, 90, f"{kill_at} bars processed")
            time.sleep(rng.random() * 0.05)
            server.hold_when_unsubscribed = False  # the market goes on while the node is down
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert server.wait_cursor(resume_at, 30)
            server.hold_when_unsubscribed = True  # and waits for the restarted node from here
            killed_at = _feed_len(tid)
            assert killed_at < settle_bar - 1, "the kill must come before the settlement"
        else:
            _wait(lambda: server.cursor >= settle_bar, 90, "the bar closing at 08:00 sent")
            server.pause()
            assert server.cursor == settle_bar
            _wait(lambda: _feed_len(tid) >= settle_bar, 30, "the bar closing at 08:00 committed")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            server.resume()  # (the clock holds until the restarted node subscribes)
            killed_at = _feed_len(tid)
            assert killed_at == settle_bar
        log = tmp_path / "restart.log"
        with log.open("w") as err:
            proc = subprocess.Popen(cmd(cfg, server, results), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=err,
                                    text=True)
            _wait(lambda: _feed_len(tid) >= n, 120, "every bar processed")
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, log.read_text()[-3000:]
    finally:
        server.stop()
    text = log.read_text()
    assert "missed funding settlements from the venue's history" in text
    assert ("missed bars processed" in text) == (case == "market_goes_on")
    assert any(r.startswith("GET /fapi/v1/fundingRate") for r in server.stats.http_requests)
    assert any(r.startswith("GET /fapi/v1/markPriceKlines") for r in server.stats.http_requests)
    path = Path(out.strip().splitlines()[-1])
    funding = pd.read_parquet(path / "funding.parquet")
    pd.testing.assert_frame_equal(funding[["ts", "instrument_id", "amount"]].reset_index(drop=True),
                                  ref_funding[["ts", "instrument_id", "amount"]].reset_index(drop=True))
    status = json.loads((path / "status.json").read_text())
    assert status["balances"] == ref_status["balances"]
    assert [(p["quantity"], p["avg_px_open"]) for p in status["positions"]] == \
        [(p["quantity"], p["avg_px_open"]) for p in ref_status["positions"]]
    feed = [json.loads(x) for x in redis.Redis().lrange(f"simpaper:{tid}:feed", 0, -1)]
    closes = [f[1] for f in feed]
    assert closes == sorted(set(closes)) and len(closes) == n, "every bar exactly once, in order"
    run = json.loads((path / "run.json").read_text())
    assert run["starts"] == 2
    # warm-up and catch-up counted apart: no warm-up history (the window starts at the config's start), the
    # bars missed while the node was down, all traded, and the stored bars replayed at the restart
    assert run["warm_bars"] == 0
    caught = sum(1 for f in feed if f[8] == "catch_up")
    assert run["catch_up_bars"] == run["catch_up_bars_traded"] == caught
    assert caught >= resume_at - killed_at - 1 if case == "market_goes_on" else caught == 0
    assert run["restart_replayed_bars"] == killed_at
    rep = compare(path, tmp_path / "parity")
    assert rep.ok, rep.text()
    assert not any("warmed" in note for note in rep.notes)
    assert any(f"{caught} bars missed while the node was down" in note for note in rep.notes) == bool(caught)
