"""Pure formulas of strategies/risk (limits, stops, borrowing), checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.risk.borrowing import borrowed_usdt, hourly_interest
from strategies.risk.config import LimitsConfig, StopsConfig
from strategies.risk.limits import (
    DAY_NS,
    DrawdownState,
    cap_quantity,
    correlated_exposure,
    max_entry_for_exposure,
)
from strategies.risk.stops import initial_stop, round_tick, take_profit, trailing_trigger


def test_exposure_cap_solves_the_quadratic() -> None:
    corr = np.array([[1.0, 0.5], [0.5, 1.0]])
    w = np.array([1.0, 0.0])
    # exposure^2 = 1 + 2 x 0.5 x 1 x y + y^2 = 4  ->  y = -0.5 + sqrt(0.25 + 3) = 1.3028
    y = -0.5 + math.sqrt(0.25 + 3)
    x = max_entry_for_exposure(w, corr, 1, 0.01, 1000.0, 2.0)  # unit 0.01 of equity per base unit
    assert x == pytest.approx(y / 0.01)
    assert correlated_exposure(np.array([1.0, y]), corr) == pytest.approx(2.0)
    assert max_entry_for_exposure(w, corr, 1, 0.01, 10.0, 2.0) == 10.0  # fits: unchanged
    assert max_entry_for_exposure(np.array([3.0, 0.0]), corr, 1, 0.01, 10.0, 2.0) == 0.0  # already above, adds
    # above the cap, a short in the second instrument lowers the exposure: allowed up to the exposure
    # minimum x = -b / 2a = (2 x 0.01 x 1.5) / (2 x 0.0001) = 150 (the cap of 2 cannot be reached)
    assert max_entry_for_exposure(np.array([3.0, 0.0]), corr, 1, -0.01, 10.0, 2.0) == 10.0
    assert max_entry_for_exposure(np.array([3.0, 0.0]), corr, 1, -0.01, 1000.0, 2.0) == pytest.approx(150.0)


def test_notional_leverage_heat_caps() -> None:
    lim = LimitsConfig(max_position_notional_usdt=10_000, max_leverage=2.0, max_heat=0.02, max_position_fraction=None)
    # notional: (10,000 / 100) - 20 held = 80; leverage: 2 x 5,000 / 100 - 20 = 80; heat: (100 - 40) / 2 = 30
    qty, why = cap_quantity(lim, 500.0, price=100.0, equity=5_000.0, existing_qty=20.0, stop_distance=2.0,
                            open_risk=40.0)
    assert qty == pytest.approx(30.0)
    assert [r for r, _ in why] == ["max_position_notional", "max_heat"]  # leverage room 80 was not binding


def test_drawdown_state_pause_half_size_reset_and_daily_limit() -> None:
    lim = LimitsConfig(drawdown_pause=0.15, drawdown_half_size=0.10, drawdown_pause_bars=3, daily_loss_limit=0.05)
    st = DrawdownState()
    t0 = 10 * DAY_NS
    assert st.update(lim, 0, t0 + 1, 100.0) == []
    assert [a for a, _ in st.update(lim, 1, t0 + 2, 120.0)] == []
    # 120 -> 107.9: -10.1 % from the peak, and -7.9 % from the day's first equity 100? no: +7.9 %
    assert [a for a, _ in st.update(lim, 2, t0 + 3, 107.9)] == ["half_size_start"]
    assert st.half and st.blocked(t0 + 3) is None
    ev = [a for a, _ in st.update(lim, 3, t0 + 4, 101.0)]  # -15.8 %
    assert ev == ["pause_start"] and st.blocked(t0 + 4) == "drawdown_pause"
    assert st.update(lim, 4, t0 + 5, 94.0)[0][0] == "daily_limit_hit"  # 94 / 100 - 1 = -6 %
    ev = [a for a, _ in st.update(lim, 6, t0 + 6, 94.0)]  # pause of 3 bars ends at bar 6, peak reset to 94
    assert ev == ["pause_end", "half_size_end"] and st.peak == 94.0
    assert st.blocked(t0 + 6) == "daily_loss_limit"
    assert st.blocked(t0 + DAY_NS) is None  # next UTC day


def test_stop_prices() -> None:
    cfg = StopsConfig(stop_loss_pct=0.01, trailing_pct=0.005, stop_loss_atr=2.0, take_profit_pct=0.02)
    # long at 100: candidates 99.0, 99.5, 100 - 2 x 0.4 = 99.2 -> the tightest 99.5
    assert initial_stop(cfg, True, 100.0, 0.4) == pytest.approx(99.5)
    assert initial_stop(cfg, False, 100.0, 0.4) == pytest.approx(100.5)
    assert take_profit(cfg, True, 100.0) == pytest.approx(102.0)
    assert take_profit(cfg, False, 100.0) == pytest.approx(98.0)
    assert trailing_trigger(cfg, True, 110.0, None) == pytest.approx(109.45)
    assert round_tick(99.456, 0.01, up=False) == pytest.approx(99.45)
    assert round_tick(99.451, 0.01, up=True) == pytest.approx(99.46)
    assert round_tick(99.45, 0.01, up=True) == pytest.approx(99.45)  # exact tick stays


def test_borrowed_amounts() -> None:
    assert borrowed_usdt(2.0, 30_000.0, 40_000.0) == 20_000.0  # long 60k notional on 40k equity
    assert borrowed_usdt(1.0, 30_000.0, 40_000.0) == 0.0  # fully paid
    assert borrowed_usdt(-1.5, 30_000.0, 40_000.0) == 45_000.0  # short: the base sold
    assert hourly_interest(-1.5, 30_000.0, 40_000.0, 0.0001, 0.0002, hours=2) == (45_000.0, 0.0002, pytest.approx(18.0))


def test_bankroll_defaults_are_framework_prd_bankrollconfig() -> None:
    """framework-prd.md BankrollConfig: risk_per_trade 2 %, half Kelly, max position 10 %, portfolio risk
    6 %, daily loss 2 %, drawdown pause 15 % (half size from 10 %: drawdown_scaling_factor), leverage 20."""
    from strategies.risk import parse_risk
    from strategies.risk.config import SizingConfig
    from strategies.risk.sizing import target_notional

    cfg = parse_risk({})
    assert cfg is not None
    lim, siz = cfg.limits, cfg.sizing
    assert (siz.risk_fraction, siz.kelly_fraction, siz.kelly_formula) == (0.02, 0.5, "win_loss_ratio")
    assert (lim.max_position_fraction, lim.max_heat, lim.daily_loss_limit) == (0.10, 0.06, 0.02)
    assert (lim.drawdown_pause, lim.drawdown_half_size, lim.drawdown_pause_bars, lim.max_leverage) == (
        0.15, 0.10, None, 20.0)
    off = parse_risk({"limits": {"max_heat": 0, "daily_loss_limit": 0, "max_position_fraction": 0}})
    assert off is not None and (off.limits.max_heat, off.limits.daily_loss_limit, off.limits.max_position_fraction) == (
        None, None, None)
    # BankrollManager.fixed_fractional_size(entry 100, stop 98) on 10,000 equity:
    # dollar risk 200 / 2 per unit = 100 units, max position 10,000 x 0.10 / 100 = 10 units -> 10
    ff = SizingConfig(method="fixed_fractional")
    notional, _ = target_notional(ff, equity=10_000, price=100.0, default_fraction=0.2, stop_distance=2.0)
    assert notional == pytest.approx(10_000.0)  # 100 units before the limits
    qty, why = cap_quantity(lim, notional / 100.0, price=100.0, equity=10_000.0, existing_qty=0.0,
                            stop_distance=2.0, open_risk=0.0)
    assert qty == pytest.approx(10.0) and [r for r, _ in why] == ["max_position_fraction"]
    # no stop: the whole notional is at risk, so the 6 % portfolio risk binds before the 10 % position cap
    qty, why = cap_quantity(lim, 50.0, price=100.0, equity=10_000.0, existing_qty=0.0, stop_distance=None,
                            open_risk=0.0)
    assert qty == pytest.approx(6.0) and [r for r, _ in why] == ["max_position_fraction", "max_heat"]
    # 2 units already held (200 USDT at risk without a stop): room 10 - 2 = 8 by position, (600 - 200) / 100 = 4
    qty, _ = cap_quantity(lim, 50.0, price=100.0, equity=10_000.0, existing_qty=2.0, stop_distance=None,
                          open_risk=200.0)
    assert qty == pytest.approx(4.0)


def test_drawdown_pause_lasts_until_the_drawdown_is_back_under_the_threshold() -> None:
    """framework-prd.md: is_trading_allowed() = current_drawdown < max_drawdown_pause (peak kept)."""
    lim = LimitsConfig()  # spec defaults: pause 15 %, half size 10 %, no bar count
    st = DrawdownState()
    t0 = 10 * DAY_NS
    seq = [
        (100.0, []),
        (120.0, []),                              # new peak
        (101.5, ["pause_start", "half_size_start"]),  # 101.5 / 120 - 1 = -15.4 %
        (101.0, []),                              # still paused, for as many bars as it takes
        (102.5, ["pause_end"]),                   # -14.6 %: back under 15 %, the peak stays 120
        (101.9, ["pause_start"]),                 # -15.1 % again
        (108.1, ["pause_end", "half_size_end"]),  # -9.9 %
        (125.0, []),                              # new peak
    ]
    paused = []
    for i, (eq, expected) in enumerate(seq):
        ev = [a for a, _ in st.update(lim, i, t0 + i, eq) if a not in ("daily_limit_hit",)]
        assert ev == expected, (i, eq, ev)
        paused.append(st.paused)
    assert paused == [False, False, True, True, False, True, False, False]
    assert st.peak == 125.0
    # the earlier rule stays available: a pause of n bars, then the peak is reset
    lim_bars = LimitsConfig(drawdown_pause_bars=2, daily_loss_limit=None)
    st = DrawdownState()
    for i, eq in enumerate([100.0, 80.0, 80.0]):
        st.update(lim_bars, i, t0 + i, eq)
    assert st.paused
    ev = [a for a, _ in st.update(lim_bars, 3, t0 + 3, 80.0)]
    assert "pause_end" in ev and st.peak == 80.0 and not st.paused
