"""Explicit seams between a strategy and the platform layers that run it (issue 22).

Three platform layers must sit between a strategy and Nautilus: the simulated latency of a backtest
venue (:mod:`nautilus_app.venue.latency`), the paper sessions (:mod:`nautilus_app.paper`: the
stale-feed guard, the market clock of fills, the bar sequencer of the simulated execution client)
and the live sessions (:mod:`nautilus_app.live`: the safety rails, start-up reconciliation, alerts on
strategy errors). They used to replace the strategy's methods on the instance (``strategy.submit_order = wrapper``).
They now use the hooks of :class:`StrategyHooks`, which every strategy run with such a layer has:

Order gates -- :meth:`StrategyHooks.add_order_gate`
    Every order command a strategy sends from Python (``submit_order``, ``submit_order_list``,
    ``modify_order``, ``cancel_order``, ``cancel_all_orders``, ``close_position``,
    ``close_all_positions``) passes through the gates, in the order they were added (the first one
    added sees the command first), before it reaches Nautilus. A gate is a callable
    ``gate(command: OrderCommand)``; it passes the command on with :meth:`OrderCommand.send` (at
    once, later from a clock alert, or never) and returns what ``send`` returned (None if it held
    the command). A command held by a gate counts in :attr:`StrategyHooks.commands_held` while it is
    held (:meth:`OrderCommand.hold` / :meth:`OrderCommand.release`), so a strategy can treat it as a
    pending order (``strategies.base.BarStrategy.has_pending_orders`` does). Without gates a command
    costs one Python call more than Nautilus's own method.
    Not gated (as before, and as in Nautilus): commands sent by Nautilus's Rust helpers on their own
    (the orders ``close_all_positions`` creates are gated as one ``close_all_positions`` command),
    and calls that name Nautilus's class explicitly (``Strategy.cancel_order(self, ...)``, used by
    the risk manager for its protective orders). :meth:`StrategyHooks.send_ungated` sends past the
    gates on purpose (the paper session's liquidation closes).

Before-bar work -- :meth:`StrategyHooks.add_before_bar`
    ``fn(bar)`` runs when a bar reaches the strategy, before any of the strategy's own ``on_bar``
    code (the paper session records the wall time at which the strategy started the bar).

Errors in ``on_bar`` -- :meth:`StrategyHooks.add_bar_error_handler`
    ``fn(bar, error)`` runs when the strategy's ``on_bar`` (before-bar work included) raises an
    ``Exception``; the exception then propagates to Nautilus as before (which logs it). The live
    session counts and alerts it. While a handler is set, the bar hooks run the strategy's ``on_bar``
    inside a ``try`` (a re-entrant call: the before-bar work runs once).

Start and stop -- :meth:`StrategyHooks.add_lifecycle_gate`
    ``gate(event)`` runs when Nautilus starts (``event == "start"``) or stops (``"stop"``) the
    strategy, before any of the strategy's own ``on_start`` / ``on_stop`` code; when a gate returns
    False, the strategy's ``on_start`` / ``on_stop`` is skipped (every gate runs, in the order added).
    The live session reconciles the venue's state with its ledger at start and skips both when it
    refused to trade, so a refused session leaves the venue untouched. Every ``on_start`` /
    ``on_stop`` a class with the hooks defines is wrapped once, when the class is created
    (``StrategyHooks.__init_subclass__``): the gates run before the outermost one whichever
    subclass defines it (``super().on_start()`` inside it does not run them again). Without gates
    the wrapper calls the method at once (once per run: no per-bar cost).

External bar driver -- :meth:`StrategyHooks.drive_bars_externally`
    Takes bar delivery away from Nautilus (the paper sequencer processes one bar at a time:
    venue step, strategy, orders, commit). Afterwards ``register_indicator_for_bars`` records the
    indicators in the returned :class:`BarDriver` instead of handing them to Nautilus, bars that
    Nautilus delivers are ignored, and :meth:`BarDriver.deliver` updates the recorded indicators
    and runs the strategy's ``on_bar`` (before-bar work included).

Which strategies have the hooks
-------------------------------
``strategies.base.BarStrategy`` (every built-in strategy) inherits :class:`StrategyHooks`; its
``on_bar`` runs the bar hooks itself (one attribute test per bar when none is set).
User strategies are plain Nautilus ``Strategy`` subclasses that know nothing of this module. For
them the runners build the strategy from :func:`with_hooks` ``(cls)``: a subclass of the user's
class with :class:`StrategyHooks` (and an ``on_bar`` that runs the bar hooks, then the user's, and
an ``on_start`` / ``on_stop`` that run the lifecycle gates, then the user's) in front of it in the method resolution order. It keeps the user's class name, module and qualified
name (Nautilus derives the default strategy id from the class name: ids, order ids and results
are unchanged) and passes ``isinstance`` checks against the user's class. It is applied at load
time (``nautilus_app.strategy_loader.StrategyRef.make_strategy(..., hooks=True)``) only by runners
that use a hook (a backtest with a latency model, every paper and live session), so a plain backtest runs
the user's class unchanged, at its own speed. This is a Python-level seam on purpose: Nautilus
2.0.0rc7 offers none below it from Python (checked in the rc7 wheel's stubs and objects): the risk
engine takes only a ``RiskEngineConfig`` (rate and notional limits, no callback), the wheel exports
no Python ``ExecAlgorithm`` base class (orders only carry an ``exec_algorithm_id``), and neither a
``Strategy`` nor a ``DataActor`` exposes the node's message bus, so no component can intercept
another one's order commands or bars.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The order commands that pass through the gates (the Python methods of Nautilus's ``Strategy``).
GATED_COMMANDS = ("submit_order", "submit_order_list", "modify_order", "cancel_order", "cancel_all_orders",
                  "close_position", "close_all_positions")


class OrderCommand:
    """One order command on its way through a strategy's gates.

    Attributes:
        strategy: The strategy that sent it.
        name: The ``Strategy`` method called, one of :data:`GATED_COMMANDS`.
        target: Its first argument: an order (``submit_order``; ``modify_order`` / ``cancel_order``
            may be given an order or a ``ClientOrderId``), an order list, an instrument id or a position.
        args: The remaining positional arguments.
        kwargs: The keyword arguments.
    """

    __slots__ = ("_level", "args", "kwargs", "name", "strategy", "target")

    def __init__(self, strategy: Any, name: str, target: Any, args: tuple, kwargs: dict, level: int = 0) -> None:
        self.strategy = strategy
        self.name = name
        self.target = target
        self.args = args
        self.kwargs = kwargs
        self._level = level

    @property
    def order(self) -> Any:
        """The order of a submit / modify / cancel (a ``ClientOrderId`` target is looked up in the
        cache; None when the cache does not know it); None for the other commands."""
        t = self.target
        if hasattr(t, "instrument_id") and hasattr(t, "client_order_id"):
            return t
        if self.name in ("modify_order", "cancel_order"):
            return self.strategy.cache.order(t)
        return None

    def send(self) -> Any:
        """Pass the command to the next gate, or to Nautilus after the last one."""
        s = self.strategy
        level = self._level + 1
        gates = s._order_gates
        if level < len(gates):
            return gates[level](OrderCommand(s, self.name, self.target, self.args, self.kwargs, level))
        return s._terminals[self.name](s, self.target, *self.args, **self.kwargs)

    def hold(self) -> None:
        """Count the command as held (:attr:`StrategyHooks.commands_held`) until :meth:`release`."""
        self.strategy.commands_held += 1

    def release(self) -> Any:
        """End a :meth:`hold` and send the command on."""
        self.strategy.commands_held -= 1
        return self.send()


class BarDriver:
    """Delivers bars to one strategy in place of Nautilus (:meth:`StrategyHooks.drive_bars_externally`).

    Attributes:
        indicators: ``(bar type string, indicator)`` pairs the strategy registered with
            ``register_indicator_for_bars``.
    """

    # no __dict__: a paper session's strategy snapshot (nautilus_app.paper_exec.snapshot_strategy) saves
    # the plain attributes of a strategy's helper objects, and the driver is not strategy state
    __slots__ = ("delivering", "indicators", "strategy")

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy
        self.indicators: list[tuple[str, Any]] = []
        self.delivering = False

    def deliver(self, bar: Any) -> None:
        """Update the indicators registered for ``bar``'s type with it, then run the strategy's ``on_bar``."""
        bt = str(bar.bar_type)
        for rbt, ind in self.indicators:
            if rbt == bt:
                ind.handle_bar(bar)
        self.delivering = True
        try:
            self.strategy.on_bar(bar)
        finally:
            self.delivering = False


class StrategyHooks:
    """Mixin with the platform's hooks (module docstring); put it before Nautilus's ``Strategy`` in the bases.

    All state lives in class-level defaults until a hook is added, so the mixin needs no ``__init__``
    (a user strategy's own ``__init__`` runs unchanged).
    """

    #: order gates, outermost first (:meth:`add_order_gate`)
    _order_gates: tuple[Callable[[OrderCommand], Any], ...] = ()
    _terminals: dict[str, Callable[..., Any]] = {}  # noqa: RUF012 - replaced per instance, never mutated
    #: True once a bar hook is set: the only per-bar cost of the hooks when there is none
    _bar_hooks: bool = False
    _before_bar: tuple[Callable[[Any], None], ...] = ()
    _bar_driver: BarDriver | None = None
    _bar_error_handlers: tuple[Callable[[Any, Exception], None], ...] = ()
    _in_guarded_bar: bool = False  # True while the bar hooks run on_bar inside their try (error handlers)
    _lifecycle_gates: tuple[Callable[[str], bool], ...] = ()
    _in_lifecycle: bool = False  # True inside an on_start / on_stop the gates let through (super() calls)
    #: commands a gate holds (e.g. in flight in a simulated latency); pending orders of the strategy
    commands_held: int = 0

    # ---- adding hooks ------------------------------------------------------------------------
    def add_order_gate(self, gate: Callable[[OrderCommand], Any]) -> None:
        """Route this strategy's order commands through ``gate`` (after the gates added before it)."""
        if not self._order_gates:  # the methods past the gates, looked up once (the per-command path stays short)
            # unbound (called with the strategy): bound methods kept on the strategy would hold it in a reference
            # cycle, left to the cyclic collector, which may run on another thread where a Nautilus strategy
            # refuses to be dropped ("unsendable")
            after = super(StrategyHooks, type(self))
            self._terminals = {n: f for n in GATED_COMMANDS if (f := getattr(after, n, None)) is not None}
        self._order_gates = (*self._order_gates, gate)

    def add_before_bar(self, fn: Callable[[Any], None]) -> None:
        """Run ``fn(bar)`` when a bar reaches this strategy, before its own ``on_bar`` code."""
        self._before_bar = (*self._before_bar, fn)
        self._bar_hooks = True

    def add_bar_error_handler(self, fn: Callable[[Any, Exception], None]) -> None:
        """Run ``fn(bar, error)`` when this strategy's ``on_bar`` raises (the error then propagates as before)."""
        self._bar_error_handlers = (*self._bar_error_handlers, fn)
        self._bar_hooks = True

    def add_lifecycle_gate(self, gate: Callable[[str], bool]) -> None:
        """Run ``gate("start")`` / ``gate("stop")`` before this strategy's ``on_start`` / ``on_stop``; the
        strategy's own method is skipped when a gate returns False (module docstring)."""
        self._lifecycle_gates = (*self._lifecycle_gates, gate)

    def drive_bars_externally(self) -> BarDriver:
        """Take bar delivery from Nautilus (module docstring); call before the strategy starts."""
        if self._bar_driver is None:
            self._bar_driver = BarDriver(self)
            self._bar_hooks = True
        return self._bar_driver

    # ---- bars --------------------------------------------------------------------------------
    def _bar_gate(self, bar: Any) -> bool:
        """Run the before-bar work; True when the bar must not reach the strategy's ``on_bar`` (an
        external driver delivers bars and this one came from Nautilus). Called only when ``_bar_hooks``."""
        d = self._bar_driver
        if d is not None and not d.delivering:
            return True
        if self._bar_error_handlers:
            if self._in_guarded_bar:  # the call below: the before-bar work has run
                return False
            self._in_guarded_bar = True
            try:
                for fn in self._before_bar:
                    fn(bar)
                self.on_bar(bar)  # type: ignore[attr-defined] - re-enters here, then runs the strategy's code
            except Exception as e:
                for handler in self._bar_error_handlers:
                    handler(bar, e)
                raise
            finally:
                self._in_guarded_bar = False
            return True
        for fn in self._before_bar:
            fn(bar)
        return False

    # ---- start / stop ------------------------------------------------------------------------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap the ``on_start`` / ``on_stop`` the new class defines so the lifecycle gates run first."""
        super().__init_subclass__(**kwargs)
        for event in ("start", "stop"):
            name = f"on_{event}"
            fn = cls.__dict__.get(name)
            if fn is not None and callable(fn) and not hasattr(fn, "__lifecycle_gated__"):
                setattr(cls, name, _gated_lifecycle(event, fn))

    def register_indicator_for_bars(self, bar_type: Any, indicator: Any) -> None:
        d = self._bar_driver
        if d is not None:
            d.indicators.append((str(bar_type), indicator))
            return
        super().register_indicator_for_bars(bar_type, indicator)  # type: ignore[misc]

    # ---- order commands ----------------------------------------------------------------------
    def send_ungated(self, name: str, target: Any, *args: Any, **kwargs: Any) -> Any:
        """Send an order command straight to Nautilus, past every gate."""
        return getattr(super(), name)(target, *args, **kwargs)

    def submit_order(self, order: Any, *args: Any, **kwargs: Any) -> Any:
        if self._order_gates:
            return self._order_gates[0](OrderCommand(self, "submit_order", order, args, kwargs))
        return super().submit_order(order, *args, **kwargs)  # type: ignore[misc]

    def submit_order_list(self, order_list: Any, *args: Any, **kwargs: Any) -> Any:
        if self._order_gates:
            return self._order_gates[0](OrderCommand(self, "submit_order_list", order_list, args, kwargs))
        return super().submit_order_list(order_list, *args, **kwargs)  # type: ignore[misc]

    def modify_order(self, order: Any, *args: Any, **kwargs: Any) -> Any:
        if self._order_gates:
            return self._order_gates[0](OrderCommand(self, "modify_order", order, args, kwargs))
        return super().modify_order(order, *args, **kwargs)  # type: ignore[misc]

    def cancel_order(self, order: Any, *args: Any, **kwargs: Any) -> Any:
        if self._order_gates:
            return self._order_gates[0](OrderCommand(self, "cancel_order", order, args, kwargs))
        return super().cancel_order(order, *args, **kwargs)  # type: ignore[misc]

    def cancel_all_orders(self, instrument_id: Any, *args: Any, **kwargs: Any) -> Any:
        if self._order_gates:
            return self._order_gates[0](OrderCommand(self, "cancel_all_orders", instrument_id, args, kwargs))
        return super().cancel_all_orders(instrument_id, *args, **kwargs)  # type: ignore[misc]

    def close_position(self, position: Any, *args: Any, **kwargs: Any) -> Any:
        if self._order_gates:
            return self._order_gates[0](OrderCommand(self, "close_position", position, args, kwargs))
        return super().close_position(position, *args, **kwargs)  # type: ignore[misc]

    def close_all_positions(self, instrument_id: Any, *args: Any, **kwargs: Any) -> Any:
        if self._order_gates:
            return self._order_gates[0](OrderCommand(self, "close_all_positions", instrument_id, args, kwargs))
        return super().close_all_positions(instrument_id, *args, **kwargs)  # type: ignore[misc]


def _gated_lifecycle(event: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` (an ``on_start`` / ``on_stop``) behind the strategy's lifecycle gates (``StrategyHooks.__init_subclass__``)."""

    def gated(self: Any) -> Any:
        gates = self._lifecycle_gates
        if not gates or self._in_lifecycle:  # no gate, or a super() call inside a gated on_start / on_stop
            return fn(self)
        passed = True
        for gate in gates:
            if gate(event) is False:
                passed = False
        if not passed:
            return None
        self._in_lifecycle = True
        try:
            return fn(self)
        finally:
            self._in_lifecycle = False

    gated.__name__ = fn.__name__
    gated.__qualname__ = fn.__qualname__
    gated.__doc__ = fn.__doc__
    gated.__wrapped__ = fn  # type: ignore[attr-defined]
    gated.__lifecycle_gated__ = True  # type: ignore[attr-defined]
    return gated


class _UserStrategyHooks(StrategyHooks):
    """The hooks in front of a user's class (:func:`with_hooks`): ``on_bar`` runs the bar hooks, then the user's;
    ``on_start`` / ``on_stop`` run the lifecycle gates (wrapped by ``__init_subclass__``), then the user's."""

    def on_bar(self, bar: Any) -> None:
        if self._bar_hooks and self._bar_gate(bar):
            return
        super().on_bar(bar)  # type: ignore[misc]

    def on_start(self) -> None:
        super().on_start()  # type: ignore[misc]

    def on_stop(self) -> None:
        super().on_stop()  # type: ignore[misc]


_HOOKED: dict[type, type] = {}


def with_hooks(strategy_cls: type) -> type:
    """``strategy_cls`` if it has the hooks already, else a subclass of it with :class:`StrategyHooks`
    in front (same name, module and qualified name; built once per class). See the module docstring."""
    if issubclass(strategy_cls, StrategyHooks):
        return strategy_cls
    hooked = _HOOKED.get(strategy_cls)
    if hooked is None:
        hooked = type(strategy_cls.__name__, (_UserStrategyHooks, strategy_cls), {
            "__module__": strategy_cls.__module__, "__qualname__": strategy_cls.__qualname__,
            "__doc__": strategy_cls.__doc__})
        _HOOKED[strategy_cls] = hooked
    return hooked
