"""Signing keys: environment or chmod-600 file, clear errors, never shown."""

from __future__ import annotations

import logging
import os

import pytest
from eth_account import Account

from adapters.ethereal.common.credentials import CredentialError, load_signing_key, parse_private_key
from adapters.ethereal.config import EtherealExecClientConfig
from nautilus_app.testkit.ethereal_mock.testkit import account

KEY = account()["mainKeyForTests"]
ADDR = Account.from_key(KEY).address


def test_key_from_env_and_never_in_repr():
    k = load_signing_key(environ={"ETHEREAL_PRIVATE_KEY": "  " + KEY + "\n"})
    assert k.address == ADDR and k.source == "env:ETHEREAL_PRIVATE_KEY"
    for text in (repr(k), str(k), f"{k}", repr([k])):
        assert KEY[2:] not in text and KEY[2:].upper() not in text
    assert k.secret() == KEY


def test_key_from_file_requires_0600(tmp_path):
    p = tmp_path / "key"
    p.write_text(KEY[2:])  # without 0x is fine
    os.chmod(p, 0o600)
    assert load_signing_key(key_file=p).address == ADDR
    assert load_signing_key(environ={"ETHEREAL_PRIVATE_KEY_FILE": str(p)}).address == ADDR
    os.chmod(p, 0o644)
    with pytest.raises(CredentialError, match=r"permissions are 0644.*chmod 600") as e:
        load_signing_key(key_file=p)
    assert KEY[2:] not in str(e.value)
    with pytest.raises(CredentialError, match="does not exist"):
        load_signing_key(key_file=tmp_path / "nope")


def test_missing_and_malformed_keys_are_clear_errors():
    with pytest.raises(CredentialError, match="no Ethereal signing key: set ETHEREAL_PRIVATE_KEY"):
        load_signing_key(environ={})
    with pytest.raises(CredentialError, match="env:MY_KEY: private key is malformed .* got 10 characters"):
        load_signing_key(env_var="MY_KEY", environ={"MY_KEY": "0x12345678"})
    with pytest.raises(CredentialError, match="out of range"):
        parse_private_key("0x" + "0" * 64, "t")
    with pytest.raises(CredentialError, match="out of range"):
        parse_private_key("0x" + "f" * 64, "t")
    bad = "0x" + "g" * 64
    with pytest.raises(CredentialError) as e:
        parse_private_key(bad, "t")
    assert bad not in str(e.value)


def test_exec_client_fails_at_startup_without_key(monkeypatch, caplog):
    from nautilus_trader.common import Clock
    from nautilus_trader.config import ExecutionClientConfig
    from nautilus_trader.model import TraderId

    from adapters.ethereal.execution import EtherealExecutionClient

    monkeypatch.delenv("ETHEREAL_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("ETHEREAL_PRIVATE_KEY_FILE", raising=False)
    cfg = EtherealExecClientConfig(account_address=ADDR, rest_url="http://127.0.0.1:1")
    with pytest.raises(CredentialError, match="ETHEREAL_PRIVATE_KEY"):
        EtherealExecutionClient(name="ETHEREAL", config=ExecutionClientConfig(), cache=None, clock=Clock.new_test(),
                                trader_id=TraderId("T-001"), eth_config=cfg)
    monkeypatch.setenv("ETHEREAL_PRIVATE_KEY", KEY)
    with caplog.at_level(logging.DEBUG):
        c = EtherealExecutionClient(name="ETHEREAL", config=ExecutionClientConfig(), cache=None,
                                    clock=Clock.new_test(), trader_id=TraderId("T-001"), eth_config=cfg)
    assert c.sender == ADDR
    assert KEY[2:] not in caplog.text
    assert KEY[2:] not in repr(vars(c))
