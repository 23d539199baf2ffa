"""ponder's answer checkers and confidence measures as reward functions for RL (TRL's ``GRPOTrainer``).

A reward function has TRL's signature ``reward(prompts, completions, **kwargs) -> list[float]``: TRL passes the
prompts, the completions (strings, or lists of chat messages in conversational datasets), and every other dataset
column as a keyword argument holding one value per completion (plus its own ``completion_ids``, ``trainer_state``,
``log_extra`` and ``log_metric``, which these functions ignore)::

    from ponder import rewards

    trainer = GRPOTrainer(model=..., train_dataset=dataset,  # a "prompt" column and an "answer" column
                          reward_funcs=[rewards.correctness("gsm8k"), rewards.answer_format("gsm8k")])

* ``correctness(task)``: 1.0 when the task's extractor finds an answer and the task's checker accepts it against
  the gold answer of the row (column ``answer``), else 0.0. Checks that need math-verify run in ponder's
  answer-check worker processes (``ponder.answers``): math-verify bounds its work with ``signal.alarm``, which
  works only in a process's main thread, and sympy can hang; the workers keep both away from the trainer.
  Tasks whose checker needs more than a gold answer (game24, sat, reasoning-gym, plugin tasks) take the problems
  themselves: ``correctness(problems=load_task(...))`` with a ``problem_id`` column (``dataset_rows`` makes one).
* ``answer_format(task)``: 1.0 when the completion states a final answer in the form the task's prompt asks for
  (``\\boxed{}`` for the math sets, "The answer is N." for the arithmetic testbeds, ``ANSWER:`` lines for the logic
  tasks, ``<answer>`` tags for reasoning-gym) and the task's extractor reads an answer from it.
* ``confidence(measure)``: a confidence measure of ``ponder.confidence`` (DeepConf's, self-certainty,
  -perplexity, the answer's probability) over the completion's token logprobs. TRL's built-in generation does not
  pass logprobs to reward functions (TRL 1.16 keeps only the sampled tokens' logprobs, for importance sampling),
  so this reward reads them from columns that a ``rollout_func`` returns as extra fields (TRL forwards those to
  reward functions), or from ``traces=`` (ponder ``Trace`` objects, e.g. ``Answer.traces`` or a bank's).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ponder.answers import extract_answer, extract_number_answer
from ponder.answers.abstain import check_abstain, with_abstention
from ponder.answers.equivalence import check_math
from ponder.answers.extract import find_closing_brace
from ponder.confidence import DEFAULT_WINDOW, MeasureName, check_measure, measure
from ponder.errors import ConfigError
from ponder.tasks.datasets import normalize_number
from ponder.tasks.game24 import extract_expression
from ponder.tasks.gym import extract_gym_answer
from ponder.tasks.logic import check_label, extract_label, extract_tagged
from ponder.tasks.prompts import ABSTAIN_ARITHMETIC_CLAUSE, ABSTAIN_MATH_CLAUSE
from ponder.types import Checker, Extractor, Problem, Trace

__all__ = [
    "ANSWER_COLUMN",
    "ID_COLUMN",
    "TOKENS_COLUMN",
    "TOKEN_LOGPROBS_COLUMN",
    "TOP_LOGPROBS_COLUMN",
    "TRACES_COLUMN",
    "Form",
    "RewardFunction",
    "TaskRule",
    "answer_format",
    "completion_text",
    "confidence",
    "correctness",
    "dataset_rows",
    "task_rule",
]

ANSWER_COLUMN = "answer"
"""The column holding the gold answer (as in GSM8K and MATH on the Hub)."""
ID_COLUMN = "problem_id"
"""The column holding a ponder problem id, for tasks checked against the problem itself."""
TOKEN_LOGPROBS_COLUMN = "token_logprobs"
"""Per completion: the logprob of each sampled token (``list[float]``). Not ``logprobs``: TRL's ``rollout_func``
must return that key for itself and does not forward it."""
TOP_LOGPROBS_COLUMN = "top_logprobs"
"""Per completion, per token: the top-k alternatives, as ``(token, logprob)`` pairs, ``{"token", "logprob"}``
dicts (OpenAI's form), a ``{token: logprob}`` mapping, or bare logprobs."""
TOKENS_COLUMN = "tokens"
"""Per completion: the sampled tokens as text (only the ``answer`` measure needs them, to find the answer)."""
TRACES_COLUMN = "traces"
"""Per completion: a ponder ``Trace``, instead of the three logprob columns."""

# Keyword arguments TRL adds that are not dataset columns: left out of "the batch has columns ..." messages.
_TRL_KWARGS = frozenset({"completion_ids", "trainer_state", "log_extra", "log_metric", "environments"})

Form = Literal["boxed", "answer-phrase", "answer-tag"]
"""How a completion states its final answer: ``\\boxed{...}``; "The answer is ..." / "Answer: ..." /
"ANSWER: ..."; ``<answer>...</answer>``."""

T = TypeVar("T")


# ---- the tasks -----------------------------------------------------------------------------------------------


def _text_gold(value: Any) -> str:
    return str(value).strip()


def _gsm8k_gold(value: Any) -> str:
    """GSM8K's gold column holds the whole solution ending in ``#### 18`` (as on the Hub), or just the number."""
    text = str(value)
    return normalize_number(text.rsplit("####", 1)[1].strip().replace(",", "") if "####" in text else value)


@dataclass(frozen=True)
class TaskRule:
    """How a task's completions are read and checked, without loading its problems.

    ``extract`` and ``checker`` are the ones the task's problems carry (a test keeps them in step);
    ``checker`` is None for tasks whose checker needs the problem itself (its numbers, clauses or reasoning-gym
    entry), not just a gold answer. ``gold`` turns a dataset's gold value (text, or a number: AMC's ``27.0``)
    into the task's gold answer, as the task's loader does.
    """

    extract: Extractor
    form: Form
    checker: Checker | None = None
    gold: Callable[[Any], str] = _text_gold


_NUMERIC_MATH = TaskRule(extract_number_answer, "boxed", check_math, normalize_number)
_ARITHMETIC = TaskRule(extract_number_answer, "answer-phrase", check_math, normalize_number)
_PUZZLE = TaskRule(extract_expression, "answer-phrase")
_SAT = TaskRule(extract_tagged, "answer-phrase")
_RULES: dict[str, TaskRule] = {
    "gsm8k": TaskRule(extract_number_answer, "boxed", check_math, _gsm8k_gold),
    "math500": TaskRule(extract_answer, "boxed", check_math),
    "aime24": _NUMERIC_MATH,
    "amc23": _NUMERIC_MATH,
    "add1": _ARITHMETIC,
    "apples": _ARITHMETIC,
    "larger": _ARITHMETIC,
    "add21": _ARITHMETIC,
    "gsm8k-abstain": TaskRule(with_abstention(extract_number_answer, echoes=(ABSTAIN_MATH_CLAUSE,)), "boxed",
                              check_abstain),
    "add1-abstain": TaskRule(with_abstention(extract_number_answer, echoes=(ABSTAIN_ARITHMETIC_CLAUSE,)),
                             "answer-phrase", check_abstain),
    "logic": TaskRule(extract_label, "answer-phrase", check_label),
    "sat": _SAT,
    "sat-story": _SAT,
    "game24": _PUZZLE,
    "countdown": _PUZZLE,
    "countdown3": _PUZZLE,
}
_GYM = TaskRule(extract_gym_answer, "answer-tag")


def task_rule(task: str) -> TaskRule:
    """The rule of a built-in task (any ``gym:<dataset>`` included); ConfigError for other names."""
    task = task.strip()
    if task.startswith("gym:"):
        return _GYM
    rule = _RULES.get(task)
    if rule is None:
        raise ConfigError(f"no reward rule for task {task!r}; built-in tasks: {', '.join(_RULES)}, gym:<dataset>. "
                          "For another task pass its problems: correctness(problems=load_task(...))")
    return rule


# ---- reading TRL's arguments ---------------------------------------------------------------------------------


def completion_text(completion: Any) -> str:
    """A completion as text: a string as it is; a list of chat messages (TRL's conversational form) as its
    assistant messages' contents, joined. Reasoning kept apart (``reasoning_content``) is not part of the answer."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    parts = []
    for message in completion:
        if not isinstance(message, Mapping):
            raise ConfigError(f"a completion must be a string or a list of chat messages, got {type(message)!r}")
        if message.get("role", "assistant") != "assistant":
            continue  # tool results and the like are not the model's words
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # content blocks: [{"type": "text", "text": ...}, ...]
            parts.extend(str(block.get("text", "")) for block in content
                         if isinstance(block, Mapping) and block.get("type") == "text")
    return "\n".join(parts)


def _columns(kwargs: Mapping[str, Any]) -> str:
    names = sorted(k for k in kwargs if k not in _TRL_KWARGS)
    return ", ".join(names) if names else "none"


def _column(kwargs: Mapping[str, Any], name: str, count: int, reward: str, hint: str) -> Sequence[Any]:
    """Column ``name`` with one value per completion; ConfigError naming the columns present when it is not."""
    values = kwargs.get(name)
    if values is None:
        raise ConfigError(f"reward {reward!r} needs the dataset column {name!r} ({hint}); the batch has columns: "
                          f"{_columns(kwargs)}")
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != count:
        size = len(values) if isinstance(values, Sequence) else type(values).__name__
        raise ConfigError(f"reward {reward!r}: column {name!r} must hold one value per completion ({count}), "
                          f"got {size}")
    return values


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, also when this thread already runs an event loop
    (a notebook): then on a helper thread with its own loop, since a running loop cannot be re-entered."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1, thread_name_prefix="ponder-rewards") as pool:
        return pool.submit(asyncio.run, coroutine).result()


# ---- the reward functions ------------------------------------------------------------------------------------


class RewardFunction:
    """A reward function in TRL's form; ``__name__`` is what TRL logs it as (``rewards/<name>/mean``)."""

    __name__: str

    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __repr__(self) -> str:
        return f"<ponder reward {self.__name__}>"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        raise NotImplementedError


class _Correctness(RewardFunction):
    def __init__(self, name: str, rule: TaskRule | None, problems: dict[str, Problem] | None,
                 answer_column: str, id_column: str) -> None:
        super().__init__(name)
        self.rule = rule
        self.problems = problems
        self.answer_column = answer_column
        self.id_column = id_column

    def _row_problems(self, count: int, kwargs: Mapping[str, Any]) -> list[Problem]:
        if self.problems is not None:
            ids = _column(kwargs, self.id_column, count, self.__name__, "the ponder problem id of each prompt; "
                          "ponder.rewards.dataset_rows(problems) makes it")
            missing = [str(i) for i in ids if str(i) not in self.problems]
            if missing:
                raise ConfigError(f"reward {self.__name__!r}: unknown problem id {missing[0]!r} in column "
                                  f"{self.id_column!r} ({len(self.problems)} problems were given)")
            return [self.problems[str(i)] for i in ids]
        rule = self.rule
        assert rule is not None and rule.checker is not None
        golds = _column(kwargs, self.answer_column, count, self.__name__,
                        "the gold answer; pass answer_column=... if it has another name")
        problems = []
        for i, gold in enumerate(golds):
            if gold is None or not str(gold).strip():
                raise ConfigError(f"reward {self.__name__!r}: row {i} has no gold answer in column "
                                  f"{self.answer_column!r}")
            problems.append(Problem(id=f"row{i}", messages=[], gold=rule.gold(gold), checker=rule.checker,
                                    extract=rule.extract))
        return problems

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        problems = self._row_problems(len(completions), kwargs)
        answers = [problem.extract(completion_text(c)) for problem, c in zip(problems, completions, strict=True)]

        async def check_all() -> list[bool]:
            # All at once: the checker pool works through them in parallel and shares repeated pairs.
            checks: list[Awaitable[bool]] = [p.checker(a, p) for p, a in zip(problems, answers, strict=True)]
            return list(await asyncio.gather(*checks))

        verdicts = _run(check_all())
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):  # TRL's completions table then shows what was read as the answer
            log_extra(f"{self.__name__}/answer", answers)
        return [1.0 if ok else 0.0 for ok in verdicts]


