"""Running universe configs: ``shared`` (one engine) or ``per_symbol`` (one engine per symbol), one folder.

:func:`run_universe` expands a ``[universe]`` config (:mod:`nautilus_app.universe`), then:

* ``mode = "shared"``: the expanded config runs on one engine (one account per venue: portfolio effects,
  cross margin) and writes an ordinary results folder, with the per-instrument table of
  :func:`nautilus_app.metrics.group_breakdown`.
* ``mode = "per_symbol"``: one config per symbol (same strategy ids as in shared mode), each a full
  backtest with the whole starting balance, run in parallel by the sweeps' executors (local process
  pool or Ray; every run recorded in the research registry, resumable). :func:`combine_runs` then writes
  the universe's folder as one account: ``equity = start + sum_i (equity_i - start)`` (each symbol's
  curve carried forward, ``start`` before its first sample), trades, fills and funding concatenated,
  metrics recomputed on that curve, ``by_instrument`` / ``by_strategy`` taken from the symbols' runs.
  For strategies that do not interact (isolated margin, no portfolio rules, enough balance) both modes
  give the same per-symbol results (tests/test_universe.py).

The universe folder holds ``universe.json`` (symbols, mode, wall time, each symbol's run folder) and
``by_symbol.parquet`` beside the usual files; per-symbol runs live in ``<results>/universes/<run_id>/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from core import paths
from nautilus_app.config import BacktestConfig
from nautilus_app.universe import expand_universe, resolve_symbols


@dataclass(frozen=True)
class UniverseOutcome:
    """A finished universe run.

    Attributes:
        run_id / results_path / metrics: as :class:`nautilus_app.backtest.BacktestOutcome`.
        symbols: The symbols run, in order.
        mode: ``shared`` or ``per_symbol``.
        symbol_runs: symbol -> its own results folder (``per_symbol``; empty for ``shared``).
        iterations / orders: data points and orders over all engines.
        coverage: expected vs loaded bars per bar type (:mod:`nautilus_app.coverage`).
        engine_seconds / total_seconds: wall seconds (engines summed / whole call).
    """

    run_id: str
    results_path: Path
    metrics: dict
    symbols: list[str]
    mode: str
    symbol_runs: dict[str, Path]
    iterations: int
    orders: int
    engine_seconds: float
    total_seconds: float
    coverage: list[dict] = field(default_factory=list)


def run_universe(cfg: BacktestConfig, *, results_root: Path | None = None, progress: bool = True,
                 config_text: str | None = None, source: str = "<config>") -> UniverseOutcome:
    """Run a universe config in its ``mode`` and write one results folder for it.

    Raises:
        ConfigError: bad universe (before anything runs or is written).
        nautilus_app.backtest.BacktestFailed: a run failed (shared), or any symbol's run failed
            (per_symbol; the failed symbols and their errors are named; no universe folder is written).
    """
    from nautilus_app.backtest import make_run_id, run_backtest

    t0 = time.perf_counter()
    u = cfg.universe
    assert u is not None
    symbols = resolve_symbols(cfg, source=source)
    expanded = expand_universe(cfg, symbols=symbols, source=source)
    root = Path(results_root) if results_root is not None else paths.results_dir()
    run_id = make_run_id(cfg)
    if u.mode == "shared":
        out = run_backtest(expanded, results_root=root, run_id=run_id, progress=progress, config_text=config_text)
        _write_universe_json(out.results_path, cfg, symbols, {}, time.perf_counter() - t0)
        return UniverseOutcome(run_id, out.results_path, out.metrics, symbols, "shared", {}, out.iterations,
                               out.orders, out.engine_seconds, time.perf_counter() - t0, out.coverage)
    per_symbol = {sym: expand_universe(cfg, symbols=symbols, source=source, only=sym) for sym in symbols}
    runs = _run_per_symbol(cfg, run_id, per_symbol, root, progress)
    final, metrics, info = combine_runs(expanded, run_id, runs, root, config_text=config_text)
    _write_universe_json(final, cfg, symbols, runs, time.perf_counter() - t0)
    return UniverseOutcome(run_id, final, metrics, symbols, "per_symbol", runs, info["iterations"], info["orders"],
                           info["engine_seconds"], time.perf_counter() - t0, info["coverage"])


def _run_per_symbol(cfg: BacktestConfig, run_id: str, configs: dict[str, BacktestConfig], root: Path,
                    progress: bool) -> dict[str, Path]:
    """Run the per-symbol configs with the sweeps' executor; return symbol -> results folder."""
    from nautilus_app.backtest import BacktestFailed
    from nautilus_app.research.execution import Dispatcher, make_executor
    from nautilus_app.research.registry import Registry
    from nautilus_app.research.sweep import Study

    u = cfg.universe
    assert u is not None
    reg = Registry.open(u.registry)
    try:
        sweep_id = reg.ensure_sweep(f"universe/{run_id}", kind="universe",
                                    spec={"config": msgspec.to_builtins(cfg), "symbols": list(configs)})
        study = Study(registry=reg, name=f"universe/{run_id}", sweep_id=sweep_id,
                      results_root=root / "universes" / run_id)
        jobs = {}
        for sym, scfg in configs.items():
            job, _status = study.prepare(scfg, kind="universe", shard=scfg.bar_types[0], label=sym)
            jobs[job.run_key] = (sym, job)
        ex = make_executor(u.executor, u.workers, u.ray_address)
        disp = Dispatcher(ex, reg)
        try:
            for job in (j for _, j in jobs.values()):
                disp.submit(job)
            results = []
            while disp.busy:
                for res in disp.poll(1.0):
                    results.append(res)
                    if progress:
                        sym = jobs[res["run_key"]][0]
                        print(f"universe {cfg.name}: {sym} {res['status']} ({len(results)}/{len(jobs)})",
                              flush=True)
        finally:
            ex.shutdown()
        failed = {jobs[r["run_key"]][0]: r.get("error", "?") for r in results if r["status"] != "done"}
        if failed:
            detail = "; ".join(f"{s}: {str(e).strip().splitlines()[-1] if e else '?'}" for s, e in failed.items())
            raise BacktestFailed(f"universe {cfg.name}: {len(failed)} of {len(jobs)} symbol runs failed: {detail}")
        out = {}
        for key, (sym, job) in jobs.items():
            state = reg.run_state(key)
            path = Path(job.results_root) / job.results_run_id
            out[sym] = path if state is None or not getattr(state, "results_path", None) else Path(state.results_path)
        return out
    finally:
        reg.close()


