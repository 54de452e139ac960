"""Performance metrics for backtest results: pure functions on pandas / numpy.

No NautilusTrader imports: the runner turns its account and position reports into the two inputs
below and calls :func:`compute_metrics`. The table of every key, its formula, units and edge cases
is in ``docs/metrics.md``.

Conventions (apply to every function here)
------------------------------------------
* **Fractions, never percent**: ``0.12`` means 12 %. Drawdowns are positive fractions (``0.25`` = a 25 %
  fall from the peak).
* **Money** is in the settlement / quote currency of the account (USDT for the Binance USD-M venues),
  keys carry a ``_usdt`` suffix.
* **Durations** are :class:`pandas.Timedelta` in the Python API and float **seconds** (``_s`` suffix)
  in the :func:`compute_metrics` dict.
* **Annualisation** uses 365 periods per year (crypto trades 24/7), on UTC calendar-day returns.
* **Timestamps** must be timezone-aware; they are converted to UTC.

Inputs
------
``equity``
    :class:`pandas.Series` of account equity (balance + unrealised PnL, USDT), indexed by a tz-aware
    :class:`pandas.DatetimeIndex`, one sample per bar, strictly increasing, finite, first value > 0.
``trades``
    :class:`pandas.DataFrame` of closed round trips, one row per trade. Columns used here: ``entry_time``,
    ``exit_time`` (tz-aware timestamps), ``pnl`` (USDT, net of fees and funding), ``return_frac``
    (pnl / entry notional). The runner also provides ``instrument_id``, ``side``, ``quantity``,
    ``entry_price``, ``exit_price``, ``fees`` and ``funding``; they are not needed for the metrics.
    A frame with zero rows (or ``None``) means "no trades" and needs no columns.

Errors
------
Invalid input raises :class:`ValueError` whose message starts with the argument name (``"equity: ..."``,
``"trades: ..."``, ``"returns: ..."``, ``"fees_paid: ..."``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

DAYS_PER_YEAR = 365
SECONDS_PER_DAY = 86_400.0
#: A standard deviation (of per-period fractional returns) below this is treated as zero.
ZERO_STD_TOL = 1e-12

TRADE_COLUMNS = ("entry_time", "exit_time", "pnl", "return_frac")

__all__ = [
    "DAYS_PER_YEAR",
    "Drawdown",
    "TradeStats",
    "annualised_volatility",
    "cagr",
    "calmar_ratio",
    "compute_metrics",
    "daily_returns",
    "drawdown_series",
    "exposure",
    "group_breakdown",
    "json_safe",
    "max_drawdown",
    "open_trades_summary",
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "trade_stats",
    "validate_equity",
    "validate_trades",
]


# --------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------


def validate_equity(equity: pd.Series, name: str = "equity") -> pd.Series:
    """Check an equity curve and return it as float64 with a UTC index.

    Input: ``pd.Series`` of equity (USDT) on a tz-aware ``DatetimeIndex``.

    Raises ``ValueError`` (message starts with ``name``) if the series is not a Series, is empty,
    contains NaN or +-inf, has a non-datetime or tz-naive index, an index that is not strictly
    increasing (duplicates count as non-monotonic), or a first value <= 0 (returns relative to the
    start would be undefined).
    """
    if not isinstance(equity, pd.Series):
        raise ValueError(f"{name}: expected a pandas Series, got {type(equity).__name__}")
    if len(equity) == 0:
        raise ValueError(f"{name}: is empty")
    if not isinstance(equity.index, pd.DatetimeIndex):
        raise ValueError(f"{name}: index must be a DatetimeIndex, got {type(equity.index).__name__}")
    if equity.index.tz is None:
        raise ValueError(f"{name}: index must be timezone-aware (UTC)")
    try:
        values = equity.to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: values must be numeric ({exc})") from exc
    if np.isnan(values).any():
        raise ValueError(f"{name}: contains NaN")
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: contains infinite values")
    if not (equity.index.is_monotonic_increasing and equity.index.is_unique):
        raise ValueError(f"{name}: index must be strictly increasing (sorted, no duplicate timestamps)")
    if values[0] <= 0:
        raise ValueError(f"{name}: first value must be > 0, got {values[0]!r}")
    return pd.Series(values, index=equity.index.tz_convert("UTC"), name=equity.name)


def _validate_returns(returns: pd.Series | np.ndarray | list[float], name: str = "returns") -> np.ndarray:
    arr = np.asarray(returns, dtype="float64")
    if arr.ndim != 1:
        raise ValueError(f"{name}: must be one-dimensional")
    if arr.size == 0:
        raise ValueError(f"{name}: is empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name}: contains NaN")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains infinite values")
    return arr


def _validate_periods(periods_per_year: float) -> float:
    p = float(periods_per_year)
    if not math.isfinite(p) or p <= 0:
        raise ValueError(f"periods_per_year: must be a finite number > 0, got {periods_per_year!r}")
    return p


def _validate_number(value: float, name: str, *, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: must be a number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if positive and v <= 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return v


def _to_utc_times(col: pd.Series, name: str) -> pd.Series:
    if isinstance(col.dtype, pd.DatetimeTZDtype):  # already tz-aware: pd.to_datetime would only re-check it
        times = col
    else:
        try:
            times = pd.to_datetime(col)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: not convertible to timestamps ({exc})") from exc
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"{name}: timestamps must be timezone-aware (UTC)")
    if times.isna().any():
        raise ValueError(f"{name}: contains missing timestamps")
    return times.dt.tz_convert("UTC")


def validate_trades(trades: pd.DataFrame | None) -> pd.DataFrame:
    """Check a closed-trades frame; return a copy sorted by exit time with UTC times.

    Input: ``pd.DataFrame`` with at least the columns ``entry_time``, ``exit_time`` (tz-aware
    timestamps), ``pnl`` (float USDT) and ``return_frac`` (float fraction). ``None`` or a frame with
    zero rows is accepted as "no trades" (an empty frame with those columns is returned).

    Sorting: by ``exit_time``, ties by ``entry_time``, then original row order (stable). That order
    defines the win / loss streaks.

    Raises ``ValueError`` ("trades: ..." / "trades.<column>: ...") if it is not a DataFrame, a column
    is missing, ``pnl`` / ``return_frac`` contain NaN or +-inf, a time is missing or tz-naive, or any
    ``exit_time`` is before its ``entry_time``.
    """
    if trades is None:
        return _empty_trades()
    if not isinstance(trades, pd.DataFrame):
        raise ValueError(f"trades: expected a pandas DataFrame, got {type(trades).__name__}")
    if len(trades) == 0:
        return _empty_trades()
    missing = [c for c in TRADE_COLUMNS if c not in trades.columns]
    if missing:
        raise ValueError(f"trades: missing columns {missing}")
    out = trades.copy()
    for col in ("pnl", "return_frac"):
        try:
            vals = out[col].to_numpy(dtype="float64")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"trades.{col}: values must be numeric ({exc})") from exc
        if not np.isfinite(vals).all():
            raise ValueError(f"trades.{col}: contains NaN or infinite values")
        out[col] = vals
    for col in ("entry_time", "exit_time"):
        out[col] = _to_utc_times(out[col], f"trades.{col}")
    bad = out["exit_time"] < out["entry_time"]
    if bad.any():
        first = out.index[bad.to_numpy()][0]
        raise ValueError(f"trades: exit_time before entry_time (row {first!r})")
    out = out.sort_values(["exit_time", "entry_time"], kind="mergesort").reset_index(drop=True)
    return out


def _empty_trades() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entry_time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "exit_time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "pnl": pd.Series([], dtype="float64"),
            "return_frac": pd.Series([], dtype="float64"),
        }
    )


# --------------------------------------------------------------------------------------------------
# equity-curve metrics
# --------------------------------------------------------------------------------------------------


class Drawdown(NamedTuple):
    """Result of :func:`max_drawdown` (unpacks as a 4-tuple)."""

    #: Largest fall from a running peak, as a positive fraction of that peak (0.25 = -25 %). 0.0 if none.
    max_drawdown: float
    #: Time of the peak the maximum drawdown is measured from; ``None`` if there is no drawdown.
    peak_time: pd.Timestamp | None
    #: Time of the lowest point of that drawdown (first occurrence); ``None`` if there is no drawdown.
    trough_time: pd.Timestamp | None
    #: From ``peak_time`` to the first sample after the trough with equity >= the peak value, or to the
    #: last sample if equity never got back to the peak. ``Timedelta(0)`` if there is no drawdown.
    duration: pd.Timedelta


def drawdown_series(equity: pd.Series) -> pd.Series:
    """Drawdown at every sample: ``1 - E_t / max(E_0..E_t)`` (positive fraction, 0 at new highs).

    Input: equity ``pd.Series`` (see module docstring). Output: float Series on the same (UTC) index.
    Values above 1 are possible only if equity goes negative. Raises ``ValueError`` ("equity: ...").
    """
    eq = validate_equity(equity)
    peak = eq.cummax()
    return 1.0 - eq / peak


def _drawdown_details(eq: pd.Series) -> tuple[Drawdown, pd.Timestamp | None]:
    values = eq.to_numpy()
    index = eq.index
    peak = np.maximum.accumulate(values)
    dd = 1.0 - values / peak  # peak >= first value > 0
    i_trough = int(np.argmax(dd))  # first occurrence of the maximum
    max_dd = float(dd[i_trough])
    if max_dd <= 0.0:
        return Drawdown(0.0, None, None, pd.Timedelta(0)), None
    peak_value = peak[i_trough]
    # the drawdown episode starts at the LAST sample at the peak value before the trough
    i_peak = int(np.flatnonzero(values[: i_trough + 1] >= peak_value)[-1])
    after = np.flatnonzero(values[i_trough + 1 :] >= peak_value)
    recovery_time = index[i_trough + 1 + int(after[0])] if after.size else None
    end = recovery_time if recovery_time is not None else index[-1]
    return Drawdown(max_dd, index[i_peak], index[i_trough], end - index[i_peak]), recovery_time


def max_drawdown(equity: pd.Series) -> Drawdown:
    """Maximum drawdown of an equity curve.

    Input: equity ``pd.Series`` (USDT, tz-aware strictly increasing index).

    Formula: ``P_t = max(E_0..E_t)`` (running peak), ``DD_t = 1 - E_t / P_t``; ``max_drawdown = max_t DD_t``
    as a positive fraction (0.25 = equity fell 25 % below its peak).

    * ``trough_time``: first sample where ``DD_t`` reaches the maximum.
    * ``peak_time``: the last sample at or before the trough whose equity equals that running peak
      (the start of the drawdown episode; an earlier visit to the same level that was recovered from
      belongs to a previous episode).
    * ``duration`` (``pd.Timedelta``): from ``peak_time`` to *recovery*, the first sample after the trough
      with ``E_t >= P``; if equity never recovers, from ``peak_time`` to the last sample.
    * No drawdown (equity never below its running peak, e.g. flat or only rising): ``(0.0, None, None,
      Timedelta(0))``.

    Measured on the samples only (a ``starting_equity`` given to :func:`compute_metrics` is not a sample).
    Returns a :class:`Drawdown` named tuple (unpacks as ``dd, peak_time, trough_time, duration``).
    Raises ``ValueError`` ("equity: ...") on invalid input.
    """
    result, _ = _drawdown_details(validate_equity(equity))
    return result


def longest_underwater(equity: pd.Series) -> pd.Timedelta:
    """Longest time under water: the longest drawdown episode, however shallow.

    An episode starts at the last sample at a running peak before equity falls below it and ends at
    the first later sample with ``E_t >= peak`` (recovery), or at the last sample if equity never got
    back. Returns the longest episode's length (``Timedelta(0)`` if equity never falls below a peak).
    This is trading-bot-plan.md's ``max_drawdown_duration`` ("days underwater"); the duration of the
    *deepest* drawdown is :func:`max_drawdown`'s ``duration``.
    """
    eq = validate_equity(equity)
    values = eq.to_numpy()
    under = values < np.maximum.accumulate(values)
    if not under.any():
        return pd.Timedelta(0)
    idx = eq.index.asi8
    d = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)  # run [s, e): under water
    # episode: from the sample before the run (the peak; a run cannot start at sample 0) to the
    # sample after it (recovery) or the last sample
    longest = max(idx[min(e, len(idx) - 1)] - idx[s - 1] for s, e in zip(starts, ends, strict=True))
    return pd.Timedelta(int(longest), unit="ns")


def max_concurrent_positions(trades: pd.DataFrame | None) -> int:
    """Most positions open at the same time (trading-bot-plan.md ``max_concurrent_positions``).

    Each trade is open on ``[entry_time, exit_time)``: a position closed at ``t`` and another opened
    at ``t`` do not overlap. Positions of different strategies or instruments count separately.
    0 with no trades.
    """
    t = validate_trades(trades)
    if len(t) == 0:
        return 0
    times = np.concatenate([t["entry_time"].astype("int64").to_numpy(), t["exit_time"].astype("int64").to_numpy()])
    steps = np.concatenate([np.ones(len(t), dtype=np.int64), -np.ones(len(t), dtype=np.int64)])
    order = np.lexsort((steps, times))  # at equal times exits (-1) first
    return int(np.cumsum(steps[order]).max())


def leverage_stats(leverage: pd.Series | None) -> tuple[float | None, float | None]:
    """(average, maximum) of a leverage series (gross position notional / equity at each bar close).

    The average is over all samples (flat samples count as 0x), i.e. time-weighted for evenly spaced
    bars. Samples with equity <= 0 (leverage undefined, NaN/inf) are left out. ``(None, None)`` without
    a series or without finite samples.
    """
    if leverage is None:
        return None, None
    v = pd.to_numeric(leverage, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None, None
    return float(v.mean()), float(v.max())


def daily_returns(equity: pd.Series, starting_equity: float | None = None) -> pd.Series:
    """Returns between UTC calendar-day closes.

    Input: equity ``pd.Series`` (USDT). ``starting_equity`` (USDT, optional): the value the first day's
    return is measured from; defaults to the first equity sample.

    Formula: ``C_d`` = last equity sample in UTC day ``d`` (00:00:00 inclusive to next 00:00:00
    exclusive). ``r_d = C_d / C_{d-1} - 1``; for the first day ``r_0 = C_0 / S - 1`` with
    ``S = starting_equity`` or the first equity sample. Days without any sample (data gaps) carry the
    previous close forward (return 0.0).

    Output: float Series of fractions, one per calendar day from the first to the last sample's day,
    indexed by the day's UTC midnight. A curve inside a single day yields one value.

    Raises ``ValueError`` ("equity: ..." / "starting_equity: ...") on invalid input, or
    ("equity: ...") if a day closes at <= 0 and a later return would divide by it.
    """
    eq = validate_equity(equity)
    start = (
        eq.iloc[0]
        if starting_equity is None
        else _validate_number(starting_equity, "starting_equity", positive=True)
    )
    closes = eq.resample("1D").last().ffill()
    prev = closes.shift(1)
    prev.iloc[0] = start
    if (prev <= 0).any():
        day = prev.index[(prev <= 0).to_numpy()][0]
        raise ValueError(f"equity: returns undefined after a non-positive daily close (before {day.date()})")
    out = closes / prev - 1.0
    out.name = "daily_return"
    return out


def sharpe_ratio(
    returns: pd.Series | np.ndarray | list[float],
    periods_per_year: float = DAYS_PER_YEAR,
    risk_free: float = 0.0,
) -> float | None:
    """Annualised Sharpe ratio of periodic returns.

    Input: 1-D periodic returns as fractions (normally :func:`daily_returns`); ``periods_per_year``
    (365 for daily crypto returns); ``risk_free`` annual rate as a fraction, de-annualised simply as
    ``rf = risk_free / periods_per_year`` per period.

    Formula: ``x = r - rf``; ``mean(x) / std(x, ddof=1) * sqrt(periods_per_year)``.

    Returns ``None`` when it is undefined: fewer than 2 returns, or ``std < 1e-12`` (constant returns,
    e.g. a flat equity curve). Raises ``ValueError`` ("returns: ..." / "periods_per_year: ..." /
    "risk_free: ...") on empty, NaN or infinite input.
    """
    r = _validate_returns(returns)
    p = _validate_periods(periods_per_year)
    rf = _validate_number(risk_free, "risk_free") / p
    if r.size < 2:
        return None
    x = r - rf
    std = float(np.std(x, ddof=1))
    if std < ZERO_STD_TOL:
        return None
    return float(np.mean(x)) / std * math.sqrt(p)


def sortino_ratio(
    returns: pd.Series | np.ndarray | list[float],
    periods_per_year: float = DAYS_PER_YEAR,
    risk_free: float = 0.0,
) -> float | None:
    """Annualised Sortino ratio of periodic returns.

    Input as for :func:`sharpe_ratio` (fractions; ``risk_free`` annual,
    ``rf = risk_free / periods_per_year``).

    Formula: ``x = r - rf``; downside deviation ``DD = sqrt(mean(min(x, 0)^2))`` averaged over ALL periods
    (not only the negative ones); ``Sortino = mean(x) / DD * sqrt(periods_per_year)``.

    Returns ``None`` when ``DD < 1e-12`` (no period below the risk-free rate: the ratio is undefined /
    infinite). Raises ``ValueError`` ("returns: ..." etc.) on empty, NaN or infinite input.
    """
    r = _validate_returns(returns)
    p = _validate_periods(periods_per_year)
    rf = _validate_number(risk_free, "risk_free") / p
    x = r - rf
    downside = float(np.sqrt(np.mean(np.minimum(x, 0.0) ** 2)))
    if downside < ZERO_STD_TOL:
        return None
    return float(np.mean(x)) / downside * math.sqrt(p)


def annualised_volatility(
    returns: pd.Series | np.ndarray | list[float], periods_per_year: float = DAYS_PER_YEAR
) -> float | None:
    """Annualised volatility: ``std(r, ddof=1) * sqrt(periods_per_year)`` (fraction, 0.6 = 60 %/yr).

    Input: 1-D periodic returns (fractions). Returns ``None`` for fewer than 2 returns, ``0.0`` for
    constant returns. Raises ``ValueError`` ("returns: ..." / "periods_per_year: ...") on empty, NaN or
    infinite input.
    """
    r = _validate_returns(returns)
    p = _validate_periods(periods_per_year)
    if r.size < 2:
        return None
    std = float(np.std(r, ddof=1))
    return 0.0 if std < ZERO_STD_TOL else std * math.sqrt(p)


def total_return(equity: pd.Series, starting_equity: float | None = None) -> float:
    """Total return ``E_end / S - 1`` (fraction), ``S = starting_equity`` or the first equity sample.

    Can be below -1 if equity ends negative. Raises ``ValueError`` ("equity: ..." / "starting_equity: ...").
    """
    eq = validate_equity(equity)
    start = (
        eq.iloc[0]
        if starting_equity is None
        else _validate_number(starting_equity, "starting_equity", positive=True)
    )
    return float(eq.iloc[-1] / start - 1.0)


def cagr(equity: pd.Series, starting_equity: float | None = None) -> float | None:
    """Compound annual growth rate (fraction, 365-day year).

    Input: equity ``pd.Series``; ``starting_equity`` (USDT, optional, default the first sample).

    Formula: ``days = (t_last - t_first) / 1 day`` (float, from the first to the last timestamp);
    ``CAGR = (E_end / S) ** (365 / days) - 1``.

    Edge cases: ``None`` if ``days < 1`` (annualising less than a day of data is meaningless and
    explodes); ``-1.0`` if ``E_end <= 0`` (capital wiped out; a negative end is floored at -100 %);
    ``math.inf`` if the power overflows a float (``None`` in :func:`compute_metrics`).
    Raises ``ValueError`` ("equity: ..." / "starting_equity: ...") on invalid input.
    """
    eq = validate_equity(equity)
    start = (
        float(eq.iloc[0])
        if starting_equity is None
        else _validate_number(starting_equity, "starting_equity", positive=True)
    )
    days = (eq.index[-1] - eq.index[0]).total_seconds() / SECONDS_PER_DAY
    if days < 1.0:
        return None
    end = float(eq.iloc[-1])
    if end <= 0:
        return -1.0
    try:  # Python floats: overflow raises instead of warning
        return (end / start) ** (DAYS_PER_YEAR / days) - 1.0
    except OverflowError:
        return math.inf


def calmar_ratio(cagr_value: float | None, max_drawdown_value: float) -> float | None:
    """Calmar ratio ``CAGR / max_drawdown`` (both fractions, drawdown positive).

    Over the whole backtest (not the conventional trailing 36 months). Returns ``None`` if ``cagr_value``
    is ``None`` or not finite, or ``max_drawdown_value`` is 0 (no drawdown). Raises ``ValueError``
    ("max_drawdown_value: ...") if the drawdown is negative or not finite.
    """
    dd = _validate_number(max_drawdown_value, "max_drawdown_value")
    if dd < 0:
        raise ValueError(f"max_drawdown_value: must be >= 0 (positive fraction), got {max_drawdown_value!r}")
    if cagr_value is None or not math.isfinite(cagr_value) or dd == 0:
        return None
    return float(cagr_value) / dd


# --------------------------------------------------------------------------------------------------
# trade metrics
# --------------------------------------------------------------------------------------------------


class TradeStats(NamedTuple):
    """Result of :func:`trade_stats`. Money in USDT, returns as fractions, durations as Timedelta."""

    trades: int
    wins: int
    losses: int
    breakeven: int
    win_rate: float | None
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    expectancy: float | None
    expectancy_return: float | None
    avg_win: float | None
    avg_loss: float | None
    largest_win: float | None
    largest_loss: float | None
    avg_duration: pd.Timedelta | None
    longest_win_streak: int
    longest_loss_streak: int


def _longest_run(mask: np.ndarray) -> int:
    best = run = 0
    for flag in mask:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def trade_stats(trades: pd.DataFrame | None) -> TradeStats:
    """Statistics of closed round-trip trades.

    Input: trades ``pd.DataFrame`` (see :func:`validate_trades`); ``pnl`` in USDT net of fees and funding.

    A trade is a **win** if ``pnl > 0``, a **loss** if ``pnl < 0``, **breakeven** if ``pnl == 0``.

    * ``win_rate = wins / trades`` (breakevens count in the denominator).
    * ``gross_profit = sum(pnl | pnl > 0)`` (>= 0), ``gross_loss = sum(pnl | pnl < 0)`` (<= 0, USDT).
    * ``profit_factor = gross_profit / |gross_loss|``; ``math.inf`` if there are no losses but some
      profit; ``None`` if there is neither (no trades, or only breakevens); ``0.0`` if no wins.
    * ``expectancy = mean(pnl)`` (USDT per trade), ``expectancy_return = mean(return_frac)`` (fraction).
    * ``avg_win = mean(pnl | win)`` (> 0), ``avg_loss = mean(pnl | loss)`` (< 0, a negative number);
      ``largest_win = max(pnl)`` over wins, ``largest_loss = min(pnl)`` over losses (most negative).
    * ``avg_duration = mean(exit_time - entry_time)`` as ``pd.Timedelta``.
    * Streaks: longest run of consecutive wins / losses with trades ordered by ``exit_time`` (ties by
      ``entry_time``); a breakeven trade ends both kinds of run.

    Ratios / means over an empty set are ``None``; counts and streaks are 0, gross sums 0.0.
    Raises ``ValueError`` ("trades: ...") on invalid input.
    """
    t = validate_trades(trades)
    n = len(t)
    pnl = t["pnl"].to_numpy(dtype="float64")
    win, loss = pnl > 0, pnl < 0
    n_win, n_loss = int(win.sum()), int(loss.sum())
    gross_profit = float(pnl[win].sum())
    gross_loss = float(pnl[loss].sum())
    if n_loss:
        profit_factor: float | None = gross_profit / abs(gross_loss)
    elif n_win:
        profit_factor = math.inf
    else:
        profit_factor = None
    durations = t["exit_time"] - t["entry_time"]
    return TradeStats(
        trades=n,
        wins=n_win,
        losses=n_loss,
        breakeven=n - n_win - n_loss,
        win_rate=n_win / n if n else None,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=profit_factor,
        expectancy=float(pnl.mean()) if n else None,
        expectancy_return=float(t["return_frac"].mean()) if n else None,
        avg_win=float(pnl[win].mean()) if n_win else None,
        avg_loss=float(pnl[loss].mean()) if n_loss else None,
        largest_win=float(pnl[win].max()) if n_win else None,
        largest_loss=float(pnl[loss].min()) if n_loss else None,
        avg_duration=durations.mean() if n else None,
        longest_win_streak=_longest_run(win),
        longest_loss_streak=_longest_run(loss),
    )


def exposure(trades: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    """Fraction of ``[start, end]`` during which at least one position is open.

    Input: trades ``pd.DataFrame`` (uses ``entry_time`` / ``exit_time``); ``start`` / ``end`` tz-aware
    timestamps, normally the first and last equity sample.

    Formula: each trade is the interval ``[entry_time, exit_time]`` clipped to ``[start, end]``;
    overlapping or touching intervals (several instruments, pyramiding) are merged, so concurrent
    positions count once. ``exposure = length(union) / (end - start)``, in ``[0, 1]``.

    Returns ``None`` if ``end == start`` (zero-length span), ``0.0`` with no trades. Raises ``ValueError``
    ("start: ..." / "end: ..." / "trades: ...") on tz-naive bounds, ``end < start`` or invalid trades.
    """
    for name, ts in (("start", start), ("end", end)):
        if not isinstance(ts, pd.Timestamp) or ts.tz is None:
            raise ValueError(f"{name}: must be a timezone-aware pandas Timestamp, got {ts!r}")
    if end < start:
        raise ValueError(f"end: {end} is before start {start}")
    t = validate_trades(trades)
    span = (end - start).total_seconds()
    if span == 0:
        return None
    if len(t) == 0:
        return 0.0
    starts = t["entry_time"].clip(lower=start, upper=end)
    ends = t["exit_time"].clip(lower=start, upper=end)
    # merge sorted intervals without a Python loop: a block starts where an interval begins after the
    # furthest end so far; each block covers [its first start, its furthest end]
    s_all = pd.DatetimeIndex(starts).as_unit("ns").asi8
    order = np.argsort(s_all, kind="mergesort")
    s_ns = s_all[order]
    e_ns = pd.DatetimeIndex(ends).as_unit("ns").asi8[order]
    reach = np.maximum.accumulate(e_ns)
    new_block = np.empty(len(s_ns), dtype=bool)
    new_block[0] = True
    new_block[1:] = s_ns[1:] > reach[:-1]
    first = np.flatnonzero(new_block)
    last = np.append(first[1:] - 1, len(s_ns) - 1)
    # Timedelta.total_seconds() per block: whole microseconds / 1e6 (datetime.timedelta's rule)
    seconds = ((reach[last] - s_ns[first]) // 1_000) / 1_000_000
    covered = float(np.cumsum(seconds)[-1])  # summed in order, as one block at a time
    return covered / span


# --------------------------------------------------------------------------------------------------
# everything at once
# --------------------------------------------------------------------------------------------------


def json_safe(value: Any) -> float | int | str | bool | None:
    """Map a metric value to a JSON-safe Python scalar.

    ``None``, NaN, +inf and -inf -> ``None``; numpy numbers -> ``int`` / ``float``; ``bool`` kept;
    ``pd.Timestamp`` -> ISO 8601 string in UTC; ``pd.Timedelta`` -> float seconds; ``str`` kept.
    Anything else raises ``ValueError`` ("value: ...").
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").isoformat() if value.tz is not None else value.isoformat()
    if isinstance(value, pd.Timedelta):
        return json_safe(value.total_seconds())
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, str):
        return value
    raise ValueError(f"value: cannot make {type(value).__name__} JSON-safe")


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame | None,
    *,
    fees_paid: float,
    funding_paid: float,
    buy_and_hold_return: float | None,
    starting_equity: float | None = None,
    risk_free: float = 0.0,
    leverage: pd.Series | None = None,
) -> dict[str, float | int | str | bool | None]:
    """All metrics of one backtest as a flat, JSON-serialisable dict (see ``docs/metrics.md``).

    Inputs: ``equity`` and ``trades`` as in the module docstring; ``fees_paid`` (USDT, total commissions,
    >= 0), ``funding_paid`` (USDT, net funding paid computed by the caller, reported as given; a cost like
    fees: positive = net paid, negative = net received — the opposite sign of the trades' cash-flow
    ``funding`` column),
    ``buy_and_hold_return`` (fraction, or ``None`` if there is no benchmark), ``starting_equity`` (USDT,
    optional: the initial balance; default the first equity sample; used by ``total_return``, ``cagr``
    and the first daily return), ``risk_free`` (annual fraction for Sharpe / Sortino, default 0),
    ``leverage`` (optional series of gross position notional / equity per bar: ``avg_leverage`` /
    ``max_leverage``; ``None`` without it).

    Every value is ``int``, ``float``, ``str``, ``bool`` or ``None``; non-finite numbers (inf / nan) are
    ``None`` (so ``json.dumps(..., allow_nan=False)`` works). In particular ``profit_factor`` is ``None``
    both with no trades and with no losing trade; tell them apart with ``trades`` and
    ``gross_loss_usdt`` (0.0 and ``trades > 0`` means infinite). The key set is the same for every input.

    Raises ``ValueError`` naming the argument ("equity: ...", "trades: ...", "fees_paid: ...",
    "funding_paid: ...", "buy_and_hold_return: ...", "starting_equity: ...", "risk_free: ...").
    """
    eq = validate_equity(equity)
    t = validate_trades(trades)
    fees = _validate_number(fees_paid, "fees_paid")
    if fees < 0:
        raise ValueError(f"fees_paid: must be >= 0, got {fees_paid!r}")
    funding = _validate_number(funding_paid, "funding_paid")
    bh = None if buy_and_hold_return is None else _validate_number(buy_and_hold_return, "buy_and_hold_return")
    start_value = (
        float(eq.iloc[0])
        if starting_equity is None
        else _validate_number(starting_equity, "starting_equity", positive=True)
    )
    rf = _validate_number(risk_free, "risk_free")

    start, end = eq.index[0], eq.index[-1]
    dd, recovery_time = _drawdown_details(eq)
    growth = cagr(eq, start_value)

    try:
        rets = daily_returns(eq, start_value)
    except ValueError:  # a day closed at <= 0: return-based ratios are undefined
        rets = None
    if rets is not None:
        sharpe = sharpe_ratio(rets, DAYS_PER_YEAR, rf)
        sortino = sortino_ratio(rets, DAYS_PER_YEAR, rf)
        vol = annualised_volatility(rets, DAYS_PER_YEAR)
    else:
        sharpe = sortino = vol = None

    ts = trade_stats(t)
    avg_lev, max_lev = leverage_stats(leverage)
    raw: dict[str, Any] = {
        "start": start,
        "end": end,
        "span_days": (end - start).total_seconds() / SECONDS_PER_DAY,
        "starting_equity": start_value,
        "final_equity": float(eq.iloc[-1]),
        "total_return": float(eq.iloc[-1]) / start_value - 1.0,
        "cagr": growth,
        "annual_volatility": vol,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar_ratio(growth, dd.max_drawdown),
        "max_drawdown": dd.max_drawdown,
        "max_drawdown_duration_s": longest_underwater(eq),
        "deepest_drawdown_duration_s": dd.duration,
        "max_drawdown_peak": dd.peak_time,
        "max_drawdown_trough": dd.trough_time,
        "max_drawdown_recovered": None if dd.peak_time is None else recovery_time is not None,
        "trades": ts.trades,
        "wins": ts.wins,
        "losses": ts.losses,
        "win_rate": ts.win_rate,
        "profit_factor": ts.profit_factor,
        "gross_profit_usdt": ts.gross_profit,
        "gross_loss_usdt": ts.gross_loss,
        "expectancy_usdt": ts.expectancy,
        "expectancy_return": ts.expectancy_return,
        "avg_win_usdt": ts.avg_win,
        "avg_loss_usdt": ts.avg_loss,
        "largest_win_usdt": ts.largest_win,
        "largest_loss_usdt": ts.largest_loss,
        "avg_trade_duration_s": ts.avg_duration,
        "longest_win_streak": ts.longest_win_streak,
        "longest_loss_streak": ts.longest_loss_streak,
        "exposure": exposure(t, start, end),
        "max_concurrent_positions": max_concurrent_positions(t),
        "avg_leverage": avg_lev,
        "max_leverage": max_lev,
        "fees_paid_usdt": fees,
        "funding_paid_usdt": funding,
        "buy_and_hold_return": bh,
    }
    return {key: json_safe(value) for key, value in raw.items()}


