from __future__ import annotations

from collections.abc import Callable

import pytest

from ponder.backends.fake import FakeBackend, Scripted, tokenize
from ponder.context import Ctx, Sampling
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.types import GenerationRequest
from tests.conftest import make_problem

LONG = "Let me think about this carefully and check every step of the sum once more before I answer. "


def said(answer: int, confidence: float, variant: int = 0) -> Scripted:
    return Scripted(f"{LONG}Variant {variant}. The answer is {answer}.", confidence)


async def test_offline_follows_the_confident_minority() -> None:
    # six unsure traces say 8, four sure ones say 7: the majority is wrong
    script = [said(8, 0.3), said(7, 0.9), said(8, 0.3), said(8, 0.3), said(7, 0.9), said(8, 0.3), said(7, 0.9),
              said(8, 0.3), said(7, 0.9), said(8, 0.3)]
    problem = make_problem()
    majority = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(script), problem), n=10)
    assert majority.answer == "8"
    for eta in (10.0, 40.0):
        result = await get_strategy("deepconf")(problem, Ctx(FakeBackend(script), problem), n=10, eta=eta)
        assert result.answer == "7" and result.confidence == pytest.approx(1.0)
        assert result.info["kept"] == (1 if eta == 10 else 4)
    # no filtering at all: the confidence weights alone still outvote the unsure majority
    weighted = await get_strategy("deepconf")(problem, Ctx(FakeBackend(script), problem), n=10, eta=100.0)
    assert weighted.answer == "7" and weighted.confidence is not None and 0.5 < weighted.confidence < 1.0
    # every measure can drive the filter
    for measure in ("mean", "bottom10", "tail", "self_certainty", "neg_perplexity", "answer"):
        result = await get_strategy("deepconf")(problem, Ctx(FakeBackend(script), problem), n=10, eta=40.0,
                                                measure=measure, window=8)
        assert result.answer == "7", measure


def online_script(warmup: int) -> Callable[[GenerationRequest, int], Scripted]:
    """Warm-up: three sure 7s, one sure 9, four unsure 8s. Then unsure 8s and sure 7s alternate."""
    warm = [said(7, 0.9), said(8, 0.3), said(7, 0.9), said(8, 0.3), said(9, 0.9), said(8, 0.3), said(7, 0.9),
            said(8, 0.3)]

    def script(request: GenerationRequest, index: int) -> Scripted:
        if index < warmup:
            return warm[index % len(warm)]
        return said(8, 0.3, index) if index % 2 == 0 else said(7, 0.9, index)

    return script


async def test_online_cancels_unsure_traces_mid_stream() -> None:
    backend = FakeBackend(online_script(8))
    problem = make_problem()
    ctx = Ctx(backend, problem)
    result = await get_strategy("deepconf")(problem, ctx, mode="online", n=16, warmup=8, eta=50.0, window=8,
                                            batch=4)
    assert result.answer == "7"
    info = result.info
    assert info["warmup"] == 8 and info["launched"] == 16 and info["stopped_by"] == "budget"
    streamed = [c for c in backend.calls if c.streamed]
    assert len(streamed) == 8
    full = len(tokenize(said(8, 0.3, 10).text))
    cancelled = [c for c in streamed if c.cancelled]
    assert len(cancelled) == info["cancelled"] == 4
    assert all(c.tokens_sent < full / 2 for c in cancelled)  # stopped right after the first full window
    assert ctx.usage.cancelled_traces == 4
    # the warm-up's voters (three 7s and the 9) plus the four sure online 7s
    assert info["used"] == 8 and set(result.votes) == {"7", "9"}
    # tokens saved against sampling all 16 to the end, and the cancelled tokens are still counted
    full_cost = sum(len(tokenize(online_script(8)(GenerationRequest([]), i).text)) for i in range(16))
    assert ctx.usage.completion_tokens < full_cost
    assert ctx.usage.completion_tokens == sum(c.tokens_sent for c in backend.calls)


async def test_online_stops_launching_at_consensus() -> None:
    problem = make_problem()
    # all warm-up traces agree: nothing more is launched
    backend = FakeBackend([said(7, 0.9)])
    result = await get_strategy("deepconf")(problem, Ctx(backend, problem), mode="online", n=64, warmup=4)
    assert result.answer == "7" and result.info["launched"] == 4 and result.info["stopped_by"] == "consensus"
    assert len(backend.calls) == 1
    # consensus counts every finished warm-up trace, the unsure 8s too (weighted by their low confidence), so
    # it takes six batches of sure 7s, not the one that would lift the warm-up's kept voters past tau = 0.8
    backend = FakeBackend(online_script(8))
    result = await get_strategy("deepconf")(problem, Ctx(backend, problem), mode="online", n=64, warmup=8,
                                            eta=50.0, window=8, batch=4, tau=0.8)
    assert result.info["stopped_by"] == "consensus" and result.info["launched"] == 32
    assert len([c for c in backend.calls if c.streamed]) == 24
    # with a stricter tau the same script runs on to the budget
    backend = FakeBackend(online_script(8))
    result = await get_strategy("deepconf")(problem, Ctx(backend, problem), mode="online", n=24, warmup=8,
                                            eta=50.0, window=8, batch=4, tau=0.99)
    assert result.info["stopped_by"] == "budget" and result.info["launched"] == 24


