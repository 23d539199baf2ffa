from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from ponder.backends.fake import FakeBackend, Scripted, tokenize
from ponder.context import Ctx, Sampling, Slots
from ponder.errors import ConfigError
from ponder.strategies import coerce_params, get_strategy
from ponder.types import GenerationRequest
from tests.conftest import make_problem

RAMBLE = "Let me double check this by counting up from the first number one step at a time to be sure. " * 3
DELAY = 0.0005  # streams interleave token by token, as concurrent traces on a server do


def early(answer: int) -> str:
    """States its answer in the first sentence, then keeps going: the redundant tail DeepPrune cuts."""
    return f"The answer is {answer}. {RAMBLE}So the answer is {answer}."


def late(answer: int) -> str:
    """Gives no answer until its last sentence."""
    return f"{RAMBLE}So the answer is {answer}."


def streamed_tokens(backend: FakeBackend) -> int:
    return sum(c.tokens_sent for c in backend.calls if c.streamed)


async def test_redundant_traces_are_cut_and_only_finished_ones_vote() -> None:
    # the first trace says 9, so cluster "9" is founded first, then "7"; the six other 7s are cut
    script = [early(9), early(7), early(7), early(9), early(7), early(7), early(7), early(7)]
    problem = make_problem()
    backend = FakeBackend(script, token_delay_s=DELAY)
    ctx = Ctx(backend, problem)
    result = await get_strategy("deepprune")(problem, ctx, n=8)
    info = result.info
    assert info["clusters"] == 2 and info["pruned"] == 6 and sorted(info["cluster_sizes"]) == [2, 6]
    assert info["roles"].count("founder") == 2 and info["pruned_by_judge"] == 0
    # a trace pruned on its stated answer never finished: by default it does not vote (only the founders do)
    assert result.votes == {"9": 1.0, "7": 1.0}
    # cancelled traces are stopped early, and their tokens are counted
    full = len(tokenize(early(7)))
    pruned = [c for c in backend.calls if c.cancelled]
    assert len(pruned) == 6 and all(c.tokens_sent < full / 2 for c in pruned)
    assert ctx.usage.cancelled_traces == 6 and ctx.usage.traces == 8
    assert ctx.usage.completion_tokens == streamed_tokens(backend) == info["pruned_tokens"] + 2 * full
    # the same script under self-consistency spends every token; the estimate of the saving is exact here
    sc_ctx = Ctx(FakeBackend(script), problem)
    majority = await get_strategy("self-consistency")(problem, sc_ctx, n=8)
    assert majority.answer == "7"
    assert ctx.usage.completion_tokens < sc_ctx.usage.completion_tokens / 2
    assert info["tokens_saved_estimate"] == sc_ctx.usage.completion_tokens - ctx.usage.completion_tokens
    # pruned_vote=stated: each cut trace votes with the answer it stated itself
    stated = await get_strategy("deepprune")(problem, Ctx(FakeBackend(script, token_delay_s=DELAY), problem), n=8,
                                             pruned_vote="stated")
    assert stated.answer == "7" and stated.votes == {"9": 2.0, "7": 6.0}


async def test_a_pruned_trace_never_takes_its_founders_final_answer() -> None:
    # the founder first writes 7 and later changes its mind; the traces cut on their stated 7 do not follow it
    script = [f"The answer is 7. {RAMBLE}No wait, the answer is 8.", early(7), early(7), early(7)]
    problem = make_problem()
    result = await get_strategy("deepprune")(problem, Ctx(FakeBackend(script, token_delay_s=DELAY), problem), n=4)
    assert result.info["pruned"] == 3 and result.votes == {"8": 1.0}
    stated = await get_strategy("deepprune")(problem, Ctx(FakeBackend(script, token_delay_s=DELAY), problem), n=4,
                                             pruned_vote="stated")
    assert stated.votes == {"8": 1.0, "7": 3.0} and stated.answer == "7"


async def test_a_restated_number_is_not_a_partial_answer() -> None:
    # "Janet's ducks lay 16 eggs" restates the question: the old predictor read 16 as the trace's answer and cut
    # both traces into the cluster of a trace that answered 16
    restating = f"Janet's ducks lay 16 eggs a day. {RAMBLE}So the answer is 18."
    script = [early(16), restating, restating]
    problem = make_problem()
    backend = FakeBackend(script, token_delay_s=DELAY)
    result = await get_strategy("deepprune")(problem, Ctx(backend, problem), n=3, stable=1, pruned_vote="stated")
    # nothing joins cluster 16; the two restating traces meet at their stated 18 (one founds it, one is cut)
    assert result.info["cluster_answers"] == ["16", "18"] and result.info["cluster_sizes"] == [1, 2]
    assert result.answer == "18" and result.votes == {"16": 1.0, "18": 2.0}


async def test_stable_waits_until_a_stated_answer_stops_changing() -> None:
    # "The answer is 1" is on its way to "The answer is 12": one check may catch it half written
    assert ((await get_strategy("deepprune")(make_problem(), Ctx(FakeBackend([early(7)]), make_problem()), n=1))
            .info["clusters"] == 1)
    problem = make_problem()
    ctx = Ctx(FakeBackend([early(12)], token_delay_s=DELAY), problem)
    result = await get_strategy("deepprune")(problem, ctx, n=3, stable=2, every=1)
    assert result.info["cluster_answers"] == ["12"] and result.answer == "12"


