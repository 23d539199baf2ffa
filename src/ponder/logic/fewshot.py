"""Hand-written few-shot examples for the formalising strategies (``linc``, ``sat-solve``).

LINC's own prompts use eight FOLIO training problems; these eight are written for ponder in the same shape
(premises, conclusion, a formula for each) and in the syntax ``ponder.logic.parser`` reads. Their labels
(True ×3, False ×3, Unknown ×2) are checked against the prover by the tests, and the first three cover all
three labels, so any ``shots >= 3`` shows every outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.logic.prover import Label


@dataclass(frozen=True)
class FolExample:
    premises: tuple[tuple[str, str], ...]  # (text, formula)
    conclusion: tuple[str, str]
    label: Label


FOL_EXAMPLES: tuple[FolExample, ...] = (
    FolExample((("All dogs are mammals.", "all x.(Dog(x) -> Mammal(x))"),
                ("All mammals are animals.", "all x.(Mammal(x) -> Animal(x))"),
                ("Rex is a dog.", "Dog(rex)")),
               ("Rex is an animal.", "Animal(rex)"), "True"),
    FolExample((("No reptile has fur.", "all x.(Reptile(x) -> -HasFur(x))"),
                ("Every cat has fur.", "all x.(Cat(x) -> HasFur(x))"),
                ("Tom is a cat.", "Cat(tom)")),
               ("Tom is a reptile.", "Reptile(tom)"), "False"),
    FolExample((("Every student who studies passes the exam.", "all x.((Student(x) & Studies(x)) -> Passes(x))"),
                ("Mia is a student.", "Student(mia)")),
               ("Mia passes the exam.", "Passes(mia)"), "Unknown"),
    FolExample((("Each vehicle in the garage is a car or a bike.", "all x.(InGarage(x) -> (Car(x) | Bike(x)))"),
                ("The blue vehicle is in the garage.", "InGarage(blue)"),
                ("The blue vehicle is not a car.", "-Car(blue)")),
               ("The blue vehicle is a bike.", "Bike(blue)"), "True"),
    FolExample((("Anyone who teaches someone is a teacher.", "all x.(all y.(Teaches(x, y) -> Teacher(x)))"),
                ("No teacher is a child.", "all x.(Teacher(x) -> -Child(x))"),
                ("Ana teaches Ben.", "Teaches(ana, ben)")),
               ("Ana is a child.", "Child(ana)"), "False"),
    FolExample((("Some birds can swim.", "exists x.(Bird(x) & Swims(x))"),
                ("All penguins are birds.", "all x.(Penguin(x) -> Bird(x))"),
                ("Polly is a bird.", "Bird(polly)")),
               ("Polly can swim.", "Swims(polly)"), "Unknown"),
    FolExample((("Leo is a painter.", "Painter(leo)"),
                ("All painters are artists.", "all x.(Painter(x) -> Artist(x))")),
               ("There is an artist.", "exists x.Artist(x)"), "True"),
    FolExample((("Either the lamp is on or the room is dark, but not both.", "On(lamp) xor Dark(room)"),
                ("The lamp is on.", "On(lamp)")),
               ("The room is dark.", "Dark(room)"), "False"),
)


@dataclass(frozen=True)
class CnfExample:
    problem: str
    clauses: tuple[str, ...]


CNF_EXAMPLES: tuple[CnfExample, ...] = (
    CnfExample("3 friends (Ann, Ben, Cal) are deciding who comes to a party. Each of them either comes or stays "
               "home. All of these rules must hold:\n1. Ann comes, or Ben stays home.\n2. Ben comes, or Cal comes, "
               "or Ann stays home.\n3. Cal stays home.",
               ("Ann | -Ben", "Ben | Cal | -Ann", "-Cal")),
    CnfExample("Find a truth assignment to the variables x1, x2, x3 that makes every clause true.\nClauses:\n"
               "(x1 | -x2)\n(x2 | x3)\n(-x1 | -x3)",
               ("x1 | -x2", "x2 | x3", "-x1 | -x3")),
)
