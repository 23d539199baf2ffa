"""Scripted step-by-step models for the search tests: which steps may follow which, and a judge's taste."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ponder.backends.fake import FakeBackend, Scripted
from ponder.types import GenerationRequest

JUDGE_MARK = "Next step:\n"

Steps = Mapping[str, Sequence[str | Scripted]]


def judged_step(request: GenerationRequest) -> str | None:
    """The step a JudgeScorer prompt asks about, or None for a generation request."""
    last = request.messages[-1]
    if last["role"] != "user" or JUDGE_MARK not in last["content"]:
        return None
    return last["content"].split(JUDGE_MARK, 1)[1].split("\n\nIs the next step", 1)[0]


def stepper(steps: Steps, judge: Callable[[str], bool] = lambda step: True,
            otherwise: Sequence[str | Scripted] = (), **backend: object) -> FakeBackend:
    """A fake model whose next steps depend on the solution so far.

    ``steps`` maps the solution so far (steps joined by a blank line; "" at the question) to the candidate next
    steps, served in order by sample index (cycled); other prefixes get ``otherwise``. ``judge`` says Yes or No
    to a JudgeScorer's question.
    """

    def script(request: GenerationRequest, index: int) -> str | Scripted:
        step = judged_step(request)
        if step is not None:
            return "Yes" if judge(step) else "No"
        last = request.messages[-1]
        prefix = last["content"].rstrip("\n") if last["role"] == "assistant" else ""
        options = steps.get(prefix) or otherwise
        assert options, f"the script has no step after {prefix!r}"
        return options[index % len(options)]

    return FakeBackend(script, **backend)  # type: ignore[arg-type]


# The first step the model samples leads to a wrong answer; only a search that prefers the other step finds 7.
TRAP: dict[str, list[str | Scripted]] = {
    "": [Scripted("Three plus four is eight.", 0.3), Scripted("Three plus four is seven.", 0.95)],
    "Three plus four is eight.": [Scripted("The answer is 8.", 0.9)],
    "Three plus four is seven.": [Scripted("The answer is 7.", 0.9)],
}


def likes_seven(step: str) -> bool:
    return "seven" in step or "7" in step
