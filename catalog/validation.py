"""Data validation: what is checked, on which write, and the policy for each problem.

Checks (``Problem.check``) and default policy
---------------------------------------------

=====================  =========================================  =========================  ==========================
check                  what                                       default                    ``repair`` (only if asked)
=====================  =========================================  =========================  ==========================
``ohlc``               low <= open, close <= high; prices > 0;    **refuse** (error)         high/low widened to
                       volume >= 0                                                           max/min(o, h, l, c); rows
                                                                                             with price <= 0 or volume
                                                                                             < 0 dropped
``duplicates``         two rows with the same timestamp           **refuse** (error)         keep the first row of each
                                                                                             timestamp
``order``              timestamps not increasing                  **refuse** (error)         stable sort by timestamp
``gaps``               spacing > one interval                     report (warning); a known  nothing to repair: a gap is
                                                                  exchange halt is *info*    data
``funding_missing``    a perpetual has bars but no funding        error in ``validate``      none (download funding)
                       settlement where one is due
``funding_interval``   the funding interval changes (8 h -> 4 h)  report (info)              none
``jumps``              close -> next open beyond ``max_jump``     **refuse** on import;      none (re-import the right
                       (default 50 %; bars <= 1 day apart)        error in ``validate``      file)
=====================  =========================================  =========================  ==========================

Where it runs: the importers (:mod:`catalog.binance_vision`, :mod:`catalog.freqtrade`) and the
ccxt downloader validate every table before writing (precision, OHLC, order: refuse) and the
downloader reports gaps and funding-interval changes in its :class:`~catalog.writer.ImportReport`
warnings. :func:`validate_bar_table` is the policy engine for callers that want ``repair``;
:func:`validate_catalog` (CLI ``nautilus-app validate``) checks everything stored, including
funding coverage of perpetuals.

Known halts: :data:`KNOWN_HALTS` lists the Binance spot maintenance stops present in the shared
data (``../shared/data/README.md``); a gap inside one is reported with severity ``info`` and
``known_halt=True``, never as an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from catalog.common import DEC

MIN_NS = 60_000_000_000
HOUR_NS = 60 * MIN_NS
CHECKS = ("ohlc", "duplicates", "order", "gaps", "jumps", "funding_missing", "funding_interval")
REPAIRABLE = ("ohlc", "duplicates", "order")


def _t(s: str) -> int:
    return int(pd.Timestamp(s, tz="UTC").value)


@dataclass(frozen=True)
class Halt:
    """A known exchange stop: ``last_before``/``first_after`` are the OPEN times (UTC ns) of the
    last 1m candle before and the first after, as in ``shared/data/README.md``."""

    market: str  # "spot" or "um"
    symbols: tuple[str, ...]
    last_before: int
    first_after: int
    note: str


#: Binance spot maintenance stops in the shared data (README "Gaps longer than 2 bars").
KNOWN_HALTS: tuple[Halt, ...] = (
    Halt("spot", ("BTCUSDT",), _t("2019-11-13 01:59"), _t("2019-11-13 04:20"), "Binance spot maintenance"),
    Halt("spot", ("BTCUSDT",), _t("2019-11-13 05:29"), _t("2019-11-13 05:33"), "Binance spot maintenance"),
    Halt("spot", ("BTCUSDT",), _t("2019-11-25 01:59"), _t("2019-11-25 04:00"), "Binance spot maintenance"),
    Halt("spot", ("BTCUSDT", "ETHUSDT"), _t("2021-04-20 01:59"), _t("2021-04-20 04:30"), "Binance spot maintenance"),
    Halt("spot", ("BTCUSDT", "ETHUSDT"), _t("2021-04-25 04:00"), _t("2021-04-25 08:45"), "Binance spot maintenance"),
    Halt("spot", ("BTCUSDT",), _t("2021-09-29 06:59"), _t("2021-09-29 09:00"), "Binance spot maintenance"),
    Halt("spot", ("BTCUSDT", "ETHUSDT"), _t("2023-03-24 12:39"), _t("2023-03-24 14:00"), "Binance spot trading halt"),
)


@dataclass
class Problem:
    """One finding. ``severity``: ``error`` (refused unless repaired), ``warning`` or ``info``;
    ``rows``: affected rows (or missing rows for gaps); ``first_row``: 0-based index of the first
    affected input row (None if not tied to a row); ``repaired``: the repair was applied."""

    check: str
    severity: str
    message: str
    rows: int = 0
    first_row: int | None = None
    repaired: bool = False
    known_halt: bool = False


@dataclass
class ValidationResult:
    """Problems found by one validation call."""

    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error" and not p.repaired]

    def raise_if_errors(self, where: str) -> None:
        """Raise :class:`ValidationError` listing every unrepaired error."""
        if self.errors:
            raise ValidationError(where, self.errors)

    def frame(self) -> pd.DataFrame:
        """Problems as a DataFrame (columns = :class:`Problem` fields)."""
        cols = ["check", "severity", "message", "rows", "first_row", "repaired", "known_halt"]
        return pd.DataFrame([p.__dict__ for p in self.problems], columns=cols)


class ValidationError(ValueError):
    """Data refused by validation; ``problems`` lists the errors, the message names the source."""

    def __init__(self, where: str, problems: list[Problem]) -> None:
        self.where = where
        self.problems = problems
        super().__init__(f"{where}: " + "; ".join(f"[{p.check}] {p.message}" for p in problems)
                         + " (pass repair=... to fix duplicates/order/OHLC, see catalog/validation.py)")


# --------------------------------------------------------------------------- gaps


def _halt_for(open_missing_first: int, open_missing_last: int, interval_ns: int, market: str,
              symbol: str | None) -> Halt | None:
    for h in KNOWN_HALTS:
        if h.market != market or (symbol is not None and symbol not in h.symbols):
            continue
        lo = ((h.last_before + MIN_NS) // interval_ns) * interval_ns
        hi = h.first_after - MIN_NS  # last missing minute open
        if open_missing_first >= lo and open_missing_last + interval_ns - MIN_NS <= hi:
            return h
    return None


def find_gaps(ts_close_ns: np.ndarray, interval_ns: int, *, market: str = "spot",
              symbol: str | None = None) -> list[Problem]:
    """Gaps in sorted bar close times: one :class:`Problem` (check ``gaps``) per spacing longer
    than ``interval_ns``; severity ``info`` with ``known_halt=True`` when the missing candles lie
    inside a :data:`KNOWN_HALTS` stop of ``market``/``symbol``, else ``warning``."""
    ts = np.asarray(ts_close_ns, dtype=np.int64)
    if ts.size < 2:
        return []
    d = np.diff(ts)
    out = []
    for i in np.flatnonzero(d > interval_ns).tolist():
        before, after = int(ts[i]), int(ts[i + 1])
        missing = (after - before) // interval_ns - 1
        # open times of the missing candles: before(close) .. after(close) - 2 intervals
        first_missing_open, last_missing_open = before, after - 2 * interval_ns
        h = _halt_for(first_missing_open, last_missing_open, interval_ns, market, symbol)
        b = pd.Timestamp(before, tz="UTC").strftime("%Y-%m-%d %H:%M")
        a = pd.Timestamp(after, tz="UTC").strftime("%Y-%m-%d %H:%M")
        msg = f"gap of {missing} bars between closes {b} and {a} UTC"
        if h is not None:
            msg += f" (known: {h.note})"
        out.append(Problem("gaps", "info" if h else "warning", msg, rows=int(missing), first_row=i + 1,
                           known_halt=h is not None))
    return out


def report_gaps(report, identifier: str, ts_close_ns: np.ndarray, interval_ns: int, *, market: str = "spot",
                max_listed: int = 20) -> None:
    """Append the gaps of a table about to be written to ``report.warnings`` (the ccxt and Vision
    downloaders call this on every write). At most ``max_listed`` are listed, then a count."""
    symbol = identifier.split(".")[0].split("-")[0]
    gaps = find_gaps(ts_close_ns, interval_ns, market=market, symbol=symbol)
    for g in gaps[:max_listed]:
        report.warnings.append(f"{identifier}: {g.message}")
    if len(gaps) > max_listed:
        report.warnings.append(f"{identifier}: ... and {len(gaps) - max_listed} more gaps")


# --------------------------------------------------------------------------- funding


def funding_interval_changes(ts_ns: np.ndarray, intervals_min: np.ndarray | None = None) -> list[Problem]:
    """Changes of the funding interval (``info``). ``intervals_min``: the stored ``interval``
    column (minutes); without it the spacing between settlements is used (a missing settlement
    then shows as a change and back)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    if intervals_min is None:
        if ts.size < 3:
            return []
        iv = np.diff(ts) // MIN_NS
        at = ts[1:]
    else:
        iv = np.asarray(intervals_min, dtype=np.int64)
        at = ts
    out = []
    for i in np.flatnonzero(iv[1:] != iv[:-1]).tolist():
        when = pd.Timestamp(int(at[i + 1]), tz="UTC").strftime("%Y-%m-%d %H:%M")
        out.append(Problem("funding_interval", "info",
                           f"funding interval changes from {int(iv[i])} to {int(iv[i + 1])} min at {when} UTC",
                           first_row=i + 1))
    return out


