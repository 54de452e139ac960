"""Download OHLCV, funding-rate history and mark-price klines through ccxt straight into the catalog.

FreqTrade's ``download-data`` is the model: one command, resumable, idempotent, funding and mark
prices included. ``nautilus-app download-data --market um --symbols BTCUSDT --timeframe 1m
--start 2023-07-01 --kinds bars funding mark``.

How it works
------------
* **Exchange.** ccxt ``binance`` (spot, markets loaded from ``/api/v3/exchangeInfo`` only) or
  ``binanceusdm`` (USDT-M perpetuals, ``/fapi/v1/exchangeInfo``), created with
  ``enableRateLimit=True`` so ccxt's own token-bucket throttle spaces the calls by the endpoint
  weights Binance publishes. ``urls`` replaces entries of ``exchange.urls['api']`` (tests point
  them at a local server). Any Binance symbol: instruments, ids and precisions come from
  :mod:`catalog.instrument_meta` exactly as for the importers (instruments.toml, the built-in
  table, the exchangeInfo just loaded - which also refreshes the catalog's metadata cache);
  other ccxt exchanges get theirs from the ccxt market (``from_ccxt_market``).
* **What is missing.** For each (kind, symbol) the requested ``[start, end]`` window is compared
  with the catalog's file intervals; only uncovered ranges are fetched. A rerun after an
  interruption therefore resumes from the last stored timestamp, a rerun after success fetches
  nothing, and a window before already stored data is back-filled. Gaps *inside* a stored file
  (exchange halts) are not re-requested.
* **Pagination.** Our own forward loop (as FreqTrade does): ``fetch_ohlcv(symbol, tf, since,
  limit=1000, params={'until': min(end, since + 999 intervals)})`` (a window of one page, so it
  does not matter whether the exchange answers the oldest or the newest rows of a longer window),
  next ``since`` = last open time + one interval, an empty window is skipped; funding via
  ``fetch_funding_rate_history`` (limit 1000), next ``since`` = last ``fundingTime`` + 1 ms. ccxt's
  ``params={'paginate': True}`` was not used: it gathers everything in memory before returning
  (no checkpoint, so nothing to resume from), caps a call at ``paginationCalls`` pages (default 10)
  and deliberately fails fast on a 429 without honouring ``Retry-After``.
* **Retries.** ccxt ``OperationFailed`` errors (``NetworkError`` and its subclasses, plus
  Binance's ``-1001 Internal error`` that ccxt maps to ``OperationFailed``) are retried up to ``max_retries`` times: HTTP 429/418
  (``DDoSProtection``/``RateLimitExceeded``) wait ``Retry-After`` seconds when the response has
  that header, otherwise exponential backoff ``backoff_s * 2**attempt`` (capped at 60 s); HTTP 5xx
  (``ExchangeNotAvailable``), timeouts and dropped connections back off the same way. 4xx errors
  other than 418/429 are not retried. Exhausted retries raise :class:`catalog.ccxt_exchange.DownloadError`.
* **Writing.** Pages are buffered and flushed to the catalog every ``flush_rows`` rows and when a
  range ends (and, before re-raising, when a download fails), through the same writers as the
  importers (:mod:`catalog.writer`: dedupe, atomic file promotion). Each flush is validated first
  (:mod:`catalog.validation`): precision, OHLC sanity, strictly increasing timestamps; gaps are
  reported as warnings (known Binance halts marked as such).
* **Conventions.** Bars are stamped at their close (``ts_event = ts_init = open + interval``);
  only closed candles are kept (open + interval <= now). Mark prices: one ``MarkPriceUpdate`` per
  candle close at the close time. Funding: the exchange's ``fundingRate`` string (exact), the
  time snapped to the hour grid (real rows are 1-15 ms late), ``ts_event = ts_init =
  next_funding_ns`` and ``interval`` from the spacing (see :func:`catalog.writer.write_funding_rates`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from catalog.ccxt_exchange import call_with_retries, make_exchange
from catalog.common import bar_table, floats_to_decimal, snap_funding_times, validate_bars
from catalog.errors import DataImportError
from catalog.kinds import canonical_kinds, unknown_kinds
from catalog.store import ensure_catalog_root
from catalog.writer import (
    ImportReport,
    existing_intervals,
    write_bars,
    write_funding_rates,
    write_instruments,
    write_mark_prices,
)
from core import instruments as ins

#: Data kinds (catalog/kinds.py vocabulary; the old ``ohlcv`` is accepted with a deprecation warning).
KINDS = ("bars", "funding", "mark")
MS = 1_000_000  # ns per ms
PAGE_LIMIT = 1000


# --------------------------------------------------------------------------- exchange


@dataclass(frozen=True)
class Target:
    """One symbol to download: its Nautilus instrument, ccxt symbol and precisions.

    ``halt_market``: the market key of :data:`catalog.validation.KNOWN_HALTS` (Binance's halts
    apply only to Binance data)."""

    label: str
    instrument: Any
    ccxt_symbol: str
    market: ins.Market
    price_precision: int
    size_precision: int
    mark_price_precision: int
    halt_market: str

    @property
    def iid(self) -> Any:
        return self.instrument.id

    def bar_type(self, timeframe: str) -> Any:
        return ins.bar_type_for(self.iid, timeframe)


def _binance_market(ex: Any, symbol: str, mkt: ins.Market) -> dict | None:
    """The loaded ccxt market of Binance ``symbol`` (``SOLUSDT``): spot, or the linear perpetual."""
    for m in ex.markets.values():
        if str(m.get("id", "")).upper() != symbol:
            continue
        if mkt == "spot" and m.get("spot") or mkt == "um" and m.get("swap") and m.get("linear"):
            return m
    return None


def resolve_target(ex: Any, symbol: str, market: str, resolver: Any = None) -> Target:
    """The :class:`Target` of ``symbol`` on the (markets-loaded) exchange ``ex``.

    Binance (``binance``/``binanceusdm``): ANY Binance symbol (``SOLUSDT``, ``SOL/USDT``,
    ``SOL/USDT:USDT``). The spec comes from ``resolver`` (a
    :class:`catalog.instrument_meta.InstrumentResolver`: instruments.toml, the built-in
    :data:`core.instruments.SPECS` with historical precisions, the exchangeInfo just
    loaded, the precision of an instrument already stored), or without one from SPECS / the loaded
    market. Precision of a non-built-in symbol = decimals of today's tick/step (older data printed
    with finer ticks is refused, never truncated: set ``price_precision`` in instruments.toml).
    Other exchanges: the exchange's own id (``BTCUSDT``, ``BTC-USDT-SWAP``) or a ccxt symbol
    (``BTC/USDT``, ``BTC/USDT:USDT``); the instrument comes from the ccxt market
    (:func:`core.instruments.from_ccxt_market`). Raises ``KeyError`` for an unknown symbol.
    """
    mkt: ins.Market = "um" if market == "um" else "spot"
    if ex.id in ("binance", "binanceusdm"):
        sym = symbol.replace("/", "").split(":")[0].upper()
        m = _binance_market(ex, sym, mkt)
        overridden = resolver is not None and (mkt, sym) in resolver.overrides
        if m is None and (mkt, sym) not in ins.SPECS and not overridden:
            kind = "spot" if mkt == "spot" else "USDT-M perpetual"
            raise KeyError(f"{ex.id}: no {kind} market {sym!r} in the exchange's exchangeInfo "
                           f"({len(ex.markets)} markets loaded)")
        if resolver is not None:
            spec = resolver.spec(sym, mkt, where=f"ccxt {ex.id}")
        elif (mkt, sym) in ins.SPECS:
            spec = ins.get_spec(sym, mkt)
        else:
            spec = ins.resolve_spec(sym, mkt, exchange=ins.market_record(m), exchange_source=f"ccxt {ex.id} markets")
        sym_ccxt = str(m["symbol"]) if m is not None else f"{spec.base}/{spec.quote}" + (
            f":{spec.quote}" if mkt == "um" else "")
        return Target(spec.symbol, ins.build_instrument(spec.symbol, mkt, spec=spec), sym_ccxt, mkt,
                      spec.price_precision, spec.size_precision, spec.mark_price_precision, mkt)
    want = (lambda m: bool(m.get("spot"))) if mkt == "spot" else (lambda m: bool(m.get("swap")) and bool(m.get("linear")))
    cands = [m for m in ex.markets.values() if want(m) and (m.get("symbol") == symbol or m.get("id") == symbol)]
    if not cands:
        kind = "spot" if mkt == "spot" else "linear perpetual"
        raise KeyError(f"{ex.id}: no {kind} market {symbol!r} (give the exchange id like 'BTCUSDT' or a ccxt "
                       f"symbol like {'BTC/USDT' if mkt == 'spot' else 'BTC/USDT:USDT'})")
    m = cands[0]
    inst = ins.from_ccxt_market(m, ex.id, precision_mode=int(ex.precisionMode))
    return Target(str(m["id"]), inst, str(m["symbol"]), mkt, inst.price_precision, inst.size_precision,
                  inst.price_precision, f"{ex.id}:{mkt}")


def ccxt_symbol(symbol: str, market: str) -> str:
    """Unified ccxt symbol of a Binance symbol: ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (um); base
    and quote from the built-in table, else split at a known quote asset."""
    sym = symbol.replace("/", "").split(":")[0].upper()
    spec = ins.SPECS.get(("um" if market == "um" else "spot", sym))
    base, quote = (spec.base, spec.quote) if spec is not None else ins.split_symbol(sym)
    return f"{base}/{quote}" + (f":{quote}" if market == "um" else "")


# --------------------------------------------------------------------------- ranges


def _day_ns(d: dt.date) -> int:
    return int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) * 1_000_000_000


def _to_date(d: dt.date | str | None) -> dt.date | None:
    if d is None or isinstance(d, dt.date):
        return d
    return dt.date.fromisoformat(str(d))


def missing_ranges(covered: Sequence[tuple[int, int]], lo: int, hi: int, step: int) -> list[tuple[int, int]]:
    """Sub-ranges of ``[lo, hi]`` (inclusive, same unit as ``covered``) not inside any covered
    ``(a, b)`` interval; ``step`` is the spacing of the rows, so a range starts one step after a
    covered interval ends."""
    out = []
    cur = lo
    for a, b in sorted(covered):
        if b < cur:
            continue
        if a > hi:
            break
        if a > cur:
            out.append((cur, min(hi, a - step)))
        cur = max(cur, b + step)
        if cur > hi:
            break
    if cur <= hi:
        out.append((cur, hi))
    return [(a, b) for a, b in out if b >= a]


# --------------------------------------------------------------------------- downloader


class _Progress:
    def __init__(self, enabled: bool, total: int, desc: str) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="row", leave=False, dynamic_ncols=True)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def download_data(
    catalog_path: str | Path | None,
    *,
    market: str = "spot",
    symbols: Sequence[str] = ("BTCUSDT",),
    timeframe: str = "1m",
    start: dt.date | str,
    end: dt.date | str | None = None,
    kinds: Sequence[str] = ("bars",),
    mark_timeframe: str | None = None,
    exchange: Any = None,
    exchange_id: str = "binance",
    urls: dict[str, str] | None = None,
    rate_limit_ms: float | None = None,
    max_retries: int = 5,
    backoff_s: float = 1.0,
    flush_rows: int = 200_000,
    progress: bool = True,
    now_ms: int | None = None,
    instruments_file: str | Path | None = None,
) -> ImportReport:
    """Download ``kinds`` (⊆ {``"bars"``, ``"funding"``, ``"mark"``}, :mod:`catalog.kinds`; funding/mark
    only for ``market="um"``; the old ``"ohlcv"`` is accepted with a deprecation warning) for ``symbols``
    over the UTC days ``start..end`` (inclusive; ``end`` default today) into the catalog at
    ``catalog_path`` (None = default catalog).

    ``timeframe``: ccxt/Binance interval of the OHLCV bars (``"1m"``, ``"1h"`` ...);
    ``mark_timeframe``: interval of the mark-price klines (default ``timeframe``). ``exchange``: a
    ready ccxt exchange (else :func:`catalog.ccxt_exchange.make_exchange` with ``exchange_id``/``urls``/``rate_limit_ms``).
    ``flush_rows``: rows buffered before a write (a checkpoint). ``now_ms``: the clock (ms) for
    the closed-candle cut-off (default: the exchange's clock). ``symbols``: any symbol of the
    exchange; on Binance the markets loaded are also stored as the catalog's exchangeInfo cache
    (:mod:`catalog.instrument_meta`) and ``instruments_file`` (instruments.toml) overrides them.

    Returns an :class:`catalog.writer.ImportReport` (``files_read`` = requests made). Raises
    :class:`catalog.ccxt_exchange.DownloadError` when the exchange keeps failing (data fetched so far is kept),
    :class:`catalog.errors.DataImportError` when the exchange returns data that fails validation
    (nothing of that flush is written), ``ValueError``/``KeyError`` for bad arguments.
    """
    t0 = time.perf_counter()
    kinds = canonical_kinds(kinds)
    bad = unknown_kinds(kinds, KINDS)
    if bad:
        raise ValueError(f"unknown kinds {bad}; expected a subset of {KINDS}")
    if market not in ("spot", "um"):
        raise ValueError(f"unknown market {market!r} (expected 'spot' or 'um')")
    if market != "um" and set(kinds) & {"funding", "mark"}:
        raise ValueError("funding and mark prices exist only for market='um' (USDT-M perpetuals)")
    d0 = _to_date(start)
    if d0 is None:
        raise ValueError("start is required")
    d1 = _to_date(end) or dt.datetime.now(dt.UTC).date()
    if d1 < d0:
        raise ValueError(f"end {d1} before start {d0}")
    mkt: ins.Market = "um" if market == "um" else "spot"
    ins.interval_ns(timeframe)
    ins.interval_ns(mark_timeframe or timeframe)
    ex = exchange if exchange is not None else make_exchange(market, exchange_id=exchange_id, urls=urls,
                                                             rate_limit_ms=rate_limit_ms)
    root = ensure_catalog_root(catalog_path)
    report = ImportReport(source=f"ccxt:{ex.id}")
    call = _Caller(ex, report, max_retries, backoff_s)
    call(ex.load_markets)
    resolver = None
    if ex.id in ("binance", "binanceusdm"):
        from catalog.instrument_meta import InstrumentResolver, records_from_exchange, save_metadata

        records = records_from_exchange(ex, mkt)
        if records:  # the exchangeInfo just loaded refreshes the catalog's metadata cache
            save_metadata(root, mkt, records, f"ccxt {ex.id} load_markets (download-data)")
        resolver = InstrumentResolver(root, instruments_file=instruments_file, metadata="cache", report=report)
    targets = [resolve_target(ex, s, market, resolver) for s in symbols]  # unknown symbol: before any kline request
    now = int(now_ms if now_ms is not None else ex.milliseconds())
    lo_ns, hi_ns = _day_ns(d0), _day_ns(d1 + dt.timedelta(days=1))  # [lo, hi) on open/settlement time
    try:
        for tgt in targets:
            write_instruments(root, [tgt.instrument], report, count_once=True)
            if "bars" in kinds:
                _download_klines(root, ex, call, report, tgt, timeframe, lo_ns, hi_ns, now, flush_rows,
                                 progress, mark=False)
            if "mark" in kinds:
                _download_klines(root, ex, call, report, tgt, mark_timeframe or timeframe, lo_ns, hi_ns,
                                 now, flush_rows, progress, mark=True)
            if "funding" in kinds:
                _download_funding(root, call, report, tgt, lo_ns, min(hi_ns, now * MS), flush_rows, progress)
    finally:
        report.seconds = time.perf_counter() - t0
    return report


class _Caller:
    def __init__(self, ex: Any, report: ImportReport, max_retries: int, backoff_s: float) -> None:
        self.ex, self.report, self.max_retries, self.backoff_s = ex, report, max_retries, backoff_s
        self.requests = 0

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return call_with_retries(self.ex, fn, *args, max_retries=self.max_retries, backoff_s=self.backoff_s,
                                 on_retry=lambda m: self.report.warnings.append(f"{self.ex.id}: {m}"), **kwargs)


def _download_klines(root: Path, ex: Any, call: _Caller, report: ImportReport, tgt: Target, timeframe: str, lo_ns: int, hi_ns: int, now_ms: int, flush_rows: int,
                     progress: bool, *, mark: bool) -> None:
    from catalog.validation import report_gaps

    iv_ns = ins.interval_ns(timeframe)
    iv_ms = iv_ns // MS
    iid, sym, symbol = tgt.iid, tgt.ccxt_symbol, tgt.label
    if mark:
        from nautilus_trader.model import NautilusDataType

        ident, dtype = str(iid), NautilusDataType.MarkPriceUpdate
    else:
        from nautilus_trader.model import NautilusDataType

        ident, dtype = str(tgt.bar_type(timeframe)), NautilusDataType.Bar
    # stored intervals are on the close time; convert to open times
    covered = [(a - iv_ns, b - iv_ns) for a, b in existing_intervals(root, dtype, ident)]
    last_open = min(hi_ns - iv_ns, (now_ms * MS // iv_ns) * iv_ns - iv_ns)  # last CLOSED candle's open
    first_open = -(-lo_ns // iv_ns) * iv_ns
    ranges = missing_ranges(covered, first_open, last_open, iv_ns)
    total = sum((b - a) // iv_ns + 1 for a, b in ranges)
    what = "mark price klines" if mark else "klines"
    bar = _Progress(progress, total, f"{symbol} {timeframe} {what}")
    params: dict[str, Any] = {"price": "mark"} if mark else {}
    buf: list[list] = []

    def flush() -> None:
        if not buf:
            return
        rows = np.array([r[:6] for r in buf], dtype=np.float64)
        buf.clear()
        where = f"{ex.id} {sym} {timeframe} {what}"
        lines = np.arange(1, len(rows) + 1)
        open_ns = rows[:, 0].astype(np.int64) * MS
        ts = open_ns + iv_ns
        if mark:
            cols = {c: floats_to_decimal(rows[:, i], tgt.mark_price_precision, where, c, lines)
                    for i, c in enumerate(("open", "high", "low", "close"), start=1)}
            cols["volume"] = floats_to_decimal(np.zeros(len(rows)), 0, where, "volume", lines)
            t = bar_table(ts, cols)
            validate_bars(t, where, lines, tgt.mark_price_precision, 16)
            report_gaps(report, ident, t["ts"].to_numpy(), iv_ns, market=tgt.halt_market)
            write_mark_prices(root, iid, tgt.mark_price_precision, [pa.table({"ts": t["ts"], "value": t["close"]})],
                              report, iv_ns)
        else:
            cols = {c: floats_to_decimal(rows[:, i], tgt.price_precision, where, c, lines)
                    for i, c in enumerate(("open", "high", "low", "close"), start=1)}
            cols["volume"] = floats_to_decimal(rows[:, 5], tgt.size_precision, where, "volume", lines)
            t = bar_table(ts, cols)
            validate_bars(t, where, lines, tgt.price_precision, tgt.size_precision)
            report_gaps(report, ident, t["ts"].to_numpy(), iv_ns, market=tgt.halt_market)
            write_bars(root, tgt.bar_type(timeframe), tgt.price_precision, tgt.size_precision, iv_ns,
                       [t], report)

    try:
        for a, b in ranges:
            since_ms, until_ms = a // MS, b // MS
            while since_ms <= until_ms:
                # window of at most one page: exchanges that answer the NEWEST rows of a longer
                # window (Bybit) and those that answer the oldest (Binance) behave the same
                page_until = min(until_ms, since_ms + (PAGE_LIMIT - 1) * iv_ms)
                page = call(ex.fetch_ohlcv, sym, timeframe, since_ms, PAGE_LIMIT, params | {"until": page_until})
                report.files_read.append(f"{sym} {timeframe} {what} since {since_ms}")
                page = sorted((r for r in page if since_ms <= int(r[0]) <= page_until), key=lambda r: int(r[0]))
                if not page:
                    if page_until < until_ms:  # an empty window (a halt longer than a page): skip it
                        since_ms = page_until + iv_ms
                        continue
                    break
                opens = [int(r[0]) for r in page]
                if any(x % iv_ms for x in opens):
                    raise DataImportError(f"{ex.id} {sym} {timeframe}", f"open time {opens[0]} ms not on the {timeframe} grid")
                buf.extend(page)
                bar.update(len(page))
                since_ms = opens[-1] + iv_ms
                if len(buf) >= flush_rows:
                    flush()
            flush()
    finally:
        # keep what was fetched and validated before a failure: the next run resumes after it
        try:
            flush()
        finally:
            bar.close()


def _download_funding(root: Path, call: _Caller, report: ImportReport, tgt: Target, lo_ns: int, hi_ns: int, flush_rows: int, progress: bool) -> None:
    from nautilus_trader.model import NautilusDataType

    from catalog.validation import report_funding_intervals

    iid, sym, symbol = tgt.iid, tgt.ccxt_symbol, tgt.label
    covered = existing_intervals(root, NautilusDataType.FundingRateUpdate, str(iid))
    # funding rows are at most every hour; re-request from one minute after the last stored one
    ranges = missing_ranges(covered, lo_ns, hi_ns - 1, 60_000_000_000)
    bar = _Progress(progress, sum((b - a) // (8 * 3_600_000_000_000) + 1 for a, b in ranges), f"{symbol} funding")
    buf_t: list[int] = []
    buf_r: list[str] = []
    ex = call.ex
    where = f"{ex.id} {sym} funding rate history"

    def flush() -> None:
        if not buf_t:
            return
        lines = np.arange(1, len(buf_t) + 1)
        ts = snap_funding_times(np.array(buf_t, dtype=np.int64) * MS, where, lines)
        t = pa.table({"ts": pa.array(ts, pa.int64()), "rate": pa.array(buf_r, pa.string()),
                      "hint_minutes": pa.array(np.zeros(len(ts), np.int64))})
        buf_t.clear()
        buf_r.clear()
        report_funding_intervals(report, str(iid), ts)
        write_funding_rates(root, iid, [t], report)

    try:
        for a, b in ranges:
            since_ms, until_ms = a // MS, b // MS
            while since_ms <= until_ms:
                page = call(ex.fetch_funding_rate_history, sym, since_ms, PAGE_LIMIT, {"until": until_ms})
                report.files_read.append(f"{sym} funding since {since_ms}")
                rows = []
                for p in page:
                    info = p.get("info") or {}
                    t_ms = int(info.get("fundingTime", p.get("timestamp")))
                    rate = str(info.get("fundingRate", p.get("fundingRate")))
                    if since_ms <= t_ms <= until_ms:
                        rows.append((t_ms, rate))
                if not rows:
                    break
                rows.sort()
                for t_ms, rate in rows:
                    if buf_t and t_ms <= buf_t[-1]:
                        continue  # page overlap
                    buf_t.append(t_ms)
                    buf_r.append(rate)
                bar.update(len(rows))
                since_ms = rows[-1][0] + 1
                if len(buf_t) >= flush_rows:
                    flush()
            flush()
    finally:
        try:
            flush()
        finally:
            bar.close()
