"""Interest on borrowed amounts of MARGIN positions, accrued every full UTC hour.

What is "borrowed"
------------------
- margin spot (a ``CurrencyPair`` on a MARGIN account), as on Binance Margin:
  a long borrows the quote (USDT) it cannot pay from its own equity:
  ``borrowed = max(0, qty x close - E)``; a short borrows the base asset it sold:
  ``borrowed = |qty| x close`` (valued in USDT at the bar close).
  ``E`` = account equity (balance + unrealized PnL, Nautilus) minus the interest accrued so far.
- USDT-M perpetuals: nothing is borrowed (the position is a contract backed by margin; its carry
  cost is funding, settled by Nautilus). Charged only with ``include_perpetuals = true``, with the
  same formulas (e.g. to model a broker's leverage loan).

Accrual: at the first bar whose close time reaches a new UTC hour ``h`` (with 1m bars: the bar
closing at ``h:00``), ``interest = borrowed x rate x hours`` with ``hours`` the number of hour
boundaries crossed since the last accrual (1 without gaps) and the position and price at that bar's
close, before the strategy decides on the bar. ``rate`` = ``hourly_rate`` (longs) or
``hourly_rate_short`` (shorts).

Booking (a limitation): Nautilus 2.0.0rc7 has no Python API to debit a simulated account, so the
interest is **not** taken from Nautilus's balance. It is deducted from the equity the strategy's
sizing and limits use, and from the results' equity curve and metrics (``borrowing.parquet``,
``borrow_interest_usdt``, in ``total_costs_usdt``); Nautilus's own margin checks and the liquidation
actor do not see it.
"""

from __future__ import annotations

HOUR_NS = 3_600_000_000_000


def borrowed_usdt(signed_qty: float, price: float, equity: float) -> float:
    """Borrowed amount in USDT for a position of ``signed_qty`` base units at ``price`` (see module doc)."""
    if signed_qty > 0:
        return max(0.0, signed_qty * price - equity)
    return -signed_qty * price


def hourly_interest(signed_qty: float, price: float, equity: float, rate_long: float, rate_short: float,
                    hours: int = 1) -> tuple[float, float, float]:
    """``(borrowed USDT, rate per hour, interest USDT)`` for ``hours`` hours at the given position."""
    b = borrowed_usdt(signed_qty, price, equity)
    rate = rate_long if signed_qty > 0 else rate_short
    return b, rate, b * rate * hours
