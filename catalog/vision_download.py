"""Bulk download of Binance Vision archives over HTTP, verified, cached, then imported.

``nautilus-app download-binance-vision --market um --symbols BTCUSDT --interval 1m
--start 2023-07-01 --kinds bars funding mark``

Steps
-----
1. **Plan.** For every (symbol, kind) and calendar month of ``[start, end]``: the monthly archive
   for months before the current one (preferred); daily archives for the days of the current
   month, and for any earlier month whose monthly archive is absent (HTTP 404). ``funding``
   (Binance's ``fundingRate`` folder) exists only as monthly archives.
2. **Download in parallel** (``workers`` threads, stdlib ``urllib``). For each archive the
   ``.CHECKSUM`` sidecar is fetched first (404 = the archive does not exist), then the zip; the
   zip's sha256 must equal the sidecar's. A mismatch (or a zip without sidecar, unless
   ``verify=False``) raises :class:`ChecksumError` naming every bad file **before anything is
   imported**; bad files are never written to the cache. HTTP 429/5xx and dropped connections are
   retried with backoff (``Retry-After`` honoured), 4xx other than 404/429 are errors.
3. **Cache** (resumable): verified zips and their sidecars are stored under ``cache_dir`` (default
   ``<catalog>/.downloads/binance-vision``) in the Binance Vision layout, written to a temp name
   and renamed. A rerun re-verifies cached files locally and downloads only what is missing.
4. **Import** the cached files with :func:`catalog.binance_vision.import_binance_vision` (the
   same parser, validation, instrument definitions and writers as the local importer; monthly
   files win over daily ones; rows already in the catalog are skipped), so a rerun is idempotent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from catalog.binance_vision import KINDS, _market_prefix, import_binance_vision
from catalog.errors import DataImportError
from catalog.kinds import VISION_FOLDERS, canonical_kinds, unknown_kinds
from catalog.store import ensure_catalog_root
from catalog.writer import ImportReport
from core.paths import binance_vision_url
from core.retry import RetriesExhausted, backoff, call_with_retry


class ChecksumError(DataImportError):
    """One or more archives did not match their ``.CHECKSUM`` (``bad`` lists ``(url, problem)``)."""

    def __init__(self, bad: list[tuple[str, str]]) -> None:
        self.bad = bad
        first_url, first_problem = bad[0]
        more = f" (and {len(bad) - 1} more: {', '.join(u for u, _ in bad[1:])})" if len(bad) > 1 else ""
        super().__init__(first_url, first_problem + more + "; nothing was imported")


@dataclass
class VisionDownloadReport:
    """What a download did: archive relative paths ``downloaded`` (fetched now), ``cached``
    (already in the cache, re-verified), ``absent`` (HTTP 404, e.g. a month not yet published),
    ``bytes_downloaded``, ``seconds`` (download phase), and the :class:`ImportReport` of the import."""

    downloaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    seconds: float = 0.0
    imported: ImportReport | None = None

    def summary(self) -> str:
        """Human-readable summary for the CLI."""
        head = (f"binance vision: {len(self.downloaded)} archives downloaded ({self.bytes_downloaded / 1e6:.1f} MB), "
                f"{len(self.cached)} from cache, {len(self.absent)} absent, in {self.seconds:.1f} s")
        return head + ("\n" + self.imported.summary() if self.imported else "")

    __str__ = summary


# --------------------------------------------------------------------------- HTTP


class _Http:
    def __init__(self, base: str, max_retries: int, backoff_s: float, timeout_s: float) -> None:
        self.base = base.rstrip("/")
        self.max_retries, self.backoff_s, self.timeout_s = max_retries, backoff_s, timeout_s

    def get(self, rel: str) -> bytes | None:
        """Bytes of ``rel`` or None on 404; retries 429/5xx/network errors; raises DataImportError."""
        url = f"{self.base}/{rel}"

        def fetch() -> bytes | None:
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as r:
                    return r.read()
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return None
                raise

        def transient(e: BaseException) -> bool:  # 429, 5xx and network errors
            return not isinstance(e, urllib.error.HTTPError) or e.code == 429 or e.code >= 500

        def wait(attempt: int, e: BaseException) -> float:  # Retry-After if the server sent one, else backoff
            ra = e.headers.get("Retry-After") if isinstance(e, urllib.error.HTTPError) and e.headers else None
            try:
                return float(ra) if ra else backoff(attempt, self.backoff_s)
            except ValueError:
                return backoff(attempt, self.backoff_s)

        try:
            return call_with_retry(fetch, retries=self.max_retries, catch=(OSError,), retry_if=transient, wait=wait)
        except RetriesExhausted as e:
            raise DataImportError(url, f"download failed after {e.attempts} attempts: {e.last}") from e.last
        except urllib.error.HTTPError as e:
            raise DataImportError(url, f"HTTP {e.code} {e.reason}") from e


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _expected(sidecar: bytes) -> str:
    parts = sidecar.decode("ascii", "replace").split()
    return parts[0].lower() if parts else ""


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- planning


def _month_end(y: int, m: int) -> dt.date:
    return dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)


def plan_archives(kind: str, market: str, symbol: str, interval: str, start: dt.date, end: dt.date,
                  today: dt.date) -> list[tuple[str, list[str]]]:
    """``[(monthly_rel, daily_fallback_rels)]`` for ``kind``/``symbol``: a monthly candidate for
    every month before ``today``'s month (its daily files of the requested days as fallback), and
    for the current month an empty monthly path ``""`` with the daily files up to yesterday. ``kind``: a
    :mod:`catalog.kinds` word (``bars``) or its archive folder (``klines``)."""
    kind = VISION_FOLDERS.get(kind, kind)
    pre = _market_prefix(market)
    if kind == "fundingRate":
        mdir, ddir, stem = f"{pre}/monthly/fundingRate/{symbol}", None, f"{symbol}-fundingRate-"
    elif kind == "aggTrades":
        mdir, ddir, stem = f"{pre}/monthly/aggTrades/{symbol}", f"{pre}/daily/aggTrades/{symbol}", f"{symbol}-aggTrades-"
    else:
        mdir = f"{pre}/monthly/{kind}/{symbol}/{interval}"
        ddir = f"{pre}/daily/{kind}/{symbol}/{interval}"
        stem = f"{symbol}-{interval}-"
    last_day = min(end, today - dt.timedelta(days=1))
    out = []
    y, m = start.year, start.month
    while (y, m) <= (last_day.year, last_day.month):
        days = []
        d = max(dt.date(y, m, 1), start)
        while ddir is not None and d <= min(last_day, _month_end(y, m)):
            days.append(f"{ddir}/{stem}{d.isoformat()}.zip")
            d += dt.timedelta(days=1)
        current = (y, m) == (today.year, today.month)
        out.append(("" if current else f"{mdir}/{stem}{y:04d}-{m:02d}.zip", days))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# --------------------------------------------------------------------------- public API


def download_binance_vision(
    catalog_path: str | Path | None,
    *,
    base_url: str | None = None,
    market: str = "spot",
    symbols: Sequence[str] = ("BTCUSDT",),
    interval: str = "1m",
    start: dt.date | str,
    end: dt.date | str | None = None,
    kinds: Sequence[str] = ("bars",),
    mark_interval: str | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 4,
    verify: bool = True,
    progress: bool = True,
    today: dt.date | None = None,
    max_retries: int = 4,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    store: str = "nautilus",
    instruments_file: str | Path | None = None,
    metadata: str = "cache",
) -> VisionDownloadReport:
    """Download Binance Vision archives over HTTP(S), verify them, cache them and import them.

    ``base_url``: default ``$BINANCE_VISION_URL`` / https://data.binance.vision (must be http(s)
    here; for a local mirror use :func:`catalog.binance_vision.import_binance_vision`). ``start``/
    ``end``: inclusive UTC days (``end`` default yesterday). ``kinds`` ⊆ {``bars``,
    ``funding``, ``mark``, ``trades``} (:mod:`catalog.kinds`; the old ``klines / fundingRate /
    markPriceKlines / aggTrades`` are accepted with a deprecation warning). ``today``: the clock (default: UTC today).
    Any symbol: instruments as for :func:`catalog.binance_vision.import_binance_vision`
    (``instruments_file``, ``metadata``; precisions inferred from the archives when nothing else
    gives them). ``store``: where klines are imported, ``"nautilus"`` or ``"compact"`` (see
    :func:`catalog.binance_vision.import_binance_vision`).

    Raises :class:`ChecksumError` (names every archive whose sha256 does not match its
    ``.CHECKSUM``; nothing imported), :class:`catalog.errors.DataImportError` for download or parse
    failures, ``ValueError`` for bad arguments.
    """
    t0 = time.perf_counter()
    base = base_url or binance_vision_url()
    if not str(base).startswith(("http://", "https://")):
        raise ValueError(f"base_url {base!r} is not http(s); use import-binance-vision for a local folder")
    kinds = canonical_kinds(kinds)
    bad_kinds = unknown_kinds(kinds, KINDS)
    if bad_kinds:
        raise ValueError(f"unknown kinds {bad_kinds}; expected a subset of {KINDS}")
    if market != "um" and set(kinds) & {"funding", "mark"}:
        raise ValueError("funding and mark (prices) exist only for market='um'")
    bad_syms = [s for s in symbols if not re.fullmatch(r"[A-Za-z0-9]+", s)] or ([] if symbols else ["(none)"])
    if bad_syms:
        raise ValueError(f"symbols must be Binance symbols like SOLUSDT, got {bad_syms}")
    today = today or dt.datetime.now(dt.UTC).date()
    d0 = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start))
    d1 = (end if isinstance(end, dt.date) else dt.date.fromisoformat(str(end))) if end else today - dt.timedelta(days=1)
    if d1 < d0:
        raise ValueError(f"end {d1} before start {d0}")
    root = ensure_catalog_root(catalog_path)
    cache = Path(cache_dir) if cache_dir else root / ".downloads" / "binance-vision"
    http = _Http(str(base), max_retries, backoff_s, timeout_s)
    rep = VisionDownloadReport()

    plans: list[tuple[str, list[str]]] = []
    for sym in (s.upper() for s in symbols):
        for kind in kinds:
            iv = (mark_interval or interval) if kind == "mark" else interval
            plans += plan_archives(kind, market, sym, iv, d0, d1, today)

    bad: list[tuple[str, str]] = []

    def fetch(rel: str) -> tuple[str, str, int]:
        """-> (rel, status in downloaded|cached|absent|bad:<problem>, bytes)."""
        zpath, cpath = cache / rel, cache / (rel + ".CHECKSUM")
        if zpath.is_file() and cpath.is_file():
            if _sha256(zpath.read_bytes()) == _expected(cpath.read_bytes()):
                return rel, "cached", 0
            zpath.unlink()  # a corrupt cached file: fetch again
        side = http.get(rel + ".CHECKSUM")
        data = http.get(rel) if side is not None or not verify else None
        if side is None:
            if data is None:
                return rel, "absent", 0
            if verify:
                return rel, "bad:no .CHECKSUM sidecar published for this archive", 0
        if data is None:
            return rel, "bad:.CHECKSUM exists but the archive is missing (HTTP 404)", 0
        if side is not None:
            exp, got = _expected(side), _sha256(data)
            if exp != got:
                name = rel.rsplit("/", 1)[-1]
                return rel, f"bad:sha256 {got} does not match {name}.CHECKSUM ({exp})", len(data)
            _write_atomic(cpath, side)
        _write_atomic(zpath, data)
        return rel, "downloaded", len(data)

    def run(rels: list[str], desc: str) -> dict[str, str]:
        status: dict[str, str] = {}
        if not rels:
            return status
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(rels), desc=desc, unit="file", leave=False, dynamic_ncols=True)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futs = [pool.submit(fetch, r) for r in rels]
            for f in as_completed(futs):
                rel, st, n = f.result()
                status[rel] = st
                rep.bytes_downloaded += n
                if st.startswith("bad:"):
                    bad.append((f"{http.base}/{rel}", st[4:]))
                elif st == "downloaded":
                    rep.downloaded.append(rel)
                elif st == "cached":
                    rep.cached.append(rel)
                else:
                    rep.absent.append(rel)
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        return status

    monthly = [m for m, _ in plans if m]
    st = run(monthly, "monthly archives")
    daily = [d for m, days in plans if not m or st.get(m) == "absent" for d in days]
    run(daily, "daily archives")
    rep.seconds = time.perf_counter() - t0
    if bad:
        raise ChecksumError(sorted(bad))
    rep.imported = import_binance_vision(
        root, base_url=cache, market=market, symbols=tuple(symbols), interval=interval, start=d0, end=d1,
        kinds=kinds, mark_interval=mark_interval, store=store, instruments_file=instruments_file,
        metadata=metadata, require_files=False,
    )
    return rep
