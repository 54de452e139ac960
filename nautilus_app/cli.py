"""Command line: ``nautilus-app <command>`` (also ``python -m nautilus_app``).

Commands (FreqTrade-style, one verb each):

* ``import-binance-vision``: Binance Vision archives (``--kinds bars funding mark``) into the catalog.
* ``import-freqtrade``: freqtrade feather files (OHLCV, funding_rate, mark) into the catalog.
* ``import-csv``: the user's own OHLCV CSV files (column mapping, time unit/zone, open/close stamps).
* ``fetch-instruments``: cache Binance exchangeInfo (any symbol's tick/step/min notional) in the catalog.
* ``download-data``: bars (OHLCV), funding-rate history, mark prices through ccxt (resumable).
* ``download-binance-vision``: Binance Vision archives over HTTP, checksum-verified, then imported.
* ``inventory``: what the catalog holds (ranges, rows, files, bytes, gaps); ``validate``: data checks.
* ``backtest CONFIG``: run a TOML-configured backtest, print a summary and the results path.
* ``import-ethereal``: Ethereal funding history, price-history bars and oracle marks into the catalog.
* ``list-strategies``: built-in and user strategies with their parameters, types and defaults.
* ``new-strategy NAME``: a template strategy + run config + test in the user folder (docs/strategies.md).
* ``paper CONFIG``: paper trading on a sandbox LiveNode with Redis state (docs/paper.md).
* ``live CONFIG``, ``live stop|flatten|status CONFIG``, ``alerts test CONFIG``, ``metrics``: live trading behind
  an explicit opt-in, its kill switch, alerts and Prometheus metrics (docs/live.md).
* ``registry``, ``sweep``, ``walk-forward``, ``portfolio``: research at scale (docs/research.md).

Exit codes: 0 success, 1 run failed (strategy exception, engine error, missing data), 2 bad input
(config or arguments).

As a process (``nautilus-app``, ``python -m nautilus_app``) a backtest ends without Python's teardown once its
results are written (:func:`run`, :func:`fast_exit`); ``NAUTILUS_APP_FAST_EXIT=0`` turns that off.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from core import paths


def _fmt(value: object, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value * 100:,.2f} %" if pct else f"{value:,.4f}"
    return str(value)


def _days(seconds: object) -> str:
    return "n/a" if seconds is None else f"{float(seconds) / 86_400:,.1f} d"  # type: ignore[arg-type]


def format_summary(outcome) -> str:  # noqa: ANN001 - BacktestOutcome (lazy import)
    """One screen of the key numbers of a finished run: totals, then results per strategy and per
    instrument (docs/metrics.md ``by_strategy`` / ``by_instrument``), and a warning line when
    positions were still open at the end."""
    from nautilus_app.coverage import coverage_line

    m = outcome.metrics
    bh_by = m.get("buy_and_hold_by_instrument") or {}
    bh = _fmt(m.get("buy_and_hold_return"), pct=True)
    if 1 < len(bh_by) <= 4:
        bh += " (equal-weight basket: " + ", ".join(f"{k} {_fmt(v, pct=True)}" for k, v in bh_by.items()) + ")"
    elif len(bh_by) > 4:
        bh += f" (equal-weight basket of {len(bh_by)} instruments; each in the table below)"
    open_n = int(m.get("open_trades") or 0)
    rows = [
        ("Run", outcome.run_id + (f"  (universe: {len(outcome.symbols)} symbols, {outcome.mode})"
                                  if hasattr(outcome, "symbols") else "")),
        ("Period", f"{m.get('start')} -> {m.get('end')}"),
        ("Data coverage", coverage_line(getattr(outcome, "coverage", None) or [])),
        ("Bars / orders", f"{outcome.iterations:,} data points, {outcome.orders:,} orders "
                          f"({outcome.iterations / max(outcome.engine_seconds, 1e-9):,.0f} per s in the engine)"),
        ("Equity", f"{_fmt(m.get('starting_equity'))} -> {_fmt(m.get('final_equity'))} USDT"),
        ("Total return", _fmt(m.get("total_return"), pct=True)),
        ("Buy and hold", bh),
        ("CAGR", _fmt(m.get("cagr"), pct=True)),
        ("Sharpe / Sortino", f"{_fmt(m.get('sharpe'))} / {_fmt(m.get('sortino'))}"),
        ("Max drawdown", _fmt(m.get("max_drawdown"), pct=True)
                         + (f" (longest under water {_days(m.get('max_drawdown_duration_s'))}, deepest "
                            f"{_days(m.get('deepest_drawdown_duration_s'))})"
                            if m.get("max_drawdown_duration_s") is not None else "")),
        ("Trades / win rate", f"{m.get('trades')} / {_fmt(m.get('win_rate'), pct=True)}"
                              + (f" ({open_n} open at the end)" if open_n else "")),
        ("Profit factor", _fmt(m.get("profit_factor"))),
        ("Exposure", _fmt(m.get("exposure"), pct=True)
                     + (f" (max {m['max_concurrent_positions']} positions at once; leverage avg "
                        f"{_fmt(m.get('avg_leverage'))}x, max {_fmt(m.get('max_leverage'))}x)"
                        if m.get("max_concurrent_positions") is not None else "")),
        ("Exits", ", ".join(f"{k} {v}" for k, v in (m.get("exit_reasons") or {}).items() if v) or "none"),
        ("Fees / funding", f"{_fmt(m.get('fees_paid_usdt'))} / {_fmt(m.get('funding_paid_usdt'))} USDT"),
        ("Slippage / liq. fees", f"{_fmt(m.get('slippage_cost_usdt'))} / {_fmt(m.get('liquidation_fees_usdt'))} USDT"
                                 f" ({m.get('liquidations', 0)} liquidations)"),
        *((f"Costs {name}", text) for name, text in (m.get("costs") or {}).items()),
        ("Results", str(outcome.results_path)),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    for title, key, records in (("By strategy", "strategy_id", m.get("by_strategy")),
                                ("By instrument", "instrument_id", m.get("by_instrument"))):
        if records:
            lines += ["", *_breakdown_lines(title, key, records)]
    if open_n:
        noun = "position" if open_n == 1 else "positions"
        lines += ["", f"WARNING: {open_n} {noun} still open at the end (marked to market, not closed): "
                      f"unrealized PnL {_fmt(m.get('unrealized_pnl_usdt'))} USDT, no exit fees"]
    return "\n".join(lines)


#: Rows of each per-strategy / per-instrument table in the summary (more: the extremes, then a count).
SUMMARY_ROWS = 20


def _breakdown_lines(title: str, key: str, records: list[dict]) -> list[str]:
    """A fixed-width table of ``by_strategy`` / ``by_instrument`` records (USDT, fractions as %)."""
    def num(v: object) -> str:
        return "n/a" if v is None else f"{v:,.2f}"

    def pct(v: object) -> str:
        return "n/a" if v is None else f"{v * 100:,.2f} %"

    head = [title, "trades", "win rate", "PF", "net PnL", "before costs", "fees", "funding", "slippage",
            "exposure", "return contr."]
    body = [[str(r.get(key)), f"{r.get('trades', 0):,}" + (f" ({r['open_trades']} open)" if r.get("open_trades") else ""),
             pct(r.get("win_rate")), "n/a" if r.get("profit_factor") is None else f"{r['profit_factor']:.3f}",
             num(r.get("net_pnl_usdt")), num(r.get("pnl_before_costs_usdt")), num(r.get("fees_paid_usdt")),
             num(r.get("funding_paid_usdt")), num(r.get("slippage_cost_usdt")), pct(r.get("exposure")),
             pct(r.get("return_contribution"))] for r in records]
    if key == "instrument_id":  # each instrument's own buy and hold beside it
        head.append("buy and hold")
        for row, r in zip(body, records, strict=True):
            row.append(pct(r.get("buy_and_hold_return")))
    more = len(body) - SUMMARY_ROWS
    if more > 0:  # universes: the worst and best by net PnL; every row is in by_*.parquet
        order = sorted(range(len(records)), key=lambda i: records[i].get("net_pnl_usdt") or 0.0)
        keep = sorted(order[: SUMMARY_ROWS // 2] + order[-(SUMMARY_ROWS - SUMMARY_ROWS // 2):])
        body = [body[i] for i in keep] + [[f"... {more} more (lowest and highest net PnL shown; all in "
                                          f"{'by_strategy' if key == 'strategy_id' else 'by_instrument'}.parquet)"]
                                          + [""] * (len(head) - 1)]
    sized = body[:-1] if more > 0 else body
    widths = [max(len(row[i]) for row in [head, *sized]) for i in range(len(head))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            .rstrip() for row in [head, *body]]


def cmd_backtest(args: argparse.Namespace) -> int:
    from nautilus_app.backtest import BacktestFailed, run_backtest
    from nautilus_app.config import ConfigError, load_config, parse_override

    try:
        overrides = dict(parse_override(text) for text in args.set or [])
        overrides.update({k: v for k, v in (("start", args.start), ("end", args.end)) if v is not None})
        if args.tearsheet:
            overrides["tearsheet"] = True
        cfg = load_config(args.config, overrides=overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from nautilus_app.housekeeping import cleanup_stale_results

    cleanup_stale_results(args.results_dir or paths.results_dir())  # .partial folders of killed runs
    text = Path(args.config).read_text()
    if overrides:  # the snapshot records what ran: the file's text plus the command-line overrides
        import tomllib

        import tomli_w

        from nautilus_app.config import apply_overrides

        applied = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        text = (f"# {args.config} with command-line overrides: {applied}\n"
                + tomli_w.dumps(apply_overrides(tomllib.loads(text), overrides)))
    try:
        if cfg.universe is not None:  # strategy templates x symbols, shared or per_symbol (research/universe_run.py)
            from nautilus_app.research.universe_run import run_universe

            outcome = run_universe(cfg, results_root=args.results_dir, progress=not args.no_progress,
                                   config_text=text, source=str(args.config))
        else:
            outcome = run_backtest(cfg, results_root=args.results_dir, progress=not args.no_progress,
                                   config_text=text)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BacktestFailed as e:
        print(f"error: backtest failed: {e}", file=sys.stderr)
        return 1
    print(format_summary(outcome))
    return 0


def _rows_read(report: object) -> int | None:
    """Data rows (not instruments) an import/download report read; None if it does not say."""
    rep = getattr(report, "imported", report)
    if rep is None:
        return 0
    stats = getattr(rep, "stats", None)
    if stats is None:
        return None
    return sum(st.rows_read for key, st in stats.items() if not key.startswith("instruments/"))


def _run_data_command(action: Callable[[], object], *, failed: tuple[type[BaseException], ...] = (),
                      bad_input: tuple[type[BaseException], ...] = (), allow_empty: bool | None = None,
                      hint: str = "") -> int:
    """Run an import/download, print its report; exit 1 for ``failed`` errors, 2 for ``bad_input``.
    With ``allow_empty=False`` a command that read 0 data rows says so and exits 1."""
    from nautilus_app.housekeeping import cleanup_stale_results  # the writers clean their catalog's staging

    cleanup_stale_results(paths.results_dir())
    try:
        report = action()
    except failed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except bad_input as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report)
    if allow_empty is False and _rows_read(report) == 0:
        print("error: nothing imported: 0 data rows were read" + (f" ({hint})" if hint else "")
              + "; pass --allow-empty to accept an empty import", file=sys.stderr)
        return 1
    return 0


def cmd_import_binance_vision(args: argparse.Namespace) -> int:
    from catalog.binance_vision import import_binance_vision
    from catalog.errors import DataImportError
    from core.instruments import InstrumentOverrideError

    return _run_data_command(lambda: import_binance_vision(
        args.catalog, base_url=args.base_url, market=args.market, symbols=tuple(args.symbols),
        interval=args.interval, start=args.start, end=args.end, kinds=tuple(args.kinds), store=args.store,
        instruments_file=args.instruments, metadata=args.metadata, max_jump=args.max_jump,
    ), bad_input=(DataImportError, InstrumentOverrideError, ValueError), allow_empty=args.allow_empty,
        hint="no archive rows for these symbols/kinds between --start and --end at --base-url "
             f"{args.base_url or paths.binance_vision_url()}")


def cmd_import_freqtrade(args: argparse.Namespace) -> int:
    from catalog.errors import DataImportError
    from catalog.freqtrade import import_freqtrade
    from core.instruments import InstrumentOverrideError

    return _run_data_command(lambda: import_freqtrade(
        args.catalog, data_dir=args.datadir, pairs=args.pairs, timeframes=args.timeframes,
        trading_mode=args.trading_mode, one_timeframe=args.one_timeframe, instruments_file=args.instruments,
        metadata=args.metadata, max_jump=args.max_jump,
    ), bad_input=(DataImportError, InstrumentOverrideError, ValueError, FileNotFoundError),
        allow_empty=args.allow_empty, hint=f"no freqtrade rows for these pairs/timeframes in {args.datadir}")


def cmd_import_csv(args: argparse.Namespace) -> int:
    from catalog.csv_import import import_csv
    from catalog.errors import DataImportError
    from core.instruments import InstrumentOverrideError

    def columns() -> dict[str, str]:
        out = {}
        for kv in args.columns or []:
            key, sep, val = kv.partition("=")
            if not sep:
                raise ValueError(f"--columns takes FIELD=COLUMN pairs, got {kv!r}")
            out[key.strip()] = val.strip()
        return out

    return _run_data_command(lambda: import_csv(
        args.catalog, files=args.files, symbol=args.symbol, market=args.market, interval=args.interval,
        columns=columns(), time_unit=args.time_unit, timezone=args.timezone, timestamp_is=args.timestamp_is,
        delimiter=args.delimiter, header=not args.no_header, instruments_file=args.instruments,
        metadata=args.metadata,
    ), bad_input=(DataImportError, InstrumentOverrideError, ValueError), allow_empty=args.allow_empty,
        hint="the files hold no data rows")


def cmd_fetch_instruments(args: argparse.Namespace) -> int:
    from catalog.ccxt_exchange import DownloadError
    from catalog.instrument_meta import fetch_exchange_info, metadata_path

    urls = dict(kv.split("=", 1) for kv in (args.api_url or []))
    try:
        counts = fetch_exchange_info(args.catalog, tuple(args.markets), urls=urls or None)
    except DownloadError as e:
        print(f"error: exchange metadata unreachable: {e}", file=sys.stderr)
        return 1
    print(f"cached {counts} symbols in {metadata_path(args.catalog)}")
    return 0


def cmd_paper(args: argparse.Namespace) -> int:
    from nautilus_app.paper import run_paper_from_args

    return run_paper_from_args(args)


def cmd_live(args: argparse.Namespace) -> int:
    from nautilus_app.live import run_live_from_args

    return run_live_from_args(args)


def cmd_alerts(args: argparse.Namespace) -> int:
    from nautilus_app.live import alerts_test_from_args

    return alerts_test_from_args(args)


def cmd_metrics(args: argparse.Namespace) -> int:
    from nautilus_app.monitoring import serve_results

    return serve_results(args.results_dir or paths.results_dir(), args.port, args.host)


def cmd_paper_vs_backtest(args: argparse.Namespace) -> int:
    from nautilus_app.paper_parity import main_paper_vs_backtest

    return main_paper_vs_backtest(args)


def cmd_import_ethereal(args: argparse.Namespace) -> int:
    from adapters.ethereal.history import import_ethereal_history
    from catalog.errors import DataImportError

    return _run_data_command(lambda: import_ethereal_history(
        args.catalog, tickers=args.tickers, start=args.start, end=args.end, interval=args.interval,
        kinds=tuple(args.kinds), network=args.network, rest_url=args.rest_url, tv_url=args.tv_url,
    ), bad_input=(DataImportError,))


def cmd_list_strategies(args: argparse.Namespace) -> int:
    from nautilus_app.strategy_loader import REQUIRED, StrategyLoadError, discover_strategies

    try:
        cat = discover_strategies()
    except StrategyLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"strategies (built-in, and user classes from {cat.strategy_dir}):")
    for name, ref in cat.strategies.items():
        print(f"\n{name}  [{ref.origin}: {ref.strategy_path}, {ref.source}]")
        if ref.doc():
            print(f"    {ref.doc()}")
        for f in ref.parameters().values():
            default = "required" if f.default is REQUIRED else f"default {f.default!r}"
            print(f"    {f.name}: {f.type_name()} ({default})")
    for path, msg in cat.errors:
        print(f"\nerror: {path} was skipped: {msg}", file=sys.stderr)
    return 2 if cat.errors else 0


def cmd_tearsheet(args: argparse.Namespace) -> int:
    from nautilus_app.tearsheet import TearsheetError, write_tearsheet

    try:
        print(write_tearsheet(args.run, overwrite=args.force))
    except TearsheetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_new_strategy(args: argparse.Namespace) -> int:
    from nautilus_app.strategy_template import TemplateError, write_strategy_template

    try:
        written = write_strategy_template(args.name, folder=args.folder, force=args.force)
    except TemplateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"next: pytest {written[-1]}   then   nautilus-app backtest {written[1]}")
    return 0


def cmd_download_data(args: argparse.Namespace) -> int:
    from catalog.ccxt_download import download_data
    from catalog.ccxt_exchange import DownloadError
    from catalog.errors import DataImportError

    urls = dict(kv.split("=", 1) for kv in (args.api_url or []))
    return _run_data_command(lambda: download_data(
        args.catalog, market=args.market, symbols=tuple(args.symbols), timeframe=args.timeframe,
        start=args.start, end=args.end, kinds=tuple(args.kinds), mark_timeframe=args.mark_timeframe,
        exchange_id=args.exchange, urls=urls or None, progress=not args.no_progress,
        instruments_file=args.instruments,
    ), failed=(DownloadError, DataImportError), bad_input=(ValueError, KeyError))


def cmd_download_binance_vision(args: argparse.Namespace) -> int:
    from catalog.errors import DataImportError
    from catalog.vision_download import download_binance_vision

    return _run_data_command(lambda: download_binance_vision(
        args.catalog, base_url=args.base_url, market=args.market, symbols=tuple(args.symbols),
        interval=args.interval, start=args.start, end=args.end, kinds=tuple(args.kinds),
        mark_interval=args.mark_interval, cache_dir=args.cache_dir, workers=args.workers,
        progress=not args.no_progress, store=args.store, instruments_file=args.instruments, metadata=args.metadata,
    ), failed=(DataImportError,), bad_input=(ValueError, KeyError), allow_empty=args.allow_empty,
        hint=f"no archive found between --start and --end at --base-url {args.base_url or paths.binance_vision_url()}")


def cmd_inventory(args: argparse.Namespace) -> int:
    from catalog.inventory import catalog_inventory, format_inventory, gap_list

    if args.gaps:
        kind, _, ident = args.gaps.partition("/")
        try:
            gaps = gap_list(args.catalog, kind, ident)
            print(gaps.to_string(index=False) if len(gaps) else f"no gaps in {args.gaps}")
        except KeyError as e:
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 2
        return 0
    df = catalog_inventory(args.catalog)
    print(df.to_json(orient="records", date_format="iso") if args.json else format_inventory(df))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from catalog.validation import validate_catalog

    df = validate_catalog(args.catalog, max_jump=args.max_jump)
    if not args.all:
        df = df[df["severity"] != "info"]
    if df.empty:
        print("catalog OK: no problems" + ("" if args.all else " (use --all to list known halts)"))
        return 0
    print(df[["kind", "identifier", "check", "severity", "message"]].to_string(index=False))
    return 1 if (df["severity"] == "error").any() else 0


def cmd_dash(args: argparse.Namespace) -> int:
    from dash_ui.app import serve

    return serve(args)


def _date_arg(text: str) -> str:
    """argparse type of --start/--end: a UTC date ``YYYY-MM-DD`` (kept as text)."""
    import datetime as dt

    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None
    return text


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be >= 1")
    return v


def _interval_arg(text: str) -> str:
    """argparse type of --interval/--timeframe(s): a Binance kline interval (1m, 5m, 1h ...)."""
    from core.instruments import interval_ns

    try:
        interval_ns(text)
    except (ValueError, KeyError) as e:
        raise argparse.ArgumentTypeError(str(e.args[0] if e.args else e)) from None
    return text


def _key_url(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=URL, e.g. public=http://127.0.0.1:8080/api/v3")
    return text


def _max_jump_arg(text: str) -> float:
    from catalog.validation import max_jump_setting

    try:
        return max_jump_setting(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _import_checks_arguments(p: argparse.ArgumentParser, jumps: bool = True) -> None:
    """``--allow-empty`` and ``--max-jump`` of the import commands (issue 20)."""
    p.add_argument("--allow-empty", action="store_true",
                   help="accept an import that reads 0 data rows (default: say so and exit 1: a mistyped "
                        "--base-url/--datadir or an empty date range)")
    if jumps:
        p.add_argument("--max-jump", type=_max_jump_arg, default=None, metavar="FRACTION",
                       help="refuse files whose prices jump more than this between neighbouring bars (stored or "
                            "new; default $NAUTILUS_MAX_JUMP or 0.5 = 50 %%; 0 = off)")


def _kinds_argument(p: argparse.ArgumentParser, allowed: tuple[str, ...], default: list[str]) -> None:
    """``--kinds`` in the one vocabulary of every data command (:mod:`catalog.kinds`: bars, funding, mark,
    trades); the sources' old words (``klines``, ``ohlcv``, ``fundingRate`` ...) are still accepted, and the
    command logs a deprecation warning naming the old and the new word."""
    from catalog.kinds import cli_choices

    p.add_argument("--kinds", nargs="+", default=default, choices=cli_choices(allowed), metavar="KIND",
                   help=f"data kinds: {' '.join(allowed)} (default: {' '.join(default)})")


def _instrument_arguments(p: argparse.ArgumentParser) -> None:
    """``--instruments`` / ``--metadata`` of the import commands (docs/data.md, any symbol)."""
    p.add_argument("--instruments", type=Path, default=None,
                   help="instruments.toml overrides (default $NAUTILUS_INSTRUMENTS or <catalog>/instruments.toml)")
    p.add_argument("--metadata", choices=["cache", "fetch", "offline"], default="cache",
                   help="exchange metadata: cache = the catalog's cached exchangeInfo if any (default, no network); "
                        "fetch = refresh it through ccxt first; offline = infer precisions from the data")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of all commands."""
    p = argparse.ArgumentParser(prog="nautilus-app", description=__doc__.split("\n\n")[0])
    p.add_argument("--version", action=_VersionAction)
    p.add_argument("--userdir", type=Path, default=None, metavar="DIR", help=USERDIR_HELP)
    p.add_argument("--strategy-dir", type=Path, default=None,
                   help="user strategy folder (default $NAUTILUS_STRATEGY_DIR or ./user_strategies); every Strategy "
                        "class in its *.py files is runnable by class name")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backtest", help="run a TOML-configured backtest")
    b.add_argument("config", help="path to a run config (see configs/)")
    b.add_argument("--results-dir", type=Path, default=None, help="default $RESULTS_DIR or ./results")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    b.add_argument("--start", default=None, help="override the config's start (UTC date/datetime, inclusive)")
    b.add_argument("--end", default=None, help="override the config's end (UTC date/datetime, exclusive)")
    b.add_argument("--tearsheet", action="store_true", help="also write Nautilus's tearsheet.html now (~0.4 s; "
                   "otherwise on demand: `nautilus-app tearsheet RUN`)")
    b.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config key (TOML value), e.g. strategies.0.params.fast_period=20 or "
                        "venues.0.taker_fee=0.0004; repeatable; recorded in the results' config.toml")
    b.set_defaults(func=cmd_backtest)

    bv = sub.add_parser("import-binance-vision", help="import Binance Vision archives into the catalog")
    bv.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    bv.add_argument("--base-url", default=None, help="URL or local folder; default $BINANCE_VISION_URL")
    bv.add_argument("--market", choices=["spot", "um"], default="spot", help="spot or USDT-M futures (um)")
    bv.add_argument("--symbols", nargs="+", default=["BTCUSDT"],
                    help="any Binance symbols, or ALL = every symbol with archives in the (local) source folder")
    bv.add_argument("--interval", default="1m", type=_interval_arg)
    bv.add_argument("--start", default=None, type=_date_arg, help="first day, YYYY-MM-DD (inclusive)")
    bv.add_argument("--end", default=None, type=_date_arg, help="last day, YYYY-MM-DD (inclusive)")
    _kinds_argument(bv, ("bars", "funding", "mark"), ["bars"])
    bv.add_argument("--store", choices=["nautilus", "compact"], default="nautilus",
                    help="bars into Nautilus's catalog (default) or the compact store (~8 bytes/bar, fastest "
                         "import; backtests read both; funding/mark prices always go to the catalog)")
    _instrument_arguments(bv)
    _import_checks_arguments(bv)
    bv.set_defaults(func=cmd_import_binance_vision)

    ft = sub.add_parser("import-freqtrade", help="import freqtrade feather files into the catalog")
    ft.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    ft.add_argument("--datadir", type=Path, default=paths.shared_data_dir() / "freqtrade" / "binance")
    ft.add_argument("--pairs", nargs="+", default=None,
                    help="any pairs, e.g. SOL/USDT (spot) SOL/USDT:USDT (perp) SOLUSDT (both); default all in --datadir")
    ft.add_argument("--timeframes", nargs="+", default=None, type=_interval_arg, help="e.g. 1m 5m 1h")
    ft.add_argument("--one-timeframe", action="store_true",
                    help="per pair only the first of --timeframes that has a file (--timeframes 1m 5m: 1m, else 5m)")
    ft.add_argument("--trading-mode", choices=["spot", "futures"], default=None)
    _instrument_arguments(ft)
    _import_checks_arguments(ft)
    ft.set_defaults(func=cmd_import_freqtrade)

    cv = sub.add_parser("import-csv", help="import your own OHLCV CSV files (one symbol) into the catalog")
    cv.add_argument("files", nargs="+", type=Path, help="CSV files (header timestamp,open,high,low,close,volume)")
    cv.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    cv.add_argument("--symbol", required=True, help="Binance symbol, e.g. SOLUSDT")
    cv.add_argument("--market", choices=["spot", "um"], default="spot", help="spot or USDT-M perpetual (um)")
    cv.add_argument("--interval", default="1m", type=_interval_arg, help="bar interval: 1m 5m 15m 1h 4h 1d ...")
    cv.add_argument("--columns", nargs="+", metavar="FIELD=COLUMN", default=None,
                    help="map fields to your columns, e.g. timestamp=Date volume=Vol (without a header: 1-based numbers)")
    cv.add_argument("--time-unit", choices=["s", "ms", "us", "ns", "iso"], default="ms",
                    help="epoch unit of the timestamps (UTC), or iso for date/time strings (default ms)")
    cv.add_argument("--timezone", default="UTC", help="time zone of ISO times without an offset (default UTC)")
    cv.add_argument("--timestamp-is", choices=["open", "close"], default="open",
                    help="whether a row's timestamp is the bar's open (default) or close time")
    cv.add_argument("--delimiter", default=",")
    cv.add_argument("--no-header", action="store_true", help="the files have no header row")
    _instrument_arguments(cv)
    _import_checks_arguments(cv, jumps=False)
    cv.set_defaults(func=cmd_import_csv)

    fi = sub.add_parser("fetch-instruments",
                        help="cache Binance exchangeInfo (tick, step, min notional ...) in the catalog through ccxt")
    fi.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    fi.add_argument("--markets", nargs="+", choices=["spot", "um"], default=["spot", "um"])
    fi.add_argument("--api-url", action="append", metavar="KEY=URL", type=_key_url,
                    help="override exchange.urls['api'][KEY], e.g. fapiPublic=http://127.0.0.1:8080/fapi/v1")
    fi.set_defaults(func=cmd_fetch_instruments)

    dd = sub.add_parser("download-data", help="download bars / funding / mark prices through ccxt (resumable)")
    dd.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    dd.add_argument("--exchange", default="binance", help="ccxt exchange id (binance, bybit, okx ... any with fetchOHLCV)")
    dd.add_argument("--market", choices=["spot", "um"], default="spot", help="spot or USDT-M futures (um)")
    dd.add_argument("--symbols", nargs="+", default=["BTCUSDT"])
    dd.add_argument("--timeframe", default="1m", type=_interval_arg)
    dd.add_argument("--mark-timeframe", default=None, type=_interval_arg,
                    help="mark price kline interval (default --timeframe)")
    dd.add_argument("--start", required=True, type=_date_arg, help="first day, YYYY-MM-DD (inclusive)")
    dd.add_argument("--end", default=None, type=_date_arg, help="last day, YYYY-MM-DD (inclusive; default today)")
    _kinds_argument(dd, ("bars", "funding", "mark"), ["bars"])
    dd.add_argument("--api-url", action="append", metavar="KEY=URL", type=_key_url,
                    help="override exchange.urls['api'][KEY], e.g. public=http://127.0.0.1:8080/api/v3")
    dd.add_argument("--no-progress", action="store_true")
    dd.add_argument("--instruments", type=Path, default=None,
                    help="instruments.toml overrides (default $NAUTILUS_INSTRUMENTS or <catalog>/instruments.toml)")
    dd.set_defaults(func=cmd_download_data)

    dv = sub.add_parser("download-binance-vision", help="download + verify Binance Vision archives over HTTP")
    dv.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    dv.add_argument("--base-url", default=None, help="http(s) base; default $BINANCE_VISION_URL")
    dv.add_argument("--market", choices=["spot", "um"], default="spot")
    dv.add_argument("--symbols", nargs="+", default=["BTCUSDT"])
    dv.add_argument("--interval", default="1m", type=_interval_arg)
    dv.add_argument("--mark-interval", default=None, type=_interval_arg)
    dv.add_argument("--start", required=True, type=_date_arg, help="first day, YYYY-MM-DD (inclusive)")
    dv.add_argument("--end", default=None, type=_date_arg, help="last day, YYYY-MM-DD (inclusive; default yesterday)")
    _kinds_argument(dv, ("bars", "funding", "mark", "trades"), ["bars"])
    dv.add_argument("--cache-dir", type=Path, default=None, help="default <catalog>/.downloads/binance-vision")
    dv.add_argument("--workers", type=_positive_int, default=4)
    dv.add_argument("--no-progress", action="store_true")
    dv.add_argument("--store", choices=["nautilus", "compact"], default="nautilus",
                    help="bars into Nautilus's catalog (default) or the compact store (~8 bytes/bar, fastest "
                         "import; backtests read both; funding/mark prices always go to the catalog)")
    _instrument_arguments(dv)
    _import_checks_arguments(dv, jumps=False)
    dv.set_defaults(func=cmd_download_binance_vision)

    inv = sub.add_parser("inventory", help="what the catalog holds: ranges, rows, files, bytes, gaps")
    inv.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    inv.add_argument("--json", action="store_true", help="one JSON record per dataset")
    inv.add_argument("--gaps", metavar="KIND/IDENTIFIER", default=None,
                     help="list the gaps of one dataset, e.g. bars/BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL or "
                          "funding/BTCUSDT-PERP.BINANCE_USDM")
    inv.set_defaults(func=cmd_inventory)

    va = sub.add_parser("validate", help="check the catalog: OHLC, duplicates, order, gaps, funding coverage")
    va.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    va.add_argument("--all", action="store_true", help="also list info findings (known exchange halts ...)")
    va.add_argument("--max-jump", type=_max_jump_arg, default=None, metavar="FRACTION",
                    help="report close -> next open price changes beyond this (default $NAUTILUS_MAX_JUMP or 0.5)")
    va.set_defaults(func=cmd_validate)

    et = sub.add_parser("import-ethereal", help="import Ethereal funding, price bars and marks into the catalog")
    et.add_argument("--catalog", type=Path, default=paths.default_catalog_path())
    et.add_argument("--network", choices=["mainnet", "testnet"], default="mainnet")
    et.add_argument("--rest-url", default=None, help="REST base URL override (e.g. a local mock venue)")
    et.add_argument("--tv-url", default=None, help="price-history base URL override (default: --rest-url or the network's)")
    et.add_argument("--tickers", nargs="+", default=["BTCUSD", "ETHUSD"], help="venue tickers, e.g. BTCUSD")
    et.add_argument("--interval", default="1h", help="bar interval: 1m 5m 15m 30m 1h 4h 1d ...")
    et.add_argument("--start", required=True, help="first day, YYYY-MM-DD (inclusive)")
    et.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    _kinds_argument(et, ("bars", "funding", "mark"), ["bars", "funding", "mark"])
    et.set_defaults(func=cmd_import_ethereal)

    ls = sub.add_parser("list-strategies", help="built-in and user strategies with their parameters")
    ls.set_defaults(func=cmd_list_strategies)

    ts = sub.add_parser("tearsheet", help="write Nautilus's plotly tearsheet.html of a finished run (on demand)")
    ts.add_argument("run", type=Path, help="a results folder, e.g. results/<run_id>")
    ts.add_argument("--force", action="store_true", help="rewrite an existing tearsheet")
    ts.set_defaults(func=cmd_tearsheet)

    ns = sub.add_parser("new-strategy", help="write a template strategy, run config and test into the user folder")
    ns.add_argument("name", help="class name, e.g. MyBreakout")
    ns.add_argument("--folder", type=Path, default=None, help="default: the user strategy folder")
    ns.add_argument("--force", action="store_true", help="overwrite existing files")
    ns.set_defaults(func=cmd_new_strategy)

    from dash_ui.options import add_arguments as add_dash_arguments

    da = sub.add_parser("dash", help="serve the results app + JSON API on 127.0.0.1:8050 (docs/dash.md)")
    add_dash_arguments(da)
    da.set_defaults(func=cmd_dash)

    from nautilus_app.paper_options import add_paper_arguments

    pp = sub.add_parser("paper", help="paper-trade a config with a [paper] table on a sandbox LiveNode (docs/paper.md)")
    add_paper_arguments(pp)
    pp.set_defaults(func=cmd_paper)
    pvb = sub.add_parser("paper-vs-backtest", help="replay a paper session's bars through a backtest of the same "
                         "config and print fill-by-fill differences (docs/paper.md)")
    pvb.add_argument("paper_results", help="the paper session's results folder (results/<run_id>)")
    pvb.add_argument("--results-dir", default=None, help="where the backtest's results go (default: a temp folder)")
    pvb.set_defaults(func=cmd_paper_vs_backtest)

    from nautilus_app.live_options import add_alerts_arguments, add_live_arguments, add_metrics_arguments

    lv = sub.add_parser("live", help="live trading (opt-in: [live] enabled = true and "
                        "--i-understand-this-trades-real-money); live stop|flatten|status CONFIG (docs/live.md)")
    add_live_arguments(lv)
    lv.set_defaults(func=cmd_live)
    al = sub.add_parser("alerts", help="alerts test CONFIG: send a test alert to the webhooks of [live.alerts]")
    add_alerts_arguments(al)
    al.set_defaults(func=cmd_alerts)
    me = sub.add_parser("metrics", help="Prometheus /metrics for every paper and live session under the results folder")
    add_metrics_arguments(me)
    me.set_defaults(func=cmd_metrics)

    # research: `registry ...`, `sweep`, `walk-forward`, `portfolio` (nautilus_app/research/cli.py)
    from nautilus_app.research.cli import add_commands as add_research_commands

    add_research_commands(sub)
    for sp in sub.choices.values():  # accepted after the command too: `nautilus-app backtest X --strategy-dir D`
        sp.add_argument("--strategy-dir", dest="strategy_dir_cmd", type=Path, default=None,
                        help="user strategy folder (default $NAUTILUS_STRATEGY_DIR or ./user_strategies)")
        sp.add_argument("--userdir", dest="userdir_cmd", type=Path, default=None, metavar="DIR", help=USERDIR_HELP)
    return p


