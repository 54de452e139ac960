"""Prometheus ``/metrics`` for paper and live sessions (``prometheus-client``).

One collector, :class:`SessionCollector`, turns session status dicts into metric families at each
scrape, so nothing is kept twice: a live session serves its own in-process status
(:func:`start_metrics_server` with ``lambda: [session.status()]``), and ``nautilus-app metrics``
serves the ``status.json`` of every paper/live results folder (:func:`results_sources`), which
covers paper sessions without touching the paper node.

Metrics (labels ``session``, ``mode``; per instrument also ``instrument``):

| metric | what |
|---|---|
| ``nautilus_session_up`` | 1 while the session runs (status written < 3 x status interval ago for files) |
| ``nautilus_equity`` / ``nautilus_pnl`` / ``nautilus_unrealized_pnl`` / ``nautilus_daily_pnl`` | quote currency (USDT) |
| ``nautilus_drawdown`` | fraction below the session's peak equity |
| ``nautilus_position_quantity`` / ``nautilus_position_notional`` | per instrument (signed qty, abs notional) |
| ``nautilus_exposure_gross`` / ``nautilus_leverage`` | sum of abs notionals; gross / equity |
| ``nautilus_open_orders`` | open orders |
| ``nautilus_orders_submitted_total`` / ``_denied_total{reason}`` / ``_rejected_total`` / ``nautilus_fills_total`` | counters |
| ``nautilus_order_latency_seconds{stat}`` | submit -> first venue event: ``last``, ``avg``, ``max`` |
| ``nautilus_feed_staleness_seconds`` / ``nautilus_feed_stale`` | seconds since the last bar; 1 while stale |
| ``nautilus_errors_total`` / ``nautilus_alerts_total{outcome}`` / ``nautilus_trading_halted`` | |
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Source = Callable[[], Iterable[dict]]


class SessionCollector:
    """A prometheus-client custom collector over session status dicts (see the module docstring)."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def describe(self) -> list:  # no fixed description: families depend on the sessions
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        base = ["session", "mode"]
        g = {n: GaugeMetricFamily(f"nautilus_{n}", h, labels=base) for n, h in (
            ("session_up", "1 while the session runs"),
            ("equity", "equity in the quote currency (USDT)"),
            ("pnl", "equity minus the starting equity"),
            ("unrealized_pnl", "unrealized PnL of open positions"),
            ("daily_pnl", "equity minus the equity at 00:00 UTC"),
            ("drawdown", "fraction below the peak equity"),
            ("exposure_gross", "sum of absolute position notionals"),
            ("leverage", "gross exposure / equity"),
            ("open_orders", "open orders"),
            ("feed_staleness_seconds", "seconds since the last bar"),
            ("feed_stale", "1 while the market data feed is stale"),
            ("trading_halted", "1 while new entries are refused (limit breach, kill switch, reconciliation)"),
        )}
        c = {n: CounterMetricFamily(f"nautilus_{n}", h, labels=base) for n, h in (
            ("orders_submitted", "orders sent to the execution client"),
            ("orders_rejected", "orders rejected by the venue"),
            ("fills", "fills"),
            ("errors", "errors (strategy exceptions, failed writes, failed alerts)"),
        )}
        denied = CounterMetricFamily("nautilus_orders_denied", "orders stopped by a safety rail", labels=[*base, "reason"])
        alerts = CounterMetricFamily("nautilus_alerts", "alerts by outcome", labels=[*base, "outcome"])
        pos_q = GaugeMetricFamily("nautilus_position_quantity", "signed position", labels=[*base, "instrument"])
        pos_n = GaugeMetricFamily("nautilus_position_notional", "absolute notional", labels=[*base, "instrument"])
        lat = GaugeMetricFamily("nautilus_order_latency_seconds", "submit to first venue event",
                                labels=[*base, "stat"])
        for st in self.source():
            lv = [str(st.get("session") or st.get("run_id") or "?"), str(st.get("mode", "paper"))]
            m = st.get("metrics", {})

            def num(key: str, default: float | None = 0.0, _st: dict = st, _m: dict = m) -> float | None:
                v = _m.get(key, _st.get(key, default))
                return default if v is None else float(v)

            g["session_up"].add_metric(lv, 1.0 if st.get("running", True) else 0.0)
            for key, name in (("equity_usdt", "equity"), ("pnl", "pnl"), ("unrealized_pnl", "unrealized_pnl"),
                              ("daily_pnl", "daily_pnl"), ("drawdown", "drawdown"),
                              ("exposure_gross", "exposure_gross"), ("leverage", "leverage"),
                              ("feed_staleness_seconds", "feed_staleness_seconds")):
                v = num(key, None)
                if v is not None:
                    g[name].add_metric(lv, v)
            g["open_orders"].add_metric(lv, float(len(st.get("open_orders", []))))
            g["feed_stale"].add_metric(lv, 1.0 if st.get("feed_stale") else 0.0)
            g["trading_halted"].add_metric(lv, 1.0 if st.get("halted") else 0.0)
            c["orders_submitted"].add_metric(lv, num("orders_submitted") or 0.0)
            c["orders_rejected"].add_metric(lv, num("orders_rejected") or 0.0)
            c["fills"].add_metric(lv, num("fills") or 0.0)
            c["errors"].add_metric(lv, num("errors") or 0.0)
            for reason, n in (m.get("orders_denied") or {}).items():
                denied.add_metric([*lv, reason], float(n))
            for outcome, n in (m.get("alerts") or {}).items():
                alerts.add_metric([*lv, outcome], float(n))
            for stat_, v in (m.get("order_latency_seconds") or {}).items():
                if v is not None:
                    lat.add_metric([*lv, stat_], float(v))
            for p in st.get("positions", []):
                pos_q.add_metric([*lv, p["instrument_id"]], float(p.get("quantity", 0.0)))
                if p.get("notional") is not None:
                    pos_n.add_metric([*lv, p["instrument_id"]], abs(float(p["notional"])))
        yield from g.values()
        yield from c.values()
        yield from (denied, alerts, pos_q, pos_n, lat)


