"""The app in a real headless Chromium (Debian's, driven by Playwright): every page opens, the figures
shown equal the run's files (metrics.json, equity.parquet, trades.parquet read here with pandas), a
backtest launched from the UI completes and shows up, and each page is saved as a screenshot in
``artifacts/``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nautilus_app.testkit import synthetic
from nautilus_app.testkit.dash_testing import (
    DETAIL_READY,
    browser,
    build_test_data,
    chromium_available,
    serve_app,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
NAV = "(p) => { window.history.pushState({}, '', p); window.dispatchEvent(new PopStateEvent('popstate')); }"

if not chromium_available():  # pragma: no cover - .ci/run installs it
    pytest.fail("Debian chromium is not installed (apt-get install chromium chromium-driver; see .ci/run)",
                pytrace=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("dash")
    catalog, results, run_id = build_test_data(root)
    extra = build_more_runs(root / "catalog_more", results)
    syn = synthetic.make_synthetic_run(results, root / "syn_catalog", days=20, seed=3, fast=30, slow=120,
                                       run_id="SYNTHETIC-test")
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_app(results, catalog) as (url, _app), browser(root / "chromium-profile") as ctx:
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        yield {"url": url, "page": page, "context": ctx, "results": results, "catalog": catalog, "run_id": run_id,
               "synthetic": syn.name, **extra}


def build_more_runs(catalog: Path, results: Path) -> dict:
    """In a catalog of their own (the app's catalog stays the one of the other tests: runs read the catalog
    named in their config.json): a perpetual run with a risk table (fixed-fractional sizing, stop-loss and take-profit orders, a
    drawdown pause that refuses entries, funding) and the two reference configs (configs/demo_spot.toml,
    configs/demo_perp.toml: four strategies on 1h / 15m bars built from 1m bars) on a few real days."""
    from catalog.binance_vision import import_binance_vision
    from core.paths import REPO_ROOT, shared_data_dir
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import load_config, parse_config

    mirror = str(shared_data_dir() / "binance-vision")
    import_binance_vision(catalog, base_url=mirror, market="spot", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2025-06-01", end="2025-06-10", kinds=("klines",))
    import_binance_vision(catalog, base_url=mirror, market="um", symbols=("BTCUSDT", "ETHUSDT"), interval="1m",
                          start="2023-07-20", end="2023-07-27", kinds=("klines", "fundingRate", "markPriceKlines"))
    eth, bar = "ETHUSDT-PERP.BINANCE_USDM", "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL"
    risk = {"sizing": {"method": "fixed_fractional", "risk_fraction": 0.01},
            "stops": {"stop_loss_pct": 0.004, "take_profit_pct": 0.01},
            "limits": {"drawdown_half_size": 0.005, "drawdown_pause": 0.01, "drawdown_pause_bars": 120}}
    cfg = parse_config({
        "name": "risk_run", "catalog": str(catalog), "start": "2023-07-20", "end": "2023-07-24", "bar_types": [bar],
        "venues": [{"name": "BINANCE_USDM", "account_type": "MARGIN", "starting_balances": ["100000 USDT"],
                    "leverages": {eth: 5}}],
        "strategies": [{"name": "ema_cross", "params": {"instrument_id": eth, "bar_type": bar, "fast_period": 10,
                                                        "slow_period": 30, "allow_short": True, "risk": risk}}]})
    risk_id = run_backtest(cfg, results_root=results, progress=False).run_id
    out = {"risk_run": risk_id, "catalog_more": catalog}
    for name, start, end in (("demo_spot", "2025-06-01", "2025-06-08"), ("demo_perp", "2023-07-20", "2023-07-26")):
        cfg = load_config(REPO_ROOT / "configs" / f"{name}.toml",
                          overrides={"start": start, "end": end, "catalog": str(catalog)})
        out[name] = run_backtest(cfg, results_root=results, progress=False).run_id
    return out


def number(text: str) -> float | None:
    """A displayed value back to a number in metrics.json units (percent -> fraction)."""
    text = text.strip()
    if text == "n/a":
        return None
    m = re.search(r"\(([-0-9,.]+) s\)", text)  # durations: "1d 02:03:04 (93,784 s)"
    if m:
        return float(m.group(1).replace(",", ""))
    if text in ("yes", "no"):
        return float(text == "yes")
    v = float(text.replace(",", "").replace("USDT", "").replace("%", "").strip())
    return v / 100 if text.endswith("%") else v


def decimals(text: str) -> int:
    m = re.search(r"\.(\d+)", text.split("(")[-1])
    return len(m.group(1)) if m else 0


def assert_shown(text: str, value, key: str) -> None:
    if value is None:
        assert text == "n/a", (key, text)
        return
    if isinstance(value, str):
        assert text == value.replace("T", " ").replace("+00:00", ""), (key, text, value)
        return
    if isinstance(value, bool):
        assert text == ("yes" if value else "no"), (key, text)
        return
    shown = number(text)
    unit = 10.0 ** -decimals(text) / (100 if text.endswith("%") else 1)
    assert abs(shown - value) <= unit / 2 + 1e-12, (key, text, value)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"dash_{name}.png"), full_page=True)


def gd(page, graph_id: str) -> dict:
    """The plotly figure data drawn in the browser (traces' names, x and y; ``_fullData`` holds the
    decoded arrays, ``data`` may keep plotly.py's base64 encoding)."""
    return page.evaluate("""(id) => { const g = document.querySelector('#' + id + ' .js-plotly-plot');
        return g._fullData.map(t => ({name: t.name, type: t.type, x: t.x ? Array.from(t.x) : [],
                                      y: t.y ? Array.from(t.y) : []})); }""", graph_id)


GRID_ROWS = """async (id) => { const api = await dash_ag_grid.getApiAsync(id); const out = [];
    api.forEachNodeAfterFilterAndSort(n => out.push(n.data)); return out; }"""


def grid_rows(page, grid_id: str) -> list[dict]:
    """Row data of an AG Grid after its filters and sort (as the grid holds them)."""
    return page.evaluate(GRID_ROWS, grid_id)


def test_runs_page_lists_every_run(env: dict) -> None:
    page = env["page"]
    page.goto(env["url"] + "/")
    page.wait_for_selector("#runs-table .ag-row")
    folders = sorted(p.name for p in env["results"].iterdir() if p.is_dir() and not p.name.startswith("."))
    page.wait_for_function("(n) => document.querySelectorAll('#runs-table .ag-center-cols-container .ag-row').length >= n",
                           arg=len(folders))
    text = page.inner_text("#runs-table")
    for f in folders:
        assert f in text
    assert page.inner_text("#runs-title") == f"Runs ({len(folders)} of {len(folders)})"
    # decision columns first, with units
    headers = [h for h in page.locator("#runs-table .ag-header-cell-text").all_inner_texts() if h.strip()]
    assert [h.replace("\n", " ") for h in headers[:8]] == [
        "Run", "Return (%)", "Excess vs buy & hold (%)", "Sharpe", "Max drawdown (%)", "Trades",
        "Costs, % of start", "Period (UTC)"], headers
    # shown values: percents with 2 decimals, excess and costs computed from metrics.json here
    rid = env["run_id"]
    m = json.loads((env["results"] / rid / "metrics.json").read_text())
    row = page.locator(f"#runs-table .ag-center-cols-container .ag-row[row-id='{rid}']")
    cell = lambda col: row.locator(f"[col-id='{col}']").inner_text()  # noqa: E731
    assert cell("total_return") == f"{m['total_return'] * 100:,.2f} %".replace("-", "\u2212")
    assert cell("excess_return") == f"{(m['total_return'] - m['buy_and_hold_return']) * 100:,.2f} %".replace("-", "\u2212")
    assert cell("costs_pct_of_start") == f"{m['total_costs_usdt'] / m['starting_equity'] * 100:,.2f} %".replace("-", "\u2212")
    assert cell("fees_paid_usdt") == f"{m['fees_paid_usdt']:,.2f}"
    color = row.locator("[col-id='total_return']").evaluate("e => getComputedStyle(e).color")
    assert color == ("rgb(27, 127, 42)" if m["total_return"] > 0 else "rgb(198, 40, 40)")
    shot(page, "runs")
    # the min filter is in the displayed unit: max drawdown >= 1 means >= 1 %
    all_m = {f: json.loads((env["results"] / f / "metrics.json").read_text()) for f in folders}
    expected = sorted(f for f, mm in all_m.items() if mm["max_drawdown"] >= 0.01)
    assert 0 < len(expected) < len(folders)
    page.click("#runs-metric")
    page.keyboard.type("Max drawdown")
    page.keyboard.press("Enter")
    page.fill("#runs-min", "1")
    page.press("#runs-min", "Enter")
    page.wait_for_function("(n) => document.querySelector('#runs-title').innerText.startsWith(`Runs (${n} of`)",
                           arg=len(expected))
    assert sorted(r["run_id"] for r in grid_rows(page, "runs-table")) == expected
    # a min no run reaches: 0 rows and a message
    page.fill("#runs-min", "1000")
    page.press("#runs-min", "Enter")
    page.wait_for_function("() => document.querySelector('#runs-filter-note').innerText.includes('no run matches')")
    page.fill("#runs-min", "")
    page.press("#runs-min", "Enter")
    page.wait_for_function("(n) => document.querySelector('#runs-title').innerText.startsWith(`Runs (${n} of`)",
                           arg=len(folders))
    # sorting with the keyboard: focus the Sharpe header, Enter sorts ascending
    page.locator("#runs-table .ag-header-cell[col-id='sharpe']").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => !!document.querySelector(\"#runs-table .ag-header-cell[col-id='sharpe'][aria-sort='ascending']\")")
    shown = [r["sharpe"] for r in grid_rows(page, "runs-table")]
    expected_sharpe = sorted(mm["sharpe"] for mm in all_m.values())
    assert shown == pytest.approx(expected_sharpe)
    # the grid's own number filter is in the displayed unit too (10 on Return = 10 %)
    exp10 = sorted(f for f, mm in all_m.items() if mm["total_return"] * 100 > -10)
    n = page.evaluate("""async () => { const api = await dash_ag_grid.getApiAsync('runs-table');
        await api.setColumnFilterModel('total_return', {filterType: 'number', type: 'greaterThan', filter: -10});
        api.onFilterChanged(); let n = 0; api.forEachNodeAfterFilter(() => n++); return n; }""")
    assert n == len(exp10)
    page.evaluate("async () => { const api = await dash_ag_grid.getApiAsync('runs-table'); api.setFilterModel(null); }")
    # ticking rows builds the comparison link
    page.locator(f"#runs-table .ag-pinned-left-cols-container .ag-row[row-id='{rid}'] input[type=checkbox]").check()
    page.wait_for_function("() => document.querySelector('#runs-compare').innerText.includes('(1)')")
    assert rid in page.get_attribute("#runs-compare", "href")
    # search filters the list
    page.fill("#runs-search", "SYNTHETIC")
    page.press("#runs-search", "Enter")
    page.wait_for_function("() => document.querySelector('#runs-title').innerText.startsWith('Runs (1 of')")
    assert env["run_id"] not in page.inner_text("#runs-table")


def test_detail_page_figures_equal_the_run_files(env: dict) -> None:
    page, run_id = env["page"], env["run_id"]
    folder = env["results"] / run_id
    metrics = json.loads((folder / "metrics.json").read_text())
    page.goto(f"{env['url']}/run/{run_id}")
    page.wait_for_function(DETAIL_READY)
    # every metric in the table and every KPI card
    for key, value in metrics.items():
        if isinstance(value, list):  # by_strategy / by_instrument: tables of their own, checked below
            continue
        if isinstance(value, dict):  # e.g. buy_and_hold_by_instrument: "id: 1.23 %, ..."
            shown = page.inner_text(f"#metric-{key}")
            assert all(str(k) in shown for k in value), (key, shown)
            continue
        assert_shown(page.inner_text(f"#metric-{key}"), value, key)
    for table, records in (("detail-by-strategy", metrics["by_strategy"]),
                           ("detail-by-instrument", metrics["by_instrument"])):
        for i, rec in enumerate(records):
            for key in ("net_pnl_usdt", "fees_paid_usdt", "exposure", "trades"):
                assert_shown(page.inner_text(f"#{table}-{i}-{key}").replace(" USDT", ""), rec[key], key)
    derived = {"excess_return": metrics["total_return"] - metrics["buy_and_hold_return"],
               "costs_pct_of_start": metrics["total_costs_usdt"] / metrics["starting_equity"]}
    for el in page.query_selector_all("[id^=kpi-]"):
        key = el.get_attribute("id")[4:]
        if key.startswith("note-"):
            continue
        assert_shown(el.inner_text(), {**metrics, **derived}[key], key)
    assert page.inner_text("#kpi-note-cagr") == f"annualised from {metrics['span_days']:,.1f} days"
    # equity curve: ends at final_equity, and its extremes are the true ones (min/max downsampling)
    eq = pd.read_parquet(folder / "equity.parquet")
    traces = gd(page, "detail-equity")
    strat = traces[0]
    assert strat["y"][-1] == pytest.approx(metrics["final_equity"], rel=1e-12)
    assert max(strat["y"]) == pytest.approx(eq["equity"].max()) and min(strat["y"]) == pytest.approx(eq["equity"].min())
    assert traces[1]["y"][-1] == pytest.approx(eq["benchmark_equity"].iloc[-1])
    # buy and hold return = last benchmark / starting equity - 1
    assert traces[1]["y"][-1] / metrics["starting_equity"] - 1 == pytest.approx(metrics["buy_and_hold_return"])
    # underwater curve: deepest point = max drawdown
    dd = gd(page, "detail-drawdown")[0]
    assert -min(dd["y"]) == pytest.approx(metrics["max_drawdown"], rel=1e-9)
    # histogram counts every trade
    hist = gd(page, "detail-hist")[0]
    trades = pd.read_parquet(folder / "trades.parquet")
    assert sum(hist["y"]) == len(trades) == metrics["trades"]
    # candles: more than MAX_MARKERS trades -> position periods shaded (one polygon per trade), else one
    # entry and one exit marker per trade at the exact fill prices; a volume panel; the recorded EMAs
    from dash_ui.charts import MAX_MARKERS

    candles = gd(page, "detail-candles")
    names = [t["name"] for t in candles]
    assert "volume" in names
    if len(trades) > MAX_MARKERS:
        shaded = [t for t in candles if t["name"].startswith(("Long periods", "Short periods"))]
        assert sum(sum(1 for v in t["y"] if v is None) for t in shaded) == len(trades)
    else:
        entries = [t for t in candles if t["name"].startswith(("Long entry", "Short entry"))]
        exits = [t for t in candles if t["name"].startswith("Exit")]
        assert sum(len(t["y"]) for t in entries) == len(trades)
        assert sorted(y for t in exits for y in t["y"]) == pytest.approx(sorted(trades["exit_price"]))
    assert any(n.startswith("EMA fast") and "recorded" in n for n in names)
    assert any(n.startswith("EMA slow") and "recorded" in n for n in names)
    # monthly heatmap: June 2025 return from the equity file
    monthly = page.evaluate("""() => { const g = document.querySelector('#detail-monthly .js-plotly-plot');
        return g._fullData[0].z.map(r => Array.from(r)); }""")
    z = np.array(monthly, dtype=float)
    june = eq["equity"].iloc[-1] / metrics["starting_equity"] - 1  # the run lies inside June 2025
    assert z[~np.isnan(z)].tolist() == pytest.approx([june])
    # trade table shows the first trade; cost table shows the fees of metrics.json
    assert page.inner_text("#detail-trades-title") == f"Trades ({len(trades):,})"
    page.locator("#detail-trades").scroll_into_view_if_needed()  # AG Grid renders rows once in view
    page.wait_for_selector("#detail-trades .ag-center-cols-container .ag-row[row-index='0']")
    first_row = page.inner_text("#detail-trades .ag-center-cols-container .ag-row[row-index='0']").replace("\u2212", "-")
    d = (trades["exit_time"].iloc[0] - trades["entry_time"].iloc[0]).total_seconds()
    assert f"{int(d // 3600):02d}:{int(d % 3600 // 60):02d}:{round(d % 60):02d}" in first_row
    assert trades["entry_time"].iloc[0].strftime("%Y-%m-%d %H:%M:%S") in first_row
    assert f"{trades['pnl'].iloc[0]:,.2f}" in first_row and f"{trades['return_frac'].iloc[0] * 100:,.2f} %" in first_row
    assert_shown(page.inner_text("#cost-fees").replace(" USDT", ""), metrics["fees_paid_usdt"], "fees")
    for slug, key in (("slippage", "slippage_cost_usdt"), ("liquidation-fees", "liquidation_fees_usdt"),
                      ("funding", "funding_paid_usdt")):
        text = page.inner_text(f"#cost-{slug}")
        if key in metrics:
            assert_shown(text.replace(" USDT", ""), metrics[key], key)
        else:  # written by older runs without the cost breakdown
            assert text == "not recorded"
    if "total_costs_usdt" in metrics:
        assert_shown(page.inner_text("#cost-total").replace(" USDT", ""), metrics["total_costs_usdt"], "total")
    assert "ema_cross" in page.inner_text("#detail-config")
    shot(page, "run_detail")


def test_detail_zoom_resamples_and_trade_table_pages(env: dict) -> None:
    page, run_id = env["page"], env["run_id"]
    page.goto(f"{env['url']}/run/{run_id}")
    page.wait_for_function(DETAIL_READY)
    eq = pd.read_parquet(env["results"] / run_id / "equity.parquet")
    lo, hi = eq["ts"].iloc[1000], eq["ts"].iloc[1600]
    page.evaluate("""([a, b]) => Plotly.relayout(document.querySelector('#detail-equity .js-plotly-plot'),
        {'xaxis.range[0]': a, 'xaxis.range[1]': b})""",
                  [lo.strftime("%Y-%m-%d %H:%M:%S"), hi.strftime("%Y-%m-%d %H:%M:%S")])
    # a 600-minute window holds fewer samples than the budget: every 1m sample is shown (+1 either side)
    page.wait_for_function("() => { const g = document.querySelector('#detail-equity .js-plotly-plot');"
                           " return !!g && g._fullData[0].x.length < 700; }")
    y = gd(page, "detail-equity")[0]["y"]
    assert y == pytest.approx(eq["equity"].iloc[999:1602].tolist())
    # server-side sort of the trade table, reached with the keyboard: focus the "Net PnL" header, Enter
    trades = pd.read_parquet(env["results"] / run_id / "trades.parquet")
    page.locator("#detail-trades").scroll_into_view_if_needed()  # AG Grid renders rows once in view
    page.wait_for_selector("#detail-trades .ag-center-cols-container .ag-row[row-index='0']")
    header = page.locator("#detail-trades .ag-header-cell[col-id='pnl']")
    header.focus()
    page.keyboard.press("Enter")  # ascending
    row0 = "#detail-trades .ag-center-cols-container .ag-row[row-index='0']"
    page.wait_for_function("([sel, t]) => (document.querySelector(sel) || {innerText: ''}).innerText.replace('\u2212', '-').includes(t)",
                           arg=[row0, f"{trades['pnl'].min():,.2f}"])
    # a filter typed in the displayed unit: Return > 0.1 means 0.1 %, not 10 %
    from dash_ui.data import ResultsStore
    from dash_ui.pages.detail import trades_block

    run = ResultsStore(env["results"]).get(run_id)
    block = trades_block(run, 0, 10_000, None, {"return_frac": {"filterType": "number", "type": "greaterThan",
                                                                "filter": 0.1}})
    assert block["rowCount"] == int((trades["return_frac"] > 0.001).sum())
    # clicking a trade row zooms the candles to it
    page.click(row0)
    page.wait_for_function("() => (document.querySelector('#detail-tf') || {innerText: ''}).innerText.startsWith('trade #')")
    worst = trades.loc[trades["pnl"].idxmin()]
    rng = page.evaluate("() => document.querySelector('#detail-candles .js-plotly-plot')._fullLayout.xaxis.range")
    lo, hi = pd.Timestamp(rng[0], tz="UTC"), pd.Timestamp(rng[1], tz="UTC")
    assert lo < worst["entry_time"] and worst["exit_time"] < hi


def test_synthetic_run_is_labelled(env: dict) -> None:
    page = env["page"]
    page.goto(f"{env['url']}/run/{env['synthetic']}")
    page.wait_for_function(DETAIL_READY)
    assert page.inner_text("#synthetic-badge") == "SYNTHETIC DATA"
    shot(page, "run_detail_synthetic")


def test_compare_page(env: dict) -> None:
    page = env["page"]
    ids = [env["run_id"], env["synthetic"]]
    page.goto(f"{env['url']}/compare?runs={','.join(ids)}")
    page.wait_for_selector("#compare-table")
    page.wait_for_function("() => { const g = document.querySelector('#compare-equity .js-plotly-plot');"
                           " return !!g && !!g._fullData && g._fullData.length === 2; }")
    traces = gd(page, "compare-equity")
    for i, rid in enumerate(ids):
        m = json.loads((env["results"] / rid / "metrics.json").read_text())
        assert traces[i]["y"][0] == pytest.approx(pd.read_parquet(env["results"] / rid / "equity.parquet")["equity"].iloc[0]
                                                  / m["starting_equity"])
        assert traces[i]["y"][-1] == pytest.approx(m["final_equity"] / m["starting_equity"])
        for key in ("total_return", "sharpe", "max_drawdown", "trades"):
            assert_shown(page.inner_text(f"#cmp-{i}-{key}"), m[key], key)
    # drawdown overlay: each trace's minimum is -max_drawdown (in %)
    page.wait_for_function("() => { const g = document.querySelector('#compare-drawdown .js-plotly-plot');"
                           " return !!g && !!g._fullData && g._fullData.length === 2; }")
    dd = gd(page, "compare-drawdown")
    for i, rid in enumerate(ids):
        m = json.loads((env["results"] / rid / "metrics.json").read_text())
        assert min(dd[i]["y"]) == pytest.approx(-m["max_drawdown"] * 100, abs=1e-9)
    # the parameter diff lists exactly the config keys that differ (computed here from config.json)
    cfgs = [json.loads((env["results"] / rid / "config.json").read_text()) for rid in ids]
    p0 = cfgs[0]["strategies"][0]["params"]
    p1 = cfgs[1]["strategies"][0]["params"]
    for k in sorted(set(p0) | set(p1)):
        key = f"strategies[0].params.{k}"
        if p0.get(k) != p1.get(k):
            assert page.inner_text(f"[id='diff-0-{key}']") == ("(absent)" if k not in p0 else str(p0[k]))
        else:
            assert page.locator(f"[id='diff-0-{key}']").count() == 0, key
    # days since start: both curves start at x = 0 and end at their span in days
    page.click("#compare-axis input[value='days']")
    page.wait_for_function("() => { const g = document.querySelector('#compare-equity .js-plotly-plot');"
                           " return !!g && g._fullData.length === 2 && g._fullData[0].x[0] === 0; }")
    eq = gd(page, "compare-equity")
    for i, rid in enumerate(ids):
        ts = pd.read_parquet(env["results"] / rid / "equity.parquet")["ts"]
        assert eq[i]["x"][0] == 0
        assert eq[i]["x"][-1] == pytest.approx((ts.iloc[-1] - ts.iloc[0]).total_seconds() / 86400)
    shot(page, "compare")


def test_data_explorer(env: dict) -> None:
    page = env["page"]
    page.goto(env["url"] + "/data")
    page.wait_for_selector("#inv-table .ag-row")
    text = page.inner_text("#inv-table")
    for folder in (env["catalog"] / "data" / "bars").iterdir():
        assert folder.name in text
    # one day of hourly candles of BTCUSDT spot, resampled from 1m: 24 candles
    page.fill("#ex-start", "2025-06-03")  # default timeframe 1h
    page.fill("#ex-end", "2025-06-04")
    page.click("#ex-show")
    page.wait_for_function("() => (document.querySelector('#ex-count') || {innerText: ''}).innerText.startsWith('24 candles')")
    highs = page.evaluate("() => Array.from(document.querySelector('#ex-graph .js-plotly-plot')._fullData[0].high)")
    folder = env["catalog"] / "data" / "bars" / "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    bars = pd.concat([pd.read_parquet(f, columns=["ts_init", "high"]) for f in folder.glob("*.parquet")])
    opened = pd.to_datetime(bars["ts_init"].astype("int64"), utc=True) - pd.Timedelta(minutes=1)
    day = bars.assign(opened=opened.to_numpy()).set_index("opened").sort_index().loc["2025-06-03"]
    expected = day["high"].astype(float).resample("1h").max()
    assert highs == pytest.approx(expected.tolist())
    shot(page, "data_explorer")
    # a row click lists the series' gaps
    page.click("#inv-table .ag-center-cols-container .ag-row[row-index='0'] [col-id='identifier']")
    page.wait_for_selector("#inv-gap-text")
    first = grid_rows(page, "inv-table")[0]
    assert page.inner_text("#inv-gap-text").startswith(f"{first['kind']}/{first['identifier']}")


def test_launch_backtest_from_ui(env: dict) -> None:
    page = env["page"]
    page.goto(env["url"] + "/launch")
    page.wait_for_selector("#launch-submit")
    # the stored range of the chosen series, from the catalog's files read here
    folder = env["catalog"] / "data" / "bars" / "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    ts = pd.to_datetime(pd.concat(pd.read_parquet(f, columns=["ts_init"]) for f in folder.glob("*.parquet"))["ts_init"]
                        .astype("int64"), utc=True)
    page.wait_for_selector("#launch-range-list")
    assert (f"BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL: {ts.min():%Y-%m-%d %H:%M} -> {ts.max():%Y-%m-%d %H:%M} UTC "
            f"({len(ts):,} bars") in page.inner_text("#launch-range-list")
    # every label of the form is tied to its control
    untied = page.evaluate("() => [...document.querySelectorAll('label')].filter(l => !l.htmlFor || "
                           "!document.getElementById(l.htmlFor)).map(l => l.innerText)")
    assert untied == []
    # an invalid value is refused with the field named, nothing queued
    page.fill("#launch-name", "bad name/with slash")
    page.click("#launch-submit")
    page.wait_for_selector("#launch-error")
    assert "name" in page.inner_text("#launch-error")
    page.fill("#launch-name", "ui_launch")
    page.fill("#launch-start", "2025-06-04")
    page.fill("#launch-end", "2025-06-06")
    page.fill("[id='{\"name\":\"fast_period\",\"type\":\"launch-param\"}']", "8")
    page.fill("[id='{\"name\":\"slow_period\",\"type\":\"launch-param\"}']", "21")
    page.click("#launch-submit")
    page.wait_for_selector("#launch-queued")
    run_id = page.inner_text("#launch-queued").removeprefix("Queued ").strip()
    page.wait_for_selector("#launch-progress-text")
    shot(page, "launch")
    page.wait_for_selector("#launch-result-link", timeout=180_000)
    assert "done" in page.inner_text("#launch-progress-text")
    folder = env["results"] / run_id
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["strategies"][0]["params"]["fast_period"] == 8 and cfg["start"] == "2025-06-04"
    eq = pd.read_parquet(folder / "equity.parquet")
    assert len(eq) == 2 * 1440
    page.click("#launch-result-link")
    page.wait_for_function(DETAIL_READY)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert_shown(page.inner_text("#metric-total_return"), metrics["total_return"], "total_return")
    # it appears in the runs list
    page.evaluate(NAV, "/")
    page.wait_for_function("(id) => { const t = document.querySelector('#runs-table');"
                           " return !!t && t.innerText.includes(id); }", arg=run_id)


