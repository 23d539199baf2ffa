"""inspect-ai against ``ponder serve``: ``inspect eval`` of a small local arithmetic task through the openai-api
provider, with self-consistency picked by the model-name prefix.

inspect-ai's OpenAI-compatible provider is ``--model openai-api/SERVICE/MODEL``: SERVICE names the environment
variables it reads (``PONDER_BASE_URL``, ``PONDER_API_KEY``) and MODEL goes to the server unchanged, here
``ponder:self-consistency:n=3/fake-model``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.conftest import PROBLEMS, STRATEGY_MODEL, ServeProcess, inspect_eval, model_responses
from tests.fakes.openai_server import FakeOpenAIServer

pytest.importorskip("inspect_ai")

def test_inspect_eval_with_a_strategy_by_model_prefix(upstream: FakeOpenAIServer, served: ServeProcess,
                                                      tmp_path: Path) -> None:
    log = inspect_eval(served.base_url, STRATEGY_MODEL, tmp_path, "--max-tokens", "64", "--seed", "7")
    assert log["status"] == "success"
    (score,) = log["results"]["scores"]
    assert score["metrics"]["accuracy"]["value"] == 1.0  # a single sample is always wrong: the vote ran
    assert len(log["samples"]) == len(PROBLEMS)
    responses = model_responses(log)
    assert len(responses) == len(PROBLEMS)
    assert all(r["ponder"]["strategy"] == "self-consistency" and r["ponder"]["traces"] == 3 for r in responses)
    assert all(r["model"] == STRATEGY_MODEL for r in responses)
    sent = upstream.requests
    assert len(sent) == len(PROBLEMS)
    assert all(r["n"] == 3 and r["model"] == "fake-model" and r["max_tokens"] == 64 for r in sent)
    assert all(r["seed"] is not None for r in sent)


def test_inspect_eval_without_a_strategy_is_plain_pass_through(upstream: FakeOpenAIServer, served: ServeProcess,
                                                                tmp_path: Path) -> None:
    # The baseline the strategy beats: one sample per question, the fake model's wrong one.
    log = inspect_eval(served.base_url, "fake-model", tmp_path, problems=PROBLEMS[:2])
    assert log["status"] == "success"
    assert log["results"]["scores"][0]["metrics"]["accuracy"]["value"] == 0.0
    assert all("ponder" not in r for r in model_responses(log))
    assert [r.get("n") for r in upstream.requests] == [None, None]
