"""Socratic Questioning: answer with a confidence; when unsure, raise sub-questions, answer them, and retry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from annotated_types import Ge

from ponder.context import Ctx
from ponder.strategies.least_to_most import parse_subquestions
from ponder.strategies.prompting import Chains, Greedy, finished_chains, sampling_overrides
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.tasks.prompts import split_instruction
from ponder.types import Message, Problem, Result, Trace

CONFIDENCE_REQUEST = "Then state your confidence as 'Confidence: low', 'Confidence: middle' or 'Confidence: high'."
QA_INSTRUCTION = (
    "Answer the question, using the context and the hints if there are any. Reply in the form "
    "[Answer: your short answer; Confidence: low, middle, or high]. No explanation."
)
RAISE_INSTRUCTION = (
    "The question below is too complex, or lacks information, to answer directly. Raise at most {k} simpler "
    "sub-questions whose answers would help answer it, one per line. Each sub-question must be self-contained: do "
    "not use pronouns, copy context from the question if needed, and do not ask yes/no questions."
)
_CONFIDENCE = re.compile(r"confidence\W{0,3}\s*(high|middle|medium|low)", re.IGNORECASE)
_SHORT_ANSWER = re.compile(r"answer\s*:\s*(.*?)\s*(?:;|\]|$)", re.IGNORECASE | re.MULTILINE)


def confidence_of(text: str) -> str:
    """The confidence a reply states ("medium" reads as middle); none stated reads as low, as in the reference."""
    found = _CONFIDENCE.findall(text)
    if not found:
        return "low"
    level = found[-1].lower()
    return "middle" if level == "medium" else level


def short_answer(text: str) -> str:
    """The answer of a ``[Answer: ...; Confidence: ...]`` reply, else its first non-empty line."""
    found = _SHORT_ANSWER.search(text)
    if found and found.group(1).strip():
        return found.group(1).strip()
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def hints_text(hints: list[str]) -> str:
    """Hints as the reference writes them: ``(1) ...; (2) ....``"""
    return "; ".join(f"({i}) {hint.rstrip('.')}" for i, hint in enumerate(hints, 1)) + "."


@dataclass
class Node:
    """A question in the recursion: its depth (the problem is depth 1), its turn, and the hints gathered so far."""

    question: str
    depth: int
    turn: int
    hints: list[str] = field(default_factory=list)


@dataclass
class Chain:
    """One run of the recursion on the problem: every trace drawn, the final answer sample, and a log."""

    traces: list[Trace] = field(default_factory=list)
    final: Trace | None = None
    log: list[dict[str, Any]] = field(default_factory=list)


@strategy("socratic")
async def socratic(
    problem: Problem,
    ctx: Ctx,
    n: Chains = 1,
    greedy: Greedy = True,
    questions: Annotated[int, Ge(1), "sub-questions raised per round (reference: 5)"] = 3,
    depth: Annotated[int, Ge(2), "deepest question level; 2: the problem asks sub-questions once (reference: 3)"] = 2,
    turns: Annotated[int, Ge(1), "rounds of sub-questions per question (reference: 3)"] = 2,
) -> Result:
    """Socratic Questioning (Qi et al., 2023), a faithful simplification: recursive self-questioning.

    From "The Art of SOCRATIC QUESTIONING: Recursive Thinking with Large Language Models", following the reference
    code (VT-NLP/SOCRATIC-QUESTIONING, ``socratic_tree.py``). Every question is a node with a depth (the problem is
    depth 1) and a turn. A node is answered with a stated confidence (low, middle or high); it is final when it is
    confident ("high") or a leaf (``turn >= turns`` or ``depth >= depth``), and the problem itself only once it
    has hints. Otherwise the model raises up to ``questions`` sub-questions, each is solved recursively one level
    deeper, each answer becomes a hint, the node's turn advances, and it is answered again with its hints. The
    reference's text settings are ``questions=5, turns=3, depth=3``; the defaults here are smaller (3, 2, 2:
    one round of sub-questions, 5 calls) to keep a problem affordable.

    The problem is answered with its own prompt (the task's answer-format instruction kept, reasoning allowed)
    plus the hints and a request to state the confidence; its last such answer is the chain's answer sample and
    earlier ones are withdrawn (helper samples). Sub-questions are answered in the reference's short form
    ``[Answer: ...; Confidence: ...]``, as helper samples.

    Departures: the reference's first answer to the problem is always discarded (the problem must gather hints
    first), so ponder does not ask it; a hint is the sub-question and its answer side by side, not an extra call
    rewriting them into a statement; sub-questions are answered with the problem as context (the reference passes
    a data set's separate context only; ponder's problems hold their facts in the question), and the prompts are
    zero-shot where the reference has few-shot exemplars per data set. ``n=1`` with ``greedy=true`` decodes
    greedily; ``n>1`` runs ``n`` independent chains at the run's temperature and votes their answers.
    """
    asker = _Asker(problem, ctx, sampling_overrides(n, greedy), questions, depth, turns)
    chains = [Chain() for _ in range(n)]
    done: list[Chain] = await finished_chains([asker.solve(chain) for chain in chains])
    answers = [chain.final for chain in done if chain.final is not None]
    result = await vote([t.answer for t in answers], ctx.equivalent)
    return result.result([t for chain in chains for t in chain.traces],
                         {"chains": [chain.log for chain in done]})


@dataclass
class _Asker:
    problem: Problem
    ctx: Ctx
    overrides: dict[str, Any]
    questions: int
    max_depth: int
    max_turns: int

    def __post_init__(self) -> None:
        self.body, self.instruction = split_instruction(self.problem.messages[-1]["content"])
        self.context: list[Message] = self.problem.messages[:-1]

    def leaf(self, node: Node) -> bool:
        return node.turn >= self.max_turns or node.depth >= self.max_depth

    async def solve(self, chain: Chain) -> Chain:
        """The problem's node: gather hints, answer, and go on while unsure and not a leaf."""
        root = Node(self.body, depth=1, turn=1)
        while True:
            await self.deepen(root, chain)
            root.turn += 1  # as in the reference: the problem is answered again one turn later, with its hints
            answer = await self.answer_problem(root, chain)
            level = confidence_of(answer.text)
            chain.log.append({"turn": root.turn, "hints": list(root.hints), "confidence": level,
                              "answer": answer.answer})
            if chain.final is not None:
                chain.final.answer, chain.final.aux = None, True  # withdrawn: a later answer replaces it
            chain.final = answer
            if level == "high" or self.leaf(root):
                return chain

    async def deepen(self, node: Node, chain: Chain) -> None:
        """Raise sub-questions about ``node``, solve each one level deeper, and add their answers as hints."""
        for question in await self.raise_questions(node, chain):
            sub = Node(question, depth=node.depth + 1, turn=node.turn)
            node.hints.append(f"{question} {await self.solve_sub(sub, chain)}")

    async def solve_sub(self, node: Node, chain: Chain) -> str:
        while True:
            reply = await self.helper(chain, self._qa_prompt(node))
            answer, level = short_answer(reply.text), confidence_of(reply.text)
            chain.log.append({"question": node.question, "depth": node.depth, "turn": node.turn,
                              "answer": answer, "confidence": level})
            if level == "high" or self.leaf(node):
                return answer
            await self.deepen(node, chain)
            node.turn += 1

    async def answer_problem(self, root: Node, chain: Chain) -> Trace:
        hints = f"\n\nHints: {hints_text(root.hints)}" if root.hints else ""
        instruction = f"\n\n{self.instruction}" if self.instruction else ""
        content = f"{self.body}{hints}{instruction} {CONFIDENCE_REQUEST}"
        (answer,) = await self.ctx.sample([*self.context, {"role": "user", "content": content}], **self.overrides)
        chain.traces.append(answer)
        return answer

    async def raise_questions(self, node: Node, chain: Chain) -> list[str]:
        hints = f"\nHints: {hints_text(node.hints)}" if node.hints else ""
        prompt = f"{RAISE_INSTRUCTION.format(k=self.questions)}\n\nQuestion: {node.question}{hints}\nSub-questions:"
        reply = await self.helper(chain, prompt)
        return parse_subquestions(reply.text, node.question, self.questions)

    def _qa_prompt(self, node: Node) -> str:
        hints = f"\nHints: {hints_text(node.hints)}" if node.hints else ""
        return f"{QA_INSTRUCTION}\n\nContext: {self.body}\nQuestion: {node.question}{hints}\nAnswer:"

    async def helper(self, chain: Chain, content: str) -> Trace:
        with self.ctx.aux():  # sub-questions and their answers are not answers to the problem
            (reply,) = await self.ctx.sample([*self.context, {"role": "user", "content": content}], **self.overrides)
        chain.traces.append(reply)
        return reply
