"""Risk components (strategies/risk, docs/risk.md) on real Binance ETHUSDT-PERP 1m data.

Every expected number (sizes, stop/take-profit triggers and fills, the bar a pause starts) is
computed here from the raw Binance Vision kline file and the formulas of docs/risk.md, written out
by hand with pandas/numpy; run outputs are only used as inputs where the formula needs them (the
entry fill price a stop is measured from, closed trades for Kelly, fills for the equity path).
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app.backtest import BacktestOutcome, run_backtest
from nautilus_app.config import parse_config
from strategies.risk import RiskConfigError, parse_risk
from strategies.risk.sizing import kelly_fraction
from tests.test_backtest_e2e import read_kline_zip

MIRROR = shared_data_dir() / "binance-vision"
ETH_ZIP = MIRROR / "data/futures/um/monthly/klines/ETHUSDT/1m/ETHUSDT-1m-2023-07.zip"
ETH_BAR = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
ETH = "ETHUSDT-PERP.BINANCE_USDM"
BTC_ZIP = MIRROR / "data/futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2023-07.zip"
BTC_BAR = "BTCUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
BTC = "BTCUSDT-PERP.BINANCE_USDM"
TICK = 0.01
STEP = Decimal("0.001")
START_EQUITY = 100_000.0
TAKER = 0.0005

pytestmark = pytest.mark.skipif(not ETH_ZIP.exists(), reason=f"real data missing: {ETH_ZIP}")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("risk_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT", "BTCUSDT"), interval="1m",
                          start="2023-07-01", end="2023-07-31", kinds=("klines", "fundingRate"))
    return root


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return read_kline_zip(ETH_ZIP)


#: framework-prd BankrollConfig limits that are on by default in a risk table (tested on their own in
#: test_bankroll_defaults_*); the tests of other components switch them off to see that component alone
SPEC_LIMITS_OFF = {"daily_loss_limit": None, "max_heat": None, "max_position_fraction": None, "max_leverage": None}


def run(catalog: Path, tmp: Path, risk: dict | None, strategy: str = "ema_cross", start: str = "2023-07-14",
        end: str = "2023-07-15", leverage: int = 5, venue: dict | None = None, spec_limits: bool = False,
        **params) -> BacktestOutcome:
    base = {"fast_period": 10, "slow_period": 30} if strategy == "ema_cross" else {}
    if risk is not None and not spec_limits:
        risk = {**risk, "limits": {**SPEC_LIMITS_OFF, **risk.get("limits", {})}}
    # fills at the next open without slippage or latency: the expected prices below are the raw opens
    venue = {"costs": "fees_only", **(venue or {})}
    cfg = parse_config({
        "name": "risk", "catalog": str(catalog), "start": start, "end": end, "bar_types": [ETH_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["100000 USDT"],
                    "leverages": {ETH: leverage}, **venue}],
        "strategies": [{"name": strategy, "params": {"instrument_id": ETH, "bar_type": ETH_BAR, **base, **params,
                                                     **({"risk": risk} if risk is not None else {})}}],
    })
    return run_backtest(cfg, results_root=tmp, progress=False)


def utc(x: object) -> pd.Timestamp:
    ts = pd.Timestamp(x)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def window(raw: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    return raw[(raw.index > pd.Timestamp(start, tz="UTC")) & (raw.index <= pd.Timestamp(end, tz="UTC"))]


def floor_qty(x: float) -> Decimal:
    return (Decimal(repr(float(x))) / STEP).to_integral_value(rounding=ROUND_FLOOR) * STEP


def tick_down(x: float) -> float:
    return round(math.floor(round(x / TICK, 6)) * TICK, 2)


def tick_up(x: float) -> float:
    return round(math.ceil(round(x / TICK, 6)) * TICK, 2)


def wilder_atr(w: pd.DataFrame, n: int) -> pd.Series:
    """ATR as docs/risk.md states: TR (first bar: high - low), SMA of the first n TRs, then Wilder."""
    h, lo, c = w["high"].to_numpy(), w["low"].to_numpy(), w["close"].to_numpy()
    prev = np.r_[np.nan, c[:-1]]
    tr = np.nanmax(np.c_[h - lo, np.abs(h - prev), np.abs(lo - prev)], axis=1)
    out = np.full(len(tr), np.nan)
    out[n - 1] = tr[:n].mean()
    for i in range(n, len(tr)):
        out[i] = out[i - 1] + (tr[i] - out[i - 1]) / n
    return pd.Series(out, index=w.index)


def load(out: BacktestOutcome) -> tuple[pd.DataFrame, pd.DataFrame]:
    orders = pd.read_parquet(out.results_path / "orders.parquet")
    fills = pd.read_parquet(out.results_path / "fills.parquet")
    return orders, fills


def entry_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """Entry market orders: no tag (exits carry the signal tag, protective orders RISK_*)."""
    m = (orders["type"] == "MARKET") & orders["tags"].isna() & ~orders["is_reduce_only"].astype(bool)
    return orders[m].sort_values("ts_init")


# ---------------------------------------------------------------------------------------------
# config and formulas
# ---------------------------------------------------------------------------------------------
def test_risk_table_errors_name_the_key() -> None:
    with pytest.raises(RiskConfigError, match="risk.stops.stop_loss_pct"):
        parse_risk({"stops": {"stop_loss_pct": 1.5}})
    with pytest.raises(RiskConfigError, match="stop distance"):
        parse_risk({"sizing": {"method": "fixed_fractional"}})
    with pytest.raises(RiskConfigError, match="bogus"):
        parse_risk({"sizing": {"bogus": 1}})
    with pytest.raises(RiskConfigError, match="method"):
        parse_risk({"sizing": {"method": "martingale"}})
    assert parse_risk(None) is None
    assert parse_risk({}).limits.drawdown_pause == 0.15  # type: ignore[union-attr]
    off = parse_risk({"limits": {"drawdown_pause": 0, "drawdown_half_size": 0}})
    assert off is not None and off.limits.drawdown_pause is None and off.limits.drawdown_half_size is None


def test_kelly_fraction_by_hand() -> None:
    # framework-prd.md Appendix B: Kelly % = Win Rate - (1 - Win Rate) / (Win-Loss Ratio)
    # p = 0.5, W = mean(0.02, 0.03) = 0.025, L = 0.01: W/L = 2.5, K = 0.5 - 0.5 / 2.5 = 0.3
    assert kelly_fraction([0.02, -0.01, 0.03, -0.01]) == pytest.approx(0.3)
    # p = 0.25, W = 0.01, L = 0.02: W/L = 0.5, K = 0.25 - 0.75 / 0.5 = -1.25
    assert kelly_fraction([0.01, -0.02, -0.02, -0.02]) == pytest.approx(-1.25)
    # the case: p = 0.55, W = L = 1 %: K = 0.55 - 0.45 / 1 = 0.10 (stake_returns: 55 - 45 = 10)
    rets = [0.01] * 11 + [-0.01] * 9
    assert kelly_fraction(rets) == pytest.approx(0.10)
    assert kelly_fraction(rets, "stake_returns") == pytest.approx(10.0)
    # the named alternative: p / L - (1 - p) / W
    assert kelly_fraction([0.02, -0.01, 0.03, -0.01], "stake_returns") == pytest.approx(30.0)
    assert kelly_fraction([0.01, -0.02, -0.02, -0.02], "stake_returns") == pytest.approx(-62.5)
    assert kelly_fraction([]) is None
    assert kelly_fraction([0.01, 0.02]) == math.inf
    with pytest.raises(ValueError):
        kelly_fraction([0.01, -0.01], "bogus")
    with pytest.raises(RiskConfigError, match="kelly_formula"):
        parse_risk({"sizing": {"kelly_formula": "bogus"}})


# ---------------------------------------------------------------------------------------------
# sizing: the first entry of each method (equity = the starting balance, nothing traded yet)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sizing, stops", [
    ({"method": "fraction", "fraction": 0.3}, {}),
    ({"method": "fixed_notional", "notional_usdt": 25_000}, {}),
    ({"method": "fixed_fractional", "risk_fraction": 0.01}, {"stop_loss_pct": 0.004}),
    ({"method": "volatility", "vol_risk_fraction": 0.002, "atr_period": 14}, {}),
])
def test_sizing_methods_first_entry(catalog: Path, tmp_path: Path, raw: pd.DataFrame, sizing: dict, stops: dict) -> None:
    out = run(catalog, tmp_path, {"sizing": sizing, "stops": stops, "limits": {"drawdown_pause": None,
                                                                               "drawdown_half_size": None}})
    orders, _ = load(out)
    first = entry_orders(orders).iloc[0]
    w = window(raw, "2023-07-14", "2023-07-15")
    decided = utc(first["ts_init"])
    close = w.loc[decided, "close"]
    m = sizing["method"]
    if m == "fraction":
        qty = 0.3 * START_EQUITY / close
    elif m == "fixed_notional":
        qty = 25_000 / close
    elif m == "fixed_fractional":  # loss at the stop = 1 % of equity: qty x close x 0.4 % = 1,000 USDT
        qty = 0.01 * START_EQUITY / (close * 0.004)
    else:  # one ATR move = 0.2 % of equity
        atr = wilder_atr(w, 14).loc[decided]
        qty = 0.002 * START_EQUITY / atr
    assert Decimal(str(first["quantity"])) == floor_qty(qty)
    assert out.metrics["risk_refusals_total"] == 0


def test_kelly_target_notional_by_hand() -> None:
    from strategies.risk.config import SizingConfig
    from strategies.risk.sizing import target_notional

    cfg = SizingConfig(method="kelly", fraction=0.2, kelly_fraction=0.5, kelly_window=4, kelly_min_trades=4,
                       kelly_cap=0.5)
    # the window keeps the last 4 returns: K = 0.3 (see above), half Kelly 0.15 of equity = 7,500 USDT
    assert target_notional(cfg, equity=50_000, price=2000, default_fraction=0.9,
                           trade_returns=[0.5, 0.02, -0.01, 0.03, -0.01]) == (pytest.approx(7_500), "ok")
    # framework-prd's defaults (SizingConfig(): half Kelly, cap 0.5): p = 0.55, W = L = 1 % -> 0.05 of equity
    spec = SizingConfig(method="kelly", kelly_min_trades=20)
    assert spec.kelly_fraction == 0.5 and spec.kelly_formula == "win_loss_ratio"
    assert target_notional(spec, equity=10_000, price=2000, default_fraction=0.2,
                           trade_returns=[0.01] * 11 + [-0.01] * 9) == (pytest.approx(500.0), "ok")
    # the other formula is capped: 0.5 x 10 = 5 -> cap 0.5 of equity
    alt = SizingConfig(method="kelly", kelly_min_trades=20, kelly_formula="stake_returns")
    assert target_notional(alt, equity=10_000, price=2000, default_fraction=0.2,
                           trade_returns=[0.01] * 11 + [-0.01] * 9) == (pytest.approx(5_000.0), "ok")
    # fewer trades than kelly_min_trades: the fallback fraction
    assert target_notional(cfg, equity=50_000, price=2000, default_fraction=0.9, trade_returns=[0.02]) == (
        pytest.approx(10_000), "kelly_fallback")
    assert target_notional(cfg, equity=50_000, price=2000, default_fraction=0.9,
                           trade_returns=[0.01, -0.02, -0.02, -0.02]) == (None, "kelly_non_positive")


def test_kelly_sizing_from_closed_trades(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    sizing = {"method": "kelly", "fraction": 0.2, "kelly_fraction": 0.5, "kelly_window": 2, "kelly_min_trades": 2,
              "kelly_cap": 1.5}
    out = run(catalog, tmp_path, {"sizing": sizing, "limits": {"drawdown_pause": None, "drawdown_half_size": None}},
              strategy="mean_reversion", end="2023-07-16")
    orders, _ = load(out)
    positions = pd.read_parquet(out.results_path / "positions.parquet")
    positions = positions[positions["ts_closed"].notna()].sort_values("ts_closed")
    w = window(raw, "2023-07-14", "2023-07-16")

    def kelly_at(t: pd.Timestamp) -> tuple[float, float | None]:
        """(equity, full Kelly K or None below 2 trades) from the positions closed by time t."""
        closed = positions[pd.to_datetime(positions["ts_closed"], utc=True) <= t]
        # long-only: flat at every entry, equity = balance = start + realized PnL (fees, funding included)
        pnl = closed["realized_pnl"].astype(float)
        equity = START_EQUITY + pnl.sum()
        r = (pnl / (closed["peak_qty"].astype(float) * closed["avg_px_open"].astype(float))).tolist()[-2:]
        if len(r) < 2:
            return equity, None
        wins = [x for x in r if x > 0]
        losses = [-x for x in r if x <= 0]
        if not losses:
            return equity, math.inf
        if not wins:
            return equity, -math.inf
        p = len(wins) / len(r)
        return equity, p - (1 - p) / (np.mean(wins) / np.mean(losses))  # framework-prd Appendix B

    kinds = []
    for _, o in entry_orders(orders).iterrows():
        t = utc(o["ts_init"])
        equity, k = kelly_at(t)
        f = 0.2 if k is None else min(0.5 * k, 1.5)
        kinds.append("fallback" if k is None else "kelly")
        assert f > 0
        assert Decimal(str(o["quantity"])) == floor_qty(f * equity / w.loc[t, "close"]), (t, f, equity)
    # two fallback entries, then two winners: K = inf, capped at 1.5 x equity
    assert kinds[:3] == ["fallback", "fallback", "kelly"]
    refusals = pd.read_parquet(out.results_path / "risk_refusals.parquet")
    refused = refusals[refusals["action"] == "refused"]
    assert len(refused) > 0 and set(refused["reason"]) == {"kelly_non_positive"}
    for ts in refused["ts"]:
        assert kelly_at(ts)[1] <= 0
    assert out.metrics["risk_refusals"] == {"kelly_non_positive": len(refused)}
    assert out.metrics["risk_refusals_total"] == len(refused)


# ---------------------------------------------------------------------------------------------
# stops as real orders
# ---------------------------------------------------------------------------------------------
def slip_sell(px: float, bps: float) -> float:
    return tick_down(px * (1 - bps / 10_000))


def positions_of(orders: pd.DataFrame, fills: pd.DataFrame, end: str) -> list[dict]:
    """Per long entry: fill ts/price, the strategy's own exit decision time (or the run end), protective orders."""
    out = []
    entries = entry_orders(orders)
    exits = orders[orders["tags"].fillna("").str.contains("EMA_|MAX_HOLD|MEAN_|TIME_STOP|TRAILING_STOP")].sort_values("ts_init")
    for _, e in entries.iterrows():
        f = fills[fills["client_order_id"] == e["client_order_id"]].iloc[0]
        fill_ts = utc(f["ts_event"])
        later = exits[pd.to_datetime(exits["ts_init"], utc=True) > fill_ts]
        decided = utc(later["ts_init"].iloc[0]) if len(later) else pd.Timestamp(end, tz="UTC")
        prot = orders[pd.to_datetime(orders["ts_init"], utc=True) == fill_ts]
        out.append({"fill_ts": fill_ts, "fill_px": float(f["last_px"]), "decided": decided,
                    "stop": prot[prot["tags"].fillna("").str.contains("RISK_STOP|RISK_TRAIL")],
                    "tp": prot[prot["tags"].fillna("").str.contains("RISK_TP")]})
    return out


