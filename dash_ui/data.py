"""Read-only access to the results folders (``results/<run_id>/``) for the app and the JSON API.

Layout of a results folder: see :mod:`nautilus_app.results`. Folders whose name starts with a dot
are in-progress staging folders (``.<run_id>.partial``) or the job store (``.jobs``) and are never
listed. Everything is read lazily and cached by (folder, modification time), so the run list of a
results root with hundreds of runs re-reads only ``metrics.json``/``run.json`` of changed runs, and
the detail page of a 2.6M-bar run reads its ``equity.parquet`` once.

Columns that other parts of the platform may add later (per-trade ``slippage``,
``liquidation_fee``, a liquidation flag) are read when present and ignored otherwise.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from nautilus_app.results.reader import is_complete

#: Run ids are folder names; this is what the app accepts in URLs and API paths.
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,199}$")

#: Key metrics shown in the runs list (all from ``metrics.json``; docs/metrics.md defines them).
LIST_METRICS = ["total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
                "profit_factor", "exposure", "fees_paid_usdt", "funding_paid_usdt", "buy_and_hold_return",
                "final_equity"]

#: Cost lines of the cost breakdown: (label, candidate metrics.json keys, candidate trades.parquet
#: columns). The first key present wins; a trades column is summed when no metric key exists.
#: Sign convention as docs/metrics.md: positive = paid (a cost).
COST_LINES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("Fees", ("fees_paid_usdt",), ("fees",)),
    ("Funding", ("funding_paid_usdt",), ()),  # trades' `funding` is a cash flow (paid < 0)
    ("Slippage", ("slippage_paid_usdt", "slippage_usdt", "slippage_cost_usdt"), ("slippage", "slippage_usdt")),
    ("Liquidation fees", ("liquidation_fees_paid_usdt", "liquidation_fees_usdt", "liquidation_fee_usdt"),
     ("liquidation_fee", "liquidation_fees", "liquidation_fee_usdt")),
]
#: metrics.json keys holding a liquidation count (first present wins).
LIQUIDATION_COUNT_KEYS = ("liquidations", "liquidation_count", "liquidations_count")


class RunNotFound(KeyError):
    """No complete results folder with this run id (message names the id and the root)."""


def valid_run_id(run_id: str) -> bool:
    """True if ``run_id`` is a plausible folder name (no path separators, no leading dot)."""
    return bool(RUN_ID_RE.match(run_id or "")) and ".." not in run_id


def valid_run_key(key: str) -> bool:
    """True for a run id or a relative path of run-id-like parts (``research/<sweep>/<run_id>``: the
    research registry keeps sweep runs in sub-folders of the results root)."""
    parts = (key or "").split("/")
    return 0 < len(parts) <= 4 and all(valid_run_id(p) for p in parts)


def _read_json(path: Path) -> dict:
    """A results folder's JSON file, ``{}`` when missing (the one reader: :mod:`nautilus_app.results.reader`)."""
    from nautilus_app.results.reader import read_json

    return read_json(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@dataclass
class Run:
    """One results folder, loaded lazily.

    Attributes:
        run_id: Folder name.
        path: ``results/<run_id>``.
        metrics: ``metrics.json`` (keys in docs/metrics.md).
        info: ``run.json`` (timings, digest; ``synthetic: true`` for generated demo data).
        config: ``config.json`` (the validated ``BacktestConfig`` as a mapping).
    """

    run_id: str
    path: Path
    metrics: dict
    info: dict
    config: dict
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def config_text(self) -> str:
        """``config.toml`` as submitted (or the JSON config when no TOML was stored)."""
        p = self.path / "config.toml"
        if p.exists():
            return p.read_text()
        return json.dumps(self.config, indent=2)

    @property
    def synthetic(self) -> bool:
        """True for generated (synthetic) demo runs, labelled in ``run.json``."""
        return bool(self.info.get("synthetic"))

    def _parquet(self, name: str) -> pd.DataFrame:
        with self._lock:
            if name not in self._cache:
                from nautilus_app.results.reader import ResultsFolder

                self._cache[name] = ResultsFolder(self.path).table(name)  # empty when the file is missing
            return self._cache[name]

    def equity(self) -> pd.DataFrame:
        """``equity.parquet``: ``ts`` (UTC), ``equity``, ``benchmark_equity`` (USDT), ``drawdown`` (<= 0)."""
        return self._parquet("equity")

    def equity_arrays(self) -> dict[str, np.ndarray]:
        """Equity columns as numpy arrays (``ts`` as int64 UTC ns), cached for fast downsampling."""
        with self._lock:
            arrays = self._cache.get("equity_arrays")
        if arrays is None:
            import pyarrow.compute as pc

            from nautilus_app.results.reader import ResultsFolder

            table = ResultsFolder(self.path).arrow("equity")
            if table is None:
                raise FileNotFoundError(self.path / "equity.parquet")
            ts = table.column("ts")
            if pa.types.is_timestamp(ts.type):
                ts = pc.cast(ts, pa.timestamp("ns", tz="UTC") if ts.type.tz else pa.timestamp("ns"))
                ts = pc.cast(ts, pa.int64())
            arrays = {"ts": ts.to_numpy().astype(np.int64, copy=False)}
            for c in ("equity", "benchmark_equity", "drawdown"):
                if c in table.column_names:
                    arrays[c] = table.column(c).to_numpy().astype(np.float64, copy=False)
            with self._lock:
                self._cache["equity_arrays"] = arrays
        return arrays

    def trades(self) -> pd.DataFrame:
        """``trades.parquet`` (closed round trips; columns in :func:`nautilus_app.results.build_trades`)."""
        return self._parquet("trades")

    def fills(self) -> pd.DataFrame:
        """``fills.parquet`` (Nautilus fills report, normalised)."""
        return self._parquet("fills")

    def funding(self) -> pd.DataFrame:
        """``funding.parquet``: ``ts``, ``instrument_id``, ``position_id``, ``amount`` (USDT, paid < 0)."""
        return self._parquet("funding")

    def bar_types(self) -> list[str]:
        """Bar types the run loaded (from ``config.json``)."""
        return list(self.config.get("bar_types") or [])

    def strategies(self) -> list[dict]:
        """``[{"name": ..., "params": {...}}, ...]`` from ``config.json``."""
        return list(self.config.get("strategies") or [])

    def catalog_root(self, default: Path) -> Path:
        """Catalog the run read its bars from (``config.json`` ``catalog``; relative paths from the
        repository root, as :meth:`nautilus_app.config.BacktestConfig.catalog_path`), else ``default``."""
        cat = self.config.get("catalog")
        if not cat:
            return Path(default)
        from core import paths

        p = Path(cat)
        return p if p.is_absolute() else (paths.base_dir() / p).resolve()

    def liquidation_mask(self) -> np.ndarray:
        """Boolean per trade: closed by a liquidation. Read from whichever column exists: a boolean
        ``liquidated``/``is_liquidation``, an ``exit_reason``/``close_reason`` containing
        ``LIQUIDAT``, or a positive ``liquidation_fee``. All False when none exists."""
        t = self.trades()
        mask = np.zeros(len(t), dtype=bool)
        for c in ("liquidated", "is_liquidation", "liquidation"):
            if c in t.columns:
                mask |= t[c].fillna(False).astype(bool).to_numpy()
        for c in ("exit_reason", "close_reason", "reason"):
            if c in t.columns:
                mask |= t[c].astype(str).str.upper().str.contains("LIQUIDAT").to_numpy()
        for c in ("liquidation_fee", "liquidation_fees", "liquidation_fee_usdt"):
            if c in t.columns:
                mask |= (pd.to_numeric(t[c], errors="coerce").fillna(0.0) > 0).to_numpy()
        return mask

    def cost_breakdown(self) -> list[dict]:
        """Cost lines in USDT, positive = paid: ``[{"label", "usdt" (float or None), "source"}]``.

        ``source`` says where the number came from (``metrics.json:<key>``, ``trades.parquet:<col>``,
        or ``not recorded by this run``), so an absent cost is never shown as a zero.
        """
        out = []
        trades = None
        for label, keys, cols in COST_LINES:
            value, source = None, "not recorded by this run"
            for k in keys:
                if k in self.metrics and self.metrics[k] is not None:
                    value, source = float(self.metrics[k]), f"metrics.json:{k}"
                    break
            if value is None and cols:
                trades = self.trades() if trades is None else trades
                for c in cols:
                    if c in trades.columns:
                        value = float(pd.to_numeric(trades[c], errors="coerce").fillna(0.0).sum())
                        source = f"trades.parquet:{c} (sum over closed trades)"
                        break
            out.append({"label": label, "usdt": value, "source": source})
        return out

    def liquidation_count(self) -> int | None:
        """Liquidations in the run: a metrics.json count if present, else flagged trades, else None."""
        for k in LIQUIDATION_COUNT_KEYS:
            if self.metrics.get(k) is not None:
                return int(self.metrics[k])
        t = self.trades()
        known = {"liquidated", "is_liquidation", "liquidation", "exit_reason", "close_reason", "reason",
                 "liquidation_fee", "liquidation_fees", "liquidation_fee_usdt"}
        if known & set(t.columns):
            return int(self.liquidation_mask().sum())
        return None


class ResultsStore:
    """All results folders under one root, with caches keyed by folder modification time.

    Args:
        root: The results root (``$RESULTS_DIR`` or ``results/``).
        max_loaded: How many runs keep their Parquet data in memory (LRU).
    """

    def __init__(self, root: Path, max_loaded: int = 4) -> None:
        self.root = Path(root)
        self.max_loaded = max_loaded
        self._summaries: dict[str, tuple[float, dict]] = {}
        self._loaded: OrderedDict[str, tuple[float, Run]] = OrderedDict()
        self._lock = threading.Lock()

    def run_ids(self) -> list[str]:
        """Complete run folders (with ``metrics.json``), newest first; dot-folders are skipped."""
        if not self.root.is_dir():
            return []
        dirs = [p for p in self.root.iterdir()
                if p.is_dir() and is_complete(p)]
        dirs.sort(key=lambda p: (_mtime(p / "metrics.json"), p.name), reverse=True)
        return [p.name for p in dirs]

    def exists(self, run_id: str) -> bool:
        """True if ``results/<run_id>/metrics.json`` exists (a complete run). ``run_id`` may be a
        relative path such as ``research/<sweep>/<run_id>`` (:func:`valid_run_key`)."""
        return valid_run_key(run_id) and is_complete(self.root / run_id)

    def summary(self, run_id: str) -> dict:
        """One row of the runs list: id, name, strategies, instruments, period and :data:`LIST_METRICS`."""
        path = self.root / run_id
        mt = _mtime(path / "metrics.json")
        cached = self._summaries.get(run_id)
        if cached and cached[0] == mt:
            return cached[1]
        metrics = _read_json(path / "metrics.json")
        info = _read_json(path / "run.json")
        config = _read_json(path / "config.json")
        strategies = sorted({s.get("name") or s.get("strategy_path") or "?" for s in config.get("strategies", [])})
        instruments = sorted({_instrument_of(bt) for bt in config.get("bar_types", [])})
        row = {
            "run_id": run_id,
            "name": info.get("name") or config.get("name") or run_id,
            "strategies": ", ".join(strategies),
            "instruments": ", ".join(instruments),
            "start": metrics.get("start"),
            "end": metrics.get("end"),
            "created": pd.Timestamp(mt, unit="s", tz="UTC").isoformat(timespec="seconds"),
            "synthetic": bool(info.get("synthetic")),
        }
        for k in LIST_METRICS:
            row[k] = metrics.get(k)
        self._summaries[run_id] = (mt, row)
        return row

    def trial_ids(self, max_depth: int = 3) -> list[str]:
        """Complete run folders below the top level, as relative ids (``research/<sweep>/<run_id>``: the
        research registry's sweep trials), newest first. Dot-folders are skipped, and so is everything
        inside a run folder."""
        import os

        out: list[tuple[float, str]] = []
        if not self.root.is_dir():
            return []
        for top in self.root.iterdir():
            if not top.is_dir() or top.name.startswith(".") or (top / "metrics.json").exists():
                continue
            base = len(top.parts) - 1
            for dirpath, dirnames, filenames in os.walk(top):
                depth = len(Path(dirpath).parts) - base
                if "metrics.json" in filenames and depth > 1:
                    key = Path(dirpath).relative_to(self.root).as_posix()
                    if valid_run_key(key):
                        out.append((_mtime(Path(dirpath) / "metrics.json"), key))
                    dirnames[:] = []
                    continue
                dirnames[:] = [d for d in dirnames if not d.startswith(".")] if depth < max_depth + 1 else []
        return [k for _, k in sorted(out, reverse=True)]

    def list_runs(self, trials: bool = False) -> pd.DataFrame:
        """Every complete run, one row each (see :meth:`summary`), newest first; with ``trials``, then the
        nested runs of :meth:`trial_ids` (relative ids)."""
        rows = [self.summary(r) for r in self.run_ids() + (self.trial_ids() if trials else [])]
        cols = ["run_id", "name", "strategies", "instruments", "start", "end", "created", "synthetic", *LIST_METRICS]
        return pd.DataFrame(rows, columns=cols)

    def get(self, run_id: str) -> Run:
        """The loaded run (cached).

        Raises:
            RunNotFound: invalid id or no complete folder ``<root>/<run_id>``.
        """
        if not self.exists(run_id):
            raise RunNotFound(f"no results folder {run_id!r} under {self.root}")
        path = self.root / run_id
        mt = _mtime(path / "metrics.json")
        with self._lock:
            hit = self._loaded.get(run_id)
            if hit and hit[0] == mt:
                self._loaded.move_to_end(run_id)
                return hit[1]
        run = Run(run_id=run_id, path=path, metrics=_read_json(path / "metrics.json"),
                  info=_read_json(path / "run.json"), config=_read_json(path / "config.json"))
        with self._lock:
            self._loaded[run_id] = (mt, run)
            self._loaded.move_to_end(run_id)
            while len(self._loaded) > self.max_loaded:
                self._loaded.popitem(last=False)
        return run


def _instrument_of(bar_type: str) -> str:
    from catalog.inventory import bar_instrument_id

    return bar_instrument_id(bar_type)


def monthly_returns(equity: pd.Series, starting_equity: float) -> pd.DataFrame:
    """Calendar-month returns (fractions) as a year x month table (columns 1..12, NaN = no data).

    ``r_m = E(last sample of month m) / E(last sample of month m-1) - 1``; the first month is
    measured from ``starting_equity`` (as the daily returns of docs/metrics.md). Months are UTC.
    """
    s = equity.copy()
    s.index = pd.DatetimeIndex(s.index).tz_convert("UTC")
    month_end = s.groupby([s.index.year, s.index.month]).last()
    prev = month_end.shift(1)
    prev.iloc[0] = starting_equity
    r = month_end / prev - 1.0
    table = r.unstack(level=1)
    table.index.name = "year"
    table.columns.name = "month"
    return table.reindex(columns=range(1, 13))
