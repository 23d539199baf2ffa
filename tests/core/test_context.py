from __future__ import annotations

import asyncio

import pytest

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx, Sampling, Slots
from ponder.errors import BudgetExceeded, CapabilityError
from tests.conftest import make_problem


async def test_sample_fills_defaults_extracts_answers_and_counts_tokens() -> None:
    backend = FakeBackend(["The answer is 7.", "I think 8. The answer is 8."])
    ctx = Ctx(backend, make_problem(), sampling=Sampling(temperature=0.5, max_tokens=64, top_logprobs=3))
    traces = await ctx.sample(n=4)
    assert [t.answer for t in traces] == ["7", "8", "7", "8"]
    request = backend.calls[0].request
    assert (request.temperature, request.max_tokens, request.top_logprobs, request.n) == (0.5, 64, 3, 4)
    assert ctx.usage.completion_tokens == sum(t.completion_tokens for t in traces) > 0
    assert ctx.usage.calls == 1 and ctx.usage.traces == 4
    assert len(ctx.calls) == 1 and ctx.calls[0].traces == traces


async def test_overrides_win_over_defaults() -> None:
    backend = FakeBackend(["x"])
    ctx = Ctx(backend, make_problem(), sampling=Sampling(temperature=0.9))
    await ctx.sample(n=1, temperature=0.0, max_tokens=5)
    assert backend.calls[0].request.temperature == 0.0 and backend.calls[0].request.max_tokens == 5


async def test_seeded_runs_give_distinct_reproducible_seeds() -> None:
    seeds = []
    for _ in range(2):
        backend = FakeBackend(["x"])
        ctx = Ctx(backend, make_problem(), sampling=Sampling(seed=3))
        await ctx.sample(n=2)
        await ctx.sample(n=2)
        seeds.append([c.request.seed for c in backend.calls])
    assert seeds[0] == seeds[1]
    assert len(set(seeds[0])) == 2 and None not in seeds[0]


async def test_budget_stops_further_calls() -> None:
    ctx = Ctx(FakeBackend(["one two three four"]), make_problem(), token_budget=6)
    await ctx.sample(n=2)  # 8 tokens: over budget now
    with pytest.raises(BudgetExceeded):
        await ctx.sample(n=1)
    assert ctx.budget_left == 0


async def test_stream_cancel_counts_revealed_tokens_only() -> None:
    backend = FakeBackend(["a b c d e f g h The answer is 7."], token_delay_s=0.001)
    ctx = Ctx(backend, make_problem())
    async with ctx.stream() as stream:
        async for _ in stream:
            if len(stream.trace.tokens) == 3:
                await stream.cancel()
                break
    trace = stream.trace
    assert trace.cancelled and trace.completion_tokens == 3 and trace.answer is None
    assert backend.calls[-1].cancelled
    assert ctx.usage.completion_tokens == 3 and ctx.usage.cancelled_traces == 1


async def test_stream_to_the_end_matches_complete() -> None:
    ctx = Ctx(FakeBackend(["Sum is 7. The answer is 7."]), make_problem())
    async with ctx.stream() as stream:
        async for _ in stream:
            pass
    assert not stream.trace.cancelled and stream.trace.answer == "7"
    assert stream.trace.finish_reason == "stop"
    assert stream.trace.completion_tokens == len(stream.trace.tokens) == ctx.usage.completion_tokens


async def test_task_cancellation_releases_slots_and_marks_trace() -> None:
    slots = Slots(1)
    ctx = Ctx(FakeBackend(["a " * 200], token_delay_s=0.01), make_problem(), slots=slots)

    async def consume() -> None:
        async with ctx.stream() as stream:
            async for _ in stream:
                pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ctx.calls[0].traces[0].cancelled
    # the slot came back: another sample can run
    await asyncio.wait_for(ctx.sample(n=1), timeout=2)


async def test_slots_bound_concurrency() -> None:
    slots = Slots(3)
    active = peak = 0

    async def use(count: int) -> None:
        nonlocal active, peak
        held = await slots.acquire(count)
        active += held
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= held
        await slots.release(held)

    await asyncio.gather(*(use(2) for _ in range(6)), use(10))
    assert peak <= 3


async def test_logprob_strategies_fail_clearly_without_logprobs() -> None:
    ctx = Ctx(FakeBackend(["x"], logprobs=False), make_problem())
    with pytest.raises(CapabilityError, match="needs token logprobs"):
        ctx.require_logprobs("deepconf")
    (trace,) = await ctx.sample()
    assert trace.logprobs == [] and ctx.calls[0].request.logprobs is False


async def test_reasoning_is_kept_apart() -> None:
    ctx = Ctx(FakeBackend([Scripted("The answer is 7.", reasoning="3 plus 4 is 7")]), make_problem())
    (trace,) = await ctx.sample()
    assert trace.reasoning == "3 plus 4 is 7" and trace.answer == "7"
