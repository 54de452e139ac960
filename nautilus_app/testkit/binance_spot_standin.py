"""A local stand-in of Binance **spot**'s signed REST API and WebSocket API (user data), in SBE.

:class:`BinanceSpotStandin` extends :class:`nautilus_app.testkit.binance_standin.BinanceVenueStandin`
(replay market data: spot exchangeInfo in SBE, klines, kline streams; the signature checks) with what
rc7's Rust spot execution client (``BinanceExecutionClientFactory``, ``product_type = SPOT``) calls.
Every answer is SBE schema 3:5 (:mod:`nautilus_app.testkit.binance_sbe`), as the client asks
(``Accept: application/sbe``, ``X-MBX-SBE: 3:5``):

| endpoint | what |
|---|---|
| ``GET /api/v3/account`` | ``AccountResponse``: free/locked per asset, commission rates |
| ``POST /api/v3/order`` | ``NewOrderAckResponse``/``ResultResponse``/``FullResponse`` by ``newOrderRespType``: MARKET and marketable LIMIT orders fill at once at the last replayed close (taker fee), other LIMIT orders rest (funds locked) and fill at their price when a bar trades through them (maker fee; IOC/FOK expire instead); ``LIMIT_MAKER`` that would take -2010; insufficient balance -2010 |
| ``DELETE /api/v3/order``, ``/api/v3/openOrders`` | ``CancelOrderResponse``, ``CancelOpenOrdersResponse`` |
| ``GET /api/v3/order``, ``openOrders``, ``allOrders``, ``myTrades`` | ``OrderResponse``, ``OrdersResponse``, ``AccountTradesResponse`` |
| ``GET /api/v3/account/commission`` | ``AccountCommissionResponse`` |
| WebSocket ``/ws-api/v3`` (``responseFormat=sbe``) | ``session.logon`` (**Ed25519 keys only**, as Binance), ``userDataStream.subscribe``; answers wrapped in ``WebSocketResponse``; then ``ExecutionReportEvent`` (NEW, TRADE, CANCELED) and ``OutboundAccountPositionEvent`` as binary frames |

Signed REST requests are checked by the base class (``X-MBX-APIKEY`` known, HMAC-SHA256 hex or
Ed25519 base64 over the query string, ``timestamp`` within ``recvWindow``); errors are SBE
``ErrorResponse`` with Binance's codes (-2015 unknown key, -1022 bad signature, -1021 timestamp).
``session.logon`` signs its sorted parameters (``apiKey=..&timestamp=..``) the same way; with an HMAC key
it is refused (Binance: "Only Ed25519 keys are supported for this feature").

Not Binance: fees are always charged in the quote asset; no partial fills, order book, rate limits,
order lists (OCO), amendments or self-trade prevention; events have no ``subscriptionId`` checks beyond
one subscription per connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from decimal import Decimal
from typing import Any

from nautilus_app.testkit import binance_sbe as sbe
from nautilus_app.testkit.binance_standin import MAKER_FEE, TAKER_FEE, BinanceVenueStandin
from nautilus_app.testkit.replay import BinanceReplayServer

EXP = -8  # one exponent for every price, quantity and commission mantissa


def _m(value: Decimal | str | int) -> int:
    return sbe.mantissa(value, EXP)


def _us() -> int:
    return time.time_ns() // 1000


class BinanceSpotStandin(BinanceVenueStandin):
    """Replay server + signed spot REST + WebSocket API user data, all in SBE (see the module docstring).

    Args:
        klines: ``{"ETHUSDT": [Kline, ...]}`` of spot klines (symbols must have a spot spec).
        balances: Starting free balance per asset (``{"USDT": "10000"}``).
        hmac_keys, ed25519_keys, reject_orders, bar_seconds, ...: as :class:`BinanceVenueStandin`.
    """

    def __init__(self, klines: dict, *, balances: dict[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("market", "spot")
        super().__init__(klines, **kwargs)
        from core.instruments import get_spec

        self.specs = {s: get_spec(s, "spot") for s in self.klines}
        self.balances: dict[str, list[Decimal]] = {a: [Decimal(v), Decimal(0)]
                                                   for a, v in (balances or {"USDT": "10000"}).items()}
        self.ws_api_requests: list[dict] = []  # JSON requests received on /ws-api/v3 (signature redacted)
        self._ws_api: dict[Any, dict] = {}  # connection -> {"key": api key or None, "sub": subscription id}
        self._next_sub = 0
        self._exec_id = 0

    def _next_execution_id(self) -> int:
        self._exec_id += 1
        return self._exec_id

    @property
    def base_url_ws_api(self) -> str:
        """The WebSocket API endpoint in SBE (``[live] base_url_ws_api``), as Binance's with the local host."""
        return f"ws://{self.host}:{self.port}/ws-api/v3?responseFormat=sbe&sbeSchemaId=3&sbeSchemaVersion=5"

    # ---- test helpers ---------------------------------------------------------------------
    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """``(free, locked)`` of ``asset``."""
        with self._lock:
            free, locked = self.balances.get(asset, [Decimal(0), Decimal(0)])
            return free, locked

    def seed_balance(self, asset: str, free: str) -> None:
        """Set a free balance (reconciliation tests)."""
        with self._lock:
            self.balances.setdefault(asset, [Decimal(0), Decimal(0)])[0] = Decimal(free)

    # ---- HTTP dispatch --------------------------------------------------------------------
    _SPOT_SIGNED = {
        ("GET", "/api/v3/account"): "_s_account",
        ("GET", "/api/v3/account/commission"): "_s_commission",
        ("POST", "/api/v3/order"): "_s_new_order",
        ("DELETE", "/api/v3/order"): "_s_cancel",
        ("DELETE", "/api/v3/openOrders"): "_s_cancel_all",
        ("GET", "/api/v3/order"): "_s_query",
        ("GET", "/api/v3/openOrders"): "_s_open_orders",
        ("GET", "/api/v3/allOrders"): "_s_all_orders",
        ("GET", "/api/v3/myTrades"): "_s_my_trades",
    }

    async def _fallback(self, request):  # noqa: ANN001, ANN202
        from aiohttp import web

        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        name = self._SPOT_SIGNED.get((request.method, request.path))
        if name is None:
            return await super()._fallback(request)
        self._log(request)
        ok, q, status = self._check_signature(request)
        self.standin.signed_requests.append(f"{request.method} {request.path}")
        if not ok:
            self.standin.auth_failures.append(f"{request.method} {request.path}: {q['msg']}")
            return web.Response(body=self._error(q["code"], q["msg"]), status=status,
                                content_type="application/sbe")
        with self._lock:
            message, values, status, events = getattr(self, name)(q)
        body = self._error(values["code"], values["msg"]) if message == "ErrorResponse" else sbe.encode(message, values)
        resp = web.Response(body=body, status=status, content_type="application/sbe")
        for ev in events:  # after the REST answer, as the venue's stream lags its REST reply
            asyncio.get_running_loop().call_later(0.01, lambda e=ev: asyncio.ensure_future(self._push_spot(e)))
        return resp

    @staticmethod
    def _error(code: int, msg: str) -> bytes:
        return sbe.encode("ErrorResponse", {"code": code, "msg": msg})

    @staticmethod
    def _err(code: int, msg: str, status: int = 400) -> tuple[str, dict, int, list]:
        return "ErrorResponse", {"code": code, "msg": msg}, status, []

    # ---- account --------------------------------------------------------------------------
    def _balance_rows(self, assets: list[str] | None = None) -> list[dict]:
        names = assets if assets is not None else list(self.balances)
        return [{"exponent": EXP, "free": _m(self.balances[a][0]), "locked": _m(self.balances[a][1]), "asset": a}
                for a in names if a in self.balances]

    def _s_account(self, q: dict) -> tuple[str, dict, int, list]:
        return "AccountResponse", {
            "commissionExponent": EXP, "commissionRateMaker": _m(MAKER_FEE), "commissionRateTaker": _m(TAKER_FEE),
            "commissionRateBuyer": 0, "commissionRateSeller": 0, "canTrade": "True", "canWithdraw": "True",
            "canDeposit": "True", "brokered": "False", "requireSelfTradePrevention": "False", "preventSor": "False",
            "updateTime": _us(), "accountType": "Spot", "uid": 1,
            "balances": self._balance_rows(), "permissions": [{"permission": "SPOT"}], "reduceOnlyAssets": [],
        }, 200, []

    def _s_commission(self, q: dict) -> tuple[str, dict, int, list]:
        return "AccountCommissionResponse", {
            "commissionExponent": EXP, "discountExponent": EXP,
            "standardCommissionMaker": _m(MAKER_FEE), "standardCommissionTaker": _m(TAKER_FEE),
            "standardCommissionBuyer": 0, "standardCommissionSeller": 0, "taxCommissionMaker": 0,
            "taxCommissionTaker": 0, "taxCommissionBuyer": 0, "taxCommissionSeller": 0,
            "discountEnabledForAccount": "False", "discountEnabledForSymbol": "False", "discount": 0,
            "symbol": q.get("symbol", ""), "discountAsset": "BNB",
        }, 200, []

    # ---- orders ---------------------------------------------------------------------------
    _TYPES = {"MARKET": "Market", "LIMIT": "Limit", "LIMIT_MAKER": "LimitMaker"}
    _TIF = {"GTC": "Gtc", "IOC": "Ioc", "FOK": "Fok"}
    _STATUS = {"NEW": "New", "PARTIALLY_FILLED": "PartiallyFilled", "FILLED": "Filled", "CANCELED": "Canceled",
               "EXPIRED": "Expired", "REJECTED": "Rejected"}

    def _s_new_order(self, q: dict) -> tuple[str, dict, int, list]:
        self.standin.orders_received.append(dict(q))
        symbol, side, otype = q.get("symbol", ""), q.get("side", ""), q.get("type", "")
        spec = self.specs.get(symbol)
        if spec is None:
            return self._err(-1121, "Invalid symbol.")
        if self.reject_orders is not None:
            self.standin.rejected.append(dict(q))
            return self._err(self.reject_orders[0], self.reject_orders[1])
        if otype not in self._TYPES or side not in ("BUY", "SELL"):
            self.standin.rejected.append(dict(q))
            return self._err(-1116, "Invalid orderType.")
        qty = Decimal(q.get("quantity", "0"))
        if qty <= 0:
            self.standin.rejected.append(dict(q))
            return self._err(-1013, "Filter failure: LOT_SIZE")
        last = self.last_price(symbol)
        price = Decimal(q["price"]) if otype != "MARKET" else last
        if otype == "LIMIT_MAKER" and ((side == "BUY" and price >= last) or (side == "SELL" and price <= last)):
            self.standin.rejected.append(dict(q))
            return self._err(-2010, "Order would immediately match and take.")
        # funds: a buy needs quote (price * qty + taker fee), a sell needs base
        need_asset, need = (spec.quote, qty * price * (1 + TAKER_FEE)) if side == "BUY" else (spec.base, qty)
        if self.balances.get(need_asset, [Decimal(0)])[0] < need:
            self.standin.rejected.append(dict(q))
            return self._err(-2010, "Account has insufficient balance for requested action.")
        now = _us()
        oid = self._new_order_id()
        order = {"orderId": oid, "symbol": symbol, "side": side, "type": otype, "qty": qty, "price": price if otype != "MARKET" else Decimal(0),
                 "tif": q.get("timeInForce", "GTC") if otype == "LIMIT" else "GTC", "status": "NEW",
                 "clientOrderId": q.get("newClientOrderId") or f"standin-{oid}", "executed": Decimal(0),
                 "quote": Decimal(0), "time": now, "update": now, "locked": (need_asset, Decimal(0))}
        self.orders[oid] = order
        events = [self._exec_report(order, "New")]
        fills: list[dict] = []
        marketable = otype == "LIMIT" and ((side == "BUY" and price >= last) or (side == "SELL" and price <= last))
        if otype == "MARKET" or marketable:  # a marketable limit takes at once, at the last price (taker)
            fill, evs = self._spot_fill(order, last, maker=False)
            fills.append(fill)
            events += evs
        elif order["tif"] in ("IOC", "FOK"):  # nothing to match: expires
            order.update(status="EXPIRED", update=_us())
            events.append(self._exec_report(order, "Expired"))
        else:  # rests: lock the funds it needs at its own price
            lock = qty * price if side == "BUY" else qty
            self.balances.setdefault(need_asset, [Decimal(0), Decimal(0)])
            self.balances[need_asset][0] -= lock
            self.balances[need_asset][1] += lock
            order["locked"] = (need_asset, lock)
            events.append(self._account_position([need_asset]))
        resp_type = q.get("newOrderRespType") or ("FULL" if otype in ("MARKET", "LIMIT") else "ACK")
        message, values = self._new_order_response(order, resp_type, fills)
        return message, values, 200, events

    def _new_order_response(self, o: dict, resp_type: str, fills: list[dict]) -> tuple[str, dict]:
        base = {"orderId": o["orderId"], "orderListId": None, "transactTime": o["update"], "symbol": o["symbol"],
                "clientOrderId": o["clientOrderId"]}
        if resp_type == "ACK":
            return "NewOrderAckResponse", base
        full = dict(base, priceExponent=EXP, qtyExponent=EXP, price=_m(o["price"]), origQty=_m(o["qty"]),
                    executedQty=_m(o["executed"]), cummulativeQuoteQty=_m(o["quote"]),
                    status=self._STATUS[o["status"]], timeInForce=self._TIF[o["tif"]],
                    orderType=self._TYPES[o["type"]], side="Buy" if o["side"] == "BUY" else "Sell",
                    workingTime=o["time"] if o["type"] != "MARKET" or o["status"] == "NEW" else None,
                    orderCapacity="Principal", workingFloor="Exchange", selfTradePreventionMode="None",
                    preventedQuantity=0, usedSor="False", origQuoteOrderQty=0)
        if resp_type == "RESULT":
            return "NewOrderResultResponse", full
        full["fills"] = fills
        full["preventedMatches"] = []
        return "NewOrderFullResponse", full

    def _spot_fill(self, o: dict, price: Decimal, *, maker: bool) -> tuple[dict, list[dict]]:
        spec = self.specs[o["symbol"]]
        qty = o["qty"]
        notional = qty * price
        fee = (notional * (MAKER_FEE if maker else TAKER_FEE)).quantize(Decimal("0.00000001"))
        base = self.balances.setdefault(spec.base, [Decimal(0), Decimal(0)])
        quote = self.balances.setdefault(spec.quote, [Decimal(0), Decimal(0)])
        asset, locked = o["locked"]
        if locked:
            self.balances[asset][1] -= locked
            self.balances[asset][0] += locked
            o["locked"] = (asset, Decimal(0))
        if o["side"] == "BUY":
            base[0] += qty
            quote[0] -= notional + fee
        else:
            base[0] -= qty
            quote[0] += notional - fee
        self._next_trade_id += 1
        now = _us()
        o.update(status="FILLED", executed=qty, quote=notional, update=now)
        trade = {"symbol": o["symbol"], "id": self._next_trade_id, "orderId": o["orderId"], "price": price,
                 "qty": qty, "quoteQty": notional, "commission": fee, "commissionAsset": spec.quote, "time": now,
                 "isBuyer": o["side"] == "BUY", "isMaker": maker}
        self.trades.append(trade)
        fill = {"commissionExponent": EXP, "matchType": "AutoMatch", "price": _m(price), "qty": _m(qty),
                "commission": _m(fee), "tradeId": trade["id"], "allocId": None, "commissionAsset": spec.quote}
        ev = self._exec_report(o, "Trade", last_qty=qty, last_px=price, fee=fee, trade_id=trade["id"], maker=maker)
        return fill, [ev, self._account_position([spec.base, spec.quote])]

    def _exec_report(self, o: dict, exec_type: str, *, last_qty: Decimal = Decimal(0), last_px: Decimal = Decimal(0),
                     fee: Decimal = Decimal(0), trade_id: int | None = None, maker: bool = False) -> tuple[str, dict]:
        now = _us()
        spec = self.specs[o["symbol"]]
        return "ExecutionReportEvent", {
            "eventTime": now, "transactTime": o["update"], "priceExponent": EXP, "qtyExponent": EXP,
            "commissionExponent": EXP, "orderCreationTime": o["time"],
            "workingTime": o["time"] if o["type"] != "MARKET" else None, "orderId": o["orderId"],
            "origQty": _m(o["qty"]), "price": _m(o["price"]), "origQuoteOrderQty": 0, "icebergQty": 0,
            "stopPrice": 0, "orderType": self._TYPES[o["type"]], "side": "Buy" if o["side"] == "BUY" else "Sell",
            "timeInForce": self._TIF[o["tif"]], "executionType": exec_type, "orderStatus": self._STATUS[o["status"]],
            "tradeId": trade_id, "executionId": self._next_execution_id(),
            "executedQty": _m(o["executed"]), "cummulativeQuoteQty": _m(o["quote"]), "lastQty": _m(last_qty),
            "lastPrice": _m(last_px), "quoteQty": _m(last_qty * last_px), "commission": _m(fee),
            "isWorking": "True" if o["status"] in ("NEW", "PARTIALLY_FILLED") and o["type"] != "MARKET" else "False",
            "isMaker": "True" if maker else "False", "isBestMatch": "True" if trade_id else "False",
            "matchType": "AutoMatch" if trade_id else None, "selfTradePreventionMode": "None",
            "orderCapacity": "Principal", "workingFloor": "Exchange", "usedSor": "False", "preventedQty": 0,
            "symbol": o["symbol"], "clientOrderId": o["clientOrderId"],
            "origClientOrderId": o.get("origClientOrderId", ""),
            "commissionAsset": spec.quote if trade_id else "",
        }

    def _account_position(self, assets: list[str]) -> tuple[str, dict]:
        now = _us()
        return "OutboundAccountPositionEvent", {"eventTime": now, "updateTime": now,
                                                "balances": self._balance_rows(assets)}

    def _s_find(self, q: dict) -> dict | None:
        if q.get("orderId"):
            return self.orders.get(int(q["orderId"]))
        coid = q.get("origClientOrderId")
        return next((o for o in self.orders.values() if o["clientOrderId"] == coid and o["symbol"] == q.get("symbol")),
                    None)

    def _cancel(self, o: dict, cancel_coid: str) -> list:
        asset, locked = o["locked"]
        events: list = []
        if locked:
            self.balances[asset][1] -= locked
            self.balances[asset][0] += locked
            o["locked"] = (asset, Decimal(0))
            events.append(self._account_position([asset]))
        o.update(status="CANCELED", update=_us(), origClientOrderId=o["clientOrderId"])
        report = self._exec_report(o, "Canceled")
        report[1]["clientOrderId"] = cancel_coid  # Binance: the cancel request's id, the order's in origClientOrderId
        return [report, *events]

    def _cancel_values(self, o: dict, cancel_coid: str) -> dict:
        return {"priceExponent": EXP, "qtyExponent": EXP, "orderId": o["orderId"], "orderListId": None,
                "transactTime": o["update"], "price": _m(o["price"]), "origQty": _m(o["qty"]),
                "executedQty": _m(o["executed"]), "cummulativeQuoteQty": _m(o["quote"]),
                "status": self._STATUS[o["status"]], "timeInForce": self._TIF[o["tif"]],
                "orderType": self._TYPES[o["type"]], "side": "Buy" if o["side"] == "BUY" else "Sell",
                "orderCapacity": "Principal", "selfTradePreventionMode": "None", "preventedQuantity": 0,
                "usedSor": "False", "origQuoteOrderQty": 0, "symbol": o["symbol"],
                "origClientOrderId": o["clientOrderId"], "clientOrderId": cancel_coid}

    def _s_cancel(self, q: dict) -> tuple[str, dict, int, list]:
        self.standin.cancels_received.append(dict(q))
        o = self._s_find(q)
        if o is None or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return self._err(-2011, "Unknown order sent.")
        cancel_coid = q.get("newClientOrderId") or f"standin-cancel-{o['orderId']}"
        events = self._cancel(o, cancel_coid)
        return "CancelOrderResponse", self._cancel_values(o, cancel_coid), 200, events

    def _s_cancel_all(self, q: dict) -> tuple[str, dict, int, list]:
        self.standin.cancels_received.append(dict(q))
        events: list = []
        responses = []
        for o in self.orders.values():
            if o["symbol"] == q.get("symbol") and o["status"] in ("NEW", "PARTIALLY_FILLED"):
                coid = f"standin-cancel-{o['orderId']}"
                events += self._cancel(o, coid)
                responses.append({"response": sbe.encode("CancelOrderResponse", self._cancel_values(o, coid))})
        if not responses:
            return self._err(-2011, "Unknown order sent.")
        return "CancelOpenOrdersResponse", {"responses": responses}, 200, events

    def _order_row(self, o: dict) -> dict:
        return {"priceExponent": EXP, "qtyExponent": EXP, "orderId": o["orderId"], "orderListId": None,
                "price": _m(o["price"]), "origQty": _m(o["qty"]), "executedQty": _m(o["executed"]),
                "cummulativeQuoteQty": _m(o["quote"]), "status": self._STATUS[o["status"]],
                "timeInForce": self._TIF[o["tif"]], "orderType": self._TYPES[o["type"]],
                "side": "Buy" if o["side"] == "BUY" else "Sell", "time": o["time"] // 1000,
                "updateTime": o["update"] // 1000,
                "isWorking": "True" if o["status"] in ("NEW", "PARTIALLY_FILLED") else "False",
                "workingTime": o["time"] // 1000, "origQuoteOrderQty": 0, "orderCapacity": "Principal",
                "workingFloor": "Exchange", "selfTradePreventionMode": "None", "preventedQuantity": 0,
                "usedSor": "False", "symbol": o["symbol"], "clientOrderId": o["clientOrderId"]}

    def _s_query(self, q: dict) -> tuple[str, dict, int, list]:
        o = self._s_find(q)
        if o is None:
            return self._err(-2013, "Order does not exist.")
        row = self._order_row(o)
        return "OrderResponse", row, 200, []

    def _s_open_orders(self, q: dict) -> tuple[str, dict, int, list]:
        rows = [self._order_row(o) for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")
                and (not q.get("symbol") or o["symbol"] == q["symbol"])]
        return "OrdersResponse", {"orders": rows}, 200, []

    def _s_all_orders(self, q: dict) -> tuple[str, dict, int, list]:
        rows = [self._order_row(o) for o in self.orders.values() if o["symbol"] == q.get("symbol")]
        return "OrdersResponse", {"orders": rows}, 200, []

    def _s_my_trades(self, q: dict) -> tuple[str, dict, int, list]:
        rows = [{"priceExponent": EXP, "qtyExponent": EXP, "commissionExponent": EXP, "id": t["id"],
                 "orderId": t["orderId"], "orderListId": None, "price": _m(t["price"]), "qty": _m(t["qty"]),
                 "quoteQty": _m(t["quoteQty"]), "commission": _m(t["commission"]), "time": t["time"] // 1000,
                 "isBuyer": "True" if t["isBuyer"] else "False", "isMaker": "True" if t["isMaker"] else "False",
                 "isBestMatch": "True", "symbol": t["symbol"], "commissionAsset": t["commissionAsset"]}
                for t in self.trades if t["symbol"] == q.get("symbol")]
        return "AccountTradesResponse", {"trades": rows}, 200, []

    # ---- resting LIMIT orders fill on the bars ---------------------------------------------
    async def _emit_step(self, open_time: int) -> None:
        await BinanceReplayServer._emit_step(self, open_time)  # the bar step only (not the USDT-M fills)
        events: list = []
        with self._lock:
            for o in list(self.orders.values()):
                if o["type"] == "MARKET" or o["status"] != "NEW":
                    continue
                k = self._by_time.get(o["symbol"], {}).get(open_time)
                if k is None:
                    continue
                px = o["price"]
                if (o["side"] == "BUY" and Decimal(k.low) <= px) or (o["side"] == "SELL" and Decimal(k.high) >= px):
                    _fill, evs = self._spot_fill(o, px, maker=True)
                    events += evs
        for ev in events:
            await self._push_spot(ev)

    # ---- WebSocket API (/ws-api/v3) --------------------------------------------------------
    async def _websocket(self, request):  # noqa: ANN001, ANN202
        if not request.path.startswith("/ws-api/v3"):
            return await super()._websocket(request)
        from aiohttp import WSMsgType, web

        self._log(request)
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        sbe_mode = request.query.get("responseFormat") == "sbe"
        self._ws_api[ws] = {"key": None, "sub": None, "since": _us(), "sbe": sbe_mode}
        self.standin.user_ws_connections += 1
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    continue
                params = dict(req.get("params") or {})
                self.ws_api_requests.append({"method": req.get("method"), "id": req.get("id"),
                                             "params": {k: v for k, v in params.items() if k != "signature"}})
                with self._lock:
                    status, message, values = self._ws_api_call(ws, str(req.get("method")), params)
                await ws.send_bytes(self._ws_response(str(req.get("id", "")), status, message, values))
        finally:
            self._ws_api.pop(ws, None)
        return ws

    def _ws_response(self, rid: str, status: int, message: str, values: dict) -> bytes:
        return sbe.encode("WebSocketResponse", {"sbeSchemaIdVersionDeprecated": "False", "status": status,
                                                "rateLimits": [], "id": rid,
                                                "result": sbe.encode(message, values)})

    def _ws_api_call(self, ws: Any, method: str, params: dict) -> tuple[int, str, dict]:
        state = self._ws_api[ws]
        if method == "session.logon":
            ok, err = self._check_ws_signature(params)
            if not ok:
                self.standin.auth_failures.append(f"ws-api session.logon: {err['msg']}")
                return 400 if err["code"] != -2015 else 401, "ErrorResponse", err
            state["key"] = params["apiKey"]
            now = _us()
            return 200, "WebSocketSessionLogonResponse", {
                "authorizedSince": now, "connectedSince": state["since"], "returnRateLimits": "False",
                "serverTime": now, "userDataStream": "True" if state["sub"] is not None else "False",
                "loggedOnApiKey": params["apiKey"]}
        if method == "userDataStream.subscribe":
            if state["key"] is None:
                return 401, "ErrorResponse", {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
            state["sub"] = self._next_sub
            self._next_sub += 1
            return 200, "UserDataStreamSubscribeResponse", {"subscriptionId": state["sub"]}
        if method == "userDataStream.unsubscribe":
            state["sub"] = None
            return 200, "UserDataStreamUnsubscribeResponse", {}
        return 400, "ErrorResponse", {"code": -1100, "msg": f"stand-in: WebSocket API method {method} not served"}

    def _check_ws_signature(self, params: dict) -> tuple[bool, dict]:
        """``session.logon``: Ed25519 keys only; the signature is over the other params sorted by name."""
        key = str(params.get("apiKey", ""))
        self.standin.api_keys_seen.add(key)
        if key in self.hmac_keys:
            return False, {"code": -2015, "msg": "Only Ed25519 API keys can log on a WebSocket API session."}
        if key not in self.ed25519_keys:
            return False, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
        from cryptography.exceptions import InvalidSignature

        try:
            self.ed25519_keys[key].verify(base64.b64decode(str(params.get("signature", ""))), payload.encode())
        except (InvalidSignature, ValueError):
            return False, {"code": -1022, "msg": "Signature for this request is not valid."}
        ts = int(params.get("timestamp", 0) or 0)
        window = int(params.get("recvWindow", 5000) or 5000)
        now = int(time.time() * 1000)
        if not (now - window <= ts <= now + 1000):
            return False, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
        self.standin.key_types.add("ed25519")
        return True, {}

    async def _push_spot(self, event: tuple[str, dict]) -> None:
        message, values = event
        self.standin.user_events_sent.append({"message": message, **values})
        for ws, state in list(self._ws_api.items()):
            if state["sub"] is None:
                continue
            try:
                await ws.send_bytes(sbe.encode(message, dict(values, subscriptionId=state["sub"])))
            except (ConnectionError, RuntimeError):
                self._ws_api.pop(ws, None)

    async def _drop(self) -> int:
        n = await super()._drop()
        for ws in list(self._ws_api):
            await ws.close(code=1011, message=b"standin: connection dropped")
            n += 1
        self._ws_api.clear()
        return n