def report_funding_intervals(report, identifier: str, ts_ns: np.ndarray) -> None:
    """Append funding interval changes of rows about to be written to ``report.warnings``."""
    for p in funding_interval_changes(ts_ns):
        report.warnings.append(f"{identifier}: {p.message}")


def missing_funding(bar_close_ns: np.ndarray, funding_ns: np.ndarray, funding_interval_min: np.ndarray | None = None,
                    default_interval_min: int = 480) -> list[Problem]:
    """Settlements a perpetual needs but the catalog lacks (``error``).

    Due settlements: every multiple of the interval (the stored interval of the nearest earlier
    funding row, else ``default_interval_min``) strictly inside the bar range, within a stretch
    covered by bars (a settlement in a gap between data windows is not needed). Consecutive
    missing settlements are reported as one problem.
    """
    bars = np.asarray(bar_close_ns, dtype=np.int64)
    if bars.size == 0:
        return []
    f = np.asarray(funding_ns, dtype=np.int64)
    fiv = (np.asarray(funding_interval_min, dtype=np.int64) if funding_interval_min is not None
           else np.full(f.size, default_interval_min))
    # contiguous bar stretches (a new stretch after a gap > 1 h)
    brk = np.flatnonzero(np.diff(bars) > HOUR_NS)
    starts = np.r_[bars[0], bars[brk + 1]]
    ends = np.r_[bars[brk], bars[-1]]
    due: list[int] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        t = (s // HOUR_NS + 1) * HOUR_NS
        while t < e:
            k = int(np.searchsorted(f, t, "right")) - 1
            iv = int(fiv[k]) if k >= 0 else default_interval_min
            if (t // MIN_NS) % iv == 0:
                due.append(t)
            t += HOUR_NS
    due_a = np.array(due, dtype=np.int64)
    miss = due_a[~np.isin(due_a, f)]
    if miss.size == 0:
        return []
    out = []
    grp = np.split(miss, np.flatnonzero(np.diff(miss) > 8 * HOUR_NS) + 1)
    for g in grp:
        a = pd.Timestamp(int(g[0]), tz="UTC").strftime("%Y-%m-%d %H:%M")
        b = pd.Timestamp(int(g[-1]), tz="UTC").strftime("%Y-%m-%d %H:%M")
        out.append(Problem("funding_missing", "error", f"{g.size} funding settlements missing {a} .. {b} UTC",
                           rows=int(g.size)))
    return out


# --------------------------------------------------------------------------- bars


def validate_bar_table(table: pa.Table, interval_ns: int, *, market: str = "spot", symbol: str | None = None,
                       repair: frozenset[str] | set[str] = frozenset(), ts_column: str = "ts") -> tuple[pa.Table, ValidationResult]:
    """Validate (and, for checks named in ``repair``, fix) a bar table.

    ``table``: columns ``ts_column`` (int64 ns close time, or timestamp[ns]), ``open``, ``high``,
    ``low``, ``close``, ``volume`` (decimal128 or numeric). ``repair`` ⊆ {``"ohlc"``,
    ``"duplicates"``, ``"order"``}. Returns ``(table, result)`` - the repaired table (unchanged
    when nothing was repaired) and every problem found (repaired ones flagged). Callers refuse
    with ``result.raise_if_errors(where)``. Raises ``ValueError`` for an unknown repair name.
    """
    unknown = set(repair) - set(REPAIRABLE)
    if unknown:
        raise ValueError(f"cannot repair {sorted(unknown)}; repairable: {REPAIRABLE}")
    res = ValidationResult()
    ts = table[ts_column]
    if pa.types.is_timestamp(ts.type):
        ts = pc.cast(ts, pa.int64())
    tsn = ts.to_numpy() if isinstance(ts, pa.ChunkedArray | pa.Array) else np.asarray(ts)
    tsn = np.asarray(tsn, dtype=np.int64)
    # order
    d = np.diff(tsn)
    back = np.flatnonzero(d < 0)
    if back.size:
        fix = "order" in repair
        res.problems.append(Problem("order", "error", f"{back.size} timestamps go backwards (first at row {int(back[0]) + 1})",
                                    rows=int(back.size), first_row=int(back[0]) + 1, repaired=fix))
        if fix:
            idx = np.argsort(tsn, kind="stable")
            table = table.take(pa.array(idx))
            tsn = tsn[idx]
    # duplicates
    dupmask = pd.Series(tsn).duplicated(keep="first").to_numpy()
    if dupmask.any():
        fix = "duplicates" in repair
        first = int(np.flatnonzero(dupmask)[0])
        res.problems.append(Problem("duplicates", "error", f"{int(dupmask.sum())} rows repeat an earlier timestamp "
                                    f"(first: row {first}, {pd.Timestamp(int(tsn[first]), tz='UTC')})",
                                    rows=int(dupmask.sum()), first_row=first, repaired=fix))
        if fix:
            table = table.filter(pa.array(~dupmask))
            tsn = tsn[~dupmask]
    # ohlc
    cols = {k: table[k].combine_chunks() for k in ("open", "high", "low", "close", "volume")}
    o, h, lo, c, v = cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"]
    zero = pa.scalar(0, o.type) if pa.types.is_decimal(o.type) else 0
    vzero = pa.scalar(0, v.type) if pa.types.is_decimal(v.type) else 0
    nonpos = pc.less_equal(pc.min_element_wise(pc.min_element_wise(o, h), pc.min_element_wise(lo, c)), zero)
    negvol = pc.less(v, vzero)
    hl = pc.or_(pc.less(h, pc.max_element_wise(o, c)), pc.greater(lo, pc.min_element_wise(o, c)))
    hl = pc.or_(hl, pc.less(h, lo))
    n_bad_vals = int(pc.sum(pc.or_(nonpos, negvol)).as_py() or 0)
    n_hl = int(pc.sum(hl).as_py() or 0)
    if n_bad_vals or n_hl:
        fix = "ohlc" in repair
        i = int(np.flatnonzero(pc.or_(pc.or_(nonpos, negvol), hl).to_numpy(zero_copy_only=False))[0])
        res.problems.append(Problem(
            "ohlc", "error",
            f"{n_hl} rows with high/low not enclosing open/close, {n_bad_vals} with price <= 0 or volume < 0 "
            f"(first: row {i}, o={o[i].as_py()} h={h[i].as_py()} l={lo[i].as_py()} c={c[i].as_py()} v={v[i].as_py()})",
            rows=n_hl + n_bad_vals, first_row=i, repaired=fix))
        if fix:
            hi_new = pc.max_element_wise(pc.max_element_wise(o, h), pc.max_element_wise(lo, c))
            lo_new = pc.min_element_wise(pc.min_element_wise(o, h), pc.min_element_wise(lo, c))
            table = table.set_column(table.schema.get_field_index("high"), "high", hi_new)
            table = table.set_column(table.schema.get_field_index("low"), "low", lo_new)
            keep = pc.invert(pc.or_(nonpos, negvol))
            table = table.filter(keep)
            tsn = tsn[keep.to_numpy(zero_copy_only=False)]
    res.problems += find_gaps(tsn, interval_ns, market=market, symbol=symbol)
    return table, res


# --------------------------------------------------------------------------- catalog


def validate_catalog(root: Path, *, default_funding_interval_min: int = 480,
                     max_jump: float | str | None = None) -> pd.DataFrame:
    """Check everything stored in the catalog at ``root``.

    Returns a DataFrame with columns ``kind``, ``identifier`` plus the :class:`Problem` fields,
    one row per finding: per bar type ``ohlc``/``duplicates``/``order``/``gaps`` (gaps inside known
    halts are ``info``), ``jumps`` (error: close -> next open beyond ``max_jump``, see
    :func:`max_jump_setting`; a wrong symbol's data stored under another's name); per perpetual with bars ``funding_missing`` (error) against its funding
    rows; per funding series ``funding_interval`` changes and ``gaps``. Empty frame = clean.
    """
    from catalog.inventory import _entries, bar_interval_ns

    root = Path(root)
    rows: list[dict] = []
    entries = _entries(root)
    funding = {ident: files for k, ident, _, files in entries if k == "funding_rates"}
    for kind, ident, iid, files in entries:
        if kind == "bars":
            iv = bar_interval_ns(ident)
            t = _read_bars(files)
            market = "um" if iid.endswith("BINANCE_USDM") else "spot"
            _, res = validate_bar_table(t, iv or MIN_NS, market=market, symbol=iid.split(".")[0].split("-")[0])
            rows += [{"kind": kind, "identifier": ident} | p.__dict__ for p in res.problems]
            if not any(p.check in ("order", "duplicates") for p in res.problems):
                rows += [{"kind": kind, "identifier": ident} | p.__dict__
                         for p in stored_jumps(files, t, iv or MIN_NS, max_jump)]
            if "-PERP." in iid:
                f_ts, f_iv = _read_funding(funding.get(iid, []))
                for p in missing_funding(t["ts"].to_numpy(), f_ts, f_iv, default_funding_interval_min):
                    rows.append({"kind": kind, "identifier": ident} | p.__dict__)
        elif kind == "funding_rates":
            f_ts, f_iv = _read_funding(files)
            for p in funding_interval_changes(f_ts, f_iv):
                rows.append({"kind": kind, "identifier": ident} | p.__dict__)
            if f_iv is not None and f_ts.size > 1:
                late = np.flatnonzero(np.diff(f_ts) > f_iv[1:].astype(np.int64) * MIN_NS)
                for i in late.tolist():
                    a = pd.Timestamp(int(f_ts[i]), tz="UTC").strftime("%Y-%m-%d %H:%M")
                    b = pd.Timestamp(int(f_ts[i + 1]), tz="UTC").strftime("%Y-%m-%d %H:%M")
                    rows.append({"kind": kind, "identifier": ident, "check": "gaps", "severity": "warning",
                                 "message": f"no funding between {a} and {b} UTC", "rows": 0, "first_row": i + 1,
                                 "repaired": False, "known_halt": False})
    cols = ["kind", "identifier", "check", "severity", "message", "rows", "first_row", "repaired", "known_halt"]
    return pd.DataFrame(rows, columns=cols)


def _read_bars(files: list[Path]) -> pa.Table:
    import pyarrow.parquet as pq

    names = pq.read_schema(files[0]).names
    if "ts_init" not in names:  # compact store
        from catalog.compact import read_table

        return read_table(files)
    parts = [pq.read_table(f, columns=["open", "high", "low", "close", "volume", "ts_init"]) for f in files]
    t = pa.concat_tables(parts)
    ts = pc.cast(t["ts_init"], pa.int64())
    t = t.drop_columns(["ts_init"]).append_column("ts", ts)
    idx = pc.sort_indices(t["ts"]) if len(files) > 1 else None
    return t.take(idx) if idx is not None else t


def _read_funding(files: list[Path]) -> tuple[np.ndarray, np.ndarray | None]:
    import pyarrow.parquet as pq

    if not files:
        return np.array([], np.int64), None
    t = pa.concat_tables([pq.read_table(f, columns=["ts_init", "interval"]) for f in files])
    ts = pc.cast(t["ts_init"], pa.int64()).to_numpy()
    iv = t["interval"].to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    return ts[order], iv[order]


def _day(ns: int) -> dt.date:
    return pd.Timestamp(ns, tz="UTC").date()


__all__ = [
    "CHECKS", "DEC", "DEFAULT_MAX_JUMP", "KNOWN_HALTS", "Halt", "NewBars", "Problem", "ValidationError",
    "ValidationResult", "check_import_jumps", "find_gaps", "find_jumps", "max_jump_setting", "stored_jumps",
    "funding_interval_changes", "missing_funding", "report_gaps", "validate_bar_table", "validate_catalog",
]


# --------------------------------------------------------------------------- price jumps (content check)

#: Default largest price change allowed between neighbouring bars of one instrument, as a fraction
#: of the lower price: 0.5 refuses a rise of more than +50 % or a fall of more than -33 % from one
#: bar's close to the next bar's open. A month of ETHUSDT stored under a BTCUSDT name jumps ~-94 %
#: (x0.06), far beyond; the largest close-to-open move in the shared real data is a few percent.
DEFAULT_MAX_JUMP = 0.5


def max_jump_setting(value: float | str | None = None) -> float:
    """The jump limit to use: ``value`` if given, else ``$NAUTILUS_MAX_JUMP``, else
    :data:`DEFAULT_MAX_JUMP`. ``0`` (or ``off``) disables the check (returns ``inf``). Raises
    ``ValueError`` for a negative, NaN or non-numeric value."""
    import math
    import os

    raw = value if value is not None else os.environ.get("NAUTILUS_MAX_JUMP")
    if raw is None or raw == "":
        return DEFAULT_MAX_JUMP
    if isinstance(raw, str) and raw.strip().lower() in ("off", "none"):
        return math.inf
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"max jump {raw!r}: expected a fraction like 0.5 (= 50 %), or 0/off to disable") from None
    if math.isnan(v) or v < 0:
        raise ValueError(f"max jump {raw!r}: expected a fraction >= 0 like 0.5 (= 50 %), or 0/off to disable")
    return math.inf if v == 0 else v


def jump_gap_ns(interval_ns: int) -> int:
    """Bars further apart than this are not neighbours for the jump check (1 day, or 2 intervals)."""
    return max(86_400_000_000_000, 2 * int(interval_ns or MIN_NS))


def find_jumps(ts: np.ndarray, open_: np.ndarray, close: np.ndarray, max_jump: float,
               max_gap_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``i`` where the close of bar ``i`` -> open of bar ``i + 1`` (sorted by ``ts``, at
    most ``max_gap_ns`` apart) changes by more than ``max_jump`` (``max/min - 1``), and the
    signed change ``open/close - 1`` there."""
    ts = np.asarray(ts, dtype=np.int64)
    if ts.size < 2 or not np.isfinite(max_jump):
        return np.array([], np.int64), np.array([], np.float64)
    a = np.asarray(close, dtype=np.float64)[:-1]
    b = np.asarray(open_, dtype=np.float64)[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(a, b) / np.minimum(a, b) - 1.0
    idx = np.flatnonzero((ratio > max_jump) & (np.diff(ts) <= max_gap_ns))
    return idx, b[idx] / a[idx] - 1.0


def _when(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").strftime("%Y-%m-%d %H:%M")


def stored_bar_prices(root: Path, bar_type: str, store: str, lo_ns: int, hi_ns: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ts, open, close)`` (float prices) of the bars of ``bar_type`` stored in ``store``
    (``"nautilus"`` or ``"compact"``) with ``lo_ns <= ts <= hi_ns``."""
    empty = (np.array([], np.int64), np.array([], np.float64), np.array([], np.float64))
    if store == "compact":
        from catalog.compact import compact_dir, read_arrays

        if not compact_dir(root, bar_type).is_dir():
            return empty
        arrs, pp, _ = read_arrays(root, bar_type, lo_ns, hi_ns + 1)
        scale = 10.0 ** -pp
        return arrs["ts"], arrs["open"] * scale, arrs["close"] * scale
    from catalog.reader import data_folder

    files = sorted(str(p) for p in data_folder(Path(root), "bars", bar_type).glob("*.parquet"))
    if not files:
        return empty
    import pyarrow.dataset as ds

    t = ds.dataset(files, format="parquet").to_table(
        columns=["ts_init", "open", "close"],
        filter=(ds.field("ts_init").cast(pa.int64()) >= lo_ns) & (ds.field("ts_init").cast(pa.int64()) <= hi_ns))
    ts = pc.cast(t["ts_init"], pa.int64()).to_numpy()
    o = pc.cast(t["open"], pa.float64()).to_numpy()
    c = pc.cast(t["close"], pa.float64()).to_numpy()
    order = np.argsort(ts, kind="stable")
    return ts[order], o[order], c[order]


class NewBars:
    """Rows about to be imported for one bar type, with where each came from: ``add(where, ts,
    open, close, lines)`` per source file (``lines``: 1-based row numbers, or the first row's
    number when rows are consecutive)."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray | int]] = []

    def add(self, where: str, ts: np.ndarray, open_: np.ndarray, close: np.ndarray, lines: np.ndarray | int = 1) -> None:
        ts = np.asarray(ts, dtype=np.int64)
        if ts.size:
            self.parts.append((where, ts, np.asarray(open_, np.float64), np.asarray(close, np.float64), lines))

    def locate(self, t: int) -> tuple[str, int | None]:
        """(file, 1-based row) of the new row at ``t`` (the first file holding it)."""
        for where, ts, _, _, lines in self.parts:
            k = int(np.searchsorted(ts, t))
            if k < ts.size and ts[k] == t:
                return where, (int(lines[k]) if isinstance(lines, np.ndarray) else int(lines) + k)
        return "?", None


def check_import_jumps(root: Path, bar_type: str, store: str, new: NewBars, interval_ns: int,
                       max_jump: float | str | None = None) -> None:
    """Refuse an import whose prices jump more than ``max_jump`` (:func:`max_jump_setting`) between
    neighbouring bars: the stored bars next to the new rows and the new rows themselves (inside a
    file and across files). Raises :class:`catalog.errors.DataImportError` naming the file, row and
    the jump (e.g. a month of ETHUSDT packed under a BTCUSDT file name: about -94 %)."""
    from catalog.errors import DataImportError

    limit = max_jump_setting(max_jump)
    if not new.parts or not np.isfinite(limit):
        return
    gap = jump_gap_ns(interval_ns)
    ts = np.concatenate([p[1] for p in new.parts])
    o = np.concatenate([p[2] for p in new.parts])
    c = np.concatenate([p[3] for p in new.parts])
    s_ts, s_o, s_c = stored_bar_prices(Path(root), str(bar_type), store, int(ts.min()) - gap, int(ts.max()) + gap)
    all_ts = np.concatenate([s_ts, ts])
    is_new = np.concatenate([np.zeros(s_ts.size, bool), np.ones(ts.size, bool)])
    order = np.argsort(all_ts, kind="stable")  # stored first on equal times: they stay
    all_ts, is_new = all_ts[order], is_new[order]
    all_o, all_c = np.concatenate([s_o, o])[order], np.concatenate([s_c, c])[order]
    keep = np.ones(all_ts.size, bool)
    keep[1:] = all_ts[1:] != all_ts[:-1]
    all_ts, is_new, all_o, all_c = all_ts[keep], is_new[keep], all_o[keep], all_c[keep]
    idx, change = find_jumps(all_ts, all_o, all_c, limit, gap)
    touches = is_new[idx] | is_new[idx + 1]
    idx, change = idx[touches], change[touches]
    if not idx.size:
        return
    i, ch = int(idx[0]), float(change[0])

    (wa, ra), (wb, rb) = [new.locate(int(all_ts[j])) if is_new[j] else ("", None) for j in (i, i + 1)]
    if wb and (not wa or wa == wb):
        where, row = wb, rb
    elif wa and not wb:
        where, row = wa, ra
    else:
        where, row = f"{wa} / {wb}", rb

    def desc(w: str, r: int | None) -> str:
        if not w:
            return "stored"
        return ("this file" if w == where else w) + (f", row {r}" if r is not None else "")

    more = f"; {idx.size - 1} more jumps" if idx.size > 1 else ""
    raise DataImportError(where, (
        f"{bar_type}: price jumps {ch * 100:+.1f} % between neighbouring bars: close {all_c[i]:g} (bar closing "
        f"{_when(all_ts[i])} UTC, {desc(wa, ra)}) -> open {all_o[i + 1]:g} (bar closing {_when(all_ts[i + 1])} UTC, "
        f"{desc(wb, rb)}); the limit is {limit:.0%} (--max-jump / $NAUTILUS_MAX_JUMP){more}. Wrong symbol in the "
        "file or corrupt prices? Nothing imported"), row)


def stored_jumps(files: list[Path], table: pa.Table, interval_ns: int, max_jump: float | None = None) -> list[Problem]:
    """Price jumps inside stored bars (``table``: ``ts`` + decimal/float ``open``/``close``, sorted),
    as ``jumps`` errors naming the bars' times, the change and the files holding them."""
    limit = max_jump_setting(max_jump)
    if table.num_rows < 2 or not np.isfinite(limit):
        return []
    ts = np.asarray(table["ts"].to_numpy(), dtype=np.int64)
    o = pc.cast(table["open"], pa.float64()).to_numpy()
    c = pc.cast(table["close"], pa.float64()).to_numpy()
    idx, change = find_jumps(ts, o, c, limit, jump_gap_ns(interval_ns))
    out = []
    names = [(f, f.stem) for f in files]

    def file_of(t: int) -> str:
        from catalog.compact import _parse_name

        for f, stem in names:
            try:
                a, b = _parse_name(stem)
            except (ValueError, IndexError):
                continue
            if a <= t <= b:
                return f.name
        return "?"

    for i, ch in zip(idx.tolist()[:20], change.tolist()[:20], strict=True):
        fa, fb = file_of(int(ts[i])), file_of(int(ts[i + 1]))
        out.append(Problem("jumps", "error", (
            f"price jumps {ch * 100:+.1f} % from close {c[i]:g} at {_when(ts[i])} to open {o[i + 1]:g} at "
            f"{_when(ts[i + 1])} UTC (files {fa}" + ("" if fb == fa else f", {fb}") + f"; limit {limit:.0%})"),
            rows=1, first_row=i + 1))
    if idx.size > 20:
        out.append(Problem("jumps", "error", f"... and {idx.size - 20} more price jumps", rows=int(idx.size - 20)))
    return out
