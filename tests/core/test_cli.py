"""The command line, run as users run it (a subprocess), on the fake backend."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest


def ponder(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ponder.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=full_env)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_eval_then_resume_then_runs_and_show(workdir: Path) -> None:
    args = ["eval", "--task", "add1", "--model", "fake", "--n", "4", "--limit", "6", "--seed", "1"]
    first = ponder(*args, cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "accuracy [95% CI]" in first.stdout and "maj@4" in first.stdout and "pass@4" in first.stdout
    assert (workdir / "ponder.db").exists()
    assert "eval 6/6 · acc " in first.stdout
    again = ponder(*args, cwd=workdir)
    assert again.returncode == 0 and "6/6 problems already done" in again.stdout
    runs = ponder("runs", cwd=workdir)
    assert "add1-self-consistency-" in runs.stdout and " 6 " in runs.stdout
    shown = ponder("show", "last", "--problems", cwd=workdir)
    assert shown.returncode == 0 and "add1/" in shown.stdout


def test_ask_prints_answer_votes_and_tokens(workdir: Path) -> None:
    out = ponder("ask", "What is 2 + 2?", "--model", "fake", "--n", "5", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "answer: " in out.stdout and "votes: " in out.stdout and "completion" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--task", "nosuchtask", "--model", "fake"], "unknown task"),
        (["eval", "--task", "add1", "--model", "fake", "--strategy", "nope"], "unknown strategy"),
        (["eval", "--task", "add1", "--model", "bogus"], "unknown --model"),
        (["eval", "--task", "add1", "--model", "fake", "-p", "n=x"], "must be int"),
        (["eval", "--task", "add1", "--model", "fake", "--strategy", "cot", "--n", "3"], "takes no --n"),
        (["eval", "--task", "add1", "--model", "openai:http://127.0.0.1:9/v1"], "cannot reach"),
        (["show", "zzz"], "no store at ponder.db"),
        (["report"], "no store at ponder.db"),
        (["bank", "from-run", "last", "x.bank.jsonl.gz"], "no store at ponder.db"),
    ],
)
def test_errors_are_one_clear_line(workdir: Path, args: list[str], message: str) -> None:
    out = ponder(*args, cwd=workdir)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.stderr


def test_reading_commands_leave_no_empty_store_behind(workdir: Path) -> None:
    listed = ponder("runs", cwd=workdir)
    assert listed.returncode == 0 and "no store at ponder.db yet" in listed.stdout
    for args in (["show"], ["report"], ["bank", "from-run", "last", "x.bank.jsonl.gz"]):
        assert ponder(*args, cwd=workdir).returncode == 2
    assert list(workdir.iterdir()) == []


def test_every_command_has_help(workdir: Path) -> None:
    for command in ("eval", "ask", "strategies", "tasks", "runs", "show"):
        out = ponder(command, "--help", cwd=workdir)
        assert out.returncode == 0 and "Usage" in out.stdout
    listing = ponder("strategies", cwd=workdir)
    assert "self-consistency" in listing.stdout and "n: int = 16" in listing.stdout
    tasks = ponder("tasks", cwd=workdir)
    assert "gsm8k" in tasks.stdout and "add1" in tasks.stdout


def test_extra_parameters_reach_the_server(workdir: Path) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer("The answer is 4.") as srv:
        out = ponder("ask", "What is 2 + 2?", "--model", f"openai:{srv.base_url}", "--n", "2", "--extra", "top_k=20",
                     "--extra", 'chat_template_kwargs={"enable_thinking": false}', "--extra", "mode=fast", cwd=workdir)
        assert out.returncode == 0, out.stderr
        sent = srv.requests[0]
    assert sent["top_k"] == 20 and sent["chat_template_kwargs"] == {"enable_thinking": False}
    assert sent["mode"] == "fast" and "answer: 4" in out.stdout


def test_a_slow_server_times_out_at_the_given_timeout_with_a_hint(workdir: Path) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer, Fault

    slow = [Fault("slow", delay_s=3.0)] * 4  # every try (the first and 3 retries) outlasts --timeout
    with FakeOpenAIServer("The answer is 4.", faults=slow) as srv:
        out = ponder("ask", "What is 2 + 2?", "--model", f"openai:{srv.base_url}", "--n", "1", "--timeout", "0.5",
                     cwd=workdir)
    assert out.returncode == 2
    assert "timed out" in out.stderr and "--timeout SECONDS" in out.stderr
    bad = ponder("ask", "What is 2 + 2?", "--model", "fake", "--timeout", "0", cwd=workdir)
    assert bad.returncode == 2 and "--timeout must be a positive number" in bad.stderr


def test_bank_record_info_and_replay_with_repeats(workdir: Path) -> None:
    rec = ponder("bank", "record", "b.bank.jsonl.gz", "--task", "add1", "--model", "fake", "--n", "8", "--size", "10",
                 "--max-tokens", "64", cwd=workdir)
    assert rec.returncode == 0, rec.stderr
    assert "10 × 8 = 80 traces" in rec.stdout
    assert "record 10/10 · 80 traces" in rec.stdout  # piped, so plain progress lines instead of a bar
    info = ponder("bank", "info", "b.bank.jsonl.gz", cwd=workdir)
    assert "temperature 0.8" in info.stdout
    out = ponder("eval", "--replay", "b.bank.jsonl.gz", "--n", "4", "--repeats", "3", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "3 × 10" in out.stdout and "mean over repeats" in out.stdout
    wrong = ponder("eval", "--replay", "b.bank.jsonl.gz", "--task", "gsm8k", cwd=workdir)
    assert wrong.returncode == 2 and "does not match the bank" in wrong.stderr
    bad = ponder("eval", "--task", "add1", "--model", "fake", "--repeats", "3", cwd=workdir)
    assert bad.returncode == 2 and "--repeats needs --replay" in bad.stderr


def test_bank_info_shows_how_far_an_unfinished_recording_is(workdir: Path) -> None:
    rec = ponder("bank", "record", "b.bank.jsonl.gz", "--task", "add1", "--model", "fake", "--n", "4", "--size", "5",
                 "--limit", "3", "--max-tokens", "64", cwd=workdir)
    assert rec.returncode == 0, rec.stderr
    lines = gzip.decompress((workdir / "b.bank.jsonl.gz").read_bytes()).decode().splitlines(keepends=True)
    (workdir / "c.bank.jsonl.gz.partial").write_text("".join(lines[:3]))  # a recording killed after 2 problems
    for name in ("c.bank.jsonl.gz", "c.bank.jsonl.gz.partial"):
        info = ponder("bank", "info", name, cwd=workdir)
        assert info.returncode == 0, info.stderr
        assert "unfinished recording" in info.stdout and "2 of 3 × 4 = 8 traces" in info.stdout
    (workdir / "b.bank.jsonl.gz.partial").write_text(lines[0])  # an extension that has recorded nothing yet
    extended = ponder("bank", "info", "b.bank.jsonl.gz", cwd=workdir)
    assert "3 × 4 = 12 traces" in extended.stdout and "0 more problems" in extended.stdout
    missing = ponder("bank", "info", "d.bank.jsonl.gz", cwd=workdir)
    assert missing.returncode == 2 and "d.bank.jsonl.gz" in missing.stderr


def test_bank_pack_writes_a_smaller_bank_that_replays_alike(workdir: Path) -> None:
    rec = ponder("bank", "record", "b.bank.jsonl.gz", "--task", "add1", "--model", "fake", "--n", "8", "--size", "10",
                 "--max-tokens", "64", cwd=workdir)
    assert rec.returncode == 0, rec.stderr
    packed = ponder("bank", "pack", "b.bank.jsonl.gz", cwd=workdir)
    assert packed.returncode == 0, packed.stderr
    assert (workdir / "b.bank.zip").stat().st_size < (workdir / "b.bank.jsonl.gz").stat().st_size
    assert "b.bank.zip" in packed.stdout and "10 × 8 = 80 traces" in packed.stdout
    runs = [ponder("eval", "--replay", name, "--strategy", "deepconf", "--n", "8", "--repeats", "2", cwd=workdir)
            for name in ("b.bank.jsonl.gz", "b.bank.zip")]
    assert all(r.returncode == 0 for r in runs), runs[1].stderr
    accuracy = [line for r in runs for line in r.stdout.splitlines() if "accuracy" in line]
    assert accuracy and accuracy[: len(accuracy) // 2] == accuracy[len(accuracy) // 2 :]
    same = ponder("bank", "pack", "b.bank.zip", "b.bank.zip", cwd=workdir)
    assert same.returncode == 2 and "another output path" in same.stderr
    wrong = ponder("bank", "pack", "b.bank.jsonl.gz", "c.bank.gz", cwd=workdir)
    assert wrong.returncode == 2 and "ends in .zip" in wrong.stderr


def test_bank_merge_pools_two_recordings(workdir: Path) -> None:
    for name, seed in (("a", "1"), ("b", "2")):
        rec = ponder("bank", "record", f"{name}.bank.jsonl.gz", "--task", "add1", "--model", "fake", "--n", "4",
                     "--size", "6", "--max-tokens", "64", "--seed", seed, cwd=workdir)
        assert rec.returncode == 0, rec.stderr
    merged = ponder("bank", "merge", "a.bank.jsonl.gz", "b.bank.jsonl.gz", "ab.bank.zip", cwd=workdir)
    assert merged.returncode == 0, merged.stderr
    assert "6 × 8 = 48 traces" in merged.stdout
    twice = ponder("bank", "merge", "a.bank.jsonl.gz", "a.bank.jsonl.gz", "aa.bank.zip", cwd=workdir)
    assert twice.returncode == 2 and "same recording" in twice.stderr


def test_a_live_run_becomes_a_bank(workdir: Path) -> None:
    live = ponder("eval", "--task", "add1", "--size", "12", "--model", "fake", "--n", "6", "--max-tokens", "64",
                  cwd=workdir)
    assert live.returncode == 0, live.stderr
    made = ponder("bank", "from-run", "last", "run.bank.jsonl.gz", cwd=workdir)
    assert made.returncode == 0, made.stderr
    assert "12 × 6 = 72 traces" in made.stdout
    out = ponder("eval", "--replay", "run.bank.jsonl.gz", "--n", "6", cwd=workdir)
    assert out.returncode == 0, out.stderr
    # replaying all 6 traces per problem reproduces the live run's votes exactly
    accuracy = [line for line in out.stdout.splitlines() if "accuracy" in line]
    live_accuracy = [line for line in live.stdout.splitlines() if "accuracy" in line]
    assert accuracy == live_accuracy


def test_top_logprobs_reaches_the_server_and_is_recorded(workdir: Path) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer("The answer is 4.") as srv:
        out = ponder("eval", "--task", "add1", "--model", f"openai:{srv.base_url}", "--n", "2", "--limit", "1",
                     "--top-logprobs", "7", cwd=workdir)
        assert out.returncode == 0, out.stderr
        assert srv.requests[0]["top_logprobs"] == 7
        default = ponder("ask", "What is 2 + 2?", "--model", f"openai:{srv.base_url}", "--n", "2", cwd=workdir)
        assert default.returncode == 0 and srv.requests[-1]["top_logprobs"] == 20  # DeepConf's reference k
    shown = ponder("show", "last", "--json", cwd=workdir)
    assert '"top_logprobs": 7' in shown.stdout
    bad = ponder("eval", "--task", "add1", "--model", "fake", "--top-logprobs", "50", cwd=workdir)
    assert bad.returncode == 2 and "--top-logprobs must be between 0 and 20" in bad.stderr


def test_show_counts_traces_cut_at_max_tokens(workdir: Path) -> None:
    # 3 tokens cannot hold "The answer is 4.": every sample is cut, carries no answer, and the table says so
    from tests.fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer("Let me think. The answer is 4.") as srv:
        out = ponder("eval", "--task", "add1", "--model", f"openai:{srv.base_url}", "--n", "2", "--limit", "2",
                     "--max-tokens", "3", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "4 cut at max-tokens, no answer" in out.stdout


def test_help_keeps_bracketed_defaults(workdir: Path) -> None:
    # rich reads "[default: ...]" as markup and drops it unless escaped
    out = ponder("eval", "--help", cwd=workdir)
    assert "[default: 0.8" in out.stdout and "[default: 20" in out.stdout
