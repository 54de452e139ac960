"""``nautilus-app paper-vs-backtest PAPER_RESULTS``: replay a paper session's bars through a backtest
with the same config and list the fill-by-fill differences.

The backtest runs the paper results' ``config.toml`` (or ``config.json``) over the bars the paper
session processed (from ``run.json``'s ``first_bar`` to ``last_bar``: the bars opening in
``[first close - 1 interval, last close)``), from the config's catalog, with every venue model of
the config. Compared, in order:

* fills: count, then per fill ``ts_event``, ``instrument_id``, ``order_side``, ``last_qty``,
  ``last_px``, ``commission`` (prices/quantities exactly, commissions to 1e-8 USDT);
* funding: per settlement time and instrument, the amount (to 1e-8);
* final equity (``metrics.json``, to 1e-6).

Zero differences is the expectation with the simulated execution client and replayed data. A
session that warmed its strategies from history before its first live bar (``warm_bars > 0`` in
``run.json``) is compared with a backtest that starts cold at the first live bar: indicator-driven
differences are then expected, and the report says so. Bars caught up from the venue's history after a
restart (``catch_up_bars``, ``catch_up_bars_traded``) are noted separately; the stored bars a restart
replays (``restart_replayed_bars``) are not warm-up bars and are not counted as such.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nautilus_app.results.reader import open_results

FILL_COLS = ["ts_event", "instrument_id", "order_side", "last_qty", "last_px", "commission"]


@dataclass
class ParityReport:
    """Differences between a paper session and its backtest."""

    paper_fills: int = 0
    backtest_fills: int = 0
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backtest_path: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.differences

    def text(self) -> str:
        lines = [f"paper fills: {self.paper_fills}, backtest fills: {self.backtest_fills}"]
        lines += [f"note: {n}" for n in self.notes]
        lines += self.differences or ["no differences"]
        return "\n".join(lines)


def _load_config(paper: Path) -> Any:
    from nautilus_app.config import load_config, parse_config

    if (paper / "config.toml").exists():
        return load_config(paper / "config.toml")
    raw = json.loads((paper / "config.json").read_text())
    return parse_config(raw)


def backtest_for(paper: Path, results_root: Path | None = None) -> tuple[Any, Path]:
    """Run the backtest of the paper session's config over its bars; returns (outcome, results path)."""
    import msgspec

    from nautilus_app.backtest import run_backtest

    run = open_results(paper).json("run.json", required=True)
    cfg = _load_config(paper)
    # a relative catalog in config.toml is relative to the run config's folder, not the results folder
    from nautilus_trader.model import BarType

    interval = BarType.from_str(cfg.bar_types[0]).spec.get_interval_ns()
    first = pd.Timestamp(run["first_bar"])
    last = pd.Timestamp(run["last_bar"])
    start = (first - pd.Timedelta(interval, unit="ns")).isoformat()
    end = last.isoformat()
    cfg = msgspec.structs.replace(cfg, start=start.replace("+00:00", ""), end=end.replace("+00:00", ""),
                                  name=f"{cfg.name}-parity")
    root = results_root or Path(tempfile.mkdtemp(prefix="paper-parity-"))
    out = run_backtest(cfg, results_root=root, progress=False)
    return out, out.results_path


def warm_and_catch_up_notes(run: dict) -> list[str]:
    """What the session fed its strategies besides live bars (``run.json``): history warm-up bars before the
    first live bar (the backtest starts cold: differences expected) and bars missed while the node was down,
    taken from the venue's history at restarts (traded ones as the uninterrupted session would: none
    expected from them; untraded ones, beyond ``max_catch_up_bars``: differences expected). The stored bars a
    restart feeds again are neither: they restore the uninterrupted session's state."""
    notes = []
    warm = int(run.get("warm_bars", 0) or 0)
    if warm > 0:
        notes.append(f"the paper session warmed its strategies on {warm} history bars before its first live bar; "
                     "the backtest starts cold at that bar")
    caught = int(run.get("catch_up_bars", 0) or 0)
    if caught > 0:
        traded = int(run.get("catch_up_bars_traded", 0) or 0)
        text = (f"{caught} bars missed while the node was down were caught up from the venue's history at restarts "
                f"({traded} traded as live bars")
        text += ")" if traded == caught else f"; {caught - traded} fed without trading: differences expected after them)"
        notes.append(text)
    return notes