def test_launch_cancel(env: dict) -> None:
    """A running backtest is cancelled from the page (worker killed, no results folder)."""
    page = env["page"]
    page.goto(env["url"] + "/launch")
    page.wait_for_selector("#launch-submit")
    page.fill("#launch-name", "ui_cancel")
    page.click("#launch-submit")  # the whole stored range: long enough to be cancelled while running
    page.wait_for_selector("#launch-queued")
    run_id = page.inner_text("#launch-queued").removeprefix("Queued ").strip()
    page.click("#launch-cancel")
    page.wait_for_function("() => (document.querySelector('#launch-progress-text') || {innerText: ''})"
                           ".innerText.startsWith('cancelled')", timeout=60_000)
    job = json.loads((env["results"] / ".jobs" / f"{run_id}.json").read_text())
    assert job["status"] == "cancelled"
    assert not (env["results"] / run_id).exists()


def _registry_rows(results: Path, run_id: str) -> list[dict]:
    """Three fake-but-consistent registry runs: two ema_cross trials of one sweep (one pointing at the
    real run folder, one at a folder that does not exist) and one standalone mean_reversion run whose
    folder is a nested copy of the real run (``research/t_sweep/<run_id>``, as sweeps store them)."""
    return [
        {"key": "a1" * 32, "type": "ema_cross", "params": {"fast_period": 10, "slow_period": 30}, "sweep": True,
         "metrics": {"sharpe": 1.5, "max_drawdown": 0.10, "total_return": 0.20, "trades": 12},
         "path": results / run_id, "link": run_id, "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"},
        {"key": "b2" * 32, "type": "ema_cross", "params": {"fast_period": 20, "slow_period": 60}, "sweep": True,
         "metrics": {"sharpe": 0.5, "max_drawdown": 0.30, "total_return": -0.05, "trades": 7},
         "path": results / "gone-run", "link": None, "bar_type": "ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"},
        {"key": "c3" * 32, "type": "mean_reversion", "params": {"bb_period": 20}, "sweep": False,
         "metrics": {"sharpe": 2.0, "max_drawdown": 0.05, "total_return": 0.30, "trades": 3},
         "path": results / "research" / "t_sweep" / run_id, "link": f"research/t_sweep/{run_id}",
         "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"},
    ]


