"""ponder.rewards called as TRL calls reward functions: keyword columns, one value per completion."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import math
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from ponder import rewards
from ponder.answers.abstain import ABSTAIN
from ponder.answers.equivalence import get_checker
from ponder.errors import CapabilityError, ConfigError
from ponder.tasks import list_tasks, load_task
from ponder.types import Trace

ROOT = Path(__file__).resolve().parents[2]


def call(reward: rewards.RewardFunction, completions: list[Any], **columns: Any) -> list[float | None]:
    """As GRPOTrainer does: prompts, completions, the columns, and TRL's own extra keyword arguments."""
    return reward(prompts=["q"] * len(completions), completions=completions,
                  completion_ids=[[1, 2]] * len(completions), trainer_state=None, **columns)


# ---- correctness ----------------------------------------------------------------------------------------------


def test_gsm8k_right_wrong_and_unparseable() -> None:
    completions = [
        "16 - 3 - 4 = 9 eggs, at $2 each: \\boxed{18}",  # right
        "She makes \\boxed{17} dollars.",  # wrong
        "I cannot tell.",  # nothing to extract
        "The answer is N.",  # a copied placeholder is no answer
        "",
    ]
    gold = ["Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18"] * len(completions)
    assert call(rewards.correctness("gsm8k"), completions, answer=gold) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_equivalent_forms_count_as_right() -> None:
    completions = ["\\boxed{1/2}", "\\boxed{\\frac{1}{2}}", "The answer is 0.50.", "\\boxed{2/4}", "\\boxed{0.6}"]
    assert call(rewards.correctness("gsm8k"), completions, answer=["0.5"] * 5) == [1.0, 1.0, 1.0, 1.0, 0.0]
    # Thousands separators in the answer and in the "#### N" of the gold solution.
    assert call(rewards.correctness("gsm8k"), ["\\boxed{1,234}"], answer=["... #### 1,234"]) == [1.0]
    # AMC's gold answers are numbers in the dataset (27.0); the column may hold them as numbers.
    assert call(rewards.correctness("amc23"), ["\\boxed{27}", "\\boxed{28}"], answer=[27.0, 27.0]) == [1.0, 0.0]


def test_symbolic_answers_are_checked_in_the_worker_processes() -> None:
    checker = get_checker()
    before = checker.slow_checks
    completions = ["\\boxed{\\frac{1}{\\sqrt{2}}}", "\\boxed{(x+1)^2}", "\\boxed{x^2+1}", "\\boxed{[1, 3)}"]
    gold = ["\\frac{\\sqrt{2}}{2}", "x^2+2x+1", "x^2+2x+1", "[1,3)"]
    assert call(rewards.correctness("math500"), completions, answer=gold) == [1.0, 1.0, 0.0, 1.0]
    assert checker.slow_checks > before  # math-verify ran, in the workers, not in this process
    assert checker.worker_pids()


def test_runs_off_the_main_thread_and_inside_a_running_event_loop() -> None:
    # math-verify's signal.alarm fails outside a process's main thread: a trainer thread must still get rewards.
    reward = rewards.correctness("math500")
    got: list[list[float | None]] = []
    worker = threading.Thread(target=lambda: got.append(call(reward, ["\\boxed{\\sqrt{8}}", "\\boxed{3}"],
                                                              answer=["2\\sqrt{2}"] * 2)))
    worker.start()
    worker.join(60)
    assert got == [[1.0, 0.0]]

    async def in_a_loop() -> list[float | None]:  # a notebook's cell runs inside an event loop
        return call(reward, ["\\boxed{\\sqrt{18}}"], answer=["3\\sqrt{2}"])

    assert asyncio.run(in_a_loop()) == [1.0]


def test_conversational_completions() -> None:
    completions = [
        [{"role": "assistant", "content": "So the total is \\boxed{12}."}],
        [{"role": "assistant", "content": [{"type": "text", "text": "The answer is 12."}]}],
        # Tool output is not the model's answer; its last assistant words are.
        [{"role": "assistant", "content": "Let me check: \\boxed{11}"}, {"role": "tool", "content": "\\boxed{12}"}],
        [{"role": "assistant", "content": "", "reasoning_content": "\\boxed{12}"}],
    ]
    assert call(rewards.correctness("gsm8k"), completions, answer=["12"] * 4) == [1.0, 1.0, 0.0, 0.0]


def test_abstention_and_logic_tasks() -> None:
    completions = ["We are never told how many eggs, so the problem is unanswerable.", "The answer is 9.",
                   "The answer is unanswerable.", "The answer is 9."]
    gold = [ABSTAIN, ABSTAIN, "9", "9"]
    assert call(rewards.correctness("add1-abstain"), completions, answer=gold) == [1.0, 0.0, 0.0, 1.0]
    logic = ["It follows. ANSWER: True", "ANSWER: Uncertain", "ANSWER: False"]
    assert call(rewards.correctness("logic"), logic, answer=["True", "Unknown", "True"]) == [1.0, 1.0, 0.0]


