"""Ethereal bars for paper sessions: built from the public trade stream on the venue's clock, and the
venue's price history for the bars a session did not see.

Ethereal has no candle stream. Nautilus's own time-bar aggregation (``...-INTERNAL`` bar types)
closes bars on the node's wall clock, so which trade lands in which bar depends on network and
scheduling delays, and a replayed market never gives the same bars twice. :class:`TradeBarBuilder`
buckets trades by their **venue timestamp** instead (``[open, open + interval)``, the convention of
the venue's own candles, ``GET /v1/last-price/history``):

* a bucket closes when the first trade of a later bucket arrives, or when a venue message (mark
  price) stamped at least ``grace_ns`` after the bucket's end arrives (a quiet market);
* a bucket with no trades gives no bar (the venue's candles have none either);
* the first bucket after a (re)start is dropped: trades before the subscription are missing from it.
  The session fetches that bar, and any other it missed, from the venue's price history
  (:func:`history_bars`) before trading on live bars.

A trade stamped inside an already closed bucket (late) is counted in ``late`` and not used.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

from nautilus_trader.model import Bar, BarType, Price, Quantity

#: bar interval (ns) -> TradingView resolution of the venue's price history
RESOLUTION_BY_NS = {60_000_000_000 * m: str(m) for m in (1, 3, 5, 15, 30, 60, 120, 240, 480, 720)}
RESOLUTION_BY_NS[86_400_000_000_000] = "1D"


class TradeBarBuilder:
    """Time bars of one bar type from trades on the venue clock (module docstring).

    Args:
        bar_type: The bar type the bars carry (e.g. ``BTCUSD-PERP.ETHEREAL-1-HOUR-LAST-INTERNAL``).
        interval_ns: Bar interval.
        price_precision, size_precision: The instrument's precisions.
        grace_ns: How long after a bucket's end a non-trade venue message closes it.
    """

    def __init__(self, bar_type: str, interval_ns: int, price_precision: int, size_precision: int,
                 grace_ns: int = 1_000_000_000) -> None:
        self.bar_type = BarType.from_str(bar_type)
        self.interval_ns = interval_ns
        self.pp, self.sp = price_precision, size_precision
        self.grace_ns = grace_ns
        self.bucket: int | None = None  # open time of the bucket being built
        self.first = True
        self.ohlcv: list[Decimal] | None = None
        self.late = 0
        self.dropped_first: int | None = None

    def on_trade(self, ts_ns: int, price: Any, size: Any) -> list[Bar]:
        """Add one trade; returns the bar it closed (if any)."""
        start = ts_ns // self.interval_ns * self.interval_ns
        out: list[Bar] = []
        if self.bucket is not None and start < self.bucket:
            self.late += 1
            return out
        if self.bucket is not None and start > self.bucket:
            out = self._close()
        px, sz = Decimal(str(price)), Decimal(str(size))
        if self.bucket is None:
            self.bucket = start
            self.ohlcv = [px, px, px, px, sz]
        else:
            o = self.ohlcv
            o[1], o[2], o[3], o[4] = max(o[1], px), min(o[2], px), px, o[4] + sz
        return out

    def on_venue_time(self, ts_ns: int) -> list[Bar]:
        """A non-trade venue message stamped ``ts_ns``: closes the bucket once ``ts_ns >= end + grace``."""
        if self.bucket is not None and ts_ns >= self.bucket + self.interval_ns + self.grace_ns:
            return self._close()
        return []

    def _close(self) -> list[Bar]:
        start, o = self.bucket, self.ohlcv
        self.bucket, self.ohlcv = None, None
        if o is None or start is None:
            return []
        if self.first:  # may have begun before the subscription: the price history has it complete
            self.first = False
            self.dropped_first = start + self.interval_ns
            return []
        close = start + self.interval_ns
        return [Bar(self.bar_type, Price(o[0], self.pp), Price(o[1], self.pp), Price(o[2], self.pp),
                    Price(o[3], self.pp), Quantity(o[4], self.sp), close, close)]


def history_bars(tv_url: str, bar_type: str, symbol: str, interval_ns: int, after_ns: int, before_ns: int,
                 price_precision: int, size_precision: int, *, timeout: float = 10.0) -> list[list]:
    """The venue's candles of ``symbol`` (``BTCUSD``) closing in ``(after_ns, before_ns)``, as paper feed
    records ``[bar_type, close ns, o, h, l, c, v]`` (strings), from ``GET {tv_url}/v1/last-price/history``.

    Only candles closed by the venue's clock are served. Returns ``[]`` for an interval the history
    does not offer.

    Raises:
        OSError: the venue did not answer.
        ValueError: the venue answered an error.
    """
    res = RESOLUTION_BY_NS.get(interval_ns)
    if res is None:
        return []
    step_s = interval_ns // 1_000_000_000
    lo_s = max(after_ns // 1_000_000_000 - step_s + 1, 0)  # the candle closing after `after_ns` opens at close - step
    hi_s = -(-before_ns // 1_000_000_000)
    q = urllib.parse.urlencode({"symbol": f"{symbol}-Perp", "resolution": res, "from": lo_s, "to": hi_s})
    with urllib.request.urlopen(f"{tv_url.rstrip('/')}/v1/last-price/history?{q}", timeout=timeout) as r:
        page = json.loads(r.read())
    if page.get("s") == "error":
        raise ValueError(f"{tv_url}/v1/last-price/history: {page.get('errmsg')}")
    if page.get("s") != "ok":
        return []
    def fmt(x: Any, prec: int) -> str:
        return f"{Decimal(str(x)):.{prec}f}"

    out = []
    for t, o, h, low, c, v in zip(page["t"], page["o"], page["h"], page["l"], page["c"], page["v"], strict=True):
        close = (int(t) + step_s) * 1_000_000_000
        if after_ns < close < before_ns:
            out.append([bar_type, close, *(fmt(x, price_precision) for x in (o, h, low, c)), fmt(v, size_precision)])
    out.sort(key=lambda r: r[1])
    return out


def _get(url: str, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - the configured venue URL
        return json.loads(r.read())


def history_funding(rest_url: str, tv_url: str, symbol: str, after_ns: int, before_ns: int, *,
                    timeout: float = 10.0) -> tuple[dict[int, Decimal], list[tuple[int, float]]]:
    """Settlements of ``symbol`` in ``(after_ns, before_ns]`` that a session did not hear announced (it
    was down): ``({settlement ns: hourly rate}, [(ns, mark)])`` from ``GET /v1/funding`` (rows snapped to
    the hour, as the catalog import does) and the oracle-price history (the candle closing at each
    settlement: the mark the backtest settles with).

    Raises:
        OSError: the venue did not answer.
        ValueError: the product is unknown.
    """
    hour = 3_600_000_000_000
    base = rest_url.rstrip("/")
    products = _get(f"{base}/v1/product?{urllib.parse.urlencode({'ticker': symbol})}", timeout).get("data") or []
    pid = next((p["id"] for p in products if p.get("ticker") == symbol), None)
    if pid is None:
        raise ValueError(f"{base}/v1/product: no product {symbol}")
    rates: dict[int, Decimal] = {}
    cursor: str | None = ""
    while cursor is not None:
        q = {"productId": pid, "range": "MONTH", "order": "asc", "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = _get(f"{base}/v1/funding?{urllib.parse.urlencode(q)}", timeout)
        for row in page.get("data") or []:
            t = round(int(row["createdAt"]) * 1_000_000 / hour) * hour
            if after_ns < t <= before_ns:
                rates[t] = Decimal(str(row["fundingRate1h"]))
        cursor = page.get("nextCursor") if page.get("hasNext") else None
    marks: list[tuple[int, float]] = []
    if rates:
        lo_s, hi_s = min(rates) // 1_000_000_000 - 3600, max(rates) // 1_000_000_000
        q = {"symbol": f"{symbol}-Perp", "resolution": "60", "from": lo_s, "to": hi_s}
        page = _get(f"{tv_url.rstrip('/')}/v1/oracle-price/history?{urllib.parse.urlencode(q)}", timeout)
        if page.get("s") == "ok":
            marks = [((int(t) + 3600) * 1_000_000_000, float(c)) for t, c in zip(page["t"], page["c"], strict=True)]
    return rates, marks
