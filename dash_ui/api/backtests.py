"""``/api/backtests``: submit a backtest to the app's job runner, list, poll and cancel its jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, jsonify

from dash_ui.api.common import ApiError, parse_json_body, read_body
from dash_ui.api.runs import _check_key, job_json, run_status
from dash_ui.jobs import SubmissionError

if TYPE_CHECKING:
    from dash_ui.context import AppContext


def register(bp: Blueprint, ctx: AppContext) -> None:
    """Add the job routes (``POST``/``GET`` ``/backtests``, ``GET``/``DELETE`` ``/backtests/<id>``)."""

    @bp.post("/backtests")
    def submit():
        body = parse_json_body(read_body())
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object (Content-Type: application/json)", "body")
        if "strategy" in body:
            # short form: {"strategy": name, "params": {...}, "config": {...rest of the config...}}
            extra = set(body) - {"strategy", "params", "config"}
            if extra:
                raise ApiError(400, f"unknown key(s) {sorted(extra)} next to 'strategy' (short form takes "
                                    "strategy, params, config)", sorted(extra)[0])
            cfg = body.get("config") or {}
            if not isinstance(cfg, dict):
                raise ApiError(400, "config must be an object", "config")
            params = body.get("params") or {}
            if not isinstance(params, dict):
                raise ApiError(400, "params must be an object", "params")
            if "strategies" in cfg:
                raise ApiError(400, "give either strategy/params or config.strategies, not both", "strategies")
            if not isinstance(body["strategy"], str) or not body["strategy"]:
                raise ApiError(400, f"strategy = {body['strategy']!r}: expected a strategy name (GET /api/strategies)",
                               "strategy")
            body = {**cfg, "strategies": [{"name": body["strategy"], "params": params}]}
        try:
            job = ctx.jobs.submit(body)
        except SubmissionError as e:
            raise ApiError(400, str(e), e.field) from None
        return jsonify({"id": job.id, "status": job.status, "status_url": f"/api/runs/{job.id}",
                        "page": f"/run/{job.id}"}), 202

    @bp.get("/backtests")
    def list_jobs():
        return jsonify([{k: v for k, v in job_json(j).items() if k != "log_tail"} for j in ctx.jobs.list()])

    @bp.get("/backtests/<path:run_id>")
    def job_status(run_id: str):
        return jsonify(run_status(ctx, run_id))

    @bp.delete("/backtests/<path:run_id>")
    def cancel_job(run_id: str):
        """Cancel a queued (never started) or running (worker killed) job: 200 with the job; 409 when it
        already finished (done, failed, cancelled) or is a run this server did not launch; 404 unknown."""
        _check_key(run_id)
        job = ctx.jobs.get(run_id)
        if job is None:
            if ctx.store.exists(run_id):
                raise ApiError(409, f"id={run_id!r}: a finished run (not a job of this server): nothing to cancel",
                               "id", {"status": "done"})
            raise ApiError(404, f"id={run_id!r}: no such job", "id")
        if job.status not in ("queued", "running"):
            raise ApiError(409, f"id={run_id!r}: job already {job.status}: nothing to cancel", "id",
                           {"status": job.status})
        job = ctx.jobs.cancel(run_id)
        return jsonify({k: v for k, v in job_json(job).items() if k != "config"})
