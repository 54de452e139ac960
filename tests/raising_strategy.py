"""A strategy that raises on a chosen bar: proves the runner turns callback exceptions into failed runs."""

from __future__ import annotations

from typing import Any

from strategies.base import BarStrategy, BarStrategyConfig


class RaisingConfig(BarStrategyConfig):
    """``raise_on_bar``: 0-based bar index on which ``on_signal_bar`` raises ``RuntimeError``."""

    def __init__(self, *, raise_on_bar: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.raise_on_bar = int(raise_on_bar)


class RaisingStrategy(BarStrategy):
    """Does nothing until bar ``raise_on_bar``, then raises."""

    def on_signal_bar(self, bar: Any, side: Any) -> None:
        if self.bar_index == self.config.raise_on_bar:
            raise RuntimeError(f"deliberate failure on bar {self.bar_index}")
