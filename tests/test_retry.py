"""core.retry: the one retry loop of the synchronous clients."""

from __future__ import annotations

import pytest

from core.retry import RetriesExhausted, backoff, call_with_retry


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(a, 1.0) for a in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(2, 0.5, cap_s=1.5) == 1.5


def test_transient_errors_are_retried_with_the_given_waits() -> None:
    calls, slept, noted = [], [], []

    def fn() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"drop {len(calls)}")
        return "ok"

    out = call_with_retry(fn, retries=5, catch=(OSError,), wait=lambda a, _e: backoff(a, 0.5),
                          on_retry=lambda a, s, e: noted.append((a, s, str(e))), sleep=slept.append)
    assert out == "ok" and len(calls) == 3
    assert slept == [0.5, 1.0]
    assert noted == [(0, 0.5, "drop 1"), (1, 1.0, "drop 2")]


def test_exhausted_retries_raise_with_the_last_error_chained() -> None:
    slept: list[float] = []
    with pytest.raises(RetriesExhausted) as info:
        call_with_retry(lambda: (_ for _ in ()).throw(TimeoutError("slow")), retries=2, catch=(OSError,),
                        wait=lambda a, _e: 1.0, sleep=slept.append)
    assert info.value.attempts == 3 and isinstance(info.value.last, TimeoutError)
    assert info.value.__cause__ is info.value.last and slept == [1.0, 1.0]


def test_non_transient_errors_propagate_at_once() -> None:
    slept: list[float] = []
    with pytest.raises(PermissionError):  # caught type, but retry_if says no
        call_with_retry(lambda: (_ for _ in ()).throw(PermissionError("403")), retries=3, catch=(OSError,),
                        retry_if=lambda e: not isinstance(e, PermissionError), wait=lambda a, _e: 1.0,
                        sleep=slept.append)
    with pytest.raises(ValueError):  # not a caught type
        call_with_retry(lambda: int("x"), retries=3, catch=(OSError,), wait=lambda a, _e: 1.0, sleep=slept.append)
    assert slept == []


def test_async_twin_follows_the_same_rules() -> None:
    import asyncio

    from core.retry import acall_with_retry

    calls, slept = [], []

    async def fn() -> int:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("drop")
        return 7

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    assert asyncio.run(acall_with_retry(fn, retries=1, catch=(OSError,), wait=lambda a, _e: 0.25,
                                        sleep=fake_sleep)) == 7
    assert slept == [0.25]
    calls.clear()
    with pytest.raises(RetriesExhausted):
        asyncio.run(acall_with_retry(fn, retries=0, catch=(OSError,), wait=lambda a, _e: 0.25, sleep=fake_sleep))