def correctness(task: str | None = None, *, problems: Iterable[Problem] | None = None,
                answer_column: str = ANSWER_COLUMN, id_column: str = ID_COLUMN) -> RewardFunction:
    """A reward of 1.0 for a right answer and 0.0 for a wrong or missing one (nothing extracted).

    With ``task`` (a built-in task whose checker needs only the gold answer: the math sets, the arithmetic and
    abstention testbeds, ``logic``), each completion is read with the task's extractor and checked by the
    task's checker against the gold answer in ``answer_column`` (GSM8K's may be the whole ``... #### 18``
    solution). With ``problems`` (any task: ``ponder.tasks.load_task(...)``), each row names its problem in
    ``id_column`` and is read and checked by that problem's own extractor and checker.

    Answers equal up to form count as right (``0.5`` and ``\\frac{1}{2}``, ``(x+1)^2`` and ``x^2+2x+1``); checks
    beyond plain numbers run in ponder's answer-check worker processes, all of a batch at once.
    """
    if problems is not None:
        by_id = {problem.id: problem for problem in problems}
        if not by_id:
            raise ConfigError("correctness: problems= is empty")
        return _Correctness(f"correctness_{task}" if task else "correctness", None, by_id, answer_column, id_column)
    if task is None:
        raise ConfigError("correctness needs a task name or problems=")
    rule = task_rule(task)
    if rule.checker is None:
        raise ConfigError(f"task {task!r} checks answers against each problem itself, not a gold answer: pass "
                          f"correctness({task!r}, problems=load_task({task!r}, ...)) and a {id_column!r} column "
                          "(ponder.rewards.dataset_rows makes one)")
    return _Correctness(f"correctness_{task.strip()}", rule, None, answer_column, id_column)


