"""Strategies, tasks and backends from outside ponder: installed plugins, and references given by name.

Another package extends ponder by declaring entry points in its ``pyproject.toml``::

    [project.entry-points."ponder.strategies"]
    my-vote = "my_package.strategies:my_vote"        # an async (problem, ctx, **params) -> Result function
    [project.entry-points."ponder.tasks"]
    my-task = "my_package.tasks:my_task"             # a TaskSpec, or a loader (LoadOptions) -> list[Problem]
    [project.entry-points."ponder.backends"]
    my-server = "my_package.backends:open_my_server"  # a factory (BackendSpec) -> Backend

An entry point may also name a module; importing it runs its ``@strategy`` / ``register_task`` calls. Without
installing anything, ``--strategy`` and ``--task`` also take a reference: ``package.module:name`` (importable)
or ``path/to/file.py@name`` (a file, loaded once). A plugin that fails to load never breaks ponder: it is left
out, and its error is reported when its name is asked for.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import re
import sys
from collections.abc import Container, Iterator
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError

log = logging.getLogger("ponder.plugins")

STRATEGIES = "ponder.strategies"
TASKS = "ponder.tasks"
BACKENDS = "ponder.backends"

# "pkg.mod:attr" (dotted module, attribute path) or "some/file.py@attr"
_MODULE_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_FILE_REF = re.compile(r"^(?P<path>.+\.py)@(?P<attr>[A-Za-z_][\w.]*)$")

failures: dict[str, str] = {}
"""Entry points that failed to load, by ``group:name``: reported when the name is asked for."""


def is_reference(name: str) -> bool:
    """Whether ``name`` points at code (``module:attr`` or ``file.py@attr``) rather than naming a registered item."""
    return bool(_MODULE_REF.match(name) or _FILE_REF.match(name))


def load_reference(ref: str, *, what: str) -> Any:
    """The object ``ref`` points at; ConfigError (naming ``what``, e.g. "--strategy") says what went wrong."""
    file_ref = _FILE_REF.match(ref)
    try:
        if file_ref:
            target: Any = _load_file(Path(file_ref["path"]).expanduser())
            attr = file_ref["attr"]
        else:
            module_name, _, attr = ref.partition(":")
            target = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as exc:  # the plugin's own import error, whatever it is
        raise ConfigError(f"{what} {ref!r}: cannot load it ({type(exc).__name__}: {exc})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{what} {ref!r}: {getattr(target, '__name__', target)!s} has no attribute {part!r}")
        target = getattr(target, part)
    return target


def _load_file(path: Path) -> Any:
    """Import a Python file as a module, once per resolved path."""
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    resolved = path.resolve()
    name = "ponder_plugin_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def installed(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` in the installed distributions (first one wins for a repeated name)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return list(found.values())


def load_entry_point(ep: EntryPoint) -> Any | None:
    """``ep.load()``, or None when it fails (recorded in ``failures`` and logged, never raised)."""
    try:
        return ep.load()
    except Exception as exc:  # a broken plugin must not break ponder
        failures[f"{ep.group}:{ep.name}"] = f"{type(exc).__name__}: {exc}"
        log.warning("plugin %s %r (%s) failed to load: %s", ep.group, ep.name, ep.value, exc)
        return None


def new_entries(group: str, known: Container[str]) -> Iterator[tuple[EntryPoint, Any]]:
    """The loaded objects of ``group``'s entry points whose names are not ``known`` yet (a built-in name is never
    replaced). Entries that fail to load are recorded and skipped; an entry that is a module registered its items
    when it was imported, and is skipped too."""
    for ep in installed(group):
        if ep.name in known:
            continue
        obj = load_entry_point(ep)
        if obj is not None and not inspect.ismodule(obj):
            yield ep, obj


def failure_note(group: str, name: str) -> str:
    """`` (plugin NAME failed to load: ...)`` when that is why ``name`` is unknown, else an empty string."""
    error = failures.get(f"{group}:{name}")
    return f" (plugin {name!r} is installed but failed to load: {error})" if error else ""
