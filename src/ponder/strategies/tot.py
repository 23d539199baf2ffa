"""Tree of Thoughts: breadth- or depth-first search over thoughts, proposed and valued by the model."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from annotated_types import Ge

from ponder.context import Ctx
from ponder.errors import BudgetExceeded
from ponder.search.domain import SearchDomain, domain_of
from ponder.search.steps import expand, solution_text
from ponder.search.tree import Node, SearchTree
from ponder.strategies.registry import strategy
from ponder.tasks.prompts import problem_statement
from ponder.types import Message, Problem, Result, Trace

VALUE_MAP = {"sure": 20.0, "likely": 1.0, "impossible": 0.001}
"""The paper's value of each verdict; a state's value is the sum over its value samples."""
_VERDICT = re.compile(r"\b(sure|likely|impossible)\b", re.IGNORECASE)
GENERIC_DEPTH = 5

GENERIC_VALUE = """Evaluate whether the partial solution below is on track to solve the problem correctly \
(sure/likely/impossible).

Problem:
{question}

Partial solution:
{solution}

Give a short reason, then on the last line one word: sure, likely or impossible."""

T = TypeVar("T")


def read_value(texts: Sequence[str]) -> float:
    """The paper's value: 20 per "sure", 1 per "likely", 0.001 per "impossible", summed over the samples.

    Each sample's verdict is the first of the three words it writes (the paper reads the last line; a small
    model tends to go on inventing further examples after its verdict); a sample without one adds nothing.
    """
    total = 0.0
    for text in texts:
        match = _VERDICT.search(text)
        if match:
            total += VALUE_MAP[match.group(1).lower()]
    return total


@dataclass
class _Search:
    problem: Problem
    ctx: Ctx
    domain: SearchDomain | None
    breadth: int
    n_evaluate: int
    n_propose: int
    k: int
    depth: int
    propose_tokens: int
    value_tokens: int
    step_tokens: int
    prefill: bool = False
    tree: SearchTree = field(default_factory=lambda: SearchTree("tot"))
    states: dict[int, Any] = field(default_factory=dict)
    value_cache: dict[str, float] = field(default_factory=dict)
    solution: Node | None = None
    rejected: int = 0
    duplicates: int = 0
    value_calls: int = 0

    # ---- model calls ----------------------------------------------------------------------------------------

    def _messages(self, instruction: str, prompt: str) -> list[Message]:
        """The paper's prompt as the user's message, or (``prefill``) as the start of the model's reply."""
        if self.prefill:
            return [{"role": "user", "content": instruction}, {"role": "assistant", "content": prompt}]
        return [{"role": "user", "content": prompt}]

    async def _sample(self, messages: list[Message], n: int, **overrides: object) -> list[Trace]:
        with self.ctx.aux():  # proposals and verdicts are not answers to the problem
            return await self.ctx.sample(messages, n=n, **overrides)

    async def expand(self, node: Node) -> list[Node]:
        """The node's valid children (thoughts); a verified solution ends the search."""
        children = await (self._propose(node) if self.domain else self._sample_steps(node))
        for child in children:
            if child.terminal and child.meta.get("solved"):
                self.solution = self.solution or child
        return children

    async def _propose(self, node: Node) -> list[Node]:
        """One propose call lists possible next steps; the exact verifier keeps the valid, new ones."""
        domain = self.domain
        assert domain is not None
        state = self.states[node.id]
        messages = self._messages("List the possible next steps.", domain.propose_prompt(state))
        traces = await self._sample(messages, self.n_propose, max_tokens=self.propose_tokens)
        node.tokens += sum(t.completion_tokens for t in traces)
        children, seen = [], set()
        for line in (line for t in traces for line in domain.proposals(t.text)):
            applied = domain.step(state, line)
            if applied is None:
                self.rejected += 1
                self.tree.add(node, line[:120], pruned=True, meta={"rejected": "invalid step"})
                continue
            new, text = applied
            if domain.key(new) in seen:
                self.duplicates += 1
                continue
            seen.add(domain.key(new))
            child = self.tree.add(node, text, meta={"left": domain.show(new)})
            self.states[child.id] = new
            if domain.finished(new):
                child.terminal = True
                solved = domain.solved(new)
                child.meta["solved"] = solved
                child.value = 1.0 if solved else 0.0
                child.pruned = not solved
                if solved:
                    child.answer = domain.answer(new)
            children.append(child)
        return children

    async def _sample_steps(self, node: Node) -> list[Node]:
        """``k`` sampled next steps (the paper's "sample" thought generator)."""
        steps = self.tree.steps(node)
        candidates = await expand(self.ctx, self.problem, steps, self.k, max_step_tokens=self.step_tokens,
                                  max_depth=self.depth)
        children = []
        for cand in candidates:
            node.tokens += cand.tokens
            if cand.step.trace is not None:
                cand.step.trace.answer, cand.step.trace.aux = None, True
            if cand.empty and not steps:
                continue
            child = self.tree.add(node, str(cand.step), terminal=cand.terminal, answer=cand.answer,
                                  meta={"end": cand.reason} if cand.reason else {})
            children.append(child)
        return children

    async def evaluate(self, node: Node) -> None:
        """The value of a state: ``n_evaluate`` verdicts summed (cached by prompt, as in the paper)."""
        if self.domain is not None:
            prompt = self.domain.value_prompt(self.states[node.id])
            messages = self._messages("Evaluate if the given numbers can reach the target.", prompt)
        else:
            solution = solution_text(self.tree.steps(node))
            prompt = GENERIC_VALUE.format(question=problem_statement(self.problem), solution=solution)
            messages = [{"role": "user", "content": prompt}]
        if prompt not in self.value_cache:
            traces = await self._sample(messages, self.n_evaluate, max_tokens=self.value_tokens)
            self.value_calls += 1
            node.tokens += sum(t.completion_tokens for t in traces)
            self.value_cache[prompt] = read_value([t.text for t in traces])
        node.value = node.score = self.value_cache[prompt]

    # ---- search ---------------------------------------------------------------------------------------------

    async def bfs(self) -> None:
        """Keep the ``breadth`` best-valued states of each level (the paper's greedy selection)."""
        frontier = [self.tree.root]
        for _ in range(self.depth):
            levels = await _all([self.expand(node) for node in frontier])
            children = [child for level in levels for child in level]
            if self.solution is not None:
                return
            await _all([self.evaluate(c) for c in children if c.value is None])
            open_ = [c for c in children if not c.terminal]
            if not open_:
                return
            ranked = sorted(open_, key=lambda c: c.value or 0.0, reverse=True)
            for dropped in ranked[self.breadth:]:
                dropped.pruned = True
            frontier = ranked[: self.breadth]

    async def dfs(self, node: Node, prune_below: float, budget: list[int]) -> None:
        """Best child first; states valued below ``prune_below`` are pruned; ``budget[0]`` expansions left."""
        if self.solution is not None or budget[0] <= 0 or node.depth >= self.depth:
            return
        budget[0] -= 1
        children = await self.expand(node)
        if self.solution is not None:
            return
        await _all([self.evaluate(c) for c in children if c.value is None])
        open_ = [c for c in children if not c.terminal]
        ranked = sorted(open_, key=lambda c: c.value or 0.0, reverse=True)
        for rank, child in enumerate(ranked):
            if rank >= self.breadth or (child.value or 0.0) < prune_below:
                child.pruned = True
                continue
            await self.dfs(child, prune_below, budget)
            if self.solution is not None or budget[0] <= 0:
                return

    # ---- outcome --------------------------------------------------------------------------------------------

    def best(self) -> Node | None:
        if self.solution is not None:
            return self.solution
        if self.domain is not None:
            return None  # without a verified solution there is no answer to give
        finished = [n for n in self.tree.nodes if n.terminal and n.answer is not None]
        return max(finished, key=lambda n: n.value or 0.0) if finished else None


