"""Strategy registry: ``@strategy("name")`` on an async function ``(problem, ctx, **params) -> Result``.

Parameters are read from the function's signature (typed keyword arguments with defaults), so the CLI,
the store and ``ponder strategies`` all see the same names, types and defaults. Besides the modules of this
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
from typing import Any, Literal, get_args, get_origin

from ponder.errors import ConfigError
from ponder.types import Problem, Result

if typing.TYPE_CHECKING:
    from ponder.context import Ctx

StrategyFn = Callable[..., Awaitable[Result]]


@dataclass(frozen=True)
class Param:
    name: str
    type: Any
    default: Any

    def type_name(self) -> str:
        if get_origin(self.type) is Literal:
            return "|".join(map(str, get_args(self.type)))
        return getattr(self.type, "__name__", str(self.type))


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    fn: StrategyFn
    params: dict[str, Param]
    summary: str
    doc: str

    async def __call__(self, problem: Problem, ctx: Ctx, **params: Any) -> Result:
        return await self.fn(problem, ctx, **params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params.values()}


_REGISTRY: dict[str, StrategyInfo] = {}


def strategy(name: str) -> Callable[[StrategyFn], StrategyFn]:
    """Register a strategy under ``name``; its keyword-only parameters become its options."""

    def register(fn: StrategyFn) -> StrategyFn:
        hints = typing.get_type_hints(fn)
        params = {}
        for pname, p in list(inspect.signature(fn).parameters.items())[2:]:
            if p.default is inspect.Parameter.empty:
                raise TypeError(f"strategy {name}: parameter {pname} needs a default")
            params[pname] = Param(pname, hints.get(pname, type(p.default)), p.default)
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

    for ep in plugins.installed(plugins.STRATEGIES):
        obj = plugins.load_entry_point(ep)
        if obj is None or inspect.ismodule(obj) or ep.name in _REGISTRY:
            continue  # a module registered its strategies on import; a built-in name is never replaced
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
        out[name] = _coerce(info.name, info.params[name], value)
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