def results_sources(results_root: Path, stale_factor_seconds: float = 120.0) -> Source:
    """Status dicts of every paper/live session under ``results_root`` (``run.json`` mode paper/live)."""

    def read() -> list[dict]:
        out = []
        from nautilus_app.results.reader import open_results

        for run_json in sorted(Path(results_root).glob("*/run.json")):
            folder = open_results(run_json.parent)  # JSON files read as {} when missing or mid-rewrite
            info = folder.info
            if info.get("mode") not in ("paper", "live"):
                continue
            st = dict(folder.status)
            if not st:
                continue
            written = st.get("written_at")
            fresh = True
            if written:
                age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(written)).total_seconds()
                fresh = age < stale_factor_seconds
            st.setdefault("session", info.get("run_id", run_json.parent.name))
            st["mode"] = info.get("mode")
            st["running"] = bool(info.get("running")) and fresh
            if "equity_usdt" in st and "pnl" not in st.get("metrics", {}) and info.get("mode") == "paper":
                st.setdefault("metrics", {})
            out.append(st)
        return out

    return read


def make_registry(source: Source) -> Any:
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(SessionCollector(source))
    return reg


def start_metrics_server(source: Source, port: int, host: str = "127.0.0.1") -> tuple[Any, int]:
    """Serve ``/metrics`` on ``host:port`` (0 = a free port) in a daemon thread. Returns (server, port)."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=make_registry(source))
    return server, server.server_address[1]


def serve_results(results_root: Path, port: int, host: str = "127.0.0.1") -> int:
    """``nautilus-app metrics``: serve every paper/live session's status until interrupted."""
    server, bound = start_metrics_server(results_sources(results_root), port, host)
    print(f"serving /metrics for paper and live sessions under {results_root} on http://{host}:{bound}/metrics",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0
