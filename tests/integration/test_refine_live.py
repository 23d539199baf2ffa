"""The judge, self-refine and cqot strategies against the real embedded llama-server (short runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ponder.backends.local import LlamaServer
from ponder.backends.openai import OpenAIBackend
from ponder.context import Ctx, Sampling
from ponder.strategies import get_strategy
from ponder.types import Problem
from tests.conftest import make_problem

pytestmark = pytest.mark.integration

QUESTION = "What is 3 + 4? Answer with the number at the end as 'The answer is N.'"


@pytest.fixture
async def live(llama_server: LlamaServer) -> AsyncIterator[tuple[Problem, Ctx]]:
    backend = OpenAIBackend(llama_server.base_url)
    problem = make_problem(QUESTION)
    try:
        yield problem, Ctx(backend, problem, sampling=Sampling(max_tokens=32, top_logprobs=5, seed=7))
    finally:
        await backend.aclose()


def _counted(ctx: Ctx) -> None:
    """Every call's tokens are in the problem's usage, and every call came back."""
    assert ctx.usage.calls == len(ctx.calls) and all(c.error is None for c in ctx.calls)
    assert ctx.usage.completion_tokens == sum(c.usage.completion_tokens for c in ctx.calls) > 0


async def test_judge_scores_samples_with_p_yes(live: tuple[Problem, Ctx]) -> None:
    problem, ctx = live
    result = await get_strategy("judge")(problem, ctx, n=3)
    scores = result.info["scores"]
    assert len(result.traces) == 3 and len(scores) == 3
    answered = {t.text for t in result.traces if t.answer is not None}
    assert ctx.usage.calls == 1 + len(answered)  # one verdict per distinct answered solution
    assert all(s is None or 0.0 <= s <= 1.0 for s in scores)
    if answered:
        best = max(s for s in scores if s is not None)
        assert result.answer is not None and result.confidence == pytest.approx(best, abs=1e-6)
        # llama-server returns top logprobs: P(Yes) is graded unless the model opened with another word
        assert result.info["judge_from_logprobs"] or "warning" in result.info
    _counted(ctx)


async def test_self_refine_critiques_and_refines(live: tuple[Problem, Ctx]) -> None:
    problem, ctx = live
    result = await get_strategy("self-refine")(problem, ctx, max_iters=1, stop="judge", history="last")
    history = result.info["history"]
    assert history[0]["feedback"] and history[0]["score"] is not None
    assert result.info["stopped"] in ("passed", "max_iters")
    assert len(history) == (1 if result.info["stopped"] == "passed" else 2)
    assert ctx.usage.calls == 3 + (len(history) - 1)  # draft, feedback, verdict, then the unreviewed refinement
    _counted(ctx)


async def test_cqot_probes_a_plan_and_answers_from_it(live: tuple[Problem, Ctx]) -> None:
    problem, ctx = live
    result = await get_strategy("cqot")(problem, ctx, max_iters=0)
    (assessment,) = result.info["assessments"]
    assert result.info["plans"] == 1 and len(result.traces) == 1 and 0 <= assessment["yes"] <= 8
    assert result.info["stopped"] in ("passed", "max_iters")
    assert ctx.usage.calls == 3  # the plan, the critical-question reply, the answer
    assert result.confidence is not None and 0.0 <= result.confidence <= 1.0
    _counted(ctx)
