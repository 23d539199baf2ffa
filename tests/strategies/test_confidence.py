from __future__ import annotations

import math

import numpy as np
import pytest

from ponder import confidence as conf
from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx, Sampling
from ponder.errors import CapabilityError, ConfigError
from ponder.types import Delta, TokenLogprob, Trace
from tests.conftest import make_problem


def hand_trace() -> Trace:
    """Four tokens with top-2 logprobs; token confidences C = 1.2, 0.75, 1.0, 1.6."""
    tops = [[("a", -0.1), ("x", -2.3)], [("b", -0.5), ("y", -1.0)], [("c", -1.0), ("z", -1.0)],
            [("d", -0.2), ("w", -3.0)]]
    return Trace(text="abcd", tokens=["a", "b", "c", "d"], logprobs=[t[0][1] for t in tops], top_logprobs=tops)


def test_token_and_trace_confidences_by_hand() -> None:
    trace = hand_trace()
    assert conf.token_confidences(trace) == pytest.approx([1.2, 0.75, 1.0, 1.6])
    assert conf.mean_confidence(trace) == pytest.approx(4.55 / 4)
    assert conf.mean_logprob(trace) == pytest.approx(-1.8 / 4)
    assert conf.perplexity(trace) == pytest.approx(math.exp(0.45))
    assert conf.measure(trace, "neg_perplexity") == pytest.approx(-math.exp(0.45))


def test_group_confidences_slide_and_clamp() -> None:
    trace = hand_trace()
    assert conf.group_confidences(trace, 2) == pytest.approx([0.975, 0.875, 1.3])
    assert conf.lowest_group_confidence(trace, 2) == pytest.approx(0.875)
    assert conf.lowest_group_confidence(trace, 3) == pytest.approx(min(2.95, 3.35) / 3)
    # a window longer than the trace is one group: the whole-trace mean
    assert conf.group_confidences(trace, 2048) == pytest.approx([1.1375])
    assert conf.measure(trace, "lowest_group") == pytest.approx(1.1375)
    # the reference keeps max(1, int(#groups x share)) groups: bottom 10% and 50% of 3 are the single lowest,
    # 70% of 3 the lowest two
    assert conf.bottom_group_confidence(trace, 2) == pytest.approx(0.875)
    assert conf.bottom_group_confidence(trace, 2, percent=50) == pytest.approx(0.875)
    assert conf.bottom_group_confidence(trace, 2, percent=70) == pytest.approx((0.875 + 0.975) / 2)
    assert conf.measure(trace, "bottom10", window=2) == pytest.approx(0.875)
    assert conf.tail_confidence(trace, 2) == pytest.approx(1.3)
    assert conf.tail_confidence(trace, 100) == pytest.approx(1.1375)
    with pytest.raises(ConfigError):
        conf.group_confidences(trace, 0)


def test_self_certainty_renormalises_the_top_k() -> None:
    # flat top-k: KL 0; (0.8, 0.2): KL(U||q) = -log 2 - (log .8 + log .2)/2
    expected = -math.log(2) - 0.5 * (math.log(0.8) + math.log(0.2))
    flat = Trace(tokens=["a"], logprobs=[math.log(0.3)], top_logprobs=[[("a", math.log(0.3)), ("b", math.log(0.3))]])
    peaked = Trace(tokens=["a"], logprobs=[math.log(0.8)], top_logprobs=[[("a", math.log(0.8)), ("b", math.log(0.2))]])
    # the same shape with mass missing outside the top-k: renormalisation gives the same value
    partial = Trace(tokens=["a"], logprobs=[math.log(0.4)], top_logprobs=[[("a", math.log(0.4)), ("b", math.log(0.1))]])
    assert conf.self_certainty(flat) == pytest.approx(0.0, abs=1e-12)
    assert conf.self_certainty(peaked) == pytest.approx(expected)
    assert conf.self_certainty(partial) == pytest.approx(expected)
    both = Trace(tokens=["a", "b"], logprobs=[0.0, 0.0], top_logprobs=[flat.top_logprobs[0], peaked.top_logprobs[0]])
    assert conf.measure(both, "self_certainty") == pytest.approx(expected / 2)


