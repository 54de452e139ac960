"""Time-to-usable of the run detail page of the REAL demo runs (configs/demo_spot.toml and
configs/demo_perp.toml: four strategies each, 1h/15m bars built from Binance 1m bars), in Chromium.

The two runs are made once (``run_backtest`` on the catalog named by the configs, ``catalog/store``;
``make demo-data`` fills it) into ``$DASH_BENCH_DIR/results`` (default ``/tmp/dash_bench_demo``) and
reused while their config files are unchanged. For each run (headless system Chromium via Playwright):

* ``first_paint_ms``: from the runs list to the detail page by client-side navigation (the way a user opens
  a run) until the first paint is usable (``nautilus_app.testkit.dash_testing.FIRST_PAINT``: KPI cards, equity and drawdown
  drawn with data, the metrics table and the first trade rows), median of 5 (caches warm);
* ``in_app_ms``: the same navigation until everything is drawn (``nautilus_app.testkit.dash_testing.DETAIL_READY``: every
  graph with data, incl. the candles and the figures requested after the first paint), median of 5;
* ``first_in_app_ms``: the same for the first open of the run after the server started (the overview
  sidecars built by the warm-up thread, the run's files not yet in memory);
* ``cold_ms``: a new server process + a fresh browser profile, navigation start -> usable (plotly.js and
  Dash's bundles downloaded and parsed), median of 3;
* ``reload_ms``: the detail page reloaded (browser cache warm), median of 3.

Prints one JSON line. Timings depend on machine load (``load_avg_1m`` at start and end are included).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from nautilus_app.testkit.dash_testing import DETAIL_READY, FIRST_PAINT, browser, free_port  # noqa: E402

NAV = "(p) => { window.history.pushState({}, '', p); window.dispatchEvent(new PopStateEvent('popstate')); }"
CONFIGS = ("demo_spot", "demo_perp")


def demo_runs(results: Path) -> dict[str, str]:
    """``{name: run_id}`` of the demo runs in ``results``, made when absent or when the config changed."""
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import load_config

    out = {}
    for name in CONFIGS:
        path = REPO / "configs" / f"{name}.toml"
        tag = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        marker = results / f".{name}.{tag}"
        if marker.exists() and (results / marker.read_text() / "metrics.json").exists():
            out[name] = marker.read_text()
            continue
        cfg = load_config(path)
        t0 = time.perf_counter()
        rid = run_backtest(cfg, results_root=results, progress=False).run_id
        print(f"{name}: ran {rid} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        marker.write_text(rid)
        out[name] = rid
    return out


def start_server(results: Path, catalog: Path, warm_runs: int = 3) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "run_dash.py"), "--port", str(port),
                             "--results-dir", str(results), "--catalog", str(catalog), "--warm-runs", str(warm_runs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            urllib.request.urlopen(f"{url}/api/health", timeout=2).read()
            break
        except OSError:
            time.sleep(0.05)
    return proc, url


def usable(page, timeout: int = 120_000) -> float:
    page.wait_for_function(DETAIL_READY, timeout=timeout, polling=20)
    return page.evaluate("() => performance.now()")


def in_app(page, run_id: str) -> tuple[float, float]:
    """Runs list -> detail page (client-side navigation): ms until the first paint is usable, ms until
    everything is drawn."""
    page.evaluate(NAV, "/")
    page.wait_for_selector(f"#runs-table .ag-row[row-id='{run_id}']", timeout=60_000)
    t = page.evaluate("() => performance.now()")
    page.evaluate(NAV, f"/run/{run_id}")
    page.wait_for_function(FIRST_PAINT, timeout=120_000, polling=20)
    first = page.evaluate("() => performance.now()")
    return first - t, usable(page) - t


def main() -> int:
    from nautilus_app.config import load_config

    base = Path(os.environ.get("DASH_BENCH_DIR", "/tmp/dash_bench_demo"))
    results = base / "results"
    results.mkdir(parents=True, exist_ok=True)
    catalog = load_config(REPO / "configs" / "demo_spot.toml").catalog_path()
    if not (Path(catalog) / "data").exists():
        print(f"catalog {catalog} is empty: run `make demo-data` first", file=sys.stderr)
        return 2
    runs = demo_runs(results)
    out: dict = {"bench": "dash_demo_detail", "synthetic": False, "load_avg_1m_start": round(os.getloadavg()[0], 2),
                 "runs": {}}
    for name, rid in runs.items():
        m = json.loads((results / rid / "metrics.json").read_text())
        out["runs"][name] = {"run_id": rid, "trades": m["trades"], "strategies": len(m.get("by_strategy") or []),
                             "start": m["start"], "end": m["end"]}
    # first open after a server start (warm-up thread built the sidecars), then warm in-app opens
    proc, url = start_server(results, Path(catalog))
    try:
        time.sleep(8)  # let the warm-up thread build the overviews of the newest runs
        with tempfile.TemporaryDirectory() as prof, browser(Path(prof)) as ctx:
            page = ctx.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#runs-table .ag-row", timeout=60_000)
            for name, rid in runs.items():
                r = out["runs"][name]
                r["first_open_first_paint_ms"], r["first_in_app_ms"] = map(round, in_app(page, rid))
                navs = [in_app(page, rid) for _ in range(5)]
                r["first_paint_ms"] = round(statistics.median(f for f, _ in navs))
                r["first_paint_all_ms"] = [round(f) for f, _ in navs]
                r["in_app_ms"] = round(statistics.median(a for _, a in navs))
                r["in_app_all_ms"] = [round(a) for _, a in navs]
                reloads = []
                for _ in range(3):
                    page.goto(f"{url}/run/{rid}")
                    reloads.append(usable(page))
                r["reload_ms"] = round(statistics.median(reloads))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for name, rid in runs.items():
        colds = []
        for _ in range(3):
            proc, url = start_server(results, Path(catalog))
            try:
                with tempfile.TemporaryDirectory() as prof, browser(Path(prof)) as ctx:
                    page = ctx.new_page()
                    page.goto(f"{url}/run/{rid}")
                    colds.append(usable(page))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        out["runs"][name]["cold_ms"] = round(statistics.median(colds))
        out["runs"][name]["cold_all_ms"] = [round(x) for x in colds]
    out["goal_in_app_ms"] = 1500
    out["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    out["cpus"] = os.cpu_count()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
