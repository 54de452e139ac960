"""Ethereal history into the Parquet catalog, with the same types and writers as Binance.

* **Instruments**: products -> ``CryptoPerpetual`` (:func:`product_to_instrument`), written with
  :func:`catalog.writer.write_instruments`.
* **Funding**: ``GET /v1/funding?productId=..&range=MONTH`` (all pages; SDK ``FundingDto``:
  ``createdAt`` ms, ``fundingRate1h`` fraction per hour). Times are snapped to the hour
  (Ethereal settles on the hour; rows more than 1 min off raise), and written with
  :func:`catalog.writer.write_funding_rates` (hint 60 min), i.e. ``FundingRateUpdate`` rows with
  ``interval = 60`` and ``next_funding_ns = ts_event``: the backtest exchange settles them hourly at
  the mark price. The venue's public endpoint only reaches back one month (``range`` is DAY, WEEK
  or MONTH); re-run the import regularly to accumulate a longer history (re-imports are idempotent).
* **Bars**: the SDK's price-history endpoint (``get_last_price_history``, TradingView UDF on the
  ``tradingview.*`` host: ``t`` bar open time in s, ``o/h/l/c/v`` floats) in chunks of at most
  ``CHUNK_BARS`` bars, converted exactly at the instrument precisions (a value needing more decimals
  raises), validated (:func:`catalog.common.validate_bars`), stamped with the bar **close** time and
  written with :func:`catalog.writer.write_bars` as ``<id>-<step>-<agg>-LAST-EXTERNAL``. The bar
  still open at ``now`` is skipped.
* **Mark prices** (kind ``mark``): oracle-price history (``get_oracle_price_history``) closes as
  ``MarkPriceUpdate`` at each bar close (:func:`catalog.writer.write_mark_prices`), so funding is
  settled on the oracle/mark price as on the venue.

Errors are :class:`catalog.errors.DataImportError` naming the URL and the row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from nautilus_trader.model import BarType

from adapters.ethereal.common.enums import EtherealNetwork
from adapters.ethereal.common.urls import urls_for
from adapters.ethereal.http.client import EtherealHttpClient, EtherealHttpError
from adapters.ethereal.providers import EtherealInstrumentProvider
from catalog.common import (
    bar_table,
    check_increasing,
    decimals_needed,
    floats_to_decimal,
    snap_funding_times,
    validate_bars,
)
from catalog.errors import DataImportError
from catalog.kinds import canonical_kinds
from catalog.writer import (
    ImportReport,
    cleanup_stale_staging,
    write_bars,
    write_funding_rates,
    write_instruments,
    write_mark_prices,
)
from core.instruments import INTERVALS

#: Our interval names -> TradingView UDF resolution strings accepted by the venue (SDK ``Resolution``).
RESOLUTIONS = {"1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120", "4h": "240",
               "8h": "480", "12h": "720", "1d": "1D"}
CHUNK_BARS = 1000
KINDS = ("bars", "funding", "mark")
DAY_NS = 86_400_000_000_000


def _day_ns(d: str | dt.date | None, name: str) -> int | None:
    if d is None:
        return None
    try:
        day = d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))
    except ValueError:
        raise DataImportError(name, f"{d!r} is not a date (YYYY-MM-DD)") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def import_ethereal_history(
    catalog_path: str | Path,
    *,
    tickers: Sequence[str],
    start: str | dt.date,
    end: str | dt.date,
    interval: str = "1h",
    kinds: Sequence[str] = ("bars", "funding"),
    network: str = "mainnet",
    rest_url: str | None = None,
    tv_url: str | None = None,
    settlement_currency: str = "USDT",
) -> ImportReport:
    """Import Ethereal instruments, bars, funding and mark prices for ``tickers`` (``BTCUSD`` ...)
    for the UTC days ``start`` .. ``end`` (inclusive) into the catalog at ``catalog_path``.

    ``interval`` is one of :data:`RESOLUTIONS`; ``kinds`` a subset of :data:`KINDS`.
    ``settlement_currency``: quote/settlement currency of the catalog instruments. ``USDT`` by
    default because backtest results (``nautilus_app/results/``) value everything in USDT; the
    live clients use ``USDE``. Returns the
    :class:`catalog.writer.ImportReport`. Raises :class:`DataImportError` for bad arguments, venue
    errors or malformed rows (nothing of a failed series is written).
    """
    kinds = canonical_kinds(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise DataImportError("arguments", f"unknown kinds {bad}; expected a subset of {list(KINDS)}")
    if interval not in RESOLUTIONS:
        raise DataImportError("arguments", f"interval {interval!r} not supported; use one of {list(RESOLUTIONS)}")
    try:
        net = EtherealNetwork(network)
    except ValueError:
        raise DataImportError("arguments", f"network {network!r}: expected 'mainnet' or 'testnet'") from None
    start_ns = _day_ns(start, "start")
    end_ns = _day_ns(end, "end") + DAY_NS  # exclusive
    if end_ns <= start_ns:
        raise DataImportError("arguments", f"end {end} is before start {start}")
    root = Path(catalog_path)
    root.mkdir(parents=True, exist_ok=True)
    cleanup_stale_staging(root)
    report = ImportReport(source=f"ethereal:{rest_url or net.value}")
    t0 = time.perf_counter()
    asyncio.run(_run(root, report, [t.upper() for t in tickers], start_ns, end_ns, interval, tuple(kinds),
                     urls_for(net, rest=rest_url, tv=tv_url), net, settlement_currency))
    report.seconds = time.perf_counter() - t0
    return report


async def _run(root, report, tickers, start_ns, end_ns, interval, kinds, urls, net, currency="USDT") -> None:
    http = EtherealHttpClient(urls, net)
    try:
        provider = EtherealInstrumentProvider(http, tickers, currency=currency)
        try:
            await provider.load_all_async()
        except EtherealHttpError as e:
            raise DataImportError(f"{urls.rest}/v1/product", str(e)) from None
        missing = [t for t in tickers if provider.instrument_for_symbol(t) is None]
        if missing:
            raise DataImportError(f"{urls.rest}/v1/product", f"no active perpetual for {missing}; skipped: {provider.skipped}")
        instruments = [provider.instrument_for_symbol(t) for t in tickers]
        write_instruments(root, instruments, report)
        for inst in instruments:
            if "funding" in kinds:
                await _funding(http, root, report, inst, start_ns, end_ns)
            if "bars" in kinds:
                await _bars(http, root, report, inst, start_ns, end_ns, interval, "last")
            if "mark" in kinds:
                await _bars(http, root, report, inst, start_ns, end_ns, interval, "oracle")
    finally:
        await http.close()


async def _funding(http, root, report, inst, start_ns, end_ns) -> None:
    url = f"{http.urls.rest}/v1/funding?productId={inst.info['product_id']}&range=MONTH"
    try:
        rows = await http.all_pages("funding", "V1FundingGetParametersQuery", "PageOfFundingDtos", max_pages=1000,
                                    product_id=inst.info["product_id"], range="MONTH", order="asc")
    except EtherealHttpError as e:
        raise DataImportError(url, str(e)) from None
    report.files_read.append(url)
    if not rows:
        report.warnings.append(f"{inst.id}: no funding rows returned")
        return
    ts = np.array([r.created_at for r in rows], dtype=np.int64) * 1_000_000
    rates = [str(r.funding_rate1h) for r in rows]
    order = np.argsort(ts, kind="stable")
    ts, rates = ts[order], [rates[i] for i in order]
    lines = order + 1
    ts = snap_funding_times(ts, url, lines)
    for i, r in enumerate(rates):
        try:
            float(r)
        except ValueError:
            raise DataImportError(url, f"fundingRate1h {r!r} is not a decimal", int(lines[i])) from None
    if ts.size and ts[0] > start_ns + 3_600_000_000_000:
        report.warnings.append(
            f"{inst.id}: funding history starts {np.datetime64(int(ts[0]), 'ns')}, after the requested start "
            "(the public endpoint only serves the last month)")
    keep = (ts >= start_ns) & (ts < end_ns)
    if not keep.any():
        return
    table = pa.table({
        "ts": pa.array(ts[keep], pa.int64()),
        "rate": pa.array([r for r, k in zip(rates, keep, strict=True) if k], pa.string()),
        "hint_minutes": pa.array(np.full(int(keep.sum()), 60, np.int64)),
    })
    write_funding_rates(root, inst.id, [table], report)


async def _bars(http, root, report, inst, start_ns, end_ns, interval, source: str) -> None:
    step, agg, ivl_ns = INTERVALS[interval]
    res = RESOLUTIONS[interval]
    ivl_s = ivl_ns // 1_000_000_000
    symbol = f"{inst.raw_symbol.value}-Perp"
    fetch = http.get_last_price_history if source == "last" else http.get_oracle_price_history
    path = f"{http.urls.tv}/v1/{'last' if source == 'last' else 'oracle'}-price/history?symbol={symbol}&resolution={res}"
    cols: dict[str, list[float]] = {k: [] for k in ("t", "o", "h", "l", "c", "v")}
    t = start_ns // 1_000_000_000
    stop = end_ns // 1_000_000_000
    while t < stop:
        t1 = min(stop, t + CHUNK_BARS * ivl_s)
        try:
            page = await fetch(symbol=symbol, resolution=res, from_=t, to=t1)
        except EtherealHttpError as e:
            raise DataImportError(path, str(e)) from None
        status = getattr(page.s, "value", page.s)
        if status == "error":
            raise DataImportError(path, f"venue error for {t}..{t1}: {page.errmsg}")
        if status == "ok":
            n = len(page.t or [])
            for k in cols:
                vals = getattr(page, k) or []
                if len(vals) != n:
                    raise DataImportError(path, f"column {k!r} has {len(vals)} values for {n} timestamps ({t}..{t1})")
                cols[k].extend(vals)
        report.files_read.append(f"{path}&from={t}&to={t1}")
        t = t1
    if not cols["t"]:
        report.warnings.append(f"{inst.id}: no {source}-price bars in the requested range")
        return
    open_s = np.array(cols["t"], dtype=np.int64)
    order = np.argsort(open_s, kind="stable")
    open_s = open_s[order]
    lines = order + 1
    uniq = np.concatenate([[True], np.diff(open_s) != 0])
    open_s, lines = open_s[uniq], lines[uniq]
    sel = order[uniq]
    if np.any(open_s % ivl_s):
        i = int(np.flatnonzero(open_s % ivl_s)[0])
        raise DataImportError(path, f"bar time {int(open_s[i])} s is not on the {interval} grid", int(lines[i]))
    close_ns = (open_s + ivl_s) * 1_000_000_000
    keep = (open_s * 1_000_000_000 >= start_ns) & (close_ns <= min(end_ns, time.time_ns()))
    close_ns, lines, sel = close_ns[keep], lines[keep], sel[keep]
    if close_ns.size == 0:
        return
    check_increasing(close_ns, path, lines)
    arrays = {k: np.asarray(cols[k], dtype=np.float64)[sel] for k in ("o", "h", "l", "c", "v")}
    if source == "last":
        pp, sp = inst.price_precision, inst.size_precision
        table = bar_table(close_ns, {
            "open": floats_to_decimal(arrays["o"], pp, path, "o", lines),
            "high": floats_to_decimal(arrays["h"], pp, path, "h", lines),
            "low": floats_to_decimal(arrays["l"], pp, path, "l", lines),
            "close": floats_to_decimal(arrays["c"], pp, path, "c", lines),
            "volume": floats_to_decimal(arrays["v"], sp, path, "v", lines),
        })
        validate_bars(table, path, lines, pp, sp)
        bt = f"{inst.id}-{step}-{agg}-LAST-EXTERNAL"
        write_bars(root, BarType.from_str(bt), pp, sp, ivl_ns, [table], report)
    else:
        closes = arrays["c"]
        prec = int(min(9, max(inst.price_precision, int(decimals_needed(closes, 9).max()))))
        if np.any(closes <= 0):
            i = int(np.flatnonzero(closes <= 0)[0])
            raise DataImportError(path, f"oracle close {closes[i]!r} is not positive", int(lines[i]))
        table = pa.table({"ts": pa.array(close_ns, pa.int64()),
                          "value": floats_to_decimal(closes, prec, path, "c", lines)})
        write_mark_prices(root, inst.id, prec, [table], report, ivl_ns)
