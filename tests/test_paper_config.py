"""The [paper] table and the paper plan: validation and mapping (no node, no network)."""

from __future__ import annotations

import tomllib

import pytest

from nautilus_app.cli import main as cli_main
from nautilus_app.config import ConfigError, parse_config
from nautilus_app.core.paths import REPO_ROOT
from nautilus_app.paper import PaperConfigError, plan_paper, to_live_bar_type, to_live_id


def raw_config() -> dict:
    return tomllib.loads((REPO_ROOT / "configs/paper_perp.toml").read_text())


def test_backtest_loader_accepts_paper_table() -> None:
    cfg = parse_config(raw_config())
    assert cfg.paper is not None and cfg.paper.trader_id == "PAPER-001" and cfg.paper.redis_port == 6379


def test_unknown_paper_key_is_rejected() -> None:
    raw = raw_config()
    raw["paper"]["redis_prot"] = 1
    with pytest.raises(ConfigError, match="redis_prot"):
        parse_config(raw)


def test_live_ids() -> None:
    assert to_live_id("ETHUSDT-PERP.BINANCE_USDM") == "ETHUSDT-PERP.BINANCE"
    assert to_live_id("BTCUSDT.BINANCE") == "BTCUSDT.BINANCE"
    assert to_live_bar_type("ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL") == \
        "ETHUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"


def test_plan_maps_ids_and_stale_threshold() -> None:
    plan = plan_paper(parse_config(raw_config()))
    assert plan.product == "um" and plan.id_map == {"ETHUSDT-PERP.BINANCE_USDM": "ETHUSDT-PERP.BINANCE"}
    assert plan.stale_after_s == 120.0  # 2 x 1 minute
    # the simulated execution client (default) applies every venue model; it lists only its own limits
    assert all("order types" in x or "mark price" in x for x in plan.not_simulated)
    raw = raw_config()
    raw["paper"]["execution"] = "sandbox"
    raw["venues"][0]["latency"] = False
    assert plan_paper(parse_config(raw)).not_simulated == []  # the config asks for the models the sandbox has


def test_plan_lists_models_the_sandbox_lacks() -> None:
    raw = raw_config()
    raw["paper"]["execution"] = "sandbox"
    raw["venues"][0].update(fill_timing="next_open", slippage="fixed", slippage_bps=2.0, liquidation=True)
    items = " ".join(plan_paper(parse_config(raw)).not_simulated)
    assert "next_open" in items and "slippage" in items and "liquidation" in items
    raw["paper"]["execution"] = "simulated"
    items = " ".join(plan_paper(parse_config(raw)).not_simulated)
    assert "next_open" not in items and "does not liquidate" not in items


def test_ethereal_plan_uses_internal_bars_and_its_own_execution() -> None:
    raw = tomllib.loads((REPO_ROOT / "configs/paper_ethereal.toml").read_text())
    plan = plan_paper(parse_config(raw))
    assert plan.product == "ethereal" and plan.live_venue == "ETHEREAL" and plan.is_margin
    assert plan.id_map == {"BTCUSD-PERP.ETHEREAL": "BTCUSD-PERP.ETHEREAL"}
    assert plan.bar_map == {"BTCUSD-PERP.ETHEREAL-1-MINUTE-LAST-EXTERNAL": "BTCUSD-PERP.ETHEREAL-1-MINUTE-LAST-INTERNAL"}
    # the session builds the bars itself from the trade stream on the venue's trade timestamps (not
    # Nautilus's wall-clock aggregation); the INTERNAL bar type is only the live name of the bars
    bars_note = [x for x in plan.not_simulated if x.startswith("bars:")]
    assert len(bars_note) == 1
    assert "built from the trade stream on the venue's trade timestamps" in bars_note[0]
    assert "price history" in bars_note[0] and "aggregated by Nautilus" not in bars_note[0]
    raw["venues"][0]["oms_type"] = "HEDGING"
    with pytest.raises(PaperConfigError, match="oms_type"):
        plan_paper(parse_config(raw))


@pytest.mark.parametrize("change, match", [
    (lambda r: r.pop("paper"), "paper: missing"),
    (lambda r: r["paper"].update(data_source="ethereal"), "expected 'ETHEREAL' for paper.data_source = 'ethereal'"),
    (lambda r: (r["venues"][0].update(leverages={"ETHUSDT-PERP.BINANCE_USDM": 3}),
                r["paper"].update(execution="sandbox")), "default_leverage"),
])
def test_plan_errors(change, match) -> None:  # noqa: ANN001
    raw = raw_config()
    change(raw)
    with pytest.raises(PaperConfigError, match=match):
        plan_paper(parse_config(raw))


def test_cli_paper_without_paper_table_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["paper", str(REPO_ROOT / "configs/demo_perp.toml")]) == 2
    assert "add a [paper] table" in capsys.readouterr().err