def _read_equity(path: Path) -> pd.DataFrame:
    from nautilus_app.results import open_results

    df = open_results(path).table("equity")
    ts_col = df.columns[0]
    return df.set_index(pd.to_datetime(df[ts_col], utc=True)).drop(columns=[ts_col])


def combine_runs(expanded: BacktestConfig, run_id: str, runs: dict[str, Path], root: Path, *,
                 config_text: str | None = None) -> tuple[Path, dict, dict]:
    """Write the universe folder of a ``per_symbol`` run from the symbols' folders (atomic rename).

    One account: ``equity(t) = start + sum_i (equity_i(t) - start)`` on the union of the symbols'
    timestamps (each carried forward, ``start`` before its first sample), where ``start`` is the
    venue's starting balance every symbol ran with. Benchmark: the equal-weight basket of the symbols'
    own buy-and-hold sleeves (:func:`nautilus_app.results.buy_and_hold_basket`'s rule). Metrics are
    recomputed on the combined curve and concatenated trades (:func:`nautilus_app.metrics.compute_metrics`);
    ``by_instrument`` / ``by_strategy`` are the symbols' own records.

    Returns:
        (folder, metrics, summary with ``iterations``, ``orders``, ``engine_seconds``).

    Raises:
        FileExistsError: the folder exists already.
    """
    from nautilus_app import metrics as metrics_mod
    from nautilus_app.results import breakdown_frame, open_results, results_digest
    from nautilus_app.results.writer import write_folder

    final = root / run_id
    if final.exists():
        raise FileExistsError(f"results folder {final} already exists")
    eqs, metrics_by, infos = {}, {}, {}
    frames: dict[str, list[pd.DataFrame]] = {k: [] for k in ("trades", "fills", "funding", "liquidations")}
    for sym, path in runs.items():
        eqs[sym] = _read_equity(path)
        run = open_results(path)
        metrics_by[sym] = run.json("metrics.json", required=True)
        infos[sym] = run.json("run.json", required=True)
        for k in frames:
            df = run.table(k)  # empty when the symbol's run has no such file
            if len(df):
                frames[k].append(df)
    start = float(next(iter(metrics_by.values()))["starting_equity"])
    index = pd.DatetimeIndex(sorted(set().union(*(e.index for e in eqs.values()))))
    equity = pd.Series(start, index=index, dtype=float)
    sleeves = []
    for e in eqs.values():
        equity += e["equity"].reindex(index, method="ffill").fillna(start).to_numpy() - start
        sleeves.append((e["benchmark_equity"] / start).reindex(index, method="ffill").fillna(1.0).to_numpy())
    bench = pd.Series(np.mean(np.vstack(sleeves), axis=0), index=index)

    def cat(k: str) -> pd.DataFrame:
        return pd.concat(frames[k], ignore_index=True) if frames[k] else pd.DataFrame()

    trades, fills, funding, liquidations = cat("trades"), cat("fills"), cat("funding"), cat("liquidations")
    fees = sum(float(m.get("fees_paid_usdt") or 0.0) for m in metrics_by.values())
    funding_paid = sum(float(m.get("funding_paid_usdt") or 0.0) for m in metrics_by.values())
    metrics = metrics_mod.compute_metrics(equity, trades if len(trades) else None, fees_paid=fees,
                                          funding_paid=funding_paid, buy_and_hold_return=float(bench.iloc[-1] - 1.0),
                                          starting_equity=start)
    if len(fills):
        metrics.update(metrics_mod.execution_costs(fills, liquidations, funding_paid=funding_paid))
    metrics.update(metrics_mod.open_trades_summary(trades if len(trades) else None))
    metrics["buy_and_hold_by_instrument"] = {k: v for m in metrics_by.values()
                                             for k, v in (m.get("buy_and_hold_by_instrument") or {}).items()}
    metrics["by_strategy"] = [r for m in metrics_by.values() for r in m.get("by_strategy") or []]
    metrics["by_instrument"] = [r for m in metrics_by.values() for r in m.get("by_instrument") or []]
    equity_frame = pd.DataFrame({"equity": equity, "benchmark_equity": bench * start})
    equity_frame["drawdown"] = equity / equity.cummax() - 1.0
    equity_frame.index.name = "ts"
    by_symbol = pd.DataFrame([{"symbol": sym, "run_folder": str(path),
                               **{k: metrics_by[sym].get(k) for k in ("total_return", "sharpe", "max_drawdown",
                                                                      "trades", "fees_paid_usdt", "funding_paid_usdt",
                                                                      "buy_and_hold_return", "final_equity")}}
                              for sym, path in runs.items()])
    summary = {"iterations": sum(int(i.get("iterations") or 0) for i in infos.values()),
               "data_points": sum(int(i.get("data_points") or i.get("iterations") or 0) for i in infos.values()),
               "orders": sum(int(i.get("orders") or 0) for i in infos.values()),
               "engine_seconds": sum(float(i.get("engine_seconds") or 0.0) for i in infos.values()),
               "coverage": [c for i in infos.values() for c in i.get("coverage") or []]}
    info = {"run_id": run_id, "name": expanded.name, "config_digest": expanded.digest(), **summary,
            "engine": "per_symbol universe: one BacktestEngine per symbol, combined as one account",
            "bars_per_second": round(summary["data_points"] / summary["engine_seconds"])
            if summary["engine_seconds"] else None,
            "results_digest": results_digest(fills, metrics) if len(fills) else None}
    texts: dict[str, str | bytes] = {} if config_text is None else {"config.toml": config_text}
    texts["config.json"] = msgspec.json.format(msgspec.json.encode(expanded), indent=2)
    texts["metrics.json"] = json.dumps(metrics, indent=2, default=str)
    texts["run.json"] = json.dumps(info, indent=2)
    tables = {"trades": trades, "fills": fills, "funding": funding, "liquidations": liquidations,
              "by_strategy": breakdown_frame(metrics["by_strategy"], "strategy_id"),
              "by_instrument": breakdown_frame(metrics["by_instrument"], "instrument_id"),
              "by_symbol": by_symbol, "equity": equity_frame.reset_index()}
    write_folder(final, texts=texts, tables=tables)  # staging folder + rename (nautilus_app/results/writer.py)
    return final, metrics, summary


def _write_universe_json(folder: Path, cfg: BacktestConfig, symbols: list[str], runs: dict[str, Path],
                         seconds: float) -> None:
    u = cfg.universe
    assert u is not None
    doc = {"market": u.market, "interval": u.interval, "mode": u.mode, "symbols": symbols,
           "requested": u.symbols, "wall_seconds": round(seconds, 3),
           "symbol_runs": {s: str(p) for s, p in runs.items()}}
    tmp = folder / ".universe.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(folder / "universe.json")
