"""``nautilus-app live`` on ETHEREAL, end to end against the local Ethereal mock venue.

The node (a subprocess: the real CLI) runs our Ethereal data client and our Ethereal *execution* client
(``EtherealExecClientFactory``, EIP-712 signed orders verified by the mock) with the live supervisor and the
safety rails. The mock venue runs in the test process; a feed thread publishes a public trade every 100 ms so
Nautilus aggregates 1-second bars from the trade stream (Ethereal has no candle stream).

Every node runs with ``NAUTILUS_LIVE_OFFLINE=1`` and its endpoints on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from core.paths import REPO_ROOT
from nautilus_app.testkit.ethereal_mock import MockEtherealServer
from nautilus_app.testkit.ethereal_mock.testkit import FIXTURES, account
from tests.test_live import Receiver, all_text, redis_contains, results_folder

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SCRIPT = str(REPO_ROOT / "tests/fixtures/live_scripted.py") + ":ScriptedOrders"
ACCT = account()
SID = ACCT["subaccounts"][0]["id"]
ADDRESS = ACCT["subaccounts"][0]["account"]
PRIVATE_KEY = ACCT["mainKeyForTests"]  # the subaccount owner's key (throwaway test key)


class TradeFeed:
    """A public trade (95000 / 95001) and a best-ask refresh every 100 ms: 1-second bars close."""

    def __init__(self, server: MockEtherealServer) -> None:
        self.server, self.stop_evt = server, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self) -> None:
        i = 0
        while not self.stop_evt.is_set():
            i += 1
            v = self.server.venue
            msg = {"e": "TradeFill", "t": v.now_ms(), "data": {"s": "BTCUSD", "t": v.now_ms(), "d": [
                {"id": f"00000000-0000-4000-8000-{i:012d}", "px": "95001" if i % 2 else "95000", "sz": "0.0100",
                 "sd": 0, "sids": []}]}}
            try:
                self.server.call(v.publish_book_diff, "BTCUSD", [["95000", "0.4000"]], [["95001", "0.5000"]])
                self.server.call(v.publish, "TradeFill", "BTCUSD", msg)
            except Exception:  # noqa: BLE001 - server stopping
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self.stop_evt.set()
        self.t.join(5)


def write_config(tmp: Path, server: MockEtherealServer, script: str, *, limits: str = "", live: str = "",
                 receiver: Receiver | None = None) -> Path:
    hooks = ""
    if receiver is not None:
        hooks = f'''
[live.alerts]
min_interval_seconds = 0
[[live.alerts.webhooks]]
kind = "json"
url = "{receiver.url}/json"
'''
    text = f'''name = "live_ethereal_test"
bar_types = ["BTCUSD-PERP.ETHEREAL-1-SECOND-LAST-EXTERNAL"]
[[venues]]
name = "ETHEREAL"
account_type = "MARGIN"
starting_balances = ["1000000 USDE"]
default_leverage = 5
maker_fee = 0.0001
taker_fee = 0.0003
liquidation = false
[[strategies]]
strategy_path = "{SCRIPT}"
[strategies.params]
instrument_id = "BTCUSD-PERP.ETHEREAL"
bar_type = "BTCUSD-PERP.ETHEREAL-1-SECOND-LAST-EXTERNAL"
script = "{script}"
[live]
enabled = true
testnet = true
trader_id = "LE-{uuid.uuid4().hex[:8]}"
base_url_http = "{server.rest_url}"
base_url_ws = "{server.ws_url}"
results_every_seconds = 1.0
stale_after_seconds = 30
{live}
[live.limits]
{limits}
[live.monitoring]
metrics_port = 0
{hooks}'''
    path = tmp / "live_ethereal.toml"
    path.write_text(text)
    return path


def env() -> dict[str, str]:
    return {**os.environ, "NAUTILUS_LIVE_OFFLINE": "1", "ETHEREAL_ACCOUNT_ADDRESS": ADDRESS,
            "ETHEREAL_PRIVATE_KEY": PRIVATE_KEY}


def cmd(config: Path, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nautilus_app", "live", str(config), "--results-dir", str(results), *extra,
            "--i-understand-this-trades-real-money"]


def ctl(action: str, config: Path, results: Path, wait: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nautilus_app", "live", action, str(config), "--results-dir",
                           str(results), "--wait", str(wait)], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=env(), timeout=wait + 30)


def venue_orders(server: MockEtherealServer) -> list[dict]:
    return server.call(lambda: [dict(o) for o in server.venue.orders.values()])


def venue_size(server: MockEtherealServer) -> Decimal:
    pid = server.venue.by_symbol["BTCUSD"]["id"]
    return server.call(lambda: server.venue._position(SID, pid)["size"])


def working(server: MockEtherealServer) -> list[dict]:
    return [o for o in venue_orders(server) if o["status"] in ("NEW", "PENDING", "FILLED_PARTIAL")]


def _status(results: Path) -> dict:
    """The running node's status.json ({} while it is not there yet)."""
    try:
        return json.loads((results_folder(results) / "status.json").read_text())
    except (FileNotFoundError, AssertionError, ValueError):  # no folder or file yet, or mid-write
        return {}


