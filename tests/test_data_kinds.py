"""One vocabulary for data kinds (catalog/kinds.py): bars / funding / mark / trades in every command
and function; the sources' old words still work, with a logged deprecation warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from catalog.kinds import DEPRECATED_KINDS, KINDS, VISION_FOLDERS, canonical_kinds, cli_choices
from core.paths import shared_data_dir
from nautilus_app.cli import build_parser

BV = shared_data_dir() / "binance-vision"


def test_canonical_kinds_translates_old_words_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="catalog.kinds"):
        assert canonical_kinds(["bars", "funding", "mark", "trades"]) == KINDS
        assert not caplog.records  # the new words are silent
        assert canonical_kinds(["klines", "ohlcv", "fundingRate", "markPriceKlines", "aggTrades"],
                               where="--kinds") == KINDS
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 5
    for old, new in DEPRECATED_KINDS.items():
        assert any(f"'{old}' is deprecated, use '{new}'" in m and m.startswith("--kinds") for m in msgs)
    assert canonical_kinds("klines") == ("bars",)
    assert canonical_kinds(["nonsense"]) == ("nonsense",)  # left for the caller to refuse
    assert set(VISION_FOLDERS) == set(KINDS)


@pytest.mark.parametrize("command, extra", [
    ("import-binance-vision", []),
    ("download-data", ["--start", "2024-01-01"]),
    ("download-binance-vision", ["--start", "2024-01-01"]),
    ("import-ethereal", ["--start", "2024-01-01", "--end", "2024-01-02"]),
])
def test_every_data_command_takes_the_same_words(command: str, extra: list[str]) -> None:
    parser = build_parser()
    args = parser.parse_args([command, *extra, "--kinds", "bars", "funding", "mark"])
    assert args.kinds == ["bars", "funding", "mark"]
    args = parser.parse_args([command, *extra])
    assert set(args.kinds) <= set(KINDS)
    # the old spellings still parse (translated, with the warning, by the command's function)
    old = [w for w in cli_choices(("bars", "funding", "mark")) if w not in KINDS]
    assert parser.parse_args([command, *extra, "--kinds", *old]).kinds == old
    with pytest.raises(SystemExit):
        parser.parse_args([command, *extra, "--kinds", "candles"])


def test_ccxt_refuses_unknown_kind_in_new_words(tmp_path: Path) -> None:
    from catalog.ccxt_download import download_data

    with pytest.raises(ValueError, match=r"unknown kinds \['candles'\]; expected a subset of \('bars', 'funding', 'mark'\)"):
        download_data(tmp_path, kinds=["candles"], start="2024-01-01", progress=False)


@pytest.mark.skipif(not BV.is_dir(), reason="shared Binance Vision mirror not available")
def test_binance_vision_import_same_rows_for_old_and_new_words(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from catalog.binance_vision import import_binance_vision

    def run(root: Path, kinds: tuple[str, ...]):
        return import_binance_vision(root, base_url=BV, market="um", symbols=["BTCUSDT"], interval="1m",
                                     start="2023-08-01", end="2023-08-02", kinds=kinds, mark_interval="1h")

    new = run(tmp_path / "new", ("bars", "funding", "mark"))
    with caplog.at_level(logging.WARNING, logger="catalog.kinds"):
        old = run(tmp_path / "old", ("klines", "fundingRate", "markPriceKlines"))
    assert {r.getMessage().split(":")[0] for r in caplog.records} == {"kinds"}
    assert len(caplog.records) == 3
    def rows(rep):
        return {k: (st.rows_read, st.rows_written) for k, st in rep.stats.items()}

    assert rows(new) == rows(old)
    assert new.total("bars").rows_written > 0 and new.total("funding_rates").rows_written > 0
    bars = sorted(p.name for p in (tmp_path / "new/data/bars").rglob("*.parquet"))
    assert bars and bars == sorted(p.name for p in (tmp_path / "old/data/bars").rglob("*.parquet"))
    with pytest.raises(ValueError, match="exist only for market='um'"):
        import_binance_vision(tmp_path / "spot", base_url=BV, market="spot", symbols=["BTCUSDT"], kinds=("funding",))


@pytest.mark.skipif(not BV.is_dir(), reason="shared Binance Vision mirror not available")
def test_inventory_gaps_take_the_kind_words(tmp_path: Path) -> None:
    from catalog.binance_vision import import_binance_vision
    from catalog.inventory import gap_list

    import_binance_vision(tmp_path, base_url=BV, market="um", symbols=["BTCUSDT"], interval="1m",
                          start="2023-08-01", end="2023-08-02", kinds=("bars", "funding"))
    iid = "BTCUSDT-PERP.BINANCE_USDM"
    assert gap_list(tmp_path, "funding", iid).equals(gap_list(tmp_path, "funding_rates", iid))
    bt = f"{iid}-1-MINUTE-LAST-EXTERNAL"
    assert gap_list(tmp_path, "bars", bt).equals(gap_list(tmp_path, "klines", bt))
    with pytest.raises(KeyError, match="no 'mark_prices' data"):
        gap_list(tmp_path, "mark", iid)
