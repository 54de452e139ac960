"""Sweep / walk-forward config: TOML -> frozen msgspec structs, validated with errors naming the key.

One TOML file describes one study over **one** ``[[strategies]]`` entry of a base run config (a
normal ``configs/*.toml`` backtest config). Full schema with every key, unit and default in
``docs/research.md``; ``configs/sweeps/ema_cross.toml`` is a working example. Like
:mod:`nautilus_app.config`, loading never guesses: unknown keys, wrong types, impossible ranges,
parameters the strategy does not have and unparseable constraints raise :class:`~nautilus_app.config.ConfigError`
naming the file and the key path (``params.fast_period.step``), the value and what was expected.

Parameter spaces (``[params.<name>]``), one of:

* ``values = [5, 10, 20]``: a finite list (grid points; random/optuna pick among them);
* ``low``, ``high`` (inclusive), optional ``step`` and ``log``: a numeric range. Integer when ``low``,
  ``high`` (and ``step``) are TOML integers, else float. A grid needs a ``step`` (or ``values``).
"""

from __future__ import annotations

import math
import operator
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from nautilus_app.config import BacktestConfig, ConfigError, _readable, load_config

#: Metrics a sweep can optimise (numeric keys of ``nautilus_app.metrics.compute_metrics``).
OBJECTIVES = (
    "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar", "max_drawdown",
    "max_drawdown_duration_s", "trades", "wins", "losses", "win_rate", "profit_factor", "gross_profit_usdt",
    "gross_loss_usdt", "expectancy_usdt", "expectancy_return", "avg_win_usdt", "avg_loss_usdt",
    "largest_win_usdt", "largest_loss_usdt", "avg_trade_duration_s", "exposure", "fees_paid_usdt",
    "funding_paid_usdt", "final_equity",
)

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*([A-Za-z_]\w*|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
_NAME = re.compile(r"[A-Za-z0-9_.\-][A-Za-z0-9_.\-/]{0,199}")
_CMP = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


class _Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ParamSpec(_Frozen, kw_only=True):
    """Search space of one strategy parameter.

    Attributes:
        values: Finite list of values (any JSON scalars).
        low / high: Inclusive numeric range (int range if both are integers and ``step`` is an integer).
        step: Grid / quantisation step of the range (> 0).
        log: Sample the range log-uniformly (random, optuna); needs ``low > 0`` and no ``step`` for floats.
    """

    values: list[Any] | None = None
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False

    @property
    def is_int(self) -> bool:
        """True for an integer range."""
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)) and (
            self.step is None or isinstance(self.step, int))

    def grid(self) -> list[Any]:
        """Every grid value: ``values`` as given, or ``low, low+step, ..., <= high``."""
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None and self.step is not None
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        if self.is_int:
            return [int(self.low + i * self.step) for i in range(n)]
        return [round(self.low + i * self.step, 12) for i in range(n)]


class WalkForwardSpec(_Frozen, kw_only=True):
    """Walk-forward layout (all lengths in days, UTC).

    Attributes:
        start / end: Study period, ISO dates; ``end`` exclusive. Default the sweep's / base config's range.
        train_days: In-sample (optimisation) window length.
        test_days: Out-of-sample window length.
        step_days: Shift between consecutive windows, >= ``test_days`` (out-of-sample windows must not
            overlap to be stitched); default ``test_days``.
        anchored: Train windows all start at ``start`` (expanding) instead of rolling.
        holdout_days: Final period kept out of every window and evaluated once at the end with the
            parameters chosen in the last window (0 = none).
    """

    start: str | None = None
    end: str | None = None
    train_days: Annotated[float, msgspec.Meta(gt=0, description="days")]
    test_days: Annotated[float, msgspec.Meta(gt=0, description="days")]
    step_days: float | None = None
    anchored: bool = False
    holdout_days: Annotated[float, msgspec.Meta(ge=0, description="days")] = 0.0


