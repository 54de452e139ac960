"""EIP-712 signing of Ethereal orders and cancels.

Expected digests are computed independently here: (1) with eth-account's typed-data encoder on a
structure written out by hand from the venue's ``/v1/rpc/config`` fixture, (2) with a hand-rolled
EIP-712 hash (keccak of the type string and ABI-encoded fields), and (3) by running the official
SDK's own ``sign_order`` / ``sign_cancel_order`` (with a stand-in for its web3 chain client).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from ethereal.chain_client import ChainClient
from ethereal.models import load_models
from ethereal.rest.order import prepare_cancel_order, prepare_order, sign_cancel_order, sign_order

from adapters.ethereal.common.signing import (
    Eip712Config,
    SigningError,
    cancel_values,
    recover_signer,
    sign_typed,
    trade_order_values,
)
from nautilus_app.testkit.ethereal_mock.testkit import fixture, main_key, signer_key

RPC = fixture("rpc_config.json")
SUB = "0x" + b"primary".hex().ljust(64, "0")


def order_payload(sender: str, **over) -> dict:
    data = {"sender": sender, "subaccount": SUB, "quantity": "0.0125", "price": "95000.5", "side": 1,
            "engineType": 0, "onchainId": 1, "nonce": "1767225600123456789", "signedAt": 1767225600,
            "type": "LIMIT", "timeInForce": "GTD", "postOnly": False, "reduceOnly": True}
    data.update(over)
    return data


def hand_digest(values: dict) -> bytes:
    """EIP-712 digest without eth-account: keccak(0x1901 || domainSeparator || hashStruct)."""
    d = RPC["domain"]
    dom_type = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    dom = keccak(keccak(dom_type) + abi_encode(
        ["bytes32", "bytes32", "uint256", "address"],
        [keccak(text=d["name"]), keccak(text=d["version"]), d["chainId"], d["verifyingContract"]]))
    type_str = ("TradeOrder(address sender,bytes32 subaccount,uint128 quantity,uint128 price,bool reduceOnly,"
                "uint8 side,uint8 engineType,uint32 productId,uint64 nonce,uint64 signedAt)")
    struct = keccak(keccak(text=type_str) + abi_encode(
        ["address", "bytes32", "uint128", "uint128", "bool", "uint8", "uint8", "uint32", "uint64", "uint64"],
        [values["sender"], bytes.fromhex(values["subaccount"][2:]), values["quantity"], values["price"],
         values["reduceOnly"], values["side"], values["engineType"], values["productId"], values["nonce"],
         values["signedAt"]]))
    return keccak(b"\x19\x01" + dom + struct)


def test_trade_order_signature_matches_independent_digests_and_recovers():
    key = signer_key()
    cfg = Eip712Config.from_rpc_config(RPC)
    values = trade_order_values(order_payload(key.address))
    # x 1e9 scaling and onchainId -> productId, by hand
    assert values["quantity"] == 12_500_000 and values["price"] == 95_000_500_000_000 and values["productId"] == 1
    sig = sign_typed(cfg, key, "TradeOrder", values)
    assert sig.startswith("0x") and len(sig) == 132

    full = {  # written out by hand from the fixture, not from the adapter
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "TradeOrder": [{"name": n, "type": t} for t, n in (
                ("address", "sender"), ("bytes32", "subaccount"), ("uint128", "quantity"), ("uint128", "price"),
                ("bool", "reduceOnly"), ("uint8", "side"), ("uint8", "engineType"), ("uint32", "productId"),
                ("uint64", "nonce"), ("uint64", "signedAt"))],
        },
        "primaryType": "TradeOrder",
        "domain": RPC["domain"],
        "message": {"sender": key.address, "subaccount": SUB, "quantity": 12_500_000, "price": 95_000_500_000_000,
                    "reduceOnly": True, "side": 1, "engineType": 0, "productId": 1,
                    "nonce": 1767225600123456789, "signedAt": 1767225600},
    }
    signable = encode_typed_data(full_message=full)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert digest == hand_digest(values)
    assert Account._recover_hash(digest, signature=sig) == key.address
    assert Account.recover_message(signable, signature=sig) == key.address
    assert recover_signer(cfg, "TradeOrder", values, sig) == key.address
    # another key or another field value does not recover to the signer
    other = dict(values, price=values["price"] + 1)
    assert recover_signer(cfg, "TradeOrder", other, sig) != key.address


class _Chain:
    """Stand-in for the SDK's ChainClient (which needs a live RPC node to construct)."""

    def __init__(self, key: str) -> None:
        self.private_key = key

    def get_signature_types(self, rpc_config, primary_type):
        return ChainClient.get_signature_types(self, rpc_config, primary_type)

    def convert_types(self, s):
        return ChainClient.convert_types(self, s)

    def _get_by_alias(self, model, alias):
        return ChainClient._get_by_alias(self, model, alias)

    def sign_message(self, *a):
        return ChainClient.sign_message(self, *a)


