"""When and at what price orders fill on bar data: a Python ``FillModel`` for the simulated venue.

Why a fill model. Nautilus 2.0.0rc7's bar execution fills a market order submitted in
``on_bar(bar N)`` at bar N's **close**, at bar N's timestamp; with its static latency model at bar
N+1's close. A strategy that decides on a closed bar cannot trade at that bar's close in reality.
Nautilus asks the venue's ``FillModel.get_orderbook_for_fill_simulation`` for the book to fill
against at the moment it fills an order; :class:`VenueFillModel` answers with a one-level book at
the price this module decides, so every fill happens at that price, in one piece. (Python fill models
are accepted only by ``BacktestEngine.add_venue``, not by ``BacktestVenueConfig``: that is why the
runner uses the low-level engine; docs/simulation.md.)

Prices (``t`` = the time the venue processes the order, ns; bars stamped at their close):

- market orders, ``fill_timing = "next_open"`` (default): the **open of the first bar that closes
  after t**. For an order sent from ``on_bar(bar N)`` (t = bar N's close = bar N+1's open time) that
  is bar N+1's open: no look-ahead. Across a data gap it is the first bar after the gap. The fill's
  timestamp stays t (the moment bar N+1 opens). After the last bar (orders sent from ``on_stop``)
  the last close is used.
- market orders, ``fill_timing = "same_close"``: the close of the last bar that closed at or before t
  (Nautilus's own behaviour, kept as an option).
- stop-market orders when triggered: the trigger price, or the bar's open when the bar opened
  beyond the trigger (a gap), as Nautilus does.
- all of the above then get the venue's slippage (:mod:`nautilus_app.venue.slippage`).
- orders tagged ``LIQUIDATION`` (:mod:`nautilus_app.venue.liquidation`): exactly their trigger
  price (the liquidation price), no slippage; an immediate liquidation (market order) at the price
  the liquidation actor registered in :attr:`VenueFillModel.liquidation_prices`.
- limit, stop-limit, market-if-touched and trailing orders: Nautilus's default matching (``None``).

Every decided fill is recorded in :attr:`VenueFillModel.records` (reference price before slippage,
fill price) for the cost breakdown in the results.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from nautilus_trader.execution import FillModel
from nautilus_trader.model import BookOrder, BookType, OrderBook, OrderSide, OrderType, Price

from catalog.reader import read_columns
from nautilus_app.venue.slippage import SlippageModel

FillTiming = Literal["next_open", "same_close"]
LIQUIDATION_TAG = "LIQUIDATION"


@dataclass(frozen=True)
class BarSeries:
    """OHLCV of one bar type as float64 arrays, ordered by close time ``ts`` (UTC ns, int64)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    _lists: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ts)

    def lists(self) -> dict[str, Any]:
        """ts/open/close/volume as ``array.array`` (built once): indexing gives Python ints/floats, as cheap
        per order as a list, in 8 bytes per bar instead of a list's ~32 (a 5-year 1m run: ~250 MB less)."""
        if not self._lists:
            self._lists.update(ts=array("q", self.ts.astype(np.int64).tobytes()),
                               open=array("d", self.open.astype(np.float64).tobytes()),
                               close=array("d", self.close.astype(np.float64).tobytes()),
                               volume=array("d", self.volume.astype(np.float64).tobytes()))
        return self._lists

    def release_lookups(self) -> None:
        """Drop the :meth:`lists` copies (rebuilt if asked again): after the run nothing needs them."""
        self._lists.clear()

    def next_index(self, t: int) -> int:
        """Index of the first bar closing strictly after ``t`` (== len when none)."""
        return bisect.bisect_right(self.lists()["ts"], t)

    def at_index(self, t: int) -> int:
        """Index of the bar closing exactly at ``t``, or -1."""
        i = int(np.searchsorted(self.ts, t, side="left"))
        return i if i < len(self.ts) and self.ts[i] == t else -1


def load_bar_series(root: Path, bar_type: str, start_ns: int | None, end_ns: int | None) -> BarSeries:
    """Read one bar type's OHLCV from the catalog over ``[start_ns, end_ns)`` on ``ts_init`` (fast pyarrow read).

    Duplicated timestamps keep the last row (as the catalog writer dedupes).
    """
    table = read_columns(root, "bars", bar_type, BAR_COLUMNS, start_ns, end_ns)
    return bar_series_from_table(table)


#: columns of a bar table (Nautilus's schema) a :class:`BarSeries` is built from
BAR_COLUMNS = ["ts_init", "open", "high", "low", "close", "volume"]


def bar_series_from_table(table: pa.Table) -> BarSeries:
    """:class:`BarSeries` of a bar table in Nautilus's schema (:data:`BAR_COLUMNS`, any row order):
    decimals cast to float64, sorted by ``ts_init``, duplicated timestamps keep the last row."""
    cols = BAR_COLUMNS
    arrays = {c: pc.cast(table.column(c), pa.int64() if c == "ts_init" else pa.float64()).to_numpy()
              for c in cols}
    ts, rows = bar_rows(arrays["ts_init"])
    return BarSeries(ts, *(arrays[c][rows] for c in cols[1:]))


