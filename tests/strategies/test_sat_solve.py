"""sat-solve on the fake backend: the solver's answers to the model's clauses, not the model's guesses."""

from __future__ import annotations

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.sat_solve import INSTRUCTIONS, clause_text
from ponder.tasks import load_task
from ponder.tasks.logic import SatChecker, extract_tagged
from ponder.types import GenerationRequest, Problem


def clauses_of(problem: Problem, keep: int | None = None) -> str:
    names = problem.meta["sat"]["variables"]
    lines = [" | ".join(names[lit - 1] if lit > 0 else f"-{names[-lit - 1]}" for lit in clause)
             for clause in problem.meta["sat"]["clauses"][:keep]]
    return "Let me write them.\nCLAUSES:\n" + "\n".join(lines) + "\nEND\nANSWER: impossible"


def script_for(direct: list[str], translate: list[str], repaired: str | None = None):  # type: ignore[no-untyped-def]
    def script(request: GenerationRequest, index: int) -> str:
        if request.messages[0]["content"] != INSTRUCTIONS:
            return direct[index % len(direct)]
        if repaired is not None and "could not read" in request.messages[-1]["content"]:
            return repaired
        return translate[index % len(translate)]

    return script


@pytest.mark.parametrize("index", [0, 1])
async def test_solver_answers_where_the_model_guesses_wrong(index: int) -> None:
    problem = load_task("sat-story", size=2)[index]
    satisfiable = problem.meta["sat"]["satisfiable"]
    assert satisfiable == (index == 0)
    names = problem.meta["sat"]["variables"]
    guess = "ANSWER: impossible" if satisfiable else f"ANSWER: {names[0]}, {names[2]}"
    script = script_for([guess], [clauses_of(problem)])
    sc = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(script), problem), n=3)
    assert not await problem.checker(sc.answer, problem)
    ctx = Ctx(FakeBackend(script), problem)
    result = await get_strategy("sat-solve")(problem, ctx, k=3)
    assert await problem.checker(result.answer, problem)
    assert result.answer == ("UNSAT" if not satisfiable else result.answer) and result.confidence == 1.0
    assert result.info["verdicts"] == ["SAT" if satisfiable else "UNSAT"] * 3
    assert all([await problem.checker(t.answer, problem) for t in result.traces])
    assert ctx.usage.completion_tokens == sum(t.completion_tokens for t in result.traces) > 0


def tiny_problem() -> Problem:
    clauses = [[1, 2], [-1]]  # a or b; not a  ->  only b
    return Problem(id="tiny", messages=[{"role": "user", "content": "rules: a or b; not a"}], gold="b",
                   checker=SatChecker(clauses, ["a", "b"]), extract=extract_tagged,
                   meta={"sat": {"variables": ["a", "b"], "clauses": clauses}})


async def test_consensus_picks_the_assignment_most_translations_accept() -> None:
    problem = tiny_problem()
    # the first translation forgets "not a" and forces a; its solver model is wrong for the other two
    script = script_for(["ANSWER: a"], ["CLAUSES:\na\nEND", "CLAUSES:\na | b\n-a\nEND", "CLAUSES:\nb | a\n-a\nEND"])
    result = await get_strategy("sat-solve")(problem, Ctx(FakeBackend(script), problem), k=3)
    assert result.answer == "b" and result.info["agreement"] == 2
    assert [t.answer for t in result.traces] == ["a", "b", "b"]
    assert await problem.checker(result.answer, problem)


async def test_unsat_majority_wins() -> None:
    problem = tiny_problem()
    script = script_for(["ANSWER: a"], ["CLAUSES:\na\n-a\nEND", "CLAUSES:\nb\nEND", "CLAUSES:\nb\n-b\nEND"])
    result = await get_strategy("sat-solve")(problem, Ctx(FakeBackend(script), problem), k=3)
    assert result.answer == "UNSAT" and result.votes == {"UNSAT": 2.0, "b": 1.0}


async def test_refinement_sends_the_parser_error_back() -> None:
    problem = load_task("sat-story", limit=1)[0]
    broken = "CLAUSES:\n" + problem.meta["sat"]["variables"][0] + " comes | Ben\nEND"
    script = script_for(["ANSWER: impossible"], [broken], repaired=clauses_of(problem))
    plain = await get_strategy("sat-solve")(problem, Ctx(FakeBackend(script), problem), k=2)
    assert plain.answer is None and plain.info["failures"] == {"ParseError": 2}
    assert "unknown variable 'comes'" in plain.info["errors"][0]
    backend = FakeBackend(script)
    refined = await get_strategy("sat-solve")(problem, Ctx(backend, problem), k=2, refine=2)
    assert await problem.checker(refined.answer, problem)
    assert len(refined.traces) == 4 and refined.info["failures"] == {}
    assert [t.answer is None for t in refined.traces] == [True, True, False, False]
    feedback = backend.calls[-1].request.messages
    assert feedback[-2] == {"role": "assistant", "content": broken}
    assert "unknown variable 'comes'" in feedback[-1]["content"]


def test_clause_text_takes_the_last_block() -> None:
    assert clause_text("CLAUSES:\nx\nEND\nCLAUSES:\na | b\n-a\nEND\nANSWER: b") == "\na | b\n-a"
    assert clause_text("a | b") == "a | b"


@pytest.mark.parametrize(("params", "message"), [
    ({"k": 0}, "'k' must be >= 1"), ({"shots": 3}, "'shots' must be >= 0, <= 2, got 3"),
    ({"refine": -1}, "'refine' must be >= 0"),
])
async def test_bad_parameters(params: dict[str, int], message: str) -> None:
    problem = tiny_problem()
    with pytest.raises(ConfigError, match=message):
        await get_strategy("sat-solve")(problem, Ctx(FakeBackend(["x"]), problem), **params)
