from __future__ import annotations

import numpy as np
import pytest

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.strategies import get_strategy
from ponder.strategies.rpc import WeibullMixture, fit_weibull_mixture, prune_mask
from tests.conftest import make_problem


def test_weibull_mixture_recovers_two_components() -> None:
    rng = np.random.default_rng(0)
    low = 0.3 * rng.weibull(6.0, 300)
    high = np.minimum(0.85 * rng.weibull(12.0, 200), 1.0)
    mixture = fit_weibull_mixture(np.concatenate([low, high]))
    assert mixture is not None
    assert mixture.weight_low == pytest.approx(0.6, abs=0.05)
    assert mixture.shape_low == pytest.approx(6.0, rel=0.2) and mixture.scale_low == pytest.approx(0.3, rel=0.05)
    assert mixture.shape_high == pytest.approx(12.0, rel=0.25) and mixture.scale_high == pytest.approx(0.85, rel=0.05)
    assert WeibullMixture.mean(mixture.shape_low, mixture.scale_low) < 0.3
    posterior = mixture.posterior_low(np.array([0.28, 0.82]))
    assert posterior[0] > 0.99 and posterior[1] < 0.01


def test_degenerate_samples_are_not_pruned() -> None:
    assert fit_weibull_mixture(np.array([0.5, 0.5, 0.5, 0.5])) is None
    assert fit_weibull_mixture(np.array([0.2, 0.9])) is None
    keep, mixture = prune_mask(np.array([0.5, 0.5, 0.5]))
    assert keep.all() and mixture is None


def test_pruning_drops_the_low_component_below_the_mean() -> None:
    p = np.array([0.28, 0.3, 0.31, 0.29, 0.3, 0.32, 0.27, 0.3, 0.9, 0.88, 0.91, 0.6])
    keep, mixture = prune_mask(p)
    assert mixture is not None
    assert not keep[:8].any() and keep[8:].all()  # 0.6 is above the mean (0.45), so it stays


def bimodal_script() -> list[Scripted]:
    # twelve low-probability paths say 8, three high-probability ones say 7; every text is distinct
    unsure = [Scripted(f"Guess number {i}: maybe 8. The answer is 8.", 0.3) for i in range(12)]
    sure = [Scripted(f"Check {i}: 3 + 4 = 7. The answer is 7.", 0.9) for i in range(3)]
    return unsure[:4] + sure[:1] + unsure[4:8] + sure[1:2] + unsure[8:] + sure[2:]


async def test_rpc_prunes_the_low_component_and_changes_the_answer() -> None:
    problem = make_problem()
    majority = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(bimodal_script()), problem), n=15)
    assert majority.answer == "8"
    # perplexity consistency alone: 12 x 0.3 still outweighs 3 x 0.9
    unpruned = await get_strategy("rpc")(problem, Ctx(FakeBackend(bimodal_script()), problem), n=15, prune=False)
    assert unpruned.answer == "8" and unpruned.info["pruned"] == 0
    result = await get_strategy("rpc")(problem, Ctx(FakeBackend(bimodal_script()), problem), n=15)
    assert result.answer == "7" and result.info["pruned"] == 12
    assert result.confidence == pytest.approx(1.0) and result.votes == {"7": pytest.approx(1.0)}
    weibull = result.info["weibull"]
    assert isinstance(weibull, dict) and weibull["mean_low"] < 0.4 < weibull["mean_high"]


async def test_identical_completions_count_once() -> None:
    problem = make_problem()
    script = [Scripted("The answer is 8.", 0.5), Scripted("First 3 + 4 = 7. The answer is 7.", 0.5),
              Scripted("The answer is 8.", 0.5), Scripted("Then 4 + 3 = 7. The answer is 7.", 0.5),
              Scripted("The answer is 8.", 0.5)]
    majority = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(script), problem), n=5)
    assert majority.answer == "8"
    result = await get_strategy("rpc")(problem, Ctx(FakeBackend(script), problem), n=5, prune=False)
    assert result.answer == "7"
    assert result.votes["7"] == pytest.approx(2 / 3, abs=0.05)
