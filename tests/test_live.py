"""Live trading, offline: ``nautilus-app live`` with Nautilus's real Rust Binance USDT-M execution client trading
against the local signed stand-in (:class:`nautilus_app.testkit.binance_standin.BinanceVenueStandin`, real ETHUSDT
klines from the Binance Vision mirror), plus alerts to a local HTTP receiver and /metrics parsed with
prometheus_client's text parser.

Every node runs with ``NAUTILUS_LIVE_OFFLINE=1`` (the node refuses any non-loopback endpoint) and its
endpoints pointing at 127.0.0.1: nothing can reach a real venue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from core.paths import REPO_ROOT
from nautilus_app.testkit.binance_standin import BinanceVenueStandin
from nautilus_app.testkit.replay import load_klines

API_KEY = "LiveTestKey" + uuid.uuid4().hex[:12]
API_SECRET = "LiveTestSecret" + uuid.uuid4().hex
SCRIPT = str(REPO_ROOT / "tests/fixtures/live_scripted.py") + ":ScriptedOrders"


# ---- helpers ---------------------------------------------------------------------------------------
class Receiver:
    """A local webhook receiver: records (path, JSON body) of every POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def standin(bar_seconds: float = 0.25, **kw: object) -> BinanceVenueStandin:
    k = load_klines("ETHUSDT", "2023-08-01T00:00", "2023-08-01T03:00")
    kw.setdefault("hmac_keys", {API_KEY: API_SECRET})
    return BinanceVenueStandin({"ETHUSDT": k}, bar_seconds=bar_seconds, **kw).start()


def write_config(tmp: Path, srv: BinanceVenueStandin, script: str, *, limits: str = "", live: str = "",
                 receiver: Receiver | None = None, trader: str | None = None, params: str = "") -> Path:
    trader = trader or f"LT-{uuid.uuid4().hex[:8]}"
    hooks = ""
    if receiver is not None:
        hooks = f'''
[live.alerts]
min_interval_seconds = 0
[[live.alerts.webhooks]]
kind = "json"
url = "{receiver.url}/json"
'''
    text = f'''name = "live_test"
bar_types = ["ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"]
[[venues]]
name = "BINANCE_USDM"
account_type = "MARGIN"
starting_balances = ["10000 USDT"]
default_leverage = 3
[[strategies]]
strategy_path = "{SCRIPT}"
[strategies.params]
instrument_id = "ETHUSDT-PERP.BINANCE_USDM"
bar_type = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
script = "{script}"
{params}
[live]
enabled = true
trader_id = "{trader}"
base_url_http = "{srv.base_url_http}"
base_url_ws = "{srv.base_url_ws}"
results_every_seconds = 1.0
{live}
[live.limits]
{limits}
[live.monitoring]
metrics_port = 0
{hooks}'''
    path = tmp / "live.toml"
    path.write_text(text)
    return path


def live_env(key: str = API_KEY, secret: str = API_SECRET) -> dict[str, str]:
    return {**os.environ, "NAUTILUS_LIVE_OFFLINE": "1", "BINANCE_API_KEY": key, "BINANCE_API_SECRET": secret}


def live_cmd(config: Path, results: Path, *extra: str, opt_in: bool = True) -> list[str]:
    return [sys.executable, "-m", "nautilus_app", "live", str(config), "--results-dir", str(results), *extra,
            *(["--i-understand-this-trades-real-money"] if opt_in else [])]