def test_bottom10_rounds_down_as_the_reference_does() -> None:
    # 25 groups: 10% is 2.5, and the reference's int() keeps 2 (rounding up would keep 3)
    lps = [-0.1] * 30
    tops = [[("a", -0.1), ("b", -1.0 - i / 10)] for i in range(30)]
    trace = Trace(tokens=["a"] * 30, logprobs=lps, top_logprobs=tops)
    groups = np.sort(conf.group_confidences(trace, 6))
    assert groups.size == 25
    assert conf.bottom_group_confidence(trace, 6) == pytest.approx(groups[:2].mean())


def test_top_k_measures_refuse_traces_without_alternatives() -> None:
    # With only the sampled token, -log p rises with uncertainty: DeepConf would keep the least sure traces and
    # self-certainty would score every trace 0. Refuse, naming the option that fixes it.
    sure = Trace(tokens=["a", "b"], logprobs=[-0.01, -0.02], top_logprobs=[[("a", -0.01)], [("b", -0.02)]])
    bare = Trace(tokens=["a", "b"], logprobs=[-0.5, -1.5], top_logprobs=[[], []])
    for trace in (sure, bare):
        for name in ("mean", "lowest_group", "bottom10", "tail", "self_certainty"):
            with pytest.raises(CapabilityError, match="--top-logprobs"):
                conf.measure(trace, name)
        # measures of the sampled tokens alone keep the right sign without alternatives
        assert conf.measure(trace, "neg_perplexity") < 0
    assert conf.measure(sure, "neg_perplexity") > conf.measure(bare, "neg_perplexity")


async def test_strategies_reading_the_top_k_refuse_k_below_two() -> None:
    from ponder.strategies import get_strategy

    problem = make_problem()
    for k in (0, 1):
        backend = FakeBackend(["The answer is 7."], top_k=k)
        for name, params in (("deepconf", {}), ("deepconf", {"mode": "online"}), ("self-certainty", {})):
            with pytest.raises(CapabilityError, match="--top-logprobs"):
                await get_strategy(name)(problem, Ctx(backend, problem), **params)
        assert backend.calls == []
    # and the same when the run asks for fewer than two, whatever the server can give
    backend = FakeBackend(["The answer is 7."])
    with pytest.raises(CapabilityError, match="--top-logprobs 1"):
        await get_strategy("deepconf")(problem, Ctx(backend, problem, sampling=Sampling(top_logprobs=1)))
    # measures of the sampled tokens alone still run
    result = await get_strategy("deepconf")(problem, Ctx(FakeBackend(["The answer is 7."], top_k=1), problem),
                                            n=2, measure="neg_perplexity")
    assert result.answer == "7"


def test_answer_tokens_are_located_and_scored() -> None:
    tokens = ["The", " answer", " is", " 1", "2", ".", " So", " 12", "."]
    probs = [0.9, 0.9, 0.9, 0.5, 0.3, 0.9, 0.9, 0.2, 0.9]
    trace = Trace(text="".join(tokens), tokens=tokens, logprobs=[math.log(p) for p in probs],
                  top_logprobs=[[] for _ in tokens], answer="12")
    # last occurrence: " 12" (token 7) rather than " 1" + "2"
    assert conf.answer_span(trace) == (7, 8)
    assert conf.answer_confidence(trace) == pytest.approx(0.2)
    assert conf.answer_span(trace, "1") == (7, 8)
    assert conf.answer_span(trace, "is 1") == (2, 4)  # spans split across tokens map to every token touched
    spaced = Trace(tokens=["x", " 1", " 000", "!"], logprobs=[0.0, math.log(0.5), math.log(0.25), 0.0],
                   top_logprobs=[[]] * 4, answer="1000")
    assert conf.answer_span(spaced) == (1, 3)
    assert conf.answer_confidence(spaced) == pytest.approx(0.375)
    assert conf.answer_logprob(spaced) == pytest.approx((math.log(0.5) + math.log(0.25)) / 2)
    assert conf.measure(spaced, "answer") == pytest.approx(0.375)
    unanswered = Trace(tokens=["x"], logprobs=[0.0], top_logprobs=[[]])
    assert conf.answer_confidence(unanswered) == -math.inf