def test_research_page_lists_registry_runs(env: dict) -> None:
    import shutil

    from nautilus_app.research.registry import Registry

    page, results = env["page"], env["results"]
    rows = _registry_rows(results, env["run_id"])
    nested = results / "research"
    shutil.copytree(results / env["run_id"], rows[2]["path"])
    reg = Registry.open(f"sqlite:///{results / 'registry.sqlite'}")
    try:
        sweep_id = reg.ensure_sweep("t_sweep", kind="grid", spec={"grid": {"fast_period": [10, 20]}},
                                    objective="sharpe", direction="maximize")
        for i, r in enumerate(rows):
            sid = reg.ensure_strategy(f"s_{r['type']}", r["type"])
            pid, _ = reg.ensure_parameter_set(sid, r["params"])
            reg.prepare_run(run_key=r["key"], kind="trial" if r["sweep"] else "standalone", config={"i": i},
                            config_hash=f"h{i}", code_version="test", components=[(sid, pid, "0" * 64)],
                            sweep_id=sweep_id if r["sweep"] else None, trial_number=i if r["sweep"] else None,
                            bar_types=[r["bar_type"]])
            reg.claim_run(r["key"], "test:1")
            reg.finish_run(r["key"], metrics=r["metrics"], objective=r["metrics"]["sharpe"], results_path=str(r["path"]),
                           iterations=1, orders=1, engine_seconds=0.1, wall_seconds=0.2, peak_rss_mb=None)

        def shown(url: str, expected: list[dict]) -> None:
            page.goto(env["url"] + url)
            page.wait_for_function("(n) => document.querySelector('#research-count')?.innerText === `Runs (${n})`",
                                   arg=len(expected))
            text = "".join(d["run"] for d in grid_rows(page, "research-runs")) if expected else ""
            for r in rows:
                assert (r["key"][:12] in text) == (r in expected), (url, r["key"])

        shown("/research", rows)
        assert "t_sweep" in page.inner_text("#research-sweeps")
        shot(page, "research")
        shown("/research?strategy_type=ema_cross", [r for r in rows if r["type"] == "ema_cross"])
        shown("/research?strategy_type=ema_cross&metric=sharpe&min=1",
              [r for r in rows if r["type"] == "ema_cross" and r["metrics"]["sharpe"] >= 1])
        shown("/research?metric=max_drawdown&max=0.2&metric2=total_return&min2=0.25",
              [r for r in rows if r["metrics"]["max_drawdown"] <= 0.2 and r["metrics"]["total_return"] >= 0.25])
        # typing a threshold in the form filters too
        page.goto(env["url"] + "/research?metric=sharpe")
        page.wait_for_function("() => document.querySelector('#research-count')?.innerText === 'Runs (3)'")
        page.fill("#research-min", "1.6")
        page.press("#research-min", "Enter")
        expected = [r for r in rows if r["metrics"]["sharpe"] >= 1.6]
        page.wait_for_function("(n) => document.querySelector('#research-count')?.innerText === `Runs (${n})`",
                               arg=len(expected))
        # the shown metric values are the registry's; links exist only where the results folder does
        shown("/research", rows)
        page.wait_for_function("() => document.querySelectorAll('#research-runs .ag-center-cols-container .ag-row')"
                               ".length === 3")
        data = {d["run"]: d for d in grid_rows(page, "research-runs")}
        for r in rows:
            d = data[r["key"][:12]]
            for m in ("sharpe", "max_drawdown", "total_return", "trades"):
                assert d[m] == pytest.approx(r["metrics"][m]), (r["key"], m, d)
            assert json.loads(d["params"]) == r["params"]
            row = page.locator(f"#research-runs .ag-center-cols-container .ag-row[row-id='{d['id']}']")
            # percents shown as percents, ratios with 3 decimals
            assert row.locator("[col-id='max_drawdown']").inner_text() == f"{r['metrics']['max_drawdown'] * 100:.2f} %"
            assert row.locator("[col-id='sharpe']").inner_text() == f"{r['metrics']['sharpe']:.3f}"
            links = row.locator("a")
            if r["link"] is None:
                assert links.count() == 0 and "results folder not found" in row.inner_text()
            else:
                assert links.first.get_attribute("href") == f"/run/{r['link']}"
        # ranking across instruments by sharpe: BTCUSDT s_mean_reversion 2.0 (rank 1), s_ema_cross 1.5 (rank 2);
        # ETHUSDT s_ema_cross 0.5 (rank 1) -> mean ranks 1.0 and 1.5
        page.wait_for_function("() => document.querySelectorAll('#research-ranking .ag-center-cols-container .ag-row')"
                               ".length === 2")
        ranking = grid_rows(page, "research-ranking")
        assert [x["strategy"] for x in ranking] == ["s_mean_reversion", "s_ema_cross"]
        assert [x["mean_rank"] for x in ranking] == [1.0, 1.5]
        assert [x["instruments"] for x in ranking] == [1, 2] and [x["wins"] for x in ranking] == [1, 1]
        assert [x["mean"] for x in ranking] == pytest.approx([2.0, (1.5 + 0.5) / 2])
        assert ranking[1]["worst"] == pytest.approx(0.5)
        # parameter heatmap: the ema_cross sweep's two parameters
        page.goto(env["url"] + "/research?strategy_type=ema_cross")
        page.wait_for_function("() => { const g = document.querySelector('#research-param-heatmap .js-plotly-plot');"
                               " return !!g && !!g._fullData && g._fullData.length === 1; }")
        z = page.evaluate("() => document.querySelector('#research-param-heatmap .js-plotly-plot')._fullData[0].z")
        # x = fast_period [10, 20], y = slow_period [30, 60]; cell = best sharpe
        blank = [v is None or v != v for v in (z[0][1], z[1][0])]  # no run there: NaN (or null)
        assert z[0][0] == pytest.approx(1.5) and z[1][1] == pytest.approx(0.5) and blank == [True, True]
        # return vs drawdown scatter: one point per run, in percent
        sc = gd(page, "research-scatter")
        pts = sorted((x, y) for t in sc for x, y in zip(t["x"], t["y"], strict=True))
        exp = sorted((r["metrics"]["max_drawdown"] * 100, r["metrics"]["total_return"] * 100) for r in rows
                     if r["type"] == "ema_cross")
        assert [v for p in pts for v in p] == pytest.approx([v for p in exp for v in p])
        shot(page, "research_analysis")
        page.goto(env["url"] + "/research")
        page.wait_for_selector("#research-runs .ag-row a")
        page.locator(f"#research-runs .ag-row a[href='/run/{rows[2]['link']}']").first.click()
        page.wait_for_function(DETAIL_READY)
        assert page.inner_text("#detail-title").startswith(rows[2]["link"])
    finally:
        reg.close()
        shutil.rmtree(nested, ignore_errors=True)


