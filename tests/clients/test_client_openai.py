"""The official openai client against ``ponder serve``: a plain request, and strategies picked both ways."""

from __future__ import annotations

import openai

from tests.clients.conftest import STRATEGY_MODEL, ServeProcess
from tests.fakes.openai_server import FakeOpenAIServer

QUESTION = [{"role": "user", "content": "What is 7 + 5?"}]


def test_openai_client_plain_and_strategy_requests(upstream: FakeOpenAIServer, served: ServeProcess) -> None:
    client = openai.OpenAI(base_url=served.base_url, api_key="unused", max_retries=0)
    plain = client.chat.completions.create(model="fake-model", messages=QUESTION)  # type: ignore[arg-type]
    assert plain.choices[0].message.content == "7 + 5 = 13. The answer is 13."  # one sample: the wrong one
    voted = client.chat.completions.create(model=STRATEGY_MODEL, messages=QUESTION, seed=3, max_tokens=30,  # type: ignore[arg-type]
                                           logprobs=True, top_logprobs=2)
    assert voted.choices[0].message.content == "7 + 5 = 12. The answer is 12."
    assert voted.choices[0].logprobs is not None and voted.choices[0].logprobs.content
    ponder = voted.to_dict()["ponder"]
    assert ponder["votes"] == {"12": 2, "13": 1} and ponder["traces"] == 3
    body = client.chat.completions.create(model="fake-model", messages=QUESTION, n=2,  # type: ignore[arg-type]
                                          extra_body={"ponder": {"strategy": "self-consistency", "n": 3}})
    assert [c.message.content for c in body.choices] == ["7 + 5 = 12. The answer is 12."] * 2
    sent = upstream.requests
    assert [r.get("n") for r in sent] == [None, 3, 3, 3]
    assert sent[1]["max_tokens"] == 30 and sent[1]["top_logprobs"] == 2 and sent[1]["seed"] is not None
    listed = {m.id for m in client.models.list()}
    assert "fake-model" in listed and "ponder:self-consistency/fake-model" in listed
