"""Strategy requests: run a strategy on the request's messages and answer with its chosen trace.

The answer text is the full text of the first trace whose answer is the strategy's answer (else the answer
itself). ``usage`` counts every upstream token, cancelled traces included. The ``ponder`` field carries
``strategy``, ``params`` (coerced, defaults filled in), ``answer``, ``confidence``, ``votes``, ``traces``
(count), ``cancelled`` (traces stopped early), ``calls`` and the strategy's ``info``.

With ``--log`` every request (strategy or pass-through) is stored as a problem of a run named
``serve-<strategy>-<YYYYMMDD>-<digest of parameters, model and sampling>``, so ``ponder runs/show/report``
see served traffic like an eval run (no gold answers: nothing is scored).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ponder.answers import check_math, extract_answer
from ponder.context import Ctx
from ponder.errors import one_line
from ponder.server.requests import ChatRequest
from ponder.server.responses import Chunks, comment, completion, dumps, message_json
from ponder.server.streaming import Emit
from ponder.store import ProblemRecord, Store
from ponder.strategies import get_strategy
from ponder.types import Problem, Result, Trace

log = logging.getLogger("ponder.serve")
_PIECES = re.compile(r"\s*\S+(?:\s*\S+){0,7}\s*|\s+")  # up to 8 words per streamed chunk


def problem_for(cid: str, chat: ChatRequest) -> Problem:
    return Problem(id=cid, messages=chat.generation.messages, gold=None, checker=check_math, extract=extract_answer)


async def run(ctx: Ctx, chat: ChatRequest) -> Result:
    assert chat.strategy is not None
    return await get_strategy(chat.strategy)(ctx.problem, ctx, **chat.params)


def chosen_trace(result: Result) -> Trace | None:
    if result.answer is not None:
        for trace in result.traces:
            if trace.answer == result.answer and not trace.cancelled:
                return trace
    return None


def answer_text(result: Result) -> tuple[str, str]:
    """(content, reasoning) of the answer: the chosen trace's text, else the answer string."""
    trace = chosen_trace(result)
    if trace is not None:
        return trace.text, trace.reasoning
    return result.answer or "", ""


def ponder_field(chat: ChatRequest, result: Result, ctx: Ctx) -> dict[str, Any]:
    return {
        "strategy": chat.strategy,
        "params": chat.params,
        "answer": result.answer,
        "confidence": result.confidence,
        "votes": result.votes,
        "traces": ctx.usage.traces,
        "cancelled": ctx.usage.cancelled_traces,
        "calls": ctx.usage.calls,
        "info": result.info,
    }


async def complete(ctx: Ctx, chat: ChatRequest, cid: str) -> tuple[dict[str, Any], Result]:
    result = await run(ctx, chat)
    text, reasoning = answer_text(result)
    choice = {"index": 0, "message": message_json(text, reasoning), "logprobs": None, "finish_reason": "stop"}
    return completion(cid, chat.model, [choice], ctx.usage, ponder_field(chat, result, ctx)), result


async def stream(ctx: Ctx, chat: ChatRequest, cid: str, emit: Emit, interval_s: float) -> Result:
    """Progress comments while the strategy works, then the answer as content chunks."""
    task = asyncio.create_task(run(ctx, chat))
    started = time.perf_counter()
    try:
        while not task.done():
            await asyncio.wait((task,), timeout=interval_s)
            if not task.done() and chat.progress:
                usage = ctx.usage
                emit(comment("ponder progress " + dumps({
                    "elapsed_s": round(time.perf_counter() - started, 2), "calls": usage.calls,
                    "traces": usage.traces, "completion_tokens": usage.completion_tokens}).decode()))
    finally:
        task.cancel()
    result = task.result()
    chunks = Chunks(cid, chat.model)
    text, reasoning = answer_text(result)
    out = bytearray(chunks.role())
    if reasoning:
        out += chunks.choice(0, {"reasoning_content": reasoning})
    for piece in _PIECES.findall(text):
        out += chunks.choice(0, {"content": piece})
    finish = {**chunks.base, "ponder": ponder_field(chat, result, ctx),
              "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}
    out += b"data: " + dumps(finish) + b"\n\n"
    if chat.include_usage:
        out += chunks.usage(ctx.usage)
    emit(bytes(out))
    return result


# ---- logging ------------------------------------------------------------------------------------------


@dataclass
class RequestLog:
    """Stores served requests as problems of ``serve-…`` runs; writes happen off the event loop."""

    store: Store
    model: str
    _runs: set[str] = field(default_factory=set)
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def save(self, chat: ChatRequest, ctx: Ctx, result: Result | None, error: BaseException | None,
             latency_s: float) -> None:
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._write_safely, chat, ctx, result, error, latency_s))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _write_safely(self, *args: Any) -> None:
        try:
            self._write(*args)
        except Exception as exc:  # a failed log line must not fail the request or the server
            log.warning("could not log request to %s: %s", self.store.path, one_line(exc))

    def _write(self, chat: ChatRequest, ctx: Ctx, result: Result | None, error: BaseException | None,
               latency_s: float) -> None:
        strategy = chat.strategy or "passthrough"
        identity: dict[str, Any] = {
            "task": "serve", "task_seed": 0, "task_size": None, "strategy": strategy, "params": chat.params,
            "model": self.model, "model_name": chat.generation.extra.get("model"),
            "sampling": {k: v for k, v in asdict(chat.sampling).items() if k != "seed"} if chat.sampling else None,
            "token_budget": None,
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]
        run_id = f"serve-{strategy}-{time.strftime('%Y%m%d')}-{digest}"
        if run_id not in self._runs:
            self.store.ensure_run(run_id, task="serve", strategy=strategy, model=self.model,
                                  config={**json.loads(json.dumps(identity, default=str)), "group": digest})
            self._runs.add(run_id)
        if error is None:
            message = None
        elif isinstance(error, asyncio.CancelledError):
            message = "cancelled: the client disconnected"
        else:
            message = one_line(error)
        usage = ctx.usage
        record = ProblemRecord(
            problem_id=ctx.problem.id, position=int(time.time() * 1000), gold=None,
            answer=result.answer if result else None, correct=None,
            confidence=result.confidence if result else None, votes=result.votes if result else {},
            info=result.info if result else {}, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, calls=usage.calls, traces=usage.traces,
            cancelled_traces=usage.cancelled_traces, latency_s=latency_s, error=message,
            capped_traces=usage.capped_traces,
        )
        self.store.save_problem(run_id, record, ctx.calls)

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self.store.close()
