"""REST client: ``ethereal.AsyncRESTClient`` (official SDK) + rate limiting + 429 ``Retry-After``.

Every SDK endpoint function goes through ``AsyncHTTPClient.send_request``; this subclass overrides
that single method to

* wait on a client-side token bucket before each request (HTTP pool: 20,000 points per minute per
  IP; signed order/cancel requests also draw on the account pool of 220 points per minute; docs
  "System Limits"). The HTTP bucket is **shared per venue host** by every client of the process
  (:func:`shared_bucket`), so the data and the execution client of a node draw on one per-IP budget
  instead of each assuming all of it. Paginated reads cost points per row (``HttpPaginatedRateLimit``
  in the venue's rate-limit config): after each page ``points_per_row`` x rows are debited (default 1
  point per request and per row; per-endpoint costs are published only via
  ``/v1/rate-limit/config``, which is not read),
* on HTTP 429 sleep for ``Retry-After`` seconds (or ``RateLimit-Reset``; 1 s if absent) and retry
  the same request (safe: a rate-limited request was not processed, and a signed order carries its
  nonce so a duplicate would be refused), up to ``max_retries``, then raise
  :class:`EtherealRateLimitError`,
* retry idempotent GETs on transport errors and 5xx with exponential backoff (0.5, 1, 2 ... s, at most
  ``max_wait_s``; the loop is :func:`core.retry.acall_with_retry`),
* raise :class:`EtherealHttpError` (status, path, venue message) for other 4xx/5xx.

Unknown enum values in responses (a new order status, result code or product status) do not fail
validation: the SDK's ``load_models`` gives its generated enums a ``_missing_`` that returns a
pseudo-member carrying the raw value. The adapter therefore must (and does) treat every
``.value`` it reads from the SDK models as possibly unknown.

The SDK client is constructed directly (not via ``AsyncRESTClient.create``), because ``create``
also fetches the token list and may build a web3 ``ChainClient``; the adapter fetches
``/v1/rpc/config`` itself when it needs to sign.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from ethereal import AsyncRESTClient

from adapters.ethereal.common.constants import ACCOUNT_POINTS_PER_MINUTE, HTTP_POINTS_PER_MINUTE
from adapters.ethereal.common.enums import EtherealNetwork
from adapters.ethereal.common.urls import EtherealUrls
from core.retry import RetriesExhausted, acall_with_retry

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
    """``capacity`` points refilled continuously over ``window_s`` seconds. ``acquire`` waits.

    Reservation style (a request takes its points at once and waits off any deficit), guarded by a
    thread lock and never holding an asyncio primitive, so one bucket can be shared by clients on
    different event loops (the per-IP budget of a process)."""

    def __init__(self, capacity: float, window_s: float = 60.0) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / window_s
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._mutex = threading.Lock()
        self.waited_s = 0.0
        self.spent = 0.0

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self, cost: float = 1.0) -> None:
        with self._mutex:
            self._refill()
            self.tokens -= cost
            self.spent += cost
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
            self.waited_s += wait
        if wait > 0:
            await asyncio.sleep(wait)

    def debit(self, cost: float) -> None:
        """Take ``cost`` points without waiting (charged after the fact, e.g. rows of a page)."""
        with self._mutex:
            self._refill()
            self.tokens -= cost
            self.spent += cost

    def pause(self, seconds: float) -> None:
        """Empty the bucket so nothing is sent for about ``seconds`` (after a 429)."""
        with self._mutex:
            self.tokens = min(self.tokens, -seconds * self.rate)
            self.stamp = time.monotonic()


_SHARED: dict[str, TokenBucket] = {}
_SHARED_LOCK = threading.Lock()


def shared_bucket(key: str, capacity: float) -> TokenBucket:
    """The process-wide bucket for ``key`` (the venue host: the HTTP limit is per IP), created with
    ``capacity`` points per minute on first use. Later callers asking another capacity get the
    existing bucket (a warning says so): one budget, one limiter."""
    with _SHARED_LOCK:
        bucket = _SHARED.get(key)
        if bucket is None:
            bucket = _SHARED[key] = TokenBucket(capacity)
        elif bucket.capacity != float(capacity):
            log.warning("Ethereal rate budget for %s already set to %s points/min; %s ignored",
                        key, bucket.capacity, capacity)
        return bucket


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
        points_per_row: float = 1.0,
        share_budget: bool = True,
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
        host = urlsplit(urls.rest).netloc or urls.rest
        self.http_bucket = (shared_bucket(host, http_points_per_minute) if share_budget
                            else TokenBucket(http_points_per_minute))
        self.account_bucket = TokenBucket(account_points_per_minute)
        self.points_per_row = points_per_row
        self.stats = {"requests": 0, "http_429": 0, "retries": 0, "rows": 0}

    async def send_request(self, http_method, url_path, params, headers, data=None, *, base_url_override=None):
        signed = http_method == "POST" and str(url_path).rstrip("/").startswith(SIGNED_PATHS)
        send = super().send_request

        async def once() -> Any:
            await self.http_bucket.acquire(1.0)
            if signed:
                await self.account_bucket.acquire(1.0)
            self.stats["requests"] += 1
            res = await send(http_method, url_path, params, headers, data=data, base_url_override=base_url_override)
            rows = res.get("data") if isinstance(res, dict) else None
            if http_method == "GET" and isinstance(rows, list) and rows:
                self.stats["rows"] += len(rows)
                self.http_bucket.debit(self.points_per_row * len(rows))
            return res

        def status(e: BaseException) -> int | None:
            return e.response.status_code if isinstance(e, httpx.HTTPStatusError) else None

        def transient(e: BaseException) -> bool:  # 429 always (not processed); 5xx and transport errors: GETs only
            s = status(e)
            return s == 429 or (http_method == "GET" and (s is None or s >= 500))

        def wait(attempt: int, e: BaseException) -> float:
            if status(e) != 429:
                return min(self.max_wait_s, 0.25 * 2 ** (attempt + 1))
            # 429: the buckets pause for Retry-After, so the next acquire() waits it out for every user of them
            seconds = min(self.max_wait_s, retry_after_seconds(e.response.headers))  # type: ignore[attr-defined]
            log.warning("Ethereal %s %s rate limited (429); retrying in %.2f s", http_method, url_path, seconds)
            self.http_bucket.pause(seconds)
            if signed:
                self.account_bucket.pause(seconds)
            return 0.0

        def counted(_attempt: int, _seconds: float, e: BaseException) -> None:
            if status(e) == 429:
                self.stats["http_429"] += 1
            self.stats["retries"] += 1

        try:
            return await acall_with_retry(once, retries=self.max_retries, retry_if=transient, wait=wait,
                                          on_retry=counted, catch=(httpx.HTTPStatusError, httpx.TransportError))
        except RetriesExhausted as e:
            last = e.last
            if isinstance(last, httpx.TransportError):
                raise EtherealHttpError(0, http_method, str(url_path), f"transport error: {last!r}") from None
            assert isinstance(last, httpx.HTTPStatusError)
            if last.response.status_code == 429:
                self.stats["http_429"] += 1
                raise EtherealRateLimitError(429, http_method, str(url_path), last.response.text) from None
            raise EtherealHttpError(last.response.status_code, http_method, str(url_path), last.response.text) from None
        except httpx.HTTPStatusError as e:  # not transient
            raise EtherealHttpError(e.response.status_code, http_method, str(url_path), e.response.text) from None
        except httpx.TransportError as e:  # not transient (not a GET)
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