@pytest.mark.parametrize("trailing, short", [(False, False), (True, False), (False, True), (True, True)])
def test_stop_loss_and_trailing_stop_fill_on_the_first_bar_through_the_trigger(
        catalog: Path, tmp_path: Path, raw: pd.DataFrame, trailing: bool, short: bool) -> None:
    pct = 0.0015
    stops = {"trailing_pct": pct} if trailing else {"stop_loss_pct": pct}
    out = run(catalog, tmp_path, {"stops": stops}, end="2023-07-16", venue={"slippage": "fixed", "slippage_bps": 5},
              allow_short=short)
    orders, fills = load(out)
    w = window(raw, "2023-07-14", "2023-07-16")
    stopped = trail_exits = 0
    for pos in positions_of(orders, fills, "2023-07-16"):
        assert len(pos["stop"]) == 1 and len(pos["tp"]) == 0
        stop = pos["stop"].iloc[0]
        is_long = stop["side"] == "SELL"
        bars = w[(w.index > pos["fill_ts"]) & (w.index <= pos["decided"])]
        # long: below the fill, rounded down; short: above, rounded up
        trig = tick_down(pos["fill_px"] * (1 - pct)) if is_long else tick_up(pos["fill_px"] * (1 + pct))
        if trailing:
            assert (float(stop["trigger_price"]) >= trig - 1e-9) if is_long else (float(stop["trigger_price"]) <= trig + 1e-9)
        else:
            assert float(stop["trigger_price"]) == trig
        anchor = pos["fill_px"]
        hit = trail_exit = None
        for ts, b in bars.iterrows():
            if is_long and b["low"] <= trig:
                hit = (ts, min(trig, b["open"]), trig)
                break
            if not is_long and b["high"] >= trig:
                hit = (ts, max(trig, b["open"]), trig)
                break
            if trailing:  # moved at the bar's close, effective from the next bar
                if is_long:
                    anchor = max(anchor, b["high"])
                    trig = max(trig, tick_down(anchor * (1 - pct)))
                else:
                    anchor = min(anchor, b["low"])
                    trig = min(trig, tick_up(anchor * (1 + pct)))
                new = tick_down(anchor * (1 - pct)) if is_long else tick_up(anchor * (1 + pct))
                if (new >= b["close"]) if is_long else (new <= b["close"]):
                    trail_exit = ts  # closed beyond the trail: market exit at the next open
                    break
        if trail_exit is not None:
            trail_exits += 1
            ex = orders[orders["tags"].fillna("").str.contains("TRAILING_STOP")
                        & (pd.to_datetime(orders["ts_init"], utc=True) == trail_exit)]
            assert len(ex) == 1 and pos["decided"] == trail_exit and stop["status"] == "CANCELED"
            f = fills[fills["client_order_id"] == ex["client_order_id"].iloc[0]].iloc[0]
            nxt = w["open"].shift(-1).loc[trail_exit]
            assert float(f["last_px"]) == pytest.approx(slip_sell(nxt, 5) if is_long else tick_up(nxt * 1.0005), abs=1e-9)
            continue
        if hit is None:
            assert stop["status"] == "CANCELED", (pos, stop)
            continue
        stopped += 1
        assert stop["status"] == "FILLED"
        f = fills[fills["client_order_id"] == stop["client_order_id"]].iloc[0]
        assert utc(f["ts_event"]) == hit[0]
        assert float(f["reference_price"]) == pytest.approx(hit[1], abs=1e-9)
        slipped = slip_sell(hit[1], 5) if is_long else tick_up(hit[1] * (1 + 5 / 10_000))
        assert float(f["last_px"]) == pytest.approx(slipped, abs=1e-9)  # the venue's slippage
        assert float(stop["trigger_price"]) == pytest.approx(hit[2], abs=1e-9)  # the last (trailed) trigger
        assert f["liquidity_side"] == "TAKER"
        assert float(f["commission"]) == pytest.approx(float(f["last_qty"]) * float(f["last_px"]) * TAKER, rel=1e-9)
    assert stopped >= 3
    assert trail_exits == 0 or trailing
    # trades.parquet: the protective exits carry their reason (stop for a fixed stop, trailing otherwise)
    trades = pd.read_parquet(out.results_path / "trades.parquet")
    reasons = trades["exit_reason"].value_counts().to_dict()
    assert reasons.get("trailing" if trailing else "stop", 0) == stopped + trail_exits
    assert reasons.get("stop" if trailing else "trailing", 0) == 0
    assert set(reasons) <= {"stop", "trailing", "signal", "end_of_run"}
    assert out.metrics["exit_reasons"]["trailing" if trailing else "stop"] == stopped + trail_exits
    if short:
        assert (entry_orders(orders)["side"] == "SELL").sum() >= 3


