"""Time-to-usable of the run detail page for a SYNTHETIC 5-year 1-minute run (~2.6M bars), in Chromium.

Generates (once, cached under ``$DASH_BENCH_DIR``, default ``/tmp/dash_bench``) a synthetic results
folder and catalog with :mod:`nautilus_app.testkit.synthetic` (seeded random walk + vectorised EMA crossover,
labelled SYNTHETIC; not market data), serves the app in this process, and drives the system Chromium
(Playwright, headless). "Usable" = every graph on the page has its data drawn, the metrics table and
the first trade rows are shown (``nautilus_app.testkit.dash_testing.DETAIL_READY``). Measured:

* ``cold_ms``: fresh browser profile and a freshly started server (no in-memory cache; plotly.js
  downloaded and parsed by a browser with an empty cache), with the run's overview sidecar already
  persisted (``results/.cache/dash/<run_id>/``, written at the first open of the run or by the
  server's warm-up thread), navigation start -> usable, median of 3;
* ``cold_unbuilt_ms``: the same with the sidecar deleted and the warm-up off, so the request reads the
  2.6M equity rows and catalog bars and builds the sidecar (the very first open of a new run before
  the warm-up reached it), median of 3;
* ``warm_reload_ms``: the same page reloaded (browser and server caches warm), median of 3;
* ``in_app_ms``: from the runs list to the detail page by client-side navigation, median of 3;
* ``zoom_ms``: a zoom to one week on the equity chart until the re-downsampled trace (1-minute
  detail) is drawn, median of 3.

Prints one JSON line. Timings depend on machine load (``load_avg_1m`` is included).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from nautilus_app.testkit import synthetic  # noqa: E402
from nautilus_app.testkit.dash_testing import DETAIL_READY, browser, free_port, serve_app  # noqa: E402

NAV = "(p) => { window.history.pushState({}, '', p); window.dispatchEvent(new PopStateEvent('popstate')); }"


def main() -> int:
    base_dir = Path(os.environ.get("DASH_BENCH_DIR", "/tmp/dash_bench"))
    results, catalog = base_dir / "results", base_dir / "catalog"
    run_dirs = [p for p in results.glob("SYNTHETIC-*") if (p / "metrics.json").exists()] if results.exists() else []
    t0 = time.perf_counter()
    run = run_dirs[0] if run_dirs else synthetic.make_synthetic_run(results, catalog)
    gen_s = time.perf_counter() - t0
    info = json.loads((run / "run.json").read_text())
    out: dict = {"bench": "dash_detail_page", "synthetic": True, "bars": info["bars"],
                 "trades": json.loads((run / "metrics.json").read_text())["trades"],
                 "generate_seconds": round(gen_s, 1)}
    def cold_open(warm_runs: int, warm_wait_s: float = 0.0) -> float:
        """A new server process + a fresh browser profile: navigation start -> usable (ms)."""
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "run_dash.py"), "--port", str(port),
                                 "--results-dir", str(results), "--catalog", str(catalog),
                                 "--warm-runs", str(warm_runs)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"{url}/api/health", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.05)
            time.sleep(warm_wait_s)
            with tempfile.TemporaryDirectory() as prof, browser(Path(prof)) as ctx:
                page = ctx.new_page()
                page.goto(f"{url}/run/{run.name}")
                page.wait_for_function(DETAIL_READY, timeout=120_000, polling=20)
                return page.evaluate("() => performance.now()")
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    cache = results / ".cache" / "dash" / run.name
    unbuilt = []
    for _ in range(3):  # overview sidecar absent: the first request reads 2.6M equity rows + catalog bars
        shutil.rmtree(cache, ignore_errors=True)
        unbuilt.append(cold_open(warm_runs=0))
    out["cold_unbuilt_ms"] = round(statistics.median(unbuilt))
    out["cold_unbuilt_all_ms"] = [round(x) for x in unbuilt]
    colds = [cold_open(warm_runs=3) for _ in range(3)]  # sidecar persisted earlier
    out["cold_ms"] = round(statistics.median(colds))
    out["cold_all_ms"] = [round(x) for x in colds]
    with serve_app(results, catalog) as (url, _app), tempfile.TemporaryDirectory() as prof, \
            browser(Path(prof)) as ctx:
        page = ctx.new_page()
        page.goto(f"{url}/run/{run.name}")
        page.wait_for_function(DETAIL_READY, timeout=120_000, polling=20)
        reloads, navs, zooms = [], [], []
        for _ in range(3):
            page.reload()
            page.wait_for_function(DETAIL_READY, timeout=60_000, polling=20)
            reloads.append(page.evaluate("() => performance.now()"))
            page.evaluate(NAV, "/")
            page.wait_for_selector("#runs-table .ag-row", timeout=30_000)
            t = page.evaluate("() => performance.now()")
            page.evaluate(NAV, f"/run/{run.name}")
            page.wait_for_function(DETAIL_READY, timeout=60_000, polling=20)
            navs.append(page.evaluate("() => performance.now()") - t)
            # zoom the equity chart to one week in the middle of the run
            t = page.evaluate("""() => { const g = document.querySelector('#detail-equity .js-plotly-plot');
                const x = g.data[0].x; const mid = x[Math.floor(x.length/2)];
                const a = new Date(mid + 'Z'); const b = new Date(a.getTime() + 7*86400e3);
                window.__zoomFrom = g.data[0].x.length; const t = performance.now();
                Plotly.relayout(g, {'xaxis.range[0]': a.toISOString().slice(0,19), 'xaxis.range[1]': b.toISOString().slice(0,19)});
                return t; }""")
            page.wait_for_function("""() => { const g = document.querySelector('#detail-equity .js-plotly-plot');
                const x = g && g.data && g.data[0] ? g.data[0].x : [];
                return x.length > 0 && (new Date(x[x.length-1]+'Z') - new Date(x[0]+'Z')) < 8*86400e3; }""",
                                   timeout=60_000, polling=20)
            zooms.append(page.evaluate("() => performance.now()") - t)
        out["warm_reload_ms"] = round(statistics.median(reloads))
        out["in_app_ms"] = round(statistics.median(navs))
        out["zoom_ms"] = round(statistics.median(zooms))
    out["goal_ms"] = 2000
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    out["cpus"] = os.cpu_count()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
