"""Tests of the fake OpenAI-compatible server itself, over real HTTP with httpx and the official client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .openai_server import (
    DEFAULT_REPLY,
    FakeOpenAIServer,
    Fault,
    ScriptedReply,
    count_prompt_tokens,
    default_logprob,
    tokenize,
)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2 + 2?"},
]
PROMPT_TOKENS = 3 + 5


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def chat(server: FakeOpenAIServer, **body: Any) -> httpx.Response:
    body.setdefault("model", "fake-model")
    body.setdefault("messages", MESSAGES)
    return httpx.post(server.base_url + "/chat/completions", json=body, timeout=5.0)


def sse_payloads(server: FakeOpenAIServer, **body: Any) -> list[str]:
    """All ``data:`` payloads of a streamed chat completion."""
    body.setdefault("model", "fake-model")
    body.setdefault("messages", MESSAGES)
    body["stream"] = True
    out = []
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=5.0) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data: "):
                out.append(line[len("data: ") :])
            else:
                assert line == ""
    return out


def sse_chunks(server: FakeOpenAIServer, **body: Any) -> list[dict[str, Any]]:
    payloads = sse_payloads(server, **body)
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


def client(server: FakeOpenAIServer, **kw: Any) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=server.base_url, api_key=kw.pop("api_key", "sk-test"), **kw)


def aclient(server: FakeOpenAIServer, **kw: Any) -> openai.AsyncOpenAI:
    kw.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=kw.pop("api_key", "sk-test"), **kw)


def port_is_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


# ---------------------------------------------------------------------------------------------------------
# Lifecycle and basic endpoints


def test_starts_fast_and_stops_cleanly() -> None:
    threads_before = threading.active_count()
    t0 = time.perf_counter()
    server = FakeOpenAIServer().start()
    assert time.perf_counter() - t0 < 0.5
    port = server.port
    assert port is not None
    assert server.base_url == f"http://127.0.0.1:{port}/v1"
    with httpx.Client() as http:  # keep-alive connection still open at shutdown
        assert http.get(server.url + "/health").json() == {"status": "ok"}
        t0 = time.perf_counter()
        server.stop()
        assert time.perf_counter() - t0 < 0.5
    assert not server.running
    assert port_is_closed(port)
    assert threading.active_count() == threads_before
    server.stop()  # idempotent


def test_stop_while_streaming_is_quick() -> None:
    server = FakeOpenAIServer(token_delay_s=0.5).start()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            sse_payloads(server)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=consume)
    t.start()
    assert server.wait_for(lambda s: s.request_count == 1, 2.0)
    t0 = time.perf_counter()
    server.stop()
    assert time.perf_counter() - t0 < 0.5
    t.join(2.0)
    assert errors and isinstance(errors[0], httpx.HTTPError)


def test_models_and_health(srv: FakeOpenAIServer) -> None:
    models = httpx.get(srv.base_url + "/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["fake-model"]
    assert [m.id for m in client(srv).models.list()] == ["fake-model"]
    assert httpx.get(srv.url + "/health").status_code == 200
    resp = httpx.get(srv.base_url + "/nope")
    assert resp.status_code == 404
    assert "error" in resp.json()
    assert srv.request_count == 0  # only chat completions are recorded


# ---------------------------------------------------------------------------------------------------------
# Non-streaming


def test_non_stream_with_logprobs(srv: FakeOpenAIServer) -> None:
    resp = chat(srv, logprobs=True, top_logprobs=3, temperature=0.7)
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "fake-model"
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == DEFAULT_REPLY
    assert choice["finish_reason"] == "stop"
    entries = choice["logprobs"]["content"]
    tokens = tokenize(DEFAULT_REPLY)
    assert tokens == ["The", " answer", " is", " 4", "."]
    assert [e["token"] for e in entries] == tokens
    for pos, entry in enumerate(entries):
        assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
        assert entry["logprob"] == default_logprob(entry["token"], pos)
        assert entry["logprob"] <= 0
        assert entry["bytes"] == list(entry["token"].encode())
        top = entry["top_logprobs"]
        assert len(top) == 3
        assert top[0] == {"token": entry["token"], "logprob": entry["logprob"], "bytes": entry["bytes"]}
        lps = [t["logprob"] for t in top]
        assert lps == sorted(lps, reverse=True) and len(set(lps)) == 3
        assert len({t["token"] for t in top}) == 3
        assert sum(2.718281828**lp for lp in lps) <= 1.0 + 1e-3
    assert body["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 5, "total_tokens": 13}
    # deterministic
    assert chat(srv, logprobs=True, top_logprobs=3).json()["choices"] == body["choices"]
    assert srv.requests[0]["temperature"] == 0.7
    assert srv.records[0].tokens_sent == 5 and srv.records[0].completed


def test_logprobs_absent_unless_asked(srv: FakeOpenAIServer) -> None:
    assert chat(srv).json()["choices"][0]["logprobs"] is None
    entries = chat(srv, logprobs=True).json()["choices"][0]["logprobs"]["content"]
    assert all(e["top_logprobs"] == [] for e in entries)


def test_openai_sync_non_stream(srv: FakeOpenAIServer) -> None:
    out = client(srv).chat.completions.create(
        model="m", messages=MESSAGES, logprobs=True, top_logprobs=2, max_tokens=100
    )
    assert out.choices[0].message.content == DEFAULT_REPLY
    assert out.model == "m"
    assert out.choices[0].logprobs is not None
    content = out.choices[0].logprobs.content
    assert content is not None
    assert "".join(t.token for t in content) == DEFAULT_REPLY
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in content)
    assert out.usage is not None and out.usage.total_tokens == PROMPT_TOKENS + 5


def test_prompt_token_count() -> None:
    assert count_prompt_tokens(MESSAGES) == PROMPT_TOKENS
    assert count_prompt_tokens([{"role": "user", "content": [{"type": "text", "text": "a b c"}]}]) == 3


def test_n_native_and_emulated() -> None:
    with FakeOpenAIServer(["A is 1.", "B is 22.", ScriptedReply("C")]) as srv:
        body = chat(srv, n=4, logprobs=True).json()
        assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
        assert [c["message"]["content"] for c in body["choices"]] == ["A is 1.", "B is 22.", "C", "A is 1."]
        assert body["usage"]["completion_tokens"] == 4 + 4 + 1 + 4
        out = client(srv).chat.completions.create(model="m", messages=MESSAGES, n=3)
        assert len(out.choices) == 3
        srv.native_n = False
        body = chat(srv, n=4).json()
        assert [c["message"]["content"] for c in body["choices"]] == ["A is 1."]
        assert body["usage"]["completion_tokens"] == 4
        chunks = sse_chunks(srv, n=3)
        assert {c["index"] for ch in chunks for c in ch["choices"]} == {0}


def test_responder_gets_request_and_index() -> None:
    seen: list[tuple[str, int]] = []

    def responder(request: dict[str, Any], index: int) -> str:
        seen.append((request["messages"][-1]["content"], index))
        return f"seed={request.get('seed')} i={index}"

    with FakeOpenAIServer(responder) as srv:
        body = chat(srv, n=2, seed=7).json()
        assert [c["message"]["content"] for c in body["choices"]] == ["seed=7 i=0", "seed=7 i=1"]
        assert seen == [("What is 2 + 2?", 0), ("What is 2 + 2?", 1)]


async def test_async_responder() -> None:
    async def responder(request: dict[str, Any], index: int) -> str:
        await asyncio.sleep(0)
        return "async"

    with FakeOpenAIServer(responder) as srv:
        async with aclient(srv) as ac:
            out = await ac.chat.completions.create(model="m", messages=MESSAGES)
        assert out.choices[0].message.content == "async"


def test_responder_error_is_a_500() -> None:
    def responder(request: dict[str, Any], index: int) -> str:
        raise KeyError("boom")

    with FakeOpenAIServer(responder) as srv:
        resp = chat(srv)
        assert resp.status_code == 500
        assert "boom" in resp.json()["error"]["message"]
        assert "boom" in (srv.last_record.error or "")


def test_max_tokens_truncates() -> None:
    with FakeOpenAIServer("one two three four five six") as srv:
        body = chat(srv, max_tokens=4, logprobs=True).json()
        choice = body["choices"][0]
        assert choice["message"]["content"] == "one two three four"
        assert choice["finish_reason"] == "length"
        assert len(choice["logprobs"]["content"]) == 4
        assert body["usage"]["completion_tokens"] == 4
        body = chat(srv, max_completion_tokens=6).json()
        assert body["choices"][0]["finish_reason"] == "stop"
        chunks = sse_chunks(srv, max_tokens=2, stream_options={"include_usage": True})
        deltas = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
        assert "".join(d for d in deltas if d) == "one two"
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
        assert chunks[-1]["usage"]["completion_tokens"] == 2


def test_stop_sequences() -> None:
    with FakeOpenAIServer("Answer: 42\nDone.") as srv:
        body = chat(srv, stop=["\n"]).json()
        assert body["choices"][0]["message"]["content"] == "Answer: 42"
        assert body["choices"][0]["finish_reason"] == "stop"
        assert chat(srv, stop="42").json()["choices"][0]["message"]["content"] == "Answer: "


def test_scripted_logprobs_and_alternatives() -> None:
    reply = ScriptedReply(
        "Yes.",
        logprobs=[-0.1, -3.0],
        top_logprobs=[[("No", -2.5)], [("!", -0.2), ("?", -0.5)]],
    )
    with FakeOpenAIServer(reply) as srv:
        entries = chat(srv, logprobs=True, top_logprobs=3).json()["choices"][0]["logprobs"]["content"]
        assert [(e["token"], e["logprob"]) for e in entries] == [("Yes", -0.1), (".", -3.0)]
        assert [t["token"] for t in entries[0]["top_logprobs"]][:2] == ["Yes", "No"]
        assert entries[0]["top_logprobs"][2]["logprob"] < -2.5
        assert [(t["token"], t["logprob"]) for t in entries[1]["top_logprobs"]] == [
            (".", -3.0),
            ("!", -0.2),
            ("?", -0.5),
        ]
    with pytest.raises(ValueError):
        Fault("nope")


def test_reasoning_field_and_inline() -> None:
    reply = ScriptedReply("The answer is 4.", reasoning="2 + 2 = 4")
    with FakeOpenAIServer(reply) as srv:
        body = chat(srv, logprobs=True).json()
        message = body["choices"][0]["message"]
        assert message["content"] == "The answer is 4."
        assert message["reasoning_content"] == "2 + 2 = 4"
        assert len(body["choices"][0]["logprobs"]["content"]) == 5 + 5
        assert body["usage"]["completion_tokens"] == 10
        assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}
        out = client(srv).chat.completions.create(model="m", messages=MESSAGES)
        assert getattr(out.choices[0].message, "reasoning_content", None) == "2 + 2 = 4"

        chunks = sse_chunks(srv)
        deltas = [c["choices"][0]["delta"] for c in chunks]
        assert "".join(d.get("reasoning_content", "") for d in deltas) == "2 + 2 = 4"
        assert "".join(d.get("content") or "" for d in deltas) == "The answer is 4."
        first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
        assert all("reasoning_content" not in d for d in deltas[first_content:])

        srv.reasoning = "inline"
        body = chat(srv, logprobs=True).json()
        message = body["choices"][0]["message"]
        assert message["content"] == "<think>2 + 2 = 4</think>The answer is 4."
        assert "reasoning_content" not in message
        tokens = [e["token"] for e in body["choices"][0]["logprobs"]["content"]]
        assert tokens[0] == "<think>" and tokens[6] == "</think>"
        chunks = sse_chunks(srv)
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert text == "<think>2 + 2 = 4</think>The answer is 4."


# ---------------------------------------------------------------------------------------------------------
# Streaming


def test_stream_format(srv: FakeOpenAIServer) -> None:
    chunks = sse_chunks(srv, logprobs=True, top_logprobs=2, stream_options={"include_usage": True})
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    token_chunks = chunks[1:-2]
    assert len(token_chunks) == 5
    text = ""
    for pos, c in enumerate(token_chunks):
        (choice,) = c["choices"]
        assert choice["finish_reason"] is None
        (entry,) = choice["logprobs"]["content"]
        assert entry["token"] == choice["delta"]["content"]
        assert entry["logprob"] == default_logprob(entry["token"], pos)
        assert len(entry["top_logprobs"]) == 2 and entry["top_logprobs"][0]["token"] == entry["token"]
        text += choice["delta"]["content"]
    assert text == DEFAULT_REPLY
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 5, "total_tokens": 13}
    assert all(c["usage"] is None for c in chunks[:-1])
    # without include_usage: no usage chunk, no usage key
    chunks = sse_chunks(srv)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)
    record = srv.last_record
    assert record.stream and record.completed and not record.cancelled and record.tokens_sent == 5


def test_stream_n_interleaved() -> None:
    with FakeOpenAIServer(["a b c", "x"]) as srv:
        chunks = sse_chunks(srv, n=2, stream_options={"include_usage": True})
        texts: dict[int, str] = {0: "", 1: ""}
        finish: dict[int, str] = {}
        for c in chunks[:-1]:
            (choice,) = c["choices"]
            texts[choice["index"]] += choice["delta"].get("content") or ""
            if choice["finish_reason"]:
                finish[choice["index"]] = choice["finish_reason"]
        assert texts == {0: "a b c", 1: "x"}
        assert finish == {0: "stop", 1: "stop"}
        assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_openai_sync_stream(srv: FakeOpenAIServer) -> None:
    stream = client(srv).chat.completions.create(
        model="m",
        messages=MESSAGES,
        stream=True,
        logprobs=True,
        top_logprobs=1,
        stream_options={"include_usage": True},
    )
    text, tokens, usage, finish = "", [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            if choice.logprobs and choice.logprobs.content:
                tokens += [t.token for t in choice.logprobs.content]
    assert text == DEFAULT_REPLY
    assert "".join(tokens) == DEFAULT_REPLY
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 5


async def test_openai_async_stream_and_non_stream(srv: FakeOpenAIServer) -> None:
    async with aclient(srv) as ac:
        out = await ac.chat.completions.create(model="m", messages=MESSAGES, logprobs=True, top_logprobs=4)
        assert out.choices[0].message.content == DEFAULT_REPLY
        stream = await ac.chat.completions.create(model="m", messages=MESSAGES, stream=True, n=2)
        texts = ["", ""]
        async for chunk in stream:
            for choice in chunk.choices:
                texts[choice.index] += choice.delta.content or ""
    assert texts == [DEFAULT_REPLY, DEFAULT_REPLY]


async def test_concurrent_requests_are_all_recorded() -> None:
    with FakeOpenAIServer(token_delay_s=0.01) as srv:
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=5.0) as http:

            async def one(i: int) -> str:
                body = {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}], "stream": True}
                text = ""
                async with http.stream("POST", "/chat/completions", json=body) as resp:
                    async for line in resp.aiter_lines():
                        if line.startswith("data: {"):
                            for choice in json.loads(line[6:])["choices"]:
                                text += choice["delta"].get("content") or ""
                return text

            t0 = time.perf_counter()
            texts = await asyncio.gather(*(one(i) for i in range(20)))
            assert time.perf_counter() - t0 < 1.0  # streams are served concurrently
        assert texts == [DEFAULT_REPLY] * 20
        assert sorted(r["messages"][0]["content"] for r in srv.requests) == sorted(f"q{i}" for i in range(20))
        assert all(r.completed for r in srv.records)


# ---------------------------------------------------------------------------------------------------------
# Cancellation


def test_client_closing_stream_is_recorded_as_cancelled() -> None:
    with FakeOpenAIServer("one two three four five six seven eight", token_delay_s=0.05) as srv:
        with (
            httpx.Client(timeout=5.0) as http,
            http.stream(
                "POST", srv.base_url + "/chat/completions", json={"messages": MESSAGES, "stream": True}
            ) as resp,
        ):
            seen = 0
            for line in resp.iter_lines():
                if '"content":"' in line and '"role"' not in line:
                    seen += 1
                    if seen == 2:
                        break
        assert srv.wait_for(lambda s: s.cancelled_count == 1, 2.0)
        assert srv.wait_idle(2.0)
        record = srv.last_record
        assert record.cancelled and not record.completed
        assert 2 <= record.tokens_sent < 8


async def test_async_openai_stream_closed_early_is_cancelled() -> None:
    with FakeOpenAIServer("a b c d e f g h i j", token_delay_s=0.05) as srv:
        async with aclient(srv) as ac:
            stream = await ac.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            got = 0
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    got += 1
                    if got == 3:
                        break
            await stream.close()
        assert await asyncio.to_thread(srv.wait_for, lambda s: s.cancelled_count == 1, 2.0)
        assert srv.last_record.tokens_sent < 10


def test_completed_stream_is_not_cancelled(srv: FakeOpenAIServer) -> None:
    sse_chunks(srv)
    chat(srv)
    assert srv.wait_idle(2.0)
    assert srv.cancelled_count == 0
    assert all(r.completed for r in srv.records)


# ---------------------------------------------------------------------------------------------------------
# Auth and validation


def test_api_key() -> None:
    with FakeOpenAIServer(api_key="sk-right") as srv:
        assert chat(srv).status_code == 401
        resp = httpx.post(
            srv.base_url + "/chat/completions",
            json={"messages": MESSAGES},
            headers={"Authorization": "Bearer sk-wrong"},
        )
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(srv.base_url + "/models").status_code == 401
        assert httpx.get(srv.url + "/health").status_code == 200
        with pytest.raises(openai.AuthenticationError):
            client(srv, api_key="sk-wrong").chat.completions.create(model="m", messages=MESSAGES)
        out = client(srv, api_key="sk-right").chat.completions.create(model="m", messages=MESSAGES)
        assert out.choices[0].message.content == DEFAULT_REPLY
        assert srv.last_record.headers["authorization"] == "Bearer sk-right"
        assert [r.status for r in srv.records] == [401, 401, 401, 200]


def test_validation_errors(srv: FakeOpenAIServer) -> None:
    assert chat(srv, top_logprobs=2).status_code == 400
    assert chat(srv, logprobs=True, top_logprobs=21).status_code == 400
    assert chat(srv, messages=[]).status_code == 400
    assert chat(srv, n=0).status_code == 400
    resp = httpx.post(srv.base_url + "/chat/completions", content=b"{not json")
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert srv.records[-1].json is None and srv.records[-1].body == b"{not json"
    with pytest.raises(openai.BadRequestError):
        client(srv).chat.completions.create(model="m", messages=MESSAGES, top_logprobs=2)


# ---------------------------------------------------------------------------------------------------------
# Faults


def test_fault_queue_order_and_http_errors() -> None:
    faults = [
        Fault("server_error"),
        None,
        "rate_limit",
        Fault("bad_request", message="nope"),
        "unauthorized",
        Fault("server_error", status=503),
    ]
    with FakeOpenAIServer(faults=faults) as srv:
        assert len(srv.pending_faults) == 6
        r = chat(srv)
        assert r.status_code == 500
        assert r.json()["error"]["type"] == "server_error"
        assert set(r.json()["error"]) >= {"message", "type"}
        assert chat(srv).status_code == 200
        r = chat(srv)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        r = chat(srv)
        assert r.status_code == 400 and r.json()["error"]["message"] == "nope"
        assert chat(srv).status_code == 401
        assert chat(srv).status_code == 503
        assert chat(srv).status_code == 200
        assert [r.fault.kind if r.fault else None for r in srv.records] == [
            "server_error",
            None,
            "rate_limit",
            "bad_request",
            "unauthorized",
            "server_error",
            None,
        ]
        srv.push_faults("server_error")
        sse = httpx.post(srv.base_url + "/chat/completions", json={"messages": MESSAGES, "stream": True})
        assert sse.status_code == 500


def test_openai_client_errors_and_retries() -> None:
    with FakeOpenAIServer(faults=["server_error", "rate_limit", "bad_request"]) as srv:
        c = client(srv)
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="m", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model="m", messages=MESSAGES)
        with pytest.raises(openai.BadRequestError):
            c.chat.completions.create(model="m", messages=MESSAGES)
        srv.push_faults(Fault("rate_limit", retry_after=0.05), Fault("rate_limit", retry_after=0.05))
        t0 = time.perf_counter()
        out = client(srv, max_retries=3).chat.completions.create(model="m", messages=MESSAGES)
        assert out.choices[0].message.content == DEFAULT_REPLY
        assert srv.request_count == 3 + 3
        assert time.perf_counter() - t0 < 1.0


def test_slow_fault_triggers_client_timeout() -> None:
    with FakeOpenAIServer(faults=[Fault("slow", delay_s=5.0)]) as srv:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.base_url + "/chat/completions", json={"messages": MESSAGES}, timeout=0.2)
        assert srv.wait_idle(2.0)  # the server noticed the client went away
        assert srv.last_record.cancelled
        srv.push_faults(Fault("slow", delay_s=0.1))
        t0 = time.perf_counter()
        assert chat(srv).status_code == 200
        assert time.perf_counter() - t0 >= 0.1
        with pytest.raises(openai.APITimeoutError):
            srv.push_faults(Fault("slow", delay_s=5.0))
            client(srv, timeout=0.2).chat.completions.create(model="m", messages=MESSAGES)


def test_slow_fault_mid_stream() -> None:
    with FakeOpenAIServer(faults=[Fault("slow", delay_s=5.0, after_tokens=2)]) as srv:
        got: list[str] = []
        body = {"messages": MESSAGES, "stream": True}
        with (
            pytest.raises(httpx.ReadTimeout),
            httpx.stream("POST", srv.base_url + "/chat/completions", json=body, timeout=0.3) as resp,
        ):
            for line in resp.iter_lines():
                if line.startswith("data: {"):
                    got.append(line)
        assert len(got) == 1 + 2  # role chunk + 2 tokens
        assert srv.wait_idle(2.0)
        assert srv.last_record.cancelled and srv.last_record.tokens_sent == 2


@pytest.mark.parametrize("kind", ["reset", "disconnect"])
def test_connection_faults(kind: str) -> None:
    with FakeOpenAIServer(faults=[kind, kind]) as srv:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as info:
            chat(srv)
        if kind == "reset":
            assert isinstance(info.value, httpx.ReadError) or "reset" in str(info.value).lower()
        with pytest.raises(openai.APIConnectionError):
            client(srv).chat.completions.create(model="m", messages=MESSAGES)
        assert chat(srv).status_code == 200  # later requests are fine
        records = srv.records
        assert [r.status for r in records] == [None, None, 200]
        assert not records[0].cancelled and not records[0].completed


def test_truncated_stream() -> None:
    with FakeOpenAIServer("a b c d e f", faults=[Fault("truncate", after_tokens=3), "truncate"]) as srv:
        payloads: list[str] = []
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream(
                "POST", srv.base_url + "/chat/completions", json={"messages": MESSAGES, "stream": True}
            ) as resp,
        ):
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    payloads.append(line[6:])
        assert "[DONE]" not in payloads
        assert len(payloads) == 1 + 3
        assert all(json.loads(p)["choices"][0]["finish_reason"] is None for p in payloads)
        assert srv.wait_idle(2.0)
        assert srv.last_record.tokens_sent == 3 and not srv.last_record.cancelled
        assert not srv.last_record.completed


def test_truncated_stream_via_openai_raises() -> None:
    with FakeOpenAIServer("a b c d", faults=["truncate"]) as srv:
        chunks = []
        with pytest.raises(openai.APIConnectionError):
            for chunk in client(srv).chat.completions.create(model="m", messages=MESSAGES, stream=True):
                chunks.append(chunk)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "a b"


def test_truncated_non_stream() -> None:
    with FakeOpenAIServer(faults=["truncate"]) as srv, pytest.raises(httpx.RemoteProtocolError):
        chat(srv)


def test_malformed_json() -> None:
    with FakeOpenAIServer(faults=["malformed_json", Fault("malformed_json", after_tokens=2)]) as srv:
        resp = chat(srv)
        assert resp.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            resp.json()
        payloads = sse_payloads(srv)
        assert payloads[-1] == "[DONE]"
        bad = []
        for p in payloads[:-1]:
            try:
                json.loads(p)
            except json.JSONDecodeError:
                bad.append(p)
        assert len(bad) == 1
        assert payloads.index(bad[0]) == 1 + 2
        assert len(payloads) == 1 + 1 + 5 + 1 + 1  # role, bad, tokens, finish, [DONE]


def test_no_logprobs_and_duplicate_chunks() -> None:
    with FakeOpenAIServer(faults=["no_logprobs", "no_logprobs", "duplicate_chunks"]) as srv:
        assert chat(srv, logprobs=True, top_logprobs=2).json()["choices"][0]["logprobs"] is None
        chunks = sse_chunks(srv, logprobs=True)
        assert all(c["choices"][0]["logprobs"] is None for c in chunks)
        chunks = sse_chunks(srv, logprobs=True)
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert text == "".join(t + t for t in tokenize(DEFAULT_REPLY))
        assert srv.last_record.tokens_sent == 5


def test_fault_rates_are_seeded() -> None:
    def run(seed: int) -> list[int]:
        rates = {"server_error": 0.3, "rate_limit": 0.2}
        with (
            FakeOpenAIServer(fault_rates=rates, seed=seed) as srv,
            httpx.Client(base_url=srv.base_url) as http,
        ):
            return [
                http.post("/chat/completions", json={"messages": MESSAGES}).status_code for _ in range(40)
            ]

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    assert set(a) == {200, 429, 500}
    with pytest.raises(ValueError):
        FakeOpenAIServer(fault_rates={"server_error": 0.8, "reset": 0.3})


# ---------------------------------------------------------------------------------------------------------
# Standalone


def test_runs_standalone() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port), "--reply", "hello there"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.05)
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"messages": MESSAGES})
        assert resp.json()["choices"][0]["message"]["content"] == "hello there"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert port_is_closed(port)