def test_problems_mode_checks_each_row_against_its_own_problem() -> None:
    problems = load_task("game24", size=3)
    rows = rewards.dataset_rows(problems)
    assert [row["problem_id"] for row in rows] == [p.id for p in problems]
    assert rows[0]["prompt"] == problems[0].messages and rows[0]["answer"] == problems[0].gold
    reward = rewards.correctness("game24", problems=problems)
    completions = [f"Answer: {problems[0].gold} = 24", f"Answer: {problems[0].gold} = 24", "Answer: 1 + 1 = 2"]
    ids = [problems[0].id, problems[1].id, problems[2].id]  # the first solution is no solution of the second
    assert call(reward, completions, problem_id=ids) == [1.0, 0.0, 0.0]
    text_rows = rewards.dataset_rows(problems, conversational=False)
    assert text_rows[0]["prompt"] == problems[0].messages[-1]["content"]


def test_missing_and_malformed_columns_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match=r"needs the dataset column 'answer'.*the batch has columns: solution"):
        call(rewards.correctness("gsm8k"), ["\\boxed{1}"], solution=["1"])
    assert call(rewards.correctness("gsm8k", answer_column="solution"), ["\\boxed{1}"], solution=["1"]) == [1.0]
    with pytest.raises(ConfigError, match=r"one value per completion \(2\), got 1"):
        call(rewards.correctness("gsm8k"), ["\\boxed{1}", "\\boxed{2}"], answer=["1"])
    with pytest.raises(ConfigError, match="row 1 has no gold answer"):
        call(rewards.correctness("gsm8k"), ["\\boxed{1}", "\\boxed{2}"], answer=["1", None])
    problems = load_task("game24", size=1)
    with pytest.raises(ConfigError, match=r"'problem_id'.*dataset_rows"):
        call(rewards.correctness(problems=problems), ["Answer: 1"], answer=["1"])
    with pytest.raises(ConfigError, match="unknown problem id 'game24/seed9/0'"):
        call(rewards.correctness(problems=problems), ["Answer: 1"], problem_id=["game24/seed9/0"])


def test_tasks_without_a_gold_only_checker_ask_for_problems() -> None:
    with pytest.raises(ConfigError, match=r"problems=load_task\('game24'"):
        rewards.correctness("game24")
    with pytest.raises(ConfigError, match="no reward rule for task 'nope'"):
        rewards.correctness("nope")
    with pytest.raises(ConfigError, match="a task name or problems="):
        rewards.correctness()


# ---- format ---------------------------------------------------------------------------------------------------


def test_format_follows_the_task_prompt() -> None:
    math = ["so \\boxed{18}.", "The answer is 18.", "\\boxed{}", "\\boxed{18", "<think>\\boxed{3}</think> 18",
            "<think>maybe 3</think>\\boxed{18}"]
    assert call(rewards.answer_format("gsm8k"), math) == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    arithmetic = ["4 + 5 = 9. The answer is 9.", "\\boxed{9}", "The answer is N.", "9"]
    assert call(rewards.answer_format("add1"), arithmetic) == [1.0, 0.0, 0.0, 0.0]
    gym = ["<answer>42</answer>", "The answer is 42", "<answer> </answer>"]
    assert call(rewards.answer_format("gym:basic_arithmetic"), gym) == [1.0, 0.0, 0.0]
    assert call(rewards.answer_format("sat"), ["ANSWER: x1, x3", "x1 and x3"]) == [1.0, 0.0]
    assert call(rewards.answer_format(form="boxed"), ["\\boxed{x + 1}", "x + 1"]) == [1.0, 0.0]
    with pytest.raises(ConfigError, match="unknown answer form"):
        rewards.answer_format(form="xml")  # type: ignore[arg-type]


