"""Paper trading: the backtest's strategies and config on a Nautilus ``LiveNode`` in the SANDBOX environment.

Flow: run config with a ``[paper]`` table -> :func:`plan_paper` (venue/instrument mapping, checks)
-> ``LiveNode`` with Nautilus's Rust Binance data client, the sandbox execution client (same fee
model, account type, OMS and leverage as the backtest venue), the Redis cache database and our
:class:`PaperRecorder` actor -> the registered strategies, unchanged -> ``results/<run_id>/`` in
the backtest format, rewritten while the node runs.

Modules (issue 22: one job each). This one holds :class:`PaperSession` (state of one session, the
sequencer's callbacks, run/stop), the results writer and the command line; the rest is in
:mod:`~nautilus_app.paper_plan` (config checks and the live id mapping),
:mod:`~nautilus_app.paper_node` (building the ``LiveNode`` and its strategies),
:mod:`~nautilus_app.paper_hooks` (stale guard, market clock and sequencer, through the strategies'
hooks: :mod:`strategies.hooks`), :mod:`~nautilus_app.paper_recorder` (the recorder actor),
:mod:`~nautilus_app.paper_history` (warm-up and catch-up bars), :mod:`~nautilus_app.paper_status`
(``status.json``), :mod:`~nautilus_app.paper_events` (the structured log),
:mod:`~nautilus_app.paper_state` / :mod:`~nautilus_app.paper_config` (Redis state, the ``[paper]``
table) and :mod:`~nautilus_app.paper_exec` (the simulated execution client).

Mapping. Nautilus's Binance client names USDT-M perpetuals ``BTCUSDT-PERP.BINANCE`` (venue
``BINANCE``); our backtests use venue ``BINANCE_USDM``. Strategy parameters ``instrument_id`` /
``bar_type`` are translated to the live ids on the way in, and every report is translated back, so
a paper results folder carries the config's ids. Spot ids (``BTCUSDT.BINANCE``) are unchanged.
Both Binance products are venue ``BINANCE`` in the live client and the sandbox keeps one account per
venue, so one paper node trades one venue of the config (spot *or* USDT-M).

Execution parity. The sandbox runs Nautilus's matching engine with ``bar_execution=True``: a market
order submitted in ``on_bar`` fills at that bar's close, exactly as in the backtest (no latency
model in either; see docs/paper.md for next-bar-open timing). Fees: ``MakerTakerFeeModel`` with the
venue's maker/taker fractions. Leverage: the sandbox config has one ``default_leverage`` and no
per-instrument leverages, so per-instrument values must all equal it (checked).

What the sandbox lacks, and what we add:
* funding: :class:`PaperRecorder` settles ``-position qty x mark x rate`` at each funding time
  from the live ``markPrice`` stream (rate and next funding time) into its ledger (Redis),
  ``funding.parquet`` and the equity curve. The sandbox *account balance* does not include it
  (rc7 offers no way to adjust a native sandbox account from Python), so strategy sizing does not
  see funding; results and status do.
* stale-feed detection, status snapshots, results files, structured logs: the recorder.

Ethereal (``data_source = "ethereal"``): our Ethereal data client and our paper execution client
(:mod:`adapters.ethereal.paper_exec`, fills at the next quote, book in Redis ``ethpaper:<trader_id>:*``
restored through Nautilus's reconciliation), no Nautilus cache database (rc7 refuses one with
Python clients); config bar types ``...-LAST-EXTERNAL`` run as ``...-LAST-INTERNAL`` (aggregated from
trades) and each strategy claims the reconciled orders/positions (``external_order_instrument_ids``).

State across restarts: Nautilus's Redis cache database (orders, positions, accounts, strategy
state; ``trader-<trader_id>:*``) with load/save state, plus :class:`~nautilus_app.paper_state.PaperState`
(bars, fill-to-bar map, funding ledger). A restarted node with the same ``trader_id`` resumes
the same ``results/<run_id>/``.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.model import BarType, InstrumentId

from core import paths
from nautilus_app.config import BacktestConfig
from nautilus_app.jsonlog import setup_json_logging
from nautilus_app.paper_config import PaperSettings
from nautilus_app.paper_events import event as _event
from nautilus_app.paper_events import log  # noqa: F401 - the paper logger, as before
from nautilus_app.paper_hooks import StaleGuard
from nautilus_app.paper_plan import (  # noqa: F401 - re-exported: the plan's names are imported from here
    ETHEREAL_VENUE_NAME,
    LIVE_VENUE,
    PERP_VENUE,
    PaperConfigError,
    PaperFailed,
    PaperPlan,
    _bar_interval_ns,
    _ethereal_settlement,
    not_simulated_by_sandbox,
    not_simulated_by_sim,
    plan_paper,
    to_internal_bar_type,
    to_live_bar_type,
    to_live_id,
)
from nautilus_app.paper_recorder import PaperRecorder
from nautilus_app.paper_state import PaperState
from nautilus_app.venue.models import venue_fees


# ---- session ---------------------------------------------------------------------------------
class PaperSession:
    """One paper node: build, run until stopped, write results.

    Args:
        cfg: Validated run config with a ``[paper]`` table.
        run_id: Results folder name; default: the one stored in Redis for this trader (resume) or a new one.
        results_root: Default :func:`core.paths.results_dir`.
        config_text: Original TOML text (stored as ``config.toml``).
        max_bars: Stop after this many bars in this process (None: run until a signal).
        max_seconds: Stop after this many wall seconds (None: no limit).
        fresh: Delete this trader's Redis state first (a new session instead of a resume).

    Raises:
        PaperConfigError: see :func:`plan_paper`.
        PaperFailed: Redis unreachable.
    """

    def __init__(self, cfg: BacktestConfig, *, run_id: str | None = None, results_root: Path | None = None,
                 config_text: str | None = None, max_bars: int | None = None, max_seconds: float | None = None,
                 fresh: bool = False, source: str = "<config>") -> None:
        self.cfg = cfg
        self.plan = plan_paper(cfg, source)
        s = self.plan.settings
        self.state = PaperState(s.trader_id, s.redis_host, s.redis_port)
        try:
            self.state.ping()
        except Exception as e:  # noqa: BLE001 - redis raises several connection errors
            raise PaperFailed(f"Redis at {s.redis_host}:{s.redis_port} is not reachable: {e}") from e
        if fresh:
            self.state.clear()
        from nautilus_app.backtest import make_run_id

        meta = self.state.register_start(run_id or f"paper-{make_run_id(cfg)}", cfg.digest(),
                                         dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        self.run_id = meta["run_id"]
        self.starts = int(meta["starts"])
        root = Path(results_root) if results_root is not None else paths.results_dir()
        self.results_path = root / self.run_id
        self.results_path.mkdir(parents=True, exist_ok=True)
        self.config_text = config_text
        self.max_bars = max_bars
        self.max_seconds = max_seconds
        self.guard = StaleGuard()
        self.node: Any = None
        self.recorder: PaperRecorder | None = None
        self.strategies: list[Any] = []
        self._stop_reason: str | None = None
        self._lock = threading.Lock()
        self._handle: Any = None
        self._running = False
        # simulated execution (nautilus_app/paper_exec.py)
        self.simulated = self.plan.settings.execution == "simulated"
        self.sequencer: Any = None
        self.book: Any = None
        self.fed: list[tuple[Any, str, Any]] = []  # (strategy, bar type, strategies.hooks.BarDriver)
        self.trading = False
        self.suppressed = 0
        self.warm = False
        self.warm_message = "not started"
        self.warm_bars = 0  # history bars fed before the first live bar (warm-up of a fresh session)
        self.restart_replayed_bars = 0  # stored feed bars fed again at this restart (0 on a fresh start)
        self.catch_up_bars = 0  # bars missed while the node was down, taken from the venue's history (all starts)
        self.catch_up_traded = 0  # of which traded (at most max_catch_up_bars at a restart)
        self.bars_processed = 0
        self.failure: Exception | None = None
        if self.simulated:
            from nautilus_app.paper_exec import SimBook

            self.book = SimBook(s.trader_id, s.redis_host, s.redis_port)

    @property
    def cache(self) -> Any:
        """The node's cache: through the recorder while the node runs (the node must not be re-entered
        from a component callback), directly afterwards."""
        if self._running and self.recorder is not None:
            return self.recorder.cache
        return self.node.cache

    # -- build (nautilus_app/paper_node.py)
    def build(self) -> Any:
        """Build the ``LiveNode`` (data client, execution client, strategies with their hooks, recorder)."""
        from nautilus_app.paper_node import build_node

        return build_node(self)

    # -- simulated execution: hooks of the sequencer
    def _funding_for(self, iid: str, prev_ns: int, close_ns: int) -> Any:
        return self.recorder.funding_for(iid, prev_ns, close_ns) if self.recorder is not None else None

    def feed_strategies(self, bar: Any, *, trading: bool) -> None:
        """Update each strategy's indicators with ``bar`` and call its ``on_bar`` (orders only if ``trading``)."""
        bt = str(bar.bar_type)
        self.trading = trading
        try:
            for _strategy, strategy_bt, driver in self.fed:
                if strategy_bt == bt:
                    driver.deliver(bar)
        finally:
            self.trading = self.warm

    def liquidation_order(self, d: dict) -> str | None:
        """Submit the close of a liquidated position as its strategy's reduce-only market order tagged
        ``LIQUIDATION`` (as the backtest's liquidation actor does); returns its client order id."""
        from nautilus_trader.model import OrderSide, Quantity, TimeInForce

        from nautilus_app.venue.fill_timing import LIQUIDATION_TAG

        iid, sid = d["key"].split("|")
        for strategy, _bt, _driver in self.fed:
            if strategy.strategy_id.value != sid:
                continue
            inst = strategy.cache.instrument(InstrumentId.from_str(iid))
            order = strategy.order_factory.market(
                InstrumentId.from_str(iid), OrderSide.SELL if d["side"] == "SELL" else OrderSide.BUY,
                Quantity(d["qty"], inst.size_precision), time_in_force=TimeInForce.GTC, reduce_only=True,
                tags=[LIQUIDATION_TAG])
            strategy.send_ungated("submit_order", order)  # the venue's own close: past the session's gates
            _event(logging.WARNING, "position liquidated", instrument_id=self.plan.reverse_ids.get(iid, iid),
                   strategy_id=sid, price=d["price"], ts=str(pd.Timestamp(d["ts"], tz="UTC")))
            return order.client_order_id.value
        _event(logging.ERROR, "liquidation: no strategy owns the position", key=d["key"])
        return None

    def record_funding(self, rows: list[dict]) -> None:
        for r in rows:
            _event(logging.INFO, "funding settled", instrument_id=self.plan.reverse_ids.get(r["instrument_id"]),
                   amount=r["amount"], rate=r["rate"], mark=r["mark"], qty=r["qty"],
                   funding_ts=str(pd.Timestamp(r["ts"], tz="UTC")))

    async def publish_bar(self, bar: Any) -> None:
        """Ethereal: put the bar the strategies are about to see into Nautilus's cache (through the data
        client), so positions are priced at its close, as in the backtest (no trade ticks reach the cache)."""
        import asyncio

        from nautilus_trader.model import Bar

        client = getattr(getattr(self, "data_factory", None), "last_client", None)
        if client is None:
            return
        # the marks stamped before the bar's close first (the backtest processes a mark stamped at the
        # close after the bar), then the bar as the venue's candle (EXTERNAL, the backtest's bar type):
        # Nautilus prices orders and positions from them (an INTERNAL bar, which nobody aggregated, is not)
        rec = self.recorder
        if rec is not None and rec.pending_marks:
            due = [m for m in rec.pending_marks if m.ts_event < bar.ts_event]
            rec.pending_marks = [m for m in rec.pending_marks if m.ts_event >= bar.ts_event]
            for m in due:
                client._handle_data(m)
        bt = BarType.from_str(str(bar.bar_type).replace("-INTERNAL", "-EXTERNAL"))
        bar = Bar(bt, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.ts_event, bar.ts_init)
        client._handle_data(bar)
        t_end = time.monotonic() + 2
        while time.monotonic() < t_end:
            last = self.cache.bar(bar.bar_type)
            if last is not None and last.ts_event >= bar.ts_event:
                return
            await asyncio.sleep(0.001)
        _event(logging.WARNING, "bar did not reach Nautilus's cache", bar_type=str(bar.bar_type), ts=bar.ts_event)

    def set_warm_status(self, warm: bool, message: str, bars: int) -> None:
        self.warm, self.warm_message, self.warm_bars = warm, message, bars
        self.trading = warm
        _event(logging.INFO if warm else logging.WARNING, "strategies warm: trading allowed" if warm else
               "strategies warming up: trading refused until warm", detail=message, bars=bars)
        if self.recorder is not None:
            self.write_status(self.recorder, reason="warm" if warm else "warming")

    def event(self, name: str, **fields: Any) -> None:
        _event(logging.INFO, name, **fields)

    def sequencer_failed(self, e: Exception) -> None:
        self.failure = e
        _event(logging.ERROR, "paper sequencer failed: stopping", error=repr(e))
        self.request_stop(f"sequencer failed: {e!r}")

    def on_bar_processed(self, rec: list, live: bool) -> None:
        """After the sequencer committed a bar: record its close, status, results, ``max_bars``."""
        bt = rec[0]
        iid = str(BarType.from_str(bt).instrument_id)
        self.state.add_bar(int(rec[1]), time.time_ns(), self.plan.reverse_ids.get(iid, iid), float(rec[5]))
        rec_ = self.recorder
        if rec_ is not None:
            rec_.last_close[iid] = float(rec[5])
            rec_.last_market_ns = int(rec[1])
        self.bars_processed += 1
        if rec_ is not None and self.bars_processed % self.plan.settings.status_every_bars == 0:
            self.write_status(rec_, reason="bar")
        now = time.monotonic()
        if rec_ is not None and now - rec_._last_results >= self.plan.settings.results_every_seconds:
            rec_._last_results = now
            self.write_results_safe()
        self.on_bar_counted(self.bars_processed)

    # -- history for the warm-up and catch-up (nautilus_app/paper_history.py; called by the sequencer)
    def history_bars(self) -> list[list]:
        """Warm-up bars of a new session (:func:`nautilus_app.paper_history.history_bars`)."""
        from nautilus_app.paper_history import history_bars

        return history_bars(self)

    def recent_bars(self, live_bt: str, after_ns: int, before_ns: int) -> list[list]:
        """The venue's bars of ``live_bt`` closing in ``(after_ns, before_ns)`` (:func:`nautilus_app.paper_history.recent_bars`)."""
        from nautilus_app.paper_history import recent_bars

        return recent_bars(self, live_bt, after_ns, before_ns)

    # -- run / stop
    def request_stop(self, reason: str) -> None:
        """Ask the node to stop (thread-safe; the first reason wins)."""
        with self._lock:
            if self._stop_reason is not None:
                return
            self._stop_reason = reason
        _event(logging.INFO, "stop requested", reason=reason)
        if self.sequencer is not None:
            self.sequencer.stopping = True
        if self._handle is not None:
            self._handle.stop()

    def on_bar_counted(self, bars: int) -> None:
        if self.max_bars is not None and bars >= self.max_bars:
            self.request_stop(f"max_bars={self.max_bars} reached")

    def run(self) -> Path:
        """Build if needed, run until stopped (SIGINT/SIGTERM, ``max_bars``, ``max_seconds``), write results.

        Returns:
            The results folder.
        """
        if self.node is None:
            self.build()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda signum, frame: self.request_stop(signal.Signals(signum).name))
        timer = None
        if self.max_seconds is not None:
            timer = threading.Timer(self.max_seconds, self.request_stop, args=(f"max_seconds={self.max_seconds}",))
            timer.daemon = True
            timer.start()
        for item in self.plan.not_simulated:
            _event(logging.WARNING, "backtest model not simulated in paper", detail=item)
        _event(logging.INFO, "paper node starting", run_id=self.run_id, trader_id=self.plan.settings.trader_id,
               start_number=self.starts, results=str(self.results_path), venue=self.plan.venue.name,
               data_base_url_http=self.plan.settings.base_url_http or "binance default")
        t0 = time.monotonic()
        self._running = True
        try:
            self.node.run()
        finally:
            self._running = False
            if timer is not None:
                timer.cancel()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.failure is not None:
            self.write_results(final=True)
            self.node.dispose()
            raise PaperFailed(f"paper sequencer failed: {self.failure!r}")
        self.write_results(final=True)
        if self.recorder is not None:
            self.write_status(self.recorder, reason="stopped")
        _event(logging.INFO, "paper node stopped", reason=self._stop_reason, seconds=round(time.monotonic() - t0, 3),
               bars=self.recorder.bars_seen if self.recorder else 0)
        self.node.dispose()
        return self.results_path

    # -- status (nautilus_app/paper_status.py)
    def write_status(self, rec: PaperRecorder, reason: str) -> None:
        """``status.json`` (:func:`nautilus_app.paper_status.write_status`); never raises."""
        from nautilus_app.paper_status import write_status

        write_status(self, rec, reason)

    # -- results
    def write_results_safe(self) -> None:
        try:
            self.write_results(final=False)
        except Exception as e:  # noqa: BLE001 - a results rewrite must never take the node down
            _event(logging.ERROR, "results write failed", error=repr(e))

    def write_results(self, final: bool) -> None:
        """Write ``results/<run_id>/`` in the backtest format (each file atomically; ``metrics.json`` last)."""
        write_paper_results(self, final=final)


