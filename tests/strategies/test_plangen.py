from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import pytest

from ponder.agents import close_agents, install_agent
from ponder.backends.fake import FakeBackend
from ponder.context import Ctx, Sampling
from ponder.errors import ConfigError
from ponder.strategies import StrategyInfo, get_strategy
from ponder.strategies import plangen as plangen_module
from ponder.strategies.plangen import Arm, choose, parse_algorithms, read_score
from ponder.types import GenerationRequest, Problem, Result
from tests.conftest import make_problem

QUESTION = "What is 3 + 4?"
CONSTRAINTS = "The answer must be the sum of 3 and 4.\nThe answer is a single number."
Script = Callable[[GenerationRequest, int], str]


def is_constraint(prompt: str) -> bool:
    return prompt.startswith("Extract the instance-specific constraints")


def is_selection(prompt: str) -> bool:
    return "Reply with the number of the algorithm only." in prompt


def is_verification(prompt: str) -> bool:
    return prompt.startswith("You are verifying a proposed solution")


def constraint_agent(request: GenerationRequest, index: int) -> str:
    return CONSTRAINTS


def selection_agent(pick: str) -> Script:
    return lambda request, index: pick


def verification_agent(scores: dict[str, int]) -> Script:
    def script(request: GenerationRequest, index: int) -> str:
        prompt = request.messages[-1]["content"]
        assert CONSTRAINTS in prompt  # verification is guided by the extracted constraints
        answer = re.search(r"whether its final answer \((.*?)\) is right", prompt)
        assert answer is not None
        return f"Constraint 1 checked against the answer {answer.group(1)}.\nScore: {scores[answer.group(1)]}"

    return script


def solver(request: GenerationRequest, index: int) -> str:
    """Greedy decoding slips (6); sampled chains of thought get 7."""
    if request.temperature == 0:
        return "3 + 4 = 6. The answer is 6."
    return "Counting on from 3: 4, 5, 6, 7. The answer is 7."


def one_model(pick: str, scores: dict[str, int]) -> Script:
    """All agents and the algorithms on one model, told apart by their prompts."""
    roles = {"constraint": constraint_agent, "selection": selection_agent(pick),
             "verification": verification_agent(scores)}

    def script(request: GenerationRequest, index: int) -> str:
        prompt = request.messages[-1]["content"]
        for role, test in (("constraint", is_constraint), ("selection", is_selection),
                           ("verification", is_verification)):
            if test(prompt):
                return roles[role](request, index)
        return solver(request, index)

    return script


@pytest.fixture
async def agents() -> AsyncIterator[None]:
    yield
    await close_agents()


async def test_verification_sends_a_rejected_answer_back_for_another_algorithm() -> None:
    problem = make_problem(QUESTION, gold="7")
    backend = FakeBackend(one_model("1", {"6": 20, "7": 95}))
    result = await get_strategy("plangen")(problem, Ctx(backend, problem), algorithms="cot,self-consistency:n=3")
    assert [step["algorithm"] for step in result.info["iterations"]] == ["cot", "self-consistency:n=3"]
    assert [step["reward"] for step in result.info["iterations"]] == [0.2, 0.95]
    assert result.answer == "7" and result.confidence == 0.95 and result.info["stopped"] == "verified"
    assert result.votes == {"6": 0.2, "7": 0.95} and result.info["constraints"] == CONSTRAINTS
    assert result.info["prior"] == "cot" and result.info["chosen"] == "self-consistency:n=3"


async def test_the_selection_agents_prior_picks_the_first_algorithm() -> None:
    problem = make_problem(QUESTION, gold="7")
    backend = FakeBackend(one_model("2", {"6": 20, "7": 95}))
    result = await get_strategy("plangen")(problem, Ctx(backend, problem), algorithms="cot,self-consistency:n=3")
    assert [step["algorithm"] for step in result.info["iterations"]] == ["self-consistency:n=3"]
    assert result.answer == "7"
    solver_calls = [c for c in backend.calls if c.request.messages == problem.messages]
    assert [c.request.n for c in solver_calls] == [3]  # greedy cot never ran


