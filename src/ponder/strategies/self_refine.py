"""Self-Refine: the model critiques its own answer and rewrites it with that feedback, until the critique approves."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Ge, Interval

from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.judge import YES_NO_INSTRUCTION, Judgement, judge_yes
from ponder.strategies.genrm import judge_report
from ponder.strategies.registry import strategy
from ponder.strategies.revise_loop import Loop, Round, TokenCap, Verdict, revise
from ponder.types import Message, Problem, Result, Trace

JUDGE_TOKENS = 8  # judge_yes's verdict length
_FEEDBACK_CHARS = 600  # per round in info; the full critiques are stored with the calls


def feedback_request(stop: str, stop_phrase: str) -> str:
    approve = f'say "{stop_phrase}"' if stop == "phrase" else "say so"
    return ("Review your solution above step by step. If there is a mistake, say exactly where it is and how to "
            f"fix it. If the solution and its final answer are right, {approve}.")


def refine_request(feedback: str) -> str:
    return (f"Here is feedback on your solution:\n{feedback}\n\nUsing this feedback, write an improved solution to "
            "the problem, ending with the final answer in the format asked for.")


VERDICT_QUESTION = f"Given your review, is the solution's final answer correct? {YES_NO_INSTRUCTION}"


@strategy("self-refine")
async def self_refine(
    problem: Problem,
    ctx: Ctx,
    max_iters: Annotated[int, Ge(0), "refinements at most (0: no refinement; authors: 4)"] = 4,
    stop: Annotated[Literal["phrase", "judge"], "stop on a phrase in the feedback, or on a judge's P(Yes)"] = "phrase",
    stop_phrase: Annotated[str, "stop=phrase: feedback containing it stops the loop"] = "it is correct",
    threshold: Annotated[float, Interval(ge=0, le=1), "stop=judge: P(Yes) that stops the loop"] = 0.5,
    final: Annotated[Literal["last", "best"], "answer with the last refinement, or the best-judged one"] = "last",
    history: Annotated[Literal["full", "last"], "refine from every answer and feedback, or the newest"] = "full",
    budget: Annotated[int, Ge(0), "completion tokens of all calls (0: no cap of its own)"] = 0,
) -> Result:
    """Self-Refine (Madaan et al., 2023): generate, then loop {feedback; stop if approved; refine with the feedback}.

    From "Self-Refine: Iterative Refinement with Self-Feedback". One model plays three roles: it answers the
    problem (y0); gives feedback on its newest answer (fb_t = M(x, y_t)); and refines it with that feedback
    (y_t+1 = M(x, y0, fb0, ..., y_t, fb_t) with ``history=full``, as in the paper; ``history=last`` shows only
    the newest answer and feedback, for short contexts). At most ``max_iters`` refinements (the authors' default
    is 4).

    Stop rule: ``stop=phrase`` stops when the feedback contains ``stop_phrase`` (case-insensitive; the authors'
    GSM rule is "it is correct", and the feedback prompt asks for it). ``stop=judge`` asks, after the feedback,
    whether the answer is correct and stops when P("Yes") from logprobs (``ponder.judge``) is at least
    ``threshold``; that P(Yes) is also the round's score.

    ``final=last`` answers with the last refinement that states an answer (the paper's choice; the last
    refinement is not critiqued). ``final=best`` (needs ``stop=judge``) critiques every refinement and answers with
    the highest-scoring one, ties going to the later. ``budget`` caps the completion tokens of all calls (0 = no
    cap beyond the problem's budget); each call is shortened to fit, and the loop stops when a call cannot be
    made. ``info["history"]`` holds every round's answer, feedback, verdict and score.
    """
    if stop == "phrase" and not stop_phrase.strip():
        raise ConfigError("self-refine parameter stop_phrase must not be empty with stop=phrase")
    if final == "best" and stop != "judge":
        raise ConfigError("self-refine final=best ranks rounds by the judge's P(Yes): give stop=judge as well")
    cap = TokenCap(ctx, budget)
    max_tokens = ctx.sampling.max_tokens
    judgements: list[Judgement] = []

    async def draft() -> Trace:
        (trace,) = await ctx.sample(n=1, max_tokens=cap.limit(max_tokens))
        return trace

    async def check(rounds: list[Round]) -> Verdict:
        reviewed = [*problem.messages, {"role": "assistant", "content": rounds[-1].draft.text},
                    {"role": "user", "content": feedback_request(stop, stop_phrase)}]
        with ctx.aux():  # a critique is not an answer to the problem
            (critique,) = await ctx.sample(reviewed, n=1, max_tokens=cap.limit(max_tokens))
        if stop == "phrase":
            return Verdict(stop_phrase.lower() in critique.text.lower(), None, critique.text)
        cap.need(JUDGE_TOKENS)
        judgement = await judge_yes(ctx, [*reviewed, {"role": "assistant", "content": critique.text},
                                          {"role": "user", "content": VERDICT_QUESTION}], max_tokens=JUDGE_TOKENS)
        judgements.append(judgement)
        return Verdict(judgement.p_yes >= threshold, judgement.p_yes, critique.text,
                       {"from_logprobs": judgement.from_logprobs})

    async def improve(rounds: list[Round]) -> Trace:
        shown = rounds if history == "full" else rounds[-1:]
        messages: list[Message] = list(problem.messages)
        for r in shown:
            assert r.verdict is not None  # only checked rounds are improved
            messages += [{"role": "assistant", "content": r.draft.text},
                         {"role": "user", "content": refine_request(r.verdict.feedback)}]
        (trace,) = await ctx.sample(messages, n=1, max_tokens=cap.limit(max_tokens))
        return trace

    loop = await revise(draft, check, improve, max_iters=max_iters, check_last=final == "best")
    chosen = _choose(loop, final)
    verdict = chosen.verdict
    info: dict[str, Any] = {
        "stopped": loop.stopped,
        "refinements": loop.improvements,
        "final": final,
        "chosen_round": loop.rounds.index(chosen),
        "history": [_round_info(r) for r in loop.rounds],
        "tokens": cap.spent,
    }
    if stop == "judge":
        info.update(judge_report(judgements))
    return Result(answer=chosen.draft.answer, confidence=verdict.score if verdict else None,
                  votes={chosen.draft.answer: 1.0} if chosen.draft.answer is not None else {},
                  traces=[r.draft for r in loop.rounds], info=info)


def _choose(loop: Loop, final: str) -> Round:
    answered = [r for r in loop.rounds if r.draft.answer is not None] or loop.rounds
    if final == "best":
        scored = [r for r in answered if r.verdict is not None and r.verdict.score is not None]
        if scored:
            # max keeps the first of equal keys: iterate newest first so ties go to the later round
            return max(reversed(scored), key=_score)
    return answered[-1]


def _score(r: Round) -> float:
    return (r.verdict.score or 0.0) if r.verdict is not None else 0.0


def _round_info(r: Round) -> dict[str, Any]:
    out: dict[str, Any] = {"answer": r.draft.answer, "tokens": r.draft.completion_tokens}
    if r.verdict is not None:
        out.update(passed=r.verdict.passed, score=r.verdict.score, feedback=r.verdict.feedback[:_FEEDBACK_CHARS])
    return out
