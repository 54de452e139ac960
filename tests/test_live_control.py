"""Kill switch by signal, ``nautilus-app live status`` and the ``nautilus-app metrics`` server, each as a real
process: live nodes (Nautilus's Rust Binance USDT-M clients against the signed stand-in) get SIGUSR1 (flatten, keep
running) and SIGTERM (flatten, then stop); a separate ``nautilus-app metrics`` process serves every paper/live
session under the results folder and is scraped over HTTP and parsed with prometheus_client's text parser."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

from core.paths import REPO_ROOT
from tests.test_live import live_cmd, live_env, standin, write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, str], dict]:
    """``{(family, session): {label tuple or sample name: value}}`` from one scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[tuple[str, str], dict] = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            key = (fam.name, s.labels.get("session", ""))
            extra = tuple(v for k, v in sorted(s.labels.items()) if k not in ("session", "mode"))
            out.setdefault(key, {})[extra or s.name] = s.value
    return out


def wait(pred, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return
        except (OSError, ValueError, KeyError):
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"node exited {proc.returncode} while waiting for {what}: "
                                 f"{proc.stderr.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nautilus_app", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=live_env(), timeout=timeout)


def paper_folder(results: Path) -> None:
    """A paper session's folder as the paper node writes it (run.json mode paper, status.json)."""
    d = results / "paper-demo"
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"run_id": "paper-demo", "mode": "paper", "running": True}))
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    (d / "status.json").write_text(json.dumps({
        "written_at": now, "equity_usdt": 10012.5, "feed_stale": False, "open_orders": [],
        "positions": [{"instrument_id": "BTCUSDT-PERP.BINANCE_USDM", "quantity": -0.01, "notional": 650.0}]}))


