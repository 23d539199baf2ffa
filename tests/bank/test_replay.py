"""Replay: a recorded bank served to strategies in place of a live server, with identical token accounting."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from ponder.backends.base import Backend
from ponder.backends.fake import FakeBackend, Scripted
from ponder.backends.replay import ReplayBackend, ReplayError, align, replay_order
from ponder.bank import Bank, BankProblem, BankTask, record_bank
from ponder.context import Ctx, Sampling
from ponder.errors import CapabilityError
from ponder.strategies import get_strategy
from ponder.types import GenerationRequest, Problem, Trace
from tests.conftest import make_problem

N = 12
SAMPLING = Sampling(temperature=0.8, max_tokens=96, seed=3, top_logprobs=5)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Bank:
    path = tmp_path_factory.mktemp("bank") / "add1.bank.jsonl.gz"
    # add1 problems 1 and 5 share their prompt ("What is 5 + 1?")
    asyncio.run(record_bank("add1", backend=FakeBackend(), n=N, limit=6, sampling=SAMPLING, path=path, chunk=5))
    return Bank.load(path)


@pytest.fixture(scope="module")
def problems(bank: Bank) -> list[Problem]:
    return bank.problems_for_task()


def _key(trace: Trace) -> tuple:
    return (trace.text, tuple(trace.tokens), tuple(trace.logprobs), tuple(map(tuple, trace.top_logprobs)),
            trace.finish_reason, trace.completion_tokens)


async def test_n_equal_to_the_bank_gives_exactly_its_traces(bank: Bank, problems: list[Problem]) -> None:
    replay = ReplayBackend(bank, seed=1)
    for problem in problems:
        ctx = Ctx(replay.for_problem(problem.id), problem, sampling=bank.sampling)
        served = await ctx.sample(n=N)
        recorded = bank.problems[problem.id].traces
        assert Counter(map(_key, served)) == Counter(map(_key, recorded))
        assert [t.answer for t in served] == [recorded[i].answer for i in replay_order(1, problem.id, N)]
        assert ctx.usage.completion_tokens == sum(t.completion_tokens for t in recorded)
        assert ctx.usage.prompt_tokens == recorded[0].prompt_tokens  # one request: the prompt counts once


async def test_self_consistency_answers_the_majority_of_the_served_traces(bank: Bank, problems: list[Problem]) -> None:
    strategy = get_strategy("self-consistency")
    for seed in range(3):
        replay = ReplayBackend(bank, seed=seed)
        for problem in problems:
            session = replay.for_problem(problem.id)
            result = await strategy(problem, Ctx(session, problem, sampling=bank.sampling), n=5)
            answers = [bank.problems[problem.id].traces[i].answer for i in session.served]
            assert len(answers) == 5
            counts = Counter(answers).most_common()
            winners = {a for a, c in counts if c == counts[0][1]}
            first = next(a for a in answers if a in winners)  # ties go to the answer served first
            assert result.answer == first


async def _served_orders(replay: ReplayBackend, problems: list[Problem], concurrent: bool) -> dict[str, list[int]]:
    sessions = {p.id: replay.for_problem(p.id) for p in problems}

    async def solve(problem: Problem) -> None:
        ctx = Ctx(sessions[problem.id], problem, sampling=replay.bank.sampling)
        await ctx.sample(n=2)
        async with ctx.stream() as stream:
            async for _ in stream:
                pass
        await ctx.sample(n=3)

    if concurrent:
        await asyncio.gather(*(solve(p) for p in reversed(problems)))
    else:
        for p in problems:
            await solve(p)
    return {pid: s.served for pid, s in sessions.items()}


async def test_same_seed_same_order_whatever_the_concurrency_and_other_seeds_differ(
    bank: Bank, problems: list[Problem]
) -> None:
    first = await _served_orders(ReplayBackend(bank, seed=5), problems, concurrent=False)
    again = await _served_orders(ReplayBackend(bank, seed=5), problems, concurrent=True)
    other = await _served_orders(ReplayBackend(bank, seed=6), problems, concurrent=True)
    assert first == again
    assert all(len(v) == 6 for v in first.values())
    assert first != other
    assert sum(first[pid] != other[pid] for pid in first) >= len(first) - 1
    assert replay_order(5, "x", 50) == replay_order(5, "x", 50) != replay_order(5, "y", 50)


async def test_unbound_backend_serves_by_prompt_and_refuses_ambiguous_ones(bank: Bank, problems: list[Problem]) -> None:
    replay = ReplayBackend(bank, seed=2)
    unique = [p for p in problems if p.id not in ("add1/seed0/1", "add1/seed0/5")]
    await asyncio.gather(*(Ctx(replay, p, sampling=bank.sampling).sample(n=4) for p in unique))
    for p in unique:
        assert replay.served(p.id) == replay_order(2, p.id, N)[:4]
    shared = next(p for p in problems if p.id == "add1/seed0/1")
    with pytest.raises(ReplayError, match=r"share this prompt.*for_problem"):
        await Ctx(replay, shared, sampling=bank.sampling).sample(n=1)
    replay.reset(seed=9)
    assert replay.served(unique[0].id) == [] and replay.seed == 9


async def test_asking_for_more_traces_than_recorded_is_an_error(bank: Bank, problems: list[Problem]) -> None:
    problem = problems[0]
    ctx = Ctx(ReplayBackend(bank).for_problem(problem.id), problem, sampling=bank.sampling)
    await ctx.sample(n=N - 2)
    with pytest.raises(ReplayError, match=rf"problem {problem.id}: the strategy asked for {N + 1} traces.*has {N}"):
        await ctx.sample(n=3)
    await ctx.sample(n=2)  # exactly the rest is fine
    with pytest.raises(ReplayError, match=f"has {N}"):
        async with ctx.stream() as stream:
            async for _ in stream:
                pass


async def test_prompts_not_in_the_bank_are_refused(bank: Bank, problems: list[Problem]) -> None:
    replay = ReplayBackend(bank)
    stranger = make_problem("What is 40 + 2?")
    with pytest.raises(ReplayError, match=r"no traces for.*cannot be replayed"):
        await Ctx(replay, stranger).sample(n=1)
    session = replay.for_problem(problems[0].id)
    with pytest.raises(ReplayError, match="no traces for"):
        await Ctx(session, problems[0]).sample([{"role": "user", "content": "Check your work."}], n=1)
    with pytest.raises(ReplayError, match="no problem"):
        replay.for_problem("nope")


async def test_cancelled_stream_counts_only_revealed_tokens(bank: Bank, problems: list[Problem]) -> None:
    problem = problems[0]
    session = ReplayBackend(bank).for_problem(problem.id)
    ctx = Ctx(session, problem, sampling=bank.sampling)
    async with ctx.stream() as stream:
        async for _ in stream:
            if len(stream.trace.tokens) == 3:
                await stream.cancel()
                break
    (index,) = session.served
    recorded = bank.problems[problem.id].traces[index]
    assert stream.trace.cancelled and stream.trace.tokens == recorded.tokens[:3]
    assert stream.trace.logprobs == recorded.logprobs[:3] and stream.trace.top_logprobs == recorded.top_logprobs[:3]
    assert stream.trace.text == "".join(recorded.tokens[:3])
    assert ctx.usage.completion_tokens == 3 < recorded.completion_tokens
    assert ctx.usage.cancelled_traces == 1 and ctx.usage.traces == 1


async def test_a_stream_to_the_end_reproduces_the_recorded_trace(bank: Bank, problems: list[Problem]) -> None:
    problem = problems[2]
    session = ReplayBackend(bank).for_problem(problem.id)
    ctx = Ctx(session, problem, sampling=bank.sampling)
    async with ctx.stream() as stream:
        async for _ in stream:
            pass
    streamed = stream.trace
    recorded = bank.problems[problem.id].traces[session.served[0]]
    assert _key(streamed) == _key(recorded) and streamed.answer == recorded.answer and not streamed.cancelled
    assert ctx.usage.completion_tokens == recorded.completion_tokens
    assert ctx.usage.prompt_tokens == recorded.prompt_tokens


async def test_max_tokens_cuts_recorded_traces(bank: Bank, problems: list[Problem]) -> None:
    problem = problems[0]
    session = ReplayBackend(bank).for_problem(problem.id)
    ctx = Ctx(session, problem, sampling=bank.sampling)
    traces = await ctx.sample(n=2, max_tokens=4)
    for trace, index in zip(traces, session.served, strict=True):
        recorded = bank.problems[problem.id].traces[index]
        assert trace.tokens == recorded.tokens[:4] and trace.logprobs == recorded.logprobs[:4]
        assert trace.text == "".join(recorded.tokens[:4]) and trace.finish_reason == "length"
        assert trace.completion_tokens == 4
    assert ctx.usage.completion_tokens == 8
    (whole,) = await ctx.sample(n=1, max_tokens=96)
    assert whole.finish_reason == "stop"


async def test_top_logprobs_are_cut_to_the_request(bank: Bank, problems: list[Problem]) -> None:
    problem = problems[0]
    ctx = Ctx(ReplayBackend(bank).for_problem(problem.id), problem, sampling=SAMPLING)
    (trace,) = await ctx.sample(n=1, top_logprobs=2)
    assert all(len(row) == 2 for row in trace.top_logprobs)
    with pytest.raises(CapabilityError, match="top 5"):
        await ctx.sample(n=1, top_logprobs=10)


async def test_sampling_settings_other_than_the_recording_are_refused(bank: Bank, problems: list[Problem]) -> None:
    problem = problems[0]
    replay = ReplayBackend(bank)
    ctx = Ctx(replay.for_problem(problem.id), problem, sampling=bank.sampling)
    with pytest.raises(ReplayError, match=r"temperature=0\.0 .* recorded with temperature=0\.8"):
        await get_strategy("cot")(problem, ctx)  # greedy cot cannot be served from sampled traces
    with pytest.raises(ReplayError, match=r"top_p=0\.9"):
        await ctx.sample(n=1, top_p=0.9)
    with pytest.raises(ReplayError, match="min_p"):
        await ctx.sample(n=1, extra={"min_p": 0.1})
    await ctx.sample(n=1, temperature=0.8)  # the recording's own setting
    await ctx.sample(n=1, temperature=None, top_p=None)  # unset is fine
    await ctx.sample(n=1, top_p=1.0)  # as good as unset
    result = await get_strategy("cot")(problem, Ctx(ReplayBackend(bank, strict=False).for_problem(problem.id),
                                                    problem, sampling=bank.sampling))
    assert result.answer is not None


async def test_max_tokens_beyond_the_recording_is_refused_only_when_traces_were_cut() -> None:
    problem = make_problem()
    long_bank = await _scripted_bank(problem, ["one two three four five six The answer is 7."], max_tokens=5)
    ctx = Ctx(ReplayBackend(long_bank).for_problem(problem.id), problem)
    with pytest.raises(ReplayError, match=r"max_tokens=64 .* cut at 5"):
        await ctx.sample(n=1, max_tokens=64)
    short_bank = await _scripted_bank(problem, ["The answer is 7."], max_tokens=5)
    (trace,) = await Ctx(ReplayBackend(short_bank), problem).sample(n=1, max_tokens=64)
    assert trace.finish_reason == "stop" and trace.answer == "7"


async def test_stop_strings_are_emulated() -> None:
    problem = make_problem()
    bank = await _scripted_bank(problem, ["First step.\n\nSecond step. The answer is 7."])
    session = ReplayBackend(bank).for_problem(problem.id)
    ctx = Ctx(session, problem)
    (trace,) = await ctx.sample(n=1, stop=["\n\n"])
    assert trace.text == "First step." and trace.finish_reason == "stop"
    assert trace.completion_tokens == len(trace.tokens) == 4  # "First", " step", ".", "\n\nSecond"
    async with ctx.stream(stop=["\n\n"]) as stream:
        async for _ in stream:
            pass
    assert stream.trace.text == "First step." and stream.trace.completion_tokens == 4


async def _scripted_bank(problem: Problem, texts: list[str | Scripted], max_tokens: int = 64, n: int = 2) -> Bank:
    backend: Backend = FakeBackend(texts)
    sampling = Sampling(temperature=0.8, max_tokens=max_tokens)
    ctx = Ctx(backend, problem, sampling=sampling)
    traces = await ctx.sample(n=n)
    return Bank(task=BankTask("scripted"), sampling=sampling, n=n, model="fake",
                problems={problem.id: BankProblem(problem.id, problem.messages, problem.gold, traces)})


def test_alignment_of_reasoning_and_think_tags() -> None:
    plain = Trace(text="b c", reasoning="a ", tokens=["a", " ", "b", " c"])
    assert align(plain) == [("", "a"), ("", " "), ("b", ""), (" c", "")]
    inline = Trace(text="The answer is 4.", reasoning="2+2",
                   tokens=["<think>", "2", "+2", "</", "think>", "\n", "The answer", " is 4."])
    pieces = align(inline)
    assert "".join(t for t, _ in pieces) == inline.text and "".join(r for _, r in pieces) == inline.reasoning
    assert pieces[1] == ("", "2") and pieces[-1] == (" is 4.", "")
    opened = Trace(text="4", reasoning="hmm", tokens=["hm", "m", "</think>", " 4"])
    assert align(opened) == [("", "hm"), ("", "m"), ("", ""), ("4", "")]
    odd = Trace(text="é!", tokens=["bytes:\\xc3", "bytes:\\xa9", "!"])  # byte tokens: exact only as a whole
    assert "".join(t for t, _ in align(odd)) == "é!"


async def test_streamed_reasoning_is_kept_apart(tmp_path: Path) -> None:
    problem = make_problem()
    trace = Trace(text="The answer is 7.", reasoning="3+4=7", tokens=["3", "+4", "=7", "The answer", " is 7."],
                  logprobs=[-0.1] * 5, top_logprobs=[[("x", -0.1)]] * 5, finish_reason="stop", prompt_tokens=9,
                  completion_tokens=5)
    bank = Bank(task=BankTask("scripted"), sampling=Sampling(top_logprobs=1), n=1, model="fake",
                problems={problem.id: BankProblem(problem.id, problem.messages, problem.gold, [trace])})
    bank.save(tmp_path / "r.bank.jsonl.gz")
    replay = ReplayBackend(tmp_path / "r.bank.jsonl.gz")
    assert replay.capabilities.reasoning and replay.capabilities.top_logprobs == 1
    assert replay.name == "replay:r.bank.jsonl.gz"
    ctx = Ctx(replay, problem)
    async with ctx.stream(max_tokens=2) as stream:
        async for _ in stream:
            pass
    assert (stream.trace.reasoning, stream.trace.text, stream.trace.finish_reason) == ("3+4", "", "length")
    request = GenerationRequest(messages=problem.messages, n=1)
    replay.reset()
    (whole,) = await replay.complete(request)
    assert (whole.reasoning, whole.text) == ("3+4=7", "The answer is 7.")
