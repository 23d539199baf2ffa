"""Strategy registry: ``@strategy("name")`` on an async function ``(problem, ctx, **params) -> Result``.

Parameters are read from the function's signature (typed keyword arguments with defaults), so the CLI,
the store and ``ponder strategies`` all see the same names, types and defaults. A parameter may declare its
help and its bounds once, with ``Annotated``: ``n: Annotated[int, Ge(1), "samples drawn"] = 16`` (bounds from
``annotated_types``: ``Ge``, ``Gt``, ``Le``, ``Lt``, ``Interval``); values outside them are refused with a
ConfigError naming the parameter, before the strategy runs. Besides the modules of this
package, strategies come from installed plugins (the ``ponder.strategies`` entry point group) and from references
(``package.module:function``, ``path/file.py@function``): see ``ponder.plugins``.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types

from ponder.errors import ConfigError
from ponder.types import Problem, Result

if typing.TYPE_CHECKING:
    from ponder.context import Ctx

StrategyFn = Callable[..., Awaitable[Result]]


Bound = annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt | annotated_types.Interval

_SYMBOLS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


@dataclass(frozen=True)
class Param:
    name: str
    type: Any
    default: Any
    help: str = ""
    bounds: tuple[Bound, ...] = ()

    def type_name(self) -> str:
        if get_origin(self.type) is Literal:
            return "|".join(map(str, get_args(self.type)))
        return getattr(self.type, "__name__", str(self.type))

    def bounds_text(self) -> str:
        """``>= 1``, ``> 0, <= 1``: the declared bounds, for listings and errors."""
        return ", ".join(f"{symbol} {getattr(b, key)}" for b in self.bounds for key, symbol in _SYMBOLS
                         if getattr(b, key, None) is not None)

    def check(self, value: Any, where: str) -> None:
        """Refuse a value outside the declared bounds."""
        for bound in self.bounds:
            for key, _ in _SYMBOLS:
                limit = getattr(bound, key, None)
                if limit is None:
                    continue
                ok = {"ge": value >= limit, "gt": value > limit, "le": value <= limit, "lt": value < limit}[key]
                if not ok:
                    raise ConfigError(f"{where} must be {self.bounds_text()}, got {value!r}")


def _param(name: str, hint: Any, default: Any) -> Param:
    """A parameter from its annotation: ``Annotated[type, bounds..., "help"]`` or a plain type."""
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        help_text = " ".join(x for x in extras if isinstance(x, str))
        bounds = tuple(x for x in extras if isinstance(x, Bound))
        return Param(name, base, default, help_text, bounds)
    return Param(name, hint, default)


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    fn: StrategyFn
    params: dict[str, Param]
    summary: str
    doc: str

    async def __call__(self, problem: Problem, ctx: Ctx, **params: Any) -> Result:
        for name, value in params.items():  # declared bounds hold for direct calls too, not only parsed options
            if name in self.params:
                self.params[name].check(value, f"strategy {self.name!r} parameter {name!r}")
        return await self.fn(problem, ctx, **params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params.values()}


_REGISTRY: dict[str, StrategyInfo] = {}


def strategy(name: str) -> Callable[[StrategyFn], StrategyFn]:
    """Register a strategy under ``name``; its keyword-only parameters become its options."""

    def register(fn: StrategyFn) -> StrategyFn:
        hints = typing.get_type_hints(fn, include_extras=True)
        params = {}
        for pname, p in list(inspect.signature(fn).parameters.items())[2:]:
            if p.default is inspect.Parameter.empty:
                raise TypeError(f"strategy {name}: parameter {pname} needs a default")
            params[pname] = _param(pname, hints.get(pname, type(p.default)), p.default)
        doc = inspect.getdoc(fn) or ""
        _REGISTRY[name] = StrategyInfo(name, fn, params, doc.splitlines()[0] if doc else "", doc)
        return fn

    return register


_NOT_STRATEGIES = {"registry", "voting"}


@functools.cache
def _load_builtins() -> None:
    """Import every module of this package (and its subpackages): importing runs their decorators."""
    import importlib
    import pkgutil

    import ponder.strategies as package

    for module in pkgutil.walk_packages(package.__path__, "ponder.strategies."):
        if module.name.rsplit(".", 1)[-1] not in _NOT_STRATEGIES:
            importlib.import_module(module.name)


@functools.cache
def _load_plugins() -> None:
    """Register the strategies of installed plugins (``ponder.strategies`` entry points), once."""
    from ponder import plugins

    for ep, obj in plugins.new_entries(plugins.STRATEGIES, _REGISTRY):
        _register_object(ep.name, obj, f"plugin {ep.value}")


def _register_object(name: str, obj: Any, where: str) -> StrategyInfo:
    """Register a function as strategy ``name`` (a ``@strategy`` function keeps its parameters and docs)."""
    known = next((info for info in _REGISTRY.values() if info.fn is obj), None)
    if known is not None:
        _REGISTRY[name] = StrategyInfo(name, known.fn, known.params, known.summary, known.doc)
        return _REGISTRY[name]
    if not inspect.iscoroutinefunction(obj):
        raise ConfigError(f"{where} is not a strategy: it must be an async function (problem, ctx, **params) "
                          "-> Result")
    try:
        strategy(name)(obj)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return _REGISTRY[name]


def get_strategy(name: str) -> StrategyInfo:
    _load_builtins()
    _load_plugins()
    if name not in _REGISTRY:
        from ponder import plugins

        if plugins.is_reference(name):
            return _register_object(name, plugins.load_reference(name, what="strategy"), f"strategy {name!r}")
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown strategy {name!r}{hint}{plugins.failure_note(plugins.STRATEGIES, name)}; "
                          f"known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_strategies() -> list[StrategyInfo]:
    _load_builtins()
    _load_plugins()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def coerce_params(info: StrategyInfo, raw: dict[str, Any]) -> dict[str, Any]:
    """Check and convert user-given parameters (strings from the CLI, or JSON values) to their types."""
    out = info.defaults()
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in info.params:
            accepted = ", ".join(info.params) or "none"
            raise ConfigError(f"strategy {info.name!r} has no parameter {key!r}; accepted: {accepted}")
        param = info.params[name]
        out[name] = _coerce(info.name, param, value)
        param.check(out[name], f"strategy {info.name!r} parameter {param.name!r}")
    return out


def _coerce(strategy_name: str, param: Param, value: Any) -> Any:
    kind = param.type
    where = f"strategy {strategy_name!r} parameter {param.name!r}"
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {param.type_name()}, got {value!r}") from None
    return value
