"""The OpenAI backend over real HTTP, against the scriptable fake server."""

from __future__ import annotations

import time

import pytest

from ponder.backends.base import StreamEnd
from ponder.backends.openai import OpenAIBackend
from ponder.backends.retry import RetryPolicy
from ponder.errors import BackendError, BackendUnavailable
from ponder.types import Delta, GenerationRequest
from tests.fakes.openai_server import FakeOpenAIServer, Fault, ScriptedReply

FAST_RETRY = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.2)
MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]


def request(**kw: object) -> GenerationRequest:
    return GenerationRequest(list(MESSAGES), **kw)  # type: ignore[arg-type]


def backend_for(srv: FakeOpenAIServer, **kw: object) -> OpenAIBackend:
    return OpenAIBackend(srv.base_url, "fake-model", retry=FAST_RETRY, **kw)  # type: ignore[arg-type]


async def test_native_n_with_logprobs_in_one_request() -> None:
    with FakeOpenAIServer(["The answer is 4.", "It is 5."]) as srv:
        backend = backend_for(srv)
        traces = await backend.complete(request(n=3, logprobs=True, top_logprobs=3, temperature=0.7))
        await backend.aclose()
        assert srv.request_count == 1 and srv.requests[0]["n"] == 3
    assert [t.text for t in traces] == ["The answer is 4.", "It is 5.", "The answer is 4."]
    first = traces[0]
    assert "".join(first.tokens) == first.text and len(first.logprobs) == first.completion_tokens == 5
    assert all(len(top) == 3 and top[0][0] == tok for top, tok in zip(first.top_logprobs, first.tokens, strict=True))
    assert first.prompt_tokens == 5 and first.finish_reason == "stop"


async def test_n_is_emulated_when_the_server_ignores_it() -> None:
    with FakeOpenAIServer(["a", "b"], native_n=False) as srv:
        backend = backend_for(srv)
        traces = await backend.complete(request(n=3, seed=10))
        assert len(traces) == 3 and [t.index for t in traces] == [0, 1, 2]
        assert srv.request_count == 3  # one native try, then two single requests
        assert sorted(r.get("seed") for r in srv.requests[1:]) == [11, 12]  # distinct seeds per sample
        srv.clear_records()
        await backend.complete(request(n=2))
        assert srv.request_count == 2 and all("n" not in r for r in srv.requests)  # no more native tries
        await backend.aclose()


async def test_stream_yields_tokens_and_usage() -> None:
    with FakeOpenAIServer("The answer is 4.") as srv:
        backend = backend_for(srv)
        events = [e async for e in backend.stream(request(logprobs=True, top_logprobs=2))]
        await backend.aclose()
        assert srv.requests[0]["stream"] is True and srv.requests[0]["stream_options"] == {"include_usage": True}
    deltas = [e for e in events if isinstance(e, Delta)]
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
    assert "".join(d.text for d in deltas) == "The answer is 4."
    assert sum(len(d.tokens) for d in deltas) == end.completion_tokens == 5 and end.prompt_tokens == 5


async def test_closing_a_stream_cancels_it_on_the_server() -> None:
    with FakeOpenAIServer("word " * 200, token_delay_s=0.005) as srv:
        backend = backend_for(srv)
        stream = backend.stream(request())
        received = 0
        async for event in stream:
            received += isinstance(event, Delta)
            if received == 5:
                break
        await stream.aclose()
        assert srv.wait_for(lambda s: s.cancelled_count == 1, timeout=5)
        assert srv.last_record.tokens_sent < 100
        await backend.aclose()


@pytest.mark.parametrize("mode", ["field", "inline"])
async def test_reasoning_is_kept_apart_from_the_answer(mode: str) -> None:
    reply = ScriptedReply(text="The answer is 4.", reasoning="2 and 2 make 4")
    with FakeOpenAIServer(reply, reasoning=mode) as srv:
        backend = backend_for(srv)
        (trace,) = await backend.complete(request())
        events = [e async for e in backend.stream(request())]
        await backend.aclose()
    assert trace.text == "The answer is 4." and trace.reasoning == "2 and 2 make 4"
    streamed = [e for e in events if isinstance(e, Delta)]
    assert "".join(d.text for d in streamed).strip() == "The answer is 4."
    assert "".join(d.reasoning for d in streamed) == "2 and 2 make 4"


@pytest.mark.parametrize("fault", [Fault("server_error"), Fault("rate_limit", retry_after=0.05), Fault("reset"),
                                   Fault("disconnect"), Fault("malformed_json")])
async def test_transient_faults_are_retried(fault: Fault) -> None:
    with FakeOpenAIServer("The answer is 4.", faults=[fault]) as srv:
        backend = backend_for(srv)
        (trace,) = await backend.complete(request())
        await backend.aclose()
        assert trace.text == "The answer is 4." and srv.request_count == 2


async def test_retry_after_is_honoured() -> None:
    with FakeOpenAIServer("ok", faults=[Fault("rate_limit", retry_after=0.3)]) as srv:
        backend = OpenAIBackend(srv.base_url, "m", retry=RetryPolicy(base_delay_s=0.01, max_delay_s=5))
        start = time.perf_counter()
        await backend.complete(request())
        assert time.perf_counter() - start >= 0.3
        await backend.aclose()