def wait_until(pred, timeout: float, proc: subprocess.Popen, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"node exited {proc.returncode} waiting for {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_live_ethereal_end_to_end_rail_kill_switch_and_no_key(tmp_path: Path) -> None:
    """bar 2: market buy 0.0100 (through the real Ethereal execution client: signed, verified, filled by the mock);
    bar 3: buy 0.0500 (4750 > max_order_notional 2000: denied, never reaches the mock); bar 4: a resting limit
    buy 0.0100 @ 90000. Then `live flatten`: the resting order is cancelled and the position closed at the mock;
    `live stop` ends the node. The signing key is never written to logs, results or Redis."""
    server = MockEtherealServer(FIXTURES).start()
    feed = TradeFeed(server)
    recv = Receiver()
    results = tmp_path / "results"
    try:
        cfg = write_config(tmp_path, server, "2:BUY:0.0100; 3:BUY:0.0500; 4:BUY:0.0100@90000",
                           limits="max_order_notional = 2000.0", receiver=recv)
        proc = subprocess.Popen(cmd(cfg, results, "--max-seconds", "90"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env(), cwd=REPO_ROOT)
        try:
            wait_until(lambda: venue_size(server) == Decimal("0.01") and len(working(server)) == 1, 60, proc,
                       "the entry fill and the resting order at the mock")
            # status.json is rewritten periodically: wait until it shows the denied order too
            wait_until(lambda: _status(results).get("metrics", {}).get("orders_denied"), 30, proc,
                       "the denied order in status.json")
            st = _status(results)
            c1 = ctl("flatten", cfg, results, 15)
            assert c1.returncode == 0, c1.stdout + c1.stderr
            wait_until(lambda: venue_size(server) == 0 and not working(server), 30, proc, "flat at the mock")
            c2 = ctl("stop", cfg, results, 40)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        feed.stop()
        recv.close()
        requests = list(server.venue.requests)
        orders = venue_orders(server)
        server.stop()
    assert proc.returncode == 0, err[-3000:]
    assert c2.returncode == 0, c2.stdout + c2.stderr
    # the plan printed before start
    assert "LIVE TRADING on ETHEREAL (ethereal, environment TESTNET)" in out
    assert "max_order_notional     2000.0" in out and "credentials: env ETHEREAL_ACCOUNT_ADDRESS/ETHEREAL_PRIVATE_KEY" in out
    # what reached the mock: the entry, the resting limit, the kill switch's reduce-only close; never the 0.05 buy
    seen = [(o["side"], o["quantity"], o["type"], o["reduceOnly"]) for o in orders]
    assert seen[:2] == [(0, "0.01", "MARKET", False), (0, "0.01", "LIMIT", False)], seen
    assert (1, "0.01", "MARKET", True) in seen[2:], seen
    assert not [o for o in orders if Decimal(o["quantity"]) == Decimal("0.05")]
    assert sum(1 for m, p, *_ in requests if m == "POST" and p == "/v1/order") == len(orders) == 3
    assert any(m == "POST" and p == "/v1/order/cancel" for m, p, *_ in requests)
    assert [o["status"] for o in orders][1] == "CANCELED"
    # the node's view while running and at the end
    assert st["metrics"]["orders_denied"] == {"max_order_notional": 1} and st["venue"] == "ETHEREAL"
    run = results_folder(results)
    final = json.loads((run / "status.json").read_text())
    assert final["killed"] and final["positions"] == [] and final["open_orders"] == []
    import pandas as pd

    fills = pd.read_parquet(run / "fills.parquet")
    venue_fills = server.venue.fills
    assert list(fills["order_side"]) == ["BUY", "SELL"] and list(fills["last_qty"]) == [0.01, 0.01]
    assert [Decimal(str(p)) for p in fills["last_px"]] == [Decimal(f["price"]) for f in venue_fills]
    info = json.loads((run / "run.json").read_text())
    assert info["mode"] == "live" and info["running"] is False and info["venue"] == "ETHEREAL"
    rules = [b["rule"] for _, b in recv.posts]
    assert "order_denied" in rules and "kill_switch" in rules and "session_stopped" in rules
    # the signing key: not in stdout/stderr, any results/log file, or Redis
    key_hex = PRIVATE_KEY.removeprefix("0x")
    text = all_text(run) + all_text(results / ".live") + out + err
    assert key_hex not in text and key_hex.lower() not in text.lower()
    assert redis_contains(key_hex) == []


def test_live_ethereal_reconciliation_refuses_unknown_position(tmp_path: Path) -> None:
    """The mock holds a 0.02 BTCUSD position this node never made: the node refuses (exit 3), sends no order and
    no cancel; the position is untouched. Restarted with ``--on-unknown flatten`` it closes the position first
    (reduce-only market sell 0.02 through the execution client), then trades (the scripted buy 0.01)."""
    server = MockEtherealServer(FIXTURES).start()
    feed = TradeFeed(server)
    pid = server.venue.by_symbol["BTCUSD"]["id"]

    def seed() -> None:
        pos = server.venue._position(SID, pid)
        pos["size"], pos["cost"] = Decimal("0.02"), Decimal("1900")

    server.call(seed)
    try:
        cfg = write_config(tmp_path, server, "2:BUY:0.0100")
        proc = subprocess.run(cmd(cfg, tmp_path / "results", "--max-seconds", "30"), capture_output=True,
                              text=True, env=env(), cwd=REPO_ROOT, timeout=120)
        requests = list(server.venue.requests)
        size = venue_size(server)
        proc2 = subprocess.run(cmd(cfg, tmp_path / "results2", "--max-seconds", "8", "--on-unknown", "flatten"),
                               capture_output=True, text=True, env=env(), cwd=REPO_ROOT, timeout=120)
        orders = venue_orders(server)
    finally:
        feed.stop()
        server.stop()
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "refused" in proc.stderr and "BTCUSD-PERP.ETHEREAL" in proc.stderr
    assert not [r for r in requests if r[0] == "POST" and r[1].startswith("/v1/order")], requests
    assert size == Decimal("0.02")
    st = json.loads((results_folder(tmp_path / "results") / "status.json").read_text())
    assert st["refused"] and st["reconciliation"]["unknown_positions"] == {"BTCUSD-PERP.ETHEREAL": 0.02}
    # --on-unknown flatten: the unknown position is closed at the mock first, then the strategy trades
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    seen = [(o["side"], o["quantity"], o["type"], o["reduceOnly"], o["status"]) for o in orders]
    assert seen[0] == (1, "0.02", "MARKET", True, "FILLED"), seen
    assert (0, "0.01", "MARKET", False, "FILLED") in seen[1:], seen
    st2 = json.loads((results_folder(tmp_path / "results2") / "status.json").read_text())
    assert st2["reconciliation"]["policy"] == "flatten" and st2["refused"] is None


@pytest.mark.parametrize("setting,ccy", [("", "USDE"), ('settlement_currency = "USDT"', "USDT")])
def test_live_ethereal_settlement_currency_keeps_usde_and_usdt_apart(tmp_path: Path, setting: str, ccy: str) -> None:
    """``[live] settlement_currency``: by default the live node's Ethereal account, fills and equity are in USDE
    (Nautilus's USDE, not USDT); ``"USDT"`` selects the adapter's legacy mapping. Either way exactly one currency
    appears: balances, the fill's commission and the equity currency in status.json agree, the other is absent."""
    server = MockEtherealServer(FIXTURES).start()
    feed = TradeFeed(server)
    try:
        cfg = write_config(tmp_path, server, "2:BUY:0.0100", live=setting)
        proc = subprocess.run(cmd(cfg, tmp_path / "results", "--max-seconds", "10"), capture_output=True,
                              text=True, env=env(), cwd=REPO_ROOT, timeout=120)
    finally:
        feed.stop()
        server.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"settles in {ccy}" in proc.stdout
    st = json.loads((results_folder(tmp_path / "results") / "status.json").read_text())
    assert st["equity_currency"] == ccy and list(st["balances"]) == [ccy]
    assert st["equity_usdt"] == pytest.approx(st["balances"][ccy] + sum(
        p["unrealized_pnl"] or 0.0 for p in st["positions"]), rel=1e-6)
    assert [f["commission"].split()[-1] for f in st["recent_fills"]][:1] == [ccy]
    if ccy == "USDT":  # the config's USDE starting balance does not match: said so in the plan
        assert "settles in USDT" in proc.stdout and "starting_balances are in ['USDE']" in proc.stdout
