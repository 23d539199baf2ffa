"""Trace banks: recording, the file format, round trips, bad files, crash-safe resumable recording."""

from __future__ import annotations

import dataclasses
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ponder.backends.base import Capabilities
from ponder.backends.fake import FakeBackend
from ponder.bank import (
    FORMAT,
    VERSION,
    Bank,
    BankError,
    RecordProgress,
    load_partial,
    partial_path,
    record_bank,
)
from ponder.context import Sampling
from ponder.errors import CapabilityError
from ponder.types import GenerationRequest, Trace

SAMPLING = Sampling(temperature=0.8, max_tokens=96, seed=7, top_logprobs=5)


async def _record(path: Path, backend: FakeBackend | None = None, **kw: object) -> Bank:
    options: dict = {"n": 6, "limit": 5, "sampling": SAMPLING, "chunk": 4, "concurrency": 2}
    options.update(kw)
    return await record_bank("add1", backend=backend or FakeBackend(), path=path, **options)


async def test_record_writes_header_and_traces_that_round_trip_exactly(tmp_path: Path) -> None:
    path = tmp_path / "add1.bank.jsonl.gz"
    backend = FakeBackend()
    seen: list[int] = []
    bank = await _record(path, backend, model="fake (scripted)", on_progress=lambda p: seen.append(p.done))
    assert seen == [0, 1, 2, 3, 4, 5]
    assert max(call.request.n for call in backend.calls) == 4  # n=6 drawn in chunks of at most 4
    assert all(call.request.logprobs and call.request.top_logprobs == 5 for call in backend.calls)

    with gzip.open(path, "rt", encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        first = json.loads(fh.readline())
    assert header["format"] == FORMAT and header["version"] == VERSION
    assert header["model"] == "fake (scripted)" and header["n"] == 6 and header["problem_count"] == 5
    assert header["task"] == {"name": "add1", "seed": 0, "size": None, "offset": 0, "limit": 5, "data_dir": None}
    assert header["sampling"] == {"temperature": 0.8, "top_p": None, "max_tokens": 96, "seed": 7, "logprobs": True,
                                  "top_logprobs": 5, "extra": {}}
    assert header["prompt"]["messages"] == first["messages"]
    assert set(first) == {"id", "messages", "gold", "traces"}
    assert {"text", "reasoning", "tokens", "logprobs", "top_logprobs", "finish_reason", "prompt_tokens",
            "completion_tokens", "answer", "correct"} <= set(first["traces"][0])

    loaded = Bank.load(path)
    assert loaded.header() == bank.header()
    assert list(loaded.problems) == [f"add1/seed0/{i}" for i in range(5)]
    assert loaded.problems == bank.problems  # every trace field, tokens/logprobs/top_logprobs included
    trace = loaded.problems["add1/seed0/0"].traces[0]
    assert trace.tokens and len(trace.tokens) == len(trace.logprobs) == len(trace.top_logprobs)
    assert isinstance(trace.top_logprobs[0][0], tuple) and len(trace.top_logprobs[0]) == 5
    assert loaded.digest == bank.digest and loaded.path == path


async def test_traces_are_marked_with_answer_and_correctness(tmp_path: Path) -> None:
    bank = await _record(tmp_path / "b.bank.jsonl.gz")
    marks = [(t.answer, t.correct, p.gold) for p in bank.problems.values() for t in p.traces]
    assert len(marks) == 30
    assert all(answer is not None and correct == (answer == gold) for answer, correct, gold in marks)
    assert {correct for _, correct, _ in marks} == {True, False}  # the noisy solver is sometimes wrong


async def test_logprobs_survive_infinities_and_unicode(tmp_path: Path) -> None:
    bank = await _record(tmp_path / "a.bank.jsonl.gz")
    problem = next(iter(bank.problems.values()))
    problem.traces[0] = Trace(text="π ≈ 3", tokens=["π", " ≈", " 3"], logprobs=[-float("inf"), -0.5, -1e-9],
                              top_logprobs=[[("π", -float("inf"))], [(" ≈", -0.5)], [(" 3", -1e-9)]],
                              finish_reason="stop", prompt_tokens=3, completion_tokens=3, answer="3", correct=False)
    bank.save(tmp_path / "b.bank.jsonl.gz")
    assert Bank.load(tmp_path / "b.bank.jsonl.gz").problems == bank.problems


async def test_save_is_deterministic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    bank = await _record(tmp_path / "a.bank.jsonl.gz")
    bank.save(tmp_path / "b.bank.jsonl.gz")
    assert (tmp_path / "a.bank.jsonl.gz").read_bytes() == (tmp_path / "b.bank.jsonl.gz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bank.jsonl.gz", "b.bank.jsonl.gz"]


async def test_uncompressed_banks_are_read_too(tmp_path: Path) -> None:
    bank = await _record(tmp_path / "a.bank.jsonl.gz")
    plain = tmp_path / "a.bank.jsonl"
    plain.write_bytes(gzip.decompress((tmp_path / "a.bank.jsonl.gz").read_bytes()))
    assert Bank.load(plain).problems == bank.problems


# ---- bad files --------------------------------------------------------------------------------------


def _one_line_error(path: Path) -> str:
    with pytest.raises(BankError) as info:
        Bank.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.fixture
async def bank_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.bank.jsonl.gz"
    await _record(path)
    return path


def _rewrite(src: Path, dst: Path, edit_header: dict) -> Path:
    lines = gzip.decompress(src.read_bytes()).decode().splitlines(keepends=True)
    header = json.loads(lines[0])
    header.update(edit_header)
    dst.write_bytes(gzip.compress((json.dumps(header) + "\n" + "".join(lines[1:])).encode()))
    return dst


def test_missing_and_foreign_files_are_refused(tmp_path: Path) -> None:
    assert "cannot read bank" in _one_line_error(tmp_path / "nope.bank.jsonl.gz")
    (tmp_path / "notes.txt").write_text("hello world\n")
    assert "not a ponder trace bank" in _one_line_error(tmp_path / "notes.txt")
    (tmp_path / "other.jsonl.gz").write_bytes(gzip.compress(b'{"format": "something-else", "version": 1}\n'))
    assert "not a ponder trace bank" in _one_line_error(tmp_path / "other.jsonl.gz")
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    assert "empty" in _one_line_error(tmp_path / "empty.gz")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)))
    assert "not a ponder trace bank" in _one_line_error(tmp_path / "binary.bin")


