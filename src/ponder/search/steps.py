"""How a partial solution grows by one step.

A *step* is the model's continuation up to a delimiter (a blank line by default, as the step-level search
papers and PRMs such as Qwen2.5-Math-PRM use). To draw the next step of a partial solution, the steps so far
are sent as an assistant prefill (joined and ended by the delimiter) and the model continues it with
``stop=[delimiter]``; ``expand`` draws ``k`` candidate steps in one ``ctx.sample(n=k)`` call, so every token is
counted by ``ctx``.

A step is *terminal* when the solution is finished:

- ``answer``: the step states a final answer (``\\boxed{}``, ``####``, "the answer is ...", "Answer: ...");
- ``end``: the model continued with nothing (it emitted end-of-sequence or the delimiter right away: an
  OpenAI-compatible server reports both as ``finish_reason="stop"``, so an empty continuation is how a finished
  solution shows itself);
- ``depth``: the path reached the search's maximum depth.

What ``end`` cannot see: a step cut by the delimiter and one ended by end-of-sequence look the same, so a model
that would have stopped after a step without stating an answer is asked to go on (the prefill ends with the
delimiter), and small models then tend to add steps. Searches work best with prompts that make the model state its
final answer ("The answer is ...", ``\\boxed{}``). A server that says which stop ended a sample (vLLM's
``stop_reason``, null at end-of-sequence) would make this exact once backends pass it on.

Servers that ignore ``stop`` (or echo the prefill) are handled here too: the prefill echo is cut and the text is
cut at the first delimiter; the tokens past the cut stay counted in the usage, as they were generated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ponder.errors import ConfigError
from ponder.types import Message, Problem, Trace

if TYPE_CHECKING:
    from ponder.context import Ctx

DEFAULT_DELIMITER = "\n\n"

# A stated final answer, not just a number in passing (the problem's extractor falls back to the last number).
_FINAL_ANSWER = re.compile(
    r"\\boxed|\\fbox|####|\banswer(?:\*\*|__)?[ \t]*(?::|\bis\b|=)",
    re.IGNORECASE,
)


class Step(str):
    """A step's text that also carries the trace that produced it (tokens and logprobs of this step only).

    It is a ``str``, so scorers, trees and prompts use it as text; scorers that read token confidence take
    ``step.trace``. A plain ``str`` step (e.g. from a stored tree) has no trace.
    """

    trace: Trace | None

    def __new__(cls, text: str, trace: Trace | None = None) -> Step:
        step = super().__new__(cls, text)
        step.trace = trace
        return step


@dataclass
class Candidate:
    """One sampled next step and what it means for the path it would extend."""

    step: Step
    terminal: bool
    reason: str  # "answer", "end", "depth", or "" for a step the search goes on from
    tokens: int  # completion tokens this sample cost (all of them, also any cut off past the delimiter)
    answer: str | None  # the solution's final answer, extracted once the path is terminal

    @property
    def empty(self) -> bool:
        return not self.step.strip()


def check_delimiter(delimiter: str) -> str:
    """The delimiter with ``\\n``/``\\t`` written out (as typed on a command line) made real; never empty."""
    delimiter = delimiter.replace("\\n", "\n").replace("\\t", "\t")
    if not delimiter:
        raise ConfigError("parameter 'delimiter' must not be empty; the default is a blank line '\\n\\n'")
    return delimiter


def states_answer(text: str) -> bool:
    """Whether a step states a final answer (boxed, ``####``, "the answer is", "Answer:")."""
    return bool(_FINAL_ANSWER.search(text))


def solution_text(steps: Sequence[str], delimiter: str = DEFAULT_DELIMITER) -> str:
    """The partial solution as the model would have written it."""
    return delimiter.join(s for s in steps if s)


def prefix_messages(problem: Problem, steps: Sequence[str], delimiter: str = DEFAULT_DELIMITER) -> list[Message]:
    """The prompt that asks for the next step: the problem, then the steps so far as an assistant prefill.

    The prefill ends with the delimiter, so the model starts a new step instead of ending on the delimiter.
    """
    text = solution_text(steps, delimiter)
    if not text:
        return list(problem.messages)
    return [*problem.messages, {"role": "assistant", "content": text + delimiter}]


def _continuation(trace: Trace, prefill: str) -> str:
    """What the model wrote after the prefill (some servers echo the prefill at the start of the content)."""
    text = trace.text
    if prefill and text.startswith(prefill):
        return text[len(prefill) :]
    return text


def _step_trace(trace: Trace, text: str, cut: int) -> Trace:
    """The part of ``trace`` that produced the first ``cut`` characters: tokens overlapping them, with logprobs."""
    count, length = 0, 0
    for token in trace.tokens:
        if length >= cut:
            break
        length += len(token)
        count += 1
    return Trace(
        text=text,
        tokens=trace.tokens[:count],
        logprobs=trace.logprobs[:count],
        top_logprobs=trace.top_logprobs[:count],
        finish_reason=trace.finish_reason,
        prompt_tokens=trace.prompt_tokens,
        completion_tokens=trace.completion_tokens,
        latency_s=trace.latency_s,
        index=trace.index,
    )


def make_candidate(
    problem: Problem, steps: Sequence[str], trace: Trace, prefill: str, delimiter: str, max_depth: int
) -> Candidate:
    """Read one sampled continuation as a candidate next step of ``steps``."""
    raw = _continuation(trace, prefill)
    cut = raw.find(delimiter)
    end = len(raw) if cut == -1 else cut
    text = raw[:end].strip()
    step = Step(text, _step_trace(trace, text, end) if text else None)
    if not text:
        answer = problem.extract(solution_text(steps, delimiter)) if steps else None
        return Candidate(step, True, "end", trace.completion_tokens, answer)
    path = [*steps, step]
    if states_answer(step):
        reason = "answer"
    elif len(path) >= max_depth:
        reason = "depth"
    else:
        return Candidate(step, False, "", trace.completion_tokens, None)
    full = solution_text(path, delimiter)
    return Candidate(step, True, reason, trace.completion_tokens, problem.extract(full))


async def expand(
    ctx: Ctx,
    problem: Problem,
    steps: Sequence[str],
    k: int,
    *,
    delimiter: str = DEFAULT_DELIMITER,
    max_step_tokens: int = 256,
    max_depth: int = 40,
    temperature: float | None = None,
) -> list[Candidate]:
    """``k`` candidate next steps of the partial solution ``steps``, drawn in one ``ctx.sample(n=k)`` call."""
    if k < 1:
        return []
    messages = prefix_messages(problem, steps, delimiter)
    prefill = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""
    overrides: dict[str, object] = {"stop": [delimiter], "max_tokens": max_step_tokens}
    if temperature is not None:
        overrides["temperature"] = temperature
    with ctx.aux():  # a step is not a sample of the problem: maj@k and pass@k leave it out
        traces = await ctx.sample(messages, n=k, **overrides)
    candidates = [make_candidate(problem, steps, trace, prefill, delimiter, max_depth) for trace in traces]
    for trace, candidate in zip(traces, candidates, strict=True):
        # A stored step is not a solution: only a finishing step carries the solution's answer (and is checked).
        trace.answer = candidate.answer
    return candidates
