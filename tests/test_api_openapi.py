"""The OpenAPI document (``GET /api/openapi.json``) against the real running server (werkzeug in a thread,
real HTTP): schemathesis generates requests for every documented operation (valid and invalid
parameters and bodies, a bounded number per operation) and validates every answer's status code,
content type, headers and body against the document; no answer may be a 5xx. Then, by hand: every
API route is documented and every documented route exists; the per-run tables (trades, fills, orders,
positions, funding) and their CSV variants equal the Parquet files read with pandas; one time format;
sweep trials by relative id; a failed run answers with its error; DELETE cancels a job.

The server runs a real 2-day backtest of Binance BTCUSDT 1m bars (shared mirror). Its job runner uses a
stand-in worker (a shell script: fails at once for configs named ``fail*``, else sleeps) so that the
backtests schemathesis manages to queue never run a simulation.
"""

from __future__ import annotations

import io
import json
import shutil
import stat
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from nautilus_app.testkit.dash_testing import SPOT_BAR, serve_app, spot_config

EXAMPLES = 25  # generated cases per operation and mode (about 25 operations: ~40 s on a loaded machine)
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"
TRIAL = "research/ema_sweep/trial-0001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from catalog.binance_vision import import_binance_vision
    from core.paths import shared_data_dir
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import parse_config

    root = tmp_path_factory.mktemp("openapi")
    catalog, results = root / "catalog", root / "results"
    import_binance_vision(catalog, base_url=shared_data_dir() / "binance-vision", market="spot", symbols=("BTCUSDT",),
                          interval="1m", start="2025-06-01", end="2025-06-04", kinds=("klines",))
    run_id = run_backtest(parse_config(spot_config(catalog, name="oa", start="2025-06-01", end="2025-06-03",
                                                   fast=5, slow=20)),
                          results_root=results, progress=False).run_id
    # a sweep trial: a results folder below the top level, as the research registry writes them
    shutil.copytree(results / run_id, results / TRIAL)
    worker = root / "standin_worker.sh"
    worker.write_text('#!/bin/sh\nif grep -q \'^name = "fail\' "$3"; then\n'
                      '  echo "Traceback (most recent call last):" >&2\n'
                      '  echo "error: stand-in worker: this run fails on purpose" >&2\n  exit 1\nfi\nsleep 120\n')
    worker.chmod(worker.stat().st_mode | stat.S_IEXEC)
    with serve_app(results, catalog, warm_runs=0) as (url, app):
        app._nautilus_ctx.jobs.python = str(worker)  # type: ignore[attr-defined]
        yield {"url": url, "catalog": catalog, "results": results, "run_id": run_id, "app": app}


@pytest.fixture(scope="module")
def api_schema(server: dict):
    return schemathesis.openapi.from_url(server["url"] + "/api/openapi.json")