def run_live(config: Path, results: Path, *extra: str, env: dict | None = None, timeout: float = 120,
             opt_in: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(live_cmd(config, results, *extra, opt_in=opt_in), capture_output=True, text=True,
                          env=env or live_env(), cwd=REPO_ROOT, timeout=timeout)


def results_folder(results: Path) -> Path:
    runs = [p for p in results.iterdir() if p.name.startswith("live-")]
    assert len(runs) == 1, runs
    return runs[0]


def all_text(root: Path) -> str:
    """Every byte under ``root`` (text and Parquet) decoded leniently, for the secret grep."""
    out = []
    for p in root.rglob("*"):
        if p.is_file():
            out.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


def redis_contains(*needles: str) -> list[str]:
    r = redis.Redis()
    hits = []
    for key in r.scan_iter(count=1000):
        k = key.decode("utf-8", "replace")
        t = r.type(key).decode()
        vals: list[bytes] = []
        if t == "string":
            vals = [r.get(key) or b""]
        elif t == "hash":
            vals = list(r.hgetall(key).values())
        elif t == "list":
            vals = r.lrange(key, 0, -1)
        elif t in ("set",):
            vals = list(r.smembers(key))
        elif t == "zset":
            vals = [m for m in r.zrange(key, 0, -1)]
        for n in needles:
            if n in k or any(n.encode() in v for v in vals):
                hits.append(k)
    return hits


# ---- end to end: real Binance exec client, HMAC, rails, results, metrics, secrets --------------------------
def test_live_binance_usdm_end_to_end_rails_metrics_and_no_secrets(tmp_path: Path) -> None:
    """bar 2 buy 0.1 (sent, filled); bar 3 buy 1.0 (1855 USDT > max_order_notional 1000: denied, never sent);
    bar 5 reduce-only sell 0.1 (sent, filled). The node's metrics are scraped while it runs."""
    from prometheus_client.parser import text_string_to_metric_families

    srv = standin()
    recv = Receiver()
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:0.100; 3:BUY:1.000; 5:SELL:0.100:R",
                           limits="max_order_notional = 1000.0", receiver=recv)
        results = tmp_path / "results"
        proc = subprocess.Popen(live_cmd(cfg, results, "--max-seconds", "9"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=live_env(), cwd=REPO_ROOT)
        # the status file carries the bound metrics port; scrape once the sell has gone through
        families = {}
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end and proc.poll() is None:
            try:
                st = json.loads(results_folder(results).joinpath("status.json").read_text())
                if st.get("metrics_port") and len(srv.standin.orders_received) >= 2:
                    time.sleep(1.5)
                    body = urllib.request.urlopen(f"http://127.0.0.1:{st['metrics_port']}/metrics", timeout=5).read()
                    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
                    break
            except (OSError, ValueError, AssertionError, StopIteration):
                pass
            time.sleep(0.2)
        out, err = proc.communicate(timeout=90)
    finally:
        srv.stop()
        recv.close()
    assert proc.returncode == 0, err[-3000:]
    # printed plan with limits before start
    assert "LIVE TRADING on BINANCE_USDM" in out and "max_order_notional     1000.0" in out
    # the venue saw exactly the two allowed orders, signed with HMAC-SHA256, none unauthenticated
    sent = srv.standin.orders_received
    assert [(o["side"], o["quantity"], o.get("reduceOnly")) for o in sent] == [("BUY", "0.100", None),
                                                                              ("SELL", "0.100", "true")]
    assert srv.standin.auth_failures == [] and srv.standin.key_types == {"hmac"}
    assert srv.standin.user_ws_connections >= 1 and srv.leverage == {"ETHUSDT": 3}
    assert srv.position_amounts() == {}
    run = results_folder(results)
    fills = __import__("pandas").read_parquet(run / "fills.parquet")
    assert list(fills["order_side"]) == ["BUY", "SELL"] and list(fills["last_qty"]) == [0.1, 0.1]
    # the fill prices are the stand-in's bar closes and the fees its taker fee
    trades = srv.trades
    assert [Decimal(str(p)) for p in fills["last_px"]] == [Decimal(t["price"]) for t in trades]
    assert abs(float(fills["commission"].sum()) - float(sum(Decimal(t["commission"]) for t in trades))) < 1e-9
    info = json.loads((run / "run.json").read_text())
    assert info["mode"] == "live" and info["running"] is False
    for f in ("orders.parquet", "positions.parquet", "equity.parquet", "trades.parquet", "metrics.json"):
        assert (run / f).exists(), f
    # the denied order: counted, alerted with the expected payload
    st = json.loads((run / "status.json").read_text())
    assert st["metrics"]["orders_denied"] == {"max_order_notional": 1}
    denied = [b for p, b in recv.posts if b["rule"] == "order_denied"]
    assert len(denied) == 1 and denied[0]["severity"] == "warning"
    assert "max_order_notional 1000.0" in denied[0]["message"] and denied[0]["fields"]["rail"] == "max_order_notional"
    assert any(b["rule"] == "session_stopped" for _, b in recv.posts)
    # /metrics parsed by prometheus_client's text parser
    assert families, "metrics were not scraped"
    assert families["nautilus_session_up"].samples[0].value == 1.0
    assert families["nautilus_equity"].samples[0].value > 9000
    denied_m = [s for s in families["nautilus_orders_denied"].samples if s.name.endswith("_total")]
    assert [(s.labels["reason"], s.value) for s in denied_m] == [("max_order_notional", 1.0)]
    assert [s.value for s in families["nautilus_orders_submitted"].samples if s.name.endswith("_total")] == [2.0]
    assert "nautilus_feed_staleness_seconds" in families and "nautilus_order_latency_seconds" in families
    # keys never in logs, results or Redis
    text = all_text(run) + out + err
    assert API_KEY not in text and API_SECRET not in text
    assert redis_contains(API_KEY, API_SECRET) == []


def test_live_ed25519_key_signs_requests(tmp_path: Path) -> None:
    """An Ed25519 key (PKCS#8 PEM secret) is detected by Nautilus's client and verified by the stand-in."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv = Ed25519PrivateKey.generate()
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    pub = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key = "Ed25519Key" + uuid.uuid4().hex[:10]
    srv = standin(hmac_keys={}, ed25519_keys={key: pub})
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:0.100; 4:SELL:0.100:R")
        proc = run_live(cfg, tmp_path / "results", "--max-seconds", "6", env=live_env(key, pem))
    finally:
        srv.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert srv.standin.key_types == {"ed25519"} and srv.standin.auth_failures == []
    assert [o["side"] for o in srv.standin.orders_received] == ["BUY", "SELL"]
    body = pem.split("-----")[2].strip().splitlines()[0]
    assert body not in all_text(tmp_path / "results") + proc.stdout + proc.stderr


def test_wrong_secret_is_refused_by_the_standin(tmp_path: Path) -> None:
    """A bad HMAC signature gets Binance's -1022; the node fails to connect and exits 1, sending no order."""
    srv = standin()
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:0.100")
        proc = run_live(cfg, tmp_path / "results", "--max-seconds", "30", env=live_env(API_KEY, "wrong-secret-123"),
                        timeout=120)
    finally:
        srv.stop()
    assert proc.returncode != 0
    assert any("Signature" in a for a in srv.standin.auth_failures)
    assert srv.standin.orders_received == []


def assert_only_the_first_entry_reached_the_venue(proc, srv, results: Path, rail: str) -> None:
    """The session ended cleanly, the stand-in received one entry (BUY 0.100; on_stop's reduce-only close
    aside) and status.json counts one order denied by ``rail``."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    entries = [o for o in srv.standin.orders_received if o.get("reduceOnly") != "true"]  # not on_stop's close
    assert [(o["side"], o["quantity"]) for o in entries] == [("BUY", "0.100")], srv.standin.orders_received
    st = json.loads((results_folder(results) / "status.json").read_text())
    assert st["metrics"]["orders_denied"] == {rail: 1}


@pytest.mark.parametrize("limits,script,rail", [
    ("max_position_notional = 300.0", "2:BUY:0.100; 3:BUY:0.100", "max_position_notional"),
    ("max_total_notional = 300.0", "2:BUY:0.100; 3:BUY:0.100", "max_total_notional"),
    ("max_leverage = 0.03", "2:BUY:0.100; 3:BUY:0.100", "max_leverage"),
    ("max_open_orders = 1", "2:BUY:0.100@1000.00; 3:BUY:0.100@1001.00", "max_open_orders"),
    ("max_orders_per_minute = 1", "2:BUY:0.100; 3:BUY:0.100", "max_orders_per_minute"),
])
def test_each_rail_stops_the_order_before_the_venue(tmp_path: Path, limits: str, script: str, rail: str) -> None:
    """The first order passes (reaches the stand-in); the second breaks the rail and never reaches it (the
    strategy's reduce-only close at stop is allowed: exits are never denied)."""
    srv = standin(bar_seconds=0.2)
    try:
        cfg = write_config(tmp_path, srv, script, limits=limits)
        proc = run_live(cfg, tmp_path / "results", "--max-seconds", "4")
    finally:
        srv.stop()
    assert_only_the_first_entry_reached_the_venue(proc, srv, tmp_path / "results", rail)


def test_daily_loss_limit_stops_entries_and_flattens(tmp_path: Path) -> None:
    """A daily loss limit tiny enough to trip after the entry's fee: entries stop, the position is flattened
    (flatten_on_breach), the later buy never reaches the venue."""
    srv = standin(bar_seconds=0.2)
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:1.000; 8:BUY:0.100",
                           limits="daily_loss_limit = 0.00001\nflatten_on_breach = true")
        proc = run_live(cfg, tmp_path / "results", "--max-seconds", "6")
    finally:
        srv.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    sides = [(o["side"], o["quantity"], o.get("reduceOnly")) for o in srv.standin.orders_received]
    assert sides[0] == ("BUY", "1.000", None)
    assert ("SELL", "1.000", "true") in sides and ("BUY", "0.100", None) not in sides
    assert srv.position_amounts() == {}
    st = json.loads((results_folder(tmp_path / "results") / "status.json").read_text())
    assert "daily_loss_limit" in st["halted"] and st["metrics"]["orders_denied"].get("halted") == 1


def test_kill_switch_flatten_then_stop(tmp_path: Path) -> None:
    """`nautilus-app live flatten` cancels the resting order and closes the position at the venue; `stop` ends
    the node."""
    srv = standin(bar_seconds=0.3)
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:0.200; 3:BUY:0.100@1000.00")
        results = tmp_path / "results"
        proc = subprocess.Popen(live_cmd(cfg, results, "--max-seconds", "60"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=live_env(), cwd=REPO_ROOT)
        t_end = time.monotonic() + 40
        while time.monotonic() < t_end and not (srv.position_amounts() and srv.open_orders()):
            time.sleep(0.1)
        assert srv.position_amounts() == {"ETHUSDT": Decimal("0.200")} and len(srv.open_orders()) == 1
        ctl = subprocess.run([sys.executable, "-m", "nautilus_app", "live", "flatten", str(cfg), "--results-dir",
                              str(results), "--wait", "10"], capture_output=True, text=True, cwd=REPO_ROOT,
                             env=live_env(), timeout=30)
        assert ctl.returncode == 0, ctl.stderr
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end and (srv.position_amounts() or srv.open_orders()):
            time.sleep(0.1)
        assert srv.position_amounts() == {} and srv.open_orders() == []
        ctl = subprocess.run([sys.executable, "-m", "nautilus_app", "live", "stop", str(cfg), "--results-dir",
                              str(results), "--wait", "30"], capture_output=True, text=True, cwd=REPO_ROOT,
                             env=live_env(), timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        srv.stop()
    assert proc.returncode == 0, err[-3000:]
    assert ctl.returncode == 0, ctl.stdout + ctl.stderr
    assert srv.standin.cancels_received and srv.standin.orders_received[-1]["reduceOnly"] == "true"
    st = json.loads((results_folder(results) / "status.json").read_text())
    assert st["killed"] and st["positions"] == [] and st["open_orders"] == []


def test_reconciliation_refuses_unknown_venue_position(tmp_path: Path) -> None:
    """The venue holds 0.5 ETHUSDT and a resting order the node never made: it refuses (exit 3), sends no order,
    leaves both untouched; with --on-unknown flatten it closes them and trades."""
    srv = standin(bar_seconds=0.2)
    srv.seed_position("ETHUSDT", "0.500", "1850")
    srv.seed_open_order("ETHUSDT", "BUY", "0.100", "1000.00", "manual-order-1")
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:0.100")
        proc = run_live(cfg, tmp_path / "results", "--max-seconds", "20")
        assert proc.returncode == 3, proc.stderr[-3000:]
        assert "refused" in proc.stderr
        assert srv.standin.orders_received == [] and srv.standin.cancels_received == []
        assert srv.position_amounts() == {"ETHUSDT": Decimal("0.500")} and len(srv.open_orders()) == 1
        proc2 = run_live(cfg, tmp_path / "results2", "--max-seconds", "6", "--on-unknown", "flatten")
    finally:
        srv.stop()
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert srv.open_orders() == []
    sent = [(o["side"], o["quantity"], o.get("reduceOnly")) for o in srv.standin.orders_received]
    assert sent[0] == ("SELL", "0.500", "true"), sent


def test_opt_in_is_required_twice(tmp_path: Path) -> None:
    """Without the flag, or without enabled = true, the node never starts (exit 2) and nothing reaches the venue."""
    srv = standin()
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:0.100")
        p1 = run_live(cfg, tmp_path / "r1", opt_in=False)
        cfg.write_text(cfg.read_text().replace("enabled = true", "enabled = false"))
        p2 = run_live(cfg, tmp_path / "r2")
    finally:
        srv.stop()
    assert p1.returncode == 2 and "--i-understand-this-trades-real-money" in p1.stderr
    assert p2.returncode == 2 and "live.enabled" in p2.stderr
    assert srv.stats.http_requests == []


def test_offline_guard_refuses_real_endpoints(tmp_path: Path) -> None:
    srv = standin()
    srv.stop()
    cfg = write_config(tmp_path, srv, "2:BUY:0.100")
    cfg.write_text(cfg.read_text().replace(srv.base_url_http, "https://fapi.binance.com"))
    p = run_live(cfg, tmp_path / "r")
    assert p.returncode == 2 and "loopback" in p.stderr


def test_spot_ws_api_guard_and_binance_settlement(tmp_path: Path) -> None:
    """Spot: the WebSocket API endpoint is checked like the others (left at the venue default it would reach
    ws-api.binance.com: refused offline); Binance settles in USDT, so settlement_currency = "USDE" is refused."""
    srv = standin()
    srv.stop()
    cfg = write_config(tmp_path, srv, "2:BUY:0.100")
    spot = cfg.read_text().replace("ETHUSDT-PERP.BINANCE_USDM", "ETHUSDT.BINANCE").replace(
        'name = "BINANCE_USDM"\naccount_type = "MARGIN"', 'name = "BINANCE"\naccount_type = "CASH"').replace(
        "default_leverage = 3\n", "")
    cfg.write_text(spot)
    p = run_live(cfg, tmp_path / "r1")
    assert p.returncode == 2 and "live.base_url_ws_api" in p.stderr and "loopback" in p.stderr, p.stderr[-2000:]
    p = run_live(cfg, tmp_path / "r1b", "--base-url-ws-api", "wss://ws-api.binance.com:443/ws-api/v3")
    assert p.returncode == 2 and "live.base_url_ws_api = 'wss://ws-api.binance.com" in p.stderr, p.stderr[-2000:]
    cfg.write_text(spot.replace("[live]\n", '[live]\nsettlement_currency = "USDE"\n'))
    p = run_live(cfg, tmp_path / "r2")
    assert p.returncode == 2 and "live.settlement_currency" in p.stderr, p.stderr[-2000:]


# ---- alerts --------------------------------------------------------------------------------------------
def test_alerts_payloads_rate_limit_and_test_command(tmp_path: Path) -> None:
    """Slack, Discord, Telegram and generic JSON payloads reach a local receiver; the per-rule rate limit
    suppresses a repeat; `nautilus-app alerts test` sends one alert to every webhook; the Telegram token and
    webhook URLs from the environment are not written to alerts.jsonl."""
    from nautilus_app.alerts import Alerter
    from nautilus_app.live_config import parse_live

    recv = Receiver()
    token = "123456:TelegramSecret" + uuid.uuid4().hex[:8]
    env = {"SLACK_URL": f"{recv.url}/slack/T000/B000/secretpart", "TG_TOKEN": token}
    table = {"alerts": {"min_interval_seconds": 60, "webhooks": [
        {"kind": "slack", "url_env": "SLACK_URL"},
        {"kind": "discord", "url": f"{recv.url}/discord"},
        {"kind": "telegram", "token_env": "TG_TOKEN", "chat_id": "42", "api_base": recv.url},
        {"kind": "json", "url": f"{recv.url}/json"}]}}
    s = parse_live(table)
    try:
        a = Alerter(s.alerts, "sess-1", tmp_path / "alerts.jsonl", env=env)
        assert a.fire("drawdown", "drawdown 6.00 % >= 5.00 %", drawdown=0.06)
        assert not a.fire("drawdown", "again")  # rate limited
        assert a.fire("order_rejected", "ETHUSDT rejected", subject="ETHUSDT")
        assert a.flush(10)
        by_path = {}
        for path, body in recv.posts:
            by_path.setdefault(path.split("/")[1], []).append(body)
        assert by_path["slack"][0] == {"text": "[CRITICAL] sess-1: drawdown\ndrawdown 6.00 % >= 5.00 %"}
        assert by_path["discord"][0] == {"content": "[CRITICAL] sess-1: drawdown\ndrawdown 6.00 % >= 5.00 %"}
        assert by_path[f"bot{token}"][0] == {"chat_id": "42", "text": "[CRITICAL] sess-1: drawdown\ndrawdown 6.00 % >= 5.00 %",
                                              "disable_web_page_preview": True}
        j = by_path["json"][0]
        assert (j["rule"], j["severity"], j["session"], j["fields"]) == ("drawdown", "critical", "sess-1", {"drawdown": 0.06})
        assert [b["rule"] for b in by_path["json"]] == ["drawdown", "order_rejected"]
        assert a.suppressed == 1 and a.sent == 8
        log_text = (tmp_path / "alerts.jsonl").read_text()
        assert token not in log_text and "secretpart" not in log_text
        # the CLI test command against a config file
        cfg = tmp_path / "c.toml"
        cfg.write_text((REPO_ROOT / "configs/live_perp.toml").read_text() + f'''
[[live.alerts.webhooks]]
kind = "json"
url = "{recv.url}/cli"
''')
        n_before = len(recv.posts)
        p = subprocess.run([sys.executable, "-m", "nautilus_app", "alerts", "test", str(cfg)], capture_output=True,
                           text=True, cwd=REPO_ROOT, timeout=60)
        assert p.returncode == 0, p.stderr
        assert [b["rule"] for path, b in recv.posts[n_before:] if path == "/cli"] == ["test"]
    finally:
        recv.close()


def test_metrics_exporter_reads_paper_and_live_status(tmp_path: Path) -> None:
    """`nautilus-app metrics` source: status.json of paper and live results folders, parsed back."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from nautilus_app.monitoring import make_registry, results_sources

    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    for name, mode in (("paper-a", "paper"), ("live-b", "live"), ("bt-c", None)):
        d = tmp_path / name
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"run_id": name, "mode": mode, "running": True}))
        (d / "status.json").write_text(json.dumps({
            "written_at": now, "equity_usdt": 1000.0, "feed_stale": mode == "paper",
            "positions": [{"instrument_id": "ETHUSDT-PERP.BINANCE_USDM", "quantity": 0.5, "notional": 900.0}],
            "open_orders": [{}], "metrics": {"orders_denied": {"max_leverage": 2}} if mode == "live" else {}}))
    text = generate_latest(make_registry(results_sources(tmp_path))).decode()
    fam = {f.name: f for f in text_string_to_metric_families(text)}
    eq = {s.labels["session"]: s.value for s in fam["nautilus_equity"].samples}
    assert eq == {"paper-a": 1000.0, "live-b": 1000.0}
    assert {s.labels["session"]: s.value for s in fam["nautilus_feed_stale"].samples} == {"paper-a": 1.0, "live-b": 0.0}
    assert sorted((s.labels["session"], s.value) for s in fam["nautilus_position_quantity"].samples) == [
        ("live-b", 0.5), ("paper-a", 0.5)]
    assert [(s.labels["reason"], s.value) for s in fam["nautilus_orders_denied"].samples
            if s.name.endswith("_total")] == [("max_leverage", 2.0)]


def test_live_config_validation_and_secret_files(tmp_path: Path) -> None:
    from nautilus_app.config import ConfigError, load_config
    from nautilus_app.live_config import LiveConfigError, parse_live, read_secret_file, resolve_credentials

    # the backtest loader accepts [live] and the digest does not change with it
    base = (REPO_ROOT / "configs/live_perp.toml").read_text()
    a = tmp_path / "a.toml"
    a.write_text(base)
    b = tmp_path / "b.toml"
    b.write_text(base.split("\n[live]\n")[0])
    assert load_config(a).digest() == load_config(b).digest()
    bad = tmp_path / "bad.toml"
    bad.write_text(base.replace("[live.limits]", "[live.limits]\nmax_lverage = 2"))
    with pytest.raises(ConfigError, match="max_lverage"):
        load_config(bad)
    with pytest.raises(LiveConfigError, match="rules"):
        parse_live({"alerts": {"rules": ["drawdwn"]}})
    f = tmp_path / "keys.toml"
    f.write_text('api_key = "k123456"\napi_secret = "s123456"\n')
    f.chmod(0o644)
    with pytest.raises(LiveConfigError, match="0600"):
        read_secret_file(f)
    f.chmod(0o600)
    c = resolve_credentials(parse_live({"key_file": str(f)}), "BINANCE_USDM")
    assert (c.api_key, c.api_secret) == ("k123456", "s123456") and "s123456" not in repr(c)
    with pytest.raises(LiveConfigError, match="BINANCE_FUTURES_TESTNET_API_KEY"):
        resolve_credentials(parse_live({"testnet": True}), "BINANCE_USDM", env={})


def test_dash_sessions_page_lists_paper_and_live(tmp_path: Path) -> None:
    """The Sessions page's data: paper/live folders only, with status, equity, fills and alerts."""
    import pandas as pd

    from dash_ui.pages.sessions import layout, list_sessions, session_detail

    for name, mode in (("paper-a", "paper"), ("live-b", "live"), ("bt-c", None)):
        d = tmp_path / name
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"run_id": name, "mode": mode, "running": mode == "live"}))
        (d / "status.json").write_text(json.dumps({"equity_usdt": 101.5, "positions": [{"instrument_id": "X"}],
                                                   "open_orders": [], "halted": "kill switch" if mode == "live" else None,
                                                   "recent_fills": [{"side": "BUY"}] if mode == "live" else None}))
    pd.DataFrame({"ts": pd.to_datetime([1, 2], unit="s", utc=True), "equity": [100.0, 101.5]}).to_parquet(
        tmp_path / "live-b" / "equity.parquet")
    (tmp_path / "live-b" / "alerts.jsonl").write_text(json.dumps(
        {"ts": "t", "rule": "kill_switch", "severity": "critical", "message": "m", "delivered": ["json[0]: HTTP 200"]}) + "\n")
    rows = {r["run_id"]: r for r in list_sessions(tmp_path)}
    assert set(rows) == {"paper-a", "live-b"}
    assert rows["live-b"]["running"] is True and rows["live-b"]["halted"] == "kill switch"
    d = session_detail(tmp_path, "live-b")
    assert list(d["equity"]["equity"]) == [100.0, 101.5] and d["fills"] == [{"side": "BUY"}]
    assert d["alerts"][0]["rule"] == "kill_switch" and d["alerts"][0]["delivered"] == "json[0]: HTTP 200"
    assert layout(None) is not None


