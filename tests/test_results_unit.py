"""Unit tests of results helpers that the real-data runs rarely reach (an account wiped out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nautilus_app.results import _daily_returns_until_wipeout


def test_wiped_out_account_gives_minus_100_percent_then_flat() -> None:
    idx = pd.date_range("2025-01-01", periods=5 * 1440, freq="1min", tz="UTC")
    values = np.r_[np.linspace(1000.0, 500.0, 3 * 1440), np.zeros(2 * 1440)]
    returns = _daily_returns_until_wipeout(pd.Series(values, index=idx), 1000.0)
    # day closes by hand: last sample of each UTC day
    closes = [values[1440 * (d + 1) - 1] for d in range(3)]
    assert returns.iloc[0] == pytest.approx(closes[0] / 1000.0 - 1)
    assert returns.iloc[1] == pytest.approx(closes[1] / closes[0] - 1)
    assert returns.iloc[2] == pytest.approx(closes[2] / closes[1] - 1)
    assert returns.iloc[3] == -1.0 and returns.iloc[4] == 0.0
    assert (1 + returns).prod() - 1 == pytest.approx(-1.0)
