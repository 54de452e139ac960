"""Shared config and plumbing for the bar strategies in this package.

Config pattern (nautilus 2.0.0rc7 trap)
---------------------------------------
``StrategyConfig`` is a pyo3 class that validates keyword arguments in ``__new__``. A subclass
that only declares class attributes silently ignores its own kwargs (``Cfg(fast=5).fast == 10``).
``BarStrategyConfig.__new__`` therefore removes every keyword declared by the ``__init__`` of
the config class hierarchy (introspected once per class) and hands only the base fields
(``strategy_id``, ``order_id_tag``, ``oms_type``, ...) to the pyo3 base; ``__init__`` stores the
own fields. The pyo3 base itself accepts *any* extra keyword (``**_kwargs``) without a word, so
``__new__`` raises ``TypeError`` for keywords that are neither own nor base fields (typos are loud).
``strategy_id`` may be given as a string (``"EMACross-001"``) for JSON configs.
Two instances on one trader need distinct ``order_id_tag`` values (or strategy ids whose tag
suffixes differ: ``A-001`` and ``B-001`` clash).

Bar handling (all strategies)
-----------------------------
``on_bar`` (closed bars only; bars are stamped at their close) does, in order:

1. gap rule: if ``bar.ts_event - previous bar.ts_event > max_gap_bars x bar interval``, every
   indicator is reset (and the strategy's own signal memory via ``on_gap``); open positions are
   kept. With 1-minute bars and the default ``max_gap_bars=60`` any hole longer than one hour
   (exchange maintenance, the months between data windows) restarts the warm-up.
2. the indicators in ``self.indicators`` are registered with ``register_indicator_for_bars``, so
   Nautilus updates them before ``on_bar`` runs (no Python call per indicator and bar); after a
   gap they are reset and fed the current bar again by hand, so they restart from it.
3. ``on_signal_bar(bar, side)`` of the concrete strategy updates its signal state and decides.
   While an order of this strategy is still in flight/open (only possible when a latency model
   is configured) ``enter``/``exit_position`` submit nothing (``trading_blocked``), so a signal
   on such a bar is dropped rather than doubled.

Fill timing
-----------
Decided by the venue, not here. In this platform's backtests (nautilus_app/venue/fill_timing.py)
a market order submitted in ``on_bar(bar N)`` fills at bar N+1's open by default, timestamped at bar
N's close (``fill_timing = "same_close"``: at bar N's close, Nautilus's own bar execution). With a
simulated latency (nautilus_app/venue/latency.py) the order reaches the venue later; commands held
by it count as pending (``commands_held``). Exits go through ``submit_order`` (reduce-only market
orders) so that latency applies to them too.

Hooks (strategies/hooks.py)
---------------------------
``BarStrategy`` inherits :class:`strategies.hooks.StrategyHooks`, the seams the platform's layers
use instead of replacing methods on the instance: order gates (``add_order_gate``: every order
command passes through them; the simulated latency and the paper guards), before-bar work
(``add_before_bar``: runs first in ``on_bar``; the paper clock) and an external bar driver
(``drive_bars_externally``: the paper sequencer delivers bars and updates the indicators). Without
any, ``on_bar`` pays one attribute test per bar and an order command one Python call.

Risk (opt-in)
-------------
With a ``risk`` table in the params (docs/risk.md) a ``strategies.risk.manager.RiskManager`` sizes
entries and applies pre-trade limits in ``enter()``, places protective orders after entry fills, and
runs its per-bar work (equity for limits, trailing stops, time stop, borrowing) from ``on_bar``.
Without one, the only per-bar cost is a ``self.risk is not None`` check.

Stop
----
With ``close_positions_on_stop=True`` (default) ``on_stop`` cancels this strategy's open orders
and closes its positions at market (orders tagged ``END_OF_RUN``); in a backtest that close fills at
the last bar's close.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

from nautilus_trader.model import (
    BarType,
    CurrencyPair,
    InstrumentId,
    OrderSide,
    PositionSide,
    StrategyId,
    TimeInForce,
)
from nautilus_trader.trading import Strategy, StrategyConfig

from strategies.hooks import StrategyHooks
from strategies.params import BarsOrZero, EquityFraction, NotionalFraction, set_checked
from strategies.risk.sizing import account_equity, entry_quantity

_BASE_FIELDS_CACHE: dict[type, frozenset[str]] = {}
RISK_RECORDS_KEY = "risk_records"  # Cache key prefix of a strategy's risk records (read by results.py)
RISK_BORROW_KEY = "risk_borrow"  # ... and of its borrowing accruals
RISK_TRAILED_KEY = "risk_trailed"  # ... and the ids of its stop orders a trailing update moved (exit reasons)
END_OF_RUN_TAG = "END_OF_RUN"  # tag of the closes in on_stop (exit reason end_of_run)
_NO_BAR_YET = 2**62  # ns sentinel: "no previous bar" and "no gap limit"


def _nautilus_base_fields() -> frozenset[str]:
    """Named parameters of the pyo3 ``StrategyConfig`` (it also swallows any ``**_kwargs``)."""
    try:
        params = inspect.signature(StrategyConfig).parameters.values()
        return frozenset(p.name for p in params if p.kind != p.VAR_KEYWORD)
    except (TypeError, ValueError):  # pragma: no cover - signature not exposed
        return frozenset({"strategy_id", "order_id_tag", "oms_type", "external_order_instrument_ids"})


NAUTILUS_BASE_FIELDS = _nautilus_base_fields()


def _own_fields(cls: type) -> frozenset[str]:
    """Keyword names declared by the ``__init__`` of every BarStrategyConfig class in the MRO."""
    cached = _BASE_FIELDS_CACHE.get(cls)
    if cached is not None:
        return cached
    names: set[str] = set()
    for klass in cls.__mro__:
        if not (isinstance(klass, type) and issubclass(klass, BarStrategyConfig)):
            continue
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self":
                names.add(p.name)
    result = frozenset(names)
    _BASE_FIELDS_CACHE[cls] = result
    return result


class BarStrategyConfig(StrategyConfig):
    """Fields shared by all strategies of this package (all JSON-able).

    Parameters
    ----------
    instrument_id: e.g. ``"BTCUSDT.BINANCE"`` (spot) or ``"BTCUSDT-PERP.BINANCE_USDM"``.
    bar_type: e.g. ``"BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"``; must belong to ``instrument_id``.
    position_fraction: notional of each entry as a fraction of account equity in the
        quote/settlement currency (0.20 = 20 %). Must be in (0, 10].
    allow_short: open short positions on sell signals. Ignored (with a warning) on CASH accounts.
    max_gap_bars: reset all indicators when two consecutive bars are more than this many bar
        intervals apart (default 60, i.e. 1 hour of 1m bars). 0 disables the rule.
    close_positions_on_stop: cancel open orders and close positions at market in ``on_stop``.
    fee_headroom: CASH accounts only: fraction of the order notional kept free in the quote
        balance for the fee and fill-price drift (default 0.002 = 0.2 %, Binance spot taker is 0.1 %).
    risk: optional ``risk`` table (sizing / stops / limits; docs/risk.md, parsed by
        ``strategies.risk.parse_risk``). None (default): none of it, behaviour unchanged.
    **base: ``strategy_id`` (str or StrategyId), ``order_id_tag`` (str), ``oms_type`` ... passed
        to nautilus ``StrategyConfig``.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> BarStrategyConfig:
        own = _own_fields(cls)
        base = {k: v for k, v in kwargs.items() if k not in own}
        unknown = sorted(k for k in base if k not in NAUTILUS_BASE_FIELDS)
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown config field(s) {unknown}")
        sid = base.get("strategy_id")
        if isinstance(sid, str):
            base["strategy_id"] = StrategyId(sid)
        return super().__new__(cls, *args, **base)

    def __init__(
        self,
        *,
        instrument_id: str,
        bar_type: str,
        position_fraction: EquityFraction = 0.20,
        allow_short: bool = False,
        max_gap_bars: BarsOrZero = 60,
        close_positions_on_stop: bool = True,
        fee_headroom: NotionalFraction = 0.002,
        risk: dict[str, Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__()
        self.instrument_id: str = str(instrument_id)
        self.bar_type: str = str(bar_type)
        set_checked(self, position_fraction=position_fraction, max_gap_bars=max_gap_bars,
                    fee_headroom=fee_headroom)  # declared types and ranges (strategies/params.py)
        self.position_fraction: float
        self.max_gap_bars: int
        self.fee_headroom: float
        self.allow_short: bool = bool(allow_short)
        self.close_positions_on_stop: bool = bool(close_positions_on_stop)
        from strategies.risk.config import parse_risk

        self.risk: dict[str, Any] | None = risk
        self.risk_config = parse_risk(risk)  # RiskConfigError (a ValueError) names the bad key
        iid = InstrumentId.from_str(self.instrument_id)
        bt = BarType.from_str(self.bar_type)
        if bt.instrument_id != iid:
            raise ValueError(f"bar_type {self.bar_type!r} is not for instrument {self.instrument_id!r}")

    def params(self) -> dict[str, Any]:
        """The package-level fields as a plain dict (for logs and result metadata)."""
        return {k: getattr(self, k) for k in sorted(_own_fields(type(self)))}

    @staticmethod
    def _positive_int(name: str, value: Any) -> int:
        v = int(value)
        if v < 1:
            raise ValueError(f"{name} must be >= 1, was {value}")
        return v


class BarStrategy(StrategyHooks, Strategy):
    """Base class: bar subscription, gap reset, position queries, sizing and stop handling.

    Subclasses fill ``self.indicators`` in ``__init__`` and implement ``on_signal_bar``. The
    platform's hooks (order gates, before-bar work, an external bar driver) come from
    :class:`strategies.hooks.StrategyHooks` (module docstring).
    """

    # The state on_bar reads and writes on every bar lives in slots. On a Nautilus (PyO3) strategy an attribute
    # in the instance dictionary costs ~80 ns to read and 115-165 ns to write, a slot ~25 ns (CPython 3.13,
    # rc7, timeit): on_bar touches about a dozen per bar (EMACross.on_bar with its plot recorder 2.2-2.5 ->
    # 1.4 us a bar in isolation). Other attributes, and those of subclasses without __slots__, stay in the
    # dictionary as usual.
    __slots__ = ("instrument_id", "bar_type", "venue", "position_fraction", "allow_short", "indicators", "instrument",
                 "is_cash", "bar_index", "entry_bar_index", "last_exit_bar_index", "_last_ts", "trading_blocked",
                 "_state_dirty", "_side", "_interval_ns", "_max_gap_ns", "gap_resets", "risk", "plot_recorder",
                 "_bar_hooks")

    indicators: list[Any]
    _NAME: ClassVar[str] = "BarStrategy"
    #: set by the run's plot recorder (nautilus_app/plotting.py) when the class has a ``plot_config``: called
    #: with the bar's close time at the end of :meth:`on_bar`, so no second Python bar handler runs per bar
    plot_recorder: Callable[[int], None] | None

    def __init__(self, config: BarStrategyConfig) -> None:
        super().__init__(config)
        self.plot_recorder = None
        self._bar_hooks = False  # strategies.hooks.StrategyHooks sets it when a bar hook is added (a slot here)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(config.bar_type)
        self.venue = self.instrument_id.venue
        self.position_fraction = config.position_fraction
        self.allow_short = config.allow_short
        self.indicators = []
        self.instrument: Any = None
        self.is_cash = False
        self.bar_index = -1  # 0-based index of the current bar (bars received)
        self.entry_bar_index: int | None = None  # bar on which the current entry was submitted
        self.last_exit_bar_index: int | None = None
        # ts of the previous bar; the sentinel makes "ts - last" negative on the first bar (no gap)
        self._last_ts: int = _NO_BAR_YET
        self.trading_blocked = False
        # Order/position state is re-read from the cache only after something may have changed it
        # (an order of ours was submitted or filled), not on every bar: the two cache queries cost
        # about as much as the rest of on_bar (measured: 560k bars 6.9 s -> see README).
        self._state_dirty = True
        self._side = PositionSide.FLAT
        spec = self.bar_type.spec
        self._interval_ns = spec.get_interval_ns() if spec.is_time_aggregated() else 0
        # gap threshold, ns; "never" when the rule is off (max_gap_bars=0 or non-time bars)
        self._max_gap_ns = self._interval_ns * config.max_gap_bars if config.max_gap_bars > 0 and self._interval_ns else _NO_BAR_YET
        self.gap_resets = 0
        self.risk: Any = None  # strategies.risk.manager.RiskManager when the config has a risk table
        if config.risk_config is not None:
            from strategies.risk.manager import RiskManager

            self.risk = RiskManager(config.risk_config)

    # ---- lifecycle -----------------------------------------------------------------------
    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.instrument_id)
        if self.instrument is None:
            self.log.error(f"instrument {self.instrument_id} not in cache; strategy does nothing")
            return
        if getattr(self.instrument, "is_inverse", False):
            self.log.error("inverse instruments are not supported by the sizing helper")
            return
        # One call only: account() copies the account event history (O(history) per call).
        account = self.portfolio.account(self.venue)
        if account is not None:
            self.is_cash = bool(account.is_cash_account())
        else:
            self.is_cash = isinstance(self.instrument, CurrencyPair)
        if self.is_cash and self.allow_short:
            self.log.warning("allow_short=True ignored on a CASH account (long/flat only)")
            self.allow_short = False
        if self.risk is not None:
            self.risk.start(self)
        if self.risk is not None and self.risk.atr is not None and self.risk.atr not in self.indicators:
            self.indicators.append(self.risk.atr)  # updated by Nautilus, reset on gaps like the others
        for ind in self.indicators:
            self.register_indicator_for_bars(self.bar_type, ind)
        self.subscribe_bars(self.bar_type)

    def on_stop(self) -> None:
        if self.risk is not None:  # for the results (risk_refusals.parquet); Cache.add takes bytes
            self.cache.add(f"{RISK_RECORDS_KEY}:{self.strategy_id.value}", self.risk.records_bytes())
            self.cache.add(f"{RISK_BORROW_KEY}:{self.strategy_id.value}", self.risk.borrow_bytes())
            self.cache.add(f"{RISK_TRAILED_KEY}:{self.strategy_id.value}", self.risk.trailed_bytes())
        if not self.config.close_positions_on_stop:
            return
        self.cancel_all_orders(self.instrument_id)
        if self.position_side() != PositionSide.FLAT:
            self.close_all_positions(self.instrument_id, tags=[END_OF_RUN_TAG])

    def on_order_filled(self, event: Any) -> None:
        """Any fill of ours (including liquidations by the venue) changes the position."""
        self._state_dirty = True
        if self.risk is not None:
            self.risk.on_fill(self, event)

    def on_position_closed(self, event: Any) -> None:
        """Risk: trade return for Kelly sizing; cancel the remaining protective orders."""
        if self.risk is not None:
            self.risk.on_position_closed(self, event)
            self._state_dirty = True

    def on_reset(self) -> None:
        for ind in self.indicators:
            ind.reset()
        self.bar_index = -1
        self.entry_bar_index = None
        self.last_exit_bar_index = None
        self._last_ts = _NO_BAR_YET
        self.gap_resets = 0
        self._state_dirty = True
        if self.risk is not None:
            from strategies.risk.manager import RiskManager

            atr = self.risk.atr
            self.risk = RiskManager(self.risk.cfg)
            self.risk.atr = atr  # the registered indicator object (reset above)
        self.on_gap()

    # ---- bars ----------------------------------------------------------------------------
    def on_bar(self, bar: Any) -> None:
        # Only bars of self.bar_type arrive here: it is the strategy's one bar subscription.
        # This runs on every bar: keep it lean (see the throughput benchmark).
        if self._bar_hooks and self._bar_gate(bar):  # strategies.hooks: before-bar work, external driver
            return
        if self.instrument is None:
            return
        self.bar_index += 1
        ts = bar.ts_event
        if ts - self._last_ts > self._max_gap_ns:
            # Nautilus already fed this bar to the registered indicators: restart them from it.
            self.gap_resets += 1
            for ind in self.indicators:
                ind.reset()
                ind.handle_bar(bar)
            self.on_gap()
        self._last_ts = ts
        if self._state_dirty:
            self._refresh_state()
        if self.risk is not None:
            self.risk.on_bar(self, bar)
        self.on_signal_bar(bar, self._side)
        if self.plot_recorder is not None:
            self.plot_recorder(ts)

    def _refresh_state(self) -> None:
        """Re-read pending orders and position side from the cache (only after our orders/fills)."""
        self.trading_blocked = self.has_pending_orders()
        self._side = self.position_side()
        # stay dirty while an order is in flight: its fill may arrive before the next bar
        self._state_dirty = self.trading_blocked
        if self._side == PositionSide.FLAT and not self.trading_blocked:
            self.entry_bar_index = None

    @property
    def max_gap_ns(self) -> int:
        """Gap between two bar closes (ns) beyond which the indicators restart (the gap rule); 2**62 when off."""
        return self._max_gap_ns

    def on_signal_bar(self, bar: Any, side: PositionSide) -> None:  # pragma: no cover - abstract
        """Strategy decision on a closed bar; ``side`` is this strategy's current position side."""
        raise NotImplementedError

    def on_gap(self) -> None:
        """Hook: clear the strategy's own signal memory (called after indicator resets)."""

    # ---- helpers -------------------------------------------------------------------------
    def has_pending_orders(self) -> bool:
        """True while an order of this strategy for the instrument is in flight or resting."""
        c = self.cache
        if self.risk is not None:  # resting protective stops/take-profits do not block trading
            return (
                self.commands_held > 0
                or c.orders_inflight_count(instrument_id=self.instrument_id, strategy_id=self.strategy_id) > 0
                or self.risk.has_open_non_protective(self)
            )
        return (
            self.commands_held > 0  # commands held by an order gate (the simulated latency, nautilus_app/venue/latency.py)
            or c.orders_inflight_count(instrument_id=self.instrument_id, strategy_id=self.strategy_id) > 0
            or c.orders_open_count(instrument_id=self.instrument_id, strategy_id=self.strategy_id) > 0
        )

    def net_quantity(self) -> Decimal:
        """Signed open quantity of this strategy in the instrument (base units; short < 0)."""
        total = Decimal(0)
        for p in self.cache.positions_open(instrument_id=self.instrument_id, strategy_id=self.strategy_id):
            total += Decimal(str(p.signed_qty))
        return total

    def position_side(self) -> PositionSide:
        positions = self.cache.positions_open(instrument_id=self.instrument_id, strategy_id=self.strategy_id)
        if not positions:
            return PositionSide.FLAT
        if len(positions) == 1:  # NETTING: one position, whose side is its signed quantity's sign
            return positions[0].side
        q = self.net_quantity()
        if q > 0:
            return PositionSide.LONG
        if q < 0:
            return PositionSide.SHORT
        return PositionSide.FLAT

    def bars_held(self) -> int:
        """Bars since the entry order was submitted (0 on the entry bar)."""
        if self.entry_bar_index is None:
            return 0
        return self.bar_index - self.entry_bar_index

    def enter(self, side: OrderSide, bar: Any, fraction: float | None = None) -> bool:
        """Submit a market entry worth ``fraction`` (default ``position_fraction``) of equity.

        Returns False (debug log) when the size is below the instrument minimums.
        """
        if self.trading_blocked or (side == OrderSide.SELL and not self.allow_short):
            return False
        frac = self.position_fraction if fraction is None else fraction
        if self.risk is not None:
            qty = self.risk.entry_quantity(self, side, bar, frac)
            if qty is None:
                return False
            order = self.order_factory.market(self.instrument_id, side, qty, time_in_force=TimeInForce.GTC)
            self.risk.entry_submitted(order)
            self.submit_order(order)
            self._state_dirty = True
            self.entry_bar_index = self.bar_index
            return True
        equity, quote = self.sizing_equity(bar)
        cash_cap = quote if (self.is_cash and side == OrderSide.BUY) else None
        res = entry_quantity(
            self.instrument,
            equity,
            frac,
            bar.close,
            quote_available=cash_cap,
            fee_headroom=self.config.fee_headroom,
        )
        if res.quantity is None:
            self.log.debug(f"entry {side} skipped: {res.reason}")
            return False
        order = self.order_factory.market(
            self.instrument_id, side, res.quantity, time_in_force=TimeInForce.GTC
        )
        self.submit_order(order)
        self._state_dirty = True
        self.entry_bar_index = self.bar_index
        return True

    def sizing_equity(self, bar: Any) -> tuple[Decimal, Decimal]:
        """``(equity, quote available)`` an entry on ``bar`` is sized from (:func:`strategies.risk.sizing.account_equity`)."""
        return account_equity(self.portfolio, self.venue, self.instrument, bar.close, self.is_cash)

    def exit_position(self, tag: str) -> None:
        """Close this strategy's open position(s) in the instrument at market."""
        if self.trading_blocked:
            return
        if self.risk is not None:
            self.risk.cancel_protective(self)
        # a reduce-only market order per position through submit_order (what close_all_positions does,
        # but on the Python path, so a simulated latency applies to exits as well)
        for p in self.cache.positions_open(instrument_id=self.instrument_id, strategy_id=self.strategy_id):
            side = OrderSide.SELL if p.signed_qty > 0 else OrderSide.BUY
            order = self.order_factory.market(self.instrument_id, side, p.quantity, time_in_force=TimeInForce.GTC,
                                              reduce_only=True, tags=[tag])
            self.submit_order(order, position_id=p.id)
        self._state_dirty = True
        self.entry_bar_index = None
        self.last_exit_bar_index = self.bar_index
