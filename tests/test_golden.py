"""Golden regression of the reference runs (the demo configs on the real data).

Each reference run pins a sha256 over every fill and every metric (``run.json: results_digest``)
in ``tests/golden/<name>.json``. Any change to results, intended or not, fails here with the metrics
that moved. After an intended change, run ``python scripts/update_golden.py`` and explain the new
numbers in the commit message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nautilus_app.golden import GOLDEN_DIR, REFERENCE_CONFIGS, run_reference


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nautilus_app.golden import import_reference_data

    root = tmp_path_factory.mktemp("golden_catalog")
    import_reference_data(root)
    return root


@pytest.mark.parametrize("name", REFERENCE_CONFIGS)
def test_reference_run_matches_golden(name: str, catalog: Path, tmp_path: Path) -> None:
    golden = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    digest, metrics = run_reference(name, catalog, tmp_path)
    # several strategies and instruments in one account: the rebuilt equity curve ends at the
    # account's final balance (every position is closed at the last bar)
    equity = pd.read_parquet(tmp_path / name / "equity.parquet")["equity"]
    account = pd.read_parquet(tmp_path / name / "account.parquet")
    usdt = account[account["currency"] == "USDT"]
    assert equity.iloc[-1] == pytest.approx(float(usdt["total"].iloc[-1]), abs=1e-6)
    assert (account.groupby("currency")["total"].last().drop("USDT", errors="ignore") == 0).all()
    if digest != golden["results_digest"]:
        moved = {k: (golden["metrics"].get(k), v) for k, v in metrics.items() if golden["metrics"].get(k) != v}
        pytest.fail(f"{name}: results changed (golden -> now): {json.dumps(moved, indent=1, default=str)}")


@pytest.fixture(scope="module")
def compact_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nautilus_app.golden import import_reference_data

    root = tmp_path_factory.mktemp("golden_compact")
    import_reference_data(root, store="compact")
    return root


@pytest.mark.parametrize("name", REFERENCE_CONFIGS)
def test_reference_run_on_the_compact_store_gives_the_same_results(name: str, compact_catalog: Path,
                                                                   tmp_path: Path) -> None:
    """Bars read from the compact store (no Nautilus bar files at all): same fills and metrics."""
    from catalog.reader import data_folder

    assert not any((compact_catalog / "data" / "bars").glob("*/*.parquet"))
    assert any((compact_catalog / "compact" / "bars").glob("*/*.parquet"))
    assert data_folder(compact_catalog, "funding", "ETHUSDT-PERP.BINANCE_USDM").is_dir()  # funding: catalog
    golden = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    digest, metrics = run_reference(name, compact_catalog, tmp_path)
    run_info = json.loads((tmp_path / name / "run.json").read_text())
    assert set(run_info["bar_stores"].values()) == {"compact"}
    if digest != golden["results_digest"]:
        moved = {k: (golden["metrics"].get(k), v) for k, v in metrics.items() if golden["metrics"].get(k) != v}
        pytest.fail(f"{name} on the compact store: results differ (golden -> now): {json.dumps(moved, default=str)}")
