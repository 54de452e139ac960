"""Units of the app's tables and analysis pages (issue 24): AG Grid column definitions and their units, the
runs list's decision columns and filters in the displayed unit, the research page's ranking across
instruments, parameter heatmap and return/drawdown points, the comparison's config diff, the launcher's
data ranges and error display, and cancelling jobs. Expected values are computed here by hand."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dash_ui import grids
from dash_ui.pages import compare, launch, research, runs


def test_number_columns_carry_units_and_filter_in_the_displayed_unit() -> None:
    c = grids.number_col("total_return")
    assert c["headerName"] == "Total return (%)"
    assert c["filterValueGetter"]["function"] == "params.data.total_return == null ? null : params.data.total_return * 100"
    assert "* 100" in c["valueFormatter"]["function"] and "' %'" in c["valueFormatter"]["function"]
    assert c["cellStyle"] == grids.PNL_STYLE
    u = grids.number_col("fees_paid_usdt")
    assert u["headerName"] == "Fees paid (USDT)" and "',.2f'" in u["valueFormatter"]["function"]
    assert "filterValueGetter" not in u and "cellStyle" not in u
    assert grids.number_col("sharpe")["headerName"] == "Sharpe"
    assert grids.number_col("span_days", "Days")["headerName"] == "Days"  # unit already in the text


def _runs_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": ["a", "b", "c"], "name": ["a", "b", "c"], "strategies": ["ema_cross"] * 3,
        "instruments": ["BTCUSDT.BINANCE"] * 3, "start": ["2025-01-01T00:01:00+00:00"] * 3,
        "end": ["2025-02-01T00:00:00+00:00"] * 3, "synthetic": [False] * 3,
        "total_return": [0.05, 0.10, 0.25], "max_drawdown": [0.02, 0.2, 0.099], "sharpe": [1.0, 2.0, 3.0]})


def test_runs_metric_filter_is_in_the_displayed_unit() -> None:
    df = _runs_frame()
    f = lambda metric, lo, hi: runs.filter_runs(df, None, None, None, None, None, metric, lo, hi)["run_id"].tolist()  # noqa: E731
    assert f("total_return", 10, None) == ["b", "c"]  # 10 = 10 % = 0.10 (b is exactly at the bound)
    assert f("total_return", None, 10) == ["a", "b"]
    assert f("max_drawdown", None, 9.9) == ["a", "c"]
    assert f("total_return", 1000, None) == []  # 1000 %: none, not "all but..."
    assert f("sharpe", 2, None) == ["b", "c"]  # ratios are not scaled


def test_runs_decision_columns_from_metrics_json(tmp_path: Path) -> None:
    from dash_ui.data import ResultsStore

    m = {"total_return": 0.12, "buy_and_hold_return": 0.30, "starting_equity": 10_000.0, "total_costs_usdt": 250.0,
         "span_days": 31.0, "sharpe": 1.5, "max_drawdown": 0.07, "trades": 9, "start": "2025-01-01T00:01:00+00:00",
         "end": "2025-02-01T00:00:00+00:00"}
    folder = tmp_path / "r1"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(m))
    (folder / "config.json").write_text(json.dumps({"name": "r1", "bar_types": [], "strategies": []}))
    df = runs.runs_frame(ResultsStore(tmp_path))
    row = runs.grid_rows(df)[0]
    assert row["excess_return"] == pytest.approx(0.12 - 0.30)
    assert row["costs_pct_of_start"] == pytest.approx(250.0 / 10_000.0)
    assert row["period"] == "2025-01-01 00:01 -> 2025-02-01 00:00"
    assert row["name_link"] == "[r1](/run/r1)"
    fields = [c["field"] for c in runs.column_defs()]
    assert fields[:8] == ["name_link", "total_return", "excess_return", "sharpe", "max_drawdown", "trades",
                          "costs_pct_of_start", "period"]


def _registry_frame() -> pd.DataFrame:
    rows = []
    spec = [  # (strategy, instrument, fast, slow, sharpe, total_return, max_drawdown)
        ("ema", "BTCUSDT.BINANCE", 10, 30, 1.0, 0.10, 0.05), ("ema", "BTCUSDT.BINANCE", 20, 30, 2.0, 0.20, 0.10),
        ("ema", "ETHUSDT.BINANCE", 10, 30, -0.5, -0.05, 0.20), ("ema", "ETHUSDT.BINANCE", 20, 60, 0.5, 0.02, 0.08),
        ("tf", "BTCUSDT.BINANCE", 5, 50, 1.5, 0.12, 0.04), ("tf", "ETHUSDT.BINANCE", 5, 50, 0.7, 0.03, 0.09),
        ("mr", "BTCUSDT.BINANCE", 7, 70, 3.0, 0.40, 0.30),
    ]
    for i, (s, iid, fast, slow, sh, tr, dd) in enumerate(spec):
        rows.append({"run_key": f"k{i:02d}" + "0" * 10, "shard": None, "bar_types": [f"{iid}-1-MINUTE-LAST-EXTERNAL"],
                     "strategy": s, "param_version": 1, "params": {"fast": fast, "slow": slow},
                     "metrics": {"sharpe": sh, "total_return": tr, "max_drawdown": dd}})
    return pd.DataFrame(rows)


def test_ranking_across_instruments_by_hand() -> None:
    hm = research.heatmap_table(_registry_frame(), "sharpe", "best", "strategy")
    r = research.ranking_table(hm).set_index("strategy")
    # best per cell: BTC ema 2.0, tf 1.5, mr 3.0 -> ranks mr 1, ema 2, tf 3; ETH ema 0.5, tf 0.7 -> tf 1, ema 2
    assert r.loc["mr", "mean_rank"] == 1.0 and r.loc["mr", "instruments"] == 1 and r.loc["mr", "wins"] == 1
    assert r.loc["ema", "mean_rank"] == pytest.approx((2 + 2) / 2) and r.loc["ema", "wins"] == 0
    assert r.loc["tf", "mean_rank"] == pytest.approx((3 + 1) / 2) and r.loc["tf", "wins"] == 1
    assert r.loc["ema", "mean"] == pytest.approx((2.0 + 0.5) / 2) and r.loc["ema", "worst"] == 0.5
    # order: mean rank, then the better mean: ema (mean rank 2, mean 1.25) before tf (mean rank 2, mean 1.1)
    assert list(r.index) == ["mr", "ema", "tf"] and list(r["rank"]) == [1, 2, 3]
    # lower is better for drawdown: best cell = min, rank 1 = smallest
    d = research.ranking_table(research.heatmap_table(_registry_frame(), "max_drawdown", "best", "strategy"))
    d = d.set_index("strategy")
    # BTC: ema 0.05, tf 0.04, mr 0.30 -> tf 1, ema 2, mr 3; ETH: ema 0.08, tf 0.09 -> ema 1, tf 2
    assert d.loc["tf", "mean_rank"] == 1.5 and d.loc["ema", "mean_rank"] == 1.5 and d.loc["mr", "mean_rank"] == 3
    assert d.loc["ema", "worst"] == 0.08 and d.loc["ema", "best"] == 0.05


def test_parameter_heatmap_by_hand() -> None:
    df = _registry_frame()
    assert research.param_names(df) == ["fast", "slow"]
    ph = research.param_heatmap_table(df, "fast", "slow", "sharpe", "mean")
    assert list(ph.values.columns) == [5, 7, 10, 20] and list(ph.values.index) == [30, 50, 60, 70]
    assert ph.values.loc[30, 10] == pytest.approx((1.0 - 0.5) / 2) and ph.counts.loc[30, 10] == 2
    assert ph.values.loc[50, 5] == pytest.approx((1.5 + 0.7) / 2)
    assert np.isnan(ph.values.loc[60, 10]) and ph.counts.loc[60, 10] == 0
    best = research.param_heatmap_table(df, "fast", "slow", "sharpe", "best")
    assert best.values.loc[30, 10] == 1.0 and best.used == 7
    dd = research.param_heatmap_table(df, "fast", "slow", "max_drawdown", "best")
    assert dd.values.loc[30, 10] == 0.05  # lower is better
    fig = research.param_heatmap_figure(ph)
    assert fig.data[0].type == "heatmap"


def test_return_vs_drawdown_points() -> None:
    df = _registry_frame()
    pts = research.scatter_points(df)
    assert len(pts) == 7 and pts["instrument"].iloc[0] == "BTCUSDT.BINANCE"
    fig = research.scatter_figure(pts)
    by_name = {t.name: t for t in fig.data}
    assert sorted(by_name) == ["ema", "mr", "tf"]
    assert list(by_name["mr"].x) == [pytest.approx(30.0)] and list(by_name["mr"].y) == [pytest.approx(40.0)]


def test_config_diff_by_hand() -> None:
    a = {"name": "x", "catalog": "/a", "start": "2025-01-01", "bar_types": ["A", "B"],
         "venues": [{"name": "V", "taker_fee": 0.001}],
         "strategies": [{"name": "ema_cross", "params": {"fast_period": 10, "slow_period": 30}}]}
    b = {"name": "y", "catalog": "/b", "start": "2025-01-01", "bar_types": ["A"],
         "venues": [{"name": "V", "taker_fee": 0.001}],
         "strategies": [{"name": "ema_cross", "params": {"fast_period": 12, "slow_period": 30, "allow_short": True}}]}
    keys, values, same = compare.config_diff([a, b])
    assert keys == ["bar_types", "strategies[0].params.allow_short", "strategies[0].params.fast_period"]
    assert values["strategies[0].params.fast_period"] == [10, 12]
    assert values["strategies[0].params.allow_short"] == [None, True]
    assert values["bar_types"] == ['["A", "B"]', '["A"]']
    # identical: start, venues[0].name, venues[0].taker_fee, strategies[0].name, slow_period
    assert same == 5


def test_data_ranges_and_error_block() -> None:
    inv = pd.DataFrame({"kind": ["bars", "bars"], "identifier": ["A-1-MINUTE-LAST-EXTERNAL", "B-1-MINUTE-LAST-EXTERNAL"],
                        "first": pd.to_datetime(["2025-01-01 00:01", "2025-01-05 00:01"], utc=True),
                        "last": pd.to_datetime(["2025-03-01 00:00", "2025-02-01 00:00"], utc=True),
                        "rows": [84_000, 39_000], "gaps": [0, 2]})
    ctx = SimpleNamespace(inventory=lambda: inv)
    out = launch.data_ranges(ctx, ["A-1-MINUTE-LAST-EXTERNAL", "B-1-MINUTE-LAST-EXTERNAL"])
    items = [li.children for li in out.children[1].children]
    assert items == ["A-1-MINUTE-LAST-EXTERNAL: 2025-01-01 00:01 -> 2025-03-01 00:00 UTC (84,000 bars, 0 gaps)",
                     "B-1-MINUTE-LAST-EXTERNAL: 2025-01-05 00:01 -> 2025-02-01 00:00 UTC (39,000 bars, 2 gaps)"]
    # the range all of them cover: latest first, earliest last
    assert out.children[2].children == "All chosen series: 2025-01-05 00:01 -> 2025-02-01 00:00 UTC"
    missing = launch.data_ranges(ctx, ["C-1-MINUTE-LAST-EXTERNAL"])
    assert "no stored bars" in missing.children[1].children[0].children
    job = SimpleNamespace(error="backtest failed: boom\nmore", log_tail="Traceback (most recent call last):\n  ...\nValueError: boom")
    block = launch.error_block(job)
    assert block.children[0].children == "backtest failed: boom"
    assert block.children[1].children[1].children == job.log_tail


def _fake_python(tmp_path: Path, body: str) -> str:
    p = tmp_path / "fake_python.sh"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(p)


def test_cancel_running_and_queued_jobs(tmp_path: Path) -> None:
    from dash_ui.jobs import JobRunner
    from nautilus_app.testkit.dash_testing import spot_config

    cat = tmp_path / "catalog"
    runner = JobRunner(tmp_path / "results", cat, python=_fake_python(tmp_path, "sleep 60\n"),
                       check_data=False)  # a stand-in worker: no catalog
    try:
        first = runner.submit(spot_config(cat, name="c1"))
        second = runner.submit(spot_config(cat, name="c2"))
        t0 = time.time()
        # "running" is set just before the worker process starts: wait for the process too
        while first.id not in runner._procs and time.time() - t0 < 20:
            time.sleep(0.05)
        assert runner.get(first.id).status == "running"
        proc = runner._procs[first.id]
        runner.cancel(second.id)  # queued: never started
        runner.cancel(first.id)
        assert runner.wait(first.id, 20).status == "cancelled"
        assert proc.wait(timeout=10) != 0  # the worker was killed
        time.sleep(0.3)
        assert runner.get(second.id).status == "cancelled" and runner.get(second.id).started is None
        saved = json.loads((runner.jobs_dir / f"{first.id}.json").read_text())
        assert saved["status"] == "cancelled" and saved["stage"] == "cancelled"
        assert runner.cancel("nope") is None
        assert runner.cancel(first.id).status == "cancelled"  # idempotent
    finally:
        runner.shutdown()


def test_failed_job_error_is_one_line(tmp_path: Path) -> None:
    from dash_ui.jobs import JobRunner
    from nautilus_app.testkit.dash_testing import spot_config

    cat = tmp_path / "catalog"
    body = ("echo 'Traceback (most recent call last):' >&2\necho '  File \"x.py\", line 1' >&2\n"
            "echo 'ValueError: the real cause' >&2\nexit 1\n")
    runner = JobRunner(tmp_path / "results", cat, python=_fake_python(tmp_path, body),
                       check_data=False)  # a stand-in worker: no catalog
    try:
        job = runner.wait(runner.submit(spot_config(cat, name="f1")).id, 30)
        assert job.status == "failed"
        assert job.error == "worker exited with code 1: ValueError: the real cause"
        assert "Traceback" in job.log_tail
    finally:
        runner.shutdown()
