"""Packed banks (.bank.zip): quantized top-k logprobs, exact texts, the same replays, and clear errors."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ponder.backends.fake import FakeBackend
from ponder.backends.replay import ReplayBackend
from ponder.bank import Bank, BankError, record_bank
from ponder.bank.packed import CHOSEN_QUANTUM, QUANTUM
from ponder.context import Ctx, Sampling
from ponder.runner import solve
from ponder.top_rows import PackedTop, Vocabulary, pack_rows
from ponder.types import Trace

SAMPLING = Sampling(temperature=0.8, max_tokens=96, seed=5, top_logprobs=5)


@pytest.fixture(scope="module")
def json_bank(tmp_path_factory: pytest.TempPathFactory) -> Bank:
    path = tmp_path_factory.mktemp("packed") / "add1.bank.jsonl.gz"
    asyncio.run(record_bank("add1", backend=FakeBackend(), n=10, limit=8, sampling=SAMPLING, path=path, chunk=5))
    return Bank.load(path)


@pytest.fixture(scope="module")
def packed_bank(json_bank: Bank, tmp_path_factory: pytest.TempPathFactory) -> Bank:
    path = tmp_path_factory.mktemp("packed") / "add1.bank.zip"
    dataclasses.replace(json_bank).save(path)  # a copy: save() points the bank at the file it wrote
    return Bank.load(path)


def _values(rows: object) -> np.ndarray:
    return np.array([[lp for _, lp in row] for row in rows])  # type: ignore[attr-defined]


def test_packed_bank_keeps_everything_but_logprob_digits_and_alternative_names(json_bank: Bank,
                                                                             packed_bank: Bank) -> None:
    assert packed_bank.header() == json_bank.header()
    assert list(packed_bank.problems) == list(json_bank.problems)
    for pid, problem in json_bank.problems.items():
        for a, b in zip(problem.traces, packed_bank.problems[pid].traces, strict=True):
            assert (a.text, a.reasoning, a.tokens, a.answer, a.correct, a.finish_reason, a.completion_tokens,
                    a.prompt_tokens) == (b.text, b.reasoning, b.tokens, b.answer, b.correct, b.finish_reason,
                                         b.completion_tokens, b.prompt_tokens)
            assert len(b.top_logprobs) == len(a.top_logprobs) and isinstance(b.top_logprobs, PackedTop)
            # quantized to 1/QUANTUM nats: within half a step of what was recorded; the sampled token's finer
            assert np.abs(_values(a.top_logprobs) - _values(b.top_logprobs)).max() <= 0.5 / QUANTUM + 1e-12
            assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) <= 0.5 / CHOSEN_QUANTUM + 1e-12
            for token, row in zip(b.tokens, b.top_logprobs, strict=True):
                names = [name for name, _ in row]
                assert set(names) <= {token, ""}  # other alternatives' names are not kept
            # the sampled token is named at the rank the recording had it, with that rank's value
            first = a.top_logprobs[0]
            rank = [t for t, _ in first].index(a.tokens[0])
            assert b.top_logprobs[0][rank] == (a.tokens[0], b.logprobs[0])


def test_packed_banks_are_much_smaller_and_byte_stable(json_bank: Bank, packed_bank: Bank, tmp_path: Path) -> None:
    again = packed_bank.save(tmp_path / "again.bank.zip")
    assert again.read_bytes() == Path(str(packed_bank.path)).read_bytes()  # packing twice changes nothing
    assert Path(str(packed_bank.path)).stat().st_size < Path(str(json_bank.path)).stat().st_size / 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.bank.zip"]  # no temporary file left


async def test_replays_of_a_packed_bank_answer_like_the_json_bank(json_bank: Bank, packed_bank: Bank) -> None:
    """Strategies that read confidences pick the same answers: quantization is far below their differences."""
    problems = json_bank.problems_for_task()
    for strategy, params in [("self-consistency", {"n": 8}), ("deepconf", {"mode": "offline", "n": 8}),
                             ("deepconf", {"mode": "online", "n": 8, "warmup": 4, "window": 4}),
                             ("self-certainty", {"n": 8})]:
        for problem in problems:
            outcomes = []
            for bank in (json_bank, packed_bank):
                backend = ReplayBackend(bank, seed=2)
                ctx = Ctx(backend.for_problem(problem.id), problem, sampling=bank.sampling)
                result = await solve(problem, ctx, strategy, dict(params))
                outcomes.append((result.answer, ctx.usage.completion_tokens))
            assert outcomes[0] == outcomes[1], (strategy, params, problem.id)


def test_ragged_rows_infinities_and_untokenizable_text_survive(tmp_path: Path, json_bank: Bank) -> None:
    problem = next(iter(json_bank.problems.values()))
    odd = Trace(text="π ≈ 3", tokens=["π", " ≈", " 3", ""], logprobs=[-math.inf, -0.5, -1e-9, -0.01],
                top_logprobs=[[("π", -math.inf)], [(" ≈", -0.5), ("=", -1.25)], [(" 3", -1e-9), (" 4", -30.0)],
                              [("", -0.01), ("x", -7.0)]],
                finish_reason="stop", prompt_tokens=3, completion_tokens=4, answer="3", correct=True)
    spelled = Trace(text="ab", tokens=["<a>", "b"], logprobs=[-0.1, -0.2],
                    top_logprobs=[[("<a>", -0.1), ("c", -3.0)], [("b", -0.2), ("d", -2.0)]], completion_tokens=2)
    bank = dataclasses.replace(json_bank, problems={problem.id: dataclasses.replace(problem)})
    bank.problems[problem.id].traces = [odd, spelled, *problem.traces[2:]]
    path = bank.save(tmp_path / "odd.bank.zip")
    loaded = Bank.load(path).problems[problem.id].traces
    assert loaded[0].tokens == odd.tokens and loaded[0].text == odd.text
    assert [len(row) for row in loaded[0].top_logprobs] == [0, 2, 2, 2]  # the -inf padding is cut off again
    assert loaded[0].logprobs[0] == -math.inf and loaded[0].top_logprobs[2] == [(" 3", 0.0), ("", -30.0)]
    assert loaded[1].tokens == ["<a>", "b"] and loaded[1].text == "ab"  # tokens that do not spell the text


def test_packed_top_reads_like_rows_and_is_read_only() -> None:
    rows = [[("a", -0.1), ("b", -2.0)], [("c", -0.5)], []]
    packed = pack_rows(rows, Vocabulary())
    assert packed == rows and list(packed) == rows and len(packed) == 3
    assert packed[1] == [("c", -0.5)] and packed[0][1] == ("b", -2.0)
    assert packed[:2] == rows[:2] and isinstance(packed[:2], PackedTop)
    assert packed != [[("a", -0.1)]]
    trace = Trace(tokens=["a"], logprobs=[-0.1], top_logprobs=packed)
    from ponder.types import Delta, TokenLogprob

    with pytest.raises(TypeError, match="read-only"):
        trace.append(Delta(text="x", tokens=[TokenLogprob("x", -1.0, [])]))


def test_loaded_json_banks_hold_packed_rows(json_bank: Bank) -> None:
    trace = next(iter(json_bank.problems.values())).traces[0]
    assert isinstance(trace.top_logprobs, PackedTop)  # not a list of tuples: a million tokens must fit in memory
    assert isinstance(trace.top_logprobs[0][0], tuple) and len(trace.top_logprobs[0]) == 5


def _damaged(src: Path, dst: Path, drop: str | None = None, replace: tuple[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename == drop:
                continue
            data = replace[1] if replace and info.filename == replace[0] else zin.read(info.filename)
            zout.writestr(info.filename, data)
    return dst


def test_damaged_packed_banks_are_refused_with_one_line(packed_bank: Bank, tmp_path: Path) -> None:
    src = Path(str(packed_bank.path))
    truncated = tmp_path / "truncated.bank.zip"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(BankError, match="not a readable packed bank"):
        Bank.load(truncated)
    missing = _damaged(src, tmp_path / "missing.bank.zip", drop="chars.u8")
    with pytest.raises(BankError, match=r"lacks chars\.u8"):
        Bank.load(missing)
    short = _damaged(src, tmp_path / "short.bank.zip", replace=("chosen.u32", b"\0\0\0\0"))
    with pytest.raises(BankError, match="columns hold 1 tokens"):
        Bank.load(short)
    for path in (truncated, missing, short):
        with pytest.raises(BankError) as info:
            Bank.load(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_confidence_measures_read_packed_rows_like_lists(packed_bank: Bank) -> None:
    """The array fast path of the DeepConf measures and self-certainty gives what the per-row path gives."""
    from ponder import confidence

    for trace in next(iter(packed_bank.problems.values())).traces:
        as_list = dataclasses.replace(trace, top_logprobs=trace.top_logprobs.tolist())  # type: ignore[union-attr]
        assert np.allclose(confidence.token_confidences(trace), confidence.token_confidences(as_list),
                           rtol=0, atol=1e-12)
        for name in ("mean", "lowest_group", "bottom10", "tail", "self_certainty"):
            fast, slow = confidence.measure(trace, name), confidence.measure(as_list, name)
            assert math.isclose(fast, slow, rel_tol=0, abs_tol=1e-12), name
    narrow = Trace(tokens=["a"], logprobs=[-0.1], top_logprobs=pack_rows([[("a", -0.1)]], Vocabulary()))
    with pytest.raises(Exception, match="--top-logprobs"):
        confidence.token_confidences(narrow)


async def test_replayed_traces_from_a_packed_bank_are_stored_like_live_ones(packed_bank: Bank, tmp_path: Path) -> None:
    from ponder.backends import BackendSpec
    from ponder.runner import EvalConfig, run_eval
    from ponder.store import Store

    with Store(tmp_path / "s.db") as store:
        config = EvalConfig(task="add1", strategy="self-consistency", model=BackendSpec(kind="fake"), params={"n": 4},
                            replay=Path(str(packed_bank.path)), store_traces=True, limit=2)
        outcome = await run_eval(config, store)
        stored = [t for _, t in store.traces(outcome.run_id)]
    assert len(stored) == 8 and all(len(t.top_logprobs) == len(t.tokens) > 0 for t in stored)
    assert isinstance(stored[0].top_logprobs[0][0], tuple) and len(stored[0].top_logprobs[0]) == 5
