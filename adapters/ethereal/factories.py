"""Factories for ``LiveNode.builder(...).add_data_client`` / ``add_exec_client``.

Nautilus 2's Rust-backed client configs drop unknown fields, so each factory instance carries its
Ethereal config::

    from nautilus_trader.config import DataClientConfig, ExecutionClientConfig
    node = (LiveNode.builder("ETH", TraderId("TRADER-001"), Environment.LIVE)
            .add_data_client("ETHEREAL", EtherealDataClientFactory(EtherealDataClientConfig(...)),
                             DataClientConfig())
            .add_exec_client("ETHEREAL", EtherealExecClientFactory(EtherealExecClientConfig(...)),
                             ExecutionClientConfig())
            .build())

The execution factory loads and validates the signing key when the node builds the client, so a
missing or malformed key stops start-up with a :class:`CredentialError` naming its source.
"""

from __future__ import annotations

from nautilus_trader.live.clients import DataClientFactory, ExecutionClientFactory

from adapters.ethereal.common.credentials import SigningKey
from adapters.ethereal.config import EtherealDataClientConfig, EtherealExecClientConfig
from adapters.ethereal.data import EtherealDataClient
from adapters.ethereal.execution import EtherealExecutionClient


class EtherealDataClientFactory(DataClientFactory):
    """Builds :class:`EtherealDataClient` with ``eth_config``. ``last_client`` keeps the most
    recent client (handy for diagnostics and tests: ``factory.last_client.stats``)."""

    def __init__(self, eth_config: EtherealDataClientConfig) -> None:
        self.eth_config = eth_config.validate()
        self.last_client: EtherealDataClient | None = None

    def create(self, *, name, config, cache, clock) -> EtherealDataClient:  # noqa: D102
        self.last_client = EtherealDataClient(name=name, config=config, cache=cache, clock=clock,
                                              eth_config=self.eth_config)
        return self.last_client


class EtherealExecClientFactory(ExecutionClientFactory):
    """Builds :class:`EtherealExecutionClient`; ``key`` (optional) bypasses the env/file lookup."""

    def __init__(self, eth_config: EtherealExecClientConfig, key: SigningKey | None = None) -> None:
        self.eth_config = eth_config.validate()
        self.key = key
        self.last_client: EtherealExecutionClient | None = None

    def create(self, *, name, config, cache, clock, trader_id) -> EtherealExecutionClient:  # noqa: D102
        self.last_client = EtherealExecutionClient(name=name, config=config, cache=cache, clock=clock,
                                                   trader_id=trader_id, eth_config=self.eth_config, key=self.key)
        return self.last_client
