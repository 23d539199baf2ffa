"""Resource bounds: problems and traces in flight, and stored trace sizes, are bounded; hitting a bound is said."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ponder.backends import BackendSpec
from ponder.backends.fake import FakeBackend
from ponder.backends.openai import OpenAIBackend
from ponder.context import Call, Ctx
from ponder.runner import EvalConfig, run_eval
from ponder.store import ProblemRecord, Store
from ponder.strategies import strategy
from ponder.types import GenerationRequest, Problem, Result, Trace
from tests.fakes.openai_server import FakeOpenAIServer

IN_FLIGHT = {"now": 0, "max": 0}


@strategy("_test-probe-bounds")
async def _probe(problem: Problem, ctx: Ctx, n: int = 2) -> Result:
    """Counts the problems in flight around two sampling calls."""
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["max"] = max(IN_FLIGHT["max"], IN_FLIGHT["now"])
    try:
        traces = await ctx.sample(n=n)
        traces += await ctx.sample(n=n)
    finally:
        IN_FLIGHT["now"] -= 1
    return Result(answer=traces[0].answer, traces=traces)


def _config(**kw: object) -> EvalConfig:
    base: dict[str, object] = {"task": "add1", "strategy": "_test-probe-bounds", "model": BackendSpec("fake"),
                               "task_size": 12}
    return EvalConfig(**{**base, **kw})  # type: ignore[arg-type]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


async def _answer(request: dict, index: int) -> str:
    await asyncio.sleep(0.03)  # a request takes a while, so requests that may overlap do
    return "The answer is 5."


async def test_problems_and_traces_in_flight_stay_within_their_bounds(tmp_path: Path) -> None:
    IN_FLIGHT.update(now=0, max=0)
    warnings: list[str] = []
    with FakeOpenAIServer(_answer) as srv, Store(tmp_path / "s.db") as store:
        backend = OpenAIBackend(srv.base_url, "fake-model")
        try:
            # 3 problems at once, each holding 2 requests of n=2 in turn: up to 3 requests (6 traces) would be
            # in flight without the bound of 4 traces, which allows 2 requests at once.
            outcome = await run_eval(_config(concurrency=3, max_inflight=4), store, backend=backend,
                                     on_warning=warnings.append)
        finally:
            await backend.aclose()
        records = srv.records
    assert outcome.progress.done == 12 and outcome.warnings == [] and warnings == []
    assert IN_FLIGHT["max"] == 3  # problems: the bound is reached, never passed
    spans = [(r.started_at, r.finished_at or r.started_at) for r in records]
    assert len(spans) == 24 and _max_overlap(spans) == 2  # traces: 2 requests x 2 samples = 4


async def test_a_request_larger_than_the_slot_pool_runs_alone_and_is_reported(tmp_path: Path) -> None:
    warnings: list[str] = []
    with Store(tmp_path / "s.db") as store:
        outcome = await run_eval(_config(params={"n": 6}, max_inflight=4, task_size=3), store,
                                 on_warning=warnings.append)
    assert outcome.progress.oversized_requests == 6 and outcome.progress.largest_request == 6
    assert warnings[0] == ("a request asks for 6 samples at once, more than --max-inflight 4: such requests wait "
                           "for every slot and run alone")
    assert len(warnings) == 2 and warnings[1] == outcome.warnings[0]
    assert warnings[1].startswith("6 requests asked for up to 6 samples at once, more than --max-inflight 4")


def _call(*traces: Trace) -> Call:
    return Call("complete", GenerationRequest([{"role": "user", "content": "q"}]), started_at=0.0,
                traces=list(traces))


def _record(pid: str) -> ProblemRecord:
    return ProblemRecord(pid, 0, "7", "7", True, None, {}, {"k": 1}, 1, 2, 1, 2, 0, 0.1)


def test_the_store_cuts_oversized_traces_and_flags_them(tmp_path: Path) -> None:
    long = Trace(text="x" * 500, reasoning="r" * 50, tokens=["x"] * 30, logprobs=[-0.1] * 30,
                 top_logprobs=[[("x", -0.1)]] * 30, index=0)
    short = Trace(text="The answer is 7.", tokens=["The"], logprobs=[-0.1], top_logprobs=[[("The", -0.1)]], index=1)
    with Store(tmp_path / "s.db", max_trace_chars=100, max_trace_tokens=20) as store:
        store.ensure_run("r", task="t", strategy="s", model="m", config={})
        assert store.save_problem("r", _record("p"), [_call(long, short)]) == 1
        (_, kept_long), (_, kept_short) = store.traces("r")
        assert store.truncated_traces("r") == [("p", 0, {"text": 500, "tokens": 30})]
        (result,) = store.results("r")
    assert kept_long.text == "x" * 100 and kept_long.reasoning == "r" * 50
    assert len(kept_long.tokens) == len(kept_long.logprobs) == len(kept_long.top_logprobs) == 20
    assert kept_short.text == short.text and kept_short.tokens == short.tokens
    assert result.info == {"k": 1, "truncated_traces": 1}
    assert long.text == "x" * 500  # the caller's trace is left whole


async def test_an_eval_that_hits_the_trace_bound_says_so(tmp_path: Path) -> None:
    warnings: list[str] = []
    backend = FakeBackend(["Let me think. " * 20 + "The answer is 5."])
    with Store(tmp_path / "s.db", max_trace_chars=64) as store:
        outcome = await run_eval(_config(strategy="cot", params={}, task_size=3), store, backend=backend,
                                 on_warning=warnings.append)
        assert len(store.truncated_traces(outcome.run_id)) == 3
        results = store.results(outcome.run_id)
    assert outcome.progress.truncated_traces == 3
    assert warnings[0].startswith("problem add1/seed0/0: a trace is longer than the store's bounds (64 chars")
    assert warnings[-1] == outcome.warnings[0] and warnings[-1].startswith("3 traces were longer than the store's")
    # the answer was read from the whole trace before it was cut for storage
    assert [r.answer for r in results] == ["5"] * 3


def test_the_cli_warns_about_cut_traces(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ponder.cli", "eval", "--task", "add1", "--size", "2", "--model", "fake", "--n", "2",
         "--max-trace-chars", "10", "--store", str(tmp_path / "s.db")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "250"}, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "warning: problem add1/seed0/" in out.stderr and "stored cut and flagged" in out.stderr
    assert "4 traces were longer than the store's bounds (10 chars" in out.stderr.replace("\n", " ")


@pytest.mark.parametrize("bad", [0, -5])
def test_the_trace_bound_must_be_positive(tmp_path: Path, bad: int) -> None:
    from ponder.errors import ConfigError

    with pytest.raises(ConfigError, match="--max-trace-chars"):
        Store(tmp_path / "s.db", max_trace_chars=bad)

