"""Pure formulas of nautilus_app/risk (limits, stops, borrowing), checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nautilus_app.risk.borrowing import borrowed_usdt, hourly_interest
from nautilus_app.risk.config import LimitsConfig, StopsConfig
from nautilus_app.risk.limits import (
    DAY_NS,
    DrawdownState,
    cap_quantity,
    correlated_exposure,
    max_entry_for_exposure,
)
from nautilus_app.risk.stops import initial_stop, round_tick, take_profit, trailing_trigger


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
    lim = LimitsConfig(max_position_notional_usdt=10_000, max_leverage=2.0, max_heat=0.02)
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