def test_newer_versions_are_refused(bank_file: Path, tmp_path: Path) -> None:
    newer = _rewrite(bank_file, tmp_path / "v2.bank.jsonl.gz", {"version": VERSION + 1})
    message = _one_line_error(newer)
    assert f"version {VERSION + 1}" in message and "upgrade ponder" in message


def test_truncated_gzip_names_the_file_and_line(bank_file: Path, tmp_path: Path) -> None:
    data = bank_file.read_bytes()
    cut = tmp_path / "cut.bank.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    message = _one_line_error(cut)
    assert "truncated or corrupt" in message and "line" in message


def test_corrupt_gzip_is_refused(bank_file: Path, tmp_path: Path) -> None:
    data = bytearray(bank_file.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 40):
        data[i] ^= 0x55
    bad = tmp_path / "bad.bank.jsonl.gz"
    bad.write_bytes(bytes(data))
    assert "truncated or corrupt" in _one_line_error(bad)


def test_lost_problem_lines_are_noticed(bank_file: Path, tmp_path: Path) -> None:
    lines = gzip.decompress(bank_file.read_bytes()).decode().splitlines(keepends=True)
    short = tmp_path / "short.bank.jsonl.gz"
    short.write_bytes(gzip.compress("".join(lines[:-2]).encode()))
    assert "announces 5 problems but it holds 3" in _one_line_error(short)
    broken = tmp_path / "broken.bank.jsonl.gz"
    record = json.loads(lines[2])
    del record["traces"]
    broken.write_bytes(gzip.compress("".join([*lines[:2], json.dumps(record) + "\n", *lines[3:]]).encode()))
    assert "line 3" in _one_line_error(broken)


# ---- crash-safe, resumable recording ----------------------------------------------------------------


@dataclass
class Crashy:
    """A FakeBackend that dies on the ``fail_at``-th request."""

    inner: FakeBackend
    fail_at: int
    name: str = "fake"
    capabilities: Capabilities = field(default_factory=Capabilities)
    requests: int = 0

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        self.requests += 1
        if self.requests >= self.fail_at:
            raise RuntimeError("server died")
        return await self.inner.complete(request)

    def stream(self, request: GenerationRequest):  # type: ignore[no-untyped-def]
        return self.inner.stream(request)

    async def aclose(self) -> None:
        return None


