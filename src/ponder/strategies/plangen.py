"""PlanGEN: constraint, verification and selection agents pick and check an inference algorithm per problem."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge, Interval

from ponder.agents import agent_contexts, agent_labels
from ponder.context import Ctx
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies.registry import StrategyInfo, coerce_params, get_strategy, strategy
from ponder.tasks.prompts import problem_statement
from ponder.types import Problem, Result, Trace

CONSTRAINT_PROMPT = (
    "Extract the instance-specific constraints of the problem below: every condition a correct solution must "
    "satisfy (the given facts and quantities, the rules, what exactly is asked, and the form of the answer). "
    "List them one per line. Do not solve the problem.\n\nProblem:\n{question}"
)
SELECTION_PROMPT = (
    "Problem:\n{question}\n\nConstraints:\n{constraints}\n\nConsider how complex this problem is. Which of these "
    "inference algorithms fits it best?\n{menu}\n\nReply with the number of the algorithm only."
)
VERIFICATION_PROMPT = (
    "You are verifying a proposed solution against the constraints of a problem.\n\nProblem:\n{question}\n\n"
    "Constraints:\n{constraints}\n\nProposed solution:\n{solution}\n\nCheck the solution against each constraint "
    "in turn, say which it satisfies or violates, and whether its final answer ({answer}) is right. Then give a "
    "reward score from 0 to 100 on the last line, as 'Score: N'."
)
# Weights of the modified UCB's extra terms (see ``Arm.ucb``).
PRIOR_WEIGHT = 1.0
DIVERSITY_WEIGHT = 0.1
RECOVERY_WEIGHT = 0.2
_TEXT_CHARS = 4000  # constraints and solutions shown to an agent are cut to this many characters
# "Score: 85", "**Score:** 90/100"; each optional piece starts with a literal, so blanks cannot backtrack badly.
_SCORE = re.compile(r"score[*_\s]*(?:(?:is|of|:|=)[*_\s]*){0,2}(\d{1,3})(?!\d)", re.IGNORECASE)
_INTEGER = re.compile(r"\d+")


@dataclass
class Arm:
    """One inference algorithm the selection agent can choose: a registered strategy with its parameters."""

    label: str
    info: StrategyInfo
    params: dict[str, Any]
    prior: float = 0.0
    pulls: int = 0
    total_reward: float = 0.0
    recoveries: int = 0  # runs that beat the best reward found before them

    def ucb(self, total_pulls: int) -> float:
        """The selection agent's modified UCB: mean reward + exploration bonus + a prior from the LLM's reading
        of the instance's complexity (fading as evidence accumulates) + a diversity bonus for little-used arms
        + a recovery bonus for arms that have improved on the best plan so far. Untried arms come first."""
        if self.pulls == 0:
            return math.inf
        return (self.total_reward / self.pulls
                + math.sqrt(2 * math.log(max(total_pulls, 1)) / self.pulls)
                + PRIOR_WEIGHT * self.prior / (1 + total_pulls)
                + DIVERSITY_WEIGHT / (self.pulls + 1)
                + RECOVERY_WEIGHT * self.recoveries / self.pulls)


def parse_algorithms(algorithms: str) -> list[Arm]:
    """``name[:param=value[:param=value]]`` entries separated by commas, each a registered strategy."""
    arms: list[Arm] = []
    for entry in (part.strip() for part in algorithms.split(",")):
        name, *settings = [piece.strip() for piece in entry.split(":")]
        where = f"plangen parameter algorithms, entry {entry!r}"
        if not name:
            raise ConfigError(f"{where}: give a strategy name, e.g. 'cot,self-consistency:n=8'")
        if name == "plangen":
            raise ConfigError(f"{where}: plangen cannot select itself")
        raw: dict[str, str] = {}
        for setting in settings:
            key, sep, value = setting.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"{where}: write parameters as name:param=value, e.g. self-consistency:n=8")
            raw[key.strip()] = value.strip()
        try:
            info = get_strategy(name)
            params = coerce_params(info, raw)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if any(arm.label == entry for arm in arms):
            raise ConfigError(f"{where} is listed twice")
        arms.append(Arm(entry, info, params))
    return arms


def choose(arms: list[Arm]) -> Arm:
    """The arm with the highest modified UCB; ties (untried arms) go to the higher prior, then list order."""
    total = sum(arm.pulls for arm in arms)
    return max(arms, key=lambda arm: (arm.ucb(total), arm.prior, -arms.index(arm)))


def read_score(text: str) -> float | None:
    """A verifier's 'Score: N' (0-100) as a reward in [0, 1]; else its last integer in range; else None."""
    matches = [int(m.group(1)) for m in _SCORE.finditer(text)]
    candidates = matches or [int(m) for m in _INTEGER.findall(text)]
    for value in reversed(candidates):
        if 0 <= value <= 100:
            return value / 100
    return None


def _clip(text: str) -> str:
    return text if len(text) <= _TEXT_CHARS else "..." + text[-_TEXT_CHARS:]


def _role_reply(trace: Trace) -> str:
    trace.answer, trace.aux = None, True  # an agent's working note, not an answer to the problem
    return trace.text.strip()


@dataclass
class Candidate:
    arm: str
    result: Result
    reward: float


