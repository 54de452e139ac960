"""``nautilus-app new-strategy NAME``: a commented template strategy, its run config and a test.

Like FreqTrade's ``new-strategy`` and Jesse's ``make-strategy``: three files in the user strategy
folder (:func:`core.paths.user_strategy_dir`), so a quant starts from a working example:

* ``<snake_name>.py``: a plain Nautilus ``Strategy`` + ``StrategyConfig`` (class-attribute fields, the
  style of Nautilus's docs) trading an SMA cross long/flat with a fixed size;
* ``<snake_name>.toml``: a run config on the demo's BTCUSDT spot 1m bars (``make demo-data``);
* ``test_<snake_name>.py``: imports two days of real BTCUSDT 1m bars from ``$SHARED_DATA`` into a
  temporary catalog and runs the strategy on them; ``pytest`` on it passes right away.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from core import paths


class TemplateError(ValueError):
    """Bad strategy name, or the files exist already (nothing is written then)."""


_STRATEGY = '''"""{name}: <one line saying what the strategy does>.

A plain NautilusTrader strategy: it runs unchanged in backtests (`nautilus-app backtest {snake}.toml`)
and on a paper/live node. See docs/strategies.md for what the platform adds around it.

When on_bar sees a bar: after the bar has CLOSED (bars are stamped with their close time).
Where an order fills: a market order sent from on_bar(bar N) fills at bar N+1's OPEN by default
(venue `fill_timing = "next_open"`), or at bar N's close with `fill_timing = "same_close"`; plus the
venue's slippage model and taker fee. Funding (perpetuals), margin and liquidation are the venue's.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.indicators import SimpleMovingAverage
from nautilus_trader.model import Bar, BarType, InstrumentId, OrderSide, Quantity, TimeInForce
from nautilus_trader.trading import Strategy, StrategyConfig


class {name}Config(StrategyConfig):
    """Parameters; each is a key under [strategies.params] in the run config (types are checked).

    instrument_id: e.g. "BTCUSDT.BINANCE" (spot) or "BTCUSDT-PERP.BINANCE_USDM" (USDT-M perpetual).
    bar_type: the bars to trade, e.g. "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL", or a higher timeframe
        aggregated by Nautilus: "BTCUSDT.BINANCE-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL".
    trade_size: order quantity in the base asset (BTC), a decimal string in TOML: "0.01".
    fast_period / slow_period: SMA lengths in bars.
    """

    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal = Decimal("0.01")
    fast_period: int = 10
    slow_period: int = 30


class {name}(Strategy):
    """Long when the fast SMA crosses above the slow SMA, flat when it crosses below."""

    def __init__(self, config: {name}Config) -> None:
        super().__init__(config)
        if config.fast_period >= config.slow_period:
            raise ValueError(f"fast_period ({{config.fast_period}}) must be < slow_period ({{config.slow_period}})")
        self.fast = SimpleMovingAverage(config.fast_period)
        self.slow = SimpleMovingAverage(config.slow_period)
        self.prev_diff: float | None = None

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        # Nautilus updates registered indicators with every bar before on_bar runs.
        self.register_indicator_for_bars(self.config.bar_type, self.fast)
        self.register_indicator_for_bars(self.config.bar_type, self.slow)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not (self.fast.initialized and self.slow.initialized):
            return
        diff = self.fast.value - self.slow.value
        prev, self.prev_diff = self.prev_diff, diff
        if prev is None:
            return  # only crossings trade, not the state at warm-up
        flat = self.portfolio.is_net_flat(self.config.instrument_id)
        if prev <= 0 < diff and flat:
            self.submit_order(self.order_factory.market(
                self.config.instrument_id, OrderSide.BUY,
                Quantity(self.config.trade_size, self.instrument.size_precision), time_in_force=TimeInForce.GTC))
        elif prev >= 0 > diff and not flat:
            self.close_all_positions(self.config.instrument_id)

    def on_stop(self) -> None:
        # Without this, positions stay open at the end: results then report them as open, marked to market.
        self.cancel_all_orders(self.config.instrument_id)
        self.close_all_positions(self.config.instrument_id)

    def on_reset(self) -> None:
        self.fast.reset()
        self.slow.reset()
        self.prev_diff = None
'''

_CONFIG = '''# Run config of {name} ({snake}.py beside it). Schema: docs/config.md; strategies: docs/strategies.md.
# Data: `make demo-data` imports BTCUSDT spot 1m bars 2025-05-20 .. 2025-08-17 into the catalog.
#   nautilus-app backtest {config_path}
#   nautilus-app backtest {config_path} --set strategies.0.params.fast_period=20 --start 2025-07-01
name = "{snake}"
bar_types = ["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"]
start = "2025-06-01"
end = "2025-07-01"

