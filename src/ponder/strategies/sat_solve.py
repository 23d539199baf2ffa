"""SAT-solve: the model writes a constraint problem as CNF clauses; python-sat solves them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge, Interval

from ponder.context import Ctx
from ponder.logic import LogicError, cnf
from ponder.logic.fewshot import CNF_EXAMPLES
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Message, Problem, Result, Trace

INSTRUCTIONS = (
    "Translate the constraint problem into propositional clauses for a SAT solver; do not solve it.\n"
    "Write 'CLAUSES:' and then one clause per line: the clause's literals separated by ' | ', each a variable "
    "name, with '-' in front for 'not' (for a person, the name means 'comes' and -name 'stays home'). Write one "
    "clause for every rule, then 'END' on its own line."
)
END = "END"
UNSAT = "UNSAT"


def sat_messages(question: str, shots: int) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": INSTRUCTIONS}]
    for example in CNF_EXAMPLES[:shots]:
        messages.append({"role": "user", "content": example.problem})
        messages.append({"role": "assistant", "content": "CLAUSES:\n" + "\n".join(example.clauses) + f"\n{END}"})
    messages.append({"role": "user", "content": question})
    return messages


def clause_text(text: str) -> str:
    """The lines after the last ``CLAUSES:`` up to ``END`` (the whole text if there is no header)."""
    _, sep, tail = text.rpartition("CLAUSES:")
    body = tail if sep else text
    lines = []
    for line in body.splitlines():
        if line.strip() == END:
            break
        lines.append(line)
    return "\n".join(lines)


@dataclass
class Formalisation:
    """One sampled translation and what the solver made of it."""

    trace: Trace
    cnf: cnf.Cnf | None = None
    model: list[int] | None = None  # the solver's model; None if unsatisfiable or not parsed
    error: LogicError | None = None

    @property
    def verdict(self) -> str | None:
        if self.cnf is None:
            return None
        return "SAT" if self.model is not None else UNSAT


def _formalise(trace: Trace, variables: Sequence[str] | None) -> Formalisation:
    result = Formalisation(trace)
    try:
        result.cnf = cnf.parse_clauses(clause_text(trace.text), variables)
        result.model = cnf.solve(result.cnf.clauses)
    except LogicError as e:
        result.cnf, result.error = None, e
    return result


def _answer(true_names: Sequence[str], variables: Sequence[str]) -> str:
    order = {name: i for i, name in enumerate(variables)}
    return ", ".join(sorted(true_names, key=lambda n: order.get(n, len(order)))) or "none"


@strategy("sat-solve")
async def sat_solve(
    problem: Problem,
    ctx: Ctx,
    k: Annotated[int, Ge(1), "CNF translations sampled and solved"] = 5,
    shots: Annotated[int, Interval(ge=0, le=len(CNF_EXAMPLES)), "worked examples in the prompt"] = 2,
    refine: Annotated[int, Ge(0), "rounds a failed translation is sent back with its error (Logic-LM)"] = 0,
) -> Result:
    """SAT-solve (SatLM, Ye et al., 2023; Logic-LM, Pan et al., 2023): the model formalises, a SAT solver solves.

    Declarative prompting as in "SatLM: Satisfiability-Aided Language Models Using Declarative Prompting": the
    model does not search for an assignment; it only writes the problem's constraints as CNF clauses (``shots``
    worked examples show the format), and python-sat finds a model or proves there is none. ``k`` translations
    are sampled; each parsed one gives a verdict (SAT with the solver's assignment, or UNSAT). With
    ``refine > 0``, a translation that fails to parse is sent back with the parser's error message for up to
    ``refine`` rounds (Logic-LM's self-refinement). The majority verdict wins (unparsed translations count as
    no vote); for SAT the answer is the solver assignment that satisfies the most of the winning translations,
    as the true variables (or "none"), and for UNSAT it is "UNSAT". Confidence is the winner's share of all
    ``k``. With ``meta["sat"]["variables"]`` (the sat tasks) names outside the problem's variables are parse
    errors. Our defaults: k=5, 2 shots, no refinement (the papers use larger models and their own prompts).
    """
    variables = (problem.meta.get("sat") or {}).get("variables")
    messages = sat_messages(problem.question, shots)
    traces = await ctx.sample(messages, n=k, stop=[f"\n{END}"])
    done = list(await asyncio.gather(*(asyncio.to_thread(_formalise, t, variables) for t in traces)))
    all_traces = list(traces)
    for _ in range(refine):
        failed = [i for i, f in enumerate(done) if f.verdict is None]
        if not failed:
            break
        retries = await asyncio.gather(*(ctx.sample(_feedback(messages, done[i]), n=1, stop=[f"\n{END}"])
                                         for i in failed))
        for i, (trace,) in zip(failed, retries, strict=True):
            all_traces.append(trace)
            done[i] = await asyncio.to_thread(_formalise, trace, variables)
    for trace in all_traces:
        trace.answer, trace.aux = None, True  # superseded attempts are not samples; final ones are, below
    for f in done:
        f.trace.answer, f.trace.aux = _own_answer(f, variables), False
    verdicts = [f.verdict for f in done]
    result = await vote(verdicts, _same)
    info: dict[str, object] = {
        "verdicts": verdicts,
        "decided": sum(v is not None for v in verdicts),
        "failures": dict(Counter(type(f.error).__name__ for f in done if f.error is not None)),
        "errors": [str(f.error) for f in done if f.error is not None][:5],
    }
    answer, votes = result.winner, dict(result.tally)
    sat = [f for f in done if f.verdict == "SAT"]
    if sat:  # the SAT side speaks through its consensus assignment
        consensus, info["agreement"] = _consensus(sat, variables)
        votes = {consensus if key == "SAT" else key: weight for key, weight in votes.items()}
        answer = consensus if answer == "SAT" else answer
    return Result(answer=answer, confidence=result.share, votes=votes, traces=all_traces, info=info)


def _feedback(messages: list[Message], failed: Formalisation) -> list[Message]:
    return [*messages, {"role": "assistant", "content": failed.trace.text},
            {"role": "user", "content": f"The solver could not read those clauses: {failed.error}. Write all the "
                                        "clauses again, corrected, in the same format."}]


def _own_answer(f: Formalisation, variables: Sequence[str] | None) -> str | None:
    if f.cnf is None:
        return None
    if f.model is None:
        return UNSAT
    return _answer(f.cnf.true_names(f.model), variables or f.cnf.names)


def _consensus(sat: list[Formalisation], variables: Sequence[str] | None) -> tuple[str, int]:
    """The solver assignment satisfying the most translations (ties: the earliest), and how many it satisfies."""
    best, best_score = "", -1
    for f in sat:
        assert f.cnf is not None and f.model is not None
        true = set(f.cnf.true_names(f.model))
        score = sum(_satisfied(true, other.cnf) for other in sat if other.cnf is not None)
        if score > best_score:
            best, best_score = _answer(sorted(true), variables or f.cnf.names), score
    return best, best_score


def _satisfied(true: set[str], formula: cnf.Cnf) -> bool:
    return cnf.satisfies([i for i, name in enumerate(formula.names, start=1) if name in true], formula.clauses)


async def _same(a: str, b: str) -> bool:
    return a == b

