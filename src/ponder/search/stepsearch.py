"""The machinery shared by the step-level searches (beam, DVTS, best-first): grow, score, budget, answer.

``StepSearch`` owns one problem's search tree. ``grow(node, k)`` draws ``k`` candidate next steps of the node's
partial solution (one ``ctx.sample(n=k)`` call), adds them as children, scores each new step with the step
scorer and sets each child's ``value`` to the aggregated score of its path. The searches differ only in which
nodes they grow and which they keep; ``answer`` turns the final candidates into a ``Result`` with the tree.

Token budget: ``budget`` caps the completion tokens of the whole search (generation and judge verdicts, all
counted by ``ctx``), and so does the problem's ``ctx.budget_left``. Before each call the search reserves the
tokens it may spend (``k`` samples of at most ``max_step_tokens`` each, shrunk to fit, plus each scorer verdict),
so concurrent growth (DVTS's subtrees, a beam's rows) never overshoots; when nothing is left the search stops
and answers from what it has.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from annotated_types import Ge

from ponder.errors import BudgetExceeded, ConfigError
from ponder.search.scoring import AGGREGATIONS, Aggregation, StepScorer, aggregate
from ponder.search.steps import DEFAULT_DELIMITER, Candidate, check_delimiter, expand, solution_text
from ponder.search.tree import Node, SearchTree
from ponder.strategies.voting import vote
from ponder.types import Problem, Result, Trace

if TYPE_CHECKING:
    from ponder.context import Ctx

Select = Literal["best", "vote", "weighted"]
MIN_STEP_TOKENS = 4  # a call that could write fewer tokens than this is not worth making


# The parameters every step search shares, with their help and bounds (checked by the strategy registry).
MaxDepth = Annotated[int, Ge(1), "steps after which a path counts as finished"]
MaxStepTokens = Annotated[int, Ge(MIN_STEP_TOKENS), "most tokens one step may take"]
SearchBudget = Annotated[int, Ge(0), "completion tokens the whole search may spend (0: no cap of its own)"]
ScorerSpec = Annotated[str, "step scorer: judge (P(Yes)), confidence[:measure] or prm:<url>"]
AggregationParam = Annotated[Aggregation, "how a path's step scores make its value"]
SelectParam = Annotated[Select, "how the answer is chosen among the final paths"]
Delimiter = Annotated[str, "text that ends a step (\\n typed on a command line is a newline)"]


def check_search_params(*, aggregation: str, delimiter: str) -> str:
    """ConfigErrors for what the parameter bounds cannot say (an aggregation given to a direct call, an empty
    delimiter); returns the delimiter with escapes typed on a command line (``\\n``) made real."""
    if aggregation not in AGGREGATIONS:
        raise ConfigError(f"parameter 'aggregation' must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    return check_delimiter(delimiter)


class StepSearch:
    """One problem's step-level search: its tree, scorer, budget and the bookkeeping they need."""

    def __init__(
        self,
        ctx: Ctx,
        problem: Problem,
        scorer: StepScorer,
        *,
        aggregation: str = "last",
        delimiter: str = DEFAULT_DELIMITER,
        max_depth: int = 40,
        max_step_tokens: int = 256,
        budget: int = 0,
    ) -> None:
        if getattr(scorer, "needs_logprobs", False):
            ctx.require_logprobs(f"scorer {scorer.name}")
        self.ctx = ctx
        self.problem = problem
        self.scorer = scorer
        self.aggregation = aggregation
        self.delimiter = delimiter
        self.max_depth = max_depth
        self.max_step_tokens = max_step_tokens
        self.budget = budget or None
        self.tree = SearchTree(label=problem.question)
        self.exhausted = False  # the budget ran out: the search answers from what it has
        self.expansions = 0
        self._start = ctx.usage.completion_tokens
        self._reserved = 0
        self._scores: dict[int, list[float]] = {0: []}
        # Scorers that ask the model spend tokens too: reserve them with each expansion.
        self._score_tokens = int(getattr(scorer, "tokens_per_score", 0))

    # ---- budget ---------------------------------------------------------------------------------

    @property
    def spent(self) -> int:
        """Completion tokens this search has spent (generation and scoring)."""
        return self.ctx.usage.completion_tokens - self._start

    def tokens_left(self) -> int | None:
        """Tokens that may still be spent, after what concurrent expansions have reserved (None: no cap)."""
        caps = [c for c in (self.ctx.budget_left, None if self.budget is None else self.budget - self.spent)
                if c is not None]
        return None if not caps else max(min(caps) - self._reserved, 0)

    def _plan(self, k: int) -> tuple[int, int]:
        """How many candidates to draw and the most tokens each may take, within what is left."""
        left = self.tokens_left()
        if left is None:
            return k, self.max_step_tokens
        per = self.max_step_tokens + self._score_tokens
        k = min(k, left // (MIN_STEP_TOKENS + self._score_tokens))
        if k < 1:
            return 0, 0
        cap = min(per, left // k) - self._score_tokens
        return k, max(cap, 0)

    # ---- growing --------------------------------------------------------------------------------

    def steps(self, node: Node) -> list[str]:
        return self.tree.steps(node)

    def path_scores(self, node: Node) -> list[float]:
        return self._scores[node.id]

    async def grow(self, node: Node, k: int) -> list[Node]:
        """Add up to ``k`` scored candidate next steps under ``node``; [] once the budget is spent."""
        k, cap = self._plan(k)
        if k < 1 or cap < MIN_STEP_TOKENS:
            self.exhausted = True
            return []
        reserve = k * (cap + self._score_tokens)
        self._reserved += reserve
        try:
            steps = self.steps(node)
            try:
                candidates = await expand(self.ctx, self.problem, steps, k, delimiter=self.delimiter,
                                          max_step_tokens=cap, max_depth=self.max_depth)
            except BudgetExceeded:
                self.exhausted = True
                return []
            self.expansions += 1
            children, twins = self._add(node, candidates)
            await self._score(children)
            for twin, original in twins:
                twin.score, twin.value = original.score, original.value
                self._scores[twin.id] = self._scores[original.id]
            return children
        finally:
            self._reserved -= reserve

    def _add(self, parent: Node, candidates: Sequence[Candidate]) -> tuple[list[Node], list[tuple[Node, Node]]]:
        """The new children to score, and the repeated steps with the sibling they repeat."""
        seen: dict[str, Node] = {}
        children: list[Node] = []
        twins: list[tuple[Node, Node]] = []
        for candidate in candidates:
            child = self.tree.add(parent, candidate.step, tokens=candidate.tokens, terminal=candidate.terminal,
                                  answer=candidate.answer)
            if candidate.reason:
                child.meta["reason"] = candidate.reason
            key = " ".join(candidate.step.split())
            twin = seen.get(key)
            if twin is not None:  # the same step again: a beam of copies would only waste the search
                child.pruned = True
                child.meta["duplicate_of"] = twin.id
                twins.append((child, twin))
                continue
            seen[key] = child
            children.append(child)
        return children, twins

    async def _score(self, children: list[Node]) -> None:
        async def score(child: Node) -> None:
            parent = self._scores[child.parent or 0]
            if not child.step.strip():  # the solution ended: the path keeps its score
                path_scores = list(parent)
            else:
                try:
                    child.score = await self.scorer.score(self.ctx, self.problem, self.tree.steps(child))
                except BudgetExceeded:
                    self.exhausted = True
                    child.score = 0.0
                    child.meta["unscored"] = "budget"
                path_scores = [*parent, child.score]
            self._scores[child.id] = path_scores
            child.value = aggregate(path_scores, self.aggregation) if path_scores else 0.0

        await asyncio.gather(*(score(c) for c in children))

    def prune(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            node.pruned = True

    # ---- answering ------------------------------------------------------------------------------

    def solution(self, node: Node) -> str:
        return solution_text(self.steps(node), self.delimiter)

    def final_answer(self, node: Node) -> str | None:
        """A final candidate's answer: the terminal step's, else whatever the partial solution states."""
        if node.terminal or node.answer is not None:
            return node.answer
        text = self.solution(node)
        return self.problem.extract(text) if text else None

    async def answer(self, finals: Sequence[Node], select: Select, info: dict[str, Any] | None = None,
                     chosen: Node | None = None) -> Result:
        """The result from the final candidates: the best path, a vote, or a vote weighted by path value.

        ``chosen`` overrides the pick (best-first returns the first terminal it pops). Confidence is the chosen
        path's value for ``best`` or a given ``chosen``, else the winning answer's share of the (weighted) vote.
        """
        finals = list(finals)
        picked = chosen is not None
        answers = [self.final_answer(n) for n in finals]
        for node, answer in zip(finals, answers, strict=True):
            node.answer = answer
        values = [n.value or 0.0 for n in finals]
        weighted = select != "vote"
        tally = await vote(answers, self.ctx.equivalent, values if weighted else None)
        if chosen is None and finals:
            if select == "best":
                chosen = max(finals, key=lambda n: (n.value or 0.0, -n.id))
            else:
                members = next((c.members for c in tally.clusters if c.answer == tally.winner), [])
                if members:
                    chosen = max((finals[i] for i in members), key=lambda n: (n.value or 0.0, -n.id))
                else:
                    chosen = max(finals, key=lambda n: (n.value or 0.0, -n.id))
        if chosen is not None:
            self.tree.select(chosen)
        answer = self.final_answer(chosen) if chosen is not None else None
        by_path = select == "best" or picked
        confidence = ((chosen.value or 0.0) if chosen is not None else 0.0) if by_path else tally.share
        out = {
            "tree": self.tree.to_json(),
            "scorer": self.scorer.name,
            "scorer_calls": int(getattr(self.scorer, "calls", 0)),
            "aggregation": self.aggregation,
            "select": select,
            "expand_calls": self.expansions,
            "nodes": len(self.tree.nodes) - 1,
            "finals": len(finals),
            "search_tokens": self.spent,
            "stopped": "budget" if self.exhausted else "done",
        }
        if getattr(self.scorer, "fallbacks", 0):
            out["judge_text_fallbacks"] = int(getattr(self.scorer, "fallbacks", 0))
        out.update(info or {})
        traces = [self._trace(n, i) for i, n in enumerate(finals)]
        return Result(answer=answer, confidence=None if confidence is None else float(confidence),
                      votes=tally.tally, traces=traces, info=out)

    def _trace(self, node: Node, index: int) -> Trace:
        """A final candidate as one trace: the whole solution, what its steps cost, and its answer."""
        path = self.tree.path(node)
        return Trace(text=self.solution(node), finish_reason="stop" if node.terminal else "length",
                     completion_tokens=sum(n.tokens for n in path), index=index, answer=node.answer)


def best(nodes: Sequence[Node], count: int) -> list[Node]:
    """The ``count`` nodes of highest value (ties: the earlier node)."""
    return sorted(nodes, key=lambda n: (-(n.value if n.value is not None else -math.inf), n.id))[:count]
