"""Backtest run configuration: TOML -> frozen msgspec structs, validated with clear errors.

One TOML file describes one run. The full schema with every key, unit and default is documented in
``docs/config.md``; ``configs/*.toml`` are working examples. Loading never guesses: unknown keys,
wrong types and out-of-range values raise :class:`ConfigError` naming the file, the key path
(e.g. ``venues[0].taker_fee``), the value and what was expected.

Units: fees are **fractions of notional** (``0.001`` = 0.10 % = 10 basis points); leverage is a
multiple (``20`` = 20x); times are ISO-8601 UTC dates or datetimes; balances are ``"<amount> <CCY>"``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import msgspec
import pandas as pd

from core import paths
from nautilus_app.paper_config import PaperSettings
from nautilus_app.venue import models as _venue_models

#: Binance's default (VIP 0) maker/taker fees per venue, fractions of notional (defined with the venue models).
DEFAULT_FEES = _venue_models.DEFAULT_FEES

#: Largest starting balance Nautilus's ``Money`` holds (its 128-bit bound is about 1.7e13 at 16 decimals).
MAX_BALANCE = Decimal("1e13")

#: Highest leverage Binance offers on any USDT-M symbol; per-instrument caps live with the instrument.
MAX_LEVERAGE = 125.0

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=0.1, description="fraction of notional, 0.001 = 0.10%")]
Leverage = Annotated[float, msgspec.Meta(ge=1.0, le=MAX_LEVERAGE)]


#: Run names (they name the results folder): no path separators, no leading dot.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}")


_EARLIEST, _LATEST = pd.Timestamp("1970-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")


class ConfigError(ValueError):
    """A run config is invalid. The message names the file, the key, the value and what was expected."""


class _Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


Bps = Annotated[float, msgspec.Meta(ge=0.0, le=10_000.0, description="basis points, 1 bp = 0.01%")]


class LatencyConfig(_Frozen, kw_only=True):
    """Per-command latency of a venue (milliseconds), drawn independently for every submit/modify/cancel.

    ``latency = max(min_ms, normal(mean_ms, std_ms))``, multiplied by ``spike_multiplier`` with
    probability ``spike_probability``; seeded (``seed``), so runs repeat exactly. See
    :mod:`nautilus_app.venue.latency`.
    """

    mean_ms: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    std_ms: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    min_ms: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    spike_probability: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    spike_multiplier: Annotated[float, msgspec.Meta(ge=1.0)] = 1.0
    seed: int = 0


class BracketVersion(_Frozen, kw_only=True):
    """A maintenance-margin bracket table effective from a date (Binance changes them).

    Attributes:
        effective_from: ISO date from which the table applies.
        tiers: ``[notional cap USDT, maintenance rate (fraction), max leverage]`` rows, increasing caps;
            floors and maintenance amounts are derived (:func:`core.brackets.make_brackets`).
    """

    effective_from: str
    tiers: list[tuple[float, float, float]]


#: ``costs = "realistic"`` slippage: (kind, base bps, impact bps). Base: framework-prd.md's
#: ``base_slippage_bps = 1``; impact: its ``0.1 x sqrt(order / average daily volume)`` (a fraction) on our
#: model's bar volume, with the daily volume = 1,440 one-minute bars: ``0.1 x 10,000 / sqrt(1,440)`` =
#: 26.35 bps x sqrt(qty / 1m bar volume). trading-bot-plan.md's flat 10 bps is ``slippage = "fixed"``,
#: ``slippage_bps = 10`` (docs/simulation.md explains the choice).
DEFAULT_SLIPPAGE: tuple[str, float, float] = ("volume", 1.0, 26.35)
#: ``costs = "realistic"`` latency: framework-prd.md's latency simulation defaults (seed 0).
DEFAULT_LATENCY: dict[str, float] = {"mean_ms": 5.0, "std_ms": 2.0, "min_ms": 0.5, "spike_probability": 0.01,
                                     "spike_multiplier": 10.0}


class VenueConfig(_Frozen, kw_only=True):
    """One simulated venue (exchange account): plain data; its models (fees, slippage, brackets) are built
    from it by :mod:`nautilus_app.venue.models`.

    Attributes:
        name: Venue id, e.g. ``"BINANCE"`` (spot) or ``"BINANCE_USDM"`` (USDT-M futures). Must match the
            venue part of the instrument ids traded on it.
        account_type: ``"CASH"`` (spot, no borrowing) or ``"MARGIN"`` (perpetuals, leverage).
        oms_type: ``"NETTING"`` (one position per instrument, as Binance one-way mode) or ``"HEDGING"``.
        starting_balances: e.g. ``["100000 USDT"]``; amounts in the currency's units.
        maker_fee: Maker fee, fraction of notional. Default: ``fee_tier``'s, else Binance VIP 0.
        taker_fee: Taker fee, fraction of notional. Default: ``fee_tier``'s, else Binance VIP 0.
        fee_tier: Binance VIP tier (``"VIP0"`` .. ``"VIP9"``) for the default fees (venue/fees.py).
        default_leverage: Leverage for instruments not in ``leverages`` (MARGIN accounts only), 1..max_leverage.
        leverages: Per-instrument leverage, ``{"BTCUSDT-PERP.BINANCE_USDM" = 10}``, 1..max_leverage.
        max_leverage: Leverage cap of this venue (default 20, at most 125); the instrument's first
            bracket caps it too.
        fill_timing: ``"next_open"`` (default: market orders fill at the next bar's open) or
            ``"same_close"`` (at the signal bar's close, Nautilus's default).
        costs: Which execution costs are simulated by default (docs/simulation.md, "Costs"):
            ``"realistic"`` (default): the specifications' assumptions: maker/taker fees, the volume
            slippage model (``DEFAULT_SLIPPAGE``: 1 bp + 26.35 bps x sqrt(qty / 1m bar volume)) and
            framework-prd.md's latency (``DEFAULT_LATENCY``: 5 ms mean, 2 ms std, 0.5 ms minimum, 1 %
            spikes of 10x); ``"fees_only"``: fees, no slippage, no latency (this platform's defaults
            before issue 21); ``"frictionless"``: no fees, no slippage, no latency (the idealised run
            for comparisons; funding and liquidation still apply: they are market mechanics). Keys set
            explicitly override the ``costs`` defaults, except that ``"frictionless"`` refuses
            explicit slippage, latency or fees.
        slippage: ``"none"``, ``"fixed"`` (``slippage_bps``) or ``"volume"``
            (``slippage_bps + slippage_impact_bps x sqrt(qty / bar volume)``, at most ``slippage_max_bps``);
            default by ``costs``. Unset numbers: ``fixed`` 10 bps (trading-bot-plan.md), ``volume`` 1 bp +
            26.35 bps impact (``DEFAULT_SLIPPAGE``).
        margin_mode: ``"cross"`` (default, Binance's default) or ``"isolated"`` (MARGIN only).
        liquidation: Liquidate positions at Binance's liquidation price (MARGIN only; default true).
        liquidation_fee: Clearance fee on liquidated notional, fraction (default 0.0125 = 1.25 %).
        brackets: Maintenance brackets per instrument id, overriding the shipped Binance tables.
        latency: Seeded random latency of order commands (:class:`LatencyConfig`); default by ``costs``
            (``true``: ``DEFAULT_LATENCY``; ``false``: none).
        funding_rate: A constant funding rate (fraction per interval, e.g. 0.0001) used *instead of*
            the catalog's funding rows for every perpetual of the venue. Unset: catalog rows, required.
        funding_interval_hours: Interval of the constant funding rate (default 8).
    """

    name: str
    account_type: Literal["CASH", "MARGIN"]
    oms_type: Literal["NETTING", "HEDGING"] = "NETTING"
    starting_balances: list[str]
    maker_fee: Fraction | None = None
    taker_fee: Fraction | None = None
    fee_tier: str | None = None
    default_leverage: Leverage = 1.0
    leverages: dict[str, Leverage] = {}
    max_leverage: Leverage = 20.0
    fill_timing: Literal["next_open", "same_close"] = "next_open"
    costs: Literal["realistic", "fees_only", "frictionless"] = "realistic"
    slippage: Literal["none", "fixed", "volume"] | None = None  # resolved by costs in __post_init__
    slippage_bps: Bps | None = None
    slippage_impact_bps: Bps | None = None
    slippage_max_bps: Bps = 100.0
    margin_mode: Literal["cross", "isolated"] = "cross"
    liquidation: bool = True
    liquidation_fee: Fraction = 0.0125
    brackets: dict[str, list[BracketVersion]] = {}
    # resolved in __post_init__ to a LatencyConfig or None ("by_costs": by ``costs``; true: on; false/None: off)
    latency: LatencyConfig | bool | Literal["by_costs"] | None = "by_costs"
    funding_rate: Annotated[float, msgspec.Meta(ge=-0.05, le=0.05)] | None = None
    funding_interval_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 8

    def __post_init__(self) -> None:
        """Resolve the ``costs`` defaults: afterwards ``slippage*`` are concrete and ``latency`` is a
        :class:`LatencyConfig` or None (what run.json and the summary report)."""
        put = msgspec.structs.force_setattr
        if self.costs == "frictionless":
            explicit = [k for k, v in (("slippage", self.slippage not in (None, "none")),
                                       ("slippage_bps", bool(self.slippage_bps)),
                                       ("slippage_impact_bps", bool(self.slippage_impact_bps)),
                                       ("latency", self.latency not in ("by_costs", None, False)),
                                       ("maker_fee", bool(self.maker_fee)), ("taker_fee", bool(self.taker_fee)),
                                       ("fee_tier", self.fee_tier is not None)) if v]
            if explicit:
                raise ValueError(f'costs = "frictionless" has no fees, slippage or latency; remove {explicit}')
            put(self, "maker_fee", 0.0)
            put(self, "taker_fee", 0.0)
        if self.slippage is None:
            put(self, "slippage", DEFAULT_SLIPPAGE[0] if self.costs == "realistic" else "none")
        # unset numbers of an explicit model: the specifications' (fixed: trading-bot-plan's 10 bps)
        base = {"none": 0.0, "fixed": 10.0, "volume": DEFAULT_SLIPPAGE[1]}[self.slippage]
        if self.slippage_bps is None:
            put(self, "slippage_bps", base)
        if self.slippage_impact_bps is None:
            put(self, "slippage_impact_bps", DEFAULT_SLIPPAGE[2] if self.slippage == "volume" else 0.0)
        # None (what a resolved "off" encodes to) stays off, so a re-decoded config is the same config
        if self.latency is True or (self.latency == "by_costs" and self.costs == "realistic"):
            put(self, "latency", LatencyConfig(**DEFAULT_LATENCY))
        elif not isinstance(self.latency, LatencyConfig):
            put(self, "latency", None)

    # Data lookups (the models are built by nautilus_app.venue.models: slippage_model, bracket_overrides).
    def fees(self) -> tuple[float, float]:
        """(maker, taker) fee fractions: :func:`nautilus_app.venue.models.venue_fees`."""
        return _venue_models.venue_fees(self)

    def leverage_for(self, instrument_id: str) -> float:
        """Leverage of an instrument on this venue: :func:`nautilus_app.venue.models.leverage_for`."""
        return _venue_models.leverage_for(self, instrument_id)


class StrategySpec(_Frozen, kw_only=True):
    """One strategy instance: which strategy (``name`` or ``strategy_path``) and its parameters.

    Attributes:
        name: A built-in strategy (``"ema_cross"``, see ``strategies.REGISTRY``) or the class name of a
            strategy in the user strategy folder (``user_strategies/``, ``--strategy-dir``).
        strategy_path: Instead of ``name``: ``"module.path:ClassName"`` or ``"path/to/file.py:ClassName"``
            (Nautilus's ``ImportableStrategyConfig`` form). Relative modules and files resolve against
            the config file's folder (and are stored as absolute files), then the user strategy folder,
            then installed packages.
        config_path: The config class in the same form; default: the strategy ``__init__``'s ``config``
            annotation, else ``<ClassName>Config`` beside the class.
        params: Fields of the strategy's config class (``instrument_id``, ``bar_type``, periods ...),
            checked against their types; unknown keys are an error (docs/strategies.md).
    """

    name: str | None = None
    strategy_path: str | None = None
    config_path: str | None = None
    params: dict[str, Any] = {}

    def label(self) -> str:
        """``name`` or ``strategy_path`` (for messages and summaries)."""
        return self.name or self.strategy_path or "?"

    def resolve(self) -> Any:
        """The :class:`nautilus_app.strategy_loader.StrategyRef` this entry names.

        Raises:
            nautilus_app.strategy_loader.StrategyLoadError: unknown name, path that cannot be imported.
        """
        from nautilus_app.strategy_loader import resolve_strategy

        return resolve_strategy(self.name, self.strategy_path, self.config_path)


class UniverseConfig(_Frozen, kw_only=True):
    """Run every ``[[strategies]]`` template on each symbol of a universe (``[universe]`` table).

    Attributes:
        market: ``"um"`` (USDT-M perpetuals, venue ``BINANCE_USDM``) or ``"spot"`` (venue ``BINANCE``).
        symbols: Binance symbols (``["SOLUSDT", "XRPUSDT"]``) or ``"*"``: every symbol with bars of
            ``interval`` in the catalog for that market.
        interval: Stored bar interval the run loads, e.g. ``"1m"``.
        min_coverage: With ``"*"``: keep symbols whose bars cover at least this fraction (0..1) of the
            run's ``[start, end)`` (default 0: any bars in the range).
        mode: ``"shared"`` (one engine, one account per venue for all symbols: portfolio effects, cross
            margin) or ``"per_symbol"`` (one engine per symbol, each with the full starting balance, run in
            parallel by the sweeps' process pool or Ray; combined as one account: starting balance plus
            the sum of the symbols' PnL).
        executor / workers / ray_address: How ``per_symbol`` runs in parallel (``"process"`` pool or
            ``"ray"``; ``ray_address = "auto"`` joins a running cluster).
        registry: Research registry URL recording the per-symbol runs (default
            ``$NAUTILUS_REGISTRY_URL`` or ``results/registry.sqlite``).

    Each template's params may omit ``instrument_id`` and ``bar_type`` (filled per symbol) or use the
    placeholders ``{symbol}``, ``{instrument_id}`` and ``{bar_type}`` in string values.
    """

    market: Literal["spot", "um"]
    symbols: list[str] | Literal["*"]
    interval: str = "1m"
    min_coverage: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    mode: Literal["shared", "per_symbol"] = "shared"
    executor: Literal["process", "ray"] = "process"
    workers: Annotated[int, msgspec.Meta(ge=1, le=512)] = 2
    ray_address: str | None = None
    registry: str | None = None


class BacktestConfig(_Frozen, kw_only=True):
    """A whole backtest run.

    Attributes:
        name: Short run name; the run id is ``<name>-<UTC time>-<config hash>``.
        bar_types: Bar types to load from the catalog, e.g. ``"BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"``.
            Funding rates and mark prices are loaded automatically for perpetual instruments.
        venues: Simulated venues; every instrument's venue must be listed.
        strategies: Strategy instances run together in one account per venue.
        start: Inclusive start (UTC), ISO date or datetime: bars that open at or after it; default the
            first bar in the catalog.
        end: Exclusive end (UTC): bars that open before it (``end = "2025-07-01"`` includes the bar
            of 06-30 23:59, which closes at 07-01 00:00); default the last bar.
        catalog: Catalog root; default ``$CATALOG_PATH`` or ``catalog/store``.
        log_level: Nautilus stdout log level; ``WARNING`` by default (``INFO`` costs ~40 % speed).
        allow_gaps: Run even if bars are missing in ``[start, end)`` beyond known exchange halts (default
            false: such a run fails naming the bar type and the missing span; nautilus_app/coverage.py).
        tearsheet: Write Nautilus's plotly ``tearsheet.html`` with the results (default false: written on
            demand by ``nautilus-app tearsheet RUN`` or the Dash app's link; it takes ~0.4 s).
        feed: ``"auto"`` (default): when every strategy is a vectorised-signals strategy the engine is fed
            only the bars at which something can happen (:mod:`nautilus_app.signal_feed`, same results,
            several times faster); ``"every_bar"``: every bar always goes through the engine.
        universe: Optional :class:`UniverseConfig`: the strategies are templates applied to each of its
            symbols (:func:`nautilus_app.universe.expand_universe`); ``bar_types`` may then be empty.
    """

    name: str
    bar_types: list[str]
    venues: list[VenueConfig]
    strategies: list[StrategySpec]
    start: str | None = None
    end: str | None = None
    catalog: str | None = None
    log_level: Literal["ERROR", "WARNING", "INFO", "DEBUG"] = "WARNING"
    paper: PaperSettings | None = None  # [paper] table: see nautilus_app/paper_config.py
    universe: UniverseConfig | None = None  # [universe] table: nautilus_app/universe.py expands it
    allow_gaps: bool = False
    tearsheet: bool = False
    feed: Literal["auto", "every_bar"] = "auto"

    def catalog_path(self) -> Path:
        """Absolute catalog root (relative paths are taken from the repository root, or the user directory:
        :func:`core.paths.base_dir`)."""
        if self.catalog is None:
            return paths.default_catalog_path()
        p = Path(self.catalog)
        return p if p.is_absolute() else (paths.base_dir() / p).resolve()

    def start_ns(self) -> int | None:
        """Start as UTC nanoseconds, or None."""
        return None if self.start is None else int(pd.Timestamp(self.start, tz="UTC").value)

    def end_ns(self) -> int | None:
        """End as UTC nanoseconds, or None."""
        return None if self.end is None else int(pd.Timestamp(self.end, tz="UTC").value)

    def bar_window_ns(self) -> tuple[int | None, int | None]:
        """Half-open ``[lo, hi)`` window on bar close time (``ts_init``, UTC ns) selecting the bars that
        *open* in ``[start, end)``: a bar closing exactly at ``start`` opened before it and is excluded;
        the bar opening at ``end - 1 interval`` closes at ``end`` and is included."""
        lo = None if self.start is None else self.start_ns() + 1  # type: ignore[operator]
        hi = None if self.end is None else self.end_ns() + 1  # type: ignore[operator]
        return lo, hi

    def digest(self) -> str:
        """Short sha256 of the canonical JSON of this config (identifies the run's inputs)."""
        return hashlib.sha256(msgspec.json.encode(self, order="sorted")).hexdigest()[:8]

    def instrument_ids(self) -> list[str]:
        """Instrument ids of all bar types, in order, unique."""
        from nautilus_trader.model import BarType

        return list(dict.fromkeys(str(BarType.from_str(bt).instrument_id) for bt in self.bar_types))


def load_config(path: str | Path, *, overrides: dict[str, Any] | None = None) -> BacktestConfig:
    """Read and validate a TOML run config.

    Args:
        path: The TOML file. Relative ``strategy_path``/``config_path`` entries resolve against its folder.
        overrides: Dotted key paths to replace before validation (:func:`apply_overrides`), e.g.
            ``{"start": "2025-06-01", "strategies.0.params.fast_period": 20}``.

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown key, wrong type, value out of range,
            unknown strategy or strategy parameter, venue/instrument mismatch, bad date range. The
            message names the file and the key path.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from e
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    if overrides:
        raw = apply_overrides(raw, overrides, source=str(path))
    return parse_config(raw, source=str(path), base_dir=path.resolve().parent)


def load_live_config(path: str | Path) -> tuple[BacktestConfig, Any, str]:
    """``(BacktestConfig, LiveSettings or None, TOML text)`` of a run config file: the config and its optional
    ``[live]`` table (:mod:`nautilus_app.live_config`), for ``nautilus-app live``."""
    from nautilus_app.live_config import parse_live

    path = Path(path)
    text = path.read_text()
    cfg = load_config(path)
    table = tomllib.loads(text).get("live")
    return cfg, (None if table is None else parse_live(table, str(path))), text


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], *, source: str = "<config>") -> dict[str, Any]:
    """A copy of ``raw`` with each dotted key path set (list items by index: ``strategies.0.params.x``).

    Raises:
        ConfigError: a path through a missing list item or a non-table value, naming the key.
    """
    import copy

    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"{source}: --set {dotted}: {where}: expected an index below {len(node)}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"{source}: --set {dotted}: {'.'.join(parts[:i])} is {node!r}, not a table or list")
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=VALUE"`` -> ``("a.b", value)``; VALUE is read as a TOML value (``20``, ``0.0004``, ``true``,
    ``"x"``, ``[1, 2]``), else kept as a plain string (``--set venues.0.fill_timing=same_close``).

    Raises:
        ConfigError: no ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. strategies.0.params.fast_period=20")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def parse_config(raw: dict[str, Any], *, source: str = "<config>", base_dir: Path | None = None) -> BacktestConfig:
    """Validate an already-parsed mapping (same rules and errors as :func:`load_config`).

    ``base_dir``: folder that relative ``strategy_path``/``config_path`` entries resolve against; they
    are stored as absolute files in the returned config (worker processes get the config, not the file).
    """
    if base_dir is not None and isinstance(raw.get("strategies"), list):
        from nautilus_app.strategy_loader import absolute_strategy_path

        raw = {**raw, "strategies": [
            {**s, **{k: absolute_strategy_path(s[k], base_dir) for k in ("strategy_path", "config_path")
                     if isinstance(s.get(k), str)}} if isinstance(s, dict) else s
            for s in raw["strategies"]]}
    if "live" in raw:  # [live]: validated here, read by nautilus_app/live.py; not part of the config's digest
        from nautilus_app.live_config import LiveConfigError, parse_live

        try:
            parse_live(raw["live"], source)
        except LiveConfigError as e:
            raise ConfigError(str(e)) from e
        raw = {k: v for k, v in raw.items() if k != "live"}
    try:
        cfg = msgspec.convert(raw, BacktestConfig)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {_readable(str(e))}") from e
    _check(cfg, source)
    return cfg


def _readable(msg: str) -> str:
    # msgspec says "... - at `$.venues[0].taker_fee`"; turn it into "venues[0].taker_fee: ..."
    if " - at `$." in msg:
        what, where = msg.rsplit(" - at `$.", 1)
        return f"key {where.rstrip('`')}: {what}"
    return msg


#: ``fail(key, value, expected)``: raise a :class:`ConfigError` naming the source, key, value and expectation.
Fail = Callable[[str, Any, str], NoReturn]


def _failer(source: str) -> Fail:
    def fail(key: str, value: Any, expected: str) -> NoReturn:
        raise ConfigError(f"{source}: key {key} = {value!r}: expected {expected}")

    return fail


def _check(cfg: BacktestConfig, source: str) -> None:
    """Every check of a decoded run config (the type and range checks are msgspec's), in this order:
    name, then (universe configs: :func:`_check_universe` only) required tables, dates, each venue
    (:func:`check_venue`), bar types, each venue against the run's instruments, strategies.

    Raises:
        ConfigError: the first failing check, naming the file, key, value and what was expected.
    """
    fail = _failer(source)
    check_name(cfg, fail)
    if cfg.universe is not None:
        _check_universe(cfg, source)
        return
    check_required(cfg, fail)
    check_dates(cfg, fail)
    venue_names = [v.name for v in cfg.venues]
    if len(set(venue_names)) != len(venue_names):
        fail("venues", venue_names, "unique venue names")
    for i, v in enumerate(cfg.venues):
        check_venue(i, v, fail)
    instrument_ids = check_bar_types(cfg, fail)
    for i, v in enumerate(cfg.venues):
        check_venue_instruments(i, v, instrument_ids, cfg, fail)
    check_strategies(cfg, instrument_ids, source, fail)


# ---- data: name, tables, dates, bar types -------------------------------------------------------------


def check_name(cfg: BacktestConfig, fail: Fail) -> None:
    """``name`` is a safe folder name (it names the results folder)."""
    if not _SAFE_NAME.fullmatch(cfg.name):
        fail("name", cfg.name, "1-80 letters, digits, '_', '-' or '.', not starting with '.' (it names the results "
             "folder)")


def check_required(cfg: BacktestConfig, fail: Fail) -> None:
    """At least one bar type, venue and strategy."""
    if not cfg.bar_types:
        fail("bar_types", cfg.bar_types, "at least one bar type")
    if not cfg.venues:
        fail("venues", cfg.venues, "at least one [[venues]] table")
    if not cfg.strategies:
        fail("strategies", cfg.strategies, "at least one [[strategies]] table")


def check_dates(cfg: BacktestConfig, fail: Fail) -> None:
    """``start`` / ``end`` are UTC times between 1970 and 2200 (nanoseconds fit an int64), start before end."""
    for key, value in (("start", cfg.start), ("end", cfg.end)):
        if value is not None:
            try:
                ts = pd.Timestamp(value, tz="UTC")
                ok = not pd.isna(ts) and _EARLIEST <= ts <= _LATEST  # nanoseconds since 1970 must fit an int64
            except (ValueError, TypeError, OverflowError):
                ok = False
            if not ok:
                fail(key, value, "an ISO-8601 date or datetime in UTC between 1970 and 2200, e.g. 2025-06-01")
    if cfg.start and cfg.end and cfg.start_ns() >= cfg.end_ns():  # type: ignore[operator]
        fail("end", cfg.end, f"a time after start {cfg.start!r}")


def check_bar_types(cfg: BacktestConfig, fail: Fail) -> set[str]:
    """Every bar type parses and is on a configured venue. Returns the run's instrument ids."""
    from nautilus_trader.model import BarType

    venue_names = [v.name for v in cfg.venues]
    for i, bt in enumerate(cfg.bar_types):
        try:
            bar_type = BarType.from_str(bt)
        except Exception:  # noqa: BLE001 - nautilus raises several types for bad strings
            fail(f"bar_types[{i}]", bt, "a Nautilus bar type like 'BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL'")
        venue = str(bar_type.instrument_id.venue)
        if venue not in venue_names:
            fail(f"bar_types[{i}]", bt, f"an instrument on a configured venue {venue_names} (got venue {venue!r})")
    return {str(BarType.from_str(bt).instrument_id) for bt in cfg.bar_types}


# ---- venues: balances, costs, account, risk (leverage), brackets --------------------------------------


def check_venue(i: int, v: VenueConfig, fail: Fail) -> None:
    """One ``[[venues]]`` table on its own (``venues[i]``): balances, costs, account rules, leverage, brackets."""
    check_balances(i, v, fail)
    check_costs(i, v, fail)
    check_account(i, v, fail)
    check_leverage(i, v, fail)
    check_bracket_tables(i, v, fail)


def check_balances(i: int, v: VenueConfig, fail: Fail) -> None:
    """Starting balances: at least one, each a positive ``"<amount> <CCY>"`` Nautilus's ``Money`` holds."""
    if not v.starting_balances:
        fail(f"venues[{i}].starting_balances", v.starting_balances, 'e.g. ["100000 USDT"]')
    for j, bal in enumerate(v.starting_balances):
        parts = bal.split()
        try:
            ok = (len(parts) == 2 and Decimal(parts[0]).is_finite() and 0 < Decimal(parts[0]) <= MAX_BALANCE
                  and parts[1].isalnum())
        except InvalidOperation:
            ok = False
        if not ok:
            fail(f"venues[{i}].starting_balances[{j}]", bal, 'a positive "<amount> <CURRENCY>" up to '
                 f'{MAX_BALANCE:,} (Nautilus\'s Money bound), e.g. "100000 USDT"')


def check_costs(i: int, v: VenueConfig, fail: Fail) -> None:
    """Fees: explicit for a venue without defaults; a known ``fee_tier``. (Slippage and latency are
    resolved and range-checked by the struct itself.)"""
    if v.name not in DEFAULT_FEES:
        for fee_key in ("maker_fee", "taker_fee"):
            if getattr(v, fee_key) is None:
                fail(f"venues[{i}].{fee_key}", None,
                     f"an explicit fee fraction (no default for venue {v.name!r}; known: {sorted(DEFAULT_FEES)})")
    if v.fee_tier is not None:
        from nautilus_app.venue.fees import tier_rates

        try:
            tier_rates(v.name, v.fee_tier)
        except KeyError as e:
            fail(f"venues[{i}].fee_tier", v.fee_tier, str(e).strip('"'))


def check_account(i: int, v: VenueConfig, fail: Fail) -> None:
    """A CASH account has no leverage, brackets or funding."""
    if v.account_type == "CASH" and (v.leverages or v.default_leverage != 1.0):
        fail(f"venues[{i}].leverages", dict(v.leverages), "no leverage on a CASH account (use MARGIN)")
    if v.account_type == "CASH" and (v.brackets or v.funding_rate is not None):
        fail(f"venues[{i}].brackets/funding_rate", v.name, "brackets and funding only on a MARGIN venue")


def check_leverage(i: int, v: VenueConfig, fail: Fail) -> None:
    """Every leverage at most the venue's ``max_leverage``."""
    for key, lev in [("default_leverage", v.default_leverage), *((f"leverages.{k}", x) for k, x in v.leverages.items())]:
        if lev > v.max_leverage:
            fail(f"venues[{i}].{key}", lev, f"at most the venue's max_leverage {v.max_leverage:g} "
                 "(raise max_leverage, up to 125, to allow more)")


def check_bracket_tables(i: int, v: VenueConfig, fail: Fail) -> None:
    """Each ``brackets`` version has a date and a table :func:`core.brackets.make_brackets` accepts."""
    from core.brackets import MarginError

    for iid, versions in v.brackets.items():
        for j, ver in enumerate(versions):
            try:
                pd.Timestamp(ver.effective_from)
                _venue_models.bracket_overrides(v)
            except (ValueError, MarginError) as e:
                fail(f"venues[{i}].brackets.{iid}[{j}]", ver.effective_from, f"a valid bracket table: {e}")


def check_venue_instruments(i: int, v: VenueConfig, instrument_ids: set[str], cfg: BacktestConfig,
                            fail: Fail) -> None:
    """A venue against the run's instruments: ``leverages`` name them; on MARGIN each perpetual has
    maintenance brackets (when liquidation is on) and a leverage within its first bracket's maximum."""
    for iid in v.leverages:
        if iid not in instrument_ids:
            fail(f"venues[{i}].leverages", iid, f"an instrument id of the run's bar types {sorted(instrument_ids)}")
    if v.account_type != "MARGIN":
        return
    from core.brackets import MarginError
    from core.instruments import brackets_for

    for iid in sorted(instrument_ids):
        if not iid.endswith("." + v.name):
            continue
        try:
            first = brackets_for(iid.split(".")[0].removesuffix("-PERP"), cfg.start, _venue_models.bracket_overrides(v),
                                 catalog=cfg.catalog_path())[0]
        except MarginError as e:
            if v.liquidation:
                fail(f"venues[{i}].brackets", iid, str(e))
            continue
        lev = _venue_models.leverage_for(v, iid)
        if lev > first.max_leverage:
            fail(f"venues[{i}].leverages.{iid}", lev,
                 f"at most the instrument's maximum leverage {first.max_leverage:g} (first bracket)")


# ---- strategies -----------------------------------------------------------------------------------------


def check_strategies(cfg: BacktestConfig, instrument_ids: set[str], source: str, fail: Fail) -> None:
    """Each ``[[strategies]]`` entry (:func:`check_strategy`)."""
    for i, s in enumerate(cfg.strategies):
        check_strategy(i, s, cfg, instrument_ids, source, fail)


def check_strategy(i: int, s: StrategySpec, cfg: BacktestConfig, instrument_ids: set[str], source: str,
                   fail: Fail) -> None:
    """``strategies[i]``: one reference; its params against the config class's declared types and ranges
    (before any data is loaded; errors name ``strategies[i].params.<key>``); its instrument and bar type
    among the run's; then the config class's own checks (rules across parameters)."""
    from nautilus_app.strategy_loader import StrategyLoadError

    if (s.name is None) == (s.strategy_path is None):
        fail(f"strategies[{i}]", s.label(), "exactly one of `name` (a built-in or user strategy) or "
             "`strategy_path = 'module:Class'`")
    if s.config_path is not None and s.strategy_path is None:
        fail(f"strategies[{i}].config_path", s.config_path, "config_path only together with strategy_path")
    try:
        ref = s.resolve()
        ref.check_params(s.params)  # unknown keys, types, ranges, required fields
    except StrategyLoadError as e:
        raise _strategy_error(source, i, s, e) from e
    if s.params.get("instrument_id") and str(s.params["instrument_id"]) not in instrument_ids:
        fail(f"strategies[{i}].params.instrument_id", s.params["instrument_id"],
             f"an instrument of the run's bar types {sorted(instrument_ids)}")
    if s.params.get("bar_type") and not _bar_type_available(str(s.params["bar_type"]), cfg.bar_types):
        fail(f"strategies[{i}].params.bar_type", s.params["bar_type"],
             f"one of bar_types {cfg.bar_types}, or a bar type Nautilus aggregates from one of them, "
             "e.g. 'BTCUSDT.BINANCE-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL'")
    try:
        ref.make_config(s.params, order_id_tag=f"{i:03d}")  # the config class's own checks
    except StrategyLoadError as e:
        raise _strategy_error(source, i, s, e) from e


def _check_universe(cfg: BacktestConfig, source: str) -> None:
    """Checks of a universe config before expansion (the expanded config gets every other check)."""
    from core.instruments import INTERVALS, venue_for

    u = cfg.universe
    assert u is not None
    if u.interval not in INTERVALS:
        raise ConfigError(f"{source}: key universe.interval = {u.interval!r}: expected one of {sorted(INTERVALS)}")
    if isinstance(u.symbols, list) and (not u.symbols or len(set(u.symbols)) != len(u.symbols)):
        raise ConfigError(f"{source}: key universe.symbols = {u.symbols!r}: expected a non-empty list of distinct "
                          "symbols or \"*\"")
    venue = venue_for(u.market)
    if venue not in [v.name for v in cfg.venues]:
        raise ConfigError(f"{source}: key venues: expected a [[venues]] table named {venue!r} for universe.market = "
                          f"{u.market!r}")
    if not cfg.strategies:
        raise ConfigError(f"{source}: key strategies: expected at least one [[strategies]] template")
    for i, s in enumerate(cfg.strategies):
        if (s.name is None) == (s.strategy_path is None):
            raise ConfigError(f"{source}: key strategies[{i}] = {s.label()!r}: expected exactly one of `name` or "
                              "`strategy_path`")
    if u.mode == "per_symbol" and len(cfg.venues) > 1:
        raise ConfigError(f"{source}: key universe.mode = 'per_symbol': expected one [[venues]] table (each symbol "
                          "runs alone on it)")


def _strategy_error(source: str, i: int, spec: StrategySpec, e: Exception) -> ConfigError:
    """A loader error as a ConfigError naming ``strategies[i].params.<key>`` or the strategy reference."""
    msg, key = str(e), f"strategies[{i}]"
    if msg.startswith(("key params.", "key params:")):  # "key params.x = ..." -> "key strategies[i].params.x = ..."
        return ConfigError(f"{source}: key {key}.{msg.removeprefix('key ')}")
    return ConfigError(f"{source}: key {key}.{'name' if spec.name else 'strategy_path'} = {spec.label()!r}: {msg}")


def _bar_type_available(bar_type: str, loaded: list[str]) -> bool:
    """True if ``bar_type`` is loaded, or is an ``INTERNAL@<source>`` aggregation of a loaded bar type.

    ``X-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL`` is built by Nautilus's data engine from the
    loaded ``X-1-MINUTE-LAST-EXTERNAL`` bars (higher timeframes are never stored; docs/data.md).
    """
    if bar_type in loaded:
        return True
    from nautilus_trader.model import BarType

    try:
        parsed = BarType.from_str(bar_type)
    except Exception:  # noqa: BLE001 - nautilus raises several types for bad strings
        return False
    return bool(parsed.is_composite()) and str(parsed.composite()) in loaded


def strategy_parameters(name: str) -> dict[str, Any]:
    """Parameter names and defaults (``None`` if required) of a strategy runnable by ``name``.

    ``name``: a built-in, a class in the user strategy folder, or a ``module:Class`` strategy path.
    Fields come from the config class in both Nautilus styles (class attributes and ``__init__``
    arguments), stopping at Nautilus's own ``StrategyConfig``; see
    :func:`nautilus_app.strategy_loader.config_fields`.

    Raises:
        nautilus_app.strategy_loader.StrategyLoadError: unknown strategy.
    """
    from nautilus_app.strategy_loader import REQUIRED, resolve_strategy

    ref = resolve_strategy(strategy_path=name) if ":" in name else resolve_strategy(name)
    return {k: (None if f.default is REQUIRED else f.default) for k, f in ref.parameters().items()}
