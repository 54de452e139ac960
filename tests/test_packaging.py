"""Packaging (issue 22): default locations from a user directory or the working directory
(core/paths.py), ``--userdir``, ``--version``, and the message naming the extra to install when an
optional dependency is missing."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from core import paths
from core.instruments import instruments_file_path
from nautilus_app.cli import EXTRA_OF_MODULE, main

ENV_VARS = ("NAUTILUS_USERDIR", "CATALOG_PATH", "RESULTS_DIR", "NAUTILUS_STRATEGY_DIR", "SHARED_DATA",
            "NAUTILUS_INSTRUMENTS")


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ENV_VARS:  # set first so the teardown restores the original (the CLI's --userdir exports one)
        monkeypatch.setenv(var, "x")
        monkeypatch.delenv(var)
    return monkeypatch


def test_checkout_defaults_unchanged(clean_env: pytest.MonkeyPatch) -> None:
    assert paths.is_source_checkout()
    assert paths.user_dir() is None
    assert paths.default_catalog_path() == paths.REPO_ROOT / "catalog" / "store"
    assert paths.results_dir() == paths.REPO_ROOT / "results"
    assert paths.user_strategy_dir() == paths.REPO_ROOT / "user_strategies"
    assert paths.shared_data_dir() == (paths.REPO_ROOT.parent / "shared" / "data").resolve()
    assert paths.base_dir() == paths.REPO_ROOT
    assert instruments_file_path() == paths.REPO_ROOT / "catalog" / "store" / "instruments.toml"


def test_userdir_then_env_vars_win(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("NAUTILUS_USERDIR", str(tmp_path))
    assert paths.default_catalog_path() == tmp_path / "catalog"
    assert paths.results_dir() == tmp_path / "results"
    assert paths.user_strategy_dir() == tmp_path / "user_strategies"
    assert paths.shared_data_dir() == tmp_path / "data"
    assert paths.base_dir() == tmp_path
    # instruments.toml: the user directory's if it has one, else beside the catalog
    assert instruments_file_path() == tmp_path / "catalog" / "instruments.toml"
    (tmp_path / "instruments.toml").write_text("")
    assert instruments_file_path() == tmp_path / "instruments.toml"
    assert instruments_file_path(explicit="x.toml") == Path("x.toml")
    # environment variables still win over the user directory
    clean_env.setenv("CATALOG_PATH", str(tmp_path / "elsewhere"))
    clean_env.setenv("RESULTS_DIR", str(tmp_path / "res"))
    clean_env.setenv("NAUTILUS_INSTRUMENTS", str(tmp_path / "i.toml"))
    assert paths.default_catalog_path() == tmp_path / "elsewhere"
    assert paths.results_dir() == tmp_path / "res"
    assert instruments_file_path() == tmp_path / "i.toml"


def test_installed_package_uses_working_directory(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setattr(paths, "is_source_checkout", lambda: False)
    clean_env.chdir(tmp_path)
    assert paths.user_dir() == tmp_path
    assert paths.default_catalog_path() == tmp_path / "catalog"
    assert paths.results_dir() == tmp_path / "results"
    assert paths.user_strategy_dir() == tmp_path / "user_strategies"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    version = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = capsys.readouterr().out
    assert out.startswith(f"nautilus-app {version} (nautilus_trader 2.0.0rc7, Python 3.13")


def test_userdir_option(clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "user_strategies").mkdir()
    plain = (Path(__file__).parent / "fixtures" / "plain_ema.py").read_text()
    (tmp_path / "user_strategies" / "userdir_probe.py").write_text(plain.replace("PlainEMACross", "UserdirProbe"))
    assert main(["list-strategies", "--userdir", str(tmp_path)]) == 0
    assert "UserdirProbe  [user:" in capsys.readouterr().out
    assert paths.user_dir() == tmp_path  # exported for worker processes
    assert main(["--userdir", str(tmp_path / "missing"), "list-strategies"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ccxt", None)  # import ccxt -> ModuleNotFoundError(name="ccxt")
    code = main(["fetch-instruments", "--catalog", "/nonexistent-catalog", "--markets", "spot"])
    assert code == 1
    assert 'pip install "nautilus-app[download]"' in capsys.readouterr().err


def test_extras_cover_optional_modules() -> None:
    extras = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRA_OF_MODULE.values()) <= set(extras)
    assert {"dash", "research", "ray", "postgres", "paper", "ethereal", "test", "all"} <= set(extras)
