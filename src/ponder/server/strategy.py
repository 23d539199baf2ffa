"""Strategy requests: run a strategy on the request's messages and answer with its chosen trace.

The answer text is the full text of the first trace whose answer is the strategy's answer (else the answer
itself); with ``logprobs`` the choice carries that trace's token logprobs (``top_logprobs`` alternatives each).
``n`` runs the strategy ``n`` times independently, one choice each (seeds ``seed + i``). ``usage`` counts every
upstream token, cancelled traces included. The ``ponder`` field carries ``strategy``, ``params`` (coerced,
defaults filled in), ``answer``, ``confidence``, ``votes``, ``traces`` (count), ``cancelled`` (traces stopped
early), ``calls`` and the strategy's ``info``; with ``n > 1`` the counts are totals, the answer fields are the first
choice's, and ``choices`` lists each choice's.

With ``--log`` every request (strategy or pass-through) is stored as a problem of a run named
``serve-<strategy>-<YYYYMMDD>-<digest of parameters, model and sampling>``, so ``ponder runs/show/report``
see served traffic like an eval run (no gold answers: nothing is scored); each of ``n`` choices is a problem.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ponder.answers import check_math, extract_answer
from ponder.backends import Backend
from ponder.context import Ctx, Sampling, Slots
from ponder.errors import one_line
from ponder.server.requests import ChatRequest
from ponder.server.responses import Chunks, comment, completion, dumps, logprobs_json, message_json
from ponder.server.streaming import Emit
from ponder.store import ProblemRecord, Store
from ponder.strategies import get_strategy
from ponder.types import GenerationRequest, Message, Problem, Result, Trace, Usage

log = logging.getLogger("ponder.serve")
_PIECES = re.compile(r"\s*\S+(?:\s*\S+){0,7}\s*|\s+")  # up to 8 words per streamed chunk


def problem_for(cid: str, chat: ChatRequest) -> Problem:
    return Problem(id=cid, messages=chat.generation.messages, gold=None, checker=check_math, extract=extract_answer)


class RequestCtx(Ctx):
    """A strategy request's context: the client's ``stop`` goes on every sample drawn without a stop of its own.

    A strategy's own stops (search steps, linc, sat-solve) must win: sent as a pass-through extra, the client's
    ``stop`` would replace them, and a step search would run past its step delimiter.
    """

    def __init__(self, *args: Any, stop: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_stop = stop

    def request(self, messages: list[Message] | None = None, *, n: int = 1, **overrides: Any) -> GenerationRequest:
        request = super().request(messages, n=n, **overrides)
        if self.client_stop and request.stop is None:
            request = replace(request, stop=list(self.client_stop))
        return request


def contexts(backend: Backend, slots: Slots, chat: ChatRequest, cid: str) -> list[Ctx]:
    """One context per choice: pass-through has one (the upstream draws ``n``), a strategy request ``n``."""
    if not chat.strategy:
        return [Ctx(backend, problem_for(cid, chat), sampling=chat.sampling, slots=slots)]
    if chat.choices == 1:
        return [RequestCtx(backend, problem_for(cid, chat), sampling=chat.sampling, slots=slots,
                           stop=chat.generation.stop)]
    # Distinct seeds per choice, or n runs with a seed would all draw the same samples.
    return [RequestCtx(backend, problem_for(f"{cid}-{i}", chat), sampling=_seeded(chat, i), slots=slots,
                       stop=chat.generation.stop) for i in range(chat.choices)]


def _seeded(chat: ChatRequest, index: int) -> Sampling | None:
    sampling = chat.sampling
    if sampling is None or sampling.seed is None:
        return sampling
    return replace(sampling, seed=sampling.seed + index)


async def run(ctx: Ctx, chat: ChatRequest) -> Result:
    assert chat.strategy is not None
    return await get_strategy(chat.strategy)(ctx.problem, ctx, **chat.params)


async def run_all(ctxs: list[Ctx], chat: ChatRequest) -> list[Result]:
    """Run the strategy once per context, concurrently; the first failure cancels the others."""
    if len(ctxs) == 1:
        return [await run(ctxs[0], chat)]
    tasks = [asyncio.ensure_future(run(ctx, chat)) for ctx in ctxs]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            error = task.exception() if task.done() and not task.cancelled() else None
            if error is not None:
                raise error
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()


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


def finish_reason(result: Result) -> str:
    """The chosen trace's; with no answer because samples hit max_tokens, ``length`` says why it is empty."""
    trace = chosen_trace(result)
    if trace is not None:
        return trace.finish_reason or "stop"
    if result.answer is None and any(t.capped for t in result.traces):
        return "length"
    return "stop"