def test_answer_differs_from_whole_trace_confidence() -> None:
    # sure of its reasoning, unsure of the answer it wrote
    tokens = ["Sure", " sure", " sure", " 7"]
    trace = Trace(tokens=tokens, logprobs=[math.log(0.99)] * 3 + [math.log(0.1)], top_logprobs=[[]] * 4, answer="7")
    assert conf.answer_confidence(trace) == pytest.approx(0.1)
    assert conf.measure(trace, "neg_perplexity") > -1.9


def test_measure_names_and_errors() -> None:
    assert conf.MEASURES == ("mean", "lowest_group", "bottom10", "tail", "self_certainty", "neg_perplexity",
                             "answer")
    with pytest.raises(ConfigError, match="unknown confidence measure 'median'"):
        conf.measure(hand_trace(), "median")
    no_logprobs = Trace(text="7", tokens=["7"])
    for name in conf.MEASURES:
        with pytest.raises(CapabilityError, match="needs token logprobs"):
            conf.measure(no_logprobs, name)
    empty = Trace()
    assert all(conf.measure(empty, name) == -math.inf for name in conf.MEASURES)


def test_vote_weights_are_non_negative_and_monotone() -> None:
    assert conf.vote_weight(3.0, "lowest_group") == 3.0
    assert conf.vote_weight(-math.inf, "mean") == 0.0
    assert conf.vote_weight(-2.0, "neg_perplexity") == pytest.approx(0.5)
    assert conf.vote_weight(-1.0, "neg_perplexity") > conf.vote_weight(-4.0, "neg_perplexity")


def test_best_index_skips_unanswered_traces() -> None:
    sure = Trace(tokens=["x"], logprobs=[-0.01], top_logprobs=[[("x", -0.01), ("y", -9.0)]], answer=None)
    fair = Trace(tokens=["7"], logprobs=[-0.5], top_logprobs=[[("7", -0.5), ("8", -1.0)]], answer="7")
    sure2 = Trace(tokens=["8"], logprobs=[-0.1], top_logprobs=[[("8", -0.1), ("7", -4.0)]], answer="8")
    assert conf.best_index([sure, fair, sure2], "mean") == 2
    assert conf.best_index([sure], "mean") is None


def test_group_monitor_matches_the_offline_groups() -> None:
    trace = hand_trace()
    monitor = conf.GroupMonitor(window=2)  # full windows only, as in the reference
    seen = [monitor.push(top) for top in trace.top_logprobs]
    assert seen[0] is None and seen[1:] == pytest.approx(list(conf.group_confidences(trace, 2)))
    assert monitor.lowest == pytest.approx(conf.lowest_group_confidence(trace, 2))
    # a window longer than the trace is never checked while it runs (the old monitor judged prefix means,
    # far stricter than the bar, which the warm-up set on whole traces)
    short = conf.GroupMonitor(window=2048)
    assert [short.push(top) for top in trace.top_logprobs] == [None] * 4


async def test_fake_backend_confidence_orders_traces() -> None:
    ctx = Ctx(FakeBackend([Scripted("The answer is 7.", 0.9), Scripted("The answer is 8.", 0.3)]), make_problem())
    sure, unsure = await ctx.sample(n=2)
    for name in conf.MEASURES:
        assert conf.measure(sure, name) > conf.measure(unsure, name), name


def test_streamed_tokens_feed_the_monitor() -> None:
    trace = Trace()
    trace.append(Delta(text="a", tokens=[TokenLogprob("a", -0.1, [("a", -0.1), ("b", -2.0)])]))
    monitor = conf.GroupMonitor(window=1)
    value = monitor.push(trace.top_logprobs[0])
    assert value is not None and value == pytest.approx(1.05) and np.isclose(conf.mean_confidence(trace), value)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("deepconf", {}),
        ("deepconf", {"mode": "online"}),
        ("self-certainty", {}),
        ("rpc", {}),
        ("crew", {}),
        ("budget", {"select": "confidence"}),
    ],
)
async def test_logprob_strategies_need_logprobs(name: str, params: dict[str, object]) -> None:
    from ponder.strategies import get_strategy

    backend = FakeBackend(["The answer is 7."], logprobs=False)
    problem = make_problem()
    with pytest.raises(CapabilityError, match="needs token logprobs"):
        await get_strategy(name)(problem, Ctx(backend, problem), **params)
    assert backend.calls == []  # it fails before spending a token