def execution_costs(fills: pd.DataFrame, liquidations: pd.DataFrame, *, funding_paid: float) -> dict[str, float | int]:
    """Cost breakdown of a run (USDT; costs > 0 are paid), from the cost columns of ``fills.parquet``.

    Inputs: ``fills`` with ``trading_fee``, ``liquidation_fee``, ``slippage_cost`` (USDT per fill),
    ``liquidations`` with ``loss`` (USDT per liquidation), ``funding_paid`` (USDT, paid > 0).

    Returns ``trading_fees_usdt`` (maker/taker), ``liquidation_fees_usdt`` (clearance fees),
    ``slippage_cost_usdt`` (sum over fills of the signed price difference to the reference price x qty),
    ``total_costs_usdt`` (the three plus ``funding_paid``), ``liquidations`` (count) and
    ``liquidation_loss_usdt`` (sum of ``loss``: price loss of the liquidation closes plus their fees).
    """
    def total(frame: pd.DataFrame, col: str) -> float:
        return float(frame[col].sum()) if not frame.empty and col in frame.columns else 0.0

    trading = total(fills, "trading_fee")
    liq_fees = total(fills, "liquidation_fee")
    slippage = total(fills, "slippage_cost")
    return {
        "trading_fees_usdt": trading,
        "liquidation_fees_usdt": liq_fees,
        "slippage_cost_usdt": slippage,
        "total_costs_usdt": trading + liq_fees + slippage + float(funding_paid),
        "liquidations": int(len(liquidations)),
        "liquidation_loss_usdt": total(liquidations, "loss"),
    }


