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
"""

from __future__ import annotations

from typing import Annotated

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