def _server_errors(page) -> list:
    errors: list = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    page.on("pageerror", lambda e: errors.append(f"page error {e}"))
    return errors


def test_every_page_with_every_run(env: dict) -> None:
    """Every run (a 1m EMA cross, a synthetic run, a perpetual run with stops, sizing and refused entries,
    and the two reference configs on a few real days) opens on the detail page with its KPIs equal to
    metrics.json; the comparison of all of them, the runs list, research, data and launch pages load
    without a server error."""
    page = env["context"].new_page()
    page.set_default_timeout(60_000)
    errors = _server_errors(page)
    ids = [env["run_id"], env["synthetic"], env["risk_run"], env["demo_spot"], env["demo_perp"]]
    for rid in ids:
        metrics = json.loads((env["results"] / rid / "metrics.json").read_text())
        page.goto(f"{env['url']}/run/{rid}")
        page.wait_for_function(DETAIL_READY)
        for key in ("total_return", "sharpe", "max_drawdown", "trades", "exposure"):
            assert_shown(page.inner_text(f"#kpi-{key}"), metrics[key], key)
        # every metric row is there, nested ones included
        for key, value in metrics.items():
            if not isinstance(value, list):
                page.inner_text(f"#metric-{key}")
        shot(page, f"run_{rid.split('-')[0]}")
        assert page.title().startswith(rid), page.title()
    page.goto(f"{env['url']}/compare?runs={','.join(ids)}")
    page.wait_for_function("(n) => { const g = document.querySelector('#compare-equity .js-plotly-plot');"
                           " return !!g && !!g._fullData && g._fullData.length >= n; }", arg=len(ids))
    for path in ("/", "/research", "/data", "/launch"):
        page.goto(env["url"] + path)
        page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    assert not errors, errors
    page.close()


