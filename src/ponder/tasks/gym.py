"""``gym:<dataset>``: any reasoning-gym dataset, prompted and scored the way reasoning-gym's own eval does.

The prompt is reasoning-gym's ``SYSTEM_PROMPTS["default"]`` (answer inside ``<answer>…</answer>``) plus the
entry's question; answers are extracted from the last ``<answer>`` tag (else ponder's ``extract_answer``) and
scored by the dataset's own ``score_answer(answer, entry)``: correct iff the score is at least 1.0 (scores are
floats in [0, 1]; several datasets give partial credit such as 0.01 for a well-formed wrong answer).

reasoning-gym is an optional extra (``pip install 'ponder[tasks]'``), imported only when a gym task is used.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from types import ModuleType
from typing import Any

from ponder.answers import extract_answer
from ponder.errors import TaskError, one_line
from ponder.tasks.registry import DEFAULT_SIZE, GYM_PREFIX, LoadOptions, TaskSpec
from ponder.types import Message, Problem

MAX_TOKENS = 1024
INSTALL_HINT = "pip install 'ponder[tasks]'"

_FALLBACK_SYSTEM_PROMPT = (  # used only if reasoning_gym.utils.SYSTEM_PROMPTS goes away
    "Given a problem, answer the question by thinking step by step. Once you have thought it through, give "
    "the answer in this format:\n<answer>answer here</answer>\n"
    "Do not explain your reasoning inside the answer tags, provide only the final answer.\n"
)
_ANSWER_TAG = re.compile(r"<answer>\s?(.*?)\s?</answer>", re.DOTALL)


def _reasoning_gym() -> ModuleType:
    try:
        import reasoning_gym
    except ImportError:
        raise TaskError(f"gym tasks need the reasoning-gym package: {INSTALL_HINT}") from None
    return reasoning_gym


def gym_datasets() -> list[str]:
    """Names of every dataset reasoning-gym can create (``gym:<name>`` tasks)."""
    _reasoning_gym()
    from reasoning_gym.factory import DATASETS

    return sorted(name for name in DATASETS if name != "composite")  # composite needs a config of datasets


def system_prompt() -> str:
    try:
        from reasoning_gym.utils import SYSTEM_PROMPTS

        return str(SYSTEM_PROMPTS["default"])
    except (ImportError, KeyError):
        return _FALLBACK_SYSTEM_PROMPT


def extract_gym_answer(text: str) -> str | None:
    """The last ``<answer>…</answer>`` content (reasoning-gym's own extractor), else ponder's extractor."""
    try:
        from reasoning_gym.utils import extract_answer as tagged_answer

        tagged = tagged_answer(text)
    except ImportError:
        matches = _ANSWER_TAG.findall(text)
        tagged = matches[-1].strip() if matches else None
    if tagged:
        return str(tagged)
    return extract_answer(text)


class GymScorer:
    """Checker for one reasoning-gym entry: ``dataset.score_answer(answer, entry) >= 1.0``.

    Picklable: the dataset object (some hold lambdas) is dropped and re-created from name, seed and size.
    """

    def __init__(
        self, dataset: str, seed: int, size: int, entry: dict[str, Any], instance: Any = None
    ) -> None:
        self.dataset = dataset
        self.seed = seed
        self.size = size
        self.entry = entry
        self._instance = instance

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_instance": None}

    def _scorer(self) -> Any:
        if self._instance is None:
            self._instance = _reasoning_gym().create_dataset(self.dataset, seed=self.seed, size=self.size)
        return self._instance

    def score(self, answer: str | None) -> float:
        """The dataset's score in [0, 1]; a scorer that raises on odd input scores 0."""
        if answer is None:
            return 0.0
        scorer = self._scorer()
        try:
            return float(scorer.score_answer(answer, self.entry))
        except Exception:  # e.g. prime_factorization raises ValueError on non-numeric answers
            return 0.0

    async def __call__(self, answer: str | None, problem: Problem) -> bool:
        # Some scorers use sympy or run puzzles; keep them off the event loop.
        return await asyncio.to_thread(self.score, answer) >= 1.0


def _description(dataset: str) -> str:
    from reasoning_gym.factory import DATASETS

    doc = (DATASETS[dataset][0].__doc__ or "").strip()
    first = doc.splitlines()[0].strip() if doc else ""
    return f"reasoning-gym {dataset}" + (f": {first}" if first else "")


def gym_task(dataset: str) -> TaskSpec:
    """The spec of ``gym:<dataset>``; unknown datasets are a TaskError listing close matches."""
    names = gym_datasets()
    if dataset not in names:
        close = difflib.get_close_matches(dataset, names, n=5, cutoff=0.5)
        if not dataset:
            hint = f"name one, e.g. {', '.join(GYM_PREFIX + n for n in names[:5])}"
        elif close:
            hint = f"close matches: {', '.join(GYM_PREFIX + n for n in close)}"
        else:
            hint = f"{len(names)} datasets exist, e.g. {', '.join(GYM_PREFIX + n for n in names[:5])}"
        raise TaskError(f"unknown reasoning-gym dataset {dataset!r}; {hint}")
    return TaskSpec(
        name=GYM_PREFIX + dataset,
        description=_description(dataset),
        source="reasoning-gym",
        data=f"generated by reasoning-gym from the seed (default size {DEFAULT_SIZE})",
        max_tokens=MAX_TOKENS,
        loader=lambda options: load_gym(dataset, options),
    )


def load_gym(dataset: str, options: LoadOptions) -> list[Problem]:
    rg = _reasoning_gym()
    size = options.size if options.size is not None else DEFAULT_SIZE
    name = GYM_PREFIX + dataset
    try:
        data = rg.create_dataset(dataset, seed=options.seed, size=size)
    except Exception as e:
        raise TaskError(f"{name}: reasoning-gym could not create the dataset ({one_line(e)})") from None
    system: Message = {"role": "system", "content": system_prompt()}
    problems = []
    for i in options.window(size):
        try:
            entry = data[i]
        except Exception as e:
            raise TaskError(f"{name}: reasoning-gym failed on item {i} ({one_line(e)})") from None
        gold = entry.get("answer")
        problems.append(
            Problem(
                id=f"{name}/seed{options.seed}/{i}",
                messages=[dict(system), {"role": "user", "content": str(entry["question"])}],
                gold=None if gold is None else str(gold),
                checker=GymScorer(dataset, options.seed, size, entry, data),
                extract=extract_gym_answer,
                meta={"dataset": dataset, "seed": options.seed, "index": i, "entry": entry},
            )
        )
    return problems


def _name_a_dataset(options: LoadOptions) -> list[Problem]:
    raise TaskError(f"name a reasoning-gym dataset: {GYM_PREFIX}<dataset>, e.g. {GYM_PREFIX}basic_arithmetic")


GYM_INFO = TaskSpec(
    name=f"{GYM_PREFIX}<dataset>",
    description="any reasoning-gym dataset (e.g. gym:basic_arithmetic), scored by its own score_answer",
    source="reasoning-gym",
    data=f"generated by reasoning-gym from the seed; needs {INSTALL_HINT}",
    max_tokens=MAX_TOKENS,
    loader=_name_a_dataset,
)
