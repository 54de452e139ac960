"""The strategies' hooks (strategies/hooks.py, issue 22): order gates, before-bar work and an external
bar driver, on our base class and on a user's plain Nautilus ``Strategy`` (built with the hooks at
load); and a plain user strategy under the backtest's latency model, which is an order gate."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from nautilus_trader.trading import Strategy, StrategyConfig

from catalog.freqtrade import import_freqtrade
from core.paths import shared_data_dir
from nautilus_app.strategy_loader import resolve_strategy
from strategies.base import BarStrategy
from strategies.hooks import StrategyHooks, with_hooks

FIXTURE = Path(__file__).parent / "fixtures" / "plain_ema.py"
FEATHER = shared_data_dir() / "freqtrade" / "binance" / "BTC_USDT-1m.feather"
BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
PARAMS = {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BAR, "trade_size": "0.01"}


@pytest.fixture()
def plain_ref(tmp_path: Path):  # noqa: ANN201
    path = tmp_path / "plain_ema.py"
    shutil.copy(FIXTURE, path)
    return resolve_strategy(strategy_path=f"{path}:PlainEMACross")


def test_a_plain_strategy_built_with_hooks_keeps_its_name_id_and_class(plain_ref) -> None:  # noqa: ANN001
    plain = plain_ref.make_strategy(PARAMS, order_id_tag="000")
    hooked = plain_ref.make_strategy(PARAMS, order_id_tag="000", hooks=True)
    assert not isinstance(plain, StrategyHooks)  # without hooks=True the user's class runs unchanged
    assert isinstance(hooked, StrategyHooks) and isinstance(hooked, plain_ref.strategy_cls)
    assert type(hooked).__name__ == "PlainEMACross" and type(hooked).__qualname__ == plain_ref.strategy_cls.__qualname__
    assert hooked.strategy_id == plain.strategy_id
    assert with_hooks(plain_ref.strategy_cls) is type(hooked)  # built once per class
    assert with_hooks(BarStrategy) is BarStrategy  # our base class has the hooks already


class _UserStrategy(Strategy):
    """A user's plain Nautilus strategy that records the bars its on_bar sees."""

    def __init__(self, config: StrategyConfig) -> None:
        super().__init__(config)
        self.bars: list[object] = []

    def on_bar(self, bar: object) -> None:
        self.bars.append(bar)


def test_before_bar_work_and_the_external_bar_driver() -> None:
    s = with_hooks(_UserStrategy)(StrategyConfig(order_id_tag="001"))
    seen: list[str] = []
    s.add_before_bar(lambda bar: seen.append(f"before {bar.name}"))
    bar = SimpleNamespace(name="b1", bar_type="BT")
    s.on_bar(bar)  # as Nautilus delivers it
    assert seen == ["before b1"] and s.bars == [bar]
    driver = s.drive_bars_externally()
    ind = SimpleNamespace(bars=[])
    ind.handle_bar = ind.bars.append
    s.register_indicator_for_bars("BT", ind)  # recorded by the driver, not handed to Nautilus
    assert driver.indicators == [("BT", ind)]
    s.on_bar(SimpleNamespace(name="from nautilus", bar_type="BT"))  # ignored: the driver delivers bars
    assert s.bars == [bar] and ind.bars == []
    b2 = SimpleNamespace(name="b2", bar_type="BT")
    driver.deliver(b2)
    assert ind.bars == [b2] and s.bars == [bar, b2] and seen[-1] == "before b2"
    assert "on_bar" not in vars(s)  # nothing replaced on the instance


def test_order_gates_run_in_order_and_can_hold_a_command() -> None:
    sent: list[tuple[str, object]] = []

    class Terminal:  # stands for Nautilus's Strategy methods
        def submit_order(self, order: object, *args: object, **kwargs: object) -> str:
            sent.append(("submit", order))
            return "sent"

        def cancel_order(self, order: object) -> None:
            sent.append(("cancel", order))

    class S(StrategyHooks, Terminal):
        pass

    s = S()
    assert s.submit_order("o0") == "sent"  # no gates: straight through
    trace: list[str] = []
    held: list[object] = []
    s.add_order_gate(lambda c: (trace.append(f"A {c.name}"), c.send())[1])

    def hold_submits(c: object) -> object:
        trace.append(f"B {c.name}")
        if c.name == "submit_order":
            c.hold()
            held.append(c)
            return None
        return c.send()

    s.add_order_gate(hold_submits)
    assert s.submit_order("o1") is None and s.commands_held == 1 and sent == [("submit", "o0")]
    s.cancel_order("o9")
    assert trace == ["A submit_order", "B submit_order", "A cancel_order", "B cancel_order"]
    held[0].release()
    assert s.commands_held == 0 and sent[-1] == ("submit", "o1")
    s.send_ungated("submit_order", "o2")
    assert sent[-1] == ("submit", "o2") and len(trace) == 4


def test_lifecycle_gates_run_before_the_outermost_on_start_and_can_skip_it() -> None:
    calls: list[str] = []

    class Base(StrategyHooks, Strategy):  # as strategies.base.BarStrategy
        def on_start(self) -> None:
            calls.append("base start")

        def on_stop(self) -> None:
            calls.append("base stop")

    class Sub(Base):  # a subclass that calls super() from its own on_start
        def on_start(self) -> None:
            calls.append("sub start")
            super().on_start()

    s = Sub(StrategyConfig(order_id_tag="002"))
    s.on_start()  # no gate: the methods run as written
    assert calls == ["sub start", "base start"]
    refused = [False]
    s.add_lifecycle_gate(lambda event: (calls.append(f"gate {event}"), not refused[0])[1])
    calls.clear()
    s.on_start()
    s.on_stop()
    assert calls == ["gate start", "sub start", "base start", "gate stop", "base stop"]  # the gate runs once
    refused[0] = True
    calls.clear()
    s.on_start()
    s.on_stop()
    assert calls == ["gate start", "gate stop"]  # skipped
    # a user's plain Strategy built with the hooks: the same gates in front of its on_start / on_stop
    u = with_hooks(_UserStrategy)(StrategyConfig(order_id_tag="003"))
    u.add_lifecycle_gate(lambda event: calls.append(f"user gate {event}") is None and event == "start")
    calls.clear()
    u.on_start()
    u.on_stop()
    assert calls == ["user gate start", "user gate stop"]
    assert not {"on_start", "on_stop"} & (set(vars(s)) | set(vars(u)))  # nothing replaced on the instances


