"""The Dash Sessions page in a real headless Chromium (Debian's, driven by Playwright), listing a real paper session
(``scripts/run_paper.py`` against the Binance replay server, 20 bars of buy and hold) and a real live session that
is still running (``nautilus-app live`` with Nautilus's Binance USDT-M execution client against the signed
stand-in); the live session's detail shows its status, position, fill and alerts as the node wrote them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from core.paths import REPO_ROOT
from nautilus_app.paper_state import PaperState
from nautilus_app.testkit.dash_testing import browser, chromium_available, serve_app
from nautilus_app.testkit.replay import BinanceReplayServer, load_klines
from tests.test_live import Receiver, live_cmd, live_env, standin, write_config

ARTIFACTS = REPO_ROOT / "artifacts"

if not chromium_available():  # pragma: no cover - .ci/run installs it
    pytest.fail("Debian chromium is not installed (apt-get install chromium chromium-driver; see .ci/run)",
                pytrace=False)


def paper_session(tmp: Path, results: Path, trader: str) -> None:
    text = (REPO_ROOT / "configs/paper_perp.toml").read_text()
    text = text.replace('name = "ema_cross"', 'name = "buy_and_hold"')
    text = text.replace("fast_period = 10\nslow_period = 30\nallow_short = true\n", "")
    text = text.replace('trader_id = "PAPER-001"', f'trader_id = "{trader}"')
    config = tmp / "paper.toml"
    config.write_text(text.replace("[paper]\n", '[paper]\nexecution = "sandbox"\n'))
    server = BinanceReplayServer({"ETHUSDT": load_klines("ETHUSDT", "2023-08-01T01:00", "2023-08-01T01:30")},
                                 bar_seconds=0.05).start()
    try:
        proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/run_paper.py"), str(config), "--results-dir",
                               str(results), "--base-url-http", server.base_url_http, "--base-url-ws",
                               server.base_url_ws, "--fresh", "--max-bars", "20", "--run-id", "paper-session"],
                              capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]


def cells(page, table_id: str) -> list[dict[str, str]]:
    """The rows a dash DataTable shows: {column header: cell text}."""
    return page.evaluate("""(id) => {
        const t = document.querySelector('#' + id);
        const heads = Array.from(t.querySelectorAll('th.dash-header')).map(h => h.innerText.trim());
        return Array.from(t.querySelectorAll('tbody tr')).filter(r => r.querySelector('td')).map(r =>
            Object.fromEntries(Array.from(r.querySelectorAll('td')).map((c, i) => [heads[i], c.innerText.trim()])));
    }""", table_id)


def test_sessions_page_lists_paper_and_running_live_session(tmp_path: Path) -> None:
    results = tmp_path / "results"
    trader = f"PSESS-{uuid.uuid4().hex[:8]}"
    try:
        paper_session(tmp_path, results, trader)
    finally:
        PaperState(trader).clear()
    srv = standin(bar_seconds=0.3)
    recv = Receiver()
    (tmp_path / "live").mkdir()
    cfg = write_config(tmp_path / "live", srv, "2:BUY:0.100; 3:BUY:1.000", limits="max_order_notional = 1000.0",
                       receiver=recv)
    # the session must outlive a slow browser start under load (a 120 s cap ended it, closing its position, in a
    # fresh-clone run); the finally block stops it with `live stop`
    proc = subprocess.Popen(live_cmd(cfg, results, "--max-seconds", "600", "--run-id", "live-session"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=live_env(), cwd=REPO_ROOT)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    try:
        status = results / "live-session" / "status.json"
        end = time.monotonic() + 60
        st: dict = {}
        while time.monotonic() < end and proc.poll() is None:
            try:
                st = json.loads(status.read_text())
                if st.get("positions") and st.get("metrics", {}).get("orders_denied"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        assert st.get("positions"), proc.stderr.read()[-3000:] if proc.poll() is not None else st
        time.sleep(1.5)  # equity.parquet and alerts.jsonl of the next results write
        with serve_app(results, catalog, warm_runs=0) as (url, _app), browser(tmp_path / "chromium") as ctx:
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            page.goto(url + "/sessions")
            page.wait_for_selector("#sessions-table tbody td")
            rows = {r["run_id"]: r for r in cells(page, "sessions-table")}
            assert set(rows) == {"paper-session", "live-session"}, rows
            assert rows["paper-session"]["mode"] == "paper" and rows["paper-session"]["running"] == "false"
            assert rows["live-session"]["mode"] == "live" and rows["live-session"]["running"] == "true"
            assert rows["live-session"]["venue"] == "BINANCE_USDM" and rows["live-session"]["positions"] == "1"
            paper_status = json.loads((results / "paper-session" / "status.json").read_text())
            assert float(rows["paper-session"]["equity_usdt"]) == pytest.approx(paper_status["equity_usdt"])
            # the live session's detail
            page.click("#sessions-pick")
            page.keyboard.type("live-session")
            page.keyboard.press("Enter")
            page.wait_for_selector("#sessions-positions tbody td")
            status_row = cells(page, "sessions-status")[0]
            assert status_row["mode"] == "live" and status_row["venue"] == "BINANCE_USDM"
            assert status_row["running"] == "True" and status_row["killed"] == "None"
            pos = cells(page, "sessions-positions")
            assert [(p["instrument_id"], p["side"], p["quantity"]) for p in pos] == [
                ("ETHUSDT-PERP.BINANCE_USDM", "LONG", "0.1")]
            fills = cells(page, "sessions-fills")
            assert [(f["side"], f["qty"], f["price"]) for f in fills] == [
                ("BUY", "0.1", str(float(srv.trades[0]["price"])))]
            alerts = cells(page, "sessions-alerts")
            assert any(a["rule"] == "order_denied" and "max_order_notional" in a["message"]
                       and a["delivered"] == "json[0]: HTTP 200" for a in alerts), alerts
            traces = page.evaluate("""() => { const g = document.querySelector('#sessions-detail .js-plotly-plot');
                return g._fullData.map(t => ({name: t.name, n: t.y ? Array.from(t.y).length : 0})); }""")
            assert traces and traces[0]["name"] == "equity" and traces[0]["n"] >= 1
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dash_sessions.png"), full_page=True)
    finally:
        stop = subprocess.run([sys.executable, "-m", "nautilus_app", "live", "stop", str(cfg), "--results-dir",
                               str(results), "--wait", "30"], capture_output=True, text=True, cwd=REPO_ROOT,
                              env=live_env(), timeout=60)
        try:
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            srv.stop()
            recv.close()
    assert stop.returncode == 0 and proc.returncode == 0
