"""inspect-ai against ``ponder serve --model local``: the embedded SmolLM2-135M behind the proxy, a strategy by
model-name prefix. SmolLM2 cannot be relied on to add, so this checks the plumbing, not the score."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.errors import BackendUnavailable
from tests.clients.conftest import ServeProcess, inspect_eval, model_responses

pytestmark = pytest.mark.integration
pytest.importorskip("inspect_ai")

MAX_TOKENS = 48


@pytest.fixture(scope="module")
def served_local() -> Iterator[ServeProcess]:
    from ponder.backends.local import find_embedded_model, find_llama_server

    try:
        find_llama_server(), find_embedded_model()
    except BackendUnavailable as exc:
        if os.environ.get("PONDER_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"integration tests required but: {exc}")
        pytest.skip(str(exc))
    # One thread: the embedded server shares two cores with the test run and any other llama-server.
    with ServeProcess("--model", "local", "--slots", "4", "--threads", "1", start_timeout_s=180) as proxy:
        yield proxy


def test_inspect_eval_on_the_embedded_model(served_local: ServeProcess, tmp_path: Path) -> None:
    log = inspect_eval(served_local.base_url, "ponder:self-consistency:n=3/local", tmp_path,
                       "--max-tokens", str(MAX_TOKENS), problems=[(2, 3), (4, 4)])
    assert log["status"] == "success", log.get("error")
    assert len(log["samples"]) == 2 and "accuracy" in log["results"]["scores"][0]["metrics"]
    responses = model_responses(log)
    assert len(responses) == 2
    for response in responses:
        assert response["ponder"]["strategy"] == "self-consistency" and response["ponder"]["traces"] == 3
        assert 0 < response["usage"]["completion_tokens"] <= 3 * MAX_TOKENS
        assert isinstance(response["choices"][0]["message"]["content"], str)
