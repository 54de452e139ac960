"""REST client: ``ethereal.AsyncRESTClient`` (official SDK) + rate limiting + 429 ``Retry-After``.

Every SDK endpoint function goes through ``AsyncHTTPClient.send_request``; this subclass overrides
that single method to

* wait on a client-side token bucket before each request (HTTP pool: 20,000 points per minute;
  signed order/cancel requests also draw on the account pool of 220 points per minute; docs
  "System Limits"; 1 point per request is assumed since per-endpoint costs are published only via
  ``/v1/rate-limit/config``),
* on HTTP 429 sleep for ``Retry-After`` seconds (or ``RateLimit-Reset``; 1 s if absent) and retry
  the same request (safe: a rate-limited request was not processed, and a signed order carries its
  nonce so a duplicate would be refused), up to ``max_retries``, then raise
  :class:`EtherealRateLimitError`,
* retry idempotent GETs on transport errors and 5xx with exponential backoff,
* raise :class:`EtherealHttpError` (status, path, venue message) for other 4xx/5xx.

The SDK client is constructed directly (not via ``AsyncRESTClient.create``), because ``create``
also fetches the token list and may build a web3 ``ChainClient``; the adapter fetches
``/v1/rpc/config`` itself when it needs to sign.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from typing import Any

import httpx
from ethereal import AsyncRESTClient

from adapters.ethereal.common.constants import ACCOUNT_POINTS_PER_MINUTE, HTTP_POINTS_PER_MINUTE
from adapters.ethereal.common.enums import EtherealNetwork
from adapters.ethereal.common.urls import EtherealUrls

log = logging.getLogger(__name__)

SIGNED_PATHS = ("/v1/order", "/v1/order/cancel", "/v1/order/batch", "/v1/linked-signer")


class EtherealHttpError(Exception):
    """The venue answered with an error status. ``status``, ``path``, ``body`` (text, <= 500 chars)."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        self.status, self.method, self.path, self.body = status, method, path, body[:500]
        super().__init__(f"Ethereal {method} {path} -> HTTP {status}: {self.body}")


class EtherealRateLimitError(EtherealHttpError):
    """HTTP 429 persisted after all retries."""


class TokenBucket:
    """``capacity`` points refilled continuously over ``window_s`` seconds. ``acquire`` waits."""

    def __init__(self, capacity: float, window_s: float = 60.0) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / window_s
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()
        self.waited_s = 0.0

    async def acquire(self, cost: float = 1.0) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= cost:
                    self.tokens -= cost
                    return
                wait = (cost - self.tokens) / self.rate
                self.waited_s += wait
                await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Empty the bucket so nothing is sent for about ``seconds`` (after a 429)."""
        self.tokens = -seconds * self.rate
        self.stamp = time.monotonic()


def retry_after_seconds(headers: httpx.Headers, default: float = 1.0) -> float:
    """Seconds to wait from ``Retry-After`` (delta seconds or HTTP date) or ``RateLimit-Reset``."""
    for name in ("retry-after", "ratelimit-reset", "x-ratelimit-reset"):
        value = headers.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            dt = email.utils.parsedate_to_datetime(value) if name == "retry-after" else None
            if dt is not None:
                return max(0.0, dt.timestamp() - time.time())
    return default


class EtherealHttpClient(AsyncRESTClient):
    """The SDK's REST client pointed at ``urls`` with limits and retries (see module docstring).

    ``max_wait_s`` caps a single Retry-After sleep; ``stats`` counts requests, 429s and retries.
    """

    def __init__(
        self,
        urls: EtherealUrls,
        network: EtherealNetwork,
        *,
        timeout_s: int = 10,
        max_retries: int = 5,
        max_wait_s: float = 60.0,
        http_points_per_minute: float = HTTP_POINTS_PER_MINUTE,
        account_points_per_minute: float = ACCOUNT_POINTS_PER_MINUTE,
    ) -> None:
        super().__init__(
            {
                "network": network.value,
                "base_url": urls.rest,
                "archive_base_url": urls.archive,
                "tv_base_url": urls.tv,
                "timeout": timeout_s,
            }
        )
        # The SDK keeps these as AnyHttpUrl, whose str() ends with "/" (-> "//v1/..." paths).
        self._tv_base_url = urls.tv
        self._archive_base_url = urls.archive
        self.urls = urls
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.http_bucket = TokenBucket(http_points_per_minute)
        self.account_bucket = TokenBucket(account_points_per_minute)
        self.stats = {"requests": 0, "http_429": 0, "retries": 0}

    async def send_request(self, http_method, url_path, params, headers, data=None, *, base_url_override=None):
        signed = http_method == "POST" and str(url_path).rstrip("/").startswith(SIGNED_PATHS)
        attempt = 0
        while True:
            await self.http_bucket.acquire(1.0)
            if signed:
                await self.account_bucket.acquire(1.0)
            self.stats["requests"] += 1
            try:
                return await super().send_request(
                    http_method, url_path, params, headers, data=data, base_url_override=base_url_override
                )
            except httpx.HTTPStatusError as e:
                status = e.response.status_code
                body = e.response.text
                if status == 429 and attempt < self.max_retries:
                    self.stats["http_429"] += 1
                    wait = min(self.max_wait_s, retry_after_seconds(e.response.headers))
                    log.warning("Ethereal %s %s rate limited (429); retrying in %.2f s", http_method, url_path, wait)
                    self.http_bucket.pause(wait)
                    if signed:
                        self.account_bucket.pause(wait)
                    attempt += 1
                    self.stats["retries"] += 1
                    continue
                if status == 429:
                    self.stats["http_429"] += 1
                    raise EtherealRateLimitError(status, http_method, str(url_path), body) from None
                if status >= 500 and http_method == "GET" and attempt < self.max_retries:
                    attempt += 1
                    self.stats["retries"] += 1
                    await asyncio.sleep(min(self.max_wait_s, 0.25 * 2**attempt))
                    continue
                raise EtherealHttpError(status, http_method, str(url_path), body) from None
            except httpx.TransportError as e:
                if http_method == "GET" and attempt < self.max_retries:
                    attempt += 1
                    self.stats["retries"] += 1
                    await asyncio.sleep(min(self.max_wait_s, 0.25 * 2**attempt))
                    continue
                raise EtherealHttpError(0, http_method, str(url_path), f"transport error: {e!r}") from None

    async def rpc_config_raw(self) -> dict[str, Any]:
        """``GET /v1/rpc/config`` as JSON (EIP-712 domain and signature type strings)."""
        return await self.get("/v1/rpc/config")

    async def all_pages(self, endpoint: str, request_model: str, response_model: str,
                        max_pages: int = 100, **params: Any) -> list:
        """Every page of a cursor-paginated list endpoint (SDK ``_get_pages``), as SDK models."""
        return await self._get_pages(
            endpoint=endpoint,
            request_model=getattr(self._models, request_model),
            response_model=getattr(self._models, response_model),
            paginate=True,
            max_pages=max_pages,
            **params,
        )
