"""The live alert rules, each raised by a real ``nautilus-app live`` node (Nautilus's Rust Binance USDT-M data and
execution clients against the signed stand-in) and delivered to a local HTTP receiver as the generic JSON payload:
order rejected (the stand-in's reject option), strategy exception, funding spike (markPrice funding rate),
liquidation risk, disconnect/stale feed and reconnect (the stand-in's feed paused and resumed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from core.paths import REPO_ROOT
from nautilus_app.testkit.replay import FundingRow
from tests.test_live import Receiver, live_cmd, live_env, results_folder, run_live, standin, write_config

KEYS = {"rule", "severity", "session", "title", "message", "fields", "ts"}


def alert_config(tmp: Path, srv, script: str, recv: Receiver, alerts: str, live: str = "",
                 min_interval_seconds: int = 60) -> Path:
    cfg = write_config(tmp, srv, script, receiver=recv, live=live)
    cfg.write_text(cfg.read_text().replace(
        "[live.alerts]\nmin_interval_seconds = 0",
        f"[live.alerts]\nmin_interval_seconds = {min_interval_seconds}\nmax_per_hour = 1000\n{alerts}"))
    return cfg


def by_rule(recv: Receiver) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path, body in recv.posts:
        assert path == "/json" and set(body) == KEYS, body
        out.setdefault(body["rule"], []).append(body)
    return out


def test_alerts_order_rejected_strategy_exception_funding_spike(tmp_path: Path) -> None:
    """Every order is rejected by the stand-in (-2019), the strategy raises in on_bar on bar 3, and the markPrice
    stream carries a 0.30 % funding rate: one JSON alert each, with the expected fields."""
    nxt = 1690876800000  # 2023-08-01T08:00Z, the next funding time of every replayed bar
    srv = standin(bar_seconds=0.25, reject_orders=(-2019, "Margin is insufficient."),
                  funding={"ETHUSDT": [FundingRow(nxt, "0.0030")]})
    recv = Receiver()
    try:
        cfg = alert_config(tmp_path, srv, "2:BUY:0.100; 3:RAISE", recv, "funding_spike = 0.001")
        proc = run_live(cfg, tmp_path / "results", "--max-seconds", "8")
        time.sleep(0.5)
    finally:
        srv.stop()
        recv.close()
    rules = by_rule(recv)
    assert [(o["side"], o["quantity"]) for o in srv.standin.rejected] == [("BUY", "0.100")]
    assert srv.trades == [] and srv.position_amounts() == {}
    rej = rules.get("order_rejected")
    assert rej and len(rej) == 1, (rules.keys(), proc.stderr[-3000:])
    assert rej[0]["severity"] == "warning" and "ETHUSDT-PERP.BINANCE" in rej[0]["message"]
    assert "rejected by the venue" in rej[0]["message"] and rej[0]["fields"]["client_order_id"].startswith("O-")
    exc = rules.get("strategy_exception")
    assert exc and exc[0]["severity"] == "critical", (rules.keys(), proc.stderr[-3000:])
    assert "scripted failure on bar 3" in exc[0]["message"] and "ScriptedOrders-000" in exc[0]["message"]
    fund = rules.get("funding_spike")
    assert fund and fund[0]["severity"] == "warning", (rules.keys(), proc.stderr[-3000:])
    assert fund[0]["fields"]["rate"] == 0.003 and "ETHUSDT-PERP.BINANCE funding rate 0.00300" in fund[0]["message"]
    assert len(fund) == 1  # rate limited per (rule, instrument): min_interval_seconds = 60
    st = json.loads((results_folder(tmp_path / "results") / "status.json").read_text())
    assert st["metrics"]["orders_rejected"] == 1 and st["metrics"]["errors"] >= 1
    assert "session_stopped" in rules


def test_alerts_liquidation_risk_disconnect_and_reconnect(tmp_path: Path) -> None:
    """A 0.1 ETH position with liquidation_buffer = 0.9999: the account state of rc7's Binance client carries no
    margins, so the supervisor takes the instrument's ``margin_maint`` (as Nautilus loaded it) x notional, which
    leaves less than that buffer: liquidation_risk fires; the stand-in's feed paused for 3 s
    (stale after 1 s) raises stale_feed and disconnect, resuming it raises reconnect.

    Alerts are not rate limited here and each rule is judged on the posts of its own window (from the pause to
    the resume, and after the resume): on a loaded machine the feed can also go quiet for over a second before the
    pause, and such an early stale/reconnect pair must neither pass for the pause's alerts nor suppress them."""
    srv = standin(bar_seconds=0.25)
    recv = Receiver()
    results = tmp_path / "results"
    try:
        cfg = alert_config(tmp_path, srv, "2:BUY:0.100", recv, "liquidation_buffer = 0.9999",
                           live="stale_after_seconds = 1.0", min_interval_seconds=0)
        proc = subprocess.Popen(live_cmd(cfg, results, "--max-seconds", "30"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=live_env(), cwd=REPO_ROOT)
        t_end = time.monotonic() + 40
        while time.monotonic() < t_end and not srv.position_amounts() and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)
        srv.pause()
        paused_from = len(recv.posts)
        time.sleep(3.0)
        resumed_from = len(recv.posts)
        paused_rules = {b["rule"] for _, b in recv.posts[paused_from:resumed_from]}
        srv.resume()
        time.sleep(2.0)
        resumed_rules = {b["rule"] for _, b in recv.posts[resumed_from:]}
        ctl = subprocess.run([sys.executable, "-m", "nautilus_app", "live", "stop", str(cfg), "--results-dir",
                              str(results), "--wait", "30"], capture_output=True, text=True, cwd=REPO_ROOT,
                             env=live_env(), timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        srv.stop()
        recv.close()
    assert proc.returncode == 0, err[-3000:]
    assert ctl.returncode == 0, ctl.stdout + ctl.stderr
    rules = by_rule(recv)
    liq = rules.get("liquidation_risk")
    assert liq and liq[0]["severity"] == "critical", (rules.keys(), err[-3000:])
    f = liq[0]["fields"]
    assert f["margin_source"] == "instrument margin_maint" and 0 < f["maintenance_margin"] < f["equity"]
    assert "close to maintenance margin" in liq[0]["message"]
    assert {"stale_feed", "disconnect"} <= paused_rules, paused_rules
    assert "reconnect" not in paused_rules and "reconnect" in resumed_rules, (paused_rules, resumed_rules)
    assert rules["stale_feed"][0]["severity"] == "warning" and "no bar for" in rules["stale_feed"][0]["message"]
    assert rules["disconnect"][0]["severity"] == "warning"
    assert rules["reconnect"][0]["severity"] == "info" and rules["reconnect"][0]["message"] == \
        "market data feed recovered"
