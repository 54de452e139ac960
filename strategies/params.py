"""Strategy parameter types with their ranges and units (msgspec constraints), declared once.

A strategy config class declares each parameter with one of these types (or its own
``Annotated[..., msgspec.Meta(...)]``) in its ``__init__`` signature or as a class attribute, e.g.
``fast_period: Bars = 10``. The same declaration is read by

* the config loader (:mod:`nautilus_app.strategy_loader`): values from TOML / the Dash form are
  converted with ``msgspec.convert`` against it, so an out-of-range value fails before any data
  is loaded, naming ``strategies[i].params.<key>``, the value and the range;
* the Dash launcher (``dash_ui/pages/launch.py``): ``min`` / ``max`` of the number inputs;
* sweeps (:mod:`nautilus_app.research.spec`): a ``[params.<name>]`` range outside the parameter's
  range is refused when the sweep is loaded.

Plain Nautilus user strategies need none of this: a bare ``int`` / ``float`` annotation works as
before (checked for its type only). Cross-parameter rules (``fast_period < slow_period``) stay in
the config class's ``__init__``.

A config class built in Python (not through the loader) checks its values against the same
declarations with :func:`set_checked` in its ``__init__``, instead of hand-written casts and range tests.
"""

from __future__ import annotations

import inspect
import typing
from typing import Annotated, Any

import msgspec

#: A length or count in bars (indicator periods, holding limits): a whole number >= 1.
Bars = Annotated[int, msgspec.Meta(ge=1, description="bars (>= 1)")]
#: A number of bars that may be 0 (0 = off / no wait).
BarsOrZero = Annotated[int, msgspec.Meta(ge=0, description="bars (>= 0; 0 = off)")]
#: Notional of an entry as a fraction of account equity (0.20 = 20 %), leverage included: (0, 10].
EquityFraction = Annotated[float, msgspec.Meta(gt=0.0, le=10.0, description="fraction of equity, 0.2 = 20 %")]
#: A fraction of an order's notional kept free for fees and price drift: [0, 1).
NotionalFraction = Annotated[float, msgspec.Meta(ge=0.0, lt=1.0, description="fraction of notional")]
#: A non-negative fraction (0.02 = 2 %), e.g. a distance from a moving average.
Fraction = Annotated[float, msgspec.Meta(ge=0.0, description="fraction, 0.02 = 2 %")]
#: An oscillator level on the 0..100 scale (RSI, ADX).
Level100 = Annotated[float, msgspec.Meta(ge=0.0, le=100.0, description="level on the 0..100 scale")]
#: A positive multiple (Bollinger width in standard deviations, ATR multiple).
Multiple = Annotated[float, msgspec.Meta(gt=0.0, description="multiple (> 0)")]


_DECLARED: dict[tuple[type, str], Any] = {}


def declared_type(cls: type, name: str) -> Any:
    """The annotation of ``name`` in the first ``__init__`` of ``cls``'s MRO that declares it (with its
    msgspec constraints), or ``Any``."""
    key = (cls, name)
    if key not in _DECLARED:
        found: Any = Any
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or not inspect.isfunction(init) or name not in inspect.signature(init).parameters:
                continue
            found = typing.get_type_hints(init, include_extras=True).get(name, Any)
            break
        _DECLARED[key] = found
    return _DECLARED[key]


def set_checked(config: Any, **values: Any) -> None:
    """Set each value on ``config``, converted to the type its config class declares for it (type and
    range, msgspec rules in lax mode: ``"10"`` and ``10.0`` are fine for an ``int``, ``10.5`` is not).

    Raises:
        ValueError: ``<name> = <value>: expected <what msgspec says>`` (a ``msgspec.ValidationError``).
    """
    cls = type(config)
    for name, value in values.items():
        try:
            setattr(config, name, msgspec.convert(value, declared_type(cls, name), strict=False))
        except msgspec.ValidationError as e:
            raise msgspec.ValidationError(f"{name} = {value!r}: {str(e)[:1].lower()}{str(e)[1:]}") from None
