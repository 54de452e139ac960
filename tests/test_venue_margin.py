"""Binance brackets and liquidation-price formulas on worked examples (numbers computed by hand here)."""

from __future__ import annotations

import pytest

from core.brackets import MarginError, bracket_for_notional, make_brackets
from core.instruments import brackets_for
from nautilus_app.venue.margin import liquidation_price, maintenance_margin
from nautilus_app.venue.slippage import SlippageModel

BTC = brackets_for("BTCUSDT", "2023-07-14")


def test_btc_brackets_match_binance_maintenance_amounts() -> None:
    # Binance's published BTCUSDT maintenance amounts (cum) for 2023, continuity rule by hand
    assert [b.cum for b in BTC[:5]] == [0.0, 50.0, 1300.0, 46300.0, 421300.0]
    assert bracket_for_notional(BTC, 49_999).mmr == 0.004
    assert bracket_for_notional(BTC, 50_000).mmr == 0.005
    # 100k notional: 100000 x 0.5 % - 50
    assert maintenance_margin(BTC, -100_000) == pytest.approx(450.0)


def test_isolated_long_worked_example() -> None:
    # 1 BTC long at 30,000, 20x isolated: margin 1,500; bracket 1 (mmr 0.4 %, cum 0)
    # LP = (1500 + 0 - 1 x 1 x 30000) / (1 x 0.004 - 1 x 1) = -28500 / -0.996
    lp = liquidation_price(side=1, qty=1.0, entry_price=30_000, wallet_balance=1_500, brackets=BTC)
    assert lp == pytest.approx(28_500 / 0.996, rel=1e-12)
    # at LP: margin + PnL == maintenance
    assert 1_500 + (lp - 30_000) == pytest.approx(lp * 0.004, rel=1e-9)


def test_isolated_short_in_second_bracket() -> None:
    # 3 BTC short at 30,000 (90k notional: bracket 2, mmr 0.5 %, cum 50), 10x: margin 9,000
    # LP = (9000 + 50 + 3 x 30000) / (3 x 0.005 + 3) = 99050 / 3.015
    lp = liquidation_price(side=-1, qty=3.0, entry_price=30_000, wallet_balance=9_000, brackets=BTC)
    assert lp == pytest.approx(99_050 / 3.015, rel=1e-12)
    assert 50_000 <= lp * 3 < 250_000


def test_cross_long_with_another_position() -> None:
    # wallet 10,000; other position: maintenance 120, unrealized PnL -300; 2 BTC long at 25,000
    # (notional 50k at entry; at LP the notional falls into bracket 1: mmr 0.4 %, cum 0)
    # LP = (10000 - 120 - 300 + 0 - 2 x 25000) / (2 x 0.004 - 2) = -40420 / -1.992
    lp = liquidation_price(side=1, qty=2.0, entry_price=25_000, wallet_balance=10_000, brackets=BTC,
                           other_maintenance=120.0, other_unrealized_pnl=-300.0)
    assert lp == pytest.approx(40_420 / 1.992, rel=1e-12)
    # the cross margin rule at LP: equity == total maintenance
    equity = 10_000 - 300 + 2 * (lp - 25_000)
    assert equity == pytest.approx(120 + 2 * lp * 0.004, rel=1e-9)


def test_long_that_cannot_be_liquidated() -> None:
    assert liquidation_price(side=1, qty=1.0, entry_price=100, wallet_balance=1_000, brackets=BTC) == 0.0


def test_bracket_versions_and_validation() -> None:
    old = make_brackets([(1e4, 0.01, 50), (1e6, 0.02, 20)], name="X")
    new = make_brackets([(1e4, 0.02, 25), (1e6, 0.03, 10)], name="X")
    versions = {"XUSDT": [("2020-01-01", old), ("2023-06-01", new)]}
    assert brackets_for("XUSDT", "2023-05-31", versions) == old
    assert brackets_for("XUSDT", "2023-06-01", versions) == new
    assert old[1].cum == pytest.approx(1e4 * 0.01)
    with pytest.raises(MarginError, match="no maintenance-margin brackets"):
        brackets_for("NOPEUSDT")
    with pytest.raises(MarginError, match="notional cap"):
        make_brackets([(1e4, 0.01, 50), (1e3, 0.02, 20)])


def test_slippage_models() -> None:
    fixed = SlippageModel("fixed", base_bps=5)
    assert fixed.price(2000.0, True, 1.0, 100.0, 0.01) == pytest.approx(2001.0)
    assert fixed.price(2000.0, False, 1.0, 100.0, 0.01) == pytest.approx(1999.0)
    vol = SlippageModel("volume", base_bps=1, impact_bps=10, max_bps=50)
    # 1 + 10 x sqrt(25 / 100) = 6 bps
    assert vol.bps(25, 100) == pytest.approx(6.0)
    assert vol.bps(1e9, 1) == 50 and vol.bps(1, 0) == 50
    # rounded against the trader: 2000 x (1 + 6e-4) = 2001.2 -> 2001.2 (on tick), sell 1998.8
    assert vol.price(2000.0, True, 25, 100, 0.1) == pytest.approx(2001.2)
    # 2000.05 x (1 + 1e-4) = 2000.250005: a buy rounds up to 2000.3, a sell down to 1999.8
    assert vol.price(2000.05, True, 0, 100, 0.1) == pytest.approx(2000.3)
    assert vol.price(2000.05, False, 0, 100, 0.1) == pytest.approx(1999.8)
