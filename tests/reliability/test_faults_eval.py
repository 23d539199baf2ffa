"""An eval against a server that fails 20% of requests in every way it can: it finishes, nothing is lost or wrong.

Every problem ends scored (and then right: the fake server always answers right, so a fault that slipped through
as a wrong or doubled text would show) or with its error recorded; retries stay within the policy's attempts;
token counts are exact; and the run has a hard deadline, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ponder.backends import BackendSpec
from ponder.backends.openai import OpenAIBackend
from ponder.backends.retry import RetryPolicy
from ponder.context import Ctx
from ponder.runner import EvalConfig, run_eval
from ponder.store import Store
from ponder.strategies import strategy
from ponder.types import Problem, Result
from tests.fakes.openai_server import TRANSIENT_FAULT_KINDS, FakeOpenAIServer, tokenize, transient_fault_rates

PROBLEMS = 200
ATTEMPTS = 3
DEADLINE_S = 150.0
TIMEOUT_S = 0.5  # the client's; a "slow" fault sleeps 10x longer
RETRY = RetryPolicy(attempts=ATTEMPTS, base_delay_s=0.01, max_delay_s=0.05)


@strategy("_test-stream-once")
async def _stream_once(problem: Problem, ctx: Ctx) -> Result:
    """One streamed sample (the path where chunks can be cut, repeated or malformed mid-way)."""
    async with ctx.stream() as stream:
        async for _ in stream:
            pass
    return Result(answer=stream.trace.answer, traces=[stream.trace])


def _reply(question: str) -> str:
    a, b = map(int, re.search(r"(\d+) \+ (\d+)", question).groups())  # type: ignore[union-attr]
    return f"Adding {a} and {b} gives {a + b}. The answer is {a + b}."


def _arithmetic(request: dict[str, Any], index: int) -> str:
    return _reply(request["messages"][-1]["content"])


@pytest.fixture
def hard_deadline() -> Iterator[None]:
    """Kill the whole test process (with every thread's stack) if the test outlives its deadline."""
    faulthandler.dump_traceback_later(DEADLINE_S + 30, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def _question(messages: list[dict[str, Any]]) -> str:
    return str(messages[-1]["content"])


@pytest.mark.parametrize(("strategy_name", "params"), [("self-consistency", {"n": 3}), ("_test-stream-once", {})])
async def test_eval_under_twenty_percent_faults(tmp_path: Path, hard_deadline: None, strategy_name: str,
                                                params: dict[str, Any]) -> None:
    rates = transient_fault_rates(0.2, delay_s=10 * TIMEOUT_S, retry_after=0.02)
    config = EvalConfig(task="add1", strategy=strategy_name, model=BackendSpec("openai", "fault-server"),
                        params=params, task_size=PROBLEMS, concurrency=16, run_id="faulty")
    with (
        FakeOpenAIServer(_arithmetic, fault_rates=rates, seed=7, fault_key="body") as srv,
        Store(tmp_path / "runs.db") as store,
    ):
        backend = OpenAIBackend(srv.base_url, "fake-model", timeout_s=TIMEOUT_S, retry=RETRY)
        try:
            outcome = await asyncio.wait_for(run_eval(config, store, backend=backend), DEADLINE_S)
            assert srv.wait_idle(5.0), "requests still in flight after the eval ended"
            upstream = Counter(_question(r.json["messages"]) for r in srv.records if r.json)
            faults = srv.fault_counts

            results = store.results(outcome.run_id)
            traces = store.traces(outcome.run_id)
            with store._lock:
                stored_calls = Counter(
                    _question(json.loads(row[0]))
                    for row in store._db.execute("SELECT messages FROM calls WHERE run_id = ?", (outcome.run_id,))
                )

            # Every problem is there once: scored, or with its error.
            assert sorted(r.problem_id for r in results) == sorted(f"add1/seed0/{i}" for i in range(PROBLEMS))
            failed = [r for r in results if r.error is not None]
            scored = [r for r in results if r.error is None]
            assert all(r.error for r in failed) and all(r.correct is not None for r in scored)
            assert all(r.correct and r.answer == r.gold for r in scored), [r for r in scored if not r.correct][:3]
            assert len(scored) >= 0.9 * PROBLEMS  # faults were retried, not just recorded
            assert outcome.progress.errors == len(failed)

            # Every kind of fault happened, and retries are bounded by the policy, per question asked.
            assert set(faults) == set(TRANSIENT_FAULT_KINDS), faults
            assert sum(upstream.values()) > sum(stored_calls.values())  # some requests were retried
            for question, sent in upstream.items():
                assert sent <= ATTEMPTS * stored_calls[question], question

            # Token counts are exact whatever the server did (duplicated chunks, missing logprobs).
            for pid, trace in traces:
                if pid in {r.problem_id for r in scored}:
                    expected = _reply(_question(store.messages(outcome.run_id, pid)))
                    assert trace.text == expected and trace.completion_tokens == len(tokenize(expected))
                    assert trace.tokens in ([], tokenize(expected))  # none when the logprobs were lost, never doubled
            if strategy_name == "_test-stream-once":
                assert faults["duplicate_chunks"] > 0 and faults["truncate"] > 0

            # A rerun against a healthy server finishes exactly the problems that failed.
            srv.set_fault_rates({})
            srv.clear_records()
            again = await asyncio.wait_for(run_eval(config, store, backend=backend), DEADLINE_S)
            assert again.resumed and again.progress.skipped == len(scored) and again.progress.done == len(failed)
            assert srv.request_count == len(failed)
            final = store.results(outcome.run_id)
            assert len(final) == PROBLEMS and all(r.correct for r in final)
        finally:
            await backend.aclose()
