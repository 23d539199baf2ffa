"""Trace banks: N recorded traces per problem, with full token logprobs, in one portable versioned file.

A bank is recorded once from a live model (``record_bank``) and replayed any number of times by
``ponder.backends.replay.ReplayBackend``, so a strategy can be evaluated offline at any N with the same
token accounting as live.

File format (``.bank.jsonl.gz``): gzip-compressed JSON Lines, UTF-8. Line 1 is the header::

    {"format": "ponder-bank", "version": 1, "created_at": ISO-8601, "ponder_version": "0.1.0",
     "model": "<BackendSpec.describe()>", "model_name": str | null,
     "task": {"name", "seed", "size", "offset", "limit", "data_dir"},
     "sampling": {"temperature", "top_p", "max_tokens", "seed", "logprobs", "top_logprobs", "extra"},
     "n": N, "prompt": {"example_id", "messages"}, "problem_count": P}

then one line per problem, in bank order::

    {"id", "messages", "gold", "traces": [{"text", "reasoning", "tokens", "logprobs", "top_logprobs",
      "finish_reason", "prompt_tokens", "completion_tokens", "latency_s", "answer", "correct"}]}

``top_logprobs`` is one list per token of ``[token, logprob]`` pairs. Logprobs may be ``-Infinity`` (Python's
JSON extension). Readers accept the same content uncompressed. Files of a newer ``version`` are refused.

A bank saved under a name ending in ``.zip`` is written in the packed format of ``ponder.bank.packed``
(quantized top-k logprobs, about a sixteenth of the size); ``load`` reads either. Loaded traces hold their top-k
alternatives as ``PackedTop`` arrays, not tuples, so a million-token bank fits in a few hundred MB.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any

from ponder.bank.packed import is_packed, read_packed, write_packed
from ponder.context import Sampling
from ponder.errors import PonderError
from ponder.files import file_digest
from ponder.top_rows import PackedTop, Vocabulary, pack_rows
from ponder.types import Message, Problem, Trace

__all__ = ["FORMAT", "SUFFIX", "VERSION", "Bank", "BankError", "BankProblem", "BankTask"]

FORMAT = "ponder-bank"
VERSION = 1
SUFFIX = ".bank.jsonl.gz"
PACKED_SUFFIX = ".bank.zip"
PARTIAL_SUFFIX = ".partial"


class BankError(PonderError):
    """A bank file that cannot be read, or a bank that cannot serve what was asked."""


# ---- data ---------------------------------------------------------------------------------------


@dataclass
class BankTask:
    """Which task the bank's problems come from, and how it was loaded."""

    name: str
    seed: int = 0
    size: int | None = None
    offset: int = 0
    limit: int | None = None
    data_dir: str | None = None


@dataclass
class BankProblem:
    id: str
    messages: list[Message]
    gold: str | None
    traces: list[Trace] = field(default_factory=list)


