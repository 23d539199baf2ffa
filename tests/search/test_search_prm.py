"""The PRM scorer against a tiny HTTP server: ponder's JSON protocol, vLLM's pooling shape, and failures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.errors import BackendError, BackendUnavailable
from ponder.search.scorers import VLLM_STEP_TAG, PRMScorer
from ponder.strategies import get_strategy
from tests.conftest import make_problem
from tests.search.search_scripts import TRAP, stepper

Reply = tuple[int, Any]  # status, JSON body (or bytes sent as they are)


class PRMServer:
    """Answers each POST with ``handler(path, body)``; records what it was sent."""

    def __init__(self, handler: Callable[[str, Any], Reply], delay_s: float = 0.0) -> None:
        self.handler = handler
        self.requests: list[tuple[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                time.sleep(delay_s)
                status, reply = outer.handler(self.path, body)
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> PRMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ctx() -> Iterator[Ctx]:
    yield Ctx(FakeBackend(["unused"]), make_problem())


async def test_ponder_protocol_posts_question_and_steps_and_reads_the_last_score(ctx: Ctx) -> None:
    with PRMServer(lambda path, body: (200, {"scores": [0.9] * (len(body["steps"]) - 1) + [0.25]})) as server:
        scorer = PRMScorer(server.url + "/score")
        score = await scorer.score(ctx, ctx.problem, ["Add 3 and 4.", "That is eight."])
    assert score == 0.25 and scorer.calls == 1
    path, body = server.requests[0]
    assert path == "/score" and body == {"question": "What is 3 + 4?", "steps": ["Add 3 and 4.", "That is eight."]}
    assert ctx.usage.calls == 0  # no model call: the PRM is not the policy model


async def test_single_score_replies_are_accepted(ctx: Ctx) -> None:
    with PRMServer(lambda path, body: (200, {"score": 0.6})) as server:
        assert await PRMScorer(server.url).score(ctx, ctx.problem, ["Add."]) == 0.6


async def test_vllm_pooling_shape_tags_every_step_and_reads_p_positive(ctx: Ctx) -> None:
    def pooling(path: str, body: Any) -> Reply:
        steps = body["messages"][-1]["content"].count(VLLM_STEP_TAG)
        rows = [[0.1, 0.9]] * (steps - 1) + [[0.7, 0.3]]
        return 200, {"id": "pool-1", "object": "list", "model": "Qwen/Qwen2.5-Math-PRM-7B",
                     "data": [{"index": 0, "object": "pooling", "data": rows}], "usage": {"prompt_tokens": 50}}

    with PRMServer(pooling) as server:
        scorer = PRMScorer(server.url + "/pooling", model="Qwen/Qwen2.5-Math-PRM-7B")
        score = await scorer.score(ctx, ctx.problem, ["Add 3 and 4.", "That is eight."])
    assert score == 0.3
    _, body = server.requests[0]
    assert body["model"] == "Qwen/Qwen2.5-Math-PRM-7B"
    system, user, assistant = body["messages"]
    assert user == {"role": "user", "content": "What is 3 + 4?"} and system["role"] == "system"
    assert assistant["content"] == f"Add 3 and 4.{VLLM_STEP_TAG}That is eight.{VLLM_STEP_TAG}"


async def test_transient_failures_are_retried_a_bounded_number_of_times(ctx: Ctx) -> None:
    replies = iter([(503, {"error": "loading"}), (200, {"scores": [0.8]})])
    with PRMServer(lambda path, body: next(replies)) as server:
        assert await PRMScorer(server.url, base_delay_s=0.01).score(ctx, ctx.problem, ["Add."]) == 0.8
    assert len(server.requests) == 2

    with (
        PRMServer(lambda path, body: (500, {"error": "boom"})) as server,
        pytest.raises(BackendError, match=rf"PRM server at {server.url}.*HTTP 500.*after 3 tries"),
    ):
        await PRMScorer(server.url, attempts=3, base_delay_s=0.01).score(ctx, ctx.problem, ["Add."])
    assert len(server.requests) == 3


async def test_client_errors_fail_at_once_with_the_servers_message(ctx: Ctx) -> None:
    with (
        PRMServer(lambda path, body: (400, {"error": "steps must be a list"})) as server,
        pytest.raises(BackendError, match=r"HTTP 400.*steps must be a list") as info,
    ):
        await PRMScorer(server.url, base_delay_s=0.01).score(ctx, ctx.problem, ["Add."])
    assert len(server.requests) == 1 and info.value.status == 400


@pytest.mark.parametrize("reply", [{"scores": [1.7]}, {"scores": ["high"]}, {"verdict": "good"}, b"not json",
                                   {"scores": []}])
async def test_unusable_replies_are_clear_errors(ctx: Ctx, reply: Any) -> None:
    with (
        PRMServer(lambda path, body: (200, reply)) as server,
        pytest.raises(BackendError, match=f"PRM server at {server.url}"),
    ):
        await PRMScorer(server.url).score(ctx, ctx.problem, ["Add."])


async def test_timeouts_and_unreachable_servers_name_the_url(ctx: Ctx) -> None:
    with (
        PRMServer(lambda path, body: (200, {"score": 0.5}), delay_s=0.5) as server,
        pytest.raises(BackendError, match=f"PRM server at {server.url} timed out"),
    ):
        await PRMScorer(server.url, timeout_s=0.1, attempts=2, base_delay_s=0.01).score(ctx, ctx.problem, ["x"])
    with PRMServer(lambda path, body: (200, {})) as server:
        url = server.url  # closed on exit: nothing listens there any more
    with pytest.raises(BackendUnavailable, match=f"cannot reach the PRM server at {url}"):
        await PRMScorer(url, attempts=2, base_delay_s=0.01).score(ctx, ctx.problem, ["x"])


async def test_beam_search_follows_the_prm(ctx: Ctx) -> None:
    def prm(path: str, body: Any) -> Reply:
        return 200, {"scores": [0.9 if "seven" in s or "7" in s else 0.1 for s in body["steps"]]}

    problem = make_problem()
    with PRMServer(prm) as server:
        result = await get_strategy("beam")(problem, Ctx(stepper(TRAP), problem), n=1, expansions=2,
                                            scorer=f"prm:{server.url}")
    assert result.answer == "7" and result.info["scorer_calls"] == 3
