"""linc and sat-solve against the real embedded llama-server (short runs).

SmolLM2-135M mostly fails to formalise; these tests check that the pipeline runs end to end, that every
sample is accounted for (decided or counted as a failure) and that every token is in the problem's usage.
"""

from __future__ import annotations

import pytest

from ponder.backends.local import LlamaServer
from ponder.backends.openai import OpenAIBackend
from ponder.context import Ctx, Sampling
from ponder.strategies import get_strategy
from ponder.tasks import load_task
from ponder.tasks.logic import SatChecker, extract_tagged, sat_prompt
from ponder.types import Problem

pytestmark = pytest.mark.integration


def _accounted(ctx: Ctx, traces: int) -> None:
    assert ctx.usage.traces == traces and all(c.error is None for c in ctx.calls)
    assert ctx.usage.completion_tokens == sum(c.usage.completion_tokens for c in ctx.calls) > 0
    assert ctx.usage.prompt_tokens > 0


async def test_linc_on_the_embedded_model(llama_server: LlamaServer) -> None:
    problem = load_task("logic", limit=1)[0]
    backend = OpenAIBackend(llama_server.base_url)
    try:
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=128, seed=3))
        result = await get_strategy("linc")(problem, ctx, k=3, shots=1)
    finally:
        await backend.aclose()
    assert len(result.traces) == 3
    verdicts = result.info["verdicts"]
    assert result.info["decided"] + sum(result.info["failures"].values()) == 3
    assert [t.answer for t in result.traces] == verdicts
    assert result.answer in (None, "True", "False", "Unknown")
    assert (result.answer is None) == (result.info["decided"] == 0)
    _accounted(ctx, 3)


async def test_sat_solve_on_the_embedded_model(llama_server: LlamaServer) -> None:
    # a small instance told like sat-story, so the run stays short on a CPU
    clauses = [[1, -2], [2, 3], [-1, -3]]
    names = ["Ann", "Ben", "Cal"]
    problem = Problem(id="tiny-story", messages=[{"role": "user", "content": sat_prompt(clauses, names, story=True)}],
                      gold=None, checker=SatChecker(clauses, names), extract=extract_tagged,
                      meta={"sat": {"variables": names, "clauses": clauses}})
    backend = OpenAIBackend(llama_server.base_url)
    try:
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=96, seed=3))
        result = await get_strategy("sat-solve")(problem, ctx, k=2, shots=1, refine=1)
    finally:
        await backend.aclose()
    failed_first = len(result.traces) - 2  # each failed translation got one repair round
    assert 0 <= failed_first <= 2
    assert result.info["decided"] + sum(result.info["failures"].values()) == 2
    if result.answer is not None:  # whatever the model wrote, the answer is the solver's: valid or UNSAT
        assert result.answer == "UNSAT" or set(result.answer.split(", ")) <= {*names, "none"}
    _accounted(ctx, len(result.traces))
