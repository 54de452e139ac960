"""A scripted strategy for paper-vs-backtest parity of order types: resting and marketable LIMIT entries,
STOP_LIMIT entries and exits, protective STOP_MARKET + take-profit LIMIT (reduce-only, one cancels the
other by hand) placed on every entry fill, and a market exit.

Every ``cycle`` bars (``phase`` = bar index modulo ``cycle``):

| phase | flat | long |
|---|---|---|
| 0 | LIMIT buy ``offset`` below the close (rests) | - |
| 3 | cancel; LIMIT buy ``offset`` above the close (marketable on arrival) | - |
| 6 | cancel; STOP_LIMIT buy: trigger close + 1, limit close + ``offset`` | cancel protective; STOP_LIMIT sell (reduce-only): trigger close - 1, limit close - ``offset`` |
| 9 | cancel | cancel; market sell (reduce-only) |

On an entry fill: a reduce-only STOP_MARKET ``stop`` below the fill and a reduce-only LIMIT ``target`` above it.
When a reduce-only order fills, the other open orders are cancelled.
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.model import OrderSide, Price, Quantity, TimeInForce

from strategies.base import BarStrategy, BarStrategyConfig


class OrderTypesConfig(BarStrategyConfig):
    """``qty`` (base units), ``offset`` / ``stop`` / ``target`` (price units), ``cycle`` (bars)."""

    def __init__(self, *, qty: str = "0.05", offset: float = 10.0, stop: float = 20.0, target: float = 30.0,
                 cycle: int = 12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.qty = str(qty)
        self.offset = float(offset)
        self.stop = float(stop)
        self.target = float(target)
        self.cycle = int(cycle)


class OrderTypes(BarStrategy):
    """See the module docstring."""

    def _px(self, x: float) -> Price:
        return Price(x, self.instrument.price_precision)

    def _qty(self, x: Any) -> Quantity:
        return Quantity.from_str(f"{abs(float(x)):.{self.instrument.size_precision}f}")

    def _cancel_open(self) -> None:
        for o in self.cache.orders_open(instrument_id=self.instrument_id, strategy_id=self.strategy_id):
            self.cancel_order(o.client_order_id)

    def on_signal_bar(self, bar: Any, side: Any) -> None:
        cfg = self.config
        phase = self.bar_index % cfg.cycle
        close = bar.close.as_double()
        q = Quantity.from_str(cfg.qty)
        f = self.order_factory
        net = self.net_quantity()
        if phase == 0 and net == 0 and not self.cache.orders_open(strategy_id=self.strategy_id):
            self.submit_order(f.limit(self.instrument_id, OrderSide.BUY, q, self._px(close - cfg.offset),
                                      time_in_force=TimeInForce.GTC))
        elif phase == 3 and net == 0:
            self._cancel_open()
            self.submit_order(f.limit(self.instrument_id, OrderSide.BUY, q, self._px(close + cfg.offset),
                                      time_in_force=TimeInForce.GTC))
        elif phase == 6:
            self._cancel_open()
            if net == 0:
                self.submit_order(f.stop_limit(self.instrument_id, OrderSide.BUY, q,
                                               self._px(close + cfg.offset), self._px(close + 1),
                                               time_in_force=TimeInForce.GTC))
            elif net > 0:
                self.submit_order(f.stop_limit(self.instrument_id, OrderSide.SELL, self._qty(net),
                                               self._px(close - cfg.offset), self._px(close - 1),
                                               time_in_force=TimeInForce.GTC, reduce_only=True))
        elif phase == 9:
            self._cancel_open()
            if net > 0:
                self.submit_order(f.market(self.instrument_id, OrderSide.SELL, self._qty(net),
                                           time_in_force=TimeInForce.GTC, reduce_only=True))

    def on_order_filled(self, event: Any) -> None:
        super().on_order_filled(event)
        order = self.cache.order(event.client_order_id)
        if order is None:
            return
        if order.is_reduce_only:
            self._cancel_open()
            return
        net = self.net_quantity()
        if net <= 0:
            return
        fill = event.last_px.as_double()
        qty = self._qty(net)
        f = self.order_factory
        self.submit_order(f.stop_market(self.instrument_id, OrderSide.SELL, qty, self._px(fill - self.config.stop),
                                        time_in_force=TimeInForce.GTC, reduce_only=True))
        self.submit_order(f.limit(self.instrument_id, OrderSide.SELL, qty, self._px(fill + self.config.target),
                                  time_in_force=TimeInForce.GTC, reduce_only=True))
