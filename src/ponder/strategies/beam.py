"""Step-level beam search guided by a step scorer (PRM-guided beam search)."""

from __future__ import annotations

import asyncio
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
    SelectParam,
    StepSearch,
    best,
    check_search_params,
)
from ponder.search.tree import Node
from ponder.strategies.registry import strategy
from ponder.types import Problem, Result


@strategy("beam")
async def beam(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "beam width: partial solutions kept each round, and solutions completed"] = 4,
    expansions: Annotated[int, Ge(1), "candidate next steps sampled per beam each round"] = 4,
    max_depth: MaxDepth = 40,
    scorer: ScorerSpec = "judge",
    aggregation: AggregationParam = "last",
    select: SelectParam = "weighted",
    delimiter: Delimiter = DEFAULT_DELIMITER,
    max_step_tokens: MaxStepTokens = 256,
    budget: SearchBudget = 0,
) -> Result:
    """Step-level beam search: keep the ``n`` best partial solutions, grow each by ``expansions`` sampled steps.

    Papers: Snell et al., "Scaling LLM Test-Time Compute Optimally can be More Effective than Scaling Model
    Parameters" (beam search against a PRM), as implemented in Hugging Face's search-and-learn; MindStar (M*)
    searches steps the same way.

    A step is the model's continuation up to ``delimiter`` (a blank line). Each round, every live beam is grown
    by ``expansions`` candidate next steps (one ``n=expansions`` call per beam; the first round grows the
    question ``n`` x ``expansions`` times, as if ``n`` beams started there), every new step is scored by
    ``scorer`` (``judge``: the model's P("Yes") that the step is right; ``confidence[:measure]``: its token
    confidence; ``prm:<url>``: a process reward model), and a path's value is its step scores aggregated by
    ``aggregation`` (search-and-learn uses the ``last`` step's score). Steps that finish the solution (a stated
    answer, the end of the text, or ``max_depth``) leave the beam as completed solutions; of the rest the ``n``
    of highest value are kept and the others pruned, so the beam keeps its width while completions accumulate,
    as in search-and-learn (which keeps ``n / beam_width`` parents every round whatever has completed). The
    search ends when ``n`` solutions are complete (search-and-learn keeps the first ``n`` completions unless
    told to sort them; the ``n`` first here, too), nothing is left to grow, or ``budget`` completion tokens
    (0 = no cap; the problem's token budget applies too) are spent, in which case the live beams are answered
    as they stand.

    The answer is chosen among the completed solutions by ``select``: ``weighted`` (the answer with the largest
    summed path value, search-and-learn's weighted best-of-N), ``vote`` (plain majority) or ``best`` (the single
    highest-valued path). The search tree goes into ``info["tree"]``.
    """
    delimiter = check_search_params(aggregation=aggregation, delimiter=delimiter)
    search = StepSearch(ctx, problem, make_scorer(scorer), aggregation=aggregation, delimiter=delimiter,
                        max_depth=max_depth, max_step_tokens=max_step_tokens, budget=budget)
    completed: list[Node] = []
    live: list[Node] = [search.tree.root]
    rounds = 0
    while live and len(completed) < n and not search.exhausted:
        rounds += 1
        width = n * expansions if live == [search.tree.root] else expansions
        grown = await asyncio.gather(*(search.grow(node, width) for node in live))
        completed += [c for children in grown for c in children if c.terminal]
        # Beams the budget left ungrown stay candidates: the search answers from what exists.
        pool = [c for children in grown for c in children if not c.terminal]
        pool += [node for node, children in zip(live, grown, strict=True) if not children and node.parent is not None]
        live = best(pool, n)
        search.prune([c for c in pool if c not in live])
    finals = completed[:n] or live
    return await search.answer(finals, select, {"rounds": rounds, "completed": len(completed)})
