"""Fixed math data sets (GSM8K, MATH-500, AIME 2024, AMC 2023) from JSONL files or the Hugging Face Hub.

Where the JSONL file is looked for, first match wins:

1. the ``data_dir`` argument (``--data-dir``): the file must be there, no fallback;
2. the ``PONDER_DATA_DIR`` environment variable: likewise;
3. ``./data``, then ``../shared/data`` (relative to the current directory);
4. the Hugging Face Hub, through the optional ``datasets`` package (``pip install 'ponder[hf]'``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.answers import check_math, extract_answer, extract_number_answer
from ponder.errors import TaskError, one_line
from ponder.tasks.prompts import math_messages
from ponder.tasks.registry import LoadOptions, TaskSpec, register_task
from ponder.types import Message, Problem

log = logging.getLogger(__name__)

DATA_DIR_ENV = "PONDER_DATA_DIR"
FALLBACK_DIRS = ("data", os.path.join("..", "shared", "data"))
"""Directories tried, relative to the current directory, when neither data_dir nor the env var is set."""


class RowError(ValueError):
    """A row lacks a field or has one of the wrong shape; the loader adds file and line."""


@dataclass(frozen=True)
class JsonlSet:
    """A fixed data set: its file name, its Hugging Face fallback, how a row becomes a Problem, and whether its
    answers are all numbers."""

    name: str
    filename: str
    hub_id: str
    hub_config: str | None
    hub_split: str
    convert: Callable[[dict[str, Any], int], Problem]
    numeric: bool


# ---------------------------------------------------------------------------------------------- rows


def _value(row: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = row.get(name)
        if value is not None:
            return value
    raise RowError(f"missing field {names[0]!r}")


def _text(row: dict[str, Any], *names: str) -> str:
    return str(_value(row, *names))


def normalize_number(value: Any) -> str:
    """Gold answers stored as numbers: ``27.0`` -> ``"27"``, ``"025"`` -> ``"25"``; other text unchanged."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if re.fullmatch(r"[-+]?\d+", text):
        return str(int(text))
    return text


def _math_problem(
    pid: str, question: str, gold: str, meta: dict[str, Any], *, numeric: bool = False
) -> Problem:
    """A math Problem; ``numeric`` when every gold answer is a number (GSM8K, AIME, AMC 2023), so a final
    statement that is not a number (a copied placeholder, a bare letter) carries no answer."""
    return _recorded_math_problem(numeric)(pid, math_messages(question), gold, meta)


def _recorded_math_problem(numeric: bool) -> Callable[..., Problem]:
    """How a math problem is scored, applied to a prompt and gold answer (also those a bank recorded)."""
    def make(pid: str, messages: list[Message], gold: str | None, meta: dict[str, Any] | None = None) -> Problem:
        return Problem(id=pid, messages=messages, gold=gold, checker=check_math,
                       extract=extract_number_answer if numeric else extract_answer, meta=meta or {})

    return make


def gsm8k_problem(row: dict[str, Any], index: int) -> Problem:
    solution = _text(row, "answer")
    if "####" not in solution:
        raise RowError("field 'answer' has no '#### N' final line")
    gold = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not gold:
        raise RowError("field 'answer' has nothing after '####'")
    return _math_problem(f"gsm8k/test/{index}", _text(row, "question"), gold, {"index": index}, numeric=True)


def math500_problem(row: dict[str, Any], index: int) -> Problem:
    # Answers are expressions, intervals, words and choices as often as numbers: generic extraction.
    uid = str(row.get("unique_id") or index)
    meta = {"subject": row.get("subject"), "level": row.get("level"), "unique_id": uid}
    return _math_problem(f"math500/{uid}", _text(row, "problem"), _text(row, "answer").strip(), meta)


def _competition_problem(task: str) -> Callable[[dict[str, Any], int], Problem]:
    def convert(row: dict[str, Any], index: int) -> Problem:
        source_id = row.get("id", index)
        meta = {"source_id": source_id, "url": row.get("url")}
        gold = normalize_number(_value(row, "answer"))
        # AIME answers are integers 0-999; the AMC 2023 set stores every answer as a number (27.0).
        return _math_problem(f"{task}/{source_id}", _text(row, "problem", "question"), gold, meta, numeric=True)

    return convert


SETS = {
    s.name: s
    for s in (
        JsonlSet("gsm8k", "gsm8k-test.jsonl", "openai/gsm8k", "main", "test", gsm8k_problem, True),
        JsonlSet("math500", "math500-test.jsonl", "HuggingFaceH4/MATH-500", None, "test", math500_problem, False),
        JsonlSet(
            "aime24", "aime24.jsonl", "HuggingFaceH4/aime_2024", None, "train", _competition_problem("aime24"), True
        ),
        JsonlSet("amc23", "amc23.jsonl", "math-ai/amc23", None, "test", _competition_problem("amc23"), True),
    )
}