async def test_traces_without_a_stated_answer_are_not_pruned() -> None:
    problem = make_problem()
    backend = FakeBackend([late(7)], token_delay_s=DELAY)
    result = await get_strategy("deepprune")(problem, Ctx(backend, problem), n=4)
    assert result.info["pruned"] == 0 and result.info["clusters"] == 1 and result.votes == {"7": 4.0}
    assert not any(c.cancelled for c in backend.calls)


def with_judge(verdict: str) -> Callable[[GenerationRequest, int], Scripted]:
    def script(request: GenerationRequest, index: int) -> Scripted:
        if "unfinished attempts" in request.messages[-1]["content"]:
            return Scripted(f"{verdict}, both say 7.", confidence=0.9)
        return Scripted(late(7))

    return script


async def test_the_llm_judge_prunes_what_partial_answers_cannot_and_its_calls_are_counted() -> None:
    problem = make_problem()
    backend = FakeBackend(with_judge("Yes"), token_delay_s=DELAY)
    ctx = Ctx(backend, problem)
    result = await get_strategy("deepprune")(problem, ctx, n=4, judge=True, min_tokens=8)
    info = result.info
    assert info["pruned"] == 3 and info["judge_calls"] == 3 and result.votes == {"7": 4.0}
    judge_calls = [c for c in backend.calls if not c.streamed]
    assert len(judge_calls) == 3 and "Attempt A (unfinished)" in judge_calls[0].request.messages[-1]["content"]
    verdicts = [t for call in ctx.calls if call.kind == "complete" for t in call.traces]
    assert len(verdicts) == 3 and all(t.answer is None for t in verdicts)  # "Yes, both say 7." is no sample
    assert streamed_tokens(backend) < 4 * len(tokenize(late(7))) / 2
    assert ctx.usage.completion_tokens == sum(c.tokens_sent for c in backend.calls)  # judge tokens included
    # a judge that says No lets every trace found its own cluster: nothing is cut
    backend = FakeBackend(with_judge("No"), token_delay_s=DELAY)
    result = await get_strategy("deepprune")(problem, Ctx(backend, problem), n=4, judge=True, min_tokens=8)
    assert result.info["pruned"] == 0 and result.info["judge_calls"] == 6  # 0 + 1 + 2 + 3 founders compared


async def test_when_the_budget_cannot_pay_a_verdict_the_judge_stops_and_the_traces_finish() -> None:
    problem = make_problem()
    backend = FakeBackend(with_judge("Yes"), token_delay_s=DELAY)
    # four streams of up to 80 tokens hold 320 of the budget; a verdict of up to 8 tokens does not fit in 5
    ctx = Ctx(backend, problem, token_budget=325, sampling=Sampling(max_tokens=80))
    result = await get_strategy("deepprune")(problem, ctx, n=4, judge=True, min_tokens=8)
    assert result.answer == "7" and result.votes == {"7": 4.0}
    info = result.info
    assert info["judge_calls"] == 0 and info["pruned"] == 0
    assert ctx.usage.completion_tokens == sum(c.tokens_sent for c in backend.calls) <= 325


async def test_the_judge_cannot_deadlock_when_streams_hold_every_slot() -> None:
    # four streams hold all four slots and wait, under the clustering lock, for the judge's verdict; a verdict
    # that waited for a free slot would wait forever
    problem = make_problem()
    backend = FakeBackend(with_judge("Yes"), token_delay_s=DELAY)
    ctx = Ctx(backend, problem, slots=Slots(4))
    result = await asyncio.wait_for(get_strategy("deepprune")(problem, ctx, n=4, judge=True, min_tokens=8), 20)
    assert result.info["judge_calls"] == 3 and result.info["pruned_by_judge"] == 3 and result.votes == {"7": 4.0}


async def test_without_streaming_it_is_self_consistency() -> None:
    backend = FakeBackend([early(7), early(9), early(7)])
    backend.capabilities = replace(backend.capabilities, streaming=False)
    problem = make_problem()
    result = await get_strategy("deepprune")(problem, Ctx(backend, problem), n=6)
    assert result.answer == "7" and result.info == {"streaming": False, "launched": 6, "pruned": 0}


async def test_parameters_are_checked() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend([early(7)]), problem)
    deepprune = get_strategy("deepprune")
    # bounds declared once on the parameters (Annotated), checked for parsed options and direct calls alike
    with pytest.raises(ConfigError, match="parameter 'n' must be >= 1, got 0"):
        await deepprune(problem, ctx, n=0)
    with pytest.raises(ConfigError, match="'every' must be >= 1"):
        await deepprune(problem, ctx, every=0)
    with pytest.raises(ConfigError, match=r"'threshold' must be > 0, <= 1, got 0\.0"):
        await deepprune(problem, ctx, threshold=0.0)
    with pytest.raises(ConfigError, match="'stable' must be >= 1"):
        coerce_params(deepprune, {"stable": "0"})
    with pytest.raises(ConfigError, match="pruned_vote' must be one of judge, stated"):
        coerce_params(deepprune, {"pruned_vote": "all"})
    assert deepprune.params["stable"].help == "consecutive checks a stated answer must hold"
