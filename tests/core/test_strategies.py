from __future__ import annotations

from typing import Literal

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies import coerce_params, get_strategy, list_strategies, strategy
from ponder.types import Problem, Result
from tests.conftest import make_problem


def test_builtins_are_registered_with_typed_params() -> None:
    names = {s.name for s in list_strategies()}
    assert {"cot", "self-consistency"} <= names
    sc = get_strategy("self-consistency")
    assert sc.params["n"].type is int and sc.params["n"].default == 16
    assert "Wang" in sc.doc


def test_unknown_strategy_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match="did you mean self-consistency"):
        get_strategy("self-consistancy")


def test_params_are_coerced_and_checked() -> None:
    sc = get_strategy("self-consistency")
    assert coerce_params(sc, {"n": "8"}) == {"n": 8, "prompt": "none", "abstain_below": 0.0}
    with pytest.raises(ConfigError, match="'n' must be int"):
        coerce_params(sc, {"n": "eight"})
    with pytest.raises(ConfigError, match="no parameter 'm'; accepted: n, prompt, abstain_below"):
        coerce_params(sc, {"m": 3})
    cot = get_strategy("cot")
    assert coerce_params(cot, {"greedy": "false"}) == {"greedy": False}


def test_literal_params() -> None:
    @strategy("_test-literal")
    async def _lit(problem: Problem, ctx: Ctx, mode: Literal["a", "b"] = "a") -> Result:
        return Result(answer=mode)

    info = get_strategy("_test-literal")
    assert coerce_params(info, {"mode": "b"}) == {"mode": "b"}
    with pytest.raises(ConfigError, match="one of a, b"):
        coerce_params(info, {"mode": "c"})


async def test_self_consistency_beats_a_single_sample_on_scripted_traces() -> None:
    # first sample is wrong, but the majority is right: voting must change the answer
    backend = FakeBackend(["The answer is 8.", "The answer is 7.", "The answer is 7.0", "The answer is 9."])
    problem = make_problem()
    single = await get_strategy("cot")(problem, Ctx(FakeBackend(backend.script), problem), greedy=False)
    assert single.answer == "8"
    result = await get_strategy("self-consistency")(problem, Ctx(backend, problem), n=4)
    assert result.answer in {"7", "7.0"}
    assert result.confidence == pytest.approx(0.5)
    assert len(result.traces) == 4 and sum(result.votes.values()) == 4


async def test_cot_is_greedy_by_default() -> None:
    backend = FakeBackend(["The answer is 7."])
    problem = make_problem()
    result = await get_strategy("cot")(problem, Ctx(backend, problem))
    assert backend.calls[0].request.temperature == 0.0 and result.answer == "7"