_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_PHRASE = re.compile(r"answer(?:\*\*|__)?[ \t]*(?::|\bis\b[ \t]*:?|=)[ \t]*\S", re.IGNORECASE)
_TAG = re.compile(r"<answer>\s*\S.*?</answer>", re.IGNORECASE | re.DOTALL)
_THINK_END = "</think>"


def _visible(text: str) -> str:
    """The answer part of a completion: what follows a closed ``<think>`` block, when anything does."""
    end = text.rfind(_THINK_END)
    if end != -1 and text[end + len(_THINK_END) :].strip():
        return text[end + len(_THINK_END) :]
    return text


def _has_form(text: str, form: Form) -> bool:
    if form == "boxed":
        for match in _BOX.finditer(text):
            close = find_closing_brace(text, match.end() - 1)
            if close != -1 and text[match.end() : close].strip():
                return True
        return False
    return (_PHRASE if form == "answer-phrase" else _TAG).search(text) is not None


class _Format(RewardFunction):
    def __init__(self, name: str, form: Form, extract: Extractor) -> None:
        super().__init__(name)
        self.form = form
        self.extract = extract

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        scores: list[float | None] = []
        for completion in completions:
            text = completion_text(completion)
            # The form alone is not enough: "The answer is N." copied from the prompt states nothing.
            ok = _has_form(_visible(text), self.form) and self.extract(text) is not None
            scores.append(1.0 if ok else 0.0)
        return scores