def bar_rows(ts_init: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The row order of a bar table: ``(close times, row indices)`` sorted by close time (int64 UTC ns),
    duplicated times keeping the last row (as the catalog writer dedupes). Every reader of raw bar rows
    uses it, so index ``i`` is the same bar everywhere."""
    order = np.argsort(ts_init, kind="stable")
    ts = ts_init[order]
    keep = np.append(ts[1:] != ts[:-1], True) if len(ts) else np.array([], bool)
    return ts[keep], order[keep]


@dataclass
class FillRecord:
    """One fill decided by :class:`VenueFillModel` (prices in USDT, qty in base units)."""

    client_order_id: str
    instrument_id: str
    ts: int
    side: str
    kind: str  # "market", "stop", "liquidation"
    reference_price: float
    fill_price: float
    quantity: float


class VenueFillModel(FillModel):
    """The venue's fill model (see the module docstring for every rule).

    Args:
        series: Bar series per instrument id (``"BTCUSDT.BINANCE"``); instruments without one fall
            back to Nautilus's default matching.
        timing: ``"next_open"`` or ``"same_close"``.
        slippage: Slippage model applied to market and stop fills.

    Set :attr:`clock` (an object with ``timestamp_ns()``, e.g. a strategy's clock) before the run.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> VenueFillModel:  # pyo3 base takes no arguments
        return super().__new__(cls)

    def fill_records(self) -> list[FillRecord]:
        """Every fill this model decided, in order."""
        return [FillRecord(*r) for r in self.records]

    def __init__(self, series: dict[str, BarSeries], timing: FillTiming = "next_open",
                 slippage: SlippageModel | None = None) -> None:
        super().__init__()
        self.series = series
        self.timing = timing
        self.slippage = slippage or SlippageModel()
        self.clock: Any = None
        self.records: list[tuple] = []
        #: client order id -> price of an immediate liquidation (market order), set by the liquidation actor
        self.liquidation_prices: dict[str, float] = {}
        #: calls of :meth:`get_orderbook_for_fill_simulation` (every fill Nautilus simulates asks first):
        #: the liquidation actor rescans its schedule when this moved
        self.fill_calls = 0

    def get_orderbook_for_fill_simulation(self, instrument: Any, order: Any, best_bid: Any = None,
                                          best_ask: Any = None) -> OrderBook | None:
        self.fill_calls += 1
        s = self.series.get(instrument.id.value)
        if s is None or not len(s) or self.clock is None:
            return None
        otype = order.order_type
        t = self.clock.timestamp_ns()
        is_buy = order.side == OrderSide.BUY
        lists = s.lists()
        k = bisect.bisect_right(lists["ts"], t)  # first bar closing after t
        if otype == OrderType.MARKET:
            liq_px = self.liquidation_prices.get(order.client_order_id.value) if self.liquidation_prices else None
            if liq_px is not None:
                return self._book(instrument, order, liq_px, liq_px, is_buy, "liquidation", t)
            if self.timing == "next_open":
                ref = lists["open"][k] if k < len(s) else lists["close"][-1]
            else:
                ref = lists["close"][max(k - 1, 0)]
            kind = "market"
        elif otype == OrderType.STOP_MARKET:
            trigger = order.trigger_price.as_double()
            if LIQUIDATION_TAG in (order.tags or []):
                return self._book(instrument, order, trigger, trigger, is_buy, "liquidation", t)
            i = k - 1  # the bar being matched closes at t
            ref = trigger
            if i >= 0 and lists["ts"][i] == t:
                o = lists["open"][i]
                ref = max(trigger, o) if is_buy else min(trigger, o)
            kind = "stop"
        else:
            return None
        if self.slippage.kind == "none":
            px = ref
        else:
            volume = lists["volume"][k - 1] if k > 0 else 0.0  # last completed bar at t
            px = self.slippage.price(ref, is_buy, order.leaves_qty.as_double(), volume,
                                     instrument.price_increment.as_double())
        return self._book(instrument, order, ref, px, is_buy, kind, t)

    def _book(self, instrument: Any, order: Any, ref: float, px: float, is_buy: bool, kind: str, t: int) -> OrderBook:
        size = order.leaves_qty
        book = OrderBook(instrument.id, BookType.L2_MBP)
        price = Price(px, instrument.price_precision)
        book.add(BookOrder(OrderSide.SELL if is_buy else OrderSide.BUY, price, size, 1), 0, 0, 0)
        # a plain tuple (see :class:`FillRecord` for the fields): this runs once per fill
        self.records.append((order.client_order_id.value, instrument.id.value, t, "BUY" if is_buy else "SELL",
                             kind, ref, price.as_double(), size.as_double()))
        return book
