"""Risk settings of one strategy: the ``risk`` sub-table of a strategy's params (docs/risk.md).

Parsed with msgspec into frozen structs; unknown keys and wrong types raise :class:`RiskConfigError`
naming the key (``risk.sizing.method``), the value and what was expected.

Units: every ``*_pct``/``*_fraction`` field is a fraction (0.02 = 2 %), ``*_usdt`` fields are in the
instrument's quote/settlement currency (USDT), ``*_bars`` fields count bars of the strategy's bar type.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SizingMethod = Literal["fraction", "fixed_notional", "fixed_fractional", "kelly", "volatility"]
KellyFormula = Literal["win_loss_ratio", "stake_returns"]


class RiskConfigError(ValueError):
    """A ``risk`` sub-table is malformed (message names the key, the value and what is expected)."""


class SizingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Position sizing (formulas in :mod:`strategies.risk.sizing`).

    Attributes:
        method: ``fraction`` | ``fixed_notional`` | ``fixed_fractional`` | ``kelly`` | ``volatility``.
        fraction: ``fraction``: notional as a fraction of equity; also the Kelly fallback before
            ``kelly_min_trades`` trades. None = the strategy's ``position_fraction``.
        notional_usdt: ``fixed_notional``: notional per entry, USDT.
        risk_fraction: ``fixed_fractional``: fraction of equity lost if the stop is hit (default 0.02,
            framework-prd.md ``BankrollConfig.risk_per_trade``).
        kelly_fraction: multiplier of the full Kelly fraction (0.5 = half Kelly, ``BankrollConfig``).
        kelly_formula: ``"win_loss_ratio"`` (default, framework-prd.md Appendix B:
            ``K = p - (1 - p) / (W / L)``) or ``"stake_returns"`` (``K = p / L - (1 - p) / W``, the
            growth-optimal stake for per-trade returns ``+W`` / ``-L``); :mod:`strategies.risk.sizing`.
        kelly_window: number of most recent closed trades the statistics use.
        kelly_min_trades: trades needed before Kelly is used (``fraction`` before that).
        kelly_cap: upper bound of the Kelly notional fraction of equity.
        vol_risk_fraction: ``volatility``: fraction of equity per one ATR move of the position.
        atr_period: ATR length in bars (Wilder smoothing, Nautilus ``AverageTrueRange``).
    """

    method: SizingMethod = "fraction"
    fraction: float | None = None
    notional_usdt: float = 1000.0
    risk_fraction: float = 0.02
    kelly_fraction: float = 0.5
    kelly_formula: KellyFormula = "win_loss_ratio"
    kelly_window: int = 50
    kelly_min_trades: int = 20
    kelly_cap: float = 0.5
    vol_risk_fraction: float = 0.01
    atr_period: int = 14


class StopsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Protective exits placed as real orders after the entry fills (:mod:`strategies.risk.stops`).

    Attributes:
        stop_loss_pct: stop-market at ``fill x (1 - pct)`` (long) / ``fill x (1 + pct)`` (short).
        stop_loss_atr: stop-market ``k x ATR`` from the fill (ATR at the entry decision).
        take_profit_pct: reduce-only limit at ``fill x (1 + pct)`` (long) / ``(1 - pct)`` (short).
        trailing_pct: trailing stop ``pct`` below the highest high (long) since the fill.
        trailing_atr: trailing stop ``k x ATR`` below the highest high (long) since the fill.
        time_stop_bars: exit at market after this many bars since the entry decision.
        atr_period: ATR length in bars for the ATR stops.
    """

    stop_loss_pct: float | None = None
    stop_loss_atr: float | None = None
    take_profit_pct: float | None = None
    trailing_pct: float | None = None
    trailing_atr: float | None = None
    time_stop_bars: int | None = None
    atr_period: int = 14


class LimitsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Pre-trade limits checked in ``enter()`` before an order is sent (:mod:`strategies.risk.limits`).

    Attributes:
    Defaults are framework-prd.md's ``BankrollConfig`` (they apply as soon as a strategy has a ``risk``
    table; 0 or None switches one off): ``max_position_fraction`` 0.10 (``max_position_pct``),
    ``max_heat`` 0.06 (``max_portfolio_risk``), ``daily_loss_limit`` 0.02 (``max_daily_loss``),
    ``drawdown_pause`` 0.15 (``max_drawdown_pause``), ``drawdown_half_size`` 0.10
    (``drawdown_scaling_factor``), ``max_leverage`` 20.

    Attributes:
        max_position_notional_usdt: cap of the strategy's position notional in the instrument; larger
            entries are reduced to it.
        max_position_fraction: cap of the strategy's position notional in the instrument as a fraction
            of equity (default 0.10); reduced to it.
        max_leverage: cap of (position notional after the entry) / account equity; reduced to it.
        daily_loss_limit: refuse entries for the rest of the UTC day once equity is this fraction
            below the day's first bar equity (default 0.02).
        drawdown_pause: refuse entries while equity is this fraction (or more) below its peak
            (default 0.15): trading resumes when the drawdown is back under it (the peak is kept).
        drawdown_half_size: halve entry sizes while the drawdown is at least this (default 0.10).
        drawdown_pause_bars: None (default, the specification): the pause lasts until the drawdown is
            back under ``drawdown_pause``. An integer n: the earlier rule, a pause of n bars after which
            the peak is reset to the current equity.
        max_heat: cap of the total risk to stops of all open positions (every strategy on the
            trader) plus the new entry, as a fraction of equity (default 0.06); a position without a
            resting stop counts its whole notional; the entry is reduced to fit.
        max_correlated_exposure: cap of ``sqrt(w' C w)`` (a multiple of equity): ``w`` the signed
            notional / equity per instrument of every open position on the trader plus the entry,
            ``C`` the correlation matrix of the instruments' last ``correlation_window`` bar returns;
            the entry is reduced to fit.
        correlation_window: bars of returns for ``C`` (fewer available: correlation 1 is assumed).
    """

    max_position_notional_usdt: float | None = None
    max_position_fraction: float | None = 0.10
    max_leverage: float | None = 20.0
    daily_loss_limit: float | None = 0.02
    drawdown_pause: float | None = 0.15
    drawdown_half_size: float | None = 0.10
    drawdown_pause_bars: int | None = None
    max_heat: float | None = 0.06
    max_correlated_exposure: float | None = None
    correlation_window: int = 240


class BorrowingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Interest on borrowed amounts of MARGIN positions (:mod:`strategies.risk.borrowing`).

    Attributes:
        hourly_rate: interest per hour on borrowed USDT (longs), a fraction (0.00001 = 0.001 %/h).
        hourly_rate_short: interest per hour on the borrowed base asset (shorts, valued in USDT at
            the bar close); None = ``hourly_rate``.
        include_perpetuals: also charge positions in perpetual futures (on Binance nothing is
            borrowed there: funding is their carry cost). Default False: margin spot only.
    """

    hourly_rate: float = 0.0
    hourly_rate_short: float | None = None
    include_perpetuals: bool = False

    def enabled(self) -> bool:
        return self.hourly_rate > 0 or bool(self.hourly_rate_short)


class RiskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole ``risk`` sub-table."""

    sizing: SizingConfig = SizingConfig()
    stops: StopsConfig = StopsConfig()
    limits: LimitsConfig = LimitsConfig()
    borrowing: BorrowingConfig = BorrowingConfig()

    def needs_atr(self) -> int | None:
        """ATR period needed by the sizing or the stops, or None."""
        s, st = self.sizing, self.stops
        if st.stop_loss_atr is not None or st.trailing_atr is not None:
            return st.atr_period
        if s.method == "volatility":
            return s.atr_period
        return None