@dataclass
class Bank:
    """A trace bank: the header fields plus ``problems`` by id, in bank order."""

    task: BankTask
    sampling: Sampling
    n: int
    model: str
    model_name: str | None = None
    created_at: str = ""
    ponder_version: str = ""
    prompt: Any = None
    problems: dict[str, BankProblem] = field(default_factory=dict)
    version: int = VERSION
    path: Path | None = field(default=None, compare=False)  # where it was loaded from or saved to
    digest: str | None = field(default=None, compare=False)  # sha256 of the file (16 hex digits): load, save
    warning: str | None = field(default=None, compare=False)  # set by problems_for_task when it had to adapt

    # ---- header ---------------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "created_at": self.created_at,
            "ponder_version": self.ponder_version,
            "model": self.model,
            "model_name": self.model_name,
            "task": asdict(self.task),
            "sampling": asdict(self.sampling),
            "n": self.n,
            "prompt": self.prompt,
            "problem_count": len(self.problems),
        }

    def identity(self) -> dict[str, Any]:
        """What must match for two recordings to belong in one bank (the slice and data_dir may differ)."""
        return _identity(self.header())

    @property
    def top_logprobs(self) -> int:
        """The top-k recorded per token (0 when none)."""
        return (self.sampling.top_logprobs or 0) if self.sampling.logprobs else 0

    # ---- files ----------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Bank:
        """Read a bank (JSON lines or packed); a wrong, newer, truncated or corrupt file raises a one-line
        ``BankError``."""
        path = Path(path)
        try:
            packed = is_packed(path)
        except OSError as exc:
            raise BankError(f"cannot read bank {path}: {exc.strerror or _first_line(exc)}") from exc
        if packed:
            return _load_packed(path)
        bank: Bank | None = None
        expected: int | None = None
        count = 0
        vocab = Vocabulary()
        for lineno, record in _read_records(path):
            if bank is None:
                bank, expected = _bank_from_header(record, path)
                continue
            problem = _problem_from_json(record, path, lineno, vocab)
            if problem.id in bank.problems:
                raise BankError(f"{path} line {lineno}: problem {problem.id!r} appears twice")
            bank.problems[problem.id] = problem
            count += 1
        if bank is None:
            raise BankError(f"{path} is empty: not a ponder trace bank")
        if expected is not None and expected != count:
            raise BankError(f"{path} is truncated: its header announces {expected} problems but it holds {count}")
        bank.path = path
        bank.digest = file_digest(path)
        return bank

    def save(self, path: str | Path) -> Path:
        """Write the bank gzip-compressed, or packed when ``path`` ends in ``.zip`` (to a temporary file, then
        renamed: never a half-written bank)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            if path.name.endswith(".zip"):
                self._write_packed(tmp)
            else:
                self._write_json(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.path = path
        self.digest = file_digest(path)
        return path

    def _write_json(self, tmp: Path) -> None:
        with open(tmp, "wb") as raw:
            # mtime=0 and no file name: the same bank always gives the same bytes (and digest).
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
                gz.write(_dumps(self.header()).encode())
                for problem in self.problems.values():
                    gz.write(_dumps(_problem_json(problem)).encode())
            raw.flush()
            os.fsync(raw.fileno())

    def _write_packed(self, tmp: Path) -> None:
        header = self.header()
        records, arrays = [], []
        for problem in self.problems.values():
            record = _problem_json(problem)
            for trace_record, trace in zip(record["traces"], problem.traces, strict=True):
                for key in ("tokens", "logprobs", "top_logprobs"):
                    del trace_record[key]
                arrays.append((trace.tokens, trace.logprobs, trace.top_logprobs))
            records.append(record)
        write_packed(tmp, header, records, arrays, self.top_logprobs)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())

    # ---- problems -------------------------------------------------------------------------------

    def problems_for_task(self, data_dir: str | Path | None = None) -> list[Problem]:
        """The bank's problems as task ``Problem``s (with the task's checker and extractor), in bank order.

        The task named in the header is reloaded with the recorded seed and size (fixed data sets from
        ``data_dir``, else the recorded data_dir if it exists here, else the usual local search; never the
        Hub). Prompts come from the bank, since its traces answer them; gold answers from the task. A fixed data
        set whose file is not here is scored by the task's own checker and extractor with the bank's golds (a
        bank replays without its data). Otherwise, if the task cannot be loaded (optional dependency absent, a
        task gone), problems are built from the bank with the generic math extractor and checker; ``warning``
        says so.
        """
        from ponder.tasks import load_task
        from ponder.tasks.registry import get_task

        self.warning = None
        if data_dir is None and self.task.data_dir and Path(self.task.data_dir).is_dir():
            data_dir = self.task.data_dir
        try:
            loaded = load_task(self.task.name, data_dir=data_dir, seed=self.task.seed, size=self.task.size,
                               hub=False)
        except (PonderError, OSError, ImportError) as exc:
            try:
                rebuild = get_task(self.task.name).rebuild
            except PonderError:
                rebuild = None
            if rebuild is not None:
                return [rebuild(p.id, p.messages, p.gold) for p in self.problems.values()]
            self.warning = (f"task {self.task.name!r} could not be loaded ({_first_line(exc)}); answers are "
                            "extracted and checked with the generic math extractor and checker")
            return [self._generic_problem(p) for p in self.problems.values()]
        by_id = {p.id: p for p in loaded}
        problems = []
        prompts_changed = golds_changed = 0
        for bp in self.problems.values():
            task_problem = by_id.get(bp.id)
            if task_problem is None:
                raise BankError(
                    f"problem {bp.id!r} of bank {self.path or ''} is not in task {self.task.name!r} "
                    f"(seed {self.task.seed}, size {self.task.size}): the task changed since the bank was recorded"
                )
            prompts_changed += task_problem.messages != bp.messages
            golds_changed += task_problem.gold != bp.gold
            problems.append(replace(task_problem, messages=bp.messages))
        if prompts_changed or golds_changed:
            self.warning = (f"task {self.task.name!r} changed since the bank was recorded ({prompts_changed} prompts, "
                            f"{golds_changed} gold answers): the bank's prompts and the task's gold answers are used")
        return problems

    def stats(self) -> dict[str, Any]:
        """Counts for a summary: problems, traces, share of correct traces, tokens, traces cut by max_tokens."""
        traces = [t for p in self.problems.values() for t in p.traces]
        judged = [t.correct for t in traces if t.correct is not None]
        return {
            "problems": len(self.problems),
            "traces": len(traces),
            "trace_accuracy": sum(judged) / len(judged) if judged else None,
            "completion_tokens": sum(t.completion_tokens for t in traces),
            "length_cut": sum(t.finish_reason == "length" for t in traces),
        }

    @staticmethod
    def _generic_problem(bp: BankProblem) -> Problem:
        from ponder.answers import check_math, extract_answer

        return Problem(id=bp.id, messages=bp.messages, gold=bp.gold, checker=check_math, extract=extract_answer)


# ---- reading ------------------------------------------------------------------------------------


def _read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) for each line; every failure becomes a one-line BankError."""
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise BankError(f"cannot read bank {path}: {exc.strerror or _first_line(exc)}") from exc
    lineno = 0
    with _open_text(path, compressed) as fh:
        while True:
            try:
                line = fh.readline()
            except (EOFError, zlib.error, OSError, ValueError) as exc:  # BadGzipFile is an OSError
                if lineno == 0:
                    raise BankError(f"{path} is not a ponder trace bank ({_first_line(exc)})") from exc
                raise BankError(f"{path} is truncated or corrupt after line {lineno} ({_first_line(exc)})") from exc
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                what = "is not a ponder trace bank" if lineno == 1 else "is truncated or corrupt"
                raise BankError(f"{path} {what}: line {lineno} is not valid JSON ({_first_line(exc)})") from exc
            if not isinstance(record, dict):
                what = "is not a ponder trace bank" if lineno == 1 else "is corrupt"
                raise BankError(f"{path} {what}: line {lineno} is not a JSON object")
            yield lineno, record


