"""DeepPrune: stop parallel traces that are already heading for an answer another trace is computing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge, Interval

from ponder.answers import normalize_answer
from ponder.context import Ctx
from ponder.errors import BudgetExceeded
from ponder.judge import YES_NO_INSTRUCTION, judge_yes
from ponder.search.steps import states_answer
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.tasks.prompts import problem_statement
from ponder.types import Message, Problem, Result, Trace

Role = Literal["live", "founder", "pruned", "member"]
_JUDGE_CHARS = 3000  # each partial trace shown to the judge is cut to its first characters (a prefix, as in the paper)


@dataclass
class _Trace:
    """One streamed trace and where the clustering put it."""

    trace: Trace
    role: Role = "live"
    cluster: int | None = None  # index of its cluster's founder
    partial: str | None = None  # the answer its text states so far
    streak: int = 0  # consecutive checks that found the same partial answer
    judged: bool = False  # the judge has compared it with every cluster once
    by_judge: bool = False  # pruned on the judge's verdict (then it votes for its cluster's answer)


@dataclass
class _Clustering:
    """Online greedy clustering of partial traces (DeepPrune's second stage)."""

    problem: Problem
    ctx: Ctx
    min_tokens: int
    stable: int
    judge: bool
    threshold: float
    founders: list[_Trace] = field(default_factory=list)
    judge_calls: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def key(self, founder: _Trace) -> str | None:
        """What a cluster is known to answer: its founder's final answer once it has one, else its partial one."""
        return founder.trace.answer if founder.trace.answer is not None else founder.partial

    async def same(self, a: str | None, b: str | None) -> bool:
        if a is None or b is None:
            return False
        return normalize_answer(a) == normalize_answer(b) or await self.ctx.equivalent(a, b)

    def stated(self, trace: Trace) -> str | None:
        """The answer a partial trace has *stated*: only once it wrote an answer phrase, a box or ``####``, or
        closed its thinking. A number it merely mentions ("Janet's ducks lay 16 eggs") is not an answer."""
        text = trace.text or trace.reasoning
        if not text or not (states_answer(text) or "</think>" in text):
            return None
        return self.problem.extract(text)

    async def check(self, item: _Trace, progress: int) -> bool:
        """Look at a live trace's partial text; True when it should be pruned."""
        async with self.lock:
            trace = item.trace
            partial = self.stated(trace)
            repeated = partial is not None and partial == item.partial
            item.streak = item.streak + 1 if repeated else int(partial is not None)
            item.partial = partial
            if item.role != "live" or progress < self.min_tokens:
                return False  # founders only keep their partial answer (their cluster's key) current
            stable = partial is not None and item.streak >= self.stable
            for founder in self.founders:
                if stable and await self.same(partial, self.key(founder)):
                    return self._join(item, founder, "pruned")
            if self.judge and not item.judged:
                item.judged = True
                for founder in self.founders:
                    if await self._judged_same(item, founder):
                        item.by_judge = True
                        return self._join(item, founder, "pruned")
                    if not self.judge:
                        break
            if stable or self.judge:
                self._found(item)
            return False

    async def finish(self, item: _Trace) -> None:
        """A trace that ended by itself: it votes with its own answer and may found a cluster."""
        async with self.lock:
            if item.role != "live":
                return
            for founder in self.founders:
                if await self.same(item.trace.answer, self.key(founder)):
                    self._join(item, founder, "member")
                    return
            if item.trace.answer is not None:
                self._found(item)

    def _join(self, item: _Trace, founder: _Trace, role: Role) -> bool:
        item.role, item.cluster = role, self.founders.index(founder)
        return role == "pruned"

    def _found(self, item: _Trace) -> None:
        item.role, item.cluster = "founder", len(self.founders)
        self.founders.append(item)

    async def _judged_same(self, item: _Trace, founder: _Trace) -> bool:
        try:
            # The asking stream is paused while it waits: its slot carries the verdict, so the judge never waits
            # for a slot that streams blocked on this very lock hold. Verdicts are helper samples (judge_yes).
            with self.ctx.lend_slot():
                judgement = await judge_yes(self.ctx, _judge_messages(self.problem, founder.trace, item.trace))
        except BudgetExceeded:
            self.judge = False  # the budget is spent: the streams already running still finish and vote
            return False
        self.judge_calls += 1
        return judgement.p_yes >= self.threshold


def _judge_messages(problem: Problem, a: Trace, b: Trace) -> list[Message]:
    def shown(trace: Trace) -> str:
        text = (trace.reasoning + "\n" + trace.text).strip()
        return text[:_JUDGE_CHARS]

    return [{"role": "user", "content": (
        "Two unfinished attempts at the same problem follow. Will they reach the same final answer?\n\n"
        f"Problem:\n{problem_statement(problem)}\n\nAttempt A (unfinished):\n{shown(a)}\n\n"
        f"Attempt B (unfinished):\n{shown(b)}\n\n{YES_NO_INSTRUCTION}"
    )}]


def _saved_estimate(items: list[_Trace]) -> int:
    """Tokens the pruned traces would still have spent: for a trace pruned after t tokens, the mean remaining
    length ``L - t`` of the traces that finished naturally with ``L > t`` (conditioning on ``L > t`` matters:
    long traces are the likeliest to be pruned)."""
    lengths = [i.trace.completion_tokens for i in items if not i.trace.cancelled]
    saved = 0.0
    for item in items:
        if item.role == "pruned":
            spent = item.trace.completion_tokens
            longer = [length - spent for length in lengths if length > spent]
            saved += sum(longer) / len(longer) if longer else 0.0
    return round(saved)


@strategy("deepprune")
async def deepprune(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "traces streamed at once"] = 16,
    every: Annotated[int, Ge(1), "tokens between checks of a live trace"] = 8,
    min_tokens: Annotated[int, Ge(0), "tokens a trace needs before it can be pruned"] = 8,
    stable: Annotated[int, Ge(1), "consecutive checks a stated answer must hold"] = 2,
    judge: Annotated[bool, "also ask an LLM judge whether two unfinished traces agree"] = False,
    threshold: Annotated[float, Interval(gt=0, le=1), "judge's P(Yes) that prunes"] = 0.5,
    pruned_vote: Annotated[Literal["judge", "stated"], "who of the pruned votes (see the docstring)"] = "judge",
) -> Result:
    """DeepPrune (Tu et al., 2025): cancel streamed traces headed for an answer another trace already holds.

    From "DeepPrune: Parallel Scaling without Inter-trace Redundancy": stream ``n`` traces at once, stop each
    one predicted to reach the answer of an existing cluster, finish the rest and take a majority vote.

    Online greedy clustering: every ``every`` tokens each live trace is compared with the representative (the
    founder) of every cluster so far. If it is predicted to reach the same final answer it is cancelled (its
    tokens stay counted); otherwise, once it can be judged, it founds a new cluster and runs to the end.
    Founders are never pruned. The paper predicts equivalence with a trained judge over partial traces;
    here the default predictor is free: the answer the partial text has already *stated* (an answer phrase,
    ``\\boxed{}``, ``####`` or a closed ``</think>``; a number merely mentioned on the way is not one), once
    it has stayed the same for ``stable`` consecutive checks and the trace has at least ``min_tokens`` tokens,
    equal to the cluster's current answer (its founder's final answer, or its stated one while it runs).

    With ``judge=true`` a prompted LLM judge (P("Yes") from logprobs, ponder.judge) is also asked, once per
    trace at its first check past ``min_tokens``, whether the trace and a founder, both unfinished, will reach
    the same answer; ``p_yes >= threshold`` prunes. Judge calls are sampled through ctx and counted; they use
    new prompts, so they cannot be replayed from a trace bank.

    How pruned traces vote: a trace the judge pruned counts one vote for the final answer of its cluster (the
    judge said it would reach it). A trace pruned by its stated answer never finished, so by default
    (``pruned_vote=judge``) it does not vote: only what finished decides. ``pruned_vote=stated`` lets it vote
    with the answer it stated itself (not the founder's), which keeps the vote closer to full
    self-consistency's at the risk of counting answers a trace would have revised. A trace that finishes by
    itself votes with its own answer. Ties go to the answer sampled first (ponder's vote rule).

    The paper samples up to 512 traces per problem; ``n=16`` keeps the default affordable. ``info`` records
    how many traces were pruned, the tokens they spent and an estimate of the tokens pruning saved.
    """
    if not ctx.backend.capabilities.streaming:
        # Nothing can be stopped early: this is self-consistency, and info says why nothing was pruned.
        traces = await ctx.sample(n=n)
        result = await vote([t.answer for t in traces], ctx.equivalent)
        return result.result(traces, {"streaming": False, "launched": n, "pruned": 0})

    clustering = _Clustering(problem, ctx, min_tokens, stable, judge, threshold)
    items = (await ctx.gather(*(_run(clustering, every) for _ in range(n)))).done  # budget-stopped never started
    if not items:
        raise BudgetExceeded(f"token budget spent before deepprune could start a trace on problem {problem.id}")

    founders = clustering.founders
    answers = [_vote_of(i, founders, pruned_vote) for i in items]
    result = await vote(answers, ctx.equivalent)
    pruned = [i for i in items if i.role == "pruned"]
    return result.result([i.trace for i in items], {
        "streaming": True,
        "launched": len(items),
        "pruned": len(pruned),
        "pruned_by_judge": sum(i.by_judge for i in pruned),
        "pruned_vote": pruned_vote,
        "clusters": len(founders),
        "cluster_sizes": [sum(i.cluster == c for i in items) for c in range(len(founders))],
        "cluster_answers": [f.trace.answer for f in founders],
        "roles": [i.role for i in items],
        "cluster_of": [i.cluster for i in items],
        "pruned_tokens": sum(i.trace.completion_tokens for i in pruned),
        "tokens_saved_estimate": _saved_estimate(items),
        "judge_calls": clustering.judge_calls,
    })


def _vote_of(item: _Trace, founders: list[_Trace], pruned_vote: str) -> str | None:
    """The answer a trace votes for (see the docstring of ``deepprune``)."""
    if item.role != "pruned":
        return item.trace.answer
    if item.by_judge and item.cluster is not None:
        return founders[item.cluster].trace.answer
    return item.partial if pruned_vote == "stated" else None


async def _run(clustering: _Clustering, every: int) -> _Trace:
    """Stream one trace, checking it every ``every`` tokens, until it ends or is pruned."""
    async with clustering.ctx.stream() as stream:
        item = _Trace(stream.trace)
        deltas = 0
        next_check = every
        async for _ in stream:
            deltas += 1
            progress = len(stream.trace.tokens) or deltas  # a stream without logprobs may carry no tokens
            if progress >= next_check:
                next_check = progress + every
                if await clustering.check(item, progress):
                    await stream.cancel()
                    break
    if not item.trace.cancelled:
        await clustering.finish(item)
    return item