async def test_ucb_returns_to_the_algorithm_with_the_better_reward() -> None:
    problem = make_problem(QUESTION, gold="7")
    backend = FakeBackend(one_model("1", {"6": 30, "7": 60}))
    result = await get_strategy("plangen")(problem, Ctx(backend, problem), algorithms="cot,self-consistency:n=3",
                                           iterations=3, threshold=1.0)
    assert [step["algorithm"] for step in result.info["iterations"]] == ["cot", "self-consistency:n=3",
                                                                         "self-consistency:n=3"]
    assert result.answer == "7" and result.info["stopped"] == "iterations"
    assert len(result.traces) == 1 + 3 + 3


def test_modified_ucb_terms() -> None:
    cot, sc = parse_algorithms("cot,self-consistency:n=4")
    assert sc.params["n"] == 4
    sc.prior = 1.0
    assert choose([cot, sc]) is sc  # untried arms first, the prior breaks the tie
    sc.pulls, sc.total_reward = 1, 0.9
    assert choose([cot, sc]) is cot  # an untried arm is explored before exploiting
    cot.pulls, cot.total_reward = 1, 0.2
    assert choose([cot, sc]) is sc
    cot.prior, sc.prior = 1.0, 0.0
    cot.total_reward = 0.85
    assert cot.ucb(2) > sc.ucb(2)  # with equal evidence the prior tips a close call...
    cot.pulls, sc.pulls, cot.total_reward, sc.total_reward = 10, 10, 8.5, 9.0
    assert sc.ucb(20) > cot.ucb(20)  # ...but fades as rewards accumulate
    sc.recoveries = 5
    assert sc.ucb(20) == pytest.approx(Arm("x", sc.info, {}, pulls=10, total_reward=9.0).ucb(20) + 0.2 * 0.5)


async def test_agents_on_their_own_models_are_all_counted(agents: None) -> None:
    problem = make_problem(QUESTION, gold="7")
    roles = {"fake:constraint": FakeBackend(constraint_agent, name="constraint"),
             "fake:verifier": FakeBackend(verification_agent({"6": 10, "7": 90}), name="verifier"),
             "fake:selector": FakeBackend(selection_agent("1"), name="selector")}
    for spec, backend in roles.items():
        install_agent(spec, backend)
    run_model = FakeBackend(solver)
    ctx = Ctx(run_model, problem)
    result = await get_strategy("plangen")(problem, ctx, algorithms="cot,self-consistency:n=2",
                                           agents="fake:constraint,fake:verifier,fake:selector")
    assert result.answer == "7"
    assert [len(roles[s].calls) for s in roles] == [1, 2, 1] and len(run_model.calls) == 2
    calls = run_model.calls + [c for b in roles.values() for c in b.calls]
    assert ctx.usage.completion_tokens == sum(c.tokens_sent for c in calls) > 0
    assert ctx.usage.calls == len(calls) == len(ctx.calls)
    role_traces = [t for c in ctx.calls if c.request.messages != problem.messages for t in c.traces]
    assert len(role_traces) == 4 and all(t.answer is None for t in role_traces)  # notes, not answers
    assert result.info["agents"] == {"constraint": "fake:constraint", "verification": "fake:verifier",
                                     "selection": "fake:selector"}


async def test_an_unreadable_verdict_counts_as_no_reward() -> None:
    problem = make_problem(QUESTION, gold="7")

    def mumbling(request: GenerationRequest, index: int) -> str:
        prompt = request.messages[-1]["content"]
        return "It seems fine overall." if is_verification(prompt) else one_model("1", {})(request, index)

    result = await get_strategy("plangen")(problem, Ctx(FakeBackend(mumbling), problem), algorithms="cot",
                                           iterations=1)
    (step,) = result.info["iterations"]
    assert step["reward"] == 0.0 and step["verdict"] == "no score in the verifier's reply"
    assert result.answer == "6" and result.confidence == 0.0


