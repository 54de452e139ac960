"""Configs of the Ethereal data and execution clients (frozen msgspec structs).

Nautilus 2's ``DataClientConfig`` / ``ExecutionClientConfig`` are Rust-backed and drop unknown
keyword arguments, so the Ethereal settings live in these structs and are handed to the factories
(``EtherealDataClientFactory(config)``); the node still receives a plain ``DataClientConfig()`` /
``ExecutionClientConfig()``.

Ranges and formats are msgspec constraints on the fields (the platform's one config idiom, as the
run configs in ``nautilus_app/config.py``); they apply when a config is decoded (``msgspec.convert``)
and when the factories call :meth:`validate` on one built in Python, which also checks the rules
across fields. Errors are :class:`EtherealConfigError` messages naming the field and value.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from nautilus_trader.model import AccountId

from adapters.ethereal.common.constants import ENV_PRIVATE_KEY
from adapters.ethereal.common.enums import EtherealNetwork
from adapters.ethereal.common.urls import EtherealUrls, urls_for

#: A wallet address: 0x and 40 hex digits ("" = not set, refused by :meth:`EtherealExecClientConfig.validate`).
Address = Annotated[str, msgspec.Meta(pattern=r"^(0x[0-9a-fA-F]{40})?$", description="0x + 40 hex digits")]
Seconds = Annotated[float, msgspec.Meta(ge=0.0, description="seconds")]


class EtherealConfigError(ValueError):
    """A config field has an invalid value (message names field and value)."""


class _Common(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings shared by the data and execution clients.

    Attributes:
        network: ``"mainnet"`` or ``"testnet"``.
        rest_url / ws_url / tv_url: Overrides of the network's REST base (e.g. ``http://127.0.0.1:8080``
            for the mock venue), websocket base (without ``/v1/stream``) and price-history host
            (default: ``rest_url`` when that is set).
        tickers: Products to load, e.g. ``["BTCUSD", "ETHUSD"]``; None = all.
        http_timeout_s: REST request timeout, seconds. http_max_retries: retries of a failed request.
        ws_backoff_initial_s / ws_backoff_max_s: websocket reconnect backoff, seconds (doubling).
        settlement_currency: Nautilus currency of USDe: ``"USDE"`` or ``"USDT"`` (the legacy mapping),
            any case.
    """

    network: Literal["mainnet", "testnet"] = "testnet"
    rest_url: str | None = None
    ws_url: str | None = None
    tv_url: str | None = None
    tickers: list[str] | None = None
    http_timeout_s: int = 10
    http_max_retries: int = 5
    ws_backoff_initial_s: float = 0.5
    ws_backoff_max_s: float = 30.0
    settlement_currency: Annotated[str, msgspec.Meta(pattern=r"^(?i:usde|usdt)$")] = "USDE"

    def check_fields(self) -> None:
        """Every field against its declared type and constraints (a struct built in Python skips them).

        Raises:
            EtherealConfigError: ``<field>=<value>: expected ...``.
        """
        try:
            msgspec.convert(msgspec.structs.asdict(self), type(self), strict=False)  # 10.0 for an int: as before
        except msgspec.ValidationError as e:
            what, _, where = str(e).partition(" - at `$.")
            name = where.rstrip("`").split("[")[0].split(".")[0]
            if not name:
                raise EtherealConfigError(str(e)) from None
            raise EtherealConfigError(f"{name}={getattr(self, name)!r}: {_expected(name, what)}") from None

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


#: Messages for fields whose msgspec wording would be cryptic (the rest: msgspec's "Expected ...").
_EXPECTED = {
    "network": "expected 'mainnet' or 'testnet'",
    "settlement_currency": "expected 'USDE' or 'USDT'",
    "account_address": "expected a 0x-prefixed 40-hex-digit wallet address",
    "subaccount": "must not be empty",
}


def _expected(name: str, what: str) -> str:
    return _EXPECTED.get(name) or (what[:1].lower() + what[1:])


class EtherealDataClientConfig(_Common, frozen=True, kw_only=True):
    """Market data client settings.

    ``instrument_refresh_mins``: reload products this often, minutes (0 disables), and republish changes.
    """

    instrument_refresh_mins: Annotated[int, msgspec.Meta(ge=0, description="minutes, 0 = off")] = 60

    def validate(self) -> EtherealDataClientConfig:
        """This config, its fields checked (:meth:`check_fields`). Raises :class:`EtherealConfigError`."""
        self.check_fields()
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

    account_address: Address = ""
    subaccount: Annotated[str, msgspec.Meta(min_length=1)] = "primary"
    linked_signer: bool = False
    private_key_env: str = ENV_PRIVATE_KEY
    private_key_file: str | None = None
    account_id: str = "ETHEREAL-001"
    fill_lookback_mins: int = 24 * 60
    balance_poll_secs: float = 30.0
    order_lookup_attempts: Annotated[int, msgspec.Meta(ge=1)] = 6
    order_lookup_backoff_s: Annotated[float, msgspec.Meta(gt=0.0, description="seconds")] = 0.5
    position_check_delay_s: Seconds = 1.0

    def validate(self) -> EtherealExecClientConfig:
        """This config, its fields (:meth:`check_fields`) and the rules across them checked.

        Raises:
            EtherealConfigError: the message names the field and value.
        """
        self.check_fields()
        if not self.account_address:
            raise EtherealConfigError(f"account_address={self.account_address!r}: {_EXPECTED['account_address']}")
        if not self.subaccount.startswith("0x") and len(self.subaccount.encode()) > 32:
            raise EtherealConfigError(f"subaccount={self.subaccount!r}: a name is at most 32 bytes")
        try:
            aid = AccountId(self.account_id)
        except Exception:
            raise EtherealConfigError(f"account_id={self.account_id!r}: expected '<ISSUER>-<tag>'") from None
        if aid.value.split("-", 1)[0] != "ETHEREAL":
            raise EtherealConfigError(f"account_id={self.account_id!r}: issuer must be ETHEREAL")
        return self
