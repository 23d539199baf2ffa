"""MCTS on scripted models: the right answer lies behind a first step that looks better than it is."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.search.tree import SearchTree
from ponder.strategies import get_strategy
from ponder.strategies import mcts as mcts_module
from ponder.strategies.mcts import CRITIQUE, REWRITE
from ponder.tasks.game24 import Puzzle, check_expression, puzzle_problem
from ponder.types import GenerationRequest, Problem, Result
from tests.conftest import make_problem


class ScriptedScorer:
    """Scores the newest step by its text; counts its calls (it draws nothing from the model)."""

    name = "scripted"

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.calls = 0

    async def score(self, ctx: Ctx, problem: Problem, steps: Sequence[str]) -> float:
        self.calls += 1
        return next((v for key, v in self.scores.items() if key in steps[-1]), 0.0)


def use_scorer(monkeypatch: pytest.MonkeyPatch, scorer: ScriptedScorer) -> None:
    monkeypatch.setattr(mcts_module, "make_scorer", lambda spec: scorer)


def prefill(request: GenerationRequest) -> str:
    last = request.messages[-1]
    return last["content"] if last["role"] == "assistant" else ""


# "What is 3 + 4?": step A looks better (0.6) than step B (0.5), but every answer under A is wrong.
def arithmetic_steps(request: GenerationRequest, index: int) -> str:
    before = prefill(request)
    if not before:
        return ["Step A: think of 3 + 5.", "Step B: think of 3 + 4."][index % 2]
    if before.startswith("Step A"):
        return ["The answer is 8.", "The answer is 9."][index % 2]
    return "The answer is 7."


SCORES = {"Step A": 0.6, "Step B": 0.5, "is 8": 0.1, "is 9": 0.1, "is 7": 0.95}


async def run_mcts(backend: FakeBackend, problem: Problem, ctx_budget: int | None = None,
                   **params: object) -> tuple[Result, Ctx]:
    ctx = Ctx(backend, problem, token_budget=ctx_budget)
    return await get_strategy("mcts")(problem, ctx, **params), ctx


def token_total(result: Result) -> int:
    tree = SearchTree.from_json(result.info["tree"])
    return sum(n.tokens + n.meta.get("eval_tokens", 0) for n in tree.nodes)


async def test_uct_leaves_the_step_that_looked_best(monkeypatch: pytest.MonkeyPatch) -> None:
    use_scorer(monkeypatch, ScriptedScorer(SCORES))
    problem = make_problem("What is 3 + 4?", "7")
    # three iterations only see A's subtree below the first step: the answer is A's
    short, _ = await run_mcts(FakeBackend(arithmetic_steps), problem, iterations=3, k=2, evaluation="scorer")
    assert short.answer == "8"
    result, ctx = await run_mcts(FakeBackend(arithmetic_steps), problem, iterations=12, k=2, evaluation="scorer")
    assert result.answer == "7" and result.confidence == pytest.approx(0.95)
    tree = SearchTree.from_json(result.info["tree"])
    a, b = (next(n for n in tree.nodes if n.step.startswith(s)) for s in ("Step A", "Step B"))
    assert b.visits > a.visits and b.selected and not a.selected
    assert tree.root.visits == result.info["iterations"]
    assert token_total(result) == ctx.usage.completion_tokens > 0


async def test_select_by_value_reads_the_best_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    use_scorer(monkeypatch, ScriptedScorer(SCORES))
    problem = make_problem("What is 3 + 4?", "7")
    result, _ = await run_mcts(FakeBackend(arithmetic_steps), problem, iterations=5, k=2, evaluation="scorer",
                               select="value")
    assert result.answer == "7"


def puzzle_steps(request: GenerationRequest, index: int) -> str:
    """1 2 3 4 -> 24 with one step per line. Every rollout fails except one below B's child."""
    before = prefill(request)
    rollout = request.stop is None
    lines = [line for line in before.splitlines() if line]
    if not lines:
        return ["4 - 3 = 1 (left: 1 1 2)", "1 * 2 = 2 (left: 2 3 4)"][index % 2]
    if lines[0].startswith("4 - 3"):
        return "2 + 2 = 4 (left: 4)\nAnswer: (4 - 3 + 1) * 2 = 4" if rollout else "1 + 1 = 2 (left: 2 2)"
    if len(lines) == 1:
        return "Answer: 2 * 3 * 4 = 24" if rollout else "2 * 3 = 6 (left: 4 6)"
    return "4 * 6 = 24 (left: 24)\nAnswer: (1 * 2) * 3 * 4 = 24" if rollout else "4 * 6 = 24 (left: 24)"


