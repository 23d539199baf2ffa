"""Fixtures for the proxy tests: the proxy app served in-process by uvicorn on a free port, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from ponder.backends.openai import OpenAIBackend
from ponder.backends.retry import RetryPolicy
from ponder.server.app import create_app
from ponder.server.requests import ServeConfig
from tests.fakes.openai_server import FakeOpenAIServer

FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02)


class Proxy:
    """A running proxy: ``base_url`` is its OpenAI base URL."""

    def __init__(self, app: Any) -> None:
        # IPPROTO_TCP explicitly, or asyncio skips TCP_NODELAY on accepted sockets (40 ms delayed-ACK stalls).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def __enter__(self) -> Proxy:
        self.thread.start()
        deadline = time.monotonic() + 120  # the embedded llama-server may take a while
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@contextmanager
def run_proxy(upstream: FakeOpenAIServer, **config: Any) -> Iterator[Proxy]:
    """The proxy in front of a fake upstream, with fast retries."""
    backend = OpenAIBackend(upstream.base_url, retry=FAST_RETRY)
    config.setdefault("progress_interval_s", 0.05)
    with Proxy(create_app(backend, ServeConfig(**config))) as proxy:
        yield proxy


ProxyFactory = Callable[..., Proxy]


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer("Let me add: 2 + 2 = 4. The answer is \\boxed{4}.") as srv:
        yield srv


@pytest.fixture
def proxy(upstream: FakeOpenAIServer) -> Iterator[Proxy]:
    with run_proxy(upstream) as running:
        yield running
