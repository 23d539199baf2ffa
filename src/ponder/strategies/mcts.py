"""Monte Carlo tree search over reasoning steps (RAP) or over self-refined answers (MC-NEST / MCTSr)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge

from ponder.context import Ctx
from ponder.errors import BudgetExceeded, ConfigError
from ponder.search.domain import SearchDomain, domain_of
from ponder.search.scorers import make_scorer
from ponder.search.scoring import StepScorer
from ponder.search.steps import check_delimiter, expand, prefix_messages, solution_text
from ponder.search.stepsearch import Delimiter, ScorerSpec
from ponder.search.tree import Node, SearchTree
from ponder.strategies.registry import strategy
from ponder.types import Message, Problem, Result

Expansion = Annotated[Literal["sample", "refine"], "sample: next steps (RAP); refine: self-refinements (MC-NEST)"]
Evaluation = Annotated[Literal["rollout", "scorer"], "reward a new node by a rollout, or by the step scorer"]

CRITIQUE = (
    "Review the solution above strictly, step by step. Point out every mistake or gap in it; do not write a new "
    "solution yet."
)
REWRITE = (
    "Now write an improved, complete solution that fixes these problems, and end it with the final answer in the "
    "format the question asks for."
)


@dataclass
class _Outcome:
    """A finished solution the search saw (a terminal node or a rollout) and its reward."""

    answer: str | None
    reward: float
    node: int
    verified: bool = False


@dataclass
class _Search:
    problem: Problem
    ctx: Ctx
    scorer: StepScorer
    domain: SearchDomain | None  # an exactly checkable problem (e.g. Game of 24): its verifier is the reward
    k: int
    exploration: float
    expansion: str
    evaluation: str
    max_depth: int
    delimiter: str
    step_tokens: int
    rollout_tokens: int
    tree: SearchTree = field(default_factory=lambda: SearchTree("mcts"))
    outcomes: list[_Outcome] = field(default_factory=list)
    solved: _Outcome | None = None

    # ---- the four phases ------------------------------------------------------------------------------------

    def select(self) -> Node:
        """Descend by UCT to a node not yet evaluated, or to a leaf; unvisited children go first."""
        node = self.tree.root
        while node.children:
            children = [self.tree.nodes[i] for i in node.children]
            fresh = [c for c in children if c.visits == 0]
            if fresh:
                return fresh[0]
            log_n = math.log(max(node.visits, 1))
            node = max(children, key=lambda c: (c.value or 0.0) + self.exploration * math.sqrt(log_n / c.visits))
        return node

    def expandable(self, node: Node) -> bool:
        return not node.terminal and node.depth < self.max_depth

    async def expand(self, node: Node) -> list[Node]:
        if self.expansion == "refine":
            return await (self._draft(node) if node is self.tree.root else self._refine(node))
        with self.ctx.aux():
            candidates = await expand(self.ctx, self.problem, self.tree.steps(node), self.k,
                                      delimiter=self.delimiter, max_step_tokens=self.step_tokens,
                                      max_depth=self.max_depth)
        children = []
        for cand in candidates:
            if cand.empty and node is self.tree.root:
                continue  # an empty first step is no solution at all
            children.append(self.tree.add(node, str(cand.step), terminal=cand.terminal, answer=cand.answer,
                                          tokens=cand.tokens, meta={"end": cand.reason} if cand.reason else {}))
        return children

    async def _draft(self, root: Node) -> list[Node]:
        """MC-NEST's start: ``k`` complete answers sampled from the problem's prompt."""
        traces = await self.ctx.sample(self.problem.messages, n=self.k, max_tokens=self.rollout_tokens)
        return [self.tree.add(root, t.text.strip(), answer=t.answer, tokens=t.completion_tokens) for t in traces]

    async def _refine(self, node: Node) -> list[Node]:
        """Self-refine: ``k`` critiques of the node's answer, then one rewrite per critique."""
        asked: list[Message] = [*self.problem.messages, {"role": "assistant", "content": node.step},
                                {"role": "user", "content": CRITIQUE}]
        with self.ctx.aux():
            critiques = await self.ctx.sample(asked, n=self.k, max_tokens=self.rollout_tokens)
        rewrites = await asyncio.gather(*(
            self.ctx.sample([*asked, {"role": "assistant", "content": c.text},
                             {"role": "user", "content": REWRITE}], n=1, max_tokens=self.rollout_tokens)
            for c in critiques
        ))
        return [self.tree.add(node, r.text.strip(), answer=r.answer, tokens=c.completion_tokens + r.completion_tokens,
                              meta={"critique": c.text.strip()})
                for c, (r,) in zip(critiques, rewrites, strict=True)]

    async def evaluate(self, node: Node) -> float:
        """The node's reward in [0, 1]; computed once per node."""
        if node.score is not None:
            return node.score
        before = self.ctx.usage.completion_tokens
        # a refined node is a whole answer on its own; an empty terminal step ("end") adds nothing to judge
        steps = [node.step] if self.expansion == "refine" else [s for s in self.tree.steps(node) if s]
        if self.expansion == "refine" or node.terminal:
            reward = await self._reward(node, node.answer, steps)
        elif self.evaluation == "rollout":
            reward = await self._rollout(node, steps)
        else:
            with self.ctx.aux():
                reward = await self.scorer.score(self.ctx, self.problem, steps)
        node.score = reward
        node.meta["eval_tokens"] = self.ctx.usage.completion_tokens - before
        return reward

    async def _rollout(self, node: Node, steps: list[str]) -> float:
        """Finish the solution from this node in one sample; its reward is the node's."""
        messages = prefix_messages(self.problem, steps, self.delimiter)
        prefill = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""
        with self.ctx.aux():  # a rollout scores a node; it is not a sample of the problem
            (trace,) = await self.ctx.sample(messages, n=1, max_tokens=self.rollout_tokens)
        rest = trace.text[len(prefill):] if prefill and trace.text.startswith(prefill) else trace.text
        finished = [*steps, rest.strip()]
        answer = self.problem.extract(solution_text(finished, self.delimiter))
        trace.answer = answer
        node.meta["rollout"] = {"text": rest.strip(), "answer": answer}
        return await self._reward(node, answer, finished, rollout=True)

    async def _reward(self, node: Node, answer: str | None, steps: list[str], rollout: bool = False) -> float:
        """A finished solution's reward: the exact verdict for a puzzle, else the scorer's score."""
        if self.domain is not None:
            ok = self.domain.verify(answer)
            reward, verified = (1.0 if ok else 0.0), ok
        else:
            with self.ctx.aux():
                reward = await self.scorer.score(self.ctx, self.problem, steps) if steps else 0.0
            verified = False
        outcome = _Outcome(answer, reward, node.id, verified)
        self.outcomes.append(outcome)
        if verified and self.solved is None:
            self.solved = outcome
        if rollout:
            node.meta["rollout"]["reward"] = reward
        return reward

    def backup(self, node: Node, reward: float) -> None:
        current: Node | None = node
        while current is not None:
            current.visits += 1
            current.value = (current.value or 0.0) + (reward - (current.value or 0.0)) / current.visits
            current = self.tree.parent(current)

    # ---- the answer -----------------------------------------------------------------------------------------

    def choose(self, by: str) -> tuple[Node | None, str | None]:
        """Walk from the root to the most visited (or best valued) child until a leaf; its answer, or else its
        rollout's, or else the best-rewarded answer seen anywhere."""
        if self.solved is not None:
            return self.tree.nodes[self.solved.node], self.solved.answer
        node = self.tree.root
        while node.children:
            visited = [self.tree.nodes[i] for i in node.children if self.tree.nodes[i].visits > 0]
            if not visited:
                break
            if by == "visits":
                node = max(visited, key=lambda c: (c.visits, c.value or 0.0))
            else:
                node = max(visited, key=lambda c: (c.value or 0.0, c.visits))
        answer = node.answer if node.answer is not None else node.meta.get("rollout", {}).get("answer")
        if answer is None:
            answered = [o for o in self.outcomes if o.answer is not None]
            if answered:
                best = max(answered, key=lambda o: o.reward)
                return self.tree.nodes[best.node], best.answer
            return None, None
        return (node if node is not self.tree.root else None), answer