def test_reconciliation_adopt_claims_unknown_state_and_a_restart_knows_it(tmp_path: Path) -> None:
    """--on-unknown adopt on a real node: the seeded 0.5 position and resting order stay untouched at the venue,
    the strategy claims the position (its buy 0.1 adds to it: 0.6 at the venue and in status.json), the order is
    tracked as open; the ledger then knows both, so a restart with the default ``refuse`` trades (exit 0)."""
    srv = standin(bar_seconds=0.2)
    srv.seed_position("ETHUSDT", "0.500", "1850")
    srv.seed_open_order("ETHUSDT", "BUY", "0.100", "1000.00", "manual-order-1")
    results = tmp_path / "results"
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:0.100", params="close_on_stop = false")
        proc = run_live(cfg, results, "--max-seconds", "8", "--on-unknown", "adopt")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert srv.standin.cancels_received == []
        assert [(o["side"], o["quantity"]) for o in srv.standin.orders_received] == [("BUY", "0.100")]
        assert srv.position_amounts() == {"ETHUSDT": Decimal("0.600")}
        assert [o["clientOrderId"] for o in srv.open_orders()] == ["manual-order-1"]
        st = json.loads((results_folder(results) / "status.json").read_text())
        rec = st["reconciliation"]
        assert rec["policy"] == "adopt" and rec["unknown_orders"] == ["manual-order-1"]
        assert list(rec["unknown_positions"].values()) == [0.5]
        assert [(p["strategy_id"], p["side"], p["quantity"]) for p in st["positions"]] == \
            [("ScriptedOrders-000", "LONG", 0.6)]
        assert [o["client_order_id"] for o in st["open_orders"]] == ["manual-order-1"]
        assert any(a.get("rule") == "reconciliation" for a in map(json.loads, (results_folder(results) /
                   "alerts.jsonl").read_text().splitlines()))
        proc2 = run_live(cfg, results, "--max-seconds", "5")  # default policy: refuse
    finally:
        srv.stop()
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    st2 = json.loads((sorted(results.glob("live-*"))[-1] / "status.json").read_text())
    assert st2["refused"] is None and st2["reconciliation"]["unknown_positions"] == {}
    assert st2["reconciliation"]["unknown_orders"] == []


