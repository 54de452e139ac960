"""Find, inspect and build strategies: the built-ins, a user strategy folder, and ``strategy_path``s.

Users extend the platform by writing plain Nautilus ``Strategy`` classes; nothing in this package
needs editing. A run config's ``[[strategies]]`` entry names a strategy in one of three ways:

* ``name = "ema_cross"``: a built-in (:data:`strategies.REGISTRY`);
* ``name = "MyEmaCross"``: a class found in the user strategy folder (:func:`user_strategy_dir`,
  default ``user_strategies/``, overridable by ``--strategy-dir`` / ``$NAUTILUS_STRATEGY_DIR``);
  every ``Strategy`` subclass defined in a ``*.py`` file there is runnable by its class name;
* ``strategy_path = "module.path:ClassName"`` (Nautilus's ``ImportableStrategyConfig`` convention)
  or ``strategy_path = "path/to/file.py:ClassName"``, with an optional ``config_path`` in the same
  form. A relative module or file resolves against the config file's folder, then the user
  strategy folder, then ``sys.path`` (installed packages).

The config class is ``config_path`` if given, else the annotation of the strategy ``__init__``'s
``config`` argument, else a ``<ClassName>Config`` class in the strategy's module.

Parameters (:func:`strategy_parameters`) are read from the config class in both of Nautilus's styles:
class-attribute fields (``fast: int = 10``, the style of Nautilus's docs) and ``__init__`` arguments
(our :class:`strategies.base.BarStrategyConfig`). Values from TOML are checked against the field's
type annotation (or the type of its default) before any data is loaded.

The rc7 trap (``../shared/NAUTILUS_NOTES.md`` §1): Nautilus's pyo3 ``StrategyConfig.__new__``
swallows unknown keyword arguments, so ``Cfg(fast=5).fast`` is still the class default ``10``.
:meth:`StrategyRef.make_config` therefore never relies on the constructor for fields: it gives
Nautilus's own fields (``order_id_tag``, ``strategy_id`` ...) to ``__new__`` only, calls a Python
``__init__`` with the fields it declares, sets class-attribute fields on the instance, and reads
every one back, raising :class:`StrategyLoadError` if a value did not stick.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from core import paths

#: Nautilus's own ``StrategyConfig`` fields (handed to its ``__new__``, never to a Python ``__init__``).
NAUTILUS_CONFIG_FIELDS = frozenset({
    "strategy_id", "order_id_tag", "oms_type", "external_order_instrument_ids", "manage_contingent_orders",
    "manage_gtd_expiry", "manage_stop", "market_exit_interval_ms", "market_exit_max_attempts",
    "market_exit_time_in_force", "market_exit_reduce_only", "use_uuid_client_order_ids",
    "use_hyphens_in_client_order_ids", "log_events", "log_commands", "log_rejected_due_post_only_as_warning",
})

REQUIRED = inspect.Parameter.empty


class StrategyLoadError(ValueError):
    """A strategy cannot be found, imported or configured. The message names the file, class or key."""


@dataclass(frozen=True)
class StrategyParameter:
    """One config field of a strategy.

    Attributes:
        name: Field name (the TOML key under ``params``).
        annotation: The declared type (resolved), or the type of the default, or None (unchecked). A
            range is declared with msgspec constraints, ``Annotated[int, msgspec.Meta(ge=1)]``
            (:mod:`strategies.params` has the common ones): :meth:`bounds` reads it.
        default: Default value, or :data:`REQUIRED`.
        via_init: True if a Python ``__init__`` of the config class takes it; False for a
            class-attribute field (set on the instance by :meth:`StrategyRef.make_config`).
    """

    name: str
    annotation: Any
    default: Any
    via_init: bool

    @property
    def required(self) -> bool:
        """True if the field has no default."""
        return self.default is REQUIRED

    def type_name(self) -> str:
        """Readable type, e.g. ``int``, ``InstrumentId``, ``float | None``, ``int >= 1``."""
        return "any" if self.annotation is None else _type_text(self.annotation)

    def bounds(self) -> dict[str, Any]:
        """The declared range: a subset of ``ge``, ``gt``, ``le``, ``lt``, ``multiple_of`` (msgspec
        constraint names) and ``description`` (the unit), ``{}`` for an unconstrained parameter."""
        return constraints_of(self.annotation)

    def within(self, value: Any) -> bool:
        """True if a number ``value`` is inside :meth:`bounds` (non-numbers: True; their type is
        checked by :meth:`StrategyRef.check_params`)."""
        b = self.bounds()
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True
        return ((b.get("ge") is None or value >= b["ge"]) and (b.get("gt") is None or value > b["gt"])
                and (b.get("le") is None or value <= b["le"]) and (b.get("lt") is None or value < b["lt"]))

    def range_text(self) -> str:
        """The range as text (``>= 1``, ``> 0, <= 10``), '' if none."""
        return _bounds_text(self.bounds())


_BOUND_OPS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("multiple_of", "multiple of"))


def constraints_of(annotation: Any) -> dict[str, Any]:
    """msgspec constraints of an ``Annotated[T, msgspec.Meta(...)]`` annotation (also inside ``X | None``):
    ``{"ge": 1, "description": "bars (>= 1)"}``; ``{}`` without any."""
    if typing.get_origin(annotation) is typing.Annotated:
        out: dict[str, Any] = {}
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, msgspec.Meta):
                for key in ("ge", "gt", "le", "lt", "multiple_of", "description"):
                    if getattr(meta, key, None) is not None:
                        out[key] = getattr(meta, key)
        return out
    for arg in typing.get_args(annotation) if _is_union(annotation) else ():
        found = constraints_of(arg)
        if found:
            return found
    return {}


def _is_union(a: Any) -> bool:
    import types

    return typing.get_origin(a) in (typing.Union, types.UnionType)


def _bounds_text(b: dict[str, Any]) -> str:
    return ", ".join(f"{op} {b[k]:g}" if isinstance(b[k], int | float) else f"{op} {b[k]}"
                     for k, op in _BOUND_OPS if k in b)


def _type_text(a: Any) -> str:
    if typing.get_origin(a) is typing.Annotated:
        base = _type_text(typing.get_args(a)[0])
        rng = _bounds_text(constraints_of(a))
        return f"{base} {rng}" if rng else base
    if _is_union(a) and any(typing.get_origin(x) is typing.Annotated for x in typing.get_args(a)):
        return " | ".join("None" if x is type(None) else _type_text(x) for x in typing.get_args(a))
    if isinstance(a, type):
        return a.__name__
    return str(a).replace("typing.", "").replace("nautilus_trader.model.", "")


@dataclass(frozen=True)
class StrategyRef:
    """A resolved strategy: its classes, where it came from, and how to build it.

    Attributes:
        name: Name it is runnable by (``ema_cross`` for a built-in, the class name for a user
            strategy, ``module:Class`` for a strategy path).
        strategy_cls: The Nautilus ``Strategy`` subclass.
        config_cls: Its ``StrategyConfig`` subclass.
        source: Absolute path of the file defining ``strategy_cls``.
        origin: ``"builtin"``, ``"user"`` (found in the user strategy folder) or ``"path"``.
    """

    name: str
    strategy_cls: type
    config_cls: type
    source: str
    origin: str

    @property
    def strategy_path(self) -> str:
        """``module:Class`` of the strategy (Nautilus's ``ImportableStrategyConfig`` form)."""
        return f"{self.strategy_cls.__module__}:{self.strategy_cls.__qualname__}"

    @property
    def config_path(self) -> str:
        """``module:Class`` of the config class."""
        return f"{self.config_cls.__module__}:{self.config_cls.__qualname__}"

    def doc(self) -> str:
        """First paragraph of the strategy class's docstring ('' if none)."""
        return (inspect.getdoc(self.strategy_cls) or "").split("\n\n")[0].strip()

    def parameters(self) -> dict[str, StrategyParameter]:
        """The config fields (see :func:`config_fields`)."""
        return config_fields(self.config_cls)

    def check_params(self, params: dict[str, Any], key: str = "params") -> dict[str, Any]:
        """Validate TOML/JSON ``params`` and convert them to the field types.

        Returns the converted values (own fields and Nautilus's own config fields). Nautilus types
        with ``from_str`` (``InstrumentId``, ``BarType``, ``Quantity`` ...) are built from strings,
        ``Decimal`` from strings or numbers; ``int`` refuses ``10.5`` and ``true``.

        Raises:
            StrategyLoadError: an unknown key, a missing required field, a value of the wrong type;
                the message names ``<key>.<field>``, the value and the expected type.
        """
        fields = self.parameters()
        out: dict[str, Any] = {}
        for k, v in params.items():
            if k in NAUTILUS_CONFIG_FIELDS and k not in fields:
                out[k] = v
                continue
            if k not in fields:
                raise StrategyLoadError(f"key {key}.{k} = {v!r}: expected a parameter of {self.name!r}: "
                                        f"{sorted(fields)}")
            out[k] = convert_value(v, fields[k], f"{key}.{k}")
        for f in fields.values():
            if f.required and f.name not in params:
                raise StrategyLoadError(f"key {key}.{f.name}: expected a value of type {f.type_name()} (required "
                                        f"by {self.name!r})")
        return out

    def make_config(self, params: dict[str, Any], *, order_id_tag: str | None = None) -> Any:
        """An instance of the config class with ``params`` applied (validated by :meth:`check_params`).

        Nautilus's fields go to the pyo3 ``__new__``; a Python ``__init__`` receives only the fields it
        declares (so an ``__init__`` without ``**kwargs`` works); class-attribute fields are set on the
        instance and read back (the rc7 trap, module docstring).

        Raises:
            StrategyLoadError: bad params, or the config class raised / did not keep a value.
        """
        values = self.check_params(params)
        base = {k: v for k, v in values.items() if k in NAUTILUS_CONFIG_FIELDS and k not in self.parameters()}
        if order_id_tag is not None:
            base.setdefault("order_id_tag", order_id_tag)
        if isinstance(base.get("strategy_id"), str):
            from nautilus_trader.model import StrategyId

            base["strategy_id"] = StrategyId(base["strategy_id"])
        fields = self.parameters()
        cls = self.config_cls
        try:
            obj = cls.__new__(cls, **base)
            init_args = {k: v for k, v in values.items() if k in fields and fields[k].via_init}
            if _python_init(cls) is not None:
                obj.__init__(**init_args)
            for f in fields.values():
                if f.via_init:
                    continue
                value = values[f.name] if f.name in values else f.default
                setattr(obj, f.name, value)
                if getattr(obj, f.name) is not value:
                    raise StrategyLoadError(f"{self.config_path}: field {f.name!r} did not keep the value {value!r}")
        except StrategyLoadError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's config class may raise anything
            raise StrategyLoadError(f"key params: {self.config_path} rejected the values: {type(e).__name__}: {e}") from e
        return obj

    def make_strategy(self, params: dict[str, Any], *, order_id_tag: str | None = None, hooks: bool = False) -> Any:
        """The strategy instance (``strategy_cls(make_config(...))``).

        Args:
            hooks: Build it with the platform's hooks (order gates, before-bar work, an external bar
                driver: :mod:`strategies.hooks`), for runners that use them (a latency model, paper).
                Built-in strategies have them anyway; a plain Nautilus ``Strategy`` class is then
                built as :func:`strategies.hooks.with_hooks` of it (same name, id and behaviour).

        Raises:
            StrategyLoadError: bad params or the strategy's ``__init__`` raised.
        """
        config = self.make_config(params, order_id_tag=order_id_tag)
        cls = self.strategy_cls
        if hooks:
            from strategies.hooks import with_hooks

            cls = with_hooks(cls)
        try:
            return cls(config)
        except Exception as e:  # noqa: BLE001 - user code
            raise StrategyLoadError(f"{self.strategy_path} ({self.source}) failed to start from its config: "
                                    f"{type(e).__name__}: {e}") from e

    def file_sha256(self) -> str:
        """sha256 of the strategy's source file."""
        import hashlib

        return hashlib.sha256(Path(self.source).read_bytes()).hexdigest()


def user_strategy_dir() -> Path:
    """The user strategy folder: ``$NAUTILUS_STRATEGY_DIR``, default ``<repo>/user_strategies``."""
    return paths.user_strategy_dir()


# ---- config fields -----------------------------------------------------------------------------------


def _is_nautilus_base(klass: type) -> bool:
    return klass.__module__.startswith(("nautilus_trader", "builtins")) or klass is object


def _python_init(cls: type) -> Any:
    """The first Python ``__init__`` in the config class's MRO before Nautilus's base, or None."""
    for klass in cls.__mro__:
        if _is_nautilus_base(klass):
            return None
        if "__init__" in klass.__dict__:
            return klass.__dict__["__init__"]
    return None


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable forward refs: fall back to the raw strings
        return {}


def config_fields(config_cls: type) -> dict[str, StrategyParameter]:
    """The user-settable fields of a ``StrategyConfig`` subclass, in declaration order.

    Collected over the class hierarchy up to Nautilus's ``StrategyConfig``: class-level annotated
    attributes (``fast: int = 10``; ``ClassVar`` and ``_private`` names skipped) and the named
    arguments of Python ``__init__`` methods (``self``, ``*args``, ``**kwargs`` skipped). Nautilus's
    own fields (``order_id_tag`` ...) are not listed.
    """
    out: dict[str, StrategyParameter] = {}
    for klass in reversed(config_cls.__mro__):
        if _is_nautilus_base(klass):
            continue
        hints = _hints(klass)
        for name in klass.__dict__.get("__annotations__", {}):
            if name.startswith("_") or name in NAUTILUS_CONFIG_FIELDS:
                continue
            ann = hints.get(name)
            if typing.get_origin(ann) is typing.ClassVar:
                continue
            default = klass.__dict__.get(name, REQUIRED)
            out[name] = StrategyParameter(name, _annotation(ann, default), default, via_init=False)
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        ihints = _hints(init)
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in NAUTILUS_CONFIG_FIELDS:
                continue
            prev = out.get(p.name)
            default = p.default if p.default is not p.empty else (prev.default if prev else REQUIRED)
            ann = ihints.get(p.name) or (prev.annotation if prev else None)
            out[p.name] = StrategyParameter(p.name, _annotation(ann, default), default, via_init=True)
    return out


def _annotation(ann: Any, default: Any) -> Any:
    if ann is not None and ann is not Any:
        return ann
    if default is REQUIRED or default is None:
        return None
    return type(default)


def _from_str_hook(tp: type, obj: Any) -> Any:
    if isinstance(obj, str) and hasattr(tp, "from_str"):
        return tp.from_str(obj)
    raise NotImplementedError


def convert_value(value: Any, field: StrategyParameter, key: str) -> Any:
    """``value`` converted to ``field``'s type (msgspec rules, Nautilus types from strings).

    Raises:
        StrategyLoadError: ``key = value: expected <type>: <reason>``.
    """
    if field.annotation is None:
        return value
    try:
        return msgspec.convert(value, field.annotation, dec_hook=_from_str_hook)
    except (msgspec.ValidationError, TypeError, ValueError) as e:
        raise StrategyLoadError(f"key {key} = {value!r}: expected {field.type_name()} ({e})") from e


# ---- finding classes ---------------------------------------------------------------------------------


def import_file(path: Path) -> Any:
    """Import a Python file as a module (``importlib``), so it can import its siblings.

    The module name is the file's dotted path from the top of its package (folders with an
    ``__init__.py``); that top folder's parent goes on ``sys.path``.

    Raises:
        StrategyLoadError: the file is missing, its module name is taken by another file, or it
            raised while importing (the message names the file and the error).
    """
    path = path.resolve()
    if not path.is_file():
        raise StrategyLoadError(f"{path}: no such strategy file")
    parts = [] if path.stem == "__init__" else [path.stem]
    root = path.parent
    while (root / "__init__.py").exists():
        parts.insert(0, root.name)
        root = root.parent
    modname = ".".join(parts)
    existing = sys.modules.get(modname)
    if existing is not None:
        origin = getattr(existing, "__file__", None)
        if origin and Path(origin).resolve() == path:
            return existing
        if len(parts) != 1:
            raise StrategyLoadError(f"{path}: its module name {modname!r} is already taken by "
                                    f"{origin or 'a built-in'}; rename the package")
        # A lone file whose name another file took (two folders with a `my_ema.py` in one process, e.g.
        # the Dash app): load it under a name unique to its path; its siblings still import normally.
        import hashlib

        modname = f"{modname}__{hashlib.sha256(str(path).encode()).hexdigest()[:10]}"
        if modname in sys.modules:
            return sys.modules[modname]
        spec = importlib.util.spec_from_file_location(modname, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - user code
            sys.modules.pop(modname, None)
            raise StrategyLoadError(f"{path}: cannot import: {type(e).__name__}: {e}") from e
        return module
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(modname)
    except Exception as e:  # noqa: BLE001 - user code
        sys.modules.pop(modname, None)
        raise StrategyLoadError(f"{path}: cannot import: {type(e).__name__}: {e}") from e


def _locate(module: str, search_dirs: list[Path]) -> Path | None:
    """File of a dotted ``module`` under one of ``search_dirs`` (``a/b.py`` or ``a/b/__init__.py``)."""
    rel = Path(*module.split("."))
    for d in search_dirs:
        for cand in (d / rel.with_suffix(".py"), d / rel / "__init__.py"):
            if cand.is_file():
                return cand
    return None


def load_object(ref: str, *, search_dirs: list[Path] | None = None) -> Any:
    """The object named by ``"module.path:Name"`` or ``"path/to/file.py:Name"``.

    A relative file or module is looked up in ``search_dirs`` first (in order), then on ``sys.path``.

    Raises:
        StrategyLoadError: malformed reference, module/file not found or failing, no such attribute.
    """
    target, sep, attr = ref.partition(":")
    if not sep or not target or not attr:
        raise StrategyLoadError(f"{ref!r}: expected 'module.path:ClassName' or 'path/to/file.py:ClassName'")
    dirs = list(search_dirs or [])
    if target.endswith(".py"):
        p = Path(target).expanduser()
        cands = [p] if p.is_absolute() else [d / p for d in dirs] + [Path.cwd() / p]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            raise StrategyLoadError(f"{ref!r}: file {target} not found (looked in {[str(c.parent) for c in cands]})")
        module = import_file(found)
    else:
        found = _locate(target, dirs)
        if found is not None:
            module = import_file(found)
        else:
            try:
                module = importlib.import_module(target)
            except ModuleNotFoundError as e:
                raise StrategyLoadError(f"{ref!r}: module {target} not found in {[str(d) for d in dirs]} "
                                        f"nor on sys.path ({e})") from e
            except Exception as e:  # noqa: BLE001 - user code
                raise StrategyLoadError(f"{ref!r}: cannot import {target}: {type(e).__name__}: {e}") from e
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise StrategyLoadError(f"{ref!r}: {getattr(module, '__file__', target)} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


def _strategy_base() -> type:
    from nautilus_trader.trading import Strategy

    return Strategy


def find_config_class(strategy_cls: type) -> type:
    """The config class of a strategy: its ``__init__``'s ``config`` annotation, else ``<Class>Config``.

    Raises:
        StrategyLoadError: neither found (the message says how to declare it).
    """
    from nautilus_trader.trading import StrategyConfig

    init = strategy_cls.__dict__.get("__init__")
    for klass in strategy_cls.__mro__:
        if "__init__" in klass.__dict__ and not _is_nautilus_base(klass):
            init = klass.__dict__["__init__"]
            break
    if init is not None:
        ann = _hints(init).get("config")
        for cand in typing.get_args(ann) or (ann,):
            if isinstance(cand, type) and issubclass(cand, StrategyConfig) and cand is not StrategyConfig:
                return cand
    module = sys.modules.get(strategy_cls.__module__)
    cand = getattr(module, f"{strategy_cls.__name__}Config", None)
    if isinstance(cand, type) and issubclass(cand, StrategyConfig):
        return cand
    raise StrategyLoadError(
        f"{strategy_cls.__module__}:{strategy_cls.__name__}: cannot find its config class: annotate "
        f"`def __init__(self, config: MyConfig)`, define {strategy_cls.__name__}Config beside it, or set config_path")


def _ref(name: str, strategy_cls: Any, config_cls: Any, origin: str, what: str) -> StrategyRef:
    from nautilus_trader.trading import StrategyConfig

    if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, _strategy_base())):
        raise StrategyLoadError(f"{what}: {strategy_cls!r} is not a Nautilus Strategy subclass")
    if config_cls is None:
        config_cls = find_config_class(strategy_cls)
    if not (isinstance(config_cls, type) and issubclass(config_cls, StrategyConfig)):
        raise StrategyLoadError(f"{what}: config {config_cls!r} is not a Nautilus StrategyConfig subclass")
    source = inspect.getsourcefile(strategy_cls) or "?"
    return StrategyRef(name, strategy_cls, config_cls, str(Path(source).resolve()), origin)


@dataclass(frozen=True)
class StrategyCatalog:
    """Every strategy runnable by name: built-ins and the user folder's classes.

    Attributes:
        strategies: name -> :class:`StrategyRef`, built-ins first, then user classes by name.
        errors: ``(file, message)`` for user files that failed to import (listed, not fatal, unless
            a run asks for a name that is missing).
        strategy_dir: The user folder that was scanned.
    """

    strategies: dict[str, StrategyRef]
    errors: list[tuple[str, str]]
    strategy_dir: Path


def discover_strategies(strategy_dir: Path | None = None) -> StrategyCatalog:
    """Built-in strategies plus every ``Strategy`` subclass defined in ``strategy_dir/*.py``.

    Files starting with ``_`` or ``test_`` are skipped. A user class is runnable by its class name.

    Raises:
        StrategyLoadError: two strategies with the same name (naming both files).
    """
    from strategies import REGISTRY

    d = (strategy_dir or user_strategy_dir()).resolve()
    found: dict[str, StrategyRef] = {}
    for name, entry in REGISTRY.items():
        found[name] = _ref(name, load_object(entry.strategy_path), load_object(entry.config_path), "builtin", name)
    errors: list[tuple[str, str]] = []
    files = sorted(p for p in d.glob("*.py") if not p.name.startswith(("_", "test_"))) if d.is_dir() else []
    for f in files:
        try:
            module = import_file(f)
        except StrategyLoadError as e:
            errors.append((str(f), str(e)))
            continue
        for attr, obj in vars(module).items():
            if (attr.startswith("_") or not isinstance(obj, type) or obj.__module__ != module.__name__
                    or not issubclass(obj, _strategy_base())):
                continue
            if attr in found:
                raise StrategyLoadError(f"two strategies named {attr!r}: {found[attr].source} and {f.resolve()}; "
                                        "rename one of the classes")
            try:
                found[attr] = _ref(attr, obj, None, "user", str(f))
            except StrategyLoadError as e:
                errors.append((str(f), str(e)))
    return StrategyCatalog(found, errors, d)


def resolve_strategy(name: str | None = None, strategy_path: str | None = None, config_path: str | None = None,
                     *, base_dir: Path | None = None, strategy_dir: Path | None = None) -> StrategyRef:
    """The strategy a ``[[strategies]]`` entry means (module docstring for the lookup order).

    Raises:
        StrategyLoadError: unknown name (listing the known ones and any broken user files), or a path
            that cannot be imported.
    """
    sdir = (strategy_dir or user_strategy_dir()).resolve()
    if strategy_path is not None:
        dirs = [p for p in (base_dir, sdir) if p is not None]
        strategy_cls = load_object(strategy_path, search_dirs=dirs)
        config_cls = load_object(config_path, search_dirs=dirs) if config_path else None
        return _ref(strategy_path, strategy_cls, config_cls, "path", strategy_path)
    if name is None:
        raise StrategyLoadError("expected `name` or `strategy_path`")
    from strategies import REGISTRY

    if name in REGISTRY:  # built-ins without scanning the user folder
        entry = REGISTRY[name]
        return _ref(name, load_object(entry.strategy_path), load_object(entry.config_path), "builtin", name)
    cat = discover_strategies(sdir)
    if name in cat.strategies:
        return cat.strategies[name]
    broken = "".join(f"; {f} failed to import: {msg}" for f, msg in cat.errors)
    raise StrategyLoadError(f"unknown strategy {name!r}: expected one of {sorted(cat.strategies)} (built-ins and "
                            f"the classes in {sdir}), or a strategy_path = 'module:Class'{broken}")


def strategy_fields(name: str) -> dict[str, StrategyParameter]:
    """The parameters (type, default, range) of a strategy runnable by ``name``: a built-in, a class in
    the user strategy folder, or a ``module:Class`` strategy path. What the Dash launcher and sweeps
    read (:meth:`StrategyParameter.bounds`).

    Raises:
        StrategyLoadError: unknown strategy.
    """
    ref = resolve_strategy(strategy_path=name) if ":" in name else resolve_strategy(name)
    return ref.parameters()


def absolute_strategy_path(ref: str, base_dir: Path | None) -> str:
    """``ref`` with a module or file found under ``base_dir`` rewritten as ``/abs/file.py:Class``.

    Run configs are passed to worker processes (sweeps, universes, Ray) without their file, so a
    path relative to the config's folder is pinned to the absolute file at load time.
    """
    if base_dir is None:
        return ref
    target, sep, attr = ref.partition(":")
    if not sep:
        return ref
    if target.endswith(".py"):
        p = Path(target).expanduser()
        if not p.is_absolute() and (base_dir / p).is_file():
            return f"{(base_dir / p).resolve()}:{attr}"
        return ref
    found = _locate(target, [base_dir])
    return f"{found.resolve()}:{attr}" if found is not None else ref
