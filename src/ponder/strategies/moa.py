"""Mixture-of-Agents: layers of proposers that each refine the previous layer's responses, then an aggregator."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge

from ponder.agents import agent_contexts, agent_labels, ask_all, parse_agents
from ponder.context import Ctx
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Message, Problem, Result, Trace

AGGREGATE_AND_SYNTHESIZE = (
    "You have been provided with a set of responses from various open-source models to the latest user query. "
    "Your task is to synthesize these responses into a single, high-quality response. It is crucial to critically "
    "evaluate the information provided in these responses, recognizing that some of it may be biased or incorrect. "
    "Your response should not simply replicate the given answers but should offer a refined, accurate, and "
    "comprehensive reply to the instruction. Ensure your response is well-structured, coherent, and adheres to the "
    "highest standards of accuracy and reliability.\n\nResponses from models:"
)


def with_references(messages: list[Message], references: list[str]) -> list[Message]:
    """The paper's Aggregate-and-Synthesize system prompt with the numbered ``references`` added to ``messages``
    (appended to an existing system message, else as a new one in front)."""
    system = AGGREGATE_AND_SYNTHESIZE + "".join(f"\n{i}. {ref.strip()}" for i, ref in enumerate(references, 1))
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{system}"
        return out
    return [{"role": "system", "content": system}, *out]


@strategy("moa")
async def moa(
    problem: Problem,
    ctx: Ctx,
    agents: Annotated[str, "model specs of the proposers, cycled (empty: the run's model)"] = "",
    proposers: Annotated[int, Ge(1), "proposer agents per layer (paper: 6)"] = 6,
    layers: Annotated[int, Ge(2), "layers, the aggregator's included (paper: 3)"] = 3,
    aggregator: Annotated[str, "model spec of the final aggregator (empty: the run's model)"] = "",
) -> Result:
    """Mixture-of-Agents (Wang et al., 2024): layered proposers, then an aggregator synthesises their responses.

    From "Mixture-of-Agents Enhances Large Language Model Capabilities". Layer 1 has ``proposers`` agents answer
    the question; each of the next ``layers - 2`` layers answers it again with the previous layer's responses
    given in the paper's Aggregate-and-Synthesize system prompt; the last layer is a single ``aggregator`` that
    synthesises the final response from the last proposer layer. The paper's default is 3 layers of 6
    proposers (``layers=3`` counts the aggregator's layer), with a strong model as the aggregator.

    ``agents`` lists the proposers' model specs (proposer ``i`` uses spec ``i mod len``; empty: the run's model,
    whose samples differ by seed); ``aggregator`` is one spec (empty: the run's model). The answer is the
    aggregator's; the confidence is the share of last-layer proposers that gave an equivalent answer, and the
    votes are that layer's answer counts. If the token budget runs out, the last complete layer is aggregated,
    or, failing that, its majority answer is returned.
    """
    if len(parse_agents(aggregator, param="aggregator")) > 1:
        raise ConfigError(f"moa parameter aggregator takes one model spec, got {aggregator!r}")
    team = await agent_contexts(ctx, agents, proposers)
    (final_ctx,) = await agent_contexts(ctx, aggregator, 1, param="aggregator")
    every: list[Trace] = []
    history: list[list[Trace]] = []
    stopped = "done"
    for _ in range(layers - 1):
        messages = with_references(problem.messages, [t.text for t in history[-1]]) if history else problem.messages
        try:
            traces = await ask_all(team, messages)
        except BudgetExceeded:
            if not history:
                raise
            stopped = "budget"
            break
        every.extend(traces)
        history.append(traces)
    last = history[-1]
    tally = await vote([t.answer for t in last], ctx.equivalent)
    info: dict[str, object] = {
        "agents": agent_labels(agents, proposers),
        "aggregator": agent_labels(aggregator, 1)[0],
        "layers": [[t.answer for t in layer] for layer in history],
    }
    try:
        (synthesis,) = await final_ctx.sample(with_references(problem.messages, [t.text for t in last]), n=1)
    except BudgetExceeded:
        info["stopped"] = "budget"
        return tally.result(every, info)
    info["stopped"] = stopped
    every.append(synthesis)
    agreeing = 0
    for cluster in tally.clusters:
        if synthesis.answer is not None and await ctx.equivalent(cluster.answer, synthesis.answer):
            agreeing = len(cluster.members)
            break
    return Result(answer=synthesis.answer, confidence=agreeing / len(last), votes=tally.tally, traces=every,
                  info=info)
