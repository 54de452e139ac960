"""Issue 20, API side: hostile and clumsy requests get a 4xx naming the field (never a 500 or a
hang), streamed bodies are capped, wrong methods get 405, and a token guards non-loopback servers.
Real HTTP (werkzeug in a thread, http.client) over a catalog of real BTCUSDT 1m bars."""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app.testkit.dash_testing import serve_app

BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("apih")
    import_binance_vision(root / "cat", base_url=shared_data_dir() / "binance-vision", symbols=["BTCUSDT"],
                          start="2025-06-01", end="2025-06-02")
    (root / "res").mkdir()
    with serve_app(root / "res", root / "cat", warm_runs=0) as (url, app):
        yield url.split("//", 1)[1], app


def request(host: str, method: str, path: str, body: object = None, headers: dict | None = None,
            chunks: list[bytes] | None = None) -> tuple[int, dict, dict]:
    import http.client

    c = http.client.HTTPConnection(host, timeout=60)
    h = dict(headers or {})
    if chunks is not None:
        c.putrequest(method, path)
        c.putheader("Transfer-Encoding", "chunked")
        c.putheader("Content-Type", "application/json")
        c.endheaders()
        try:
            for ch in chunks:
                c.send(b"%x\r\n%s\r\n" % (len(ch), ch))
            c.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: fine, the answer is what counts
    else:
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    return r.status, json.loads(data) if data else {}, dict(r.getheaders())


def cfg(**kw) -> dict:
    c = {"name": "h", "start": "2025-06-01", "end": "2025-06-02", "bar_types": [BAR],
         "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
         "strategies": [{"name": "ema_cross", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BAR,
                                                         "fast_period": 10, "slow_period": 30}}]}
    c.update(kw)
    return c


def params(**kw) -> dict:
    return cfg(strategies=[{"name": "ema_cross", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BAR,
                                                            "fast_period": 10, "slow_period": 30} | kw}])


def test_chunked_body_is_capped_without_reading_it_all(server) -> None:
    host, _ = server
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    status, body, _ = request(host, "POST", "/api/backtests", chunks=[b"[" * 65536] * 64)  # 4 MB streamed
    assert status == 413 and body["field"] == "body"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 64 * 1024  # kB: far below 4 MB x copies
    status, body, _ = request(host, "POST", "/api/backtests", body=b" " * (300 * 1024))
    assert status == 413 and body["field"] == "body"
    # a small chunked body is read normally (and validated)
    status, body, _ = request(host, "POST", "/api/backtests", chunks=[json.dumps(cfg(name="../x")).encode()])
    assert status == 400 and body["field"] == "name"


@pytest.mark.parametrize("raw,status,field", [
    (b"[" * 100_000 + b"]" * 100_000, 400, "body"),                       # deeply nested
    (b'{"a":' * 40 + b"1" + b"}" * 40, 400, "body"),
    (json.dumps(cfg()).replace('["100000 USDT"]', "Infinity").encode(), 400, "body"),
    (json.dumps(cfg()).replace('"fast_period": 10', '"fast_period": NaN').encode(), 400, "body"),
    (json.dumps(cfg()).replace('"fast_period": 10', '"fast_period": 1e999').encode(), 400,
     "strategies[0].params.fast_period"),
    (json.dumps(cfg(name="a\u0000b")).encode(), 400, "name"),
    (b'{"name": "\xff"}', 400, "body"),                                     # not UTF-8
    (b"[1, 2]", 400, "body"),
    (b"", 400, "body"),
])
def test_malformed_bodies(server, raw: bytes, status: int, field: str) -> None:
    got, body, _ = request(server[0], "POST", "/api/backtests", body=raw)
    assert (got, body.get("field")) == (status, field), body


@pytest.mark.parametrize("config,field", [
    (cfg(end="9999-12-31"), "end"),                                          # far-future end: was a 500
    (cfg(start="nan"), "start"),
    (cfg(venues=[{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["inf USDT"]}]),
     "venues[0].starting_balances[0]"),
    (cfg(venues=[{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["NaN USDT"]}]),
     "venues[0].starting_balances[0]"),
    (params(fast_period="abc"), "strategies[0].params.fast_period"),         # wrong types, validated at submit
    (params(fast_period=10.5), "strategies[0].params.fast_period"),
    (params(fast_period=[1]), "strategies[0].params.fast_period"),
    (params(instrument_id="BTCUSDT.BINANCE\u0000"), "strategies[0].params.instrument_id"),
    (cfg(name=5), "name"),
    (cfg(venues="x"), "venues"),
    (cfg(strategies={"a": 1}), "strategies"),
    ({"strategy": 5, "params": {}}, "strategy"),
    ({"strategy": "ema_cross", "params": [1]}, "params"),
])
def test_bad_values_are_4xx_naming_the_field(server, config: dict, field: str) -> None:
    got, body, _ = request(server[0], "POST", "/api/backtests", body=config)
    assert got == 400, body
    assert body["field"] == field, body


