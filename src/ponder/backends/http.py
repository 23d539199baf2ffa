"""The HTTP transport under every OpenAI-compatible client: aiohttp's connection pool behind httpx's API.

httpx's own pool (httpcore) spends about 2 ms of CPU per request once 20 requests are in flight; aiohttp's
spends about 0.2 ms (both measured against the fake upstream on this machine). That CPU is what the proxy adds
to every request, and what a 2-core client burns while 64 traces stream. This transport plugs aiohttp in under
``httpx.AsyncClient``, so request building, timeouts, streaming and the exception types the retry logic reads
all stay httpx's. (``httpx-aiohttp`` does the same, but returns a half-read connection to the pool when a
stream is closed early, so the server would go on generating a cancelled trace; here an early close aborts
the connection, which is how a server learns that the client has gone.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx

_CHUNK = 64 * 1024


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session with at most ``max_connections`` connections.

    The session is created on the first request, inside the running event loop.
    """

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0)
            # trust_env=False: httpx itself routes proxied URLs to its own proxy transports.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        content = await request.aread()
        try:
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                data=content or None,
                allow_redirects=False,
                compress=None,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        except BaseException as exc:
            raise _as_httpx(exc, request, connecting=True) from exc
        return httpx.Response(
            status_code=response.status,
            headers=[(k, v) for k, v in response.raw_headers],
            stream=_ResponseStream(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except BaseException as exc:
            raise _as_httpx(exc, self._request, connecting=False) from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # fully read: the connection goes back to the pool
        else:
            self._response.close()  # closed early: drop the connection, so the server stops generating
            await asyncio.sleep(0)  # the socket itself closes on the loop's next turn: let it, before returning


def _as_httpx(exc: BaseException, request: httpx.Request, *, connecting: bool) -> BaseException:
    """aiohttp's exception as the httpx exception the retry logic understands (others pass unchanged)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.ConnectError(message, request=request) if connecting else httpx.ReadError(message,
                                                                                             request=request)
    return exc


def fast_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """The transport ponder's OpenAI clients use: aiohttp, at most ``max_connections`` connections."""
    return AiohttpTransport(max_connections)
