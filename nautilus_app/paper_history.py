"""Bars a paper session did not receive live (issue 22: split from paper.py).

* Warm-up (:func:`history_bars`): a new session feeds its strategies up to ``warmup_bars`` bars
  closing after the config's ``start`` and not after the venue's clock (:func:`venue_now_ns`): from
  the catalog first (:func:`catalog_bars`), then the venue's recent bars.
* Catch-up (:func:`recent_bars`): bars missed while the node was down. Binance: the REST klines
  (``/fapi/v1/klines`` or ``/api/v3/klines``; a replay server answers on its replay clock); Ethereal:
  its price history (candles).
* Missed funding (:func:`missed_funding`): settlements a restarted session did not hear announced.
  Binance USDT-M: ``/fapi/v1/fundingRate`` (rates) and ``/fapi/v1/markPriceKlines`` (marks); Ethereal:
  ``/v1/funding`` and its oracle-price history.

Every bar is a record ``[bar_type, close ns, o, h, l, c, v]`` (:func:`bar_record`).

``session`` arguments are the :class:`nautilus_app.paper.PaperSession` (typed ``Any``: that module
imports this one, and the modules of a package import one way, no cycle).
"""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.model import BarType

from core.instruments import INTERVALS
from nautilus_app.paper_events import event as _event


def bar_record(bar_type: str, ts: int, bar: Any) -> list:
    """A bar as stored in the feed: ``[bar_type, close ns, open, high, low, close, volume]`` (strings)."""
    return [bar_type, int(ts), str(bar.open), str(bar.high), str(bar.low), str(bar.close), str(bar.volume)]


