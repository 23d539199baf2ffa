from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ponder import confidence as conf
from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.strategies import get_strategy
from ponder.types import TokenLogprob
from tests.conftest import make_problem


@dataclass
class AnswerShy(FakeBackend):
    """A fake model whose certainty about the digits it writes is set per sample, apart from the rest."""

    digit_confidence: dict[int, float] = field(default_factory=dict)

    def _token(self, piece: str, confidence: float, index: int, position: int) -> TokenLogprob:
        if piece.strip().isdigit() and index in self.digit_confidence:
            confidence = self.digit_confidence[index]
        return super()._token(piece, confidence, index, position)


SCRIPT = [Scripted("I am completely sure of this. The answer is 8.", 0.95),
          Scripted("Hmm, not sure, maybe. The answer is 7.", 0.4),
          Scripted("I am sure about all of it. The answer is 8.", 0.9)]


async def test_crew_picks_the_sample_most_sure_of_its_answer() -> None:
    problem = make_problem()
    backend = AnswerShy(SCRIPT, digit_confidence={0: 0.2, 1: 0.95, 2: 0.25})
    majority = await get_strategy("self-consistency")(problem, Ctx(backend, problem), n=3)
    assert majority.answer == "8"
    # whole-trace confidence would follow the sure-sounding 8s...
    ctx = Ctx(AnswerShy(SCRIPT, digit_confidence={0: 0.2, 1: 0.95, 2: 0.25}), problem)
    traces = await ctx.sample(n=3)
    assert conf.best_index(traces, "mean") == 0
    # ...CRew reads only the answer's tokens
    result = await get_strategy("crew")(problem, Ctx(AnswerShy(SCRIPT, digit_confidence={0: 0.2, 1: 0.95, 2: 0.25}),
                                                     problem), n=3)
    assert result.answer == "7" and result.info["best"] == 1
    assert result.confidence == pytest.approx(0.95, abs=0.1)
