"""The Python API: ponder.ask / ponder.solve, and Session owning the backend and the agent backends."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import ponder
from ponder.agents import install_agent
from ponder.backends import FakeBackend, parse_model_spec
from ponder.errors import ConfigError
from ponder.runner import EvalConfig, run_eval
from ponder.store import Store


def test_ask_answers_with_a_typed_result() -> None:
    answer = ponder.ask("What is 3 + 4?", strategy="self-consistency", model="fake", n=4, gold="7")
    assert isinstance(answer, ponder.Answer)
    assert answer.answer is not None and answer.votes and answer.params["n"] == 4
    assert answer.usage.traces == 4 and answer.usage.completion_tokens > 0 and len(answer.traces) == 4
    assert answer.correct is (answer.answer == "7")  # a typed field, not a key of info
    assert "correct" not in answer.info
    assert ponder.ask("What is 3 + 4?", model="fake", n=2).correct is None  # no gold: nothing to judge


async def test_solve_in_async_code_and_ask_refuses_a_running_loop() -> None:
    answer = await ponder.solve("What is 3 + 4?", "cot", model="fake", gold="7")
    assert answer.strategy == "cot" and answer.usage.calls == 1
    with pytest.raises(ConfigError, match=r"await ponder\.solve"):
        ponder.ask("What is 3 + 4?", model="fake")
    with pytest.raises(ConfigError, match="no parameter 'bogus'"):
        await ponder.solve("What is 3 + 4?", model="fake", bogus=1)


class _Tracked(FakeBackend):
    closed = 0

    async def aclose(self) -> None:
        type(self).closed += 1
        await super().aclose()


async def test_the_session_closes_its_agents_and_its_backend() -> None:
    _Tracked.closed = 0
    async with ponder.Session(_Tracked(["The answer is 7."])) as session:
        with session.active():
            install_agent("fake", _Tracked(["The answer is 7."]))
        answer = await session.solve("What is 3 + 4?", "debate", agents="fake,run", n_agents=2, rounds=0)
        assert answer.answer == "7"
        assert _Tracked.closed == 0
    assert _Tracked.closed == 2  # the agent opened inside the session and the session's own backend
    with pytest.raises(ConfigError, match="not open"):
        _ = session.backend


async def test_evaluate_stores_the_run_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with ponder.Session("fake") as session:
        first = await session.evaluate("add1", "self-consistency", store=path, limit=3, n=2)
        again = await session.evaluate("add1", "self-consistency", store=path, limit=3, n=2)
    assert first.progress.done == 3 and again.progress.skipped == 3 and again.run_id == first.run_id
    with Store(path) as store:
        assert len(store.results(first.run_id)) == 3


async def test_run_eval_leaves_its_config_alone(tmp_path: Path) -> None:
    config = EvalConfig(task="add1", strategy="self-consistency", model=parse_model_spec("fake"),
                        params={"n": "2"}, limit=1)
    before = dataclasses.replace(config, params=dict(config.params))
    with Store(tmp_path / "r.db") as store:
        await run_eval(config, store)
    assert config == before  # the string "2" was coerced on a copy