def choice_logprobs(result: Result, chat: ChatRequest) -> dict[str, Any] | None:
    """The chosen trace's token logprobs, if the client asked for them and there is such a trace with them.

    The strategy may have drawn more alternatives per token than the client asked for (its own top-k, e.g.
    DeepConf's 20): the response carries ``top_logprobs`` of them, none without it, as OpenAI does.
    """
    trace = chosen_trace(result)
    if not chat.generation.logprobs or trace is None or not trace.logprobs:
        return None
    k = chat.generation.top_logprobs or 0
    return logprobs_json(trace.tokens, trace.logprobs, [alts[:k] for alts in trace.top_logprobs])


def total_usage(ctxs: list[Ctx]) -> Usage:
    if len(ctxs) == 1:
        return ctxs[0].usage
    total = Usage()
    for ctx in ctxs:
        total.add(ctx.usage)
    return total


def _answer_fields(result: Result, usage: Usage) -> dict[str, Any]:
    return {"answer": result.answer, "confidence": result.confidence, "votes": result.votes,
            "traces": usage.traces, "cancelled": usage.cancelled_traces, "calls": usage.calls, "info": result.info}


def ponder_field(chat: ChatRequest, results: list[Result], ctxs: list[Ctx]) -> dict[str, Any]:
    usage = total_usage(ctxs)
    body = {"strategy": chat.strategy, "params": chat.params, **_answer_fields(results[0], usage)}
    if len(results) > 1:
        body["choices"] = [{"index": i, **_answer_fields(result, ctx.usage)}
                           for i, (result, ctx) in enumerate(zip(results, ctxs, strict=True))]
    return body


async def complete(ctxs: list[Ctx], chat: ChatRequest, cid: str) -> tuple[dict[str, Any], list[Result]]:
    results = await run_all(ctxs, chat)
    choices = []
    for i, result in enumerate(results):
        text, reasoning = answer_text(result)
        choices.append({"index": i, "message": message_json(text, reasoning),
                        "logprobs": choice_logprobs(result, chat), "finish_reason": finish_reason(result)})
    body = completion(cid, chat.model, choices, total_usage(ctxs), ponder_field(chat, results, ctxs))
    return body, results


async def stream(ctxs: list[Ctx], chat: ChatRequest, cid: str, emit: Emit, interval_s: float) -> list[Result]:
    """Progress comments while the strategy works, then the answers as content chunks."""
    task = asyncio.ensure_future(run_all(ctxs, chat))
    started = time.perf_counter()
    try:
        while not task.done():
            await asyncio.wait((task,), timeout=interval_s)
            if not task.done() and chat.progress:
                usage = total_usage(ctxs)
                emit(comment("ponder progress " + dumps({
                    "elapsed_s": round(time.perf_counter() - started, 2), "calls": usage.calls,
                    "traces": usage.traces, "completion_tokens": usage.completion_tokens}).decode()))
    finally:
        task.cancel()
    results = task.result()
    chunks = Chunks(cid, chat.model)
    out = bytearray()
    for i, result in enumerate(results):
        text, reasoning = answer_text(result)
        out += chunks.role(i)
        if reasoning:
            out += chunks.choice(i, {"reasoning_content": reasoning})
        # Logprobs ride on the first content chunk: clients concatenate them over the stream.
        logprobs = choice_logprobs(result, chat)
        for piece in _PIECES.findall(text) or ([""] if logprobs else []):
            out += chunks.choice(i, {"content": piece}, logprobs)
            logprobs = None
    for i, result in enumerate(results):
        finish: dict[str, Any] = {**chunks.base, "choices": [
            {"index": i, "delta": {}, "logprobs": None, "finish_reason": finish_reason(result)}]}
        if i == len(results) - 1:
            finish["ponder"] = ponder_field(chat, results, ctxs)
        out += b"data: " + dumps(finish) + b"\n\n"
    if chat.include_usage:
        out += chunks.usage(total_usage(ctxs))
    emit(bytes(out))
    return results


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
