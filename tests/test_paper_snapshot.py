"""A paper session's strategy snapshot holds the per-bar state BarStrategy keeps in slots (issue 23 moved
it out of the instance dictionary), and nothing of the platform's wiring."""

from __future__ import annotations

from nautilus_app.paper_snapshot import restore_strategy, snapshot_strategy
from strategies.ema_cross import EMACross, EMACrossConfig

BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


def _strategy() -> EMACross:
    return EMACross(EMACrossConfig(instrument_id="BTCUSDT.BINANCE", bar_type=BAR, max_gap_bars=5))


def test_snapshot_restores_slot_state_and_leaves_wiring_alone() -> None:
    s = _strategy()
    s.bar_index, s._last_ts, s.entry_bar_index, s.last_exit_bar_index = 41, 123_000, 39, 12
    s.prev_diff, s.warmed_up, s.gap_resets = -0.25, True, 3
    s.plot_recorder = print  # the run's wiring: never saved
    state = snapshot_strategy(s)
    assert {"bar_index": 41, "_last_ts": 123_000, "prev_diff": -0.25, "warmed_up": True}.items() <= state.items()
    assert "plot_recorder" not in state and "_bar_hooks" not in state

    fresh = _strategy()
    fresh.plot_recorder = len
    restore_strategy(fresh, state)
    assert (fresh.bar_index, fresh._last_ts, fresh.entry_bar_index, fresh.last_exit_bar_index) == (41, 123_000, 39, 12)
    assert (fresh.prev_diff, fresh.warmed_up, fresh.gap_resets) == (-0.25, True, 3)
    assert fresh.plot_recorder is len and fresh._state_dirty is True
    assert fresh._max_gap_ns == 5 * 60_000_000_000  # derived from the config, as in the saved strategy