def test_a_bar_error_handler_sees_the_exception_which_still_propagates() -> None:
    class Raising(_UserStrategy):
        def on_bar(self, bar: object) -> None:
            super().on_bar(bar)
            if getattr(bar, "name", "") == "bad":
                raise RuntimeError("strategy bug")

    s = with_hooks(Raising)(StrategyConfig(order_id_tag="004"))
    seen: list[str] = []
    errors: list[tuple[object, str]] = []
    s.add_before_bar(lambda bar: seen.append(bar.name))
    s.add_bar_error_handler(lambda bar, e: errors.append((bar.name, str(e))))
    s.on_bar(SimpleNamespace(name="ok", bar_type="BT"))
    with pytest.raises(RuntimeError, match="strategy bug"):
        s.on_bar(SimpleNamespace(name="bad", bar_type="BT"))
    assert seen == ["ok", "bad"]  # the before-bar work ran once per bar
    assert [b.name for b in s.bars] == ["ok", "bad"] and errors == [("bad", "strategy bug")]
    s.on_bar(SimpleNamespace(name="after", bar_type="BT"))  # the next bar runs normally
    assert seen[-1] == "after" and len(errors) == 1 and "on_bar" not in vars(s)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    import_freqtrade(root, data_dir=FEATHER.parent, pairs=["BTC/USDT"], timeframes=["1m"], trading_mode="spot")
    return root


def test_a_plain_user_strategy_runs_under_the_latency_model(plain_ref, catalog: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import parse_config

    cfg = parse_config({
        "name": "user_latency", "catalog": str(catalog), "bar_types": [BAR], "start": "2025-06-02", "end": "2025-06-04",
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"],
                    "costs": "fees_only", "latency": {"mean_ms": 30_000.0, "std_ms": 0.0, "min_ms": 30_000.0}}],
        "strategies": [{"strategy_path": f"{plain_ref.source}:PlainEMACross", "params": PARAMS}],
    }, source="test")
    out = run_backtest(cfg, results_root=tmp_path / "results", progress=False).results_path
    latency = pd.read_parquet(out / "latency.parquet")
    orders = pd.read_parquet(out / "orders.parquet")
    fills = pd.read_parquet(out / "fills.parquet")
    buys = orders[orders["side"].astype(str) == "BUY"]
    assert len(buys) > 10
    # every entry the user's on_bar submitted went through the latency gate; the closes the strategy
    # leaves to Nautilus's close_all_positions are not delayed (as for our own strategies)
    assert set(latency["client_order_id"]) == set(buys["client_order_id"].astype(str))
    assert set(latency["strategy_id"]) == {"PlainEMACross-000"} and set(latency["command"]) == {"submit"}
    arrival = dict(zip(latency["client_order_id"], latency["ts_arrival"], strict=True))
    for coid, ts in zip(fills["client_order_id"].astype(str), pd.to_datetime(fills["ts_event"], utc=True), strict=True):
        if coid in arrival:  # a delayed order fills no earlier than it reaches the venue (30 s after it was sent)
            assert ts.value >= arrival[coid]


def test_gated_strategies_are_freed_on_the_running_thread_without_the_cyclic_collector(
        plain_ref, catalog: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """The latency model's order gate must not put a strategy in a reference cycle: Nautilus strategies may
    only be dropped on the thread that made them, and a cycle waits for a collection that may run on any
    thread (a Dash server's, a results writer's), which then refuses the drop and leaks the run."""
    import gc

    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import parse_config

    gated: list[str] = []
    original = StrategyHooks.add_order_gate

    def spy(self, gate):  # noqa: ANN001, ANN202
        gated.append(type(self).__name__)
        return original(self, gate)

    params = {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BAR, "fast_period": 5, "slow_period": 12,
              "position_fraction": 0.1}
    cfg = parse_config({
        "name": "freed", "catalog": str(catalog), "bar_types": [BAR], "start": "2025-06-02", "end": "2025-06-03",
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"],
                    "costs": "fees_only", "latency": {"mean_ms": 500.0, "std_ms": 100.0, "min_ms": 100.0}}],
        "strategies": [{"name": "ema_cross", "params": params}, {"name": "ema_cross_signals", "params": params},
                       {"strategy_path": f"{plain_ref.source}:PlainEMACross", "params": PARAMS}],
    }, source="test")

    def alive() -> list[str]:
        return [type(o).__name__ for o in gc.get_objects() if isinstance(o, Strategy)]

    gc.collect()
    before = alive()
    StrategyHooks.add_order_gate = spy
    gc.disable()
    try:
        run_backtest(cfg, results_root=tmp_path / "results", progress=False)
        assert sorted(gated) == ["EMACross", "EMACrossSignals", "PlainEMACross"]  # all three behind the gate
        assert alive() == before  # freed by reference counting when the run returned, here
    finally:
        StrategyHooks.add_order_gate = original
        gc.enable()