async def _solution_text(result: Result, ctx: Ctx) -> str:
    """What the verifier reads: the trace that gave the strategy's answer; a search strategy whose answer was
    assembled from many partial traces is shown by its answer alone."""
    for trace in result.traces:
        if trace.answer is not None and await ctx.equivalent(trace.answer, result.answer):
            return _clip(trace.text)
    return f"(The algorithm reported only its final answer.) The answer is {result.answer}."


@strategy("plangen")
async def plangen(
    problem: Problem,
    ctx: Ctx,
    algorithms: Annotated[str, "arms: strategies name[:param=value...], comma-separated"] = "cot,self-consistency:n=8",
    iterations: Annotated[int, Ge(1), "algorithm runs at most"] = 3,
    threshold: Annotated[float, Interval(ge=0, le=1), "verifier reward that ends the search"] = 0.9,
    agents: Annotated[str, "model specs: constraint, verification, selection agents (empty: the run's)"] = "",
) -> Result:
    """PlanGEN (Parmar et al., 2025): constraint-guided verification and per-instance selection of the algorithm.

    From "PlanGEN: A Multi-Agent Framework for Generating Planning and Reasoning Trajectories for Complex Problem
    Solving", in its Mixture-of-Algorithms form. A **constraint agent** extracts the problem's instance-specific
    constraints. A **selection agent** reads the problem's complexity and names the algorithm it expects to fit,
    which becomes the prior of a modified UCB policy (``Arm.ucb``: mean reward, exploration bonus, fading prior,
    diversity and recovery bonuses). Each iteration runs the chosen algorithm, a registered ponder strategy, on
    this same ``ctx``; a **verification agent** checks its solution against the constraints and gives a reward
    (a 0-100 score, read as a fraction). Iterations stop when a reward reaches ``threshold`` or after ``iterations``;
    the highest-reward answer is returned, its reward as the confidence.

    ``algorithms`` lists the arms as ``name[:param=value...]`` (the paper's are Best-of-N, Tree-of-Thought and
    REBASE; ponder has e.g. ``judge``, ``beam``, ``tot``, ``mcts``: ``cot,self-consistency:n=8,beam,tot``). ``agents``
    gives model specs for the constraint, verification and selection agents in that order, cycled (empty: the
    run's model). The algorithms themselves run on the run's model; the constraints guide verification and
    selection, not the algorithms' own prompts.
    """
    arms = parse_algorithms(algorithms)
    constraint_ctx, verifier_ctx, selector_ctx = await agent_contexts(ctx, agents, 3)
    question = problem_statement(problem)  # the agents judge the problem; the task's answer format is not theirs

    prompt = CONSTRAINT_PROMPT.format(question=question)
    (trace,) = await constraint_ctx.sample([{"role": "user", "content": prompt}], temperature=0.0)
    constraints = _clip(_role_reply(trace))

    menu = "\n".join(f"{i}. {arm.label}: {arm.info.summary}" for i, arm in enumerate(arms, 1))
    prompt = SELECTION_PROMPT.format(question=question, constraints=constraints, menu=menu)
    (trace,) = await selector_ctx.sample([{"role": "user", "content": prompt}], temperature=0.0)
    pick = next((int(m) for m in _INTEGER.findall(_role_reply(trace)) if 1 <= int(m) <= len(arms)), None)
    if pick is not None:
        arms[pick - 1].prior = 1.0

    async def verify(result: Result) -> tuple[float, str]:
        if result.answer is None:
            return 0.0, "no answer"
        prompt = VERIFICATION_PROMPT.format(question=question, constraints=constraints,
                                            solution=await _solution_text(result, ctx), answer=result.answer)
        (trace,) = await verifier_ctx.sample([{"role": "user", "content": prompt}], temperature=0.0)
        score = read_score(_role_reply(trace))
        return (score, "scored") if score is not None else (0.0, "no score in the verifier's reply")

    best: Candidate | None = None
    every: list[Trace] = []
    history: list[dict[str, Any]] = []
    stopped = "iterations"
    for _ in range(iterations):
        arm = choose(arms)
        pulled = sum(a.pulls for a in arms)
        scores = {a.label: round(a.ucb(pulled), 4) if a.pulls else None for a in arms}  # None: untried
        try:
            result = await arm.info(problem, ctx, **arm.params)
            every.extend(result.traces)
            reward, verdict = await verify(result)
        except BudgetExceeded:
            if best is None:
                raise
            stopped = "budget"
            break
        improved = best is not None and reward > best.reward
        arm.pulls += 1
        arm.total_reward += reward
        arm.recoveries += int(improved)
        history.append({"algorithm": arm.label, "answer": result.answer, "reward": reward, "verdict": verdict,
                        "ucb": scores})
        if best is None or reward > best.reward:
            best = Candidate(arm.label, result, reward)
        if reward >= threshold:
            stopped = "verified"
            break
    assert best is not None  # iterations >= 1 and the first iteration either ran or raised
    votes: dict[str, float] = {}
    for step in history:
        if step["answer"] is not None:
            votes[step["answer"]] = max(votes.get(step["answer"], 0.0), step["reward"])
    info = {
        "agents": dict(zip(("constraint", "verification", "selection"), agent_labels(agents, 3), strict=True)),
        "constraints": constraints,
        "prior": arms[pick - 1].label if pick is not None else None,
        "chosen": best.arm,
        "stopped": stopped,
        "iterations": history,
    }
    return Result(answer=best.result.answer, confidence=best.reward, votes=votes, traces=every, info=info)
