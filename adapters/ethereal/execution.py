"""Live execution client for Ethereal (Nautilus 2 ``live.clients.ExecutionClient``).

Orders: MARKET and LIMIT; time in force GTC (sent as the venue's GTD without expiry, i.e. at most
~77 days), GTD (``expiresAt`` = expire time), IOC, FOK; post-only (limit only) and reduce-only.
Modify is not supported by the venue (no amend endpoint) and is rejected; order lists are sent
one order at a time without venue-side contingency.

Each order is built with the SDK's ``prepare_order`` (pydantic-validated ``SubmitOrderDto``),
signed as EIP-712 ``TradeOrder`` with :mod:`adapters.ethereal.common.signing` (domain and types
from ``GET /v1/rpc/config``) and posted with the SDK's ``submit_order``; cancels likewise
(``prepare_cancel_order`` / ``CancelOrder`` / ``cancel_order``). The client order id sent is
``uuid5(CLOID_NAMESPACE, ClientOrderId)``.

Signing keys: the main wallet key (``sender`` = ``account_address``) or, with
``linked_signer=True``, a linked signer's key (``sender`` = signer address); at connect the client
checks that the key matches the account, or that the signer is ``ACTIVE`` and unexpired for the
subaccount (``GET /v1/linked-signer``), and fails with a clear error otherwise.

Events: the REST answer accepts or rejects the order; the private ``OrderUpdate`` and
``OrderFill`` streams drive accepted/canceled/expired/filled. Updates older than the last one
applied to an order are ignored; fills are de-duplicated by fill id; a fill for an order not yet
accepted first generates the acceptance; when an update reports more filled quantity than the
fills received, the missing fills of that product since the order's fills were last complete are
fetched from ``GET /v1/order/fill`` (``createdAfter``, ``productIds``; never the whole history).

Orders whose fate is unknown are never rejected on a guess: a 5xx or a transport failure on
``POST /v1/order``, or a result code the adapter does not know, leaves the order SUBMITTED while it
is looked up by client order id with backoff (``order_lookup_attempts``, ``order_lookup_backoff_s``);
if it never shows up, a cancel by client order id is sent and only the venue's ``NotFound`` answer
rejects it. A ``REJECTED`` stream update that arrives while the submit is in flight is kept and
applied once the REST answer (``Ok``, error) is known. Unknown order statuses are read from the
quantities (nothing left -> filled or canceled, else working).

Positions: ``PositionUpdate`` and ``SubaccountLiquidation`` (liquidations, auto-deleveraging) make
the client compare the venue position with Nautilus's; fills of venue-generated orders (no client
order id) are fetched incrementally and reported as external orders (``OrderStatusReport`` + fills;
strategies claim them with ``external_order_instrument_ids``). Fill prices off the tick grid
(liquidation/bankruptcy prices) are kept exactly with more decimals instead of being dropped.

Reconciliation (start-up): working and recent orders, fills within ``fill_lookback_mins`` and open
positions are returned as an ``ExecutionMassStatus``; balances become the account state (polled
every ``balance_poll_secs`` and after fills; the venue has no balance stream).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from decimal import Decimal

from ethereal.rest.util import encode_account_name
from nautilus_trader.common import Logger
from nautilus_trader.config import ExecutionClientConfig
from nautilus_trader.live.clients import ExecutionClient
from nautilus_trader.model import (
    AccountBalance,
    AccountId,
    AccountType,
    ClientOrderId,
    ExecutionMassStatus,
    FillReport,
    LiquiditySide,
    OmsType,
    OrderSide,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    PositionSide,
    PositionStatusReport,
    TimeInForce,
    TradeId,
    VenueOrderId,
)

from adapters.ethereal.common.constants import (
    CLOID_NAMESPACE,
    ETHEREAL_VENUE,
    WS_ORDER_FILL,
    WS_ORDER_UPDATE,
    WS_POSITION_UPDATE,
    WS_SUBACCOUNT_LIQUIDATION,
)
from adapters.ethereal.common.credentials import SigningKey, load_signing_key
from adapters.ethereal.common.enums import (
    SIDE_TO_VENUE,
    STATUS_TO_NAUTILUS,
    TIF_TO_NAUTILUS,
    TIF_TO_VENUE,
    VENUE_TO_POSITION_SIDE,
    VENUE_TO_SIDE,
    EtherealOrderStatus,
    order_status,
)
from adapters.ethereal.common.parsing import (
    MS,
    SETTLEMENT_TOKEN_NAMES,
    ParseError,
    dec,
    fill_price,
    money,
    price,
    qty,
    settlement_currency,
    ticker_of,
)
from adapters.ethereal.common.signing import (
    Eip712Config,
    SigningError,
    cancel_values,
    sign_typed,
    trade_order_values,
)
from adapters.ethereal.common.urls import CHAIN_IDS
from adapters.ethereal.config import EtherealExecClientConfig
from adapters.ethereal.http.client import EtherealHttpClient, EtherealHttpError, EtherealRateLimitError
from adapters.ethereal.providers import EtherealInstrumentProvider
from adapters.ethereal.websocket.client import EtherealWebSocketClient
from adapters.ethereal.websocket.messages import (
    OrderFillItem,
    OrderUpdateItem,
    PositionUpdateItem,
    SubaccountLiquidationData,
    WsMessageError,
    decode_event,
)

log = logging.getLogger(__name__)

_NS = uuid.UUID(CLOID_NAMESPACE)


class EtherealStartupError(RuntimeError):
    """The account, subaccount, signer or signing domain is not usable (message says why)."""


def venue_cloid(client_order_id: ClientOrderId | str) -> str:
    """The client order id sent to Ethereal for a Nautilus ``ClientOrderId`` (uuid5 string)."""
    return str(uuid.uuid5(_NS, str(client_order_id)))


class _OrderState:
    __slots__ = ("venue_id", "last_t", "filled", "fill_ids", "accepted", "pending_reject", "complete_ms")

    def __init__(self) -> None:
        self.venue_id: str | None = None
        self.last_t = -1
        self.filled = Decimal(0)
        self.fill_ids: set[str] = set()
        self.accepted = False
        self.pending_reject: tuple[str, int] | None = None  # REJECTED seen while the submit was in flight
        self.complete_ms = 0  # venue ms at which the fills received were last known complete


#: Slack before a venue time when asking for fills created after it (clock skew, same-ms fills).
FILL_QUERY_SLACK_MS = 2_000


class EtherealExecutionClient(ExecutionClient):
    """Ethereal order entry and account (see module docstring). Build it with
    :class:`adapters.ethereal.factories.EtherealExecClientFactory`.

    Raises :class:`adapters.ethereal.common.credentials.CredentialError` at construction when the
    signing key is missing or malformed, and :class:`EtherealStartupError` at connect when the
    account, subaccount, signer or domain do not check out.
    """

    def __init__(self, *, name: str, config: ExecutionClientConfig, cache, clock, trader_id,
                 eth_config: EtherealExecClientConfig, key: SigningKey | None = None) -> None:
        self.eth = eth_config.validate()
        self.key = key or load_signing_key(key_file=eth_config.private_key_file, env_var=eth_config.private_key_env)
        self.http = EtherealHttpClient(eth_config.urls(), eth_config.network_enum(),
                                       timeout_s=eth_config.http_timeout_s,
                                       max_retries=eth_config.http_max_retries)
        provider = EtherealInstrumentProvider(self.http, eth_config.tickers, currency=eth_config.settlement_currency)
        super().__init__(
            name=name, config=config, cache=cache, clock=clock, trader_id=trader_id, venue=ETHEREAL_VENUE,
            account_id=AccountId(eth_config.account_id), account_type=AccountType.MARGIN,
            oms_type=OmsType.NETTING, base_currency=None, instrument_provider=provider,
        )
        self.provider = provider
        self.currency = settlement_currency(eth_config.settlement_currency)
        self.subaccount_hex = (eth_config.subaccount if eth_config.subaccount.startswith("0x")
                               else encode_account_name(eth_config.subaccount))
        self.subaccount_id: str | None = None
        self.eip712: Eip712Config | None = None
        self.ws: EtherealWebSocketClient | None = None
        self._states: dict[ClientOrderId, _OrderState] = {}
        self._by_cloid: dict[str, ClientOrderId] = {}
        self._by_venue: dict[str, ClientOrderId] = {}
        self._inflight: set[ClientOrderId] = set()  # REST submission (or its resolution) not finished
        self._seen_fills: set[str] = set()  # every fill id applied or reported (own and external)
        self._fill_watermark_ms = 0  # latest fill time known; position checks ask for fills after it
        self._venue_pos: dict[str, Decimal] = {}  # symbol -> signed size from PositionUpdate
        self._liq_px: dict[str, Decimal] = {}  # symbol -> last SubaccountLiquidation price
        self._pos_checks: dict[str, asyncio.Task] = {}
        self._known_result_codes = {m.value for m in self.http._models.SubmitCreatedCode} - {"Unknown"}
        self._nonce = 0
        self._balance_task: asyncio.Task | None = None
        self._balance_dirty = asyncio.Event()
        self.startup_error: str | None = None
        self.stats = {"orders_sent": 0, "cancels_sent": 0, "fills": 0, "duplicate_fills": 0,
                      "stale_updates": 0, "unknown_orders": 0, "malformed": 0, "recovered_fills": 0,
                      "unknown_submissions": 0, "external_fills": 0, "position_checks": 0,
                      "position_mismatches": 0, "liquidations": 0}

    # ------------------------------------------------------------------ start-up

    @property
    def sender(self) -> str:
        """Address that signs: the signer (linked-signer mode) or the account."""
        return self.key.address

    async def _connect(self) -> None:
        try:
            await self._connect_checked()
        except Exception as e:  # Nautilus only logs "connection failed": say why, in its log and ours
            msg = f"Ethereal execution client start-up failed: {e}"
            self.startup_error = msg
            Logger("EtherealExecutionClient").error(msg)
            log.error(msg)
            raise

    async def _connect_checked(self) -> None:
        net = self.eth.network_enum()
        self.eip712 = Eip712Config.from_rpc_config(await self.http.rpc_config_raw())
        chain_id = self.eip712.domain["chainId"]
        if chain_id != CHAIN_IDS[net]:
            raise EtherealStartupError(
                f"signing domain chainId {chain_id} from {self.http.urls.rest}/v1/rpc/config does not match "
                f"network {net.value} (expected {CHAIN_IDS[net]})"
            )
        for t in ("TradeOrder", "CancelOrder"):
            if t not in self.eip712.types:
                raise EtherealStartupError(f"/v1/rpc/config has no {t} signature type")
        subs = await self.http.list_subaccounts(sender=self.eth.account_address)
        match = [s for s in subs if s.name.lower() == self.subaccount_hex.lower()]
        if not match:
            names = [s.name for s in subs]
            raise EtherealStartupError(
                f"subaccount {self.eth.subaccount!r} ({self.subaccount_hex}) not found for account "
                f"{self.eth.account_address}; the account has {names}"
            )
        self.subaccount_id = str(match[0].id)
        await self._check_signer()
        await self.provider.load_all_async()
        for inst in self.provider.list_all():
            self._handle_instrument(inst)
        self._rebuild_id_maps()
        await self.update_account_state()
        self.ws = EtherealWebSocketClient(
            self.eth.urls().ws, self._on_ws_message, on_connected=self._on_ws_connected,
            on_error=lambda text: log.error(text),
            backoff_initial_s=self.eth.ws_backoff_initial_s, backoff_max_s=self.eth.ws_backoff_max_s,
        )
        self._fill_watermark_ms = max(self._fill_watermark_ms, int(time.time() * 1000))
        for channel in (WS_ORDER_UPDATE, WS_ORDER_FILL, WS_POSITION_UPDATE, WS_SUBACCOUNT_LIQUIDATION):
            await self.ws.subscribe(channel, subaccount_id=self.subaccount_id)
        await self.ws.start()
        self._balance_task = self.create_task(self._balance_loop(), "ethereal_balances")

    async def _check_signer(self) -> None:
        account = self.eth.account_address.lower()
        if not self.eth.linked_signer:
            if self.key.address.lower() != account:
                raise EtherealStartupError(
                    f"signing key address {self.key.address} is not account_address {self.eth.account_address}; "
                    "set linked_signer=true if it is a linked signer key"
                )
            return
        signers = await self.http.list_signers(subaccount_id=self.subaccount_id)
        now_ms = int(time.time() * 1000)
        mine = [s for s in signers if s.signer.lower() == self.key.address.lower()]
        if not mine:
            raise EtherealStartupError(
                f"linked signer {self.key.address} is not linked to subaccount {self.eth.subaccount!r} "
                f"of {self.eth.account_address}"
            )
        active = [s for s in mine if getattr(s.status, "value", s.status) == "ACTIVE"]
        if not active:
            raise EtherealStartupError(
                f"linked signer {self.key.address} has status {[getattr(s.status, 'value', s.status) for s in mine]}, "
                "not ACTIVE"
            )
        if all(s.expires_at <= now_ms for s in active):
            raise EtherealStartupError(f"linked signer {self.key.address} expired; refresh it with the account key")

    async def _disconnect(self) -> None:
        if self._balance_task is not None:
            self._balance_task.cancel()
        if self.ws is not None:
            await self.ws.stop()
        await self.http.close()

    async def _on_ws_connected(self, reconnect: bool) -> None:
        if reconnect:
            log.warning("Ethereal private stream reconnected; checking working orders and positions")
            self.create_task(self._resync_open_orders(), "ethereal_resync")
            for inst in self.provider.list_all():
                self._schedule_position_check(ticker_of(inst.id))

    def _rebuild_id_maps(self) -> None:
        for order in self.cache.orders(venue=ETHEREAL_VENUE):
            self._by_cloid[venue_cloid(order.client_order_id)] = order.client_order_id
            if order.venue_order_id is not None:
                self._by_venue[order.venue_order_id.value] = order.client_order_id

    # ------------------------------------------------------------------ account

    async def update_account_state(self) -> None:
        """Fetch balances (``GET /v1/subaccount/balance``) and publish the account state."""
        rows = await self.http.get_subaccount_balances(subaccount_id=self.subaccount_id)
        balances = []
        for r in rows:
            name = r.token_name.upper()
            if name not in SETTLEMENT_TOKEN_NAMES:
                log.warning("Ethereal balance in %s ignored (only the USD settlement token is margin)", r.token_name)
                continue
            total = money(r.amount, self.currency, "amount")
            free = money(r.available, self.currency, "available")
            locked = money(Decimal(str(total.as_decimal())) - Decimal(str(free.as_decimal())), self.currency)
            balances.append(AccountBalance(total, locked, free))
        if not balances:
            zero = money(0, self.currency)
            balances = [AccountBalance(zero, zero, zero)]
        self.generate_account_state(balances, [], True, self.clock.timestamp_ns())

    async def _balance_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._balance_dirty.wait(), self.eth.balance_poll_secs)
                await asyncio.sleep(0.2)  # coalesce bursts of fills
            except TimeoutError:
                pass
            self._balance_dirty.clear()
            try:
                await self.update_account_state()
            except Exception as e:
                log.error("Ethereal balance refresh failed: %r", e)

    async def _query_account(self, command) -> None:
        await self.update_account_state()

    # ------------------------------------------------------------------ orders

    def _next_nonce(self) -> str:
        self._nonce = max(time.time_ns(), self._nonce + 1)
        return str(self._nonce)

    def _state(self, coid: ClientOrderId) -> _OrderState:
        st = self._states.get(coid)
        if st is None:
            st = self._states[coid] = _OrderState()
        return st

    async def _submit_order(self, command) -> None:
        await self._submit(command.order)

    async def _submit_order_list(self, command) -> None:
        for order in command.order_list.orders:
            await self._submit(order)

    async def _submit(self, order) -> None:
        ts = self.clock.timestamp_ns()
        inst = self.provider.find(order.instrument_id)
        if inst is None:
            self.generate_order_denied(order, f"instrument {order.instrument_id} not loaded by the Ethereal client")
            return
        if order.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            self.generate_order_denied(order, f"order type {order.order_type} not supported by Ethereal (MARKET, LIMIT)")
            return
        tif = TIF_TO_VENUE.get(order.time_in_force)
        if order.order_type == OrderType.LIMIT and tif is None:
            self.generate_order_denied(order, f"time in force {order.time_in_force} not supported by Ethereal")
            return
        if getattr(order, "is_post_only", False) and order.order_type != OrderType.LIMIT:
            self.generate_order_denied(order, "post-only is only valid for LIMIT orders")
            return
        coid = order.client_order_id
        cloid = venue_cloid(coid)
        self._by_cloid[cloid] = coid
        st = self._state(coid)
        params = dict(
            quantity=str(order.quantity), side=SIDE_TO_VENUE[order.side], subaccount=self.subaccount_hex,
            onchain_id=int(inst.info["onchain_id"]), order_type="LIMIT" if order.order_type == OrderType.LIMIT else "MARKET",
            client_order_id=cloid, reduce_only=bool(order.is_reduce_only), nonce=self._next_nonce(),
            signed_at=int(time.time()),
        )
        if order.order_type == OrderType.LIMIT:
            params.update(price=str(order.price), time_in_force=tif, post_only=bool(getattr(order, "is_post_only", False)))
            if order.time_in_force == TimeInForce.GTD and order.expire_time_ns:
                params["expires_at"] = int(order.expire_time_ns // 1_000_000_000)
        try:
            dto = await self.http.prepare_order(self.sender, **params)
            payload = dto.data.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
            dto.signature = sign_typed(self.eip712, self.key, "TradeOrder", trade_order_values(payload))
        except (SigningError, ValueError) as e:  # pydantic ValidationError is a ValueError
            self.generate_order_denied(order, f"cannot build Ethereal order: {e}")
            return
        self.generate_order_submitted(order)
        st.complete_ms = int(time.time() * 1000) - FILL_QUERY_SLACK_MS
        self.stats["orders_sent"] += 1
        self._inflight.add(coid)
        try:
            await self._send_order(order, dto, st, ts)
        finally:
            self._inflight.discard(coid)

    async def _send_order(self, order, dto, st: _OrderState, ts: int) -> None:
        coid = order.client_order_id
        try:
            res = await self.http.submit_order(dto)
        except EtherealRateLimitError as e:  # a rate-limited request was not processed
            self._reject(order, st, _reject_reason(e))
            return
        except EtherealHttpError as e:
            if e.status == 0 or e.status >= 500:  # the order may be live (queued, or the answer was lost)
                self.stats["unknown_submissions"] += 1
                await self._resolve_unknown_submission(order, str(e))
                return
            self._reject(order, st, _reject_reason(e), "ImmediateMatchPostOnly" in e.body)
            return
        except Exception as e:  # e.g. an answer that does not parse: the order may be live as well
            self.stats["unknown_submissions"] += 1
            await self._resolve_unknown_submission(order, f"unreadable answer: {e!r}")
            return
        result = getattr(res.result, "value", res.result)
        venue_id = str(res.id)
        st.venue_id = venue_id
        self._by_venue[venue_id] = coid
        if result not in self._known_result_codes:  # a code this adapter/SDK does not know
            log.warning("Ethereal order %s: unknown result code %r; resolving it by client order id", coid, result)
            self.stats["unknown_submissions"] += 1
            await self._resolve_unknown_submission(order, f"result {result}")
        elif result == "Ok":
            if st.pending_reject is not None and not st.accepted and st.filled == 0:
                self._reject(order, st, st.pending_reject[0])  # rejected by the engine after "Ok"
                return
            self._accept(order, st, ts)
        elif st.filled > 0 or st.accepted:
            log.warning("Ethereal order %s result %s after fills; treated as canceled remainder", coid, result)
            self._accept(order, st, ts)
            self._terminal(order, st, "CANCELED", self.clock.timestamp_ns())
        else:
            self._reject(order, st, f"Ethereal: {result}", result == "ImmediateMatchPostOnly")

    def _reject(self, order, st: _OrderState, reason: str, due_post_only: bool = False) -> None:
        current = self.cache.order(order.client_order_id)
        if st.accepted or (current is not None and current.is_closed):
            return
        self.generate_order_rejected(order, reason, self.clock.timestamp_ns(), due_post_only)

    def _settled(self, order, st: _OrderState) -> bool:
        current = self.cache.order(order.client_order_id)
        return st.accepted or st.filled > 0 or (current is not None and current.is_closed)

    async def _resolve_unknown_submission(self, order, error: str) -> None:
        """The order may be live: keep it SUBMITTED and find it by client order id (lookups with
        backoff, then a cancel by client order id); reject only when the venue says it does not
        exist (cancel ``NotFound`` and a last lookup empty)."""
        coid = order.client_order_id
        cloid = venue_cloid(coid)
        st = self._state(coid)
        log.warning("Ethereal order %s: outcome unknown (%s); kept SUBMITTED, looking it up by client order id",
                    coid, error)
        delay = self.eth.order_lookup_backoff_s
        for _attempt in range(max(1, self.eth.order_lookup_attempts)):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
            if await self._lookup_and_apply(order, st, cloid):
                return
        if self._settled(order, st):
            return
        code = await self._cancel_by_cloid(cloid)
        if await self._lookup_and_apply(order, st, cloid):
            return
        if code == "NotFound":
            self._reject(order, st, f"Ethereal submission failed ({error}); the order is not on the venue "
                                    f"(not found by client order id {cloid} after "
                                    f"{self.eth.order_lookup_attempts} lookups, cancel answered NotFound)")
        else:
            log.error("Ethereal order %s: still unknown after lookups and a cancel (%s); left SUBMITTED for "
                      "reconciliation", coid, code)

    async def _lookup_and_apply(self, order, st: _OrderState, cloid: str) -> bool:
        """True when the order's state is settled (by the stream or by the venue's record)."""
        if st.pending_reject is not None and not self._settled(order, st):
            self._reject(order, st, st.pending_reject[0])
            return True
        if self._settled(order, st):
            return True
        try:
            found = await self.http.list_orders(subaccount_id=self.subaccount_id, client_order_id=cloid)
        except Exception as e:
            log.warning("Ethereal: lookup of order %s failed: %r", order.client_order_id, e)
            return False
        if not found:
            return False
        self._apply_venue_order(order, st, found[0])
        return True

    def _apply_venue_order(self, order, st: _OrderState, o) -> None:
        coid = order.client_order_id
        st.venue_id = str(o.id)
        self._by_venue[st.venue_id] = coid
        raw = getattr(o.status, "value", o.status)
        status = order_status(raw, o.quantity, o.available_quantity, o.filled)
        if status == EtherealOrderStatus.REJECTED and st.filled == 0 and Decimal(str(o.filled)) == 0:
            reason = getattr(o, "rejected_reason", None)
            self._reject(order, st, f"Ethereal: {getattr(reason, 'value', reason) or 'REJECTED'}")
            return
        self._accept(order, st, o.created_at * MS)
        if Decimal(str(o.filled)) > st.filled:
            self.create_task(self._recover_fills(coid, st.venue_id, delay_s=0.0), f"ethereal_fills_{st.venue_id}")
        if status in (EtherealOrderStatus.CANCELED, EtherealOrderStatus.REJECTED):
            self._terminal(order, st, "CANCELED", o.updated_at * MS)
        elif status == EtherealOrderStatus.EXPIRED:
            self._terminal(order, st, "EXPIRED", o.updated_at * MS)

    async def _cancel_by_cloid(self, cloid: str) -> str | None:
        """Cancel by client order id; returns the venue's result code (``None`` if the call failed)."""
        try:
            dto = await self.http.prepare_cancel_order(
                sender=self.sender, subaccount=self.subaccount_hex, order_ids=[], client_order_ids=[cloid],
                nonce=self._next_nonce(),
            )
            payload = dto.data.model_dump(mode="json", by_alias=True)
            dto.signature = sign_typed(self.eip712, self.key, "CancelOrder", cancel_values(payload))
            self.stats["cancels_sent"] += 1
            results = await self.http.cancel_order(dto)
        except Exception as e:
            log.error("Ethereal cancel by client order id %s failed: %r", cloid, e)
            return None
        codes = [getattr(r.result, "value", r.result) for r in results]
        return codes[0] if codes else None

    def _accept(self, order, st: _OrderState, ts_event: int) -> None:
        if st.accepted:
            return
        st.accepted = True
        self.generate_order_accepted(order, VenueOrderId(st.venue_id), ts_event)

    def _terminal(self, order, st: _OrderState, status: str, ts_event: int) -> None:
        current = self.cache.order(order.client_order_id)
        if current is not None and current.is_closed:
            return
        vid = VenueOrderId(st.venue_id) if st.venue_id else None
        if status == "EXPIRED":
            self.generate_order_expired(order, vid, ts_event)
        else:
            self.generate_order_canceled(order, vid, ts_event)

    async def _modify_order(self, command) -> None:
        order = self.cache.order(command.client_order_id)
        self.generate_order_modify_rejected(order, command.venue_order_id,
                                            "Ethereal has no order amend; cancel and resubmit",
                                            self.clock.timestamp_ns())

    async def _cancel_order(self, command) -> None:
        order = self.cache.order(command.client_order_id)
        if order is None:
            log.error("Ethereal cancel: order %s not in cache", command.client_order_id)
            return
        await self._cancel([order])

    async def _cancel_all_orders(self, command) -> None:
        orders = [o for o in self.cache.orders_open(venue=ETHEREAL_VENUE, instrument_id=command.instrument_id)
                  if command.order_side in (None, OrderSide.NO_ORDER_SIDE) or o.side == command.order_side]
        if orders:
            await self._cancel(orders)

    async def _cancel(self, orders: list) -> None:
        by_venue, by_cloid = {}, {}
        for o in orders:
            st = self._state(o.client_order_id)
            vid = st.venue_id or (o.venue_order_id.value if o.venue_order_id else None)
            if vid:
                by_venue[vid] = o
            else:
                by_cloid[venue_cloid(o.client_order_id)] = o
        try:
            dto = await self.http.prepare_cancel_order(
                sender=self.sender, subaccount=self.subaccount_hex, order_ids=list(by_venue),
                client_order_ids=list(by_cloid), nonce=self._next_nonce(),
            )
            payload = dto.data.model_dump(mode="json", by_alias=True)
            dto.signature = sign_typed(self.eip712, self.key, "CancelOrder", cancel_values(payload))
            self.stats["cancels_sent"] += 1
            results = await self.http.cancel_order(dto)
        except (EtherealHttpError, SigningError, ValueError) as e:
            for o in orders:
                self.generate_order_cancel_rejected(o, o.venue_order_id, f"Ethereal cancel failed: {e}",
                                                    self.clock.timestamp_ns())
            return
        ts = self.clock.timestamp_ns()
        for r in results:
            code = getattr(r.result, "value", r.result)
            o = by_venue.get(str(r.id)) or (by_cloid.get(r.client_order_id) if r.client_order_id else None)
            if o is None:
                continue
            st = self._state(o.client_order_id)
            st.venue_id = st.venue_id or str(r.id)
            if code in ("Ok", "AlreadyCanceled"):
                self._accept(o, st, ts)
                self._terminal(o, st, "CANCELED", ts)
            elif code == "AlreadyExpired":
                self._accept(o, st, ts)
                self._terminal(o, st, "EXPIRED", ts)
            else:
                self.generate_order_cancel_rejected(o, VenueOrderId(st.venue_id), f"Ethereal: {code}", ts)

    async def _query_order(self, command) -> None:
        report = await self._generate_order_status_report(command)
        if report is not None:
            self._handle_report(report)

    # ------------------------------------------------------------------ private streams

    def _on_ws_message(self, message: dict) -> None:
        try:
            decoded = decode_event(message)
        except WsMessageError as e:
            self.stats["malformed"] += 1
            log.error("Ethereal: dropped private message: %s", e)
            return
        if decoded is None:
            return
        event, _t, data = decoded
        if event == WS_ORDER_FILL:
            for item in data.d:
                self._on_fill(item)
        elif event == WS_ORDER_UPDATE:
            for item in data.d:
                self._on_order_update(item)
        elif event == WS_POSITION_UPDATE:
            for item in data.d:
                self._on_position_update(item)
        elif event == WS_SUBACCOUNT_LIQUIDATION:
            self._on_liquidation(data)

    def _lookup(self, venue_id: str, cloid: str | None) -> ClientOrderId | None:
        coid = self._by_venue.get(venue_id)
        if coid is None and cloid:
            coid = self._by_cloid.get(cloid)
            if coid is not None:
                self._by_venue[venue_id] = coid
        return coid

    def _on_fill(self, f: OrderFillItem, recovered: bool = False) -> None:
        if f.sid != self.subaccount_id:
            return
        coid = self._lookup(f.oid, f.cloid)
        order = self.cache.order(coid) if coid is not None else None
        if order is None:
            if f.id in self._seen_fills:
                self.stats["duplicate_fills"] += 1
                return
            # a venue order (liquidation, auto-deleveraging) or another client's: reported as an
            # external order from the REST fill list by the position check
            self.stats["unknown_orders"] += 1
            log.warning("Ethereal fill %s for unknown order %s (venue-generated or external); importing it",
                        f.id, f.oid)
            self._schedule_position_check(f.s, delay_s=0.0)
            return
        st = self._state(coid)
        if f.id in st.fill_ids:
            self.stats["duplicate_fills"] += 1
            return
        inst = self.provider.find(order.instrument_id)
        try:
            last_qty = qty(f.sz, inst.size_precision, "sz")
            last_px = fill_price(f.px, inst.price_precision, "px")
            fee = money(f.fee, self.currency, "fee")
            if VENUE_TO_SIDE.get(f.sd) != order.side:
                raise ParseError(f"fill side {f.sd} does not match order side {order.side}")
        except ParseError as e:
            self.stats["malformed"] += 1
            log.error("Ethereal: malformed fill %s dropped: %s", f.id, e)
            return
        st.venue_id = st.venue_id or f.oid
        st.fill_ids.add(f.id)
        self._seen_fills.add(f.id)
        self._fill_watermark_ms = max(self._fill_watermark_ms, f.t)
        st.filled += Decimal(f.sz)
        self._accept(order, st, f.t * MS)
        self.stats["fills"] += 1
        if recovered:
            self.stats["recovered_fills"] += 1
        self.generate_order_filled(
            order, VenueOrderId(st.venue_id), None, TradeId(f.id), last_qty, last_px, self.currency, fee,
            LiquiditySide.MAKER if f.m else LiquiditySide.TAKER, f.t * MS,
        )
        self._balance_dirty.set()

    def _on_order_update(self, u: OrderUpdateItem) -> None:
        if u.sid != self.subaccount_id:
            return
        coid = self._lookup(u.id, u.cloid)
        order = self.cache.order(coid) if coid is not None else None
        if order is None:
            self.stats["unknown_orders"] += 1
            log.warning("Ethereal update for unknown order %s (%s) ignored", u.id, u.st)
            return
        st = self._state(coid)
        if u.t < st.last_t:
            self.stats["stale_updates"] += 1
            log.warning("Ethereal update for %s at t=%d older than t=%d: ignored", coid, u.t, st.last_t)
            return
        try:
            venue_filled = dec(u.fill, "fill")
            status = order_status(u.st, dec(u.qty, "qty"), dec(u.aqty, "aqty"), venue_filled)
        except ParseError as e:
            self.stats["malformed"] += 1
            log.error("Ethereal: malformed order update for %s dropped: %s", coid, e)
            return
        st.last_t = u.t
        st.venue_id = st.venue_id or u.id
        ts = u.t * MS
        if status == EtherealOrderStatus.REJECTED and not st.accepted and st.filled == 0:
            if coid in self._inflight:
                # the submit is still in flight (or being resolved): its answer decides, and an
                # "Ok" answer no longer hides this rejection
                st.pending_reject = ("Ethereal: REJECTED (stream)", ts)
                return
            self._reject(order, st, "Ethereal: REJECTED")
            return
        self._accept(order, st, ts)
        if venue_filled > st.filled:
            self.create_task(self._recover_fills(coid, u.id), f"ethereal_fills_{u.id}")
        else:
            st.complete_ms = max(st.complete_ms, u.t)  # every fill up to this update was received
        if status in (EtherealOrderStatus.CANCELED, EtherealOrderStatus.REJECTED):
            self._terminal(order, st, "CANCELED", ts)
        elif status == EtherealOrderStatus.EXPIRED:
            self._terminal(order, st, "EXPIRED", ts)

    async def _recover_fills(self, coid: ClientOrderId, venue_id: str, delay_s: float = 0.5) -> None:
        await asyncio.sleep(delay_s)  # the fill message usually follows the update
        st = self._state(coid)
        order = self.cache.order(coid)
        if order is None:
            return
        inst = self.provider.find(order.instrument_id)
        # Only fills after the time the order's fills were last known complete (its submission, or
        # the last update whose filled quantity matched the fills received), of its product.
        since = st.complete_ms or (int(order.ts_last) // MS - FILL_QUERY_SLACK_MS)
        try:
            fills = await self._fills_since(since, inst)
        except Exception as e:
            log.error("Ethereal: fill recovery for %s failed: %r", coid, e)
            return
        for f in sorted(fills, key=lambda x: x.created_at):
            if str(f.order_id) != venue_id or str(f.id) in st.fill_ids:
                continue
            self._on_fill(_fill_item(f), recovered=True)

    async def _fills_since(self, since_ms: int, inst=None) -> list:
        """Fills of the subaccount created at or after ``since_ms`` (of ``inst``'s product if given)."""
        kw = {"subaccount_id": self.subaccount_id, "created_after": max(0, int(since_ms))}
        if inst is not None:
            kw["product_ids"] = [inst.info["product_id"]]
        return await self.http.all_pages("order/fill", "V1OrderFillGetParametersQuery", "PageOfOrderFillDtos",
                                         max_pages=10, **kw)

    # ------------------------------------------------------------------ positions (liquidation, ADL)

    def _on_position_update(self, p: PositionUpdateItem) -> None:
        if p.sid != self.subaccount_id:
            return
        try:
            size = dec(p.sz, "sz")
        except ParseError as e:
            self.stats["malformed"] += 1
            log.error("Ethereal: malformed PositionUpdate dropped: %s", e)
            return
        self._venue_pos[p.s] = -size if p.sd == 1 else size
        self._schedule_position_check(p.s)

    def _on_liquidation(self, d: SubaccountLiquidationData) -> None:
        if d.sid != self.subaccount_id:
            return
        self.stats["liquidations"] += 1
        for item in d.d:
            log.error("Ethereal: subaccount LIQUIDATED in %s: %s at %s", item.s, item.sz, item.px)
            try:
                self._liq_px[item.s] = dec(item.px, "px")
            except ParseError:
                pass
            self._schedule_position_check(item.s, delay_s=0.0)

    def _local_position(self, instrument_id) -> Decimal:
        return sum((Decimal(str(p.signed_qty)) for p in self.cache.positions_open(instrument_id=instrument_id)),
                   Decimal(0))

    def _schedule_position_check(self, symbol: str, delay_s: float | None = None) -> None:
        """Compare the venue's position in ``symbol`` with Nautilus's after ``delay_s`` (debounced:
        normal fills also produce PositionUpdates, usually before the OrderFill is applied)."""
        task = self._pos_checks.get(symbol)
        if task is not None and not task.done():
            return
        delay = self.eth.position_check_delay_s if delay_s is None else delay_s
        self._pos_checks[symbol] = self.create_task(self._check_position(symbol, delay), f"ethereal_pos_{symbol}")

    async def _check_position(self, symbol: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        inst = self.provider.instrument_for_symbol(symbol)
        if inst is None:
            return
        self.stats["position_checks"] += 1
        if symbol in self._venue_pos and self._venue_pos[symbol] == self._local_position(inst.id) \
                and symbol not in self._liq_px:
            return  # the stream says the positions agree
        try:
            await self._import_fills(inst)
            venue = await self._venue_position(inst)
        except Exception as e:
            log.error("Ethereal position check for %s failed: %r", symbol, e)
            return
        await asyncio.sleep(0.05)  # let the reported fills reach the cache
        local = self._local_position(inst.id)
        liq_px = self._liq_px.pop(symbol, None)
        if venue == local:
            return
        self.stats["position_mismatches"] += 1
        if liq_px is None:
            log.error("Ethereal %s: venue position %s but Nautilus has %s after importing the venue's fills; "
                      "reconcile (restart) to align", symbol, venue, local)
            return
        log.error("Ethereal %s: venue position %s, Nautilus %s: the venue's fills do not explain the "
                  "liquidation; an inferred external fill at the liquidation price %s aligns them",
                  symbol, venue, local, liq_px)
        diff = venue - local
        now = self.clock.timestamp_ns()
        vid = f"INFERRED-{symbol}-{now}"
        self._report_external(inst, vid, [dict(id=vid, side=0 if diff > 0 else 1, filled=abs(diff), price=liq_px,
                                               fee=Decimal(0), maker=False, t=now // MS)])

    async def _venue_position(self, inst) -> Decimal:
        rows = await self.http.all_pages("position", "V1PositionGetParametersQuery", "PageOfPositionDtos",
                                         subaccount_id=self.subaccount_id, open=True)
        size = Decimal(0)
        for p in rows:
            if str(p.product_id) == inst.info["product_id"]:
                s = Decimal(str(p.size))
                size += -s if int(p.side) == 1 else s
        return size

    async def _import_fills(self, inst) -> None:
        """Fetch the product's fills since the last known fill; apply those of our orders and report
        those of unknown (venue-generated) orders as external orders."""
        fills = await self._fills_since(self._fill_watermark_ms - FILL_QUERY_SLACK_MS, inst)
        external: dict[str, list] = {}
        for f in sorted(fills, key=lambda x: x.created_at):
            fid = str(f.id)
            if fid in self._seen_fills:
                continue
            coid = self._lookup(str(f.order_id), f.client_order_id)
            if coid is not None and self.cache.order(coid) is not None:
                self._on_fill(_fill_item(f), recovered=True)
            else:
                external.setdefault(str(f.order_id), []).append(dict(
                    id=fid, side=int(f.side), filled=Decimal(str(f.filled)), price=Decimal(str(f.price)),
                    fee=Decimal(str(f.fee_usd)), maker=bool(f.is_maker), t=f.created_at))
        for order_id, rows in external.items():
            self._report_external(inst, order_id, rows)

    def _report_external(self, inst, order_id: str, rows: list[dict]) -> None:
        total = sum((r["filled"] for r in rows), Decimal(0))
        if total <= 0:
            return
        avg = sum((r["filled"] * r["price"] for r in rows), Decimal(0)) / total
        side = VENUE_TO_SIDE[rows[0]["side"]]
        now = self.clock.timestamp_ns()
        report = OrderStatusReport(
            account_id=self.account_id, instrument_id=inst.id, venue_order_id=VenueOrderId(order_id),
            order_side=side, order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
            order_status=OrderStatus.FILLED, quantity=qty(total, inst.size_precision),
            filled_qty=qty(total, inst.size_precision), ts_accepted=rows[0]["t"] * MS, ts_last=rows[-1]["t"] * MS,
            ts_init=now, avg_px=avg,
        )
        fills = [FillReport(
            account_id=self.account_id, instrument_id=inst.id, venue_order_id=VenueOrderId(order_id),
            trade_id=TradeId(r["id"]), order_side=side, last_qty=qty(r["filled"], inst.size_precision),
            last_px=fill_price(r["price"], inst.price_precision), commission=money(r["fee"], self.currency),
            liquidity_side=LiquiditySide.MAKER if r["maker"] else LiquiditySide.TAKER, ts_event=r["t"] * MS,
            ts_init=now,
        ) for r in rows]
        for r in rows:
            self._seen_fills.add(r["id"])
            self._fill_watermark_ms = max(self._fill_watermark_ms, r["t"])
        self.stats["external_fills"] += len(rows)
        log.warning("Ethereal %s: external order %s (%s %s @ %s, %d fills) reported to Nautilus",
                    inst.id, order_id, side.name, total, avg, len(rows))
        self._handle_report(report, fills)
        self._balance_dirty.set()

    async def _resync_open_orders(self) -> None:
        for order in self.cache.orders_open(venue=ETHEREAL_VENUE):
            report = await self._order_report_by_cloid(order.client_order_id)
            if report is not None:
                self._handle_report(report)

    # ------------------------------------------------------------------ reconciliation

    def _order_report(self, o) -> OrderStatusReport | None:
        inst = self.provider.instrument_for_product_id(str(o.product_id))
        if inst is None:
            return None
        status = order_status(getattr(o.status, "value", o.status), o.quantity, o.available_quantity, o.filled)
        tif_v = getattr(o.time_in_force, "value", o.time_in_force) if o.time_in_force else None
        is_limit = getattr(o.type, "value", o.type) == "LIMIT"
        coid = self._by_cloid.get(o.client_order_id) if o.client_order_id else None
        expire = o.expires_at * 1_000_000_000 if is_limit and tif_v == "GTD" and o.expires_at else None
        return OrderStatusReport(
            account_id=self.account_id, instrument_id=inst.id, venue_order_id=VenueOrderId(str(o.id)),
            order_side=VENUE_TO_SIDE[int(o.side)], order_type=OrderType.LIMIT if is_limit else OrderType.MARKET,
            time_in_force=TIF_TO_NAUTILUS.get(tif_v, TimeInForce.IOC) if is_limit else TimeInForce.IOC,
            order_status=STATUS_TO_NAUTILUS[status], quantity=qty(o.quantity, inst.size_precision),
            filled_qty=qty(o.filled, inst.size_precision), ts_accepted=o.created_at * MS,
            ts_last=o.updated_at * MS, ts_init=self.clock.timestamp_ns(), client_order_id=coid,
            price=price(o.price, inst.price_precision) if is_limit else None,
            post_only=bool(o.post_only), reduce_only=bool(o.reduce_only),
            expire_time=expire,
        )

    def _fill_report(self, f) -> FillReport | None:
        inst = self.provider.instrument_for_product_id(str(f.product_id))
        if inst is None:
            return None
        coid = self._by_cloid.get(f.client_order_id) if f.client_order_id else None
        return FillReport(
            account_id=self.account_id, instrument_id=inst.id, venue_order_id=VenueOrderId(str(f.order_id)),
            trade_id=TradeId(str(f.id)), order_side=VENUE_TO_SIDE[int(f.side)],
            last_qty=qty(f.filled, inst.size_precision), last_px=fill_price(f.price, inst.price_precision),
            commission=money(f.fee_usd, self.currency), liquidity_side=LiquiditySide.MAKER if f.is_maker else LiquiditySide.TAKER,
            ts_event=f.created_at * MS, ts_init=self.clock.timestamp_ns(), client_order_id=coid,
        )

    def _position_report(self, p) -> PositionStatusReport | None:
        inst = self.provider.instrument_for_product_id(str(p.product_id))
        if inst is None:
            return None
        size = Decimal(str(p.size))
        side = VENUE_TO_POSITION_SIDE[int(p.side)] if size > 0 else PositionSide.FLAT
        avg = (abs(Decimal(str(p.cost))) / size) if size > 0 else None
        return PositionStatusReport(
            account_id=self.account_id, instrument_id=inst.id, position_side=side,
            quantity=qty(size, inst.size_precision), ts_last=p.updated_at * MS, ts_init=self.clock.timestamp_ns(),
            avg_px_open=avg,
        )

    async def _orders(self, lookback_mins: int | None, open_only: bool = False) -> list:
        working = await self.http.all_pages("order", "V1OrderGetParametersQuery", "PageOfOrderDtos",
                                            subaccount_id=self.subaccount_id, is_working=True)
        if open_only:
            return working
        since = int((time.time() - 60 * (lookback_mins or self.eth.fill_lookback_mins)) * 1000)
        recent = await self.http.all_pages("order", "V1OrderGetParametersQuery", "PageOfOrderDtos",
                                           subaccount_id=self.subaccount_id, created_after=since)
        seen = {o.id for o in working}
        return working + [o for o in recent if o.id not in seen]

    async def _generate_mass_status(self, lookback_mins: int | None) -> ExecutionMassStatus:
        ms = ExecutionMassStatus(self.client_id, self.account_id, ETHEREAL_VENUE, self.clock.timestamp_ns())
        orders = [r for r in map(self._order_report, await self._orders(lookback_mins)) if r is not None]
        since = int((time.time() - 60 * (lookback_mins or self.eth.fill_lookback_mins)) * 1000)
        fills_raw = await self.http.all_pages("order/fill", "V1OrderFillGetParametersQuery", "PageOfOrderFillDtos",
                                              subaccount_id=self.subaccount_id, created_after=since)
        fills = [r for r in map(self._fill_report, fills_raw) if r is not None]
        positions_raw = await self.http.all_pages("position", "V1PositionGetParametersQuery", "PageOfPositionDtos",
                                                  subaccount_id=self.subaccount_id, open=True)
        positions = [r for r in map(self._position_report, positions_raw) if r is not None]
        ms.add_order_reports(orders)
        ms.add_fill_reports(fills)
        ms.add_position_reports(positions)
        for f in fills_raw:  # fills already known must not be replayed from the stream
            self._seen_fills.add(str(f.id))
            self._fill_watermark_ms = max(self._fill_watermark_ms, f.created_at)
            coid = self._by_cloid.get(f.client_order_id) if f.client_order_id else None
            if coid is not None:
                self._state(coid).fill_ids.add(str(f.id))
        log.info("Ethereal reconciliation: %d orders, %d fills, %d positions", len(orders), len(fills), len(positions))
        return ms

    async def _order_report_by_cloid(self, coid: ClientOrderId) -> OrderStatusReport | None:
        found = await self.http.list_orders(subaccount_id=self.subaccount_id, client_order_id=venue_cloid(coid))
        return self._order_report(found[0]) if found else None

    async def _generate_order_status_report(self, command) -> OrderStatusReport | None:
        if command.venue_order_id is not None:
            o = await self.http.get_order(id=command.venue_order_id.value)
            return self._order_report(o)
        if command.client_order_id is not None:
            return await self._order_report_by_cloid(command.client_order_id)
        return None

    async def _generate_order_status_reports(self, command) -> list[OrderStatusReport]:
        orders = await self._orders(None, open_only=bool(command.open_only))
        reports = [r for r in map(self._order_report, orders) if r is not None]
        if command.instrument_id is not None:
            reports = [r for r in reports if r.instrument_id == command.instrument_id]
        return reports

    async def _generate_fill_reports(self, command) -> list[FillReport]:
        kw = {"subaccount_id": self.subaccount_id}
        if command.start is not None:
            kw["created_after"] = int(command.start) // MS
        fills = await self.http.all_pages("order/fill", "V1OrderFillGetParametersQuery", "PageOfOrderFillDtos", **kw)
        reports = [r for r in map(self._fill_report, fills) if r is not None]
        if command.instrument_id is not None:
            reports = [r for r in reports if r.instrument_id == command.instrument_id]
        if command.venue_order_id is not None:
            reports = [r for r in reports if r.venue_order_id == command.venue_order_id]
        return reports

    async def _generate_position_status_reports(self, command) -> list[PositionStatusReport]:
        positions = await self.http.all_pages("position", "V1PositionGetParametersQuery", "PageOfPositionDtos",
                                              subaccount_id=self.subaccount_id, open=True)
        reports = [r for r in map(self._position_report, positions) if r is not None]
        if command.instrument_id is not None:
            reports = [r for r in reports if r.instrument_id == command.instrument_id]
        return reports


def _reject_reason(e: EtherealHttpError) -> str:
    return f"Ethereal HTTP {e.status}: {e.body}"


def _fill_item(f) -> OrderFillItem:
    """A REST ``OrderFillDto`` as the stream's fill item."""
    return OrderFillItem(
        id=str(f.id), oid=str(f.order_id), px=str(f.price), sz=str(f.filled), typ=str(getattr(f.type, "value", f.type)),
        sd=int(f.side), s="", sid=str(f.subaccount_id), fee=str(f.fee_usd), m=bool(f.is_maker),
        t=f.created_at, ro=bool(f.reduce_only), cloid=f.client_order_id,
    )