def test_risk_run_detail_and_comparison(env: dict) -> None:
    """The risk table's nested counts (refusals / reductions per reason, events per action) are shown as
    counts, the perpetual run gets its leverage / margin / funding chart, and a comparison including it
    shows them side by side."""
    page, rid = env["page"], env["risk_run"]
    folder = env["results"] / rid
    m = json.loads((folder / "metrics.json").read_text())
    assert m["risk_refusals_total"] > 0 and m["risk_refusals"]  # the run really refused entries
    page.goto(f"{env['url']}/run/{rid}")
    page.wait_for_function(DETAIL_READY)
    for key in ("risk_refusals", "risk_reductions", "risk_events"):
        expected = ", ".join(f"{k}: {v:,}" for k, v in m[key].items()) or "none"
        assert page.inner_text(f"#metric-{key}") == expected
    assert page.inner_text("#metric-risk_refusals_total") == f"{m['risk_refusals_total']:,}"
    page.wait_for_function("() => { const g = document.querySelector('#detail-margin .js-plotly-plot');"
                           " return !!g && !!g._fullData && g._fullData.length === 3; }")
    margin = gd(page, "detail-margin")
    funding = pd.read_parquet(folder / "funding.parquet")
    assert margin[2]["y"][-1] == pytest.approx(-funding["amount"].sum())
    # leverage: |position| x close / equity at a bar inside a trade, computed here from the files
    trades = pd.read_parquet(folder / "trades.parquet")
    eq = pd.read_parquet(folder / "equity.parquet").set_index("ts")["equity"]
    t0 = trades.iloc[0]
    at = eq.index[(eq.index >= t0["entry_time"]) & (eq.index < t0["exit_time"])][0]
    bars = pd.concat(pd.read_parquet(f, columns=["ts_init", "close"]) for f in
                     (env["catalog_more"] / "data" / "bars" / "ETHUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL").glob("*.parquet"))
    close = bars.assign(ts=pd.to_datetime(bars["ts_init"].astype("int64"), utc=True)).set_index("ts")["close"].astype(float)
    expected_lev = t0["quantity"] * close.loc[:at].iloc[-1] / eq.loc[at]
    xs = [pd.Timestamp(x, tz="UTC") for x in margin[0]["x"]]
    if at in xs:  # the chart may thin the series; compare where the sample is drawn
        assert margin[0]["y"][xs.index(at)] == pytest.approx(expected_lev, rel=1e-9)
    # per-strategy cumulative PnL ends at the strategy's net PnL
    pnl = gd(page, "detail-strategy-pnl")
    assert pnl[0]["y"][-1] == pytest.approx(m["by_strategy"][0]["net_pnl_usdt"] + m["by_strategy"][0]["borrow_interest_usdt"])
    shot(page, "run_detail_risk")
    ids = [env["run_id"], rid]
    page.goto(f"{env['url']}/compare?runs={','.join(ids)}")
    page.wait_for_selector("#compare-table")
    assert page.inner_text("#cmp-1-risk_refusals") == ", ".join(f"{k}: {v:,}" for k, v in m["risk_refusals"].items())
    assert page.inner_text("#cmp-0-risk_refusals") == "n/a"
    shot(page, "compare_risk")


