"""One config idiom (issue 22): msgspec structs with constraints for run configs, strategy parameters
and adapter configs. A strategy parameter's range is declared once (strategies/params.py) and read by the
config loader (errors name ``strategies[i].params.<key>``), the Dash launcher (input bounds) and sweeps
(ranges outside it refused at load)."""

from __future__ import annotations

import msgspec
import pytest

from adapters.ethereal.config import EtherealConfigError, EtherealDataClientConfig, EtherealExecClientConfig
from nautilus_app.config import ConfigError, parse_config
from nautilus_app.strategy_loader import strategy_fields

ADDR = "0x" + "ab" * 20


def base() -> dict:
    return {
        "name": "t", "start": "2025-06-01", "end": "2025-07-01",
        "bar_types": ["BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": {
            "instrument_id": "BTCUSDT.BINANCE", "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL",
            "fast_period": 5, "slow_period": 30}}],
    }


def test_builtin_parameters_declare_their_ranges() -> None:
    ema = strategy_fields("ema_cross")
    assert ema["fast_period"].bounds()["ge"] == 1 and ema["fast_period"].type_name() == "int >= 1"
    assert ema["fast_period"].within(1) and not ema["fast_period"].within(0)
    assert ema["allow_short"].bounds() == {} and ema["allow_short"].type_name() == "bool"
    mr = strategy_fields("mean_reversion")
    assert mr["rsi_lower"].range_text() == ">= 0, <= 100"
    assert mr["cooldown_bars"].bounds()["ge"] == 0 and mr["bb_k"].bounds()["gt"] == 0
    assert strategy_fields("buy_and_hold")["position_fraction"].range_text() == "> 0, <= 10"


@pytest.mark.parametrize("key, value, expected", [
    ("fast_period", 0, "expected int >= 1"),
    ("slow_period", -5, "expected int >= 1"),
])
def test_out_of_range_param_names_the_key_and_range(key: str, value: int, expected: str) -> None:
    raw = base()
    raw["strategies"][0]["params"][key] = value
    with pytest.raises(ConfigError, match=rf"key strategies\[0\]\.params\.{key} = {value}: {expected}"):
        parse_config(raw)


def test_launcher_submission_names_the_out_of_range_field() -> None:
    from dash_ui.jobs import field_of, param_field

    raw = base()
    raw["strategies"][0]["params"]["fast_period"] = 0
    with pytest.raises(ConfigError) as e:
        parse_config(raw, source="request")
    msg = str(e.value)
    assert param_field(field_of(msg), msg, raw) == "strategies[0].params.fast_period"


def test_mean_reversion_level_out_of_range() -> None:
    raw = base()
    raw["strategies"][0] = {"name": "mean_reversion", "params": {
        "instrument_id": "BTCUSDT.BINANCE", "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL", "rsi_upper": 150}}
    with pytest.raises(ConfigError, match=r"key strategies\[0\]\.params\.rsi_upper = 150: expected float >= 0, <= 100"):
        parse_config(raw)


def test_sweep_range_outside_the_parameter_range_is_refused() -> None:
    from nautilus_app.research.spec import parse_sweep

    cfg = parse_config(base())
    ok = parse_sweep({"name": "s", "base_config": "-", "params": {"fast_period": {"low": 1, "high": 9, "step": 1}}},
                     base=cfg)
    assert ok.spec.params["fast_period"].low == 1
    with pytest.raises(ConfigError, match=r"key params\.fast_period\.low = 0: expected a value in the range of "
                                          r"fast_period: >= 1"):
        parse_sweep({"name": "s", "base_config": "-", "params": {"fast_period": {"low": 0, "high": 9, "step": 1}}},
                    base=cfg)
    with pytest.raises(ConfigError, match=r"key params\.slow_period\.values = \[0, -1\]"):
        parse_sweep({"name": "s", "base_config": "-", "params": {"slow_period": {"values": [0, 20, -1]}}}, base=cfg)


def test_launch_form_inputs_carry_the_ranges() -> None:
    from dash_ui.pages.launch import param_controls

    controls = {c.children[1].id["name"]: c for c in param_controls("ema_cross")}
    fast = controls["fast_period"]
    assert fast.children[0].children == "fast_period (int >= 1)"
    assert fast.children[1].min == 1 and getattr(fast.children[1], "max", None) is None
    pf = controls["position_fraction"]
    assert "position_fraction (float" in pf.children[0].children


def test_ethereal_configs_are_constrained_structs() -> None:
    assert EtherealExecClientConfig(account_address=ADDR).validate().network == "testnet"
    assert EtherealDataClientConfig(settlement_currency="usdt", http_timeout_s=10.0).validate()
    for kw, msg in [
        ({"network": "devnet"}, "network='devnet': expected 'mainnet' or 'testnet'"),
        ({"settlement_currency": "EUR"}, "settlement_currency='EUR': expected 'USDE' or 'USDT'"),
        ({"account_address": "0x12"}, "account_address='0x12': expected a 0x-prefixed 40-hex-digit wallet address"),
        ({"account_address": ""}, "account_address='': expected a 0x-prefixed 40-hex-digit wallet address"),
        ({"order_lookup_attempts": 0}, "order_lookup_attempts=0: expected `int` >= 1"),
        ({"order_lookup_backoff_s": 0.0}, "order_lookup_backoff_s=0.0: expected `float` > 0.0"),
        ({"position_check_delay_s": -1.0}, "position_check_delay_s=-1.0: expected `float` >= 0.0"),
        ({"subaccount": ""}, "subaccount='': must not be empty"),
        ({"subaccount": "x" * 33}, "a name is at most 32 bytes"),
        ({"account_id": "OTHER-1"}, "issuer must be ETHEREAL"),
    ]:
        with pytest.raises(EtherealConfigError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            EtherealExecClientConfig(**({"account_address": ADDR} | kw)).validate()
    with pytest.raises(EtherealConfigError, match="instrument_refresh_mins=-1: expected `int` >= 0"):
        EtherealDataClientConfig(instrument_refresh_mins=-1).validate()
    # decoded from a mapping (a TOML table): the same constraints, unknown keys refused
    assert msgspec.convert({"network": "mainnet", "account_address": ADDR}, EtherealExecClientConfig).network == "mainnet"
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"netwrk": "mainnet"}, EtherealDataClientConfig)


