"""The [paper] table and the paper plan: validation and mapping (no node, no network)."""

from __future__ import annotations

import tomllib

import pytest

from core.paths import REPO_ROOT
from nautilus_app.cli import main as cli_main
from nautilus_app.config import ConfigError, parse_config
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


def test_feed_kinds_and_parity_notes_count_warm_up_and_catch_up_apart() -> None:
    """A restart feeds the stored feed again: only its warm-up records are warm-up bars; bars caught up from
    the venue's history are counted (and noted by paper-vs-backtest) apart."""
    from nautilus_app.paper_parity import warm_and_catch_up_notes
    from nautilus_app.paper_sequencer import CATCH_UP, LIVE, WARMUP, feed_kinds

    bar = ["X-1-MINUTE-LAST-EXTERNAL", 0, "1", "1", "1", "1", "1"]
    # records with their kind (9 fields)
    feed = [[*bar, 1, WARMUP], [*bar, 1, WARMUP], [*bar, 0, LIVE], [*bar, 0, CATCH_UP], [*bar, 1, CATCH_UP]]
    assert feed_kinds(feed) == [WARMUP, WARMUP, LIVE, CATCH_UP, CATCH_UP]
    # records of older sessions (8 fields): untraded before the first traded one = warm-up, later = catch-up
    assert feed_kinds([[*bar, 1], [*bar, 0], [*bar, 1], [*bar, 0]]) == [WARMUP, LIVE, CATCH_UP, LIVE]
    assert feed_kinds([[*bar, 0], [*bar, 1]]) == [LIVE, CATCH_UP]
    assert warm_and_catch_up_notes({"warm_bars": 0, "catch_up_bars": 0, "restart_replayed_bars": 40}) == []
    notes = warm_and_catch_up_notes({"warm_bars": 30, "catch_up_bars": 12, "catch_up_bars_traded": 12})
    assert len(notes) == 2 and "warmed its strategies on 30 history bars" in notes[0]
    assert notes[1].startswith("12 bars missed while the node was down") and "12 traded" in notes[1]
    assert "differences expected" not in notes[1]
    notes = warm_and_catch_up_notes({"catch_up_bars": 12, "catch_up_bars_traded": 0})
    assert notes == ["12 bars missed while the node was down were caught up from the venue's history at restarts "
                     "(0 traded as live bars; 12 fed without trading: differences expected after them)"]