async def test_online_without_streaming_filters_after_the_fact() -> None:
    from dataclasses import replace

    backend = FakeBackend(online_script(8))
    backend.capabilities = replace(backend.capabilities, streaming=False)
    problem = make_problem()
    result = await get_strategy("deepconf")(problem, Ctx(backend, problem), mode="online", n=16, warmup=8,
                                            eta=50.0, window=8, batch=4)
    assert result.answer == "7" and result.info["cancelled"] == 0 and result.info["filtered"] == 4
    assert not any(c.streamed for c in backend.calls)


async def test_parameters_are_checked() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend([said(7, 0.9)]), problem)
    with pytest.raises(ConfigError, match="unknown confidence measure"):
        await get_strategy("deepconf")(problem, ctx, measure="nope")
    with pytest.raises(ConfigError, match="use measure=lowest_group"):
        await get_strategy("deepconf")(problem, ctx, mode="online", measure="tail")
    with pytest.raises(ConfigError, match="eta"):
        await get_strategy("deepconf")(problem, ctx, eta=0.0)


async def test_online_answers_with_what_it_has_when_the_token_budget_runs_out() -> None:
    problem = make_problem()
    backend = FakeBackend(online_script(8))
    # the warm-up's 8 samples of up to 30 tokens fit in 240 and spend ~216: no batch of 4 x 30 can start
    ctx = Ctx(backend, problem, token_budget=240, sampling=Sampling(max_tokens=30))
    result = await get_strategy("deepconf")(problem, ctx, mode="online", n=16, warmup=8, eta=50.0, window=8,
                                            batch=4)
    assert result.answer == "7" and result.info["stopped_by"] == "token_budget"
    assert result.info["launched"] == 8 and not any(c.streamed for c in backend.calls)


async def test_two_kept_warmup_traces_that_agree_do_not_end_the_run() -> None:
    # eta=10 keeps the two most confident of 16 warm-up traces; they agree, but 14 others disagree with them.
    # The old consensus counted only the kept voters, so it stopped right after the warm-up.
    warm = [said(7, 0.95), said(7, 0.95)] + [said(8 + i % 3, 0.5, i) for i in range(14)]

    def script(request: GenerationRequest, index: int) -> Scripted:
        return warm[index] if index < 16 else said(7, 0.95, index)

    problem = make_problem()
    backend = FakeBackend(script)
    result = await get_strategy("deepconf")(problem, Ctx(backend, problem), mode="online", n=48, warmup=16,
                                            eta=10.0, window=4, batch=8)
    assert result.info["launched"] > 16 and result.answer == "7"


async def test_online_checks_only_full_windows() -> None:
    # Unsure traces shorter than the window run to their end (nothing is cancelled, as in the reference), and
    # are then dropped from the vote by their whole-trace confidence, the measure the warm-up set the bar on.
    def long_traces(request: GenerationRequest, index: int) -> Scripted:
        short = online_script(8)(request, index)
        return Scripted(LONG + short.text, short.confidence)  # ~50 tokens, far short of the window

    backend = FakeBackend(long_traces)
    problem = make_problem()
    result = await get_strategy("deepconf")(problem, Ctx(backend, problem), mode="online", n=16, warmup=8,
                                            eta=50.0, window=4096, batch=4)
    assert result.info["cancelled"] == 0 and result.info["filtered"] == 4 and result.answer == "7"
    assert not any(c.cancelled for c in backend.calls)


async def test_offline_filters_among_answered_traces_by_percentile() -> None:
    # the reference filters the traces that have an answer; a sure trace without one must not take a seat
    script = [Scripted("I am completely sure of nothing here at all", 0.99), said(8, 0.3), said(7, 0.9),
              said(8, 0.3), said(8, 0.3)]
    problem = make_problem()
    result = await get_strategy("deepconf")(problem, Ctx(FakeBackend(script), problem), n=5, eta=20.0)
    assert result.info["answered"] == 4 and result.info["kept"] == 1 and result.answer == "7"