# --------------------------------------------------------------------------------------------------
# attribution: per strategy and per instrument
# --------------------------------------------------------------------------------------------------

#: Keys of one :func:`group_breakdown` record (after the group key ``strategy_id`` / ``instrument_id``).
BREAKDOWN_KEYS = ("trades", "open_trades", "wins", "losses", "win_rate", "profit_factor", "net_pnl_usdt",
                  "unrealized_pnl_usdt", "pnl_before_costs_usdt", "fees_paid_usdt", "liquidation_fees_usdt",
                  "funding_paid_usdt", "slippage_cost_usdt", "borrow_interest_usdt", "total_costs_usdt", "exposure",
                  "return_contribution")


def _col(frame: pd.DataFrame, name: str, default: float | bool = 0.0) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series(default, index=frame.index)


def group_breakdown(
    trades: pd.DataFrame | None,
    key: str,
    *,
    starting_equity: float,
    start: pd.Timestamp,
    end: pd.Timestamp,
    borrowing: pd.DataFrame | None = None,
    groups: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Results per ``key`` (``"strategy_id"`` or ``"instrument_id"``): one JSON-safe record per group.

    Inputs: ``trades`` as written to ``trades.parquet`` (``pnl``, ``return_frac``, ``entry_time``,
    ``exit_time``, ``fees``, ``liquidation_fee``, ``funding`` (cash flow, paid < 0), ``slippage_cost``,
    optional ``is_open`` / ``unrealized_pnl``, and the ``key`` column); ``starting_equity`` (USDT);
    ``start`` / ``end`` (the equity curve's first and last sample, the span exposure is measured on);
    ``borrowing`` (optional, ``borrowing.parquet`` rows with ``interest_usdt`` and the ``key`` column);
    ``groups``: groups to report even without trades (e.g. every strategy of the run), in that order;
    groups found only in the trades follow, sorted.

    Per group ``g`` (sums over its trades; USDT unless said otherwise; costs paid > 0):

    * ``trades`` (open ones included), ``open_trades``, ``wins``, ``losses``, ``win_rate``,
      ``profit_factor``: as :func:`trade_stats` on the group's trades (``profit_factor`` ``None`` when
      infinite or undefined).
    * ``net_pnl_usdt = sum(pnl) - borrow_interest_usdt``; ``unrealized_pnl_usdt = sum(unrealized_pnl)``.
    * ``fees_paid_usdt = sum(fees)``, ``liquidation_fees_usdt = sum(liquidation_fee)``,
      ``funding_paid_usdt = -sum(funding)``, ``slippage_cost_usdt = sum(slippage_cost)``,
      ``borrow_interest_usdt = sum(interest_usdt)``, ``total_costs_usdt`` = the five added up.
    * ``pnl_before_costs_usdt = net_pnl_usdt + total_costs_usdt``.
    * ``exposure``: :func:`exposure` of the group's trades over ``[start, end]``.
    * ``return_contribution = net_pnl_usdt / starting_equity`` (fraction).

    Summed over all groups, ``net_pnl_usdt``, the costs and ``trades`` give the account's totals
    (every trade belongs to exactly one group).
    """
    s0 = _validate_number(starting_equity, "starting_equity", positive=True)
    t = trades if trades is not None else pd.DataFrame(columns=[key])
    if len(t) and key not in t.columns:
        raise ValueError(f"trades: missing column {key!r}")
    found = sorted(str(g) for g in t[key].astype(str).unique()) if len(t) else []
    order = list(dict.fromkeys([*(groups or []), *found]))
    borrow_by = (borrowing.groupby(borrowing[key].astype(str))["interest_usdt"].sum()
                 if borrowing is not None and len(borrowing) else pd.Series(dtype=float))
    out = []
    for g in order:
        gt = t[t[key].astype(str) == g] if len(t) else t.iloc[0:0]
        ts = trade_stats(gt if len(gt) else None)
        borrow = float(borrow_by.get(g, 0.0))
        costs = {
            "fees_paid_usdt": float(_col(gt, "fees").sum()),
            "liquidation_fees_usdt": float(_col(gt, "liquidation_fee").sum()),
            "funding_paid_usdt": -float(_col(gt, "funding").sum()) + 0.0,
            "slippage_cost_usdt": float(_col(gt, "slippage_cost").sum()),
            "borrow_interest_usdt": borrow,
        }
        net = float(_col(gt, "pnl").sum()) - borrow
        total_costs = sum(costs.values())
        raw = {
            key: g,
            "trades": ts.trades,
            "open_trades": int(_col(gt, "is_open", False).astype(bool).sum()),
            "wins": ts.wins,
            "losses": ts.losses,
            "win_rate": ts.win_rate,
            "profit_factor": ts.profit_factor,
            "net_pnl_usdt": net,
            "unrealized_pnl_usdt": float(_col(gt, "unrealized_pnl").sum()),
            "pnl_before_costs_usdt": net + total_costs,
            **costs,
            "total_costs_usdt": total_costs,
            "exposure": exposure(gt if len(gt) else None, start, end),
            "return_contribution": net / s0,
        }
        out.append({k: json_safe(v) for k, v in raw.items()})
    return out


def open_trades_summary(trades: pd.DataFrame | None) -> dict[str, float | int]:
    """``open_trades``: trades still open at the end (``is_open``), ``unrealized_pnl_usdt``: their
    mark-to-market PnL at the last close (sum of ``unrealized_pnl``, USDT). Zero without such trades."""
    if trades is None or len(trades) == 0:
        return {"open_trades": 0, "unrealized_pnl_usdt": 0.0}
    return {"open_trades": int(_col(trades, "is_open", False).astype(bool).sum()),
            "unrealized_pnl_usdt": float(_col(trades, "unrealized_pnl").sum())}
