"""Generated FOL problems: seeded, balanced, well-formed, and labelled as the prover (and a rule) says."""

from __future__ import annotations

from collections import Counter

from ponder.logic import decide_text, parse_formula
from ponder.logic.generate import item


def test_items_are_seeded_and_depend_only_on_seed_and_index() -> None:
    assert item(0, 5) == item(0, 5)
    assert item(0, 5) != item(1, 5)
    assert [item(3, i).label for i in range(6)] == ["True", "False", "Unknown"] * 2


def test_labels_are_the_provers_and_need_a_rule() -> None:
    labels: Counter[str] = Counter()
    for i in range(30):
        it = item(11, i)
        premises = [p.fol for p in it.premises]
        decision = decide_text(premises, it.conclusion.fol)
        assert decision.label == it.label and decision.exact
        labels[it.label] += 1
        assert it.conclusion not in it.premises
        assert 4 <= len(premises) <= 6 and all(p.text.endswith(".") for p in it.premises)
        if it.label != "Unknown":  # the facts alone do not settle it: at least one rule is used
            facts = [p for p in premises if "->" not in p]
            assert decide_text(facts, it.conclusion.fol).label != it.label
    assert labels == Counter({"True": 10, "False": 10, "Unknown": 10})


def test_every_statement_has_a_parseable_formula_naming_its_people() -> None:
    for i in range(12):
        it = item(2, i)
        for s in [*it.premises, it.conclusion]:
            f = parse_formula(s.fol)
            assert f is not None
            for word in s.text.rstrip(".").split():
                if word[0].isupper() and word not in ("All", "Every", "Everyone", "No", "Someone", "If"):
                    assert word.lower() in s.fol.replace(",", " ").replace("(", " ").replace(")", " ").split()
