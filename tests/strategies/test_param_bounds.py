"""Every strategy declares its parameters once (``Annotated``): a help string each, and bounds on every number.

A new int or float parameter needs a bound (``Ge``, ``Gt``, ``Le``, ``Lt``, ``Interval``) or an entry in
``UNBOUNDED`` saying why every value of it means something; every parameter needs a help string, which
``ponder strategies`` shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies import StrategyInfo, coerce_params, get_strategy, list_strategies, registry, strategy
from ponder.strategies.registry import Param
from ponder.types import Problem, Result

UNBOUNDED: dict[tuple[str, str], str] = {
    # (strategy, parameter): why any value is meaningful. Empty: every numeric parameter has natural bounds.
}


def builtin_strategies() -> list[StrategyInfo]:
    """The strategies ponder ships (plugins and references registered by other tests are not ours to audit)."""
    return [info for info in list_strategies() if info.fn.__module__.startswith("ponder.")]


def is_number(param: Param) -> bool:
    if param.type in (int, float):
        return True
    return isinstance(param.default, int | float) and not isinstance(param.default, bool)


def audit(infos: list[StrategyInfo]) -> list[str]:
    """What is missing: parameters without help, numbers with neither bounds nor a reason in UNBOUNDED."""
    missing = []
    for info in infos:
        for param in info.params.values():
            where = f"{info.name}.{param.name}"
            if not param.help.strip():
                missing.append(f"{where}: no help")
            if is_number(param) and not param.bounds and (info.name, param.name) not in UNBOUNDED:
                missing.append(f"{where}: unbounded")
    return missing


def test_every_parameter_has_help_and_every_number_a_bound() -> None:
    infos = builtin_strategies()
    assert len(infos) >= 30  # the built-in modules were all imported
    assert audit(infos) == []


def test_unbounded_entries_name_real_unbounded_numbers() -> None:
    infos = {info.name: info for info in builtin_strategies()}
    for (name, pname), reason in UNBOUNDED.items():
        param = infos[name].params[pname]
        assert is_number(param) and not param.bounds and reason.strip(), (name, pname)


def test_the_audit_catches_an_unbounded_undocumented_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the throwaway strategy leaves no trace

    @strategy("unchecked")
    async def unchecked(problem: Problem, ctx: Ctx, n: int = 4, temperature: float = 0.7, greedy: bool = True,
                        label: str = "x") -> Result:
        raise NotImplementedError

    assert audit([get_strategy("unchecked")]) == [
        "unchecked.n: no help", "unchecked.n: unbounded", "unchecked.temperature: no help",
        "unchecked.temperature: unbounded", "unchecked.greedy: no help", "unchecked.label: no help",
    ]


def test_defaults_lie_within_their_bounds() -> None:
    for info in builtin_strategies():
        for param in info.params.values():
            param.check(param.default, f"{info.name}.{param.name}")


def outside(param: Param) -> list[Any]:
    """Values just outside each declared bound of a numeric parameter."""
    step = 1 if param.type is int else 0.5
    values = []
    for bound in param.bounds:
        for key, value in (("ge", -step), ("gt", 0), ("le", step), ("lt", 0)):
            limit = getattr(bound, key, None)
            if limit is not None:
                values.append(limit + value)
    return values


def test_bounds_refuse_values_outside_them_naming_the_parameter() -> None:
    checked = 0
    for info in builtin_strategies():
        for param in info.params.values():
            for value in outside(param):
                with pytest.raises(ConfigError, match=f"strategy '{info.name}' parameter '{param.name}' must be"):
                    coerce_params(info, {param.name: str(value)})
                checked += 1
    assert checked >= 100


def test_ponder_strategies_shows_every_parameter_with_its_bounds_and_help(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "ponder.cli", "strategies"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "COLUMNS": "1000"})
    assert out.returncode == 0, out.stderr
    shown: dict[str, list[str]] = {}
    current = ""
    for line in out.stdout.splitlines():
        cells = line.split("│")
        if len(cells) < 4:
            continue  # borders and the header
        current = cells[1].strip() or current
        shown.setdefault(current, []).append(cells[2].strip())
    for info in builtin_strategies():
        for param in info.params.values():
            bounds = f" ({param.bounds_text()})" if param.bounds else ""
            line = f"{param.name}: {param.type_name()} = {param.default!r}{bounds} — {param.help}"
            assert line in shown.get(info.name, []), line