def test_take_profit_limit_fills_when_the_bar_trades_through(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    pct = 0.003
    out = run(catalog, tmp_path, {"stops": {"take_profit_pct": pct}}, end="2023-07-16")
    tp_trades = pd.read_parquet(out.results_path / "trades.parquet")
    assert (tp_trades["exit_reason"] == "take_profit").sum() == (tp_trades["exit_tag"] == "RISK_TP").sum() > 0
    orders, fills = load(out)
    w = window(raw, "2023-07-14", "2023-07-16")
    taken = 0
    for pos in positions_of(orders, fills, "2023-07-16"):
        assert len(pos["tp"]) == 1 and len(pos["stop"]) == 0
        tp_order = pos["tp"].iloc[0]
        tp = tick_up(pos["fill_px"] * (1 + pct))
        assert float(tp_order["price"]) == tp
        bars = w[(w.index > pos["fill_ts"]) & (w.index <= pos["decided"])]
        through = bars[bars["high"] >= tp]
        if through.empty:
            assert tp_order["status"] == "CANCELED"
            continue
        taken += 1
        assert tp_order["status"] == "FILLED"
        f = fills[fills["client_order_id"] == tp_order["client_order_id"]].iloc[0]
        first = through.iloc[0]
        assert utc(f["ts_event"]) == through.index[0]
        # a resting sell limit fills at its price, or at the open if the bar opened above it
        assert float(f["last_px"]) == pytest.approx(max(tp, first["open"]), abs=1e-9)
    assert taken >= 3


def test_time_stop_exits_n_bars_after_the_entry(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    n = 20
    out = run(catalog, tmp_path, {"stops": {"time_stop_bars": n}}, end="2023-07-16")
    orders, fills = load(out)
    w = window(raw, "2023-07-14", "2023-07-16")
    entries = entry_orders(orders)
    timed = orders[orders["tags"].fillna("").str.contains("TIME_STOP")]
    tt = pd.read_parquet(out.results_path / "trades.parquet")
    assert (tt["exit_reason"] == "time").sum() == (tt["exit_tag"] == "TIME_STOP").sum() > 0
    assert len(timed) >= 3
    for _, o in timed.iterrows():
        decided = utc(o["ts_init"])
        entry = entries[pd.to_datetime(entries["ts_init"], utc=True) < decided].iloc[-1]
        # n bars (1 minute each, no gaps in this window) after the entry decision
        assert decided - utc(entry["ts_init"]) == pd.Timedelta(minutes=n)
        f = fills[fills["client_order_id"] == o["client_order_id"]].iloc[0]
        assert float(f["last_px"]) == w["open"].shift(-1).loc[decided]  # next bar's open
    # and nobody held longer than n bars
    for pos in positions_of(orders, fills, "2023-07-16"):
        assert pos["decided"] - pos["fill_ts"] <= pd.Timedelta(minutes=n)


# ---------------------------------------------------------------------------------------------
# limits
# ---------------------------------------------------------------------------------------------
def equity_path(fills: pd.DataFrame, funding: pd.DataFrame, w: pd.DataFrame) -> pd.Series:
    """Equity at each bar close from the fills and funding payments (linear perp, one instrument).

    ``E_t = start + sum over fills of (-signed qty x price - commission) + position_t x close_t
    + funding paid/received <= t``, as the limits see it at bar t's close, before the strategy decides
    on bar t: market orders decided on bar t are stamped t but fill after that decision, so they count
    from bar t+1; stop/limit fills inside bar t (stamped t) count at t.
    """
    f = fills.assign(ts=pd.to_datetime(fills["ts_event"], utc=True))
    f["ts"] = f["ts"].where(f["order_type"] != "MARKET", f["ts"] + pd.Timedelta(minutes=1))
    sgn = np.where(f["order_side"] == "BUY", 1.0, -1.0)
    qty = sgn * f["last_qty"].astype(float)
    cash = -qty * f["last_px"].astype(float) - f["commission"].astype(float)
    by_ts = pd.DataFrame({"ts": f["ts"], "qty": qty, "cash": cash}).groupby("ts").sum()
    pos = by_ts["qty"].cumsum().reindex(w.index, method="ffill").fillna(0.0)
    cash_t = by_ts["cash"].cumsum().reindex(w.index, method="ffill").fillna(0.0)
    fund = pd.Series(0.0, index=w.index)
    if len(funding):
        fd = funding.assign(ts=pd.to_datetime(funding["ts"], utc=True)).groupby("ts")["amount"].sum().cumsum()
        fund = fd.reindex(w.index, method="ffill").fillna(0.0)
    return START_EQUITY + cash_t + pos * w["close"] + fund


def test_drawdown_half_size_and_pause_start_on_the_right_bar(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    # 4x long ETH from 2023-07-14: the 14th's sell-off (about -6 %) is a drawdown of more than 15 %
    out = run(catalog, tmp_path, {"limits": {"drawdown_half_size": 0.10, "drawdown_pause": 0.15}},
              strategy="buy_and_hold", end="2023-07-16", position_fraction=4.0)
    _, fills = load(out)
    funding = pd.read_parquet(out.results_path / "funding.parquet")
    w = window(raw, "2023-07-14", "2023-07-16")
    eq = equity_path(fills, funding, w)
    dd = eq / eq.cummax() - 1
    assert dd.min() < -0.16
    rec = pd.read_parquet(out.results_path / "risk_refusals.parquet")
    first_half = dd.index[(dd <= -0.10).to_numpy()][0]
    first_pause = dd.index[(dd <= -0.15).to_numpy()][0]
    assert rec.loc[rec["action"] == "half_size_start", "ts"].iloc[0] == first_half
    assert rec.loc[rec["action"] == "pause_start", "ts"].iloc[0] == first_pause
    assert out.metrics["risk_events"]["pause_start"] >= 1


def test_drawdown_pause_refuses_entries_and_counts_them(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    lim = {"drawdown_half_size": 0.01, "drawdown_pause": 0.02, "drawdown_pause_bars": 120}
    out = run(catalog, tmp_path, {"limits": lim}, end="2023-07-16", position_fraction=3.0, allow_short=True)
    orders, fills = load(out)
    funding = pd.read_parquet(out.results_path / "funding.parquet")
    w = window(raw, "2023-07-14", "2023-07-16")
    eq = equity_path(fills, funding, w)
    # the pause windows by hand: peak reset to the equity at the bar the pause ends
    peak, pause_until, half = 0.0, -1, False
    pauses, halves = [], []
    for i, (ts, e) in enumerate(eq.items()):
        if pause_until >= 0 and i >= pause_until:
            pause_until, peak = -1, e
        peak = max(peak, e)
        d = e / peak - 1
        if pause_until < 0 and d <= -0.02:
            pause_until = i + 120
            pauses.append((ts, w.index[min(i + 120, len(w) - 1)]))
        if (d <= -0.01) != half:
            half = d <= -0.01
            if half:
                halves.append(ts)
    rec = pd.read_parquet(out.results_path / "risk_refusals.parquet")
    assert pauses and list(rec.loc[rec["action"] == "pause_start", "ts"]) == [p[0] for p in pauses]
    assert list(rec.loc[rec["action"] == "half_size_start", "ts"]) == halves
    refused = rec[rec["action"] == "refused"]
    assert len(refused) > 0 and set(refused["reason"]) == {"drawdown_pause"}
    entries = entry_orders(orders)
    for start, end in pauses:  # no entry order inside a pause, every refusal inside one
        inside = entries[(pd.to_datetime(entries["ts_init"], utc=True) >= start)
                         & (pd.to_datetime(entries["ts_init"], utc=True) < end)]
        assert inside.empty
    for ts in refused["ts"]:
        assert any(s <= ts < e for s, e in pauses)
    assert out.metrics["risk_refusals"] == {"drawdown_pause": len(refused)}


def test_drawdown_pause_until_recovery(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    """framework-prd.md's rule (the default): entries are refused exactly while equity is 2 % or more
    below its running peak; the pause ends on the first bar back under 2 % (no bar count, no reset)."""
    lim = {"drawdown_half_size": None, "drawdown_pause": 0.02}
    out = run(catalog, tmp_path, {"limits": lim}, end="2023-07-16", position_fraction=3.0, allow_short=True)
    orders, fills = load(out)
    funding = pd.read_parquet(out.results_path / "funding.parquet")
    w = window(raw, "2023-07-14", "2023-07-16")
    eq = equity_path(fills, funding, w)
    paused = (eq / eq.cummax() - 1) <= -0.02
    starts = list(paused.index[(paused & ~paused.shift(1, fill_value=False)).to_numpy()])
    ends = list(paused.index[(~paused & paused.shift(1, fill_value=False)).to_numpy()])
    rec = pd.read_parquet(out.results_path / "risk_refusals.parquet")
    assert starts and list(rec.loc[rec["action"] == "pause_start", "ts"]) == starts
    assert list(rec.loc[rec["action"] == "pause_end", "ts"]) == ends
    refused = rec[rec["action"] == "refused"]
    assert len(refused) > 0 and set(refused["reason"]) == {"drawdown_pause"}
    assert all(paused.loc[ts] for ts in refused["ts"])
    for t in pd.to_datetime(entry_orders(orders)["ts_init"], utc=True):
        assert not paused.loc[t], t
    assert len(ends) >= 1  # the pause did end without a fixed bar count


def test_bankroll_defaults_cap_the_first_entry(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    """risk = {} applies framework-prd's BankrollConfig: without a stop the whole notional is at risk, so
    the 6 % portfolio risk caps a 20 % entry at 6 % of equity (the 10 % position cap is looser)."""
    out = run(catalog, tmp_path, {}, spec_limits=True)
    orders, _ = load(out)
    first = entry_orders(orders).iloc[0]
    close = window(raw, "2023-07-14", "2023-07-15").loc[utc(first["ts_init"]), "close"]
    assert Decimal(str(first["quantity"])) == floor_qty(0.06 * START_EQUITY / close)
    rec = pd.read_parquet(out.results_path / "risk_refusals.parquet")
    first_rows = rec[rec["ts"] == utc(first["ts_init"])]
    assert list(first_rows["reason"]) == ["max_position_fraction", "max_heat"]


def test_daily_loss_limit(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    lim = {"daily_loss_limit": 0.01, "drawdown_pause": None, "drawdown_half_size": None}
    out = run(catalog, tmp_path, {"limits": lim}, start="2023-07-13", end="2023-07-16", position_fraction=3.0,
              allow_short=True)
    orders, fills = load(out)
    funding = pd.read_parquet(out.results_path / "funding.parquet")
    w = window(raw, "2023-07-13", "2023-07-16")
    eq = equity_path(fills, funding, w)
    day = eq.index.floor("D")
    day_open = eq.groupby(day).transform("first")
    hit = (eq / day_open - 1) <= -0.01
    expected = [g.index[g.to_numpy()][0] for _, g in hit.groupby(day) if g.any()]
    rec = pd.read_parquet(out.results_path / "risk_refusals.parquet")
    assert expected and list(rec.loc[rec["action"] == "daily_limit_hit", "ts"]) == expected
    entries = pd.to_datetime(entry_orders(orders)["ts_init"], utc=True)
    for t in expected:  # nothing entered for the rest of that UTC day
        assert not ((entries >= t) & (entries < t.floor("D") + pd.Timedelta(days=1))).any()


@pytest.mark.parametrize("limits, stops", [
    ({"max_position_notional_usdt": 20_000}, {}),
    ({"max_leverage": 0.3}, {}),
    ({"max_heat": 0.01}, {"stop_loss_pct": 0.004}),
])
def test_notional_leverage_and_heat_caps_reduce_the_first_entry(
        catalog: Path, tmp_path: Path, raw: pd.DataFrame, limits: dict, stops: dict) -> None:
    out = run(catalog, tmp_path, {"limits": {**limits, "drawdown_pause": None, "drawdown_half_size": None},
                                  "stops": stops}, position_fraction=3.0)
    orders, _ = load(out)
    first = entry_orders(orders).iloc[0]
    close = window(raw, "2023-07-14", "2023-07-15").loc[utc(first["ts_init"]), "close"]
    if "max_position_notional_usdt" in limits:
        qty = 20_000 / close
    elif "max_leverage" in limits:
        qty = 0.3 * START_EQUITY / close
    else:  # nothing open: risk of the new entry qty x close x 0.4 % <= 1 % of equity
        qty = 0.01 * START_EQUITY / (close * 0.004)
    assert Decimal(str(first["quantity"])) == floor_qty(qty)
    rec = pd.read_parquet(out.results_path / "risk_refusals.parquet")
    assert (rec["action"] == "reduced").sum() >= 1
    assert out.metrics["risk_reductions"][next(iter(limits)).removesuffix("_usdt")] >= 1


def test_correlation_adjusted_exposure_cap(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    cap, n = 1.3, 30  # the first BTC entry comes 34 bars into the run: 30 returns are available
    risk = {"limits": {**SPEC_LIMITS_OFF, "max_correlated_exposure": cap, "correlation_window": n, "drawdown_pause": None,
                       "drawdown_half_size": None}}
    cfg = parse_config({
        "name": "corr", "catalog": str(catalog), "start": "2023-07-20", "end": "2023-07-21",
        "bar_types": [ETH_BAR, BTC_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["100000 USDT"], "costs": "fees_only",
                    "leverages": {ETH: 5, BTC: 5}}],
        "strategies": [
            {"name": "buy_and_hold", "params": {"instrument_id": ETH, "bar_type": ETH_BAR, "position_fraction": 1.0}},
            {"name": "ema_cross", "params": {"instrument_id": BTC, "bar_type": BTC_BAR, "fast_period": 10,
                                             "slow_period": 30, "position_fraction": 1.0, "risk": risk}},
        ],
    })
    out = run_backtest(cfg, results_root=tmp_path, progress=False)
    orders, fills = load(out)
    btc = window(read_kline_zip(BTC_ZIP), "2023-07-20", "2023-07-21")
    eth = window(raw, "2023-07-20", "2023-07-21")
    eth_fill = fills[fills["instrument_id"] == ETH].iloc[0]
    q_eth, px_eth = float(eth_fill["last_qty"]), float(eth_fill["last_px"])
    btc_entries = entry_orders(orders[orders["instrument_id"] == BTC])
    t = utc(btc_entries["ts_init"].iloc[0])
    assert utc(eth_fill["ts_event"]) < t
    # equity at t: start - ETH entry fee + unrealized ETH PnL at t's close (nothing else happened yet)
    equity = START_EQUITY - float(eth_fill["commission"]) + q_eth * (eth.loc[t, "close"] - px_eth)
    # correlation of the last n one-minute returns up to t
    closes = pd.DataFrame({"eth": eth["close"], "btc": btc["close"]}).loc[:t].iloc[-(n + 1):]
    rho = closes.pct_change().dropna().corr().loc["eth", "btc"]
    w_eth = q_eth * eth.loc[t, "close"] / equity
    p_btc = btc.loc[t, "close"]
    # exposure^2 = w_eth^2 + 2 rho w_eth w_btc + w_btc^2 = cap^2  ->  w_btc = -rho w_eth + sqrt(...)
    w_btc = -rho * w_eth + math.sqrt((rho * w_eth) ** 2 - (w_eth ** 2 - cap ** 2))
    wanted = 1.0 * equity / p_btc  # position_fraction 1.0
    assert w_btc * equity / p_btc < wanted  # the cap binds
    assert Decimal(str(btc_entries["quantity"].iloc[0])) == floor_qty(w_btc * equity / p_btc)
    rec = pd.read_parquet(out.results_path / "risk_refusals.parquet")
    assert rec.loc[rec["action"] == "reduced", "reason"].iloc[0] == "max_correlated_exposure"
    assert rec["strategy_id"].unique().tolist() == ["EMACross-001"]


# ---------------------------------------------------------------------------------------------
# borrowing on margin spot
# ---------------------------------------------------------------------------------------------
SPOT_ZIP = MIRROR / "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2023-04.zip"
SPOT_BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


def test_borrowing_interest_on_margin_spot(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    root = tmp_path_factory.mktemp("spot_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2023-04-10", end="2023-04-11", kinds=("klines",))
    rate_long, rate_short = 0.0001, 0.0003
    cfg = parse_config({
        "name": "borrow", "catalog": str(root), "start": "2023-04-10", "end": "2023-04-11", "bar_types": [SPOT_BAR],
        "venues": [{"name": "BINANCE", "account_type": "MARGIN", "starting_balances": ["100000 USDT"], "costs": "fees_only",
                    "default_leverage": 3}],
        "strategies": [{"name": "ema_cross", "params": {
            "instrument_id": "BTCUSDT.BINANCE", "bar_type": SPOT_BAR, "fast_period": 10, "slow_period": 30,
            "position_fraction": 2.0, "allow_short": True,
            "risk": {"borrowing": {"hourly_rate": rate_long, "hourly_rate_short": rate_short},
                     "limits": {**SPEC_LIMITS_OFF, "drawdown_pause": None, "drawdown_half_size": None}}}}],
    })
    out = run_backtest(cfg, results_root=tmp_path, progress=False)
    _, fills = load(out)
    w = window(read_kline_zip(SPOT_ZIP), "2023-04-10", "2023-04-11")
    eq = equity_path(fills, pd.DataFrame(columns=["ts", "amount"]), w)
    f = fills.assign(ts=pd.to_datetime(fills["ts_event"], utc=True) + pd.Timedelta(minutes=1))  # before decisions
    q = (np.where(f["order_side"] == "BUY", 1.0, -1.0) * f["last_qty"].astype(float)).groupby(f["ts"]).sum().cumsum()
    q = q.reindex(w.index, method="ffill").fillna(0.0)
    accrued, expected = 0.0, []
    for h in w.index[(w.index.minute == 0) & (w.index > w.index[0])]:
        qty, px = q.loc[h], w.loc[h, "close"]
        if qty == 0:
            continue
        e = eq.loc[h] - accrued
        borrowed = max(0.0, qty * px - e) if qty > 0 else -qty * px  # USDT beyond own equity / base sold short
        interest = borrowed * (rate_long if qty > 0 else rate_short)
        if interest > 0:
            accrued += interest
            expected.append((h, interest))
    got = pd.read_parquet(out.results_path / "borrowing.parquet")
    assert len(expected) >= 10
    assert list(got["ts"]) == [t for t, _ in expected]
    np.testing.assert_allclose(got["interest_usdt"], [x for _, x in expected], rtol=1e-9)
    assert out.metrics["borrow_interest_usdt"] == pytest.approx(accrued, rel=1e-9)
    # deducted from the results' equity curve: final equity = fills-based equity - all interest
    equity = pd.read_parquet(out.results_path / "equity.parquet").set_index("ts")["equity"]
    final_fills_equity = START_EQUITY + (-(np.where(fills["order_side"] == "BUY", 1.0, -1.0)
                                         * fills["last_qty"].astype(float) * fills["last_px"].astype(float))
                                         - fills["commission"].astype(float)).sum()
    assert equity.iloc[-1] == pytest.approx(final_fills_equity - accrued, abs=1e-6)


def test_heat_counts_the_other_strategies_stops(catalog: Path, tmp_path: Path, raw: pd.DataFrame) -> None:
    no_dd = {"drawdown_pause": 0, "drawdown_half_size": 0}
    cfg = parse_config({
        "name": "heat", "catalog": str(catalog), "start": "2023-07-20", "end": "2023-07-21",
        "bar_types": [ETH_BAR, BTC_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["100000 USDT"], "costs": "fees_only",
                    "leverages": {ETH: 5, BTC: 5}}],
        "strategies": [
            {"name": "buy_and_hold", "params": {"instrument_id": ETH, "bar_type": ETH_BAR, "position_fraction": 1.0,
                                                "risk": {"stops": {"stop_loss_pct": 0.01}, "limits": {**SPEC_LIMITS_OFF, **no_dd}}}},
            {"name": "ema_cross", "params": {"instrument_id": BTC, "bar_type": BTC_BAR, "fast_period": 10,
                                             "slow_period": 30, "position_fraction": 1.0,
                                             "risk": {"stops": {"stop_loss_pct": 0.004},
                                                      "limits": {**SPEC_LIMITS_OFF, "max_heat": 0.013, **no_dd}}}},
        ],
    })
    out = run_backtest(cfg, results_root=tmp_path, progress=False)
    orders, fills = load(out)
    eth = window(raw, "2023-07-20", "2023-07-21")
    eth_fill = fills[fills["instrument_id"] == ETH].iloc[0]
    q_eth, px_eth = float(eth_fill["last_qty"]), float(eth_fill["last_px"])
    btc_entry = entry_orders(orders[orders["instrument_id"] == BTC]).iloc[0]
    t = utc(btc_entry["ts_init"])
    eth_stop = orders[(orders["instrument_id"] == ETH) & orders["tags"].fillna("").str.contains("RISK_STOP")].iloc[0]
    assert float(eth_stop["trigger_price"]) == tick_down(px_eth * 0.99)
    assert utc(eth_fill["ts_event"]) < t and (eth_stop["status"] != "FILLED" or utc(eth_stop["ts_last"]) > t)
    equity = START_EQUITY - float(eth_fill["commission"]) + q_eth * (eth.loc[t, "close"] - px_eth)
    open_risk = q_eth * (px_eth - tick_down(px_eth * 0.99))  # ETH: quantity x distance to its resting stop
    p_btc = window(read_kline_zip(BTC_ZIP), "2023-07-20", "2023-07-21").loc[t, "close"]
    qty = (0.013 * equity - open_risk) / (p_btc * 0.004)  # BTC risk = qty x close x 0.4 %
    assert qty < equity / p_btc  # binding
    assert Decimal(str(btc_entry["quantity"])) == floor_qty(qty)
