"""P("Yes") from a judge's reply: normalised over yes/no variants in the top-k, text fallback flagged."""

from __future__ import annotations

import math

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.judge import judge_yes, p_yes_from_trace
from ponder.types import Trace
from tests.conftest import make_problem


def _trace(tokens: list[str], tops: list[list[tuple[str, float]]]) -> Trace:
    return Trace(text="".join(tokens), tokens=tokens, logprobs=[t[0][1] for t in tops], top_logprobs=tops)


def test_p_yes_normalises_yes_against_no_variants() -> None:
    top = [("Yes", math.log(0.5)), (" yes", math.log(0.1)), ("No", math.log(0.2)), ("Maybe", math.log(0.2))]
    judgement = p_yes_from_trace(_trace(["Yes"], [top]))
    assert judgement.from_logprobs
    assert judgement.p_yes == pytest.approx(0.6 / 0.8)


def test_p_yes_skips_leading_markup_to_the_verdict() -> None:
    tops = [[("**", math.log(0.9))], [("No", math.log(0.7)), ("Yes", math.log(0.3))]]
    judgement = p_yes_from_trace(_trace(["**", "No"], tops))
    assert judgement.p_yes == pytest.approx(0.3)


def test_another_first_word_falls_back_to_the_text() -> None:
    judgement = p_yes_from_trace(_trace(["The", " answer", " is", " yes"], [[("The", -0.1)]] * 4))
    assert (judgement.p_yes, judgement.from_logprobs) == (1.0, False)


async def test_judge_without_logprobs_reads_text_and_says_so() -> None:
    ctx = Ctx(FakeBackend(["No, the step is wrong."], logprobs=False), make_problem())
    judgement = await judge_yes(ctx, [{"role": "user", "content": "Is it right?"}])
    assert (judgement.p_yes, judgement.from_logprobs) == (0.0, False)
    assert ctx.usage.calls == 1 and ctx.calls[0].request.temperature == 0.0
