from __future__ import annotations

import asyncio
import contextlib

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


async def test_budget_reserves_the_worst_case_before_launching() -> None:
    # max_tokens 4 and a budget of 10: a call launches only when n x 4 fits in what is left. The old check only
    # refused once the budget was spent, so one call of n samples could overshoot it by n x max_tokens.
    ctx = Ctx(FakeBackend(["one two three four five six"]), make_problem(), token_budget=10,
              sampling=Sampling(max_tokens=4))
    with pytest.raises(BudgetExceeded, match=r"worst case of 12 \(3 x max_tokens 4\)"):
        await ctx.sample(n=3)
    assert ctx.usage.calls == 0
    await ctx.sample(n=2)
    assert ctx.usage.completion_tokens == 8
    with pytest.raises(BudgetExceeded):
        await ctx.sample(n=1)  # 2 left: a sample of up to 4 might overshoot
    (short,) = await ctx.sample(n=1, max_tokens=2)  # one that fits is still allowed
    assert short.capped and short.answer is None  # cut at max_tokens: no answer
    assert ctx.usage.completion_tokens == 10 and ctx.usage.capped_traces == 3


async def test_concurrent_calls_cannot_overshoot_the_budget_together() -> None:
    backend = FakeBackend(["w " * 50], token_delay_s=0.001)
    ctx = Ctx(backend, make_problem(), token_budget=100, sampling=Sampling(max_tokens=30))
    # 5 calls of 2 x 30 and 3 streams of 30 race for 100 tokens; the old check let all of them start

    async def one() -> int:
        try:
            return len(await ctx.sample(n=2))
        except BudgetExceeded:
            return 0

    async def streamed() -> None:
        with contextlib.suppress(BudgetExceeded):
            async with ctx.stream() as stream:
                async for _ in stream:
                    pass

    await asyncio.gather(*(one() for _ in range(5)), *(streamed() for _ in range(3)))
    assert ctx.usage.completion_tokens <= 100  # whatever the interleaving, the calls in flight never overshoot
    assert ctx.usage.traces >= 3  # and the budget was used, not refused outright


async def test_cancelled_stream_without_logprobs_counts_its_chunks() -> None:
    # A server streaming without logprobs sends text chunks only, and a cancelled stream never receives the
    # usage block: the chunks are the count, so live runs agree with replays (which reveal one token a chunk).
    backend = FakeBackend(["a b c d e f g h The answer is 7."], token_delay_s=0.001, logprobs=False)
    ctx = Ctx(backend, make_problem(), sampling=Sampling(logprobs=False))
    async with ctx.stream() as stream:
        async for _ in stream:
            if len(stream.trace.text.split()) >= 3:
                await stream.cancel()
                break
    assert stream.trace.tokens == [] and stream.trace.cancelled
    assert stream.trace.completion_tokens >= 3 and ctx.usage.completion_tokens == stream.trace.completion_tokens


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


async def test_gather_lets_every_job_finish_and_returns_budget_stops_as_none() -> None:
    finished: list[int] = []

    async def job(i: int) -> int:
        await asyncio.sleep(0.01 * i)
        if i == 1:
            raise BudgetExceeded("spent")
        finished.append(i)
        return i

    gathered = await Ctx.gather(*(job(i) for i in range(4)))
    assert gathered.results == [0, None, 2, 3] and gathered.done == [0, 2, 3] and gathered.stopped == 1

    async def broken() -> int:
        raise ValueError("boom")

    finished.clear()
    with pytest.raises(ValueError, match="boom"):
        await Ctx.gather(broken(), job(3))
    assert finished == [3]  # the other job ran to its end before the error surfaced
