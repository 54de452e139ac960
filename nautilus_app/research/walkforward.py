"""Walk-forward analysis: rolling in-sample optimisation, out-of-sample evaluation, a held-out final period.

Windows (all UTC, lengths in days, ``end`` exclusive)::

    holdout      = [end - holdout_days, end)                 (if holdout_days > 0)
    wf_end       = end - holdout_days
    window k     : train = [train_start_k, start + k*step + train_days)      train_start_k = start (anchored)
                                                                             or start + k*step (rolling)
                   test  = [train_end_k, train_end_k + test_days)
    windows k = 0, 1, ... while test_end_k <= wf_end                          (step defaults to test_days)

For each window the sweep (grid / random / optuna over the same space) runs on the train range as its
own registry sweep ``<name>/w<k>``; the best point by the objective (mean over shards) is then run on
the test range (run kind ``oos``). The parameters chosen in the **last** window (the ones you would
trade next) are run once on the holdout (kind ``holdout``); the holdout is never seen by any
optimisation.

Stitched out-of-sample curve: each OOS run starts from the configured balance ``S``; its equity is
normalised by its starting equity and chained (compounded) onto the end value of the previous window,
``stitched(t) = S x prod_{j<k} (E_j(end) / S_j) x E_k(t) / S_k`` for t in window k. With several shards
the stitched curves are averaged (equal weight). Trade PnL, fees and funding of window k are scaled
by the same chain factor, so the combined metrics (``nautilus_app.metrics.compute_metrics``) are
consistent with the curve.

Walk-forward efficiency = mean over windows of (OOS total return / test_days) divided by the mean of
(IS total return of the chosen point / train_days): the share of the in-sample return rate that
survived out of sample (1 = all of it; <= 0 = none).

Each OOS window is a fresh backtest: indicators warm up again inside the window and positions are
closed at its end (the runner has no warm-up period), which costs some trades at the boundaries.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nautilus_app import metrics as metrics_mod
from nautilus_app.housekeeping import mark_owner
from nautilus_app.research.execution import Dispatcher, make_executor
from nautilus_app.research.registry import Registry
from nautilus_app.research.spec import Sweep
from nautilus_app.research.sweep import (
    INSTANCE_KEYS,
    _drain,
    _release_and_queue,
    open_study,
    prepare_points,
    run_sweep,
    single_strategy_config,
)


@dataclass(frozen=True)
class Window:
    """One walk-forward window (UTC timestamps, ends exclusive)."""

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def walk_forward_windows(start: str | pd.Timestamp, end: str | pd.Timestamp, *, train_days: float, test_days: float,
                         step_days: float | None = None, anchored: bool = False,
                         holdout_days: float = 0.0) -> tuple[list[Window], tuple[pd.Timestamp, pd.Timestamp] | None]:
    """Windows and the holdout range as in the module docstring.

    Raises:
        ValueError: no complete window fits (train + test longer than the period minus the holdout).
    """
    t0, t1 = _utc(start), _utc(end)
    train, test = pd.Timedelta(train_days, unit="D"), pd.Timedelta(test_days, unit="D")
    step = pd.Timedelta(step_days if step_days is not None else test_days, unit="D")
    wf_end = t1 - pd.Timedelta(holdout_days, unit="D")
    holdout = (wf_end, t1) if holdout_days > 0 else None
    windows = []
    k = 0
    while True:
        train_end = t0 + k * step + train
        test_end = train_end + test
        if test_end > wf_end:
            break
        windows.append(Window(k, t0 if anchored else t0 + k * step, train_end, train_end, test_end))
        k += 1
    if not windows:
        raise ValueError(f"walk_forward: no window of {train_days} + {test_days} days fits in {t0} -> {wf_end} "
                         f"(period minus {holdout_days} holdout days)")
    return windows, holdout


@dataclass
class WalkForwardResult:
    """Outcome of :func:`run_walk_forward`.

    Attributes:
        name: Study name. windows: one row per window (dates, chosen params, IS and OOS numbers).
        oos_equity: Stitched OOS equity (USDT) with ``benchmark_equity``, indexed by bar close time.
        oos_metrics: ``compute_metrics`` of the stitched curve. holdout: holdout metrics (or None).
        efficiency: Walk-forward efficiency (see module docstring; None if undefined).
        report_path: Folder with ``windows.csv``, ``oos_equity.parquet``, ``report.json``.
    """

    name: str
    windows: pd.DataFrame
    oos_equity: pd.DataFrame
    oos_metrics: dict[str, Any]
    holdout: dict[str, Any] | None
    efficiency: float | None
    report_path: Path
    wall_seconds: float


def _utc(x: str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(x)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def run_walk_forward(sweep: Sweep, *, registry: Registry | None = None, executor: Any = None,
                     progress: bool = True) -> WalkForwardResult:
    """Run (or resume) the walk-forward study of ``sweep`` (needs its ``[walk_forward]`` table).

    With a ``[universe]`` base config (and no explicit ``shards``) the shards are the bar types of the
    universe's symbols resolved over the study period ``[start, end)``; every window runs every symbol.

    Raises:
        ConfigError: the universe matches no symbol in the study period (naming ``universe.symbols``).
        ValueError: no ``[walk_forward]`` table, no date range, or no window fits.
        RuntimeError: no window produced a chosen parameter set (every IS point failed).
    """
    t_start = time.perf_counter()
    wf = sweep.spec.walk_forward
    if wf is None:
        raise ValueError(f"{sweep.source}: no [walk_forward] table")
    start = wf.start or sweep.base.start
    end = wf.end or sweep.base.end
    if start is None or end is None:
        raise ValueError(f"{sweep.source}: walk_forward needs start and end (key walk_forward.start/end or the "
                         "base config's start/end)")
    windows, holdout = walk_forward_windows(start, end, train_days=wf.train_days, test_days=wf.test_days,
                                            step_days=wf.step_days, anchored=wf.anchored, holdout_days=wf.holdout_days)
    # a [universe] base: the symbols are resolved over the whole study period (every window uses the same)
    sweep = sweep.with_universe_range(start, end)
    reg = registry or Registry.open(sweep.spec.registry)
    own_exec = executor is None
    ex = executor or make_executor(sweep.spec.executor, sweep.spec.workers, sweep.spec.ray_address)
    name = sweep.spec.name
    try:
        parent = open_study(sweep, reg, name=name, kind="walk_forward")
        rows = []
        chosen: list[dict[str, Any] | None] = []
        names = [f"{name}/w{w.index:02d}" for w in windows]
        if sweep.spec.method != "optuna":
            # grid / random: every window's in-sample runs go to the workers at once
            disp_is = Dispatcher(ex, reg, max_attempts=sweep.spec.max_attempts)
            counts = {"runs": 0, "executed": 0, "skipped": 0, "failed": 0}
            for w, wname in zip(windows, names, strict=True):
                s_, e_ = _iso(w.train_start), _iso(w.train_end)
                st = open_study(sweep, reg, name=wname, extra={"start": s_, "end": e_})
                _release_and_queue(reg, disp_is, prepare_points(sweep, st, s_, e_, counts), sweep.spec.lease_seconds,
                                   counts)
            for _ in _drain(disp_is, progress, name):
                pass
            for wname in names:
                reg.finish_sweep(wname, status="done")
        for w, wname in zip(windows, names, strict=True):
            if sweep.spec.method == "optuna":
                run_sweep(sweep, registry=reg, executor=ex, name=wname, start=_iso(w.train_start),
                          end=_iso(w.train_end), progress=progress)
            ranking = reg.sweep_ranking(wname)
            best = None
            if not ranking.empty and not pd.isna(ranking["objective"].iloc[0]):
                best = {"params": ranking["params"].iloc[0], "objective": float(ranking["objective"].iloc[0])}
            chosen.append(best)
            rows.append({"window": w.index, "train_start": w.train_start, "train_end": w.train_end,
                         "test_start": w.test_start, "test_end": w.test_end,
                         "params": None if best is None else best["params"],
                         "is_objective": None if best is None else best["objective"],
                         "is_total_return": None if best is None else float(ranking.iloc[0]["total_return"])})
        # out-of-sample and holdout runs, all at once
        disp = Dispatcher(ex, reg, max_attempts=sweep.spec.max_attempts)
        oos_keys: dict[int, list[str]] = {}
        jobs = []
        plan: list[tuple[int | str, dict[str, Any], str, str]] = []
        for w, best in zip(windows, chosen, strict=True):
            if best is not None:
                plan.append((w.index, best["params"], _iso(w.test_start), _iso(w.test_end)))
        last = next((b for b in reversed(chosen) if b is not None), None)
        if last is None:
            raise RuntimeError(f"walk-forward {name}: no window produced a parameter set (all IS runs failed?)")
        if holdout is not None:
            plan.append(("holdout", last["params"], _iso(holdout[0]), _iso(holdout[1])))
        counts = {"runs": 0, "executed": 0, "skipped": 0, "failed": 0}
        for tag, params, s, e in plan:
            p = {k: v for k, v in params.items() if k not in INSTANCE_KEYS}
            for shard in sweep.shards():
                cfg = single_strategy_config(sweep.base, sweep.spec.strategy, p, shard=shard, start=s, end=e, name=name)
                kind = "holdout" if tag == "holdout" else "oos"
                label = "holdout" if tag == "holdout" else f"w{tag:02d}"
                job, status = parent.prepare(cfg, kind=kind, strategy_names=[sweep.strategy_name], shard=shard,
                                             label=label, trial_number=None if tag == "holdout" else int(tag))
                jobs.append((job, status))
                oos_keys.setdefault(tag, []).append(job.run_key)  # type: ignore[arg-type]
        _release_and_queue(reg, disp, jobs, sweep.spec.lease_seconds, counts)
        for _ in _drain(disp, progress, name):
            pass
        result = _assemble(sweep, reg, parent.results_root / "walk_forward", rows, oos_keys, windows, t_start)
        reg.finish_sweep(name, status="done", summary={
            "oos": result.oos_metrics, "holdout": result.holdout, "efficiency": result.efficiency,
            "windows": len(windows), "report_path": str(result.report_path)})
        return result
    finally:
        if own_exec:
            ex.shutdown()


def stitch_equity(segments: list[tuple[pd.DataFrame, float]], starting_equity: float) -> tuple[pd.DataFrame, list[float]]:
    """Chain equity segments (``equity`` and ``benchmark_equity`` columns, each with its starting equity).

    Returns (stitched frame in USDT starting at ``starting_equity``, chain factor at each segment's start
    = stitched value before the segment / ``starting_equity``).
    """
    parts, factors = [], []
    v, vb = 1.0, 1.0
    for frame, s_k in segments:
        factors.append(v)
        eq = frame["equity"].to_numpy() / s_k * v
        be = frame["benchmark_equity"].to_numpy() / s_k * vb
        parts.append(pd.DataFrame({"equity": eq * starting_equity, "benchmark_equity": be * starting_equity},
                                  index=frame.index))
        v, vb = eq[-1], be[-1]
    return pd.concat(parts), factors


def _load_run(reg: Registry, key: str) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    d = reg.run_detail(key)
    if d["status"] != "done":
        raise RuntimeError(f"run {key[:12]} ({d['label']}) is {d['status']}: {d['error']}")
    from nautilus_app.results import open_results

    run = open_results(Path(d["results_path"]))
    eq = run.table("equity").set_index("ts")
    trades = run.table("trades")
    return d, eq, trades


def _assemble(sweep: Sweep, reg: Registry, out_dir: Path, rows: list[dict[str, Any]], keys: dict[Any, list[str]],
              windows: list, t_start: float) -> WalkForwardResult:
    shards = sweep.shards()
    per_shard_curves = []
    all_trades = []
    fees = funding = 0.0
    S0 = None
    oos_by_window: dict[int, list[dict[str, Any]]] = {}
    for si in range(len(shards)):
        segments, seg_trades, seg_metrics = [], [], []
        for w in windows:
            if w.index not in keys:
                continue
            d, eq, trades = _load_run(reg, keys[w.index][si])
            m = d["metrics"]
            segments.append((eq, float(m["starting_equity"])))
            seg_trades.append(trades)
            seg_metrics.append(m)
            oos_by_window.setdefault(w.index, []).append(d)
        S0 = S0 or segments[0][1]
        curve, factors = stitch_equity(segments, S0)
        per_shard_curves.append(curve)
        for f, t, m in zip(factors, seg_trades, seg_metrics, strict=True):
            t = t.copy()
            for col in ("pnl", "fees", "funding"):
                if col in t.columns:
                    t[col] = t[col] * f
            all_trades.append(t)
            fees += float(m.get("fees_paid_usdt") or 0.0) * f / len(shards)
            funding += float(m.get("funding_paid_usdt") or 0.0) * f / len(shards)
    # equal-weight average of the shards' stitched curves (each carried forward between its own bars)
    combined = pd.DataFrame({
        col: pd.concat([c[col] for c in per_shard_curves], axis=1).sort_index().ffill().bfill().mean(axis=1)
        for col in ("equity", "benchmark_equity")})
    trades = pd.concat(all_trades, ignore_index=True) if all_trades else None
    if trades is not None and len(shards) > 1:
        for col in ("pnl", "fees", "funding"):
            trades[col] = trades[col] / len(shards)
    bench_ret = float(combined["benchmark_equity"].iloc[-1] / S0 - 1.0)
    oos_metrics = metrics_mod.compute_metrics(combined["equity"], trades, fees_paid=fees, funding_paid=funding,
                                              buy_and_hold_return=bench_ret, starting_equity=S0)
    table = pd.DataFrame(rows)
    table["oos_objective"] = [_mean([d["objective"] for d in oos_by_window.get(i, [])]) for i in table["window"]]
    table["oos_total_return"] = [_mean([d["metrics"]["total_return"] for d in oos_by_window.get(i, [])])
                                 for i in table["window"]]
    table["oos_trades"] = [sum(int(d["metrics"]["trades"]) for d in oos_by_window.get(i, [])) or 0
                           for i in table["window"]]
    table["oos_run_keys"] = [keys.get(i, []) for i in table["window"]]
    holdout = None
    if "holdout" in keys:
        ds = [_load_run(reg, k)[0] for k in keys["holdout"]]
        holdout = {"params": table["params"].dropna().iloc[-1],
                   "start": ds[0]["data_start"], "end": ds[0]["data_end"],
                   "objective": _mean([d["objective"] for d in ds]),
                   "total_return": _mean([d["metrics"]["total_return"] for d in ds]),
                   "sharpe": _mean([d["metrics"]["sharpe"] for d in ds]),
                   "max_drawdown": _mean([d["metrics"]["max_drawdown"] for d in ds]),
                   "trades": sum(int(d["metrics"]["trades"]) for d in ds), "run_keys": keys["holdout"]}
    eff = _efficiency(table, sweep)
    wall = time.perf_counter() - t_start
    _write_report(out_dir, table, combined, oos_metrics, holdout, eff, sweep)
    return WalkForwardResult(name=sweep.spec.name, windows=table, oos_equity=combined, oos_metrics=oos_metrics,
                             holdout=holdout, efficiency=eff, report_path=out_dir, wall_seconds=wall)


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals and len(vals) == len(values) else None


def _efficiency(table: pd.DataFrame, sweep: Sweep) -> float | None:
    wf = sweep.spec.walk_forward
    assert wf is not None
    ok = table.dropna(subset=["is_total_return", "oos_total_return"])
    if ok.empty:
        return None
    is_rate = float(np.mean(ok["is_total_return"].astype(float) / wf.train_days))
    oos_rate = float(np.mean(ok["oos_total_return"].astype(float) / wf.test_days))
    return None if is_rate == 0 else oos_rate / is_rate


def _write_report(out_dir: Path, table: pd.DataFrame, curve: pd.DataFrame, oos: dict[str, Any],
                  holdout: dict[str, Any] | None, eff: float | None, sweep: Sweep) -> None:
    """Write ``windows.csv``, ``oos_equity.parquet``, ``report.json`` atomically (staging folder + rename)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    mark_owner(stage)
    t = table.copy()
    t["params"] = t["params"].map(lambda p: json.dumps(p, sort_keys=True))
    t["oos_run_keys"] = t["oos_run_keys"].map(json.dumps)
    t.to_csv(stage / "windows.csv", index=False)
    curve.rename_axis("ts").reset_index().to_parquet(stage / "oos_equity.parquet", index=False)
    report = {"name": sweep.spec.name, "objective": sweep.spec.objective, "direction": sweep.spec.direction,
              "walk_forward": {k: getattr(sweep.spec.walk_forward, k) for k in
                               ("start", "end", "train_days", "test_days", "step_days", "anchored", "holdout_days")},
              "oos_metrics": oos, "holdout": holdout, "efficiency": eff}
    (stage / "report.json").write_text(json.dumps(report, indent=2, default=str))
    old = out_dir.parent / f".{out_dir.name}.old"
    if out_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out_dir, old)
    os.rename(stage, out_dir)
    shutil.rmtree(old, ignore_errors=True)
