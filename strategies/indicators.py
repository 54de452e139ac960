"""Indicators nautilus 2.0.0rc7 does not ship: ADX, sample-std Bollinger bands and band width,
rolling z-score, realised volatility (all streaming, registerable with Nautilus).

ADX (Wilder's Average Directional Index):

``AverageDirectionalIndex`` is a plain Python object with the duck-typed indicator interface
(``handle_bar``, ``reset``, ``initialized``, ``value``). ``Strategy.register_indicator_for_bars``
accepts it and calls ``handle_bar`` before the strategy's ``on_bar`` (verified in rc7), and it
can equally be updated by hand (the strategies in this package update indicators by hand so they
can reset them at data gaps first).

Definition (Wilder 1978), period ``n`` (bars), using bar high/low/close as floats:

* prices: the float nearest to the bar's decimal price (see ``_px``);
* for each bar ``t >= 1`` (needs the previous bar):
  ``TR_t = max(high_t, close_{t-1}) - min(low_t, close_{t-1})``;
  ``up = high_t - high_{t-1}``, ``down = low_{t-1} - low_t``;
  ``+DM_t = up if (up > down and up > 0) else 0``; ``-DM_t = down if (down > up and down > 0) else 0``.
* Wilder smoothing ``W`` of TR, +DM, -DM: the first value is the simple mean of the first ``n``
  inputs (bars 1..n), then ``W_t = (W_{t-1} * (n - 1) + x_t) / n``.
  (Wilder's running *sums* differ from these means by the factor n, which cancels in the ratios.)
* ``+DI = 100 * W(+DM) / W(TR)``, ``-DI = 100 * W(-DM) / W(TR)`` (0 when ``W(TR) == 0``),
  available from bar ``n`` (the (n+1)-th bar).
* ``DX = 100 * |+DI - -DI| / (+DI + -DI)`` (0 when the sum is 0).
* ``ADX`` = Wilder smoothing of DX, seeded with the mean of the first ``n`` DX values; it is
  first available at bar ``2n - 1`` (0-based), i.e. after ``2n`` bars (28 bars for n = 14).

Scale: +DI, -DI, DX and ADX are in 0..100. Before initialization ``value`` reads 0.0 (as the
nautilus indicators do).
"""

from __future__ import annotations

from typing import Any


def _px(price: Any) -> float:
    """The float nearest to a nautilus ``Price``'s decimal value.

    In rc7 ``Price.as_double()`` is not correctly rounded: ``Price(28480.07, 2).as_double()``
    returns ``28480.070000000003``. For ADX that matters, because +DM/-DM compare two price
    differences (``up > down``) and exact ties (equal moves in whole ticks) are common on real
    1m data: the 1-ulp noise would decide them at random. ``round(x, precision)`` restores the
    float a CSV parser would produce, so ties are decided the same way as in pandas.
    """
    return round(price.as_double(), price.precision)


