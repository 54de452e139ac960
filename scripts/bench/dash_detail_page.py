"""Time-to-usable of the run detail page for a SYNTHETIC 5-year 1-minute run (~2.6M bars), in Chromium.

Generates (once, cached under ``$DASH_BENCH_DIR``, default ``/tmp/dash_bench``) a synthetic results
folder and catalog with :mod:`dash_ui.synthetic` (seeded random walk + vectorised EMA crossover,
labelled SYNTHETIC; not market data), serves the app in this process, and drives the system Chromium
(Playwright, headless). "Usable" = every graph on the page has its data drawn, the metrics table and
the first trade rows are shown (``dash_ui.testing.DETAIL_READY``). Measured:

* ``cold_ms``: fresh browser profile and a freshly started server (nothing cached: Parquet read,
  catalog bars read, downsampling, plotly.js download and parse), navigation start -> usable;
* ``warm_reload_ms``: the same page reloaded (browser and server caches warm), median of 3;
* ``in_app_ms``: from the runs list to the detail page by client-side navigation, median of 3;
* ``zoom_ms``: a zoom to one week on the equity chart until the re-downsampled trace (1-minute
  detail) is drawn, median of 3.

Prints one JSON line. Timings depend on machine load (``load_avg_1m`` is included).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dash_ui import synthetic  # noqa: E402
from dash_ui.testing import DETAIL_READY, browser, serve_app  # noqa: E402

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
    with serve_app(results, catalog) as (url, _app), tempfile.TemporaryDirectory() as prof, \
            browser(Path(prof)) as ctx:
        page = ctx.new_page()
        page.goto(f"{url}/run/{run.name}")
        page.wait_for_function(DETAIL_READY, timeout=120_000, polling=20)
        out["cold_ms"] = round(page.evaluate("() => performance.now()"))
        reloads, navs, zooms = [], [], []
        for _ in range(3):
            page.reload()
            page.wait_for_function(DETAIL_READY, timeout=60_000, polling=20)
            reloads.append(page.evaluate("() => performance.now()"))
            page.evaluate(NAV, "/")
            page.wait_for_selector("#runs-table td", timeout=30_000)
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
