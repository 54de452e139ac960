"""Default locations: where the catalog, results, user strategies and instruments.toml live.

Each location is resolved in this order; the first that applies wins:

1. the command's own option (``--catalog``, ``--results-dir``, ``--strategy-dir``, ``--instruments``);
2. its environment variable (table below);
3. the **user directory** given by ``--userdir DIR`` (any command; the CLI exports it as ``$NAUTILUS_USERDIR``
   so worker processes see it too) or ``$NAUTILUS_USERDIR``: ``DIR/catalog``, ``DIR/results``,
   ``DIR/user_strategies``, ``DIR/instruments.toml``, ``DIR/data`` (FreqTrade's ``user_data`` idea);
4. in a **source checkout** (this package imported from a clone, e.g. after ``make`` / ``pip install -e .``):
   the checkout's folders, as before (``catalog/store``, ``results``, ``user_strategies``,
   ``../shared/data``; instruments.toml beside the catalog);
5. otherwise (an **installed** package, ``pip install nautilus-app``): the current working directory is the
   user directory (``./catalog``, ``./results``, ``./user_strategies``, ``./instruments.toml``, ``./data``).

| variable | default (checkout / user directory) | what |
|---|---|---|
| ``NAUTILUS_USERDIR`` | (none) / the working directory | the user directory itself (``--userdir``) |
| ``SHARED_DATA`` | ``<repo>/../shared/data`` / ``<userdir>/data`` | read-only real market data (Binance Vision mirror, freqtrade files) |
| ``BINANCE_VISION_URL`` | ``https://data.binance.vision`` | HTTP base URL or local folder with the Binance Vision layout |
| ``CATALOG_PATH`` | ``<repo>/catalog/store`` / ``<userdir>/catalog`` | the Nautilus ``ParquetDataCatalog`` root (never committed) |
| ``RESULTS_DIR`` | ``<repo>/results`` / ``<userdir>/results`` | one folder per backtest run |
| ``NAUTILUS_STRATEGY_DIR`` | ``<repo>/user_strategies`` / ``<userdir>/user_strategies`` | the user's own strategy files |
| ``NAUTILUS_INSTRUMENTS`` | ``<catalog>/instruments.toml`` / ``<userdir>/instruments.toml`` if it exists, else ``<catalog>/instruments.toml`` | instrument overrides (:mod:`core.instruments`) |

Relative ``catalog`` paths inside run configs are taken from :func:`base_dir` (the checkout's root, or the
user directory).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]  # core/paths.py -> the checkout (or site-packages)
USERDIR_ENV = "NAUTILUS_USERDIR"


@lru_cache(maxsize=1)
def is_source_checkout() -> bool:
    """True if this package runs from a source checkout (``<repo>/pyproject.toml`` names nautilus-app), False
    for an installed copy in site-packages."""
    try:
        text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return False
    return 'name = "nautilus-app"' in text and (REPO_ROOT / "nautilus_app").is_dir()


def user_dir() -> Path | None:
    """The user directory in force (``--userdir`` / ``$NAUTILUS_USERDIR``; in an installed package the working
    directory), or None in a source checkout without one (the checkout's own folders are used)."""
    env = os.environ.get(USERDIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return None if is_source_checkout() else Path.cwd().resolve()


def base_dir() -> Path:
    """Folder that relative paths in run configs are taken from: the user directory, else the checkout root."""
    return user_dir() or REPO_ROOT


def _default(env: str, checkout: Path, in_userdir: str) -> Path:
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser().resolve()
    ud = user_dir()
    return (ud / in_userdir if ud is not None else checkout).resolve()


def shared_data_dir() -> Path:
    """Root of the read-only real data set (``$SHARED_DATA``, default ``../shared/data`` or ``<userdir>/data``)."""
    return _default("SHARED_DATA", REPO_ROOT.parent / "shared" / "data", "data")


def binance_vision_url() -> str:
    """Binance Vision base: an ``http(s)://`` URL or a local folder (``$BINANCE_VISION_URL``)."""
    return os.environ.get("BINANCE_VISION_URL", "https://data.binance.vision")


def default_catalog_path() -> Path:
    """Root of the Parquet data catalog (``$CATALOG_PATH``, default ``catalog/store`` or ``<userdir>/catalog``)."""
    return _default("CATALOG_PATH", REPO_ROOT / "catalog" / "store", "catalog")


def results_dir() -> Path:
    """Folder holding ``<run_id>/`` result folders (``$RESULTS_DIR``, default ``results`` or ``<userdir>/results``)."""
    return _default("RESULTS_DIR", REPO_ROOT / "results", "results")


def user_strategy_dir() -> Path:
    """Folder of the user's own strategy files (``$NAUTILUS_STRATEGY_DIR``, default ``user_strategies`` in the
    checkout or the user directory).

    Every Nautilus ``Strategy`` class in a ``*.py`` file there is runnable by its class name
    (:mod:`nautilus_app.strategy_loader`, docs/strategies.md).
    """
    return _default("NAUTILUS_STRATEGY_DIR", REPO_ROOT / "user_strategies", "user_strategies")


def user_instruments_file() -> Path | None:
    """``<userdir>/instruments.toml`` if a user directory is in force and the file exists, else None (then
    instruments.toml is looked for beside the catalog: :func:`core.instruments.instruments_file_path`)."""
    ud = user_dir()
    if ud is None:
        return None
    f = ud / "instruments.toml"
    return f if f.is_file() else None
