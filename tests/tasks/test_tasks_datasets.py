"""The fixed JSONL data sets: counts, golds, slicing, where files are looked for, and error messages."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from ponder.answers import check_math, extract_answer, extract_number_answer
from ponder.errors import TaskError
from ponder.tasks import load_task
from ponder.tasks.datasets import normalize_number


@pytest.mark.parametrize(
    ("name", "count"), [("gsm8k", 1319), ("math500", 500), ("aime24", 30), ("amc23", 40)]
)
def test_sets_load_with_right_counts(shared_data: Path, name: str, count: int) -> None:
    problems = load_task(name, data_dir=shared_data)
    assert len(problems) == count
    assert len({p.id for p in problems}) == count
    for p in problems:
        assert p.id.startswith(f"{name}/")
        assert p.gold
        assert p.checker is check_math
        # number-answer sets read one number ("The answer is N." carries none); MATH-500 answers are expressions
        assert p.extract is (extract_answer if name == "math500" else extract_number_answer)
        assert p.messages[-1]["role"] == "user"
        assert "\\boxed{}" in p.messages[-1]["content"]


def test_gsm8k_golds(shared_data: Path) -> None:
    problems = load_task("gsm8k", data_dir=shared_data)
    assert problems[0].id == "gsm8k/test/0"
    assert problems[0].gold == "18"
    assert problems[0].question.startswith("Janet’s ducks lay 16 eggs per day.")
    assert problems[1].gold == "3"
    assert problems[17].id == "gsm8k/test/17"
    assert problems[17].gold == "57500"
    assert problems[146].gold == "2125"  # "#### 2,125" in the file: commas removed
    assert problems[1318].gold == "14"


def test_math500_golds_and_meta(shared_data: Path) -> None:
    problems = load_task("math500", data_dir=shared_data)
    first = problems[0]
    assert first.id == "math500/test/precalculus/807.json"
    assert first.gold == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.meta["subject"] == "Precalculus"
    assert first.meta["level"] == 2
    assert problems[1].gold == "p - q"
    assert problems[1].meta == {
        "subject": "Intermediate Algebra",
        "level": 5,
        "unique_id": "test/intermediate_algebra/1994.json",
    }
    assert problems[499].gold == "106^\\circ"


def test_aime_and_amc_golds_are_normalized(shared_data: Path) -> None:
    aime = {p.id: p for p in load_task("aime24", data_dir=shared_data)}
    assert aime["aime24/60"].gold == "204"
    assert aime["aime24/67"].gold == "25"  # "025" in the file
    assert aime["aime24/89"].gold == "902"
    assert aime["aime24/60"].question.startswith("Every morning Aya goes for a $9$-kilometer-long walk")
    amc = {p.id: p for p in load_task("amc23", data_dir=shared_data)}
    assert amc["amc23/0"].gold == "27"  # 27.0 in the file
    assert amc["amc23/17"].gold == "-1"
    assert amc["amc23/44"].gold == "1625"
    assert amc["amc23/0"].meta["url"].startswith("https://artofproblemsolving.com/")


def test_normalize_number() -> None:
    assert normalize_number(27.0) == "27"
    assert normalize_number(2.5) == "2.5"
    assert normalize_number("025") == "25"
    assert normalize_number("-7") == "-7"
    assert normalize_number(" \\frac{1}{2} ") == "\\frac{1}{2}"


def test_limit_and_offset_slice_in_file_order(shared_data: Path) -> None:
    full = load_task("gsm8k", data_dir=shared_data)
    part = load_task("gsm8k", data_dir=shared_data, offset=10, limit=5)
    assert [p.id for p in part] == [p.id for p in full[10:15]]
    assert [p.id for p in load_task("aime24", data_dir=shared_data, limit=3)] == [
        "aime24/60",
        "aime24/61",
        "aime24/62",
    ]
    assert load_task("amc23", data_dir=shared_data, offset=38, limit=10)[-1].id == full_last_amc(shared_data)
    assert load_task("amc23", data_dir=shared_data, offset=40) == []
    assert load_task("amc23", data_dir=shared_data, limit=0) == []


def full_last_amc(data: Path) -> str:
    return load_task("amc23", data_dir=data)[-1].id


# ------------------------------------------------------------------------------------------ locations


def _write(directory: Path, name: str, rows: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _gsm(question: str, gold: str) -> dict:
    return {"question": question, "answer": f"Some work.\n#### {gold}"}


def test_env_var_is_used(isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "env", "gsm8k-test.jsonl", [_gsm("env?", "1")])
    _write(isolated / "data", "gsm8k-test.jsonl", [_gsm("cwd?", "2")])
    monkeypatch.setenv("PONDER_DATA_DIR", str(tmp_path / "env"))
    assert load_task("gsm8k")[0].question.startswith("env?")


def test_explicit_dir_beats_env_var(isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "env", "gsm8k-test.jsonl", [_gsm("env?", "1")])
    _write(tmp_path / "explicit", "gsm8k-test.jsonl", [_gsm("explicit?", "3")])
    monkeypatch.setenv("PONDER_DATA_DIR", str(tmp_path / "env"))
    [p] = load_task("gsm8k", data_dir=str(tmp_path / "explicit"))
    assert p.question.startswith("explicit?")
    assert p.gold == "3"


def test_cwd_data_beats_shared_data(isolated: Path, tmp_path: Path) -> None:
    _write(tmp_path / "a" / "shared" / "data", "gsm8k-test.jsonl", [_gsm("shared?", "1")])
    assert load_task("gsm8k")[0].question.startswith("shared?")  # ../shared/data
    _write(isolated / "data", "gsm8k-test.jsonl", [_gsm("cwd?", "2")])
    assert load_task("gsm8k")[0].question.startswith("cwd?")  # ./data first


def test_explicit_dir_without_file_is_an_error_naming_it(isolated: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _write(isolated / "data", "gsm8k-test.jsonl", [_gsm("cwd?", "2")])  # not silently used instead
    with pytest.raises(TaskError, match=r"gsm8k-test\.jsonl not found in .*empty") as info:
        load_task("gsm8k", data_dir=empty)
    assert "\n" not in str(info.value)
    with pytest.raises(TaskError, match=r"data dir .*nowhere.* does not exist"):
        load_task("math500", data_dir=tmp_path / "nowhere")


def test_env_dir_without_file_is_an_error_naming_it(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PONDER_DATA_DIR", str(tmp_path))
    with pytest.raises(TaskError, match=r"aime24\.jsonl not found in .*PONDER_DATA_DIR"):
        load_task("aime24")


def test_missing_everywhere_without_datasets_package(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(TaskError) as info:
        load_task("gsm8k")
    message = str(info.value)
    assert message.startswith(
        "gsm8k: gsm8k-test.jsonl not found in ./data or ../shared/data; "
        "pass --data-dir DIR or set PONDER_DATA_DIR"
    )
    assert "loading openai/gsm8k from Hugging Face also failed" in message
    assert "pip install 'ponder[hf]'" in message
    assert "\n" not in message


def _fake_datasets(monkeypatch: pytest.MonkeyPatch, load) -> list:
    calls: list = []

    def load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return load(*args, **kwargs)

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)
    return calls


def test_missing_everywhere_and_hub_fails(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'HuggingFaceH4/MATH-500' on the Hub\n(second line)")

    calls = _fake_datasets(monkeypatch, offline)
    with pytest.raises(TaskError) as info:
        load_task("math500")
    assert calls == [(("HuggingFaceH4/MATH-500",), {"split": "test"})]
    message = str(info.value)
    assert message.startswith("math500: math500-test.jsonl not found in ./data or ../shared/data;")
    assert message.endswith(
        "(loading HuggingFaceH4/MATH-500 from Hugging Face also failed: "
        "ConnectionError: Couldn't reach 'HuggingFaceH4/MATH-500' on the Hub)"
    )


def test_hub_rows_become_problems(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [_gsm(f"q{i}?", f"{i},000") for i in range(5)]
    calls = _fake_datasets(monkeypatch, lambda *a, **k: rows)
    problems = load_task("gsm8k", offset=1, limit=2)
    assert calls == [(("openai/gsm8k", "main"), {"split": "test"})]
    assert [(p.id, p.gold) for p in problems] == [("gsm8k/test/1", "1000"), ("gsm8k/test/2", "2000")]


def test_malformed_line_names_file_and_line(isolated: Path) -> None:
    path = _write(isolated / "data", "gsm8k-test.jsonl", [_gsm("ok?", "1")])
    with path.open("a", encoding="utf-8") as f:
        f.write("\n")  # blank lines are skipped, but still counted
        f.write('{"question": "broken", "answer": \n')
    with pytest.raises(TaskError, match=r"gsm8k-test\.jsonl:3: not valid JSON"):
        load_task("gsm8k")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('["a list"]', r":2: expected a JSON object, got list"),
        ('{"question": "no answer"}', r":2: missing field 'answer'"),
        ('{"question": "q", "answer": "no marker"}', r":2: field 'answer' has no '#### N' final line"),
    ],
)
def test_bad_rows_name_file_and_line(isolated: Path, line: str, match: str) -> None:
    path = _write(isolated / "data", "gsm8k-test.jsonl", [_gsm("ok?", "1")])
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    with pytest.raises(TaskError, match=r"gsm8k-test\.jsonl" + match):
        load_task("gsm8k")
