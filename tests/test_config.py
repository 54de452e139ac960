"""Run-config validation: every bad input names the file, the key, the value and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from nautilus_app.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parent.parent


def base() -> dict:
    return {
        "name": "t",
        "start": "2025-06-01",
        "end": "2025-07-01",
        "bar_types": ["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": {
            "instrument_id": "BTCUSDT.BINANCE", "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL",
            "fast_period": 5, "slow_period": 30}}],
    }


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.venues and cfg.strategies and (cfg.bar_types or cfg.universe is not None)


def test_defaults_are_binance_fees() -> None:
    cfg = parse_config(base())
    assert cfg.venues[0].fees() == (0.001, 0.001)
    raw = base()
    raw["venues"][0] = {"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["1000 USDT"]}
    raw["bar_types"] = ["BTCUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"]
    raw["strategies"][0]["params"].update(
        instrument_id="BTCUSDT-PERP.BINANCE_USDM", bar_type="BTCUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL")
    assert parse_config(raw).venues[0].fees() == (0.0002, 0.0005)


def test_config_is_frozen() -> None:
    cfg = parse_config(base())
    with pytest.raises(AttributeError):
        cfg.name = "other"  # type: ignore[misc]


def test_window_selects_bars_by_open_time() -> None:
    cfg = parse_config(base())
    lo, hi = cfg.bar_window_ns()
    # bars are stamped at close: the bar opening 2025-06-01 00:00 closes at 00:01 (included), the
    # bar opening 2025-06-30 23:59 closes at 2025-07-01 00:00 (included), nothing later.
    june_first_close = 1748736060 * 10**9
    july_first = 1751328000 * 10**9
    assert lo <= june_first_close and lo > june_first_close - 60 * 10**9
    assert hi > july_first and hi <= july_first + 60 * 10**9


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (lambda r: r.update(colour="red"), ["colour"]),
        (lambda r: r["venues"][0].update(taker_fee=0.5), ["venues[0].taker_fee", "<= 0.1"]),
        (lambda r: r["venues"][0].update(taker_fee="cheap"), ["venues[0].taker_fee", "float"]),
        (lambda r: r["venues"][0].update(account_type="SPOT"), ["venues[0].account_type"]),
        (lambda r: r["venues"][0].update(starting_balances=["lots USDT"]), ["starting_balances[0]", "lots USDT"]),
        (lambda r: r["venues"][0].update(leverages={"BTCUSDT.BINANCE": 3}), ["venues[0].leverages", "CASH"]),
        (lambda r: r.update(end="2025-05-01"), ["end", "after start"]),
        (lambda r: r.update(start="yesterday-ish"), ["start", "ISO-8601"]),
        (lambda r: r.update(bar_types=["not a bar type"]), ["bar_types[0]", "not a bar type"]),
        (lambda r: r.update(bar_types=["BTCUSDT.KRAKEN-1-MINUTE-LAST-EXTERNAL"]), ["bar_types[0]", "KRAKEN"]),
        (lambda r: r["strategies"][0].update(name="moon"), ["strategies[0].name", "moon", "ema_cross"]),
        (lambda r: r["strategies"][0]["params"].update(fast_perod=3), ["strategies[0].params.fast_perod"]),
        (lambda r: r["strategies"][0]["params"].pop("bar_type"), ["strategies[0].params.bar_type", "required"]),
        (lambda r: r["strategies"][0]["params"].update(instrument_id="ETHUSDT.BINANCE"),
         ["strategies[0].params.instrument_id", "ETHUSDT.BINANCE"]),
        (lambda r: r["venues"].append(dict(r["venues"][0])), ["venues", "unique"]),
        (lambda r: r["venues"][0].update(name="OKX"), ["OKX"]),
    ],
)
def test_bad_values_are_named(mutate, needles: list[str]) -> None:
    raw = base()
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_config(raw, source="my.toml")
    msg = str(err.value)
    assert msg.startswith("my.toml: ")
    for needle in needles:
        assert needle in msg, msg


def test_toml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "x"\nstart = \n')
    with pytest.raises(ConfigError, match="broken.toml: invalid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="missing.toml: cannot read"):
        load_config(tmp_path / "missing.toml")
