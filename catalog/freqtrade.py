"""Import freqtrade ``.feather`` candle files (Binance) into the catalog.

Files (freqtrade's naming, searched in ``data_dir`` and ``data_dir/futures``)::

    BTC_USDT-1m.feather                        spot OHLCV            -> Bar BTCUSDT.BINANCE-1-MINUTE-...
    BTC_USDT_USDT-1m-futures.feather           USDT-M perp OHLCV     -> Bar BTCUSDT-PERP.BINANCE_USDM-...
    BTC_USDT_USDT-8h-funding_rate.feather      funding (rate in ``open``, other columns 0)
                                                                     -> FundingRateUpdate
    BTC_USDT_USDT-1h-mark.feather              mark price candles    -> MarkPriceUpdate (close, at close time)

Columns: ``date`` (datetime64, UTC, candle OPEN time), ``open``, ``high``, ``low``, ``close``,
``volume`` (float64). Floats are converted to exact decimals at the instrument precision; a
value needing more decimals raises :class:`catalog.errors.DataImportError` (never rounded).
Bars are stamped at their close (``date + timeframe``); funding times are snapped to the hour
grid (freqtrade keeps the exchange's 1-15 ms offsets); the timeframe in a funding file's name is
not the funding interval, which is derived from the gaps (:func:`catalog.common.funding_intervals`).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from catalog.common import (
    bar_table,
    check_increasing,
    floats_to_decimal,
    snap_funding_times,
    validate_bars,
)
from catalog.errors import DataImportError
from catalog.store import ensure_catalog_root
from catalog.validation import NewBars, check_import_jumps, max_jump_setting
from catalog.writer import ImportReport, write_bars, write_funding_rates, write_instruments, write_mark_prices
from core import instruments as ins

_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+_[A-Za-z0-9]+(?:_[A-Za-z0-9]+)?)-(?P<tf>\d+[smhdwM])"
    r"(?:-(?P<ct>futures|mark|funding_rate|index|premiumIndex))?\.feather$"
)
_OHLCV = ("open", "high", "low", "close", "volume")


def parse_name(name: str) -> tuple[str, ins.Market, str, str] | None:
    """``"BTC_USDT_USDT-8h-funding_rate.feather"`` -> ``("BTCUSDT", "um", "8h", "funding_rate")``;
    spot OHLCV files give candle type ``"spot"``, perp OHLCV ``"futures"``. ``None`` if not a
    freqtrade candle file name."""
    m = _NAME.match(name)
    if not m:
        return None
    parts = m["pair"].upper().split("_")
    ct = m["ct"]
    if len(parts) == 2 and ct is None:
        return parts[0] + parts[1], "spot", m["tf"], "spot"
    if len(parts) == 3 and ct is not None:
        return parts[0] + parts[1], "um", m["tf"], ct
    return None


def _pair_filter(pairs: Sequence[str] | None) -> list[tuple[str, str | None]] | None:
    """Normalise ``"BTC/USDT"`` (spot), ``"BTC/USDT:USDT"`` (perp), ``"BTCUSDT"``/``"BTC_USDT"`` (both)."""
    if pairs is None:
        return None
    out: list[tuple[str, str | None]] = []
    for p in pairs:
        p = p.upper().strip()
        if ":" in p:
            out.append((p.split(":")[0].replace("/", ""), "um"))
        elif "/" in p:
            out.append((p.replace("/", ""), "spot"))
        else:
            out.append((p.replace("_", ""), None))
    return out


def _read(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_feather(path)
    except Exception as e:
        raise DataImportError(str(path), f"not a readable feather file ({type(e).__name__}: {e})") from e
    missing = [c for c in ("date", *_OHLCV) if c not in df.columns]
    if missing:
        raise DataImportError(str(path), f"missing columns {missing}; has {list(df.columns)}")
    return df


def _open_ns(df: pd.DataFrame, path: Path) -> np.ndarray:
    s = df["date"]
    if not pd.api.types.is_datetime64_any_dtype(s):
        raise DataImportError(str(path), f"column 'date' is {s.dtype}, expected datetime64")
    idx = pd.DatetimeIndex(s)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    if idx.hasnans:
        i = int(np.flatnonzero(idx.isna())[0])
        raise DataImportError(str(path), "column 'date': missing timestamp", i + 1)
    return idx.tz_convert("UTC").as_unit("ns").asi8.astype(np.int64)


def read_ohlcv_frame(path: Path, tf_ns: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Read an OHLCV feather: ``(open_ns, {column: float64 values}, lines)``; checks the columns,
    the timestamps and the grid (:class:`DataImportError` naming file and row)."""
    df = _read(path)
    lines = np.arange(len(df), dtype=np.int64) + 1
    open_ns = _open_ns(df, path)
    if tf_ns <= 86_400_000_000_000:
        bad = np.flatnonzero(open_ns % tf_ns != 0)
        if bad.size:
            i = int(bad[0])
            raise DataImportError(str(path), f"candle time {df['date'].iloc[i]} is not on the {tf_ns} ns grid", i + 1)
    return open_ns, {c: df[c].to_numpy(dtype=np.float64) for c in _OHLCV}, lines


