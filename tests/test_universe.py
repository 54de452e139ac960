"""Universe runs over the 18 real USDT-M perpetuals with 1m candles (July-August 2023, issue 19).

Data: the freqtrade feathers in ``$SHARED_DATA/freqtrade/binance/futures/window-2023-07``. Expected
numbers (funding per symbol, prices, the basket benchmark) are computed here with pandas from those
raw files, never copied from the run's output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.freqtrade import import_freqtrade
from core.paths import shared_data_dir
from nautilus_app.cli import main as cli_main
from nautilus_app.config import ConfigError, parse_config
from nautilus_app.research.universe_run import run_universe
from nautilus_app.universe import expand_universe

WINDOW = shared_data_dir() / "freqtrade" / "binance" / "futures" / "window-2023-07"
START, END = "2023-07-24", "2023-08-02"  # 9 days, 12,960 1m bars per symbol (6 symbols end on 08-02)
TAKER = 0.0005  # Binance USDT-M VIP 0
SYMBOLS_1M = sorted(p.name.split("_")[0] + "USDT" for p in WINDOW.glob("*_USDT_USDT-1m-futures.feather"))
NOTIONAL = 5000.0  # USDT per symbol


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("perps")
    import_freqtrade(root, data_dir=WINDOW, timeframes=["1m"], trading_mode="futures")
    return root


def universe_config(catalog: Path, mode: str, **universe) -> dict:
    return {
        "name": f"bh_{mode}", "catalog": str(catalog), "start": START, "end": END, "bar_types": [],
        "universe": {"market": "um", "symbols": "*", "interval": "1m", "mode": mode, **universe},
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["100000 USDT"],
                    "margin_mode": "isolated", "costs": "fees_only"}],  # fills exactly at bar prices
        # a fixed notional per symbol: equity-fraction sizing would see the other symbols' pending orders
        # in a shared account (a portfolio effect), so only fixed sizing gives identical per-symbol runs
        "strategies": [{"name": "buy_and_hold", "params": {
            "risk": {"sizing": {"method": "fixed_notional", "notional_usdt": NOTIONAL},
                     # no portfolio-wide limits (the bankroll defaults cap heat at 6 % of equity)
                     "limits": {"max_heat": 0, "max_position_fraction": 0, "daily_loss_limit": 0,
                                "drawdown_pause": 0, "drawdown_half_size": 0}}}}],
    }


def raw(symbol: str, kind: str) -> pd.DataFrame:
    base = symbol.removesuffix("USDT")
    return pd.read_feather(WINDOW / f"{base}_USDT_USDT-{kind}.feather")


def window_bars(symbol: str) -> pd.DataFrame:
    df = raw(symbol, "1m-futures")
    df = df[(df["date"] >= pd.Timestamp(START, tz="UTC")) & (df["date"] < pd.Timestamp(END, tz="UTC"))]
    return df.set_index(df["date"] + pd.Timedelta(minutes=1))  # stamped at the bar's close


@pytest.fixture(scope="module")
def shared(catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    cfg = parse_config(universe_config(catalog, "shared"))
    return run_universe(cfg, results_root=tmp_path_factory.mktemp("res_shared"), progress=False)


@pytest.fixture(scope="module")
def per_symbol(catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("res_per_symbol")
    cfg = parse_config(universe_config(catalog, "per_symbol", registry=f"sqlite:///{root / 'registry.sqlite'}"))
    return run_universe(cfg, results_root=root, progress=False)


def test_expansion_covers_the_18_symbols_with_1m_candles(catalog: Path) -> None:
    assert len(SYMBOLS_1M) == 18
    cfg = expand_universe(parse_config(universe_config(catalog, "shared")))
    ids = [s.params["instrument_id"] for s in cfg.strategies]
    assert ids == [f"{s}-PERP.BINANCE_USDM" for s in SYMBOLS_1M]
    assert [s.params["order_id_tag"] for s in cfg.strategies] == [f"{i:03d}" for i in range(18)]
    assert cfg.bar_types == [f"{s}-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL" for s in SYMBOLS_1M]


def test_shared_universe_prices_funding_and_basket_match_the_raw_files(shared) -> None:
    trades = pd.read_parquet(shared.results_path / "trades.parquet")
    fills = pd.read_parquet(shared.results_path / "fills.parquet")
    funding = pd.read_parquet(shared.results_path / "funding.parquet")
    assert shared.symbols == SYMBOLS_1M and len(trades) == 18
    sleeves = []
    for sym in SYMBOLS_1M:
        iid = f"{sym}-PERP.BINANCE_USDM"
        bars = window_bars(sym)
        f = fills[fills["instrument_id"] == iid].sort_values("ts_event")
        assert list(f["order_side"]) == ["BUY", "SELL"]
        # bought on the first bar: fills at the second bar's open; closed by on_stop at the last close
        assert float(f["last_px"].iloc[0]) == pytest.approx(bars["open"].iloc[1], abs=1e-12)
        assert float(f["last_px"].iloc[1]) == pytest.approx(bars["close"].iloc[-1], abs=1e-12)
        t = trades[trades["instrument_id"] == iid].iloc[0]
        assert float(t["exit_price"]) / float(t["entry_price"]) == pytest.approx(
            bars["close"].iloc[-1] / bars["open"].iloc[1], rel=1e-12)
        # funding: every 8h settlement while long, -qty x mark x rate (mark at T = close of the 8h mark
        # candle ending at T; funding times snapped to the 8h grid)
        qty = float(f["last_qty"].iloc[0])
        rates = raw(sym, "8h-funding_rate")
        rates["ts"] = rates["date"].dt.floor("8h")
        marks = raw(sym, "8h-mark")
        mark_at = pd.Series(marks["close"].to_numpy(), index=marks["date"] + pd.Timedelta(hours=8))
        held = rates[(rates["ts"] > pd.Timestamp(f["ts_event"].iloc[0])) & (rates["ts"] < pd.Timestamp(f["ts_event"].iloc[1]))]
        expected = sum(-qty * mark_at.loc[r.ts] * r.open for r in held.itertuples())
        got = funding.loc[funding["instrument_id"] == iid, "amount"].sum() if "instrument_id" in funding else None
        by_iid = {r["instrument_id"]: r for r in shared.metrics["by_instrument"]}
        assert -by_iid[iid]["funding_paid_usdt"] == pytest.approx(expected, abs=1e-6), sym
        if got is not None:
            assert got == pytest.approx(expected, abs=1e-6)
        # the symbol's own buy-and-hold: buy at the first close, sell at the last, taker fee both ways
        own = (1 - TAKER) ** 2 * bars["close"].iloc[-1] / bars["close"].iloc[0] - 1
        assert shared.metrics["buy_and_hold_by_instrument"][iid] == pytest.approx(own, rel=1e-9)
        sleeves.append(own)
    assert shared.metrics["buy_and_hold_return"] == pytest.approx(np.mean(sleeves), rel=1e-9)


def test_per_instrument_and_per_strategy_figures_add_up_to_the_account(shared) -> None:
    m = shared.metrics
    for group in ("by_instrument", "by_strategy"):
        recs = m[group]
        assert len(recs) == 18
        assert sum(r["net_pnl_usdt"] for r in recs) == pytest.approx(m["final_equity"] - m["starting_equity"], abs=1e-6)
        assert sum(r["fees_paid_usdt"] for r in recs) == pytest.approx(m["fees_paid_usdt"], abs=1e-9)
        assert sum(r["funding_paid_usdt"] for r in recs) == pytest.approx(m["funding_paid_usdt"], abs=1e-9)
    fills = pd.read_parquet(shared.results_path / "fills.parquet")
    notional = (fills["last_qty"].astype(float) * fills["last_px"].astype(float)).sum()
    assert m["fees_paid_usdt"] == pytest.approx(TAKER * notional, rel=1e-9)


def test_per_symbol_mode_gives_the_shared_per_symbol_results(shared, per_symbol) -> None:
    assert per_symbol.mode == "per_symbol" and sorted(per_symbol.symbol_runs) == SYMBOLS_1M
    for sym, folder in per_symbol.symbol_runs.items():  # every per-symbol run is a complete run folder
        assert (folder / "metrics.json").exists() and (folder / "fills.parquet").exists(), sym
    a = {r["instrument_id"]: r for r in shared.metrics["by_instrument"]}
    b = {r["instrument_id"]: r for r in per_symbol.metrics["by_instrument"]}
    assert a.keys() == b.keys()
    for iid in a:
        for k in ("trades", "net_pnl_usdt", "fees_paid_usdt", "funding_paid_usdt", "pnl_before_costs_usdt"):
            assert a[iid][k] == pytest.approx(b[iid][k], abs=1e-6), (iid, k)
    assert [r["strategy_id"] for r in per_symbol.metrics["by_strategy"]] == [
        r["strategy_id"] for r in shared.metrics["by_strategy"]]
    # combined as one account: final equity = start + sum of the symbols' PnL = the shared account's
    assert per_symbol.metrics["final_equity"] == pytest.approx(shared.metrics["final_equity"], abs=1e-6)
    assert per_symbol.metrics["buy_and_hold_return"] == pytest.approx(shared.metrics["buy_and_hold_return"], rel=1e-9)
    table = pd.read_parquet(per_symbol.results_path / "by_symbol.parquet")
    assert sorted(table["symbol"]) == SYMBOLS_1M
    doc = json.loads((per_symbol.results_path / "universe.json").read_text())
    assert doc["mode"] == "per_symbol" and sorted(doc["symbol_runs"]) == SYMBOLS_1M


def test_bad_universes_are_named_and_write_nothing(catalog: Path, tmp_path: Path, capsys) -> None:
    import tomli_w

    results = tmp_path / "results"

    def run(raw: dict) -> int:
        path = tmp_path / "u.toml"
        path.write_text(tomli_w.dumps(raw))
        return cli_main(["backtest", str(path), "--no-progress", "--results-dir", str(results)])

    bad = universe_config(catalog, "shared")
    bad["universe"]["symbols"] = ["SOLUSDT", "NOPEUSDT"]
    assert run(bad) == 2
    err = capsys.readouterr().err
    assert "NOPEUSDT" in err and "universe.symbols" in err
    none = universe_config(catalog, "shared")
    none["universe"]["market"] = "spot"
    none["venues"] = [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}]
    assert run(none) == 2
    assert "matches no spot symbol" in capsys.readouterr().err
    assert not results.exists() or not any(results.iterdir())

    # a perpetual with bars but no funding rows: the run refuses it, naming the instrument
    broken = tmp_path / "broken"
    shutil.copytree(catalog, broken)
    shutil.rmtree(broken / "data" / "funding_rates" / "SOLUSDT-PERP.BINANCE_USDM")
    cfg = universe_config(broken, "shared")
    cfg["universe"]["symbols"] = ["SOLUSDT", "XRPUSDT"]
    assert run(cfg) == 1
    err = capsys.readouterr().err
    assert "SOLUSDT-PERP.BINANCE_USDM" in err and "no funding rates" in err
    assert not results.exists() or not any(p for p in results.iterdir() if not p.name.startswith("."))


def test_universe_config_errors_before_any_data(catalog: Path) -> None:
    cfg = universe_config(catalog, "shared")
    cfg["universe"]["interval"] = "7m"
    with pytest.raises(ConfigError, match="universe.interval"):
        parse_config(cfg)
    cfg = universe_config(catalog, "shared")
    cfg["venues"][0]["name"] = "BINANCE"
    cfg["venues"][0]["account_type"] = "CASH"
    cfg["venues"][0].pop("margin_mode")
    with pytest.raises(ConfigError, match="BINANCE_USDM"):
        parse_config(cfg)
