"""Best-first (A*-style) decoding over reasoning steps, with the step scorer as the heuristic."""

from __future__ import annotations

import heapq
from typing import Annotated

from annotated_types import Ge

from ponder.context import Ctx
from ponder.search.scorers import make_scorer
from ponder.search.steps import DEFAULT_DELIMITER
from ponder.search.stepsearch import (
    AggregationParam,
    Delimiter,
    MaxDepth,
    MaxStepTokens,
    ScorerSpec,
    SearchBudget,
    StepSearch,
    best,
    check_search_params,
)
from ponder.search.tree import Node
from ponder.strategies.registry import strategy
from ponder.types import Problem, Result


@strategy("best-first")
async def best_first(
    problem: Problem,
    ctx: Ctx,
    expansions: Annotated[int, Ge(1), "candidate next steps drawn when a partial solution is expanded"] = 4,
    max_expansions: Annotated[int, Ge(1), "expansions before the search stops"] = 32,
    max_depth: MaxDepth = 40,
    scorer: ScorerSpec = "judge",
    aggregation: AggregationParam = "min",
    delimiter: Delimiter = DEFAULT_DELIMITER,
    max_step_tokens: MaxStepTokens = 256,
    budget: SearchBudget = 0,
) -> Result:
    """Best-first search over partial solutions, expanding the most promising one first (A*-style decoding).

    Paper: "A*-Decoding: Token-Efficient Inference Scaling" -- best-first search over reasoning steps where a
    process reward model's score of the partial solution is the priority; a fixed budget bounds the search.

    A priority queue holds partial solutions ordered by their value: the step scores of the path (``scorer``)
    aggregated by ``aggregation`` (``min``: a path is as good as its weakest step, so the value never rises
    along a path and the search backs up to another branch as soon as a step looks wrong; ties go to the deeper
    path). Each iteration pops the best entry; if it is a finished solution (a stated answer, the end of the
    text, or ``max_depth``) the search stops and returns it, as A* stops when it pops a goal. Otherwise it is
    expanded into ``expansions`` scored candidate next steps (one ``n=expansions`` call), which join the queue.
    The search also stops after ``max_expansions`` expansions or when ``budget`` completion tokens (0 = no cap;
    the problem's token budget applies too) are spent; it then returns the best finished solution it has seen,
    or failing that the best partial one. Confidence is the returned path's value; ``votes`` weigh every
    finished solution found by its value. The tree goes into ``info["tree"]``.
    """
    delimiter = check_search_params(aggregation=aggregation, delimiter=delimiter)
    search = StepSearch(ctx, problem, make_scorer(scorer), aggregation=aggregation, delimiter=delimiter,
                        max_depth=max_depth, max_step_tokens=max_step_tokens, budget=budget)
    frontier: list[tuple[float, int, int, Node]] = []

    def push(node: Node) -> None:
        heapq.heappush(frontier, (-(node.value or 0.0), -node.depth, node.id, node))

    push(search.tree.root)
    goal: Node | None = None
    while frontier:
        node = frontier[0][3]
        if node.terminal:
            goal = node
            break
        if search.expansions >= max_expansions:
            break
        children = await search.grow(node, expansions)
        if not children:  # the budget is spent
            break
        heapq.heappop(frontier)
        node.visits += 1
        for child in children:
            push(child)
    finished = [n for n in search.tree.nodes if n.terminal and not n.pruned]
    if goal is None:
        open_paths = [entry[3] for entry in frontier if entry[3].parent is not None]
        goal = next(iter(best(finished, 1) or best(open_paths, 1)), None)
    finals = finished if goal is None or goal.terminal else [*finished, goal]
    return await search.answer(finals, "weighted", {"goal_found": bool(goal and goal.terminal),
                                                     "max_expansions": max_expansions}, chosen=goal)