def test_plain_nautilus_user_strategy_declares_ranges_in_both_styles(tmp_path) -> None:
    (tmp_path / "ranged.py").write_text('''
from typing import Annotated

import msgspec
from nautilus_trader.model import BarType, InstrumentId
from nautilus_trader.trading import Strategy, StrategyConfig


class RangedConfig(StrategyConfig):
    instrument_id: InstrumentId
    bar_type: BarType
    lookback: Annotated[int, msgspec.Meta(ge=2)] = 20
    band: Annotated[float, msgspec.Meta(gt=0, le=0.5)] = 0.02
    plain: int = 3


class Ranged(Strategy):
    def __init__(self, config: RangedConfig) -> None:
        super().__init__(config)


class InitRangedConfig(StrategyConfig):
    def __init__(self, instrument_id: InstrumentId, bar_type: BarType,
                 lookback: Annotated[int, msgspec.Meta(ge=2)] = 20) -> None:
        super().__init__()
        self.instrument_id, self.bar_type, self.lookback = instrument_id, bar_type, lookback


class InitRanged(Strategy):
    def __init__(self, config: InitRangedConfig) -> None:
        super().__init__(config)
''')
    for cls in ("Ranged", "InitRanged"):
        path = f"{tmp_path / 'ranged.py'}:{cls}"
        fields = strategy_fields(path)
        assert fields["lookback"].type_name() == "int >= 2"
        raw = base()
        raw["strategies"][0] = {"strategy_path": path, "params": {
            "instrument_id": "BTCUSDT.BINANCE", "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL", "lookback": 5}}
        cfg = parse_config(raw)
        assert cfg.strategies[0].resolve().make_config(cfg.strategies[0].params).lookback == 5
        raw["strategies"][0]["params"]["lookback"] = 1
        with pytest.raises(ConfigError, match=r"key strategies\[0\]\.params\.lookback = 1: expected int >= 2"):
            parse_config(raw)
    assert strategy_fields(f"{tmp_path / 'ranged.py'}:Ranged")["plain"].type_name() == "int"
    assert strategy_fields(f"{tmp_path / 'ranged.py'}:Ranged")["band"].range_text() == "> 0, <= 0.5"


@pytest.mark.parametrize("extra, key", [
    ({"workers": 0}, "workers"), ({"max_attempts": 0}, "max_attempts"), ({"lease_seconds": 0}, "lease_seconds"),
    ({"walk_forward": {"train_days": 0, "test_days": 1}}, "walk_forward.train_days"),
    ({"walk_forward": {"train_days": 1, "test_days": 1, "holdout_days": -1}}, "walk_forward.holdout_days"),
])
def test_sweep_spec_ranges_are_constraints(extra: dict, key: str) -> None:
    from nautilus_app.research.spec import parse_sweep

    with pytest.raises(ConfigError, match=rf"<sweep>: key {key}: Expected"):
        parse_sweep({"name": "s", "base_config": "-", "params": {"fast_period": {"values": [2, 3]}}} | extra,
                    base=parse_config(base()))


def test_builtin_config_built_in_python_checks_the_same_declarations() -> None:
    from strategies.ema_cross import EMACrossConfig
    from strategies.mean_reversion import MeanReversionConfig

    ids = {"instrument_id": "BTCUSDT.BINANCE", "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"}
    c = EMACrossConfig(**ids, fast_period=5, slow_period="30", position_fraction=1)
    assert (c.fast_period, c.slow_period, c.position_fraction, c.max_gap_bars) == (5, 30, 1.0, 60)
    assert isinstance(c.position_fraction, float) and isinstance(c.slow_period, int)
    for kw, msg in [({"fast_period": 0}, "fast_period = 0: expected `int` >= 1"),
                    ({"position_fraction": 0}, "position_fraction = 0: expected `float` > 0.0"),
                    ({"fee_headroom": 1.0}, "fee_headroom = 1.0: expected `float` < 1.0"),
                    ({"fast_period": 10.5}, "fast_period = 10.5: expected `int`, got `float`"),
                    ({"fast_period": 30, "slow_period": 10}, r"fast_period \(30\) must be < slow_period \(10\)")]:
        with pytest.raises(ValueError, match=msg):
            EMACrossConfig(**ids, **kw)
    m = MeanReversionConfig(**ids, rsi_lower=20)
    assert m.rsi_lower == 20.0 and isinstance(m.rsi_lower, float)
    with pytest.raises(ValueError, match="rsi_lower < rsi_exit < rsi_upper"):
        MeanReversionConfig(**ids, rsi_lower=60)
    with pytest.raises(ValueError, match="cooldown_bars = -1"):
        MeanReversionConfig(**ids, cooldown_bars=-1)