class SweepSpec(_Frozen, kw_only=True):
    """One sweep (or walk-forward study).

    Attributes:
        name: Unique study name in the registry; re-running the same name resumes it.
        base_config: Path of the backtest TOML (relative to the sweep file's folder).
        strategy: Index of the ``[[strategies]]`` entry of the base config whose parameters are swept.
        strategy_name: Registry name of that strategy (default: its type, e.g. ``"ema_cross"``).
        method: ``grid``, ``random`` or ``optuna`` (TPE).
        n_trials: Number of parameter points for random / optuna (required there; grid takes all points).
        seed: Random seed of random / optuna sampling.
        objective: Metric to optimise (see :data:`OBJECTIVES`); ``direction`` ``maximize`` / ``minimize``.
        params: Search space per strategy parameter.
        constraints: ``"fast_period < slow_period"`` style conditions (parameter or number on the right);
            points violating one are never run.
        shards: Bar types to run every point on (one run per point and shard; the objective is the
            mean over shards); default the swept strategy's own bar type, or, when the base config has a
            ``[universe]`` table, the bar types of the universe's symbols (resolved against the catalog,
            so ``symbols = "*"`` works). Each shard runs with only its own bar type loaded and
            ``instrument_id`` / ``bar_type`` of the strategy replaced (universe templates: filled in as
            :func:`nautilus_app.universe.expand_universe` does).
        start / end: Override the base config's date range (ISO dates, ``end`` exclusive).
        executor: ``process`` (local process pool, one process per run) or ``ray``.
        workers: Parallel runs (process pool size; Ray: concurrent tasks and local ``num_cpus``).
        ray_address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); default a local Ray.
        registry: Registry URL; default ``$NAUTILUS_REGISTRY_URL`` or ``results/registry.sqlite``.
        results_root: Folder for the run folders; default ``<results dir>/research/<name>``.
        max_attempts: Attempts per run when workers crash (a run that *fails* (strategy error,
            missing data) is not retried).
        lease_seconds: A ``running`` run whose worker stopped heart-beating this long ago is retried.
        keep_results: ``all`` keeps every run folder; ``light`` deletes the bulky files (tearsheet,
            orders, fills, positions, account) after the metrics are stored and keeps equity, trades,
            funding, metrics and run/config files.
        walk_forward: Walk-forward layout (``nautilus-app walk-forward``); ignored by a plain sweep.
    """

    name: str
    base_config: str
    strategy: int = 0
    strategy_name: str | None = None
    method: Literal["grid", "random", "optuna"] = "grid"
    n_trials: int | None = None
    seed: int = 0
    objective: str = "sharpe"
    direction: Literal["maximize", "minimize"] = "maximize"
    params: dict[str, ParamSpec]
    constraints: list[str] = []
    shards: list[str] = []
    start: str | None = None
    end: str | None = None
    executor: Literal["process", "ray"] = "process"
    workers: Annotated[int, msgspec.Meta(ge=1)] = 2
    ray_address: str | None = None
    registry: str | None = None
    results_root: str | None = None
    max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 3
    lease_seconds: Annotated[float, msgspec.Meta(gt=0, description="seconds")] = 600.0
    keep_results: Literal["all", "light"] = "all"
    walk_forward: WalkForwardSpec | None = None


