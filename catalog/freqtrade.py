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
from catalog.writer import ImportReport, write_bars, write_funding_rates, write_instruments, write_mark_prices
from nautilus_app import instruments as ins

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


def read_ohlcv(path: Path, tf_ns: int, price_precision: int, size_precision: int) -> pa.Table:
    """Read an OHLCV feather into a bar table (``ts`` = close time ns) validated at the given
    precisions (see :mod:`catalog.common`)."""
    df = _read(path)
    lines = np.arange(len(df), dtype=np.int64) + 1
    where = str(path)
    open_ns = _open_ns(df, path)
    if tf_ns <= 86_400_000_000_000:
        bad = np.flatnonzero(open_ns % tf_ns != 0)
        if bad.size:
            i = int(bad[0])
            raise DataImportError(where, f"candle time {df['date'].iloc[i]} is not on the {tf_ns} ns grid", i + 1)
    cols = {}
    for c in _OHLCV:
        prec = size_precision if c == "volume" else price_precision
        cols[c] = floats_to_decimal(df[c].to_numpy(dtype=np.float64), prec, where, c, lines)
    t = bar_table(open_ns + tf_ns, cols)
    validate_bars(t, where, lines, price_precision, size_precision)
    return t


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
) -> ImportReport:
    """Import freqtrade feather files from ``data_dir`` into the catalog at ``catalog_path``.

    ``pairs``: ``"BTC/USDT"`` (spot), ``"BTC/USDT:USDT"`` (perp) or ``"BTCUSDT"`` (both); default all.
    ``timeframes``: OHLCV timeframes to import (``["1m"]``); funding and mark files are imported
    for the selected pairs whatever their timeframe. ``trading_mode``: ``"spot"``, ``"futures"`` or
    ``None`` (both). All files of one data type and instrument are validated before any of them
    is written; rows already in the catalog are skipped. Returns an :class:`ImportReport`.
    """
    t0 = time.perf_counter()
    if trading_mode not in (None, "spot", "futures"):
        raise ValueError(f"trading_mode must be 'spot', 'futures' or None, not {trading_mode!r}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"freqtrade data_dir {data_dir} does not exist")
    root = ensure_catalog_root(catalog_path)
    report = ImportReport(source=str(data_dir))
    want = _pair_filter(pairs)

    groups: dict[tuple[str, ins.Market, str, str], list[Path]] = defaultdict(list)
    for p in find_files(data_dir):
        parsed = parse_name(p.name)
        assert parsed is not None
        symbol, market, tf, ct = parsed
        if trading_mode == "spot" and market != "spot" or trading_mode == "futures" and market != "um":
            continue
        if want is not None and not any(s == symbol and (m is None or m == market) for s, m in want):
            continue
        if ct in ("index", "premiumIndex"):
            report.warnings.append(f"{p}: candle type {ct!r} not imported")
            continue
        if ct in ("spot", "futures") and timeframes is not None and tf not in timeframes:
            continue
        if (market, symbol) not in ins.SPECS:
            report.warnings.append(f"{p}: no instrument spec for {symbol} ({market}); skipped")
            continue
        key = (symbol, market, ct, tf if ct in ("spot", "futures") else "")
        groups[key].append(p)

    for (symbol, market, ct, tf), paths in sorted(groups.items()):
        spec = ins.get_spec(symbol, market)
        iid = ins.instrument_id(symbol, market)
        report.files_read += [str(p) for p in paths]
        inst = ins.build_instrument(symbol, market)
        if ct in ("spot", "futures"):
            step = ins.interval_ns(tf)
            tables = [read_ohlcv(p, step, spec.price_precision, spec.size_precision) for p in paths]
            write_instruments(root, [inst], report, count_once=True)
            write_bars(root, ins.bar_type(symbol, market, tf), spec.price_precision, spec.size_precision, step,
                       tables, report)
        elif ct == "funding_rate":
            tables = [read_funding(p) for p in paths]
            write_instruments(root, [inst], report, count_once=True)
            write_funding_rates(root, iid, tables, report)
        else:  # mark
            tabs = []
            step = 0
            for p in paths:
                ptf = parse_name(p.name)[2]  # type: ignore[index]
                step = max(step, ins.interval_ns(ptf))
                tabs.append(read_mark(p, ins.interval_ns(ptf), spec.mark_price_precision))
            write_instruments(root, [inst], report, count_once=True)
            write_mark_prices(root, iid, spec.mark_price_precision, tabs, report, step)
    report.seconds = time.perf_counter() - t0
    return report