def test_sigusr1_flattens_status_metrics_process_and_sigterm_flattens_then_stops(tmp_path: Path) -> None:
    results = tmp_path / "results"
    paper_folder(results)
    port = free_port()
    metrics = subprocess.Popen([sys.executable, "-m", "nautilus_app", "metrics", "--results-dir", str(results),
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO_ROOT)
    srv = standin(bar_seconds=0.3)
    procs: list[subprocess.Popen] = []
    try:
        # ---- node A: a 0.2 position and a resting limit, then SIGUSR1 -------------------------------------
        (tmp_path / "a").mkdir()
        cfg_a = write_config(tmp_path / "a", srv, "2:BUY:0.200; 3:BUY:0.100@1000.00")
        a = subprocess.Popen(live_cmd(cfg_a, results, "--max-seconds", "90", "--run-id", "live-sigusr1"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=live_env(), cwd=REPO_ROOT)
        procs.append(a)
        wait(lambda: srv.position_amounts() == {"ETHUSDT": Decimal("0.200")} and len(srv.open_orders()) == 1, 40,
             "node A's position and resting order", a)
        status_a = results / "live-sigusr1" / "status.json"
        wait(lambda: len(json.loads(status_a.read_text())["open_orders"]) == 1
             and json.loads(status_a.read_text())["positions"], 10, "node A's status", a)
        # `live status`: pid, run id and the status the node wrote
        st = cli("live", "status", str(cfg_a), "--results-dir", str(results))
        assert st.returncode == 0, st.stderr
        head, _, body = st.stdout.partition("\n")
        assert head == f"live node pid {a.pid}, run live-sigusr1"
        printed = json.loads(body)
        assert printed["running"] is True and printed["positions"][0]["quantity"] == 0.2
        assert len(printed["open_orders"]) == 1 and printed["killed"] is None
        # the metrics process: the live node and the paper session
        wait(lambda: scrape(port)[("nautilus_position_quantity", "live-sigusr1")] == {("ETHUSDT-PERP.BINANCE_USDM",): 0.2},
             10, "metrics of node A")
        m = scrape(port)
        assert m[("nautilus_session_up", "live-sigusr1")] == {"nautilus_session_up": 1.0}
        assert m[("nautilus_open_orders", "live-sigusr1")] == {"nautilus_open_orders": 1.0}
        assert m[("nautilus_trading_halted", "live-sigusr1")] == {"nautilus_trading_halted": 0.0}
        assert m[("nautilus_equity", "paper-demo")] == {"nautilus_equity": 10012.5}
        assert m[("nautilus_position_quantity", "paper-demo")] == {("BTCUSDT-PERP.BINANCE_USDM",): -0.01}
        assert m[("nautilus_orders_submitted", "live-sigusr1")]["nautilus_orders_submitted_total"] == 2.0
        # SIGUSR1: cancel + close at the venue, the node keeps running with entries halted
        a.send_signal(signal.SIGUSR1)
        wait(lambda: srv.position_amounts() == {} and srv.open_orders() == [], 20, "flat after SIGUSR1", a)
        wait(lambda: json.loads(status_a.read_text())["killed"] == "signal SIGUSR1"
             and not json.loads(status_a.read_text())["positions"], 10, "node A's status after SIGUSR1", a)
        time.sleep(1.0)
        assert a.poll() is None, "SIGUSR1 must not stop the node"
        assert srv.standin.cancels_received and srv.standin.orders_received[-1]["reduceOnly"] == "true"
        wait(lambda: scrape(port)[("nautilus_trading_halted", "live-sigusr1")] == {"nautilus_trading_halted": 1.0},
             10, "halted in /metrics")
        m = scrape(port)
        assert ("nautilus_position_quantity", "live-sigusr1") not in m
        assert m[("nautilus_open_orders", "live-sigusr1")] == {"nautilus_open_orders": 0.0}
        stop = cli("live", "stop", str(cfg_a), "--results-dir", str(results), "--wait", "30")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        _, err_a = a.communicate(timeout=60)
        assert a.returncode == 0, err_a[-3000:]
        gone = cli("live", "status", str(cfg_a), "--results-dir", str(results))
        assert gone.returncode == 1 and "no live node running" in gone.stdout

        # ---- node B: a 0.3 position and a resting limit, then SIGTERM ---------------------------------------
        n_orders = len(srv.standin.orders_received)
        (tmp_path / "b").mkdir()
        cfg_b = write_config(tmp_path / "b", srv, "2:BUY:0.300; 3:SELL:0.100@9000.00")
        b = subprocess.Popen(live_cmd(cfg_b, results, "--max-seconds", "90", "--run-id", "live-sigterm"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=live_env(), cwd=REPO_ROOT)
        procs.append(b)
        wait(lambda: srv.position_amounts() == {"ETHUSDT": Decimal("0.300")} and len(srv.open_orders()) == 1, 40,
             "node B's position and resting order", b)
        time.sleep(0.5)
        b.send_signal(signal.SIGTERM)
        _, err_b = b.communicate(timeout=60)
        assert b.returncode == 0, err_b[-3000:]
        assert srv.position_amounts() == {} and srv.open_orders() == []
        sent_b = [(o["side"], o["quantity"], o.get("reduceOnly")) for o in srv.standin.orders_received[n_orders:]]
        assert sent_b[-1] == ("SELL", "0.300", "true"), sent_b
        final_b = json.loads((results / "live-sigterm" / "status.json").read_text())
        assert final_b["killed"] == "signal SIGTERM" and final_b["stop_reason"] == "kill switch: signal SIGTERM"
        assert final_b["positions"] == [] and final_b["open_orders"] == [] and final_b["running"] is False
        # both stopped sessions are still served, with session_up 0
        m = scrape(port)
        assert m[("nautilus_session_up", "live-sigusr1")] == {"nautilus_session_up": 0.0}
        assert m[("nautilus_session_up", "live-sigterm")] == {"nautilus_session_up": 0.0}
        assert m[("nautilus_session_up", "paper-demo")] == {"nautilus_session_up": 1.0}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        srv.stop()
        metrics.send_signal(signal.SIGTERM)
        try:
            metrics.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            metrics.kill()
            metrics.communicate()
