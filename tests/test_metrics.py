"""Tests for nautilus_app.metrics.

Every expected number is worked out by hand in the test (explicit arithmetic on small series), never by
calling the function under test another way.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from nautilus_app import metrics as m

T0 = pd.Timestamp("2021-01-01 00:00", tz="UTC")
H = pd.Timedelta(1, "h")


def hourly(values: list[float], start: pd.Timestamp = T0) -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="1h"), dtype="float64")


def make_trades(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    """rows: (entry_hour, exit_hour, pnl, return_frac) relative to T0."""
    return pd.DataFrame(
        {
            "instrument_id": ["BTCUSDT-PERP.BINANCE"] * len(rows),
            "side": ["LONG"] * len(rows),
            "entry_time": [T0 + r[0] * H for r in rows],
            "exit_time": [T0 + r[1] * H for r in rows],
            "quantity": [1.0] * len(rows),
            "entry_price": [100.0] * len(rows),
            "exit_price": [100.0] * len(rows),
            "pnl": [r[2] for r in rows],
            "return_frac": [r[3] for r in rows],
            "fees": [0.1] * len(rows),
            "funding": [0.0] * len(rows),
        }
    )


# ---------------------------------------------------------------------------------------------- drawdown


def test_max_drawdown_recovered():
    # running peak: 100 120 120 120 130 130 130
    # drawdown:       0   0 .25 1/12  0  .2  .1   -> max 0.25 at t2, peak t1, recovered at t4 (130 >= 120)
    eq = hourly([100, 120, 90, 110, 130, 104, 117])
    dd, peak, trough, duration = m.max_drawdown(eq)
    assert dd == pytest.approx(0.25)
    assert peak == T0 + 1 * H
    assert trough == T0 + 2 * H
    assert duration == 3 * H  # t1 -> t4


def test_max_drawdown_never_recovered_runs_to_end():
    # 100 -> 80 is -20 %, never back to 100; duration from peak (t0) to last sample (t3)
    eq = hourly([100, 80, 90, 95])
    res = m.max_drawdown(eq)
    assert res.max_drawdown == pytest.approx(0.2)
    assert res.peak_time == T0
    assert res.trough_time == T0 + 1 * H
    assert res.duration == 3 * H


def test_max_drawdown_peak_is_last_visit_to_peak_level():
    # 100 90 100 80 100: first dip (10 %) recovers at t2; deepest dip 20 % at t3 starts at t2, recovers t4
    eq = hourly([100, 90, 100, 80, 100])
    res = m.max_drawdown(eq)
    assert res.max_drawdown == pytest.approx(0.2)
    assert res.peak_time == T0 + 2 * H
    assert res.trough_time == T0 + 3 * H
    assert res.duration == 2 * H


def test_max_drawdown_none_when_only_rising_or_flat():
    for values in ([100, 100, 100], [100, 101, 105], [42.0]):
        assert tuple(m.max_drawdown(hourly(values))) == (0.0, None, None, pd.Timedelta(0))


def test_drawdown_series():
    dd = m.drawdown_series(hourly([100, 50, 100, 75]))
    assert dd.tolist() == pytest.approx([0.0, 0.5, 0.0, 0.25])


# ------------------------------------------------------------------------------------------------ returns


def test_daily_returns_calendar_day_closes():
    idx = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 12:00", "2024-01-02 06:00", "2024-01-02 23:00", "2024-01-03 01:00"],
        tz="UTC",
    )
    eq = pd.Series([100.0, 110.0, 99.0, 121.0, 121.0], index=idx)
    r = m.daily_returns(eq)
    # closes: Jan1 110, Jan2 121, Jan3 121; first day measured from the first sample (100)
    assert list(r.index) == list(pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC"))
    assert r.tolist() == pytest.approx([110 / 100 - 1, 121 / 110 - 1, 0.0])
    # with an explicit starting equity the first day is measured from it: 110 / 88 - 1 = 0.25
    assert m.daily_returns(eq, starting_equity=88.0).iloc[0] == pytest.approx(0.25)


def test_daily_returns_gap_day_carries_close_forward():
    idx = pd.DatetimeIndex(["2024-01-01 10:00", "2024-01-03 10:00"], tz="UTC")
    r = m.daily_returns(pd.Series([100.0, 150.0], index=idx))
    assert r.tolist() == pytest.approx([0.0, 0.0, 0.5])  # Jan 2 has no sample: close stays 100


def test_daily_returns_converts_other_timezones_to_utc():
    # 2024-01-02 01:00 in UTC+2 is 2024-01-01 23:00 UTC: both samples are the same UTC day
    idx = pd.DatetimeIndex(["2024-01-01 12:00", "2024-01-02 01:00"], tz="Etc/GMT-2")
    r = m.daily_returns(pd.Series([100.0, 120.0], index=idx))
    assert r.tolist() == pytest.approx([0.2])


def test_sharpe_sortino_volatility_by_hand():
    r = [0.01, -0.02, 0.03, 0.0]
    # mean = 0.02 / 4 = 0.005; deviations .005 -.025 .025 -.005 -> squares sum 0.0013; var (ddof=1) 0.0013/3
    std = math.sqrt(0.0013 / 3)
    assert m.sharpe_ratio(r) == pytest.approx(0.005 / std * math.sqrt(365))
    assert m.annualised_volatility(r) == pytest.approx(std * math.sqrt(365))
    # downside: min(r, 0) = 0 -0.02 0 0 -> mean of squares 0.0004 / 4 = 0.0001 -> DD 0.01
    assert m.sortino_ratio(r) == pytest.approx(0.005 / 0.01 * math.sqrt(365))


def test_sharpe_with_risk_free_and_other_periods():
    r = [0.02, 0.04]
    # rf per period = 0.12 / 12 = 0.01 -> excess 0.01, 0.03; mean 0.02, std sqrt(2 * 0.01^2 / 1)
    assert m.sharpe_ratio(r, periods_per_year=12, risk_free=0.12) == pytest.approx(
        0.02 / math.sqrt(0.0002) * math.sqrt(12)
    )


def test_ratios_undefined_cases():
    assert m.sharpe_ratio([0.0, 0.0, 0.0]) is None  # std == 0
    assert m.sharpe_ratio([0.01]) is None  # ddof=1 needs two values
    assert m.sharpe_ratio([0.01] * 7) is None  # constant but non-zero
    assert m.sortino_ratio([0.01, 0.02]) is None  # no downside
    assert m.annualised_volatility([0.0, 0.0]) == 0.0
    assert m.annualised_volatility([0.1]) is None


def test_cagr_and_total_return():
    # 2021-01-01 -> 2023-01-01 is 730 days = 2 * 365: (121/100) ** (365/730) - 1 = 1.1 - 1 = 0.1
    eq = pd.Series(
        [100.0, 90.0, 121.0], index=pd.DatetimeIndex(["2021-01-01", "2022-01-01", "2023-01-01"], tz="UTC")
    )
    assert m.cagr(eq) == pytest.approx(0.1)
    assert m.total_return(eq) == pytest.approx(0.21)
    # half a year (182.5 days) doubling -> (2) ** 2 - 1 = 3
    eq2 = pd.Series([50.0, 100.0], index=[T0, T0 + pd.Timedelta(182.5, "D")])
    assert m.cagr(eq2) == pytest.approx(3.0)
    # starting equity overrides the first sample: 121 / 110 over 2 years -> sqrt(1.1) - 1
    assert m.cagr(eq, starting_equity=110.0) == pytest.approx(math.sqrt(1.1) - 1)


def test_cagr_edge_cases():
    assert m.cagr(hourly([100.0, 200.0])) is None  # 1 hour < 1 day
    assert m.cagr(pd.Series([100.0, 0.0], index=[T0, T0 + pd.Timedelta(2, "D")])) == -1.0
    assert m.cagr(pd.Series([100.0, -5.0], index=[T0, T0 + pd.Timedelta(2, "D")])) == -1.0
    # exactly 1 day, x10: 10 ** 365 overflows a float
    assert m.cagr(pd.Series([1.0, 10.0], index=[T0, T0 + pd.Timedelta(1, "D")])) == math.inf


def test_calmar():
    assert m.calmar_ratio(0.3, 0.15) == pytest.approx(2.0)
    assert m.calmar_ratio(0.3, 0.0) is None
    assert m.calmar_ratio(None, 0.1) is None
    assert m.calmar_ratio(math.inf, 0.1) is None
    with pytest.raises(ValueError, match="^max_drawdown_value"):
        m.calmar_ratio(0.1, -0.2)


# ------------------------------------------------------------------------------------------------ trades


def _mixed_trades() -> pd.DataFrame:
    # in exit order: +10 +20 -5 0 -15 -5 +30 ; durations 1,2,3,4,5,6,7 hours; rows deliberately shuffled
    rows = [
        (0, 1, 10.0, 0.010),
        (1, 3, 20.0, 0.020),
        (2, 5, -5.0, -0.005),
        (3, 7, 0.0, 0.000),
        (4, 9, -15.0, -0.015),
        (5, 11, -5.0, -0.005),
        (6, 13, 30.0, 0.030),
    ]
    df = make_trades(rows)
    return df.iloc[[4, 0, 6, 2, 5, 1, 3]].reset_index(drop=True)


def test_trade_stats_by_hand():
    s = m.trade_stats(_mixed_trades())
    assert (s.trades, s.wins, s.losses, s.breakeven) == (7, 3, 3, 1)
    assert s.win_rate == pytest.approx(3 / 7)
    assert s.gross_profit == pytest.approx(60.0)
    assert s.gross_loss == pytest.approx(-25.0)
    assert s.profit_factor == pytest.approx(60 / 25)
    assert s.expectancy == pytest.approx(35 / 7)
    assert s.expectancy_return == pytest.approx(0.035 / 7)
    assert s.avg_win == pytest.approx(20.0)
    assert s.avg_loss == pytest.approx(-25 / 3)
    assert s.largest_win == pytest.approx(30.0)
    assert s.largest_loss == pytest.approx(-15.0)
    assert s.avg_duration == pd.Timedelta(4, "h")  # (1+2+...+7) / 7
    assert s.longest_win_streak == 2  # +10 +20
    assert s.longest_loss_streak == 2  # -15 -5 (the earlier -5 is cut off by the breakeven trade)


def test_streaks():
    pnl = [1, 1, 1, -1, 1, -1, -1, -1, -1, 1, 1]
    df = make_trades([(i, i + 1, p, p / 100) for i, p in enumerate(pnl)])
    s = m.trade_stats(df)
    assert (s.longest_win_streak, s.longest_loss_streak) == (3, 4)


def test_streak_order_uses_exit_time_then_entry_time():
    # same exit time: the one entered earlier comes first -> W, L, L (loss streak 2, not split)
    df = make_trades([(2, 5, -1.0, -0.01), (0, 5, 1.0, 0.01), (1, 6, -1.0, -0.01)])
    s = m.trade_stats(df)
    assert (s.longest_win_streak, s.longest_loss_streak) == (1, 2)


def test_all_wins_profit_factor_is_infinite():
    s = m.trade_stats(make_trades([(0, 1, 5.0, 0.05), (1, 2, 15.0, 0.15)]))
    assert s.profit_factor == math.inf
    assert s.win_rate == 1.0
    assert s.avg_loss is None and s.largest_loss is None
    assert s.longest_loss_streak == 0


def test_all_losses_and_all_breakeven():
    s = m.trade_stats(make_trades([(0, 1, -5.0, -0.05)]))
    assert s.profit_factor == 0.0
    assert s.win_rate == 0.0
    s = m.trade_stats(make_trades([(0, 1, 0.0, 0.0)]))
    assert s.profit_factor is None
    assert (s.longest_win_streak, s.longest_loss_streak) == (0, 0)


def test_no_trades():
    for trades in (None, pd.DataFrame(), make_trades([])):
        s = m.trade_stats(trades)
        assert s.trades == 0
        assert s.win_rate is None and s.profit_factor is None and s.expectancy is None
        assert s.avg_duration is None
        assert (s.longest_win_streak, s.longest_loss_streak) == (0, 0)


def test_exposure_unions_overlapping_trades_and_clips_to_span():
    # span 0h..10h; [1,3] u [2,5] = [1,5] (4h); [7,8] (1h); [9,12] clipped to [9,10] (1h) -> 6h / 10h
    df = make_trades([(2, 5, 1.0, 0.0), (1, 3, 1.0, 0.0), (7, 8, 1.0, 0.0), (9, 12, 1.0, 0.0)])
    assert m.exposure(df, T0, T0 + 10 * H) == pytest.approx(0.6)


def test_exposure_nested_touching_and_outside():
    # [0,6] contains [1,2]; [6,8] touches it -> [0,8]; [-5,-1] is before the span -> 0; 8h / 10h
    df = make_trades([(0, 6, 1.0, 0.0), (1, 2, 1.0, 0.0), (6, 8, 1.0, 0.0), (-5, -1, 1.0, 0.0)])
    assert m.exposure(df, T0, T0 + 10 * H) == pytest.approx(0.8)
    assert m.exposure(None, T0, T0 + 10 * H) == 0.0
    assert m.exposure(df, T0, T0) is None


# ---------------------------------------------------------------------------------------- compute_metrics

EXPECTED_KEYS = {
    "start",
    "end",
    "span_days",
    "starting_equity",
    "final_equity",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_s",
    "deepest_drawdown_duration_s",
    "max_concurrent_positions",
    "avg_leverage",
    "max_leverage",
    "max_drawdown_peak",
    "max_drawdown_trough",
    "max_drawdown_recovered",
    "trades",
    "wins",
    "losses",
    "win_rate",
    "profit_factor",
    "gross_profit_usdt",
    "gross_loss_usdt",
    "expectancy_usdt",
    "expectancy_return",
    "avg_win_usdt",
    "avg_loss_usdt",
    "largest_win_usdt",
    "largest_loss_usdt",
    "avg_trade_duration_s",
    "longest_win_streak",
    "longest_loss_streak",
    "exposure",
    "fees_paid_usdt",
    "funding_paid_usdt",
    "buy_and_hold_return",
}


def test_compute_metrics_by_hand():
    # one sample per day at 00:00 UTC, 4 days: 1000, 1100, 990, 1089 (span 3 days)
    idx = pd.date_range("2024-03-01", periods=4, freq="D", tz="UTC")
    eq = pd.Series([1000.0, 1100.0, 990.0, 1089.0], index=idx)
    # trades: win of 100 over 1 day [day0, day1], loss of -110 over [day1 12:00, day2] overlapping nothing
    trades = pd.DataFrame(
        {
            "entry_time": [idx[0], idx[1] + pd.Timedelta(12, "h")],
            "exit_time": [idx[1], idx[2]],
            "pnl": [100.0, -110.0],
            "return_frac": [0.1, -0.1],
        }
    )
    res = m.compute_metrics(eq, trades, fees_paid=3.5, funding_paid=-1.25, buy_and_hold_return=0.05)
    assert set(res) == EXPECTED_KEYS
    json.dumps(res, allow_nan=False)

    assert res["start"] == "2024-03-01T00:00:00+00:00"
    assert res["end"] == "2024-03-04T00:00:00+00:00"
    assert res["span_days"] == pytest.approx(3.0)
    assert res["starting_equity"] == 1000.0 and res["final_equity"] == 1089.0
    assert res["total_return"] == pytest.approx(0.089)
    assert res["cagr"] == pytest.approx(1.089 ** (365 / 3) - 1)
    # daily returns: day0 close 1000 vs first sample 1000 -> 0; then +0.1, -0.1, +0.1
    r = [0.0, 0.1, -0.1, 0.1]  # mean 0.025; deviations -.025 .075 -.125 .075
    var = (0.025**2 + 0.075**2 + 0.125**2 + 0.075**2) / 3
    assert res["annual_volatility"] == pytest.approx(math.sqrt(var) * math.sqrt(365))
    assert res["sharpe"] == pytest.approx(0.025 / math.sqrt(var) * math.sqrt(365))
    assert res["sortino"] == pytest.approx(0.025 / math.sqrt(0.01 / 4) * math.sqrt(365))
    assert sum(r) / 4 == pytest.approx(0.025)
    # drawdown: peak 1100 (day1), trough 990 (day2) = 10 %, 1089 < 1100 never recovered -> to day3: 2 days
    assert res["max_drawdown"] == pytest.approx(0.1)
    assert res["max_drawdown_duration_s"] == pytest.approx(2 * 86400)
    assert res["max_drawdown_peak"] == "2024-03-02T00:00:00+00:00"
    assert res["max_drawdown_trough"] == "2024-03-03T00:00:00+00:00"
    assert res["max_drawdown_recovered"] is False
    assert res["calmar"] == pytest.approx((1.089 ** (365 / 3) - 1) / 0.1)
    # trades
    assert (res["trades"], res["wins"], res["losses"]) == (2, 1, 1)
    assert res["win_rate"] == pytest.approx(0.5)
    assert res["profit_factor"] == pytest.approx(100 / 110)
    assert res["expectancy_usdt"] == pytest.approx(-5.0)
    assert res["expectancy_return"] == pytest.approx(0.0)
    assert res["avg_win_usdt"] == 100.0 and res["avg_loss_usdt"] == -110.0
    assert res["largest_win_usdt"] == 100.0 and res["largest_loss_usdt"] == -110.0
    assert res["avg_trade_duration_s"] == pytest.approx((86400 + 43200) / 2)
    assert (res["longest_win_streak"], res["longest_loss_streak"]) == (1, 1)
    # exposure: 24h + 12h of a 72h span
    assert res["exposure"] == pytest.approx(36 / 72)
    assert res["fees_paid_usdt"] == 3.5
    assert res["funding_paid_usdt"] == -1.25
    assert res["buy_and_hold_return"] == 0.05


def test_compute_metrics_flat_equity_no_trades():
    idx = pd.date_range("2024-01-01", periods=3 * 1440, freq="1min", tz="UTC")
    eq = pd.Series(10_000.0, index=idx)
    res = m.compute_metrics(eq, None, fees_paid=0.0, funding_paid=0.0, buy_and_hold_return=None)
    assert set(res) == EXPECTED_KEYS
    json.dumps(res, allow_nan=False)
    assert res["total_return"] == 0.0 and res["cagr"] == pytest.approx(0.0)
    assert res["sharpe"] is None and res["sortino"] is None and res["calmar"] is None
    assert res["annual_volatility"] == 0.0
    assert res["max_drawdown"] == 0.0 and res["max_drawdown_duration_s"] == 0.0
    assert res["max_drawdown_peak"] is None and res["max_drawdown_recovered"] is None
    assert res["trades"] == 0 and res["win_rate"] is None and res["profit_factor"] is None
    assert res["expectancy_usdt"] is None and res["avg_trade_duration_s"] is None
    assert res["exposure"] == 0.0
    assert res["buy_and_hold_return"] is None


def test_compute_metrics_infinite_profit_factor_is_none_and_single_sample():
    eq = hourly([500.0])
    trades = make_trades([(0, 0, 5.0, 0.01)])
    res = m.compute_metrics(eq, trades, fees_paid=0.0, funding_paid=0.0, buy_and_hold_return=0.0)
    json.dumps(res, allow_nan=False)
    assert res["profit_factor"] is None and res["gross_loss_usdt"] == 0.0 and res["trades"] == 1
    assert res["cagr"] is None and res["sharpe"] is None
    assert res["exposure"] is None  # zero-length span
    assert res["span_days"] == 0.0


def test_compute_metrics_starting_equity_and_recovery():
    # starting balance 200, equity 100 120 90 110 130: total return 130/200 - 1 = -0.35
    res = m.compute_metrics(
        hourly([100, 120, 90, 110, 130]),
        None,
        fees_paid=0,
        funding_paid=0,
        buy_and_hold_return=0.0,
        starting_equity=200.0,
    )
    assert res["starting_equity"] == 200.0
    assert res["total_return"] == pytest.approx(-0.35)
    assert res["max_drawdown"] == pytest.approx(0.25)
    assert res["max_drawdown_recovered"] is True
    assert res["max_drawdown_duration_s"] == 3 * 3600.0


def test_compute_metrics_wiped_out_account_does_not_crash():
    eq = pd.Series([100.0, 0.0, 0.0], index=pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC"))
    res = m.compute_metrics(eq, None, fees_paid=1.0, funding_paid=0.0, buy_and_hold_return=0.0)
    json.dumps(res, allow_nan=False)
    assert res["total_return"] == -1.0 and res["cagr"] == -1.0 and res["max_drawdown"] == 1.0
    assert res["sharpe"] is None and res["annual_volatility"] is None


# ----------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "equity, message",
    [
        (pd.Series([], dtype="float64", index=pd.DatetimeIndex([], tz="UTC")), "equity: is empty"),
        (hourly([100.0, float("nan"), 101.0]), "equity: contains NaN"),
        (hourly([100.0, float("inf")]), "equity: contains infinite"),
        (pd.Series([1.0, 2.0], index=[T0 + H, T0]), "equity: index must be strictly increasing"),
        (pd.Series([1.0, 2.0], index=[T0, T0]), "equity: index must be strictly increasing"),
        (
            pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2, freq="h")),
            "equity: index must be timezone",
        ),
        (pd.Series([1.0, 2.0]), "equity: index must be a DatetimeIndex"),
        (hourly([0.0, 1.0]), "equity: first value must be > 0"),
        ([1.0, 2.0], "equity: expected a pandas Series"),
    ],
)
def test_equity_validation(equity, message):
    for fn in (m.max_drawdown, m.daily_returns, m.cagr, m.total_return, m.drawdown_series):
        with pytest.raises(ValueError, match=f"^{message}"):
            fn(equity)
    with pytest.raises(ValueError, match=f"^{message}"):
        m.compute_metrics(equity, None, fees_paid=0, funding_paid=0, buy_and_hold_return=0)


def test_returns_validation():
    with pytest.raises(ValueError, match="^returns: is empty"):
        m.sharpe_ratio([])
    with pytest.raises(ValueError, match="^returns: contains NaN"):
        m.sortino_ratio([0.1, np.nan])
    with pytest.raises(ValueError, match="^returns: contains infinite"):
        m.annualised_volatility([0.1, np.inf])
    with pytest.raises(ValueError, match="^periods_per_year"):
        m.sharpe_ratio([0.1, 0.2], periods_per_year=0)
    with pytest.raises(ValueError, match="^risk_free"):
        m.sharpe_ratio([0.1, 0.2], risk_free=float("nan"))


def test_trades_validation():
    good = make_trades([(0, 1, 1.0, 0.01)])
    with pytest.raises(ValueError, match=r"^trades: missing columns \['pnl'\]"):
        m.trade_stats(good.drop(columns=["pnl"]))
    with pytest.raises(ValueError, match="^trades.pnl: contains NaN"):
        m.trade_stats(good.assign(pnl=[np.nan]))
    with pytest.raises(ValueError, match="^trades.return_frac"):
        m.trade_stats(good.assign(return_frac=[np.inf]))
    with pytest.raises(ValueError, match="^trades.exit_time: timestamps must be timezone-aware"):
        m.trade_stats(good.assign(exit_time=[pd.Timestamp("2021-01-01 02:00")]))
    with pytest.raises(ValueError, match="^trades: exit_time before entry_time"):
        m.trade_stats(good.assign(exit_time=[T0 - H]))
    with pytest.raises(ValueError, match="^trades: expected a pandas DataFrame"):
        m.trade_stats([1, 2])
    with pytest.raises(ValueError, match="^trades: missing"):
        m.compute_metrics(
            hourly([1.0, 2.0]),
            good.drop(columns=["exit_time"]),
            fees_paid=0,
            funding_paid=0,
            buy_and_hold_return=0,
        )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"fees_paid": float("nan")}, "fees_paid"),
        ({"fees_paid": -1.0}, "fees_paid"),
        ({"funding_paid": float("inf")}, "funding_paid"),
        ({"buy_and_hold_return": float("nan")}, "buy_and_hold_return"),
        ({"starting_equity": 0.0}, "starting_equity"),
        ({"risk_free": "x"}, "risk_free"),
    ],
)
def test_compute_metrics_argument_validation(kwargs, name):
    args = {"fees_paid": 0.0, "funding_paid": 0.0, "buy_and_hold_return": 0.0} | kwargs
    with pytest.raises(ValueError, match=f"^{name}: "):
        m.compute_metrics(hourly([1.0, 2.0]), None, **args)


def test_exposure_bound_validation():
    with pytest.raises(ValueError, match="^start: "):
        m.exposure(None, pd.Timestamp("2021-01-01"), T0)
    with pytest.raises(ValueError, match="^end: "):
        m.exposure(None, T0 + H, T0)


def test_json_safe():
    assert m.json_safe(np.float64("nan")) is None
    assert m.json_safe(-math.inf) is None
    assert m.json_safe(np.int64(3)) == 3 and isinstance(m.json_safe(np.int64(3)), int)
    assert m.json_safe(pd.Timedelta(2, "min")) == 120.0
    assert m.json_safe(pd.Timestamp("2024-01-01 02:00", tz="Etc/GMT-2")) == "2024-01-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="^value: "):
        m.json_safe([1])


# ------------------------------------------------------------------ issue 21: under water, concurrency, leverage


def test_longest_under_water_differs_from_the_deepest_drawdown() -> None:
    # episode A: t1 (120) -> t3 (120 again): 2 h, depth 25 % (the deepest);
    # episode B: t3 (120) -> never back (last sample t9): 6 h, depth only 5 %
    eq = hourly([100, 120, 90, 120, 114, 115, 116, 117, 118, 119])
    assert m.max_drawdown(eq).duration == 2 * H
    assert m.longest_underwater(eq) == 6 * H
    out = m.compute_metrics(eq, None, fees_paid=0.0, funding_paid=0.0, buy_and_hold_return=None)
    assert out["max_drawdown_duration_s"] == 6 * 3600.0
    assert out["deepest_drawdown_duration_s"] == 2 * 3600.0
    assert m.longest_underwater(hourly([1, 2, 3])) == pd.Timedelta(0)
    # a dip right at the start is measured from the first sample (the first peak)
    assert m.longest_underwater(hourly([100, 99, 98, 101])) == 3 * H


def test_max_concurrent_positions_by_hand() -> None:
    # [0,5) [1,3) [2,4) [5,6): three open at 2 h; the one closing at 5 and the one opening at 5 do not overlap
    t = make_trades([(0, 5, 1, 0.01), (1, 3, 1, 0.01), (2, 4, -1, -0.01), (5, 6, 1, 0.01)])
    assert m.max_concurrent_positions(t) == 3
    assert m.max_concurrent_positions(None) == 0
    assert m.max_concurrent_positions(make_trades([(0, 1, 1, 0.01), (1, 2, 1, 0.01)])) == 1


def test_leverage_stats() -> None:
    lev = pd.Series([0.0, 0.5, 2.0, np.nan, 1.5])
    assert m.leverage_stats(lev) == (pytest.approx(1.0), 2.0)  # NaN (equity <= 0) left out
    assert m.leverage_stats(None) == (None, None)
    eq = hourly([100, 101, 102, 103, 104])
    out = m.compute_metrics(eq, None, fees_paid=0.0, funding_paid=0.0, buy_and_hold_return=None,
                            leverage=pd.Series([0.0, 0.5, 2.0, 1.5, 1.0], index=eq.index))
    assert (out["avg_leverage"], out["max_leverage"], out["max_concurrent_positions"]) == (1.0, 2.0, 0)
