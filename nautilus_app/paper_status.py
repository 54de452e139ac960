"""``status.json`` of a paper session, rewritten while it runs (issue 22: split from paper.py).

What it holds: equity, balances, funding, positions (config instrument ids, unrealized PnL at the
last close), open orders, the last market data time, the feed state (stale, orders held), the
warm-up state (simulated execution) and counters. Equity: USDT balance plus unrealized PnL
(perpetuals) or plus base balances at their last close (spot); funding is in the balance with
simulated execution and added from the recorder's ledger otherwise.

``session`` arguments are the :class:`nautilus_app.paper.PaperSession` (typed ``Any``: that module
imports this one, and the modules of a package import one way, no cycle).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pandas as pd
from nautilus_trader.model import Venue

from nautilus_app.paper_events import event as _event
from nautilus_app.paper_plan import LIVE_VENUE
from nautilus_app.results.writer import replace_file


def write_status(session: Any, rec: Any, reason: str) -> None:
    """``status.json``: equity, balances, positions, open orders, last data time, feed state."""
    try:
        cache = session.cache
        positions = [{
            "instrument_id": session.plan.reverse_ids.get(str(p.instrument_id), str(p.instrument_id)),
            "strategy_id": str(p.strategy_id), "side": str(p.side), "quantity": float(p.signed_qty),
            "avg_px_open": float(p.avg_px_open),
            "unrealized_pnl": _upnl(p, rec), "position_id": str(p.id),
        } for p in cache.positions_open()]
        orders = [{
            "client_order_id": str(o.client_order_id), "instrument_id":
                session.plan.reverse_ids.get(str(o.instrument_id), str(o.instrument_id)),
            "side": str(o.side), "type": str(o.order_type), "quantity": float(o.quantity),
            "status": str(o.status),
        } for o in cache.orders_open()]
        balances = {}
        acct = cache.account_for_venue(Venue(session.plan.live_venue))
        if acct is not None:
            for ccy, bal in acct.balances().items():
                balances[str(ccy)] = float(bal.total.as_double())
        if session.simulated:  # funding is in the balance already
            funding = sum(r["amount"] for r in session.book.funding() if "amount" in r)
            equity = _equity(session, balances, positions, rec)
        else:
            funding = sum(r["amount"] for r in session.state.funding())
            equity = _equity(session, balances, positions, rec) + funding
        status = {
            "run_id": session.run_id, "trader_id": session.plan.settings.trader_id, "reason": reason,
            "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "start_number": session.starts, "bars_this_start": rec.bars_seen,
            "last_data_ts": None if rec.last_market_ns is None else str(pd.Timestamp(rec.last_market_ns, tz="UTC")),
            "feed_stale": session.guard.stale, "orders_held": len(session.guard.held),
            "balances": balances, "funding_usdt": funding, "equity_usdt": equity,
            "positions": positions, "open_orders": orders,
            "execution": session.plan.settings.execution,
            "warm": session.warm if session.simulated else True,
            "trading_allowed": (session.warm and not session.guard.stale) if session.simulated else not session.guard.stale,
            "warm_status": session.warm_message if session.simulated else "sandbox: no warm-up (indicators start cold)",
            "warm_bars": session.warm_bars, "catch_up_bars": session.catch_up_bars,
            "catch_up_bars_traded": session.catch_up_traded, "restart_replayed_bars": session.restart_replayed_bars,
            "bars_processed": session.bars_processed,
            "orders_suppressed_while_warming": session.suppressed,
        }
        replace_file(session.results_path / "status.json", json.dumps(status, indent=2, default=str).encode())
    except Exception as e:  # noqa: BLE001 - status must never take the node down
        _event(logging.ERROR, "status write failed", error=repr(e))


def _upnl(p: Any, rec: Any) -> float:
    px = rec.last_close.get(str(p.instrument_id))
    return 0.0 if px is None else float(p.signed_qty) * (px - float(p.avg_px_open))


def _equity(session: Any, balances: dict[str, float], positions: list[dict], rec: Any) -> float:
    eq = balances.get("USDT", 0.0)
    if session.plan.is_margin:
        return eq + sum(p["unrealized_pnl"] for p in positions)
    for ccy, amount in balances.items():  # spot: value base balances at the last close
        if ccy == "USDT":
            continue
        px = rec.last_close.get(f"{ccy}USDT.{LIVE_VENUE}")
        if px is not None:
            eq += amount * px
    return eq
