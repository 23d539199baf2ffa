"""linc on the fake backend: the prover's verdicts, not the model's stated labels, decide."""

from __future__ import annotations

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.linc import STOP, parse_translation
from ponder.tasks import load_task
from ponder.types import GenerationRequest, Problem
from tests.conftest import make_problem

UNPARSEABLE = "TEXT:\tsomething\nFOL:\tall x. (Shy(x) ->\n" + STOP


def logic_problem(index: int) -> Problem:
    return load_task("logic", size=index + 1, offset=index)[0]


def formalisation(problem: Problem, stated: str, drop_premises: bool = False) -> str:
    """A translation of the problem; ``stated`` is a (misleading) label written inside it."""
    pairs = [] if drop_premises else list(zip(problem.meta["premises"], problem.meta["premises_fol"], strict=True))
    pairs.append((problem.meta["conclusion"], problem.meta["conclusion_fol"]))
    lines = "".join(f"TEXT:\t{text}\nFOL:\t{fol}\n" for text, fol in pairs)
    return f"{lines}ANSWER: {stated}\n{STOP}\nANSWER: {stated}"


def script_for(problem: Problem, direct: list[str], formal: list[str]):  # type: ignore[no-untyped-def]
    def script(request: GenerationRequest, index: int) -> str:
        if "<EVALUATE>" in request.messages[-1]["content"]:
            return formal[index % len(formal)]
        return direct[index % len(direct)]

    return script


def wrong_label(gold: str | None) -> str:
    return {"True": "False", "False": "Unknown", "Unknown": "True"}[str(gold)]


async def test_prover_overrules_the_models_majority() -> None:
    problem = logic_problem(0)
    assert problem.gold == "True"
    direct = ["Hmm. ANSWER: False", "I think ANSWER: False", "ANSWER: True"]
    formal = [formalisation(problem, "False"), UNPARSEABLE, formalisation(problem, "False"),
              formalisation(problem, "False", drop_premises=True), formalisation(problem, "False")]
    script = script_for(problem, direct, formal)
    sc = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(script), problem), n=5)
    assert sc.answer == "False"  # the model's own majority is wrong
    ctx = Ctx(FakeBackend(script), problem)
    result = await get_strategy("linc")(problem, ctx, k=5)
    assert result.answer == "True" and await problem.checker(result.answer, problem)
    assert result.votes == {"True": 3.0, "Unknown": 1.0}
    assert result.confidence == pytest.approx(3 / 5)
    assert result.info["verdicts"] == ["True", None, "True", "Unknown", "True"]
    assert result.info["decided"] == 4 and result.info["failures"] == {"ParseError": 1}
    assert [t.answer for t in result.traces] == result.info["verdicts"]
    assert ctx.usage.traces == 5 and ctx.usage.completion_tokens == sum(t.completion_tokens for t in result.traces)


@pytest.mark.parametrize("index", [0, 1, 2])
async def test_each_label_comes_from_the_prover(index: int) -> None:
    problem = logic_problem(index)
    stated = wrong_label(problem.gold)
    script = script_for(problem, [f"ANSWER: {stated}"], [formalisation(problem, stated)])
    sc = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(script), problem), n=3)
    linc = await get_strategy("linc")(problem, Ctx(FakeBackend(script), problem), k=3)
    assert sc.answer == stated != problem.gold
    assert linc.answer == problem.gold and linc.confidence == 1.0


async def test_unusable_translations_are_dropped_and_counted() -> None:
    problem = logic_problem(0)
    contradiction = f"TEXT:\ta\nFOL:\tKind(alice)\nTEXT:\tb\nFOL:\t-Kind(alice)\nTEXT:\tc\nFOL:\tShy(bob)\n{STOP}"
    arity = f"FOL:\tKind(alice)\nFOL:\tKind(alice, bob)\n{STOP}"
    script = script_for(problem, ["ANSWER: True"], [UNPARSEABLE, contradiction, arity, "no formulas at all"])
    result = await get_strategy("linc")(problem, Ctx(FakeBackend(script), problem), k=4)
    assert result.answer is None and result.confidence == 0.0 and result.votes == {}
    assert result.info["failures"] == {"ParseError": 3, "InconsistentPremises": 1}
    assert result.info["decided"] == 0 and len(result.info["errors"]) == 4


async def test_prompt_has_the_shots_and_the_problem() -> None:
    problem = logic_problem(1)
    backend = FakeBackend(script_for(problem, ["x"], [formalisation(problem, "x")]))
    await get_strategy("linc")(problem, Ctx(backend, problem), k=2, shots=3)
    (call,) = backend.calls
    messages = call.request.messages
    assert call.request.n == 2 and STOP in (call.request.stop or [])
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert all("FOL:" in m["content"] for m in messages if m["role"] == "assistant")
    assert all(p in messages[-1]["content"] for p in problem.meta["premises"])
    assert messages[-1]["content"].endswith("<EVALUATE>") and problem.meta["conclusion"] in messages[-1]["content"]


def test_parse_translation_follows_linc() -> None:
    text = "TEXT:\tA\nFOL:\tP(a)\nTEXT:\tB\nFOL:\tQ(a)\n</EVALUATE>\nFOL:\tjunk"
    assert parse_translation(text) == (["P(a)"], "Q(a)")


@pytest.mark.parametrize(("params", "message"), [
    ({"k": 0}, "'k' must be >= 1"), ({"shots": 9}, "'shots' must be >= 0, <= 8, got 9"),
    ({"shots": -1}, "'shots' must be >= 0, <= 8, got -1"),
])
async def test_bad_parameters(params: dict[str, int], message: str) -> None:
    problem = logic_problem(0)
    with pytest.raises(ConfigError, match=message):
        await get_strategy("linc")(problem, Ctx(FakeBackend(["x"]), problem), **params)


async def test_needs_premises_and_a_conclusion() -> None:
    problem = make_problem()
    with pytest.raises(ConfigError, match=r"meta\['premises'\]"):
        await get_strategy("linc")(problem, Ctx(FakeBackend(["x"]), problem))
