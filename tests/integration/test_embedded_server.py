"""ponder against the real embedded llama-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ponder.backends.local import LlamaServer, LocalBackend
from ponder.backends.openai import OpenAIBackend
from ponder.context import Ctx, Sampling
from ponder.strategies import get_strategy
from ponder.types import GenerationRequest
from tests.conftest import make_problem

pytestmark = pytest.mark.integration

QUESTION = "What is 3 + 4? Answer with the number at the end as 'The answer is N.'"


async def test_native_n_with_logprobs(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend(llama_server.base_url)
    try:
        ctx = Ctx(backend, make_problem(QUESTION), sampling=Sampling(max_tokens=48, top_logprobs=5))
        traces = await ctx.sample(n=4)
    finally:
        await backend.aclose()
    assert len(traces) == 4
    for trace in traces:
        assert trace.text and trace.tokens and len(trace.tokens) == len(trace.logprobs) == trace.completion_tokens
        assert all(lp <= 0 for lp in trace.logprobs)
        assert all(1 <= len(top) <= 5 for top in trace.top_logprobs)
    assert len({t.text for t in traces}) > 1  # real sampling, not 4 copies
    assert ctx.usage.prompt_tokens > 0


async def test_stream_matches_tokens_and_cancel_stops_early(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend(llama_server.base_url)
    try:
        ctx = Ctx(backend, make_problem("Write a very long story about a dragon."),
                  sampling=Sampling(max_tokens=400))
        async with ctx.stream() as stream:
            async for _ in stream:
                if len(stream.trace.tokens) >= 10:
                    await stream.cancel()
        trace = stream.trace
        assert trace.cancelled and 10 <= trace.completion_tokens < 400
        assert "".join(trace.tokens) == trace.text
        assert await _slots_idle(llama_server), "llama-server kept generating a cancelled trace"
        # the server must be free again at once: a full streamed answer still arrives
        async with ctx.stream(max_tokens=16) as full:
            async for _ in full:
                pass
        assert full.finished and full.trace.finish_reason in ("stop", "length")
        assert full.trace.completion_tokens == len(full.trace.tokens)
    finally:
        await backend.aclose()


async def test_self_consistency_on_the_embedded_model() -> None:
    backend = LocalBackend(slots=8, ctx_per_slot=1024)
    await backend.start()
    try:
        problem = make_problem(QUESTION)
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=64))
        result = await get_strategy("self-consistency")(problem, ctx, n=8)
    finally:
        await backend.aclose()
    assert len(result.traces) == 8 and result.confidence is not None
    assert sum(result.votes.values()) <= 8
    assert backend.server.process is None  # stopped


async def _slots_idle(server: LlamaServer, within_s: float = 3.0) -> bool:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            slots = (await client.get(server.base_url.removesuffix("/v1") + "/slots")).json()
            if not any(slot["is_processing"] for slot in slots):
                return True
            await asyncio.sleep(0.05)
    return False


async def test_token_counts_are_exact_without_logprobs() -> None:
    # llama-server reports usage for one choice only when n > 1; ponder must still count every token
    backend = LocalBackend(slots=4, ctx_per_slot=1024)
    await backend.start()
    try:
        request = GenerationRequest([{"role": "user", "content": "Write a poem."}], n=3, max_tokens=20)
        traces = await backend.complete(request)
    finally:
        await backend.aclose()
    assert [t.completion_tokens for t in traces] == [20, 20, 20] and all(t.logprobs == [] for t in traces)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_no_orphan_server_after_interrupt_or_kill(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ponder.cli", "eval", "--task", "add1", "--n", "4", "--limit", "50",
         "--max-tokens", "64", "--store", str(tmp_path / "s.db")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    server_pid = None
    deadline = time.time() + 90
    while time.time() < deadline and server_pid is None:
        kids = [p for p in _children(proc.pid) if "llama-server" in Path(f"/proc/{p}/cmdline").read_text()]
        server_pid = kids[0] if kids else None
        time.sleep(0.2)
    assert server_pid is not None, "the eval never started llama-server"
    time.sleep(3)  # let it work
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.time() + 15
    while time.time() < deadline and _alive(server_pid):
        time.sleep(0.2)
    assert not _alive(server_pid), "llama-server outlived ponder"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "resume" in (proc.stderr.read() if proc.stderr else "")


def test_eval_command_on_the_embedded_model(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ponder.cli", "eval", "--task", "add1", "--n", "4", "--limit", "6",
         "--max-tokens", "64", "--store", str(tmp_path / "s.db")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stderr
    assert "accuracy [95% CI]" in out.stdout and "maj@4" in out.stdout


async def test_server_health_endpoint_is_up(llama_server: LlamaServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(llama_server.base_url.removesuffix("/v1") + "/health")
    assert response.status_code == 200
    await asyncio.sleep(0)


async def test_confidence_and_budget_strategies_run_on_the_embedded_server(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend(llama_server.base_url, count_tokens_by_logprobs=True)
    try:
        problem = make_problem(QUESTION)
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=64))
        online = await get_strategy("deepconf")(problem, ctx, mode="online", n=12, warmup=4, window=8,
                                                eta=50.0, batch=4)
        assert online.info["warmup"] == 4 and online.info["launched"] <= 12
        streamed = [c for c in ctx.calls if c.kind == "stream"]
        # a cancelled stream counts exactly the tokens it revealed; a finished one the server's own count
        assert all(c.usage.completion_tokens == len(c.traces[0].tokens) for c in streamed if c.traces[0].cancelled)
        assert all(c.usage.completion_tokens >= len(c.traces[0].tokens) for c in streamed)

        problem = make_problem("Explain in detail, step by step, how to add 3 and 4. End with 'The answer is N.'")
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=64))
        elastic = await get_strategy("budget")(problem, ctx, mode="elastic", think_tokens=8, answer_tokens=16)
        first, second = ctx.calls
        assert first.request.max_tokens == 8 and second.request.messages[-1]["role"] == "assistant"
        assert second.request.max_tokens == 16 and elastic.traces
        assert not second.traces[0].text.startswith(second.request.messages[-1]["content"])  # echo cut
    finally:
        await backend.aclose()
