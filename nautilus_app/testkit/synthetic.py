"""A SYNTHETIC long results folder (default 5 years of 1-minute bars, ~2.6M samples) for speed tests.

Nothing here is market data or a Nautilus run. The price is a seeded geometric random walk written
to a catalog as bar type ``SYNTHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL`` (through the project's own
catalog writer), and the "run" is a vectorised long-only EMA(fast)/EMA(slow) crossover on it,
filled at the close of the crossing bar with a 0.1 % taker fee. Equity, trades and fills are written
in the layout of :mod:`nautilus_app.results` and the metrics come from
:func:`nautilus_app.metrics.compute_metrics`, so the app treats it like any run. The run name starts
with ``SYNTHETIC`` and ``run.json`` carries ``"synthetic": true`` and a note; the app shows a
"synthetic data" badge for it.

Used by ``scripts/bench/dash_detail_page.py`` (the 2 s detail-page goal) and by the browser tests
(a shorter span).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import tomli_w

SYMBOL = "SYNTHUSDT"
INSTRUMENT_ID = f"{SYMBOL}.BINANCE"
BAR_TYPE = f"{INSTRUMENT_ID}-1-MINUTE-LAST-EXTERNAL"
MINUTE_NS = 60_000_000_000
TAKER_FEE = 0.001


def synthetic_bars(days: float, seed: int = 7, start: str = "2020-01-01") -> pd.DataFrame:
    """Seeded random-walk 1m OHLCV: columns ts (close time, int64 ns), open, high, low, close, volume.

    Price starts at 10,000 USDT, log-returns ~ N(0, 0.0008) per minute with a slow sine drift;
    prices are rounded to 0.01 and volumes to 0.001 (the catalog precisions).
    """
    n = int(days * 1440)
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC").value
    ts = t0 + MINUTE_NS * np.arange(1, n + 1, dtype=np.int64)
    drift = 0.000002 * np.sin(np.arange(n) / (1440 * 90.0))
    logp = np.log(10_000.0) + np.cumsum(drift + rng.normal(0.0, 0.0008, n))
    close = np.round(np.exp(logp), 2)
    open_ = np.r_[10_000.0, close[:-1]]
    wiggle = np.abs(rng.normal(0.0, 0.0004, n)) * close
    high = np.round(np.maximum(open_, close) + wiggle, 2)
    low = np.round(np.maximum(np.minimum(open_, close) - wiggle[::-1], 0.01), 2)
    volume = np.round(rng.gamma(2.0, 5.0, n), 3) + 0.001
    return pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume})


def write_catalog(root: Path, bars: pd.DataFrame) -> None:
    """Write the synthetic bars into a Nautilus catalog at ``root`` (skips rows already there)."""
    import pyarrow as pa
    from nautilus_trader.model import BarType

    from catalog.common import bar_table
    from catalog.writer import ImportReport, write_bars

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cols = {k: pa.array(bars[k].to_numpy(), pa.float64()) for k in ("open", "high", "low", "close", "volume")}
    table = bar_table(bars["ts"].to_numpy(), cols)
    write_bars(root, BarType.from_str(BAR_TYPE), 2, 3, MINUTE_NS, [table], ImportReport(source="synthetic"))


def _crossover_trades(ts: np.ndarray, close: np.ndarray, fast: int, slow: int,
                      start_cash: float) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    from dash_ui.market import ema_nautilus

    f, s = ema_nautilus(close, fast), ema_nautilus(close, slow)
    d = f - s
    valid = ~np.isnan(d)
    up = np.flatnonzero(valid[1:] & valid[:-1] & (d[:-1] <= 0) & (d[1:] > 0)) + 1
    down = np.flatnonzero(valid[1:] & valid[:-1] & (d[:-1] >= 0) & (d[1:] < 0)) + 1
    events = sorted([(i, 1) for i in up] + [(i, -1) for i in down])
    equity = np.full(close.size, start_cash)
    cash, qty, entry_i = start_cash, 0.0, None
    trades, fills = [], []
    last_i = 0
    for i, side in events + [(close.size - 1, 0)]:
        # mark-to-market from last event to this bar
        equity[last_i:i] = cash + qty * close[last_i:i]
        if side == 1 and qty == 0.0:
            qty = np.floor(cash / (close[i] * (1 + TAKER_FEE)) * 1000) / 1000
            fee = qty * close[i] * TAKER_FEE
            cash -= qty * close[i] + fee
            entry_i, entry_fee = i, fee
            fills.append((ts[i], "BUY", qty, close[i], fee))
        elif side in (-1, 0) and qty > 0.0 and entry_i is not None:
            fee = qty * close[i] * TAKER_FEE
            cash += qty * close[i] - fee
            pnl = qty * (close[i] - close[entry_i]) - entry_fee - fee
            trades.append((ts[entry_i], ts[i], qty, close[entry_i], close[i], pnl, entry_fee + fee))
            fills.append((ts[i], "SELL", qty, close[i], fee))
            qty, entry_i = 0.0, None
        last_i = i
    equity[last_i:] = cash + qty * close[last_i:]
    tdf = pd.DataFrame(trades, columns=["entry_ns", "exit_ns", "quantity", "entry_price", "exit_price", "pnl", "fees"])
    trades_df = pd.DataFrame({
        "instrument_id": INSTRUMENT_ID, "strategy_id": "EMACross-000", "side": "LONG",
        "entry_time": pd.to_datetime(tdf["entry_ns"], unit="ns", utc=True),
        "exit_time": pd.to_datetime(tdf["exit_ns"], unit="ns", utc=True),
        "quantity": tdf["quantity"], "entry_price": tdf["entry_price"], "exit_price": tdf["exit_price"],
        "pnl": tdf["pnl"], "return_frac": tdf["pnl"] / (tdf["quantity"] * tdf["entry_price"]),
        "fees": tdf["fees"], "funding": 0.0,
    })
    fdf = pd.DataFrame(fills, columns=["ts", "order_side", "last_qty", "last_px", "commission"])
    fills_df = pd.DataFrame({
        "instrument_id": INSTRUMENT_ID, "strategy_id": "EMACross-000", "order_side": fdf["order_side"],
        "order_type": "MARKET", "last_qty": fdf["last_qty"], "last_px": fdf["last_px"],
        "commission": fdf["commission"], "commission_currency": "USDT",
        "ts_event": pd.to_datetime(fdf["ts"], unit="ns", utc=True),
    })
    return equity, trades_df, fills_df


def make_synthetic_run(results_root: Path, catalog_root: Path, *, days: float = 5 * 365.25, seed: int = 7,
                       fast: int = 240, slow: int = 1440, run_id: str | None = None) -> Path:
    """Write catalog bars and a complete SYNTHETIC results folder; returns ``results/<run_id>``.

    Args:
        results_root: Results root (the folder is written to a dot-staging folder and renamed).
        catalog_root: Catalog root for the synthetic bars (the run's ``config.json`` points to it).
        days: Span in days (5 years = 1826.25 days = 2,629,800 one-minute bars).
        seed: Random seed of the price walk.
        fast, slow: EMA periods (bars) of the crossover.
        run_id: Folder name; default ``SYNTHETIC-<n>m-bars-seed<seed>``.
    """
    from nautilus_app import metrics as metrics_mod
    from nautilus_app.config import parse_config

    bars = synthetic_bars(days, seed)
    write_catalog(Path(catalog_root), bars)
    ts, close = bars["ts"].to_numpy(), bars["close"].to_numpy()
    start_cash = 100_000.0
    equity, trades, fills = _crossover_trades(ts, close, fast, slow, start_cash)
    index = pd.DatetimeIndex(pd.to_datetime(ts, unit="ns", utc=True), name="ts")
    eq = pd.Series(equity, index=index, name="equity")
    bench = (1 - TAKER_FEE) * close / close[0]
    bench[-1] *= 1 - TAKER_FEE
    metrics = metrics_mod.compute_metrics(
        eq, trades, fees_paid=float(fills["commission"].sum()), funding_paid=0.0,
        buy_and_hold_return=float(bench[-1] - 1.0), starting_equity=start_cash,
    )
    run_id = run_id or f"SYNTHETIC-{len(bars)}m-bars-seed{seed}"
    start = pd.Timestamp(ts[0] - MINUTE_NS, unit="ns", tz="UTC")
    end = pd.Timestamp(ts[-1], unit="ns", tz="UTC")
    raw_cfg = {
        "name": "SYNTHETIC",
        "catalog": str(Path(catalog_root).resolve()),
        "start": start.isoformat(), "end": end.isoformat(),
        "bar_types": [BAR_TYPE],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": {
            "instrument_id": INSTRUMENT_ID, "bar_type": BAR_TYPE, "fast_period": fast, "slow_period": slow,
            "position_fraction": 1.0, "max_gap_bars": 0}}],
    }
    cfg = parse_config(raw_cfg, source="synthetic")
    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / run_id
    stage = root / f".{run_id}.partial"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    frame = pd.DataFrame({"equity": equity, "benchmark_equity": bench * start_cash}, index=index)
    frame["drawdown"] = frame["equity"] / frame["equity"].cummax() - 1.0
    frame.reset_index().to_parquet(stage / "equity.parquet", index=False)
    trades.to_parquet(stage / "trades.parquet", index=False)
    fills.to_parquet(stage / "fills.parquet", index=False)
    pd.DataFrame(columns=["ts", "instrument_id", "position_id", "amount"]).to_parquet(stage / "funding.parquet")
    (stage / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (stage / "config.json").write_bytes(msgspec.json.format(msgspec.json.encode(cfg), indent=2))
    (stage / "config.toml").write_text("# SYNTHETIC run generated by nautilus_app.testkit.synthetic (not a Nautilus backtest)\n"
                                       + tomli_w.dumps(raw_cfg))
    (stage / "run.json").write_text(json.dumps({
        "run_id": run_id, "name": "SYNTHETIC", "synthetic": True,
        "note": "SYNTHETIC data: seeded random walk and a vectorised EMA crossover written by "
                "nautilus_app.testkit.synthetic for speed tests; not market data, not a Nautilus run",
        "iterations": int(len(bars)), "bars": int(len(bars)), "seed": seed,
        "first_bar": str(index[0]), "last_bar": str(index[-1]),
    }, indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.rename(stage, final)
    return final