def test_max_drawdown_halts_entries_without_flattening(tmp_path: Path) -> None:
    """A max_drawdown tiny enough to trip once equity falls below its peak (the entry's fee): new entries stop
    (the later buy is denied as ``halted`` and never reaches the venue), the drawdown alert fires, and with
    ``flatten_on_breach = false`` the position is left open at the venue."""
    srv = standin(bar_seconds=0.2)
    try:
        cfg = write_config(tmp_path, srv, "2:BUY:1.000; 8:BUY:0.100", params="close_on_stop = false",
                           limits="max_drawdown = 0.00001\nflatten_on_breach = false")
        proc = run_live(cfg, tmp_path / "results", "--max-seconds", "6")
    finally:
        srv.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(o["side"], o["quantity"]) for o in srv.standin.orders_received] == [("BUY", "1.000")]
    assert srv.position_amounts() == {"ETHUSDT": Decimal("1.000")}
    run = results_folder(tmp_path / "results")
    st = json.loads((run / "status.json").read_text())
    assert "max_drawdown" in st["halted"] and st["metrics"]["orders_denied"] == {"halted": 1}
    assert [p["quantity"] for p in st["positions"]] == [1.0] and st["killed"] is None
    alerts = [json.loads(x) for x in (run / "alerts.jsonl").read_text().splitlines()]
    assert any(a.get("rule") == "drawdown" and "max_drawdown" in a.get("message", "") for a in alerts), alerts