def _venue(name: str) -> Any:
    from nautilus_trader.model import Venue

    return Venue(name)


def write_paper_results(session: PaperSession, *, final: bool) -> Path:
    """Write the session's ``results/<run_id>/`` in the backtest schema through :mod:`nautilus_app.results`
    (tables collected by :func:`~nautilus_app.results.collect.paper_session_tables`, written by
    :func:`~nautilus_app.results.writer.write_session_results`: each file atomically, ``metrics.json`` last).

    Times: fills, positions and trades are stamped in *market* time (the close of the bar they
    belong to); the wall-clock times are kept in ``ts_event_wall`` (fills). Instrument ids are the
    config's. ``run.json`` carries ``mode = "paper"`` and ``running`` (False after the final write).
    """
    import nautilus_trader

    from nautilus_app.results import build_equity, build_trades, buy_and_hold, write_session_results
    from nautilus_app.results.collect import paper_session_tables

    cfg, plan = session.cfg, session.plan
    orders_all, tables, closes, n_bars = paper_session_tables(session)
    run_info: dict[str, Any] = {
        "run_id": session.run_id, "name": cfg.name, "mode": "paper", "running": not final,
        "config_digest": cfg.digest(), "nautilus_trader": nautilus_trader.__version__,
        "trader_id": plan.settings.trader_id, "starts": session.starts, "bars_recorded": n_bars,
        "orders": len(orders_all), "data_source": plan.settings.data_source,
        "data_base_url_http": plan.settings.base_url_http,
        **({"execution": "simulated execution client (nautilus_app/paper_exec.py; book in Redis, simpaper:<trader_id>:*)",
            "funding": "debited from the paper balance at each settlement with the live mark price",
            "fill_timing": plan.venue.fill_timing, "slippage": plan.venue.slippage,
            "latency": plan.venue.latency is not None,
            "liquidation": bool(plan.venue.account_type == "MARGIN" and plan.venue.liquidation),
            "margin_mode": plan.venue.margin_mode, "warm_bars": session.warm_bars,
            "catch_up_bars": session.catch_up_bars, "catch_up_bars_traded": session.catch_up_traded,
            "restart_replayed_bars": session.restart_replayed_bars}
           if session.simulated else
           {"execution": "Ethereal paper execution client (book in Redis, ethpaper:<trader_id>:*)",
            "funding": "recorder ledger from Ethereal Ticker funding updates (not in the paper balance)",
            "fill_timing": "next quote after submission (ask for buys, bid for sells)"}
           if plan.product == "ethereal" else
           {"execution": "Nautilus sandbox (bar_execution)",
            "funding": "recorder ledger from markPrice funding updates (not in the sandbox balance)",
            "fill_timing": "same_close (Nautilus sandbox, bar_execution)"}), "not_simulated": plan.not_simulated,
        "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    equity = trades = bench = start_equity = None
    if closes:
        equity, start_equity = build_equity(cfg, tables["fills"], tables["funding"], closes)
        trades = build_trades(tables["positions"], tables["funding"])
        first_iid = next(iter(closes))
        bench = buy_and_hold(closes[first_iid], venue_fees(plan.venue)[1]).reindex(equity.index, method="ffill")
    write_session_results(
        session.results_path, cfg=cfg, run_info=run_info, tables=tables, config_text=session.config_text,
        equity=equity, trades=trades, starting_equity=start_equity, bench=bench, tearsheet=final,
        on_tearsheet_error=lambda e: _event(logging.WARNING, "tearsheet not written", error=repr(e)))
    return session.results_path


# ---- command line ------------------------------------------------------------------------------
from nautilus_app.paper_options import add_paper_arguments  # noqa: E402,F401 - re-exported


def run_paper_from_args(args: Any) -> int:
    """Load the config, apply overrides, run the session. Exit codes: 0 ok, 1 failed, 2 bad config."""
    import msgspec

    from nautilus_app.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
        s = cfg.paper
        if s is None:
            raise PaperConfigError(f"{args.config}: key paper: missing; add a [paper] table (see docs/paper.md)")
        overrides = {k: v for k, v in {
            "trader_id": args.trader_id, "base_url_http": args.base_url_http, "base_url_ws": args.base_url_ws,
            "stale_after_seconds": args.stale_after}.items() if v is not None}
        if overrides:
            s = msgspec.convert({**msgspec.to_builtins(s), **overrides}, PaperSettings)
            cfg = msgspec.structs.replace(cfg, paper=s)
        session = PaperSession(cfg, run_id=args.run_id, results_root=args.results_dir,
                               config_text=Path(args.config).read_text(), max_bars=args.max_bars,
                               max_seconds=args.max_seconds, fresh=args.fresh, source=str(args.config))
    except (ConfigError, PaperConfigError, msgspec.ValidationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except PaperFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    setup_json_logging(("nautilus_app.paper",), session.results_path / "paper.log.jsonl")
    try:
        path = session.run()
    except Exception as e:  # noqa: BLE001 - report any node failure with a clear exit code
        _event(logging.ERROR, "paper node failed", error=repr(e))
        return 1
    print(str(path))
    return 0
