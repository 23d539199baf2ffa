"""Search strategies read a problem's state space only through ponder.search.domain: a domain no built-in task
knows (a plugin's) is searched by tot and verified by mcts like Game of 24."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ponder.answers import extract_answer
from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.search import domain as domains
from ponder.strategies import get_strategy
from ponder.types import GenerationRequest, Problem

GOAL = 5


@dataclass(frozen=True)
class Climb:
    """Start at 0, each step adds 1 or 2; the goal is to stand exactly on GOAL."""

    name: str = "climb"

    def start(self) -> int:
        return 0

    def steps_needed(self) -> int:
        return GOAL

    def propose_prompt(self, state: int) -> str:
        return f"At {state}. Steps?"

    def value_prompt(self, state: int) -> str:
        return f"Can {state} reach {GOAL}?"

    def proposals(self, reply: str) -> list[str]:
        return [line for line in reply.splitlines() if line.startswith("+")]

    def step(self, state: int, line: str) -> tuple[int, str] | None:
        if line.strip() not in ("+1", "+2") or state + int(line.strip()[1]) > GOAL:
            return None
        new = state + int(line.strip()[1])
        return new, f"{line.strip()} -> {new}"

    def key(self, state: int) -> int:
        return state

    def show(self, state: int) -> str:
        return str(state)

    def finished(self, state: int) -> bool:
        return state == GOAL

    def solved(self, state: int) -> bool:
        return state == GOAL

    def answer(self, state: int) -> str:
        return str(state)

    def verify(self, answer: str | None) -> bool:
        return answer == str(GOAL)


@pytest.fixture
def climb_problem() -> Problem:
    async def check(answer: str | None, problem: Problem) -> bool:
        return answer == str(GOAL)

    problem = Problem("climb/1", [{"role": "user", "content": "Climb to 5."}], str(GOAL), check, extract_answer,
                      meta={"climb": True})
    finder = domains.register_domain(lambda p: Climb() if p.meta.get("climb") else None)
    yield problem
    domains._FINDERS.remove(finder)


def climbing_model() -> FakeBackend:
    def script(request: GenerationRequest, index: int) -> str:
        prompt = request.messages[-1]["content"]
        if prompt.endswith("Steps?"):
            return "+1\n+2\n+7"  # the third is invalid and must be rejected by the domain
        return "sure"

    return FakeBackend(script)


async def test_tot_searches_a_plugin_domain(climb_problem: Problem) -> None:
    assert isinstance(domains.domain_of(climb_problem), Climb)
    result = await get_strategy("tot")(climb_problem, Ctx(climbing_model(), climb_problem), breadth=2)
    assert result.answer == str(GOAL) and result.info["mode"] == "puzzle" and result.info["exact_reward"]
    assert result.info["rejected_steps"] > 0  # "+7" was refused by the domain's step check


def test_problems_without_a_domain_have_none() -> None:
    plain = Problem("p", [{"role": "user", "content": "2+2?"}], "4", None, extract_answer)  # type: ignore[arg-type]
    assert domains.domain_of(plain) is None