async def test_rollouts_with_the_exact_verifier_find_the_deep_solution() -> None:
    problem = puzzle_problem(Puzzle((1, 2, 3, 4), 24), "p")
    # rollout rewards are all 0 for three iterations: no verified answer; the best seen is a wrong one
    short, _ = await run_mcts(FakeBackend(puzzle_steps), problem, iterations=3, k=2, delimiter="\\n")
    assert short.answer is not None and not check_expression(short.answer, [1, 2, 3, 4], 24)
    result, ctx = await run_mcts(FakeBackend(puzzle_steps), problem, iterations=16, k=2, delimiter="\\n")
    assert result.answer == "(1 * 2) * 3 * 4" and result.confidence == 1.0
    assert result.info["iterations"] == 4  # a verified solution ends the search
    assert result.info["scorer"] == "exact verifier"
    tree = SearchTree.from_json(result.info["tree"])
    assert [n.step for n in tree.nodes if n.selected] == ["1 * 2 = 2 (left: 2 3 4)", "2 * 3 = 6 (left: 4 6)"]
    assert token_total(result) == ctx.usage.completion_tokens
    # rollouts are answers (judged per trace by the runner); expansion steps are not
    answers = [t.answer for call in ctx.calls for t in call.traces]
    assert [a for a in answers if a is not None] == ["(4 - 3 + 1) * 2", "2 * 3 * 4", "(4 - 3 + 1) * 2",
                                                      "(1 * 2) * 3 * 4"]


def refine_model(request: GenerationRequest, index: int) -> str:
    asked = request.messages[-1]["content"]
    if asked == CRITIQUE:
        return "3 + 4 is not 8; recount."
    if asked == REWRITE:
        return "3 + 4 = 7. The answer is 7."
    return "3 + 4 = 8. The answer is 8."


async def test_self_refine_expansion_improves_the_drafts(monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = ScriptedScorer({"is 8": 0.2, "is 7": 0.9})
    use_scorer(monkeypatch, scorer)
    problem = make_problem("What is 3 + 4?", "7")
    drafts, _ = await run_mcts(FakeBackend(refine_model), problem, iterations=2, k=2, expansion="refine")
    assert drafts.answer == "8"
    result, ctx = await run_mcts(FakeBackend(refine_model), problem, iterations=6, k=2, expansion="refine")
    assert result.answer == "7"
    tree = SearchTree.from_json(result.info["tree"])
    refined = [n for n in tree.nodes if n.depth == 2]
    assert refined and all(n.meta["critique"] == "3 + 4 is not 8; recount." for n in refined)
    assert token_total(result) == ctx.usage.completion_tokens


async def test_the_model_judges_steps_with_the_default_scorer() -> None:
    def model(request: GenerationRequest, index: int) -> str | Scripted:
        prompt = request.messages[-1]["content"]
        if "Yes or No" in prompt:
            newest = prompt.split("Next step:\n", 1)[1]
            good = newest.startswith(("Step B", "The answer is 7"))
            return Scripted("Yes" if good else "No", confidence=0.9)
        return arithmetic_steps(request, index)

    problem = make_problem("What is 3 + 4?", "7")
    result, ctx = await run_mcts(FakeBackend(model), problem, iterations=10, k=2, evaluation="scorer")
    assert result.answer == "7" and result.info["scorer"] == "judge"
    assert token_total(result) == ctx.usage.completion_tokens


async def test_token_budget_stops_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    use_scorer(monkeypatch, ScriptedScorer(SCORES))
    problem = make_problem("What is 3 + 4?", "7")
    result, ctx = await run_mcts(FakeBackend(arithmetic_steps), problem, iterations=50, k=2, evaluation="scorer",
                                 token_budget=20)
    assert "token_budget" in result.info["budget_stop"] and result.info["iterations"] < 50
    assert ctx.usage.completion_tokens >= 20
    # the run's own budget (BudgetExceeded from ctx) ends the search too, without an error
    capped, _ = await run_mcts(FakeBackend(arithmetic_steps), problem, ctx_budget=20, iterations=50, k=2,
                               evaluation="scorer")
    assert "budget" in capped.info["budget_stop"]


@pytest.mark.parametrize(
    ("params", "named"),
    [({"iterations": 0}, "iterations"), ({"k": 0}, "k"), ({"exploration": -1.0}, "exploration"),
     ({"token_budget": -5}, "token_budget"), ({"delimiter": ""}, "delimiter"), ({"scorer": "oracle"}, "scorer")],
)
async def test_bad_parameters_are_config_errors(params: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        await run_mcts(FakeBackend(arithmetic_steps), make_problem(), **params)