def _check(cfg: RiskConfig) -> None:
    def bad(key: str, value: Any, expected: str) -> None:
        raise RiskConfigError(f"risk.{key} = {value!r}: expected {expected}")

    s, st, lim = cfg.sizing, cfg.stops, cfg.limits
    if s.fraction is not None and not 0 < s.fraction <= 10:
        bad("sizing.fraction", s.fraction, "a fraction of equity in (0, 10]")
    if s.notional_usdt <= 0:
        bad("sizing.notional_usdt", s.notional_usdt, "USDT > 0")
    if not 0 < s.kelly_cap <= 10:
        bad("sizing.kelly_cap", s.kelly_cap, "a notional fraction of equity in (0, 10]")
    for key in ("risk_fraction", "kelly_fraction", "vol_risk_fraction"):
        v = getattr(s, key)
        if not 0 < v <= 1:
            bad(f"sizing.{key}", v, "a fraction in (0, 1]")
    for key in ("kelly_window", "kelly_min_trades", "atr_period"):
        if getattr(s, key) < 1:
            bad(f"sizing.{key}", getattr(s, key), "an integer >= 1")
    if s.kelly_min_trades > s.kelly_window:
        bad("sizing.kelly_min_trades", s.kelly_min_trades, f"<= kelly_window ({s.kelly_window})")
    for key in ("stop_loss_pct", "take_profit_pct", "trailing_pct"):
        v = getattr(st, key)
        if v is not None and not 0 < v < 1:
            bad(f"stops.{key}", v, "a fraction in (0, 1)")
    for key in ("stop_loss_atr", "trailing_atr"):
        v = getattr(st, key)
        if v is not None and v <= 0:
            bad(f"stops.{key}", v, "an ATR multiple > 0")
    if st.time_stop_bars is not None and st.time_stop_bars < 1:
        bad("stops.time_stop_bars", st.time_stop_bars, "an integer >= 1")
    if st.atr_period < 1:
        bad("stops.atr_period", st.atr_period, "an integer >= 1")
    if s.method == "fixed_fractional" and st.stop_loss_pct is None and st.stop_loss_atr is None:
        bad("sizing.method", s.method, "a stop distance: set risk.stops.stop_loss_pct or stop_loss_atr")
    if lim.correlation_window < 2:
        bad("limits.correlation_window", lim.correlation_window, "an integer >= 2")
    for key in ("max_position_notional_usdt", "max_position_fraction", "max_leverage", "max_heat",
                "max_correlated_exposure"):
        v = getattr(lim, key)
        if v is not None and v <= 0:
            bad(f"limits.{key}", v, "a value > 0")
    for key in ("daily_loss_limit", "drawdown_pause", "drawdown_half_size"):
        v = getattr(lim, key)
        if v is not None and not 0 < v < 1:
            bad(f"limits.{key}", v, "a fraction in (0, 1)")
    b = cfg.borrowing
    for key in ("hourly_rate", "hourly_rate_short"):
        v = getattr(b, key)
        if v is not None and not 0 <= v < 0.01:
            bad(f"borrowing.{key}", v, "a fraction per hour in [0, 0.01)")
    if lim.drawdown_pause_bars is not None and lim.drawdown_pause_bars < 1:
        bad("limits.drawdown_pause_bars", lim.drawdown_pause_bars, "an integer >= 1")


def parse_risk(raw: dict[str, Any] | RiskConfig | None) -> RiskConfig | None:
    """``risk`` sub-table (a dict as read from TOML/JSON) -> :class:`RiskConfig`; None stays None.

    Raises:
        RiskConfigError: unknown key, wrong type or out-of-range value (message names the key).
    """
    if raw is None or isinstance(raw, RiskConfig):
        return raw
    if not isinstance(raw, dict):
        raise RiskConfigError(f"risk = {raw!r}: expected a table (dict) with sizing/stops/limits sub-tables")
    try:
        cfg = msgspec.convert(raw, RiskConfig)
    except msgspec.ValidationError as e:
        raise RiskConfigError(f"risk: {e} (keys of docs/risk.md)") from e
    # TOML has no null: 0 switches a default-on limit off
    off = {k: None for k in ("drawdown_pause", "drawdown_half_size", "daily_loss_limit", "max_heat",
                             "max_position_fraction", "max_leverage", "drawdown_pause_bars")
           if getattr(cfg.limits, k) == 0}
    if off:
        cfg = msgspec.structs.replace(cfg, limits=msgspec.structs.replace(cfg.limits, **off))
    _check(cfg)
    return cfg
