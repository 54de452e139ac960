"""Typed messages of the Ethereal v2 WebSocket stream (``wss://ws2.ethereal.trade/v1/stream``).

Shapes: docs.ethereal.trade "WebSockets" and the machine-readable schema of the community Rust SDK
(github.com/8ball030/ethereal_rust_sdk ``ws_messages.json``); the Python SDK 0.2.1 only routes on
the ``e`` key and resolves acks carrying ``ok``. Every server event is
``{"e": <event>, "t": <server ms>, "data": {...}}``; decimals are strings, times epoch ms, sides
0 = BUY / 1 = SELL.

Decoding is strict (:mod:`msgspec`): a missing required key or a wrong type raises
:class:`WsMessageError` naming the event and the problem, and the adapter drops that message
without touching its state.
"""

from __future__ import annotations

import msgspec


class WsMessageError(Exception):
    """A stream message is not valid JSON or does not match the documented schema."""


class Level(msgspec.Struct, array_like=True, frozen=True):
    """One book level ``[price, quantity]`` (decimal strings; quantity "0" deletes the level)."""

    price: str
    qty: str


class L2BookData(msgspec.Struct, frozen=True):
    """``L2Book.data``: ``s`` symbol, ``t`` book time ms, ``pt`` previous book time ms (absent on
    the first message), ``a``/``b`` ask/bid levels. The first message after subscribing is the full
    book (up to 100 levels a side); later ones are diffs with absolute quantities."""

    s: str
    t: int
    a: list[Level]
    b: list[Level]
    pt: int | None = None


class TickerData(msgspec.Struct, frozen=True):
    """``Ticker.data`` (about once a second): best bid/ask with sizes, mark price, open interest,
    1 h funding rate ``fr1h`` (fraction), 24 h volume."""

    s: str
    t: int
    bidPx: str | None = None  # noqa: N815 - venue field names
    askPx: str | None = None  # noqa: N815
    bidAmt: str | None = None  # noqa: N815
    askAmt: str | None = None  # noqa: N815
    markPx: str | None = None  # noqa: N815
    markPx24h: str | None = None  # noqa: N815
    oi: str | None = None
    fr1h: str | None = None
    vol24h: str | None = None


class TradeFillItem(msgspec.Struct, frozen=True):
    """One public trade: ``id`` (uuid), ``px``, ``sz``, ``sd`` taker side (0 buy, 1 sell), ``sids``."""

    id: str
    px: str
    sz: str
    sd: int
    sids: list[str] = []


class TradeFillData(msgspec.Struct, frozen=True):
    """``TradeFill.data``: ``s`` symbol, ``t`` ms, ``d`` trades."""

    s: str
    t: int
    d: list[TradeFillItem]


class OrderUpdateItem(msgspec.Struct, frozen=True):
    """One private order update (keys as documented): ``id`` venue order id, ``cloid`` client id,
    ``otyp`` MARKET/LIMIT, ``qty``, ``aqty`` available (remaining), ``fill`` filled, ``px`` limit
    price, ``sd`` side, ``s`` symbol, ``sid`` subaccount id, ``sn`` sender, ``st`` status, ``t``
    update time ms, ``ro`` reduce only, ``cl`` close, ``tif``, ``et`` expiry s, ``po`` post only,
    ``tr`` trigger state."""

    id: str
    otyp: str
    qty: str
    aqty: str
    fill: str
    sd: int
    s: str
    sid: str
    st: str
    t: int
    ro: bool = False
    cl: bool = False
    et: int = 0
    tr: str = ""
    sn: str = ""
    cloid: str | None = None
    px: str | None = None
    tif: str | None = None
    po: bool | None = None
    spx: str | None = None


class OrderUpdateData(msgspec.Struct, frozen=True):
    t: int
    d: list[OrderUpdateItem]


class OrderFillItem(msgspec.Struct, frozen=True):
    """One private fill: ``id`` fill id, ``oid`` order id, ``cloid``, ``px``, ``sz``, ``typ``,
    ``sd`` side, ``s`` symbol, ``sid`` subaccount, ``ro``, ``fee`` (USD, positive = paid),
    ``m`` maker flag, ``t`` ms."""

    id: str
    oid: str
    px: str
    sz: str
    typ: str
    sd: int
    s: str
    sid: str
    fee: str
    m: bool
    t: int
    ro: bool = False
    cloid: str | None = None


class OrderFillData(msgspec.Struct, frozen=True):
    t: int
    d: list[OrderFillItem]


class PositionUpdateItem(msgspec.Struct, frozen=True):
    """One position: ``id``, ``sid`` subaccount, ``s`` symbol, ``sd`` side (0 long, 1 short), ``sz``
    size, ``cost``, ``rpnl`` / ``fpnl`` realised / funding PnL, ``fee``, ``lpx`` liquidation price."""

    id: str
    sid: str
    s: str
    sd: int
    sz: str
    cost: str
    rpnl: str
    fpnl: str
    fee: str
    lpx: str | None = None


class PositionUpdateData(msgspec.Struct, frozen=True):
    t: int
    d: list[PositionUpdateItem]


class SubaccountLiquidationItem(msgspec.Struct, frozen=True):
    """One liquidated position: ``s`` symbol, ``px`` price, ``sz`` size."""

    s: str
    px: str
    sz: str


class SubaccountLiquidationData(msgspec.Struct, frozen=True):
    """``SubaccountLiquidation.data``: ``sid`` subaccount, ``t`` ms, ``d`` liquidated positions."""

    sid: str
    t: int
    d: list[SubaccountLiquidationItem]


class Envelope(msgspec.Struct, frozen=True):
    """Outer frame: ``e`` event name, ``t`` server time ms, raw ``data``."""

    e: str
    t: int
    data: msgspec.Raw


DATA_TYPES: dict[str, type] = {
    "L2Book": L2BookData,
    "Ticker": TickerData,
    "TradeFill": TradeFillData,
    "OrderUpdate": OrderUpdateData,
    "OrderFill": OrderFillData,
    "PositionUpdate": PositionUpdateData,
    "SubaccountLiquidation": SubaccountLiquidationData,
}

_envelope_decoder = msgspec.json.Decoder(Envelope)
_decoders = {name: msgspec.json.Decoder(t) for name, t in DATA_TYPES.items()}


def decode_event(message: dict | bytes | str) -> tuple[str, int, object] | None:
    """Decode one server event into ``(event, server_ms, typed data)``.

    Returns ``None`` for events this adapter does not consume. Raises :class:`WsMessageError`
    (with the event name and msgspec's path, e.g. ``$.d[0].px``) for malformed messages.
    """
    try:
        raw = message if isinstance(message, (bytes, str)) else msgspec.json.encode(message)
        env = _envelope_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as e:
        raise WsMessageError(f"malformed stream frame: {e}; frame starts {str(message)[:120]!r}") from None
    dec = _decoders.get(env.e)
    if dec is None:
        return None
    try:
        return env.e, env.t, dec.decode(env.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise WsMessageError(f"malformed {env.e} message: {e}") from None
