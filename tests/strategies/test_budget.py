from __future__ import annotations

import pytest

from ponder.backends.fake import FakeBackend, Scripted, tokenize
from ponder.context import Ctx, Sampling
from ponder.strategies import get_strategy
from ponder.strategies.budget import ANSWER_CUE, NOTHINKING_PREFILL
from ponder.types import GenerationRequest
from tests.conftest import make_problem

RAMBLE = "I think 3 plus 4 should be checked again and again before I say it is 7. The answer is 7."


def two_phase(first: str, then: str = " 7.") -> FakeBackend:
    """Reasons with ``first``; answers a prefilled assistant turn with ``then``."""

    def script(request: GenerationRequest, index: int) -> str:
        return then if request.messages[-1]["role"] == "assistant" else first

    return FakeBackend(script)


async def test_elastic_caps_the_chain_and_forces_an_answer() -> None:
    problem = make_problem()
    backend = two_phase(RAMBLE)
    # a plain sample cut at 6 tokens has no answer: the "4" of its unfinished reasoning is not one
    (cut,) = await Ctx(two_phase(RAMBLE), problem).sample(max_tokens=6)
    assert cut.capped and cut.answer is None
    ctx = Ctx(backend, problem)
    result = await get_strategy("budget")(problem, ctx, think_tokens=6, answer_tokens=9)
    assert result.answer == "7" and result.info == {"mode": "elastic", "forced": 1}
    first, second = (c.request for c in backend.calls)
    assert first.max_tokens == 6 and backend.calls[0].tokens_sent == 6
    assert second.max_tokens == 9
    truncated = "".join(tokenize(RAMBLE)[:6])
    assert second.messages[:-1] == problem.messages
    assert second.messages[-1] == {"role": "assistant", "content": truncated + ANSWER_CUE}
    thought, answer = result.traces
    assert thought.answer is None and answer.answer == "7"
    assert ctx.usage.completion_tokens == 6 + len(tokenize(" 7."))


async def test_elastic_leaves_a_finished_chain_alone() -> None:
    problem = make_problem()
    backend = two_phase("The answer is 7.")
    result = await get_strategy("budget")(problem, Ctx(backend, problem), think_tokens=64)
    assert result.answer == "7" and result.info["forced"] == 0 and len(backend.calls) == 1


async def test_elastic_closes_the_think_block_of_a_thinking_model() -> None:
    problem = make_problem()
    backend = two_phase("<think>Let me think about it at length first.</think>The answer is 7.", "The answer is 7.")
    result = await get_strategy("budget")(problem, Ctx(backend, problem), think_tokens=6)
    prefill = backend.calls[1].request.messages[-1]
    assert prefill["role"] == "assistant"
    assert prefill["content"] == "<think>Let me think\n</think>\n\n"  # closed, no answer cue
    assert result.answer == "7"
    # a template that opens <think> in the prompt: the model's text has no tag, so say it is a thinking model
    backend = two_phase("Let me think about it at length first.</think>The answer is 7.", "The answer is 7.")
    await get_strategy("budget")(problem, Ctx(backend, problem), think_tokens=3, thinking="yes")
    assert backend.calls[1].request.messages[-1]["content"] == "<think>\nLet me think\n</think>\n\n"


async def test_elastic_continues_a_cut_solution_after_thinking_ended() -> None:
    problem = make_problem()
    backend = two_phase("<think>ok</think>So the sum is", " 7, and \\boxed{7}.")
    result = await get_strategy("budget")(problem, Ctx(backend, problem), think_tokens=11)
    assert backend.calls[1].request.messages[-1]["content"] == "<think>ok</think>So the sum"
    assert result.answer == "7"


async def test_vllm_prefill_flags_go_with_the_prefilled_call_only() -> None:
    problem = make_problem()
    backend = two_phase(RAMBLE)
    ctx = Ctx(backend, problem, sampling=Sampling(extra={"top_k": 20}))
    await get_strategy("budget")(problem, ctx, think_tokens=6, continue_final_message=True)
    first, second = (c.request for c in backend.calls)
    assert first.extra == {"top_k": 20}
    assert second.extra == {"top_k": 20, "continue_final_message": True, "add_generation_prompt": False}


async def test_nothinking_prefills_the_dummy_thought_and_votes() -> None:
    problem = make_problem()
    backend = FakeBackend(["The answer is 7.", "The answer is 8.", "The answer is 7."])
    result = await get_strategy("budget")(problem, Ctx(backend, problem), mode="nothinking", n=3, answer_tokens=40)
    (call,) = backend.calls
    assert call.request.messages[-1] == {"role": "assistant", "content": NOTHINKING_PREFILL}
    assert call.request.messages[:-1] == problem.messages
    assert call.request.n == 3 and call.request.max_tokens == 40
    assert result.answer == "7" and result.confidence == pytest.approx(2 / 3)


async def test_nothinking_confidence_best_of_n() -> None:
    problem = make_problem()
    script = [Scripted("The answer is 8.", 0.3), Scripted("The answer is 7.", 0.9), Scripted("The answer is 8.", 0.3)]
    voted = await get_strategy("budget")(problem, Ctx(FakeBackend(script), problem), mode="nothinking", n=3)
    assert voted.answer == "8"
    best = await get_strategy("budget")(problem, Ctx(FakeBackend(script), problem), mode="nothinking", n=3,
                                        select="confidence")
    assert best.answer == "7" and best.info["best"] == 1


async def test_a_continuation_filed_as_reasoning_still_counts() -> None:
    problem = make_problem()
    backend = FakeBackend([Scripted("", reasoning="The answer is 7.")])
    result = await get_strategy("budget")(problem, Ctx(backend, problem), mode="nothinking")
    assert result.answer == "7"


async def test_an_echoed_prefill_is_not_read_as_the_answer() -> None:
    # llama-server repeats the prefill at the start of the content; without tokens only the text tells
    problem = make_problem()
    cut = "Is it \\boxed{4}? Let me"

    def script(request: GenerationRequest, index: int) -> str:
        last = request.messages[-1]
        return last["content"] + " 7." if last["role"] == "assistant" else cut + " check that again. It is 7."

    backend = FakeBackend(script, logprobs=False)
    result = await get_strategy("budget")(problem, Ctx(backend, problem), think_tokens=len(tokenize(cut)))
    assert backend.calls[1].request.messages[-1]["content"] == cut + ANSWER_CUE
    assert result.answer == "7"