def test_every_operation_conforms(api_schema) -> None:
    """Every documented operation, with its documented examples and with generated valid and invalid
    requests (at most :data:`EXAMPLES` of each, derandomised): no 5xx; status code, content type,
    headers and body as documented; invalid data refused. (Schemathesis' pytest plugin does not load
    under pytest 9, so the operations are driven here with its strategies.)"""
    from hypothesis import given

    failures, operations, calls, statuses = [], 0, [0], set()
    for result in api_schema.get_all_operations():
        op = result.ok()
        operations += 1
        strategies = [("examples", s) for s in op.get_strategies_from_examples()]
        strategies += [(mode.value, op.as_strategy(generation_mode=mode)) for mode in GenerationMode]
        for label, strategy in strategies:
            @given(strategy)
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            def check(case) -> None:
                calls[0] += 1
                response = case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])
                statuses.add((case.operation.label, response.status_code))

            try:
                check()
            except Unsatisfiable:
                assert label == "negative" and not list(op.iter_parameters()), op.label  # nothing to make invalid
            except Exception as e:  # noqa: BLE001 - collected: every operation is tried
                failures.append(f"{op.label} [{label}]: {type(e).__name__}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)
    assert operations >= 20 and calls[0] >= 10 * operations
    # the examples reached real data: every run table, the equity and the candles answered 200 at least once
    ok = {label for label, code in statuses if code == 200}
    assert {f"GET /api/runs/{{id}}/{t}" for t in ("trades", "fills", "orders", "positions", "funding", "equity",
                                                  "metrics", "config")} | {"GET /api/ohlcv"} <= ok, sorted(ok)
    print(f"{calls[0]} requests, {len(statuses)} (operation, status) pairs")


def get(server: dict, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    req = urllib.request.Request(server["url"] + path, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def get_json(server: dict, path: str, method: str = "GET") -> tuple[int, object]:
    status, ctype, body = get(server, path, method)
    assert ctype.startswith("application/json"), (path, ctype)
    return status, json.loads(body)


def test_document_lists_every_route(server: dict) -> None:
    """Documented paths/methods == the server's /api routes (Flask URL map, the catch-all left out)."""
    import re

    status, doc = get_json(server, "/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    documented = {(re.sub(r"\{\w+\}", "<>", p), m.upper()) for p, ops in doc["paths"].items() for m in ops}
    served = set()
    for rule in server["app"].server.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.endpoint != "api.unknown":
            path = re.sub(r"<[^>]+>", "<>", rule.rule)
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served


@pytest.mark.parametrize("table", ["trades", "fills", "orders", "positions", "funding"])
def test_tables_and_csv_equal_the_parquet_files(server: dict, table: str) -> None:
    folder = server["results"] / server["run_id"]
    path = folder / f"{table}.parquet"
    expected = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    status, page = get_json(server, f"/api/runs/{server['run_id']}/{table}?limit=3&offset=1")
    assert status == 200 and page["total"] == len(expected)
    assert page["columns"] == [str(c) for c in expected.columns]
    assert len(page[table]) == min(3, max(0, len(expected) - 1))
    status, ctype, body = get(server, f"/api/runs/{server['run_id']}/{table}?format=csv")
    assert status == 200 and ctype.startswith("text/csv")
    if expected.empty:
        assert body.strip() == b"" or len(pd.read_csv(io.BytesIO(body))) == 0
        return
    got = pd.read_csv(io.BytesIO(body), float_precision="round_trip")
    assert list(got.columns) == [str(c) for c in expected.columns] and len(got) == len(expected)
    for c in expected.columns:
        col = expected[c]
        if pd.api.types.is_datetime64_any_dtype(col):
            assert got[c].str.match(ISO).all()
            assert (pd.to_datetime(got[c], utc=True) == col.dt.tz_convert("UTC")).all()  # nanoseconds kept
            assert [r[c] for r in page[table]] == got[c].iloc[1:4].tolist()
        elif str(c).startswith("ts_") and pd.api.types.is_integer_dtype(col):  # orders' ts_init: int ns
            assert (pd.to_datetime(got[c], utc=True).astype("int64") == col).all()
        elif pd.api.types.is_float_dtype(col):
            assert got[c].to_numpy() == pytest.approx(col.to_numpy(), rel=0, abs=0, nan_ok=True)  # exact


def test_one_time_format(server: dict) -> None:
    rid = server["run_id"]
    m = json.loads((server["results"] / rid / "metrics.json").read_text())
    status, metrics = get_json(server, f"/api/runs/{rid}/metrics")
    assert metrics["start"].endswith("Z") and pd.Timestamp(metrics["start"]) == pd.Timestamp(m["start"])
    status, runs = get_json(server, "/api/runs")
    row = next(r for r in runs if r["run_id"] == rid)
    assert all(pd.Series([row["start"], row["end"], row["created"]]).str.match(ISO))
    eq = pd.read_parquet(server["results"] / rid / "equity.parquet")
    status, e = get_json(server, f"/api/runs/{rid}/equity?max_points=0")
    assert e["columns"][0] == "ts" and e["data"][0][0] == eq["ts"].iloc[0].strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    assert (pd.to_datetime([r[0] for r in e["data"]], utc=True) == eq["ts"]).all()
    status, o = get_json(server, "/api/ohlcv?symbol=BTCUSDT.BINANCE&timeframe=1h&start=2025-06-02&limit=2")
    assert [r[0] for r in o["data"]] == ["2025-06-02T00:00:00.000000000Z", "2025-06-02T01:00:00.000000000Z"]
    status, syms = get_json(server, "/api/catalog/symbols")
    # catalog bars close at the minute's end: the first stored close is 00:01 of the first day
    assert syms[0]["first"] == "2025-06-01T00:01:00.000000000Z"


def test_sweep_trials_by_relative_id(server: dict) -> None:
    status, runs = get_json(server, "/api/runs")
    assert TRIAL not in [r["run_id"] for r in runs]
    status, runs = get_json(server, "/api/runs?trials=true")
    assert TRIAL in [r["run_id"] for r in runs]
    on_disk = json.loads((server["results"] / TRIAL / "metrics.json").read_text())
    for path in (f"/api/runs/{TRIAL}", "/api/runs/" + TRIAL.replace("/", "%2F")):
        status, st = get_json(server, path)
        assert status == 200 and st["status"] == "done" and st["metrics"]["trades"] == on_disk["trades"]
    status, t = get_json(server, f"/api/runs/{TRIAL}/trades?limit=1")
    assert status == 200 and t["total"] == on_disk["trades"]
    status, body = get_json(server, "/api/runs/research/../etc/metrics")
    assert status in (400, 404)


def _submit(server: dict, name: str) -> str:
    cfg = spot_config(server["catalog"], name=name, start="2025-06-01", end="2025-06-02")
    req = urllib.request.Request(server["url"] + "/api/backtests", data=json.dumps(cfg).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 202
        return json.loads(r.read())["id"]


def _wait(server: dict, job_id: str, states: set[str]) -> dict:
    t_end = time.time() + 60
    while time.time() < t_end:
        status, st = get_json(server, f"/api/runs/{job_id}")
        if st["status"] in states:
            return st
        time.sleep(0.1)
    raise AssertionError(f"{job_id} never reached {states}: {st}")


def test_failed_run_answers_with_its_error(server: dict) -> None:
    job_id = _submit(server, "fail_me")
    st = _wait(server, job_id, {"failed"})
    assert st["error"] == "stand-in worker: this run fails on purpose"
    assert "Traceback" in st["log_tail"] and pd.Series([st["submitted"], st["finished"]]).str.match(ISO).all()
    for sub in ("metrics", "trades", "fills", "equity", "config"):
        status, body = get_json(server, f"/api/runs/{job_id}/{sub}")
        assert status == 404, body  # not 409: it will never have results
        assert body["status"] == "failed" and body["job_error"] == st["error"] and st["error"] in body["error"]
    status, body = get_json(server, f"/api/backtests/{job_id}", "DELETE")
    assert status == 409 and body["status"] == "failed"


def test_delete_cancels_a_running_and_a_queued_job(server: dict) -> None:
    runner = server["app"]._nautilus_ctx.jobs
    first, second = _submit(server, "slow_a"), _submit(server, "slow_b")
    _wait(server, first, {"running"})
    proc = runner._procs[first]
    assert get_json(server, f"/api/runs/{first}/metrics")[0] == 409  # running: results not there yet
    status, body = get_json(server, f"/api/backtests/{second}", "DELETE")
    assert status == 200 and body["status"] == "cancelled"
    status, body = get_json(server, f"/api/backtests/{first}", "DELETE")
    assert status == 200 and body["status"] == "cancelled"
    assert proc.wait(timeout=20) != 0  # the worker process was killed
    time.sleep(0.3)
    assert runner.get(second).started is None  # never started
    assert get_json(server, f"/api/backtests/{first}", "DELETE")[0] == 409  # already cancelled
    assert get_json(server, "/api/backtests/no-such-job", "DELETE")[0] == 404
    assert get_json(server, f"/api/backtests/{server['run_id']}", "DELETE")[0] == 409  # a finished run


def test_submission_checks_the_data_before_queueing(server: dict) -> None:
    def post(cfg: dict) -> tuple[int, dict]:
        req = urllib.request.Request(server["url"] + "/api/backtests", data=json.dumps(cfg).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    before = len(server["app"]._nautilus_ctx.jobs.list())
    cat = server["catalog"]
    status, body = post(spot_config(cat, start="2024-01-01", end="2024-01-05"))  # no stored bars then
    assert status == 400 and body["field"] == "start"
    eth = SPOT_BAR.replace("BTCUSDT", "ETHUSDT")
    cfg = spot_config(cat, start="2025-06-01", end="2025-06-02")
    cfg["bar_types"] = [eth]
    cfg["strategies"][0]["params"] |= {"instrument_id": "ETHUSDT.BINANCE", "bar_type": eth}
    status, body = post(cfg)  # an instrument the catalog does not hold
    assert status == 400 and body["field"] == "bar_types[0]"
    status, body = post(spot_config(cat, start="2025-06-01", end="2025-06-02", fast=30, slow=10))
    assert status == 400 and body["field"] == "strategies[0].params.fast_period"
    assert len(server["app"]._nautilus_ctx.jobs.list()) == before  # nothing queued
