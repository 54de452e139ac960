"""Default locations, each overridable by an environment variable.

| variable | default | what |
|---|---|---|
| ``SHARED_DATA`` | ``<repo>/../shared/data`` | read-only real market data (Binance Vision mirror, freqtrade files) |
| ``BINANCE_VISION_URL`` | ``https://data.binance.vision`` | HTTP base URL or local folder with the Binance Vision layout |
| ``CATALOG_PATH`` | ``<repo>/catalog/store`` | the Nautilus ``ParquetDataCatalog`` root (never committed) |
| ``RESULTS_DIR`` | ``<repo>/results`` | one folder per backtest run |
| ``NAUTILUS_STRATEGY_DIR`` | ``<repo>/user_strategies`` | the user's own strategy files (``--strategy-dir``) |
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """Root of the read-only real data set (``$SHARED_DATA``, default ``../shared/data``)."""
    return Path(os.environ.get("SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


def binance_vision_url() -> str:
    """Binance Vision base: an ``http(s)://`` URL or a local folder (``$BINANCE_VISION_URL``)."""
    return os.environ.get("BINANCE_VISION_URL", "https://data.binance.vision")


def default_catalog_path() -> Path:
    """Root of the Parquet data catalog (``$CATALOG_PATH``, default ``catalog/store``)."""
    return Path(os.environ.get("CATALOG_PATH", REPO_ROOT / "catalog" / "store")).resolve()


def results_dir() -> Path:
    """Folder holding ``<run_id>/`` result folders (``$RESULTS_DIR``, default ``results``)."""
    return Path(os.environ.get("RESULTS_DIR", REPO_ROOT / "results")).resolve()


def user_strategy_dir() -> Path:
    """Folder of the user's own strategy files (``$NAUTILUS_STRATEGY_DIR``, default ``user_strategies``).

    Every Nautilus ``Strategy`` class in a ``*.py`` file there is runnable by its class name
    (:mod:`nautilus_app.strategy_loader`, docs/strategies.md).
    """
    return Path(os.environ.get("NAUTILUS_STRATEGY_DIR", REPO_ROOT / "user_strategies")).resolve()