def frame_decimals(cols: dict[str, np.ndarray]) -> tuple[int, int]:
    """``(price decimals, volume decimals)`` the values of a frame need (finest seen)."""
    from catalog.instrument_meta import float_decimals

    return max(float_decimals(cols[c]) for c in ("open", "high", "low", "close")), float_decimals(cols["volume"])


def ohlcv_table(path: Path, tf_ns: int, frame: tuple[np.ndarray, dict[str, np.ndarray], np.ndarray],
                price_precision: int, size_precision: int) -> pa.Table:
    """A frame from :func:`read_ohlcv_frame` as a validated bar table (``ts`` = close time ns)."""
    open_ns, raw, lines = frame
    where = str(path)
    cols = {}
    for c in _OHLCV:
        prec = size_precision if c == "volume" else price_precision
        cols[c] = floats_to_decimal(raw[c], prec, where, c, lines)
    t = bar_table(open_ns + tf_ns, cols)
    validate_bars(t, where, lines, price_precision, size_precision)
    return t


def read_ohlcv(path: Path, tf_ns: int, price_precision: int, size_precision: int) -> pa.Table:
    """Read an OHLCV feather into a bar table (``ts`` = close time ns) validated at the given
    precisions (see :mod:`catalog.common`)."""
    return ohlcv_table(path, tf_ns, read_ohlcv_frame(path, tf_ns), price_precision, size_precision)


def read_funding(path: Path) -> pa.Table:
    """Read a ``*-funding_rate.feather`` (rate in ``open``) into ``ts`` (ns, snapped to the hour)
    and ``rate`` (shortest exact decimal string of the float, a fraction)."""
    df = _read(path)
    where = str(path)
    lines = np.arange(len(df), dtype=np.int64) + 1
    rate = df["open"].to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(rate) | (np.abs(rate) >= 1))
    if bad.size:
        i = int(bad[0])
        raise DataImportError(where, f"column 'open' (funding rate): implausible value {rate[i]!r}", i + 1)
    ts = snap_funding_times(_open_ns(df, path), where, lines)
    check_increasing(ts, where, lines)
    rates = [np.format_float_positional(x, trim="-") for x in rate.tolist()]
    return pa.table({"ts": pa.array(ts, pa.int64()), "rate": pa.array(rates, pa.string())})


def read_mark(path: Path, tf_ns: int, precision: int) -> pa.Table:
    """Read a ``*-mark.feather`` into ``ts`` (candle close, ns) and ``value`` (close, decimal)."""
    t = read_ohlcv(path, tf_ns, precision, 16)
    return pa.table({"ts": t["ts"], "value": t["close"]})


def find_files(data_dir: Path) -> list[Path]:
    """Candle files in ``data_dir`` and ``data_dir/futures`` (freqtrade's layout), sorted."""
    out: list[Path] = []
    for d in (data_dir, data_dir / "futures"):
        if d.is_dir():
            out += sorted(p for p in d.glob("*.feather") if parse_name(p.name))
    return out


