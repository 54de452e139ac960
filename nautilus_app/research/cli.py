"""CLI commands of the research layer (wired into ``nautilus-app`` by :func:`add_commands`).

* ``registry init|strategies|sweeps|runs|ranking|show [--url URL]``: create/upgrade and query the registry.
* ``sweep SWEEP.toml [--executor process|ray] [--workers N] [--registry URL]``: run or resume a sweep.
* ``walk-forward SWEEP.toml [...]``: walk-forward study from the sweep's ``[walk_forward]`` table.
* ``portfolio CONFIG.toml --name NAME [...]``: portfolio + standalone runs, contribution and correlation.

Exit codes: 0 success, 1 runs failed / nothing found, 2 bad input (config, arguments, registry conflict).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _registry(url: str | None):  # noqa: ANN202 - Registry
    from nautilus_app.research.registry import Registry

    return Registry.open(url)


def _print_frame(df: Any, as_json: bool, columns: list[str] | None = None) -> None:
    import pandas as pd

    if columns:
        df = df[[c for c in columns if c in df.columns]]
    if as_json:
        print(df.to_json(orient="records", date_format="iso", default_handler=str))
        return
    with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200,
                           "display.max_colwidth", 60):
        print(df.to_string(index=False) if len(df) else "(none)")


def cmd_registry(args: argparse.Namespace) -> int:
    """``nautilus-app registry ...``."""
    from nautilus_app.research.registry import RegistryError, parse_filter

    try:
        reg = _registry(args.url)
    except Exception as e:  # noqa: BLE001 - unreachable server, bad URL
        print(f"error: registry {args.url or '(default)'}: {e}", file=sys.stderr)
        return 2
    try:
        if args.registry_command == "init":
            print(f"registry ready (schema at head): {reg.url}")
        elif args.registry_command == "strategies":
            _print_frame(reg.strategies_frame(), args.json)
        elif args.registry_command == "sweeps":
            _print_frame(reg.sweeps_frame(), args.json)
        elif args.registry_command == "ranking":
            df = reg.sweep_ranking(args.sweep)
            _print_frame(df.head(args.limit), args.json,
                         ["rank", "param_version", "params", "objective", "shards_done", "shards_total", "failed",
                          "total_return", "sharpe"])
        elif args.registry_command == "show":
            print(json.dumps(reg.run_detail(args.run_key), indent=2, default=str))
        elif args.registry_command == "runs":
            try:
                mins = dict(_metric(x) for x in args.min)
                maxs = dict(_metric(x) for x in args.max)
                params = [parse_filter(x) for x in args.param]
            except ValueError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            df = reg.query_runs(strategy_type=args.strategy_type, strategy=args.strategy, sweep=args.sweep,
                                kind=args.kind, status=None if args.status == "any" else args.status,
                                min_metrics=mins, max_metrics=maxs, params=params, order_by=args.order_by,
                                descending=not args.ascending, limit=args.limit)
            _print_frame(df, args.json, None if args.json else
                         ["run_key", "kind", "status", "sweep", "strategy", "param_version", "params", "shard",
                          "objective", "total_return", "sharpe", "max_drawdown", "trades", "data_start", "data_end"])
            if df.empty:
                return 1
    except RegistryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        reg.close()
    return 0


def _metric(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise ValueError(f"metric bound {text!r}: expected NAME=NUMBER, e.g. sharpe=1.5") from None


def _load(args: argparse.Namespace):  # noqa: ANN202 - Sweep
    from nautilus_app.research.spec import load_sweep

    return load_sweep(args.config, executor=args.executor, workers=args.workers, registry=args.registry,
                      ray_address=args.ray_address, results_root=str(args.results_dir) if args.results_dir else None)


def cmd_sweep(args: argparse.Namespace) -> int:
    """``nautilus-app sweep SWEEP.toml``: run or resume; prints the top of the ranking."""
    from nautilus_app.config import ConfigError
    from nautilus_app.research.registry import RegistryError
    from nautilus_app.research.sweep import run_sweep

    try:
        sweep = _load(args)
        res = run_sweep(sweep, progress=not args.quiet)
    except (ConfigError, RegistryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"sweep {res.name}: {res.runs} runs ({res.executed} executed now, {res.skipped} already finished, "
          f"{res.failed} failed, {res.crashes} worker crashes retried) in {res.wall_seconds:.1f} s")
    _print_frame(res.ranking.head(args.top), False,
                 ["rank", "params", "objective", "shards_done", "shards_total", "total_return", "sharpe"])
    return 1 if res.failed else 0


def cmd_walk_forward(args: argparse.Namespace) -> int:
    """``nautilus-app walk-forward SWEEP.toml``: windows, chosen params, stitched OOS metrics, holdout."""
    from nautilus_app.config import ConfigError
    from nautilus_app.research.registry import RegistryError
    from nautilus_app.research.walkforward import run_walk_forward

    try:
        sweep = _load(args)
        res = run_walk_forward(sweep, progress=not args.quiet)
    except (ConfigError, RegistryError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _print_frame(res.windows, False, ["window", "train_start", "test_start", "test_end", "params", "is_objective",
                                      "oos_objective", "oos_total_return", "oos_trades"])
    m = res.oos_metrics
    print(f"stitched OOS: total return {m['total_return']:.4%}, sharpe {m['sharpe']}, max drawdown "
          f"{m['max_drawdown']:.4%}, trades {m['trades']}; walk-forward efficiency {res.efficiency}")
    if res.holdout:
        print(f"holdout {res.holdout['start']} -> {res.holdout['end']}: params {res.holdout['params']}, "
              f"total return {res.holdout['total_return']}, sharpe {res.holdout['sharpe']}")
    print(f"report: {res.report_path}")
    return 0


def cmd_portfolio(args: argparse.Namespace) -> int:
    """``nautilus-app portfolio CONFIG.toml --name NAME``: contribution, correlation, standalone comparison."""
    from nautilus_app.config import ConfigError, load_config
    from nautilus_app.research.portfolio import run_portfolio
    from nautilus_app.research.registry import Registry, RegistryError

    try:
        cfg = load_config(args.config)
        reg = Registry.open(args.registry)
        res = run_portfolio(cfg, name=args.name or cfg.name, registry=reg, executor_kind=args.executor or "process",
                            workers=args.workers or 2, ray_address=args.ray_address, results_root=args.results_dir,
                            freq=args.freq, progress=not args.quiet)
    except (ConfigError, RegistryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _print_frame(res.comparison, False)
    print("correlation of strategy returns:")
    print(res.correlation.round(3).to_string())
    print(f"report: {res.report_path}")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``registry``, ``sweep``, ``walk-forward`` and ``portfolio`` to an argparse subparsers object."""
    r = sub.add_parser("registry", help="research registry: strategies, sweeps, runs, metrics")
    r.add_argument("--url", default=None, help="SQLAlchemy URL; default $NAUTILUS_REGISTRY_URL or results/registry.sqlite")
    r.add_argument("--json", action="store_true", help="JSON records instead of a table")
    rs = r.add_subparsers(dest="registry_command", required=True)
    rs.add_parser("init", help="create or upgrade the schema (Alembic) and exit")
    rs.add_parser("strategies", help="registered strategies with parameter versions and run counts")
    rs.add_parser("sweeps", help="sweeps, walk-forward and portfolio studies with run counts")
    rk = rs.add_parser("ranking", help="parameter sets of a sweep ranked by its objective")
    rk.add_argument("sweep")
    rk.add_argument("--limit", type=int, default=20)
    sh = rs.add_parser("show", help="everything stored about one run")
    sh.add_argument("run_key", help="run key or a unique prefix")
    rq = rs.add_parser("runs", help="query runs by strategy type, metric thresholds and parameters")
    rq.add_argument("--strategy-type", default=None, help="e.g. ema_cross")
    rq.add_argument("--strategy", default=None, help="registry strategy name")
    rq.add_argument("--sweep", default=None)
    rq.add_argument("--kind", default=None, choices=["backtest", "trial", "oos", "holdout", "portfolio", "standalone"])
    rq.add_argument("--status", default="done", choices=["pending", "running", "done", "failed", "any"])
    rq.add_argument("--min", action="append", default=[], metavar="METRIC=X", help="e.g. --min sharpe=1.5")
    rq.add_argument("--max", action="append", default=[], metavar="METRIC=X", help="e.g. --max max_drawdown=0.2")
    rq.add_argument("--param", action="append", default=[], metavar="KEY<OP>VALUE", help="e.g. --param fast_period<=20")
    rq.add_argument("--order-by", default=None, help="metric or column, e.g. sharpe")
    rq.add_argument("--ascending", action="store_true")
    rq.add_argument("--limit", type=int, default=50)
    r.set_defaults(func=cmd_registry)

    for cmd, func, what in (("sweep", cmd_sweep, "run or resume a parameter sweep (grid / random / optuna)"),
                            ("walk-forward", cmd_walk_forward, "walk-forward study of a sweep's [walk_forward]")):
        s = sub.add_parser(cmd, help=what)
        s.add_argument("config", help="sweep TOML (see configs/sweep_*.toml, docs/research.md)")
        _exec_args(s)
        s.add_argument("--top", type=int, default=10, help="ranking rows to print")
        s.set_defaults(func=func)
    pf = sub.add_parser("portfolio", help="portfolio run + standalone runs: contribution, correlation, comparison")
    pf.add_argument("config", help="multi-strategy run config (configs/*.toml)")
    pf.add_argument("--name", default=None, help="study name in the registry (default the config's name)")
    pf.add_argument("--freq", default="1D", help="return period for the correlation (pandas offset)")
    _exec_args(pf)
    pf.set_defaults(func=cmd_portfolio)


def _exec_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--executor", choices=["process", "ray"], default=None, help="override the config's executor")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--ray-address", default=None, help="Ray cluster address (default: a local Ray)")
    s.add_argument("--registry", default=None, help="registry URL (default $NAUTILUS_REGISTRY_URL or results/registry.sqlite)")
    s.add_argument("--results-dir", type=Path, default=None)
    s.add_argument("--quiet", action="store_true", help="no per-run progress lines")
