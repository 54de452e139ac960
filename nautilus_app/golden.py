"""Reference runs for the golden regression (tests/test_golden.py, scripts/update_golden.py).

A reference run is a shipped config (``configs/<name>.toml``) run on a catalog holding exactly the
demo data (``make demo-data``), so its fills and metrics are reproducible anywhere the shared
data is.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from core import paths
from nautilus_app.backtest import run_backtest
from nautilus_app.config import load_config
from nautilus_app.results.reader import open_results

GOLDEN_DIR = paths.REPO_ROOT / "tests" / "golden"
REFERENCE_CONFIGS = ("demo_spot", "demo_perp")


def import_reference_data(catalog: Path, store: str = "nautilus") -> None:
    """Import the demo data set (the same as ``make demo-data``) into ``catalog``; ``store``:
    where the 1m klines go (``"nautilus"`` catalog or ``"compact"`` store)."""
    from catalog.binance_vision import import_binance_vision

    base = str(paths.shared_data_dir() / "binance-vision")
    import_binance_vision(catalog, base_url=base, market="spot", symbols=("BTCUSDT", "ETHUSDT"),
                          interval="1m", start="2025-05-20", end="2025-08-17", kinds=("bars",), store=store)
    import_binance_vision(catalog, base_url=base, market="um", symbols=("BTCUSDT", "ETHUSDT"),
                          interval="1m", start="2023-07-01", end="2023-08-31", kinds=("bars", "funding"),
                          store=store)
    import_binance_vision(catalog, base_url=base, market="um", symbols=("BTCUSDT", "ETHUSDT"),
                          interval="1h", start="2023-07-01", end="2023-08-31", kinds=("mark",))


def run_reference(name: str, catalog: Path, results_root: Path) -> tuple[str, dict]:
    """Run ``configs/<name>.toml`` against ``catalog``; returns (results digest, metrics)."""
    cfg = msgspec.structs.replace(load_config(paths.REPO_ROOT / "configs" / f"{name}.toml"), catalog=str(catalog))
    outcome = run_backtest(cfg, results_root=results_root, run_id=name, progress=False)
    run_info = open_results(outcome.results_path).json("run.json", required=True)
    return run_info["results_digest"], outcome.metrics
