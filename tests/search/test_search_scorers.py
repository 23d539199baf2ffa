"""Step scorers: the model's P(Yes), the step's token confidence, and make_scorer's specs."""

from __future__ import annotations

import math

import pytest

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.errors import CapabilityError, ConfigError
from ponder.search.scorers import (
    STEP_MEASURES,
    ConfidenceScorer,
    JudgeScorer,
    PRMScorer,
    make_scorer,
    unit_confidence,
)
from ponder.search.steps import Step, expand
from ponder.types import GenerationRequest
from tests.conftest import make_problem
from tests.search.search_scripts import judged_step, likes_seven


async def test_judge_scores_the_newest_step_in_context_by_p_yes() -> None:
    seen: list[GenerationRequest] = []

    def script(request: GenerationRequest, index: int) -> str:
        seen.append(request)
        step = judged_step(request)
        assert step is not None
        return "Yes" if likes_seven(step) else "No"

    problem = make_problem()
    ctx = Ctx(FakeBackend(script), problem)
    scorer = JudgeScorer()
    good = await scorer.score(ctx, problem, ["We add 3 and 4.", "That is seven."])
    bad = await scorer.score(ctx, problem, ["We add 3 and 4.", "That is eight."])
    assert (good, bad) == (1.0, 0.0)
    prompt = seen[0].messages[-1]["content"]
    assert problem.question in prompt and "We add 3 and 4." in prompt and prompt.endswith("Yes or No.")
    assert seen[0].max_tokens == scorer.tokens_per_score and seen[0].temperature == 0.0
    assert scorer.calls == 2 and scorer.fallbacks == 0 and ctx.usage.calls == 2


async def test_judge_without_logprobs_counts_its_text_fallbacks() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend(["No."], logprobs=False), problem)
    scorer = JudgeScorer()
    assert await scorer.score(ctx, problem, ["That is eight."]) == 0.0
    assert scorer.fallbacks == 1


async def test_confidence_ranks_steps_by_the_tokens_that_wrote_them() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend([Scripted("We add them: seven.", 0.95), Scripted("Maybe it is eight.", 0.3)]), problem)
    sure, unsure = await expand(ctx, problem, [], 2)
    scorer = make_scorer("confidence")
    high = await scorer.score(ctx, problem, [sure.step])
    low = await scorer.score(ctx, problem, [unsure.step])
    assert 0.0 < low < high < 1.0
    for measure in STEP_MEASURES:
        other = ConfidenceScorer(measure)
        assert await other.score(ctx, problem, [sure.step]) > await other.score(ctx, problem, [unsure.step])


async def test_confidence_needs_logprobs_and_the_steps_trace() -> None:
    problem = make_problem()
    no_logprobs = Ctx(FakeBackend(["We add."], logprobs=False), problem)
    (candidate,) = await expand(no_logprobs, problem, [], 1)
    with pytest.raises(CapabilityError, match="logprobs"):
        await ConfidenceScorer().score(no_logprobs, problem, [candidate.step])
    ctx = Ctx(FakeBackend(["x"]), problem)
    with pytest.raises(CapabilityError, match="tokens that produced a step"):
        await ConfidenceScorer().score(ctx, problem, ["a plain string step"])
    assert await ConfidenceScorer().score(ctx, problem, [Step("")]) == 0.0


def test_unit_confidence_keeps_order_within_zero_and_one() -> None:
    values = [0.0, 0.5, 2.0, 10.0, 1e6]
    mapped = [unit_confidence(v, "mean") for v in values]
    assert mapped == sorted(mapped) and mapped[0] == 0.0 and mapped[-1] < 1.0
    # neg_perplexity = -exp(-mean logprob) maps to exp(mean logprob), the geometric-mean token probability
    assert unit_confidence(-math.exp(0.5), "neg_perplexity") == pytest.approx(math.exp(-0.5))
    assert unit_confidence(-math.inf, "self_certainty") == 0.0


def test_make_scorer_specs_and_errors() -> None:
    assert isinstance(make_scorer("judge"), JudgeScorer)
    assert make_scorer("confidence").name == "confidence:mean"
    assert make_scorer("confidence:tail").name == "confidence:tail"
    prm = make_scorer("prm:http://localhost:8000/pooling")
    assert isinstance(prm, PRMScorer) and prm.vllm
    assert not PRMScorer("http://localhost:9000/score").vllm
    with pytest.raises(ConfigError, match="judge, confidence, confidence:<measure>, prm:<url>"):
        make_scorer("reward-model")
    with pytest.raises(ConfigError, match="not usable on steps"):
        make_scorer("confidence:answer")
    with pytest.raises(ConfigError, match="http"):
        make_scorer("prm:localhost:8000")
