"""Universes: which symbols a ``[universe]`` run config means, and its expansion into an ordinary config.

A run config with a ``[universe]`` table (:class:`nautilus_app.config.UniverseConfig`) names a market,
an interval and symbols (a list or ``"*"``); its ``[[strategies]]`` are templates. :func:`resolve_symbols`
finds the symbols in the catalog; :func:`expand_universe` turns the config into an ordinary one (one bar
type per symbol, one strategy entry per template and symbol, order-id tags ``000``, ``001`` ... in
template-major order), or, with ``only=SYMBOL``, into that symbol's part with the same tags. Running
universes (``shared`` / ``per_symbol`` modes, the combined results folder) is
:mod:`nautilus_app.research.universe_run`; sweeps use :func:`resolve_symbols` and
:func:`fill_placeholders` for their shards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from nautilus_app.config import BacktestConfig, ConfigError, parse_config


def _catalog_bar_types(root: Path) -> list[str]:
    """Bar types stored in the catalog (Nautilus's and the compact store)."""
    out = set()
    for folder in (root / "data" / "bars", root / "compact" / "bars"):
        if folder.is_dir():
            out.update(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return sorted(out)


def resolve_symbols(cfg: BacktestConfig, *, source: str = "<config>") -> list[str]:
    """The universe's symbols with bars in the run's range, in order.

    ``"*"``: every catalog symbol of the market and interval, kept if its bars cover at least
    ``min_coverage`` of ``[start, end)`` (coverage = bars in range / expected bars of the range, the
    range defaulting to the data's own span). Listed symbols must all have bars in the range.

    Raises:
        ConfigError: a listed symbol without bars in the catalog or the range (naming it), or a universe
            that matches nothing.
    """
    from catalog.reader import row_stats
    from core.instruments import bar_type, interval_ns

    u = cfg.universe
    assert u is not None
    root = cfg.catalog_path()
    lo, hi = cfg.bar_window_ns()
    step = interval_ns(u.interval)
    if u.symbols == "*":
        suffix = "." + str(bar_type("X", u.market, u.interval)).split(".", 1)[1]
        marker = "-PERP" if u.market == "um" else ""
        candidates = []
        for bt in _catalog_bar_types(root):
            if not bt.endswith(suffix):
                continue
            sym = bt[: -len(suffix)]
            if marker and not sym.endswith(marker):
                continue
            if not marker and sym.endswith("-PERP"):
                continue
            candidates.append(sym.removesuffix(marker))
    else:
        candidates = [s.upper() for s in u.symbols]
    kept, missing = [], []
    for sym in candidates:
        bt = str(bar_type(sym, u.market, u.interval))
        n, first, last = row_stats(root, "bars", bt, lo, hi)
        if n == 0:
            missing.append(sym)
            continue
        if u.symbols == "*" and u.min_coverage > 0:
            span_lo = cfg.start_ns() if cfg.start is not None else first - step  # type: ignore[operator]
            span_hi = cfg.end_ns() if cfg.end is not None else last  # type: ignore[operator]
            expected = max(1, (span_hi - span_lo) // step)
            if n / expected < u.min_coverage:
                continue
        kept.append(sym)
    if missing and u.symbols != "*":
        raise ConfigError(f"{source}: key universe.symbols: {missing} have no {u.interval} bars "
                          f"({u.market}) in catalog {root} between {cfg.start or 'the start'} and "
                          f"{cfg.end or 'the end'}: import them first (import-freqtrade, import-binance-vision, "
                          "import-csv)")
    if not kept:
        raise ConfigError(f"{source}: key universe.symbols = {u.symbols!r}: matches no {u.market} symbol with "
                          f"{u.interval} bars in catalog {root} between {cfg.start or 'the start'} and "
                          f"{cfg.end or 'the end'}" + (f" with coverage >= {u.min_coverage}" if u.min_coverage else ""))
    return kept


def fill_placeholders(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, list):
        return [fill_placeholders(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: fill_placeholders(v, subs) for k, v in value.items()}
    return value


def expand_universe(cfg: BacktestConfig, *, symbols: list[str] | None = None, source: str = "<config>",
                    only: str | None = None) -> BacktestConfig:
    """The ordinary run config of a universe config (see the module docstring).

    Args:
        cfg: A config with ``universe`` set.
        symbols: The symbols (default :func:`resolve_symbols`).
        only: Keep just this symbol's bar type and strategies (a ``per_symbol`` run), with the order-id
            tags it has in the full expansion, so strategy ids match the shared run.

    Raises:
        ConfigError: as :func:`resolve_symbols`, or the expanded config is invalid (messages name
            ``strategies[i]`` of the expanded config and the symbol).
    """
    from core.instruments import bar_type, instrument_id
    from nautilus_app.strategy_loader import StrategyLoadError

    u = cfg.universe
    assert u is not None
    syms = symbols if symbols is not None else resolve_symbols(cfg, source=source)
    raw = msgspec.to_builtins(cfg)
    raw.pop("universe", None)
    strategies = []
    tag = 0
    for t_index, tmpl in enumerate(cfg.strategies):
        try:
            fields = tmpl.resolve().parameters()
        except StrategyLoadError as e:
            raise ConfigError(f"{source}: key strategies[{t_index}] = {tmpl.label()!r}: {e}") from e
        for sym in syms:
            iid, bt = str(instrument_id(sym, u.market)), str(bar_type(sym, u.market, u.interval))
            params = fill_placeholders(dict(tmpl.params), {"symbol": sym, "instrument_id": iid, "bar_type": bt})
            if "instrument_id" in fields:
                params.setdefault("instrument_id", iid)
            if "bar_type" in fields:
                params.setdefault("bar_type", bt)
            params.setdefault("order_id_tag", f"{tag:03d}")
            tag += 1
            if only is None or sym == only:
                strategies.append({**msgspec.to_builtins(tmpl), "params": params})
    keep = syms if only is None else [only]
    raw["bar_types"] = list(dict.fromkeys([*cfg.bar_types, *(str(bar_type(s, u.market, u.interval)) for s in keep)]))
    raw["strategies"] = strategies
    if only is not None:
        raw["name"] = f"{cfg.name}-{only}"
    return parse_config(raw, source=f"{source} (universe expanded{'' if only is None else ' for ' + only})")
