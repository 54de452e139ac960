"""Command line: ``nautilus-app <command>`` (also ``python -m nautilus_app``).

Commands (FreqTrade-style, one verb each):

* ``import-binance-vision``: Binance Vision kline / fundingRate / markPriceKlines archives into the catalog.
* ``import-freqtrade``: freqtrade feather files (OHLCV, funding_rate, mark) into the catalog.
* ``backtest CONFIG``: run a TOML-configured backtest, print a summary and the results path.
* ``list-strategies``: registered strategies and their parameters with defaults.

Exit codes: 0 success, 1 run failed (strategy exception, engine error, missing data), 2 bad input
(config or arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nautilus_app import paths


def _fmt(value: object, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value * 100:,.2f} %" if pct else f"{value:,.4f}"
    return str(value)


def format_summary(outcome) -> str:  # noqa: ANN001 - BacktestOutcome (lazy import)
    """One screen of the key numbers of a finished run."""
    m = outcome.metrics
    rows = [
        ("Run", outcome.run_id),
        ("Period", f"{m.get('start')} -> {m.get('end')}"),
        ("Bars / orders", f"{outcome.iterations:,} data points, {outcome.orders:,} orders "
                          f"({outcome.iterations / max(outcome.engine_seconds, 1e-9):,.0f} per s in the engine)"),
        ("Equity", f"{_fmt(m.get('starting_equity'))} -> {_fmt(m.get('final_equity'))} USDT"),
        ("Total return", _fmt(m.get("total_return"), pct=True)),
        ("Buy and hold", _fmt(m.get("buy_and_hold_return"), pct=True)),
        ("CAGR", _fmt(m.get("cagr"), pct=True)),
        ("Sharpe / Sortino", f"{_fmt(m.get('sharpe'))} / {_fmt(m.get('sortino'))}"),
        ("Max drawdown", _fmt(m.get("max_drawdown"), pct=True)),
        ("Trades / win rate", f"{m.get('trades')} / {_fmt(m.get('win_rate'), pct=True)}"),
        ("Profit factor", _fmt(m.get("profit_factor"))),
        ("Exposure", _fmt(m.get("exposure"), pct=True)),
        ("Fees / funding", f"{_fmt(m.get('fees_paid_usdt'))} / {_fmt(m.get('funding_paid_usdt'))} USDT"),
        ("Results", str(outcome.results_path)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def cmd_backtest(args: argparse.Namespace) -> int:
    from nautilus_app.backtest import BacktestFailed, run_backtest
    from nautilus_app.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        outcome = run_backtest(
            cfg, results_root=args.results_dir, progress=not args.no_progress,
            config_text=Path(args.config).read_text(),
        )
    except BacktestFailed as e:
        print(f"error: backtest failed: {e}", file=sys.stderr)
        return 1
    print(format_summary(outcome))
    return 0


def cmd_import_binance_vision(args: argparse.Namespace) -> int:
    from catalog.binance_vision import import_binance_vision
    from catalog.errors import DataImportError

    try:
        report = import_binance_vision(
            args.catalog, base_url=args.base_url, market=args.market, symbols=tuple(args.symbols),
            interval=args.interval, start=args.start, end=args.end, kinds=tuple(args.kinds),
        )
    except DataImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report)
    return 0


def cmd_import_freqtrade(args: argparse.Namespace) -> int:
    from catalog.errors import DataImportError
    from catalog.freqtrade import import_freqtrade

    try:
        report = import_freqtrade(
            args.catalog, data_dir=args.datadir, pairs=args.pairs, timeframes=args.timeframes,
            trading_mode=args.trading_mode,
        )
    except DataImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report)
    return 0


def cmd_list_strategies(args: argparse.Namespace) -> int:
    from nautilus_app.config import strategy_parameters
    from strategies import REGISTRY

    for name in sorted(REGISTRY):
        params = ", ".join(f"{k}={v!r}" for k, v in strategy_parameters(name).items())
        print(f"{name}: {params}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of all commands."""
    p = argparse.ArgumentParser(prog="nautilus-app", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backtest", help="run a TOML-configured backtest")
    b.add_argument("config", help="path to a run config (see configs/)")
    b.add_argument("--results-dir", type=Path, default=None, help="default $RESULTS_DIR or ./results")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    b.set_defaults(func=cmd_backtest)

    bv = sub.add_parser("import-binance-vision", help="import Binance Vision archives into the catalog")
    bv.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    bv.add_argument("--base-url", default=None, help="URL or local folder; default $BINANCE_VISION_URL")
    bv.add_argument("--market", choices=["spot", "um"], default="spot", help="spot or USDT-M futures (um)")
    bv.add_argument("--symbols", nargs="+", default=["BTCUSDT"])
    bv.add_argument("--interval", default="1m")
    bv.add_argument("--start", default=None, help="first day, YYYY-MM-DD (inclusive)")
    bv.add_argument("--end", default=None, help="last day, YYYY-MM-DD (inclusive)")
    bv.add_argument("--kinds", nargs="+", default=["klines"], choices=["klines", "fundingRate", "markPriceKlines"])
    bv.set_defaults(func=cmd_import_binance_vision)

    ft = sub.add_parser("import-freqtrade", help="import freqtrade feather files into the catalog")
    ft.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    ft.add_argument("--datadir", type=Path, default=paths.shared_data_dir() / "freqtrade" / "binance")
    ft.add_argument("--pairs", nargs="+", default=None, help="e.g. BTC/USDT ETH/USDT:USDT")
    ft.add_argument("--timeframes", nargs="+", default=None, help="e.g. 1m 5m 1h")
    ft.add_argument("--trading-mode", choices=["spot", "futures"], default=None)
    ft.set_defaults(func=cmd_import_freqtrade)

    ls = sub.add_parser("list-strategies", help="registered strategies and their parameters")
    ls.set_defaults(func=cmd_list_strategies)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
