from __future__ import annotations

import math

import numpy as np
import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx, Sampling
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.adaptive import leader_probability
from tests.conftest import make_problem


def beta_tail(a: int, b: int, points: int = 200_000) -> float:
    """P(X > 1/2) for X ~ Beta(a, b), by the midpoint rule on the density."""
    x = 0.5 + (np.arange(points) + 0.5) * (0.5 / points)
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    density = np.exp(log_norm + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x))
    return float(density.sum() * 0.5 / points)


def test_leader_probability_is_the_beta_tail() -> None:
    assert leader_probability(4, 0) == pytest.approx(31 / 32)
    assert leader_probability(3, 0) == pytest.approx(15 / 16)
    assert leader_probability(2, 2) == pytest.approx(0.5)
    for v1, v2 in [(3, 1), (6, 2), (9, 3), (5, 4), (20, 11)]:
        assert leader_probability(v1, v2) == pytest.approx(beta_tail(v1 + 1, v2 + 1), abs=1e-6)


async def test_unanimous_samples_stop_after_the_first_batch() -> None:
    backend = FakeBackend(["The answer is 7."])
    problem = make_problem()
    result = await get_strategy("adaptive-consistency")(problem, Ctx(backend, problem))
    assert result.answer == "7" and len(result.traces) == 4 and len(backend.calls) == 1
    assert result.info["stopped_by"] == "threshold" and result.info["leader_probability"] > 0.95


async def test_a_split_vote_keeps_sampling() -> None:
    backend = FakeBackend(["The answer is 7.", "The answer is 8."])
    problem = make_problem()
    result = await get_strategy("adaptive-consistency")(problem, Ctx(backend, problem), max_n=20)
    assert len(result.traces) == 20 and len(backend.calls) == 5 and result.info["stopped_by"] == "max_n"


async def test_a_clear_but_not_unanimous_majority_stops_when_settled() -> None:
    # 3:1 per batch: P = 0.81 after 4 samples, 0.91 after 8, 0.954 after 12
    backend = FakeBackend(["The answer is 7.", "The answer is 7.", "The answer is 8.", "The answer is 7."])
    problem = make_problem()
    result = await get_strategy("adaptive-consistency")(problem, Ctx(backend, problem), max_n=40)
    assert result.answer == "7" and len(result.traces) == 12 and result.confidence == pytest.approx(0.75)
    single = await get_strategy("adaptive-consistency")(problem, Ctx(FakeBackend(backend.script), problem),
                                                        batch=1, threshold=0.9)
    # one at a time: 7, 7, 8, 7, 7 leaves P(4:1) = 0.89; the sixth sample, a 7, gives P(5:1) = 0.94
    assert len(single.traces) == 6
    assert single.info["leader_probability"] > 0.9


async def test_budget_and_parameters() -> None:
    problem = make_problem()
    # the first batch of 4 samples of up to 12 tokens fits in 48; the second cannot start
    ctx = Ctx(FakeBackend(["a b c d e f The answer is 7.", "The answer is 8."]), problem, token_budget=48,
              sampling=Sampling(max_tokens=12))
    result = await get_strategy("adaptive-consistency")(problem, ctx)
    assert result.info["stopped_by"] == "token_budget" and len(result.traces) == 4
    with pytest.raises(BudgetExceeded):
        await get_strategy("adaptive-consistency")(problem, ctx)
    with pytest.raises(ConfigError):
        await get_strategy("adaptive-consistency")(problem, ctx, threshold=1.5)
