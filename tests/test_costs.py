"""The venue ``costs`` switch (docs/simulation.md, "Costs"): defaults resolved from the specifications."""

from __future__ import annotations

import msgspec
import pytest

from nautilus_app.config import ConfigError, VenueConfig, parse_config
from nautilus_app.results import cost_assumptions


def venue(**kw) -> VenueConfig:  # noqa: ANN003
    return msgspec.convert({"name": "BINANCE", "account_type": "CASH", "starting_balances": ["10000 USDT"], **kw},
                           VenueConfig)


def test_realistic_is_the_default_with_the_specifications_numbers() -> None:
    v = venue()
    assert v.costs == "realistic"
    # framework-prd.md: base 1 bp; impact 0.1 x sqrt(q / daily volume) = 0.1 x 1e4 / sqrt(1440) bps per sqrt(q / V_1m)
    assert (v.slippage, v.slippage_bps) == ("volume", 1.0)
    assert v.slippage_impact_bps == pytest.approx(0.1 * 10_000 / 1440**0.5, abs=0.005)
    lat = v.latency
    assert lat is not None
    assert (lat.mean_ms, lat.std_ms, lat.min_ms, lat.spike_probability, lat.spike_multiplier) == (5, 2, 0.5, 0.01, 10)
    assert v.fees() == (0.001, 0.001)
    text = cost_assumptions(v)
    assert text.startswith("realistic: fees maker 0.1 % / taker 0.1 %, slippage 1 bps + 26.35 bps")
    assert "latency 5+-2 ms" in text


def test_fees_only_frictionless_and_explicit_keys() -> None:
    v = venue(costs="fees_only")
    assert (v.slippage, v.slippage_bps, v.slippage_impact_bps, v.latency, v.fees()) == ("none", 0, 0, None,
                                                                                        (0.001, 0.001))
    f = venue(costs="frictionless")
    assert (f.slippage, f.latency, f.fees()) == ("none", None, (0.0, 0.0))
    assert cost_assumptions(f) == "frictionless: no fees, no slippage, no latency, fills at next open"
    # explicit keys win over the costs defaults; a bare fixed model is trading-bot-plan's 10 bps
    v = venue(slippage="fixed", latency=False)
    assert (v.slippage, v.slippage_bps, v.latency) == ("fixed", 10.0, None)
    assert venue(costs="fees_only", latency=True).latency is not None
    # idempotent: re-decoding a resolved config gives the same struct (config.json round trip)
    for cfg in (venue(), f, v):
        assert msgspec.json.decode(msgspec.json.encode(cfg), type=VenueConfig) == cfg


@pytest.mark.parametrize("extra", [{"slippage": "fixed"}, {"taker_fee": 0.001}, {"latency": True}])
def test_frictionless_refuses_explicit_costs(extra: dict) -> None:
    raw = {"name": "x", "start": "2025-06-01", "end": "2025-06-02", "bar_types": ["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"],
           "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["10000 USDT"],
                       "costs": "frictionless", **extra}],
           "strategies": [{"name": "buy_and_hold", "params": {"instrument_id": "BTCUSDT.BINANCE",
                                                               "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"}}]}
    with pytest.raises(ConfigError, match="frictionless"):
        parse_config(raw)
