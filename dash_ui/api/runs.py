"""``/api/runs``: results folders (list, status, metrics, config, tables as JSON pages or CSV, equity)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from flask import Blueprint, Response, jsonify, request

from dash_ui import market
from dash_ui.api.common import (
    MAX_CSV_ROWS,
    MAX_TRADES_LIMIT,
    ApiError,
    _finite,
    _int_arg,
    _records,
    _safe,
    _time_arg,
    _time_columns,
    iso_ns,
    iso_time,
    norm_times,
)
from dash_ui.data import RunNotFound, valid_run_key

if TYPE_CHECKING:
    from dash_ui.context import AppContext


def _check_key(run_id: str) -> None:
    if not valid_run_key(run_id):
        raise ApiError(400, f"id={run_id!r}: not a valid run id (a folder name, or research/<sweep>/<run_id> for "
                            "a sweep trial)", "id")

def job_json(job) -> dict:
    """A job as JSON: times ISO-8601 UTC, the worker log only for failed jobs."""
    d = job.to_dict()
    for k in ("submitted", "started", "finished"):
        d[k] = iso_time(d.get(k))
    d["log_tail"] = (job.log_tail or "")[-2000:] if job.status == "failed" else ""
    return d

def run_status(ctx: AppContext, run_id: str) -> dict:
    """Status of a run id: ``done`` (results folder exists), or the job's state; 404 if unknown."""
    _check_key(run_id)
    job = ctx.jobs.get(run_id)
    if ctx.store.exists(run_id):
        run = ctx.store.get(run_id)
        return {"id": run_id, "status": "done", "progress": 1.0, "stage": "done", "run": norm_times(run.info),
                "metrics": norm_times(run.metrics), "error": None,
                "links": {k: f"/api/runs/{run_id}/{k}" for k in ("metrics", "config", *TABLES, "equity")}
                | {"page": f"/run/{run_id}"}}
    if job is None:
        raise ApiError(404, f"id={run_id!r}: no such run or job", "id")
    return {k: v for k, v in job_json(job).items() if k != "config"}

def _get_run(ctx: AppContext, run_id: str):
    """The results of a run. A queued/running job: 409 (not there yet); a failed or cancelled job: 404 with
    the job's error (``status``, ``job_error``, ``log_tail``); unknown: 404."""
    _check_key(run_id)
    try:
        return ctx.store.get(run_id)
    except RunNotFound:
        job = ctx.jobs.get(run_id)
        if job is not None and job.status in ("queued", "running"):
            raise ApiError(409, f"id={run_id!r}: run is {job.status} ({job.progress:.0%}), results not available "
                                "yet", "id", {"status": job.status}) from None
        if job is not None:
            raise ApiError(404, f"id={run_id!r}: run {job.status}: {job.error}", "id",
                           {"status": job.status, "job_error": job.error,
                            "log_tail": (job.log_tail or "")[-2000:]}) from None
        raise ApiError(404, f"id={run_id!r}: no such run", "id") from None

#: per-run tables served as JSON pages or CSV: name -> (Run method, sort column or None)
TABLES = {"trades": "trades", "fills": "fills", "orders": "orders", "positions": "positions", "funding": "funding"}

def table_of(run, name: str) -> pd.DataFrame:
    """``<name>.parquet`` of a run (empty frame when the run has none: a spot run has no funding)."""
    return run._parquet(TABLES[name])

def csv_text(df: pd.DataFrame) -> str:
    """A table as CSV: header row, times ISO-8601 UTC with nanoseconds, floats in their shortest exact form."""
    return _time_columns(df).to_csv(index=False, lineterminator="\n")


def register(bp: Blueprint, ctx: AppContext) -> None:
    """Add the run routes to the ``api`` blueprint."""

    @bp.get("/runs")
    def runs():
        trials = request.args.get("trials", "false")
        if trials not in ("true", "false"):
            raise ApiError(400, f"trials={trials!r}: expected true or false", "trials")
        df = ctx.store.list_runs(trials=trials == "true")
        return jsonify([{k: norm_times(_safe(v)) for k, v in r.items()} for r in df.to_dict("records")])

    @bp.get("/runs/<path:run_id>/metrics")
    def metrics(run_id: str):
        return jsonify(norm_times(_get_run(ctx, run_id).metrics))

    @bp.get("/runs/<path:run_id>/config")
    def config(run_id: str):
        return jsonify(_get_run(ctx, run_id).config)

    def table(run_id: str, name: str):
        r = _get_run(ctx, run_id)
        fmt = request.args.get("format", "json")
        if fmt not in ("json", "csv"):
            raise ApiError(400, f"format={fmt!r}: expected json or csv", "format")
        t = table_of(r, name)
        if fmt == "csv":
            limit = _int_arg("limit", MAX_CSV_ROWS, 1, MAX_CSV_ROWS)
            offset = _int_arg("offset", 0, 0, 10**9)
            body = csv_text(t.iloc[offset:offset + limit])
            fname = f"{run_id.replace('/', '_')}-{name}.csv"
            return Response(body, mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{fname}"'})
        limit = _int_arg("limit", 1000, 1, MAX_TRADES_LIMIT)
        offset = _int_arg("offset", 0, 0, 10**9)
        page = t.iloc[offset:offset + limit]
        return jsonify({"id": run_id, "total": len(t), "offset": offset, "limit": limit,
                        "columns": [str(c) for c in t.columns], name: _records(page)})

    for _name in TABLES:
        bp.add_url_rule(f"/runs/<path:run_id>/{_name}", f"table_{_name}",
                        lambda run_id, _n=_name: table(run_id, _n), methods=["GET"])

    @bp.get("/runs/<path:run_id>/equity")
    def equity(run_id: str):
        r = _get_run(ctx, run_id)
        max_points = _int_arg("max_points", 5000, 0, 10**8)
        start, end = _time_arg("start"), _time_arg("end")
        if start is not None and end is not None and end < start:
            raise ApiError(400, "end must not be before start", "end")
        a = r.equity_arrays()
        cols = [c for c in ("equity", "benchmark_equity", "drawdown") if c in a]
        if max_points == 0:
            sel = market.window(a, start, None if end is None else end + 1)
            x, ys, raw = sel["ts"], {c: sel[c] for c in cols}, sel["ts"].size
        else:
            x, ys, raw = market.downsample_xy(a["ts"], {c: a[c] for c in cols}, max_points, start, end)
            keep = np.ones(x.size, bool)
            if start is not None:
                keep &= x >= start
            if end is not None:
                keep &= x <= end
            x, ys = x[keep], {c: v[keep] for c, v in ys.items()}
            raw = int(np.count_nonzero((a["ts"] >= (start or -2**62)) & (a["ts"] <= (end or 2**62))))
        times = iso_ns(np.asarray(x, dtype=np.int64)) if x.size else []
        vals = np.c_[tuple(ys[c] for c in cols)] if x.size else np.empty((0, len(cols)))
        return jsonify({"id": run_id, "columns": ["ts", *cols], "points": int(x.size), "raw_points": int(raw),
                        "downsampled": bool(x.size < raw), "method": "minmax (tsdownsample)" if x.size < raw else None,
                        "data": [[t, *map(_finite, row)] for t, row in zip(times, vals, strict=True)]})

    @bp.get("/runs/<path:run_id>")
    def run(run_id: str):
        return jsonify(run_status(ctx, run_id))
