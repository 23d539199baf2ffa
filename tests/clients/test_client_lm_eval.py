"""lm-eval against ``ponder serve``: ``lm_eval --model local-chat-completions`` on a local JSONL task (a task YAML
in a temporary directory), with self-consistency picked by the model-name prefix.

lm-eval's chat-completions model runs ``generate_until`` tasks only (it refuses loglikelihood itself); its
``local-completions`` model would need ``/v1/completions`` with prompt logprobs, which ponder serve refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients.conftest import PROBLEMS, STRATEGY_MODEL, ServeProcess, client_command, run_client
from tests.fakes.openai_server import FakeOpenAIServer

pytest.importorskip("lm_eval")

TASK_YAML = """\
task: ponder_arithmetic
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "What is {{{{a}}}} + {{{{b}}}}? End with 'The answer is N.'"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n\\n"]
  max_gen_toks: 64
  temperature: 0.7
filter_list:
  - name: get-answer
    filter:
      - function: regex
        regex_pattern: "The answer is (-?[0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def test_lm_eval_local_chat_completions_with_a_strategy(upstream: FakeOpenAIServer, served: ServeProcess,
                                                        tmp_path: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    data = tasks / "arithmetic.jsonl"
    data.write_text("".join(json.dumps({"a": a, "b": b, "answer": str(a + b)}) + "\n" for a, b in PROBLEMS))
    (tasks / "ponder_arithmetic.yaml").write_text(TASK_YAML.format(data=data))
    out = tmp_path / "out"
    model_args = f"model={STRATEGY_MODEL},base_url={served.base_url}/chat/completions,num_concurrent=1,max_retries=1"
    run_client([*client_command("lm_eval"), "--model", "local-chat-completions", "--model_args", model_args,
                "--tasks", "ponder_arithmetic", "--include_path", str(tasks), "--apply_chat_template",
                "--output_path", str(out), "--log_samples"],
               # the dataset is a local file: nothing may be fetched from a hub
               env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OPENAI_API_KEY": "unused"}, cwd=tmp_path)
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]["ponder_arithmetic"]
    assert results["exact_match,get-answer"] == 1.0  # a single sample is always wrong: the vote ran
    (samples_file,) = out.rglob("samples_ponder_arithmetic_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert sorted(s["resps"][0][0] for s in samples) == sorted(
        f"{a} + {b} = {a + b}. The answer is {a + b}." for a, b in PROBLEMS)
    sent = upstream.requests
    assert len(sent) == len(PROBLEMS)
    # lm-eval's generation settings reach every sample the strategy draws
    assert all(r["n"] == 3 and r["model"] == "fake-model" for r in sent)
    assert all(r["stop"] == ["\n\n"] and r["max_tokens"] == 64 and r["temperature"] == 0.7 for r in sent)
    assert all(r["seed"] is not None for r in sent)
