"""The proxy in front of the embedded llama-server (SmolLM2-135M): pass-through and a strategy, kept short."""

from __future__ import annotations

import os

import openai
import pytest

from ponder.backends import parse_model_spec
from ponder.errors import BackendUnavailable
from ponder.server.app import create_app
from ponder.server.requests import ServeConfig
from tests.server.conftest import Proxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded_proxy() -> Proxy:
    from ponder.backends.local import find_embedded_model, find_llama_server

    try:
        find_llama_server(), find_embedded_model()
    except BackendUnavailable as exc:
        if os.environ.get("PONDER_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"integration tests required but: {exc}")
        pytest.skip(str(exc))
    with Proxy(create_app(parse_model_spec("local", slots=4), ServeConfig())) as proxy:
        yield proxy


def test_embedded_upstream(embedded_proxy: Proxy) -> None:
    client = openai.OpenAI(base_url=embedded_proxy.base_url, api_key="x", max_retries=0)
    question = [{"role": "user", "content": "What is 2 + 3? Answer with a number."}]
    plain = client.chat.completions.create(model="local", messages=question, max_tokens=16)  # type: ignore[arg-type]
    assert plain.choices[0].message.content and plain.usage and plain.usage.completion_tokens <= 16
    stream = client.chat.completions.create(model="local", messages=question, max_tokens=16, stream=True)  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    voted = client.chat.completions.create(
        model="ponder:self-consistency:n=2", messages=question, max_tokens=32, extra_body={"top_k": 40})  # type: ignore[arg-type]
    ponder = voted.to_dict()["ponder"]
    assert ponder["traces"] == 2 and ponder["params"]["n"] == 2
    assert voted.usage is not None and 0 < voted.usage.completion_tokens <= 64
