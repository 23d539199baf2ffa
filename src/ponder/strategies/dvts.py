"""Diverse Verifier Tree Search: independent greedy subtrees, each steered by the step scorer."""

from __future__ import annotations

import asyncio
from typing import Annotated

from annotated_types import Ge

from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.search.scorers import make_scorer
from ponder.search.steps import DEFAULT_DELIMITER
from ponder.search.stepsearch import (
    AggregationParam,
    Delimiter,
    MaxDepth,
    MaxStepTokens,
    ScorerSpec,
    SearchBudget,
    SelectParam,
    StepSearch,
    best,
    check_search_params,
)
from ponder.search.tree import Node
from ponder.strategies.registry import strategy
from ponder.types import Problem, Result


@strategy("dvts")
async def dvts(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "samples in all, split into n / expansions subtrees"] = 16,
    expansions: Annotated[int, Ge(1), "candidate next steps per subtree step (the best is kept)"] = 4,
    max_depth: MaxDepth = 40,
    scorer: ScorerSpec = "judge",
    aggregation: AggregationParam = "last",
    select: SelectParam = "weighted",
    delimiter: Delimiter = DEFAULT_DELIMITER,
    max_step_tokens: MaxStepTokens = 256,
    budget: SearchBudget = 0,
) -> Result:
    """Diverse Verifier Tree Search (DVTS): ``n / expansions`` independent subtrees, each searched greedily.

    From Hugging Face's search-and-learn study of Snell et al., "Scaling LLM Test-Time Compute Optimally can be
    More Effective than Scaling Model Parameters": plain beam search tends to collapse onto one line of
    reasoning when the verifier favours it early; DVTS splits the ``n`` samples into ``n / expansions``
    subtrees that never compete with each other, which keeps the final candidates diverse at large ``n``.

    Each subtree starts at the question and repeats: draw ``expansions`` candidate next steps of its current
    path (one ``n=expansions`` call), score them with ``scorer``, keep the best (greedy) and prune the rest,
    until its step finishes the solution (a stated answer, the end of the text, or ``max_depth``). Subtrees
    run concurrently and share ``budget`` (completion tokens, 0 = no cap; the problem's token budget applies
    too): when it is spent, each unfinished subtree offers its path as it stands. A path's value is its step
    scores aggregated by ``aggregation``; the answer is chosen among the subtrees' solutions by ``select``
    (``weighted``: largest summed value per answer, as search-and-learn does; ``vote``; ``best``). The tree,
    with each node's subtree in its meta, goes into ``info["tree"]``.
    """
    delimiter = check_search_params(aggregation=aggregation, delimiter=delimiter)
    if n < expansions:
        raise ConfigError(f"dvts splits n into n / expansions subtrees: parameter 'n' ({n}) must be at least "
                          f"'expansions' ({expansions})")
    search = StepSearch(ctx, problem, make_scorer(scorer), aggregation=aggregation, delimiter=delimiter,
                        max_depth=max_depth, max_step_tokens=max_step_tokens, budget=budget)

    async def subtree(index: int) -> Node:
        node = search.tree.root
        while not node.terminal:
            children = await search.grow(node, expansions)
            if not children:  # the budget is spent
                break
            for child in children:
                child.meta["subtree"] = index
            node = best(children, 1)[0]
            search.prune([c for c in children if c is not node])
        return node

    leaves = await asyncio.gather(*(subtree(i) for i in range(n // expansions)))
    finals = [leaf for leaf in leaves if leaf.parent is not None]
    return await search.answer(finals, select, {"subtrees": n // expansions,
                                                "completed": sum(leaf.terminal for leaf in finals)})
