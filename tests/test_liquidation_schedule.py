"""Cross-margin liquidation found by the scheduled scan (issue 23, goal 3).

The liquidation actor no longer runs Binance's cross liquidation check on every bar: between fills
and funding settlements it scans the bar arrays for the first bar at which the account's equity can
reach its maintenance margin, and runs the check only there. A cross account with a BTC and an ETH
position (equity a function of both prices) must be liquidated on exactly the bar and at exactly the
price the per-bar check gives, and at the bar/price computed here with pandas from the raw Binance
files and Binance's formula written out by hand.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app.backtest import run_backtest
from nautilus_app.config import parse_config
from nautilus_app.venue.liquidation import LiquidationActor
from tests.test_backtest_e2e import read_kline_zip

MIRROR = shared_data_dir() / "binance-vision"
BTC, ETH = "BTCUSDT-PERP.BINANCE_USDM", "ETHUSDT-PERP.BINANCE_USDM"
BTC_BAR, ETH_BAR = f"{BTC}-1-MINUTE-LAST-EXTERNAL", f"{ETH}-1-MINUTE-LAST-EXTERNAL"
START, END = "2023-07-23", "2023-07-31"
#: Binance's July 2023 USDT-M brackets (notional cap, mmr); cum by the continuity rule
TABLES = {
    "BTCUSDT": [(5e4, 0.004), (2.5e5, 0.005), (3e6, 0.01), (1.5e7, 0.025)],
    "ETHUSDT": [(1e5, 0.005), (2.5e5, 0.0065), (2e6, 0.01), (1e7, 0.02)],
}
TICK = {"BTCUSDT": 0.1, "ETHUSDT": 0.01}
_ON_START = LiquidationActor.on_start


def _brackets(symbol: str) -> list[tuple[float, float, float, float]]:
    out, cum, floor, prev = [], 0.0, 0.0, None
    for cap, mmr in TABLES[symbol]:
        if prev is not None:
            cum += floor * (mmr - prev)
        out.append((floor, cap, mmr, cum))
        floor, prev = cap, mmr
    return out


def _mm(symbol: str, notional: float) -> float:
    for _floor, cap, mmr, cum in _brackets(symbol):
        if abs(notional) < cap:
            return abs(notional) * mmr - cum
    raise AssertionError("notional beyond the test's table")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("liq_schedule_catalog")
    import_binance_vision(root, base_url=str(MIRROR), market="um", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2023-07-01", end="2023-07-31", kinds=("bars", "funding"))
    return root


def _config(catalog: Path) -> dict:
    return {
        "name": "cross_two", "catalog": str(catalog), "start": START, "end": END, "bar_types": [BTC_BAR, ETH_BAR],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "costs": "fees_only",
                    "starting_balances": ["10000 USDT"], "leverages": {BTC: 50, ETH: 50}, "margin_mode": "cross",
                    "liquidation_fee": 0.0, "max_leverage": 50}],
        # four positions, two per instrument (several strategies on one instrument are separate positions)
        "strategies": [
            {"name": "buy_and_hold", "params": {"instrument_id": iid, "bar_type": bt, "position_fraction": 10.0}}
            for iid, bt in ((BTC, BTC_BAR), (ETH, ETH_BAR), (BTC, BTC_BAR), (ETH, ETH_BAR))
        ],
    }


def _run(catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, schedule: bool) -> tuple[Path, list]:
    actors: list[LiquidationActor] = []
    original = _ON_START

    def on_start(self: LiquidationActor) -> None:
        actors.append(self)
        original(self)

    monkeypatch.setattr(LiquidationActor, "on_start", on_start)
    monkeypatch.setattr(LiquidationActor, "schedule", schedule)
    monkeypatch.setattr(LiquidationActor, "verify", schedule)
    out = run_backtest(parse_config(_config(catalog)), results_root=tmp_path / ("sched" if schedule else "per_bar"),
                       progress=False)
    return out.results_path, actors


def _expected(fills: pd.DataFrame) -> tuple[pd.Timestamp, str, float, float]:
    """First liquidation by the per-bar rule, from the raw klines and funding files."""
    raw, rates = {}, {}
    for sym in ("BTCUSDT", "ETHUSDT"):
        k = read_kline_zip(MIRROR / f"data/futures/um/monthly/klines/{sym}/1m/{sym}-1m-2023-07.zip")
        raw[sym] = k[(k.index > pd.Timestamp(START, tz="UTC")) & (k.index <= pd.Timestamp(END, tz="UTC"))]
        fz = MIRROR / f"data/futures/um/monthly/fundingRate/{sym}/{sym}-fundingRate-2023-07.zip"
        with zipfile.ZipFile(fz) as zf, zf.open(zf.namelist()[0]) as fh:
            r = pd.read_csv(fh)
        r.index = pd.to_datetime((r["calc_time"] // 3_600_000) * 3_600_000, unit="ms", utc=True)  # on the 8 h grid
        rates[sym] = r["last_funding_rate"]
    assert raw["BTCUSDT"].index.equals(raw["ETHUSDT"].index)  # one shared timeline
    idx = raw["BTCUSDT"].index
    iid = {"BTCUSDT": BTC, "ETHUSDT": ETH}
    sym_of = {v: k for k, v in iid.items()}
    pos = []  # (symbol, qty, average entry, first fill time) per strategy
    for _, f in fills[fills["order_side"] == "BUY"].groupby("strategy_id"):
        q = float(f["last_qty"].sum())
        pos.append((sym_of[f["instrument_id"].iloc[0]], q, float((f["last_qty"] * f["last_px"]).sum()) / q,
                    pd.Timestamp(f["ts_event"].iloc[0])))
    assert len(pos) == 4
    fees = sum(0.0005 * q * e for _, q, e, _ in pos)  # taker fees of the entries
    # funding settled before the bar's check (Nautilus processes a settlement after the bars of its
    # minute): -qty x close x rate (no mark prices in this catalog)
    settlements = []
    for sym, q, _, t_in in pos:
        for ft, rate in rates[sym].items():
            if t_in < ft <= idx[-1]:
                settlements.append((ft, -q * raw[sym].loc[ft, "close"] * rate))
    settlements.sort()
    for i in range(len(idx) - 1):
        t = idx[i]
        wb = 10_000 - fees + sum(x for ft, x in settlements if ft < t)
        for sym in ("BTCUSDT", "ETHUSDT"):  # the run's bar order at one time
            hits = []
            for j, (sym1, q1, e1, _) in enumerate(pos):
                if sym1 != sym:
                    continue
                other_mm = other_upnl = 0.0
                for k, (sym2, q2, e2, _) in enumerate(pos):
                    if k != j:
                        c2 = raw[sym2]["close"].iloc[i]
                        other_mm += _mm(sym2, q2 * c2)
                        other_upnl += (c2 - e2) * q2
                lp = None
                for floor, cap, mmr, cum in _brackets(sym):  # the bracket holding LP x qty (Binance's rule)
                    x = (wb - other_mm + other_upnl + cum - q1 * e1) / (q1 * mmr - q1)
                    if floor <= x * q1 < cap:
                        lp = x
                        break
                assert lp is not None
                price = math.ceil(round(lp / TICK[sym], 6)) * TICK[sym]
                if raw[sym]["close"].iloc[i] <= lp:
                    hits.append((lp, t, iid[sym], price, q1))
                elif raw[sym]["low"].iloc[i + 1] <= lp:
                    hits.append((lp, idx[i + 1], iid[sym], price, q1))
            if hits:  # one cross liquidation at a time: the highest liquidation price of the longs
                return max(hits)[1:]
    raise AssertionError("no liquidation in the window")


def test_cross_two_instruments_scheduled_equals_per_bar_and_binance_formula(
        catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sched_path, sched_actors = _run(catalog, tmp_path, monkeypatch, schedule=True)
    ref_path, ref_actors = _run(catalog, tmp_path, monkeypatch, schedule=False)
    (actor,), (ref,) = sched_actors, ref_actors
    assert actor.missed == []  # verify mode: the per-bar check never acted on a bar the schedule skipped
    assert ref.checks == ref.bars_seen
    assert actor.checks < ref.checks / 20  # the per-bar check ran only around events and the liquidation
    # every result file, but for the ids that differ between two identical runs (UUIDs, venue ids of
    # orders accepted at one time)
    ids = {"event_id", "venue_order_id", "trade_id", "venue_order_ids", "trade_ids", "last_trade_id", "init_id"}
    for name in ("liquidations.parquet", "account.parquet", "positions.parquet", "fills.parquet"):
        a, b = pd.read_parquet(sched_path / name), pd.read_parquet(ref_path / name)
        pd.testing.assert_frame_equal(a.drop(columns=ids & set(a.columns)), b.drop(columns=ids & set(b.columns)))
    liq = pd.read_parquet(sched_path / "liquidations.parquet").sort_values("ts")
    fills = pd.read_parquet(sched_path / "fills.parquet")
    ts, iid, price, qty = _expected(fills)
    assert len(liq) >= 2  # later liquidations come from schedules rescanned after the first one
    first = liq.iloc[0]
    assert first["margin_mode"] == "cross"
    assert (pd.Timestamp(first["ts"]), first["instrument_id"]) == (ts, iid)
    assert first["liquidation_price"] == pytest.approx(price, abs=1e-9)
    assert first["quantity"] == pytest.approx(qty)