def test_recorded_indicators_on_the_traded_timeframe(env: dict) -> None:
    """demo_perp's mean reversion trades 15-minute bars built by Nautilus from 1-minute bars: its recorded
    trend SMA and Bollinger middle equal a pandas SMA of 15-minute closes resampled here from the catalog's
    1-minute bars, stamped at the 15-minute closes; the candle chart draws them and an RSI panel."""
    from nautilus_app.config import strategy_parameters

    rid = env["demo_perp"]
    folder = env["results"] / rid
    ind = pd.read_parquet(folder / "indicators.parquet")
    cfg = json.loads((folder / "plot_config.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    mr = next(i for i, s in enumerate(config["strategies"]) if s["name"] == "mean_reversion"
              and s["params"]["instrument_id"].startswith("BTC"))
    params = {**strategy_parameters("mean_reversion"), **config["strategies"][mr]["params"]}
    sid = next(k for k, v in cfg.items() if k.startswith("MeanReversion") and v["bar_type"].startswith("BTC"))
    rows = ind[ind["strategy_id"] == sid].set_index("ts")
    bars = pd.concat(pd.read_parquet(f, columns=["ts_init", "close"]) for f in
                     (env["catalog_more"] / "data" / "bars" / "BTCUSDT-PERP.BINANCE_USDM-1-MINUTE-LAST-EXTERNAL").glob("*.parquet"))
    close = bars.assign(ts=pd.to_datetime(bars["ts_init"].astype("int64"), utc=True)).set_index("ts")["close"].astype(float)
    close = close[(close.index > pd.Timestamp("2023-07-20", tz="UTC")) & (close.index <= pd.Timestamp("2023-07-26", tz="UTC"))]
    c15 = close.resample("15min", label="right", closed="right").last().dropna()
    sma = c15.rolling(int(params["trend_ma_period"])).mean()
    mid = c15.rolling(int(params["bb_period"])).mean()
    got = rows.set_index(pd.to_datetime(rows.index, utc=True))
    assert len(got) == len(c15) and (got.index == c15.index).all()
    assert got[f"{sid}:trend SMA"].to_numpy() == pytest.approx(sma.to_numpy(), rel=1e-9, nan_ok=True)
    assert got[f"{sid}:BB middle"].to_numpy() == pytest.approx(mid.to_numpy(), rel=1e-9, nan_ok=True)
    page = env["page"]
    page.goto(f"{env['url']}/run/{rid}")
    page.wait_for_function(DETAIL_READY)
    names = [t["name"] for t in gd(page, "detail-candles")]
    assert any(n.startswith("RSI") for n in names) and any(n.startswith("trend SMA") for n in names)
