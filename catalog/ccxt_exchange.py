"""The ccxt exchange of the downloaders: creating it (:func:`make_exchange`) and calling it with retries
(:func:`call_with_retries`, on the shared loop of :mod:`core.retry`).

Used by :mod:`catalog.ccxt_download` (OHLCV, funding, mark prices) and :mod:`catalog.instrument_meta`
(exchangeInfo); the retry rules are described in :mod:`catalog.ccxt_download`'s docstring.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from core.retry import RetriesExhausted, backoff, call_with_retry


class DownloadError(Exception):
    """A download could not complete (retries exhausted, unsupported exchange/kind, bad response).

    Everything fetched and validated before the failure has been written to the catalog; a rerun
    resumes after it.
    """


#: ccxt ``options['fetchMarkets']`` restricting market loading to what a market needs (fewer requests)
_FETCH_MARKETS = {
    "bybit": {"spot": {"types": ["spot"]}, "um": {"types": ["linear"]}},
    "okx": {"spot": {"types": ["spot"]}, "um": {"types": ["swap"]}},
}


def make_exchange(market: str, *, exchange_id: str = "binance", urls: dict[str, str] | None = None,
                  rate_limit_ms: float | None = None, timeout_ms: int = 30_000) -> Any:
    """A ccxt exchange for ``market`` with ``enableRateLimit=True``.

    Binance: ``"spot"`` -> ``ccxt.binance`` restricted to spot markets, ``"um"`` ->
    ``ccxt.binanceusdm``. Any other ccxt id (``bybit``, ``okx`` ...) -> ``getattr(ccxt, id)``;
    ``"um"`` then means its linear (USDT/USDC-margined) perpetual swaps. ``urls`` updates
    ``exchange.urls['api']`` (e.g. ``{"public": "http://127.0.0.1:8080/api/v3"}``);
    ``rate_limit_ms`` overrides ccxt's ``rateLimit`` (ms per weight unit). Raises
    :class:`DownloadError` for an unknown id or an exchange without ``fetchOHLCV``.
    """
    import ccxt

    opts: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
    if market not in ("spot", "um"):
        raise DownloadError(f"unknown market {market!r} (expected 'spot' or 'um')")
    if exchange_id in ("binance", "binanceusdm"):
        ex = ccxt.binance(opts | {"options": {"fetchMarkets": {"types": ["spot"]}}}) if market == "spot" \
            else ccxt.binanceusdm(opts)
    else:
        cls = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
        if cls is None:
            raise DownloadError(f"unknown ccxt exchange id {exchange_id!r}")
        fm = _FETCH_MARKETS.get(exchange_id, {}).get(market)
        ex = cls(opts | ({"options": {"fetchMarkets": fm}} if fm else {}))
        if not ex.has.get("fetchOHLCV"):
            raise DownloadError(f"ccxt exchange {exchange_id!r} has no fetchOHLCV")
    if urls:
        ex.urls["api"].update(urls)
    if rate_limit_ms is not None:
        ex.rateLimit = rate_limit_ms
        if hasattr(ex, "init_throttler"):
            ex.init_throttler()
    return ex


_HTTP_CODE = re.compile(r"\s(\d{3})\s")


def _retry_after(ex: Any) -> float | None:
    headers = getattr(ex, "last_response_headers", None) or {}
    for k, v in dict(headers).items():
        if k.lower() == "retry-after":
            try:
                return max(0.0, float(v))
            except (TypeError, ValueError):
                return None
    return None


def call_with_retries(ex: Any, fn: Callable[..., Any], *args: Any, max_retries: int = 5, backoff_s: float = 1.0,
                      sleep: Callable[[float], None] = time.sleep, on_retry: Callable[[str], None] | None = None,
                      **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` retrying ccxt network errors (the rules: :mod:`catalog.ccxt_download`).

    Transient: ccxt ``OperationFailed`` (``NetworkError`` and Binance's -1000/-1001 "internal error")
    except a 4xx other than 418/429 (``DDoSProtection``). Waits: ``Retry-After`` of a rate-limited
    answer, else :func:`core.retry.backoff` (``backoff_s x 2**attempt``, at most 60 s).
    ``on_retry`` receives a one-line description of each retry (for logs/reports). Raises
    :class:`DownloadError` (chained to the last ccxt error) when retries are exhausted or the
    error is not transient.
    """
    import ccxt

    def transient(e: BaseException) -> bool:
        m = _HTTP_CODE.search(str(e))
        code = int(m.group(1)) if m else None
        return code is None or not 400 <= code < 500 or isinstance(e, ccxt.DDoSProtection)

    def wait(attempt: int, e: BaseException) -> float:
        seconds = _retry_after(ex) if isinstance(e, ccxt.DDoSProtection) else None
        return backoff(attempt, backoff_s) if seconds is None else seconds

    def note(attempt: int, seconds: float, e: BaseException) -> None:
        if on_retry:
            on_retry(f"{type(e).__name__} ({str(e)[:120]}); retry {attempt + 1}/{max_retries} in {seconds:.1f} s")

    try:
        return call_with_retry(lambda: fn(*args, **kwargs), retries=max_retries, catch=(ccxt.OperationFailed,),
                               retry_if=transient, wait=wait, on_retry=note, sleep=sleep)
    except RetriesExhausted as e:
        msg = str(e.last)
        raise DownloadError(f"giving up after {e.attempts} attempts: {type(e.last).__name__}: {msg[:300]}") from e.last
    except (ccxt.OperationFailed, ccxt.ExchangeError) as e:  # not transient
        raise DownloadError(f"{type(e).__name__}: {str(e)[:300]}") from e