def _open_text(path: Path, compressed: bool) -> IO[str]:
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _checked_header(record: dict[str, Any], path: Path) -> dict[str, Any]:
    if record.get("format") != FORMAT:
        raise BankError(f"{path} is not a ponder trace bank (its first line has no \"format\": \"{FORMAT}\")")
    version = record.get("version")
    if not isinstance(version, int) or version < 1:
        raise BankError(f"{path}: bank header has an invalid version {version!r}")
    if version > VERSION:
        raise BankError(f"{path} is bank format version {version}, but this ponder reads versions up to {VERSION}: "
                        "upgrade ponder")
    for key in ("task", "sampling", "n"):
        if key not in record:
            raise BankError(f"{path}: bank header lacks {key!r}")
    return record


def _bank_from_header(record: dict[str, Any], path: Path) -> tuple[Bank, int | None]:
    """The bank the header describes (no problems yet) and the problem count it announces."""
    record = _checked_header(record, path)
    try:
        task = _known(BankTask, record["task"])
        sampling = _known(Sampling, record["sampling"])
        bank = Bank(
            task=BankTask(**task),
            sampling=Sampling(**sampling),
            n=int(record["n"]),
            model=str(record.get("model", "")),
            model_name=record.get("model_name"),
            created_at=str(record.get("created_at", "")),
            ponder_version=str(record.get("ponder_version", "")),
            prompt=record.get("prompt"),
            version=int(record["version"]),
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise BankError(f"{path}: malformed bank header ({_first_line(exc)})") from exc
    count = record.get("problem_count")
    return bank, count if isinstance(count, int) else None


def _known(cls: Any, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} must be an object")
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _load_packed(path: Path) -> Bank:
    try:
        header, records, arrays = read_packed(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise BankError(f"{path} is not a readable packed bank ({_first_line(exc)})") from exc
    bank, expected = _bank_from_header(header, path)
    if expected is not None and expected != len(records):
        raise BankError(f"{path} is truncated: its header announces {expected} problems but it holds {len(records)}")
    supply = iter(arrays)
    for lineno, record in enumerate(records, start=1):
        problem = _problem_from_json(record, path, lineno, None, supply)
        if problem.id in bank.problems:
            raise BankError(f"{path} problem {problem.id!r} appears twice")
        bank.problems[problem.id] = problem
    bank.path = path
    bank.digest = file_digest(path)
    return bank


def _problem_from_json(record: dict[str, Any], path: Path, lineno: int, vocab: Vocabulary | None = None,
                       packed: Iterator[tuple[list[str], list[float], PackedTop]] | None = None) -> BankProblem:
    """A problem record; its traces' token arrays come from the record, or from ``packed`` (a packed bank)."""
    vocab = vocab or Vocabulary()
    try:
        traces = [_trace_from_json(t, i, vocab, next(packed) if packed else None)
                  for i, t in enumerate(record["traces"])]
        messages = [dict(m) for m in record["messages"]]
        gold = record.get("gold")
        return BankProblem(str(record["id"]), messages, None if gold is None else str(gold), traces)
    except (TypeError, ValueError, KeyError) as exc:
        raise BankError(f"{path} line {lineno}: malformed problem record ({type(exc).__name__}: "
                        f"{_first_line(exc)})") from exc


def _trace_from_json(t: dict[str, Any], index: int, vocab: Vocabulary,
                     arrays: tuple[list[str], list[float], PackedTop] | None = None) -> Trace:
    if arrays is not None:
        tokens, logprobs, top = arrays
    else:
        # JSON gives strings and floats; the rows are packed into arrays (tuples would hold ~2.9 KB per token).
        tokens = list(t["tokens"])
        logprobs = [float(x) for x in t["logprobs"]]
        top = pack_rows([[(tok, lp) for tok, lp in row] for row in t.get("top_logprobs") or []], vocab)
    if len(logprobs) != len(tokens) or (top and len(top) != len(tokens)):
        raise ValueError(f"trace {index} has {len(tokens)} tokens but {len(logprobs)} logprobs / {len(top)} top lists")
    correct = t.get("correct")
    return Trace(
        text=str(t.get("text", "")),
        reasoning=str(t.get("reasoning", "")),
        tokens=tokens,
        logprobs=logprobs,
        top_logprobs=top,
        finish_reason=t.get("finish_reason"),
        prompt_tokens=int(t.get("prompt_tokens", 0)),
        completion_tokens=int(t.get("completion_tokens", len(tokens))),
        latency_s=float(t.get("latency_s", 0.0)),
        index=index,
        answer=t.get("answer"),
        correct=None if correct is None else bool(correct),
    )


# ---- writing ------------------------------------------------------------------------------------


def _problem_json(problem: BankProblem) -> dict[str, Any]:
    return {"id": problem.id, "messages": problem.messages, "gold": problem.gold,
            "traces": [_trace_json(t) for t in problem.traces]}


def _trace_json(t: Trace) -> dict[str, Any]:
    return {
        "text": t.text,
        "reasoning": t.reasoning,
        "tokens": t.tokens,
        "logprobs": t.logprobs,
        "top_logprobs": t.top_logprobs.tolist() if isinstance(t.top_logprobs, PackedTop) else t.top_logprobs,
        "finish_reason": t.finish_reason,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "latency_s": round(t.latency_s, 4),
        "answer": t.answer,
        "correct": t.correct,
    }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


# ---- helpers ------------------------------------------------------------------------------------


def _identity(header: dict[str, Any]) -> dict[str, Any]:
    task = dict(header.get("task") or {})
    return {
        "model": header.get("model"),
        "model_name": header.get("model_name"),
        "task": {k: task.get(k) for k in ("name", "seed", "size")},
        "sampling": header.get("sampling"),
        "n": header.get("n"),
    }


def _check_same(found: dict[str, Any], wanted: dict[str, Any], path: Path) -> None:
    a, b = _flat(_identity(found)), _flat(_identity(wanted))
    diffs = [f"{k} {a.get(k)!r} there vs {b.get(k)!r} now" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if diffs:
        raise BankError(f"{path} holds a recording with other settings ({'; '.join(diffs[:3])}): use another path, "
                        "the same settings, or delete it")


def _flat(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and key != "extra":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
