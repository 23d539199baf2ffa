from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx, Sampling
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.router import best_gain, saturation_curve, saturation_point
from ponder.types import GenerationRequest
from tests.conftest import make_problem


def said(answer: int, confidence: float = 0.8) -> Scripted:
    return Scripted(f"Adding the numbers carefully. The answer is {answer}.", confidence)


def scripted(pilot: Sequence[Scripted], then: Sequence[Scripted]) -> Callable[[GenerationRequest, int], Scripted]:
    """The first samples are the pilot; later ones cycle through ``then``."""

    def script(request: GenerationRequest, index: int) -> Scripted:
        return pilot[index] if index < len(pilot) else then[(index - len(pilot)) % len(then)]

    return script


async def run(backend: FakeBackend, **params: object) -> tuple[Ctx, object]:
    problem = make_problem()
    ctx = Ctx(backend, problem)
    return ctx, await get_strategy("router")(problem, ctx, **params)


# ---- the saturation estimate ----------------------------------------------------------------------


def test_saturation_now_is_the_posterior_chance_that_the_leader_is_the_mode() -> None:
    mpmath = pytest.importorskip("mpmath")
    # One answer seen k times: the only contender is a not-yet-seen answer, and p_seen / (p_seen + p_unseen)
    # follows Beta(k + 1/2, 1/2), so F(now) = P(Beta(k + 1/2, 1/2) > 1/2).
    for k, unanswered in [(1, 0), (2, 2), (4, 0), (8, 3)]:
        exact = float(mpmath.betainc(k + 0.5, 0.5, 0.5, 1, regularized=True))
        (now,) = saturation_curve([k], unanswered, [k + unanswered])
        assert now == pytest.approx(exact, abs=0.01), k


def test_saturation_curve_rises_for_a_split_vote_and_flattens() -> None:
    grid = list(range(6, 67, 4))
    split = saturation_curve([3, 3], 0, grid)
    assert split[0] < 0.5  # a tie: the leader by order of appearance is the mode about half the time
    assert split[1] - split[0] > 0.1 and split[-1] - split[-2] < 0.02 and split[-1] > 0.8
    # a clear vote is saturated already: more samples cannot be expected to change it
    clear = saturation_curve([6], 0, grid)
    assert clear[0] > 0.98 and max(clear) - min(clear) < 0.01
    assert best_gain(grid, clear, 4) < 0.01 and saturation_point(grid, clear, 0.01, 4) == 6
    assert best_gain(grid, split, 4) > 0.1 and 6 < saturation_point(grid, split, 0.01, 4) <= 66


def test_a_lead_one_step_cannot_flip_still_counts_as_unsaturated() -> None:
    # a 5:2:1 lead rarely flips within one step of 4 samples, so the next step gains little; later ones more
    grid = list(range(8, 65, 4))
    curve = saturation_curve([5, 2, 1], 0, grid)
    assert curve[1] - curve[0] < 0.004 < 0.006 < best_gain(grid, curve, 4)
    assert saturation_point(grid, curve, 0.005, 4) > 8


# ---- routing --------------------------------------------------------------------------------------


async def test_an_easy_problem_stops_at_the_pilot() -> None:
    backend = FakeBackend([said(7)])
    ctx, result = await run(backend)
    assert result.answer == "7" and len(result.traces) == 4 and len(backend.calls) == 1
    assert result.info["decision"] == "stop at pilot" and result.info["difficulty"]["band"] == "easy"
    assert ctx.usage.traces == 4


async def test_more_samples_overturn_a_wrong_pilot_majority_and_the_pilot_keeps_its_votes() -> None:
    pilot = [said(8), said(8), said(7), said(9)]
    script = scripted(pilot, [said(7), said(7), said(8), said(7)])
    problem = make_problem()
    alone = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(script), problem), n=4)
    assert alone.answer == "8"  # what stopping at the pilot would say
    ctx, result = await run(FakeBackend(script), strategies="self-consistency", max_n=32)
    assert result.answer == "7"
    info = result.info
    assert info["decision"] == "self-consistency" and info["difficulty"]["agreement"] == 0.5
    samples = info["samples"]
    assert 8 <= samples <= 32 and len(result.traces) == samples == ctx.usage.traces  # no sample is wasted
    # the pilot's votes are in the final tally: eight 8s would be two too many for the later samples alone
    later = samples - 4
    assert result.votes["8"] == 2 + later // 4 and result.votes["7"] == 1 + later - later // 4


