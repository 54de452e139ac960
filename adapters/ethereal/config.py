"""Configs of the Ethereal data and execution clients (frozen msgspec structs).

Nautilus 2's ``DataClientConfig`` / ``ExecutionClientConfig`` are Rust-backed and drop unknown
keyword arguments, so the Ethereal settings live in these structs and are handed to the factories
(``EtherealDataClientFactory(config)``); the node still receives a plain ``DataClientConfig()`` /
``ExecutionClientConfig()``. :meth:`validate` turns bad settings into :class:`EtherealConfigError`
messages naming the field and value.
"""

from __future__ import annotations

import re

import msgspec
from nautilus_trader.model import AccountId

from adapters.ethereal.common.constants import ENV_PRIVATE_KEY
from adapters.ethereal.common.enums import EtherealNetwork
from adapters.ethereal.common.urls import EtherealUrls, urls_for

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class EtherealConfigError(ValueError):
    """A config field has an invalid value (message names field and value)."""


class _Common(msgspec.Struct, frozen=True, kw_only=True):
    network: str = "testnet"  # "mainnet" | "testnet"
    rest_url: str | None = None  # override, e.g. http://127.0.0.1:8080 for the mock venue
    ws_url: str | None = None  # override (without /v1/stream)
    tv_url: str | None = None  # price history host override (defaults to rest_url when that is set)
    tickers: list[str] | None = None  # products to load, e.g. ["BTCUSD", "ETHUSD"]; None = all
    http_timeout_s: int = 10
    http_max_retries: int = 5
    ws_backoff_initial_s: float = 0.5
    ws_backoff_max_s: float = 30.0
    settlement_currency: str = "USDE"  # Nautilus currency of USDe ("USDT" = the legacy mapping)

    def check_currency(self) -> None:
        if self.settlement_currency.upper() not in ("USDE", "USDT"):
            raise EtherealConfigError(f"settlement_currency={self.settlement_currency!r}: expected 'USDE' or 'USDT'")

    def network_enum(self) -> EtherealNetwork:
        try:
            return EtherealNetwork(self.network)
        except ValueError:
            raise EtherealConfigError(f"network={self.network!r}: expected 'mainnet' or 'testnet'") from None

    def urls(self) -> EtherealUrls:
        """Base URLs (network defaults with the overrides applied)."""
        return urls_for(self.network_enum(), rest=self.rest_url, tv=self.tv_url, ws=self.ws_url)


class EtherealDataClientConfig(_Common, frozen=True, kw_only=True):
    """Market data client settings.

    ``instrument_refresh_mins``: reload products this often (0 disables) and republish changes.
    """

    instrument_refresh_mins: int = 60

    def validate(self) -> EtherealDataClientConfig:
        self.network_enum()
        self.check_currency()
        if self.instrument_refresh_mins < 0:
            raise EtherealConfigError(f"instrument_refresh_mins={self.instrument_refresh_mins}: must be >= 0")
        return self


class EtherealExecClientConfig(_Common, frozen=True, kw_only=True):
    """Execution client settings.

    * ``account_address``: the wallet that owns the subaccount (0x address).
    * ``subaccount``: subaccount name as text (``"primary"``) or its bytes32 hex.
    * ``linked_signer``: the key is a linked signer of that subaccount (orders are sent with
      ``sender`` = signer address); the main wallet key is then not needed at all.
    * ``private_key_env`` / ``private_key_file``: where the signing key comes from (see
      :mod:`adapters.ethereal.common.credentials`).
    * ``account_id``: Nautilus account id (``ETHEREAL-<tag>``).
    * ``fill_lookback_mins``: fills fetched for reconciliation at start-up.
    * ``order_lookup_attempts`` / ``order_lookup_backoff_s``: an order whose submission outcome is
      unknown (5xx, timeout, unknown result code) is looked up by client order id this many times,
      waiting ``backoff`` s before the first and doubling (at most 8 s), before a cancel by client
      order id decides.
    * ``position_check_delay_s``: after a ``PositionUpdate`` the venue and Nautilus positions are
      compared this much later (normal fills settle first).
    """

    account_address: str = ""
    subaccount: str = "primary"
    linked_signer: bool = False
    private_key_env: str = ENV_PRIVATE_KEY
    private_key_file: str | None = None
    account_id: str = "ETHEREAL-001"
    fill_lookback_mins: int = 24 * 60
    balance_poll_secs: float = 30.0
    order_lookup_attempts: int = 6
    order_lookup_backoff_s: float = 0.5
    position_check_delay_s: float = 1.0

    def validate(self) -> EtherealExecClientConfig:
        self.network_enum()
        self.check_currency()
        if not _ADDRESS.match(self.account_address or ""):
            raise EtherealConfigError(
                f"account_address={self.account_address!r}: expected a 0x-prefixed 40-hex-digit wallet address"
            )
        if self.order_lookup_attempts < 1 or self.order_lookup_backoff_s <= 0:
            raise EtherealConfigError(
                f"order_lookup_attempts={self.order_lookup_attempts}, order_lookup_backoff_s="
                f"{self.order_lookup_backoff_s}: need at least 1 attempt and a positive backoff"
            )
        if self.position_check_delay_s < 0:
            raise EtherealConfigError(f"position_check_delay_s={self.position_check_delay_s}: must be >= 0")
        if not self.subaccount:
            raise EtherealConfigError("subaccount: must not be empty")
        if not self.subaccount.startswith("0x") and len(self.subaccount.encode()) > 32:
            raise EtherealConfigError(f"subaccount={self.subaccount!r}: a name is at most 32 bytes")
        try:
            aid = AccountId(self.account_id)
        except Exception:
            raise EtherealConfigError(f"account_id={self.account_id!r}: expected '<ISSUER>-<tag>'") from None
        if aid.value.split("-", 1)[0] != "ETHEREAL":
            raise EtherealConfigError(f"account_id={self.account_id!r}: issuer must be ETHEREAL")
        return self
