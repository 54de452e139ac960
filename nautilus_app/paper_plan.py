"""Plan of a paper session: check a run config and map it to the live venue (issue 22: split from paper.py).

Mapping. Nautilus's Binance client names USDT-M perpetuals ``BTCUSDT-PERP.BINANCE`` (venue
``BINANCE``); our backtests use venue ``BINANCE_USDM``. Strategy parameters ``instrument_id`` /
``bar_type`` are translated to the live ids on the way in (:func:`to_live_id`,
:func:`to_live_bar_type`), and every report is translated back (:attr:`PaperPlan.reverse_ids`).
Ethereal (``data_source = "ethereal"``) keeps its ids; its bars run as ``...-INTERNAL`` bar types.
:func:`plan_paper` also lists what the chosen execution does not simulate of the backtest's venue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nautilus_trader.model import BarType, InstrumentId

from nautilus_app.config import BacktestConfig
from nautilus_app.paper_config import PaperSettings

LIVE_VENUE = "BINANCE"
PERP_VENUE = "BINANCE_USDM"
ETHEREAL_VENUE_NAME = "ETHEREAL"



def _ethereal_settlement(venue: Any) -> str:
    """Ethereal's settlement currency for the paper book: the venue's starting-balance currency
    (``"10000 USDT"`` keeps the legacy USDT mapping of USDe, ``"10000 USDE"`` uses Nautilus's USDE)."""
    ccy = venue.starting_balances[0].split()[1].upper()
    return ccy if ccy in ("USDE", "USDT") else "USDE"

class PaperConfigError(ValueError):
    """The config cannot run as a paper session (names the key, the value and what was expected)."""


class PaperFailed(RuntimeError):
    """The paper node could not start or stopped with an error."""


def to_live_id(iid: str) -> str:
    """Config instrument id -> id of Nautilus's Binance client (``X-PERP.BINANCE_USDM`` -> ``X-PERP.BINANCE``)."""
    i = InstrumentId.from_str(iid)
    return f"{i.symbol}.{LIVE_VENUE}" if str(i.venue) == PERP_VENUE else iid


def to_live_bar_type(bt: str) -> str:
    """Config bar type -> live bar type (instrument id mapped by :func:`to_live_id`)."""
    b = BarType.from_str(bt)
    iid = str(b.instrument_id)
    return bt.replace(iid, to_live_id(iid), 1)


@dataclass(frozen=True)
class PaperPlan:
    """What :func:`plan_paper` derived from the config.

    Attributes:
        settings: The ``[paper]`` table.
        venue: The config venue traded (its fees, balances, account type, leverage).
        product: ``"um"`` (Binance USDT-M perpetuals), ``"spot"`` or ``"ethereal"`` (Ethereal perpetuals).
        id_map: config instrument id -> live instrument id.
        bar_map: config bar type -> live bar type.
        interval_ns: Bar interval (ns) of the config's bar types (all equal).
        stale_after_s: Seconds without a bar before the feed counts as stale.
        leverage: The sandbox ``default_leverage``.
    """

    settings: PaperSettings
    venue: Any
    product: str
    id_map: dict[str, str]
    bar_map: dict[str, str]
    interval_ns: int
    stale_after_s: float
    leverage: Decimal
    perps: list[str] = field(default_factory=list)
    not_simulated: list[str] = field(default_factory=list)
    live_venue: str = LIVE_VENUE

    @property
    def is_margin(self) -> bool:
        """Perpetuals (equity = balance + unrealized PnL), not spot."""
        return self.product in ("um", "ethereal")

    @property
    def reverse_ids(self) -> dict[str, str]:
        """live instrument id -> config instrument id."""
        return {v: k for k, v in self.id_map.items()}


def plan_paper(cfg: BacktestConfig, source: str = "<config>") -> PaperPlan:
    """Check that ``cfg`` can run as a paper session and derive the live mapping.

    Raises:
        PaperConfigError: no ``[paper]`` table; data source not available; more than one venue;
            a venue other than ``BINANCE``/``BINANCE_USDM``; per-instrument leverages that differ
            from ``default_leverage``; bar types of different intervals or not time bars.
    """
    s = cfg.paper
    if s is None:
        raise PaperConfigError(f"{source}: key paper: missing; add a [paper] table (see docs/paper.md)")
    if len(cfg.venues) != 1:
        raise PaperConfigError(
            f"{source}: key venues = {[v.name for v in cfg.venues]!r}: expected exactly one venue per paper node "
            "(Nautilus's Binance client puts spot and USDT-M on the same venue BINANCE, and the sandbox keeps one "
            "account per venue); run one paper node per venue")
    venue = cfg.venues[0]
    if s.data_source == "ethereal":
        return _plan_ethereal(cfg, s, venue, source)
    if venue.name not in (LIVE_VENUE, PERP_VENUE):
        raise PaperConfigError(f"{source}: key venues[0].name = {venue.name!r}: expected 'BINANCE' (spot) or "
                               f"'BINANCE_USDM' (USDT-M) for data_source 'binance'")
    product = "um" if venue.name == PERP_VENUE else "spot"
    levs = set(venue.leverages.values())
    if s.execution == "sandbox" and levs and levs != {venue.default_leverage}:
        raise PaperConfigError(
            f"{source}: key venues[0].leverages = {dict(venue.leverages)!r}: the rc7 sandbox has only one "
            f"default_leverage ({venue.default_leverage}); set every per-instrument leverage to it")
    interval_ns = _bar_interval_ns(cfg, source)
    id_map = {iid: to_live_id(iid) for iid in cfg.instrument_ids()}
    bar_map = {bt: to_live_bar_type(bt) for bt in cfg.bar_types}
    stale = s.stale_after_seconds if s.stale_after_seconds is not None else 2 * interval_ns / 1e9
    perps = [iid for iid in id_map if "-PERP" in iid]
    not_sim = not_simulated_by_sandbox(venue) if s.execution == "sandbox" else not_simulated_by_sim(venue)
    return PaperPlan(s, venue, product, id_map, bar_map, interval_ns, stale,
                     Decimal(str(venue.default_leverage)), perps, not_sim)


def _bar_interval_ns(cfg: BacktestConfig, source: str) -> int:
    intervals = set()
    for bt in cfg.bar_types:
        spec = BarType.from_str(bt).spec
        if not spec.is_time_aggregated():
            raise PaperConfigError(f"{source}: key bar_types = {bt!r}: expected a time bar (e.g. 1-MINUTE)")
        intervals.add(spec.get_interval_ns())
    if len(intervals) != 1:
        raise PaperConfigError(f"{source}: key bar_types = {cfg.bar_types!r}: expected one bar interval")
    return intervals.pop()


def to_internal_bar_type(bt: str) -> str:
    """``X-1-MINUTE-LAST-EXTERNAL`` -> ``X-1-MINUTE-LAST-INTERNAL`` (Ethereal has no candle stream:
    Nautilus aggregates live bars from the trade stream). INTERNAL bar types are unchanged."""
    return bt[: -len("-EXTERNAL")] + "-INTERNAL" if bt.endswith("-EXTERNAL") else bt


def _plan_ethereal(cfg: BacktestConfig, s: PaperSettings, venue: Any, source: str) -> PaperPlan:
    """Plan for ``data_source = "ethereal"``: our Ethereal data client + our Redis-backed paper execution."""
    if venue.name != ETHEREAL_VENUE_NAME:
        raise PaperConfigError(f"{source}: key venues[0].name = {venue.name!r}: expected 'ETHEREAL' for "
                               "paper.data_source = 'ethereal'")
    if venue.account_type != "MARGIN":
        raise PaperConfigError(f"{source}: key venues[0].account_type = {venue.account_type!r}: expected 'MARGIN' "
                               "(Ethereal trades perpetuals)")
    if getattr(venue, "oms_type", "NETTING") != "NETTING":
        raise PaperConfigError(f"{source}: key venues[0].oms_type = {venue.oms_type!r}: expected 'NETTING' "
                               "(Ethereal nets positions per product)")
    for bt in cfg.bar_types:
        if BarType.from_str(bt).spec.price_type.name != "LAST":
            raise PaperConfigError(f"{source}: key bar_types = {bt!r}: expected LAST bars (built from Ethereal trades)")
    if s.execution != "simulated":
        raise PaperConfigError(f"{source}: key paper.execution = {s.execution!r}: Ethereal paper trading runs on the "
                               "simulated execution client only (expected 'simulated')")
    interval_ns = _bar_interval_ns(cfg, source)
    id_map = {iid: iid for iid in cfg.instrument_ids()}
    bar_map = {bt: to_internal_bar_type(bt) for bt in cfg.bar_types}
    stale = s.stale_after_seconds if s.stale_after_seconds is not None else 2 * interval_ns / 1e9
    not_sim = not_simulated_by_sim(venue)
    not_sim.append("bars: Ethereal has no candle stream; live bars are built from the trade stream on the venue's "
                   "trade timestamps (adapters/ethereal/bars.py), missed ones from its price history; the "
                   "backtest reads the venue's candles: they agree unless the venue's candles are not its trades")
    return PaperPlan(s, venue, "ethereal", id_map, bar_map, interval_ns, stale,
                     Decimal(str(venue.default_leverage)), list(id_map), not_sim, live_venue=ETHEREAL_VENUE_NAME)


def not_simulated_by_sim(venue: Any) -> list[str]:
    """What the simulated execution client (:mod:`nautilus_app.paper_exec`) does not do as the backtest does."""
    out = ["order types: MARKET, LIMIT, STOP_MARKET and STOP_LIMIT (others are denied), modify applied at once; the "
           "rest of a limit order larger than a bar price's size is not re-matched at every later command's "
           "arrival between bars, as Nautilus's bar matching does (docs/paper.md)"]
    if venue.account_type == "MARGIN":
        out.append("mark price: liquidation is checked on bars (last price), as in the backtest; funding uses the "
                   "live mark price")
    return out


def not_simulated_by_sandbox(venue: Any) -> list[str]:
    """Backtest venue models the rc7 sandbox cannot apply, as sentences (logged and stored in run.json).

    The sandbox fills market orders at the signal bar's close (``fill_timing = "same_close"``), has
    no slippage model of ours, no liquidation, no isolated margin, no latency model and no margin
    brackets. Paper results are then comparable to a backtest with ``fill_timing = "same_close"``,
    ``slippage = "none"``, ``liquidation = false``.
    """
    out = []
    if getattr(venue, "fill_timing", "same_close") != "same_close":
        out.append(f"fill_timing={venue.fill_timing!r}: the sandbox fills market orders at the signal bar's close "
                   "(same_close)")
    if getattr(venue, "slippage", "none") != "none":
        out.append(f"slippage={venue.slippage!r}: not applied by the sandbox (fills at the bar close)")
    if getattr(venue, "latency", None) is not None:
        out.append("latency: not applied by the sandbox")
    if venue.account_type == "MARGIN" and getattr(venue, "liquidation", False):
        out.append("liquidation: the sandbox does not liquidate (watch status.json equity)")
    if getattr(venue, "margin_mode", "cross") != "cross":
        out.append(f"margin_mode={venue.margin_mode!r}: the sandbox margin is cross-account only")
    if getattr(venue, "brackets", None):
        out.append("brackets: the sandbox uses the Binance client's flat instrument margins")
    return out
