"""config._check split along its seams (issue 22): each part of the run-config validation is a small
function of the decoded config and a ``fail(key, value, expected)`` callback, testable on its own; venue
models are built from the (plain-data) venue config by nautilus_app/venue/models.py."""

from __future__ import annotations

from typing import Any, NoReturn

import msgspec
import pytest

from nautilus_app import config as C
from nautilus_app.venue import models


class Failed(Exception):
    pass


def fail(key: str, value: Any, expected: str) -> NoReturn:
    raise Failed(key, value, expected)


def venue(**kw: Any) -> C.VenueConfig:
    raw = {"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["1000 USDT"]} | kw
    return msgspec.convert(raw, C.VenueConfig)


def key_of(check, *args: Any) -> str | None:
    try:
        check(*args, fail)
    except Failed as e:
        return e.args[0]
    return None


def test_balances() -> None:
    assert key_of(C.check_balances, 0, venue()) is None
    assert key_of(C.check_balances, 2, venue(starting_balances=[])) == "venues[2].starting_balances"
    assert key_of(C.check_balances, 0, venue(starting_balances=["1000 USDT", "-5 BTC"])) == "venues[0].starting_balances[1]"
    assert key_of(C.check_balances, 0, venue(starting_balances=["1e14 USDT"])) == "venues[0].starting_balances[0]"


def test_costs() -> None:
    assert key_of(C.check_costs, 0, venue()) is None
    assert key_of(C.check_costs, 0, venue(name="OKX")) == "venues[0].maker_fee"
    assert key_of(C.check_costs, 0, venue(name="OKX", maker_fee=0.0, taker_fee=0.0)) is None
    assert key_of(C.check_costs, 1, venue(fee_tier="VIP99")) == "venues[1].fee_tier"


def test_account_and_leverage() -> None:
    assert key_of(C.check_account, 0, venue(account_type="CASH", default_leverage=2.0)) == "venues[0].leverages"
    assert key_of(C.check_account, 0, venue(account_type="CASH", funding_rate=0.0001)) == "venues[0].brackets/funding_rate"
    assert key_of(C.check_leverage, 0, venue(default_leverage=30.0)) == "venues[0].default_leverage"
    assert key_of(C.check_leverage, 0, venue(max_leverage=50.0, default_leverage=30.0)) is None
    assert key_of(C.check_leverage, 0, venue(leverages={"X.BINANCE_USDM": 21.0})) == "venues[0].leverages.X.BINANCE_USDM"


def test_bracket_tables() -> None:
    good = {"ETHUSDT-PERP.BINANCE_USDM": [{"effective_from": "2023-01-01", "tiers": [[10000, 0.005, 20],
                                                                                    [100000, 0.01, 10]]}]}
    assert key_of(C.check_bracket_tables, 0, venue(brackets=good)) is None
    bad = {"ETHUSDT-PERP.BINANCE_USDM": [{"effective_from": "not a date", "tiers": [[10000, 0.005, 20]]}]}
    assert key_of(C.check_bracket_tables, 0, venue(brackets=bad)) == "venues[0].brackets.ETHUSDT-PERP.BINANCE_USDM[0]"


def test_dates_and_name() -> None:
    def cfg(**kw: Any) -> C.BacktestConfig:
        raw = {"name": "t", "bar_types": [], "venues": [], "strategies": []} | kw
        return msgspec.convert(raw, C.BacktestConfig)

    assert key_of(C.check_dates, cfg(start="2025-06-01", end="2025-07-01")) is None
    assert key_of(C.check_dates, cfg(start="2025-07-01", end="2025-06-01")) == "end"
    assert key_of(C.check_dates, cfg(start="1960-01-01")) == "start"
    assert key_of(C.check_name, cfg(name="../x")) == "name"
    assert key_of(C.check_required, cfg()) == "bar_types"


def test_venue_models_are_built_from_plain_data() -> None:
    v = venue(fee_tier="VIP3", slippage="fixed", slippage_bps=3.0, leverages={"A.BINANCE_USDM": 5.0})
    assert models.venue_fees(v) == v.fees()
    assert models.venue_fees(venue()) == models.DEFAULT_FEES["BINANCE_USDM"] == C.DEFAULT_FEES["BINANCE_USDM"]
    assert models.venue_fees(venue(maker_fee=0.0001)) == (0.0001, 0.0005)
    sm = models.slippage_model(v)
    assert (sm.kind, sm.base_bps, sm.impact_bps, sm.max_bps) == ("fixed", 3.0, 0.0, 100.0)
    assert models.leverage_for(v, "A.BINANCE_USDM") == 5.0 and models.leverage_for(v, "B.BINANCE_USDM") == 1.0
    table = {"ETHUSDT-PERP.BINANCE_USDM": [{"effective_from": "2023-01-01", "tiers": [[10000, 0.005, 20]]}]}
    over = models.bracket_overrides(venue(brackets=table))
    assert list(over) == ["ETHUSDT"] and over["ETHUSDT"][0][0] == "2023-01-01"
    with pytest.raises(AttributeError):  # the config is frozen data
        v.taker_fee = 0.5  # type: ignore[misc]
    with pytest.raises(msgspec.ValidationError, match="taker_fee"):  # and its ranges are msgspec constraints
        msgspec.convert({**msgspec.to_builtins(v), "taker_fee": 5.0}, C.VenueConfig)
