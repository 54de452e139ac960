"""A local stand-in of Binance USDT-M's *signed* REST API and user-data WebSocket, on top of the replay server.

:class:`BinanceVenueStandin` extends :class:`nautilus_app.testkit.replay.BinanceReplayServer` (market data:
exchangeInfo, klines, kline/markPrice streams) with the account and order endpoints Nautilus's Rust
``BinanceExecutionClientFactory`` (USD-M, ``use_ws_trading = False``) calls, so the real execution
client can trade offline. Nothing is added to ``replay.py`` itself: unhandled paths of the replay
server go to :meth:`_fallback` and WebSocket upgrades to :meth:`_websocket`, both overridden here.

| endpoint | what |
|---|---|
| ``GET /fapi/v1/positionSide/dual`` | one-way mode (``dualSidePosition = false``) |
| ``POST /fapi/v1/leverage``, ``/fapi/v1/marginType`` | accepted and recorded (:attr:`leverage`) |
| ``POST/PUT/DELETE /fapi/v1/listenKey`` | user-data stream key |
| ``GET /fapi/v2/account``, ``/fapi/v3/account`` | wallet balance, available balance, positions |
| ``GET /fapi/v2/positionRisk``, ``/fapi/v3/positionRisk`` | open positions (one entry per symbol) |
| ``POST /fapi/v1/order`` | MARKET fills at once at the last replayed close (taker fee); LIMIT rests and fills when a bar trades through it (maker fee) |
| ``DELETE /fapi/v1/order``, ``/fapi/v1/allOpenOrders``; ``GET /fapi/v1/order``, ``openOrders``, ``allOrders``, ``userTrades`` | as Binance |
| ``GET /fapi/v1/openAlgoOrders`` etc. | empty lists |
| WebSocket with ``listenKey`` (query or path) | ``ORDER_TRADE_UPDATE`` (NEW, TRADE, CANCELED, EXPIRED) and ``ACCOUNT_UPDATE`` events in Binance's JSON |

Every signed request is checked as Binance does: the ``X-MBX-APIKEY`` header names a known key, the
``signature`` is the last query parameter and signs the query string before it, with **HMAC-SHA256**
(hex) for HMAC keys or **Ed25519** (base64) for Ed25519 keys (the public key is registered here), and
``timestamp`` is within ``recvWindow`` of the wall clock. Failures answer Binance's error JSON
(``-2015`` unknown key, ``-1022`` bad signature, ``-1021`` timestamp outside the window) and are
counted in :attr:`StandinStats.auth_failures`. Every accepted order request is kept in
:attr:`StandinStats.orders_received` (the rail tests assert that denied orders are never there).

Not Binance: no rate limits, no order book (fills at the bar close, no partial fills), no
liquidation, funding or ADL, no hedge mode, no algo (conditional) orders, no WebSocket trading API
(the client is configured with ``use_ws_trading = False``, order entry goes over REST).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nautilus_app.testkit.replay import BinanceReplayServer

TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")


@dataclass
class StandinStats:
    """What the stand-in saw (tests assert on it)."""

    signed_requests: list[str] = field(default_factory=list)
    auth_failures: list[str] = field(default_factory=list)
    orders_received: list[dict[str, str]] = field(default_factory=list)
    cancels_received: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    user_ws_connections: int = 0
    user_events_sent: list[dict] = field(default_factory=list)
    api_keys_seen: set[str] = field(default_factory=set)
    key_types: set[str] = field(default_factory=set)


class BinanceVenueStandin(BinanceReplayServer):
    """Replay server + signed account/order API + user-data stream (see the module docstring).

    Args:
        klines, funding, interval, bar_seconds, ...: as :class:`BinanceReplayServer`.
        hmac_keys: ``{api_key: secret}`` accepted with HMAC-SHA256 signatures.
        ed25519_keys: ``{api_key: public key PEM (bytes or str)}`` accepted with Ed25519 signatures.
        balance: Starting USDT wallet balance.
        reject_orders: If set, every new order is rejected with this ``(code, msg)``.
    """

    def __init__(self, klines: dict, *, hmac_keys: dict[str, str] | None = None,
                 ed25519_keys: dict[str, bytes | str] | None = None, balance: str = "10000",
                 reject_orders: tuple[int, str] | None = None, **kwargs: Any) -> None:
        super().__init__(klines, **kwargs)
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        self.hmac_keys = dict(hmac_keys or {})
        self.ed25519_keys = {k: load_pem_public_key(v.encode() if isinstance(v, str) else v)
                             for k, v in (ed25519_keys or {}).items()}
        self.wallet = Decimal(balance)
        self.reject_orders = reject_orders
        self.positions: dict[str, list[Decimal]] = {}  # symbol -> [amount (signed), entry price]
        self.orders: dict[int, dict] = {}
        self.trades: list[dict] = []
        self.leverage: dict[str, int] = {}
        self.listen_keys: set[str] = set()
        self.standin = StandinStats()
        self._user_ws: set[Any] = set()
        self._next_order_id = 1000
        self._next_trade_id = 5000
        self._lock = threading.RLock()

    # ---- test helpers (thread-safe) -------------------------------------------------------
    def last_price(self, symbol: str) -> Decimal:
        """Close of the last emitted kline of ``symbol`` (the first open before any bar)."""
        rows = self.klines[symbol]
        now = self.replay_time_ms
        closed = [k for k in rows if k.close_time < now]
        return Decimal(closed[-1].close if closed else rows[0].open)

    def seed_position(self, symbol: str, amount: str, entry: str) -> None:
        """Put a position on the account that no node knows about (reconciliation tests)."""
        with self._lock:
            self.positions[symbol] = [Decimal(amount), Decimal(entry)]

    def seed_open_order(self, symbol: str, side: str, qty: str, price: str, client_order_id: str) -> int:
        """Put a resting LIMIT order on the account that no node knows about."""
        with self._lock:
            oid = self._new_order_id()
            now = int(time.time() * 1000)
            self.orders[oid] = self._order_dict(oid, symbol, side, "LIMIT", qty, price, client_order_id, False, now)
            return oid

    def open_orders(self) -> list[dict]:
        with self._lock:
            return [dict(o) for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")]

    def position_amounts(self) -> dict[str, Decimal]:
        with self._lock:
            return {s: p[0] for s, p in self.positions.items() if p[0] != 0}

    # ---- signatures ---------------------------------------------------------------------
    def _check_signature(self, request: Any) -> tuple[bool, dict | None, int]:
        """Binance's checks on a SIGNED request. Returns (ok, error JSON, HTTP status)."""
        raw = request.query_string
        key = request.headers.get("X-MBX-APIKEY", "")
        self.standin.api_keys_seen.add(key)
        if key not in self.hmac_keys and key not in self.ed25519_keys:
            return False, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, 401
        payload, sep, sig = raw.rpartition("&signature=")
        if not sep or "&" in sig:
            return False, {"code": -1022, "msg": "Signature for this request is not valid."}, 400
        sig = urllib.parse.unquote(sig)
        if key in self.hmac_keys:
            good = hmac.compare_digest(
                hmac.new(self.hmac_keys[key].encode(), payload.encode(), hashlib.sha256).hexdigest(), sig)
            kind = "hmac"
        else:
            from cryptography.exceptions import InvalidSignature

            try:
                self.ed25519_keys[key].verify(base64.b64decode(sig), payload.encode())
                good = True
            except (InvalidSignature, ValueError):
                good = False
            kind = "ed25519"
        if not good:
            return False, {"code": -1022, "msg": "Signature for this request is not valid."}, 400
        q = dict(urllib.parse.parse_qsl(payload, keep_blank_values=True))
        ts = int(q.get("timestamp", "0") or 0)
        window = int(q.get("recvWindow", "5000") or 5000)
        now = int(time.time() * 1000)
        if not (now - window <= ts <= now + 1000):
            return False, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}, 400
        self.standin.key_types.add(kind)
        return True, q, 200

    # ---- HTTP dispatch --------------------------------------------------------------------
    _SIGNED = {
        ("GET", "/fapi/v1/positionSide/dual"): "_dual",
        ("POST", "/fapi/v1/leverage"): "_set_leverage",
        ("POST", "/fapi/v1/marginType"): "_margin_type",
        ("GET", "/fapi/v2/account"): "_account",
        ("GET", "/fapi/v3/account"): "_account",
        ("GET", "/fapi/v2/positionRisk"): "_position_risk",
        ("GET", "/fapi/v3/positionRisk"): "_position_risk",
        ("POST", "/fapi/v1/order"): "_new_order",
        ("DELETE", "/fapi/v1/order"): "_cancel_order",
        ("GET", "/fapi/v1/order"): "_query_order",
        ("GET", "/fapi/v1/openOrders"): "_open_orders",
        ("GET", "/fapi/v1/allOrders"): "_all_orders",
        ("GET", "/fapi/v1/userTrades"): "_user_trades",
        ("DELETE", "/fapi/v1/allOpenOrders"): "_cancel_all",
        ("GET", "/fapi/v1/openAlgoOrders"): "_empty_list",
        ("GET", "/fapi/v1/allAlgoOrders"): "_empty_list",
        ("DELETE", "/fapi/v1/algoOpenOrders"): "_ok_code",
        ("GET", "/fapi/v1/income"): "_empty_list",
        ("GET", "/fapi/v1/commissionRate"): "_commission",
    }

    async def _fallback(self, request):  # noqa: ANN001, ANN202
        from aiohttp import web

        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        path = request.path
        if path == "/fapi/v1/listenKey":
            return await self._listen_key(request)
        name = self._SIGNED.get((request.method, path))
        if name is None:
            return await super()._fallback(request)
        self._log(request)
        ok, q, status = self._check_signature(request)
        self.standin.signed_requests.append(f"{request.method} {path}")
        if not ok:
            self.standin.auth_failures.append(f"{request.method} {path}: {q['msg']}")
            return web.json_response(q, status=status)
        with self._lock:
            body, status, events = getattr(self, name)(q)
        resp = web.json_response(body, status=status)
        for ev in events:  # after the REST answer is built, as the venue's stream lags its REST reply
            asyncio.get_running_loop().call_later(0.01, lambda e=ev: asyncio.ensure_future(self._push_user(e)))
        return resp

    async def _listen_key(self, request):  # noqa: ANN001, ANN202
        """``POST/PUT/DELETE /fapi/v1/listenKey``: API key header only (Binance: USER_STREAM security)."""
        from aiohttp import web

        self._log(request)
        key = request.headers.get("X-MBX-APIKEY", "")
        self.standin.api_keys_seen.add(key)
        if key not in self.hmac_keys and key not in self.ed25519_keys:
            self.standin.auth_failures.append(f"{request.method} /fapi/v1/listenKey: unknown key")
            return web.json_response({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
                                     status=401)
        if request.method == "POST":
            lk = hashlib.sha256(f"{key}{time.time_ns()}".encode()).hexdigest()[:60]
            self.listen_keys.add(lk)
            return web.json_response({"listenKey": lk})
        return web.json_response({})

    # ---- handlers (called under the lock; return body, status, user events) ------------------
    def _dual(self, q: dict) -> tuple[Any, int, list]:
        return {"dualSidePosition": False}, 200, []

    def _set_leverage(self, q: dict) -> tuple[Any, int, list]:
        self.leverage[q["symbol"]] = int(q["leverage"])
        return {"symbol": q["symbol"], "leverage": int(q["leverage"]), "maxNotionalValue": "1000000"}, 200, []

    def _margin_type(self, q: dict) -> tuple[Any, int, list]:
        return {"code": 200, "msg": "success"}, 200, []

    def _ok_code(self, q: dict) -> tuple[Any, int, list]:
        return {"code": 200, "msg": "success"}, 200, []

    def _empty_list(self, q: dict) -> tuple[Any, int, list]:
        return [], 200, []

    def _commission(self, q: dict) -> tuple[Any, int, list]:
        return {"symbol": q.get("symbol", ""), "makerCommissionRate": str(MAKER_FEE),
                "takerCommissionRate": str(TAKER_FEE)}, 200, []

    def _upnl(self, symbol: str) -> Decimal:
        amt, entry = self.positions.get(symbol, [Decimal(0), Decimal(0)])
        return amt * (self.last_price(symbol) - entry) if amt else Decimal(0)

    def _account(self, q: dict) -> tuple[Any, int, list]:
        now = int(time.time() * 1000)
        upnl = sum((self._upnl(s) for s in self.positions), Decimal(0))
        margin = sum((abs(p[0]) * p[1] / self.leverage.get(s, 20) for s, p in self.positions.items()), Decimal(0))
        avail = self.wallet + upnl - margin
        asset = {"asset": "USDT", "walletBalance": str(self.wallet), "unrealizedProfit": str(upnl),
                 "marginBalance": str(self.wallet + upnl), "maintMargin": "0", "initialMargin": str(margin),
                 "positionInitialMargin": str(margin), "openOrderInitialMargin": "0",
                 "crossWalletBalance": str(self.wallet), "crossUnPnl": str(upnl), "availableBalance": str(avail),
                 "maxWithdrawAmount": str(avail), "marginAvailable": True, "updateTime": now}
        positions = [{"symbol": s, "initialMargin": "0", "maintMargin": "0", "unrealizedProfit": str(self._upnl(s)),
                      "positionInitialMargin": "0", "openOrderInitialMargin": "0",
                      "leverage": str(self.leverage.get(s, 20)), "isolated": False, "entryPrice": str(p[1]),
                      "maxNotional": "1000000", "positionSide": "BOTH", "positionAmt": str(p[0]), "updateTime": now}
                     for s, p in self.positions.items() if p[0] != 0]
        return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "updateTime": now,
                "multiAssetsMargin": False, "totalInitialMargin": str(margin), "totalMaintMargin": "0",
                "totalWalletBalance": str(self.wallet), "totalUnrealizedProfit": str(upnl),
                "totalMarginBalance": str(self.wallet + upnl), "totalPositionInitialMargin": str(margin),
                "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": str(self.wallet),
                "totalCrossUnPnl": str(upnl), "availableBalance": str(avail), "maxWithdrawAmount": str(avail),
                "assets": [asset], "positions": positions}, 200, []

    def _position_risk(self, q: dict) -> tuple[Any, int, list]:
        now = int(time.time() * 1000)
        out = []
        for s, p in self.positions.items():
            if q.get("symbol") and q["symbol"] != s:
                continue
            if p[0] == 0:
                continue
            mark = self.last_price(s)
            out.append({"symbol": s, "positionAmt": str(p[0]), "entryPrice": str(p[1]), "breakEvenPrice": str(p[1]),
                        "markPrice": str(mark), "unRealizedProfit": str(self._upnl(s)), "liquidationPrice": "0",
                        "leverage": str(self.leverage.get(s, 20)), "maxNotionalValue": "1000000",
                        "marginType": "cross", "isolatedMargin": "0", "isAutoAddMargin": "false",
                        "positionSide": "BOTH", "notional": str(p[0] * mark), "isolatedWallet": "0",
                        "updateTime": now})
        return out, 200, []

    def _new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    @staticmethod
    def _order_dict(oid: int, symbol: str, side: str, otype: str, qty: str, price: str, coid: str,
                    reduce_only: bool, now: int) -> dict:
        return {"orderId": oid, "symbol": symbol, "status": "NEW", "clientOrderId": coid, "price": price,
                "avgPrice": "0", "origQty": qty, "executedQty": "0", "cumQty": "0", "cumQuote": "0",
                "timeInForce": "GTC", "type": otype, "reduceOnly": reduce_only, "closePosition": False,
                "side": side, "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE",
                "priceProtect": False, "origType": otype, "priceMatch": "NONE", "selfTradePreventionMode": "NONE",
                "goodTillDate": 0, "time": now, "updateTime": now}

    def _new_order(self, q: dict) -> tuple[Any, int, list]:
        self.standin.orders_received.append(dict(q))
        symbol, side, otype = q.get("symbol", ""), q.get("side", ""), q.get("type", "")
        if symbol not in self.klines:
            return {"code": -1121, "msg": "Invalid symbol."}, 400, []
        if self.reject_orders is not None:
            self.standin.rejected.append(dict(q))
            return {"code": self.reject_orders[0], "msg": self.reject_orders[1]}, 400, []
        if otype not in ("MARKET", "LIMIT"):
            self.standin.rejected.append(dict(q))
            return {"code": -4120, "msg": "Order type not supported for this endpoint."}, 400, []
        qty = Decimal(q["quantity"])
        reduce_only = q.get("reduceOnly", "false").lower() == "true"
        amt = self.positions.get(symbol, [Decimal(0), Decimal(0)])[0]
        if reduce_only and (amt == 0 or (amt > 0) == (side == "BUY") or qty > abs(amt)):
            self.standin.rejected.append(dict(q))
            return {"code": -2022, "msg": "ReduceOnly Order is rejected."}, 400, []
        now = int(time.time() * 1000)
        oid = self._new_order_id()
        coid = q.get("newClientOrderId") or f"standin-{oid}"
        order = self._order_dict(oid, symbol, side, otype, q["quantity"], q.get("price", "0"), coid, reduce_only, now)
        if otype == "LIMIT":
            order["timeInForce"] = q.get("timeInForce", "GTC")
        self.orders[oid] = order
        events = [self._order_event(order, "NEW")]
        if otype == "MARKET":
            events += self._fill(order, self.last_price(symbol), maker=False)
        return dict(order), 200, events

    def _fill(self, order: dict, price: Decimal, *, maker: bool) -> list[dict]:
        symbol, side = order["symbol"], order["side"]
        qty = Decimal(order["origQty"])
        signed = qty if side == "BUY" else -qty
        amt, entry = self.positions.get(symbol, [Decimal(0), Decimal(0)])
        realized = Decimal(0)
        if amt != 0 and (amt > 0) != (signed > 0):  # reduces (and maybe flips)
            closed = min(abs(amt), qty)
            realized = closed * (price - entry) * (1 if amt > 0 else -1)
            new_amt = amt + signed
            new_entry = entry if (new_amt != 0 and (new_amt > 0) == (amt > 0)) else (price if new_amt != 0 else Decimal(0))
        else:
            new_amt = amt + signed
            new_entry = (abs(amt) * entry + qty * price) / abs(new_amt)
        fee = (qty * price * (MAKER_FEE if maker else TAKER_FEE)).quantize(Decimal("0.00000001"))
        self.positions[symbol] = [new_amt, new_entry]
        self.wallet += realized - fee
        self._next_trade_id += 1
        now = int(time.time() * 1000)
        order.update(status="FILLED", executedQty=order["origQty"], cumQty=order["origQty"], avgPrice=str(price),
                     cumQuote=str(qty * price), updateTime=now)
        trade = {"symbol": symbol, "id": self._next_trade_id, "orderId": order["orderId"], "side": side,
                 "price": str(price), "qty": order["origQty"], "realizedPnl": str(realized),
                 "quoteQty": str(qty * price), "commission": str(fee), "commissionAsset": "USDT", "time": now,
                 "positionSide": "BOTH", "buyer": side == "BUY", "maker": maker, "marginAsset": "USDT"}
        self.trades.append(trade)
        ev = self._order_event(order, "TRADE", last_qty=order["origQty"], last_px=str(price), fee=str(fee),
                               trade_id=trade["id"], maker=maker, realized=str(realized))
        return [ev, self._account_event()]

    def _order_event(self, o: dict, exec_type: str, *, last_qty: str = "0", last_px: str = "0", fee: str = "0",
                     trade_id: int = 0, maker: bool = False, realized: str = "0") -> dict:
        now = int(time.time() * 1000)
        return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": {
            "s": o["symbol"], "c": o["clientOrderId"], "S": o["side"], "o": o["type"], "f": o["timeInForce"],
            "q": o["origQty"], "p": o["price"], "ap": o["avgPrice"], "sp": "0", "x": exec_type, "X": o["status"],
            "i": o["orderId"], "l": last_qty, "z": o["executedQty"], "L": last_px, "N": "USDT", "n": fee,
            "T": now, "t": trade_id, "b": "0", "a": "0", "m": maker, "R": o["reduceOnly"], "wt": "CONTRACT_PRICE",
            "ot": o["type"], "ps": "BOTH", "cp": False, "rp": realized, "pP": False, "si": 0, "ss": 0,
            "V": "NONE", "pm": "NONE", "gtd": 0}}

    def _account_event(self) -> dict:
        now = int(time.time() * 1000)
        return {"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": str(self.wallet), "cw": str(self.wallet), "bc": "0"}],
            "P": [{"s": s, "pa": str(p[0]), "ep": str(p[1]), "bep": str(p[1]), "cr": "0",
                   "up": str(self._upnl(s)), "mt": "cross", "iw": "0", "ps": "BOTH"}
                  for s, p in self.positions.items()]}}

    def _find(self, q: dict) -> dict | None:
        if q.get("orderId"):
            return self.orders.get(int(q["orderId"]))
        coid = q.get("origClientOrderId")
        return next((o for o in self.orders.values() if o["clientOrderId"] == coid), None)

    def _cancel_order(self, q: dict) -> tuple[Any, int, list]:
        self.standin.cancels_received.append(dict(q))
        o = self._find(q)
        if o is None or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return {"code": -2011, "msg": "Unknown order sent."}, 400, []
        o.update(status="CANCELED", updateTime=int(time.time() * 1000))
        return dict(o), 200, [self._order_event(o, "CANCELED")]

    def _cancel_all(self, q: dict) -> tuple[Any, int, list]:
        self.standin.cancels_received.append(dict(q))
        events = []
        for o in self.orders.values():
            if o["symbol"] == q.get("symbol") and o["status"] in ("NEW", "PARTIALLY_FILLED"):
                o.update(status="CANCELED", updateTime=int(time.time() * 1000))
                events.append(self._order_event(o, "CANCELED"))
        return {"code": 200, "msg": "The operation of cancel all open order is done."}, 200, events

    def _query_order(self, q: dict) -> tuple[Any, int, list]:
        o = self._find(q)
        if o is None:
            return {"code": -2013, "msg": "Order does not exist."}, 400, []
        return dict(o), 200, []

    def _open_orders(self, q: dict) -> tuple[Any, int, list]:
        return [dict(o) for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")
                and (not q.get("symbol") or o["symbol"] == q["symbol"])], 200, []

    def _all_orders(self, q: dict) -> tuple[Any, int, list]:
        return [dict(o) for o in self.orders.values() if not q.get("symbol") or o["symbol"] == q["symbol"]], 200, []

    def _user_trades(self, q: dict) -> tuple[Any, int, list]:
        return [dict(t) for t in self.trades if not q.get("symbol") or t["symbol"] == q["symbol"]], 200, []

    # ---- resting LIMIT orders fill on the bars ---------------------------------------------
    async def _emit_step(self, open_time: int) -> None:
        await super()._emit_step(open_time)
        events: list[dict] = []
        with self._lock:
            for o in list(self.orders.values()):
                if o["type"] != "LIMIT" or o["status"] != "NEW":
                    continue
                k = self._by_time.get(o["symbol"], {}).get(open_time)
                if k is None:
                    continue
                px = Decimal(o["price"])
                if (o["side"] == "BUY" and Decimal(k.low) <= px) or (o["side"] == "SELL" and Decimal(k.high) >= px):
                    events += self._fill(o, px, maker=True)
        for ev in events:
            await self._push_user(ev)

    # ---- user-data WebSocket ------------------------------------------------------------------
    async def _websocket(self, request):  # noqa: ANN001, ANN202
        lk = request.query.get("listenKey") or request.path.rstrip("/").rsplit("/", 1)[-1]
        if lk not in self.listen_keys:
            return await super()._websocket(request)
        from aiohttp import WSMsgType, web

        self._log(request)
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        self.standin.user_ws_connections += 1
        self._user_ws.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        req = json.loads(msg.data)
                    except ValueError:
                        continue
                    await ws.send_str(json.dumps({"result": None, "id": req.get("id")}))
        finally:
            self._user_ws.discard(ws)
        return ws

    async def _push_user(self, event: dict) -> None:
        self.standin.user_events_sent.append(event)
        text = json.dumps(event, separators=(",", ":"))
        for ws in list(self._user_ws):
            try:
                await ws.send_str(text)
            except (ConnectionError, RuntimeError):
                self._user_ws.discard(ws)

    async def _drop(self) -> int:
        n = await super()._drop()
        for ws in list(self._user_ws):
            await ws.close(code=1011, message=b"standin: connection dropped")
            n += 1
        self._user_ws.clear()
        return n