async def _all(jobs: Sequence[Awaitable[T]]) -> list[T]:
    """Run jobs concurrently and let every one finish (so each token drawn is counted); a budget stop ends the
    search (BudgetExceeded, which tot answers from what it has)."""
    gathered = await Ctx.gather(*jobs)
    if gathered.stopped:
        raise BudgetExceeded("the token budget stopped the search")
    return gathered.done


@strategy("tot")
async def tot(
    problem: Problem,
    ctx: Ctx,
    search: Annotated[Literal["bfs", "dfs"], "breadth-first (best states per level) or depth-first"] = "bfs",
    breadth: Annotated[int, Ge(1), "states kept per level (bfs), children visited per state (dfs); paper: 5"] = 5,
    n_evaluate: Annotated[int, Ge(1), "value samples per state, summed (paper: 3)"] = 3,
    n_propose: Annotated[int, Ge(1), "puzzles: propose calls per state (paper: 1)"] = 1,
    k: Annotated[int, Ge(1), "other tasks: thoughts (steps) sampled per state"] = 5,
    depth: Annotated[int, Ge(0), "steps at most (0: the puzzle's numbers - 1, or 5 steps)"] = 0,
    prune_below: Annotated[float, Ge(0), "dfs: states valued below it are pruned (1: unless one says likely)"] = 1.0,
    max_expansions: Annotated[int, Ge(1), "dfs: states expanded at most"] = 100,
    propose_tokens: Annotated[int, Ge(1), "most tokens of a propose call"] = 256,
    value_tokens: Annotated[int, Ge(1), "most tokens of a value sample"] = 128,
    step_tokens: Annotated[int, Ge(1), "most tokens of a sampled step"] = 256,
    prefill: Annotated[bool, "puzzles: send the prompts as the start of the model's reply"] = False,
) -> Result:
    """Tree of Thoughts (Yao et al., 2023): search over thoughts that the model proposes and values.

    From "Tree of Thoughts: Deliberate Problem Solving with Large Language Models". Each state is a partial
    solution. A **thought generator** extends it and a **state evaluator** values each new state: ``n_evaluate``
    samples of a sure/likely/impossible prompt, worth 20/1/0.001 each, summed (the paper's value, cached per
    prompt). ``search=bfs`` keeps the ``breadth`` best states of each level (the paper's Game of 24 setting:
    b=5, 3 value samples, one propose call per state); ``search=dfs`` goes best child first, prunes states
    valued below ``prune_below`` (by default: no sample said "likely" or "sure") and visits at most ``breadth``
    children per state and ``max_expansions`` states in all.

    **Game of 24 / countdown** (problems with numbers and a target: the ``game24``, ``countdown`` and
    ``countdown3`` tasks, ``gym:puzzle24``, ``gym:countdown``): thoughts are arithmetic steps from the paper's
    one-shot *propose* prompt ("4 + 8 = 12 (left: 4 6 12)"), ``n_propose`` calls per state. The exact verifier
    rejects invalid steps (operands not left, wrong arithmetic) and recomputes the numbers left, so the model's
    bookkeeping cannot derail the search; it also checks states with one number left, so the search stops at
    the first verified solution and answers with its expression, composed exactly from the steps (the paper
    asks the model to write it in a last step). ``depth`` defaults to the steps a puzzle needs (numbers - 1).
    Without a verified solution the answer is None. The paper's prompts are sent as the user's message;
    ``prefill=true`` sends them as the start of the model's reply instead (after a one-line instruction), which
    makes small chat models continue the few-shot pattern; it needs a server that continues a final assistant
    message (llama-server does).

    **Other tasks**: thoughts are steps (text up to a blank line, ``ponder.search.steps``), ``k`` sampled per
    state; a step that states an answer (or ends the reply) finishes a path; states are valued by a generic
    sure/likely/impossible prompt; ``depth`` defaults to 5 steps. The answer is the best-valued finished path's.

    The run's token budget (``--budget``) stops the search; it then answers with what it has. The whole tree
    (rejected steps, values, tokens per node) is in ``info["tree"]``.
    """
    domain = domain_of(problem)
    if depth == 0:
        depth = domain.steps_needed() if domain else GENERIC_DEPTH
    run = _Search(problem, ctx, domain, breadth, n_evaluate, n_propose, k, depth, propose_tokens, value_tokens,
                  step_tokens, prefill)
    if domain is not None:
        run.states[0] = domain.start()
        run.tree.root.meta["left"] = domain.show(run.states[0])
    stopped = None
    try:
        if search == "bfs":
            await run.bfs()
        else:
            await run.dfs(run.tree.root, prune_below, [max_expansions])
    except BudgetExceeded as exc:
        stopped = str(exc)
    best = run.best()
    if best is not None:
        run.tree.select(best)
    info: dict[str, object] = {
        "search": search, "depth": depth, "mode": "puzzle" if domain else "steps",
        "states": len(run.tree.nodes) - 1 - run.rejected, "rejected_steps": run.rejected,
        "duplicates": run.duplicates, "value_calls": run.value_calls,
        "path": run.tree.steps(best) if best is not None else [],
        "tree": run.tree.to_json(),
    }
    if stopped:
        info["budget_stop"] = stopped
    if domain is not None:
        # The task's exact checker steered the search: reports must not rank this beside unverified strategies.
        info["exact_reward"] = True
    if best is None or best.answer is None:
        return Result(answer=None, confidence=0.0, info=info)
    answer = best.answer
    # A puzzle's answer is verified exactly; otherwise the value, as a share of "sure" from every sample.
    confidence = 1.0 if domain is not None else min((best.value or 0.0) / (VALUE_MAP["sure"] * n_evaluate), 1.0)
    return Result(answer=answer, confidence=confidence, votes={answer: 1.0}, info=info)