async def test_retries_are_bounded_and_the_error_keeps_the_server_message() -> None:
    with FakeOpenAIServer("ok", faults=[Fault("server_error", message="GPU on fire")] * 10) as srv:
        backend = backend_for(srv)
        with pytest.raises(BackendError, match=r"HTTP 500: GPU on fire \(after 4 tries\)"):
            await backend.complete(request())
        assert srv.request_count == 4
        await backend.aclose()


async def test_client_errors_are_not_retried() -> None:
    with FakeOpenAIServer("ok", faults=[Fault("bad_request", message="max_tokens too large")]) as srv:
        backend = backend_for(srv)
        with pytest.raises(BackendError, match="HTTP 400: max_tokens too large") as info:
            await backend.complete(request())
        assert info.value.status == 400 and srv.request_count == 1
        await backend.aclose()


async def test_timeouts_are_retried() -> None:
    with FakeOpenAIServer("ok", faults=[Fault("slow", delay_s=2.0)]) as srv:
        backend = backend_for(srv, timeout_s=0.3)
        (trace,) = await backend.complete(request())
        assert trace.text == "ok" and srv.request_count == 2
        await backend.aclose()


async def test_a_stream_cut_before_any_token_is_retried() -> None:
    with FakeOpenAIServer("The answer is 4.", faults=[Fault("truncate", after_tokens=0)]) as srv:
        backend = backend_for(srv)
        events = [e async for e in backend.stream(request())]
        await backend.aclose()
        assert isinstance(events[-1], StreamEnd) and srv.request_count == 2


async def test_a_stream_cut_after_tokens_is_an_error_not_a_silent_short_trace() -> None:
    with FakeOpenAIServer("one two three four five six", faults=[Fault("truncate", after_tokens=3)]) as srv:
        backend = backend_for(srv)
        with pytest.raises(BackendError, match="closed the connection mid-response"):
            async for _ in backend.stream(request()):
                pass
        await backend.aclose()


async def test_api_key_is_sent_and_a_wrong_one_is_reported() -> None:
    with FakeOpenAIServer("ok", api_key="sekrit") as srv:
        good = OpenAIBackend(srv.base_url, "m", api_key="sekrit", retry=FAST_RETRY)
        await good.complete(request())
        assert srv.records[0].headers["authorization"] == "Bearer sekrit"
        bad = OpenAIBackend(srv.base_url, "m", api_key="nope", retry=FAST_RETRY)
        with pytest.raises(BackendError, match="HTTP 401"):
            await bad.complete(request())
        await good.aclose()
        await bad.aclose()


async def test_unknown_parameters_pass_through() -> None:
    with FakeOpenAIServer("ok") as srv:
        backend = backend_for(srv)
        await backend.complete(request(extra={"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}}))
        await backend.aclose()
        sent = srv.requests[0]
    assert sent["top_k"] == 20 and sent["chat_template_kwargs"] == {"enable_thinking": False}


async def test_missing_logprobs_still_gives_exact_token_totals() -> None:
    with FakeOpenAIServer(["The answer is 4.", "No idea at all, sorry."], faults=[Fault("no_logprobs")]) as srv:
        backend = backend_for(srv)
        traces = await backend.complete(request(n=2, logprobs=True))
        await backend.aclose()
    assert all(t.logprobs == [] for t in traces)
    assert sum(t.completion_tokens for t in traces) == 5 + 7 and all(t.completion_tokens > 0 for t in traces)


async def test_model_defaults_to_the_servers_first() -> None:
    with FakeOpenAIServer("ok", model="served-model") as srv:
        backend = OpenAIBackend(srv.base_url, retry=FAST_RETRY)
        await backend.start()
        await backend.complete(request())
        await backend.aclose()
        assert srv.requests[0]["model"] == "served-model"


async def test_unreachable_server_is_one_clear_error() -> None:
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m", retry=FAST_RETRY)
    with pytest.raises(BackendUnavailable, match=r"cannot reach the model server at http://127\.0\.0\.1:9/v1"):
        await backend.start()
    await backend.aclose()


async def test_n_above_the_servers_limit_is_split_into_chunks() -> None:
    message = "Field 'n': Value must be between 1 <= value <= 16, but got 40"
    with FakeOpenAIServer("The answer is 4.", faults=[Fault("bad_request", message=message)]) as srv:
        backend = backend_for(srv)
        traces = await backend.complete(request(n=40, seed=5))
        assert len(traces) == 40 and [t.index for t in traces] == list(range(40))
        assert sorted(r["n"] for r in srv.requests[1:]) == [8, 16, 16]
        assert sorted(r["seed"] for r in srv.requests[1:]) == [5, 21, 37]
        srv.clear_records()
        await backend.complete(request(n=20))  # the limit is remembered: no failed try first
        assert sorted(r["n"] for r in srv.requests) == [4, 16]
        await backend.aclose()


async def test_an_echoed_assistant_prefill_is_cut_from_the_text() -> None:
    prefill = "Let me think. Therefore, the final answer is"

    def echo_then_answer(request: dict, index: int) -> str:
        return request["messages"][-1]["content"] + " 4."  # as llama-server does

    with FakeOpenAIServer(echo_then_answer) as srv:
        backend = backend_for(srv)
        msgs = [*MESSAGES, {"role": "assistant", "content": prefill}]
        (trace,) = await backend.complete(GenerationRequest(msgs))
        (plain,) = await backend.complete(request())  # no prefill: nothing is cut
        await backend.aclose()
    assert trace.text.strip() == "4." and plain.text.startswith("What is")