async def test_killed_recording_resumes_without_resampling_done_problems(tmp_path: Path) -> None:
    path = tmp_path / "add1.bank.jsonl.gz"
    with pytest.raises(RuntimeError, match="server died"):
        # 2 requests per problem (n=6, chunk 4): the 6th request is problem 3's second chunk
        await _record(path, Crashy(FakeBackend(), fail_at=6), concurrency=1)  # type: ignore[arg-type]
    assert not path.exists()
    partial = partial_path(path)
    lines = partial.read_text().splitlines()
    assert len(lines) == 1 + 2  # header + problems 0 and 1 (problem 2 was in flight)
    started = "2026-01-02T03:04:05+00:00"  # as if the recording had begun long ago
    header = json.loads(lines[0]) | {"created_at": started}
    partial.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with open(partial, "a") as fh:
        fh.write('{"id": "add1/seed0/2", "messages": [{"ro')  # killed mid-write: a torn last line
    size = partial.stat().st_size
    so_far = load_partial(path)  # what `ponder bank info` shows of a recording still running
    assert list(so_far.problems) == ["add1/seed0/0", "add1/seed0/1"] and so_far.n == 6
    assert partial.stat().st_size == size  # read only: a running recorder may be appending

    backend = FakeBackend()
    progress: list[RecordProgress] = []
    bank = await _record(path, backend, on_progress=progress.append)
    asked = {call.request.messages[-1]["content"][:14] for call in backend.calls}
    questions = [p.messages[-1]["content"][:14] for p in bank.problems.values()]
    assert asked == set(questions[2:])  # problems 0 and 1 came from the partial file
    assert progress[-1].skipped == 2 and progress[-1].done == 3
    assert not partial.exists()
    assert Bank.load(path).created_at == started  # when the recording began, not when it was resumed

    fresh = await _record(tmp_path / "fresh.bank.jsonl.gz")
    assert Bank.load(path).problems == fresh.problems  # same traces as an uninterrupted recording


async def test_a_finished_bank_is_extended_by_a_larger_limit(tmp_path: Path) -> None:
    path = tmp_path / "add1.bank.jsonl.gz"
    await _record(path, limit=3)
    backend = FakeBackend()
    bank = await _record(path, backend, limit=5)
    assert len(bank.problems) == 5 and len(backend.calls) == 4  # only problems 3 and 4, two chunks each
    again = FakeBackend()
    assert (await _record(path, again, limit=5)).problems == bank.problems and not again.calls


async def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "add1.bank.jsonl.gz"
    await _record(path, limit=2)
    with pytest.raises(BankError, match=r"other settings \(sampling.temperature 0.8 there vs 0.5 now\)"):
        await _record(path, sampling=Sampling(temperature=0.5, max_tokens=96, seed=7, top_logprobs=5))
    with pytest.raises(BankError, match="n 6 there vs 8 now"):
        await _record(path, n=8)


async def test_recording_needs_logprobs(tmp_path: Path) -> None:
    with pytest.raises(CapabilityError, match="logprobs"):
        await _record(tmp_path / "x.bank.jsonl.gz", FakeBackend(logprobs=False))


# ---- problems of the bank ---------------------------------------------------------------------------


async def test_problems_for_task_reload_the_task_in_bank_order(tmp_path: Path) -> None:
    bank = await _record(tmp_path / "a.bank.jsonl.gz", offset=2, limit=3)
    bank.problems = dict(reversed(bank.problems.items()))
    problems = bank.problems_for_task()
    assert [p.id for p in problems] == list(bank.problems) and bank.warning is None
    assert all(p.meta["index"] in (2, 3, 4) for p in problems)
    assert [p.messages for p in problems] == [bp.messages for bp in bank.problems.values()]


async def test_problems_for_task_fall_back_when_the_task_is_gone(tmp_path: Path) -> None:
    bank = await _record(tmp_path / "a.bank.jsonl.gz", limit=2)
    bank.task.name = "no-such-task"
    problems = bank.problems_for_task()
    assert [p.id for p in problems] == list(bank.problems)
    assert bank.warning is not None and "could not be loaded" in bank.warning
    assert await problems[0].checker(problems[0].gold, problems[0])


async def test_problems_for_task_refuse_ids_the_task_lacks(tmp_path: Path) -> None:
    bank = await _record(tmp_path / "a.bank.jsonl.gz", limit=2)
    bank.task.size = 1  # the task no longer has problem 1
    with pytest.raises(BankError, match="not in task 'add1'"):
        bank.problems_for_task()


