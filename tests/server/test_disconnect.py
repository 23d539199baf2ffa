"""A client that goes away cancels all upstream work of its request: streams and plain calls are closed."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAIServer, Fault
from tests.server.conftest import run_proxy

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
LONG = " ".join(f"step{i}" for i in range(60)) + " so the answer is 4."


def read_then_leave(url: str, body: dict[str, Any], lines: int) -> list[str]:
    seen: list[str] = []
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                seen.append(line)
            if len(seen) >= lines:
                break  # leaving the block closes the connection
    return seen


def assert_all_cancelled(srv: FakeOpenAIServer, expected: int) -> None:
    assert srv.wait_for(lambda s: s.cancelled_count >= expected, timeout=5), srv.records
    assert srv.wait_idle(timeout=5)
    count = srv.request_count
    time.sleep(0.3)  # nothing new starts after the client left
    assert srv.request_count == count and srv.in_flight == 0
    assert srv.cancelled_count == expected


def test_passthrough_stream() -> None:
    with FakeOpenAIServer(LONG, token_delay_s=0.03) as srv, run_proxy(srv) as proxy:
        seen = read_then_leave(proxy.base_url, {"model": "m", "messages": MESSAGES, "stream": True}, lines=3)
        assert all(line.startswith("data: {") for line in seen)
        assert_all_cancelled(srv, 1)
        assert srv.records[0].tokens_sent < 30


def test_strategy_with_streamed_traces() -> None:
    # deepconf online: the warm-up answers nothing, so the proxy streams more traces; the client leaves meanwhile.
    def responder(request: dict[str, Any], index: int) -> str:
        return LONG if request.get("stream") else "I do not know."

    with FakeOpenAIServer(responder, token_delay_s=0.03) as srv, run_proxy(srv) as proxy:
        params = {"strategy": "deepconf", "mode": "online", "n": 8, "warmup": 1, "batch": 3, "eta": 90}
        seen = read_then_leave(proxy.base_url, {"model": "m", "messages": MESSAGES, "stream": True,
                                                "ponder": params}, lines=2)
        assert all(line.startswith(": ponder progress") for line in seen)
        assert srv.wait_for(lambda s: s.cancelled_count >= 3, timeout=5)
        assert_all_cancelled(srv, 3)
        assert [r.stream for r in srv.records] == [False, True, True, True]


@pytest.mark.parametrize("stream", [False, True])
def test_strategy_with_plain_calls(stream: bool) -> None:
    with FakeOpenAIServer(LONG, faults=[Fault("slow", delay_s=5)]) as srv, run_proxy(srv) as proxy:
        body = {"model": "m", "messages": MESSAGES, "stream": stream, "ponder": {"strategy": "self-consistency"}}
        if stream:
            # stay connected until the upstream call is under way, then leave: that call must be cancelled
            with httpx.stream("POST", proxy.base_url + "/chat/completions", json=body, timeout=10) as response:
                assert srv.wait_for(lambda s: s.in_flight == 1)
                assert response.status_code == 200
        else:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(proxy.base_url + "/chat/completions", json=body, timeout=0.3)
            assert srv.wait_for(lambda s: s.in_flight == 1)
        assert_all_cancelled(srv, 1)