def answer_format(task: str | None = None, *, form: Form | None = None,
                  extract: Extractor | None = None) -> RewardFunction:
    """A reward of 1.0 when a completion states a final answer in the expected form, else 0.0.

    The form and extractor are the task's (``\\boxed{}`` for the math sets, "The answer is N." for the arithmetic
    testbeds, ``ANSWER:``/``Answer:`` lines for the logic tasks and puzzles, ``<answer>`` tags for reasoning-gym),
    or ``form``/``extract`` as given (default extractor: ``extract_answer``). The answer's correctness plays no
    part; the stated answer must be one the extractor reads (a copied placeholder is not).
    """
    if task is None and form is None:
        raise ConfigError("answer_format needs a task name or form=")
    rule = task_rule(task) if task is not None else None
    chosen_form = form if form is not None else rule.form if rule is not None else "boxed"
    if chosen_form not in ("boxed", "answer-phrase", "answer-tag"):
        raise ConfigError(f"unknown answer form {chosen_form!r}; known: boxed, answer-phrase, answer-tag")
    chosen_extract = extract if extract is not None else rule.extract if rule is not None else extract_answer
    return _Format(f"format_{task.strip()}" if task else f"format_{chosen_form}", chosen_form, chosen_extract)


# ---- confidence ----------------------------------------------------------------------------------------------

_SAMPLED_ONLY = frozenset({"neg_perplexity", "answer"})  # measures that read the sampled tokens' logprobs only


def _alternatives(position: Any) -> list[tuple[str, float]]:
    """One position's top-k in ponder's form, from any of the shapes ``TOP_LOGPROBS_COLUMN`` names."""
    if isinstance(position, Mapping):
        return [(str(token), float(lp)) for token, lp in position.items()]
    alternatives = []
    for j, entry in enumerate(position):
        if isinstance(entry, Mapping):
            alternatives.append((str(entry.get("token", j)), float(entry["logprob"])))
        elif isinstance(entry, (int, float)):
            alternatives.append((str(j), float(entry)))
        else:
            token, lp = entry
            alternatives.append((str(token), float(lp)))
    return alternatives


