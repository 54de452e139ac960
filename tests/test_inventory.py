"""catalog.inventory on a catalog imported from REAL mirror files; expectations from the raw zips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.binance_vision import import_binance_vision
from catalog.inventory import COLUMNS, catalog_inventory, gap_list
from core.paths import shared_data_dir
from tests.fixtures.binance_mock import read_zip_rows

BV = shared_data_dir() / "binance-vision"
MIN_NS = 60_000_000_000
SPOT_BT = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
PERP = "BTCUSDT-PERP.BINANCE_USDM"

pytestmark = pytest.mark.skipif(not BV.is_dir(), reason="shared Binance Vision mirror not available")


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inv")
    import_binance_vision(root, base_url=BV, symbols=["BTCUSDT"], start="2019-10-16", end="2019-11-13")
    import_binance_vision(root, base_url=BV, market="um", symbols=["BTCUSDT"], start="2023-07-01", end="2023-07-31",
                          kinds=["fundingRate"])
    import_binance_vision(root, base_url=BV, market="um", symbols=["BTCUSDT"], interval="1h", start="2023-07-01",
                          end="2023-07-31", kinds=["markPriceKlines"])
    return root


def raw_open_ms(paths: list[Path]) -> np.ndarray:
    return np.array(sorted(int(r[0]) for p in paths for r in read_zip_rows(p)), dtype=np.int64)


def test_inventory_rows_ranges_gaps(cat: Path) -> None:
    df = catalog_inventory(cat)
    assert list(df.columns) == COLUMNS
    zips = sorted((BV / "data/spot/daily/klines/BTCUSDT/1m").glob("BTCUSDT-1m-2019-1[01]-*.zip"))
    zips = [z for z in zips if "2019-10-16" <= z.stem[-10:] <= "2019-11-13"]
    t = raw_open_ms(zips) * 1_000_000 + MIN_NS
    bars = df[(df.kind == "bars") & (df.identifier == SPOT_BT)].iloc[0]
    assert bars.rows == t.size == 41_617
    assert bars["first"] == pd.Timestamp(int(t[0]), unit="ns", tz="UTC")
    assert bars["last"] == pd.Timestamp(int(t[-1]), unit="ns", tz="UTC")
    assert bars.gaps == int((np.diff(t) > MIN_NS).sum()) == 2  # the two 2019-11-13 maintenance stops
    assert bars.instrument_id == "BTCUSDT.BINANCE"
    assert bars.bytes == sum(p.stat().st_size for p in (cat / "data/bars" / SPOT_BT).glob("*.parquet"))
    fr = df[(df.kind == "funding_rates") & (df.identifier == PERP)].iloc[0]
    assert fr.rows == len(read_zip_rows(BV / "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2023-07.zip"))
    assert fr.gaps == 0
    mk = df[(df.kind == "mark_prices") & (df.identifier == PERP)].iloc[0]
    assert mk.rows == 744 and mk.gaps == 0
    assert set(df[df.kind == "instruments"].identifier) == {"BTCUSDT.BINANCE", PERP}


def test_gap_list_matches_known_halts(cat: Path) -> None:
    g = gap_list(cat, "bars", SPOT_BT)
    # README: last bar before / first bar after (OPEN times) 01:59 -> 04:20 (140 missing), 05:29 -> 05:33 (3)
    exp = pd.DataFrame({
        "last_before": pd.to_datetime(["2019-11-13 02:00", "2019-11-13 05:30"], utc=True),  # close = open + 1 min
        "first_after": pd.to_datetime(["2019-11-13 04:21", "2019-11-13 05:34"], utc=True),
        "missing": [140, 3],
    })
    pd.testing.assert_frame_equal(g.reset_index(drop=True), exp, check_dtype=False)
    assert gap_list(cat, "funding_rates", PERP).empty
    with pytest.raises(KeyError, match="stored"):
        gap_list(cat, "bars", "NOPE")


def test_empty_catalog(tmp_path: Path) -> None:
    df = catalog_inventory(tmp_path)
    assert df.empty and list(df.columns) == COLUMNS
