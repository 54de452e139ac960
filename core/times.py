"""UTC timestamps from nanosecond integers, without pandas' generic parsing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["to_utc", "utc_index", "utc_texts"]


def utc_index(ns: Any, name: str | None = None) -> pd.DatetimeIndex:
    """``pd.to_datetime(ns, utc=True)`` for integer nanoseconds since the epoch (any int sequence or array):
    the same ``datetime64[ns, UTC]`` index, by viewing the integers as datetimes. ``to_datetime`` inspects
    its input element by element first: 160 ms for 560,703 bar times against 2 ms."""
    arr = np.asarray(ns, dtype=np.int64)
    return pd.DatetimeIndex(arr.view("datetime64[ns]"), name=name).tz_localize("UTC")


def to_utc(values: Any) -> Any:
    """``pd.to_datetime(values, utc=True)`` (a Series stays a Series, anything else as pandas returns it), with
    a shortcut for values that already hold timezone-aware datetimes: converted to UTC as they are. pandas
    checks a Series element by element for its cache first, even when it is already ``datetime64[ns, tz]``
    (8 ms per call on 5,692 fill times against 0.1 ms). Raises what ``pd.to_datetime`` raises."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.DatetimeTZDtype):
        return values if str(values.dtype.tz) == "UTC" else values.dt.tz_convert("UTC")
    return pd.to_datetime(values, utc=True)


def utc_texts(ns: Any) -> np.ndarray:
    """``[str(pd.Timestamp(t, tz="UTC")) for t in ns]`` as an object array, e.g. ``"2023-07-10 00:46:00+00:00"``
    (integer nanoseconds since the epoch). Whole seconds are formatted by numpy (8 ms for 2,846 times against
    37 ms one ``Timestamp`` at a time); times with a fraction of a second go through ``pd.Timestamp``, which
    prints 6 or 9 decimals as they need."""
    arr = np.asarray(ns, dtype=np.int64)
    # str methods on the numpy texts, not numpy.char (importing it cost ~9 ms of every backtest process)
    texts = np.empty(len(arr), dtype=object)
    texts[:] = [t.replace("T", " ") + "+00:00"
                for t in np.datetime_as_string(arr.view("datetime64[ns]").astype("datetime64[s]")).tolist()]
    for i in np.flatnonzero(arr % 1_000_000_000):
        texts[i] = str(pd.Timestamp(int(arr[i]), tz="UTC"))
    return texts
