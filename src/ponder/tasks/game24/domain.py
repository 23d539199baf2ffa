"""The search domain of Game-of-24-style puzzles: the ToT paper's propose and value prompts, and exact steps."""

from __future__ import annotations

from dataclasses import dataclass

from ponder.search.domain import register_domain
from ponder.tasks.game24.expression import check_expression
from ponder.tasks.game24.puzzle import Puzzle, State, apply_step, puzzle_of
from ponder.types import Problem

# The propose and value prompts of the ToT paper (princeton-nlp/tree-of-thought-llm, prompts/game24.py).
GAME24_PROPOSE = """Input: 2 8 8 14
Possible next steps:
2 + 8 = 10 (left: 8 10 14)
8 / 2 = 4 (left: 4 8 14)
14 + 2 = 16 (left: 8 8 16)
2 * 8 = 16 (left: 8 14 16)
8 - 2 = 6 (left: 6 8 14)
14 - 8 = 6 (left: 2 6 8)
14 /  2 = 7 (left: 7 8 8)
14 - 2 = 12 (left: 8 8 12)
Input: {input}
Possible next steps:
"""

GAME24_VALUE = """Evaluate if given numbers can reach 24 (sure/likely/impossible)
10 14
10 + 14 = 24
sure
11 12
11 + 12 = 23
12 - 11 = 1
11 * 12 = 132
11 / 12 = 0.91
impossible
4 4 10
4 + 4 + 10 = 8 + 10 = 18
4 * 10 - 4 = 40 - 4 = 36
(10 - 4) * 4 = 6 * 4 = 24
sure
4 9 11
9 + 11 + 4 = 20 + 4 = 24
sure
5 7 8
5 + 7 + 8 = 12 + 8 = 20
(8 - 5) * 7 = 3 * 7 = 21
I cannot obtain 24 now, but numbers are within a reasonable range
likely
5 6 6
5 + 6 + 6 = 17
(6 - 5) * 6 = 1 * 6 = 6
I cannot obtain 24 now, but numbers are within a reasonable range
likely
10 10 11
10 + 10 + 11 = 31
(11 - 10) * 10 = 10
10 10 10 are all too big
impossible
1 3 3
1 * 3 * 3 = 9
(1 + 3) * 3 = 12
1 3 3 are all too small
impossible
{input}
"""

# The same prompts for any target (countdown): the target is part of each input.
COUNTDOWN_PROPOSE = GAME24_PROPOSE.replace("Input: 2 8 8 14\n", "Input: 2 8 8 14 (target: 24)\n")

COUNTDOWN_VALUE = """Evaluate if given numbers can reach the target (sure/likely/impossible)
10 14 (target: 24)
10 + 14 = 24
sure
11 12 (target: 24)
11 + 12 = 23
12 - 11 = 1
11 * 12 = 132
11 / 12 = 0.91
impossible
3 9 (target: 27)
3 * 9 = 27
sure
4 4 10 (target: 24)
4 + 4 + 10 = 8 + 10 = 18
4 * 10 - 4 = 40 - 4 = 36
(10 - 4) * 4 = 6 * 4 = 24
sure
5 7 8 (target: 24)
5 + 7 + 8 = 12 + 8 = 20
(8 - 5) * 7 = 3 * 7 = 21
I cannot obtain 24 now, but numbers are within a reasonable range
likely
2 5 (target: 40)
2 * 5 = 10
5 - 2 = 3
2 5 are too small
impossible
{input}
"""


@dataclass(frozen=True)
class PuzzleDomain:
    """Game of 24 (the paper's prompts) or countdown (the same prompts with the target in each input)."""

    puzzle: Puzzle

    @property
    def name(self) -> str:
        return "game24" if self.puzzle.is_24 else "countdown"

    def start(self) -> State:
        return State.start(self.puzzle.numbers)

    def steps_needed(self) -> int:
        return len(self.puzzle.numbers) - 1  # each step combines two numbers into one

    def propose_prompt(self, state: State) -> str:
        template = GAME24_PROPOSE if self.puzzle.is_24 else COUNTDOWN_PROPOSE
        return template.format(input=self.puzzle.input_line(state))

    def value_prompt(self, state: State) -> str:
        template = GAME24_VALUE if self.puzzle.is_24 else COUNTDOWN_VALUE
        return template.format(input=self.puzzle.input_line(state))

    def proposals(self, reply: str) -> list[str]:
        return [line.strip() for line in reply.splitlines() if "=" in line]  # a step states "a op b = c"

    def step(self, state: State, line: str) -> tuple[State, str] | None:
        return apply_step(state, line)

    def key(self, state: State) -> tuple[object, ...]:
        return state.key()

    def show(self, state: State) -> str:
        return state.left

    def finished(self, state: State) -> bool:
        return state.done

    def solved(self, state: State) -> bool:
        return self.puzzle.solved(state)

    def answer(self, state: State) -> str:
        return state.expression()

    def verify(self, answer: str | None) -> bool:
        return check_expression(answer, self.puzzle.numbers, self.puzzle.target)


@register_domain
def puzzle_domain(problem: Problem) -> PuzzleDomain | None:
    """The domain of a game24/countdown problem (or a reasoning-gym puzzle24/countdown one)."""
    puzzle = puzzle_of(problem)
    return PuzzleDomain(puzzle) if puzzle is not None else None
