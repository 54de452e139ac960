"""Sweep scaling: the same grid sweep with 1 and 2 local worker processes and on a local Ray (2 CPUs).

Data: one month of real BTCUSDT spot 1m bars (2025-06, 43,200 bars) imported from the Binance Vision
mirror (``$BINANCE_VISION_URL``, default ``../shared/data/binance-vision``) into a temporary catalog.
Sweep: ``ema_cross`` over 4 fast x 2 slow periods = 8 trials, every trial a full Nautilus backtest in
its own worker process, results written to a fresh SQLite registry per configuration
(``keep_results = "light"``).

Prints ONE JSON line:

* ``trials``, ``bars_per_trial``;
* ``wall_s_1_worker``, ``wall_s_2_workers``, ``wall_s_ray_2cpu`` (sweep wall seconds, driver included;
  Ray's start-up is reported separately as ``ray_init_s`` and not included);
* ``speedup_2_workers`` = wall 1 / wall 2 (goal >= 1.8 on 2 cores), ``speedup_ray`` = wall 1 / wall Ray;
* ``peak_rss_mb_per_worker`` (max over trials of the worker's ``ru_maxrss``), ``trial_wall_s_median``
  (worker process, 1-worker run), ``engine_s_median`` (inside ``BacktestNode.run``),
  ``engine_bars_per_s`` = bars / engine seconds, ``core_s_per_trial`` = wall 1 / trials;
* ``cpu_count`` of the machine; ``loadavg_1m_before`` / ``loadavg_1m_after`` (the 1-minute load average:
  other work on the machine makes the speed-ups meaningless, so check it is below ~0.5 before);
* ``worker_cpu_s_1_worker`` / ``worker_cpu_s_2_workers``: user+sys CPU seconds of the worker processes
  (``RUSAGE_CHILDREN``), the cost of the sweep independent of contention.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from catalog.binance_vision import import_binance_vision
from core import paths
from nautilus_app.config import parse_config
from nautilus_app.research.execution import ProcessExecutor, RayExecutor
from nautilus_app.research.registry import Registry
from nautilus_app.research.spec import parse_sweep
from nautilus_app.research.sweep import run_sweep

BAR = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"


def main() -> int:
    mirror = os.environ.get("BINANCE_VISION_URL") or str(paths.shared_data_dir() / "binance-vision")
    tmp = Path(tempfile.mkdtemp(prefix="sweep_scaling_"))
    cat = tmp / "catalog"
    import_binance_vision(cat, base_url=mirror, market="spot", symbols=("BTCUSDT",), interval="1m",
                          start="2025-06-01", end="2025-06-30", kinds=("bars",))
    base = parse_config({
        "name": "bench", "catalog": str(cat), "start": "2025-06-01", "end": "2025-07-01", "bar_types": [BAR],
        "venues": [{"name": "BINANCE", "account_type": "CASH", "starting_balances": ["100000 USDT"]}],
        "strategies": [{"name": "ema_cross", "params": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": BAR}}],
    })

    def sweep(name: str):
        return parse_sweep({"name": name, "base_config": "-", "method": "grid", "objective": "sharpe",
                            "keep_results": "light", "results_root": str(tmp / "results"),
                            "params": {"fast_period": {"values": [5, 10, 15, 20]}, "slow_period": {"values": [60, 120]}}},
                           base=base)

    out: dict[str, object] = {"cpu_count": os.cpu_count(), "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    stats = {}
    for label, make in (("1_worker", lambda: ProcessExecutor(1)), ("2_workers", lambda: ProcessExecutor(2)),
                        ("ray_2cpu", lambda: RayExecutor(2))):
        reg = Registry.open(f"sqlite:///{tmp / f'registry_{label}.sqlite'}")
        t_init = time.perf_counter()
        ex = make()
        if label.startswith("ray"):
            out["ray_init_s"] = round(time.perf_counter() - t_init, 2)
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            t0 = time.perf_counter()
            res = run_sweep(sweep(f"scaling-{label}"), registry=reg, executor=ex, progress=False)
            wall = time.perf_counter() - t0
        finally:
            ex.shutdown()
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if not label.startswith("ray"):
            out[f"worker_cpu_s_{label}"] = round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2)
        if res.failed or res.executed != 8:
            print(f"sweep {label}: {res.failed} failed, {res.executed} executed", file=sys.stderr)
            return 1
        runs = reg.query_runs(sweep=res.name)
        stats[label] = runs
        out[f"wall_s_{label}"] = round(wall, 2)
        reg.close()
    one = stats["1_worker"]
    out["trials"] = len(one)
    out["bars_per_trial"] = int(one["iterations"].iloc[0])
    out["speedup_2_workers"] = round(out["wall_s_1_worker"] / out["wall_s_2_workers"], 3)  # type: ignore[operator]
    out["speedup_ray"] = round(out["wall_s_1_worker"] / out["wall_s_ray_2cpu"], 3)  # type: ignore[operator]
    out["peak_rss_mb_per_worker"] = round(max(float(s["peak_rss_mb"].max()) for s in stats.values()), 1)
    out["trial_wall_s_median"] = round(statistics.median(one["wall_seconds"]), 3)
    out["engine_s_median"] = round(statistics.median(one["engine_seconds"]), 3)
    out["engine_bars_per_s"] = round(out["bars_per_trial"] / out["engine_s_median"])  # type: ignore[operator]
    out["core_s_per_trial"] = round(out["wall_s_1_worker"] / out["trials"], 3)  # type: ignore[operator]
    out["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    order = ["trials", "bars_per_trial", "wall_s_1_worker", "wall_s_2_workers", "wall_s_ray_2cpu", "speedup_2_workers",
             "speedup_ray", "peak_rss_mb_per_worker", "trial_wall_s_median", "engine_s_median", "engine_bars_per_s",
             "core_s_per_trial", "ray_init_s", "worker_cpu_s_1_worker", "worker_cpu_s_2_workers", "cpu_count",
             "loadavg_1m_before", "loadavg_1m_after"]
    print(json.dumps({k: out[k] for k in order}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
