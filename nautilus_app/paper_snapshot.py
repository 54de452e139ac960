"""Strategy state that bars cannot rebuild, saved with every bar of a simulated paper session and put
back after a restart (issue 22: split from paper_exec.py; used by :mod:`nautilus_app.paper_sequencer`)."""

from __future__ import annotations

import math
from typing import Any

_PLAIN = (int, float, str, bool, type(None))


def _plain(v: Any, depth: int = 0) -> tuple[bool, Any]:
    if isinstance(v, _PLAIN):
        return (not (isinstance(v, float) and not math.isfinite(v))), v
    if isinstance(v, (list, tuple)) and depth < 3:
        items = [_plain(x, depth + 1) for x in v]
        return all(ok for ok, _ in items), [x for _, x in items]
    if isinstance(v, dict) and depth < 3 and all(isinstance(k, str) for k in v):
        items = {k: _plain(x, depth + 1) for k, x in v.items()}
        return all(ok for ok, _ in items.values()), {k: x for k, (_, x) in items.items()}
    return False, None


#: attributes that wire a strategy into the platform (set by the runner, not strategy state): never saved
_WIRING = frozenset({"plot_recorder", "_bar_hooks"})


def _attributes(obj: Any) -> dict[str, Any]:
    """The object's instance dictionary and the values of its classes' ``__slots__`` (e.g.
    ``strategies.base.BarStrategy`` keeps its per-bar state in slots), without the platform's wiring."""
    out = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__") or name in out:
                continue
            try:
                out[name] = getattr(obj, name)
            except AttributeError:  # a slot never set
                pass
    for name in _WIRING:
        out.pop(name, None)
    return out


def _state_of(obj: Any, depth: int) -> dict:
    out: dict[str, Any] = {}
    for name, v in _attributes(obj).items():
        ok, val = _plain(v)
        if ok:
            out[name] = val
        elif depth < 2 and (hasattr(v, "__dict__") or hasattr(type(v), "__slots__")) and \
                type(v).__module__.split(".")[0] in ("strategies", "nautilus_app"):
            out[name] = {"__object__": _state_of(v, depth + 1)}
    return out


def snapshot_strategy(strategy: Any) -> dict:
    """The strategy's state bars cannot rebuild, as JSON-able data.

    A strategy may define ``paper_state() -> dict`` and ``restore_paper_state(dict)``; otherwise every
    plain attribute (numbers, strings, booleans, None, and lists/dicts of them) of the strategy and of
    its helper objects from this project's packages (e.g. the risk manager: trailing-stop levels,
    cooldowns) is saved. Indicators and Nautilus objects are not: the feed rebuilds them.
    """
    if hasattr(strategy, "paper_state"):
        return {"__custom__": strategy.paper_state()}
    return _state_of(strategy, 0)


def _restore_into(obj: Any, state: dict) -> None:
    for name, v in state.items():
        if isinstance(v, dict) and "__object__" in v:
            target = getattr(obj, name, None)
            if target is not None:
                _restore_into(target, v["__object__"])
            continue
        try:
            cur = getattr(obj, name, None)
            setattr(obj, name, tuple(v) if isinstance(cur, tuple) and isinstance(v, list) else v)
        except (AttributeError, TypeError):
            pass


def restore_strategy(strategy: Any, state: dict) -> None:
    """Put a :func:`snapshot_strategy` back (then marks cached order/position state as stale)."""
    if "__custom__" in state and hasattr(strategy, "restore_paper_state"):
        strategy.restore_paper_state(state["__custom__"])
        return
    _restore_into(strategy, state)
    if hasattr(strategy, "_state_dirty"):
        strategy._state_dirty = True  # re-read position side and pending orders from the reconciled cache
    risk = getattr(strategy, "risk", None)
    if risk is not None and hasattr(risk, "adopt_open_orders"):
        risk.adopt_open_orders(strategy)  # the resting protective stop / take-profit, reconciled from the book
