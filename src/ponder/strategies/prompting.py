"""Zero-shot prompting methods: Zero-shot-CoT and Plan-and-Solve, one trigger sentence and an answer extraction."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Annotated, Any, Literal, TypeVar

from annotated_types import Ge

from ponder.context import Ctx
from ponder.errors import BudgetExceeded, ConfigError
from ponder.prompts import PLAN_AND_SOLVE_PLUS, ZERO_SHOT_COT, with_trigger
from ponder.strategies.budget import generated
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Message, Problem, Result, Trace

ANSWER_CUE = "Therefore, the answer is"
"""Kojima et al.'s answer-extraction prompt, without the paper's per-format words ("(arabic numerals)")."""

Extraction = Literal["single", "two-stage"]
T = TypeVar("T")

# The parameters the prompting strategies share (zero-shot-cot, plan-and-solve; least-to-most and socratic take the
# first two), with their help and bounds.
Chains = Annotated[int, Ge(1), "chains sampled; n > 1 samples at the run's temperature and votes"]
Greedy = Annotated[bool, "decode a single chain greedily (temperature 0), as the paper does"]
ExtractionParam = Annotated[Extraction, "single: read the answer from the reasoning; two-stage: the paper's 2nd call"]
Prefill = Annotated[bool, "put the trigger at the start of the model's reply, as in the paper"]
AnswerCue = Annotated[str, "two-stage: text after the reasoning that the answer continues"]
AnswerTokens = Annotated[int, Ge(1), "two-stage: most tokens of the answer call"]
ContinueFinalMessage = Annotated[bool, "ask the server to continue a prefilled reply (vLLM needs it)"]


@strategy("zero-shot-cot")
async def zero_shot_cot(
    problem: Problem,
    ctx: Ctx,
    n: Chains = 1,
    greedy: Greedy = True,
    extraction: ExtractionParam = "single",
    prefill: Prefill = False,
    answer_cue: AnswerCue = ANSWER_CUE,
    answer_tokens: AnswerTokens = 64,
    continue_final_message: ContinueFinalMessage = False,
) -> Result:
    """Zero-shot-CoT (Kojima et al., 2022): "Let's think step by step.", then the answer.

    From "Large Language Models are Zero-Shot Reasoners". The paper puts the trigger at the start of the answer
    ("Q: [X]. A: Let's think step by step.") and extracts the answer in a second call: the question, the trigger
    and the generated reasoning followed by "Therefore, the answer (arabic numerals) is", whose continuation is the
    answer. ``extraction=two-stage`` does that (the reasoning call is a helper sample; the answer call, an
    assistant prefill of at most ``answer_tokens``, is the answer sample); ``answer_cue`` drops the paper's
    format words, since ponder's tasks also have non-numeric answers.

    Departures. ``extraction=single`` (default) keeps the task's answer-format instruction after the trigger and
    reads the answer from the reasoning itself, as every other ponder strategy does; chat models follow the
    instruction, so the second call is rarely needed. ``prefill=false`` (default) adds the trigger to the user
    message, which works on every chat API; ``prefill=true`` starts the assistant's reply with it, as in the paper
    (the server must continue a final assistant message: llama-server does; vLLM needs
    ``continue_final_message=true``). The paper decodes greedily, one sample: ``n=1`` with ``greedy=true``;
    ``n>1`` samples at the run's temperature and votes (Zero-shot-CoT with self-consistency).
    """
    return await _prompted(problem, ctx, "zero-shot-cot", ZERO_SHOT_COT, n, greedy, extraction, prefill, answer_cue,
                           answer_tokens, continue_final_message)


@strategy("plan-and-solve")
async def plan_and_solve(
    problem: Problem,
    ctx: Ctx,
    n: Chains = 1,
    greedy: Greedy = True,
    extraction: ExtractionParam = "single",
    prefill: Prefill = False,
    answer_cue: AnswerCue = ANSWER_CUE,
    answer_tokens: AnswerTokens = 64,
    continue_final_message: ContinueFinalMessage = False,
) -> Result:
    """Plan-and-Solve (Wang et al., 2023), PS+ prompt: devise a plan, then carry it out step by step.

    From "Plan-and-Solve Prompting: Improving Zero-Shot Chain-of-Thought Reasoning by Large Language Models". The
    trigger is the paper's PS+ prompt ("Let's first understand the problem, extract relevant variables and their
    corresponding numerals, and devise a plan. Then, let's carry out the plan, calculate intermediate variables
    (pay attention to correct numerical calculation and commonsense), solve the problem step by step, and show
    the answer."); answers are extracted as in Zero-shot-CoT, whose parameters and departures it shares
    (``extraction=two-stage`` is the paper's answer-extraction call; the default reads the answer the task's
    format instruction asks for). The paper decodes greedily, and also reports PS+ with self-consistency:
    ``n>1`` samples and votes, as does ``self-consistency:prompt=plan-and-solve``.
    """
    return await _prompted(problem, ctx, "plan-and-solve", PLAN_AND_SOLVE_PLUS, n, greedy, extraction, prefill,
                           answer_cue, answer_tokens, continue_final_message)


def sampling_overrides(n: int, greedy: bool) -> dict[str, Any]:
    """Greedy decoding for a single sample, as the prompting papers decode; the run's temperature otherwise."""
    return {"temperature": 0.0} if greedy and n == 1 else {}


