"""The task registry: every task is a ``TaskSpec`` with a loader; ``load_task`` looks names up and slices.

Tasks also come from installed plugins (the ``ponder.tasks`` entry point group: a ``TaskSpec``, a loader
``(LoadOptions) -> list[Problem]``, or a module that registers tasks) and from references
(``package.module:name``, ``path/file.py@name``): see ``ponder.plugins``.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ponder.errors import ConfigError, TaskError
from ponder.types import Message, Problem

GYM_PREFIX = "gym:"
DEFAULT_SIZE = 100
"""How many problems a generated task (arithmetic or reasoning-gym) has when no ``size`` is given."""


@dataclass(frozen=True)
class LoadOptions:
    """What ``load_task`` passes to a loader: where data lives, which slice, and how to generate."""

    data_dir: Path | None = None
    limit: int | None = None
    seed: int = 0
    size: int | None = None
    offset: int = 0
    hub: bool = True  # fixed data sets may fall back to the Hugging Face Hub when no local file is found

    def window(self, total: int) -> range:
        """The indices ``[offset, offset + limit)`` clipped to ``[0, total)``, in order."""
        stop = total if self.limit is None else min(total, self.offset + self.limit)
        return range(min(self.offset, total), stop)


Loader = Callable[[LoadOptions], list[Problem]]
Rebuild = Callable[[str, list[Message], "str | None"], Problem]
"""A task's problem made again from a recorded id, prompt and gold answer (for banks), without its data."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: its name, a one-line description, where its data comes from and how to load it.

    ``source`` is ``"jsonl"`` (a fixed data set: local JSONL file, else Hugging Face), ``"generated"``
    (seeded arithmetic generators) or ``"reasoning-gym"``. ``data`` says where the problems come from, for
    ``ponder tasks``; ``max_tokens`` is a suggested completion budget per sample.
    """

    name: str
    description: str
    source: str
    data: str
    max_tokens: int
    loader: Loader = field(repr=False, compare=False)
    # Fixed data sets: how a recorded problem gets the task's checker and extractor, so a bank replays without
    # the data file (None: the task must be loaded).
    rebuild: Rebuild | None = field(default=None, repr=False, compare=False)

    def load(self, options: LoadOptions) -> list[Problem]:
        return self.loader(options)


TaskInfo = TaskSpec
"""What ``list_tasks`` returns (the spec itself; ``loader`` is the only field a listing ignores)."""

_TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a task to the registry; names are unique."""
    if spec.name in _TASKS:
        raise ValueError(f"task {spec.name!r} is already registered")
    if spec.name.startswith(GYM_PREFIX):
        raise ValueError(f"task names starting with {GYM_PREFIX!r} are reserved for reasoning-gym")
    _TASKS[spec.name] = spec
    return spec


def list_tasks() -> list[TaskSpec]:
    """Every registered task, plus one ``gym:<dataset>`` entry standing for all reasoning-gym datasets."""
    from ponder.tasks.gym import GYM_INFO

    _load_plugins()
    return [*_ordered(), GYM_INFO]


@functools.cache
def _load_plugins() -> None:
    """Register the tasks of installed plugins (``ponder.tasks`` entry points), once."""
    from ponder import plugins

    for ep, obj in plugins.new_entries(plugins.TASKS, _TASKS):
        try:
            _TASKS[ep.name] = _as_spec(ep.name, obj, f"plugin {ep.value}")
        except ConfigError as exc:
            plugins.failures[f"{plugins.TASKS}:{ep.name}"] = str(exc)


def _as_spec(name: str, obj: object, where: str) -> TaskSpec:
    """A plugin's task as a ``TaskSpec`` named ``name``: a spec as it is (renamed), or a loader function."""
    if isinstance(obj, TaskSpec):
        return obj if obj.name == name else replace(obj, name=name)
    if callable(obj):
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        return TaskSpec(name, doc[0] if doc else f"plugin task {where}", "plugin", where, 512, obj)
    raise ConfigError(f"{where} is not a task: give a TaskSpec or a loader function (LoadOptions) -> list[Problem]")


_SOURCE_ORDER = {"jsonl": 0, "generated": 1}


def _ordered() -> list[TaskSpec]:
    """Registered tasks: fixed data sets first, then generated ones, each in registration order."""
    return sorted(_TASKS.values(), key=lambda spec: _SOURCE_ORDER.get(spec.source, len(_SOURCE_ORDER)))


def known_names() -> list[str]:
    return [*(spec.name for spec in _ordered()), f"{GYM_PREFIX}<dataset>"]


def get_task(name: str) -> TaskSpec:
    """The spec for ``name``; ``gym:<dataset>`` specs are made on demand (importing reasoning-gym)."""
    name = name.strip()
    if name.startswith(GYM_PREFIX):
        from ponder.tasks.gym import gym_task

        return gym_task(name[len(GYM_PREFIX) :])
    _load_plugins()
    spec = _TASKS.get(name)
    if spec is None:
        from ponder import plugins

        if plugins.is_reference(name):
            spec = _TASKS[name] = _as_spec(name, plugins.load_reference(name, what="task"), f"task {name!r}")
            return spec
        close = difflib.get_close_matches(name, list(_TASKS), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        note = plugins.failure_note(plugins.TASKS, name).strip()
        raise TaskError(f"unknown task {name!r}; {hint}{note + '; ' if note else ''}known tasks: "
                        f"{', '.join(known_names())}")
    return spec


def load_task(
    name: str,
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    size: int | None = None,
    offset: int = 0,
    hub: bool = True,
) -> list[Problem]:
    """Load the problems of task ``name``, in a deterministic order, sliced by ``offset`` and ``limit``.

    ``data_dir`` is where the JSONL sets live (see ``ponder.tasks.datasets``); ``seed`` and ``size`` apply to
    generated tasks (arithmetic and ``gym:<dataset>``; ``size`` defaults to 100) and are ignored by the
    fixed data sets. Problem ``i`` of a generated task depends only on the task, the seed and ``i``.
    ``hub=False`` keeps a fixed data set from falling back to the Hugging Face Hub (TaskError instead).
    """
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}")
    if offset < 0:
        raise ConfigError(f"offset must be >= 0, got {offset}")
    if size is not None and size < 1:
        raise ConfigError(f"size must be >= 1, got {size}")
    spec = get_task(name)
    options = LoadOptions(
        data_dir=Path(data_dir).expanduser() if data_dir is not None else None,
        limit=limit,
        seed=seed,
        size=size,
        offset=offset,
        hub=hub,
    )
    return spec.load(options)