@pytest.mark.parametrize("path,field", [
    ("/api/ohlcv?symbol=BTC%00USDT", "symbol"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&end=99999999999999999", "end"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&start=9999-01-01", "start"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&symbol=ETHUSDT", "symbol"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&limit=99999999999999999999999", "limit"),
    ("/api/runs/abc%00/metrics", "id"),
])
def test_bad_query_values(server, path: str, field: str) -> None:
    got, body, _ = request(server[0], "GET", path)
    assert got == 400 and body["field"] == field, body


@pytest.mark.parametrize("method,path,allow", [
    ("PUT", "/api/backtests", "GET, POST"),
    ("DELETE", "/api/runs/x", "GET"),
    ("POST", "/api/health", "GET"),
    ("PATCH", "/api/ohlcv", "GET"),
])
def test_wrong_method_is_405(server, method: str, path: str, allow: str) -> None:
    got, body, headers = request(server[0], method, path, body={} if method != "DELETE" else None)
    assert got == 405 and headers.get("Allow") == allow, body


def test_no_submission_was_queued(server) -> None:
    """None of the requests above reached the job queue."""
    assert server[1]._nautilus_ctx.jobs.list() == []


def test_token_required_off_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dash_ui.app import create_app, is_loopback, resolve_token

    monkeypatch.delenv("NAUTILUS_DASH_TOKEN", raising=False)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("192.168.1.5")
    assert resolve_token("127.0.0.1") == (None, "none (loopback only)")
    tok, origin = resolve_token("0.0.0.0")
    assert origin == "generated for this start" and len(tok) >= 24
    monkeypatch.setenv("NAUTILUS_DASH_TOKEN", "s3cret-token-from-env")
    assert resolve_token("0.0.0.0")[0] == "s3cret-token-from-env"
    f = tmp_path / "tok"
    f.write_text("token-in-a-file-0123456789\n")
    assert resolve_token("0.0.0.0", f)[0] == "token-in-a-file-0123456789"
    f.write_text("short")
    with pytest.raises(ValueError, match="at least 16"):
        resolve_token("0.0.0.0", f)

    import werkzeug.test

    (tmp_path / "res").mkdir()
    app = create_app(tmp_path / "res", tmp_path / "cat", warm_runs=0, auth_token="abcdefghijklmnop1234")
    try:
        client = werkzeug.test.Client(app.server)
        r = client.get("/api/health")
        assert r.status_code == 401 and r.json["field"] == "token"
        assert client.get("/").status_code == 401  # pages too
        assert client.get("/api/health", headers={"Authorization": "Bearer wrong-token-xxxxxxx"}).status_code == 401
        assert client.get("/api/health", headers={"Authorization": "Bearer abcdefghijklmnop1234"}).status_code == 200
        assert client.get("/api/health", headers={"X-Auth-Token": "abcdefghijklmnop1234"}).status_code == 200
        r = client.get("/api/health?token=abcdefghijklmnop1234")  # a browser's first visit: sets the cookie
        assert r.status_code == 200 and "nautilus_token=abcdefghijklmnop1234" in r.headers["Set-Cookie"]
        assert client.get("/api/health").status_code == 200  # the cookie from now on
    finally:
        app._nautilus_ctx.jobs.shutdown()


def test_dash_serve_prints_token_on_all_interfaces(tmp_path: Path) -> None:
    """`nautilus-app dash --host 0.0.0.0` generates and prints a token (checked up to the print)."""
    import subprocess
    import sys
    import time

    from core.paths import REPO_ROOT
    from nautilus_app.testkit.dash_testing import free_port

    env = {k: v for k, v in os.environ.items() if k != "NAUTILUS_DASH_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "nautilus_app", "dash", "--host", "0.0.0.0", "--port",
                             str(free_port()), "--results-dir", str(tmp_path), "--catalog", str(tmp_path / "cat"),
                             "--warm-runs", "0"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines, t_end = [], time.time() + 120
        while time.time() < t_end:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("token (generated for this start): "):
                assert len(line.split(": ", 1)[1].strip()) >= 24
                break
        else:
            pytest.fail("no token printed: " + "".join(lines))
    finally:
        proc.kill()
        proc.wait()