async def _prompted(
    problem: Problem, ctx: Ctx, name: str, trigger: str, n: int, greedy: bool, extraction: str, prefill: bool,
    answer_cue: str, answer_tokens: int, continue_final_message: bool,
) -> Result:
    if extraction == "two-stage" and not answer_cue.strip():
        raise ConfigError(f"{name} extraction=two-stage needs an answer_cue to continue from")
    overrides = sampling_overrides(n, greedy)
    # Prefilled calls only: vLLM continues a final assistant message when told to.
    continuing: dict[str, Any] = {"extra": {**ctx.sampling.extra, "continue_final_message": True,
                                            "add_generation_prompt": False}} if continue_final_message else {}
    prefix = ""
    if prefill:  # the paper's placement: the trigger opens the answer
        messages: list[Message] = [*problem.messages, {"role": "assistant", "content": trigger}]
        prefix = trigger
    else:
        messages = [*problem.messages[:-1], {**problem.messages[-1],
                                              "content": with_trigger(problem.messages[-1]["content"], trigger)}]
    first = {**overrides, **(continuing if prefill else {})}
    if extraction == "single":
        traces = await ctx.sample(messages, n=n, **first)
        if prefill:
            for trace in traces:
                trace.answer = None if trace.capped else problem.extract(generated(trace, trigger))
        result = await vote([t.answer for t in traces], ctx.equivalent)
        return result.result(traces, {"extraction": extraction, "prefill": prefill})
    with ctx.aux():  # the reasoning is not the answer: the extraction call that follows it is
        reasoning = await ctx.sample(messages, n=n, **first)
    user_messages = messages[:-1] if prefill else messages

    async def extract(thought: Trace) -> Trace:
        said = generated(thought, trigger) if prefill else thought.text
        cue = f"{prefix} {said.strip()}".strip() + f"\n{answer_cue}"
        (answer,) = await ctx.sample([*user_messages, {"role": "assistant", "content": cue}], n=1,
                                     max_tokens=answer_tokens, **overrides, **continuing)
        # The answer follows the cue, so a continuation cut at answer_tokens still states it (as in ``budget``).
        answer.answer = problem.extract(f"{answer_cue} {generated(answer, cue).lstrip()}")
        return answer

    answers: list[Trace] = await finished_chains([extract(t) for t in reasoning])
    result = await vote([t.answer for t in answers], ctx.equivalent)
    return result.result([*reasoning, *answers], {"extraction": extraction, "prefill": prefill,
                                                  "unextracted": len(reasoning) - len(answers)})


async def finished_chains(chains: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run independent chains (coroutines) together; those stopped by the token budget are dropped, and when every
    chain was stopped the budget error is raised. Other errors are raised as they are."""
    outcomes = await Ctx.gather(*chains)
    if chains and not outcomes.done:
        raise BudgetExceeded("the token budget stopped every chain before it finished")
    return outcomes.done