def test_every_builtin_task_has_a_rule_matching_its_problems(tmp_path: Path) -> None:
    """The rules repeat what the tasks' problems carry; this keeps them in step when a task changes."""
    rows = {
        "gsm8k-test.jsonl": {"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3 + 4 = 7\n#### 7"},
        "math500-test.jsonl": {"problem": "Halve 1.", "answer": "\\frac12", "unique_id": "u"},
        "aime24.jsonl": {"id": 1, "problem": "p", "answer": "025"},
        "amc23.jsonl": {"id": 1, "question": "q", "answer": 27.0},
    }
    for name, row in rows.items():
        (tmp_path / name).write_text(json.dumps(row) + "\n")
    raw_gold = {"gsm8k": rows["gsm8k-test.jsonl"]["answer"], "aime24": "025", "amc23": 27.0}
    names = [spec.name for spec in list_tasks() if spec.source in ("jsonl", "generated", "reasoning-gym")]
    names = [("gym:basic_arithmetic" if name.startswith("gym:") else name) for name in names]
    assert len(names) >= 16
    optional = {"sat": "pysat", "sat-story": "pysat", "gym:basic_arithmetic": "reasoning_gym"}  # the tasks extra
    checked = 0
    for name in names:
        if name in optional and importlib.util.find_spec(optional[name]) is None:
            continue
        problem = load_task(name, data_dir=tmp_path, size=1, limit=1)[0]
        rule = rewards.task_rule(name)
        assert rule.extract == problem.extract, name
        if rule.checker is not None:
            assert rule.checker is problem.checker, name
            if problem.meta.get("answerable", True):
                assert rule.gold(raw_gold.get(name, problem.gold)) == problem.gold, name
        prompt = "\n".join(m["content"] for m in problem.messages)
        if rule.form == "answer-phrase":
            assert "answer" in prompt.lower(), name
        else:
            assert {"boxed": "\\boxed{", "answer-tag": "<answer>"}[rule.form] in prompt, name
        checked += 1
    assert checked >= 14


# ---- confidence -----------------------------------------------------------------------------------------------

SURE = [[("4", -0.01), ("5", -5.0), ("6", -6.0)]] * 3
UNSURE = [[("4", -1.0), ("5", -1.1), ("6", -1.3)]] * 3


def test_confidence_ranks_the_surer_completion_higher() -> None:
    completions = ["The answer is 4.", "The answer is 4."]
    for name in ("mean", "lowest_group", "bottom10", "tail", "self_certainty"):
        sure, unsure = call(rewards.confidence(name, window=2), completions, top_logprobs=[SURE, UNSURE])
        assert sure is not None and unsure is not None and sure > unsure, name
    perplexity = call(rewards.confidence("neg_perplexity"), completions,
                      token_logprobs=[[-0.01, -0.02], [-2.0, -3.0]])
    assert perplexity == pytest.approx([-math.exp(0.015), -math.exp(2.5)])
    tokens = [["The", " answer", " is", " 4", "."]] * 2
    answer = call(rewards.confidence("answer"), completions, tokens=tokens,
                  token_logprobs=[[-1, -1, -1, -0.1, -1], [-0.1, -0.1, -0.1, -2.0, -0.1]])
    assert answer == pytest.approx([math.exp(-0.1), math.exp(-2.0)])


def test_confidence_accepts_the_usual_top_logprob_shapes_and_ponder_traces() -> None:
    shapes = [
        [[{"token": "4", "logprob": -0.01}, {"token": "5", "logprob": -5.0}]],  # OpenAI's
        [{"4": -0.01, "5": -5.0}],  # a mapping
        [[-0.01, -5.0]],  # bare logprobs
    ]
    values = call(rewards.confidence("mean"), ["4"] * 3, top_logprobs=shapes)
    assert values == pytest.approx([2.505] * 3)
    traces = [Trace(text="4", tokens=["4"], logprobs=[-0.01], top_logprobs=[[("4", -0.01), ("5", -5.0)]]), Trace()]
    sure, empty = call(rewards.confidence("mean"), ["4", ""], traces=traces)
    assert sure == pytest.approx(2.505) and empty is None


def test_confidence_without_logprobs_says_where_to_get_them() -> None:
    with pytest.raises(ConfigError, match=r"'top_logprobs'.*rollout_func"):
        call(rewards.confidence("mean"), ["4"], answer=["4"])
    with pytest.raises(ConfigError, match=r"'token_logprobs'.*rollout_func"):
        call(rewards.confidence("neg_perplexity"), ["4"])
    with pytest.raises(CapabilityError, match="k >= 2"):  # one alternative per token inverts DeepConf's ranking
        call(rewards.confidence("mean"), ["4"], top_logprobs=[[[("4", -0.1)]]])
    with pytest.raises(ConfigError, match="unknown confidence measure"):
        rewards.confidence("nope")  # type: ignore[arg-type]
    # No tokens, no evidence: None, which TRL leaves out of the group's mean (a number would bias it).
    assert call(rewards.confidence("mean"), [""], top_logprobs=[[]]) == [None]


# ---- README ---------------------------------------------------------------------------------------------------


def test_the_readme_example_prints_what_it_says() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    block = next(b for b in blocks if "from ponder import rewards" in b)
    expected = [m.group(1) for m in re.finditer(r"^print\(.*\)\s+# (.*)$", block, re.M)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    assert expected and out.getvalue().splitlines() == expected
