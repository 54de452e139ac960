"""The JSON API over real HTTP (werkzeug server in a thread, urllib client), on a real backtest of
Binance BTCUSDT 1m bars. Expected values come from the results folder's files read with pandas here,
or from the raw Binance Vision CSV, never from the API's own code."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.paths import shared_data_dir
from nautilus_app.testkit.dash_testing import SPOT_BAR, build_test_data, serve_app, spot_config


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    catalog, results, run_id = build_test_data(tmp_path_factory.mktemp("api"))
    with serve_app(results, catalog) as (url, app):
        yield {"url": url, "catalog": catalog, "results": results, "run_id": run_id, "app": app}


def call(server: dict, path: str, body: object | None = None, raw: bytes | None = None,
         method: str | None = None) -> tuple[int, object]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(server["url"] + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        assert e.headers.get("Content-Type", "").startswith("application/json"), e.headers
        return e.code, json.loads(e.read())


def same_metrics(api: dict, on_disk: dict) -> bool:
    """metrics.json as the API serves it: equal values, its time strings rewritten in the API's one format
    (ISO 8601 UTC with nanoseconds, ``...000000000Z``) for the same instants."""
    assert api.keys() == on_disk.keys()
    for k, v in on_disk.items():
        if k in ("start", "end", "max_drawdown_peak", "max_drawdown_trough") and isinstance(v, str):
            assert api[k].endswith("Z") and pd.Timestamp(api[k]) == pd.Timestamp(v), k
        else:
            assert api[k] == v, k
    return True


def test_runs_list_and_metrics_match_files(server: dict) -> None:
    status, runs = call(server, "/api/runs")
    assert status == 200
    on_disk = json.loads((server["results"] / server["run_id"] / "metrics.json").read_text())
    (row,) = [r for r in runs if r["run_id"] == server["run_id"]]
    for k in ("total_return", "sharpe", "max_drawdown", "trades", "fees_paid_usdt"):
        assert row[k] == on_disk[k]
    status, metrics = call(server, f"/api/runs/{server['run_id']}/metrics")
    assert status == 200 and same_metrics(metrics, on_disk)
    status, st = call(server, f"/api/runs/{server['run_id']}")
    assert status == 200 and st["status"] == "done" and same_metrics(st["metrics"], on_disk)


def test_trades_and_equity_match_parquet(server: dict) -> None:
    folder = server["results"] / server["run_id"]
    trades = pd.read_parquet(folder / "trades.parquet")
    status, page = call(server, f"/api/runs/{server['run_id']}/trades?limit=5&offset=2")
    assert status == 200 and page["total"] == len(trades) > 5
    assert [t["pnl"] for t in page["trades"]] == pytest.approx(trades["pnl"].iloc[2:7].tolist())
    assert pd.Timestamp(page["trades"][0]["entry_time"]) == trades["entry_time"].iloc[2]

    eq = pd.read_parquet(folder / "equity.parquet")
    status, full = call(server, f"/api/runs/{server['run_id']}/equity?max_points=0")
    assert status == 200 and full["points"] == len(eq) and not full["downsampled"]
    arr = np.array(full["data"])
    assert full["columns"][0] == "ts"
    assert (pd.to_datetime(arr[:, 0], utc=True) == eq["ts"]).all()  # ISO 8601 UTC
    assert arr[:, 1].astype(float) == pytest.approx(eq["equity"].to_numpy())
    status, small = call(server, f"/api/runs/{server['run_id']}/equity?max_points=500")
    assert small["downsampled"] and small["points"] <= 510 and small["raw_points"] == len(eq)
    ys = np.array([r[1] for r in small["data"]])
    # min/max downsampling keeps the extremes and both ends
    assert ys.max() == eq["equity"].max() and ys.min() == eq["equity"].min()
    assert ys[-1] == eq["equity"].iloc[-1] and ys[0] == eq["equity"].iloc[0]


def test_symbols_and_trading_modes(server: dict) -> None:
    folders = sorted(p.name for p in (server["catalog"] / "data" / "bars").iterdir())
    assert folders == sorted([SPOT_BAR, "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"])
    status, syms = call(server, "/api/catalog/symbols")
    assert status == 200
    by_id = {s["instrument_id"]: s for s in syms}
    assert set(by_id) == {"BTCUSDT.BINANCE", "ETHUSDT-PERP.BINANCE_USDM"}
    assert by_id["BTCUSDT.BINANCE"]["trading_mode"] == "spot"
    assert by_id["ETHUSDT-PERP.BINANCE_USDM"]["trading_mode"] == "futures"
    assert by_id["ETHUSDT-PERP.BINANCE_USDM"]["symbol"] == "ETHUSDT"
    status, modes = call(server, "/api/catalog/trading_modes")
    assert status == 200 and modes == ["futures", "spot"]
    status, only = call(server, "/api/catalog/symbols?trading_mode=futures")
    assert [s["instrument_id"] for s in only] == ["ETHUSDT-PERP.BINANCE_USDM"]


def _raw_binance_hourly(day: str) -> pd.DataFrame:
    """Hourly OHLCV of one UTC day built with pandas from the raw Binance Vision kline CSV."""
    z = shared_data_dir() / "binance-vision/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip"
    with zipfile.ZipFile(z) as zf, zf.open(zf.namelist()[0]) as fh:
        df = pd.read_csv(fh, header=None).iloc[:, :6]
    df.columns = ["open_time", "open", "high", "low", "close", "volume"]
    unit = "us" if df["open_time"].iloc[0] > 1e14 else "ms"
    df.index = pd.to_datetime(df["open_time"], unit=unit, utc=True)
    d = df.loc[day:day]
    return d.resample("1h").agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})


def test_ohlcv_matches_raw_binance_csv(server: dict) -> None:
    expected = _raw_binance_hourly("2025-06-03")
    status, out = call(server, "/api/ohlcv?symbol=BTC/USDT&timeframe=1h&start=2025-06-03&end=2025-06-04&limit=100")
    assert status == 200 and out["instrument_id"] == "BTCUSDT.BINANCE" and out["count"] == 24
    got = pd.DataFrame(out["data"], columns=out["columns"])
    assert got["open_time"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00\.000000000Z").all()
    assert (pd.to_datetime(got["open_time"], utc=True) == expected.index).all()
    for c in ("open", "high", "low", "close"):
        assert got[c].to_numpy() == pytest.approx(expected[c].to_numpy(), abs=1e-9)
    assert got["volume"].to_numpy() == pytest.approx(expected["volume"].to_numpy(), rel=1e-9)
    # limit truncates from the start; same candles by instrument id + trading mode
    status, lim = call(server, "/api/ohlcv?symbol=BTCUSDT&trading_mode=spot&timeframe=1h&start=2025-06-03&limit=5")
    assert lim["count"] == 5 and lim["truncated"] and lim["data"] == out["data"][:5]


@pytest.mark.parametrize("path,status,field", [
    ("/api/ohlcv?timeframe=1h", 400, "symbol"),
    ("/api/ohlcv?symbol=ETHUSDT&trading_mode=spot", 404, "symbol"),  # ETHUSDT is only a perpetual here
    ("/api/ohlcv?symbol=DOGEUSDT.BINANCE", 404, "symbol"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&timeframe=7m", 400, "timeframe"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&limit=0", 400, "limit"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&limit=abc", 400, "limit"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&start=yesterdayish", 400, "start"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&start=2025-06-05&end=2025-06-04", 400, "end"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&bogus=1", 400, "bogus"),
    ("/api/ohlcv?symbol=BTCUSDT.BINANCE&trading_mode=margin", 400, "trading_mode"),
    ("/api/runs/no-such-run", 404, "id"),
    ("/api/runs/no-such-run/trades", 404, "id"),
    ("/api/runs/..%2Fetc/metrics", 400, "id"),  # path converter: ../ reaches the run-id check
    ("/api/catalog/symbols?trading_mode=options", 400, "trading_mode"),
    ("/api/does-not-exist", 404, None),
])
def test_bad_get_requests(server: dict, path: str, status: int, field: str | None) -> None:
    got, body = call(server, path)
    assert got == status, body
    assert body["field"] == field and body["error"]


def test_bad_run_trades_params(server: dict) -> None:
    got, body = call(server, f"/api/runs/{server['run_id']}/trades?limit=-1")
    assert got == 400 and body["field"] == "limit"
    got, body = call(server, f"/api/runs/{server['run_id']}/equity?max_points=x")
    assert got == 400 and body["field"] == "max_points"


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c["venues"][0].__setitem__("taker_fee", 0.5), "venues[0].taker_fee"),
    (lambda c: c["strategies"][0].__setitem__("name", "no_such_strategy"), "strategies[0].name"),
    (lambda c: c["strategies"][0]["params"].__setitem__("foo", 1), "strategies[0].params.foo"),
    (lambda c: c.__setitem__("name", "../escape"), "name"),
    (lambda c: c.pop("venues"), "venues"),
    (lambda c: c.__setitem__("end", "2025-06-01"), "end"),
    (lambda c: c.__setitem__("bar_types", ["NOT A BAR TYPE"]), "bar_types[0]"),
    (lambda c: c.__setitem__("catalog", "/somewhere/else"), "catalog"),
    (lambda c: c.__setitem__("unknown_key", 1), "unknown_key"),
])
def test_bad_submissions_name_the_field(server: dict, mutate, field: str) -> None:
    cfg = spot_config(server["catalog"])
    mutate(cfg)
    got, body = call(server, "/api/backtests", cfg)
    assert got == 400, body
    assert body["field"] == field, body


def test_submission_not_json(server: dict) -> None:
    got, body = call(server, "/api/backtests", raw=b"name = 'toml?'")
    assert got == 400 and body["field"] == "body"
    got, body = call(server, "/api/backtests", method="GET")
    assert got == 200 and isinstance(body, list)  # GET lists jobs
    got, body = call(server, "/api/backtests", {"strategy": "ema_cross", "params": {}, "extra": 1})
    assert got == 400 and body["field"] == "extra"


def test_submit_backtest_and_poll_to_done(server: dict) -> None:
    cfg = spot_config(server["catalog"], name="api_run", start="2025-06-03", end="2025-06-05", fast=5, slow=15)
    params = cfg.pop("strategies")[0]["params"]
    cfg.pop("catalog")
    got, body = call(server, "/api/backtests", {"strategy": "ema_cross", "params": params, "config": cfg})
    assert got == 202, body
    run_id = body["id"]
    assert run_id.startswith("api_run-")
    seen = set()
    deadline = time.time() + 180
    while time.time() < deadline:
        got, st = call(server, f"/api/runs/{run_id}")
        assert got == 200
        seen.add(st["status"])
        if st["status"] in ("done", "failed"):
            break
        time.sleep(0.3)
    assert st["status"] == "done", st
    assert seen & {"queued", "running"}
    folder = server["results"] / run_id
    on_disk = json.loads((folder / "metrics.json").read_text())
    assert same_metrics(st["metrics"], on_disk)
    # the run traded the requested window only: 2 days of 1m bars
    eq = pd.read_parquet(folder / "equity.parquet")
    assert len(eq) == 2 * 1440
    got, runs = call(server, "/api/runs")
    assert run_id in [r["run_id"] for r in runs]
    # the stored config.toml is the submitted one (catalog filled in by the server)
    import tomllib

    stored = tomllib.loads((folder / "config.toml").read_text())
    assert stored["strategies"][0]["params"]["fast_period"] == 5
    assert Path(stored["catalog"]) == server["catalog"].resolve()
