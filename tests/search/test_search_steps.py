"""A step is the continuation up to the delimiter, drawn with the steps so far as an assistant prefill."""

from __future__ import annotations

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.search.steps import Step, expand, prefix_messages, solution_text, states_answer
from ponder.types import GenerationRequest
from tests.conftest import make_problem


async def test_expand_draws_k_steps_in_one_call_with_the_prefix_as_prefill() -> None:
    backend = FakeBackend(["First we add.", "We add 3 and 4."])
    problem = make_problem()
    ctx = Ctx(backend, problem)
    candidates = await expand(ctx, problem, ["Let us think.", "Both are small."], 2, max_step_tokens=50)
    assert [c.step for c in candidates] == ["First we add.", "We add 3 and 4."]
    (call,) = backend.calls
    request = call.request
    assert request.n == 2 and request.stop == ["\n\n"] and request.max_tokens == 50
    assert request.messages[:-1] == problem.messages
    assert request.messages[-1] == {"role": "assistant", "content": "Let us think.\n\nBoth are small.\n\n"}
    assert ctx.usage.calls == 1 and ctx.usage.completion_tokens == sum(c.tokens for c in candidates) > 0
    assert not any(c.terminal for c in candidates)


def test_the_first_step_has_no_prefill() -> None:
    problem = make_problem()
    assert prefix_messages(problem, []) == problem.messages
    assert solution_text(["a", "b"], "\n---\n") == "a\n---\nb"


async def test_a_server_that_ignores_stop_is_cut_at_the_delimiter_but_pays_for_everything() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend([Scripted("Add them.\n\nThe answer is 9.", 0.7)]), problem)
    (candidate,) = await expand(ctx, problem, [], 1)
    assert candidate.step == "Add them." and not candidate.terminal
    assert isinstance(candidate.step, Step) and candidate.step.trace is not None
    assert "".join(candidate.step.trace.tokens).strip() == "Add them."
    assert len(candidate.step.trace.logprobs) == len(candidate.step.trace.tokens)
    assert candidate.tokens == ctx.usage.completion_tokens > len(candidate.step.trace.tokens)


async def test_an_echoed_prefill_is_cut() -> None:
    def echo(request: GenerationRequest, index: int) -> str:
        return request.messages[-1]["content"] + "So 3 + 4 = 7."

    problem = make_problem()
    ctx = Ctx(FakeBackend(echo), problem)
    (candidate,) = await expand(ctx, problem, ["We add."], 1)
    assert candidate.step == "So 3 + 4 = 7."


async def test_terminal_steps_answer_end_and_depth() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend(["The answer is 7.", "", "Three and four make 7 together."]), problem)
    answered, ended, deep = await expand(ctx, problem, ["We add 3 and 4 to get 7."], 3, max_depth=2)
    assert (answered.terminal, answered.reason, answered.answer) == (True, "answer", "7")
    # an empty continuation: the model stopped, the solution so far is finished
    assert (ended.terminal, ended.reason, ended.answer) == (True, "end", "7")
    assert (deep.terminal, deep.reason, deep.answer) == (True, "depth", "7")
    # the stored step traces carry the solution's answer only when the step finishes it
    (call,) = ctx.calls
    assert [t.answer for t in call.traces] == ["7", "7", "7"]


async def test_a_number_in_passing_is_not_a_final_answer() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend(["First, 3 + 4 = 7."]), problem)
    (candidate,) = await expand(ctx, problem, [], 1)
    assert not candidate.terminal and candidate.answer is None
    assert ctx.calls[0].traces[0].answer is None
    assert states_answer("so the final answer: 7") and states_answer("\\boxed{7}") and states_answer("#### 7")
    assert not states_answer("3 + 4 = 7")