async def test_problems_for_task_keep_the_bank_prompts_and_take_the_task_golds(tmp_path: Path) -> None:
    bank = await _record(tmp_path / "a.bank.jsonl.gz", limit=2)
    first = next(iter(bank.problems.values()))
    task_gold = first.gold
    first.gold = "wrong"
    first.messages = [{"role": "user", "content": "What is 4 + 5? Reply with a number."}]
    problems = bank.problems_for_task()
    assert problems[0].gold == task_gold and problems[0].messages == first.messages
    assert bank.warning is not None and "1 prompts, 1 gold answers" in bank.warning
    stats = bank.stats()
    assert stats["problems"] == 2 and stats["traces"] == 12 and 0 < stats["trace_accuracy"] < 1


async def test_a_data_set_bank_replays_without_its_data_file_scored_by_the_task(tmp_path: Path) -> None:
    """A GSM8K bank needs neither the GSM8K file nor the Hub: the task's numeric extractor scores its traces."""
    from ponder.backends import BackendSpec
    from ponder.backends.replay import ReplayBackend
    from ponder.runner import EvalConfig, run_eval
    from ponder.store import Store

    # recorded from a three-problem GSM8K file of our own, so the test needs no ../shared/data beside the clone
    source = tmp_path / "source"
    source.mkdir()
    rows = [{"question": f"A farmer has {k} hens and buys {k + 1} more. How many hens?",
             "answer": f"{k} + {k + 1} = {2 * k + 1}\n#### {2 * k + 1}"} for k in (3, 5, 8)]
    (source / "gsm8k-test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    bank = await record_bank("gsm8k", backend=FakeBackend(), n=4, limit=3, path=tmp_path / "g.bank.jsonl.gz",
                             sampling=SAMPLING, data_dir=source)
    empty = tmp_path / "no-data"
    empty.mkdir()
    problems = bank.problems_for_task(empty)
    assert bank.warning is None and [p.id for p in problems] == list(bank.problems)
    assert [p.gold for p in problems] == [bp.gold for bp in bank.problems.values()]
    # the task's own extractor: a copied placeholder is no answer (the generic extractor would read "N")
    assert problems[0].extract("The answer is N.") is None
    assert problems[0].extract("so 18 eggs.\nThe answer is 18.") == "18"
    assert await problems[0].checker(problems[0].gold, problems[0])
    assert ReplayBackend(bank).bank is bank
    # a live run on the bank's problems, with no data file anywhere it looks
    with Store(tmp_path / "s.db") as store:
        config = EvalConfig(task="gsm8k", strategy="self-consistency", model=BackendSpec(kind="fake"),
                            params={"n": 2}, problems_from=Path(str(bank.path)), data_dir=empty, limit=2,
                            sampling=SAMPLING)
        outcome = await run_eval(config, store)
        assert [r.problem_id for r in store.results(outcome.run_id)] == list(bank.problems)[:2]
        assert not outcome.run_id.endswith("-r0")  # a live run, not a replay


async def test_two_recordings_pool_into_one_bank_and_mismatches_are_refused(tmp_path: Path) -> None:
    from ponder.bank import merge_banks

    loose = Sampling(temperature=0.8, max_tokens=96, top_logprobs=5)  # no seed: independent draws
    first = await _record(tmp_path / "a.bank.jsonl.gz", sampling=loose, limit=4)
    second = await _record(tmp_path / "b.bank.jsonl.gz", sampling=loose, offset=1, limit=4)
    merged = merge_banks(first, second)
    assert list(merged.problems) == [f"add1/seed0/{i}" for i in (1, 2, 3)]  # the problems both hold
    assert merged.n == 12 and all(len(p.traces) == 12 for p in merged.problems.values())
    shared = merged.problems["add1/seed0/2"]
    assert shared.traces[:6] == [dataclasses.replace(t) for t in first.problems["add1/seed0/2"].traces]
    assert [t.index for t in shared.traces] == list(range(12))
    path = merged.save(tmp_path / "m.bank.zip")
    assert Bank.load(path).n == 12 and Bank.load(path).task.limit == 3

    seeded = await _record(tmp_path / "c.bank.jsonl.gz")  # SAMPLING has seed 7
    assert merge_banks(first, seeded).n == 12  # seeds may differ (None and 7): other draws
    with pytest.raises(BankError, match="same recording"):
        merge_banks(seeded, Bank.load(tmp_path / "c.bank.jsonl.gz"))
    reseeded = await _record(tmp_path / "e.bank.jsonl.gz", offset=1, limit=3)  # another file, the same seed 7
    with pytest.raises(BankError, match="same draws"):
        merge_banks(seeded, reseeded)
    hotter = await _record(tmp_path / "d.bank.jsonl.gz", sampling=dataclasses.replace(loose, temperature=1.0))
    with pytest.raises(BankError, match="temperature"):
        merge_banks(first, hotter)