class AverageDirectionalIndex:
    """Wilder ADX with +DI / -DI; ``period`` in bars (default 14)."""

    def __init__(self, period: int = 14) -> None:
        if int(period) < 1:
            raise ValueError(f"period must be >= 1, was {period}")
        self.period: int = int(period)
        self.name: str = "AverageDirectionalIndex"
        self.reset()

    def __repr__(self) -> str:
        return f"AverageDirectionalIndex({self.period})"

    def reset(self) -> None:
        """Forget all inputs (state as freshly constructed)."""
        self.value: float = 0.0  # ADX, 0..100
        self.plus_di: float = 0.0  # +DI, 0..100
        self.minus_di: float = 0.0  # -DI, 0..100
        self.dx: float = 0.0  # DX, 0..100
        self.count: int = 0  # bars received
        self.initialized: bool = False  # True once ADX is available (after 2*period bars)
        self._prev: tuple[float, float, float] | None = None
        self._n_dm: int = 0  # number of TR/DM inputs received
        self._tr = self._pdm = self._mdm = 0.0
        self._n_dx: int = 0
        self._adx_acc = 0.0

    @property
    def has_inputs(self) -> bool:
        """True once at least one bar was received."""
        return self.count > 0

    @property
    def di_initialized(self) -> bool:
        """True once +DI / -DI / DX are available (after ``period + 1`` bars)."""
        return self._n_dm >= self.period

    def handle_bar(self, bar: Any) -> None:
        """Update from a nautilus ``Bar`` (uses high, low, close; see ``_px``)."""
        self.update_raw(_px(bar.high), _px(bar.low), _px(bar.close))

    def update_raw(self, high: float, low: float, close: float) -> None:
        """Update from raw high/low/close prices."""
        self.count += 1
        prev = self._prev
        self._prev = (high, low, close)
        if prev is None:
            return
        ph, pl, pc = prev
        tr = max(high, pc) - min(low, pc)
        up = high - ph
        down = pl - low
        pdm = up if (up > down and up > 0.0) else 0.0
        mdm = down if (down > up and down > 0.0) else 0.0

        n = self.period
        self._n_dm += 1
        if self._n_dm < n:
            self._tr += tr
            self._pdm += pdm
            self._mdm += mdm
            return
        if self._n_dm == n:  # seed: simple mean of the first n inputs
            self._tr = (self._tr + tr) / n
            self._pdm = (self._pdm + pdm) / n
            self._mdm = (self._mdm + mdm) / n
        else:
            self._tr = (self._tr * (n - 1) + tr) / n
            self._pdm = (self._pdm * (n - 1) + pdm) / n
            self._mdm = (self._mdm * (n - 1) + mdm) / n

        if self._tr > 0.0:
            self.plus_di = 100.0 * self._pdm / self._tr
            self.minus_di = 100.0 * self._mdm / self._tr
        else:
            self.plus_di = self.minus_di = 0.0
        di_sum = self.plus_di + self.minus_di
        self.dx = 100.0 * abs(self.plus_di - self.minus_di) / di_sum if di_sum > 0.0 else 0.0

        self._n_dx += 1
        if self._n_dx < n:
            self._adx_acc += self.dx
        elif self._n_dx == n:
            self.value = (self._adx_acc + self.dx) / n
            self.initialized = True
        else:
            self.value = (self.value * (n - 1) + self.dx) / n


# ---------------------------------------------------------------------------------------------
# Rolling-window indicators on closes (trading-bot-plan.md, "Mean Reversion" and "Volatility"
# indicators). Same duck-typed interface as the ADX above (``handle_bar``, ``update_raw``, ``reset``,
# ``initialized``, ``value``), so ``Strategy.register_indicator_for_bars`` accepts them. Every
# standard deviation is the **sample** one (ddof = 1, pandas' default), computed from the window's
# values each bar (two-pass: mean first, then squared deviations), so the values agree with
# ``Series.rolling(n).std()`` to float rounding.
# ---------------------------------------------------------------------------------------------
def _mean_std(window: Any) -> tuple[float, float]:
    """(mean, sample standard deviation) of a sequence of >= 2 floats (two-pass)."""
    n = len(window)
    mean = sum(window) / n
    var = sum((x - mean) * (x - mean) for x in window) / (n - 1)
    return mean, var**0.5


