"""The results tables built from the engine's cache (nautilus_app/results/collect.py) equal Nautilus's reports
normalised as before (``generate_*_report`` + ``normalise_report``), value by value, on real runs:
market, stop-market (liquidation) and reduce-only orders, funding adjustments, snapshots of NETTING
positions, CASH and MARGIN accounts, several strategies and a latency model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model import Venue

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app import backtest as bt
from nautilus_app.config import parse_config
from nautilus_app.results.collect import (
    _account_columns,
    _order_columns,
    legacy_reports,
    run_reports,
)

MIRROR = shared_data_dir() / "binance-vision"
ETH_BAR = "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
ETH = "ETHUSDT-PERP.BINANCE_USDM"
SPOT_BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reports_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("ETHUSDT",), interval="1m",
                          start="2023-07-01", end="2023-07-31", kinds=("klines", "fundingRate"))
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2025-06-01", end="2025-06-15", kinds=("klines",))
    return root


def assert_same(name: str, old: pd.DataFrame, new: pd.DataFrame) -> None:
    """Same columns in the same order, same dtypes, and every value the same (None vs NaN told apart)."""
    assert list(old.columns) == list(new.columns), name
    assert len(old) == len(new), name
    for c in old.columns:
        assert old[c].dtype == new[c].dtype, (name, c, old[c].dtype, new[c].dtype)
        for i, (u, v) in enumerate(zip(old[c].tolist(), new[c].tolist(), strict=True)):
            same = u is v or (type(u) is type(v) and (u == v or (isinstance(u, float) and np.isnan(u) and np.isnan(v))))
            assert same, f"{name}.{c}[{i}]: {u!r} != {v!r}"
    pd.testing.assert_frame_equal(old, new, check_exact=True)


def _run(raw: dict) -> tuple:
    cfg = parse_config(raw)
    plan = bt.plan_data(cfg)
    data = bt.load_data(cfg, plan)
    engine, _sims, _strategies = bt.build_engine(cfg, plan, data)
    try:
        bt.run_engine(engine, data)  # the data in time windows, as run_backtest feeds it
        venues = [v.name for v in cfg.venues]
        # the tables' attribute-read paths, not their to_dict() fallbacks, are the ones compared below
        assert _order_columns(engine.cache.orders()) is not None
        for v in venues:
            assert _account_columns(list(engine.cache.account_for_venue(Venue(v)).events)) is not None
        return legacy_reports(engine, venues), run_reports(engine, venues)
    finally:
        engine.dispose()


CASES = {
    # isolated 20x long/short EMA cross: liquidation stop-market orders, funding, many snapshots
    "perp_isolated": {
        "name": "r1", "start": "2023-07-05", "end": "2023-07-25", "bar_types": [ETH_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"],
                    "leverages": {ETH: 20}, "margin_mode": "isolated"}],
        "strategies": [{"name": "ema_cross", "params": {"instrument_id": ETH, "bar_type": ETH_BAR, "allow_short": True,
                                                        "position_fraction": 5.0, "fast_period": 5,
                                                        "slow_period": 30}}],
    },
    # the isolated 20x buy-and-hold of tests/test_venue_e2e.py: liquidated by a stop-market order
    "perp_liquidation": {
        "name": "r4", "start": "2023-07-14", "end": "2023-07-15", "bar_types": [ETH_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "costs": "fees_only",
                    "starting_balances": ["100000 USDT"], "leverages": {ETH: 20}, "margin_mode": "isolated",
                    "liquidation_fee": 0.0125}],
        "strategies": [{"name": "buy_and_hold", "params": {"instrument_id": ETH, "bar_type": ETH_BAR,
                                                           "position_fraction": 1.0}}],
    },
    # cross margin, two strategies, latency
    "perp_cross_latency": {
        "name": "r2", "start": "2023-07-10", "end": "2023-07-14", "bar_types": [ETH_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"],
                    "margin_mode": "cross", "latency": {"mean_ms": 200, "std_ms": 50}}],
        "strategies": [
            {"name": "mean_reversion", "params": {"instrument_id": ETH, "bar_type": ETH_BAR, "allow_short": True}},
            {"name": "trend_following", "params": {"instrument_id": ETH, "bar_type": ETH_BAR}},
        ],
    },
    # the risk table's protective orders: reduce-only STOP_MARKET stops and trailing stops, LIMIT take-profits,
    # many of them canceled unfilled (orders without fills or commissions)
    "perp_risk_stops": {
        "name": "r6", "start": "2023-07-10", "end": "2023-07-14", "bar_types": [ETH_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"],
                    "margin_mode": "cross"}],
        "strategies": [{"name": "mean_reversion", "params": {
            "instrument_id": ETH, "bar_type": ETH_BAR, "allow_short": True,
            "risk": {"stops": {"stop_loss_pct": 0.01, "take_profit_pct": 0.01, "trailing_pct": 0.02}}}}],
    },
    # positions left open at the end (close_positions_on_stop = false): live positions not closed
    "open_at_end": {
        "name": "r5", "start": "2023-07-10", "end": "2023-07-12", "bar_types": [ETH_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["10000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": {"instrument_id": ETH, "bar_type": ETH_BAR, "allow_short": True,
                                                        "close_positions_on_stop": False}}],
    },
    # spot CASH account (two balances per state)
    "spot": {
        "name": "r3", "bar_types": [SPOT_BAR],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": SPOT_BAR}}],
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_tables_from_the_cache_equal_nautilus_reports_normalised(case: str, catalog: Path) -> None:
    raw = dict(CASES[case], catalog=str(catalog))
    old, new = _run(raw)
    names = ("orders", "fills", "positions", "funding", "account")
    for name, o, n in zip(names, old, new, strict=True):
        assert_same(f"{case}.{name}", o, n)
    orders, fills, positions, funding, _account = new
    if case == "open_at_end":
        assert positions["ts_closed"].isna().any()
        return
    if case == "perp_risk_stops":
        assert {"MARKET", "STOP_MARKET", "LIMIT"} <= set(orders["type"]) and (orders["status"] == "CANCELED").any()
        return
    if case == "perp_liquidation":
        assert (orders["type"] == "STOP_MARKET").any() and (orders["tags"] == '["LIQUIDATION"]').any()
        return
    assert len(fills) > 50 and len(positions) > 20
    if case == "perp_isolated":
        assert len(funding) > 0


@pytest.mark.parametrize("case", ["perp_cross_latency", "spot"])
def test_tables_from_to_dict_when_the_attributes_do_not_match(case: str, catalog: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Another Nautilus version whose objects' attributes no longer give their to_dict(): the orders and account
    tables are built from the dictionaries, and are still Nautilus's reports normalised."""
    import nautilus_app.results.collect as collect

    monkeypatch.setattr(collect, "_account_columns", lambda states: None)
    monkeypatch.setattr(collect, "_order_columns", lambda orders: None)
    monkeypatch.setitem(globals(), "_order_columns", lambda orders: True)
    monkeypatch.setitem(globals(), "_account_columns", lambda states: True)
    old, new = _run(dict(CASES[case], catalog=str(catalog)))
    for name, o, n in zip(("orders", "fills", "positions", "funding", "account"), old, new, strict=True):
        assert_same(f"{case}.{name}", o, n)


def test_attribute_columns_are_refused_when_they_differ_from_to_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import nautilus_app.results.collect as collect

    class Order:
        def __init__(self, cid: str, qty: int, tags: list[str] | None) -> None:
            self.client_order_id, self.quantity, self.tags = SimpleNamespace(value=cid), qty, tags

        def to_dict(self) -> dict:
            return {"client_order_id": self.client_order_id.value, "quantity": str(self.quantity), "tags": self.tags}

    orders = [Order("O-1", 1, None), Order("O-2", 2, ["X"]), Order("O-3", 3, None)]
    keys, columns = _order_columns(orders)
    assert keys == ["client_order_id", "quantity", "tags"]
    assert columns["quantity"].tolist() == ["1", "2", "3"] and columns["tags"].tolist() == [None, ["X"], None]
    monkeypatch.setitem(collect._ORDER_COLUMNS, "quantity", collect._attr("quantity"))  # 1 != "1"
    assert _order_columns(orders) is None
    monkeypatch.delitem(collect._ORDER_COLUMNS, "quantity")  # a key it cannot read
    assert _order_columns(orders) is None
