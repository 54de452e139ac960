"""Binance SPOT live, offline: Nautilus's real rc7 spot execution client trades against the SBE stand-in.

rc7's Rust spot execution client (``BinanceExecutionClientFactory``, ``product_type = SPOT``) reads every REST
answer in SBE (``Accept: application/sbe``, ``X-MBX-SBE: 3:5``) and, even with ``use_ws_trading = False``, logs on
to the WebSocket API (``session.logon``, ``userDataStream.subscribe`` on ``base_url_ws_trading``, answers and
events in SBE) for its execution reports. :class:`BinanceSpotStandin` serves both, encoding from the schema
(:mod:`nautilus_app.testkit.binance_sbe`) and verifying signatures (Ed25519 on REST and ``session.logon``; an
HMAC key is refused at ``session.logon`` as Binance documents).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from core.paths import REPO_ROOT
from nautilus_app.testkit import binance_sbe as sbe
from nautilus_app.testkit.binance_spot_standin import BinanceSpotStandin
from nautilus_app.testkit.binance_standin import MAKER_FEE, TAKER_FEE
from nautilus_app.testkit.replay import load_klines
from tests.test_live import all_text

SCRIPT = str(REPO_ROOT / "tests/fixtures/live_scripted.py") + ":ScriptedOrders"


def ed25519_key() -> tuple[str, str, bytes]:
    """``(api key, PKCS#8 PEM private key, SubjectPublicKeyInfo PEM public key)``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv = Ed25519PrivateKey.generate()
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    pub = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SpotEd" + uuid.uuid4().hex[:12], pem, pub


def spot_standin(**kw: object) -> BinanceSpotStandin:
    k = load_klines("ETHUSDT", "2025-06-01T00:00", "2025-06-01T03:00", market="spot")
    return BinanceSpotStandin({"ETHUSDT": k}, bar_seconds=0.3, **kw).start()


def spot_config(tmp: Path, srv: BinanceSpotStandin, script: str, *, limits: str = "", live: str = "") -> Path:
    path = tmp / "spot.toml"
    path.write_text(f'''name = "spot_live"
bar_types = ["ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"]
[[venues]]
name = "BINANCE"
account_type = "CASH"
starting_balances = ["10000 USDT"]
[[strategies]]
strategy_path = "{SCRIPT}"
[strategies.params]
instrument_id = "ETHUSDT.BINANCE"
bar_type = "ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
script = "{script}"
[live]
enabled = true
trader_id = "LS-{uuid.uuid4().hex[:8]}"
base_url_http = "{srv.base_url_http}"
base_url_ws = "{srv.base_url_ws}"
base_url_ws_api = "{srv.base_url_ws_api}"
results_every_seconds = 1.0
{live}
[live.limits]
{limits}
''')
    return path


def spot_env(key: str, secret: str) -> dict[str, str]:
    return {**os.environ, "NAUTILUS_LIVE_OFFLINE": "1", "BINANCE_API_KEY": key, "BINANCE_API_SECRET": secret}


def live(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nautilus_app", "live", *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=timeout)


def wait_for(cond, timeout: float) -> bool:  # noqa: ANN001
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_sbe_codec_round_trip_and_schema_layout() -> None:
    """The encoder follows the schema's layout: header, fixed block, groups, var data; decode inverts it."""
    msg = sbe.encode("AccountResponse", {
        "commissionExponent": -8, "commissionRateMaker": 20000, "commissionRateTaker": 50000,
        "commissionRateBuyer": 0, "commissionRateSeller": 0, "canTrade": "True", "canWithdraw": "True",
        "canDeposit": "True", "brokered": "False", "requireSelfTradePrevention": "False", "preventSor": "False",
        "updateTime": 1, "accountType": "Spot", "uid": 7,
        "balances": [{"exponent": -8, "free": sbe.mantissa("1.5", -8), "locked": 0, "asset": "ETH"}],
        "permissions": [{"permission": "SPOT"}], "reduceOnlyAssets": []})
    # messageHeader: blockLength 64 (1 + 4*8 + 6*1 + 8 + 1 + 8 + 8), templateId 400, schema 3, version 5
    assert msg[:8] == bytes.fromhex("4000" "9001" "0300" "0500")
    name, v = sbe.decode(msg)
    assert name == "AccountResponse" and v["tradeGroupId"] is None and v["accountType"] == "Spot"
    assert v["balances"] == [{"exponent": -8, "free": 150000000, "locked": 0, "asset": b"ETH"}]
    inner = sbe.encode("UserDataStreamSubscribeResponse", {"subscriptionId": 3})
    wrapped = sbe.encode("WebSocketResponse", {"sbeSchemaIdVersionDeprecated": "False", "status": 200,
                                               "rateLimits": [], "id": "ws-1", "result": inner})
    name, v = sbe.decode(wrapped)
    assert (name, v["id"], v["status"]) == ("WebSocketResponse", b"ws-1", 200)
    assert sbe.decode(v["result"]) == ("UserDataStreamSubscribeResponse", {"subscriptionId": 3})
    with pytest.raises(ValueError, match="unknown fields"):
        sbe.encode("ServerTimeResponse", {"serverTime": 1, "typo": 2})
    with pytest.raises(ValueError, match="required"):
        sbe.encode("ServerTimeResponse", {})
    with pytest.raises(ValueError, match="not representable"):
        sbe.mantissa("0.000000001", -8)


def test_spot_end_to_end_ed25519_rail_and_kill_switch(tmp_path: Path) -> None:
    """bar 2 market buy 0.01 (filled at the stand-in), bar 3 limit buy 0.01 @ 1000 (rests, USDT locked), bar 4 buy
    1.0 (~2500 USDT > max_order_notional 500: denied, never sent); ``live flatten`` cancels the limit and sells
    0.01 (a plain market sell: spot has no reduce-only); ``live stop`` exits 0. Balances, position, fills and the
    execution reports agree between the node and the stand-in; the key is written nowhere."""
    key, pem, pub = ed25519_key()
    srv = spot_standin(hmac_keys={}, ed25519_keys={key: pub})
    env = spot_env(key, pem)
    results = tmp_path / "results"
    try:
        cfg = spot_config(tmp_path, srv, "2:BUY:0.0100; 3:BUY:0.0100@1000.00; 4:BUY:1.0000",
                          limits="max_order_notional = 500")
        proc = subprocess.Popen([sys.executable, "-m", "nautilus_app", "live", str(cfg), "--results-dir",
                                 str(results), "--max-seconds", "90", "--i-understand-this-trades-real-money"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
        assert wait_for(lambda: srv.balance("ETH")[0] == Decimal("0.0100") and srv.balance("USDT")[1] > 0
                        and srv.cursor >= 6, 60), (srv.balances, srv.stats.http_requests[-5:])
        ctl = live("flatten", str(cfg), "--results-dir", str(results), "--wait", "10", env=env, timeout=30)
        assert ctl.returncode == 0, ctl.stderr
        assert wait_for(lambda: srv.balance("ETH") == (Decimal(0), Decimal(0)) and srv.balance("USDT")[1] == 0, 20)
        stop = live("stop", str(cfg), "--results-dir", str(results), "--wait", "30", env=env, timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.stop()
    assert proc.returncode == 0, err[-3000:]
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "LIVE TRADING on BINANCE (spot" in out and "max_order_notional" in out
    assert f"WebSocket API {srv.base_url_ws_api}" in out
    # the WebSocket API: Ed25519 logon verified, user data subscribed; every REST signature verified as Ed25519
    assert [r["method"] for r in srv.ws_api_requests] == ["session.logon", "userDataStream.subscribe"]
    assert srv.standin.key_types == {"ed25519"} and srv.standin.auth_failures == []
    # orders at the venue: the market buy, the limit, the flatten sell; the 1.0 buy never arrived
    sent = [(o["side"], o["type"], o["quantity"], o.get("price")) for o in srv.standin.orders_received]
    assert sent == [("BUY", "MARKET", "0.0100", None), ("BUY", "LIMIT", "0.0100", "1000.00"),
                    ("SELL", "MARKET", "0.0100", None)], sent
    assert all("reduceOnly" not in o for o in srv.standin.orders_received)
    assert len(srv.standin.cancels_received) == 1
    reports = [(e["executionType"], e["orderStatus"]) for e in srv.standin.user_events_sent
               if e["message"] == "ExecutionReportEvent"]
    assert reports.count(("Trade", "Filled")) == 2 and ("Canceled", "Canceled") in reports
    # balances: the stand-in's ledger, and the node's account state read from the venue
    buy, sell = srv.trades
    usdt = Decimal(10000) - buy["quoteQty"] - buy["commission"] + sell["quoteQty"] - sell["commission"]
    assert buy["commission"] == (buy["quoteQty"] * TAKER_FEE).quantize(Decimal("0.00000001")) and MAKER_FEE
    assert srv.balance("USDT") == (usdt, Decimal(0)) and srv.balance("ETH") == (Decimal(0), Decimal(0))
    run = next(results.glob("live-*"))
    st = json.loads((run / "status.json").read_text())
    assert st["killed"] and st["positions"] == [] and st["open_orders"] == [] and st["failed"] is None
    assert st["balances"]["USDT"] == pytest.approx(float(usdt), abs=1e-8)
    assert st["balances"].get("ETH", 0.0) == 0.0
    assert st["metrics"]["orders_denied"] == {"max_order_notional": 1}
    fills = pd.read_parquet(run / "fills.parquet")
    assert list(fills["order_side"]) == ["BUY", "SELL"] and list(fills["last_qty"]) == [0.01, 0.01]
    assert [Decimal(str(p)) for p in fills["last_px"]] == [buy["price"], sell["price"]]
    assert abs(float(fills["commission"].sum()) - float(buy["commission"] + sell["commission"])) < 1e-9
    body = "".join(pem.split("-----")[2].split())
    assert body[:40] not in all_text(results) + out + err + ctl.stdout + stop.stdout


def test_spot_hmac_key_is_refused_at_ws_api_logon(tmp_path: Path) -> None:
    """Binance's WebSocket API logs on Ed25519 keys only: with an HMAC key the signed REST account call is
    accepted but ``session.logon`` is refused, rc7's spot client does not connect, the node exits 1 and sends
    no order (so spot live trading needs an Ed25519 API key)."""
    key, secret = "SpotHmac" + uuid.uuid4().hex[:10], "SpotSecret" + uuid.uuid4().hex
    srv = spot_standin(hmac_keys={key: secret})
    try:
        cfg = spot_config(tmp_path, srv, "2:BUY:0.0100")
        p = live(str(cfg), "--results-dir", str(tmp_path / "results"), "--max-seconds", "10",
                 "--i-understand-this-trades-real-money", env=spot_env(key, secret), timeout=120)
    finally:
        srv.stop()
    assert p.returncode == 1, p.stderr[-3000:]
    assert srv.standin.key_types == {"hmac"}  # REST GET /api/v3/account: HMAC verified
    assert [r["method"] for r in srv.ws_api_requests] == ["session.logon"]
    assert any("Only Ed25519" in f for f in srv.standin.auth_failures), srv.standin.auth_failures
    assert srv.standin.orders_received == []
    st = json.loads((next((tmp_path / "results").glob("live-*")) / "status.json").read_text())
    assert st["failed"] and st["running"] is False
    assert secret not in all_text(tmp_path / "results") + p.stdout + p.stderr


def test_spot_reconciliation_counts_base_asset_balances(tmp_path: Path) -> None:
    """rc7's spot client reports no positions, so an account already holding 0.5 ETH looked flat to the node. Now
    the traded base asset's balance is compared with the node's ledger: refuse (exit 3, no order); ``flatten``
    cannot sell a balance Nautilus holds no position for (it would open a SHORT in the cache): refused too, with
    the reason; ``adopt`` trades and records 0.51 ETH in the ledger; a restart with ``refuse`` then trades."""
    key, pem, pub = ed25519_key()
    srv = spot_standin(hmac_keys={}, ed25519_keys={key: pub})
    srv.seed_balance("ETH", "0.5")
    env = spot_env(key, pem)
    results = tmp_path / "results"

    def run(*extra: str) -> tuple[subprocess.CompletedProcess, dict]:
        p = live(str(cfg), "--results-dir", str(results), "--max-seconds", "7",
                 "--i-understand-this-trades-real-money", *extra, env=env, timeout=120)
        return p, json.loads((sorted(results.glob("live-*"))[-1] / "status.json").read_text())

    try:
        cfg = spot_config(tmp_path, srv, "2:BUY:0.0100")
        cfg.write_text(cfg.read_text().replace('script = "2:BUY:0.0100"', 'script = "2:BUY:0.0100"\nclose_on_stop = false'))
        p1, st1 = run()
        p2, st2 = run("--on-unknown", "flatten")
        sent_before_adopt = list(srv.standin.orders_received)
        p3, st3 = run("--on-unknown", "adopt")
        p4, st4 = run()
    finally:
        srv.stop()
    assert p1.returncode == 3, p1.stderr[-2000:]
    assert st1["reconciliation"]["unknown_base_balances"] == {"ETHUSDT.BINANCE": 0.5} and st1["refused"]
    assert p2.returncode == 3 and "cannot close spot balances" in st2["refused"], p2.stderr[-2000:]
    assert sent_before_adopt == []
    assert p3.returncode == 0, p3.stderr[-2000:]
    assert st3["refused"] is None and st3["reconciliation"]["policy"] == "adopt"
    assert p4.returncode == 0, p4.stderr[-2000:]
    assert st4["refused"] is None and st4["reconciliation"]["unknown_base_balances"] == {}
    assert st4["reconciliation"]["ledger_base_balances"] == {"ETHUSDT.BINANCE": pytest.approx(0.51)}
    assert [o["side"] for o in srv.standin.orders_received] == ["BUY", "BUY"]
    assert srv.balance("ETH") == (Decimal("0.5200"), Decimal(0))


def test_spot_limit_orders_marketable_takes_resting_fills_as_maker(tmp_path: Path) -> None:
    """A buy limit far above the market takes at once at the last price (taker fee, not at its limit); a sell
    limit above every close so far rests with its ETH locked and fills at its own price when a later bar's
    high reaches it (maker fee). The node's fills are the stand-in's trades, and the sell closes the position
    (strategies run NETTING on spot)."""
    k = load_klines("ETHUSDT", "2025-06-01T00:00", "2025-06-01T03:00", market="spot")
    p = (max(Decimal(x.close) for x in k[:8]) + Decimal("0.01")).quantize(Decimal("0.01"))  # not marketable at bar 3
    assert any(Decimal(x.high) >= p for x in k[8:100])  # data precondition: a later bar trades through it
    key, pem, pub = ed25519_key()
    srv = spot_standin(hmac_keys={}, ed25519_keys={key: pub})
    env = spot_env(key, pem)
    results = tmp_path / "results"
    try:
        cfg = spot_config(tmp_path, srv, f"2:BUY:0.0100@3000.00; 3:SELL:0.0100@{p}")
        cfg.write_text(cfg.read_text().replace("[live]\n", "close_on_stop = false\n[live]\n", 1))
        proc = subprocess.Popen([sys.executable, "-m", "nautilus_app", "live", str(cfg), "--results-dir",
                                 str(results), "--max-seconds", "90", "--i-understand-this-trades-real-money"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
        assert wait_for(lambda: len(srv.trades) == 2, 80), (srv.standin.orders_received, srv.standin.rejected, srv.cursor)
        time.sleep(2.5)  # a status rewrite after the fill (results_every_seconds = 1)
        stop = live("stop", str(cfg), "--results-dir", str(results), "--wait", "30", env=env, timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.stop()
    assert proc.returncode == 0 and stop.returncode == 0, err[-3000:]
    take, make = srv.trades
    assert not take["isMaker"] and take["price"] < Decimal("3000")
    assert take["commission"] == (take["quoteQty"] * TAKER_FEE).quantize(Decimal("0.00000001"))
    assert make["isMaker"] and make["price"] == p
    assert make["commission"] == (make["quoteQty"] * MAKER_FEE).quantize(Decimal("0.00000001"))
    assert srv.balance("ETH") == (Decimal(0), Decimal(0))
    # the resting sell locked its ETH (balance event), then filled; the buy took without resting
    locked = [b["locked"] for e in srv.standin.user_events_sent if e["message"] == "OutboundAccountPositionEvent"
              for b in e["balances"] if b["asset"] == "ETH"]
    assert sbe.mantissa("0.01", -8) in locked
    reports = [(e["clientOrderId"][-1:], e["executionType"], e["orderStatus"]) for e in srv.standin.user_events_sent
               if e["message"] == "ExecutionReportEvent"]
    assert reports == [("1", "New", "New"), ("1", "Trade", "Filled"), ("2", "New", "New"), ("2", "Trade", "Filled")]
    # one NETTING position per instrument: the sell closed the long (rc7's spot client alone is HEDGING and the
    # sell opened a second, SHORT position)
    st = json.loads((next(results.glob("live-*")) / "status.json").read_text())
    assert st["positions"] == [] and st["balances"].get("ETH", 0.0) == 0.0
    fills = pd.read_parquet(next(results.glob("live-*")) / "fills.parquet")
    assert list(fills["order_side"]) == ["BUY", "SELL"]
    assert [Decimal(str(x)) for x in fills["last_px"]] == [take["price"], make["price"]]
    assert abs(float(fills["commission"].sum()) - float(take["commission"] + make["commission"])) < 1e-9


def test_spot_strategy_close_on_stop_is_not_reduce_only(tmp_path: Path) -> None:
    """A strategy's ``close_all_positions`` in ``on_stop`` (reduce-only by default) closes the spot position with
    a plain market sell: Nautilus denies reduce-only orders on spot (UNSUPPORTED_REDUCE_ONLY), which left the
    position open at every stop before."""
    key, pem, pub = ed25519_key()
    srv = spot_standin(hmac_keys={}, ed25519_keys={key: pub})
    try:
        cfg = spot_config(tmp_path, srv, "2:BUY:0.0100")
        p = live(str(cfg), "--results-dir", str(tmp_path / "results"), "--max-seconds", "8",
                 "--i-understand-this-trades-real-money", env=spot_env(key, pem), timeout=120)
    finally:
        srv.stop()
    assert p.returncode == 0, p.stderr[-3000:]
    assert [(o["side"], o["type"], o["quantity"]) for o in srv.standin.orders_received] == \
        [("BUY", "MARKET", "0.0100"), ("SELL", "MARKET", "0.0100")]
    assert srv.balance("ETH") == (Decimal(0), Decimal(0))
    run = next((tmp_path / "results").glob("live-*"))
    assert "UNSUPPORTED_REDUCE_ONLY" not in all_text(run / "logs")
    assert json.loads((run / "status.json").read_text())["positions"] == []
