"""ReConcile: a round-table discussion among diverse agents, settled by a recalibrated confidence-weighted vote."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge

from ponder.agents import agent_contexts, agent_labels, ask_all
from ponder.context import Ctx
from ponder.errors import BudgetExceeded
from ponder.strategies.registry import strategy
from ponder.strategies.voting import Cluster, cluster_answers, vote
from ponder.types import Message, Problem, Result, Trace

ANSWER_FORMAT = (
    "Please answer the question with step-by-step reasoning. Also, evaluate your confidence level (between 0.0 and "
    "1.0) to indicate the possibility of your answer being right. End your reply with these two lines:\n"
    "The answer is <your answer>.\n"
    "Confidence: <a number between 0.0 and 1.0>"
)
DISCUSSION_INTRO = (
    "Carefully review the following solutions from other agents as additional information, and provide your own "
    "answer and step-by-step reasoning to the question. Clearly state which point of view you agree or disagree "
    "with and why."
)
_EXPLANATION_CHARS = 1500  # one agent's explanation in the discussion prompt; keeps prompts bounded
# "Confidence: 0.9", "confidence level is 90%", "**Confidence:** 0.85". Each optional piece starts with a literal,
# so a long run of blanks cannot be split in many ways (model output is untrusted: no catastrophic backtracking).
_CONFIDENCE = re.compile(r"confidence(?:[ _]level)?[*_\s]*(?:(?:is|of|:|=)[*_\s]*){0,2}(\d+(?:\.\d+)?)\s*(%)?",
                         re.IGNORECASE)
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")


def recalibrate(p: float) -> float:
    """ReConcile's rescaling of a verbalised confidence ``p`` before voting.

    LLMs state high confidence almost always, so raw values barely separate agents; the paper maps them onto a
    steeper scale (the authors' ``trans_confidence``): 1.0 stays 1.0, [0.9, 1) gives 0.8, [0.8, 0.9) gives 0.5,
    (0.6, 0.8) gives 0.3, and anything at or below 0.6 gives 0.1.
    """
    if p >= 1.0:
        return 1.0
    if p >= 0.9:
        return 0.8
    if p >= 0.8:
        return 0.5
    if p > 0.6:
        return 0.3
    return 0.1


@dataclass
class Stance:
    """One agent's reply in one round: its answer, explanation and verbalised confidence."""

    answer: str | None
    explanation: str
    confidence: float  # in [0, 1]; 0.0 when the agent stated none (as in ReConcile)
    stated: bool  # whether a confidence was found in the reply

    @property
    def weight(self) -> float:
        return recalibrate(self.confidence)


def _as_probability(value: float, percent: bool) -> float:
    if percent or value > 1.0:
        value /= 100.0
    return min(max(value, 0.0), 1.0)


def read_stance(text: str, problem: Problem) -> Stance:
    """Parse a reply: the paper's JSON (``reasoning``, ``answer``, ``confidence_level``) or the plain-text format
    of ``ANSWER_FORMAT``. The answer goes through the task's extractor, so it compares like any other answer."""
    for match in reversed(_JSON_OBJECT.findall(text)):
        try:
            data = json.loads(match)
        except ValueError:
            continue
        if isinstance(data, dict) and "answer" in data:
            raw = str(data["answer"]).strip()
            answer = problem.extract(raw) or raw or None
            level = str(data.get("confidence_level", "")).strip()
            try:
                confidence, stated = _as_probability(float(level.rstrip("%")), level.endswith("%")), True
            except ValueError:
                confidence, stated = 0.0, False
            return Stance(answer, str(data.get("reasoning", "")).strip()[:_EXPLANATION_CHARS], confidence, stated)
    matches = list(_CONFIDENCE.finditer(text))
    confidence, stated = 0.0, False
    if matches:
        last = matches[-1]
        confidence, stated = _as_probability(float(last.group(1)), bool(last.group(2))), True
    # The confidence figure must not be read as the answer ("... Confidence: 0.9" ends with a number).
    body = _CONFIDENCE.sub("", text).strip()
    answer = problem.extract(body) if body else None
    return Stance(answer, body[:_EXPLANATION_CHARS], confidence, stated)


def _with_instructions(problem: Problem, *blocks: str) -> list[Message]:
    messages = [dict(m) for m in problem.messages]
    messages[-1]["content"] = "\n\n".join([messages[-1]["content"], *blocks])
    return messages


def _solution(stance: Stance) -> str:
    if stance.answer is None:
        return f"One agent solution: {stance.explanation} My confidence level is {stance.confidence:g}."
    return (f"One agent solution: I think the answer is {stance.answer} because {stance.explanation} "
            f"My confidence level is {stance.confidence:g}.")


def discussion(stances: list[Stance], clusters: list[Cluster]) -> str:
    """The grouped answers, explanations and confidences of the last round, largest group first."""
    parts = []
    for cluster in sorted(clusters, key=lambda c: -len(c.members)):
        k = len(cluster.members)
        head = (f"There {'is' if k == 1 else 'are'} {k} agent{'' if k == 1 else 's'} who "
                f"think{'s' if k == 1 else ''} the answer is {cluster.answer}.")
        parts.append("\n".join([head, *(_solution(stances[i]) for i in cluster.members)]))
    silent = [s for s in stances if s.answer is None]
    if silent:
        parts.append("\n".join([f"{len(silent)} agent(s) gave no final answer.", *map(_solution, silent)]))
    return "\n\n".join(parts)


@strategy("debate")
async def debate(
    problem: Problem,
    ctx: Ctx,
    agents: Annotated[str, "model specs of the agents, cycled (empty: the run's model)"] = "",
    n_agents: Annotated[int, Ge(2), "agents at the round table (a discussion needs two; paper: 3)"] = 3,
    rounds: Annotated[int, Ge(0), "discussion rounds at most (0: no discussion; paper: 3)"] = 3,
) -> Result:
    """ReConcile (Chen, Saha & Bansal, ACL 2024): round-table discussion, then a confidence-weighted vote.

    From "ReConcile: Round-Table Conference Improves Reasoning via Consensus among Diverse LLMs". Each of
    ``n_agents`` agents answers with step-by-step reasoning and a verbalised confidence. In each discussion round
    every agent sees the previous round's answers grouped by equivalence, each with its agents' explanations and
    confidences, and revises its answer. Discussion stops once all agents agree, or after ``rounds`` rounds.
    The team answer is the vote weighted by ``recalibrate(confidence)``, the paper's rescaling of verbalised
    confidence; the result's confidence is the winner's share of that weight.

    ``agents`` lists model specs (see ``ponder.agents``): agent ``i`` uses spec ``i mod len``, so diverse models
    are the paper's setting; empty means all agents are the run's model, kept apart by their own samples. The
    paper uses 3 agents and at most 3 rounds. Not included: its human "convincing" demonstrations, which need
    gold explanations that ponder's tasks do not carry.
    """
    contexts = await agent_contexts(ctx, agents, n_agents)
    traces = await ask_all(contexts, _with_instructions(problem, ANSWER_FORMAT))
    every: list[Trace] = list(traces)
    history: list[list[Stance]] = [[_read(t, problem) for t in traces]]
    stopped = "rounds"
    while True:
        stances = history[-1]
        clusters = await cluster_answers([s.answer for s in stances], ctx.equivalent)
        if len(clusters) == 1 and len(clusters[0].members) == n_agents:
            stopped = "consensus"
            break
        if len(history) > rounds:
            break
        prompt = _with_instructions(problem, DISCUSSION_INTRO, discussion(stances, clusters), ANSWER_FORMAT)
        try:
            traces = await ask_all(contexts, prompt)
        except BudgetExceeded:
            stopped = "budget"  # settle with the last complete round
            break
        every.extend(traces)
        history.append([_read(t, problem) for t in traces])
    final = history[-1]
    outcome = await vote([s.answer for s in final], ctx.equivalent, weights=[s.weight for s in final])
    info = {
        "agents": agent_labels(agents, n_agents),
        "discussion_rounds": len(history) - 1,
        "stopped": stopped,
        "rounds": [[{"answer": s.answer, "confidence": s.confidence, "weight": s.weight, "stated": s.stated}
                    for s in round_] for round_ in history],
    }
    return outcome.result(every, info)


def _read(trace: Trace, problem: Problem) -> Stance:
    """The agent's stance; its parsed answer becomes the trace's answer, so the run judges what the agent meant."""
    stance = read_stance(trace.text, problem)
    trace.answer = stance.answer
    return stance
