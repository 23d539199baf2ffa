"""Logic tasks with exact checkers: random 3-SAT (``sat``, ``sat-story``) and first-order entailment (``logic``).

``sat`` / ``sat-story``: random 3-CNF over 6 variables with 26 clauses (ratio 4.33, near the 3-SAT phase
transition at about 4.26), seeded; even-numbered problems are satisfiable and odd-numbered ones are not
(drawn until the solver agrees), so a run sees both. ``sat`` shows the clauses as formulas over x1..x6,
``sat-story`` as party rules over six people ("Ann comes, or Ben stays home, or Cal comes."; the
natural-language format of SATQuest and NLSat). The model answers with the true variables (or people who
come) or UNSAT/impossible. The checker is exact: an assignment is right iff it satisfies every clause
(checked directly), an UNSAT answer iff python-sat finds the clauses unsatisfiable.

``logic``: FOLIO/ProofWriter-style premises and a conclusion labelled True/False/Unknown; labels are computed
by ``ponder.logic``'s exact prover and balanced by index (see ``ponder.logic.generate``). The checker compares
labels exactly ("Uncertain", FOLIO's word, counts as Unknown). The formal version of every statement is in
``meta`` for strategies and tests. (reasoning-gym's syllogism / propositional_logic / knights_knaves were not
used: their gold answers are Yes/No or assignments, not three-way entailment labels.)
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from ponder.logic import cnf
from ponder.logic.errors import ParseError
from ponder.logic.generate import item as logic_item
from ponder.tasks.registry import DEFAULT_SIZE, LoadOptions, TaskSpec, register_task
from ponder.types import Problem

SAT_VARIABLES = 6
SAT_CLAUSES = 26
SAT_K = 3
PEOPLE = ("Ann", "Ben", "Cal", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kim", "Lou")
_ANSWER = re.compile(r"ANSWER\s*:", re.IGNORECASE)
_LABEL = re.compile(r"\b(true|false|unknown|uncertain)\b", re.IGNORECASE)


def extract_tagged(text: str) -> str | None:
    """The text after the last ``ANSWER:`` (to the end of its line), or None."""
    tail = text[-20000:]
    found = list(_ANSWER.finditer(tail))
    if not found:
        return None
    return tail[found[-1].end() :].split("\n", 1)[0].strip() or None


def normalize_label(answer: str | None) -> str | None:
    """``True`` / ``False`` / ``Unknown`` for an answer naming one label (Uncertain means Unknown), else None."""
    if answer is None:
        return None
    words = {w.lower() for w in _LABEL.findall(answer)}
    words = {"unknown" if w == "uncertain" else w for w in words}
    return words.pop().capitalize() if len(words) == 1 else None


def extract_label(text: str) -> str | None:
    """The label after the last ``ANSWER:``, else the last True/False/Unknown/Uncertain word."""
    tagged = normalize_label(extract_tagged(text))
    if tagged is not None:
        return tagged
    words = _LABEL.findall(text[-20000:])
    return normalize_label(words[-1]) if words else None


# ---- SAT -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SatInstance:
    clauses: list[list[int]]
    model: list[int] | None  # a satisfying assignment from the solver, or None if unsatisfiable


def sat_instance(seed: int, index: int) -> SatInstance:
    """Instance ``index`` under ``seed``: satisfiable iff ``index`` is even."""
    rng = random.Random(f"ponder/sat/{seed}/{index}")
    want = index % 2 == 0
    while True:  # P(SAT) is about 0.7 at this size, so a few draws suffice
        clauses = cnf.random_kcnf(rng, SAT_VARIABLES, SAT_CLAUSES, SAT_K)
        model = cnf.solve(clauses)
        if (model is not None) == want:
            return SatInstance(clauses, model)


class SatChecker:
    """Exact: an assignment must satisfy every clause; "UNSAT" is right iff the solver finds no model."""

    def __init__(self, clauses: list[list[int]], variables: list[str]) -> None:
        self.clauses = clauses
        self.variables = variables

    def check(self, answer: str | None) -> bool:
        if answer is None:
            return False
        try:
            true = cnf.parse_assignment(answer, self.variables)
        except ParseError:
            return False
        if true is None:
            return cnf.solve(self.clauses) is None
        return cnf.satisfies([self.variables.index(v) + 1 for v in true], self.clauses)

    async def __call__(self, answer: str | None, problem: Problem) -> bool:
        return await asyncio.to_thread(self.check, answer)


def _literal_text(lit: int, names: list[str], story: bool) -> str:
    name = names[abs(lit) - 1]
    if story:
        return f"{name} comes" if lit > 0 else f"{name} stays home"
    return name if lit > 0 else f"-{name}"


def sat_prompt(clauses: list[list[int]], names: list[str], story: bool) -> str:
    if story:
        rules = "\n".join(f"{i}. " + ", or ".join(_literal_text(lit, names, True) for lit in c) + "."
                          for i, c in enumerate(clauses, start=1))
        return (f"{len(names)} friends ({', '.join(names)}) are deciding who comes to a party. Each of them either "
                f"comes or stays home. All of these rules must hold:\n{rules}\n"
                "Find a choice of who comes that satisfies every rule, or say that it is impossible. End with "
                "'ANSWER: ' and the names of the people who come, separated by commas ('ANSWER: none' if nobody "
                "comes), or 'ANSWER: impossible'.")
    lines = "\n".join("(" + " | ".join(_literal_text(lit, names, False) for lit in c) + ")" for c in clauses)
    return (f"Find a truth assignment to the variables {', '.join(names)} that makes every clause true, or say "
            "that there is none. A clause is true when at least one of its literals is true; -x means 'not x'.\n"
            f"Clauses:\n{lines}\n"
            "End with 'ANSWER: ' and the variables that are true, separated by commas ('ANSWER: none' if all "
            "are false), or 'ANSWER: UNSAT'.")


def load_sat(options: LoadOptions, story: bool) -> list[Problem]:
    size = options.size if options.size is not None else DEFAULT_SIZE
    task = "sat-story" if story else "sat"
    problems = []
    for i in options.window(size):
        instance = sat_instance(options.seed, i)
        rng = random.Random(f"ponder/sat-names/{options.seed}/{i}")
        names = rng.sample(PEOPLE, SAT_VARIABLES) if story else [f"x{v}" for v in range(1, SAT_VARIABLES + 1)]
        if instance.model is None:
            gold = "impossible" if story else "UNSAT"
        else:
            gold = ", ".join(names[lit - 1] for lit in instance.model if lit > 0) or "none"
        problems.append(Problem(
            id=f"{task}/seed{options.seed}/{i}",
            messages=[{"role": "user", "content": sat_prompt(instance.clauses, names, story)}],
            gold=gold,
            checker=SatChecker(instance.clauses, names),
            extract=extract_tagged,
            meta={"seed": options.seed, "index": i, "sat": {
                "variables": names, "clauses": instance.clauses, "satisfiable": instance.model is not None,
                "format": "story" if story else "formula"}},
        ))
    return problems


# ---- first-order logic ---------------------------------------------------------------------------

LOGIC_INSTRUCTION = ("Based only on the premises, is the conclusion True, False, or Unknown? Think it through, "
                     "then end with 'ANSWER: True', 'ANSWER: False' or 'ANSWER: Unknown'.")


async def check_label(answer: str | None, problem: Problem) -> bool:
    """Exact label match."""
    return normalize_label(answer) is not None and normalize_label(answer) == problem.gold


def load_logic(options: LoadOptions) -> list[Problem]:
    size = options.size if options.size is not None else DEFAULT_SIZE
    problems = []
    for i in options.window(size):
        it = logic_item(options.seed, i)
        premises = "\n".join(f"{n}. {p.text}" for n, p in enumerate(it.premises, start=1))
        question = f"Premises:\n{premises}\nConclusion: {it.conclusion.text}\n{LOGIC_INSTRUCTION}"
        problems.append(Problem(
            id=f"logic/seed{options.seed}/{i}",
            messages=[{"role": "user", "content": question}],
            gold=it.label,
            checker=check_label,
            extract=extract_label,
            meta={"seed": options.seed, "index": i,
                  "premises": [p.text for p in it.premises], "conclusion": it.conclusion.text,
                  "premises_fol": [p.fol for p in it.premises], "conclusion_fol": it.conclusion.fol},
        ))
    return problems


def _sat_loader(story: bool) -> Callable[[LoadOptions], list[Problem]]:
    return lambda options: load_sat(options, story)


_GENERATED = f"generated from the seed (default size {DEFAULT_SIZE})"
register_task(TaskSpec(
    name="sat", description=f"random 3-SAT, {SAT_VARIABLES} variables, {SAT_CLAUSES} clauses, half unsatisfiable; "
    "answer a satisfying assignment or UNSAT (exact checker, python-sat)",
    source="generated", data=_GENERATED, max_tokens=512, loader=_sat_loader(False)))
register_task(TaskSpec(
    name="sat-story", description="the sat instances told as party rules over six people (natural language)",
    source="generated", data=_GENERATED, max_tokens=512, loader=_sat_loader(True)))
register_task(TaskSpec(
    name="logic", description="FOLIO-style premises and conclusion: True, False or Unknown (labels proved exactly)",
    source="generated", data=_GENERATED, max_tokens=384, loader=load_logic))