class _RollingCloses:
    """Base: keeps the last ``period`` closes (prices via ``_px``)."""

    name = "_RollingCloses"

    def __init__(self, period: int) -> None:
        if int(period) < 2:
            raise ValueError(f"period must be >= 2 (a sample standard deviation needs 2 values), was {period}")
        self.period: int = int(period)
        self.reset()

    def reset(self) -> None:
        from collections import deque

        self._win: deque[float] = deque(maxlen=self.period)
        self.count: int = 0
        self.initialized: bool = False
        self.value: float = 0.0

    @property
    def has_inputs(self) -> bool:
        return self.count > 0

    def handle_bar(self, bar: Any) -> None:
        """Update from a nautilus ``Bar`` (its close, rounded to the price precision)."""
        self.update_raw(_px(bar.close))

    def update_raw(self, close: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SampleBollingerBands(_RollingCloses):
    """Bollinger bands with the **sample** standard deviation (trading-bot-plan.md ``BollingerBands``).

    ``middle = mean(last n closes)``, ``std = sample std (ddof=1) of the same closes``,
    ``upper/lower = middle +/- k x std``, ``width = (upper - lower) / middle`` (the plan's
    "Bollinger Band Width"); ``value`` = ``middle``. Initialized after ``n`` closes.
    (Nautilus's ``BollingerBands`` uses the population standard deviation, ddof = 0: bands
    narrower by the factor ``sqrt((n-1)/n)``, 2.5 % for n = 20.)
    """

    name = "SampleBollingerBands"

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        self.k: float = float(k)
        super().__init__(period)

    def __repr__(self) -> str:
        return f"SampleBollingerBands({self.period}, {self.k})"

    def reset(self) -> None:
        super().reset()
        self.middle = self.upper = self.lower = self.std = self.width = 0.0

    def update_raw(self, close: float) -> None:
        self._win.append(close)
        self.count += 1
        if len(self._win) < self.period:
            return
        self.middle, self.std = _mean_std(self._win)
        self.upper = self.middle + self.k * self.std
        self.lower = self.middle - self.k * self.std
        self.width = (self.upper - self.lower) / self.middle if self.middle != 0.0 else 0.0
        self.value = self.middle
        self.initialized = True


class BollingerBandWidth(SampleBollingerBands):
    """Bollinger band width ``(upper - lower) / middle`` (= ``2 k std / middle``) as ``value``."""

    name = "BollingerBandWidth"

    def __repr__(self) -> str:
        return f"BollingerBandWidth({self.period}, {self.k})"

    def update_raw(self, close: float) -> None:
        super().update_raw(close)
        if self.initialized:
            self.value = self.width


class RollingZScore(_RollingCloses):
    """Z-score of the close against its last ``n`` closes: ``(close - mean) / std`` (sample std,
    the current close included in the window, as ``(c - c.rolling(n).mean()) / c.rolling(n).std()``).
    0.0 when the window is flat (std = 0; pandas gives NaN there). Initialized after ``n`` closes."""

    name = "RollingZScore"

    def __init__(self, period: int = 20) -> None:
        super().__init__(period)

    def __repr__(self) -> str:
        return f"RollingZScore({self.period})"

    def update_raw(self, close: float) -> None:
        self._win.append(close)
        self.count += 1
        if len(self._win) < self.period:
            return
        mean, std = _mean_std(self._win)
        self.value = (close - mean) / std if std > 0.0 else 0.0
        self.initialized = True


class RealizedVolatility(_RollingCloses):
    """Annualised realised volatility: sample std of the last ``n`` log returns ``ln(c_t / c_{t-1})``
    times ``sqrt(periods_per_year)`` (trading-bot-plan.md: ``np.log(close/close.shift(1)).std() *
    np.sqrt(periods_per_year)``, over a rolling window of ``n`` returns). ``periods_per_year`` is the
    number of bars per year (1m bars on a 24/7 market: 525,600; 1h: 8,760). Initialized after
    ``n + 1`` closes."""

    name = "RealizedVolatility"

    def __init__(self, period: int = 20, periods_per_year: float = 525_600.0) -> None:
        self.periods_per_year: float = float(periods_per_year)
        super().__init__(period)

    def __repr__(self) -> str:
        return f"RealizedVolatility({self.period}, {self.periods_per_year:g})"

    def reset(self) -> None:
        super().reset()
        self._prev: float | None = None

    def update_raw(self, close: float) -> None:
        import math

        self.count += 1
        prev, self._prev = self._prev, close
        if prev is None or prev <= 0.0 or close <= 0.0:
            return
        self._win.append(math.log(close / prev))
        if len(self._win) < self.period:
            return
        _, std = _mean_std(self._win)
        self.value = std * math.sqrt(self.periods_per_year)
        self.initialized = True