@strategy("mcts")
async def mcts(
    problem: Problem,
    ctx: Ctx,
    iterations: Annotated[int, Ge(1), "select-expand-evaluate-backup rounds"] = 16,
    k: Annotated[int, Ge(1), "children per expansion (next steps, or refinements)"] = 3,
    exploration: Annotated[float, Ge(0), "UCT exploration constant c (finite)"] = 1.41,
    expansion: Expansion = "sample",
    evaluation: Evaluation = "rollout",
    scorer: ScorerSpec = "judge",
    select: Annotated[Literal["visits", "value"], "answer along the most visited, or highest-Q, children"] = "visits",
    max_depth: Annotated[int, Ge(1), "tree depth at which a node is terminal"] = 8,
    delimiter: Delimiter = "\n\n",
    step_tokens: Annotated[int, Ge(1), "most tokens of a step"] = 256,
    rollout_tokens: Annotated[int, Ge(1), "most tokens of a rollout or refinement"] = 512,
    token_budget: Annotated[int, Ge(0), "completion tokens the search may spend (0: no limit of its own)"] = 0,
) -> Result:
    """Monte Carlo tree search in the RAP / MC-NEST family: UCT selection, expansion, evaluation, backup.

    Papers: "Reasoning with Language Model is Planning with World Model" (RAP, Hao et al., 2023) and "MC-NEST:
    Enhancing Mathematical Reasoning in Large Language Models with a Monte Carlo Nash Equilibrium Self-Refine
    Tree" (after MCTSr). Each of ``iterations`` rounds:

    1. **Select**: from the root, take an unvisited child if there is one, else the child with the highest
       UCT = Q + ``exploration`` * sqrt(ln N(parent) / N(child)), until a leaf.
    2. **Expand** a leaf evaluated before (the root at once): ``expansion=sample`` (RAP) draws ``k`` next steps
       (text up to ``delimiter``, by assistant prefill; ``ponder.search.steps``), a step stating an answer (or
       at ``max_depth``) is terminal; ``expansion=refine`` (MC-NEST) makes nodes complete answers: the root's
       children are ``k`` sampled answers, a node's children are ``k`` self-refinements (a critique, then a
       rewrite) of its answer, down to ``max_depth``.
    3. **Evaluate** the new node once: ``evaluation=rollout`` finishes the solution from it in one sample and
       rewards the finished solution; ``evaluation=scorer`` scores the partial solution with the step
       ``scorer`` (``judge``, ``confidence[:measure]`` or ``prm:<url>``; see ``ponder.search.scorers``).
       Finished solutions (terminal steps, rollouts, refined answers) are rewarded by the ``scorer``, except on
       Game of 24 / countdown problems, where the exact verifier gives 1 or 0 and a verified solution ends
       the search.
    4. **Back up** the reward: every node on the path counts a visit and keeps its mean reward Q.

    The answer is read **by visits** (``select=visits``, the robust child of MCTS practice) or **by value**
    (``select=value``, highest Q): from the root, follow that child down to a leaf and take its answer (a
    terminal step's or refined answer's, else the answer of its rollout); if that path has none, the answer
    with the best reward seen. A verified puzzle solution is returned at once. The confidence is the chosen
    node's Q. The search stops after ``iterations``, or once ``token_budget`` completion tokens are spent
    (0: no limit of its own; the run's ``--budget`` also stops it). The tree is in ``info["tree"]``.
    """
    if not math.isfinite(exploration):  # the bound refuses negatives and NaN, not infinity
        raise ConfigError(f"mcts parameter 'exploration' must be a finite number >= 0, got {exploration}")
    delimiter = check_delimiter(delimiter.replace("\\n", "\n").replace("\\t", "\t"))  # as typed on a command line
    run = _Search(problem, ctx, make_scorer(scorer), domain_of(problem), k, exploration, expansion, evaluation,
                  max_depth, delimiter, step_tokens, rollout_tokens)
    start = ctx.usage.completion_tokens
    done, stopped = 0, ""
    try:
        for done in range(1, iterations + 1):
            if token_budget and ctx.usage.completion_tokens - start >= token_budget:
                stopped, done = f"mcts token_budget of {token_budget} spent", done - 1
                break
            node = run.select()
            if (node is run.tree.root or node.visits > 0) and run.expandable(node):
                children = await run.expand(node)
                if not children:
                    break  # nothing to grow from: the model gave no usable step
                node = children[0]
            run.backup(node, await run.evaluate(node))
            if run.solved is not None:
                break
    except BudgetExceeded as exc:
        stopped = str(exc)
    chosen, answer = run.choose(select)
    if chosen is not None:
        run.tree.select(chosen)
    info: dict[str, object] = {
        "iterations": done, "expansion": expansion, "evaluation": evaluation,
        "scorer": "exact verifier" if run.domain is not None else run.scorer.name,
        "outcomes": [{"answer": o.answer, "reward": round(o.reward, 4), "node": o.node} for o in run.outcomes],
        "tree": run.tree.to_json(),
    }
    if stopped:
        info["budget_stop"] = stopped
    if run.domain is not None:
        # The task's exact checker was the reward: reports must not rank this beside unverified strategies.
        info["exact_reward"] = True
    if answer is None:
        return Result(answer=None, confidence=0.0, info=info)
    confidence = 1.0 if run.solved is not None else (chosen.value or 0.0) if chosen is not None else 0.0
    return Result(answer=answer, confidence=confidence, votes={answer: confidence}, info=info)
