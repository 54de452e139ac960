"""Mock Ethereal venue: REST (``/v1/...``), TradingView history and the v2 WebSocket stream.

Built from the public API description (the OpenAPI models generated into ``ethereal-sdk`` 0.2.1,
docs.ethereal.trade "WebSockets" / "System Limits", and the stream schema of the community Rust
SDK). It is independent of the adapter's code: requests are validated with the SDK's pydantic
request models (the venue's OpenAPI schema), signatures are verified with its own EIP-712 encoding
via ``eth_account`` and the signer is recovered and checked against the subaccount owner or its
active linked signers, and nonces must be unique.

Simplified venue semantics (documented, deliberate):

* One order book per product, seeded from ``l2book_*.json``; the subaccount's resting limit orders
  are *not* shown in the public book. ``MockVenue.fill_resting`` simulates another trader taking a
  resting order (maker fill).
* Market and crossing limit orders take liquidity level by level (taker fee = notional x
  ``takerFee``); IOC remainders are canceled, FOK needs the full size, post-only crossing orders are
  rejected with ``ImmediateMatchPostOnly``, reduce-only orders that would increase the position
  are rejected with ``OrderIncreasesPosition``.
* Positions are netted per subaccount and product with average-cost accounting; realised PnL and
  fees go to the USD balance.
* Every fill also publishes a ``PositionUpdate`` (size, side, cost) on the private stream.
* Test controls: ``rate_limit(n, retry_after_s)`` answers the next ``n`` REST calls with HTTP 429,
  ``drop_connections()`` closes every WebSocket, ``broadcast_raw(text)`` sends an arbitrary frame,
  ``publish_book_diff`` / ``publish_ticker`` push market data, ``corrupt_next_pt`` makes the next
  book diff skip a message. Order entry faults (each for the next ``POST /v1/order``):
  ``fail_next_order(status, process_after_s, process, hang_s)`` answers 5xx (or hangs ``hang_s``
  so the client times out) while the order is taken into the book ``process_after_s`` later or
  never (a queued taker order that a lookup right after the error does not find);
  ``reject_next_after_ok(reason)`` publishes the ``REJECTED`` update *before* answering ``Ok``
  (the engine rejects while the REST call is in flight); ``next_result_code(code)`` answers with a
  result code the SDK does not know. ``drop_fill_messages(n)`` withholds the stream ``OrderFill``
  of the next ``n`` fills (the REST fill list keeps them). Position events: ``liquidate`` and
  ``auto_deleverage`` close/reduce a position with a venue-generated order (no client order id) at
  any price, also off the tick grid, publishing ``PositionUpdate`` and (liquidation)
  ``SubaccountLiquidation``; their ``OrderFill`` messages only if ``stream_fills``.
  ``publish_order_status(order_id, status)`` pushes an update with any status string.
  ``requests`` records ``(method, path, query)`` of every REST call.

Use :class:`MockEtherealServer` (runs in a background thread; ``rest_url``, ``ws_url``) and call
venue methods through ``server.call(fn, *args)`` so they run on the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from eth_account import Account
from eth_account.messages import encode_typed_data
from ethereal.models import load_models

D0 = Decimal(0)


def _d(x: Any) -> Decimal:
    return Decimal(str(x))


def _s(x: Decimal) -> str:
    """Venue decimal string (9 decimals max, no exponent)."""
    q = x.quantize(Decimal("1e-9"))
    return format(q.normalize(), "f") if q != 0 else "0"


class MockVenue:
    """Venue state and behaviour. All methods run on the server loop."""

    def __init__(self, fixtures: Path, *, funding_page_size: int = 24) -> None:
        self.fixtures = Path(fixtures)
        self.models = load_models("rest", "testnet")
        self.rpc_config = self._load("rpc_config.json")
        self.products: list[dict] = self._load("products.json")["data"]
        self.by_symbol = {p["ticker"]: p for p in self.products}
        self.by_id = {p["id"]: p for p in self.products}
        acct = self._load("account.json")
        self.subaccounts: list[dict] = acct["subaccounts"]
        self.signers: list[dict] = acct["linkedSigners"]
        self.balances: dict[str, Decimal] = {s: _d(v) for s, v in acct["balances"].items()}
        self.token = acct["token"]
        self.books: dict[str, dict] = {}
        for p in self.products:
            f = self.fixtures / f"l2book_{p['ticker']}.json"
            if f.exists():
                snap = json.loads(f.read_text())
                self.books[p["ticker"]] = {
                    "bids": {_d(px): _d(q) for px, q in snap["b"]},
                    "asks": {_d(px): _d(q) for px, q in snap["a"]},
                    "t": int(snap["t"]),
                }
        self.funding: dict[str, list[dict]] = self._load("funding.json")
        self.tv: dict[str, dict] = self._load("tv_history.json")
        self.funding_page_size = funding_page_size
        self.orders: dict[str, dict] = {}
        self.fills: list[dict] = []
        self.positions: dict[tuple[str, str], dict] = {}
        self.nonces: set[tuple[str, str]] = set()
        self.ws_clients: list[tuple[web.WebSocketResponse, set]] = []
        self.pending_429 = 0
        self.retry_after = 1.0
        self.requests: list[tuple[str, str]] = []
        self.corrupt_pt = False
        self._clock_ms = 0
        self._pfm: list = []
        self.order_faults: list[dict] = []
        self.drop_fills = 0
        # replay mode (:mod:`nautilus_app.testkit.ethereal_mock.replay`): the venue clock and the last
        # closed candle follow the replay, not the wall clock
        self.replay_clock_ms: int | None = None

    def _load(self, name: str) -> Any:
        return json.loads((self.fixtures / name).read_text())

    def now_ms(self) -> int:
        if self.replay_clock_ms is not None:
            return self.replay_clock_ms
        self._clock_ms = max(int(time.time() * 1000), self._clock_ms + 1)
        return self._clock_ms

    # ------------------------------------------------------------------ signatures (own EIP-712 encoding)

    def _types(self, primary: str) -> list[dict]:
        fields = []
        for part in self.rpc_config["signatureTypes"][primary].split(","):
            typ, name = part.strip().rsplit(" ", 1)
            fields.append({"name": name, "type": typ})
        return fields

    def recover(self, primary: str, message: dict, signature: str) -> str:
        domain = dict(self.rpc_config["domain"])
        full = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
                ],
                primary: self._types(primary),
            },
            "primaryType": primary,
            "domain": domain,
            "message": message,
        }
        return Account.recover_message(encode_typed_data(full_message=full), signature=signature)

    def authorised(self, sender: str, subaccount_name: str) -> dict | None:
        """The subaccount ``subaccount_name`` if ``sender`` owns it or is an active linked signer."""
        for sa in self.subaccounts:
            if sa["name"].lower() != subaccount_name.lower():
                continue
            if sa["account"].lower() == sender.lower():
                return sa
            for sg in self.signers:
                if (sg["subaccountId"] == sa["id"] and sg["signer"].lower() == sender.lower()
                        and sg["status"] == "ACTIVE" and sg["expiresAt"] > time.time() * 1000):
                    return sa
        return None

    # ------------------------------------------------------------------ websocket

    async def send(self, ws: web.WebSocketResponse, payload: dict | str) -> None:
        try:
            await ws.send_str(payload if isinstance(payload, str) else json.dumps(payload))
        except Exception:
            pass

    async def publish(self, channel: str, key: str, payload: dict) -> None:
        for ws, subs in list(self.ws_clients):
            if (channel, key) in subs:
                await self.send(ws, payload)

    async def broadcast_raw(self, text: str) -> None:
        """Send ``text`` verbatim to every connection (malformed-message tests)."""
        for ws, _ in list(self.ws_clients):
            await self.send(ws, text)

    async def drop_connections(self) -> int:
        """Close every WebSocket (as the venue does after 12 h); returns how many."""
        n = 0
        for ws, _ in list(self.ws_clients):
            await ws.close(code=1000, message=b"max lifetime")
            n += 1
        return n

    def _book_levels(self, book: dict, side: str) -> list[list[str]]:
        levels = sorted(book[side].items(), reverse=(side == "bids"))
        return [[_s(p), _s(q)] for p, q in levels]

    async def snapshot(self, ws: web.WebSocketResponse, symbol: str) -> None:
        book = self.books[symbol]
        await self.send(ws, {"e": "L2Book", "t": self.now_ms(), "data": {
            "s": symbol, "t": book["t"],  # no "pt": the venue's marker of a full book
            "a": self._book_levels(book, "asks"), "b": self._book_levels(book, "bids")}})

    async def publish_book_diff(self, symbol: str, bids: list[list[str]], asks: list[list[str]]) -> None:
        """Apply absolute-quantity level changes and publish them as an ``L2Book`` diff."""
        book = self.books[symbol]
        for side, levels in (("bids", bids), ("asks", asks)):
            for px, q in levels:
                if _d(q) == 0:
                    book[side].pop(_d(px), None)
                else:
                    book[side][_d(px)] = _d(q)
        prev = book["t"]
        book["t"] = max(self.now_ms(), prev + 1)
        pt = prev - 1 if self.corrupt_pt else prev
        self.corrupt_pt = False
        await self.publish("L2Book", symbol, {"e": "L2Book", "t": self.now_ms(), "data": {
            "s": symbol, "t": book["t"], "pt": pt, "a": asks, "b": bids}})

    async def publish_ticker(self, symbol: str, mark: str, fr1h: str) -> None:
        book = self.books[symbol]
        b = max(book["bids"])
        a = min(book["asks"])
        await self.publish("Ticker", symbol, {"e": "Ticker", "t": self.now_ms(), "data": {
            "s": symbol, "t": self.now_ms(), "bidPx": _s(b), "askPx": _s(a), "bidAmt": _s(book["bids"][b]),
            "askAmt": _s(book["asks"][a]), "markPx": mark, "markPx24h": mark, "oi": "100", "fr1h": fr1h,
            "vol24h": "1000"}})

    async def ws_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        subs: set = set()
        entry = (ws, subs)
        self.ws_clients.append(entry)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                    event, data = req["event"], req["data"]
                    typ = data["type"]
                except (ValueError, KeyError, TypeError):
                    await self.send(ws, {"ok": False, "code": "INVALID_MESSAGE"})
                    continue
                key = data.get("symbol") or data.get("subaccountId")
                public = typ in ("L2Book", "Ticker", "TradeFill")
                valid = (key in self.books) if public else any(s["id"] == key for s in self.subaccounts)
                if typ not in ("L2Book", "Ticker", "TradeFill", "OrderUpdate", "OrderFill", "PositionUpdate",
                               "SubaccountLiquidation", "TokenTransfer") or not valid:
                    await self.send(ws, {"ok": False, "code": "INVALID_SUBSCRIPTION"})
                    continue
                if event == "subscribe":
                    subs.add((typ, key))
                    await self.send(ws, {"ok": True})
                    if typ == "L2Book":
                        await self.snapshot(ws, key)
                elif event == "unsubscribe":
                    subs.discard((typ, key))
                    await self.send(ws, {"ok": True})
                else:
                    await self.send(ws, {"ok": False, "code": "UNKNOWN_EVENT"})
        finally:
            self.ws_clients.remove(entry)
        return ws

    # ------------------------------------------------------------------ REST helpers

    def _page(self, rows: list, request: web.Request, default_limit: int = 100) -> web.Response:
        limit = int(request.query.get("limit", default_limit))
        start = int(request.query.get("cursor", 0) or 0)
        chunk = rows[start:start + limit]
        nxt = start + limit
        has_next = nxt < len(rows)
        return web.json_response({"data": chunk, "hasNext": has_next, "nextCursor": str(nxt) if has_next else None})

    @staticmethod
    def _error(status: int, message: str, error: str) -> web.Response:
        return web.json_response({"statusCode": status, "error": error, "message": message}, status=status)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path.startswith("/v1/stream"):
            return await handler(request)
        self.requests.append((request.method, request.path, dict(request.query)))
        if self.pending_429 > 0:
            self.pending_429 -= 1
            return web.json_response(
                {"statusCode": 429, "error": "Too Many Requests", "message": "rate limited", "type": "RATE_LIMIT_IP"},
                status=429, headers={"Retry-After": str(self.retry_after), "RateLimit-Remaining": "0"})
        return await handler(request)

    def rate_limit(self, n: int, retry_after_s: float) -> None:
        """Answer the next ``n`` REST requests with 429 and ``Retry-After: retry_after_s``."""
        self.pending_429 = n
        self.retry_after = retry_after_s

    # ------------------------------------------------------------------ REST: public

    async def get_rpc_config(self, request: web.Request) -> web.Response:
        return web.json_response(self.rpc_config)

    async def get_products(self, request: web.Request) -> web.Response:
        rows = self.products
        if "ticker" in request.query:
            rows = [p for p in rows if p["ticker"] == request.query["ticker"]]
        return self._page(rows, request, default_limit=1)  # one product per page: exercises pagination

    async def get_funding(self, request: web.Request) -> web.Response:
        pid = request.query.get("productId")
        if pid not in self.by_id or request.query.get("range") not in ("DAY", "WEEK", "MONTH"):
            return self._error(400, "productId and range (DAY|WEEK|MONTH) required", "Bad Request")
        rows = self.funding.get(self.by_id[pid]["ticker"], [])
        if self.replay_clock_ms is not None:  # replay: only settlements the replay clock has reached
            rows = [r for r in rows if r["createdAt"] <= self.replay_clock_ms + 1000]
        if request.query.get("order") == "desc":
            rows = list(reversed(rows))
        return self._page(rows, request, default_limit=self.funding_page_size)

    async def get_tv_history(self, request: web.Request) -> web.Response:
        q = request.query
        kind = "oracle" if "/oracle-price/" in request.path else "last"
        try:
            symbol, res = q["symbol"], q["resolution"]
            t0, t1 = float(q["from"]), float(q["to"])
        except (KeyError, ValueError):
            return self._error(400, "symbol, resolution, from, to required", "Bad Request")
        series = self.tv.get(symbol, {}).get(kind, {}).get(res)
        if series is None:
            return web.json_response({"s": "error", "errmsg": f"unknown symbol {symbol} or resolution {res}"})
        idx = [i for i, t in enumerate(series["t"]) if t0 <= t < t1]
        if self.replay_clock_ms is not None:  # replay: only the candles closed by the replay clock
            step_s = 86_400 if res.endswith("D") else int(res) * 60
            idx = [i for i in idx if (series["t"][i] + step_s) * 1000 <= self.replay_clock_ms]
        if not idx:
            return web.json_response({"s": "no_data"})
        return web.json_response({"s": "ok", **{k: [series[k][i] for i in idx] for k in ("t", "o", "h", "l", "c", "v")}})

    # ------------------------------------------------------------------ REST: account

    async def get_subaccounts(self, request: web.Request) -> web.Response:
        sender = request.query.get("sender", "").lower()
        rows = [s for s in self.subaccounts if s["account"].lower() == sender]
        if "name" in request.query:
            rows = [s for s in rows if s["name"] == request.query["name"]]
        return self._page(rows, request)

    async def get_signers(self, request: web.Request) -> web.Response:
        sid = request.query.get("subaccountId")
        return self._page([s for s in self.signers if s["subaccountId"] == sid], request)

    async def get_balances(self, request: web.Request) -> web.Response:
        sid = request.query.get("subaccountId")
        if sid not in self.balances:
            return self._error(404, f"subaccount {sid} not found", "Not Found")
        amount = self.balances[sid]
        used = sum((abs(p["cost"]) / _d(self.by_id[pid]["maxLeverage"])
                    for (s, pid), p in self.positions.items() if s == sid and p["size"] != 0), D0)
        return self._page([{
            "subaccountId": sid, "tokenId": self.token["id"], "tokenAddress": self.token["address"],
            "tokenName": self.token["name"], "amount": _s(amount), "available": _s(amount - used),
            "totalUsed": _s(used), "updatedAt": self.now_ms()}], request)

    def _position_dto(self, sid: str, pid: str, p: dict) -> dict:
        return {
            "id": p["id"], "productId": pid, "cost": _s(abs(p["cost"])), "createdAt": p["createdAt"],
            "updatedAt": p["updatedAt"], "feesAccruedUsd": _s(p["fees"]), "fundingAccruedUsd": "0", "fundingUsd": "0",
            "isLiquidated": bool(p.get("liquidated")), "realizedPnl": _s(p["realized"]), "side": 0 if p["size"] >= 0 else 1,
            "size": _s(abs(p["size"])), "totalDecreaseNotional": "0", "totalDecreaseQuantity": "0",
            "totalIncreaseNotional": "0", "totalIncreaseQuantity": "0", "wasDeleveraged": bool(p.get("deleveraged")),
        }

    async def get_positions(self, request: web.Request) -> web.Response:
        sid = request.query.get("subaccountId")
        want_open = request.query.get("open") == "true"
        rows = [self._position_dto(s, pid, p) for (s, pid), p in self.positions.items()
                if s == sid and (not want_open or p["size"] != 0)]
        return self._page(rows, request)

    async def get_orders(self, request: web.Request) -> web.Response:
        q = request.query
        rows = [o for o in self.orders.values() if o["subaccountId"] == q.get("subaccountId")]
        if "clientOrderId" in q:
            rows = [o for o in rows if o.get("clientOrderId") == q["clientOrderId"]]
        if q.get("isWorking") == "true":
            rows = [o for o in rows if o["status"] in ("NEW", "PENDING", "FILLED_PARTIAL")]
        if "createdAfter" in q:
            rows = [o for o in rows if o["createdAt"] >= int(q["createdAfter"])]
        return self._page(rows, request)

    async def get_order(self, request: web.Request) -> web.Response:
        o = self.orders.get(request.match_info["id"])
        return web.json_response(o) if o else self._error(404, "order not found", "Not Found")

    async def get_fills(self, request: web.Request) -> web.Response:
        q = request.query
        rows = [f for f in self.fills if f["subaccountId"] == q.get("subaccountId")]
        if "createdAfter" in q:
            rows = [f for f in rows if f["createdAt"] >= int(q["createdAfter"])]
        products = [x for v in q.getall("productIds", []) for x in v.split(",") if x]
        if products:
            rows = [f for f in rows if f["productId"] in products]
        return self._page(rows, request)

    # ------------------------------------------------------------------ REST: orders

    async def post_order(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            dto = self.models.SubmitOrderDto.model_validate(body)
        except Exception as e:
            return self._error(400, f"invalid order: {e}", "Bad Request")
        d = dto.data.root.model_dump(mode="json", by_alias=True)
        message = {
            "sender": d["sender"], "subaccount": d["subaccount"],
            "quantity": int(_d(d["quantity"]) * 10**9), "price": int(_d(d.get("price") or 0) * 10**9),
            "reduceOnly": bool(d.get("reduceOnly")), "side": int(d["side"]), "engineType": int(d["engineType"]),
            "productId": int(d["onchainId"]), "nonce": int(d["nonce"]), "signedAt": int(d["signedAt"]),
        }
        try:
            signer = self.recover("TradeOrder", message, dto.signature)
        except Exception:
            return web.json_response({"statusCode": 422, "error": "Unprocessable Entity", "message": "InvalidSigner"}, status=422)
        if signer.lower() != d["sender"].lower():
            return web.json_response({"statusCode": 422, "error": "Unprocessable Entity", "message": "InvalidSigner"}, status=422)
        sa = self.authorised(d["sender"], d["subaccount"])
        if sa is None:
            return web.json_response({"statusCode": 422, "error": "Unprocessable Entity", "message": "InvalidSigner"}, status=422)
        if (d["sender"].lower(), d["nonce"]) in self.nonces:
            return web.json_response({"statusCode": 422, "error": "Unprocessable Entity", "message": "NonceAlreadyUsed"}, status=422)
        self.nonces.add((d["sender"].lower(), d["nonce"]))
        cloid = d.get("clientOrderId")
        if cloid and any(o.get("clientOrderId") == cloid and o["subaccountId"] == sa["id"] for o in self.orders.values()):
            return web.json_response({"statusCode": 422, "error": "Unprocessable Entity", "message": "DuplicateClientOrderId"}, status=422)
        product = next((p for p in self.products if p["onchainId"] == int(d["onchainId"])), None)
        if product is None:
            return self._error(400, f"unknown onchainId {d['onchainId']}", "Bad Request")
        qty = _d(d["quantity"])
        if qty <= 0 or (qty / _d(product["lotSize"])) % 1 != 0:
            return web.json_response({"statusCode": 422, "error": "Unprocessable Entity", "message": "QuantityNotMultipleOfLotSize"}, status=422)
        now = self.now_ms()
        oid = str(uuid.uuid4())
        order = {
            "id": oid, "clientOrderId": cloid, "availableQuantity": _s(qty), "close": False, "createdAt": now,
            "updatedAt": now, "expiresAt": int(d.get("expiresAt") or d["signedAt"] + 6652800), "filled": "0",
            "postOnly": d.get("postOnly"), "price": _s(_d(d.get("price") or 0)), "productId": product["id"],
            "quantity": _s(qty), "reduceOnly": bool(d.get("reduceOnly")), "sender": d["sender"], "side": int(d["side"]),
            "status": "NEW", "stopPrice": "0", "subaccountId": sa["id"], "timeInForce": d.get("timeInForce"),
            "triggered": "TRIGGERED", "type": d["type"],
        }
        fault = self.order_faults.pop(0) if self.order_faults else {}
        kind = fault.get("kind")
        if kind == "fail":
            if fault["process"]:
                async def later() -> None:
                    await asyncio.sleep(fault["process_after_s"])
                    order["createdAt"] = order["updatedAt"] = self.now_ms()
                    self.orders[oid] = order
                    await self._match(order, product)
                asyncio.get_running_loop().create_task(later())
            if fault["hang_s"]:
                await asyncio.sleep(fault["hang_s"])
            return self._error(fault["status"], "internal error", "Internal Server Error")
        self.orders[oid] = order
        if kind == "reject_after_ok":
            await self._finish(order, "REJECTED", fault["reason"])
            return web.json_response({"id": oid, "clientOrderId": cloid, "filled": "0", "result": "Ok"})
        result = await self._match(order, product)
        if kind == "result_code":
            result = fault["code"]
        return web.json_response({"id": oid, "clientOrderId": cloid, "filled": "0", "result": result})

    # ------------------------------------------------------------------ test controls: faults

    def fail_next_order(self, status: int = 503, *, process_after_s: float = 0.0, process: bool = True,
                        hang_s: float = 0.0) -> None:
        """The next order submission answers HTTP ``status`` (after ``hang_s``); the order itself is
        taken into the book ``process_after_s`` later when ``process`` (else it never exists)."""
        self.order_faults.append({"kind": "fail", "status": status, "process_after_s": process_after_s,
                                  "process": process, "hang_s": hang_s})

    def reject_next_after_ok(self, reason: str = "RiskLimitExceeded") -> None:
        """The next order is rejected on the stream before the REST answer ``Ok`` is sent."""
        self.order_faults.append({"kind": "reject_after_ok", "reason": reason})

    def next_result_code(self, code: str) -> None:
        """The next order is processed normally but answered with result ``code``."""
        self.order_faults.append({"kind": "result_code", "code": code})

    def drop_fill_messages(self, n: int) -> None:
        """Withhold the stream ``OrderFill`` of the next ``n`` fills."""
        self.drop_fills = n

    async def publish_order_status(self, order_id: str, status: str, available: str | None = None) -> None:
        """Set an order's status (any string, e.g. one the SDK does not know) and publish it."""
        order = self.orders[order_id]
        order["status"] = status
        if available is not None:
            order["availableQuantity"] = available
        order["updatedAt"] = self.now_ms()
        await self._publish_order(order)

    def _system_order(self, sid: str, product: dict, side: int, q: Decimal) -> dict:
        now = self.now_ms()
        order = {
            "id": str(uuid.uuid4()), "clientOrderId": None, "availableQuantity": _s(q), "close": True,
            "createdAt": now, "updatedAt": now, "expiresAt": now // 1000 + 60, "filled": "0", "postOnly": False,
            "price": "0", "productId": product["id"], "quantity": _s(q), "reduceOnly": True,
            "sender": "0x0000000000000000000000000000000000000000", "side": side, "status": "NEW", "stopPrice": "0",
            "subaccountId": sid, "timeInForce": None, "triggered": "TRIGGERED", "type": "MARKET",
        }
        self.orders[order["id"]] = order
        return order

    async def _position_event(self, sid: str, symbol: str, q: str | None, px: str, *, stream_fills: bool,
                              liquidation: bool) -> dict:
        product = self.by_symbol[symbol]
        pos = self._position(sid, product["id"])
        if pos["size"] == 0:
            raise ValueError(f"no position in {symbol}")
        take = abs(pos["size"]) if q is None else min(_d(q), abs(pos["size"]))
        order = self._system_order(sid, product, 1 if pos["size"] > 0 else 0, take)
        fill = self._apply_fill(order, product, _d(px), take, maker=False, fee=D0)
        pos["liquidated" if liquidation else "deleveraged"] = True
        if not stream_fills:
            self._pfm = [x for x in self._pfm if x[1] is not fill]
        await self._publish_order(order)
        if liquidation:
            await self.publish("SubaccountLiquidation", sid, {"e": "SubaccountLiquidation", "t": self.now_ms(), "data": {
                "sid": sid, "t": self.now_ms(), "d": [{"s": symbol, "px": _s(_d(px)), "sz": _s(take)}]}})
        return fill

    async def liquidate(self, sid: str, symbol: str, px: str, *, stream_fills: bool = False) -> dict:
        """Liquidate the whole position at ``px`` with a venue order (no client order id)."""
        return await self._position_event(sid, symbol, None, px, stream_fills=stream_fills, liquidation=True)

    async def auto_deleverage(self, sid: str, symbol: str, q: str, px: str, *, stream_fills: bool = False) -> dict:
        """Auto-deleverage ``q`` of the position at ``px`` (a venue order, no client order id)."""
        return await self._position_event(sid, symbol, q, px, stream_fills=stream_fills, liquidation=False)

    def _position(self, sid: str, pid: str) -> dict:
        key = (sid, pid)
        if key not in self.positions:
            now = self.now_ms()
            self.positions[key] = {"id": str(uuid.uuid4()), "size": D0, "cost": D0, "realized": D0, "fees": D0,
                                   "createdAt": now, "updatedAt": now}
        return self.positions[key]

    async def _match(self, order: dict, product: dict) -> str:
        symbol = product["ticker"]
        book = self.books[symbol]
        buy = order["side"] == 0
        side_book = book["asks"] if buy else book["bids"]
        limit = _d(order["price"]) if order["type"] == "LIMIT" else None
        crosses = [p for p in side_book if limit is None or (p <= limit if buy else p >= limit)]
        crosses.sort(reverse=not buy)
        qty = _d(order["quantity"])
        pos = self._position(order["subaccountId"], product["id"])
        if order["reduceOnly"]:
            if pos["size"] == 0 or (pos["size"] > 0) == buy:
                return await self._finish(order, "REJECTED", "OrderIncreasesPosition")
            qty = min(qty, abs(pos["size"]))
        available = sum((side_book[p] for p in crosses), D0)
        if order["type"] == "LIMIT" and order.get("postOnly") and crosses:
            return await self._finish(order, "REJECTED", "ImmediateMatchPostOnly")
        if order.get("timeInForce") == "FOK" and available < qty:
            return await self._finish(order, "REJECTED", "UnfilledFillOrKill")
        if order["type"] == "MARKET" and not crosses:
            return await self._finish(order, "REJECTED", "UnfilledMarketOrder")
        if order.get("timeInForce") == "IOC" and not crosses:
            return await self._finish(order, "REJECTED", "UnfilledImmediateOrCancel")
        if not crosses:
            await self._publish_order(order)  # resting: NEW
            return "Ok"
        remaining = qty
        changed = []
        trades = []
        for p in crosses:
            if remaining <= 0:
                break
            take = min(remaining, side_book[p])
            side_book[p] -= take
            if side_book[p] == 0:
                del side_book[p]
            changed.append([_s(p), _s(side_book.get(p, D0))])
            remaining -= take
            fill = self._apply_fill(order, product, p, take, maker=False)
            trades.append({"id": fill["id"], "px": _s(p), "sz": _s(take), "sd": order["side"], "sids": [order["subaccountId"]]})
        if changed:
            await self.publish_book_diff(symbol, [] if buy else changed, changed if buy else [])
            # the levels were already applied above; publish_book_diff re-applies the same absolute sizes
        if trades:
            await self.publish("TradeFill", symbol, {"e": "TradeFill", "t": self.now_ms(),
                                                     "data": {"s": symbol, "t": self.now_ms(), "d": trades}})
        await self._publish_order(order)  # FILLED / FILLED_PARTIAL, then the fills
        if remaining > 0 and (order["type"] == "MARKET" or order.get("timeInForce") in ("IOC", "FOK")):
            order["status"] = "CANCELED"
            order["updatedAt"] = self.now_ms()
            await self._publish_order(order)
        return "Ok"

    async def _finish(self, order: dict, status: str, code: str) -> str:
        order["status"] = status
        order["rejectedReason"] = code
        order["updatedAt"] = self.now_ms()
        await self._publish_order(order)
        return code

    def _apply_fill(self, order: dict, product: dict, px: Decimal, q: Decimal, maker: bool,
                    fee: Decimal | None = None) -> dict:
        fee_rate = _d(product["makerFee"] if maker else product["takerFee"])
        if fee is None:
            fee = (px * q * fee_rate).quantize(Decimal("1e-9"))
        sid, pid = order["subaccountId"], product["id"]
        pos = self._position(sid, pid)
        signed = q if order["side"] == 0 else -q
        size = pos["size"]
        realized = D0
        if size == 0 or (size > 0) == (signed > 0):
            pos["cost"] += px * signed
            pos["size"] = size + signed
        else:
            avg = pos["cost"] / size
            closing = min(abs(signed), abs(size))
            direction = 1 if size > 0 else -1
            realized = (px - avg) * closing * direction
            pos["cost"] -= avg * closing * direction
            pos["size"] = size + signed
            left = abs(signed) - closing
            if left > 0:  # flipped
                pos["cost"] = px * (left if signed > 0 else -left)
        pos["realized"] += realized
        pos["fees"] += fee
        pos["updatedAt"] = self.now_ms()
        self.balances[sid] += realized - fee
        filled = _d(order["filled"]) + q
        order["filled"] = _s(filled)
        order["availableQuantity"] = _s(_d(order["quantity"]) - filled)
        order["status"] = "FILLED" if filled >= _d(order["quantity"]) else "FILLED_PARTIAL"
        order["updatedAt"] = self.now_ms()
        fill = {
            "id": str(uuid.uuid4()), "orderId": order["id"], "clientOrderId": order.get("clientOrderId"),
            "createdAt": self.now_ms(), "feeUsd": _s(fee), "filled": _s(q), "isMaker": maker, "price": _s(px),
            "productId": pid, "reduceOnly": order["reduceOnly"], "side": order["side"], "subaccountId": sid,
            "type": order["type"],
        }
        self.fills.append(fill)
        self._pfm.append((order, fill, product))
        return fill

    async def _publish_order(self, order: dict) -> None:
        product = self.by_id[order["productId"]]
        sid = order["subaccountId"]
        await self.publish("OrderUpdate", sid, {"e": "OrderUpdate", "t": self.now_ms(), "data": {"t": self.now_ms(), "d": [{
            "id": order["id"], "cloid": order.get("clientOrderId") or "", "otyp": order["type"],
            "qty": order["quantity"], "aqty": order["availableQuantity"], "fill": order["filled"],
            "px": order["price"], "sd": order["side"], "s": product["ticker"], "sid": sid, "sn": order["sender"],
            "st": order["status"], "t": order["updatedAt"], "ro": order["reduceOnly"], "cl": False,
            "tif": order.get("timeInForce") or "", "et": order["expiresAt"], "po": bool(order.get("postOnly")),
            "tr": "TRIGGERED"}]}})
        pending, self._pfm = self._pfm, []
        for o, f, p in pending:
            if self.drop_fills > 0:
                self.drop_fills -= 1
                continue
            await self.publish("OrderFill", o["subaccountId"], {"e": "OrderFill", "t": self.now_ms(), "data": {
                "t": self.now_ms(), "d": [{
                    "id": f["id"], "oid": o["id"], "cloid": o.get("clientOrderId") or "", "px": f["price"],
                    "sz": f["filled"], "typ": o["type"], "sd": o["side"], "s": p["ticker"], "sid": o["subaccountId"],
                    "ro": o["reduceOnly"], "fee": f["feeUsd"], "m": f["isMaker"], "t": f["createdAt"]}]}})
        if _d(order["filled"]) > 0:
            await self.publish_position(sid, product)

    async def publish_position(self, sid: str, product: dict) -> None:
        """Publish the subaccount's position in ``product`` as a ``PositionUpdate``."""
        p = self._position(sid, product["id"])
        await self.publish("PositionUpdate", sid, {"e": "PositionUpdate", "t": self.now_ms(), "data": {
            "t": self.now_ms(), "d": [{
                "id": p["id"], "sid": sid, "s": product["ticker"], "sd": 0 if p["size"] >= 0 else 1,
                "sz": _s(abs(p["size"])), "cost": _s(abs(p["cost"])), "rpnl": _s(p["realized"]), "fpnl": "0",
                "fee": _s(p["fees"])}]}})

    async def fill_resting(self, order_id: str, q: str | None = None, px: str | None = None) -> dict:
        """Another trader takes the resting limit order ``order_id`` (maker fill at its price, or at
        ``px``, e.g. off the tick grid)."""
        order = self.orders[order_id]
        product = self.by_id[order["productId"]]
        take = _d(q) if q else _d(order["availableQuantity"])
        fill = self._apply_fill(order, product, _d(px or order["price"]), take, maker=True)
        await self._publish_order(order)
        return fill

    async def post_cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            dto = self.models.CancelOrderDto.model_validate(body)
        except Exception as e:
            return self._error(400, f"invalid cancel: {e}", "Bad Request")
        d = dto.data
        message = {"sender": d.sender, "subaccount": d.subaccount, "nonce": int(d.nonce)}
        try:
            signer = self.recover("CancelOrder", message, dto.signature)
        except Exception:
            signer = ""
        sa = self.authorised(d.sender, d.subaccount)
        if signer.lower() != d.sender.lower() or sa is None:
            return web.json_response({"statusCode": 422, "error": "Unprocessable Entity", "message": "InvalidSigner"}, status=422)
        if (d.sender.lower(), d.nonce) in self.nonces:
            return web.json_response({"statusCode": 422, "error": "Unprocessable Entity", "message": "NonceAlreadyUsed"}, status=422)
        self.nonces.add((d.sender.lower(), d.nonce))
        results = []
        targets = [(str(i), None) for i in (d.order_ids or [])]
        for c in d.client_order_ids or []:
            o = next((o for o in self.orders.values() if o.get("clientOrderId") == c and o["subaccountId"] == sa["id"]), None)
            targets.append((o["id"] if o else str(uuid.UUID(int=0)), c))
        for oid, c in targets:
            o = self.orders.get(oid)
            if o is None or o["subaccountId"] != sa["id"]:
                code = "NotFound"
            elif o["status"] == "CANCELED":
                code = "AlreadyCanceled"
            elif o["status"] == "FILLED":
                code = "AlreadyFilled"
            elif o["status"] in ("REJECTED", "EXPIRED"):
                code = "AlreadyExpired"
            else:
                code = "Ok"
                o["status"] = "CANCELED"
                o["updatedAt"] = self.now_ms()
                await self._publish_order(o)
            results.append({"id": oid, "clientOrderId": c, "result": code})
        return web.json_response({"data": results})

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        r = app.router
        r.add_get("/v1/stream", self.ws_handler)
        r.add_get("/v1/rpc/config", self.get_rpc_config)
        r.add_get("/v1/product", self.get_products)
        r.add_get("/v1/funding", self.get_funding)
        r.add_get("/v1/subaccount", self.get_subaccounts)
        r.add_get("/v1/subaccount/", self.get_subaccounts)
        r.add_get("/v1/subaccount/balance", self.get_balances)
        r.add_get("/v1/linked-signer", self.get_signers)
        r.add_get("/v1/position", self.get_positions)
        r.add_get("/v1/order", self.get_orders)
        r.add_get("/v1/order/fill", self.get_fills)
        r.add_get("/v1/order/{id}", self.get_order)
        r.add_post("/v1/order", self.post_order)
        r.add_post("/v1/order/cancel", self.post_cancel)
        r.add_get("/v1/last-price/history", self.get_tv_history)
        r.add_get("/v1/oracle-price/history", self.get_tv_history)
        return app


class MockEtherealServer:
    """Runs a :class:`MockVenue` on 127.0.0.1 (random port) in a background thread."""

    def __init__(self, fixtures: Path, **venue_kwargs: Any) -> None:
        self.fixtures = Path(fixtures)
        self.venue_kwargs = venue_kwargs
        self.loop = asyncio.new_event_loop()
        self.venue: MockVenue | None = None
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, name="mock-ethereal", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> MockEtherealServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        self.venue = MockVenue(self.fixtures, **self.venue_kwargs)
        self._runner = web.AppRunner(self.venue.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def call(self, fn: Callable, *args: Any, timeout: float = 10) -> Any:
        """Run ``fn(*args)`` (sync or async) on the server loop and return its result."""
        async def _run() -> Any:
            res = fn(*args)
            if asyncio.iscoroutine(res):
                res = await res
            return res
        return asyncio.run_coroutine_threadsafe(_run(), self.loop).result(timeout)

    def stop(self) -> None:
        async def _stop() -> None:
            if self.venue is not None:
                await self.venue.drop_connections()
            if self._runner is not None:
                await self._runner.cleanup()
        try:
            asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
