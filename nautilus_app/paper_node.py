"""Build a paper session's ``LiveNode`` (issue 22: split from paper.py).

Three nodes, by ``[paper]`` ``data_source`` / ``execution``:

* sandbox (:func:`build_node`): Nautilus's Rust Binance data client, the sandbox execution client
  (same fee model, account type, OMS and leverage as the backtest venue; ``bar_execution=True``: a
  market order submitted in ``on_bar`` fills at that bar's close), Nautilus's Redis cache database
  with load/save state. The sandbox publishes its starting balances on every connect, so a restart
  starts it from the last account state saved in Redis.
* simulated (:func:`_build_simulated`): the venue's market data (Binance, or our Ethereal data
  client) and our simulated execution client (:mod:`nautilus_app.paper_exec`: the backtest's venue
  models, book in Redis reconciled at start-up, bars driven by its sequencer).
* Ethereal paper execution (:func:`_build_ethereal`): our Ethereal data client and
  :mod:`adapters.ethereal.paper_exec`.

Nodes with Python clients have no Nautilus cache database (rc7 refuses one, NAUTILUS_NOTES §8).
Every node gets the config's strategies (:func:`make_strategies`: live instrument ids, the
backtest's order-id tags, the platform's hooks) with the session's hooks
(:mod:`nautilus_app.paper_hooks`), and the recorder actor (:mod:`nautilus_app.paper_recorder`).

``session`` arguments are the :class:`nautilus_app.paper.PaperSession` (typed ``Any``: that module
imports this one, and the modules of a package import one way, no cycle).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from nautilus_trader.model import InstrumentId

from nautilus_app.paper_events import event as _event
from nautilus_app.paper_hooks import clock_strategy, guard_strategy, sequence_strategy
from nautilus_app.paper_plan import (
    ETHEREAL_VENUE_NAME,
    LIVE_VENUE,
    PaperConfigError,
    PaperFailed,
    _ethereal_settlement,
)
from nautilus_app.paper_recorder import PaperRecorder
from nautilus_app.venue.models import venue_fees


def build_node(session: Any) -> Any:
    """Build the ``LiveNode`` (data client, sandbox execution, Redis cache, strategies, recorder)."""
    from nautilus_trader.adapters.binance import (
        BinanceDataClientConfig,
        BinanceDataClientFactory,
        BinanceEnvironment,
        BinanceProductType,
        BinanceSpotMarketDataMode,
    )
    from nautilus_trader.adapters.sandbox import (
        SandboxExecutionClientConfig,
        SandboxExecutionClientFactory,
    )
    from nautilus_trader.common import CacheConfig, Environment, FileWriterConfig, LoggerConfig, LogLevel
    from nautilus_trader.execution import MakerTakerFeeModel
    from nautilus_trader.infrastructure import RedisCacheConfig
    from nautilus_trader.live import LiveNode
    from nautilus_trader.model import AccountId, AccountType, Money, OmsType, TraderId, Venue

    s, v = session.plan.settings, session.plan.venue
    maker, taker = venue_fees(v)
    if session.simulated:
        return _build_simulated(session)
    if session.plan.product == "ethereal":
        return _build_ethereal(session)
    data_cfg = BinanceDataClientConfig(
        product_type=BinanceProductType.USD_M if session.plan.product == "um" else BinanceProductType.SPOT,
        environment=getattr(BinanceEnvironment, s.environment),
        base_url_http=s.base_url_http, base_url_ws=s.base_url_ws,
        spot_market_data_mode=BinanceSpotMarketDataMode.Json,
        instrument_status_poll_secs=0,
        max_retries=s.max_retries, retry_delay_initial_ms=s.reconnect_initial_ms,
        retry_delay_max_ms=s.reconnect_max_ms,
    )
    # The sandbox publishes its starting balances on every connect: on a restart, start it from
    # the last account state Nautilus saved in Redis, or the restored balance would be reset.
    restored = session.state.last_account_balances(f"{LIVE_VENUE}-001")
    balances = restored or list(v.starting_balances)
    if restored:
        _event(logging.INFO, "account restored from Redis", balances=restored, start_number=session.starts)
    sandbox_cfg = SandboxExecutionClientConfig(
        venue=Venue(LIVE_VENUE),
        starting_balances=[Money.from_str(b) for b in balances],
        account_id=AccountId(f"{LIVE_VENUE}-001"),
        oms_type=getattr(OmsType, v.oms_type),
        account_type=getattr(AccountType, v.account_type),
        default_leverage=session.plan.leverage,
        fee_model=MakerTakerFeeModel(Decimal(str(maker)), Decimal(str(taker))),
        bar_execution=True,
    )
    level = getattr(LogLevel, session.cfg.log_level)
    logging_cfg = LoggerConfig(
        stdout_level=level, fileout_level=LogLevel.INFO, is_colored=False,
        file_config=FileWriterConfig(directory=str(session.results_path / "logs"),
                                     file_name=f"nautilus-{session.starts:03d}", file_format="json"),
    )
    session.node = (
        LiveNode.builder("PAPER", TraderId(s.trader_id), Environment.SANDBOX)
        .with_logging(logging_cfg)
        .with_cache_config(CacheConfig(flush_on_start=False, buffer_interval_ms=None))
        .with_cache_database_factory(RedisCacheConfig(host=s.redis_host, port=s.redis_port))
        .with_load_state(True)
        .with_save_state(True)
        .with_timeout_disconnection_secs(2)
        .with_delay_post_stop_secs(0)
        .add_data_client(LIVE_VENUE, BinanceDataClientFactory(), data_cfg)
        .add_simulated_exec_client(LIVE_VENUE, SandboxExecutionClientFactory(), sandbox_cfg)
        .build()
    )
    return _add_components(session)


def _binance_data_config(session: Any) -> Any:
    from nautilus_trader.adapters.binance import (
        BinanceDataClientConfig,
        BinanceEnvironment,
        BinanceProductType,
        BinanceSpotMarketDataMode,
    )

    s = session.plan.settings
    return BinanceDataClientConfig(
        product_type=BinanceProductType.USD_M if session.plan.product == "um" else BinanceProductType.SPOT,
        environment=getattr(BinanceEnvironment, s.environment),
        base_url_http=s.base_url_http, base_url_ws=s.base_url_ws,
        spot_market_data_mode=BinanceSpotMarketDataMode.Json,
        instrument_status_poll_secs=0,
        max_retries=s.max_retries, retry_delay_initial_ms=s.reconnect_initial_ms,
        retry_delay_max_ms=s.reconnect_max_ms,
    )


def _build_simulated(session: Any) -> Any:
    """Node with the venue's market data and the simulated execution client (:mod:`nautilus_app.paper_exec`):
    the backtest's venue models, book in Redis (``simpaper:<trader_id>:*``) reconciled at start-up, bars
    driven by the :class:`~nautilus_app.paper_exec.BarSequencer`. No Nautilus cache database (rc7
    refuses one on nodes with Python clients)."""
    from nautilus_trader.common import Environment
    from nautilus_trader.config import DataClientConfig, ExecutionClientConfig
    from nautilus_trader.live import LiveNode
    from nautilus_trader.model import TraderId

    from core.brackets import MarginError
    from core.instruments import brackets_for
    from nautilus_app.paper_exec import SimExecClientFactory, SimVenue
    from nautilus_app.paper_sequencer import BarSequencer
    from nautilus_app.venue.models import bracket_overrides, leverage_for

    plan, s, v = session.plan, session.plan.settings, session.plan.venue
    brackets: dict[str, Any] = {}
    leverages: dict[str, float] = {}
    if v.account_type == "MARGIN":
        start_date = session.cfg.start or dt.date.today().isoformat()
        for iid, live in plan.id_map.items():
            leverages[live] = leverage_for(v, iid)
            if v.liquidation and "-PERP" in iid:
                symbol = iid.split(".")[0].removesuffix("-PERP")
                try:
                    brackets[live] = brackets_for(symbol, start_date, bracket_overrides(v),
                                                  catalog=session.cfg.catalog_path())
                except MarginError as e:
                    raise PaperConfigError(f"venues[0]: liquidation needs brackets: {e}") from e
    sim = SimVenue(v, plan.live_venue, session.book, brackets=brackets, leverages=leverages,
                   cash=v.account_type == "CASH")
    session.sequencer = BarSequencer(session, sim, plan.interval_ns, session._funding_for)
    starting = {}
    for b in v.starting_balances:
        amount, ccy = b.split()
        starting[ccy] = amount
    factory = SimExecClientFactory(sim=sim, account_type=v.account_type, starting=starting,
                                   account_id=f"{plan.live_venue}-001")
    builder = (LiveNode.builder("PAPER", TraderId(s.trader_id), Environment.SANDBOX)
               .with_logging(logging_config(session))
               .with_timeout_connection(20).with_timeout_reconciliation(20)
               .with_timeout_disconnection_secs(2)
               .with_delay_post_stop_secs(0))
    if plan.product == "ethereal":
        from adapters.ethereal.config import EtherealDataClientConfig
        from adapters.ethereal.factories import EtherealDataClientFactory

        tickers = sorted({InstrumentId.from_str(i).symbol.value.removesuffix("-PERP") for i in plan.id_map})
        dcfg = EtherealDataClientConfig(
            network="testnet" if s.environment == "TESTNET" else "mainnet", rest_url=s.base_url_http,
            ws_url=s.base_url_ws, tickers=tickers, instrument_refresh_mins=0,
            ws_backoff_initial_s=s.reconnect_initial_ms / 1000, ws_backoff_max_s=s.reconnect_max_ms / 1000,
        settlement_currency=_ethereal_settlement(plan.venue))
        session.data_factory = EtherealDataClientFactory(dcfg)
        builder = builder.add_data_client(ETHEREAL_VENUE_NAME, session.data_factory, DataClientConfig())
    else:
        from nautilus_trader.adapters.binance import BinanceDataClientFactory

        builder = builder.add_data_client(LIVE_VENUE, BinanceDataClientFactory(), _binance_data_config(session))
    session.node = builder.add_exec_client(plan.live_venue, factory, ExecutionClientConfig()).build()
    if factory.last_client is None:
        raise PaperFailed("the simulated execution client was not created by the node")
    factory.last_client.sequencer = session.sequencer
    session.exec_client = factory.last_client
    return _add_components(session)


def logging_config(session: Any) -> Any:
    from nautilus_trader.common import FileWriterConfig, LoggerConfig, LogLevel

    return LoggerConfig(
        stdout_level=getattr(LogLevel, session.cfg.log_level), fileout_level=LogLevel.INFO, is_colored=False,
        file_config=FileWriterConfig(directory=str(session.results_path / "logs"),
                                     file_name=f"nautilus-{session.starts:03d}", file_format="json"),
    )


def _add_components(session: Any) -> Any:
    for strategy, bar_type in zip(make_strategies(session), _strategy_bar_types(session), strict=True):
        if session.simulated:
            sequence_strategy(strategy, session, bar_type)
        else:
            guard_strategy(strategy, session.guard)
            clock_strategy(strategy, session)
        session.node.add_strategy(strategy)
        session.strategies.append(strategy)
    session.recorder = PaperRecorder(session)
    session.node.add_actor(session.recorder)
    session._handle = session.node.handle()
    return session.node


def _build_ethereal(session: Any) -> Any:
    """Node for ``data_source = "ethereal"``: :class:`adapters.ethereal.data.EtherealDataClient` and
    :class:`adapters.ethereal.paper_exec.EtherealPaperExecutionClient` (book in Redis, restored at
    start-up by Nautilus's reconciliation). No Nautilus cache database: rc7 refuses one on nodes
    with Python clients (NAUTILUS_NOTES §8)."""
    from nautilus_trader.common import Environment
    from nautilus_trader.config import DataClientConfig, ExecutionClientConfig
    from nautilus_trader.live import LiveNode
    from nautilus_trader.model import TraderId

    from adapters.ethereal.config import EtherealDataClientConfig
    from adapters.ethereal.factories import EtherealDataClientFactory
    from adapters.ethereal.paper_exec import EtherealPaperExecClientFactory

    s, v = session.plan.settings, session.plan.venue
    maker, taker = venue_fees(v)
    tickers = sorted({InstrumentId.from_str(i).symbol.value.removesuffix("-PERP") for i in session.plan.id_map})
    dcfg = EtherealDataClientConfig(
        network="testnet" if s.environment == "TESTNET" else "mainnet", rest_url=s.base_url_http,
        ws_url=s.base_url_ws, tickers=tickers, instrument_refresh_mins=0,
        ws_backoff_initial_s=s.reconnect_initial_ms / 1000, ws_backoff_max_s=s.reconnect_max_ms / 1000,
        settlement_currency=_ethereal_settlement(session.plan.venue))
    session.exec_factory = EtherealPaperExecClientFactory(
        starting_balances=list(v.starting_balances), maker_fee=Decimal(str(maker)), taker_fee=Decimal(str(taker)),
        redis_host=s.redis_host, redis_port=s.redis_port)
    session.node = (
        LiveNode.builder("PAPER", TraderId(s.trader_id), Environment.SANDBOX)
        .with_logging(logging_config(session))
        .with_timeout_connection(20).with_timeout_reconciliation(20)
        .with_timeout_disconnection_secs(2)
        .with_delay_post_stop_secs(0)
        .add_data_client(ETHEREAL_VENUE_NAME, EtherealDataClientFactory(dcfg), DataClientConfig())
        .add_exec_client(ETHEREAL_VENUE_NAME, session.exec_factory, ExecutionClientConfig())
        .build()
    )
    return _add_components(session)


def _strategy_bar_types(session: Any) -> list[str]:
    out = []
    for spec in session.cfg.strategies:
        bt = spec.params.get("bar_type", session.cfg.bar_types[0])
        out.append(session.plan.bar_map.get(bt, bt))
    return out


def make_strategies(session: Any) -> list[Any]:
    """The config's strategies, instantiated with live instrument ids and the backtest's order-id tags."""
    out = []
    for i, spec in enumerate(session.cfg.strategies):
        params = dict(spec.params)
        if "instrument_id" in params:
            params["instrument_id"] = session.plan.id_map.get(params["instrument_id"], params["instrument_id"])
        if "bar_type" in params:
            params["bar_type"] = session.plan.bar_map.get(params["bar_type"], params["bar_type"])
        if (session.plan.product == "ethereal" or session.simulated) and "instrument_id" in params:
            # reconciliation restores the Redis book as EXTERNAL orders/positions: let the strategy claim them
            params.setdefault("external_order_instrument_ids", [InstrumentId.from_str(params["instrument_id"])])
        out.append(spec.resolve().make_strategy(params, order_id_tag=f"{i:03d}", hooks=True))
    return out
