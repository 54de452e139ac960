"""Coverage is part of every run (issue 20): missing data fails the run (exit 2) naming the bar type
and the span, unless allowed; known exchange halts are counted, not failed; ranges outside the stored
data are errors, not clamps; strict config values (NaN dates, infinite balances, unsafe names).

Real data from the Binance Vision mirror in ``$SHARED_DATA``. Expected bar counts and spans are
computed here from the calendar and the raw archive files, not from the run's output.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

from catalog.binance_vision import import_binance_vision
from core.paths import shared_data_dir
from nautilus_app.cli import main as cli_main
from nautilus_app.config import ConfigError, parse_config

MIRROR = shared_data_dir() / "binance-vision"
BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BTCUSDT spot 1m: 2025-06-01..06-03 and 06-06..06-07 (a hole of two days), and the March 2023
    days with Binance's 2023-03-24 trading halt."""
    root = tmp_path_factory.mktemp("cov")
    for a, b in (("2025-06-01", "2025-06-03"), ("2025-06-06", "2025-06-07"), ("2023-03-20", "2023-03-27")):
        import_binance_vision(root, base_url=str(MIRROR), market="spot", symbols=("BTCUSDT",), interval="1m",
                              start=a, end=b, kinds=("klines",))
    return root


def config(catalog: Path, start: str, end: str, **extra) -> dict:
    return {"name": "cov", "catalog": str(catalog), "start": start, "end": end, "bar_types": [BAR],
            "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["10000 USDT"]}],
            "strategies": [{"name": "buy_and_hold", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BAR}}],
            **extra}


def run(tmp_path: Path, raw: dict) -> int:
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(raw))
    return cli_main(["backtest", str(path), "--no-progress", "--results-dir", str(tmp_path / "results")])


def visible(results: Path) -> list[Path]:
    return [p for p in results.iterdir() if not p.name.startswith(".")] if results.exists() else []


def test_a_hole_in_the_range_fails_naming_the_span(catalog: Path, tmp_path: Path, capsys) -> None:
    assert run(tmp_path, config(catalog, "2025-06-01", "2025-06-08")) == 2
    err = capsys.readouterr().err
    # 06-04 00:00 .. 06-05 23:59 are missing: 2 x 1,440 bars, counted from the calendar
    assert BAR in err and "2025-06-04 00:00 .. 2025-06-05 23:59 (2,880 bars)" in err
    assert "2,880 of 10,080 bars" in err and "allow_gaps" in err
    assert visible(tmp_path / "results") == []


@pytest.mark.parametrize(("start", "end", "span"), [
    ("2025-05-31", "2025-06-03", "2025-05-31 00:00 .. 2025-05-31 23:59 (1,440 bars)"),  # before the first bar
    ("2025-06-06", "2025-06-09", "2025-06-08 00:00 .. 2025-06-08 23:59 (1,440 bars)"),  # after the last bar
])
def test_a_range_outside_the_stored_data_is_an_error_not_a_clamp(catalog: Path, tmp_path: Path, capsys,
                                                                 start: str, end: str, span: str) -> None:
    assert run(tmp_path, config(catalog, start, end)) == 2
    assert span in capsys.readouterr().err


def test_allow_gaps_runs_and_records_the_gaps(catalog: Path, tmp_path: Path, capsys) -> None:
    assert run(tmp_path, config(catalog, "2025-06-01", "2025-06-08", allow_gaps=True)) == 0
    out = capsys.readouterr().out
    assert "7,200 of 10,080 bars (71.43 %), WARNING: 2,880 missing (allow_gaps = true)" in out
    [folder] = visible(tmp_path / "results")
    cov = json.loads((folder / "run.json").read_text())["coverage"]
    assert cov == [{"bar_type": BAR, "expected": 10080, "loaded": 7200, "coverage": round(7200 / 10080, 6),
                    "known_halt_bars": 0, "missing_bars": 2880,
                    "missing_spans": [["2025-06-04 00:00", "2025-06-05 23:59", 2880]], "known_halts": []}]


def test_a_known_exchange_halt_is_counted_not_failed(catalog: Path, tmp_path: Path, capsys) -> None:
    assert run(tmp_path, config(catalog, "2023-03-22", "2023-03-27")) == 0
    # the raw archive of 2023-03-24 is short by exactly the halt's bars
    day = MIRROR / "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-03-24.zip"
    with zipfile.ZipFile(day) as zf, zf.open(zf.namelist()[0]) as fh:
        rows = len(pd.read_csv(fh, header=None))
    halted = 1440 - rows
    assert halted > 60
    [folder] = visible(tmp_path / "results")
    cov = json.loads((folder / "run.json").read_text())["coverage"][0]
    assert (cov["expected"], cov["loaded"], cov["known_halt_bars"], cov["missing_bars"]) == (
        5 * 1440, 5 * 1440 - halted, halted, 0)
    assert "in known exchange halts" in capsys.readouterr().out


@pytest.mark.parametrize(("mutate", "key"), [
    (lambda r: r.update(start="nan"), "key start"),
    (lambda r: r.update(name="../outside"), "key name"),
    (lambda r: r.update(name=".hidden"), "key name"),
    (lambda r: r["venues"][0].update(starting_balances=["inf USDT"]), "starting_balances[0]"),
    (lambda r: r["venues"][0].update(starting_balances=["1e400 USDT"]), "starting_balances[0]"),
    (lambda r: r["strategies"][0]["params"].update(position_fraction=float("nan")), "strategies[0].params"),
])
def test_strict_values_fail_before_any_data(catalog: Path, mutate, key: str) -> None:
    raw = config(catalog, "2025-06-01", "2025-06-03")
    mutate(raw)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_config(raw)
