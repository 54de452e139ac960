"""Helpers for tests and demos against the mock venue: fixture paths, test keys, a LiveNode runner."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.ethereal.common.credentials import SigningKey, parse_private_key

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "ethereal"


def fixture(name: str) -> Any:
    """Parsed JSON fixture ``tests/fixtures/ethereal/<name>``."""
    return json.loads((FIXTURES / name).read_text())


def account() -> dict:
    """``account.json``: subaccount, linked signer, balances and the throwaway test keys."""
    return fixture("account.json")


def main_key() -> SigningKey:
    return parse_private_key(account()["mainKeyForTests"], "test:main")


def signer_key() -> SigningKey:
    return parse_private_key(account()["signerKeyForTests"], "test:signer")


def run_node(node: Any, driver: Callable[[Any], None], timeout_s: float = 60.0) -> float:
    """Run ``node`` in this thread while ``driver(handle)`` runs in another one; the driver must
    call ``handle.stop()`` (it is also stopped after ``timeout_s``). Returns the wall time."""
    handle = node.handle()
    errors: list[BaseException] = []
    finished = threading.Event()

    def _drive() -> None:
        try:
            driver(handle)
        except BaseException as e:  # surface driver failures in the test
            errors.append(e.with_traceback(None))
        finally:
            handle.stop()

    def _watchdog() -> None:
        if not finished.wait(timeout_s):
            handle.stop()

    threads = [threading.Thread(target=_drive, daemon=True), threading.Thread(target=_watchdog, daemon=True)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    try:
        node.run()
    finally:
        finished.set()
        for t in threads:
            t.join(timeout_s)
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def wait_for(pred: Callable[[], bool], timeout_s: float = 10.0, step_s: float = 0.05) -> bool:
    """Poll ``pred`` until true or timeout; returns the last value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step_s)
    return pred()


def run_in_node_thread(build: Callable[[], tuple], driver: Callable[..., None], after: Callable[..., Any],
                       timeout_s: float = 90.0) -> Any:
    """Build, run and inspect a LiveNode on a fresh thread and return ``after(*built)``.

    rc7 allows one LiveNode per thread and its objects must only be touched from the thread that
    created them, so ``build() -> (node, *extras)`` creates the node (and strategy) on that thread,
    ``driver(handle, *extras)`` runs on a helper thread while the node runs, and
    ``after(*extras)`` runs on the node's thread once it has stopped (assertions go there).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        node = None
        try:
            extras = None
            node, *extras = build()
            run_node(node, lambda handle: driver(handle, *extras), timeout_s=timeout_s)
            box["value"] = after(*extras)
        except BaseException as e:
            box["error"] = e.with_traceback(None)  # frames would keep node objects alive off-thread
        finally:
            if node is not None:
                node.dispose()
            node = extras = None
            gc.collect()  # Nautilus objects are "unsendable": collect them on this thread

    t = threading.Thread(target=target, name="live-node", daemon=True)
    t.start()
    t.join(timeout_s + 30)
    if t.is_alive():
        raise TimeoutError("live node thread did not finish")
    if "error" in box:
        raise box["error"]
    return box.get("value")