async def test_confidence_can_make_a_three_to_one_pilot_not_easy() -> None:
    sure_minority = [said(8, 0.3), said(8, 0.3), said(7, 0.95), said(8, 0.3)]
    _, trusted = await run(FakeBackend(scripted([said(8), said(8), said(7), said(8)], [said(8)])))
    assert trusted.info["decision"] == "stop at pilot"  # 3 of 4 agree and the dissenter is no surer
    _, doubted = await run(FakeBackend(scripted(sure_minority, [said(8, 0.3)])), strategies="self-consistency")
    difficulty = doubted.info["difficulty"]
    assert difficulty["agreement"] == 0.75 and difficulty["weighted_agreement"] < 0.75
    assert doubted.info["decision"] == "self-consistency" and doubted.info["samples"] > 4
    # without logprobs the same pilot is easy: only the vote is left to judge by
    _, blind = await run(FakeBackend(scripted(sure_minority, [said(8, 0.3)]), logprobs=False))
    assert blind.info["decision"] == "stop at pilot" and blind.info["difficulty"]["confidence"] is None


async def test_sampling_stops_where_the_saturation_curve_flattens() -> None:
    script = scripted([said(7), said(7), said(8), said(9)], [said(7), said(7), said(8)])
    _, loose = await run(FakeBackend(script), strategies="self-consistency", max_n=64, epsilon=0.05)
    _, strict = await run(FakeBackend(script), strategies="self-consistency", max_n=64, epsilon=0.005)
    for result in (loose, strict):
        assert result.answer == "7" and result.info["stopped_by"] == "saturation"
        last = result.info["curves"][-1]["F"]
        assert last[0][0] == result.info["samples"]  # the curve that stopped it starts at the samples drawn
    assert loose.info["samples"] < strict.info["samples"] < 64
    assert loose.info["curves"][-1]["F"][1][1] - loose.info["curves"][-1]["F"][0][1] < 0.05
    # a split that never settles runs to max_n
    _, split = await run(FakeBackend(scripted([said(7), said(8), said(7), said(8)], [said(7), said(8)])),
                         strategies="self-consistency", max_n=24)
    assert split.info["stopped_by"] == "max_n" and split.info["samples"] == 24


def confident_minority() -> Callable[[GenerationRequest, int], Scripted]:
    """A split pilot; later samples: two unsure 8s for every sure 7."""
    return scripted([said(5, 0.4), said(6, 0.4), said(8, 0.4), said(9, 0.4)],
                    [said(8, 0.3), said(8, 0.3), said(7, 0.95)])


async def test_hard_problems_go_to_deepconf_which_finds_the_sure_minority() -> None:
    ctx, routed = await run(FakeBackend(confident_minority()), max_n=32)
    assert routed.info["difficulty"]["band"] == "hard" and routed.info["decision"] == "deepconf"
    assert routed.answer == "7"
    delegate = routed.info["delegate"]
    assert delegate["strategy"] == "deepconf" and 4 <= delegate["n"] <= 28
    assert len(routed.traces) == 4 + delegate["n"] == ctx.usage.traces == routed.info["samples"]
    _, voted = await run(FakeBackend(confident_minority()), strategies="self-consistency", max_n=32)
    assert voted.answer == "8"  # a plain vote follows the unsure majority


async def test_without_logprobs_a_confidence_strategy_falls_back_to_voting() -> None:
    _, result = await run(FakeBackend(confident_minority(), logprobs=False), max_n=16)
    assert result.info["decision"] == "self-consistency" and "deepconf" in result.info["fallback"]
    assert result.answer == "8"


async def test_the_token_budget_ends_sampling_with_an_answer() -> None:
    problem = make_problem()
    script = scripted([said(7), said(8), said(7), said(9)], [said(7), said(8)])
    # the pilot's 4 samples of up to 20 tokens fit in 90; a further one of 20 does not once they spent ~48
    ctx = Ctx(FakeBackend(script), problem, token_budget=90, sampling=Sampling(max_tokens=20))
    result = await get_strategy("router")(problem, ctx, strategies="self-consistency")
    assert result.answer == "7" and result.info["stopped_by"] == "token_budget"


async def test_parameters_are_checked() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend([said(7)]), problem)
    router = get_strategy("router")
    with pytest.raises(ConfigError, match=r"'strategies'.*unknown strategy"):
        await router(problem, ctx, strategies="self-consistency,nope")
    with pytest.raises(ConfigError, match="no parameter n"):
        await router(problem, ctx, strategies="adaptive-consistency")
    with pytest.raises(ConfigError, match="router itself"):
        await router(problem, ctx, strategies="router")
    with pytest.raises(ConfigError, match="max_n"):
        await router(problem, ctx, pilot=8, max_n=4)
    with pytest.raises(ConfigError, match="epsilon"):
        await router(problem, ctx, epsilon=0.0)
