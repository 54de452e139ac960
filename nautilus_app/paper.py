"""Paper trading: the backtest's strategies and config on a Nautilus ``LiveNode`` in the SANDBOX environment.

Flow: run config with a ``[paper]`` table -> :func:`plan_paper` (venue/instrument mapping, checks)
-> ``LiveNode`` with Nautilus's Rust Binance data client, the sandbox execution client (same fee
model, account type, OMS and leverage as the backtest venue), the Redis cache database and our
:class:`PaperRecorder` actor -> the registered strategies, unchanged -> ``results/<run_id>/`` in
the backtest format, rewritten while the node runs.

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
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.common import DataActor, DataActorConfig
from nautilus_trader.model import ActorId, BarType, InstrumentId

from nautilus_app.config import BacktestConfig
from nautilus_app.core import paths
from nautilus_app.jsonlog import setup_json_logging
from nautilus_app.paper_config import PaperSettings
from nautilus_app.paper_state import PaperState

log = logging.getLogger("nautilus_app.paper")

LIVE_VENUE = "BINANCE"
PERP_VENUE = "BINANCE_USDM"
ETHEREAL_VENUE_NAME = "ETHEREAL"



def _ethereal_settlement(venue: Any) -> str:
    """Ethereal's settlement currency for the paper book: the venue's starting-balance currency
    (``"10000 USDT"`` keeps the legacy USDT mapping of USDe, ``"10000 USDE"`` uses Nautilus's USDE)."""
    ccy = venue.starting_balances[0].split()[1].upper()
    return ccy if ccy in ("USDE", "USDT") else "USDE"

class PaperConfigError(ValueError):
    """The config cannot run as a paper session (names the key, the value and what was expected)."""


class PaperFailed(RuntimeError):
    """The paper node could not start or stopped with an error."""


def _event(level: int, event: str, **fields: Any) -> None:
    log.log(level, event, extra={"fields": fields})


# ---- plan ------------------------------------------------------------------------------------
def to_live_id(iid: str) -> str:
    """Config instrument id -> id of Nautilus's Binance client (``X-PERP.BINANCE_USDM`` -> ``X-PERP.BINANCE``)."""
    i = InstrumentId.from_str(iid)
    return f"{i.symbol}.{LIVE_VENUE}" if str(i.venue) == PERP_VENUE else iid


def to_live_bar_type(bt: str) -> str:
    """Config bar type -> live bar type (instrument id mapped by :func:`to_live_id`)."""
    b = BarType.from_str(bt)
    iid = str(b.instrument_id)
    return bt.replace(iid, to_live_id(iid), 1)


@dataclass(frozen=True)
class PaperPlan:
    """What :func:`plan_paper` derived from the config.

    Attributes:
        settings: The ``[paper]`` table.
        venue: The config venue traded (its fees, balances, account type, leverage).
        product: ``"um"`` (Binance USDT-M perpetuals), ``"spot"`` or ``"ethereal"`` (Ethereal perpetuals).
        id_map: config instrument id -> live instrument id.
        bar_map: config bar type -> live bar type.
        interval_ns: Bar interval (ns) of the config's bar types (all equal).
        stale_after_s: Seconds without a bar before the feed counts as stale.
        leverage: The sandbox ``default_leverage``.
    """

    settings: PaperSettings
    venue: Any
    product: str
    id_map: dict[str, str]
    bar_map: dict[str, str]
    interval_ns: int
    stale_after_s: float
    leverage: Decimal
    perps: list[str] = field(default_factory=list)
    not_simulated: list[str] = field(default_factory=list)
    live_venue: str = LIVE_VENUE

    @property
    def is_margin(self) -> bool:
        """Perpetuals (equity = balance + unrealized PnL), not spot."""
        return self.product in ("um", "ethereal")

    @property
    def reverse_ids(self) -> dict[str, str]:
        """live instrument id -> config instrument id."""
        return {v: k for k, v in self.id_map.items()}


def plan_paper(cfg: BacktestConfig, source: str = "<config>") -> PaperPlan:
    """Check that ``cfg`` can run as a paper session and derive the live mapping.

    Raises:
        PaperConfigError: no ``[paper]`` table; data source not available; more than one venue;
            a venue other than ``BINANCE``/``BINANCE_USDM``; per-instrument leverages that differ
            from ``default_leverage``; bar types of different intervals or not time bars.
    """
    s = cfg.paper
    if s is None:
        raise PaperConfigError(f"{source}: key paper: missing; add a [paper] table (see docs/paper.md)")
    if len(cfg.venues) != 1:
        raise PaperConfigError(
            f"{source}: key venues = {[v.name for v in cfg.venues]!r}: expected exactly one venue per paper node "
            "(Nautilus's Binance client puts spot and USDT-M on the same venue BINANCE, and the sandbox keeps one "
            "account per venue); run one paper node per venue")
    venue = cfg.venues[0]
    if s.data_source == "ethereal":
        return _plan_ethereal(cfg, s, venue, source)
    if venue.name not in (LIVE_VENUE, PERP_VENUE):
        raise PaperConfigError(f"{source}: key venues[0].name = {venue.name!r}: expected 'BINANCE' (spot) or "
                               f"'BINANCE_USDM' (USDT-M) for data_source 'binance'")
    product = "um" if venue.name == PERP_VENUE else "spot"
    levs = set(venue.leverages.values())
    if s.execution == "sandbox" and levs and levs != {venue.default_leverage}:
        raise PaperConfigError(
            f"{source}: key venues[0].leverages = {dict(venue.leverages)!r}: the rc7 sandbox has only one "
            f"default_leverage ({venue.default_leverage}); set every per-instrument leverage to it")
    interval_ns = _bar_interval_ns(cfg, source)
    id_map = {iid: to_live_id(iid) for iid in cfg.instrument_ids()}
    bar_map = {bt: to_live_bar_type(bt) for bt in cfg.bar_types}
    stale = s.stale_after_seconds if s.stale_after_seconds is not None else 2 * interval_ns / 1e9
    perps = [iid for iid in id_map if "-PERP" in iid]
    not_sim = not_simulated_by_sandbox(venue) if s.execution == "sandbox" else not_simulated_by_sim(venue)
    return PaperPlan(s, venue, product, id_map, bar_map, interval_ns, stale,
                     Decimal(str(venue.default_leverage)), perps, not_sim)


def _bar_interval_ns(cfg: BacktestConfig, source: str) -> int:
    intervals = set()
    for bt in cfg.bar_types:
        spec = BarType.from_str(bt).spec
        if not spec.is_time_aggregated():
            raise PaperConfigError(f"{source}: key bar_types = {bt!r}: expected a time bar (e.g. 1-MINUTE)")
        intervals.add(spec.get_interval_ns())
    if len(intervals) != 1:
        raise PaperConfigError(f"{source}: key bar_types = {cfg.bar_types!r}: expected one bar interval")
    return intervals.pop()


def to_internal_bar_type(bt: str) -> str:
    """``X-1-MINUTE-LAST-EXTERNAL`` -> ``X-1-MINUTE-LAST-INTERNAL`` (Ethereal has no candle stream:
    Nautilus aggregates live bars from the trade stream). INTERNAL bar types are unchanged."""
    return bt[: -len("-EXTERNAL")] + "-INTERNAL" if bt.endswith("-EXTERNAL") else bt


def _plan_ethereal(cfg: BacktestConfig, s: PaperSettings, venue: Any, source: str) -> PaperPlan:
    """Plan for ``data_source = "ethereal"``: our Ethereal data client + our Redis-backed paper execution."""
    if venue.name != ETHEREAL_VENUE_NAME:
        raise PaperConfigError(f"{source}: key venues[0].name = {venue.name!r}: expected 'ETHEREAL' for "
                               "paper.data_source = 'ethereal'")
    if venue.account_type != "MARGIN":
        raise PaperConfigError(f"{source}: key venues[0].account_type = {venue.account_type!r}: expected 'MARGIN' "
                               "(Ethereal trades perpetuals)")
    if getattr(venue, "oms_type", "NETTING") != "NETTING":
        raise PaperConfigError(f"{source}: key venues[0].oms_type = {venue.oms_type!r}: expected 'NETTING' "
                               "(Ethereal nets positions per product)")
    for bt in cfg.bar_types:
        if BarType.from_str(bt).spec.price_type.name != "LAST":
            raise PaperConfigError(f"{source}: key bar_types = {bt!r}: expected LAST bars (built from Ethereal trades)")
    if s.execution != "simulated":
        raise PaperConfigError(f"{source}: key paper.execution = {s.execution!r}: Ethereal paper trading runs on the "
                               "simulated execution client only (expected 'simulated')")
    interval_ns = _bar_interval_ns(cfg, source)
    id_map = {iid: iid for iid in cfg.instrument_ids()}
    bar_map = {bt: to_internal_bar_type(bt) for bt in cfg.bar_types}
    stale = s.stale_after_seconds if s.stale_after_seconds is not None else 2 * interval_ns / 1e9
    not_sim = not_simulated_by_sim(venue)
    not_sim.append("bars: Ethereal has no candle stream; live bars are aggregated by Nautilus from the trade stream "
                   "on the wall clock (the backtest's bars are Ethereal's own candles)")
    return PaperPlan(s, venue, "ethereal", id_map, bar_map, interval_ns, stale,
                     Decimal(str(venue.default_leverage)), list(id_map), not_sim, live_venue=ETHEREAL_VENUE_NAME)


def not_simulated_by_sim(venue: Any) -> list[str]:
    """What the simulated execution client (:mod:`nautilus_app.paper_exec`) does not do as the backtest does."""
    out = ["order types: MARKET and STOP_MARKET only (LIMIT and others are denied); modify is rejected"]
    if venue.account_type == "MARGIN":
        out.append("mark price: liquidation is checked on bars (last price), as in the backtest; funding uses the "
                   "live mark price")
    return out


def not_simulated_by_sandbox(venue: Any) -> list[str]:
    """Backtest venue models the rc7 sandbox cannot apply, as sentences (logged and stored in run.json).

    The sandbox fills market orders at the signal bar's close (``fill_timing = "same_close"``), has
    no slippage model of ours, no liquidation, no isolated margin, no latency model and no margin
    brackets. Paper results are then comparable to a backtest with ``fill_timing = "same_close"``,
    ``slippage = "none"``, ``liquidation = false``.
    """
    out = []
    if getattr(venue, "fill_timing", "same_close") != "same_close":
        out.append(f"fill_timing={venue.fill_timing!r}: the sandbox fills market orders at the signal bar's close "
                   "(same_close)")
    if getattr(venue, "slippage", "none") != "none":
        out.append(f"slippage={venue.slippage!r}: not applied by the sandbox (fills at the bar close)")
    if getattr(venue, "latency", None) is not None:
        out.append("latency: not applied by the sandbox")
    if venue.account_type == "MARGIN" and getattr(venue, "liquidation", False):
        out.append("liquidation: the sandbox does not liquidate (watch status.json equity)")
    if getattr(venue, "margin_mode", "cross") != "cross":
        out.append(f"margin_mode={venue.margin_mode!r}: the sandbox margin is cross-account only")
    if getattr(venue, "brackets", None):
        out.append("brackets: the sandbox uses the Binance client's flat instrument margins")
    return out


# ---- recorder actor ----------------------------------------------------------------------------
class StaleGuard:
    """Shared flag: while the feed is stale, new orders from strategies are held (not submitted)."""

    def __init__(self) -> None:
        self.stale = False
        self.held: list[dict[str, Any]] = []


def guard_strategy(strategy: Any, guard: StaleGuard) -> None:
    """Wrap ``strategy.submit_order`` so new orders are held (logged, not sent) while the feed is stale.

    Closing orders go through ``close_all_positions`` (Rust) and are not held: reducing risk on a
    stale feed stays possible. The strategy's class is not changed.
    """
    original = strategy.submit_order

    def submit_order(order: Any, *args: Any, **kwargs: Any) -> None:
        if guard.stale and not getattr(order, "is_reduce_only", False):
            info = {"strategy_id": str(strategy.id), "client_order_id": str(order.client_order_id),
                    "side": str(order.side), "quantity": str(order.quantity)}
            guard.held.append(info)
            _event(logging.WARNING, "order held: market data feed is stale", **info)
            return None
        return original(order, *args, **kwargs)

    strategy.submit_order = submit_order


def clock_strategy(strategy: Any, session: PaperSession) -> None:
    """Wrap ``strategy.on_bar`` to record (wall time at entry, market time of the bar) in Redis.

    Orders are created synchronously inside ``on_bar``, so an order's ``ts_init`` (wall clock) falls
    after the entry of the ``on_bar`` call that created it and before the next one: that is how
    fills are stamped with the market time of their bar. (The data client's ``ts_init`` of a bar
    cannot be used: under load several bars are parsed before the strategy processes the first.)
    """
    original = strategy.on_bar
    interval = session.plan.interval_ns

    def on_bar(bar: Any) -> None:
        market_ns = -(-bar.ts_event // interval) * interval
        session.state.add_mark(time.time_ns(), market_ns)
        return original(bar)

    strategy.on_bar = on_bar


_GATED = ("cancel_order", "modify_order", "cancel_all_orders", "close_position", "close_all_positions",
          "submit_order_list")


def sequence_strategy(strategy: Any, session: PaperSession, bar_type: str) -> None:
    """Let :class:`~nautilus_app.paper_exec.BarSequencer` drive ``strategy`` (simulated execution).

    Instance attributes only (the class is unchanged): ``register_indicator_for_bars`` records the
    indicators instead of handing them to Nautilus (the sequencer updates them before each
    ``on_bar``), Nautilus's own ``on_bar`` calls do nothing (the sequencer calls the original), and
    orders/cancels go through only while the session may trade (warm and not replaying history);
    new orders are held while the feed is stale, as before.
    """
    regs: list[tuple[str, Any]] = []
    strategy.register_indicator_for_bars = lambda bt, ind: regs.append((str(bt), ind))
    original_on_bar = strategy.on_bar
    strategy.on_bar = lambda bar: None
    original_submit = strategy.submit_order
    guard = session.guard

    def submit_order(order: Any, *args: Any, **kwargs: Any) -> None:
        if not session.trading:
            session.suppressed += 1
            return None
        if guard.stale and not getattr(order, "is_reduce_only", False):
            info = {"strategy_id": str(strategy.id), "client_order_id": str(order.client_order_id),
                    "side": str(order.side), "quantity": str(order.quantity)}
            guard.held.append(info)
            _event(logging.WARNING, "order held: market data feed is stale", **info)
            return None
        session.sequencer.note_sent(strategy, order)
        return original_submit(order, *args, **kwargs)

    strategy.submit_order = submit_order

    def gated(name: str) -> Any:
        original = getattr(strategy, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if not session.trading:
                return None
            if name in ("cancel_order", "modify_order"):  # the backtest's latency draws for these too
                session.sequencer.sim.arrival(strategy.strategy_id.value, session.sequencer.market_now)
            return original(*args, **kwargs)
        return call

    for name in _GATED:
        setattr(strategy, name, gated(name))
    session.fed.append((strategy, bar_type, original_on_bar, regs, original_submit))


class PaperRecorder(DataActor):
    """Records the session (bars, funding, status, results) and watches the feed.

    Args:
        session: The owning :class:`PaperSession` (plan, state, results folder, stop handle).
    """

    def __new__(cls, *args: object, **kwargs: object) -> PaperRecorder:
        return super().__new__(cls)

    def __init__(self, session: PaperSession) -> None:
        super().__init__(DataActorConfig(actor_id=ActorId("PAPER_RECORDER-001")))
        self.session = session
        self.plan = session.plan
        self.bars_seen = 0
        self.last_bar_wall: float | None = None
        self.last_market_ns: int | None = None
        self.last_close: dict[str, float] = {}
        self.next_funding: dict[str, tuple[int, Decimal]] = {}  # live iid -> (funding ns, rate)
        self.mark: dict[str, float] = {}
        self.mark_history: dict[str, list[tuple[int, float]]] = {}
        self.funding_schedule: dict[str, dict[int, Decimal]] = {}
        self._last_results = 0.0
        self._started_wall = time.monotonic()

    # -- lifecycle
    def on_start(self) -> None:
        for bt in self.plan.bar_map.values():
            self.subscribe_bars(BarType.from_str(bt))
        for iid in self.plan.perps:
            live = InstrumentId.from_str(self.plan.id_map[iid])
            self.subscribe_mark_prices(live)
            self.subscribe_funding_rates(live)
        if self.plan.product == "ethereal":  # the paper execution client matches on cached quotes
            for iid in self.plan.id_map.values():
                self.subscribe_quotes(InstrumentId.from_str(iid))
        period = max(self.plan.stale_after_s / 4, 0.05)
        self.clock.set_timer("paper-stale-check", dt.timedelta(seconds=period), callback=self._check_stale)
        self.last_bar_wall = time.monotonic()
        self.session.write_status(self, reason="start")

    def on_stop(self) -> None:
        self.session.write_status(self, reason="stop")

    # -- data
    def on_bar(self, bar: Any) -> None:
        if self.session.sequencer is not None:
            self._on_bar_simulated(bar)
            return
        now = time.monotonic()
        interval = self.plan.interval_ns
        market_ns = -(-bar.ts_event // interval) * interval  # Binance stamps close-1 ms: round up to the close
        live_iid = str(bar.bar_type.instrument_id)
        close = float(bar.close)
        self.last_close[live_iid] = close
        # wall arrival time = the data client's ts_init (set before any handler runs, so fills of
        # orders submitted on this bar are always later than it)
        self.session.state.add_bar(market_ns, int(bar.ts_init), self.plan.reverse_ids.get(live_iid, live_iid), close)
        if self.session.guard.stale:
            self.session.guard.stale = False
            _event(logging.WARNING, "market data feed recovered: orders allowed again",
                   silent_seconds=round(now - (self.last_bar_wall or now), 3), bar_ts=str(pd.Timestamp(market_ns, tz="UTC")))
        self.last_bar_wall = now
        self.last_market_ns = market_ns
        self.bars_seen += 1
        self._settle_funding(live_iid, market_ns)
        if self.bars_seen % self.plan.settings.status_every_bars == 0:
            self.session.write_status(self, reason="bar")
        if now - self._last_results >= self.plan.settings.results_every_seconds:
            self._last_results = now
            self.session.write_results_safe()
        self.session.on_bar_counted(self.bars_seen)

    def _on_bar_simulated(self, bar: Any) -> None:
        now = time.monotonic()
        if self.session.guard.stale:
            self.session.guard.stale = False
            _event(logging.WARNING, "market data feed recovered: orders allowed again",
                   silent_seconds=round(now - (self.last_bar_wall or now), 3))
        self.last_bar_wall = now
        self.bars_seen += 1
        self.session.sequencer.on_live_bar(str(bar.bar_type), bar)

    def on_mark_price(self, mark: Any) -> None:
        iid = str(mark.instrument_id)
        self.mark[iid] = float(mark.value)
        self.mark_history.setdefault(iid, []).append((int(mark.ts_event), float(mark.value)))
        del self.mark_history[iid][:-2000]

    def on_funding_rate(self, update: Any) -> None:
        nxt = getattr(update, "next_funding_ns", None)
        if nxt:
            self.next_funding[str(update.instrument_id)] = (int(nxt), Decimal(str(update.rate)))
            self.funding_schedule.setdefault(str(update.instrument_id), {})[int(nxt)] = Decimal(str(update.rate))

    def funding_for(self, iid: str, prev_ns: int, close_ns: int) -> tuple[int, Decimal, float] | None:
        """The announced settlement in ``(prev_ns, close_ns]`` of ``iid``: (time, rate, live mark at that time)."""
        sched = self.funding_schedule.get(iid, {})
        due = [f for f in sched if prev_ns < f <= close_ns]
        if not due:
            return None
        f_ns = min(due)
        marks = [v for t, v in self.mark_history.get(iid, []) if t <= f_ns]
        mark = marks[-1] if marks else self.session.sequencer.sim.last_bar.get(iid, {}).get("c")
        if mark is None:
            return None
        return f_ns, sched[f_ns], float(mark)

    def _settle_funding(self, live_iid: str, market_ns: int) -> None:
        """Settle a funding time the market clock has reached: ``-net qty x mark x rate`` (USDT)."""
        pending = self.next_funding.get(live_iid)
        if pending is None or market_ns < pending[0]:
            return
        funding_ns, rate = pending
        del self.next_funding[live_iid]
        iid = InstrumentId.from_str(live_iid)
        qty = 0.0
        pos_id = None
        for p in self.cache.positions_open(instrument_id=iid):
            qty += float(p.signed_qty)
            pos_id = str(p.id)
        mark = self.mark.get(live_iid, self.last_close.get(live_iid))
        if qty == 0.0 or mark is None:
            return
        amount = -qty * mark * float(rate)
        row = {"ts": funding_ns, "instrument_id": self.plan.reverse_ids.get(live_iid, live_iid),
               "position_id": pos_id, "amount": amount, "rate": str(rate), "mark": mark, "qty": qty}
        if self.session.state.add_funding(live_iid, funding_ns, row):
            _event(logging.INFO, "funding settled", **{**row, "ts": None, "funding_ts": str(pd.Timestamp(funding_ns, tz="UTC"))})

    # -- stale feed
    def _check_stale(self, event: Any) -> None:
        if self.last_bar_wall is None or self.session.guard.stale:
            return
        silent = time.monotonic() - self.last_bar_wall
        if silent > self.plan.stale_after_s:
            self.session.guard.stale = True
            _event(logging.WARNING, "market data feed is stale: holding new orders",
                   silent_seconds=round(silent, 3), stale_after_seconds=self.plan.stale_after_s,
                   last_bar_ts=None if self.last_market_ns is None else str(pd.Timestamp(self.last_market_ns, tz="UTC")))
            self.session.write_status(self, reason="stale")


# ---- session ---------------------------------------------------------------------------------
def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class PaperSession:
    """One paper node: build, run until stopped, write results.

    Args:
        cfg: Validated run config with a ``[paper]`` table.
        run_id: Results folder name; default: the one stored in Redis for this trader (resume) or a new one.
        results_root: Default :func:`nautilus_app.core.paths.results_dir`.
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
        self.fed: list[tuple[Any, str, Any, list, Any]] = []
        self.trading = False
        self.suppressed = 0
        self.warm = False
        self.warm_message = "not started"
        self.warm_bars = 0
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

    # -- build
    def build(self) -> Any:
        """Build the ``LiveNode`` (data client, sandbox execution, Redis cache, strategies, recorder)."""
        from nautilus_trader.adapters.binance import (
            BinanceDataClientConfig,
            BinanceDataClientFactory,
            BinanceEnvironment,
            BinanceProductType,
            BinanceSpotMarketDataMode,
        )
        from nautilus_trader.adapters.sandbox import (
            SandboxExecutionClientConfig,
            SandboxExecutionClientFactory,
        )
        from nautilus_trader.common import CacheConfig, Environment, FileWriterConfig, LoggerConfig, LogLevel
        from nautilus_trader.execution import MakerTakerFeeModel
        from nautilus_trader.infrastructure import RedisCacheConfig
        from nautilus_trader.live import LiveNode
        from nautilus_trader.model import AccountId, AccountType, Money, OmsType, TraderId, Venue

        s, v = self.plan.settings, self.plan.venue
        maker, taker = v.fees()
        if self.simulated:
            return self._build_simulated()
        if self.plan.product == "ethereal":
            return self._build_ethereal()
        data_cfg = BinanceDataClientConfig(
            product_type=BinanceProductType.USD_M if self.plan.product == "um" else BinanceProductType.SPOT,
            environment=getattr(BinanceEnvironment, s.environment),
            base_url_http=s.base_url_http, base_url_ws=s.base_url_ws,
            spot_market_data_mode=BinanceSpotMarketDataMode.Json,
            instrument_status_poll_secs=0,
            max_retries=s.max_retries, retry_delay_initial_ms=s.reconnect_initial_ms,
            retry_delay_max_ms=s.reconnect_max_ms,
        )
        # The sandbox publishes its starting balances on every connect: on a restart, start it from
        # the last account state Nautilus saved in Redis, or the restored balance would be reset.
        restored = self.state.last_account_balances(f"{LIVE_VENUE}-001")
        balances = restored or list(v.starting_balances)
        if restored:
            _event(logging.INFO, "account restored from Redis", balances=restored, start_number=self.starts)
        sandbox_cfg = SandboxExecutionClientConfig(
            venue=Venue(LIVE_VENUE),
            starting_balances=[Money.from_str(b) for b in balances],
            account_id=AccountId(f"{LIVE_VENUE}-001"),
            oms_type=getattr(OmsType, v.oms_type),
            account_type=getattr(AccountType, v.account_type),
            default_leverage=self.plan.leverage,
            fee_model=MakerTakerFeeModel(Decimal(str(maker)), Decimal(str(taker))),
            bar_execution=True,
        )
        level = getattr(LogLevel, self.cfg.log_level)
        logging_cfg = LoggerConfig(
            stdout_level=level, fileout_level=LogLevel.INFO, is_colored=False,
            file_config=FileWriterConfig(directory=str(self.results_path / "logs"),
                                         file_name=f"nautilus-{self.starts:03d}", file_format="json"),
        )
        self.node = (
            LiveNode.builder("PAPER", TraderId(s.trader_id), Environment.SANDBOX)
            .with_logging(logging_cfg)
            .with_cache_config(CacheConfig(flush_on_start=False, buffer_interval_ms=None))
            .with_cache_database_factory(RedisCacheConfig(host=s.redis_host, port=s.redis_port))
            .with_load_state(True)
            .with_save_state(True)
            .with_timeout_disconnection_secs(2)
            .with_delay_post_stop_secs(0)
            .add_data_client(LIVE_VENUE, BinanceDataClientFactory(), data_cfg)
            .add_simulated_exec_client(LIVE_VENUE, SandboxExecutionClientFactory(), sandbox_cfg)
            .build()
        )
        return self._add_components()

    def _binance_data_config(self) -> Any:
        from nautilus_trader.adapters.binance import (
            BinanceDataClientConfig,
            BinanceEnvironment,
            BinanceProductType,
            BinanceSpotMarketDataMode,
        )

        s = self.plan.settings
        return BinanceDataClientConfig(
            product_type=BinanceProductType.USD_M if self.plan.product == "um" else BinanceProductType.SPOT,
            environment=getattr(BinanceEnvironment, s.environment),
            base_url_http=s.base_url_http, base_url_ws=s.base_url_ws,
            spot_market_data_mode=BinanceSpotMarketDataMode.Json,
            instrument_status_poll_secs=0,
            max_retries=s.max_retries, retry_delay_initial_ms=s.reconnect_initial_ms,
            retry_delay_max_ms=s.reconnect_max_ms,
        )

    def _build_simulated(self) -> Any:
        """Node with the venue's market data and the simulated execution client (:mod:`nautilus_app.paper_exec`):
        the backtest's venue models, book in Redis (``simpaper:<trader_id>:*``) reconciled at start-up, bars
        driven by the :class:`~nautilus_app.paper_exec.BarSequencer`. No Nautilus cache database (rc7
        refuses one on nodes with Python clients)."""
        from nautilus_trader.common import Environment
        from nautilus_trader.config import DataClientConfig, ExecutionClientConfig
        from nautilus_trader.live import LiveNode
        from nautilus_trader.model import TraderId

        from nautilus_app.core.brackets import MarginError
        from nautilus_app.core.instruments import brackets_for
        from nautilus_app.paper_exec import BarSequencer, SimExecClientFactory, SimVenue

        plan, s, v = self.plan, self.plan.settings, self.plan.venue
        brackets: dict[str, Any] = {}
        leverages: dict[str, float] = {}
        if v.account_type == "MARGIN":
            start_date = self.cfg.start or dt.date.today().isoformat()
            for iid, live in plan.id_map.items():
                leverages[live] = v.leverage_for(iid)
                if v.liquidation and "-PERP" in iid:
                    symbol = iid.split(".")[0].removesuffix("-PERP")
                    try:
                        brackets[live] = brackets_for(symbol, start_date, v.bracket_overrides(),
                                                      catalog=self.cfg.catalog_path())
                    except MarginError as e:
                        raise PaperConfigError(f"venues[0]: liquidation needs brackets: {e}") from e
        sim = SimVenue(v, plan.live_venue, self.book, brackets=brackets, leverages=leverages,
                       cash=v.account_type == "CASH")
        self.sequencer = BarSequencer(self, sim, plan.interval_ns, self._funding_for)
        starting = {}
        for b in v.starting_balances:
            amount, ccy = b.split()
            starting[ccy] = amount
        factory = SimExecClientFactory(sim=sim, account_type=v.account_type, starting=starting,
                                       account_id=f"{plan.live_venue}-001")
        builder = (LiveNode.builder("PAPER", TraderId(s.trader_id), Environment.SANDBOX)
                   .with_logging(self._logging_config())
                   .with_timeout_connection(20).with_timeout_reconciliation(20)
                   .with_timeout_disconnection_secs(2)
                   .with_delay_post_stop_secs(0))
        if plan.product == "ethereal":
            from adapters.ethereal.config import EtherealDataClientConfig
            from adapters.ethereal.factories import EtherealDataClientFactory

            tickers = sorted({InstrumentId.from_str(i).symbol.value.removesuffix("-PERP") for i in plan.id_map})
            dcfg = EtherealDataClientConfig(
                network="testnet" if s.environment == "TESTNET" else "mainnet", rest_url=s.base_url_http,
                ws_url=s.base_url_ws, tickers=tickers, instrument_refresh_mins=0,
                ws_backoff_initial_s=s.reconnect_initial_ms / 1000, ws_backoff_max_s=s.reconnect_max_ms / 1000,
            settlement_currency=_ethereal_settlement(plan.venue))
            builder = builder.add_data_client(ETHEREAL_VENUE_NAME, EtherealDataClientFactory(dcfg), DataClientConfig())
        else:
            from nautilus_trader.adapters.binance import BinanceDataClientFactory

            builder = builder.add_data_client(LIVE_VENUE, BinanceDataClientFactory(), self._binance_data_config())
        self.node = builder.add_exec_client(plan.live_venue, factory, ExecutionClientConfig()).build()
        if factory.last_client is None:
            raise PaperFailed("the simulated execution client was not created by the node")
        factory.last_client.sequencer = self.sequencer
        self.exec_client = factory.last_client
        return self._add_components()

    # -- simulated execution: hooks of the sequencer
    def _funding_for(self, iid: str, prev_ns: int, close_ns: int) -> Any:
        return self.recorder.funding_for(iid, prev_ns, close_ns) if self.recorder is not None else None

    def feed_strategies(self, bar: Any, *, trading: bool) -> None:
        """Update each strategy's indicators with ``bar`` and call its ``on_bar`` (orders only if ``trading``)."""
        bt = str(bar.bar_type)
        self.trading = trading
        try:
            for _strategy, strategy_bt, on_bar, regs, _submit in self.fed:
                if strategy_bt != bt:
                    continue
                for rbt, ind in regs:
                    if rbt == bt:
                        ind.handle_bar(bar)
                on_bar(bar)
        finally:
            self.trading = self.warm

    def liquidation_order(self, d: dict) -> str | None:
        """Submit the close of a liquidated position as its strategy's reduce-only market order tagged
        ``LIQUIDATION`` (as the backtest's liquidation actor does); returns its client order id."""
        from nautilus_trader.model import OrderSide, Quantity, TimeInForce

        from nautilus_app.venue.fill_timing import LIQUIDATION_TAG

        iid, sid = d["key"].split("|")
        for strategy, _bt, _on_bar, _regs, submit in self.fed:
            if strategy.strategy_id.value != sid:
                continue
            inst = strategy.cache.instrument(InstrumentId.from_str(iid))
            order = strategy.order_factory.market(
                InstrumentId.from_str(iid), OrderSide.SELL if d["side"] == "SELL" else OrderSide.BUY,
                Quantity(d["qty"], inst.size_precision), time_in_force=TimeInForce.GTC, reduce_only=True,
                tags=[LIQUIDATION_TAG])
            submit(order)
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

    # -- history for the warm-up
    def _venue_now_ns(self) -> int:
        """The venue's clock (Binance ``/time``; the replay server answers its replay clock)."""
        if self.plan.product == "ethereal":
            return time.time_ns()
        base = self.plan.settings.base_url_http or (
            "https://fapi.binance.com" if self.plan.product == "um" else "https://api.binance.com")
        path = "/fapi/v1/time" if self.plan.product == "um" else "/api/v3/time"
        try:
            return int(_http_json(base + path)["serverTime"]) * 1_000_000
        except Exception as e:  # noqa: BLE001 - fall back to the wall clock
            _event(logging.WARNING, "venue time not available: using the wall clock", error=repr(e))
            return time.time_ns()

    def history_bars(self) -> list[list]:
        """Warm-up bars of a new session: up to ``warmup_bars`` bars closing after the config's ``start``
        and not after the venue's clock, from the catalog first, then the venue's recent klines."""
        from nautilus_app.paper_exec import bar_record

        n = self.plan.settings.warmup_bars
        if n == 0:
            return []
        now = self._venue_now_ns()
        interval = self.plan.interval_ns
        now = now // interval * interval  # the last bar closed at or before the venue's clock
        lo = now - n * interval
        if self.cfg.start is not None:
            lo = max(lo, self.cfg.start_ns())
        out: list[list] = []
        for cfg_bt, live_bt in self.plan.bar_map.items():
            recs = [bar_record(live_bt, b.ts_event, b) for b in self._catalog_bars(cfg_bt, lo, now)]
            last = recs[-1][1] if recs else lo
            if last < now:
                recs += self.recent_bars(live_bt, last, now + 1)
            out += recs
        out.sort(key=lambda r: (r[1], r[0]))
        return out

    def _catalog_bars(self, bt: str, lo: int, hi: int) -> list[Any]:
        """Catalog bars of ``bt`` closing in ``(lo, hi]`` (empty when the catalog has none)."""
        root = self.cfg.catalog_path()
        if not Path(root).exists():
            return []
        try:
            from catalog.compact import load_bars
            from catalog.reader import bar_store

            if bar_store(root, bt) == "compact":
                bars = load_bars(root, bt, lo + 1, hi + 1)
            else:
                from nautilus_trader.persistence import ParquetDataCatalog

                bars = ParquetDataCatalog(str(root)).query_bars([bt], start=lo + 1, end=hi)
        except Exception as e:  # noqa: BLE001 - no catalog data: the venue's klines
            _event(logging.WARNING, "catalog bars not available for the warm-up", bar_type=bt, error=repr(e))
            return []
        return [b for b in bars if lo < b.ts_event <= hi]

    def recent_bars(self, live_bt: str, after_ns: int, before_ns: int) -> list[list]:
        """The venue's klines of ``live_bt`` closing in ``(after_ns, before_ns)`` (Binance REST; none for Ethereal)."""
        if self.plan.product == "ethereal":
            return []
        from nautilus_app.testkit.replay import INTERVAL_MS

        b = BarType.from_str(live_bt)
        step_ms = self.plan.interval_ns // 1_000_000
        interval = next((k for k, v in INTERVAL_MS.items() if v == step_ms), None)
        if interval is None:
            return []
        symbol = b.instrument_id.symbol.value.removesuffix("-PERP")
        base = self.plan.settings.base_url_http or (
            "https://fapi.binance.com" if self.plan.product == "um" else "https://api.binance.com")
        path = "/fapi/v1/klines" if self.plan.product == "um" else "/api/v3/klines"
        out: list[list] = []
        start_ms = (after_ns // 1_000_000) - step_ms + 1  # the kline closing after `after_ns` opens at its close - step
        while True:
            url = f"{base}{path}?symbol={symbol}&interval={interval}&startTime={max(start_ms, 0)}&limit=1000"
            try:
                rows = _http_json(url)
            except Exception as e:  # noqa: BLE001 - warm-up goes on with what it has
                _event(logging.WARNING, "venue klines not available", url=url, error=repr(e))
                break
            if not rows:
                break
            for r in rows:
                close_ns = (int(r[0]) + step_ms) * 1_000_000
                if after_ns < close_ns < before_ns and int(r[6]) < self._venue_now_ns() // 1_000_000 + 1:
                    out.append([live_bt, close_ns, r[1], r[2], r[3], r[4], r[5]])
            last_open = int(rows[-1][0])
            if len(rows) < 1000 or (last_open + step_ms) * 1_000_000 >= before_ns:
                break
            start_ms = last_open + step_ms
        return out

    def _logging_config(self) -> Any:
        from nautilus_trader.common import FileWriterConfig, LoggerConfig, LogLevel

        return LoggerConfig(
            stdout_level=getattr(LogLevel, self.cfg.log_level), fileout_level=LogLevel.INFO, is_colored=False,
            file_config=FileWriterConfig(directory=str(self.results_path / "logs"),
                                         file_name=f"nautilus-{self.starts:03d}", file_format="json"),
        )

    def _add_components(self) -> Any:
        for strategy, bar_type in zip(self.make_strategies(), self._strategy_bar_types(), strict=True):
            if self.simulated:
                sequence_strategy(strategy, self, bar_type)
            else:
                guard_strategy(strategy, self.guard)
                clock_strategy(strategy, self)
            self.node.add_strategy(strategy)
            self.strategies.append(strategy)
        self.recorder = PaperRecorder(self)
        self.node.add_actor(self.recorder)
        self._handle = self.node.handle()
        return self.node

    def _build_ethereal(self) -> Any:
        """Node for ``data_source = "ethereal"``: :class:`adapters.ethereal.data.EtherealDataClient` and
        :class:`adapters.ethereal.paper_exec.EtherealPaperExecutionClient` (book in Redis, restored at
        start-up by Nautilus's reconciliation). No Nautilus cache database: rc7 refuses one on nodes
        with Python clients (NAUTILUS_NOTES §8)."""
        from nautilus_trader.common import Environment
        from nautilus_trader.config import DataClientConfig, ExecutionClientConfig
        from nautilus_trader.live import LiveNode
        from nautilus_trader.model import TraderId

        from adapters.ethereal.config import EtherealDataClientConfig
        from adapters.ethereal.factories import EtherealDataClientFactory
        from adapters.ethereal.paper_exec import EtherealPaperExecClientFactory

        s, v = self.plan.settings, self.plan.venue
        maker, taker = v.fees()
        tickers = sorted({InstrumentId.from_str(i).symbol.value.removesuffix("-PERP") for i in self.plan.id_map})
        dcfg = EtherealDataClientConfig(
            network="testnet" if s.environment == "TESTNET" else "mainnet", rest_url=s.base_url_http,
            ws_url=s.base_url_ws, tickers=tickers, instrument_refresh_mins=0,
            ws_backoff_initial_s=s.reconnect_initial_ms / 1000, ws_backoff_max_s=s.reconnect_max_ms / 1000,
            settlement_currency=_ethereal_settlement(self.plan.venue))
        self.exec_factory = EtherealPaperExecClientFactory(
            starting_balances=list(v.starting_balances), maker_fee=Decimal(str(maker)), taker_fee=Decimal(str(taker)),
            redis_host=s.redis_host, redis_port=s.redis_port)
        self.node = (
            LiveNode.builder("PAPER", TraderId(s.trader_id), Environment.SANDBOX)
            .with_logging(self._logging_config())
            .with_timeout_connection(20).with_timeout_reconciliation(20)
            .with_timeout_disconnection_secs(2)
            .with_delay_post_stop_secs(0)
            .add_data_client(ETHEREAL_VENUE_NAME, EtherealDataClientFactory(dcfg), DataClientConfig())
            .add_exec_client(ETHEREAL_VENUE_NAME, self.exec_factory, ExecutionClientConfig())
            .build()
        )
        return self._add_components()

    def _strategy_bar_types(self) -> list[str]:
        out = []
        for spec in self.cfg.strategies:
            bt = spec.params.get("bar_type", self.cfg.bar_types[0])
            out.append(self.plan.bar_map.get(bt, bt))
        return out

    def make_strategies(self) -> list[Any]:
        """The config's strategies, instantiated with live instrument ids and the backtest's order-id tags."""
        out = []
        for i, spec in enumerate(self.cfg.strategies):
            params = dict(spec.params)
            if "instrument_id" in params:
                params["instrument_id"] = self.plan.id_map.get(params["instrument_id"], params["instrument_id"])
            if "bar_type" in params:
                params["bar_type"] = self.plan.bar_map.get(params["bar_type"], params["bar_type"])
            if (self.plan.product == "ethereal" or self.simulated) and "instrument_id" in params:
                # reconciliation restores the Redis book as EXTERNAL orders/positions: let the strategy claim them
                params.setdefault("external_order_instrument_ids", [InstrumentId.from_str(params["instrument_id"])])
            out.append(spec.resolve().make_strategy(params, order_id_tag=f"{i:03d}"))
        return out

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

    # -- status
    def write_status(self, rec: PaperRecorder, reason: str) -> None:
        """``status.json``: equity, balances, positions, open orders, last data time, feed state."""
        try:
            cache = self.cache
            positions = [{
                "instrument_id": self.plan.reverse_ids.get(str(p.instrument_id), str(p.instrument_id)),
                "strategy_id": str(p.strategy_id), "side": str(p.side), "quantity": float(p.signed_qty),
                "avg_px_open": float(p.avg_px_open),
                "unrealized_pnl": self._upnl(p, rec), "position_id": str(p.id),
            } for p in cache.positions_open()]
            orders = [{
                "client_order_id": str(o.client_order_id), "instrument_id":
                    self.plan.reverse_ids.get(str(o.instrument_id), str(o.instrument_id)),
                "side": str(o.side), "type": str(o.order_type), "quantity": float(o.quantity),
                "status": str(o.status),
            } for o in cache.orders_open()]
            balances = {}
            acct = cache.account_for_venue(_venue(self.plan.live_venue))
            if acct is not None:
                for ccy, bal in acct.balances().items():
                    balances[str(ccy)] = float(bal.total.as_double())
            if self.simulated:  # funding is in the balance already
                funding = sum(r["amount"] for r in self.book.funding() if "amount" in r)
                equity = self._equity(balances, positions, rec)
            else:
                funding = sum(r["amount"] for r in self.state.funding())
                equity = self._equity(balances, positions, rec) + funding
            status = {
                "run_id": self.run_id, "trader_id": self.plan.settings.trader_id, "reason": reason,
                "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "start_number": self.starts, "bars_this_start": rec.bars_seen,
                "last_data_ts": None if rec.last_market_ns is None else str(pd.Timestamp(rec.last_market_ns, tz="UTC")),
                "feed_stale": self.guard.stale, "orders_held": len(self.guard.held),
                "balances": balances, "funding_usdt": funding, "equity_usdt": equity,
                "positions": positions, "open_orders": orders,
                "execution": self.plan.settings.execution,
                "warm": self.warm if self.simulated else True,
                "trading_allowed": (self.warm and not self.guard.stale) if self.simulated else not self.guard.stale,
                "warm_status": self.warm_message if self.simulated else "sandbox: no warm-up (indicators start cold)",
                "warm_bars": self.warm_bars, "bars_processed": self.bars_processed,
                "orders_suppressed_while_warming": self.suppressed,
            }
            _atomic_write(self.results_path / "status.json", json.dumps(status, indent=2, default=str).encode())
        except Exception as e:  # noqa: BLE001 - status must never take the node down
            _event(logging.ERROR, "status write failed", error=repr(e))

    def _upnl(self, p: Any, rec: PaperRecorder) -> float:
        px = rec.last_close.get(str(p.instrument_id))
        return 0.0 if px is None else float(p.signed_qty) * (px - float(p.avg_px_open))

    def _equity(self, balances: dict[str, float], positions: list[dict], rec: PaperRecorder) -> float:
        eq = balances.get("USDT", 0.0)
        if self.plan.is_margin:
            return eq + sum(p["unrealized_pnl"] for p in positions)
        for ccy, amount in balances.items():  # spot: value base balances at the last close
            if ccy == "USDT":
                continue
            px = rec.last_close.get(f"{ccy}USDT.{LIVE_VENUE}")
            if px is not None:
                eq += amount * px
        return eq

    # -- results
    def write_results_safe(self) -> None:
        try:
            self.write_results(final=False)
        except Exception as e:  # noqa: BLE001 - a results rewrite must never take the node down
            _event(logging.ERROR, "results write failed", error=repr(e))

    def write_results(self, final: bool) -> None:
        """Write ``results/<run_id>/`` in the backtest format (each file atomically; ``metrics.json`` last)."""
        write_paper_results(self, final=final)


def _http_json(url: str, timeout: float = 10.0) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - configured venue URL
        return json.loads(resp.read())


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
            "margin_mode": plan.venue.margin_mode, "warm_bars": session.warm_bars}
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
        bench = buy_and_hold(closes[first_iid], plan.venue.fees()[1]).reindex(equity.index, method="ffill")
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
