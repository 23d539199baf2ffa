"""The registry: listing, lookup, unknown names and parameter checks."""

from __future__ import annotations

import pytest

from ponder.errors import ConfigError, TaskError
from ponder.tasks import get_task, list_tasks, load_task


def test_list_tasks() -> None:
    tasks = {t.name: t for t in list_tasks()}
    for name in ["gsm8k", "math500", "aime24", "amc23", "add1", "apples", "larger", "add21", "gsm8k-abstain",
                 "add1-abstain", "gym:<dataset>"]:
        assert name in tasks
        assert tasks[name].description and "\n" not in tasks[name].description
        assert tasks[name].max_tokens > 0
    assert tasks["gsm8k"].source == "jsonl"
    assert tasks["add1"].source == "generated"
    assert tasks["gym:<dataset>"].source == "reasoning-gym"
    assert "openai/gsm8k" in tasks["gsm8k"].data


def test_unknown_task_lists_known_names() -> None:
    with pytest.raises(TaskError) as info:
        load_task("gsm9k")
    message = str(info.value)
    assert message.startswith("unknown task 'gsm9k'; did you mean gsm8k?")
    assert "known tasks: gsm8k, math500, aime24, amc23, gsm8k-abstain, add1, apples, larger, add21, add1-abstain, " \
        in message
    assert message.endswith(", gym:<dataset>")
    assert "\n" not in message
    with pytest.raises(TaskError, match=r"^unknown task 'nothing-like-it'; known tasks: "):
        get_task("nothing-like-it")


def test_gym_placeholder_cannot_be_loaded_directly() -> None:
    spec = next(t for t in list_tasks() if t.name == "gym:<dataset>")
    with pytest.raises(TaskError, match="name a reasoning-gym dataset"):
        spec.loader(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": -1}, "limit must be >= 0"),
        ({"offset": -2}, "offset must be >= 0"),
        ({"size": 0}, "size must be >= 1"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_task("add1", **kwargs)
