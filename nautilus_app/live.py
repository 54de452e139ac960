"""Live trading: the backtest's strategies and config on a Nautilus ``LiveNode`` with the venues' execution clients.

``nautilus-app live CONFIG --i-understand-this-trades-real-money`` (docs/live.md). Flow: run config with
a ``[live]`` table (:mod:`nautilus_app.live_config`) whose ``enabled = true`` -> :func:`plan_live`
(venue, instrument/bar mapping as for paper) -> the plan, the limits and the credential *source* are
printed -> ``LiveNode`` (``Environment.LIVE``) with:

* Binance USDT-M or spot: Nautilus's Rust ``BinanceDataClientFactory`` and ``BinanceExecutionClientFactory``
  (``BinanceExecutionClientConfig``: ``environment`` LIVE or TESTNET (``testnet = true``), api key/secret
  from the environment or a 0600 file, ``use_ws_trading = False`` so orders go over signed REST,
  ``futures_leverages`` from the venue's leverage; spot: ``base_url_ws_trading`` from ``[live] base_url_ws_api``,
  the WebSocket API rc7's spot client logs on to (Ed25519 keys only) for its user data); Ethereal: our
  ``EtherealDataClientFactory`` and
  ``EtherealExecClientFactory`` (adapters/ethereal).
* :class:`LiveSupervisor` (a Nautilus ``Strategy`` added first): start-up reconciliation check,
  equity/drawdown/daily-loss tracking, kill switch (control file or signal), stale feed, alerts,
  ``status.json`` + results in the backtest format while running, the Prometheus collector's status.
* The config's strategies, built with the platform's hooks (:mod:`strategies.hooks`; a user's plain
  Nautilus ``Strategy`` gets them at load) and put behind the session by :func:`guard_strategy`: an
  order gate checks ``submit_order``/``submit_order_list`` with :class:`Rails` (an order that breaks a
  limit is denied *before* Nautilus hands it to the execution client: it never reaches the venue; it
  is logged, counted and alerted), a lifecycle gate reconciles at start and skips ``on_start``/``on_stop``
  of a refused session, and a bar error handler alerts exceptions in ``on_bar``. Nothing replaces a
  method of a strategy object.

Secrets: API key/secret and webhook URLs/tokens are held in memory only; every text this module
writes (logs, status, run.json, config.toml copy, alerts.jsonl) passes through :class:`Redactor`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.model import BarType, InstrumentId
from nautilus_trader.trading import Strategy, StrategyConfig

from core import paths
from nautilus_app.jsonlog import setup_json_logging
from nautilus_app.live_config import Credentials, LiveConfigError, LiveSettings, resolve_credentials
from nautilus_app.live_options import OPT_IN_FLAG
from nautilus_app.venue.models import leverage_for

log = logging.getLogger("nautilus_app.live")

EXIT_REFUSED = 3


class LiveRefused(RuntimeError):
    """The node refused to trade (reconciliation found unknown venue positions/orders)."""


# ---- secrets and logs ----------------------------------------------------------------------------
class Redactor:
    """Replaces every registered secret (and its URL-encoded form) with ``<redacted>``."""

    def __init__(self) -> None:
        self.secrets: list[str] = []

    def add(self, *values: str | None) -> None:
        for v in values:
            if v and len(v) >= 6 and v not in self.secrets:
                self.secrets.append(v)
                enc = urllib.parse.quote(v, safe="")
                if enc != v:
                    self.secrets.append(enc)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, "<redacted>")
        return text


REDACT = Redactor()


def setup_logging(path: Path | None) -> None:
    """JSON lines (redacted) on stderr and in ``path`` for ``nautilus_app.live`` and ``nautilus_app.alerts``."""
    setup_json_logging(("nautilus_app.live", "nautilus_app.alerts"), path, redact=REDACT)


def _event(level: int, event: str, **fields: Any) -> None:
    log.log(level, event, extra={"fields": fields})


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(REDACT(text))
    os.replace(tmp, path)


# ---- plan ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LivePlan:
    """What :func:`plan_live` derived from the config (venue, ids, intervals)."""

    settings: LiveSettings
    venue: Any
    product: str  # "um" | "spot" | "ethereal"
    live_venue: str
    id_map: dict[str, str]
    bar_map: dict[str, str]
    interval_ns: int
    stale_after_s: float
    leverage: float
    warnings: list[str] = field(default_factory=list)
    settlement: str = "USDT"  # the cash currency equity is counted in (Ethereal: USDE unless configured USDT)

    @property
    def reverse_ids(self) -> dict[str, str]:
        return {v: k for k, v in self.id_map.items()}

    @property
    def is_margin(self) -> bool:
        return self.product in ("um", "ethereal")


def plan_live(cfg: Any, s: LiveSettings, source: str = "<config>") -> LivePlan:
    """Check that ``cfg`` can trade live and derive the venue mapping.

    Raises:
        LiveConfigError: ``enabled`` is not true, not exactly one venue, an unsupported venue, no strategies,
            bar types of different intervals.
    """
    from nautilus_app.paper import (
        ETHEREAL_VENUE_NAME,
        LIVE_VENUE,
        PERP_VENUE,
        PaperConfigError,
        _bar_interval_ns,
        to_internal_bar_type,
        to_live_bar_type,
        to_live_id,
    )

    if not s.enabled:
        raise LiveConfigError(f"{source}: key live.enabled: false; live trading needs `enabled = true` in [live] "
                              f"and {OPT_IN_FLAG} on the command line")
    if len(cfg.venues) != 1:
        raise LiveConfigError(f"{source}: key venues: expected exactly one venue per live node, got "
                              f"{[v.name for v in cfg.venues]}")
    if not cfg.strategies:
        raise LiveConfigError(f"{source}: key strategies: expected at least one strategy")
    v = cfg.venues[0]
    try:
        interval_ns = _bar_interval_ns(cfg, source)
    except PaperConfigError as e:
        raise LiveConfigError(str(e)) from e
    stale = s.stale_after_seconds or 2 * interval_ns / 1e9
    if v.name in (PERP_VENUE, LIVE_VENUE):
        product = "um" if v.name == PERP_VENUE else "spot"
        id_map = {i: to_live_id(i) for i in cfg.instrument_ids()}
        bar_map = {b: to_live_bar_type(b) for b in cfg.bar_types}
        live_venue = LIVE_VENUE
    elif v.name == ETHEREAL_VENUE_NAME:
        product, live_venue = "ethereal", ETHEREAL_VENUE_NAME
        id_map = {i: i for i in cfg.instrument_ids()}
        bar_map = {b: to_internal_bar_type(b) for b in cfg.bar_types}
    else:
        raise LiveConfigError(f"{source}: key venues[0].name = {v.name!r}: expected BINANCE_USDM, BINANCE or ETHEREAL")
    if product == "ethereal":
        settlement = s.settlement_currency or "USDE"
    elif s.settlement_currency not in (None, "USDT"):
        raise LiveConfigError(f"{source}: key live.settlement_currency = {s.settlement_currency!r}: Binance "
                              "settles in USDT (the key is for Ethereal's USDe)")
    else:
        settlement = "USDT"
    warnings = []
    if product == "um":
        levs = {leverage_for(v, i) for i in id_map}
        if len(levs) > 1:
            warnings.append(f"per-instrument leverages {sorted(levs)} are set on Binance per symbol at connect")
    starting = {str(b).split()[-1].upper() for b in getattr(v, "starting_balances", None) or []}
    if starting and settlement not in starting:
        warnings.append(f"venues[0].starting_balances are in {sorted(starting)} but the live account settles in "
                        f"{settlement}: equity and limits are counted in {settlement} only")
    return LivePlan(s, v, product, live_venue, id_map, bar_map, interval_ns, stale, float(v.default_leverage),
                    warnings, settlement)


def _is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = urllib.parse.urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_offline(plan: LivePlan) -> None:
    """With ``NAUTILUS_LIVE_OFFLINE=1`` (set by the tests and demos) every endpoint must be on loopback.

    Raises:
        LiveConfigError: an endpoint is unset (the venue's default) or not a loopback address.
    """
    if os.environ.get("NAUTILUS_LIVE_OFFLINE") != "1":
        return
    s = plan.settings
    urls = [("base_url_http", s.base_url_http), ("base_url_ws", s.base_url_ws)]
    if plan.product == "spot":  # the spot execution client also connects to the WebSocket API
        urls.append(("base_url_ws_api", s.base_url_ws_api))
    for key, url in urls:
        if not _is_loopback(url):
            raise LiveConfigError(f"NAUTILUS_LIVE_OFFLINE=1: live.{key} = {url!r}: expected a loopback URL "
                                  "(nothing may reach a real venue from tests)")


def describe(plan: LivePlan, creds: Credentials, control_dir: Path, strategies: list | None = None) -> str:
    """What the node will trade and with which limits (printed before it starts)."""
    s, lim = plan.settings, plan.settings.limits
    env = "TESTNET" if s.testnet else "LIVE (real money)"
    lines = [f"LIVE TRADING on {plan.venue.name} ({plan.product}, environment {env}), trader {s.trader_id}",
             f"  endpoints: {s.base_url_http or 'venue default'} / {s.base_url_ws or 'venue default'}"
             + (f" / WebSocket API {s.base_url_ws_api or 'venue default'}" if plan.product == "spot" else ""),
             f"  credentials: {creds.source} (never printed or written)",
             f"  account: {plan.venue.account_type}, leverage {plan.leverage:g}x, settles in {plan.settlement}"]
    for iid, live in plan.id_map.items():
        lines.append(f"  instrument: {iid} (venue id {live})")
    for i, spec in enumerate(strategies or []):
        params = {k: v for k, v in spec.params.items() if k not in ("instrument_id", "bar_type")}
        lines.append(f"  strategy {i:03d}: {spec.name or spec.strategy_path} {params}")
    lines.append("  limits:")
    for name in ("max_order_notional", "max_position_notional", "max_total_notional", "max_leverage",
                 "max_open_orders", "max_orders_per_minute", "daily_loss_limit", "max_drawdown"):
        val = getattr(lim, name)
        lines.append(f"    {name:<22} {'OFF' if val is None else val}")
    lines.append(f"    {'flatten_on_breach':<22} {lim.flatten_on_breach}")
    lines.append(f"  unknown venue positions/orders at start: {s.on_unknown}")
    lines.append(f"  kill switch: nautilus-app live flatten|stop CONFIG, file {control_dir / 'KILL'}, "
                 "SIGUSR1 = flatten, SIGTERM/SIGINT = flatten and stop")
    port = s.monitoring.metrics_port
    where = "off" if port is None else f"http://{s.monitoring.metrics_host}:{port or '<free port>'}/metrics"
    lines.append(f"  metrics: {where}; alerts to {len(s.alerts.webhooks)} webhook(s)")
    lines += [f"  note: {w}" for w in plan.warnings]
    return "\n".join(lines)


# ---- safety rails --------------------------------------------------------------------------------
class Rails:
    """Checks an order against :class:`~nautilus_app.live_config.LiveLimits` before it is submitted.

    An order *reduces risk* when it is reduce-only or makes the instrument's net position smaller
    without flipping it; such orders are never denied (exits must always be possible), everything
    else is checked against every limit and against :attr:`halted`.
    """

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.limits = session.plan.settings.limits
        self.halted: str | None = None
        self.sent: deque[float] = deque()
        self.denied: Counter[str] = Counter()
        self.submitted = 0

    def check(self, order: Any) -> tuple[str, str] | None:
        """``(reason code, message)`` if ``order`` must not be sent, else None (and the order is counted)."""
        sup = self.session.supervisor
        lim = self.limits
        iid = str(order.instrument_id)
        price = float(order.price) if getattr(order, "has_price", False) and order.price is not None \
            else sup.last_price(iid)
        qty = float(order.quantity)
        signed = qty if str(order.side).endswith("BUY") else -qty
        net = sup.net_position(iid)
        reducing = bool(getattr(order, "is_reduce_only", False)) or (
            net != 0 and abs(net + signed) < abs(net) and (net + signed) * net >= 0)
        now = time.monotonic()
        while self.sent and now - self.sent[0] > 60:
            self.sent.popleft()
        if not reducing:
            if self.halted:
                return "halted", f"trading halted: {self.halted}"
            if price is None or not math.isfinite(price) or price <= 0:
                return "no_price", f"no price for {iid} yet: cannot check the notional limits"
            notional = qty * price
            after = abs(net + signed + sup.open_order_qty(iid, same_side_as=signed)) * price
            others = sum(abs(q) * (sup.last_price(i) or 0.0) for i, q in sup.net_positions().items() if i != iid)
            equity = sup.equity()
            if lim.max_order_notional is not None and notional > lim.max_order_notional:
                return "max_order_notional", f"order notional {notional:.2f} > max_order_notional {lim.max_order_notional}"
            if lim.max_position_notional is not None and after > lim.max_position_notional:
                return ("max_position_notional",
                        f"{iid} position notional after the order {after:.2f} > max_position_notional "
                        f"{lim.max_position_notional}")
            if lim.max_total_notional is not None and others + after > lim.max_total_notional:
                return ("max_total_notional", f"total notional after the order {others + after:.2f} > "
                        f"max_total_notional {lim.max_total_notional}")
            if lim.max_leverage is not None:
                if equity is None or equity <= 0:
                    return "max_leverage", "equity unknown or <= 0: cannot check max_leverage"
                if (others + after) / equity > lim.max_leverage:
                    return ("max_leverage", f"leverage after the order {(others + after) / equity:.2f}x > "
                            f"max_leverage {lim.max_leverage}x")
            if lim.max_open_orders is not None and len(sup.open_orders()) + 1 > lim.max_open_orders:
                return "max_open_orders", f"{len(sup.open_orders())} open orders: max_open_orders {lim.max_open_orders}"
        if lim.max_orders_per_minute is not None and len(self.sent) >= lim.max_orders_per_minute and not reducing:
            return ("max_orders_per_minute", f"{len(self.sent)} orders in the last 60 s: max_orders_per_minute "
                    f"{lim.max_orders_per_minute}")
        self.sent.append(now)
        self.submitted += 1
        return None


def guard_strategy(strategy: Any, session: LiveSession) -> None:
    """Put ``strategy`` (built with the platform's hooks, :mod:`strategies.hooks`) behind the live session:

    * an order gate: ``submit_order`` / ``submit_order_list`` are checked by :class:`Rails` (an order that
      breaks a limit is denied: logged, counted, alerted, never sent) and dropped while the session is
      refused; on spot, ``close_position`` / ``close_all_positions`` are sent with ``reduce_only=False``;
      every other command passes;
    * a lifecycle gate: ``on_start`` runs the start-up reconciliation first, and a refused session skips
      the strategy's ``on_start`` / ``on_stop`` (the venue is left untouched);
    * a bar error handler: an exception in ``on_bar`` is counted and alerted (then raised as before).
    """
    rails = session.rails
    spot = session.plan.product == "spot"

    def deny(order: Any, code: str, msg: str) -> None:
        rails.denied[code] += 1
        info = {"strategy_id": str(strategy.strategy_id), "client_order_id": str(order.client_order_id),
                "instrument_id": str(order.instrument_id), "side": str(order.side), "quantity": str(order.quantity),
                "rail": code}
        _event(logging.WARNING, f"order denied by safety rail: {msg}", **info)
        session.alert("order_denied", msg, subject=code, **info)

    def order_gate(command: Any) -> Any:
        name = command.name
        if name == "submit_order":
            if session.refused:
                return None
            order = command.target
            verdict = rails.check(order)
            if verdict is not None:
                return deny(order, *verdict)
            session.sent_at[str(order.client_order_id)] = time.time_ns()
        elif name == "submit_order_list":
            if session.refused:
                return None
            for o in command.target.orders:
                verdict = rails.check(o)
                if verdict is not None:
                    return deny(o, *verdict)
        elif spot and name in ("close_position", "close_all_positions"):
            # spot has no reduce-only orders: Nautilus denies them (UNSUPPORTED_REDUCE_ONLY), so a strategy's
            # close_position/close_all_positions (reduce-only by default, e.g. in on_stop) would leave the position
            # open; on spot they close with plain market orders (the rails still count them as reducing)
            command.kwargs["reduce_only"] = False
        return command.send()

    def lifecycle_gate(event: str) -> bool:
        if event == "start":
            session.reconcile_once()
        return not session.refused

    def on_bar_error(bar: Any, e: Exception) -> None:
        session.errors += 1
        session.alert("strategy_exception", f"{strategy.strategy_id} raised in on_bar: {e!r}",
                      subject=str(strategy.strategy_id))

    strategy.add_order_gate(order_gate)
    strategy.add_lifecycle_gate(lifecycle_gate)
    strategy.add_bar_error_handler(on_bar_error)


# ---- supervisor ----------------------------------------------------------------------------------
class LiveSupervisor(Strategy):
    """Watches the account and the feed; runs the kill switch and the reconciliation policy.

    A ``Strategy`` (not an actor) so it can cancel and close what no strategy owns (EXTERNAL orders and
    positions). It is added before the config's strategies.
    """

    def __new__(cls, *args: object, **kwargs: object) -> LiveSupervisor:
        return super().__new__(cls)

    def __init__(self, session: LiveSession) -> None:
        super().__init__(StrategyConfig(order_id_tag="999"))
        self.session = session
        self.plan = session.plan
        self.last_close: dict[str, float] = {}
        self.last_bar_wall: float | None = None
        self.stale = False
        self.equity_samples: list[tuple[int, float]] = []
        self.closes: dict[str, list[tuple[int, float]]] = {}
        self.peak: float | None = None
        self.start_equity: float | None = None
        self.day: str | None = None
        self.day_start_equity: float | None = None
        self.last_status = 0.0
        self.last_results = 0.0
        self.seen_rejected: set[str] = set()
        self.flattening_until: float | None = None
        self.stop_after_flatten = False
        self.funding_alerted: set[str] = set()
        self.retry_flatten = False
        self.resume_after_flat = False
        self.closing: set[str] = set()  # positions a close was sent for (this flatten)
        self.started_wall: float | None = None  # set by on_start (Nautilus starts strategies once connected)

    # -- views used by the rails (node thread)
    def last_price(self, iid: str) -> float | None:
        return self.last_close.get(iid)

    def net_positions(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.cache.positions_open():
            out[str(p.instrument_id)] = out.get(str(p.instrument_id), 0.0) + float(p.signed_qty)
        return out

    def net_position(self, iid: str) -> float:
        return self.net_positions().get(iid, 0.0)

    def spot_base_balances(self) -> dict[str, tuple[float, float]]:
        """Spot: ``{instrument id: (base-asset balance, dust tolerance)}`` of the traded instruments. Nautilus
        keeps no spot positions across a restart (rc7's spot client reports none), so what the account holds
        of each traded base asset is the spot "position" reconciliation compares with the ledger; the
        tolerance is the instrument's minimum quantity (below it a balance cannot be traded: dust)."""
        bal = self.balances()
        out: dict[str, tuple[float, float]] = {}
        for live in self.plan.id_map.values():
            inst = self.cache.instrument(InstrumentId.from_str(live))
            if inst is None or getattr(inst, "base_currency", None) is None:
                continue
            min_q = getattr(inst, "min_quantity", None)
            tol = float(min_q) if min_q is not None else float(inst.size_increment)
            out[live] = (bal.get(str(inst.base_currency), 0.0), tol)
        return out

    def open_orders(self) -> list[Any]:
        return list(self.cache.orders_open())

    def open_order_qty(self, iid: str, same_side_as: float) -> float:
        q = 0.0
        for o in self.cache.orders_open():
            if str(o.instrument_id) != iid or getattr(o, "is_reduce_only", False):
                continue
            s = float(o.leaves_qty) * (1 if str(o.side).endswith("BUY") else -1)
            if s * same_side_as > 0:
                q += s
        return q

    def balances(self) -> dict[str, float]:
        from nautilus_trader.model import Venue

        acct = self.cache.account_for_venue(Venue(self.plan.live_venue))
        if acct is None:
            return {}
        return {str(c): float(b.total.as_double()) for c, b in acct.balances().items()}

    def equity(self) -> float | None:
        bal = self.balances()
        if not bal:
            return None
        # the settlement currency only: other cash (USDT on a USDE account) is kept apart, never added at par
        quote = self.plan.settlement if self.plan.settlement in bal else next(iter(bal))
        eq = bal.get(quote, 0.0)
        if self.plan.is_margin:
            for p in self.cache.positions_open():
                px = self.last_close.get(str(p.instrument_id))
                if px is not None:
                    eq += float(p.signed_qty) * (px - float(p.avg_px_open))
        else:
            for ccy, amount in bal.items():
                if ccy != quote:
                    px = self.last_close.get(f"{ccy}{quote}.{self.plan.live_venue}")
                    eq += amount * px if px is not None else 0.0
        return eq

    # -- lifecycle
    def on_start(self) -> None:
        self.session.reconcile_once()
        for bt in self.plan.bar_map.values():
            self.subscribe_bars(BarType.from_str(bt))
        if self.plan.product == "um":
            for live in self.plan.id_map.values():
                try:
                    self.subscribe_funding_rates(InstrumentId.from_str(live))
                except Exception:  # noqa: BLE001 - funding alerts are optional
                    pass
        self.last_bar_wall = self.started_wall = time.monotonic()
        self.clock.set_timer("live-supervisor", dt.timedelta(seconds=0.25), callback=self._tick)
        if self.session.refused:
            self.session.request_stop(f"reconciliation refused: {self.session.refused}")
        self._write(force=True)

    def on_stop(self) -> None:
        self._write(force=True)

    # -- data
    def on_bar(self, bar: Any) -> None:
        iid = str(bar.bar_type.instrument_id)
        close = float(bar.close)
        self.last_close[iid] = close
        now_ns = int(bar.ts_event)
        self.closes.setdefault(iid, []).append((now_ns, close))
        if self.stale:
            self.stale = False
            _event(logging.WARNING, "market data feed recovered")
            self.session.alert("reconnect", "market data feed recovered", subject="feed")
        self.last_bar_wall = time.monotonic()
        eq = self.equity()
        if eq is not None:
            self.equity_samples.append((now_ns, eq))
            self._risk(eq, now_ns)

    def on_funding_rate(self, update: Any) -> None:
        spike = self.plan.settings.alerts.funding_spike
        rate = float(update.rate)
        if spike is not None and abs(rate) >= spike:
            self.session.alert("funding_spike", f"{update.instrument_id} funding rate {rate:.5f} (|rate| >= {spike})",
                               subject=str(update.instrument_id), rate=rate)

    # -- risk: daily loss, drawdown, liquidation buffer
    def _risk(self, eq: float, ts_ns: int) -> None:
        lim, al = self.plan.settings.limits, self.plan.settings.alerts
        day = pd.Timestamp(ts_ns, tz="UTC").strftime("%Y-%m-%d")
        if self.start_equity is None:
            self.start_equity = eq
        if day != self.day:
            self.day, self.day_start_equity = day, eq
        self.peak = eq if self.peak is None else max(self.peak, eq)
        dd = 1.0 - eq / self.peak if self.peak > 0 else 0.0
        daily = (self.day_start_equity - eq) / self.day_start_equity if self.day_start_equity else 0.0
        if al.drawdown_warn is not None and dd >= al.drawdown_warn:
            self.session.alert("drawdown", f"drawdown {dd:.2%} >= {al.drawdown_warn:.2%}", subject="warn", drawdown=dd)
        if al.daily_loss_warn is not None and daily >= al.daily_loss_warn:
            self.session.alert("daily_loss", f"daily loss {daily:.2%} >= {al.daily_loss_warn:.2%}", subject="warn",
                               daily_loss=daily)
        breach = None
        if lim.max_drawdown is not None and dd >= lim.max_drawdown:
            breach = ("drawdown", f"drawdown {dd:.2%} >= max_drawdown {lim.max_drawdown:.2%}")
        elif lim.daily_loss_limit is not None and daily >= lim.daily_loss_limit:
            breach = ("daily_loss", f"daily loss {daily:.2%} >= daily_loss_limit {lim.daily_loss_limit:.2%}")
        if breach and not self.session.rails.halted:
            self.session.rails.halted = breach[1]
            _event(logging.ERROR, f"new entries stopped: {breach[1]}")
            self.session.alert(breach[0], f"new entries stopped: {breach[1]}", subject="limit", force=True)
            if lim.flatten_on_breach:
                self.flatten(f"limit breached: {breach[1]}")
        buf = al.liquidation_buffer
        if buf is not None and self.plan.is_margin:
            from nautilus_trader.model import Venue

            acct = self.cache.account_for_venue(Venue(self.plan.live_venue))
            maint = 0.0
            try:
                for m in acct.margins().values():
                    maint += float(m.maintenance.as_double())
            except Exception:  # noqa: BLE001 - cash accounts have no margins
                maint = 0.0
            source = "venue"
            if maint <= 0:  # no margins from the venue's account state: the instruments' maintenance rates
                source = "instrument margin_maint"
                for p in self.cache.positions_open():
                    px = self.last_close.get(str(p.instrument_id))
                    inst = self.cache.instrument(p.instrument_id)
                    if px is not None and inst is not None:
                        maint += abs(float(p.signed_qty)) * px * float(inst.margin_maint)
            if maint > 0 and eq > 0 and (eq - maint) / eq < buf:
                self.session.alert("liquidation_risk", f"equity {eq:.2f} close to maintenance margin {maint:.2f} "
                                   f"(buffer {(eq - maint) / eq:.4%} < liquidation_buffer {buf:.4%})",
                                   subject="margin", equity=eq, maintenance_margin=maint, margin_source=source)

    # -- kill switch
    def flatten(self, reason: str, stop: bool = False) -> None:
        """Halt new entries, cancel every open order and close every position (the node's strategies close
        their own; orders/positions of no strategy are cancelled/closed by the supervisor)."""
        self.session.rails.halted = self.session.rails.halted or f"kill switch: {reason}"
        self.session.killed = reason
        _event(logging.ERROR, "kill switch: cancelling open orders and closing positions", reason=reason, stop=stop)
        self.session.alert("kill_switch", f"kill switch ({'stop' if stop else 'flatten'}): {reason}", force=True)
        self.flattening_until = time.monotonic() + 20
        self.stop_after_flatten = self.stop_after_flatten or stop
        self.closing = set()
        self._flatten_now()

    def _flatten_now(self) -> None:
        """Cancel and close; a position whose instrument has no price yet is retried at the next tick (Nautilus
        denies market orders without a market price, e.g. right after start-up)."""
        from nautilus_trader.model import OrderSide, TimeInForce

        self.retry_flatten = False
        own = {str(s.strategy_id): s for s in self.session.strategies}
        for o in self.cache.orders_open():
            owner = own.get(str(o.strategy_id))
            try:
                (owner or self).cancel_order(o.client_order_id)
            except Exception as e:  # noqa: BLE001 - keep going with the rest
                _event(logging.ERROR, "kill switch: cancel failed", client_order_id=str(o.client_order_id), error=repr(e))
        for p in self.cache.positions_open():
            owner = own.get(str(p.strategy_id))
            if str(p.id) in self.closing:
                continue
            if str(p.instrument_id) not in self.last_close:
                self.retry_flatten = True
                continue
            self.closing.add(str(p.id))
            # spot has no reduce-only orders (Nautilus denies them: UNSUPPORTED_REDUCE_ONLY): a plain market
            # order against the position closes it there (the rails still see it as reducing)
            reduce_only = self.session.plan.product != "spot"
            try:
                if owner is not None:
                    owner.close_position(p, reduce_only=reduce_only)
                else:
                    qty = p.quantity
                    side = OrderSide.SELL if float(p.signed_qty) > 0 else OrderSide.BUY
                    self.submit_order(self.order_factory.market(p.instrument_id, side, qty,
                                                                time_in_force=TimeInForce.GTC,
                                                                reduce_only=reduce_only),
                                      position_id=p.id)  # against that position (not one of the supervisor's)
            except Exception as e:  # noqa: BLE001
                _event(logging.ERROR, "kill switch: close failed", position_id=str(p.id), error=repr(e))

    def _flat(self) -> bool:
        return not list(self.cache.orders_open()) and not list(self.cache.positions_open()) and \
            not list(self.cache.orders_inflight())

    # -- periodic
    def _tick(self, event: Any) -> None:
        try:
            self._tick_inner()
        except Exception as e:  # noqa: BLE001 - the supervisor must never take the node down
            self.session.errors += 1
            _event(logging.ERROR, "supervisor tick failed", error=repr(e))

    def _tick_inner(self) -> None:
        sess = self.session
        req = sess.take_kill_request()
        if req is not None:
            action, reason = req
            self.flatten(reason, stop=action == "stop")
        if self.flattening_until is not None:
            if self.retry_flatten:
                self._flatten_now()
            if self._flat():
                if self.resume_after_flat:  # start-up flatten of unknown venue state: trading may begin
                    self.resume_after_flat = False
                    sess.rails.halted = None
                    sess.killed = None
                    _event(logging.WARNING, "unknown venue state flattened: trading allowed")
                _event(logging.WARNING, "kill switch: flat (no open orders or positions)")
                self.flattening_until = None
                self._write(force=True)
                if self.stop_after_flatten:
                    sess.request_stop(f"kill switch: {sess.killed}")
            elif time.monotonic() > self.flattening_until:
                _event(logging.ERROR, "kill switch: still not flat after 20 s", open_orders=len(self.open_orders()),
                       positions=len(list(self.cache.positions_open())))
                sess.alert("kill_switch", "still not flat 20 s after the kill switch", force=True)
                self.flattening_until = None
                if self.stop_after_flatten:
                    sess.request_stop(f"kill switch (not flat): {sess.killed}")
        silent = time.monotonic() - (self.last_bar_wall or time.monotonic())
        if not self.stale and silent > self.plan.stale_after_s:
            self.stale = True
            _event(logging.WARNING, "market data feed is stale", silent_seconds=round(silent, 3))
            sess.alert("stale_feed", f"no bar for {silent:.1f} s (stale after {self.plan.stale_after_s:.1f} s)",
                       subject="feed")
            sess.alert("disconnect", "market data feed silent: the client may be reconnecting", subject="feed")
        for o in self.cache.orders():
            if str(o.status).endswith("REJECTED") and str(o.client_order_id) not in self.seen_rejected:
                self.seen_rejected.add(str(o.client_order_id))
                sess.alert("order_rejected", f"{o.instrument_id} {o.side} {o.quantity} rejected by the venue",
                           subject=str(o.instrument_id), client_order_id=str(o.client_order_id))
        self._write()

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_status >= 1.0:
            self.last_status = now
            self.session.write_status()
        every = self.plan.settings.results_every_seconds
        if force or now - self.last_results >= every:
            self.last_results = now
            self.session.write_results_safe(final=False)


# ---- session ---------------------------------------------------------------------------------------
class LiveSession:
    """One live node: build, print the plan, run until stopped, write results.

    Args:
        cfg: Validated run config; settings: its ``[live]`` table; config_text: the TOML (copied redacted).
        creds: API credentials (default: resolved from the environment or ``key_file``).
        results_root: Default :func:`core.paths.results_dir`.
        max_seconds: Stop after this many wall seconds.
    """

    def __init__(self, cfg: Any, settings: LiveSettings, *, config_text: str | None = None,
                 creds: Credentials | None = None, results_root: Path | None = None,
                 max_seconds: float | None = None, source: str = "<config>", run_id: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        from nautilus_app.alerts import Alerter
        from nautilus_app.backtest import make_run_id

        self.cfg = cfg
        self.plan = plan_live(cfg, settings, source)
        check_offline(self.plan)
        self.creds = creds or resolve_credentials(settings, self.plan.venue.name, env)
        REDACT.add(*self.creds.secrets())
        root = Path(results_root) if results_root is not None else paths.results_dir()
        self.run_id = run_id or f"live-{make_run_id(cfg)}"
        self.results_path = root / self.run_id
        self.results_path.mkdir(parents=True, exist_ok=True)
        self.control_dir = Path(settings.control_dir) if settings.control_dir else root / ".live" / settings.trader_id
        self.control_dir.mkdir(parents=True, exist_ok=True)
        self.config_text = config_text
        self.max_seconds = max_seconds
        self.alerter = Alerter(settings.alerts, self.run_id, self.results_path / "alerts.jsonl", env=env)
        REDACT.add(*self.alerter.secrets())
        self.rails = Rails(self)
        self.supervisor: LiveSupervisor | None = None
        self.strategies: list[Any] = []
        self.node: Any = None
        self._handle: Any = None
        self._stop_reason: str | None = None
        self._lock = threading.Lock()
        self.refused: str | None = None
        self.failed: str | None = None
        self.reconciled = False
        self.reconciliation: dict[str, Any] = {}
        self.killed: str | None = None
        self._kill_requests: deque[tuple[str, str]] = deque()
        self.sent_at: dict[str, int] = {}
        self.errors = 0
        self.metrics_port: int | None = None
        self._metrics_server: Any = None
        self.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.running = False
        self.snapshot: dict[str, Any] = {"session": self.run_id, "mode": "live"}

    # -- alerts
    def alert(self, rule: str, message: str, **kw: Any) -> None:
        try:
            self.alerter.fire(rule, message, **kw)
        except Exception as e:  # noqa: BLE001 - alerting must never stop trading
            self.errors += 1
            _event(logging.ERROR, "alert failed", rule=rule, error=type(e).__name__)

    # -- kill switch plumbing (any thread -> supervisor timer)
    def request_kill(self, action: str, reason: str) -> None:
        self._kill_requests.append((action, reason))

    def take_kill_request(self) -> tuple[str, str] | None:
        kill = self.control_dir / "KILL"
        if kill.exists():
            text = kill.read_text().strip().lower() or "stop"
            kill.unlink(missing_ok=True)
            action = "flatten" if text.startswith("flatten") else "stop"
            self._kill_requests.append((action, f"control file {kill} ({action})"))
        return self._kill_requests.popleft() if self._kill_requests else None

    def request_stop(self, reason: str) -> None:
        with self._lock:
            if self._stop_reason is not None:
                return
            self._stop_reason = reason
        _event(logging.INFO, "stop requested", reason=reason)
        if self._handle is not None:
            self._handle.stop()

    # -- reconciliation policy
    def ledger_path(self) -> Path:
        return self.control_dir / "book.json"

    def reconcile_once(self) -> None:
        """Compare the venue's state (reconciled into the cache by Nautilus before any ``on_start``) with the
        node's own ledger (``<control_dir>/book.json``) and apply ``on_unknown``."""
        if self.reconciled or self.supervisor is None:
            return
        self.reconciled = True
        sup = self.supervisor
        try:
            ledger = json.loads(self.ledger_path().read_text())
        except (OSError, ValueError):
            ledger = {"positions": {}, "open_orders": []}
        venue_pos = sup.net_positions()
        unknown_pos = {i: q for i, q in venue_pos.items()
                       if abs(q - float(ledger.get("positions", {}).get(i, 0.0))) > 1e-12}
        known_orders = set(ledger.get("open_orders", []))
        unknown_orders = [str(o.client_order_id) for o in sup.open_orders()
                          if str(o.client_order_id) not in known_orders]
        self.reconciliation = {"venue_positions": venue_pos, "ledger_positions": ledger.get("positions", {}),
                               "unknown_positions": unknown_pos, "unknown_orders": unknown_orders,
                               "policy": self.plan.settings.on_unknown}
        unknown_bal: dict[str, float] = {}
        if self.plan.product == "spot":  # base-asset balances stand for spot positions (see spot_base_balances)
            known_bal = ledger.get("spot_base", {})
            venue_bal = sup.spot_base_balances()
            unknown_bal = {i: b for i, (b, tol) in venue_bal.items() if abs(b - float(known_bal.get(i, 0.0))) >= tol}
            self.reconciliation.update(venue_base_balances={i: b for i, (b, _t) in venue_bal.items()},
                                       ledger_base_balances=known_bal, unknown_base_balances=unknown_bal)
        if not unknown_pos and not unknown_orders and not unknown_bal:
            _event(logging.INFO, "reconciliation: venue state matches the node's ledger", positions=venue_pos)
            return
        policy = self.plan.settings.on_unknown
        msg = (f"venue holds positions/orders this node does not know: positions {unknown_pos}, "
               f"open orders {unknown_orders}")
        if unknown_bal:
            msg += f", spot base-asset balances {unknown_bal}"
        if policy == "flatten" and unknown_bal:
            # selling a balance Nautilus holds no position for would open a SHORT position in its cache (the kill
            # switch would then buy it back): not done; sell it yourself or adopt it
            self.refused = msg + " (on_unknown = 'flatten' cannot close spot balances: adopt them or sell them " \
                "on the venue first)"
            _event(logging.ERROR, f"reconciliation refused: {self.refused}")
            self.alert("reconciliation", f"refusing to trade: {self.refused}", force=True)
            return
        if policy == "refuse":
            self.refused = msg
            _event(logging.ERROR, f"reconciliation refused: {msg}; restart with on_unknown = 'adopt' or 'flatten' "
                   "(or --on-unknown) once you know where they come from")
            self.alert("reconciliation", f"refusing to trade: {msg}", force=True)
            return
        _event(logging.WARNING, f"reconciliation: {policy} {msg}")
        self.alert("reconciliation", f"{policy}: {msg}", force=True)
        if policy == "flatten":
            sup.resume_after_flat = True  # entries held until flat, then trading continues
            sup.flatten("reconciliation: flatten unknown venue state")
        self.save_ledger()

    def save_ledger(self) -> None:
        if self.refused or self.supervisor is None:
            return
        sup = self.supervisor
        data = {"positions": sup.net_positions(), "open_orders": [str(o.client_order_id) for o in sup.open_orders()],
                "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")}
        if self.plan.product == "spot":
            data["spot_base"] = {i: b for i, (b, _t) in sup.spot_base_balances().items()}
        _write(self.ledger_path(), json.dumps(data, indent=1))

    # -- build
    def build(self) -> Any:
        from nautilus_trader.common import Environment, FileWriterConfig, LoggerConfig, LogLevel
        from nautilus_trader.live import LiveNode
        from nautilus_trader.model import TraderId

        s = self.plan.settings
        logging_cfg = LoggerConfig(
            stdout_level=getattr(LogLevel, self.cfg.log_level), fileout_level=LogLevel.INFO, is_colored=False,
            file_config=FileWriterConfig(directory=str(self.results_path / "logs"), file_name="nautilus",
                                         file_format="json"))
        builder = (LiveNode.builder("LIVE", TraderId(s.trader_id), Environment.LIVE)
                   .with_logging(logging_cfg)
                   .with_timeout_connection(20).with_timeout_reconciliation(20)
                   .with_timeout_disconnection_secs(3).with_delay_post_stop_secs(1))
        if self.plan.product == "ethereal":
            builder = self._add_ethereal(builder)
        else:
            builder = self._add_binance(builder)
        self.node = builder.build()
        self.supervisor = LiveSupervisor(self)
        self.node.add_strategy(self.supervisor)
        for strategy in self.make_strategies():
            guard_strategy(strategy, self)
            self.node.add_strategy(strategy)
            self.strategies.append(strategy)
        self._handle = self.node.handle()
        return self.node

    def _add_binance(self, builder: Any) -> Any:
        from nautilus_trader.adapters.binance import (
            BinanceDataClientConfig,
            BinanceDataClientFactory,
            BinanceEnvironment,
            BinanceExecutionClientConfig,
            BinanceExecutionClientFactory,
            BinanceProductType,
            BinanceSpotMarketDataMode,
        )
        from nautilus_trader.model import AccountId

        s, plan = self.plan.settings, self.plan
        env = BinanceEnvironment.TESTNET if s.testnet else BinanceEnvironment.LIVE
        product = BinanceProductType.USD_M if plan.product == "um" else BinanceProductType.SPOT
        data_cfg = BinanceDataClientConfig(product_type=product, environment=env, base_url_http=s.base_url_http,
                                           base_url_ws=s.base_url_ws,
                                           spot_market_data_mode=BinanceSpotMarketDataMode.Json,
                                           instrument_status_poll_secs=0)
        levs = None
        if plan.product == "um":
            levs = {InstrumentId.from_str(live).symbol.value.removesuffix("-PERP"): int(leverage_for(plan.venue, iid))
                    for iid, live in plan.id_map.items()}
        exec_cfg = BinanceExecutionClientConfig(
            account_id=AccountId(f"{plan.live_venue}-001"), product_type=product, environment=env,
            base_url_http=s.base_url_http, base_url_ws=s.base_url_ws,
            # spot (rc7): user data only comes over the WebSocket API, which the client always logs on to
            base_url_ws_trading=s.base_url_ws_api if plan.product == "spot" else s.base_url_ws,
            use_ws_trading=False, api_key=self.creds.api_key, api_secret=self.creds.api_secret,
            futures_leverages=levs)
        return (builder.add_data_client(plan.live_venue, BinanceDataClientFactory(), data_cfg)
                .add_exec_client(plan.live_venue, BinanceExecutionClientFactory(), exec_cfg))

    def _add_ethereal(self, builder: Any) -> Any:
        from nautilus_trader.config import DataClientConfig, ExecutionClientConfig

        from adapters.ethereal.common.credentials import parse_private_key
        from adapters.ethereal.config import EtherealDataClientConfig, EtherealExecClientConfig
        from adapters.ethereal.factories import EtherealDataClientFactory, EtherealExecClientFactory

        s, plan = self.plan.settings, self.plan
        network = "testnet" if s.testnet else "mainnet"
        tickers = sorted({InstrumentId.from_str(i).symbol.value.removesuffix("-PERP") for i in plan.id_map})
        dcfg = EtherealDataClientConfig(network=network, rest_url=s.base_url_http, ws_url=s.base_url_ws,
                                        tickers=tickers, instrument_refresh_mins=0,
                                        settlement_currency=plan.settlement)
        # Ethereal: api_key = the account (0x wallet address), api_secret = the signing private key
        ecfg = EtherealExecClientConfig(network=network, rest_url=s.base_url_http, ws_url=s.base_url_ws,
                                        tickers=tickers, account_address=self.creds.api_key,
                                        settlement_currency=plan.settlement)
        key = parse_private_key(self.creds.api_secret, self.creds.source)
        return (builder.add_data_client(plan.live_venue, EtherealDataClientFactory(dcfg), DataClientConfig())
                .add_exec_client(plan.live_venue, EtherealExecClientFactory(ecfg, key=key), ExecutionClientConfig()))

    def make_strategies(self) -> list[Any]:
        out = []
        for i, spec in enumerate(self.cfg.strategies):
            params = dict(spec.params)
            if "instrument_id" in params:
                params["instrument_id"] = self.plan.id_map.get(params["instrument_id"], params["instrument_id"])
                # adopted/ledger-known venue positions come back as EXTERNAL: let the strategy claim them
                params.setdefault("external_order_instrument_ids", [InstrumentId.from_str(params["instrument_id"])])
            if "bar_type" in params:
                params["bar_type"] = self.plan.bar_map.get(params["bar_type"], params["bar_type"])
            if self.plan.product == "spot":
                # rc7's spot execution client is HEDGING (hard-coded in its factory; the config's oms_type is not
                # used): a sell would open a second, SHORT position instead of reducing the long one. NETTING
                # per strategy, as in backtests and paper: one position per instrument
                from nautilus_trader.model import OmsType

                params.setdefault("oms_type", OmsType.NETTING)
            # with the platform's hooks (a user's plain Strategy gets them at load): guard_strategy uses them
            out.append(spec.resolve().make_strategy(params, order_id_tag=f"{i:03d}", hooks=True))
        return out

    # -- run
    def run(self) -> Path:
        """Build, serve metrics, run until stopped (kill switch, signal, ``max_seconds``), write results."""
        if self.node is None:
            self.build()
        s = self.plan.settings
        if s.monitoring.metrics_port is not None:
            from nautilus_app.monitoring import start_metrics_server

            self._metrics_server, self.metrics_port = start_metrics_server(
                lambda: [dict(self.snapshot, running=self.running)], s.monitoring.metrics_port, s.monitoring.metrics_host)
            _event(logging.INFO, "metrics served", url=f"http://{s.monitoring.metrics_host}:{self.metrics_port}/metrics")
        (self.control_dir / "KILL").unlink(missing_ok=True)
        (self.control_dir / "pid").write_text(f"{os.getpid()}\n{self.run_id}\n{self.results_path}\n")
        previous = {}
        if threading.current_thread() is threading.main_thread():
            def on_term(signum: int, frame: Any) -> None:
                self.request_kill("stop", f"signal {signal.Signals(signum).name}")
                threading.Timer(30, self.request_stop, args=("kill switch timed out after a signal",)).start()

            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_term)
            previous[signal.SIGUSR1] = signal.signal(
                signal.SIGUSR1, lambda n, f: self.request_kill("flatten", "signal SIGUSR1"))
        timer = None
        if self.max_seconds is not None:
            timer = threading.Timer(self.max_seconds, self.request_stop, args=(f"max_seconds={self.max_seconds}",))
            timer.daemon = True
            timer.start()
        _event(logging.INFO, "live node starting", run_id=self.run_id, trader_id=s.trader_id,
               venue=self.plan.venue.name, testnet=s.testnet, results=str(self.results_path),
               credentials=self.creds.source)
        self.running = True
        failure: Exception | None = None
        try:
            self.node.run()
        except Exception as e:  # noqa: BLE001 - reported below with the results written
            failure = e
        finally:
            self.running = False
            if timer is not None:
                timer.cancel()
            for sig, h in previous.items():
                signal.signal(sig, h)
        if failure is None and not self.refused and (self.supervisor is None or self.supervisor.started_wall is None):
            # stopped (max_seconds, signal) while Nautilus still waited for its clients: the session never traded
            self.failed = (f"stopped before the node was ready: the {self.plan.live_venue} data/execution clients "
                           "were not connected")
            _event(logging.ERROR, self.failed, reason=self._stop_reason)
        self.save_ledger()
        self.write_results_safe(final=True)
        self.write_status()
        reason = self._stop_reason or (f"failed: {failure!r}" if failure else "stopped")
        self.alert("session_stopped", f"live session stopped: {reason}", force=True)
        self.alerter.flush(10)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        (self.control_dir / "pid").unlink(missing_ok=True)
        _event(logging.INFO, "live node stopped", reason=reason)
        try:
            self.node.dispose()
        except Exception:  # noqa: BLE001
            pass
        if failure is not None:
            raise failure
        if self.failed:
            raise RuntimeError(self.failed)
        if self.refused:
            raise LiveRefused(self.refused)
        return self.results_path

    # -- status / metrics
    def status(self) -> dict:
        """The session's state (``status.json``, the Prometheus collector, the Dash Sessions page)."""
        sup = self.supervisor
        rev = self.plan.reverse_ids
        st: dict[str, Any] = {"session": self.run_id, "run_id": self.run_id, "mode": "live",
                              "trader_id": self.plan.settings.trader_id, "venue": self.plan.venue.name,
                              "testnet": self.plan.settings.testnet, "running": self.running,
                              "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                              "started_at": self.started_at, "halted": self.rails.halted, "killed": self.killed,
                              "refused": self.refused, "failed": self.failed, "reconciliation": self.reconciliation,
                              "stop_reason": self._stop_reason, "metrics_port": self.metrics_port}
        if sup is None:
            return st
        try:
            cache = sup.cache
            positions = []
            gross = 0.0
            upnl_total = 0.0
            for p in cache.positions_open():
                iid = str(p.instrument_id)
                px = sup.last_close.get(iid)
                upnl = 0.0 if px is None else float(p.signed_qty) * (px - float(p.avg_px_open))
                notional = None if px is None else abs(float(p.signed_qty)) * px
                gross += notional or 0.0
                upnl_total += upnl
                positions.append({"instrument_id": rev.get(iid, iid), "strategy_id": str(p.strategy_id),
                                  "side": str(p.side).split(".")[-1], "quantity": float(p.signed_qty),
                                  "avg_px_open": float(p.avg_px_open), "unrealized_pnl": upnl, "notional": notional})
            orders = [{"client_order_id": str(o.client_order_id), "instrument_id": rev.get(str(o.instrument_id),
                       str(o.instrument_id)), "side": str(o.side).split(".")[-1], "type": str(o.order_type).split(".")[-1],
                       "quantity": float(o.quantity), "status": str(o.status).split(".")[-1]}
                      for o in cache.orders_open()]
            all_orders = list(cache.orders())
            fills = []
            lat = []
            for o in all_orders:
                sent = self.sent_at.get(str(o.client_order_id))
                evs = o.events() if callable(getattr(o, "events", None)) else list(getattr(o, "events", []))
                if sent is not None and len(evs) > 1:
                    first = min((int(e.ts_event) for e in evs[1:] if int(e.ts_event) >= sent), default=None)
                    if first is not None:
                        lat.append((first - sent) / 1e9)
                for e in evs:
                    if type(e).__name__ == "OrderFilled":
                        fills.append({"ts": str(pd.Timestamp(int(e.ts_event), tz="UTC")),
                                      "instrument_id": rev.get(str(e.instrument_id), str(e.instrument_id)),
                                      "side": str(e.order_side).split(".")[-1], "qty": float(e.last_qty),
                                      "price": float(e.last_px), "commission": str(e.commission),
                                      "client_order_id": str(e.client_order_id)})
            eq = sup.equity()
            st.update({
                "balances": sup.balances(), "equity_usdt": eq, "equity_currency": self.plan.settlement,
                "positions": positions, "open_orders": orders,
                "recent_fills": fills[-20:], "feed_stale": sup.stale,
                "last_bar_age_seconds": None if sup.last_bar_wall is None else time.monotonic() - sup.last_bar_wall,
                "alerts_recent": self.alerter.history[-20:],
                "metrics": {
                    "equity_usdt": eq,
                    "pnl": None if eq is None or sup.start_equity is None else eq - sup.start_equity,
                    "unrealized_pnl": upnl_total,
                    "daily_pnl": None if eq is None or sup.day_start_equity is None else eq - sup.day_start_equity,
                    "drawdown": None if eq is None or not sup.peak else max(0.0, 1 - eq / sup.peak),
                    "exposure_gross": gross, "leverage": gross / eq if eq else None,
                    "orders_submitted": self.rails.submitted, "orders_denied": dict(self.rails.denied),
                    "orders_rejected": sum(1 for o in all_orders if str(o.status).endswith("REJECTED")),
                    "fills": len(fills), "errors": self.errors,
                    "order_latency_seconds": {"last": lat[-1] if lat else None,
                                              "avg": sum(lat) / len(lat) if lat else None,
                                              "max": max(lat) if lat else None},
                    "feed_staleness_seconds": None if sup.last_bar_wall is None else time.monotonic() - sup.last_bar_wall,
                    "alerts": {"sent": self.alerter.sent, "suppressed": self.alerter.suppressed,
                               "failed": self.alerter.failed},
                }})
        except Exception as e:  # noqa: BLE001 - status must never take the node down
            st["status_error"] = repr(e)
        return st

    def write_status(self) -> None:
        """Compute the status on the node's thread (Nautilus objects must not be touched from another thread:
        the metrics server reads :attr:`snapshot`), write ``status.json`` and the ledger."""
        try:
            self.snapshot = self.status()
            _write(self.results_path / "status.json", json.dumps(self.snapshot, indent=2, default=str))
            self.save_ledger()
        except Exception as e:  # noqa: BLE001
            self.errors += 1
            _event(logging.ERROR, "status write failed", error=repr(e))

    def write_results_safe(self, final: bool) -> None:
        try:
            write_live_results(self, final=final)
        except Exception as e:  # noqa: BLE001 - results must never take the node down
            self.errors += 1
            _event(logging.ERROR, "results write failed", error=repr(e))


def write_live_results(session: LiveSession, *, final: bool) -> Path:
    """``results/<run_id>/`` in the backtest format from the live cache through :mod:`nautilus_app.results`:
    orders, fills, positions, account, trades, equity (sampled from the venue account at each bar),
    metrics; ``run.json`` ``mode = "live"``; every text file passes the secret redactor."""
    import msgspec
    import nautilus_trader

    from nautilus_app.results import add_fill_costs, build_trades, session_reports, write_session_results
    from nautilus_app.results.schema import FUNDING_COLUMNS

    sup = session.supervisor
    cache = sup.cache if session.running else session.node.cache
    orders_all, orders, fills, positions, account = session_reports(
        cache, session.plan.live_venue, session.plan.venue.name, session.plan.reverse_ids)
    if not fills.empty:  # live: the reference price is the fill price (no model), liquidations by tag
        fills = add_fill_costs(fills, orders, {})
    funding = pd.DataFrame(columns=FUNDING_COLUMNS)
    funding["ts"] = pd.to_datetime(funding["ts"], utc=True)
    info: dict[str, Any] = {
        "run_id": session.run_id, "name": session.cfg.name, "mode": "live", "running": not final,
        "config_digest": session.cfg.digest(), "nautilus_trader": nautilus_trader.__version__,
        "trader_id": session.plan.settings.trader_id, "venue": session.plan.venue.name,
        "testnet": session.plan.settings.testnet, "orders": len(orders_all),
        "execution": f"{session.plan.live_venue} execution client (real venue"
                     f"{' testnet' if session.plan.settings.testnet else ''})",
        "limits": msgspec.to_builtins(session.plan.settings.limits), "halted": session.rails.halted,
        "killed": session.killed, "refused": session.refused, "reconciliation": session.reconciliation,
        "funding": "paid by the venue into the wallet balance (in the equity samples; no funding.parquet rows)",
        "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    equity = trades = None
    samples = sup.equity_samples
    if samples:
        idx = pd.to_datetime([t for t, _ in samples], utc=True)
        equity = pd.Series([e for _, e in samples], index=idx, name="equity")
        equity = equity[~equity.index.duplicated(keep="last")].sort_index()
        trades = build_trades(positions, funding, fills=fills if not fills.empty else None)
    write_session_results(
        session.results_path, cfg=session.cfg, run_info=info,
        tables={"orders": orders, "fills": fills, "positions": positions, "account": account, "funding": funding},
        config_text=session.config_text, equity=equity, trades=trades, redact=REDACT)
    return session.results_path


# ---- command line ----------------------------------------------------------------------------------
def _control_dir(settings: LiveSettings, results_root: Path | None) -> Path:
    root = Path(results_root) if results_root is not None else paths.results_dir()
    return Path(settings.control_dir) if settings.control_dir else root / ".live" / settings.trader_id


def run_live_from_args(args: Any) -> int:
    """Exit codes: 0 ok, 1 failed, 2 bad config / no opt-in, 3 refused by reconciliation."""
    import msgspec

    from nautilus_app.config import ConfigError, load_live_config

    action = args.action_or_config
    if action in ("stop", "flatten", "status"):
        if not args.config:
            print(f"error: nautilus-app live {action} CONFIG: the config of the running node is needed", file=sys.stderr)
            return 2
        config_path = args.config
    else:
        config_path, action = action, "run"
    try:
        cfg, settings, text = load_live_config(config_path)
        if settings is None:
            raise LiveConfigError(f"{config_path}: key live: missing; add a [live] table (docs/live.md)")
        over = {k: v for k, v in {"on_unknown": args.on_unknown, "base_url_http": args.base_url_http,
                                  "base_url_ws": args.base_url_ws,
                                  "base_url_ws_api": getattr(args, "base_url_ws_api", None)}.items() if v is not None}
        if args.metrics_port is not None:
            over["monitoring"] = {**msgspec.to_builtins(settings.monitoring), "metrics_port": args.metrics_port}
        if over:
            settings = msgspec.convert({**msgspec.to_builtins(settings), **over}, LiveSettings)
    except (ConfigError, LiveConfigError, msgspec.ValidationError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if action != "run":
        return _control(action, settings, args)
    if not args.opt_in:
        print(f"error: live trading needs {OPT_IN_FLAG} on the command line (and [live] enabled = true)",
              file=sys.stderr)
        return 2
    try:
        session = LiveSession(cfg, settings, config_text=text, results_root=args.results_dir,
                              max_seconds=args.max_seconds, source=str(config_path), run_id=args.run_id)
    except LiveConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(describe(session.plan, session.creds, session.control_dir, list(cfg.strategies)), flush=True)
    setup_logging(session.results_path / "live.log.jsonl")
    try:
        path = session.run()
    except LiveRefused as e:
        print(f"refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as e:  # noqa: BLE001
        _event(logging.ERROR, "live node failed", error=repr(e))
        return 1
    print(str(path))
    return 0


def _control(action: str, settings: LiveSettings, args: Any) -> int:
    """``live stop|flatten CONFIG``: write the control file the running node polls; ``status``: print it."""
    cdir = _control_dir(settings, args.results_dir)
    pid_file = cdir / "pid"
    if action == "status":
        if not pid_file.exists():
            print(f"no live node running for trader {settings.trader_id} ({pid_file} missing)")
            return 1
        pid, run_id, results = (pid_file.read_text().splitlines() + ["", "", ""])[:3]
        print(f"live node pid {pid}, run {run_id}")
        st = Path(results) / "status.json"
        if st.exists():
            print(st.read_text())
        return 0
    cdir.mkdir(parents=True, exist_ok=True)
    kill = cdir / "KILL"
    kill.write_text(action + "\n")
    print(f"kill switch '{action}' written to {kill}")
    if args.wait and pid_file.exists():
        t_end = time.monotonic() + args.wait
        while time.monotonic() < t_end:
            if action == "stop" and not pid_file.exists():
                print("live node stopped")
                return 0
            if action == "flatten" and not kill.exists():
                print("live node picked up the flatten request")
                return 0
            time.sleep(0.2)
        print("timed out waiting for the live node", file=sys.stderr)
        return 1
    return 0


def alerts_test_from_args(args: Any) -> int:
    """``nautilus-app alerts test CONFIG``: send one test alert to every configured webhook."""
    from nautilus_app.alerts import Alerter
    from nautilus_app.config import ConfigError, load_live_config

    try:
        _cfg, settings, _text = load_live_config(args.config)
        if settings is None:
            raise LiveConfigError(f"{args.config}: key live: missing; alerts are configured in [live.alerts]")
        alerter = Alerter(settings.alerts, f"alerts-test:{settings.trader_id}")
    except (ConfigError, LiveConfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not alerter.targets:
        print("no webhooks configured in [live.alerts]", file=sys.stderr)
        return 1
    alerter.fire("test", "test alert from nautilus-app alerts test", force=True)
    alerter.flush(settings.alerts.timeout_seconds * len(alerter.targets) + 5)
    ok = True
    for rec in alerter.history:
        for outcome in rec.get("delivered", []):
            print(outcome)
            ok = ok and "HTTP 2" in outcome
    return 0 if ok else 1
