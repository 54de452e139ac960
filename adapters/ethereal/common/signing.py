"""EIP-712 signing of Ethereal trade orders and cancels (with ``eth-account``).

Why our own code and not the SDK's ``sign_order``: the SDK signs through its ``ChainClient``, whose
constructor opens a web3 HTTP provider and queries ``eth_chainId`` from an RPC node, so it cannot be
built without a live chain RPC (and it needs the main wallet's key). Signing itself is off-chain;
this module does exactly what ``ethereal/rest/order.py::sign_order`` / ``sign_cancel_order`` do
(same message transforms, same domain and type strings from ``GET /v1/rpc/config``) with
``eth_account.messages.encode_typed_data`` + ``Account.sign_message``. The tests check that the
signatures are byte-identical to the SDK's own functions and that the signer recovers.

Message shapes (type strings served by ``/v1/rpc/config``; mainnet/testnet values, also the
``TradeOrder`` struct of the ExchangeGateway ABI shipped in the SDK):

* ``TradeOrder``: ``address sender,bytes32 subaccount,uint128 quantity,uint128 price,bool reduceOnly,
  uint8 side,uint8 engineType,uint32 productId,uint64 nonce,uint64 signedAt`` where quantity and
  price are decimals x 1e9 (market orders sign price 0) and productId is the product's ``onchainId``.
* ``CancelOrder``: ``address sender,bytes32 subaccount,uint64 nonce``.

The field list is always taken from the venue's config, never hard-coded, so a type change on the
venue is picked up (a field we cannot fill raises :class:`SigningError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from adapters.ethereal.common.constants import EIP712_SCALE
from adapters.ethereal.common.credentials import SigningKey

EIP712_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


class SigningError(Exception):
    """The venue's signing config is malformed or a message cannot be encoded."""


@dataclass(frozen=True, slots=True)
class Eip712Config:
    """The signing domain and the primary-type definitions from ``GET /v1/rpc/config``.

    ``domain``: ``{"name", "version", "chainId" (int), "verifyingContract"}``;
    ``types``: primary type name -> field list ``[{"name", "type"}]``.
    """

    domain: dict[str, Any]
    types: dict[str, list[dict[str, str]]]

    @classmethod
    def from_rpc_config(cls, payload: dict[str, Any]) -> Eip712Config:
        """Parse the JSON body of ``/v1/rpc/config`` (``{"domain": {...}, "signatureTypes":
        {"TradeOrder": "address sender,...", ...}}``). Raises :class:`SigningError`."""
        try:
            d = payload["domain"]
            domain = {
                "name": str(d["name"]),
                "version": str(d["version"]),
                "chainId": int(d["chainId"]),
                "verifyingContract": str(d["verifyingContract"]),
            }
            sig_types = payload["signatureTypes"]
        except (KeyError, TypeError, ValueError) as e:
            raise SigningError(f"/v1/rpc/config: malformed domain or signatureTypes ({e!r})") from None
        types = {name: parse_type_string(name, s) for name, s in sig_types.items()}
        return cls(domain=domain, types=types)


def parse_type_string(name: str, text: str) -> list[dict[str, str]]:
    """``"address sender,uint64 nonce"`` -> ``[{"name": "sender", "type": "address"}, ...]``
    (the SDK's ``ChainClient.convert_types``). Raises :class:`SigningError` on a bad entry."""
    out = []
    for part in str(text).split(","):
        bits = part.strip().rsplit(" ", 1)
        if len(bits) != 2 or not bits[0] or not bits[1]:
            raise SigningError(f"signature type {name!r}: cannot parse field {part!r} in {text!r}")
        out.append({"name": bits[1], "type": bits[0].strip()})
    return out


def scale_1e9(value: Decimal | str, field: str) -> int:
    """Decimal -> integer x 1e9, exactly; raises :class:`SigningError` if more than 9 decimals."""
    d = Decimal(str(value))
    scaled = d * EIP712_SCALE
    if scaled != scaled.to_integral_value():
        raise SigningError(f"{field}={value} has more than 9 decimals; cannot be signed exactly")
    return int(scaled)


def _coerce(field: dict[str, str], value: Any) -> Any:
    t = field["type"]
    if t.startswith("uint") or t.startswith("int"):
        return int(value)
    if t == "bool":
        return bool(value)
    return value


def typed_data(cfg: Eip712Config, primary_type: str, values: dict[str, Any]) -> dict[str, Any]:
    """The full EIP-712 structure (``types``, ``primaryType``, ``domain``, ``message``) for
    ``primary_type`` with the message fields picked from ``values``. Raises :class:`SigningError`
    when the type is unknown or a field is missing."""
    if primary_type not in cfg.types:
        raise SigningError(f"venue config has no signature type {primary_type!r}; has {sorted(cfg.types)}")
    fields = cfg.types[primary_type]
    missing = [f["name"] for f in fields if f["name"] not in values]
    if missing:
        raise SigningError(f"{primary_type}: no value for field(s) {missing}")
    message = {f["name"]: _coerce(f, values[f["name"]]) for f in fields}
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_FIELDS, primary_type: fields},
        "primaryType": primary_type,
        "domain": dict(cfg.domain),
        "message": message,
    }


def sign_typed(cfg: Eip712Config, key: SigningKey, primary_type: str, values: dict[str, Any]) -> str:
    """Sign ``values`` as ``primary_type``; returns the 65-byte signature as ``0x`` + 130 hex."""
    try:
        signable = encode_typed_data(full_message=typed_data(cfg, primary_type, values))
    except SigningError:
        raise
    except Exception as e:  # eth_abi raises various types for out-of-range values
        raise SigningError(f"{primary_type}: cannot encode message ({e})") from None
    signed = Account.sign_message(signable, key.secret())
    return "0x" + signed.signature.hex().removeprefix("0x")


def trade_order_values(data: dict[str, Any]) -> dict[str, Any]:
    """Signing values of an order from its REST payload (``SubmitOrder*DtoData`` JSON, camelCase),
    as in the SDK's ``sign_order``: quantity/price x 1e9 (price 0 for market orders),
    ``productId = onchainId``."""
    return {
        "sender": data["sender"],
        "subaccount": data["subaccount"],
        "quantity": scale_1e9(data["quantity"], "quantity"),
        "price": scale_1e9(data.get("price", 0) or 0, "price"),
        "reduceOnly": bool(data.get("reduceOnly", False)),
        "side": int(data["side"]),
        "engineType": int(data["engineType"]),
        "productId": int(data["onchainId"]),
        "nonce": int(data["nonce"]),
        "signedAt": int(data["signedAt"]),
    }


def cancel_values(data: dict[str, Any]) -> dict[str, Any]:
    """Signing values of a cancel from its REST payload (``CancelOrderDtoData`` JSON)."""
    return {"sender": data["sender"], "subaccount": data["subaccount"], "nonce": int(data["nonce"])}


def recover_signer(cfg: Eip712Config, primary_type: str, values: dict[str, Any], signature: str) -> str:
    """Address that produced ``signature`` over ``values`` (used by the mock venue and tests)."""
    signable = encode_typed_data(full_message=typed_data(cfg, primary_type, values))
    return Account.recover_message(signable, signature=signature)

