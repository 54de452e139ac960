"""Binance SPOT live: what the offline stand-in can and cannot do with rc7's spot execution client.

rc7's Rust spot execution client asks for the account in **SBE** (``GET /api/v3/account`` with
``Accept: application/sbe``, ``X-MBX-SBE: 3:5``) and takes its user-data stream from the WebSocket API
(``/ws-api/v3?responseFormat=sbe``, ``userDataStream.subscribe``); the stand-in serves spot exchangeInfo in SBE
(market data works) but neither of those, so the execution client fails to connect. This test pins that state
and the behaviour it exposed: a node stopped (here ``--max-seconds 10``) while Nautilus still waits for its
clients (connection timeout 20 s) used to exit 0 as if it had traded; it now exits 1 with the reason in
status.json (after the timeout Nautilus itself fails the node: the USD-M wrong-secret test in test_live.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from nautilus_app.core.paths import REPO_ROOT
from nautilus_app.testkit.binance_standin import BinanceVenueStandin
from nautilus_app.testkit.replay import load_klines
from tests.test_live import all_text

KEY, SECRET = "SpotKey" + uuid.uuid4().hex[:10], "SpotSecret" + uuid.uuid4().hex


class HeaderLog(BinanceVenueStandin):
    """The stand-in, recording the headers of the spot account request."""

    account_headers: dict[str, str] = {}

    async def _fallback(self, request):  # noqa: ANN001, ANN202
        if request.path == "/api/v3/account":
            type(self).account_headers = {k.lower(): v for k, v in request.headers.items()}
        return await super()._fallback(request)


def test_spot_exec_client_needs_sbe_account_and_a_node_stopped_before_ready_fails(tmp_path: Path):
    k = load_klines("ETHUSDT", "2025-06-01T00:00", "2025-06-01T02:00", market="spot")
    srv = HeaderLog({"ETHUSDT": k}, bar_seconds=0.3, market="spot", hmac_keys={KEY: SECRET}).start()
    cfg = tmp_path / "spot.toml"
    cfg.write_text(f'''name = "spot_live"
bar_types = ["ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"]
[[venues]]
name = "BINANCE"
account_type = "CASH"
starting_balances = ["10000 USDT"]
[[strategies]]
strategy_path = "{REPO_ROOT / 'tests/fixtures/live_scripted.py'}:ScriptedOrders"
[strategies.params]
instrument_id = "ETHUSDT.BINANCE"
bar_type = "ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
script = "2:BUY:0.0100"
[live]
enabled = true
trader_id = "LS-{uuid.uuid4().hex[:8]}"
base_url_http = "{srv.base_url_http}"
base_url_ws = "{srv.base_url_ws}"
''')
    env = {**os.environ, "NAUTILUS_LIVE_OFFLINE": "1", "BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}
    try:
        p = subprocess.run([sys.executable, "-m", "nautilus_app", "live", str(cfg), "--results-dir",
                            str(tmp_path / "results"), "--max-seconds", "10", "--i-understand-this-trades-real-money"],
                           capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
    finally:
        srv.stop()
    assert "LIVE TRADING on BINANCE (spot" in p.stdout
    # what is missing in the stand-in: the SBE account answer (and after it the WS-API user-data stream)
    assert HeaderLog.account_headers.get("accept") == "application/sbe"
    assert HeaderLog.account_headers.get("x-mbx-sbe") == "3:5"
    assert any(u.startswith("GET /api/v3/account?") for u in srv.stats.unhandled)
    # a session that never got connected is a failure (exit 1), and no order was sent
    assert p.returncode == 1, p.stderr[-3000:]
    assert "stopped before the node was ready: the BINANCE data/execution clients were not connected" in p.stderr
    assert srv.standin.orders_received == []
    run = next((tmp_path / "results").glob("live-*"))
    st = json.loads((run / "status.json").read_text())
    assert st["failed"].startswith("stopped before the node was ready") and st["running"] is False
    assert KEY not in all_text(run) + p.stdout + p.stderr and SECRET not in all_text(run) + p.stdout + p.stderr
