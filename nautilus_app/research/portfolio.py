"""Portfolios: several strategies and symbols in one account, per-strategy contribution, correlation,
and the comparison with running each strategy on its own.

:func:`run_portfolio` runs, in parallel worker processes and recorded in the registry:

* the **portfolio run**: the config as given, every ``[[strategies]]`` entry in one account per venue
  (run kind ``portfolio``);
* one **standalone run** per strategy: only that strategy, only its bar type and venue, the same
  starting balances (run kind ``standalone``).

Contribution of strategy k (USDT, at every bar close t of the portfolio run), from the portfolio run's
fills, funding settlements and bar closes, with the same identity the runner uses for equity
(``nautilus_app.results``)::

    contribution_k(t) = sum over k's fills <= t of (-signed qty x price - commission)
                        + sum over funding settlements <= t of k's positions
                        + sum over instruments of k's position qty(t) x close(t)

so ``sum_k contribution_k(t) = equity(t) - starting equity`` when the starting balances are in USDT;
base-currency starting balances (spot BTC held from the start) are not any strategy's and show up in
``unattributed_usdt``. Strategy returns for the correlation are ``diff(contribution_k) / starting equity``
per ``freq`` period (daily by default); their Pearson correlation matrix is reported.

Comparison: standalone PnL and metrics next to the strategy's contribution inside the portfolio. They
differ because sizing is a fraction of the *shared* account's equity and the strategies share its cash
(on CASH accounts an order can be refused for lack of free balance).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from core import paths
from nautilus_app.config import BacktestConfig
from nautilus_app.housekeeping import mark_owner
from nautilus_app.research.execution import Dispatcher, make_executor
from nautilus_app.research.registry import Registry, sha256_json
from nautilus_app.research.sweep import Study, _drain, _release_and_queue, _slug, single_strategy_config


@dataclass
class PortfolioResult:
    """Outcome of :func:`run_portfolio`.

    Attributes:
        name: Study name. metrics: the portfolio run's metrics.
        contributions: Per-strategy contribution curves (USDT, columns = strategy labels) plus ``total``
            (equity - starting equity) and ``unattributed_usdt``, indexed by bar close time.
        correlation: Pearson correlation of the strategies' ``freq`` returns.
        comparison: One row per strategy: contribution in the portfolio vs standalone run numbers.
        report_path: Folder with ``contributions.parquet``, ``correlation.csv``, ``comparison.csv``, ``report.json``.
    """

    name: str
    metrics: dict[str, Any]
    contributions: pd.DataFrame
    correlation: pd.DataFrame
    comparison: pd.DataFrame
    report_path: Path
    run_key: str
    standalone_keys: list[str]
    wall_seconds: float


def strategy_labels(cfg: BacktestConfig) -> list[str]:
    """``<index>:<type>@<instrument>`` per ``[[strategies]]`` entry (unique, readable)."""
    return [f"{i}:{s.label()}@{s.params.get('instrument_id')}" for i, s in enumerate(cfg.strategies)]


def _tags(cfg: BacktestConfig) -> list[str]:
    # the runner gives entry i the order-id tag f"{i:03d}" unless the params set one; strategy ids end with it
    return [str(s.params.get("order_id_tag", f"{i:03d}")) for i, s in enumerate(cfg.strategies)]


def contributions(cfg: BacktestConfig, results_path: Path) -> pd.DataFrame:
    """Per-strategy contribution curves of a finished multi-strategy run (see the module docstring).

    Returns:
        DataFrame indexed by bar close time (the run's ``equity.parquet`` index) with one column per
        strategy label (:func:`strategy_labels`), ``total`` (equity - starting equity, USDT) and
        ``unattributed_usdt`` (total - sum of strategies).

    Raises:
        ValueError: a fill's strategy id matches no ``[[strategies]]`` entry.
    """
    from nautilus_app.results import open_results, read_bar_closes

    run = open_results(results_path)
    eq = run.table("equity").set_index("ts")["equity"]
    start_equity = float(run.json("metrics.json", required=True)["starting_equity"])
    fills = run.table("fills")
    funding = run.table("funding")
    index = eq.index
    labels = strategy_labels(cfg)
    tags = _tags(cfg)

    def owner(strategy_id: str) -> int:
        for i, tag in enumerate(tags):
            if strategy_id.endswith(f"-{tag}"):
                return i
        raise ValueError(f"{results_path}: fill of strategy {strategy_id!r} matches no [[strategies]] entry")

    from nautilus_trader.model import BarType

    closes: dict[str, pd.Series] = {}
    for bt in cfg.bar_types:
        iid = str(BarType.from_str(bt).instrument_id)
        closes.setdefault(iid, read_bar_closes(cfg, bt).reindex(index, method="ffill"))
    out = pd.DataFrame(index=index)
    if not fills.empty:
        fills = fills.assign(k=fills["strategy_id"].astype(str).map(owner),
                             ts=pd.to_datetime(fills["ts_event"], utc=True))
        sign = np.where(fills["order_side"].astype(str) == "BUY", 1.0, -1.0)
        fills["qty"] = sign * fills["last_qty"].astype(float)
        fills["cash"] = -fills["qty"] * fills["last_px"].astype(float) - fills["commission"].astype(float).fillna(0.0)
        pos_owner = dict(zip(fills["position_id"].astype(str), fills["k"], strict=False))
    else:
        pos_owner = {}
    if not funding.empty:
        funding = funding.assign(k=funding["position_id"].astype(str).map(pos_owner),
                                 ts=pd.to_datetime(funding["ts"], utc=True))
    for k, label in enumerate(labels):
        total = pd.Series(0.0, index=index)
        if not fills.empty:
            fk = fills[fills["k"] == k]
            if not fk.empty:
                total += fk.groupby("ts")["cash"].sum().cumsum().reindex(index, method="ffill").fillna(0.0)
                for iid, g in fk.groupby("instrument_id"):
                    qty = g.groupby("ts")["qty"].sum().cumsum().reindex(index, method="ffill").fillna(0.0)
                    total += np.nan_to_num(qty.to_numpy() * closes[str(iid)].to_numpy())
        if not funding.empty:
            fk = funding[funding["k"] == k]
            if not fk.empty:
                total += fk.groupby("ts")["amount"].sum().cumsum().reindex(index, method="ffill").fillna(0.0)
        out[label] = total
    out["total"] = eq - start_equity
    out["unattributed_usdt"] = out["total"] - out[labels].sum(axis=1)
    return out


def strategy_returns(contrib: pd.DataFrame, labels: list[str], starting_equity: float, freq: str = "1D") -> pd.DataFrame:
    """Per-period returns of each strategy: change of its contribution over the period / starting equity."""
    sampled = contrib[labels].resample(freq, label="right", closed="right").last()
    first = pd.DataFrame([[0.0] * len(labels)], columns=labels, index=[contrib.index[0] - pd.Timedelta(1, "ns")])
    return pd.concat([first, sampled]).diff().iloc[1:] / starting_equity


def run_portfolio(cfg: BacktestConfig, *, name: str, registry: Registry | None = None, executor: Any = None,
                  executor_kind: str = "process", workers: int = 2, ray_address: str | None = None,
                  results_root: Path | None = None, freq: str = "1D", max_attempts: int = 3,
                  progress: bool = True) -> PortfolioResult:
    """Run the portfolio and the standalone runs, then analyse them (see the module docstring).

    Args:
        cfg: A multi-strategy run config. name: study name in the registry (same name + config resumes).
        freq: Return period for the correlation (pandas offset, default ``1D``).
        Others as :func:`nautilus_app.research.sweep.run_sweep`.

    Raises:
        RuntimeError: the portfolio run failed. RegistryError: the name exists with another config.
    """
    t0 = time.perf_counter()
    reg = registry or Registry.open()
    own_exec = executor is None
    ex = executor or make_executor(executor_kind, workers, ray_address)
    try:
        spec = {"portfolio": msgspec.to_builtins(cfg), "freq": freq}
        sweep_id = reg.ensure_sweep(name, kind="portfolio", spec=spec)
        root = Path(results_root) if results_root else paths.results_dir() / "research"
        study = Study(registry=reg, name=name, sweep_id=sweep_id, results_root=root / _slug(name))
        labels = strategy_labels(cfg)
        jobs = [study.prepare(cfg, kind="portfolio", label="portfolio")]
        for i, label in enumerate(labels):
            solo = single_strategy_config(cfg, i, {}, name=f"{cfg.name}-solo{i}")
            jobs.append(study.prepare(solo, kind="standalone", label=label))
        disp = Dispatcher(ex, reg, max_attempts=max_attempts)
        _release_and_queue(reg, disp, jobs, 600.0, {"skipped": 0})
        for _ in _drain(disp, progress, name):
            pass
        main = reg.run_detail(jobs[0][0].run_key)
        if main["status"] != "done":
            raise RuntimeError(f"portfolio {name}: the portfolio run {main['status']}: {main['error']}")
        path = Path(main["results_path"])
        contrib = contributions(cfg, path)
        metrics = main["metrics"]
        start_equity = float(metrics["starting_equity"])
        rets = strategy_returns(contrib, labels, start_equity, freq)
        corr = rets.corr()
        rows = []
        for i, label in enumerate(labels):
            solo = reg.run_detail(jobs[i + 1][0].run_key)
            sm = solo["metrics"] or {}
            pnl = float(contrib[label].iloc[-1])
            rows.append({
                "strategy": label, "portfolio_pnl_usdt": pnl, "portfolio_return_contribution": pnl / start_equity,
                "standalone_status": solo["status"],
                "standalone_pnl_usdt": None if not sm else float(sm["final_equity"]) - float(sm["starting_equity"]),
                "standalone_total_return": sm.get("total_return"), "standalone_sharpe": sm.get("sharpe"),
                "standalone_max_drawdown": sm.get("max_drawdown"), "standalone_trades": sm.get("trades"),
            })
        comparison = pd.DataFrame(rows)
        reg.set_contributions(jobs[0][0].run_key, {i: float(contrib[lab].iloc[-1]) for i, lab in enumerate(labels)})
        solo_pnl = comparison["standalone_pnl_usdt"].dropna()
        summary = {
            "portfolio_pnl_usdt": float(contrib["total"].iloc[-1]),
            "sum_of_contributions_usdt": float(contrib[labels].iloc[-1].sum()),
            "unattributed_usdt": float(contrib["unattributed_usdt"].iloc[-1]),
            "sum_of_standalone_pnl_usdt": float(solo_pnl.sum()) if len(solo_pnl) == len(labels) else None,
            "portfolio_sharpe": metrics.get("sharpe"), "portfolio_max_drawdown": metrics.get("max_drawdown"),
            "mean_standalone_sharpe": _mean(comparison["standalone_sharpe"]),
            "mean_pairwise_correlation": _mean_offdiag(corr),
        }
        out_dir = study.results_root / "portfolio_report"
        _write(out_dir, contrib, corr, comparison, {"name": name, "metrics": metrics, "summary": summary,
                                                     "config_sha256": sha256_json(spec)})
        reg.finish_sweep(name, status="done", summary=summary)
        return PortfolioResult(name=name, metrics=metrics, contributions=contrib, correlation=corr,
                               comparison=comparison, report_path=out_dir, run_key=jobs[0][0].run_key,
                               standalone_keys=[j.run_key for j, _ in jobs[1:]], wall_seconds=time.perf_counter() - t0)
    finally:
        if own_exec:
            ex.shutdown()


def _mean(s: pd.Series) -> float | None:
    v = pd.to_numeric(s, errors="coerce").dropna()
    return float(v.mean()) if len(v) else None


def _mean_offdiag(corr: pd.DataFrame) -> float | None:
    n = len(corr)
    if n < 2:
        return None
    vals = corr.to_numpy()[~np.eye(n, dtype=bool)]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if len(vals) else None


def _write(out_dir: Path, contrib: pd.DataFrame, corr: pd.DataFrame, comparison: pd.DataFrame,
           report: dict[str, Any]) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    mark_owner(stage)
    contrib.rename_axis("ts").reset_index().to_parquet(stage / "contributions.parquet", index=False)
    corr.to_csv(stage / "correlation.csv")
    comparison.to_csv(stage / "comparison.csv", index=False)
    (stage / "report.json").write_text(json.dumps(report, indent=2, default=str))
    old = out_dir.parent / f".{out_dir.name}.old"
    if out_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out_dir, old)
    os.rename(stage, out_dir)
    shutil.rmtree(old, ignore_errors=True)