def compare(paper: Path, results_root: Path | None = None) -> ParityReport:
    """Fill-by-fill comparison of ``paper`` (a paper results folder) with its backtest."""
    paper = Path(paper)
    rep = ParityReport()
    folder = open_results(paper)
    run = folder.json("run.json", required=True)
    rep.notes += warm_and_catch_up_notes(run)
    if "simulated" not in str(run.get("execution", "")):
        rep.notes.append(f"paper execution was {run.get('execution')!r}, not the simulated client: its models differ "
                         f"({run.get('not_simulated')})")
    out, bt_path = backtest_for(paper, results_root)
    rep.backtest_path = bt_path
    pf = folder.table("fills")
    bf = open_results(bt_path).table("fills")
    rep.paper_fills, rep.backtest_fills = len(pf), len(bf)
    pf = pf.sort_values("ts_event", kind="stable").reset_index(drop=True)
    bf = bf.sort_values("ts_event", kind="stable").reset_index(drop=True)
    for i in range(max(len(pf), len(bf))):
        a = pf.iloc[i] if i < len(pf) else None
        b = bf.iloc[i] if i < len(bf) else None
        if a is None or b is None:
            side = "paper only" if b is None else "backtest only"
            row = a if b is None else b
            rep.differences.append(f"fill {i}: {side}: " + ", ".join(f"{c}={row[c]}" for c in FILL_COLS))
            continue
        diffs = []
        for c in FILL_COLS:
            x, y = a[c], b[c]
            if c == "commission":
                same = abs(float(x) - float(y)) <= 1e-8
            elif c in ("last_qty", "last_px"):
                same = float(x) == float(y)
            elif c == "ts_event":
                same = pd.Timestamp(x) == pd.Timestamp(y)
            else:
                same = str(x) == str(y)
            if not same:
                diffs.append(f"{c}: paper {x} vs backtest {y}")
        if diffs:
            rep.differences.append(f"fill {i} ({pd.Timestamp(a['ts_event'])}): " + "; ".join(diffs))
    pfun = _funding(paper)
    bfun = _funding(bt_path)
    for key in sorted(set(pfun) | set(bfun)):
        x, y = pfun.get(key), bfun.get(key)
        if x is None or y is None or abs(x - y) > 1e-8:
            rep.differences.append(f"funding {key[0]} {key[1]}: paper {x} vs backtest {y}")
    pm = folder.metrics
    x, y = pm.get("final_equity"), out.metrics.get("final_equity")
    if x is None or y is None or abs(float(x) - float(y)) > 1e-6:
        rep.differences.append(f"final equity: paper {x} vs backtest {y}")
    return rep


def _funding(path: Path) -> dict[tuple[str, str], float]:
    df = open_results(path).table("funding")  # empty when missing
    if df.empty:
        return {}
    amount = "amount" if "amount" in df.columns else df.columns[-1]
    ts = "ts" if "ts" in df.columns else "ts_event"
    out: dict[tuple[str, str], float] = {}
    for _, r in df.iterrows():
        key = (str(pd.Timestamp(r[ts])), str(r.get("instrument_id", "")))
        out[key] = out.get(key, 0.0) + float(r[amount])
    return out


def main_paper_vs_backtest(args: Any) -> int:
    """CLI entry: print the report; exit 0 without differences, 1 with, 2 when the folder is not a paper run."""
    import sys

    paper = Path(args.paper_results)
    if not (paper / "run.json").exists() or not (paper / "fills.parquet").exists():
        print(f"error: {paper}: not a paper results folder (run.json and fills.parquet expected)", file=sys.stderr)
        return 2
    run = open_results(paper).info
    if run.get("mode") != "paper" or "first_bar" not in run:
        print(f"error: {paper}/run.json: mode = {run.get('mode')!r}, first_bar = {run.get('first_bar')!r}: expected "
              "a paper session that processed bars", file=sys.stderr)
        return 2
    rep = compare(paper, Path(args.results_dir) if getattr(args, "results_dir", None) else None)
    print(rep.text())
    print(f"backtest results: {rep.backtest_path}")
    return 0 if rep.ok else 1
