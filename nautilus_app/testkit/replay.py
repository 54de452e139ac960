"""A local stand-in for Binance USDT-M (and spot) market data: replays real klines at an accelerated clock.

Paper trading uses Nautilus's own (Rust) Binance data client. To test it offline, this server
speaks the subset of Binance's REST and WebSocket API that client uses, and the node is pointed
at it through ``BinanceDataClientConfig(base_url_http=..., base_url_ws=...)``:

| endpoint | what is served |
|---|---|
| ``GET /fapi/v1/exchangeInfo`` | Binance's JSON for the replayed symbols (filters from :mod:`core.instruments`) |
| ``GET /fapi/v1/klines`` | closed klines up to the replay clock (Binance's 12-field arrays) |
| ``GET /fapi/v1/time``, ``/fapi/v1/ping`` | server time (= replay clock) / ``{}`` |
| ``GET /fapi/v1/premiumIndex`` | mark price (last close) and next funding rate/time |
| ``GET /fapi/v1/fundingRate`` | funding history: settlements up to the replay clock (``fundingTime``, ``fundingRate``, ``markPrice``) |
| ``GET /fapi/v1/markPriceKlines`` | mark-price klines up to the replay clock (the mark is the kline close, as the stream's) |
| WebSocket (any path) | ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS``; streams ``<sym>@kline_<i>`` and ``<sym>@markPrice[@1s]`` |

Messages are Binance's exact JSON (``{"e":"kline","E":..,"s":..,"k":{..,"x":true}}``; the
``markPriceUpdate`` event with ``r`` = funding rate and ``T`` = next funding time), wrapped as
``{"stream":..,"data":..}`` on combined-stream paths (``/stream``). Kline values are the original
strings of the Binance Vision CSVs, so prices and volumes reach the client byte for byte.

Clock. Bars are emitted in open-time order, one step every ``bar_seconds`` of wall time (e.g. 0.05 s
for a 1-minute bar = 1200x). Only closed klines are sent (``x = true``): Nautilus emits a ``Bar``
only for closed klines anyway. With ``hold_when_unsubscribed=True`` (default) the clock stops
while no client is subscribed to every expected kline stream, so a reconnecting or restarting
node misses nothing; set it False to model a real exchange whose bars go by while you are away.

Spot (``market="spot"``): ``GET /api/v3/exchangeInfo`` is answered in **SBE** (Binance spot schema
3:5, :func:`sbe_exchange_info_spot`), because Nautilus's Rust spot client sends only
``Accept: application/sbe`` + ``X-MBX-SBE: 3:5`` and does not accept a JSON body (verified: with a
JSON answer its connect fails with "connection failed"); ``/api/v3/time``, ``/api/v3/ping`` and
the same JSON kline streams as USDT-M are served too (the node uses ``spot_market_data_mode = Json``).

Not a Binance emulator: no order endpoints, no depth/trades/bookTicker streams, no rate limits.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import struct
import threading
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from core import paths
from core.instruments import INTERVALS

log = logging.getLogger(__name__)

INTERVAL_MS = {k: ns // 1_000_000 for k, (_, _, ns) in INTERVALS.items()}


@dataclass(frozen=True)
class Kline:
    """One Binance kline as the original CSV strings (times in ms, UTC)."""

    open_time: int
    close_time: int  # open_time + interval - 1 ms, as Binance
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str = "0"
    count: int = 0
    taker_buy_volume: str = "0"
    taker_buy_quote_volume: str = "0"

    def rest_row(self) -> list:
        """Binance REST ``/klines`` array (12 fields)."""
        return [self.open_time, self.open, self.high, self.low, self.close, self.volume, self.close_time,
                self.quote_volume, self.count, self.taker_buy_volume, self.taker_buy_quote_volume, "0"]


@dataclass(frozen=True)
class FundingRow:
    """One funding settlement: time (ms, on the 8 h grid) and rate (fraction, original string)."""

    time_ms: int
    rate: str


def _month_days(start_ms: int, end_ms: int) -> tuple[list[str], list[str]]:
    import pandas as pd

    s = pd.Timestamp(start_ms, unit="ms", tz="UTC")
    e = pd.Timestamp(end_ms - 1, unit="ms", tz="UTC")
    months = [p.strftime("%Y-%m") for p in pd.period_range(s.tz_localize(None), e.tz_localize(None), freq="M")]
    days = [d.strftime("%Y-%m-%d") for d in pd.date_range(s.normalize(), e.normalize(), freq="D")]
    return months, days


def _read_zip_rows(path: Path) -> list[list[str]]:
    with zipfile.ZipFile(path) as zf, zf.open(zf.namelist()[0]) as fh:
        rows = list(csv.reader(io.TextIOWrapper(fh, "utf-8")))
    if rows and not rows[0][0].strip().isdigit():
        rows = rows[1:]
    return rows


def load_klines(symbol: str, start: str, end: str, *, interval: str = "1m", market: str = "um",
                root: Path | None = None) -> list[Kline]:
    """Klines opening in ``[start, end)`` (UTC ISO dates/datetimes) from the Binance Vision mirror.

    Monthly archives are used where present, daily ones otherwise. Spot files switch from ms to µs
    open times in 2025; times are normalised to ms.

    Raises:
        FileNotFoundError: no archive covers part of the range (names the missing month/day).
    """
    import pandas as pd

    base = (root or paths.shared_data_dir() / "binance-vision") / "data"
    prefix = "futures/um" if market == "um" else "spot"
    start_ms = int(pd.Timestamp(start, tz="UTC").value // 1_000_000)
    end_ms = int(pd.Timestamp(end, tz="UTC").value // 1_000_000)
    months, days = _month_days(start_ms, end_ms)
    rows: dict[int, Kline] = {}
    for month in months:
        f = base / prefix / "monthly" / "klines" / symbol / interval / f"{symbol}-{interval}-{month}.zip"
        files = [f] if f.exists() else [
            base / prefix / "daily" / "klines" / symbol / interval / f"{symbol}-{interval}-{d}.zip"
            for d in days if d.startswith(month)
        ]
        for path in files:
            if not path.exists():
                raise FileNotFoundError(f"no Binance Vision archive for {symbol} {interval} {market}: {path}")
            for r in _read_zip_rows(path):
                t = int(r[0])
                t = t // 1000 if t > 10**14 else t  # µs (spot 2025+) -> ms
                if start_ms <= t < end_ms:
                    rows[t] = Kline(t, t + INTERVAL_MS[interval] - 1, r[1], r[2], r[3], r[4], r[5],
                                    r[7] if len(r) > 7 else "0", int(r[8]) if len(r) > 8 and r[8].isdigit() else 0,
                                    r[9] if len(r) > 9 else "0", r[10] if len(r) > 10 else "0")
    if not rows:
        raise FileNotFoundError(f"no {symbol} {interval} klines between {start} and {end}")
    return [rows[t] for t in sorted(rows)]


def load_funding(symbol: str, start: str, end: str, *, root: Path | None = None) -> list[FundingRow]:
    """USDT-M funding settlements in ``[start, end]`` from the mirror's monthly ``fundingRate`` archives."""
    import pandas as pd

    base = (root or paths.shared_data_dir() / "binance-vision") / "data" / "futures/um/monthly/fundingRate"
    start_ms = int(pd.Timestamp(start, tz="UTC").value // 1_000_000)
    end_ms = int(pd.Timestamp(end, tz="UTC").value // 1_000_000)
    months, _ = _month_days(start_ms, end_ms + 1)
    out: dict[int, FundingRow] = {}
    for month in months:
        path = base / symbol / f"{symbol}-fundingRate-{month}.zip"
        if not path.exists():
            continue
        for r in _read_zip_rows(path):
            t = int(r[0])
            if start_ms <= t <= end_ms:
                out[t] = FundingRow(t, r[2])
    return [out[t] for t in sorted(out)]


@dataclass
class ReplayStats:
    """Counters for tests and logs."""

    http_requests: list[str] = field(default_factory=list)
    unhandled: list[str] = field(default_factory=list)
    ws_connections: int = 0
    ws_messages_in: list[str] = field(default_factory=list)
    klines_sent: int = 0
    mark_sent: int = 0
    drops: int = 0


class BinanceReplayServer:
    """Replay klines (and funding via ``markPrice``) to Nautilus's Binance USDT-M data client.

    Args:
        klines: ``{"BTCUSDT": [Kline, ...]}``, each list sorted by open time, same interval.
        interval: Binance interval string of the klines (``"1m"``).
        bar_seconds: Wall seconds between two bar steps (the acceleration: 60 / bar_seconds for 1m).
        funding: ``{"BTCUSDT": [FundingRow, ...]}`` for ``markPrice`` streams and ``premiumIndex``.
        hold_when_unsubscribed: Stop the clock while not every symbol's kline stream is subscribed (an
            attribute read at every step: a test may clear it while a node is down, so bars go by, and
            set it again to hold the clock until the restarted node subscribes).
        start_delay: Seconds to wait after all streams are subscribed before the first bar (lets the
            node finish starting its strategies).
        host, port: Where to listen; port 0 picks a free port (read :attr:`port` after :meth:`start`).

    Use :meth:`start` / :meth:`stop` (a background thread with its own event loop), then point the
    client at :attr:`base_url_http` and :attr:`base_url_ws`. :meth:`drop_connections` closes every
    WebSocket (tests reconnect); :attr:`cursor` is the number of bar steps emitted so far.
    """

    def __init__(self, klines: dict[str, list[Kline]], *, interval: str = "1m", bar_seconds: float = 0.05,
                 funding: dict[str, list[FundingRow]] | None = None, hold_when_unsubscribed: bool = True,
                 start_delay: float = 0.5, host: str = "127.0.0.1", port: int = 0, market: str = "um") -> None:
        if market not in ("um", "spot"):
            raise ValueError(f"market {market!r}: expected 'um' or 'spot'")
        self.market = market
        if interval not in INTERVAL_MS:
            raise ValueError(f"interval {interval!r}: expected one of {sorted(INTERVAL_MS)}")
        if not klines:
            raise ValueError("klines: expected at least one symbol with klines")
        self.klines = {s.upper(): list(v) for s, v in klines.items()}
        self.interval = interval
        self.bar_seconds = float(bar_seconds)
        self.funding = {s.upper(): list(v) for s, v in (funding or {}).items()}
        self.hold_when_unsubscribed = hold_when_unsubscribed
        self.start_delay = start_delay
        self.host = host
        self.port = port
        self.stats = ReplayStats()
        # one time axis: every open time present in any symbol
        self.times: list[int] = sorted({k.open_time for v in self.klines.values() for k in v})
        self._by_time = {s: {k.open_time: k for k in v} for s, v in self.klines.items()}
        self.cursor = 0  # bar steps emitted
        self.done = threading.Event()
        self._subs: dict[object, set[str]] = {}
        self._combined: dict[object, bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._paused = threading.Event()
        self._stop_flag = False
        self._runner = None

    # ---- public API ---------------------------------------------------------------------
    @property
    def base_url_http(self) -> str:
        """``http://host:port`` (the client appends ``/fapi/v1/...``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url_ws(self) -> str:
        """``ws://host:port/ws``."""
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def replay_time_ms(self) -> int:
        """Close time + 1 ms of the last emitted bar (the replayed "now"), or the first open time."""
        if self.cursor == 0:
            return self.times[0]
        return self.times[self.cursor - 1] + INTERVAL_MS[self.interval]

    def expected_streams(self) -> set[str]:
        """Kline streams that must be subscribed before the clock runs."""
        return {f"{s.lower()}@kline_{self.interval}" for s in self.klines}

    def start(self) -> BinanceReplayServer:
        """Start listening in a background thread; returns self once the port is bound."""
        self._thread = threading.Thread(target=self._thread_main, name="binance-replay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("replay server did not start within 10 s")
        return self

    def stop(self) -> None:
        """Stop the clock, close connections and the listener."""
        self._stop_flag = True
        if self._loop is not None:
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                fut.result(5)
            except Exception:  # noqa: BLE001 - best effort on shutdown
                pass
        if self._thread is not None:
            self._thread.join(5)

    def pause(self) -> None:
        """Stop emitting bars (the feed goes silent; connections stay open)."""
        self._paused.set()

    def resume(self) -> None:
        """Resume emitting bars after :meth:`pause`."""
        self._paused.clear()

    def drop_connections(self) -> int:
        """Close every WebSocket connection abruptly (code 1011); returns how many were closed."""
        if self._loop is None:
            return 0
        fut = asyncio.run_coroutine_threadsafe(self._drop(), self._loop)
        return fut.result(5)

    def wait_done(self, timeout: float) -> bool:
        """Block until every bar was emitted (True) or ``timeout`` seconds passed (False)."""
        return self.done.wait(timeout)

    def wait_cursor(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` bar steps were emitted."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.cursor >= n:
                return True
            time.sleep(0.01)
        return self.cursor >= n

    # ---- internals ----------------------------------------------------------------------
    def _thread_main(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()
        self._loop.close()

    async def _serve(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_route("GET", "/fapi/v1/exchangeInfo", self._exchange_info)
        app.router.add_route("GET", "/fapi/v1/klines", self._rest_klines)
        app.router.add_route("GET", "/fapi/v1/time", self._time)
        app.router.add_route("GET", "/fapi/v1/ping", self._ping)
        app.router.add_route("GET", "/fapi/v1/premiumIndex", self._premium_index)
        app.router.add_route("GET", "/fapi/v1/fundingRate", self._funding_history)
        app.router.add_route("GET", "/fapi/v1/markPriceKlines", self._mark_price_klines)
        app.router.add_route("GET", "/api/v3/exchangeInfo", self._exchange_info_spot)
        app.router.add_route("GET", "/api/v3/time", self._time)
        app.router.add_route("GET", "/api/v3/ping", self._ping)
        app.router.add_route("*", "/{tail:.*}", self._fallback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._clock_task = asyncio.get_running_loop().create_task(self._clock())
        self._ready.set()

    async def _shutdown(self) -> None:
        self._clock_task.cancel()
        await self._drop()
        if self._runner is not None:
            await self._runner.cleanup()
        asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)

    async def _drop(self) -> int:
        n = 0
        for ws in list(self._subs):
            n += 1
            await ws.close(code=1011, message=b"replay: connection dropped")
        self._subs.clear()
        self.stats.drops += n
        return n

    def _subscribed(self) -> set[str]:
        out: set[str] = set()
        for streams in self._subs.values():
            out |= streams
        return out

    async def _clock(self) -> None:
        ready_since: float | None = None
        while self.cursor < len(self.times):
            await asyncio.sleep(self.bar_seconds)
            if self._paused.is_set():
                continue
            if self.hold_when_unsubscribed:
                if not self.expected_streams() <= self._subscribed():
                    ready_since = None
                    continue
                if ready_since is None:
                    ready_since = time.monotonic()
                if time.monotonic() - ready_since < self.start_delay:
                    continue
            await self._emit_step(self.times[self.cursor])
            self.cursor += 1
        self.done.set()

    async def _send(self, ws: object, stream: str, data: dict) -> None:
        payload = {"stream": stream, "data": data} if self._combined.get(ws) else data
        try:
            await ws.send_str(json.dumps(payload, separators=(",", ":")))  # type: ignore[attr-defined]
        except (ConnectionError, RuntimeError):
            self._subs.pop(ws, None)

    async def _emit_step(self, open_time: int) -> None:
        step_ms = INTERVAL_MS[self.interval]
        event_time = open_time + step_ms  # the kline closes; Binance sends it just after
        for ws, streams in list(self._subs.items()):
            for sym, by_time in self._by_time.items():
                k = by_time.get(open_time)
                if k is None:
                    continue
                # mark first: a consumer settling funding on this bar sees this bar's mark
                for mstream in (f"{sym.lower()}@markPrice", f"{sym.lower()}@markPrice@1s"):
                    if mstream in streams:
                        await self._send(ws, mstream, self._mark_msg(sym, k.close, event_time))
                        self.stats.mark_sent += 1
                stream = f"{sym.lower()}@kline_{self.interval}"
                if stream in streams:
                    await self._send(ws, stream, self._kline_msg(sym, k, event_time))
                    self.stats.klines_sent += 1

    def _kline_msg(self, sym: str, k: Kline, event_time: int) -> dict:
        return {"e": "kline", "E": event_time, "s": sym, "k": {
            "t": k.open_time, "T": k.close_time, "s": sym, "i": self.interval, "f": 0, "L": 0,
            "o": k.open, "c": k.close, "h": k.high, "l": k.low, "v": k.volume, "n": k.count, "x": True,
            "q": k.quote_volume, "V": k.taker_buy_volume, "Q": k.taker_buy_quote_volume, "B": "0"}}

    def next_funding(self, sym: str, now_ms: int) -> FundingRow | None:
        """The first funding settlement strictly after ``now_ms`` (Binance's ``nextFundingTime``)."""
        for row in self.funding.get(sym, []):
            if row.time_ms > now_ms:
                return row
        return None

    def _mark_msg(self, sym: str, price: str, event_time: int) -> dict:
        nxt = self.next_funding(sym, event_time - 1)
        return {"e": "markPriceUpdate", "E": event_time, "s": sym, "p": price, "i": price, "P": price,
                "r": nxt.rate if nxt else "0", "T": nxt.time_ms if nxt else 0}

    # ---- HTTP -----------------------------------------------------------------------------
    def _log(self, request) -> None:  # noqa: ANN001
        self.stats.http_requests.append(f"{request.method} {request.path_qs}")

    async def _fallback(self, request):  # noqa: ANN001, ANN202
        from aiohttp import web

        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        self._log(request)
        self.stats.unhandled.append(f"{request.method} {request.path_qs}")
        log.warning("replay: unhandled %s %s", request.method, request.path_qs)
        return web.json_response({"code": -1100, "msg": f"replay server: {request.path} not served"}, status=404)

    async def _exchange_info(self, request):  # noqa: ANN001, ANN202
        from aiohttp import web

        self._log(request)
        return web.json_response(exchange_info_usdm(list(self.klines), self.replay_time_ms))

    async def _exchange_info_spot(self, request):  # noqa: ANN001, ANN202
        """Spot ``exchangeInfo``: Nautilus's Rust spot client asks for SBE only (``Accept: application/sbe``,
        ``X-MBX-SBE: 3:5``) and cannot read JSON, so it is answered in SBE (schema 3 version 5)."""
        from aiohttp import web

        self._log(request)
        if "application/sbe" in request.headers.get("Accept", ""):
            return web.Response(body=sbe_exchange_info_spot(list(self.klines)), content_type="application/sbe")
        return web.json_response({"code": -1100, "msg": "replay server: spot exchangeInfo is served as SBE only"},
                                 status=406)

    async def _time(self, request):  # noqa: ANN001, ANN202
        from aiohttp import web

        self._log(request)
        return web.json_response({"serverTime": self.replay_time_ms})

    async def _ping(self, request):  # noqa: ANN001, ANN202
        from aiohttp import web

        self._log(request)
        return web.json_response({})

    async def _premium_index(self, request):  # noqa: ANN001, ANN202
        from aiohttp import web

        self._log(request)
        out = []
        now = self.replay_time_ms
        for sym, rows in self.klines.items():
            closed = [k for k in rows if k.close_time < now]
            px = closed[-1].close if closed else rows[0].open
            nxt = self.next_funding(sym, now - 1)
            out.append({"symbol": sym, "markPrice": px, "indexPrice": px, "estimatedSettlePrice": px,
                        "lastFundingRate": nxt.rate if nxt else "0", "interestRate": "0.0001",
                        "nextFundingTime": nxt.time_ms if nxt else 0, "time": now})
        want = request.query.get("symbol")
        if want:
            match = [o for o in out if o["symbol"] == want.upper()]
            return web.json_response(match[0] if match else {"code": -1121, "msg": "Invalid symbol."},
                                     status=200 if match else 400)
        return web.json_response(out)

    async def _funding_history(self, request):  # noqa: ANN001, ANN202
        """Binance ``GET /fapi/v1/fundingRate``: the settlements of ``symbol`` already reached by the replay clock
        (``fundingTime <= now``), ascending; ``startTime``/``endTime`` inclusive, ``limit`` (default 100, max
        1000) counted from ``startTime`` when given, else the most recent ones. ``markPrice`` is the mark at
        the settlement (the close of the kline closing then, as the ``markPrice`` stream sends it)."""
        from aiohttp import web

        self._log(request)
        q = request.query
        sym = q.get("symbol", "").upper()
        if sym not in self.klines:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        now = self.replay_time_ms
        start = int(q.get("startTime", 0))
        end = min(int(q.get("endTime", now)), now)
        limit = min(int(q.get("limit", 100)), 1000)
        closes = {k.close_time + 1: k.close for k in self.klines[sym]}
        rows = [{"symbol": sym, "fundingTime": f.time_ms, "fundingRate": f.rate,
                 "markPrice": closes.get(f.time_ms, "")}
                for f in self.funding.get(sym, []) if start <= f.time_ms <= end]
        rows = rows[:limit] if "startTime" in q else rows[-limit:]
        return web.json_response(rows)

    async def _mark_price_klines(self, request):  # noqa: ANN001, ANN202
        """Binance ``GET /fapi/v1/markPriceKlines``: closed mark-price klines up to the replay clock. The
        replayed mark is the trade kline's price (the ``markPrice`` stream sends its close), so the mark
        klines are the klines' open/high/low/close with no volume."""
        return self._closed_klines(request, lambda k: [k.open_time, k.open, k.high, k.low, k.close, "0",
                                                       k.close_time, "0", 0, "0", "0", "0"])

    async def _rest_klines(self, request):  # noqa: ANN001, ANN202
        return self._closed_klines(request, lambda k: k.rest_row())

    def _closed_klines(self, request, row):  # noqa: ANN001, ANN202
        """Klines closed before the replay clock, as Binance's kline endpoints page them (``startTime`` ..
        ``endTime``, ``limit`` at most 1500: the first rows after a start, else the latest), each by ``row``."""
        from aiohttp import web

        self._log(request)
        q = request.query
        sym = q.get("symbol", "").upper()
        if sym not in self.klines or q.get("interval") != self.interval:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        now = self.replay_time_ms
        start = int(q.get("startTime", 0))
        end = int(q.get("endTime", now))
        limit = min(int(q.get("limit", 500)), 1500)
        rows = [row(k) for k in self.klines[sym] if k.close_time < now and start <= k.open_time <= end]
        rows = rows[:limit] if "startTime" in q else rows[-limit:]
        return web.json_response(rows)

    # ---- WebSocket ------------------------------------------------------------------------
    async def _websocket(self, request):  # noqa: ANN001, ANN202
        from aiohttp import WSMsgType, web

        self._log(request)
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        self.stats.ws_connections += 1
        self._subs[ws] = set()
        self._combined[ws] = request.path.startswith("/stream") or "/stream" in request.path
        # streams given in the URL (/stream?streams=a/b or /ws/a)
        if "streams" in request.query:
            self._subs[ws] |= set(request.query["streams"].split("/"))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                self.stats.ws_messages_in.append(msg.data)
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await ws.send_str(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
                    continue
                method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
                if method == "SUBSCRIBE":
                    self._subs.setdefault(ws, set()).update(params)
                    await ws.send_str(json.dumps({"result": None, "id": rid}))
                elif method == "UNSUBSCRIBE":
                    self._subs.setdefault(ws, set()).difference_update(params)
                    await ws.send_str(json.dumps({"result": None, "id": rid}))
                elif method == "LIST_SUBSCRIPTIONS":
                    await ws.send_str(json.dumps({"result": sorted(self._subs.get(ws, set())), "id": rid}))
                else:
                    await ws.send_str(json.dumps({"error": {"code": 2, "msg": f"Invalid request {method}"}, "id": rid}))
        finally:
            self._subs.pop(ws, None)
            self._combined.pop(ws, None)
        return ws


def exchange_info_usdm(symbols: Iterable[str], server_time_ms: int) -> dict:
    """Binance ``/fapi/v1/exchangeInfo`` JSON for USDT-M perpetuals, from :data:`core.instruments.SPECS`.

    Raises:
        KeyError: a symbol has no USDT-M spec (names the known ones).
    """
    from core.instruments import get_spec

    out = []
    for sym in symbols:
        spec = get_spec(sym, "um")
        out.append({
            "symbol": spec.symbol, "pair": spec.symbol, "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": spec.base, "quoteAsset": spec.quote, "marginAsset": spec.quote,
            "pricePrecision": spec.price_precision, "quantityPrecision": spec.size_precision,
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
            "underlyingSubType": ["PoW"], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05",
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.10" if spec.tick_size == "0.10" else spec.tick_size,
                 "maxPrice": "4529764", "tickSize": spec.tick_size},
                {"filterType": "LOT_SIZE", "minQty": spec.min_quantity, "maxQty": "1000", "stepSize": spec.step_size},
                {"filterType": "MARKET_LOT_SIZE", "minQty": spec.min_quantity, "maxQty": "120", "stepSize": spec.step_size},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": spec.min_notional},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                 "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                           "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        })
    return {
        "timezone": "UTC", "serverTime": server_time_ms, "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": out,
    }


# ---- SBE (Binance spot schema 3:5, github.com/binance/binance-spot-api-docs sbe/schemas/spot_3_5.xml) ----
_SBE_SCHEMA_ID, _SBE_VERSION = 3, 5
_SBE_EXP = -8  # one exponent for every price/quantity mantissa (int64: up to 9.2e10 at 1e-8)


def _sbe_header(block_length: int, template_id: int) -> bytes:
    return struct.pack("<HHHH", block_length, template_id, _SBE_SCHEMA_ID, _SBE_VERSION)


def _sbe_group(block_length: int, count: int) -> bytes:  # groupSizeEncoding: uint16 blockLength, uint32 numInGroup
    return struct.pack("<HI", block_length, count)


def _sbe_var8(data: bytes | str) -> bytes:  # varString8 / messageData8: uint8 length + bytes
    b = data.encode() if isinstance(data, str) else data
    if len(b) > 255:
        raise ValueError(f"SBE varData8 longer than 255 bytes: {len(b)}")
    return struct.pack("<B", len(b)) + b


def _mantissa(value: str) -> int:
    return int(Decimal(value).scaleb(-_SBE_EXP).to_integral_exact())


def sbe_exchange_info_spot(symbols: Iterable[str]) -> bytes:
    """Binance spot ``GET /api/v3/exchangeInfo`` as SBE ``ExchangeInfoResponse`` (template 103, schema 3:5).

    Per symbol (from :data:`core.instruments.SPECS`): status TRADING, precisions 8, order
    types MARKET+LIMIT, ``PriceFilter`` (template 1), ``LotSizeFilter`` (4) and ``NotionalFilter`` (6)
    as embedded messages, permission set ``[SPOT]``; no rate limits, exchange filters or SORs.
    Little-endian; field order and sizes as in the schema (symbols block 19 bytes).

    Raises:
        KeyError: a symbol has no spot spec.
    """
    from core.instruments import get_spec

    syms = [get_spec(s, "spot") for s in symbols]
    out = bytearray(_sbe_header(0, 103))
    out += _sbe_group(11, 0)  # rateLimits: rateLimitType u8, interval u8, intervalNum u8, rateLimit i64
    out += _sbe_group(0, 0)  # exchangeFilters
    out += _sbe_group(19, len(syms))
    for spec in syms:
        # status, base/quote/baseCommission/quoteCommission precisions, orderTypes (u16 set: MARKET|LIMIT),
        # iceberg, oco, oto, quoteOrderQtyMarket, trailingStop, cancelReplace, amend, spot, margin,
        # defaultSelfTradePreventionMode (EXPIRE_MAKER=3), allowed modes set (ExpireMaker bit 2), pegInstructions
        out += struct.pack("<BBBBBH9BBBB", 0, 8, 8, 8, 8, 0b11, 1, 1, 1, 1, 1, 1, 1, 1, 0, 3, 1 << 2, 0)
        filters = [
            _sbe_header(25, 1) + struct.pack("<bqqq", _SBE_EXP, _mantissa(spec.tick_size), _mantissa("1000000"),
                                              _mantissa(spec.tick_size)),
            _sbe_header(25, 4) + struct.pack("<bqqq", _SBE_EXP, _mantissa(spec.min_quantity), _mantissa("9000"),
                                              _mantissa(spec.step_size)),
            _sbe_header(23, 6) + struct.pack("<bqBqBi", _SBE_EXP, _mantissa(spec.min_notional), 1,
                                              _mantissa("9000000"), 0, 5),
        ]
        out += _sbe_group(0, len(filters)) + b"".join(_sbe_var8(f) for f in filters)
        out += _sbe_group(0, 1) + _sbe_group(0, 1) + _sbe_var8("SPOT")  # permissionSets -> permissions
        out += _sbe_var8(spec.symbol) + _sbe_var8(spec.base) + _sbe_var8(spec.quote)
    out += _sbe_group(0, 0)  # sors
    return bytes(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m nautilus_app.testkit.replay --symbols ETHUSDT --start 2023-08-01 --end 2023-08-02 --port 8765``:
    serve the replay until interrupted (then point ``[paper] base_url_http/ws`` at it)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m nautilus_app.testkit.replay", description="Binance USDT-M replay server")
    p.add_argument("--symbols", nargs="+", default=["ETHUSDT"])
    p.add_argument("--start", required=True, help="first bar open (UTC ISO)")
    p.add_argument("--end", required=True, help="exclusive end (UTC ISO)")
    p.add_argument("--interval", default="1m")
    p.add_argument("--bar-seconds", type=float, default=0.5, help="wall seconds per bar (0.5 = 120x for 1m)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--market", choices=["um", "spot"], default="um", help="um = USDT-M (/fapi), spot = /api/v3")
    args = p.parse_args(argv)
    klines = {s: load_klines(s, args.start, args.end, interval=args.interval, market=args.market)
              for s in args.symbols}
    funding = {s: load_funding(s, args.start, args.end) for s in args.symbols} if args.market == "um" else {}
    srv = BinanceReplayServer(klines, interval=args.interval, bar_seconds=args.bar_seconds, funding=funding,
                              port=args.port, market=args.market).start()
    print(f"replaying {sum(map(len, klines.values()))} klines: base_url_http={srv.base_url_http} "
          f"base_url_ws={srv.base_url_ws}", flush=True)
    try:
        while not srv.done.wait(1.0):
            pass
        print(f"replay finished: {srv.cursor} bar steps", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