def import_freqtrade(
    catalog_path: str | Path | None,
    *,
    data_dir: str | Path,
    pairs: Sequence[str] | None = None,
    timeframes: Sequence[str] | None = None,
    trading_mode: str | None = None,
    one_timeframe: bool = False,
    instruments_file: str | Path | None = None,
    metadata: str = "cache",
    max_jump: float | str | None = None,
) -> ImportReport:
    """Import freqtrade feather files from ``data_dir`` into the catalog at ``catalog_path``.

    ``pairs``: any pairs, ``"SOL/USDT"`` (spot), ``"SOL/USDT:USDT"`` (perp) or ``"SOLUSDT"`` /
    ``"SOL_USDT"`` (both); default every pair found in ``data_dir`` (and ``data_dir/futures``). A
    requested pair with no file raises :class:`DataImportError` naming it before anything is written.
    ``timeframes``: OHLCV timeframes to import (``["1m"]``); with ``one_timeframe`` only the first
    of them that has a file, per pair (``["1m", "5m"]``: 1m where present, else 5m). Funding and
    mark files are imported for the selected pairs whatever their timeframe (funding times snapped
    to the hour: freqtrade keeps the exchange's 1-15 ms offsets). ``trading_mode``: ``"spot"``,
    ``"futures"`` or ``None`` (both).

    Instruments (:mod:`catalog.instrument_meta`): instruments.toml (``instruments_file``), the
    built-in table, cached exchange metadata (``metadata``: ``"cache"``/``"fetch"``/``"offline"``),
    else precisions inferred from the files (the finest decimals over all OHLCV files of the
    instrument, so every value is stored exactly; reported in ``report.notes``). All files of one
    instrument are read and validated before any of it is written; rows already in the catalog are
    skipped. ``max_jump``: a file whose prices jump more than this from the stored neighbouring bars
    (or inside itself) is refused (:func:`catalog.validation.check_import_jumps`; default
    ``$NAUTILUS_MAX_JUMP`` or 0.5, 0 = off). Returns an :class:`ImportReport`.
    """
    from catalog.instrument_meta import InstrumentResolver

    t0 = time.perf_counter()
    max_jump = max_jump_setting(max_jump)
    if trading_mode not in (None, "spot", "futures"):
        raise ValueError(f"trading_mode must be 'spot', 'futures' or None, not {trading_mode!r}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"freqtrade data_dir {data_dir} does not exist")
    want = _pair_filter(pairs)
    report = ImportReport(source=str(data_dir))

    groups: dict[tuple[str, ins.Market, str, str], list[Path]] = defaultdict(list)
    names: dict[tuple[str, ins.Market], tuple[str, str]] = {}
    found: set[tuple[str, ins.Market]] = set()
    for p in find_files(data_dir):
        parsed = parse_name(p.name)
        assert parsed is not None
        symbol, market, tf, ct = parsed
        if trading_mode == "spot" and market != "spot" or trading_mode == "futures" and market != "um":
            continue
        found.add((symbol, market))
        parts = p.name.split("-", 1)[0].upper().split("_")
        names[(symbol, market)] = (parts[0], parts[1])
        if want is not None and not any(s == symbol and (m is None or m == market) for s, m in want):
            continue
        if ct in ("index", "premiumIndex"):
            report.warnings.append(f"{p}: candle type {ct!r} not imported")
            continue
        if ct in ("spot", "futures") and timeframes is not None and tf not in timeframes:
            continue
        key = (symbol, market, ct, tf if ct in ("spot", "futures") else "")
        groups[key].append(p)
    if want is not None:
        missing = [p for p, (s, m) in zip(pairs or [], want, strict=True)
                   if not any(fs == s and (m is None or fm == m) for fs, fm in found)]
        if missing:
            mode = f" ({trading_mode})" if trading_mode else ""
            raise DataImportError(str(data_dir), f"no freqtrade file{mode} for pair(s) {missing} "
                                  f"(looked in {data_dir} and {data_dir / 'futures'}; {len(found)} pairs found there); "
                                  "nothing imported")
    if one_timeframe and timeframes:
        order = {tf: i for i, tf in enumerate(timeframes)}
        best: dict[tuple[str, str, str], str] = {}
        for s_, m_, ct, tf in groups:
            if ct in ("spot", "futures") and (
                    (s_, m_, ct) not in best or order[tf] < order[best[(s_, m_, ct)]]):
                best[(s_, m_, ct)] = tf
        groups = defaultdict(list, {k: v for k, v in groups.items()
                                    if k[2] not in ("spot", "futures") or best[(k[0], k[1], k[2])] == k[3]})

    root = ensure_catalog_root(catalog_path)
    resolver = InstrumentResolver(root, instruments_file=instruments_file, metadata=metadata, report=report)
    by_inst: dict[tuple[str, ins.Market], list[tuple[str, str, list[Path]]]] = defaultdict(list)
    for (symbol, market, ct, tf), paths in sorted(groups.items()):
        by_inst[(symbol, market)].append((ct, tf, paths))

    for (symbol, market), items in sorted(by_inst.items()):
        iid = ins.instrument_id(symbol, market)
        # read everything of this instrument first (precision inference needs all OHLCV files)
        ohlcv: list[tuple[str, int, Path, tuple]] = []
        fundings: list[pa.Table] = []
        marks: list[tuple[Path, int, tuple]] = []
        for ct, tf, paths in items:
            report.files_read += [str(p) for p in paths]
            for p in paths:
                if ct in ("spot", "futures"):
                    step = ins.interval_ns(tf)
                    ohlcv.append((tf, step, p, read_ohlcv_frame(p, step)))
                elif ct == "funding_rate":
                    fundings.append(read_funding(p))
                else:
                    ptf = parse_name(p.name)[2]  # type: ignore[index]
                    step = ins.interval_ns(ptf)
                    marks.append((p, step, read_ohlcv_frame(p, step)))
        data_precision = None
        if ohlcv:
            decs = [frame_decimals(f[1]) for _, _, _, f in ohlcv]
            data_precision = (max(d[0] for d in decs), max(d[1] for d in decs))
        mark_dec = max((frame_decimals(f[1])[0] for _, _, f in marks), default=None)
        if data_precision is None and not resolver.knows(symbol, market) and resolver.needs_data(symbol, market):
            data_precision = (max(8, mark_dec or 0), 0)
            report.notes.append(f"{iid}: no OHLCV file, price precision taken from the mark prices and size "
                                "precision 0; set price_precision/size_precision in instruments.toml before "
                                "importing bars with fractional volumes")
        spec = resolver.spec(symbol, market, data_precision=data_precision, mark_decimals=mark_dec,
                             base_quote=names.get((symbol, market)), where=str(data_dir))
        inst = ins.build_instrument(symbol, market, spec=spec)
        bar_tables: dict[str, list[pa.Table]] = defaultdict(list)
        new_bars: dict[str, NewBars] = defaultdict(NewBars)
        for tf, step, p, frame in ohlcv:
            t = ohlcv_table(p, step, frame, spec.price_precision, spec.size_precision)
            bar_tables[tf].append(t)
            new_bars[tf].add(str(p), t["ts"].to_numpy(), frame[1]["open"], frame[1]["close"], frame[2])
        for tf in bar_tables:  # content: no price jump against the stored neighbours or inside the files
            check_import_jumps(root, str(ins.bar_type(symbol, market, tf)), "nautilus", new_bars[tf],
                               ins.interval_ns(tf), max_jump)
        mark_tabs = []
        mark_step = 0
        for p, step, frame in marks:
            mark_step = max(mark_step, step)
            t = ohlcv_table(p, step, frame, spec.mark_price_precision, 16)
            mark_tabs.append(pa.table({"ts": t["ts"], "value": t["close"]}))
        # everything of this instrument parsed and validated: write
        write_instruments(root, [inst], report, count_once=True)
        for tf, tables in sorted(bar_tables.items()):
            write_bars(root, ins.bar_type(symbol, market, tf), spec.price_precision, spec.size_precision,
                       ins.interval_ns(tf), tables, report)
        if fundings:
            write_funding_rates(root, iid, fundings, report)
        if mark_tabs:
            write_mark_prices(root, iid, spec.mark_price_precision, mark_tabs, report, mark_step)
    report.seconds = time.perf_counter() - t0
    return report
