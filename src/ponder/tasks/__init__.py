"""Tasks: named sets of ``Problem``s — fixed math data sets, generated arithmetic testbeds, reasoning-gym.

Example::

    from ponder.tasks import list_tasks, load_task

    load_task("gsm8k", limit=50)  # from data_dir, PONDER_DATA_DIR, ./data, ../shared/data or the Hub
    load_task("add1", seed=1, size=200)  # generated, seeded
    load_task("gym:basic_arithmetic")  # any reasoning-gym dataset: pip install 'ponder[tasks]'
"""

from __future__ import annotations

import importlib
import pkgutil

from ponder.tasks.gym import extract_gym_answer, gym_datasets
from ponder.tasks.registry import (
    DEFAULT_SIZE,
    GYM_PREFIX,
    LoadOptions,
    TaskInfo,
    TaskSpec,
    get_task,
    list_tasks,
    load_task,
    register_task,
)

# Every module of this package registers its tasks on import, so a new task is just a new module.
for _module in pkgutil.iter_modules(__path__, "ponder.tasks."):
    importlib.import_module(_module.name)

__all__ = [
    "DEFAULT_SIZE",
    "GYM_PREFIX",
    "LoadOptions",
    "TaskInfo",
    "TaskSpec",
    "extract_gym_answer",
    "get_task",
    "gym_datasets",
    "list_tasks",
    "load_task",
    "register_task",
]
