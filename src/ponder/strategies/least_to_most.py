"""Least-to-Most prompting: decompose a problem into subquestions, then solve them in order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge

from ponder.context import Ctx
from ponder.strategies.prompting import Chains, Greedy, finished_chains, sampling_overrides
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.tasks.prompts import split_instruction
from ponder.types import Message, Problem, Result, Trace

DECOMPOSE_INSTRUCTION = (
    "To solve a problem, first list the simpler subquestions that must be answered before its own question can be "
    "answered, in the order to answer them. Write one subquestion per line. Do not answer them, and do not repeat "
    "the problem's own question."
)
# The paper's running example (Zhou et al., 2023, Figure 1), as the one decomposition exemplar.
DECOMPOSE_EXEMPLAR = (
    "Problem: It takes Amy 4 minutes to climb to the top of a slide. It takes her 1 minute to slide down. The water "
    "slide closes in 15 minutes. How many times can she slide before it closes?\n"
    "Subquestions:\n"
    "How long does each trip take?"
)

_BULLET = re.compile(r"^\s*(?:(?:[-*•]|\(?\d+[.):]|(?:sub-?)?q(?:uestion)?\s*\d*\s*[:.)])\s*)+", re.IGNORECASE)
_QUESTION_SENTENCE = re.compile(r"[^.!?\n]*\?")


@dataclass
class Chain:
    """One least-to-most chain: its subquestions, and every trace it drew (the last one is the answer sample)."""

    subquestions: list[str] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)


def own_question(body: str) -> str:
    """The problem's own question: its last sentence ending with "?" (the whole text when it has none)."""
    found = _QUESTION_SENTENCE.findall(body)
    return found[-1].strip() if found else body.strip()


def parse_subquestions(text: str, final: str, limit: int) -> list[str]:
    """Subquestions from a decomposition: one per line, numbering and bullets dropped, each ending with "?";
    repeats and the problem's own question are left out, and at most ``limit`` are kept."""
    out: list[str] = []
    seen = {_key(final)}
    for line in text.splitlines():
        question = _BULLET.sub("", line).strip().strip("\"'“”").strip()
        if not question.endswith("?") or _key(question) in seen:
            continue
        seen.add(_key(question))
        out.append(question)
    return out[:limit]


def _key(question: str) -> str:
    return " ".join(re.findall(r"\w+", question.lower()))


@strategy("least-to-most")
async def least_to_most(
    problem: Problem,
    ctx: Ctx,
    n: Chains = 1,
    greedy: Greedy = True,
    max_subquestions: Annotated[int, Ge(0), "subquestions the decomposition may list (0: plain CoT)"] = 5,
) -> Result:
    """Least-to-Most prompting (Zhou et al., 2023): decompose into subquestions, then solve them in order.

    From "Least-to-Most Prompting Enables Complex Reasoning in Large Language Models". Stage 1 (decomposition):
    the model lists the subquestions to answer before the problem's own question (up to ``max_subquestions``).
    Stage 2 (subproblem solving): a conversation that starts with the problem and the first subquestion; each
    answer stays in the conversation as the next subquestion is asked, so every answer is fed to the next; the
    last question is the problem's own (its last "?" sentence), asked with the task's answer-format instruction.
    The decomposition and the subquestions' answers are helper samples; the final answer is the chain's answer
    sample. A decomposition with no subquestion leaves one question: plain chain of thought.

    Departures: the paper prompts both stages with task-specific few-shot exemplars; here the decomposition has
    one exemplar (the paper's own Amy-and-the-slide example) and a zero-shot instruction, and subproblems are
    solved zero-shot, since ponder's tasks carry no exemplars. The paper decodes greedily, one chain (``n=1``,
    ``greedy=true``); ``n>1`` samples ``n`` independent chains at the run's temperature and votes their answers.
    """
    chains: list[Chain] = [Chain() for _ in range(n)]
    done: list[Chain] = await finished_chains([_solve(problem, ctx, chain, greedy and n == 1, max_subquestions)
                                               for chain in chains])
    answers = [chain.traces[-1] for chain in done]
    result = await vote([t.answer for t in answers], ctx.equivalent)
    return result.result([t for chain in chains for t in chain.traces],
                         {"subquestions": [chain.subquestions for chain in done], "chains": len(done)})


async def _solve(problem: Problem, ctx: Ctx, chain: Chain, greedy: bool, limit: int) -> Chain:
    overrides = sampling_overrides(1, greedy)
    body, instruction = split_instruction(problem.messages[-1]["content"])
    final = own_question(body)
    context = problem.messages[:-1]
    if limit > 0:
        with ctx.aux():  # the decomposition is not an answer
            ask = f"{DECOMPOSE_INSTRUCTION}\n\n{DECOMPOSE_EXEMPLAR}\n\nProblem: {body}\nSubquestions:"
            (plan,) = await ctx.sample([*context, {"role": "user", "content": ask}], **overrides)
        chain.traces.append(plan)
        chain.subquestions = parse_subquestions(plan.text, final, limit)
    conversation: list[Message] = list(context)
    questions = [*chain.subquestions, final]
    for i, question in enumerate(questions):
        content = f"Q: {question}"
        if i == 0:
            content = f"{body}\n\n{content}"
        if i == len(questions) - 1 and instruction:
            content = f"{content}\n\n{instruction}"
        conversation.append({"role": "user", "content": content})
        if i < len(questions) - 1:
            with ctx.aux():  # a subquestion's answer feeds the next question; it is not the problem's answer
                (reply,) = await ctx.sample(conversation, **overrides)
            conversation.append({"role": "assistant", "content": reply.text})
        else:
            (reply,) = await ctx.sample(conversation, **overrides)
        chain.traces.append(reply)
    return chain