# ---- the rails are the strategy's hooks (strategies/hooks.py), also for a user's plain Strategy ----------------
def test_a_plain_user_strategy_runs_behind_the_rails_gate(tmp_path: Path) -> None:
    """``ScriptedOrders`` (tests/fixtures/live_scripted.py) is a plain Nautilus ``Strategy``, not our base class.
    The live session builds it with the platform's hooks and puts the rails in front of it as an order gate,
    a lifecycle gate and a bar error handler; nothing is replaced on the instance. In the node, its
    oversized buy (1.0 ETH, ~1855 USDT > max_order_notional 1000) is denied by the gate and never reaches
    the stand-in, while the next order passes."""
    from types import SimpleNamespace

    from nautilus_app.config import load_live_config
    from nautilus_app.live import LiveSession, guard_strategy
    from nautilus_app.live_config import Credentials
    from strategies.hooks import StrategyHooks

    srv = standin(bar_seconds=0.2)
    try:
        cfg_path = write_config(tmp_path, srv, "2:BUY:1.000; 3:BUY:0.100", limits="max_order_notional = 1000.0")
        # in process: how the strategy is put behind the session (no node is built or run)
        cfg, settings, _text = load_live_config(cfg_path)
        session = LiveSession(cfg, settings, creds=Credentials(API_KEY, API_SECRET, "test"),
                              results_root=tmp_path / "in-process")
        [strategy] = session.make_strategies()
        user_cls = session.cfg.strategies[0].resolve().strategy_cls
        assert type(strategy).__name__ == "ScriptedOrders" and isinstance(strategy, user_cls)
        assert isinstance(strategy, StrategyHooks) and not issubclass(user_cls, StrategyHooks)
        guard_strategy(strategy, session)
        patched = {"submit_order", "submit_order_list", "on_bar", "on_start", "on_stop", "close_position",
                   "close_all_positions"} & set(vars(strategy))
        assert patched == set()
        session.supervisor = SimpleNamespace(  # the supervisor's views the rails read
            last_price=lambda iid: 1855.0, net_position=lambda iid: 0.0, net_positions=dict,
            open_order_qty=lambda iid, same_side_as: 0.0, equity=lambda: 10_000.0, open_orders=list)
        big = SimpleNamespace(instrument_id="ETHUSDT-PERP.BINANCE", client_order_id="O-1", side="OrderSide.BUY",
                              quantity=Decimal("1.000"), has_price=False, is_reduce_only=False)
        assert strategy.submit_order(big) is None  # denied by the gate: Nautilus's submit_order is never called
        assert session.rails.denied == {"max_order_notional": 1} and session.sent_at == {}
        session.reconciled, session.refused = True, "unknown venue position"
        strategy.on_start()  # skipped: the strategy's own on_start would subscribe (it is not registered)
        strategy.on_stop()
        assert strategy.submit_order(big) is None and session.rails.denied == {"max_order_notional": 1}
        # in the node, against the stand-in
        proc = run_live(cfg_path, tmp_path / "results", "--max-seconds", "4")
    finally:
        srv.stop()
    assert_only_the_first_entry_reached_the_venue(proc, srv, tmp_path / "results", "max_order_notional")