#: Binance's REST kline interval names and their length in ms
KLINE_INTERVALS_MS = {k: ns // 1_000_000 for k, (_, _, ns) in INTERVALS.items()}


def _http_json(url: str, timeout: float = 10.0) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - configured venue URL
        return json.loads(resp.read())


def venue_now_ns(session: Any) -> int:
    """The venue's clock (Binance ``/time``; the replay server answers its replay clock)."""
    if session.plan.product == "ethereal":  # the venue's stream timestamps (a replay runs on its own clock)
        # (a worker thread: the recorder actor must not be touched here, the session's copy is read)
        t_end = time.monotonic() + 10
        while not getattr(session, "venue_ns", 0) and time.monotonic() < t_end:
            time.sleep(0.01)
        return getattr(session, "venue_ns", 0) or time.time_ns()
    base = session.plan.settings.base_url_http or (
        "https://fapi.binance.com" if session.plan.product == "um" else "https://api.binance.com")
    path = "/fapi/v1/time" if session.plan.product == "um" else "/api/v3/time"
    try:
        return int(_http_json(base + path)["serverTime"]) * 1_000_000
    except Exception as e:  # noqa: BLE001 - fall back to the wall clock
        _event(logging.WARNING, "venue time not available: using the wall clock", error=repr(e))
        return time.time_ns()


def history_bars(session: Any) -> list[list]:
    """Warm-up bars of a new session: up to ``warmup_bars`` bars closing after the config's ``start``
    and not after the venue's clock, from the catalog first, then the venue's recent klines."""
    n = session.plan.settings.warmup_bars
    if n == 0:
        return []
    now = venue_now_ns(session)
    interval = session.plan.interval_ns
    now = now // interval * interval  # the last bar closed at or before the venue's clock
    lo = now - n * interval
    if session.cfg.start is not None:
        lo = max(lo, session.cfg.start_ns())
    out: list[list] = []
    for cfg_bt, live_bt in session.plan.bar_map.items():
        recs = [bar_record(live_bt, b.ts_event, b) for b in catalog_bars(session, cfg_bt, lo, now)]
        last = recs[-1][1] if recs else lo
        if last < now:
            recs += recent_bars(session, live_bt, last, now + 1)
        out += recs
    out.sort(key=lambda r: (r[1], r[0]))
    return out


def catalog_bars(session: Any, bt: str, lo: int, hi: int) -> list[Any]:
    """Catalog bars of ``bt`` closing in ``(lo, hi]`` (empty when the catalog has none)."""
    root = session.cfg.catalog_path()
    if not Path(root).exists():
        return []
    try:
        from catalog.bar_stores import open_bar_store

        bars = open_bar_store(root, bt).bars(bt, lo + 1, hi + 1)  # Nautilus's catalog or the compact store
    except Exception as e:  # noqa: BLE001 - no catalog data: the venue's klines
        _event(logging.WARNING, "catalog bars not available for the warm-up", bar_type=bt, error=repr(e))
        return []
    return [b for b in bars if lo < b.ts_event <= hi]


def recent_bars(session: Any, live_bt: str, after_ns: int, before_ns: int) -> list[list]:
    """The venue's klines of ``live_bt`` closing in ``(after_ns, before_ns)`` (Binance REST; none for Ethereal)."""
    if session.plan.product == "ethereal":
        return _ethereal_recent_bars(session, live_bt, after_ns, before_ns)
    b = BarType.from_str(live_bt)
    step_ms = session.plan.interval_ns // 1_000_000
    interval = next((k for k, v in KLINE_INTERVALS_MS.items() if v == step_ms), None)
    if interval is None:
        return []
    symbol = b.instrument_id.symbol.value.removesuffix("-PERP")
    base = session.plan.settings.base_url_http or (
        "https://fapi.binance.com" if session.plan.product == "um" else "https://api.binance.com")
    path = "/fapi/v1/klines" if session.plan.product == "um" else "/api/v3/klines"
    out: list[list] = []
    start_ms = (after_ns // 1_000_000) - step_ms + 1  # the kline closing after `after_ns` opens at its close - step
    while True:
        url = f"{base}{path}?symbol={symbol}&interval={interval}&startTime={max(start_ms, 0)}&limit=1000"
        try:
            rows = _http_json(url)
        except Exception as e:  # noqa: BLE001 - warm-up goes on with what it has
            _event(logging.WARNING, "venue klines not available", url=url, error=repr(e))
            break
        if not rows:
            break
        for r in rows:
            close_ns = (int(r[0]) + step_ms) * 1_000_000
            if after_ns < close_ns < before_ns and int(r[6]) < venue_now_ns(session) // 1_000_000 + 1:
                out.append([live_bt, close_ns, r[1], r[2], r[3], r[4], r[5]])
        last_open = int(rows[-1][0])
        if len(rows) < 1000 or (last_open + step_ms) * 1_000_000 >= before_ns:
            break
        start_ms = last_open + step_ms
    return out


def missed_funding(session: Any, live_bt: str, after_ns: int, before_ns: int) -> tuple | None:
    """``(live iid, {settlement ns: rate}, [(ns, mark)])`` of the settlements in ``(after_ns, before_ns]``
    from the venue's history (a restarted session did not hear them announced): Binance USDT-M
    (:func:`binance_funding_history`) or Ethereal (funding and oracle-price history); None for spot or
    when the venue does not answer. Runs in a worker thread: reads only plain session data."""
    if session.plan.product == "um":
        iid = BarType.from_str(live_bt).instrument_id
        base = session.plan.settings.base_url_http or "https://fapi.binance.com"
        try:
            rates, marks = binance_funding_history(base, iid.symbol.value.removesuffix("-PERP"),
                                                   session.plan.interval_ns, after_ns, before_ns)
        except (OSError, ValueError, KeyError, TypeError) as e:
            _event(logging.WARNING, "Binance funding history not available: caught-up bars settle no funding",
                   instrument_id=iid.value, error=repr(e))
            return None
        return iid.value, rates, marks
    if session.plan.product != "ethereal":
        return None
    from adapters.ethereal.bars import history_funding
    from adapters.ethereal.common.enums import EtherealNetwork
    from adapters.ethereal.common.urls import urls_for

    s = session.plan.settings
    iid = BarType.from_str(live_bt).instrument_id
    urls = urls_for(EtherealNetwork.TESTNET if s.environment == "TESTNET" else EtherealNetwork.MAINNET,
                    rest=s.base_url_http)
    try:
        rates, marks = history_funding(urls.rest, urls.tv, iid.symbol.value.removesuffix("-PERP"), after_ns, before_ns)
    except (OSError, ValueError) as e:
        _event(logging.WARNING, "Ethereal funding history not available: caught-up bars settle no funding",
               instrument_id=iid.value, error=repr(e))
        return None
    return iid.value, rates, marks


def binance_funding_history(base_url: str, symbol: str, interval_ns: int, after_ns: int,
                            before_ns: int) -> tuple[dict[int, Decimal], list[tuple[int, float]]]:
    """Binance USDT-M settlements of ``symbol`` in ``(after_ns, before_ns]`` and the marks around them.

    Rates: ``GET /fapi/v1/fundingRate`` (``fundingTime`` rounded to the second: the live ``markPrice`` stream
    announces whole times, the history may carry a few ms). Marks: ``GET /fapi/v1/markPriceKlines`` at the
    bar interval, each kline's close stamped at its close (``closeTime + 1 ms``), as the live mark stream's
    last update before the settlement; a settlement the mark klines do not cover takes the history row's
    ``markPrice``. Returns ``({settlement ns: rate}, [(ns, mark)])``.

    Raises:
        OSError, ValueError: the venue did not answer or answered something else.
    """
    lo_ms = after_ns // 1_000_000 + 1
    hi_ms = before_ns // 1_000_000
    rates: dict[int, Decimal] = {}
    history_marks: dict[int, float] = {}
    start = lo_ms
    while start <= hi_ms:
        rows = _http_json(f"{base_url}/fapi/v1/fundingRate?symbol={symbol}&startTime={start}&endTime={hi_ms}"
                          "&limit=1000")
        if not isinstance(rows, list):
            raise ValueError(f"fundingRate: unexpected answer {rows!r:.200}")
        for r in rows:
            t_ms = (int(r["fundingTime"]) + 500) // 1000 * 1000
            if lo_ms <= t_ms <= hi_ms:
                rates[t_ms * 1_000_000] = Decimal(str(r["fundingRate"]))
                if r.get("markPrice"):
                    history_marks[t_ms * 1_000_000] = float(r["markPrice"])
        if len(rows) < 1000:
            break
        start = int(rows[-1]["fundingTime"]) + 1
    marks: dict[int, float] = {}
    step_ms = interval_ns // 1_000_000
    interval = next((k for k, v in KLINE_INTERVALS_MS.items() if v == step_ms), None)
    for f_ns in sorted(rates):
        f_ms = f_ns // 1_000_000
        if interval is not None:  # the mark kline closing at the settlement
            rows = _http_json(f"{base_url}/fapi/v1/markPriceKlines?symbol={symbol}&interval={interval}"
                              f"&startTime={f_ms - step_ms}&endTime={f_ms - 1}&limit=1")
            for k in rows if isinstance(rows, list) else []:
                if int(k[6]) + 1 == f_ms:
                    marks[f_ns] = float(k[4])
        if f_ns not in marks and f_ns in history_marks:
            marks[f_ns] = history_marks[f_ns]
    return rates, sorted(marks.items())


def _ethereal_recent_bars(session: Any, live_bt: str, after_ns: int, before_ns: int) -> list[list]:
    """Ethereal's candles (price history) closing in ``(after_ns, before_ns)``."""
    from adapters.ethereal.bars import history_bars
    from adapters.ethereal.common.enums import EtherealNetwork
    from adapters.ethereal.common.urls import urls_for

    s = session.plan.settings
    iid = BarType.from_str(live_bt).instrument_id
    pp, sp = session.eth_precisions[iid.value]  # (a worker thread: Nautilus's cache is not read here)
    net = EtherealNetwork.TESTNET if s.environment == "TESTNET" else EtherealNetwork.MAINNET
    tv = urls_for(net, rest=s.base_url_http).tv
    try:
        return history_bars(tv, live_bt, iid.symbol.value.removesuffix("-PERP"), session.plan.interval_ns,
                            after_ns, before_ns, pp, sp)
    except (OSError, ValueError) as e:  # warm-up/catch-up go on with what they have
        _event(logging.WARNING, "Ethereal price history not available", bar_type=live_bt, error=repr(e))
        return []
