"""The aiohttp transport under httpx: errors arrive as the httpx types the retry logic reads, and closing a
stream early drops the connection at once (so the server stops generating)."""

from __future__ import annotations

import socket

import httpx
import pytest

from ponder.backends.http import fast_transport
from tests.fakes.openai_server import FakeOpenAIServer, Fault


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_connection_is_an_httpx_connect_error() -> None:
    async with httpx.AsyncClient(transport=fast_transport(4)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{_closed_port()}/v1/models")


async def test_read_timeout_is_an_httpx_timeout() -> None:
    with FakeOpenAIServer("hi", faults=[Fault("slow", delay_s=2.0)]) as srv:
        async with httpx.AsyncClient(transport=fast_transport(4), timeout=httpx.Timeout(0.3)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(srv.base_url + "/chat/completions",
                                  json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})


async def test_early_close_drops_the_connection_and_full_reads_reuse_it() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with FakeOpenAIServer("word " * 300, token_delay_s=0.005) as srv:
        async with httpx.AsyncClient(transport=fast_transport(4)) as client:
            async with client.stream("POST", srv.base_url + "/chat/completions", json=body) as response:
                async for _ in response.aiter_lines():
                    break
            assert srv.wait_for(lambda s: s.cancelled_count == 1, timeout=5)
            assert srv.last_record.tokens_sent < 100
            for _ in range(3):  # complete responses: served fine on pooled connections
                reply = await client.post(srv.base_url + "/chat/completions", json={**body, "stream": False})
                assert reply.json()["choices"][0]["message"]["content"].startswith("word")
