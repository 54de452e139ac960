"""nautilus_app/bar_aggregation.py against Nautilus's own time-bar aggregator, on REAL Binance 1m bars.

The same source bars go to a Nautilus engine (a strategy subscribed to ``...-INTERNAL@1-MINUTE-EXTERNAL``
bar types, the runner's ``time_bars_build_with_no_updates=False``) and to :func:`aggregate_time_bars`; every
emitted bar must match: close time, open/high/low/close to the price precision, volume. The source is cut
to cover what can differ: an exchange-like gap across an hour's close, a missing bar exactly at an hour's
close, a first interval entered half way and data ending in the middle of an interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model import Price

from catalog.binance_vision import import_binance_vision
from catalog.store import open_catalog
from core.paths import shared_data_dir
from nautilus_app.bar_aggregation import aggregate_time_bars, source_bar_type
from nautilus_app.venue.fill_timing import BarSeries
from tests.fixtures.bar_probe import engine_bars

MIRROR = shared_data_dir() / "binance-vision"
SOURCE = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
STEPS = ["5-MINUTE", "15-MINUTE", "1-HOUR", "4-HOUR", "1-DAY"]


def _t(s: str) -> int:
    return pd.Timestamp(s, tz="UTC").value


@pytest.fixture(scope="module")
def source_bars(tmp_path_factory: pytest.TempPathFactory) -> list:
    root = tmp_path_factory.mktemp("agg")
    import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2025-06-01", end="2025-06-04", kinds=("klines",))
    bars = open_catalog(root).query_bars([SOURCE])
    assert len(bars) > 4 * 1440 - 10
    gap = (_t("2025-06-01 13:48"), _t("2025-06-01 15:20"))  # the end of one hour, all of the next
    out = [b for b in bars
           if _t("2025-06-01 00:37") <= b.ts_init <= _t("2025-06-04 17:23")  # enters and leaves mid-interval
           and not gap[0] <= b.ts_init <= gap[1]
           and b.ts_init != _t("2025-06-02 09:00")]  # a missing bar at an hour's close
    return out


def test_aggregated_bars_equal_nautilus_aggregator(source_bars: list) -> None:
    types = [f"BTCUSDT.BINANCE-{s}-LAST-INTERNAL@1-MINUTE-EXTERNAL" for s in STEPS]
    got = engine_bars(source_bars, types, time_bars_build_with_no_updates=False)
    series = BarSeries(np.array([b.ts_init for b in source_bars], dtype=np.int64),
                       *(np.array([float(str(getattr(b, f))) for b in source_bars])
                         for f in ("open", "high", "low", "close", "volume")))
    for bt in types:
        expected = got[bt.split("@")[0]]
        mine = aggregate_time_bars(series, bt, data_end_ns=source_bars[-1].ts_init)
        assert len(mine) == len(expected), bt
        assert mine.ts.tolist() == [b.ts_event for b in expected], bt
        for field in ("open", "high", "low", "close"):
            assert [Price(x, 2) for x in getattr(mine, field)] == [getattr(b, field) for b in expected], (bt, field)
        np.testing.assert_allclose(mine.volume, [float(b.volume) for b in expected], rtol=1e-12)
    hours = aggregate_time_bars(series, types[2], source_bars[-1].ts_init)
    # the cases the cut covers: a 14:00 bar without its last 13 minutes, no 15:00 bar (no source bar in it), a 09:00
    # bar without its 09:00 minute, a partial first hour, and no 18:00 bar on the last day (the data ends at 17:23)
    assert _t("2025-06-01 14:00") in hours.ts and _t("2025-06-01 15:00") not in hours.ts
    assert _t("2025-06-02 09:00") in hours.ts
    assert hours.ts[0] == _t("2025-06-01 01:00") and hours.ts[-1] == _t("2025-06-04 17:00")


def test_a_later_data_point_emits_the_open_interval(source_bars: list) -> None:
    """An interval still open at the source's last bar is emitted when the run's data goes on (the clock passes
    its close), as Nautilus does when another instrument or a funding row comes later."""
    series = BarSeries(np.array([b.ts_init for b in source_bars], dtype=np.int64),
                       *(np.array([float(str(getattr(b, f))) for b in source_bars])
                         for f in ("open", "high", "low", "close", "volume")))
    bt = "BTCUSDT.BINANCE-1-HOUR-LAST-INTERNAL@1-MINUTE-EXTERNAL"
    assert aggregate_time_bars(series, bt, _t("2025-06-04 18:00")).ts[-1] == _t("2025-06-04 18:00")
    assert aggregate_time_bars(series, bt, _t("2025-06-04 17:59")).ts[-1] == _t("2025-06-04 17:00")


def test_bar_types_it_cannot_build_are_refused() -> None:
    assert source_bar_type("BTCUSDT.BINANCE-1-HOUR-LAST-INTERNAL@1-MINUTE-EXTERNAL") == SOURCE
    assert source_bar_type(SOURCE) is None
    one = BarSeries(*(np.array([x]) for x in (60_000_000_000, 1.0, 1.0, 1.0, 1.0, 1.0)))
    with pytest.raises(ValueError, match="divide a day"):
        aggregate_time_bars(one, "BTCUSDT.BINANCE-2-DAY-LAST-INTERNAL@1-MINUTE-EXTERNAL", 0)
    with pytest.raises(ValueError, match="not a time bar type aggregated"):
        aggregate_time_bars(one, SOURCE, 0)
