"""Keys, limits and bad requests (400 naming the field), upstream failures (502 with the upstream's message)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAIServer, Fault
from tests.server.conftest import Proxy, run_proxy

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAIServer, Proxy]]:
    with FakeOpenAIServer() as srv, run_proxy(srv) as proxy:
        yield srv, proxy


def post(proxy: Proxy, body: Any = None, **kwargs: Any) -> httpx.Response:
    if body is not None:
        kwargs["json"] = body
    return httpx.post(proxy.base_url + "/chat/completions", **kwargs)


def test_api_keys(upstream: FakeOpenAIServer) -> None:
    with run_proxy(upstream, keys=frozenset({"k1", "k2"})) as proxy:
        for key in ("wrong", None):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            response = post(proxy, {"model": "m", "messages": MESSAGES}, headers=headers)
            assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=proxy.base_url, api_key="wrong", max_retries=0).models.list()
        reply = openai.OpenAI(base_url=proxy.base_url, api_key="k2", max_retries=0).chat.completions.create(
            model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert reply.choices[0].message.content
        assert httpx.get(proxy.url + "/health").status_code == 200  # health needs no key
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"model": "m", "messages": MESSAGES, "n": 65}, "n", "limit of 64"),
    ({"model": "m", "messages": MESSAGES, "max_tokens": 9000}, "max_tokens", "limit of 8192"),
    ({"model": "m", "messages": MESSAGES, "max_completion_tokens": 9000}, "max_completion_tokens", "8192"),
    ({"model": "m", "messages": MESSAGES, "ponder": {"strategy": "self-consistency", "n": 100}}, "ponder.n", "64"),
    ({"model": "m", "messages": MESSAGES, "ponder": {"strategy": "deepconf", "n": "lots"}}, "ponder.n", "'n'"),
    ({"model": "m", "messages": MESSAGES, "ponder": {"strategy": "self-consistency", "k": 3}}, "ponder.k", "'k'"),
    ({"model": "m", "messages": MESSAGES, "ponder": {"strategy": "self-consistensy"}}, "ponder.strategy",
     "'self-consistensy'"),
    ({"model": "ponder:nope/m", "messages": MESSAGES}, "model", "'nope'"),
    ({"model": "ponder:self-consistency:n=x/m", "messages": MESSAGES}, "model", "'n'"),
    ({"model": "m"}, "messages", "required"),
    ({"model": "m", "messages": []}, "messages", "non-empty"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "'wizard'"),
    ({"model": "m", "messages": MESSAGES, "temperature": "hot"}, "temperature", "number"),
    ({"model": "m", "messages": MESSAGES, "stream": "yes"}, "stream", "bool"),
    ({"model": "m", "messages": MESSAGES, "n": 2, "ponder": {"strategy": "self-consistency", "n": 40}}, "n",
     "80 samples"),
    ({"model": "m", "messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools",
     "tool call"),
    ({"model": "ponder:cot", "messages": MESSAGES, "response_format": {"type": "json_object"}}, "response_format",
     "pass-through"),
    ({"model": "m", "messages": MESSAGES, "ponder": {"n": 2}}, "ponder.n", "without a strategy"),
])
def test_bad_requests_get_400_naming_the_field(served: tuple[FakeOpenAIServer, Proxy], body: dict[str, Any],
                                                param: str, words: str) -> None:
    upstream, proxy = served
    response = post(proxy, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"], error
    assert error["type"] == "invalid_request_error"
    assert upstream.requests == []


def test_openai_client_sees_bad_request(served: tuple[FakeOpenAIServer, Proxy]) -> None:
    proxy = served[1]
    with pytest.raises(openai.BadRequestError) as caught:
        openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0).chat.completions.create(
            model="m", messages=MESSAGES, extra_body={"ponder": {"strategy": "unknown-thing"}})  # type: ignore[arg-type]
    assert "unknown-thing" in caught.value.message


def test_malformed_json_and_too_big_bodies(upstream: FakeOpenAIServer) -> None:
    with run_proxy(upstream, max_body_bytes=2000) as proxy:
        response = post(proxy, content=b'{"model": "m", "messages": [', headers={"content-type": "application/json"})
        assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]
        response = post(proxy, content=b"[1, 2]")
        assert response.status_code == 400 and "JSON object" in response.json()["error"]["message"]
        big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
        response = post(proxy, big)
        assert response.status_code == 413 and "2,000 bytes" in response.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit holds while reading
            yield b'{"model": "m", "messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}]}'

        response = post(proxy, content=chunks())
        assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    assert upstream.requests == []


def test_upstream_failure_is_a_502_with_its_message() -> None:
    boom = Fault("server_error", message="the GPU caught fire")
    with FakeOpenAIServer(faults=[boom] * 3) as srv, run_proxy(srv) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert caught.value.status_code == 502 and "the GPU caught fire" in caught.value.message
        assert srv.request_count == 3  # the proxy's backend retried
        srv.push_faults(*[boom] * 3)
        response = post(proxy, {"model": "m", "messages": MESSAGES, "stream": True})  # before any token: a status
        assert response.status_code == 502 and "GPU caught fire" in response.json()["error"]["message"]
        srv.push_faults(*[boom] * 3)
        response = post(proxy, {"model": "m", "messages": MESSAGES, "ponder": {"strategy": "self-consistency"}})
        assert response.status_code == 502 and response.json()["error"]["type"] == "upstream_error"
        srv.push_faults(Fault("bad_request", message="context too long"))
        response = post(proxy, {"model": "m", "messages": MESSAGES})
        assert response.status_code == 400 and "context too long" in response.json()["error"]["message"]


def test_strategy_needing_logprobs_without_them_is_a_400(proxy: Proxy) -> None:
    response = post(proxy, {"model": "m", "messages": MESSAGES, "logprobs": False,
                            "ponder": {"strategy": "deepconf", "n": 2}})
    assert response.status_code == 400 and "logprobs" in response.json()["error"]["message"]
