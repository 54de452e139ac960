"""Instruments for ANY Binance symbol at import time: exchange metadata cache, overrides, inference.

Where an importer's instrument comes from (:class:`InstrumentResolver`, rules in
:func:`core.instruments.resolve_spec`), highest priority first:

1. **instruments.toml** (``--instruments PATH``, else ``$NAUTILUS_INSTRUMENTS``, else
   ``<catalog>/instruments.toml``): per ``[spot.SYMBOL]`` / ``[um.SYMBOL]`` tick, step, min
   quantity, min notional, max leverage, precisions, maintenance brackets (docs/data.md).
2. The built-in entries of :data:`core.instruments.SPECS` (BTCUSDT, ETHUSDT: historical
   precisions, unchanged ids and values).
3. **Binance exchangeInfo as ccxt loads it** (``load_markets`` of ``binance`` and
   ``binanceusdm``: ``/api/v3/exchangeInfo``, ``/fapi/v1/exchangeInfo``), cached in the catalog at
   ``<catalog>/metadata/binance_exchange_info.json`` with the UTC time it was fetched
   (:func:`fetch_exchange_info`, ``nautilus-app fetch-instruments``; ``download-data`` refreshes it
   as a by-product). Written atomically (temp file in the same folder + ``os.replace``).
4. **Offline inference** from the data being imported: price/size precision = the finest
   decimals seen, so every stored value fits exactly (rc7 skips bars whose precision differs
   from the instrument's); tick/step one unit of that precision; no min notional. The import
   report says so (``report.notes``).

An instrument already in the catalog keeps its precisions (its bars were written with them);
data needing more decimals is refused with :class:`catalog.errors.DataImportError` naming file,
row, column and value. Metadata modes: ``"cache"`` (default: the cached file if present, never
the network), ``"fetch"`` (refresh through ccxt first; unreachable = a warning, then cache or
inference), ``"offline"`` (ignore metadata, infer from the data).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalog.common import DEC
from catalog.errors import DataImportError
from core import instruments as ins

METADATA_REL = "metadata/binance_exchange_info.json"
METADATA_MODES = ("cache", "fetch", "offline")


def metadata_path(root: str | Path) -> Path:
    """``<catalog>/metadata/binance_exchange_info.json``."""
    return Path(root) / METADATA_REL


def load_metadata(root: str | Path) -> dict | None:
    """The cached exchangeInfo records, ``None`` when there is no cache.

    Shape: ``{"format": 1, "markets": {"spot"|"um": {"fetched_at": ISO UTC, "source": str,
    "symbols": {SYMBOL: record}}}}`` with records as :func:`core.instruments.market_record`.
    Raises ``ValueError`` naming the file when it is not valid JSON of that shape.
    """
    p = metadata_path(root)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
        if not isinstance(data.get("markets"), dict):
            raise ValueError("no 'markets' object")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{p}: not a metadata cache written by fetch-instruments ({e}); delete it and fetch again") from e
    return data


def _write_json_atomic(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_metadata(root: str | Path, market: ins.Market, records: dict[str, dict], source: str,
                  fetched_at: str | None = None) -> Path:
    """Store ``records`` (symbol -> record) as the ``market`` section of the cache (other markets
    kept), atomically. ``fetched_at`` default now (UTC, ISO). Returns the file path."""
    p = metadata_path(root)
    data = load_metadata(root) or {"format": 1, "markets": {}}
    data["markets"][market] = {
        "fetched_at": fetched_at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": source,
        "symbols": records,
    }
    _write_json_atomic(p, data)
    return p


def records_from_exchange(ex: Any, market: ins.Market) -> dict[str, dict]:
    """exchangeInfo records of a markets-loaded ccxt Binance exchange: spot markets for ``"spot"``,
    linear perpetual swaps for ``"um"`` (dated futures left out)."""
    out: dict[str, dict] = {}
    for m in ex.markets.values():
        if market == "spot" and not m.get("spot"):
            continue
        if market == "um":
            info = m.get("info") or {}
            if not (m.get("swap") and m.get("linear")) or info.get("contractType", "PERPETUAL") != "PERPETUAL":
                continue
        try:
            rec = ins.market_record(m)
        except ValueError:
            continue  # a market without filters cannot be traded: skip it
        out[rec["symbol"]] = rec
    return out


def fetch_exchange_info(root: str | Path, markets: tuple[str, ...] = ("spot", "um"), *,
                        urls: dict[str, str] | None = None, exchange: Any = None,
                        timeout_ms: int = 30_000) -> dict[str, int]:
    """Load Binance's markets through ccxt (``binance`` for spot, ``binanceusdm`` for USDT-M; the
    real ccxt classes, ``urls`` overriding ``exchange.urls['api']``) and cache them in the catalog.

    Returns ``{market: number of symbols}``. Raises :class:`catalog.ccxt_exchange.DownloadError`
    when the exchange cannot be reached (after ccxt's retries).
    """
    from catalog.ccxt_exchange import call_with_retries, make_exchange

    counts = {}
    for market in markets:
        mkt: ins.Market = "um" if market == "um" else "spot"
        ex = exchange if exchange is not None else make_exchange(mkt, urls=urls, timeout_ms=timeout_ms)
        call_with_retries(ex, ex.load_markets, max_retries=2, backoff_s=0.5)
        recs = records_from_exchange(ex, mkt)
        api = (ex.urls.get("api") or {}).get("fapiPublic" if mkt == "um" else "public", "")
        save_metadata(root, mkt, recs, f"ccxt {ex.id} {ccxt_version()} load_markets ({api}/exchangeInfo)")
        counts[mkt] = len(recs)
    return counts


def ccxt_version() -> str:
    import ccxt

    return str(ccxt.__version__)


def stored_precision(root: str | Path, instrument_id: str) -> tuple[int, int] | None:
    """``(price_precision, size_precision)`` of the instrument already in the catalog, else None."""
    for kind in ("crypto_perpetual", "currency_pair"):
        d = Path(root) / "data" / kind / instrument_id
        files = sorted(d.glob("*.parquet")) if d.is_dir() else []
        if files:
            t = pq.read_table(files[-1], columns=["price_precision", "size_precision"])
            if t.num_rows:
                return int(t["price_precision"][0].as_py()), int(t["size_precision"][0].as_py())
    return None


# --------------------------------------------------------------------------- precision of data


def float_decimals(x: np.ndarray) -> int:
    """Decimals the float64 values need (max of :func:`catalog.common.decimals_needed`; 0 if empty).
    NaN/inf are ignored here (the converters report them with their row)."""
    from catalog.common import decimals_needed

    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return int(decimals_needed(x, 16).max()) if x.size else 0


def decimal_decimals(arr: pa.Array | pa.ChunkedArray) -> int:
    """Fewest decimals holding every value of a decimal128 array exactly (0..16; 0 if empty)."""
    a = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    a = a.cast(DEC) if a.type != DEC else a
    if len(a) == 0:
        return 0
    lo, hi = 0, 16  # the smallest d that fits; fitting is monotone in d
    while lo < hi:
        mid = (lo + hi) // 2
        if a.cast(pa.decimal128(38, mid), safe=False).cast(DEC).equals(a):
            hi = mid
        else:
            lo = mid + 1
    return lo


def tick_decimals(ticks: np.ndarray, scale: int) -> int:
    """Fewest decimals holding integer ticks at ``scale`` decimals exactly (``ticks`` at 8
    decimals all multiples of 1000 -> 5)."""
    t = np.asarray(ticks, dtype=np.int64)
    d = scale
    while d > 0 and t.size and not np.any(t % (10 ** (scale - d + 1))):
        d -= 1
    return d if t.size else 0


# --------------------------------------------------------------------------- resolver


class InstrumentResolver:
    """Resolves instrument specs for one import call (see the module docstring).

    Args:
        root: catalog root.
        instruments_file: explicit instruments.toml path (``--instruments``).
        metadata: ``"cache"``, ``"fetch"`` or ``"offline"``.
        urls: ccxt ``urls['api']`` overrides used by ``"fetch"`` (tests, mirrors).
        report: the :class:`catalog.writer.ImportReport` receiving notes/warnings.

    Raises:
        core.instruments.InstrumentOverrideError: malformed instruments.toml.
        ValueError: unknown metadata mode, unreadable metadata cache.
    """

    def __init__(self, root: str | Path, *, instruments_file: str | Path | None = None, metadata: str = "cache",
                 urls: dict[str, str] | None = None, report: Any = None) -> None:
        if metadata not in METADATA_MODES:
            raise ValueError(f"metadata must be one of {METADATA_MODES}, not {metadata!r}")
        self.root = Path(root)
        self.report = report
        self.instruments_file = ins.instruments_file_path(root, instruments_file)
        self.overrides = ins.load_overrides(self.instruments_file)
        if metadata == "fetch":
            try:
                counts = fetch_exchange_info(root, urls=urls)
                self._note(f"exchange metadata fetched: {counts} symbols -> {metadata_path(root)}")
            except Exception as e:  # noqa: BLE001 - any failure means: offline
                self._warn(f"exchange metadata unreachable ({type(e).__name__}: {str(e)[:200]}); "
                           "using the cached metadata if any, else inferring precisions from the data")
        self.metadata = load_metadata(root) if metadata != "offline" else None
        self.mode = metadata

    def _note(self, msg: str) -> None:
        if self.report is not None:
            self.report.notes.append(msg)

    def _warn(self, msg: str) -> None:
        if self.report is not None:
            self.report.warnings.append(msg)

    def record(self, symbol: str, market: ins.Market) -> tuple[dict | None, str]:
        """The cached exchangeInfo record of ``symbol`` and a source label (``None`` if not cached)."""
        sec = ((self.metadata or {}).get("markets") or {}).get(market) or {}
        rec = (sec.get("symbols") or {}).get(symbol.upper())
        return rec, f"Binance exchangeInfo fetched {sec.get('fetched_at', '?')}"

    def knows(self, symbol: str, market: ins.Market) -> bool:
        """True when the spec needs no data: built-in, instruments.toml or cached metadata."""
        sym = symbol.upper()
        return (market, sym) in ins.SPECS or (market, sym) in self.overrides or self.record(sym, market)[0] is not None

    def needs_data(self, symbol: str, market: ins.Market) -> bool:
        """True when precisions must be inferred from the data (nothing fixes them)."""
        sym = symbol.upper()
        ov = self.overrides.get((market, sym), {})
        if (market, sym) in ins.SPECS or {"price_precision", "size_precision"} <= ov.keys():
            return False
        return stored_precision(self.root, str(ins.instrument_id(sym, market))) is None

    def spec(self, symbol: str, market: ins.Market, *, data_precision: tuple[int, int] | None = None,
             mark_decimals: int | None = None, base_quote: tuple[str, str] | None = None,
             where: str = "") -> ins.InstrumentSpec:
        """The spec to import ``symbol`` with; adds a note to the report for anything not built in.

        Raises :class:`DataImportError` (``where`` = the source) when nothing gives a precision or
        the sources contradict each other."""
        sym = symbol.upper()
        iid = str(ins.instrument_id(sym, market))
        rec, label = self.record(sym, market)
        stored = stored_precision(self.root, iid)
        try:
            spec = ins.resolve_spec(
                sym, market, override=self.overrides.get((market, sym)), exchange=rec, exchange_source=label,
                data_precision=data_precision, stored_precision=stored, mark_decimals=mark_decimals,
                base_quote=base_quote, brackets_file=self.instruments_file,
            )
        except ValueError as e:
            raise DataImportError(where or str(self.root), str(e)) from e
        if spec.source != ins.BUILTIN_SOURCE:
            kept = " (kept from the instrument already in the catalog)" if stored is not None and \
                "price_precision" not in self.overrides.get((market, sym), {}) else ""
            self._note(f"{iid}: price precision {spec.price_precision}, size precision {spec.size_precision}{kept}, "
                       f"tick {spec.tick_size}, step {spec.step_size}, min notional {spec.min_notional or 'unknown'}"
                       + (f", max leverage {spec.max_leverage}" if market == "um" else "") + f" - {spec.source}")
        return spec