async def test_an_answer_assembled_by_a_search_is_verified_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree search's answer comes from many partial traces, none of which states it."""

    async def search(problem: Problem, ctx: Ctx) -> Result:
        steps = await ctx.sample([{"role": "user", "content": "Next step for: " + problem.question}], n=2)
        return Result(answer="7", traces=steps)

    real = plangen_module.get_strategy
    fake_search = StrategyInfo("search", search, {}, "A tree search over partial steps.", "")
    monkeypatch.setattr(plangen_module, "get_strategy", lambda name: fake_search if name == "search" else real(name))
    problem = make_problem(QUESTION, gold="7")
    roles = one_model("1", {"7": 95})

    def model(request: GenerationRequest, index: int) -> str:
        prompt = request.messages[-1]["content"]
        return "Start from 3 and count on." if prompt.startswith("Next step for") else roles(request, index)

    backend = FakeBackend(model)
    result = await get_strategy("plangen")(problem, Ctx(backend, problem), algorithms="search")
    (step,) = result.info["iterations"]
    assert (step["reward"], step["verdict"]) == (0.95, "scored") and result.answer == "7"
    verifier_prompt = next(c.request for c in backend.calls if is_verification(c.request.messages[-1]["content"]))
    assert "reported only its final answer.) The answer is 7." in verifier_prompt.messages[-1]["content"]


async def test_an_exhausted_budget_returns_the_best_plan_so_far() -> None:
    problem = make_problem(QUESTION, gold="7")
    probe = Ctx(FakeBackend(one_model("1", {"6": 20, "7": 95})), problem, sampling=Sampling(max_tokens=64))
    await get_strategy("plangen")(problem, probe, algorithms="cot,self-consistency:n=3", iterations=1)
    # enough for the first iteration's calls to start (each reserves n x max_tokens), not for a second one
    last = probe.calls[-1]
    budget = probe.usage.completion_tokens - last.usage.completion_tokens + last.request.n * 64
    ctx = Ctx(FakeBackend(one_model("1", {"6": 20, "7": 95})), problem, token_budget=budget,
              sampling=Sampling(max_tokens=64))
    result = await get_strategy("plangen")(problem, ctx, algorithms="cot,self-consistency:n=3")
    assert result.info["stopped"] == "budget" and result.answer == "6"


def test_read_score() -> None:
    assert read_score("All constraints hold.\nScore: 85") == 0.85
    assert read_score("**Score:** 90/100") == 0.9
    assert read_score("I would give it 70.") == 0.7
    assert read_score("Score: 250") is None and read_score("no idea") is None
    assert read_score("Score: 1000") is None
    assert read_score("score" + " " * 20_000 + ":" + " " * 20_000) is None  # no slow backtracking on blanks


@pytest.mark.parametrize(("params", "message"), [
    ({"algorithms": "cot,nonsense"}, "entry 'nonsense'.*unknown strategy"),
    ({"algorithms": "cot,plangen"}, "plangen cannot select itself"),
    ({"algorithms": "self-consistency:n"}, "write parameters as name:param=value"),
    ({"algorithms": "self-consistency:n=many"}, "parameter 'n' must be int"),
    ({"algorithms": "self-consistency:width=3"}, "has no parameter 'width'"),
    ({"algorithms": "cot,cot"}, "listed twice"),
    ({"iterations": 0}, "'iterations' must be >= 1, got 0"),
    ({"threshold": 1.5}, "'threshold' must be >= 0, <= 1, got 1.5"),
    ({"agents": "fake,https"}, "'agents'.*unknown --model 'https'"),
])
async def test_bad_parameters_are_refused(params: dict[str, object], message: str) -> None:
    problem = make_problem(QUESTION)
    with pytest.raises(ConfigError, match=message):
        await get_strategy("plangen")(problem, Ctx(FakeBackend(), problem), **params)
