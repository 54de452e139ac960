"""The one retry loop of the clients: Binance Vision over HTTP and the ccxt calls (:func:`call_with_retry`),
and its ``async`` twin for the Ethereal REST client (:func:`acall_with_retry`, same rules, awaited).

Each client keeps its own policy - which errors are transient, how long to wait, how many tries - and
hands it to the loop, which only runs it:

* ``fn()`` is called; its result is returned as soon as a call succeeds.
* An exception of a type in ``catch`` for which ``retry_if(error)`` is true is *transient*: after
  ``wait(attempt, error)`` seconds (``attempt`` = 0 before the first retry, 1 before the second ...)
  ``fn`` is called again, at most ``retries`` times.
* Any other exception (not in ``catch``, or ``retry_if`` false) propagates at once, unchanged.
* When the last try fails with a transient error too, :class:`RetriesExhausted` is raised (chained
  to that error) with the number of tries made; the caller turns it into its own error.

:func:`backoff` is the exponential schedule the clients share (``base x 2**attempt``, capped at 60 s);
a ``Retry-After`` the server sent takes precedence where a client honours it. The waits are real
``time.sleep`` calls unless ``sleep`` is given (tests pass a recorder).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RetriesExhausted(Exception):  # noqa: N818 - names the outcome, like StopIteration
    """Every try of :func:`call_with_retry` failed with a transient error.

    Attributes:
        attempts: Number of calls made (``retries + 1``).
        last: The last error (also the ``__cause__``).
    """

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"giving up after {attempts} attempts: {type(last).__name__}: {last}")
        self.attempts = attempts
        self.last = last


def backoff(attempt: int, base_s: float, cap_s: float = 60.0) -> float:
    """Exponential backoff in seconds before retry ``attempt + 1``: ``min(cap_s, base_s x 2**attempt)``."""
    return min(cap_s, base_s * 2**attempt)


def call_with_retry[T](
    fn: Callable[[], T],
    *,
    retries: int,
    wait: Callable[[int, BaseException], float],
    catch: tuple[type[BaseException], ...] = (Exception,),
    retry_if: Callable[[BaseException], bool] = lambda _e: True,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """``fn()``, retried on transient errors (rules in the module docstring).

    Args:
        fn: The call (no arguments: bind them with a lambda or ``functools.partial``).
        retries: Retries after the first call (>= 0); ``retries + 1`` calls at most.
        wait: Seconds to sleep before retry ``attempt + 1``, given ``attempt`` (0-based) and the error.
        catch: Exception types that may be transient.
        retry_if: True if a caught error is transient (default: every caught error).
        on_retry: Called as ``on_retry(attempt, seconds, error)`` before each sleep (logs, reports).
        sleep: The sleep function (None: ``time.sleep``, looked up at each call so a patched one is used).

    Raises:
        RetriesExhausted: The last call failed with a transient error too.
        BaseException: Whatever ``fn`` raised that is not transient, unchanged.
    """
    for attempt in range(retries + 1):
        try:
            return fn()
        except catch as e:
            if not retry_if(e):
                raise
            if attempt == retries:
                raise RetriesExhausted(attempt + 1, e) from e
            seconds = wait(attempt, e)
            if on_retry is not None:
                on_retry(attempt, seconds, e)
            (sleep or time.sleep)(seconds)
    raise AssertionError("unreachable")  # the loop returns or raises


async def acall_with_retry[T](
    fn: Callable[[], Awaitable[T]],
    *,
    retries: int,
    wait: Callable[[int, BaseException], float],
    catch: tuple[type[BaseException], ...] = (Exception,),
    retry_if: Callable[[BaseException], bool] = lambda _e: True,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> T:
    """``await fn()``, retried on transient errors: :func:`call_with_retry` for coroutines (``sleep``: None =
    ``asyncio.sleep``). Same arguments and errors."""
    for attempt in range(retries + 1):
        try:
            return await fn()
        except catch as e:
            if not retry_if(e):
                raise
            if attempt == retries:
                raise RetriesExhausted(attempt + 1, e) from e
            seconds = wait(attempt, e)
            if on_retry is not None:
                on_retry(attempt, seconds, e)
            await (sleep or asyncio.sleep)(seconds)
    raise AssertionError("unreachable")  # the loop returns or raises
