"""WebSocket client for the Ethereal v2 stream: the SDK's ``AsyncWSClient`` plus supervision.

Reused from ``ethereal-sdk`` 0.2.1 (``ethereal/ws/async_ws_base.py``, ``async_ws_client.py``): the
connection (``websockets.connect``; its default 20 s ping keeps the link alive as the docs ask),
the ``{"event": "subscribe"|"unsubscribe", "data": {"type": ..., "symbol"|"subaccountId": ...}}``
requests with camelCase parameters, and ack futures resolved by ``{"ok": ...}`` frames.

Added here because the SDK client has none of it: its listen loop just ends when the server closes
the socket (connections are closed after at most 12 h, and on idle or errors), so this client

* reconnects with capped exponential backoff and jitter (``backoff_initial_s`` .. ``backoff_max_s``),
* tells the owner when a new socket is open (``on_open``), *before* replaying subscriptions, so it
  can reset state that depends on stream continuity (order books wait for a fresh snapshot, which
  may arrive in the same read as the subscribe ack), then replays every active subscription,
* treats ``{"ok": false, ...}`` acks as errors, and
* reports undecodable frames through ``on_error`` instead of only logging them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from ethereal.async_ws_client import AsyncWSClient

log = logging.getLogger(__name__)


class WsSubscribeError(Exception):
    """The server refused a subscription (``{"ok": false, "code": ...}``) or did not ack it."""


SubKey = tuple[str, tuple[tuple[str, str], ...]]


class EtherealWebSocketClient(AsyncWSClient):
    """Supervised stream connection.

    ``base_url``: e.g. ``wss://ws2.ethereal.trade`` (``/v1/stream`` is appended).
    ``on_message(dict)``: called for every server event (frames with an ``e`` key).
    ``on_open(reconnect: bool)``: awaited right after the socket opened, *before* subscriptions are
    replayed, so state that depends on stream continuity (order books) is reset before the replayed
    subscriptions' first messages (a book snapshot can arrive together with the subscribe ack).
    ``on_connected(reconnect: bool)``: awaited after (re)connecting and replaying subscriptions.
    ``on_error(text)``: called for undecodable frames and refused resubscriptions.
    """

    def __init__(
        self,
        base_url: str,
        on_message: Callable[[dict[str, Any]], None],
        *,
        on_connected: Callable[[bool], Awaitable[None]] | None = None,
        on_open: Callable[[bool], Awaitable[None]] | None = None,
        on_error: Callable[[str], None] | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        ack_timeout_s: float = 10.0,
    ) -> None:
        super().__init__({"base_url": base_url})
        self.base_url = base_url.rstrip("/") + "/"
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_open = on_open
        self._on_error = on_error or (lambda text: log.error(text))
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._ack_timeout = ack_timeout_s
        self._subs: dict[SubKey, dict[str, Any]] = {}
        self._supervisor: asyncio.Task | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        self.connect_count = 0
        self.errors = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self, timeout_s: float = 10.0) -> None:
        """Start the supervisor and wait until the first connection is up (``TimeoutError``)."""
        self._stopping = False
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        self._stopping = True
        if self._supervisor:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except (asyncio.CancelledError, Exception):
                pass
            self._supervisor = None
        await self.close()

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                await self.open()
                self.connect_count += 1
                reconnect = self.connect_count > 1
                if self._on_open:
                    await self._on_open(reconnect)  # reset before the replayed snapshots can arrive
                await self._replay()
                if self._on_connected:
                    await self._on_connected(reconnect)
                self._ready.set()
                attempt = 0
                await self.wait()  # returns when the server closes the connection
            except asyncio.CancelledError:
                raise
            except Exception as e:  # connection refused, handshake error, refused resubscribe ...
                self._on_error(f"Ethereal WebSocket connection failed: {e!r}")
            await self._drop()
            if self._stopping:
                break
            delay = min(self._backoff_max, self._backoff_initial * 2**attempt) * random.uniform(0.5, 1.0)
            attempt += 1
            log.warning("Ethereal WebSocket disconnected; reconnecting in %.2f s (attempt %d)", delay, attempt)
            await asyncio.sleep(delay)

    async def _drop(self) -> None:
        if self._listen_task and not self._listen_task.done():
            self._listen_task.cancel()
        self._listen_task = None
        if self._ws is not None:
            try:
                await self._ws.close()
            except Exception:
                pass
        self._ws = None
        for fut in self._pending_acks.values():
            if not fut.done():
                fut.set_exception(ConnectionError("WebSocket closed before ack"))
        self._pending_acks.clear()

    # ------------------------------------------------------------------ subscriptions

    @staticmethod
    def _key(stream_type: str, params: dict[str, Any]) -> SubKey:
        return stream_type, tuple(sorted((k, str(v)) for k, v in params.items()))

    async def subscribe(self, stream_type: str, **params: Any) -> dict[str, Any]:
        """Subscribe (remembered for replay after reconnects). Raises :class:`WsSubscribeError`."""
        key = self._key(stream_type, params)
        self._subs[key] = params
        if not self.connected:
            return {"ok": None, "queued": True}
        try:
            return await self._request("subscribe", stream_type, params)
        except WsSubscribeError:
            self._subs.pop(key, None)  # a refused subscription is not replayed
            raise

    async def unsubscribe(self, stream_type: str, **params: Any) -> dict[str, Any]:
        """Unsubscribe and forget the subscription."""
        self._subs.pop(self._key(stream_type, params), None)
        if not self.connected:
            return {"ok": None}
        return await self._request("unsubscribe", stream_type, params)

    async def resubscribe(self, stream_type: str, **params: Any) -> None:
        """Unsubscribe and subscribe again (used to get a fresh book snapshot after a gap)."""
        if self.connected:
            await self._request("unsubscribe", stream_type, params, check=False)
        await self.subscribe(stream_type, **params)

    @property
    def subscriptions(self) -> list[tuple[str, dict[str, Any]]]:
        """Active subscriptions as ``(stream_type, params)``."""
        return [(k[0], p) for k, p in self._subs.items()]

    async def _request(self, verb: str, stream_type: str, params: dict[str, Any], check: bool = True) -> dict:
        call = super().subscribe if verb == "subscribe" else super().unsubscribe
        try:
            ack = await asyncio.wait_for(call(stream_type, **params), self._ack_timeout + 1)
        except TimeoutError:
            raise WsSubscribeError(f"no ack for {verb} {stream_type} {params} within {self._ack_timeout} s") from None
        if check and isinstance(ack, dict) and ack.get("ok") is False:
            raise WsSubscribeError(f"{verb} {stream_type} {params} refused: {ack}")
        return ack

    async def _replay(self) -> None:
        for key, params in list(self._subs.items()):
            try:
                await self._request("subscribe", key[0], params)
            except WsSubscribeError as e:  # keep the connection; report and forget this one
                self._subs.pop(key, None)
                self._on_error(f"Ethereal WebSocket: resubscription refused, dropped: {e}")

    # ------------------------------------------------------------------ receiving (SDK overrides)

    async def _listen(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                text = raw.decode() if isinstance(raw, bytes) else raw
                try:
                    msg = json.loads(text)
                except json.JSONDecodeError:
                    self.errors += 1
                    self._on_error(f"Ethereal WebSocket: invalid JSON frame {text[:120]!r}")
                    continue
                if not isinstance(msg, dict):
                    self.errors += 1
                    self._on_error(f"Ethereal WebSocket: frame is not an object: {text[:120]!r}")
                elif "ok" in msg and "e" not in msg:
                    self._resolve_ack(msg)
                else:
                    self._dispatch_message(msg)
        except websockets.ConnectionClosed as e:
            log.info("Ethereal WebSocket closed by server: %s %s", e.code, e.reason)
        except asyncio.CancelledError:
            pass

    def _dispatch_message(self, message: dict[str, Any]) -> None:
        try:
            self._on_message(message)
        except Exception as e:  # a handler bug must not kill the connection
            self.errors += 1
            self._on_error(f"Ethereal WebSocket handler error for {message.get('e')!r}: {e!r}")
