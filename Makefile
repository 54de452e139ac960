# Two entry points (see README): `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export SHARED_DATA ?= $(abspath ../shared/data)
export BINANCE_VISION_URL ?= $(SHARED_DATA)/binance-vision
export CATALOG_PATH ?= $(abspath catalog/store)

.PHONY: install demo demo-data test lint bench clean

# requirements.lock pins every package of the `all` extras (transitive included) with hashes; nothing else is
# resolved at install time (--no-deps), then the project itself goes in editable without its dependencies.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $$(scripts/find_python.sh) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Byte-compiled once here as a regular (non-editable) install would be: with PYTHONDONTWRITEBYTECODE set (as on
# our CI machines) every command would otherwise compile the package's sources again (~0.2 s per process).
# compileall only rewrites what changed since the last run.
install: $(STAMP)
	@$(PY) -m compileall -q -j 0 nautilus_app catalog strategies adapters dash_ui core

# Regenerate requirements.lock from pyproject.toml's `all` extra with uv's resolver (PyPI; hashes; environment
# markers; one universal resolution for Python 3.13, installed and tested on Linux x86_64). Pins already in
# the lock are kept where they still satisfy pyproject.toml (so versions only move when asked: add
# --upgrade-package NAME via LOCK_ARGS). uv runs from its own throwaway venv under build/.
LOCK_TOOLS ?= build/lock-tools
LOCK_INDEX ?= https://pypi.org/simple
UV_VERSION ?= 0.13.9
.PHONY: lock
lock:
	@test -x $(LOCK_TOOLS)/bin/uv || { $$(scripts/find_python.sh) -m venv $(LOCK_TOOLS) \
		&& $(LOCK_TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra all --universal --python-version 3.13 \
		--generate-hashes --index-url $(LOCK_INDEX) --custom-compile-command "make lock" \
		--output-file requirements.lock $(LOCK_ARGS)

# Real Binance data from the mirror in $(SHARED_DATA): BTC+ETH spot 1m May-Aug 2025, BTC+ETH USDT-M July-Aug 2023.
demo-data: install
	$(PY) -m nautilus_app import-binance-vision --market spot --symbols BTCUSDT ETHUSDT --interval 1m \
		--start 2025-05-20 --end 2025-08-17 --kinds klines
	$(PY) -m nautilus_app import-binance-vision --market um --symbols BTCUSDT ETHUSDT --interval 1m \
		--start 2023-07-01 --end 2023-08-31 --kinds klines fundingRate
	$(PY) -m nautilus_app import-binance-vision --market um --symbols BTCUSDT ETHUSDT --interval 1h \
		--start 2023-07-01 --end 2023-08-31 --kinds markPriceKlines

# The 61 real USDT-M perpetuals of July-August 2023 (18 with 1m bars) from the freqtrade files: configs/universe_perps.toml
universe-data: install
	$(PY) -m nautilus_app import-freqtrade --datadir $(SHARED_DATA)/freqtrade/binance/futures/window-2023-07 \
		--trading-mode futures --timeframes 1m

.PHONY: universe-data universe
universe: universe-data
	$(PY) -m nautilus_app backtest configs/universe_perps.toml

# The specification's setup (trading-bot-plan.md): trend following on 1h + mean reversion on 15m (built by
# Nautilus from the stored 1m bars), BTCUSDT + ETHUSDT, 10,000 USDT, realistic costs; then the same on perps.
demo: demo-data
	$(PY) -m nautilus_app backtest configs/demo_spot.toml
	$(PY) -m nautilus_app backtest configs/demo_perp.toml

# ruff; deptry: every imported third-party module is declared in pyproject.toml (core or an extra);
# lint-imports: the one-way layers and no import cycles ([tool.importlinter] in pyproject.toml, README "Architecture")
lint: install
	$(PY) -m ruff check .
	$(PY) -m deptry .
	$(VENV)/bin/lint-imports

# Needs PostgreSQL (127.0.0.1:5432, user postgres, database test), Redis (127.0.0.1:6379) and Debian's Chromium
# (README, Tests): checked first with a message naming what is missing. PYTEST_ARGS for a subset, e.g. -k config.
test: install lint
	$(PY) scripts/check_test_services.py
	$(PY) -m pytest $(PYTEST_ARGS)

bench: demo-data
	$(PY) scripts/bench/backtest_throughput.py

clean:
	rm -rf $(VENV) results catalog/store .pytest_cache .ruff_cache build/lock-tools

# Results app + JSON API on http://127.0.0.1:8050 (docs/dash.md); HOST/PORT override.
.PHONY: dash bench-dash
dash: install
	$(PY) -m nautilus_app dash --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8050)

# Detail-page time-to-usable of a SYNTHETIC 5-year 1m run in headless Chromium (one JSON line).
bench-dash: install
	$(PY) scripts/bench/dash_detail_page.py

.PHONY: bench-sweep
# Sweep scaling (1 vs 2 worker processes vs local Ray) on one month of real 1m bars; prints one JSON line.
bench-sweep: install
	$(PY) scripts/bench/sweep_scaling.py

.PHONY: bench-universe ray-cluster-test
# Universe runs on the 18 real 1m perpetuals (ema_cross, their common ~15.5 days): per_symbol with 1 and
# 2 workers and shared; prints one JSON line (wall, bars/s, speed-up, peak RSS).
bench-universe: install
	$(PY) scripts/bench/universe.py

# A real two-node Ray cluster on this machine (ray start --head + a second node, 1 CPU each, PostgreSQL
# registry): a per_symbol universe on it equals the process pool and ran on both nodes; stops the cluster.
ray-cluster-test: install
	$(PY) -m pytest tests/test_ray_cluster.py -v
