"""Import Binance Vision archives (https://data.binance.vision layout) into the catalog.

Supported archives (one CSV per zip, optional ``.CHECKSUM`` sidecar ``"<sha256>  <name>"``)::

    data/spot/{monthly,daily}/klines/BTCUSDT/1m/BTCUSDT-1m-2023-08.zip | -2023-08-01.zip
    data/futures/um/{monthly,daily}/klines/BTCUSDT/1m/...
    data/futures/um/{monthly,daily}/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2023-07.zip
    data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2023-07.zip
    data/{spot,futures/um}/{monthly,daily}/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2023-08-01.zip

Kline CSV: 12 columns ``open_time, open, high, low, close, volume, close_time, quote_volume,
count, taker_buy_volume, taker_buy_quote_volume, ignore``, with or without a header row. Times
are epoch ms, or µs for spot from 2025-01-01; the unit is decided per value
(:func:`catalog.common.epoch_to_ns`). fundingRate CSV: ``calc_time`` (ms),
``funding_interval_hours``, ``last_funding_rate`` (fraction, 0.0001 = 0.01 %).

What is written:

* klines -> ``Bar`` (``<id>-<step>-<AGG>-LAST-EXTERNAL``), ``ts_event = ts_init = open_time +
  interval`` (the bar close, ns), precisions from :mod:`core.instruments`.
* markPriceKlines -> one ``MarkPriceUpdate`` per candle at its close time with the candle close
  (Binance's mark price at that moment), 8 decimals.
* fundingRate -> ``FundingRateUpdate`` snapped to the hour grid, ``ts_event = ts_init =
  next_funding_ns`` = snapped time, ``interval`` in minutes from the gaps (cross-checked with
  ``funding_interval_hours``).

The base is an ``http(s)://`` URL (files enumerated month by month; a 404 means absent; monthly
archives preferred, daily ones fill the days without a monthly file) or a local folder with the
same layout (listed). Dates are UTC calendar days, inclusive; rows are filtered on the candle
OPEN time (funding: settlement time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.binance_csv import (
    combine_bar_parts,
    parse_aggtrades_csv,
    parse_funding_csv,
    parse_kline_csv,
    parse_kline_csvs,
    parse_kline_zips,
    read_zip_csv,
    size_batches,
)
from catalog.common import check_precision, validate_bars
from catalog.errors import DataImportError
from catalog.kinds import VISION_FOLDERS, canonical_kinds, unknown_kinds
from catalog.store import ensure_catalog_root
from catalog.validation import NewBars, check_import_jumps, max_jump_setting
from catalog.writer import (
    ImportReport,
    write_bars,
    write_funding_rates,
    write_instruments,
    write_mark_prices,
    write_trades,
)
from core import instruments as ins
from core.paths import binance_vision_url
from core.retry import RetriesExhausted, call_with_retry

#: Data kinds (catalog/kinds.py vocabulary); internally each is read from its archive folder (VISION_FOLDERS).
KINDS = ("bars", "funding", "mark", "trades")
DateLike = dt.date | str | None


# --------------------------------------------------------------------------- sources


class _Base:
    """Where archives come from: a local folder or an HTTP base URL."""

    def __init__(self, base: str | Path) -> None:
        b = str(base)
        self.is_http = b.startswith(("http://", "https://"))
        if b.startswith("file://"):
            b = b[len("file://"):]
        self.base = b.rstrip("/")

    def where(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def get(self, rel: str) -> bytes | None:
        """Bytes of ``rel`` or ``None`` when absent (missing file / HTTP 404)."""
        if not self.is_http:
            p = Path(self.base) / rel
            return p.read_bytes() if p.is_file() else None
        url = self.where(rel)

        def fetch() -> bytes | None:
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    return r.read()
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return None
                raise

        try:  # 3 tries, 1 s then 2 s apart; 5xx and network errors are retried, other HTTP errors are not
            return call_with_retry(fetch, retries=2, catch=(urllib.error.URLError,),
                                   retry_if=lambda e: not isinstance(e, urllib.error.HTTPError) or e.code >= 500,
                                   wait=lambda attempt, _e: 1.0 * (attempt + 1))
        except RetriesExhausted as e:
            if isinstance(e.last, urllib.error.HTTPError):
                raise DataImportError(url, f"HTTP {e.last.code} {e.last.reason}") from e.last
            raise DataImportError(url, f"cannot fetch: {e.last.reason}") from e.last  # type: ignore[attr-defined]
        except urllib.error.HTTPError as e:
            raise DataImportError(url, f"HTTP {e.code} {e.reason}") from e

    def list(self, rel_dir: str) -> list[str]:
        """File names in a local directory (empty if missing). Not available over HTTP."""
        p = Path(self.base) / rel_dir
        return sorted(x.name for x in p.iterdir() if x.is_file()) if p.is_dir() else []


def _market_prefix(market: str) -> str:
    if market == "spot":
        return "data/spot"
    if market == "um":
        return "data/futures/um"
    raise ValueError(f"unknown market {market!r} (expected 'spot' or 'um')")


def _to_date(d: DateLike) -> dt.date | None:
    if d is None or isinstance(d, dt.date):
        return d
    return dt.date.fromisoformat(str(d))


def _months(start: dt.date, end: dt.date) -> Iterable[tuple[int, int]]:
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def _select(
    base: _Base, kind: str, market: str, symbol: str, interval: str, start: dt.date | None, end: dt.date | None
) -> list[tuple[str, list[str]]]:
    """Archives to import as ``[(rel_path, fallback_rel_paths)]``, monthly ones first (they win on
    overlapping timestamps). Over HTTP each month is ``(monthly, [daily files of that month in
    range])``: the daily files are fetched only when the monthly one is absent (404)."""
    pre = _market_prefix(market)
    if kind == "fundingRate":
        monthly_dir, daily_dir = f"{pre}/monthly/fundingRate/{symbol}", None
        stem = f"{symbol}-fundingRate-"
    elif kind == "aggTrades":
        monthly_dir, daily_dir = f"{pre}/monthly/aggTrades/{symbol}", f"{pre}/daily/aggTrades/{symbol}"
        stem = f"{symbol}-aggTrades-"
    else:
        monthly_dir = f"{pre}/monthly/{kind}/{symbol}/{interval}"
        daily_dir = f"{pre}/daily/{kind}/{symbol}/{interval}"
        stem = f"{symbol}-{interval}-"
    lo = start or dt.date.min
    hi = end or dt.date.max
    monthly: list[str] = []
    daily: list[str] = []
    if not base.is_http:
        mpat = re.compile(re.escape(stem) + r"(\d{4})-(\d{2})\.zip$")
        dpat = re.compile(re.escape(stem) + r"(\d{4})-(\d{2})-(\d{2})\.zip$")
        months = set()
        for name in base.list(monthly_dir):
            m = mpat.match(name)
            if m:
                y, mo = int(m[1]), int(m[2])
                first = dt.date(y, mo, 1)
                last = (dt.date(y + (mo == 12), mo % 12 + 1, 1)) - dt.timedelta(days=1)
                if first <= hi and last >= lo:
                    monthly.append(f"{monthly_dir}/{name}")
                    months.add((y, mo))
        if daily_dir:
            for name in base.list(daily_dir):
                m = dpat.match(name)
                if m:
                    day = dt.date(int(m[1]), int(m[2]), int(m[3]))
                    if lo <= day <= hi and (day.year, day.month) not in months:
                        daily.append(f"{daily_dir}/{name}")
        return [(r, []) for r in monthly + daily]
    if start is None:
        raise ValueError("an HTTP base needs a start date (files are enumerated month by month)")
    hi = end or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    out: list[tuple[str, list[str]]] = []
    for y, mo in _months(start, hi):
        days: list[str] = []
        day = max(dt.date(y, mo, 1), start)
        while daily_dir is not None and day <= hi and day.month == mo:
            days.append(f"{daily_dir}/{stem}{day.isoformat()}.zip")
            day += dt.timedelta(days=1)
        out.append((f"{monthly_dir}/{stem}{y:04d}-{mo:02d}.zip", days))
    return out


# --------------------------------------------------------------------------- reading


def _read_csv_from_zip(base: _Base, rel: str, data: bytes) -> tuple[str, bytes]:
    """Verify the checksum sidecar (if any) and return ``(where, csv_bytes)``."""
    where = base.where(rel)
    side = base.get(rel + ".CHECKSUM")
    if side is not None:
        expected = side.decode("ascii", "replace").split()[0].lower() if side.strip() else ""
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise DataImportError(where, f"sha256 mismatch with {rel.rsplit('/', 1)[-1]}.CHECKSUM")
    member, csv = read_zip_csv(data, where)  # zlib-ng inflate, CRC checked; DataImportError naming `where`
    return f"{where}!{member}", csv


def _day_mask(ts: np.ndarray, start: dt.date | None, end: dt.date | None, shift_ns: int) -> np.ndarray:
    """Boolean mask of the rows whose (ts - shift_ns) falls on a UTC day in [start, end]."""
    t0 = ts - shift_ns
    keep = np.ones(t0.size, dtype=bool)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    if start is not None:
        keep &= t0 >= int((dt.datetime.combine(start, dt.time(), dt.UTC) - epoch).total_seconds()) * 10**9
    if end is not None:
        keep &= t0 < int((dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC) - epoch).total_seconds()) * 10**9
    return keep


def _date_filter(table: pa.Table, start: dt.date | None, end: dt.date | None, shift_ns: int) -> pa.Table:
    """Keep rows whose (ts - shift_ns) falls on a UTC day in [start, end]."""
    if start is None and end is None:
        return table
    return table.filter(pa.array(_day_mask(table["ts"].to_numpy(), start, end, shift_ns)))


def _parse_klines_compact(base: _Base, fetched: list[tuple[str, bytes]], precision: tuple[int, int], interval: str,
                          d0: dt.date | None, d1: dt.date | None, bar_type: str, report: ImportReport,
                          new_bars=None) -> tuple[dict[str, np.ndarray], int]:
    """Klines of one symbol for the compact store: checksums, then zips unzipped and parsed in
    batches on 2 threads at ``precision`` (price, size decimals), combined (monthly/daily overlaps
    must agree), filtered to the days. Returns ``(arrays, rows read)``; each file's rows are added
    to ``new_bars`` (:class:`catalog.validation.NewBars`) when given."""
    from concurrent.futures import ThreadPoolExecutor

    step_ns = ins.interval_ns(interval)

    sources: list = []

    def parse(batch: list[tuple[str, bytes]]) -> dict[str, np.ndarray]:
        csvs = [_read_csv_from_zip(base, rel, raw) for rel, raw in batch]
        return parse_kline_csvs(csvs, precision[0], precision[1], step_ns, sources)

    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(parse, size_batches(fetched, [len(raw) for _, raw in fetched])))
    if d0 is not None or d1 is not None:
        parts = [{k: a[m] for k, a in p.items()} for p in parts for m in [_day_mask(p["ts"], d0, d1, step_ns)]]
    n_read = sum(int(p["ts"].size) for p in parts)
    if new_bars is not None:
        scale = 10.0 ** -precision[0]
        for where, ts, o, c, first in sorted(sources, key=lambda x: x[0]):
            m = _day_mask(ts, d0, d1, step_ns) if (d0 is not None or d1 is not None) else slice(None)
            lines = (np.arange(ts.size, dtype=np.int64) + first)[m]
            new_bars.add(where, ts[m], o[m] * scale, c[m] * scale, lines)
    return combine_bar_parts(parts, bar_type), n_read


def _rescale_ticks(arr: dict[str, np.ndarray], frm: tuple[int, int], to: tuple[int, int]) -> dict[str, np.ndarray]:
    """Integer ticks/lots parsed at ``frm`` decimals re-expressed at ``to`` decimals (exact: only
    called with ``to`` >= the decimals the values need)."""
    out = dict(arr)
    for cols, a, b in ((("open", "high", "low", "close"), frm[0], to[0]), (("volume",), frm[1], to[1])):
        for c in cols:
            out[c] = arr[c] // 10 ** (a - b) if a >= b else arr[c] * 10 ** (b - a)
    return out


def _write_klines_compact(root: Path, arr: dict[str, np.ndarray], n_read: int, spec: ins.InstrumentSpec,
                          mkt: ins.Market, interval: str, report: ImportReport) -> None:
    """Gaps reported, bars merged into the stored compact months (the instrument is written by the caller)."""
    from catalog.compact import write_compact_arrays
    from catalog.validation import report_gaps

    step_ns = ins.interval_ns(interval)
    bar_type = str(ins.bar_type(spec.symbol, mkt, interval))
    st = report.entry("bars", bar_type)
    st.rows_read += n_read
    n = int(arr["ts"].size)
    st.rows_duplicate += n_read - n
    if not n:
        return
    report_gaps(report, bar_type, arr["ts"], step_ns, market=mkt)
    written = write_compact_arrays(root, bar_type, spec.price_precision, spec.size_precision, arr["ts"], arr["open"],
                                   arr["high"], arr["low"], arr["close"], arr["volume"])
    st.files_written += [str(p) for p in written]
    if written:
        st.rows_written += n
    else:
        st.rows_skipped += n  # all stored already, identical


def _kind_dirs(market: str, kind: str, interval: str) -> list[tuple[str, str]]:
    """``[(folder holding one sub-folder per symbol, sub-path inside a symbol's folder)]`` of a kind."""
    pre = _market_prefix(market)
    if kind == "fundingRate":
        return [(f"{pre}/monthly/fundingRate", "")]
    if kind == "aggTrades":
        return [(f"{pre}/monthly/aggTrades", ""), (f"{pre}/daily/aggTrades", "")]
    return [(f"{pre}/monthly/{kind}", interval), (f"{pre}/daily/{kind}", interval)]


def list_symbols(base_url: str | Path, market: str, kinds: Sequence[str] = ("bars",), interval: str = "1m",
                 mark_interval: str | None = None) -> list[str]:
    """Every symbol of a LOCAL Binance Vision folder with at least one ``.zip`` of one of ``kinds``
    (bars at ``interval``, mark at ``mark_interval``; :mod:`catalog.kinds` words or the archive folder
    names ``klines`` ...), sorted. ``--symbols ALL``."""
    kinds = [k if k in VISION_FOLDERS.values() else VISION_FOLDERS.get(k, k) for k in kinds]
    base = _Base(base_url)
    if base.is_http:
        raise ValueError("listing symbols (--symbols ALL) needs a local folder; an HTTP base cannot be listed")
    out: set[str] = set()
    for kind in kinds:
        iv = (mark_interval or interval) if kind == "markPriceKlines" else interval
        for folder, sub in _kind_dirs(market, kind, iv):
            d = Path(base.base) / folder
            if not d.is_dir():
                continue
            for sym_dir in d.iterdir():
                z = sym_dir / sub if sub else sym_dir
                if sym_dir.is_dir() and z.is_dir() and any(p.suffix == ".zip" for p in z.iterdir()):
                    out.add(sym_dir.name.upper())
    return sorted(out)


# --------------------------------------------------------------------------- public API


def import_binance_vision(
    catalog_path: str | Path | None,
    *,
    base_url: str | Path | None = None,
    market: str = "spot",
    symbols: Sequence[str] | str = ("BTCUSDT",),
    interval: str = "1m",
    start: DateLike = None,
    end: DateLike = None,
    kinds: Sequence[str] = ("bars",),
    mark_interval: str | None = None,
    store: str = "nautilus",
    instruments_file: str | Path | None = None,
    metadata: str = "cache",
    require_files: bool = True,
    max_jump: float | str | None = None,
) -> ImportReport:
    """Import Binance Vision archives into the catalog at ``catalog_path``.

    ``base_url``: HTTP(S) base (default ``$BINANCE_VISION_URL`` or https://data.binance.vision)
    or a local folder with the same layout. ``market``: ``"spot"`` or ``"um"`` (USDT-M futures).
    ``symbols``: any Binance symbols (``"SOLUSDT"``), or ``"ALL"`` = every symbol with archives of
    ``kinds`` in a local folder (:func:`list_symbols`). With a local folder and ``require_files``
    (default), a symbol without any archive of ``kinds`` raises :class:`DataImportError` naming it
    before anything is written.
    ``interval``: kline interval (``"1m"``, ``"1h"`` ...). ``start``/``end``: inclusive UTC dates
    (``date`` or ``"YYYY-MM-DD"``); required ``start`` for HTTP. ``kinds`` ⊆ {``"bars"``,
    ``"funding"``, ``"mark"``, ``"trades"``} (:mod:`catalog.kinds`; funding and marks only for ``"um"``;
    the old spellings ``klines / fundingRate / markPriceKlines / aggTrades`` are accepted with a
    deprecation warning). ``mark_interval``: candle interval of the mark-price klines (default: ``interval``).
    ``store``: where klines go - ``"nautilus"`` (Nautilus's catalog, validated by
    :func:`catalog.common.validate_bars`) or ``"compact"`` (the compact store, ~4x smaller and
    ~5x faster to import: :func:`catalog.binance_csv.parse_kline_csvs` on 2 threads, then
    :func:`catalog.compact.write_compact_arrays`, which merges with stored months); instruments,
    funding and mark prices always go to Nautilus's catalog. Backtests read either store.
    ``instruments_file`` / ``metadata``: where instruments come from (:mod:`catalog.instrument_meta`:
    instruments.toml, built-in table, cached exchangeInfo, else precisions inferred from the
    archives - the finest decimals in them - and said so in ``report.notes``).

    ``max_jump``: largest close -> next open price change allowed between neighbouring bars (new
    and stored; :func:`catalog.validation.max_jump_setting`: default ``$NAUTILUS_MAX_JUMP`` or 0.5,
    0 = off); a file beyond it is refused naming the file, row and jump.

    Every archive of one symbol (all kinds) is parsed and validated before anything of it is
    written; a corrupt archive raises :class:`catalog.errors.DataImportError` (file, row, problem)
    and leaves the catalog as it was for that symbol. Returns an :class:`ImportReport`.
    """
    from catalog.instrument_meta import InstrumentResolver, decimal_decimals, tick_decimals

    t_start = time.perf_counter()
    max_jump = max_jump_setting(max_jump)
    kinds = canonical_kinds(kinds)
    unknown = unknown_kinds(kinds, KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; expected a subset of {KINDS}")
    if store not in ("nautilus", "compact"):
        raise ValueError(f"unknown store {store!r}; expected 'nautilus' or 'compact'")
    if market != "um" and set(kinds) & {"funding", "mark"}:
        raise ValueError("funding and mark (prices) exist only for market='um'")
    kinds = tuple(VISION_FOLDERS[k] for k in kinds)  # below: Binance's archive folder names
    pre = _market_prefix(market)
    step_ns = ins.interval_ns(interval)
    mark_iv = mark_interval or interval
    mark_ns = ins.interval_ns(mark_iv)
    base = _Base(base_url if base_url is not None else binance_vision_url())
    d0, d1 = _to_date(start), _to_date(end)
    if d0 and d1 and d1 < d0:
        raise ValueError(f"end {d1} before start {d0}")
    mkt: ins.Market = "um" if market == "um" else "spot"
    syms = [s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols)]
    if syms == ["ALL"]:
        syms = list_symbols(base.base, market, kinds, interval, mark_iv)
        if not syms:
            raise DataImportError(base.where(pre), f"no {market} symbol has {list(kinds)} archives here")
    bad = [s for s in syms if not re.fullmatch(r"[A-Z0-9]+", s)]
    if bad or not syms:
        raise ValueError(f"symbols must be Binance symbols like SOLUSDT (or ALL), got {bad or syms}")
    if not base.is_http and require_files:
        missing = [s for s in syms if not any(_select(base, k, market, s, mark_iv if k == "markPriceKlines" else interval,
                                                      None, None) for k in kinds)]
        if missing:
            have = list_symbols(base.base, market, kinds, interval, mark_iv)
            raise DataImportError(base.where(pre), f"symbol(s) {missing} not in the source: no {list(kinds)} archives "
                                  f"for them ({len(have)} symbols have some: {', '.join(have[:20])}"
                                  f"{' ...' if len(have) > 20 else ''}); nothing imported")
    root = ensure_catalog_root(catalog_path)
    report = ImportReport(source=base.base)
    resolver = InstrumentResolver(root, instruments_file=instruments_file, metadata=metadata, report=report)

    for symbol in syms:
        iid = ins.instrument_id(symbol, mkt)
        infer = resolver.needs_data(symbol, mkt)
        fetched: dict[str, list[tuple[str, bytes]]] = {}
        for kind in kinds:
            iv = mark_iv if kind == "markPriceKlines" else interval
            got: list[tuple[str, bytes]] = []
            for rel, fallback in _select(base, kind, market, symbol, iv, d0, d1):
                raw = base.get(rel)
                if raw is not None:
                    got.append((rel, raw))
                    continue
                for frel in fallback:  # monthly archive absent (HTTP 404): use the daily ones
                    fraw = base.get(frel)
                    if fraw is not None:  # 404 = absent
                        got.append((frel, fraw))
            fetched[kind] = got
        # 1. parse every archive of this symbol (no precision checks yet)
        parsed: dict[str, list[tuple[str, pa.Table, np.ndarray]]] = {k: [] for k in kinds}
        compact_arr = None
        new_bars = NewBars()
        price_dec, size_dec, mark_dec = [], [], []
        for kind in kinds:
            if kind == "klines" and store == "compact":
                report.files_read += [base.where(rel) for rel, _ in fetched[kind]]
                scale = (8, 8) if infer else None
                if scale is not None:
                    compact_arr = _parse_klines_compact(base, fetched[kind], scale, interval, d0, d1,
                                                        str(ins.bar_type(symbol, mkt, interval)), report, new_bars)
                    arr = compact_arr[0]
                    if arr["ts"].size:
                        price_dec.append(max(tick_decimals(arr[c], 8) for c in ("open", "high", "low", "close")))
                        size_dec.append(tick_decimals(arr["volume"], 8))
                continue
            for rel, raw in fetched[kind]:
                where, data = _read_csv_from_zip(base, rel, raw)
                report.files_read.append(base.where(rel))
                if kind == "fundingRate":
                    t, lines = parse_funding_csv(data, where)
                elif kind == "aggTrades":
                    t, lines = parse_aggtrades_csv(data, where)
                    if infer:
                        price_dec.append(decimal_decimals(t["price"]))
                        size_dec.append(decimal_decimals(t["size"]))
                else:
                    t, lines = parse_kline_csv(data, where, step_ns if kind == "klines" else mark_ns)
                    if kind == "klines" and infer:
                        price_dec.append(max(decimal_decimals(t[c]) for c in ("open", "high", "low", "close")))
                        size_dec.append(decimal_decimals(t["volume"]))
                    elif kind == "markPriceKlines":
                        mark_dec.append(max(decimal_decimals(t[c]) for c in ("open", "high", "low", "close")))
                parsed[kind].append((where, t, lines))
        # 2. the instrument (built-in, instruments.toml, exchange metadata or inferred from step 1)
        data_precision = (max(price_dec), max(size_dec)) if price_dec else None
        if infer and data_precision is None and not resolver.knows(symbol, mkt):
            raise DataImportError(base.where(pre), f"{symbol} ({market}): no klines/aggTrades archives to infer the "
                                  "instrument's precision from and no metadata for it; import klines too, fetch "
                                  "exchangeInfo (nautilus-app fetch-instruments) or set it in instruments.toml")
        spec = resolver.spec(symbol, mkt, data_precision=data_precision, mark_decimals=max(mark_dec, default=None),
                             where=base.base)
        if store == "compact" and "klines" in kinds:
            if compact_arr is None:
                compact_arr = _parse_klines_compact(base, fetched["klines"], (spec.price_precision, spec.size_precision),
                                                    interval, d0, d1, str(ins.bar_type(symbol, mkt, interval)), report,
                                                    new_bars)
            else:
                compact_arr = (_rescale_ticks(compact_arr[0], (8, 8), (spec.price_precision, spec.size_precision)),
                               compact_arr[1])
        # 3. validate at the instrument's precisions, filter to the days
        tables: dict[str, list[pa.Table]] = {k: [] for k in kinds}
        for kind in kinds:
            for where, t, lines in parsed[kind]:
                if kind == "fundingRate":
                    tables[kind].append(_date_filter(t, d0, d1, 0))
                elif kind == "aggTrades":
                    check_precision(t["price"].combine_chunks(), spec.price_precision, where, "price", lines)
                    check_precision(t["size"].combine_chunks(), spec.size_precision, where, "quantity", lines)
                    tables[kind].append(_date_filter(t, d0, d1, 0))
                elif kind == "klines":
                    validate_bars(t, where, lines, spec.price_precision, spec.size_precision)
                    m = _day_mask(t["ts"].to_numpy(), d0, d1, step_ns)
                    t, lines = (t, lines) if m.all() else (t.filter(pa.array(m)), lines[m])
                    tables[kind].append(t)
                    new_bars.add(where, t["ts"].to_numpy(), pc.cast(t["open"], pa.float64()).to_numpy(),
                                 pc.cast(t["close"], pa.float64()).to_numpy(), lines)
                else:
                    validate_bars(t, where, lines, spec.mark_price_precision, 16)
                    t = _date_filter(t, d0, d1, mark_ns)
                    tables[kind].append(pa.table({"ts": t["ts"], "value": t["close"]}))
        rows = sum(t.num_rows for k in kinds for t in tables[k])
        if compact_arr is not None:
            rows += int(compact_arr[0]["ts"].size)
        if not rows:  # nothing in the selected days: write nothing (not even the instrument)
            report.warnings.append(f"{symbol} ({market}): no {'/'.join(kinds)} rows in the selected range; "
                                   "nothing written")
            for kind in kinds:
                report.entry("bars" if kind == "klines" else {"fundingRate": "funding_rates", "aggTrades": "trades",
                             "markPriceKlines": "mark_prices"}[kind],
                             str(ins.bar_type(symbol, mkt, interval)) if kind == "klines" else str(iid))
            continue
        # content: the new bars must continue the stored neighbours (and each other) without a jump
        if "klines" in kinds:
            check_import_jumps(root, str(ins.bar_type(symbol, mkt, interval)), store, new_bars, step_ns, max_jump)
        # 4. write: instrument first (idempotent), then every kind
        write_instruments(root, [ins.build_instrument(symbol, mkt, spec=spec)], report, count_once=True)
        for kind in kinds:
            if kind == "klines" and store == "compact":
                assert compact_arr is not None
                _write_klines_compact(root, compact_arr[0], compact_arr[1], spec, mkt, interval, report)
            elif kind == "klines":
                if tables[kind]:
                    from catalog.validation import report_gaps  # gaps are reported on every write

                    ts_all = np.unique(np.concatenate([t["ts"].to_numpy() for t in tables[kind]]))
                    report_gaps(report, str(ins.bar_type(symbol, mkt, interval)), ts_all, step_ns, market=mkt)
                write_bars(root, ins.bar_type(symbol, mkt, interval), spec.price_precision,
                           spec.size_precision, step_ns, tables[kind], report)
            elif kind == "fundingRate":
                write_funding_rates(root, iid, tables[kind], report)
            elif kind == "aggTrades":
                write_trades(root, iid, spec.price_precision, spec.size_precision, tables[kind], report)
            else:
                write_mark_prices(root, iid, spec.mark_price_precision, tables[kind], report, mark_ns)
    report.seconds = time.perf_counter() - t_start
    return report


def import_kline_zips(root: str | Path, bar_type: str, paths: list[Path], price_precision: int,
                      size_precision: int, interval_ns: int, *, workers: int | None = None) -> tuple[int, list[Path]]:
    """Import Binance Vision kline zips straight into the compact store (no Nautilus catalog).

    ``paths``: zips of one symbol and interval (monthly and/or daily; overlapping rows must be
    identical - a timestamp with two different bars raises). Zips are unzipped and parsed in
    batches of about 1 MB of zip (:func:`catalog.binance_csv.parse_kline_zips`) on ``workers``
    threads (default CPU count; zlib-ng and pyarrow release the GIL), then sorted,
    checked and written with :func:`catalog.compact.write_compact_arrays`. Every file is parsed and validated
    before anything is written. Returns ``(bars, written paths)``; raises
    :class:`catalog.errors.DataImportError` (file, row, problem) or ``ValueError``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from catalog.compact import write_compact_arrays

    nw = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=nw) as pool:
        parts = list(pool.map(lambda b: parse_kline_zips(b, price_precision, size_precision, interval_ns),
                              size_batches(paths, [Path(p).stat().st_size for p in paths])))
    arr = combine_bar_parts(parts, str(bar_type))
    if not arr["ts"].size:
        return 0, []
    written = write_compact_arrays(root, bar_type, price_precision, size_precision, arr["ts"], arr["open"], arr["high"],
                                   arr["low"], arr["close"], arr["volume"], workers=nw)
    return int(arr["ts"].size), written
