"""Step scorers: the model's own judgement, a confidence measure, or a process reward model over HTTP.

``make_scorer(spec)`` builds one from a short spec string, as strategies take it as a parameter:

``judge``
    GenRM-style self-verification (Zhang et al., "Generative Verifiers"): the model is asked whether the newest
    step is correct and useful, and the score is P("Yes") read from the logprobs of its one-word verdict
    (``ponder.judge.judge_yes``; without logprobs the text verdict gives 0 or 1, counted in ``fallbacks``).
``confidence`` / ``confidence:<measure>``
    How sure the model was while writing the step: a ``ponder.confidence`` measure of the step's own tokens
    (default ``mean``, DeepConf's token confidence), mapped to [0, 1]. No extra model call; needs logprobs.
``prm:<url>``
    A process reward model served over HTTP (see ``PRMScorer`` for the two request shapes understood).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx

from ponder import confidence as conf
from ponder.backends.retry import RetryPolicy, retry_after_seconds, with_retries
from ponder.errors import BackendError, BackendUnavailable, CapabilityError, ConfigError
from ponder.judge import YES_NO_INSTRUCTION, judge_yes
from ponder.search.scoring import StepScorer
from ponder.search.steps import DEFAULT_DELIMITER, solution_text
from ponder.tasks.prompts import problem_statement
from ponder.types import Problem

if TYPE_CHECKING:
    from ponder.context import Ctx

JUDGE_MAX_TOKENS = 8
SCORER_SPECS = ("judge", "confidence", "confidence:<measure>", "prm:<url>")


class JudgeScorer:
    """The model judges its own newest step; the score is P("Yes")."""

    name = "judge"
    tokens_per_score = JUDGE_MAX_TOKENS  # the verdict's tokens, which searches reserve from their budget

    def __init__(self, *, delimiter: str = DEFAULT_DELIMITER) -> None:
        self.delimiter = delimiter
        self.calls = 0
        self.fallbacks = 0  # verdicts read from text (0 or 1) because logprobs did not show them

    def prompt(self, problem: Problem, steps: Sequence[str]) -> str:
        before = solution_text(steps[:-1], self.delimiter) or "(none: this is the first step)"
        return (
            f"Problem:\n{problem_statement(problem)}\n\n"
            f"Solution steps so far:\n{before}\n\n"
            f"Next step:\n{steps[-1]}\n\n"
            "Is the next step correct, and does it move the solution toward the right answer? "
            f"{YES_NO_INSTRUCTION}"
        )

    async def score(self, ctx: Ctx, problem: Problem, steps: Sequence[str]) -> float:
        if not steps:
            raise ValueError("a scorer needs at least one step")
        judgement = await judge_yes(ctx, [{"role": "user", "content": self.prompt(problem, steps)}],
                                    max_tokens=self.tokens_per_score)
        self.calls += 1
        self.fallbacks += not judgement.from_logprobs
        return judgement.p_yes


STEP_MEASURES = tuple(m for m in conf.MEASURES if m != "answer")
"""Confidence measures a step can be scored by; ``answer`` needs a final answer, which most steps lack."""


def unit_confidence(value: float, measure: str) -> float:
    """A confidence measure's value mapped to [0, 1], increasing with confidence.

    ``neg_perplexity`` (= -PPL) becomes 1/PPL, the geometric-mean probability of the step's tokens. The other
    measures (DeepConf's token confidences, self-certainty) are non-negative and unbounded; they are squashed by
    ``c / (1 + c)``, which keeps their order (so the ranking of candidates is the measure's) and keeps products
    and minima along a path meaningful. No evidence (``-inf``, an empty step) gives 0.
    """
    if math.isnan(value) or value == -math.inf:
        return 0.0
    if measure == "neg_perplexity":
        return min(max(1.0 / -value, 0.0), 1.0) if value < 0 else 0.0
    return value / (1.0 + value) if value > 0 else 0.0


class ConfidenceScorer:
    """The model's confidence in the tokens that wrote the newest step (no extra model call)."""

    needs_logprobs = True  # searches check this before their first call, not after spending tokens

    def __init__(self, measure: str = "mean", *, window: int = conf.DEFAULT_WINDOW) -> None:
        if measure not in STEP_MEASURES:
            raise ConfigError(
                f"confidence scorer measure {measure!r} is not usable on steps; use one of {', '.join(STEP_MEASURES)}"
                " (e.g. scorer=confidence:mean)"
            )
        self.measure = measure
        self.window = window
        self.name = f"confidence:{measure}"
        self.calls = 0

    async def score(self, ctx: Ctx, problem: Problem, steps: Sequence[str]) -> float:
        if not steps:
            raise ValueError("a scorer needs at least one step")
        ctx.require_logprobs(f"scorer {self.name}")
        trace = getattr(steps[-1], "trace", None)
        if trace is None:
            if not steps[-1].strip():
                return 0.0
            raise CapabilityError(
                f"scorer {self.name} reads the tokens that produced a step, and this step has none: draw steps "
                "with ponder.search.steps.expand (its Step carries its trace)"
            )
        self.calls += 1
        return unit_confidence(conf.measure(trace, self.measure, window=self.window), self.measure)


VLLM_STEP_TAG = "<extra_0>"
"""The step separator Qwen2.5-Math-PRM scores at (its model card: a reward per ``<extra_0>``)."""
VLLM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


class PRMScorer:
    """A process reward model behind HTTP.

    Two request shapes, chosen by the URL:

    **ponder's JSON protocol** (any URL not ending in ``/pooling``) -- easy to put in front of any PRM::

        POST <url>   {"question": "<problem text>", "steps": ["step 1", "step 2", ...]}
        200          {"scores": [0.93, 0.41, ...]}    one score in [0, 1] per step (or {"score": 0.41})

    The newest step's score is the last one.

    **vLLM's pooling API** (a URL ending in ``/pooling``, e.g. ``http://host:8000/pooling`` for
    ``vllm serve Qwen/Qwen2.5-Math-PRM-7B``): the request is a chat whose assistant turn holds the steps, each
    followed by the PRM's step tag ``<extra_0>``, as the model card prescribes; vLLM's STEP pooler returns one
    ``[P(negative), P(positive)]`` row per tag in ``data[0].data``, and the newest step's score is the last
    row's P(positive). ``model`` is sent when given (vLLM serves one model, so it may be left out).

    Each call has a timeout; connection failures, timeouts, 408/429/5xx are retried a bounded number of times
    with backoff. Failures raise ``BackendUnavailable`` (cannot connect) or ``BackendError``, naming the URL.
    """

    def __init__(
        self, url: str, *, model: str | None = None, timeout_s: float = 30.0, attempts: int = 3,
        base_delay_s: float = 0.5,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"PRM scorer needs an http(s) URL, e.g. prm:http://localhost:8000/pooling; got {url!r}")
        if attempts < 1 or timeout_s <= 0:
            raise ConfigError("PRM scorer needs attempts >= 1 and timeout_s > 0")
        self.url = url
        self.model = model
        self.vllm = parsed.path.rstrip("/").endswith("/pooling")
        self.timeout_s = timeout_s
        self.policy = RetryPolicy(attempts=attempts, base_delay_s=base_delay_s)
        self.name = f"prm:{url}"
        self.calls = 0

    def payload(self, problem: Problem, steps: Sequence[str]) -> dict[str, Any]:
        if not self.vllm:
            return {"question": problem.question, "steps": [str(s) for s in steps]}
        body: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": VLLM_SYSTEM},
                {"role": "user", "content": problem.question},
                {"role": "assistant", "content": "".join(f"{s}{VLLM_STEP_TAG}" for s in steps)},
            ],
            "add_generation_prompt": False,
        }
        if self.model:
            body["model"] = self.model
        return body

    def read(self, body: Any, count: int) -> float:
        """The newest step's score from a response body."""
        scores = _vllm_scores(body) if self.vllm else _plain_scores(body)
        if scores is None:
            raise BackendError(f"PRM server at {self.url} sent an unexpected response: {str(body)[:200]}")
        if not scores:
            raise BackendError(f"PRM server at {self.url} returned no step scores for {count} steps")
        score = scores[-1]
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise BackendError(f"PRM server at {self.url} returned a step score outside [0, 1]: {score!r}")
        return score

    async def _post(self, payload: dict[str, Any]) -> Any:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self.url, json=payload)
        except httpx.ConnectError as exc:
            raise BackendUnavailable(f"cannot reach the PRM server at {self.url} ({exc or 'refused'})",
                                     retryable=True) from exc
        except httpx.TimeoutException as exc:
            raise BackendError(f"the PRM server at {self.url} timed out after {self.timeout_s:g} s",
                               retryable=True) from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"request to the PRM server at {self.url} failed: {type(exc).__name__}: {exc}",
                               retryable=True) from exc
        if response.status_code != 200:
            text = " ".join(response.text.split())[:300]
            raise BackendError(
                f"PRM server at {self.url} answered HTTP {response.status_code}: {text}",
                status=response.status_code,
                retryable=response.status_code in (408, 429) or response.status_code >= 500,
                retry_after=retry_after_seconds(response),
            )
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"PRM server at {self.url} sent a body that is not JSON: "
                               f"{response.text[:200]!r}") from exc

    async def score(self, ctx: Ctx, problem: Problem, steps: Sequence[str]) -> float:
        if not steps:
            raise ValueError("a scorer needs at least one step")
        payload = self.payload(problem, steps)
        body = await with_retries(lambda: self._post(payload), self.policy)
        self.calls += 1
        return self.read(body, len(steps))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _plain_scores(body: Any) -> list[float] | None:
    if not isinstance(body, dict):
        return None
    if "scores" in body and isinstance(body["scores"], list):
        values = [_number(v) for v in body["scores"]]
        return None if any(v is None for v in values) else [v for v in values if v is not None]
    single = _number(body.get("score"))
    return None if single is None else [single]


def _vllm_scores(body: Any) -> list[float] | None:
    """P(positive) per step tag from a vLLM pooling response: ``data[0].data`` is ``[[p_neg, p_pos], ...]``."""
    try:
        rows = body["data"][0]["data"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(rows, list):
        return None
    scores: list[float] = []
    for row in rows:
        value = _number(row[-1]) if isinstance(row, list) and row else _number(row)
        if value is None:
            return None
        scores.append(value)
    return scores


def make_scorer(spec: str) -> StepScorer:
    """A step scorer from its spec: ``judge``, ``confidence``, ``confidence:<measure>`` or ``prm:<url>``."""
    kind, _, arg = spec.strip().partition(":")
    if kind == "judge" and not arg:
        return JudgeScorer()
    if kind == "confidence":
        return ConfidenceScorer(arg or "mean")
    if kind == "prm" and arg:
        return PRMScorer(arg)
    raise ConfigError(
        f"unknown step scorer {spec!r}; use one of {', '.join(SCORER_SPECS)} "
        f"(measures: {', '.join(STEP_MEASURES)})"
    )