[[venues]]
name = "BINANCE"
account_type = "CASH"
starting_balances = ["10000 USDT"]
# Binance VIP 0 fees (0.10 % taker); market orders fill at the next bar's open:
fill_timing = "next_open"
# costs = "realistic" (default: fees + volume slippage + random latency), "fees_only" or "frictionless"
costs = "realistic"

[[strategies]]
name = "{name}"            # or: strategy_path = "{snake}.py:{name}"
[strategies.params]
instrument_id = "BTCUSDT.BINANCE"
bar_type = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
trade_size = "0.01"
fast_period = 10
slow_period = 30
'''

_TEST = '''"""Runs {name} on two days of real BTCUSDT 1m bars (generated by `nautilus-app new-strategy`).

pytest {test_path}
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from core import paths
from nautilus_app.backtest import run_backtest
from nautilus_app.config import load_config

HERE = Path(__file__).resolve().parent
DAYS = ("2025-06-02", "2025-06-03")  # inclusive; 2 x 1,440 bars


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    source = paths.shared_data_dir() / "binance-vision"
    if not source.is_dir():
        pytest.fail(f"real data not found at {{source}}: set SHARED_DATA")
    root = tmp_path / "catalog"
    import_binance_vision(root, base_url=source, market="spot", symbols=["BTCUSDT"], interval="1m",
                          start=DAYS[0], end=DAYS[1], kinds=["bars"])
    return root


def test_{snake}_runs_on_real_bars(catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAUTILUS_STRATEGY_DIR", str(HERE))  # `name = "{name}"` is found in this folder
    end = str((pd.Timestamp(DAYS[1]) + pd.Timedelta(days=1)).date())
    cfg = load_config(HERE / "{snake}.toml", overrides={{"catalog": str(catalog), "start": DAYS[0], "end": end}})
    outcome = run_backtest(cfg, results_root=tmp_path / "results", progress=False)

    assert outcome.iterations == 2 * 1440  # every bar of the two days reached the engine
    fills = pd.read_parquet(outcome.results_path / "fills.parquet")
    assert len(fills) == outcome.orders > 0, "the SMA cross should trade within two days"
    assert outcome.metrics["fees_paid_usdt"] > 0

    # Market orders fill at the next bar's open (fill_timing = "next_open"), stamped at the signal
    # bar's close = the next bar's open time, then the venue's slippage model moves the price:
    # the reference price (before slippage) is checked against the raw Binance file with pandas.
    month = paths.shared_data_dir() / "binance-vision/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip"
    raw = pd.read_csv(month, header=None, usecols=[0, 1], names=["open_time", "open"])
    opens = pd.Series(raw["open"].to_numpy(), index=pd.to_datetime(raw["open_time"], unit="us", utc=True))
    ts = pd.to_datetime(fills["ts_event"], utc=True).dt.floor("min")  # the default latency adds a few ms
    inside = ts < pd.Timestamp(DAYS[1], tz="UTC") + pd.Timedelta(days=1)  # on_stop's close: at the last close
    expected = opens.reindex(ts[inside]).to_numpy()
    assert (fills.loc[inside, "reference_price"].astype(float).to_numpy() == expected).all()
'''


def snake_case(name: str) -> str:
    """``MyBreakout`` -> ``my_breakout``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def write_strategy_template(name: str, *, folder: Path | None = None, force: bool = False) -> list[Path]:
    """Write ``<snake>.py``, ``<snake>.toml`` and ``test_<snake>.py`` into ``folder``.

    Args:
        name: Class name, a Python identifier starting with an upper-case letter (``MyBreakout``).
        folder: Default: the user strategy folder (created if missing).
        force: Overwrite existing files.

    Returns:
        The three paths, in that order.

    Raises:
        TemplateError: bad name, a file exists already (without ``force``); nothing is written then.
    """
    if not name.isidentifier() or keyword.iskeyword(name) or not name[0].isupper():
        raise TemplateError(f"strategy name {name!r}: expected a class name like MyBreakout (letters, digits, _; "
                            "starting with an upper-case letter)")
    folder = (folder or paths.user_strategy_dir()).resolve()
    snake = snake_case(name)
    files = [folder / f"{snake}.py", folder / f"{snake}.toml", folder / f"test_{snake}.py"]
    existing = [str(f) for f in files if f.exists()]
    if existing and not force:
        raise TemplateError(f"{', '.join(existing)} exist already (use --force to overwrite)")
    texts = [
        _STRATEGY.format(name=name, snake=snake),
        _CONFIG.format(name=name, snake=snake, config_path=files[1]),
        _TEST.format(name=name, snake=snake, test_path=files[2]),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in zip(files, texts, strict=True):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return files
