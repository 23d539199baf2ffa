"""Pass-through through the proxy with the official openai client (sync and async) against a fake upstream."""

from __future__ import annotations

import time

import openai

from tests.fakes.openai_server import FakeOpenAIServer, count_prompt_tokens, tokenize
from tests.server.conftest import Proxy, run_proxy

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
REPLY = "Let me add: 2 + 2 = 4. The answer is \\boxed{4}."


def client(proxy: Proxy, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_non_stream_returns_the_upstream_completion_and_usage(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    reply = client(proxy).chat.completions.create(model="fake-model", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count_prompt_tokens(MESSAGES)
    assert reply.usage.completion_tokens == len(tokenize(REPLY))
    assert upstream.requests[-1]["messages"] == MESSAGES
    assert "ponder" not in reply.to_dict()


def test_unknown_parameters_reach_the_upstream_unchanged(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    extra = {"top_k": 20, "min_p": 0.05, "chat_template_kwargs": {"enable_thinking": False}, "repetition_penalty": 1.1}
    client(proxy).chat.completions.create(model="fake-model", messages=MESSAGES, temperature=0.3,  # type: ignore[arg-type]
                                          max_tokens=50, seed=7, extra_body=extra)
    sent = upstream.requests[-1]
    assert {k: sent[k] for k in extra} == extra
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.3, 50, 7)
    assert "logprobs" not in sent and "ponder" not in sent


def test_n_choices_and_logprobs(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    reply = client(proxy).chat.completions.create(model="fake-model", messages=MESSAGES, n=3,  # type: ignore[arg-type]
                                                  logprobs=True, top_logprobs=2)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    content = reply.choices[1].logprobs.content  # type: ignore[union-attr]
    assert "".join(t.token for t in content) == REPLY and len(content[0].top_logprobs) == 2
    assert upstream.requests[-1]["n"] == 3
    assert reply.usage.completion_tokens == 3 * len(tokenize(REPLY))  # type: ignore[union-attr]


def test_stream_relays_tokens_as_they_come() -> None:
    text = " ".join(f"w{i}" for i in range(12))
    with FakeOpenAIServer(text, token_delay_s=0.03) as srv, run_proxy(srv) as proxy:
        stream = client(proxy).chat.completions.create(
            model="fake-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True})  # type: ignore[arg-type]
        arrivals, pieces, usage = [], [], None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter())
                pieces.append(chunk.choices[0].delta.content)
            if chunk.usage:
                usage = chunk.usage
    assert "".join(pieces) == text
    assert len(pieces) == len(tokenize(text))
    assert arrivals[-1] - arrivals[0] > 0.2  # spread out, not buffered into one burst
    assert usage is not None and usage.completion_tokens == len(tokenize(text))
    assert srv.requests[-1]["stream"] is True


def test_stream_with_n_interleaves_choices(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    stream = client(proxy).chat.completions.create(model="fake-model", messages=MESSAGES, stream=True, n=2)  # type: ignore[arg-type]
    texts = {0: "", 1: ""}
    finished = set()
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert texts == {0: REPLY, 1: REPLY} and finished == {0, 1}


async def test_async_client_non_stream_and_stream(proxy: Proxy) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as aclient:
        reply = await aclient.chat.completions.create(model="fake-model", messages=MESSAGES)  # type: ignore[arg-type]
        assert reply.choices[0].message.content == REPLY
        stream = await aclient.chat.completions.create(model="fake-model", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == REPLY


def test_health_and_models(proxy: Proxy) -> None:
    models = [m.id for m in client(proxy).models.list()]
    assert "fake-model" in models and "ponder:self-consistency/fake-model" in models
    import httpx

    assert httpx.get(proxy.url + "/health").json()["status"] == "ok"
