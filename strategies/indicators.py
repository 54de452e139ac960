"""Indicators nautilus 2.0.0rc7 does not ship: ADX (Wilder's Average Directional Index).

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
