"""Several upstreams of one model as one backend (``--model openai:URL1,URL2``), against two fake servers."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ponder.backends import FleetBackend, open_backend, parse_model_spec
from ponder.backends.base import StreamEnd
from ponder.backends.retry import RetryPolicy
from ponder.errors import BackendError, BackendUnavailable, ConfigError
from ponder.runner import EvalConfig, run_eval
from ponder.store import Store
from ponder.types import Delta, GenerationRequest
from tests.fakes.openai_server import FakeOpenAIServer, Fault

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
# A long backoff: a test that finishes fast proves the failover did not wait for it.
SLOW_BACKOFF = RetryPolicy(attempts=3, base_delay_s=5.0, max_delay_s=5.0)


def request(**kw: object) -> GenerationRequest:
    return GenerationRequest(list(MESSAGES), **kw)  # type: ignore[arg-type]


def fleet(*servers: FakeOpenAIServer | str, **kw: object) -> FleetBackend:
    urls = [s if isinstance(s, str) else s.base_url for s in servers]
    kw.setdefault("retry", RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05))
    return FleetBackend(urls, "fake-model", **kw)  # type: ignore[arg-type]


def delayed(text: str, seconds: float) -> Callable[[dict[str, Any], int], Awaitable[str]]:
    """A reply that takes ``seconds`` per request (the first choice waits; the others come with it, as batched)."""

    async def reply(request: dict[str, Any], index: int) -> str:
        if index == 0:
            await asyncio.sleep(seconds)
        return text

    return reply


def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def test_idle_requests_alternate_between_upstreams() -> None:
    with FakeOpenAIServer("The answer is 4.") as a, FakeOpenAIServer("The answer is 4.") as b:
        backend = fleet(a, b)
        for _ in range(6):
            (trace,) = await backend.complete(request())
            assert trace.text == "The answer is 4."
        await backend.aclose()
        assert (a.request_count, b.request_count) == (3, 3)  # ties on load go round-robin


async def test_concurrent_streams_are_split_evenly() -> None:
    with FakeOpenAIServer("word " * 30, token_delay_s=0.01) as a, \
            FakeOpenAIServer("word " * 30, token_delay_s=0.01) as b:
        backend = fleet(a, b)

        async def one() -> int:
            return sum([isinstance(e, Delta) async for e in backend.stream(request())])

        peak = [0, 0]

        async def watch() -> None:
            while True:
                peak[0], peak[1] = max(peak[0], a.in_flight), max(peak[1], b.in_flight)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        counts = await asyncio.gather(*(one() for _ in range(16)))
        watcher.cancel()
        await backend.aclose()
        assert all(c > 0 for c in counts)
        assert (a.request_count, b.request_count) == (8, 8)
        assert peak == [8, 8]


async def test_load_counts_traces_not_requests() -> None:
    """A request for 6 samples weighs 6: the next five single requests all go to the other upstream."""
    with FakeOpenAIServer(delayed("ok", 0.3)) as a, FakeOpenAIServer(delayed("ok", 0.3)) as b:
        backend = fleet(a, b)
        big = asyncio.create_task(backend.complete(request(n=6)))
        await asyncio.sleep(0.05)
        assert sorted(u.in_flight for u in backend.upstreams) == [0, 6]
        big_on = a if backend.upstreams[0].in_flight else b
        other = b if big_on is a else a
        await asyncio.gather(*(backend.complete(request()) for _ in range(5)))
        await big
        await backend.aclose()
        assert big_on.request_count == 1 and other.request_count == 5


async def test_a_slower_upstream_gets_less_traffic() -> None:
    with FakeOpenAIServer(delayed("ok", 0.005)) as fast, FakeOpenAIServer(delayed("ok", 0.1)) as slow:
        backend = fleet(slow, fast)
        queue = list(range(40))

        async def worker() -> None:
            while queue:
                queue.pop()
                await backend.complete(request())

        await asyncio.gather(*(worker() for _ in range(4)))
        await backend.aclose()
        assert fast.request_count + slow.request_count == 40
        assert fast.request_count > 2 * slow.request_count  # round-robin would give 20/20


async def test_a_down_upstream_is_skipped_and_costs_one_try_per_cooldown(caplog: pytest.LogCaptureFixture) -> None:
    down = dead_url()
    with FakeOpenAIServer("The answer is 4.") as live:
        backend = fleet(down, live, retry=SLOW_BACKOFF, cooldown_s=30.0)
        with caplog.at_level(logging.WARNING, logger="ponder.backends"):
            await backend.start()
        assert f"upstream {down}" in caplog.text and "goes to the others" in caplog.text
        start = time.perf_counter()
        results = await asyncio.gather(*(backend.complete(request()) for _ in range(10)))
        elapsed = time.perf_counter() - start
        assert all(t.text == "The answer is 4." for (t,) in results)
        assert live.request_count == 10
        assert backend.upstreams[0].requests == 0  # known down since start(): not tried again within its cooldown
        assert elapsed < 2.0  # no backoff was waited
        await backend.aclose()


async def test_failover_on_server_errors_goes_to_the_other_upstream_at_once() -> None:
    with FakeOpenAIServer("from a", faults=[Fault("server_error")] * 3) as a, FakeOpenAIServer("from b") as b:
        backend = fleet(a, b, retry=SLOW_BACKOFF)
        start = time.perf_counter()
        (trace,) = await backend.complete(request())
        assert trace.text == "from b" and time.perf_counter() - start < 2.0
        assert (a.request_count, b.request_count) == (1, 1)
        (trace,) = await backend.complete(request())  # a is cooling down: b again, no second try on a
        assert trace.text == "from b" and a.request_count == 1
        await backend.aclose()


async def test_a_stream_fails_over_before_its_first_token() -> None:
    with FakeOpenAIServer("from a", faults=[Fault("reset")]) as a, FakeOpenAIServer("from b") as b:
        backend = fleet(a, b, retry=SLOW_BACKOFF)
        events = [e async for e in backend.stream(request())]
        await backend.aclose()
        assert isinstance(events[-1], StreamEnd)
        assert "".join(e.text for e in events if isinstance(e, Delta)) == "from b"


async def test_a_stream_cut_after_tokens_is_not_restarted_elsewhere() -> None:
    with FakeOpenAIServer("one two three four five", faults=[Fault("truncate", after_tokens=2)]) as a, \
            FakeOpenAIServer("one two three four five") as b:
        backend = fleet(a, b, retry=SLOW_BACKOFF)
        backend._cursor = 0  # the first pick is a
        with pytest.raises(BackendError, match="closed the connection mid-response"):
            async for _ in backend.stream(request()):
                pass
        await backend.aclose()
        assert b.request_count == 0


async def test_closing_a_stream_cancels_it_upstream() -> None:
    with FakeOpenAIServer("word " * 200, token_delay_s=0.005) as a, FakeOpenAIServer("x") as b:
        backend = fleet(a, b)
        backend._cursor = 0
        stream = backend.stream(request())
        received = 0
        async for event in stream:
            received += isinstance(event, Delta)
            if received == 5:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        assert a.wait_for(lambda s: s.cancelled_count == 1, timeout=5)
        assert backend.upstreams[0].in_flight == 0
        await backend.aclose()


async def test_a_recovered_upstream_is_probed_and_used_again() -> None:
    with FakeOpenAIServer("b") as b:
        a = FakeOpenAIServer("a")
        a.start()
        url, port = a.base_url, a.port
        a.stop()
        backend = fleet(url, b, cooldown_s=0.05)
        await backend.complete(request())  # a refuses: served by b, a cools down
        await backend.complete(request())
        assert backend.upstreams[0].failures == 1
        with FakeOpenAIServer("a", port=port or 0) as again:
            await asyncio.sleep(0.1)
            texts = [t.text for _ in range(4) for t in await backend.complete(request())]
            assert "a" in texts and again.request_count >= 1
            assert backend.upstreams[0].failures == 0
        await backend.aclose()


async def test_every_upstream_down_is_one_error_naming_each() -> None:
    first, second = dead_url(), dead_url()
    backend = fleet(first, second)
    with pytest.raises(BackendUnavailable, match="every upstream failed") as info:
        await backend.start()
    assert first in str(info.value) and second in str(info.value)
    with pytest.raises(BackendUnavailable, match=r"every upstream failed after 4 tries") as info:
        await backend.complete(request())
    assert first in str(info.value) and second in str(info.value)
    await backend.aclose()


async def test_client_errors_are_not_failed_over() -> None:
    with FakeOpenAIServer("ok", faults=[Fault("bad_request", message="max_tokens too large")]) as a, \
            FakeOpenAIServer("ok", faults=[Fault("bad_request", message="max_tokens too large")]) as b:
        backend = fleet(a, b)
        with pytest.raises(BackendError, match="HTTP 400: max_tokens too large"):
            await backend.complete(request())
        assert a.request_count + b.request_count == 1
        assert all(u.failures == 0 for u in backend.upstreams)  # the request's fault, not the server's
        await backend.aclose()


async def test_a_wrong_key_on_one_upstream_fails_start() -> None:
    with FakeOpenAIServer("ok", api_key="k") as a, FakeOpenAIServer("ok", api_key="other") as b:
        backend = FleetBackend([a.base_url, b.base_url], api_key="k")
        with pytest.raises(BackendError, match=rf"upstream {b.base_url}: .*HTTP 401"):
            await backend.start()
        await backend.aclose()


async def test_upstreams_serving_different_models_are_refused() -> None:
    with FakeOpenAIServer("ok", model="qwen") as a, FakeOpenAIServer("ok", model="llama") as b:
        backend = FleetBackend([a.base_url, b.base_url])
        with pytest.raises(ConfigError, match=r"serve different models.*qwen.*llama"):
            await backend.start()
        await backend.aclose()
        named = FleetBackend([a.base_url, b.base_url], "qwen")
        await named.start()
        await named.complete(request())
        await named.aclose()


async def test_the_model_name_comes_from_the_upstreams() -> None:
    with FakeOpenAIServer("ok", model="served") as a, FakeOpenAIServer("ok", model="served") as b:
        async with open_backend(parse_model_spec(f"openai:{a.base_url},{b.base_url}")) as backend:
            assert isinstance(backend, FleetBackend) and backend.model == "served"
            await backend.complete(request())
            await backend.complete(request())
        assert [r["model"] for r in a.requests + b.requests] == ["served", "served"]


@pytest.mark.parametrize(("spec", "message"), [
    ("openai:http://a:1/v1,", r"\(empty\) is not a URL"),
    ("openai:http://a:1/v1,b:2", "b:2 is not a URL"),
    ("openai:http://a:1/v1,http://a:1/v1/", "http://a:1/v1 is listed twice"),
])
def test_bad_url_lists_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_model_spec(spec)


def test_a_url_list_parses_to_one_spec() -> None:
    spec = parse_model_spec("http://h1:8000/v1, http://h2:8000/v1/")
    assert spec.kind == "openai" and spec.target == "http://h1:8000/v1,http://h2:8000/v1"
    assert spec.describe() == "openai:http://h1:8000/v1,http://h2:8000/v1"


async def test_an_eval_over_two_upstreams_uses_both(tmp_path: Path) -> None:
    with FakeOpenAIServer("Adding them. The answer is 7.", token_delay_s=0.002) as a, \
            FakeOpenAIServer("Adding them. The answer is 7.", token_delay_s=0.002) as b:
        config = EvalConfig(task="add1", strategy="self-consistency", params={"n": 2},
                            model=parse_model_spec(f"openai:{a.base_url},{b.base_url}"), limit=12, concurrency=4)
        with Store(tmp_path / "runs.db") as store:
            outcome = await run_eval(config, store)
            assert outcome.progress.done == 12 and outcome.progress.errors == 0
        assert a.request_count >= 3 and b.request_count >= 3