class _SdkClient:
    def __init__(self, key: str) -> None:
        self._models = load_models("rest", "testnet")
        self.chain = _Chain(key)
        m = self._models
        self.rpc_config = m.RpcConfigDto(domain=m.DomainTypeDto(**RPC["domain"]),
                                         signatureTypes=m.SignatureTypesDto(**RPC["signatureTypes"]))


@pytest.mark.parametrize("kind", ["LIMIT", "MARKET"])
def test_signatures_identical_to_the_official_sdk(kind):
    key = main_key()
    sdk = _SdkClient(key.secret())
    cfg = Eip712Config.from_rpc_config(RPC)
    extra = {"price": "95000.5", "time_in_force": "IOC", "post_only": False} if kind == "LIMIT" else {}
    dto = asyncio.run(prepare_order(sdk, key.address, quantity="0.0125", side=0, subaccount=SUB, onchain_id=2,
                                    order_type=kind, client_order_id="16e2da4d-58ab-4453-bdb4-8e4a865c12c1",
                                    reduce_only=False, nonce="1767225600000000001", **extra))
    dto = asyncio.run(sign_order(sdk, dto))  # the SDK stamps signedAt = now
    payload = dto.data.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
    assert abs(payload["signedAt"] - time.time()) < 60
    assert sign_typed(cfg, key, "TradeOrder", trade_order_values(payload)) == dto.signature

    cancel = asyncio.run(prepare_cancel_order(sdk, sender=key.address, subaccount=SUB,
                                              order_ids=["9036443a-441a-4a66-87f2-bd5c44cdca7a"],
                                              nonce="1767225600000000002"))
    cancel = asyncio.run(sign_cancel_order(sdk, cancel))
    values = cancel_values(cancel.data.model_dump(mode="json", by_alias=True))
    ours = sign_typed(cfg, key, "CancelOrder", values)
    assert ours == cancel.signature
    assert recover_signer(cfg, "CancelOrder", values, ours) == key.address


def test_signing_errors_are_clear():
    key = main_key()
    cfg = Eip712Config.from_rpc_config(RPC)
    with pytest.raises(SigningError, match="more than 9 decimals"):
        trade_order_values(order_payload(key.address, quantity="0.0000000001"))
    with pytest.raises(SigningError, match="no value for field"):
        sign_typed(cfg, key, "TradeOrder", {"sender": key.address})
    with pytest.raises(SigningError, match="no signature type 'Nope'"):
        sign_typed(cfg, key, "Nope", {})
    with pytest.raises(SigningError, match="malformed domain"):
        Eip712Config.from_rpc_config({"domain": {"name": "x"}, "signatureTypes": {}})
    with pytest.raises(SigningError, match="cannot parse field"):
        Eip712Config.from_rpc_config({**RPC, "signatureTypes": {"TradeOrder": "address"}})
    # a type change on the venue is picked up from the config, not hard-coded
    changed = {**RPC, "signatureTypes": {**RPC["signatureTypes"], "CancelOrder": "address sender,uint64 nonce"}}
    cfg2 = Eip712Config.from_rpc_config(changed)
    assert [f["name"] for f in cfg2.types["CancelOrder"]] == ["sender", "nonce"]
