"""UTC timestamps from nanosecond integers, without pandas' generic parsing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["utc_index"]


def utc_index(ns: Any, name: str | None = None) -> pd.DatetimeIndex:
    """``pd.to_datetime(ns, utc=True)`` for integer nanoseconds since the epoch (any int sequence or array):
    the same ``datetime64[ns, UTC]`` index, by viewing the integers as datetimes. ``to_datetime`` inspects
    its input element by element first: 160 ms for 560,703 bar times against 2 ms."""
    arr = np.asarray(ns, dtype=np.int64)
    return pd.DatetimeIndex(arr.view("datetime64[ns]"), name=name).tz_localize("UTC")
