"""Neuro-symbolic reasoning support: a first-order syntax with a hand-written parser, an entailment prover
(grounding + python-sat), CNF tools, and generators of logic problems with exactly computed labels.

    from ponder.logic import decide_text
    decide_text(["all x.(Man(x) -> Mortal(x))", "Man(socrates)"], "Mortal(socrates)").label  # "True"
"""

from ponder.logic.errors import InconsistentPremises, Limits, LogicError, ParseError, SizeError, Undecided
from ponder.logic.parser import parse_formula
from ponder.logic.prover import LABELS, Decision, Label, decide, decide_text

__all__ = [
    "LABELS",
    "Decision",
    "InconsistentPremises",
    "Label",
    "Limits",
    "LogicError",
    "ParseError",
    "SizeError",
    "Undecided",
    "decide",
    "decide_text",
    "parse_formula",
]
