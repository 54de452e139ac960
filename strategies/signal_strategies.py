"""The built-in strategies in the vectorised-signals style (``strategies.signals``): EMA cross, trend
following and mean reversion, each the twin of its event-driven strategy (same config class, same
parameters, same rules; tests/test_signals.py checks every fill of both on real data).

Indicators are computed once per gap segment with the same floating-point recipe as the event-driven
ones (Nautilus's EMA reproduced in :func:`strategies.signals.nautilus_ema`; the others run once over
the arrays with :func:`strategies.signals.run_indicator`), signals with numpy on whole columns. Indicator
columns are NaN where the indicator is not initialized yet (:func:`strategies.signals.until_ready`), as the
event-driven strategies' recorded plot series are: the two runs draw the same charts.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from nautilus_trader.indicators import AverageTrueRange, RelativeStrengthIndex, SimpleMovingAverage

from strategies.ema_cross import EMACrossConfig, ema_lines
from strategies.indicators import AverageDirectionalIndex, SampleBollingerBands
from strategies.mean_reversion import MeanReversionConfig
from strategies.signals import SignalStrategy, run_indicator, until_ready
from strategies.trend_following import TrendFollowingConfig


def _prev_in_segment(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """``x`` of the previous row of the same segment (NaN on a segment's first row)."""
    prev = np.r_[np.nan, x[:-1]]
    if len(x):
        prev[np.r_[True, seg[1:] != seg[:-1]]] = np.nan
    return prev


def _px(values: np.ndarray, precision: int) -> np.ndarray:
    """``strategies.indicators._px`` for a column: Python's correctly rounded ``round(x, precision)``."""
    return np.array([round(v, precision) for v in values.tolist()])


class EMACrossSignals(SignalStrategy):
    """:class:`strategies.ema_cross.EMACross` as vectorised signals (config :class:`EMACrossConfig`)."""

    #: Columns of the signal frame drawn on the run's candle chart (nautilus_app/plotting.py).
    plot_config: ClassVar[dict] = {"main_plot": {"ema_fast": {"label": "EMA fast"}, "ema_slow": {"label": "EMA slow"}}}

    reverse_on_exit = True  # up-cross: close a short, then buy; down-cross: close a long, then (maybe) short

    def __init__(self, config: EMACrossConfig) -> None:
        super().__init__(config)
        self.fast_period = config.fast_period
        self.slow_period = config.slow_period

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        df["ema_fast"], df["ema_slow"], df["ready"] = ema_lines(df, self.fast_period, self.slow_period)
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        diff = np.where(df["ready"].to_numpy(), df["ema_fast"].to_numpy() - df["ema_slow"].to_numpy(), np.nan)
        prev = _prev_in_segment(diff, df["segment"].to_numpy())
        with np.errstate(invalid="ignore"):
            df["enter_long"] = (prev <= 0.0) & (diff > 0.0)
            df["enter_short"] = (prev >= 0.0) & (diff < 0.0)
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["exit_long"] = df["enter_short"]
        df["exit_short"] = df["enter_long"]
        codes = np.where(df["enter_long"].to_numpy(), 1, np.where(df["enter_short"].to_numpy(), 2, 0)).astype(np.int8)
        df["exit_tag"] = pd.Categorical.from_codes(codes, categories=["", "EMA_UP_CROSS", "EMA_DOWN_CROSS"])
        return df


class _SMAOf:
    """A Nautilus SMA fed only where a flag is set (the trend strategy's ATR mean)."""

    def __init__(self, period: int) -> None:
        self.sma = SimpleMovingAverage(period)
        self.value = 0.0
        self.initialized = False

    def update_raw(self, x: float, ok: float) -> None:
        if ok:
            self.sma.update_raw(x)
        self.value, self.initialized = self.sma.value, self.sma.initialized


class TrendFollowingSignals(SignalStrategy):
    """:class:`strategies.trend_following.TrendFollowing` as vectorised signals."""

    #: Columns of the signal frame drawn on the run's candle chart (nautilus_app/plotting.py).
    plot_config: ClassVar[dict] = {
        "main_plot": {"sma_fast": {"label": "SMA fast"}, "sma_slow": {"label": "SMA slow"}},
        "subplots": {"ADX": {"adx": {"label": "ADX", "levels_from": ["adx_threshold"]}},
                     "ATR": {"atr": {"label": "ATR"}, "atr_mean": {"label": "ATR mean"}}}}

    exit_tags_before_max_hold = frozenset({"EXTREME_VOLATILITY", "WEAK_TREND"})

    def __init__(self, config: TrendFollowingConfig) -> None:
        super().__init__(config)
        self.cfg = config

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        c = self.cfg
        seg = df["segment"].to_numpy()
        prec = self.instrument.price_precision
        (df["sma_fast"],), fast_ok = run_indicator(lambda: SimpleMovingAverage(c.ma_fast), [df["close_nd"]], seg)
        (df["sma_slow"],), slow_ok = run_indicator(lambda: SimpleMovingAverage(c.ma_slow), [df["close_nd"]], seg)
        px = {k: _px(df[k].to_numpy(), prec) for k in ("high", "low", "close")}
        (df["adx"],), adx_ok = run_indicator(lambda: AverageDirectionalIndex(c.adx_period),
                                             [px["high"], px["low"], px["close"]], seg)
        (df["atr"],), atr_ok = run_indicator(lambda: AverageTrueRange(c.atr_period),
                                             [df["high_nd"], df["low_nd"], df["close_nd"]], seg)
        (df["atr_mean"],), mean_ok = run_indicator(lambda: _SMAOf(c.atr_mean_period),
                                                   [df["atr"], atr_ok.astype(float)], seg)
        df["close_px"] = px["close"]
        df["ready"] = fast_ok & slow_ok & adx_ok & mean_ok
        for col, ok in (("sma_fast", fast_ok), ("sma_slow", slow_ok), ("adx", adx_ok), ("atr", atr_ok),
                        ("atr_mean", mean_ok)):
            df[col] = until_ready(df[col].to_numpy(), ok)
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        c = self.cfg
        ready = df["ready"].to_numpy()
        fast, slow, close = df["sma_fast"].to_numpy(), df["sma_slow"].to_numpy(), df["close_px"].to_numpy()
        extreme = df["atr"].to_numpy() > c.atr_critical_mult * df["atr_mean"].to_numpy()
        weak = df["adx"].to_numpy() < c.adx_threshold
        calm = ready & ~extreme & ~weak
        df["enter_long"] = calm & (fast > slow) & (close > fast) & (close > slow)
        df["enter_short"] = calm & (fast < slow) & (close < fast) & (close < slow)
        df["_extreme"], df["_weak"] = extreme, weak
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        ready = df["ready"].to_numpy()
        extreme, weak = df["_extreme"].to_numpy(), df["_weak"].to_numpy()
        fast, slow = df["sma_fast"].to_numpy(), df["sma_slow"].to_numpy()
        df["exit_long"] = ready & (extreme | weak | (fast < slow))
        df["exit_short"] = ready & (extreme | weak | (fast > slow))
        df["exit_tag"] = np.where(extreme, "EXTREME_VOLATILITY", np.where(weak, "WEAK_TREND", "MA_CROSS_BACK"))
        return df


class MeanReversionSignals(SignalStrategy):
    """:class:`strategies.mean_reversion.MeanReversion` as vectorised signals."""

    #: Columns of the signal frame drawn on the run's candle chart (nautilus_app/plotting.py).
    plot_config: ClassVar[dict] = {
        "main_plot": {"bb_upper": {"label": "BB upper"}, "bb_middle": {"label": "BB middle"},
                      "bb_lower": {"label": "BB lower"}, "trend": {"label": "trend SMA"}},
        "subplots": {"RSI": {"rsi": {"label": "RSI", "levels_from": ["rsi_lower", "rsi_exit", "rsi_upper"]}}}}

    def __init__(self, config: MeanReversionConfig) -> None:
        super().__init__(config)
        self.cfg = config

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        c = self.cfg
        seg = df["segment"].to_numpy()
        (df["rsi"],), rsi_ok = run_indicator(lambda: RelativeStrengthIndex(c.rsi_period), [df["close_nd"]], seg)
        df["close_px"] = _px(df["close_nd"].to_numpy(), self.instrument.price_precision)
        (df["bb_middle"], df["bb_upper"], df["bb_lower"]), bb_ok = run_indicator(
            lambda: SampleBollingerBands(c.bb_period, c.bb_k), [df["close_px"]], seg, ("middle", "upper", "lower"))
        (df["trend"],), trend_ok = run_indicator(lambda: SimpleMovingAverage(c.trend_ma_period), [df["close_nd"]], seg)
        df["ready"] = rsi_ok & bb_ok & trend_ok
        for col, ok in (("rsi", rsi_ok), ("bb_middle", bb_ok), ("bb_upper", bb_ok), ("bb_lower", bb_ok),
                        ("trend", trend_ok)):
            df[col] = until_ready(df[col].to_numpy(), ok)
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        c = self.cfg
        ready, rsi, close = df["ready"].to_numpy(), df["rsi"].to_numpy(), df["close_px"].to_numpy()
        trend = df["trend"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = (close - trend) / trend
        df["enter_long"] = ready & (rsi < c.rsi_lower) & (close < df["bb_lower"].to_numpy()) & ~(dev < -c.trend_threshold)
        df["enter_short"] = ready & (rsi > c.rsi_upper) & (close > df["bb_upper"].to_numpy()) & ~(dev > c.trend_threshold)
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        c = self.cfg
        ready, rsi, close, mid = (df["ready"].to_numpy(), df["rsi"].to_numpy(), df["close_px"].to_numpy(),
                                  df["bb_middle"].to_numpy())
        df["exit_long"] = ready & ((close >= mid) | (rsi >= c.rsi_exit))
        df["exit_short"] = ready & ((close <= mid) | (rsi <= c.rsi_exit))
        df["exit_tag"] = "MEAN_REVERTED"
        return df



class BuyAndHoldSignals(SignalStrategy):
    """:class:`strategies.buy_and_hold.BuyAndHold` as vectorised signals: an entry signal on the first bar only."""

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = np.arange(len(df)) == 0
        return df
