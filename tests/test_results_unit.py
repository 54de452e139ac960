"""Unit tests of results helpers that the real-data runs rarely reach (an account wiped out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nautilus_app.results import daily_returns_until_wipeout as _daily_returns_until_wipeout


def test_wiped_out_account_gives_minus_100_percent_then_flat() -> None:
    idx = pd.date_range("2025-01-01", periods=5 * 1440, freq="1min", tz="UTC")
    values = np.r_[np.linspace(1000.0, 500.0, 3 * 1440), np.zeros(2 * 1440)]
    returns = _daily_returns_until_wipeout(pd.Series(values, index=idx), 1000.0)
    # day closes by hand: last sample of each UTC day
    closes = [values[1440 * (d + 1) - 1] for d in range(3)]
    assert returns.iloc[0] == pytest.approx(closes[0] / 1000.0 - 1)
    assert returns.iloc[1] == pytest.approx(closes[1] / closes[0] - 1)
    assert returns.iloc[2] == pytest.approx(closes[2] / closes[1] - 1)
    assert returns.iloc[3] == -1.0 and returns.iloc[4] == 0.0
    assert (1 + returns).prod() - 1 == pytest.approx(-1.0)


def _positions(rows: list[dict]) -> pd.DataFrame:
    base = {"commissions": '["1.0 USDT"]', "trade_ids": "[]", "avg_px_close": np.nan, "ts_closed": None}
    return pd.DataFrame([base | r for r in rows])


def test_build_trades_marks_open_positions_at_the_last_close() -> None:
    from nautilus_app.results import build_trades

    t0 = pd.Timestamp("2025-01-01 00:00", tz="UTC")
    positions = _positions([
        # a closed long: +10 after fees
        {"position_id": "P1", "instrument_id": "BTCUSDT.BINANCE", "strategy_id": "A", "entry": "BUY", "quantity": 0.0,
         "peak_qty": 1.0, "avg_px_open": 100.0, "avg_px_close": 112.0, "realized_pnl": 10.0, "ts_opened": t0,
         "ts_closed": t0 + pd.Timedelta(hours=1), "commissions": '["2.0 USDT"]'},
        # an open short of 2 at 50 (entry commission 1): marked at 45 -> unrealized +10
        {"position_id": "P2", "instrument_id": "ETHUSDT.BINANCE", "strategy_id": "B", "entry": "SELL", "quantity": 2.0,
         "peak_qty": 2.0, "avg_px_open": 50.0, "realized_pnl": -1.0, "ts_opened": t0 + pd.Timedelta(hours=2)},
        # flat and never closed (no quantity): not a trade
        {"position_id": "P3", "instrument_id": "ETHUSDT.BINANCE", "strategy_id": "C", "entry": "BUY", "quantity": 0.0,
         "peak_qty": 0.0, "avg_px_open": 50.0, "realized_pnl": 0.0, "ts_opened": t0},
    ])
    funding = pd.DataFrame(columns=["ts", "instrument_id", "position_id", "amount"])
    closed_only = build_trades(positions, funding)
    assert len(closed_only) == 1 and not closed_only["is_open"].any()
    end = t0 + pd.Timedelta(hours=5)
    marks = {"BTCUSDT.BINANCE": (end, 120.0), "ETHUSDT.BINANCE": (end, 45.0)}
    t = build_trades(positions, funding, marks=marks)
    assert len(t) == 2
    op = t[t["is_open"]].iloc[0]
    assert op["side"] == "SHORT" and op["exit_time"] == end and op["exit_price"] == 45.0
    assert op["unrealized_pnl"] == pytest.approx(2.0 * (50.0 - 45.0))
    assert op["pnl"] == pytest.approx(-1.0 + 10.0)
    assert op["return_frac"] == pytest.approx(9.0 / (2.0 * 50.0))
    cl = t[~t["is_open"]].iloc[0]
    assert cl["unrealized_pnl"] == 0.0 and cl["pnl"] == 10.0 and cl["exit_price"] == 112.0


def test_build_trades_reads_close_times_mixing_whole_seconds_and_nanoseconds() -> None:
    """Nautilus's positions report leaves ``ts_closed`` as text when a position is still open; a whole-second
    close and a nanosecond one in the same column used to crash pd.to_datetime (format inferred from the
    first row)."""
    from nautilus_app.results import build_trades

    def pos(pid: str, opened: str, closed: str | None, qty: float = 0.0) -> dict:
        return {"position_id": pid, "instrument_id": "BTCUSDT.BINANCE", "strategy_id": "A", "entry": "BUY",
                "quantity": qty, "peak_qty": 1.0, "avg_px_open": 100.0, "avg_px_close": 101.0 if closed else np.nan,
                "realized_pnl": 1.0, "ts_opened": opened, "ts_closed": closed}

    positions = _positions([
        pos("P1", "2025-01-01 00:00:00+00:00", "2025-01-01 00:01:00.000000001+00:00"),
        pos("P2", "2025-01-01 00:02:00.5+00:00", "2025-01-01 00:03:00+00:00"),
        pos("P3", "2025-01-01 00:04:00+00:00", None, qty=1.0),
    ])
    assert positions["ts_closed"].dtype == object
    funding = pd.DataFrame(columns=["ts", "instrument_id", "position_id", "amount"])
    end = pd.Timestamp("2025-01-01 00:05", tz="UTC")
    t = build_trades(positions, funding, marks={"BTCUSDT.BINANCE": (end, 102.0)})
    assert t["exit_time"].tolist() == [pd.Timestamp("2025-01-01 00:01:00.000000001", tz="UTC"),
                                       pd.Timestamp("2025-01-01 00:03:00", tz="UTC"), end]
    assert t["entry_time"].tolist() == [pd.Timestamp("2025-01-01 00:00", tz="UTC"),
                                        pd.Timestamp("2025-01-01 00:02:00.5", tz="UTC"),
                                        pd.Timestamp("2025-01-01 00:04", tz="UTC")]
    assert t["is_open"].tolist() == [False, False, True]


def test_buy_and_hold_basket_by_hand_with_a_late_instrument() -> None:
    from nautilus_app.results import buy_and_hold_basket

    idx = pd.date_range("2025-01-01", periods=4, freq="1min", tz="UTC")
    a = pd.Series([100.0, 110.0, 120.0, 150.0], index=idx)
    b = pd.Series([10.0, 5.0], index=idx[2:])  # starts two bars later
    basket, own = buy_and_hold_basket({"A": a, "B": b}, {"A": 0.01, "B": 0.0}, idx)
    assert own == {"A": pytest.approx(0.99 * 0.99 * 1.5 - 1), "B": pytest.approx(-0.5)}
    # sleeve A: 0.99 x close / 100 (exit fee on the last point); sleeve B: cash (1.0) until its first bar
    expected = [(0.99 * 1.0 + 1.0) / 2, (0.99 * 1.1 + 1.0) / 2, (0.99 * 1.2 + 1.0) / 2, (0.99 * 0.99 * 1.5 + 0.5) / 2]
    assert basket.to_numpy() == pytest.approx(expected)
    assert basket.iloc[-1] - 1 == pytest.approx((own["A"] + own["B"]) / 2)
    single, _ = buy_and_hold_basket({"A": a}, {"A": 0.01}, idx)
    assert single.to_numpy() == pytest.approx([0.99, 0.99 * 1.1, 0.99 * 1.2, 0.99 * 0.99 * 1.5])


def test_group_breakdown_by_hand() -> None:
    from nautilus_app.metrics import group_breakdown

    t0 = pd.Timestamp("2025-01-01", tz="UTC")
    h = pd.Timedelta(hours=1)
    trades = pd.DataFrame({
        "strategy_id": ["A", "A", "B"],
        "entry_time": [t0, t0 + 2 * h, t0 + 1 * h],
        "exit_time": [t0 + 1 * h, t0 + 4 * h, t0 + 10 * h],
        "pnl": [30.0, -10.0, 5.0], "return_frac": [0.03, -0.01, 0.005],
        "fees": [2.0, 1.0, 0.5], "liquidation_fee": [0.0, 0.0, 0.0], "funding": [-1.0, 0.5, 0.0],
        "slippage_cost": [0.25, 0.0, 0.0], "is_open": [False, False, True], "unrealized_pnl": [0.0, 0.0, 4.0],
    })
    borrowing = pd.DataFrame({"strategy_id": ["B"], "interest_usdt": [0.5]})
    recs = group_breakdown(trades, "strategy_id", starting_equity=1000.0, start=t0, end=t0 + 10 * h,
                           borrowing=borrowing, groups=["C", "A"])
    assert [r["strategy_id"] for r in recs] == ["C", "A", "B"]
    c, a, b = recs
    assert c["trades"] == 0 and c["net_pnl_usdt"] == 0.0 and c["win_rate"] is None and c["exposure"] == 0.0
    assert a["trades"] == 2 and a["wins"] == 1 and a["losses"] == 1 and a["win_rate"] == 0.5
    assert a["profit_factor"] == pytest.approx(3.0)
    assert a["net_pnl_usdt"] == 20.0 and a["fees_paid_usdt"] == 3.0 and a["funding_paid_usdt"] == 0.5
    assert a["slippage_cost_usdt"] == 0.25 and a["total_costs_usdt"] == pytest.approx(3.75)
    assert a["pnl_before_costs_usdt"] == pytest.approx(23.75)
    assert a["exposure"] == pytest.approx(3 / 10) and a["return_contribution"] == pytest.approx(0.02)
    assert b["open_trades"] == 1 and b["unrealized_pnl_usdt"] == 4.0 and b["profit_factor"] is None
    assert b["net_pnl_usdt"] == pytest.approx(4.5) and b["borrow_interest_usdt"] == 0.5
    assert b["pnl_before_costs_usdt"] == pytest.approx(5.5) and b["exposure"] == pytest.approx(0.9)


def test_utc_index_equals_pandas_to_datetime() -> None:
    from core.times import utc_index

    ns = np.array([0, 1_747_699_260_000_000_000, 1_747_699_320_000_000_001, 2**62], dtype=np.int64)
    got = utc_index(ns, name="ts")
    pd.testing.assert_index_equal(got, pd.DatetimeIndex(pd.to_datetime(ns, utc=True), name="ts"))
    pd.testing.assert_index_equal(utc_index(ns.tolist()), pd.to_datetime(ns, utc=True))


def test_utc_texts_equal_str_of_each_timestamp() -> None:
    from core.times import utc_texts

    ns = np.array([1_747_701_000_000_000_000, 1_747_701_000_500_000_000, 1_747_701_000_000_000_001,
                   1_747_701_000_000_001_000, 0, -1_000_000_000, -1], dtype=np.int64)
    assert utc_texts(ns).tolist() == [str(pd.Timestamp(int(t), tz="UTC")) for t in ns]


def test_report_lists_as_json_text_equal_json_dumps() -> None:
    import json

    from nautilus_app.results.collect import _json_or_none

    for v in (["BINANCE-1-1", "BINANCE-1-2"], ["1.06 USDT"], [], ['say "hi"', "x"], ["\u00e9t\u00e9", "a"],
              {"k": 1}, [1, "a"], ["a\\b", "c"]):
        assert _json_or_none(v) == json.dumps(v, default=str), v
    assert _json_or_none(None) is None


def test_report_numbers_parse_as_pandas_to_numeric() -> None:
    from nautilus_app.results.collect import _parse_numbers

    for texts in (["1", "2", "-3"], ["1.5", "2"], ["1", None], ["1e5", "3"], ["nan", "1"], ["abc", "1"],
                  ["106495.32", "0.01000"]):
        arr = np.array(texts, dtype=object)
        got, want = _parse_numbers(arr), pd.to_numeric(arr, errors="coerce")
        assert got.dtype == want.dtype, texts
        np.testing.assert_array_equal(got, want)


def test_result_tables_dictionary_encode_only_text(tmp_path) -> None:
    import pyarrow.parquet as pq

    from nautilus_app.results.writer import write_tables

    df = pd.DataFrame({"ts": pd.to_datetime(np.arange(1000) * 60_000_000_000, utc=True),
                       "equity": np.linspace(1.0, 2.0, 1000), "side": ["BUY", "SELL"] * 500,
                       "tag": pd.Categorical(["a", "b"] * 500), "note": pd.array([None, "x"] * 500, dtype="string")})
    write_tables(tmp_path, {"t": df})
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), df)
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    for col in ("ts", "equity"):
        assert not any("DICTIONARY" in e for e in encodings[col]), encodings[col]
    for col in ("side", "tag", "note"):
        assert any("DICTIONARY" in e for e in encodings[col]), encodings[col]


def test_digest_csv_text_equals_pandas_to_csv() -> None:
    from nautilus_app.results.assemble import _csv_text

    cases = [{"a": ["1", "2"], "b": ["x", "y"]}, {"a": ["1,5", "2"], "b": ["x", "y"]}, {"a": ["", "2"], "b": ["x", "y"]},
             {"a": ['q"', "2"], "b": ["x", "y"]}, {"a": [], "b": []}, {"a": ["only"]},
             {"a": [" sp ", "n\nl"], "b": ["x", "y"]}, {"a": ["nan", "None"], "b": ["2025-05-20 00:20:00+00:00", "0.01"]}]
    for columns in cases:
        assert _csv_text(columns) == pd.DataFrame(columns).to_csv(index=False), columns