class Sweep(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded sweep: its spec, the validated base run config and where it came from.

    ``universe_shards``: with a ``[universe]`` base config and no explicit ``shards``, the bar types of
    the universe's symbols (:func:`universe_shards`), resolved when the sweep is loaded.
    """

    spec: SweepSpec
    base: BacktestConfig
    source: str
    universe_shards: list[str] | None = None

    @property
    def strategy_type(self) -> str:
        """Type of the swept strategy: its name (built-in or user) or its ``strategy_path``."""
        return self.base.strategies[self.spec.strategy].label()

    @property
    def strategy_name(self) -> str:
        """Registry name of the swept strategy."""
        return self.spec.strategy_name or self.strategy_type

    def shards(self) -> list[str]:
        """Bar types the points run on."""
        if self.spec.shards:
            return list(self.spec.shards)
        if self.universe_shards is not None:
            return list(self.universe_shards)
        return [str(self.base.strategies[self.spec.strategy].params["bar_type"])]

    def with_universe_range(self, start: str | None, end: str | None) -> Sweep:
        """This sweep with the universe's symbols resolved again over ``[start, end)`` (walk-forward
        resolves them over its whole study period); unchanged without a universe or with explicit shards.

        Raises:
            ConfigError: the universe matches no symbol in that range (naming ``universe.symbols``).
        """
        if self.base.universe is None or self.spec.shards:
            return self
        base = msgspec.structs.replace(self.base, start=start or self.base.start, end=end or self.base.end)
        return msgspec.structs.replace(self, universe_shards=universe_shards(base, source=self._base_source()))

    def _base_source(self) -> str:
        return f"{self.source}: base_config {self.spec.base_config}"

    def satisfies(self, point: dict[str, Any]) -> bool:
        """True if ``point`` (merged over the base params) meets every constraint."""
        merged = {**self.base.strategies[self.spec.strategy].params, **point}
        return all(_check_constraint(c, merged) for c in self.spec.constraints)


def universe_shards(base: BacktestConfig, *, source: str = "<config>") -> list[str]:
    """Bar types of a universe config's symbols in its date range, in symbol order
    (:func:`nautilus_app.universe.resolve_symbols`: ``"*"`` = every catalog symbol of the market and interval
    with bars in the range, ``min_coverage`` applied).

    Raises:
        ConfigError: a listed symbol without bars, or a universe matching nothing (naming ``universe.symbols``).
    """
    from core.instruments import bar_type
    from nautilus_app.universe import resolve_symbols

    u = base.universe
    assert u is not None
    return [str(bar_type(sym, u.market, u.interval)) for sym in resolve_symbols(base, source=source)]


def _check_constraint(text: str, values: dict[str, Any]) -> bool:
    m = _CONSTRAINT.match(text)
    assert m is not None  # validated at load time
    left, op, right = m.groups()
    rv = values[right] if right in values else float(right)
    return bool(_CMP[op](values[left], rv))


def load_sweep(path: str | Path, **overrides: Any) -> Sweep:
    """Read and validate a sweep TOML; ``overrides`` replace top-level keys (e.g. ``executor="ray"``).

    Raises:
        ConfigError: unreadable file, TOML error, unknown key, wrong type, bad range, unknown parameter,
            bad constraint or objective, or an invalid base config (its own message). Names file and key.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read sweep config: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return parse_sweep(raw, source=str(path), base_dir=path.parent)


