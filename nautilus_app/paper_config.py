"""The optional ``[paper]`` table of a run config: how the same strategies run on a sandbox ``LiveNode``.

A backtest config becomes a paper config by adding ``[paper]``; the backtest loader accepts (and
ignores) it, ``scripts/run_paper.py`` / ``nautilus-app paper`` require it. Every key has a default,
so ``[paper]`` alone is enough for Binance. Schema (units in the names):

| key | default | what |
|---|---|---|
| ``mode`` | ``"paper"`` | ``"paper"`` = market data from the exchange, simulated (sandbox) execution |
| ``data_source`` | ``"binance"`` | ``"binance"`` (Nautilus's Rust Binance client) or ``"ethereal"`` (our adapter) |
| ``trader_id`` | ``"PAPER-001"`` | Nautilus trader id; names the state in Redis (``trader-<id>:*``): keep it to resume |
| ``redis_host`` / ``redis_port`` | ``127.0.0.1`` / ``6379`` | Redis holding orders, positions, account and our recorder state |
| ``base_url_http`` / ``base_url_ws`` | none (Binance's live URLs) | overrides, e.g. the local replay server |
| ``environment`` | ``"LIVE"`` | Binance environment for market data: ``LIVE``, ``TESTNET`` or ``DEMO`` |
| ``stale_after_seconds`` | 2 x bar interval | no bar for this long: warn and hold new orders |
| ``status_every_bars`` | ``1`` | write ``status.json`` and the results files every N bars |
| ``reconnect_initial_ms`` / ``reconnect_max_ms`` / ``max_retries`` | 500 / 10000 / 10 | the data client's reconnect backoff |
| ``results_every_seconds`` | ``5.0`` | at most one results rewrite per this many wall seconds (status is every bar) |
| ``execution`` | ``"simulated"`` | ``"simulated"``: our execution client with the backtest's venue models (every venue); ``"sandbox"``: Nautilus's sandbox (Binance only, same-close fills, no liquidation) |
| ``warmup_bars`` | ``1000`` | at most this many bars before the first live bar warm the strategies (from the config's ``start`` on) |
| ``max_catch_up_bars`` | ``3`` | bars missed while the node was down that are still traded (more: fed without trading) |
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec


class PaperSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Settings of a paper session (the ``[paper]`` table). See the module docstring for the keys."""

    mode: Literal["paper"] = "paper"
    data_source: Literal["binance", "ethereal"] = "binance"
    trader_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]+-[A-Za-z0-9_]+$")] = "PAPER-001"
    redis_host: str = "127.0.0.1"
    redis_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 6379
    base_url_http: str | None = None
    base_url_ws: str | None = None
    environment: Literal["LIVE", "TESTNET", "DEMO"] = "LIVE"
    stale_after_seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None
    status_every_bars: Annotated[int, msgspec.Meta(ge=1)] = 1
    results_every_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    reconnect_initial_ms: Annotated[int, msgspec.Meta(ge=1)] = 500
    reconnect_max_ms: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    max_retries: Annotated[int, msgspec.Meta(ge=0)] = 10
    execution: Literal["simulated", "sandbox"] = "simulated"
    warmup_bars: Annotated[int, msgspec.Meta(ge=0)] = 1000
    max_catch_up_bars: Annotated[int, msgspec.Meta(ge=0)] = 3
