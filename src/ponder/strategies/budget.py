"""Reasoning budgets: cap the thinking and force an answer (Elastic Reasoning), or skip thinking (NoThinking)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from annotated_types import Ge

from ponder import confidence as conf
from ponder.backends.thinking import split_reasoning
from ponder.context import Ctx
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Message, Problem, Result, Trace

OPEN, CLOSE = "<think>", "</think>"
NOTHINKING_PREFILL = "<think>\nOkay, I think I have finished thinking.\n</think>\n\n"
"""NoThinking's dummy thought (Ma et al., 2025), prefilled as the start of the assistant's reply."""
ANSWER_CUE = "\n\nTherefore, the final answer is"


@strategy("budget")
async def budget(
    problem: Problem,
    ctx: Ctx,
    mode: Annotated[Literal["elastic", "nothinking"], "elastic: cap the thinking; nothinking: skip it"] = "elastic",
    n: Annotated[int, Ge(1), "samples drawn and aggregated"] = 1,
    think_tokens: Annotated[int, Ge(1), "elastic: most tokens of reasoning before the answer is forced"] = 1024,
    answer_tokens: Annotated[int, Ge(1), "most tokens of the forced (or nothinking) answer"] = 512,
    thinking: Annotated[Literal["auto", "yes", "no"], "is the model a thinking model (auto: detect it)"] = "auto",
    answer_cue: Annotated[str, "elastic, non-thinking models: text appended to force the answer"] = ANSWER_CUE,
    select: Annotated[Literal["vote", "confidence"], "majority vote, or best-of-n by confidence measure"] = "vote",
    measure: Annotated[conf.MeasureName, "confidence measure of select=confidence"] = "self_certainty",
    continue_final_message: Annotated[bool, "ask the server to continue the prefill (vLLM needs it)"] = False,
) -> Result:
    """Reasoning budgets by assistant prefill: Elastic Reasoning (Xu et al., 2025) or NoThinking (Ma et al., 2025).

    Papers: "Scalable Chain of Thoughts via Elastic Reasoning" and "Reasoning Models Can Be Effective Without
    Thinking".

    ``mode=elastic``: each of ``n`` samples may reason for at most ``think_tokens``. A sample cut off there is
    continued by a second call whose last message is an assistant prefill holding the truncated reasoning:
    for a thinking model it is force-closed with ``</think>`` (if the thinking had already closed, the cut
    solution just goes on); for a model without thinking ``answer_cue`` is appended. The continuation gets
    ``answer_tokens``, so the solution is always complete. ``thinking=auto`` detects a thinking model by
    reasoning text or a ``<think>`` tag in the sample; ``yes``/``no`` force it (``yes`` for templates that
    open ``<think>`` in the prompt without the server separating the reasoning).

    ``mode=nothinking``: prefill the dummy, already-closed thought ``<think>\\nOkay, I think I have finished
    thinking.\\n</think>\\n\\n`` and draw ``n`` answers under ``answer_tokens`` (the paper scales ``n`` in
    parallel).

    The ``n`` answers are aggregated by majority vote (``select=vote``) or by best-of-n on a confidence
    ``measure`` (``select=confidence``, default self-certainty as in NoThinking; needs logprobs).

    Prefill needs a server that continues a final assistant message: llama-server does by default; vLLM needs
    ``continue_final_message=true``, which sends ``continue_final_message: true`` and
    ``add_generation_prompt: false`` with the prefilled calls only. Hosted chat APIs that do not support
    prefill answer the prefilled conversation as a new turn instead.
    """
    if select == "confidence":
        conf.check_measure(measure)
        ctx.require_logprobs("budget")
    overrides: dict[str, Any] = {}
    if continue_final_message:
        overrides["extra"] = {**ctx.sampling.extra, "continue_final_message": True, "add_generation_prompt": False}
    if mode == "nothinking":
        messages = [*problem.messages, {"role": "assistant", "content": NOTHINKING_PREFILL}]
        traces = await ctx.sample(messages, n=n, max_tokens=answer_tokens, **overrides)
        for trace in traces:
            trace.answer = _extract(problem, "", trace, NOTHINKING_PREFILL)
        finals, all_traces = traces, traces
        info: dict[str, object] = {"mode": mode}
    else:
        first = await ctx.sample(n=n, max_tokens=think_tokens)
        continued = await asyncio.gather(
            *(
                _force_answer(problem, ctx, t, thinking, answer_cue, think_tokens, answer_tokens, overrides)
                for t in first
            )
        )
        finals = [c if c is not None else t for t, c in zip(first, continued, strict=True)]
        all_traces = [x for t, c in zip(first, continued, strict=True) for x in (t, c) if x is not None]
        info = {"mode": mode, "forced": sum(c is not None for c in continued)}
    return await _aggregate(ctx, finals, all_traces, select, measure, info)


def _truncated(trace: Trace, limit: int) -> bool:
    if trace.finish_reason is not None:
        return trace.finish_reason == "length"
    return trace.completion_tokens >= limit


def _raw(trace: Trace) -> str:
    """The generated text as the model wrote it: its tokens, or the reasoning and answer put back together."""
    if trace.tokens:
        return "".join(trace.tokens)
    if trace.reasoning:
        closed = f"\n{CLOSE}\n\n{trace.text}" if trace.text else ""
        return f"{OPEN}\n{trace.reasoning}{closed}"
    return trace.text


def elastic_prefill(trace: Trace, thinking: str, answer_cue: str) -> tuple[str, str]:
    """The assistant prefill that forces an answer after ``trace`` was cut, and the text before the
    continuation that the answer is extracted from (the solution so far, or the answer cue)."""
    raw = _raw(trace)
    is_thinking = thinking == "yes" or (thinking == "auto" and (bool(trace.reasoning) or OPEN in raw))
    if not is_thinking:
        return raw + answer_cue, answer_cue
    if CLOSE in raw:  # thinking ended in budget; the solution itself was cut: let it go on
        return raw, raw[raw.rfind(CLOSE) + len(CLOSE) :]
    body = raw if raw.lstrip().startswith(OPEN) else f"{OPEN}\n{raw}"
    return f"{body.rstrip()}\n{CLOSE}\n\n", ""


def generated(trace: Trace, prefill: str) -> str:
    """What the model wrote after the prefill.

    Some servers (llama-server) echo the prefill at the start of the content: it is cut off. Otherwise the
    tokens are the exact continuation; without them the text is, or the reasoning when a server's reasoning
    parser filed the continuation (which has no ``</think>`` of its own) as reasoning.
    """
    text = trace.text if trace.text.strip() else trace.reasoning
    for echo in (prefill, split_reasoning(prefill)[0]):
        if echo and text.startswith(echo):
            return text[len(echo) :]
    return "".join(trace.tokens) if trace.tokens else text


def _extract(problem: Problem, before: str, trace: Trace, prefill: str) -> str | None:
    text = before + generated(trace, prefill)
    return problem.extract(text) if text.strip() else None


async def _force_answer(
    problem: Problem, ctx: Ctx, trace: Trace, thinking: str, answer_cue: str, think_tokens: int,
    answer_tokens: int, overrides: dict[str, Any],
) -> Trace | None:
    if not _truncated(trace, think_tokens):
        return None
    prefill, before = elastic_prefill(trace, thinking, answer_cue)
    messages: list[Message] = [*problem.messages, {"role": "assistant", "content": prefill}]
    (answer,) = await ctx.sample(messages, n=1, max_tokens=answer_tokens, **overrides)
    answer.answer = _extract(problem, before, answer, prefill)
    trace.answer, trace.aux = None, True  # the cut trace's answer is the continuation's
    return answer


async def _aggregate(
    ctx: Ctx, finals: list[Trace], all_traces: list[Trace], select: str, measure: str, info: dict[str, object]
) -> Result:
    result = await vote([t.answer for t in finals], ctx.equivalent)
    if select == "vote":
        return result.result(all_traces, info)
    best = conf.best_index(finals, measure)
    if best is None:
        return Result(answer=None, confidence=0.0, votes=result.tally, traces=all_traces, info=info)
    chosen = next(c for c in result.clusters if best in c.members)
    info["best"] = best
    return Result(answer=finals[best].answer, confidence=len(chosen.members) / len(finals), votes=result.tally,
                  traces=all_traces, info=info)
