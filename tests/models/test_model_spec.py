"""``--model local:NAME`` and ``--threads``: parsing, errors, and the llama-server command they lead to."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ponder.backends import parse_model_spec
from ponder.backends.local import LlamaServer
from ponder.errors import ConfigError, ModelError
from tests.models.fake_parts import FakeModel


def test_a_known_name_resolves_to_its_assembled_file(fake: FakeModel, cache: Path) -> None:
    notes: list[str] = []
    spec = parse_model_spec("local:tiny-model", notify=notes.append)
    assert spec.kind == "local" and spec.named == "tiny-model"
    assert spec.target == str(cache / "tiny-model.gguf")
    assert Path(spec.target).read_bytes() == fake.content
    assert spec.describe() == "local:tiny-model"  # run names stay stable whatever the cache path
    assert len(notes) == 1 and "assembling tiny-model" in notes[0]
    parse_model_spec("local:tiny-model", notify=notes.append)
    assert len(notes) == 1  # assembled once


def test_the_default_notice_goes_to_stderr(fake: FakeModel, capsys: pytest.CaptureFixture[str]) -> None:
    parse_model_spec("local:tiny-model")
    captured = capsys.readouterr()
    assert "assembling tiny-model" in captured.err and captured.out == ""


def test_a_known_name_whose_parts_are_missing_says_how_to_pull(fake: FakeModel, cache: Path) -> None:
    fake.remove_part(1)
    with pytest.raises(ModelError, match=r"tiny-model is not installed .*'ponder models pull tiny-model'"):
        parse_model_spec("local:tiny-model")
    assert not (cache / "tiny-model.gguf").exists()


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model_spec("local:qwen-coder-7b")
    message = str(info.value)
    assert "qwen-coder-0.5b" in message and "qwen-coder-1.5b" in message and "ponder models" in message
    with pytest.raises(ConfigError, match=r"must be a \.gguf file or a known name"):
        parse_model_spec("local:/models/model.bin")


def test_plain_local_and_gguf_paths_are_unchanged() -> None:
    default = parse_model_spec("local")
    assert (default.target, default.named) == (None, None)
    assert default.describe() == "local (embedded SmolLM2-135M-Instruct)"
    path = parse_model_spec("local:/models/x.gguf")
    assert (path.target, path.named, path.describe()) == ("/models/x.gguf", None, "local:x.gguf")


def test_threads_are_checked_and_kept() -> None:
    assert parse_model_spec("local", threads=2).threads == 2
    assert parse_model_spec("local").threads is None
    with pytest.raises(ConfigError, match="--threads must be at least 1"):
        parse_model_spec("local", threads=0)


def test_llama_server_gets_threads_only_when_given(tmp_path: Path) -> None:
    binary = tmp_path / "llama-server"
    default = LlamaServer(tmp_path / "m.gguf", binary=binary, slots=16, ctx_per_slot=4096).command()
    assert "--threads" not in default and "--threads-batch" not in default
    assert default[default.index("--ctx-size") + 1] == str(16 * 4096)  # llama-server splits it across slots
    given = LlamaServer(tmp_path / "m.gguf", binary=binary, threads=1).command()
    assert given[given.index("--threads") + 1] == "1" and given[given.index("--threads-batch") + 1] == "1"


@pytest.mark.parametrize("command", ["eval", "ask", "serve", "bank record"])
def test_commands_that_start_a_server_take_threads(command: str) -> None:
    from ponder.cli import app

    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--threads" in result.output


def test_threads_reach_the_backend_spec_from_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import ponder.cli_options as options

    seen: dict[str, object] = {}

    def capture(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        raise typer.Exit(0)

    monkeypatch.setattr(options, "parse_model_spec", capture)
    from ponder.cli import app

    result = CliRunner().invoke(app, ["eval", "--model", "local", "--threads", "3", "--limit", "1"])
    assert result.exit_code == 0 and seen["threads"] == 3
