"""Paper-session state of our own in Redis (next to Nautilus's cache database of the same trader).

Nautilus's Redis cache database (``trader-<trader_id>:*``) holds orders, positions, accounts and
strategy state. What Nautilus does not keep, the recorder keeps here, under ``paper:<trader_id>:*``:

| key | type | what |
|---|---|---|
| ``meta`` | hash | ``run_id``, ``config_digest``, ``starts`` (number of node starts), ``first_start`` |
| ``bars`` | list | one JSON ``[market_close_ns, wall_ns, instrument_id, close]`` per bar received |
| ``marks`` | list | ``"<wall_ns> <market_ns>"`` at each strategy ``on_bar`` entry (stamps fills with their bar) |
| ``funding`` | hash | ``<instrument_id>|<funding_ns>`` -> JSON settlement (idempotent: written with HSETNX) |

Everything is written as it happens, so ``kill -9`` loses at most the bar being processed.
"""

from __future__ import annotations

import json
from typing import Any

import redis


class PaperState:
    """Read/write the recorder's Redis keys of one trader.

    Args:
        trader_id: Nautilus trader id (``"PAPER-001"``); names the key space.
        host, port: Redis server.

    Raises:
        redis.ConnectionError: on the first command if Redis is not reachable.
    """

    def __init__(self, trader_id: str, host: str = "127.0.0.1", port: int = 6379) -> None:
        self.trader_id = trader_id
        self.r = redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=5)
        self.prefix = f"paper:{trader_id}:"

    def ping(self) -> None:
        """Raise ``redis.ConnectionError`` unless the server answers."""
        self.r.ping()

    # ---- meta --------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """The ``meta`` hash (empty for a new trader)."""
        return self.r.hgetall(self.prefix + "meta")

    def register_start(self, run_id: str, config_digest: str, now_iso: str) -> dict[str, str]:
        """Record a node start: keeps the first ``run_id`` (a resumed session writes to the same
        results folder) and counts starts. Returns the updated meta."""
        key = self.prefix + "meta"
        self.r.hsetnx(key, "run_id", run_id)
        self.r.hsetnx(key, "config_digest", config_digest)
        self.r.hsetnx(key, "first_start", now_iso)
        self.r.hincrby(key, "starts", 1)
        self.r.hset(key, "last_start", now_iso)
        return self.meta()

    # ---- bars --------------------------------------------------------------------------
    def add_bar(self, market_ns: int, wall_ns: int, instrument_id: str, close: float) -> None:
        """Append one received bar."""
        self.r.rpush(self.prefix + "bars", json.dumps([market_ns, wall_ns, instrument_id, close]))

    def bars(self) -> list[tuple[int, int, str, float]]:
        """All received bars in arrival order."""
        return [tuple(json.loads(x)) for x in self.r.lrange(self.prefix + "bars", 0, -1)]  # type: ignore[misc]

    # ---- strategy clock ------------------------------------------------------------------
    def add_mark(self, wall_ns: int, market_ns: int) -> None:
        """Record that a strategy's ``on_bar`` for the bar closing at ``market_ns`` began at ``wall_ns``."""
        self.r.rpush(self.prefix + "marks", f"{wall_ns} {market_ns}")

    def marks(self) -> list[tuple[int, int]]:
        """All ``(wall_ns, market_ns)`` on_bar entries, in order."""
        return [tuple(map(int, x.split())) for x in self.r.lrange(self.prefix + "marks", 0, -1)]  # type: ignore[misc]

    # ---- funding -----------------------------------------------------------------------
    def add_funding(self, instrument_id: str, funding_ns: int, row: dict[str, Any]) -> bool:
        """Store one funding settlement; False if that (instrument, time) was already settled."""
        return bool(self.r.hsetnx(self.prefix + "funding", f"{instrument_id}|{funding_ns}", json.dumps(row)))

    def funding(self) -> list[dict[str, Any]]:
        """All settlements (unordered)."""
        return [json.loads(v) for v in self.r.hgetall(self.prefix + "funding").values()]

    # ---- Nautilus's account --------------------------------------------------------------
    def last_account_balances(self, account_id: str) -> list[str] | None:
        """Totals of the last ``AccountState`` Nautilus saved for ``account_id`` (``["100057.57 USDT"]``),
        or None if there is none. Read from ``trader-<id>:accounts:<account_id>`` (a list of JSON events).

        Needed because the rc7 sandbox execution client publishes its configured starting balances
        on every connect, which would overwrite the restored account.
        """
        raw = self.r.lrange(f"trader-{self.trader_id}:accounts:{account_id}", -1, -1)
        if not raw:
            return None
        state = json.loads(raw[0])
        return [b["total"] for b in state.get("balances", [])] or None

    # ---- cleanup -----------------------------------------------------------------------
    def clear(self, *, nautilus_too: bool = True) -> int:
        """Delete this trader's keys (ours and, by default, Nautilus's ``trader-<id>:*`` and the Ethereal
        paper execution book ``ethpaper:<id>:*``). Returns the count."""
        patterns = [self.prefix + "*"] + ([f"trader-{self.trader_id}:*", f"ethpaper:{self.trader_id}:*",
                                           f"simpaper:{self.trader_id}:*"] if nautilus_too else [])
        n = 0
        for pattern in patterns:
            keys = list(self.r.scan_iter(pattern, count=1000))
            if keys:
                n += self.r.delete(*keys)
        return n
