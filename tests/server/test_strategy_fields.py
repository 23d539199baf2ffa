"""OpenAI fields on strategy requests (n, seed, stop, max_tokens, logprobs), the endpoints the proxy refuses, and
model retrieval, with the official openai client against a fake upstream."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from ponder.backends.fake import FakeBackend
from ponder.server.requests import ServeConfig, parse_chat_request
from ponder.server.strategy import RequestCtx, contexts, problem_for
from ponder.store import Store
from tests.fakes.openai_server import FakeOpenAIServer, default_logprob, tokenize
from tests.server.conftest import Proxy, run_proxy

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
REPLY = "Let me add: 2 + 2 = 4. The answer is \\boxed{4}."


def client(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)


def test_n_runs_the_strategy_n_times_with_distinct_seeds(upstream: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "served.db"
    with run_proxy(upstream, log=True, store_path=str(path)) as proxy:
        reply = client(proxy).chat.completions.create(
            model="ponder:self-consistency:n=2/fake-model", messages=MESSAGES, n=3, seed=11, max_tokens=40)  # type: ignore[arg-type]
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.message.content == REPLY and c.finish_reason == "stop" for c in reply.choices)
    ponder = reply.to_dict()["ponder"]
    assert ponder["traces"] == 6 and ponder["calls"] == 3 and ponder["answer"] == "4"
    assert [c["traces"] for c in ponder["choices"]] == [2, 2, 2]
    assert [c["votes"] for c in ponder["choices"]] == [{"4": 2}] * 3
    assert reply.usage is not None and reply.usage.completion_tokens == 6 * len(tokenize(REPLY))
    sent = upstream.requests
    assert len(sent) == 3 and all(r["n"] == 2 and r["max_tokens"] == 40 for r in sent)
    assert len({r["seed"] for r in sent}) == 3  # each run its own seed, or all three would draw the same samples
    with Store(path) as store:  # each choice is a problem of the served run
        (run,) = store.runs()
        assert sorted(r.problem_id for r in store.results(run.id)) == [f"{reply.id}-{i}" for i in range(3)]


def test_a_seed_gives_the_same_upstream_seeds_again(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    for _ in range(2):
        client(proxy).chat.completions.create(model="ponder:self-consistency:n=2", messages=MESSAGES, seed=5)  # type: ignore[arg-type]
    first, second = upstream.requests
    assert first["seed"] == second["seed"] is not None


def test_logprobs_of_the_chosen_trace(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    reply = client(proxy).chat.completions.create(
        model="ponder:self-consistency:n=2", messages=MESSAGES, logprobs=True, top_logprobs=3)  # type: ignore[arg-type]
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    tokens = tokenize(REPLY)
    assert [t.token for t in logprobs.content] == tokens
    assert [t.logprob for t in logprobs.content] == pytest.approx([default_logprob(t, i) for i, t in enumerate(tokens)])
    assert all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token for t in logprobs.content)
    # logprobs without top_logprobs: no alternatives in the response, though the strategy drew its default 20
    reply = client(proxy).chat.completions.create(model="ponder:deepconf:n=2", messages=MESSAGES, logprobs=True)  # type: ignore[arg-type]
    assert upstream.requests[-1]["top_logprobs"] == 20
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and all(t.top_logprobs == [] for t in content)
    # not asked for: none
    reply = client(proxy).chat.completions.create(model="ponder:self-consistency:n=2", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.choices[0].logprobs is None


def test_stop_and_max_tokens_reach_every_sample(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    reply = client(proxy).chat.completions.create(
        model="ponder:self-consistency:n=3", messages=MESSAGES, stop=["The answer"], max_tokens=50)  # type: ignore[arg-type]
    sent = upstream.requests[-1]
    assert sent["stop"] == ["The answer"] and sent["max_tokens"] == 50
    assert reply.choices[0].message.content == "Let me add: 2 + 2 = 4. "  # cut by the stop, answer still voted
    assert reply.to_dict()["ponder"]["votes"] == {"4": 3}


def test_every_sample_cut_by_max_tokens_is_a_length_finish(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    reply = client(proxy).chat.completions.create(model="ponder:self-consistency:n=2", messages=MESSAGES, max_tokens=3)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "" and reply.choices[0].finish_reason == "length"
    assert reply.to_dict()["ponder"]["answer"] is None


def test_client_stop_does_not_replace_a_strategy_stop() -> None:
    # Search steps, linc and sat-solve set their own stop; the client's applies only where a call sets none.
    chat = parse_chat_request({"model": "ponder:cot", "messages": MESSAGES, "stop": "###"}, ServeConfig())
    ctx = RequestCtx(FakeBackend(), problem_for("p", chat), stop=["\n\n\n"])
    assert ctx.request().stop == ["\n\n\n"]
    assert ctx.request(stop=["\nEND"]).stop == ["\nEND"]
    assert chat.sampling is not None and "stop" not in chat.sampling.extra
    (made,) = contexts(FakeBackend(), ctx.slots, chat, "c")
    assert made.request().stop == ["###"] and made.request(stop=["\n\n"]).stop == ["\n\n"]


def test_streamed_strategy_with_n_and_logprobs(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    stream = client(proxy).chat.completions.create(
        model="ponder:self-consistency:n=2", messages=MESSAGES, n=2, logprobs=True, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True})
    texts: dict[int, str] = {0: "", 1: ""}
    tokens: dict[int, list[str]] = {0: [], 1: []}
    finishes, ponders = [], []
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.logprobs and choice.logprobs.content:
                tokens[choice.index] += [t.token for t in choice.logprobs.content]
            if choice.finish_reason:
                finishes.append(choice.index)
        if "ponder" in chunk.to_dict():
            ponders.append(chunk.to_dict()["ponder"])
    assert texts == {0: REPLY, 1: REPLY}
    assert tokens == {0: tokenize(REPLY), 1: tokenize(REPLY)}
    assert finishes == [0, 1] and len(ponders) == 1 and ponders[0]["traces"] == 4
    assert chunk.usage is not None and chunk.usage.completion_tokens == 4 * len(tokenize(REPLY))


@pytest.mark.parametrize(("method", "path", "status", "words"), [
    ("POST", "/v1/completions", 404, "loglikelihood"),
    ("POST", "/v1/responses", 404, "/v1/chat/completions"),
    ("POST", "/v1/embeddings", 404, "embeddings"),
    ("GET", "/v1/nothing-here", 404, "POST /v1/chat/completions"),
    ("GET", "/v1/chat/completions", 405, "GET /v1/chat/completions"),
])
def test_unserved_endpoints_get_openai_shaped_errors(proxy: Proxy, method: str, path: str, status: int,
                                                      words: str) -> None:
    response = httpx.request(method, proxy.url + path, json={"model": "m", "prompt": "2+2="})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error"


def test_the_openai_client_sees_why_completions_are_refused(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(proxy).completions.create(model="fake-model", prompt="2 + 2 =", echo=True, logprobs=1, max_tokens=0)
    assert "/v1/completions" in caught.value.message and "local-chat-completions" in caught.value.message
    assert upstream.requests == []


def test_retrieve_models(proxy: Proxy) -> None:
    models = client(proxy).models
    assert models.retrieve("fake-model").owned_by == "upstream"
    assert models.retrieve("ponder:self-consistency:n=4/fake-model").owned_by == "ponder"
    for missing, words in (("gpt-9", "GET /v1/models"), ("ponder:nope/fake-model", "'nope'"),
                           ("ponder:self-consistency:n=many", "'n'")):
        with pytest.raises(openai.NotFoundError) as caught:
            models.retrieve(missing)
        assert words in caught.value.message
