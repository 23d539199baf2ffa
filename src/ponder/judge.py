"""Yes/no judgements from a model: P("Yes") read from the first answer token's top-k logprobs.

GenRM-style verifiers, step scorers and LLM judges all ask the model a yes/no question and use the probability
it puts on "Yes" as a score (Zhang et al., "Generative Verifiers"). With logprobs, P(Yes) is the mass of the
"yes" variants among the top-k alternatives at the first non-blank answer position, normalised by the mass of
"yes" plus "no". Without logprobs (or when neither word is in the top-k) the judgement falls back to reading
the text, which gives only 0 or 1 and is flagged ``from_logprobs=False`` so callers and reports can say so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ponder.types import Message, Trace

if TYPE_CHECKING:
    from ponder.context import Ctx

YES_NO_INSTRUCTION = "Answer with a single word: Yes or No."
_WORD = re.compile(r"[a-z]+")
_LOOKAHEAD = 4  # how many leading tokens may be markup ("**", a space, a quote) before the verdict


@dataclass(frozen=True)
class Judgement:
    p_yes: float
    from_logprobs: bool
    text: str


def _word(token: str) -> str:
    match = _WORD.match(token.strip().lstrip("*_\"'`([").lower())
    return match.group(0) if match else ""


def p_yes_from_trace(trace: Trace) -> Judgement:
    """P("Yes") from a judge's reply: logprobs when they show the verdict, else the text (0 or 1)."""
    for position in range(min(_LOOKAHEAD, len(trace.logprobs))):
        top = trace.top_logprobs[position] if position < len(trace.top_logprobs) else []
        candidates = top or [(trace.tokens[position], trace.logprobs[position])]
        yes = math.fsum(math.exp(lp) for tok, lp in candidates if _word(tok) == "yes")
        no = math.fsum(math.exp(lp) for tok, lp in candidates if _word(tok) == "no")
        if yes + no > 0:
            return Judgement(yes / (yes + no), True, trace.text)
        if _word(trace.tokens[position]):
            break  # the reply began with some other word: no verdict at the top of the distribution
    words = _WORD.findall(trace.text.lower())
    verdict = next((w for w in words if w in ("yes", "no")), None)
    return Judgement(1.0 if verdict == "yes" else 0.0, False, trace.text)


async def judge_yes(ctx: Ctx, messages: list[Message], *, max_tokens: int = 8) -> Judgement:
    """Ask ``messages`` (a yes/no question; end it with ``YES_NO_INSTRUCTION``) and read P("Yes").

    Greedy decoding: the verdict's distribution is read from the logprobs, so sampling would only add noise
    to the text fallback.
    """
    with ctx.aux():  # a verdict is not a solution: maj@k and pass@k must not count it
        (trace,) = await ctx.sample(messages, n=1, max_tokens=max_tokens, temperature=0.0)
    return p_yes_from_trace(trace)
