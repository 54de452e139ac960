"""Whole-process time of one backtest across engines, side by side (issue 23's workload).

Workload: the 130,708 real BTC/USDT spot 1m bars of ``$SHARED_DATA/freqtrade/binance/BTC_USDT-1m.feather``,
EMA 10/20 long/flat (EMAs seeded with the mean of their first n closes, as Nautilus does), fixed 0.01
BTC, 0.1 % fee on notional, fills at the signal bar's close, 100,000 USDT.

Cases, each a fresh process timed from interpreter start to result, in interleaved rounds (medians):

* ``ours_cli``: ``nautilus-app backtest`` with a plain Nautilus strategy kept outside the repository
  (catalog import not timed; the results folder written, tearsheet on demand);
* ``nautilus_script``: a plain Nautilus 2 script (feather -> ``BarDataWrangler`` -> ``BacktestEngine``);
* ``ours_signals``: the same command with the same rules written as a vectorised-signals strategy
  (``strategies.signals.SignalStrategy``: FreqTrade-style ``populate_*`` on the whole DataFrame, Python
  called only at signals and fills), also kept outside the repository;
* ``backtesting_py``: backtesting.py 0.6.6, installed by this script into a throwaway virtual
  environment under ``$XDG_CACHE_HOME`` (never a project dependency); prices scaled by 0.01 so that one
  unit is 0.01 BTC.

Prints ONE JSON line: per case the median seconds, the trades and final equity it reported (they must
agree), and same-round ratios ``ours_cli / nautilus_script``, ``ours_cli / backtesting_py``,
``ours_signals / nautilus_script`` and ``ours_signals / backtesting_py`` (goals: <= 1.2 and <= 0.5). Set
``ROUNDS`` (default 3).
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from core import paths  # noqa: E402

FEATHER = paths.shared_data_dir() / "freqtrade" / "binance" / "BTC_USDT-1m.feather"

STRATEGY = (REPO / "tests" / "fixtures" / "plain_ema.py").read_text()  # the same plain Nautilus strategy the tests run

SIGNALS_STRATEGY = '''
import numpy as np

from strategies.base import BarStrategyConfig
from strategies.signals import SignalStrategy, nautilus_ema


class PlainEMASignalsConfig(BarStrategyConfig):
    def __init__(self, *, trade_size: str = "0.01", **kwargs) -> None:
        super().__init__(**kwargs)
        self.trade_size = str(trade_size)


class PlainEMASignals(SignalStrategy):
    """EMA 10/20 long/flat on whole arrays: long while fast >= slow, flat while fast < slow."""

    def __init__(self, config: PlainEMASignalsConfig) -> None:
        super().__init__(config)
        self.fixed_quantity = config.trade_size

    def populate_indicators(self, df):
        close, seg = df["close_nd"].to_numpy(), df["segment"].to_numpy()
        df["fast"], fast_ok = nautilus_ema(close, 10, seg)  # Nautilus's EMA (seeded with the mean of 10 closes)
        df["slow"], slow_ok = nautilus_ema(close, 20, seg)
        df["ready"] = fast_ok & slow_ok
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = df["fast"] >= df["slow"]
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = df["fast"] < df["slow"]
        return df
'''

NAUTILUS_SCRIPT = '''
import json, sys
from decimal import Decimal
import pandas as pd
from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.execution import MakerTakerFeeModel
from nautilus_trader.model import (AccountType, Bar, BarType, Currency, CurrencyPair, InstrumentId, Money, OmsType,
                                   Price, Quantity, Symbol, TraderId, Venue)
sys.path.insert(0, sys.argv[2])
from plain_ema import PlainEMACross, PlainEMACrossConfig

df = pd.read_feather(sys.argv[1])
df.index = df.pop("date") + pd.Timedelta(minutes=1)
iid = InstrumentId.from_str("BTCUSDT.BINANCE")
usdt, btc = Currency.from_str("USDT"), Currency.from_str("BTC")
inst = CurrencyPair(iid, Symbol("BTCUSDT"), btc, usdt, 2, 5, Price.from_str("0.01"), Quantity.from_str("0.00001"),
                    0, 0, min_quantity=Quantity.from_str("0.00001"))
bt = BarType.from_str("BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL")
ts = df.index.asi8
bars = [Bar(bt, Price(o, 2), Price(h, 2), Price(lo, 2), Price(c, 2), Quantity(v, 5), t, t)
        for o, h, lo, c, v, t in zip(df["open"], df["high"], df["low"], df["close"], df["volume"], ts)]
engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BACKTESTER-001"),
                                             logging=LoggerConfig(stdout_level=LogLevel.WARNING)))
engine.add_venue(Venue("BINANCE"), OmsType.NETTING, AccountType.CASH, [Money(100_000, usdt)],
                 base_currency=None, fee_model=MakerTakerFeeModel(Decimal("0.001"), Decimal("0.001")))
engine.add_instrument(inst)
engine.add_data(bars)
config = PlainEMACrossConfig()  # rc7 drops class-attribute kwargs (NAUTILUS_NOTES section 1): set them on the instance
config.instrument_id, config.bar_type, config.trade_size = iid, bt, Decimal("0.01")
config.fast_ema_period, config.slow_ema_period = 10, 20
engine.add_strategy(PlainEMACross(config))
engine.run()
fills = engine.generate_fills_report()
acct = engine.portfolio.account(Venue("BINANCE"))
equity = float(acct.balance_total(usdt).as_double()) + float(acct.balance_total(btc).as_double()) * float(df["close"].iloc[-1])
print(json.dumps({"trades": len(fills) // 2, "final_equity": round(equity, 4)}))
'''

BACKTESTING_SCRIPT = '''
import json, sys
import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy

def ema(x, n):
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), np.nan)
    out[n - 1] = x[:n].mean()
    a = 2.0 / (n + 1)
    for i in range(n, len(x)):
        out[i] = a * x[i] + (1 - a) * out[i - 1]
    return out

class EmaCross(Strategy):
    def init(self):
        self.fast = self.I(ema, self.data.Close, 10)
        self.slow = self.I(ema, self.data.Close, 20)
    def next(self):
        f, s = self.fast[-1], self.slow[-1]
        if np.isnan(f) or np.isnan(s):
            return
        if f >= s:
            if not self.position:
                self.buy(size=1)
        elif self.position:
            self.position.close()

df = pd.read_feather(sys.argv[1]).set_index("date")
df = df.rename(columns=str.capitalize)
df[["Open", "High", "Low", "Close"]] *= 0.01   # one unit = 0.01 BTC
bt = Backtest(df, EmaCross, cash=100_000, commission=0.001, trade_on_close=True, finalize_trades=True)
s = bt.run()
print(json.dumps({"trades": int(s["# Trades"]), "final_equity": round(float(s["Equity Final [$]"]), 4)}))
'''


def _venv_python() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nautilus-app-bench" / "backtesting-0.6.6"
    py = cache / "bin" / "python"
    if not (cache / ".ok").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(cache)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "backtesting==0.6.6", "pandas<3", "numpy", "pyarrow"], check=True)
        (cache / ".ok").touch()
    return py


def _timed(cmd: list[str], **kw) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return dt, proc.stdout


def main() -> int:
    rounds = int(os.environ.get("ROUNDS", "3"))
    # the project's bytecode, as an installed package has it (make install does the same): with
    # PYTHONDONTWRITEBYTECODE set, every timed process would otherwise compile our sources again
    for package in ("nautilus_app", "catalog", "strategies", "core"):
        compileall.compile_dir(REPO / package, quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="peers_"))
    strats = tmp / "strats"
    strats.mkdir()
    (strats / "plain_ema.py").write_text(STRATEGY)
    (strats / "signals_ema.py").write_text(SIGNALS_STRATEGY)
    (tmp / "nautilus_script.py").write_text(NAUTILUS_SCRIPT)
    (tmp / "backtesting_script.py").write_text(BACKTESTING_SCRIPT)
    catalog = tmp / "catalog"
    subprocess.run([sys.executable, "-m", "nautilus_app", "import-freqtrade", "--catalog", str(catalog), "--datadir",
                    str(FEATHER.parent), "--pairs", "BTC/USDT", "--timeframes", "1m", "--trading-mode", "spot"],
                   check=True, capture_output=True)
    (tmp / "run.toml").write_text(textwrap.dedent(f'''
        name = "peers"
        bar_types = ["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"]
        catalog = "{catalog}"
        [[venues]]
        name = "BINANCE"
        account_type = "CASH"
        starting_balances = ["100000 USDT"]
        maker_fee = 0.001
        taker_fee = 0.001
        fill_timing = "same_close"
        costs = "fees_only"
        [[strategies]]
        strategy_path = "strats/plain_ema.py:PlainEMACross"
        [strategies.params]
        instrument_id = "BTCUSDT.BINANCE"
        bar_type = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
        trade_size = "0.01"
        '''))
    (tmp / "run_signals.toml").write_text(textwrap.dedent(f'''
        name = "peers_signals"
        bar_types = ["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"]
        catalog = "{catalog}"
        [[venues]]
        name = "BINANCE"
        account_type = "CASH"
        starting_balances = ["100000 USDT"]
        maker_fee = 0.001
        taker_fee = 0.001
        fill_timing = "same_close"
        costs = "fees_only"
        [[strategies]]
        strategy_path = "strats/signals_ema.py:PlainEMASignals"
        [strategies.params]
        instrument_id = "BTCUSDT.BINANCE"
        bar_type = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
        trade_size = "0.01"
        max_gap_bars = 0
        '''))
    bt_py = _venv_python()
    results = tmp / "results"

    def ours(config: str = "run.toml") -> tuple[float, dict]:
        dt, _ = _timed([sys.executable, "-m", "nautilus_app", "backtest", str(tmp / config), "--no-progress",
                        "--results-dir", str(results)], cwd=str(tmp), env={**os.environ, "PYTHONPATH": str(REPO)})
        run = max(results.iterdir(), key=lambda p: p.stat().st_mtime)
        m = json.loads((run / "metrics.json").read_text())
        return dt, {"trades": m["trades"], "final_equity": round(m["final_equity"], 4)}

    def script(py: str, path: Path, *args: str) -> tuple[float, dict]:
        dt, out = _timed([py, str(path), str(FEATHER), *args])
        return dt, json.loads(out.strip().splitlines()[-1])

    cases = {
        "ours_cli": ours,
        "ours_signals": lambda: ours("run_signals.toml"),
        "nautilus_script": lambda: script(sys.executable, tmp / "nautilus_script.py", str(strats)),
        "backtesting_py": lambda: script(str(bt_py), tmp / "backtesting_script.py"),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    answers: dict[str, dict] = {}
    ratios: dict[str, list[float]] = {f"{a}/{b}": [] for a in ("ours_cli", "ours_signals")
                                      for b in ("nautilus_script", "backtesting_py")}
    for _ in range(rounds):
        this = {}
        for name, fn in cases.items():
            this[name], answers[name] = fn()
            times[name].append(this[name])
        for key in ratios:
            a, b = key.split("/")
            ratios[key].append(this[a] / this[b])
    out = {"benchmark": "peers", "data": "real BTC/USDT spot 1m (freqtrade feather)", "bars": 130_708,
           "rounds": rounds, "loadavg_1m": round(os.getloadavg()[0], 2)}
    for name in cases:
        out[name] = {"median_s": round(statistics.median(times[name]), 3), **answers[name]}
    out["ratios_median"] = {k: round(statistics.median(v), 3) for k, v in ratios.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