# --------------------------------------------------------------------------------------------- files


def find_data_file(task: str, filename: str, data_dir: Path | None) -> Path | None:
    """The JSONL file to read, or None to try the Hub; an explicit dir lacking the file is an error."""
    explicit: list[tuple[Path, str]] = []
    if data_dir is not None:
        explicit.append((data_dir, "the given data dir"))
    elif os.environ.get(DATA_DIR_ENV):
        explicit.append((Path(os.environ[DATA_DIR_ENV]).expanduser(), DATA_DIR_ENV))
    for directory, origin in explicit:
        path = directory / filename
        if path.is_file():
            return path
        if not directory.is_dir():
            raise TaskError(f"{task}: data dir {directory} ({origin}) does not exist")
        raise TaskError(f"{task}: {filename} not found in {directory} ({origin})")
    for fallback in FALLBACK_DIRS:
        candidate = Path.cwd() / fallback / filename
        if candidate.is_file():
            return candidate
    return None


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; anything unreadable is a TaskError naming the line."""
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TaskError(f"{path}:{lineno}: not valid JSON ({e.msg}, column {e.colno})") from None
                if not isinstance(obj, dict):
                    raise TaskError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                rows.append((lineno, obj))
    except (OSError, UnicodeDecodeError) as e:
        raise TaskError(f"cannot read {path}: {e}") from None
    return rows


def load_hub_rows(ds: JsonlSet) -> list[dict[str, Any]]:
    """Rows of the data set from the Hugging Face Hub; raises RuntimeError with a one-line reason."""
    try:
        import datasets  # optional extra: ponder[hf]
    except ImportError:
        raise RuntimeError("the datasets package is not installed: pip install 'ponder[hf]'") from None
    try:
        if ds.hub_config is None:
            data = datasets.load_dataset(ds.hub_id, split=ds.hub_split)
        else:
            data = datasets.load_dataset(ds.hub_id, ds.hub_config, split=ds.hub_split)
        return [dict(row) for row in data]
    except Exception as e:  # network, auth, missing dataset, schema: all reported the same way
        raise RuntimeError(one_line(e)) from None


def load_set(ds: JsonlSet, options: LoadOptions) -> list[Problem]:
    path = find_data_file(ds.name, ds.filename, options.data_dir)
    problems: list[Problem] = []
    if path is not None:
        for index, (lineno, row) in enumerate(read_jsonl(path)):
            try:
                problems.append(ds.convert(row, index))
            except RowError as e:
                raise TaskError(f"{path}:{lineno}: {e}") from None
    elif not options.hub:
        raise TaskError(f"{ds.name}: {ds.filename} not found in ./data or ../shared/data (and the Hub was not asked)")
    else:
        try:
            rows = load_hub_rows(ds)
        except RuntimeError as e:
            raise TaskError(
                f"{ds.name}: {ds.filename} not found in ./data or ../shared/data; pass --data-dir DIR or set "
                f"{DATA_DIR_ENV} (loading {ds.hub_id} from Hugging Face also failed: {e})"
            ) from None
        log.info("%s: loaded %d rows from Hugging Face %s", ds.name, len(rows), ds.hub_id)
        for index, row in enumerate(rows):
            try:
                problems.append(ds.convert(row, index))
            except RowError as e:
                raise TaskError(f"{ds.name}: Hugging Face {ds.hub_id} row {index}: {e}") from None
    return [problems[i] for i in options.window(len(problems))]


def _loader(ds: JsonlSet) -> Callable[[LoadOptions], list[Problem]]:
    return lambda options: load_set(ds, options)


_DESCRIPTIONS = {
    "gsm8k": ("GSM8K test: grade-school math word problems (1319), numeric answers", 1024),
    "math500": ("MATH-500: competition math, 5 levels, 7 subjects (500), LaTeX answers", 2048),
    "aime24": ("AIME 2024 I and II (30), integer answers 0-999", 4096),
    "amc23": ("AMC 2023 (40), numeric answers", 4096),
}

for _ds in SETS.values():
    _description, _max_tokens = _DESCRIPTIONS[_ds.name]
    register_task(
        TaskSpec(
            name=_ds.name,
            description=_description,
            source="jsonl",
            data=f"{_ds.filename} (data dir), else Hugging Face {_ds.hub_id}",
            max_tokens=_max_tokens,
            loader=_loader(_ds),
            rebuild=_recorded_math_problem(_ds.numeric),
        )
    )