class _Confidence(RewardFunction):
    def __init__(self, name: str, measure_name: str, window: int, extract: Extractor) -> None:
        super().__init__(name)
        self.measure_name = measure_name
        self.window = window
        self.extract = extract

    def _traces(self, completions: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Trace]:
        count = len(completions)
        if kwargs.get(TRACES_COLUMN) is not None:
            return list(_column(kwargs, TRACES_COLUMN, count, self.__name__, "ponder traces"))
        hint = ("TRL's own generation passes no logprobs to reward functions: return them from a rollout_func as "
                "extra fields, or pass traces=")
        sampled_only = self.measure_name in _SAMPLED_ONLY
        if sampled_only:
            logprobs = _column(kwargs, TOKEN_LOGPROBS_COLUMN, count, self.__name__, hint)
            tops: Sequence[Any] = [[] for _ in range(count)]
        else:
            tops = _column(kwargs, TOP_LOGPROBS_COLUMN, count, self.__name__, f"the top-k of every token; {hint}")
            given = kwargs.get(TOKEN_LOGPROBS_COLUMN)
            # The top-k measures never read the sampled tokens' logprobs; NaN only marks the positions.
            logprobs = given if given is not None else [[math.nan] * len(top) for top in tops]
        tokens = kwargs.get(TOKENS_COLUMN)
        if self.measure_name == "answer" and tokens is None:
            tokens = _column(kwargs, TOKENS_COLUMN, count, self.__name__, "the sampled tokens' text, to find the "
                             "answer's tokens")
        traces = []
        for i, completion in enumerate(completions):
            text = completion_text(completion)
            trace = Trace(text=text, logprobs=[float(lp) for lp in logprobs[i]],
                          top_logprobs=[_alternatives(position) for position in tops[i]],
                          tokens=[str(t) for t in tokens[i]] if tokens is not None else [])
            if not trace.tokens:
                trace.tokens = [""] * len(trace.logprobs)  # positions without text: measures count tokens
            trace.answer = self.extract(text)
            traces.append(trace)
        return traces

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        scores: list[float | None] = []
        for trace in self._traces(completions, kwargs):
            value = measure(trace, self.measure_name, window=self.window)
            # No evidence (no tokens, no answer) is no reward: TRL reads None as "not scored" rather than as a
            # number, which -inf would poison the group's mean with.
            scores.append(value if math.isfinite(value) else None)
        return scores


def confidence(measure_name: MeasureName = "mean", *, window: int = DEFAULT_WINDOW, task: str | None = None,
               extract: Extractor | None = None) -> RewardFunction:
    """A reward equal to a confidence measure of the completion (higher is more confident), None without evidence.

    ``measure_name`` is one of ``ponder.confidence.MEASURES``: ``mean``, ``lowest_group``, ``bottom10`` and
    ``tail`` (DeepConf's, over ``window`` tokens) and ``self_certainty`` read each token's top-k alternatives
    (k >= 2) from the ``top_logprobs`` column; ``neg_perplexity`` reads the ``token_logprobs`` column, and
    ``answer`` (the mean probability of the answer's tokens, CRew) also the ``tokens`` column, and the answer
    as the task's extractor (or ``extract``, default ``extract_answer``) reads it. A ``traces`` column of ponder
    ``Trace`` objects replaces all three. TRL's own generation does not supply these; a ``rollout_func`` can
    (TRL forwards its extra fields to reward functions), and so can callers scoring ponder's traces.

    Values are on the measure's own scale (``neg_perplexity`` is negative); GRPO normalises rewards per group.
    """
    name = check_measure(measure_name)
    if window < 1:
        raise ConfigError(f"confidence window must be at least 1 token, got {window}")
    chosen = extract if extract is not None else task_rule(task).extract if task is not None else extract_answer
    return _Confidence(f"confidence_{name}", name, window, chosen)


# ---- datasets ------------------------------------------------------------------------------------------------


def dataset_rows(problems: Iterable[Problem], *, conversational: bool = True) -> list[dict[str, Any]]:
    """Rows for a TRL dataset (``datasets.Dataset.from_list``) from ponder problems: ``prompt`` (the problem's
    chat messages, or their contents joined when ``conversational`` is false), ``answer`` (the gold answer) and
    ``problem_id``, which ``correctness(problems=...)`` looks problems up by."""
    rows = []
    for problem in problems:
        messages = [dict(message) for message in problem.messages]
        prompt: Any = messages if conversational else "\n\n".join(m["content"] for m in messages)
        rows.append({"prompt": prompt, ANSWER_COLUMN: problem.gold, ID_COLUMN: problem.id})
    return rows