def parse_sweep(raw: dict[str, Any], *, source: str = "<sweep>", base_dir: Path | None = None,
                base: BacktestConfig | None = None) -> Sweep:
    """Validate a parsed sweep mapping (same rules as :func:`load_sweep`). ``base`` skips loading ``base_config``."""
    try:
        spec = msgspec.convert(raw, SweepSpec)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {_readable(str(e))}") from e

    def fail(key: str, value: Any, expected: str) -> None:
        raise ConfigError(f"{source}: key {key} = {value!r}: expected {expected}")

    if base is None:
        base_path = Path(spec.base_config)
        if not base_path.is_absolute():
            cand = (base_dir or Path.cwd()) / base_path
            from core.paths import base_dir

            base_path = cand if cand.exists() else base_dir() / base_path
        if not base_path.exists():
            fail("base_config", spec.base_config, "a backtest config file (relative to the sweep file or the repo)")
        base = load_config(base_path)
    if not _NAME.fullmatch(spec.name) or ".." in spec.name:
        fail("name", spec.name, "a non-empty name of letters, digits and _ . - / (no '..', no leading '/')")
    if not 0 <= spec.strategy < len(base.strategies):
        fail("strategy", spec.strategy, f"an index of the base config's [[strategies]] (0..{len(base.strategies) - 1})")
    stype = base.strategies[spec.strategy].label()
    from nautilus_app.strategy_loader import strategy_fields

    allowed = strategy_fields(stype)  # name -> StrategyParameter (type, default, declared range)
    if not spec.params:
        fail("params", {}, "at least one [params.<name>] table")
    for pname, ps in spec.params.items():
        key = f"params.{pname}"
        if pname in ("instrument_id", "bar_type", "strategy_id", "order_id_tag"):
            fail(key, pname, "a strategy parameter (instruments are swept with `shards`)")
        if pname not in allowed:
            fail(key, pname, f"a parameter of {stype!r}: {sorted(k for k in allowed if k not in ('instrument_id', 'bar_type'))}")
        if ps.values is not None:
            if ps.low is not None or ps.high is not None or ps.step is not None:
                fail(key, raw["params"][pname], "either `values` or `low`/`high`[/`step`], not both")
            if not ps.values:
                fail(f"{key}.values", ps.values, "a non-empty list")
            outside = [v for v in ps.values if not allowed[pname].within(v)]
            if outside:
                fail(f"{key}.values", outside, f"values in the range of {pname}: {allowed[pname].range_text()}")
            continue
        if ps.low is None or ps.high is None:
            fail(key, raw["params"][pname], "`values = [...]` or both `low` and `high`")
        if not (math.isfinite(ps.low) and math.isfinite(ps.high)) or ps.low > ps.high:
            fail(f"{key}.high", ps.high, f"a number >= low ({ps.low})")
        if ps.step is not None and not ps.step > 0:
            fail(f"{key}.step", ps.step, "a number > 0")
        for end in ("low", "high"):  # the strategy's declared range (strategies/params.py), e.g. periods >= 1
            if not allowed[pname].within(getattr(ps, end)):
                fail(f"{key}.{end}", getattr(ps, end), f"a value in the range of {pname}: {allowed[pname].range_text()}")
        if ps.log and ps.low <= 0:
            fail(f"{key}.low", ps.low, "a number > 0 (log scale)")
        if ps.log and ps.step is not None and not ps.is_int:
            fail(f"{key}.log", True, "no `step` with a log-scaled float range (optuna does not support it)")
        if spec.method == "grid" and ps.step is None:
            fail(f"{key}.step", None, "a step (a grid needs finitely many points) or use `values`")
    for i, c in enumerate(spec.constraints):
        m = _CONSTRAINT.match(c)
        if not m:
            fail(f"constraints[{i}]", c, "'<param> <op> <param|number>' with op one of < <= > >= == !=")
        for side in (m.group(1), m.group(3)):
            if side[0].isalpha() or side[0] == "_":
                if side not in allowed:
                    fail(f"constraints[{i}]", c, f"parameters of {stype!r} (unknown {side!r})")
    if spec.method in ("random", "optuna") and (spec.n_trials is None or spec.n_trials < 1):
        fail("n_trials", spec.n_trials, f"a number of trials >= 1 (required with method = {spec.method!r})")
    if spec.objective not in OBJECTIVES:
        fail("objective", spec.objective, f"one of {list(OBJECTIVES)}")
    venues = {v.name for v in base.venues}
    from nautilus_trader.model import BarType

    for i, bt in enumerate(spec.shards):
        try:
            venue = str(BarType.from_str(bt).instrument_id.venue)
        except Exception:  # noqa: BLE001 - nautilus raises several types for bad strings
            fail(f"shards[{i}]", bt, "a Nautilus bar type like 'ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL'")
        if venue not in venues:
            fail(f"shards[{i}]", bt, f"an instrument on a venue of the base config {sorted(venues)}")
    for key in ("start", "end"):
        val = getattr(spec, key)
        if val is not None:
            import pandas as pd

            try:
                pd.Timestamp(val, tz="UTC")
            except (ValueError, TypeError):
                fail(key, val, "an ISO-8601 date or datetime in UTC")
    wf = spec.walk_forward
    if wf is not None:  # train_days, test_days > 0 and holdout_days >= 0: msgspec constraints
        if wf.step_days is not None and not wf.step_days >= wf.test_days:
            fail("walk_forward.step_days", wf.step_days,
                 f"a number of days >= test_days ({wf.test_days}): out-of-sample windows must not overlap")
    if spec.start or spec.end:
        base = msgspec.structs.replace(base, start=spec.start or base.start, end=spec.end or base.end)
    sweep = Sweep(spec=spec, base=base, source=source)
    if base.universe is not None and not spec.shards:
        sweep = msgspec.structs.replace(sweep, universe_shards=universe_shards(base, source=sweep._base_source()))
    return sweep


def space_size(spec: SweepSpec) -> int | None:
    """Number of grid points before constraints (None if a dimension is continuous)."""
    n = 1
    for ps in spec.params.values():
        if ps.values is None and ps.step is None:
            return None
        n *= len(ps.grid())
    return n
