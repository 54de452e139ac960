"""Replay mode of the Ethereal mock: stored candles served as the venue's trade, mark and funding feed
on a simulated clock, so a paper session on Ethereal sees a reproducible market.

Ethereal has no candle stream: a live (or paper) session builds its bars from the public
``TradeFill`` stream (:class:`adapters.ethereal.bars.TradeBarBuilder`, on the venue's trade
timestamps). The replay therefore does not hand bars to the session; it plays each stored candle
as the trades that make it, and the session rebuilds the candle from them exactly as it would on
the venue. The candles are the mock's own price history (``GET /v1/last-price/history``, the
``tv_history.json`` fixture), i.e. the same rows :func:`adapters.ethereal.history.import_ethereal_history`
writes into the catalog for the backtest.

One step per candle ``k`` (opening at ``t_k``), every ``bar_seconds`` of wall time:

1. the venue clock becomes ``t_k`` (REST history then serves only candles closed by ``t_k``;
   every stream message is stamped with it);
2. a ``Ticker`` at ``t_k``: ``markPx`` = the oracle candle closing at ``t_k`` (the catalog's mark
   price at that time), ``fr1h`` = the funding rate the venue settles at the next hour
   (``funding.json`` snapped to the hour; the data client announces it for ``next_funding_ns``);
3. four ``TradeFill`` messages at ``t_k + 1..4 ms``: open, high, low, close, sizes
   ``volume - 3 lots, 1 lot, 1 lot, 1 lot`` (their sum is the candle's volume exactly).

Candle ``k`` is complete when the first trade of ``k + 1`` arrives: a replay of ``n`` candles
yields ``n - 1`` closed bars. With ``hold_when_unsubscribed=True`` (default) the clock waits while
no connection subscribes to ``TradeFill`` of the symbol (a restarting node misses nothing); with
False the candles go by while the node is away, as on the venue, and a restarted node has to
fetch them from the price history.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

HOUR_MS = 3_600_000


class EtherealReplay:
    """Drives a running :class:`~nautilus_app.testkit.ethereal_mock.server.MockEtherealServer`.

    Args:
        server: The running mock server.
        symbol: Venue ticker (``"BTCUSD"``).
        resolution: TradingView resolution of the stored candles (``"60"`` = 1 hour).
        start_s, end_s: Replay the candles opening in ``[start_s, end_s)`` (unix seconds; default all).
        bar_seconds: Wall seconds per candle.
        hold_when_unsubscribed: Stop the clock while nobody subscribes to the trade stream.

    Raises:
        ValueError: a candle's volume is below 4 lots (it cannot be played as four trades).
    """

    def __init__(self, server: Any, symbol: str = "BTCUSD", *, resolution: str = "60", start_s: int | None = None,
                 end_s: int | None = None, bar_seconds: float = 0.05, hold_when_unsubscribed: bool = True) -> None:
        self.server = server
        self.venue = server.venue
        self.symbol = symbol
        self.bar_seconds = bar_seconds
        self.hold = hold_when_unsubscribed
        tv = self.venue.tv[f"{symbol}-Perp"]
        last, oracle = tv["last"][resolution], tv["oracle"][resolution]
        self.step_ms = (86_400 if resolution.endswith("D") else int(resolution) * 60) * 1000
        lo = start_s if start_s is not None else min(last["t"])
        hi = end_s if end_s is not None else max(last["t"]) + 1
        self.candles = [tuple(last[k][i] for k in ("t", "o", "h", "l", "c", "v")) for i in range(len(last["t"]))
                        if lo <= last["t"][i] < hi]
        self.candles.sort()
        self.mark_at = {(t * 1000 + self.step_ms): c for t, c in zip(oracle["t"], oracle["c"], strict=True)}
        self.funding_at = {round(f["createdAt"] / HOUR_MS) * HOUR_MS: f["fundingRate1h"]
                           for f in self.venue.funding.get(symbol, [])}
        product = self.venue.by_symbol[symbol]
        self.lot = Decimal(product["lotSize"])
        for t, *_ohlc, v in self.candles:
            if Decimal(str(v)) < 4 * self.lot:
                raise ValueError(f"candle {t} of {symbol}: volume {v} is below 4 lots ({self.lot}): not replayable "
                                 "as open/high/low/close trades")
        self.cursor = 0  # candles played
        self._trade_seq = 0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ethereal-replay", daemon=True)

    # -- control
    def start(self) -> EtherealReplay:
        first = self.candles[0][0] * 1000 if self.candles else 0
        self.server.call(self._set_clock, first)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def wait_cursor(self, n: int, timeout: float) -> bool:
        """Until ``n`` candles were played (False on timeout)."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.cursor >= n:
                return True
            time.sleep(0.01)
        return False

    @property
    def done(self) -> bool:
        return self.cursor >= len(self.candles)

    def bar_close_ns(self, k: int) -> int:
        """Close time (ns) of the ``k``-th replayed candle."""
        return (self.candles[k][0] * 1000 + self.step_ms) * 1_000_000

    # -- the clock
    def _subscribed(self) -> bool:
        return any(("TradeFill", self.symbol) in subs for _ws, subs in list(self.venue.ws_clients))

    def _run(self) -> None:
        for k in range(len(self.candles)):
            while not self._stop.is_set() and (self._paused.is_set() or (self.hold and not self._subscribed())):
                time.sleep(0.01)
            if self._stop.is_set():
                return
            try:
                self.server.call(self._step, k)
            except Exception:  # noqa: BLE001 - server stopping
                return
            self.cursor = k + 1
            time.sleep(self.bar_seconds)

    def _set_clock(self, ms: int) -> None:
        self.venue.replay_clock_ms = ms

    async def _step(self, k: int) -> None:
        t, o, h, low, c, v = self.candles[k]
        t_ms = t * 1000
        self._set_clock(t_ms)
        v = self.venue
        book = v.books.get(self.symbol)
        data = {"s": self.symbol, "t": t_ms, "oi": "100", "vol24h": "1000"}
        if book and book["bids"] and book["asks"]:
            b, a = max(book["bids"]), min(book["asks"])
            data.update(bidPx=str(b), askPx=str(a), bidAmt=str(book["bids"][b]), askAmt=str(book["asks"][a]))
        mark = self.mark_at.get(t_ms)
        if mark is not None:
            data.update(markPx=str(mark), markPx24h=str(mark))
        rate = self.funding_at.get((t_ms // HOUR_MS + 1) * HOUR_MS)
        if rate is not None:
            data["fr1h"] = str(rate)
        await v.publish("Ticker", self.symbol, {"e": "Ticker", "t": t_ms, "data": data})
        lots = int((Decimal(str(self.candles[k][5])) / self.lot).to_integral_value())
        sizes = [(lots - 3) * self.lot, self.lot, self.lot, self.lot]
        for i, (px, sz) in enumerate(zip((o, h, low, c), sizes, strict=True)):
            self._trade_seq += 1
            ts = t_ms + 1 + i
            item = {"id": f"00000000-0000-4000-9000-{self._trade_seq:012d}", "px": str(px), "sz": str(sz),
                    "sd": 0 if i % 2 else 1, "sids": []}
            await v.publish("TradeFill", self.symbol, {"e": "TradeFill", "t": ts,
                                                       "data": {"s": self.symbol, "t": ts, "d": [item]}})