USERDIR_HELP = ("user directory holding catalog/, results/, user_strategies/ and instruments.toml (default "
                "$NAUTILUS_USERDIR; in a source checkout its own folders, in an installed package the working "
                "directory); explicit options and their environment variables still win (core/paths.py)")

#: Top-level module of an optional dependency -> the extra that installs it (pyproject.toml).
EXTRA_OF_MODULE = {
    "ccxt": "download",
    "dash": "dash", "dash_ag_grid": "dash", "flask": "dash", "werkzeug": "dash", "plotly": "dash",
    "tsdownsample": "dash",
    "optuna": "research", "sqlalchemy": "research", "alembic": "research",
    "ray": "ray",
    "psycopg": "postgres",
    "redis": "paper", "aiohttp": "paper", "prometheus_client": "paper",
    "ethereal": "ethereal", "eth_account": "ethereal", "websockets": "ethereal", "httpx": "ethereal",
    "playwright": "test", "pytest": "test", "cryptography": "test",
}


class _VersionAction(argparse.Action):
    """``--version``: argparse's version action, with the text read only when asked (package metadata
    lookups cost ~50 ms on every command otherwise)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show the program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: object, values: object,
                 option_string: str | None = None) -> None:
        print(version_text())  # to stdout, as argparse's own version action
        parser.exit()


def version_text() -> str:
    """``nautilus-app --version``: this package's, NautilusTrader's and Python's versions."""
    from importlib.metadata import PackageNotFoundError, version

    def of(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    return (f"nautilus-app {of('nautilus-app')} (nautilus_trader {of('nautilus_trader')}, "
            f"Python {sys.version.split()[0]})")


def _early_userdir(argv: list[str]) -> Path | None:
    """``--userdir`` from the raw arguments (before the parser is built: its defaults depend on it)."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--userdir", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    return known.userdir


#: commands whose process ends through :func:`fast_exit` when run by :func:`run`: the backtest, whose teardown
#: (its results frames, Nautilus's objects) is a measurable part of the command. Not paper / live, whose
#: Nautilus file loggers flush at teardown, nor the servers and research drivers.
FAST_EXIT_COMMANDS = frozenset({"backtest"})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return _main(argv)[0]


def _main(argv: list[str] | None) -> tuple[int, str | None]:
    """:func:`main`'s work: ``(exit code, the command run)`` (None when the arguments were refused early)."""
    import os

    argv = sys.argv[1:] if argv is None else list(argv)
    userdir = _early_userdir(argv)
    if userdir is not None:  # an env var, read by core/paths.py here and in worker processes
        if not userdir.expanduser().is_dir():
            print(f"error: --userdir {userdir}: not a directory (create it first)", file=sys.stderr)
            return 2, None
        os.environ[paths.USERDIR_ENV] = str(userdir.expanduser().resolve())
    elif paths.user_dir() is not None:  # installed package: pin the working directory for worker processes
        os.environ[paths.USERDIR_ENV] = str(paths.user_dir())  # (the Dash launcher's start in another cwd)
    args = build_parser().parse_args(argv)
    strategy_dir = args.strategy_dir_cmd or args.strategy_dir
    if strategy_dir is not None:  # an env var, so worker processes (sweeps, Ray, the Dash launcher) see it too
        os.environ["NAUTILUS_STRATEGY_DIR"] = str(Path(strategy_dir).resolve())
    try:
        return int(args.func(args)), args.command
    except ImportError as e:  # an optional dependency of this command is not installed
        # ModuleNotFoundError names the module; Nautilus's own check says "plotly is required for ..."
        if isinstance(e, ModuleNotFoundError):
            module = (e.name or "").split(".")[0]
        else:
            module = str(e).split(" is required", 1)[0] if " is required" in str(e) else ""
        extra = EXTRA_OF_MODULE.get(module)
        if extra is None:
            raise
        print(f"error: `nautilus-app {args.command}` needs {module}, which is not installed: "
              f"pip install \"nautilus-app[{extra}]\" (or [all])", file=sys.stderr)
        return 1, args.command


def fast_exit(status: int) -> NoReturn:
    """End the process with ``status`` without Python's teardown, which frees every object and module one by
    one: 0.10-0.14 s after a backtest of 130,708 bars (pandas, Nautilus's objects; measured on the
    ``scripts/bench/peers.py`` workload), time the command's user waits for and the OS reclaims anyway.

    What a normal exit does that matters is done first: the ``atexit`` callbacks run (``logging``'s flush and
    close, any a user's strategy registered) and stdout / stderr are flushed. Only the freeing is skipped, so
    ``__del__`` methods of objects still alive do not run. The same trade mypy makes (``mypy.util.hard_exit``).
    Falls back to ``sys.exit`` (a normal exit) while another non-daemon thread runs, since Python would wait
    for it, or when the environment variable ``NAUTILUS_APP_FAST_EXIT`` is ``0``.
    """
    import atexit
    import os
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if os.environ.get("NAUTILUS_APP_FAST_EXIT", "1") == "0" or others:
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe: nothing left to deliver
            pass
    os._exit(status)


def run() -> NoReturn:
    """The process entry point (``nautilus-app``, ``python -m nautilus_app``): :func:`main`, then its exit code
    through :func:`fast_exit` for :data:`FAST_EXIT_COMMANDS`, ``sys.exit`` for the others. An exception
    propagates as usual (traceback, normal exit)."""
    code, command = _main(None)
    if command in FAST_EXIT_COMMANDS:
        fast_exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
