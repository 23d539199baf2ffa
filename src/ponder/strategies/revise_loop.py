"""The check-and-revise loop shared by Self-Refine and CQoT: draft, check, stop or improve, within a token cap.

Both strategies have the same shape: write a draft, have the model check it, stop when the check passes, else
write an improved draft and check again, up to ``max_iters`` improvements. They differ only in what a draft is
(an answer, a reasoning plan), how it is checked (a critique, critical questions) and how it is improved (refine
with the feedback, or draw a new plan), which they pass in as three coroutines.

``TokenCap`` bounds the completion tokens of the loop: a strategy's own cap and the problem's ``ctx`` budget,
whichever is smaller, less any tokens held back for a call after the loop. A step that cannot afford its call
raises ``BudgetExceeded``; the loop then stops and keeps what it has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ponder.errors import BudgetExceeded
from ponder.types import Trace

if TYPE_CHECKING:
    from ponder.context import Ctx

MIN_CALL_TOKENS = 8  # a call that could write fewer tokens than this is not worth making
Stopped = Literal["passed", "max_iters", "budget"]


class TokenCap:
    """Completion tokens a strategy may still spend: ``cap`` (0 = none) and the problem's budget, less ``reserve``."""

    def __init__(self, ctx: Ctx, cap: int = 0, *, reserve: int = 0) -> None:
        self.ctx = ctx
        self.cap = cap or None
        self.reserve = reserve
        self._start = ctx.usage.completion_tokens

    @property
    def spent(self) -> int:
        return self.ctx.usage.completion_tokens - self._start

    def left(self) -> int | None:
        caps = [c for c in (self.ctx.budget_left, None if self.cap is None else self.cap - self.spent) if c is not None]
        return None if not caps else max(min(caps) - self.reserve, 0)

    def limit(self, want: int) -> int:
        """The most tokens the next call may write (``want`` shrunk to what is left); raises when too few are left."""
        left = self.left()
        allowed = want if left is None else min(want, left)
        if allowed < min(MIN_CALL_TOKENS, want):
            raise BudgetExceeded(f"token cap reached: {left} completion tokens left, a call needs {want}")
        return allowed

    def need(self, tokens: int) -> None:
        """Raise unless ``tokens`` can be spent in full (for a group of calls made at once)."""
        left = self.left()
        if left is not None and left < tokens:
            raise BudgetExceeded(f"token cap reached: {left} completion tokens left, the next calls need {tokens}")


@dataclass
class Verdict:
    """The outcome of checking one draft."""

    passed: bool
    score: float | None  # in [0, 1], higher is better; None when the check gives no graded score
    feedback: str  # what the improver is told
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Round:
    draft: Trace
    verdict: Verdict | None = None  # None: never checked (the last draft when it is not checked, or out of budget)


@dataclass
class Loop:
    rounds: list[Round]
    stopped: Stopped

    @property
    def improvements(self) -> int:
        return len(self.rounds) - 1


Draft = Callable[[], Awaitable[Trace]]
Check = Callable[[list[Round]], Awaitable[Verdict]]  # checks rounds[-1].draft, may read earlier rounds
Improve = Callable[[list[Round]], Awaitable[Trace]]  # writes the next draft from the rounds so far


async def revise(draft: Draft, check: Check, improve: Improve, *, max_iters: int, check_last: bool) -> Loop:
    """Draft, then up to ``max_iters`` times: check the newest draft, stop if it passed, else improve it.

    ``check_last`` decides whether the draft made by the last allowed improvement is checked too (needed when the
    final answer is chosen by score, or when a passing check changes what follows). A ``BudgetExceeded`` from any
    step ends the loop with the rounds made so far; one from the first draft propagates (there is nothing to keep).
    """
    rounds = [Round(await draft())]
    stopped: Stopped = "max_iters"
    try:
        for improvement in range(max_iters + 1):
            last = improvement == max_iters
            if last and not check_last:
                break
            rounds[-1].verdict = await check(rounds)
            if rounds[-1].verdict.passed:
                stopped = "passed"
                break
            if last:
                break
            rounds.append(Round(await improve(rounds)))
    except BudgetExceeded:
        stopped = "budget"
    return Loop(rounds, stopped)
