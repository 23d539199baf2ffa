"""One request's upstream work runs as a task that dies with its client.

A watcher reads the ASGI ``receive`` channel (after the body: only ``http.disconnect`` can come) and cancels
the work the moment the client goes away, so every upstream stream and request of that work is closed
(Ctx/TraceStream and the backend close their HTTP streams on cancellation). Starlette also cancels a
streaming body when the client leaves; either way the work task is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ponder.server.responses import DONE, error_response, sse_error

T = TypeVar("T")
Emit = Callable[[bytes], None]
Producer = Callable[[Emit], Awaitable[None]]
OnEnd = Callable[[BaseException | None], None]

_END = object()
_GONE = object()


class ClientGone(Exception):
    """The client disconnected; its work was cancelled."""


async def wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def guarded(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ClientGone."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_disconnect(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if task.cancelled() or not task.done():
        raise ClientGone()
    return task.result()


async def stream_response(request: Request, produce: Producer, on_end: OnEnd) -> Response:
    """An SSE response fed by ``produce(emit)`` running in its own task.

    The first event is awaited before the response starts, so a failure before any output (bad parameters,
    an upstream that is down) still gets its proper HTTP status; later failures become an SSE error event.
    ``on_end(error)`` is called once when the work ends (``asyncio.CancelledError`` if the client left).
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def run() -> None:
        error: BaseException | None = None
        try:
            await produce(queue.put_nowait)
            queue.put_nowait(_END)
        except asyncio.CancelledError as exc:
            error = exc
            raise
        except Exception as exc:
            error = exc
            queue.put_nowait(exc)
        finally:
            on_end(error)

    work = asyncio.create_task(run())
    watcher = asyncio.create_task(wait_disconnect(request))

    def client_left(task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            work.cancel()
            queue.put_nowait(_GONE)

    watcher.add_done_callback(client_left)

    def stop() -> None:
        watcher.cancel()
        work.cancel()

    try:
        first = await queue.get()
    except BaseException:
        stop()
        raise
    if first is _GONE:
        stop()
        return Response(status_code=499)
    if isinstance(first, Exception):
        stop()
        return error_response(first)

    async def body() -> AsyncIterator[bytes]:
        item = first
        try:
            while True:
                out = bytearray()
                while True:  # coalesce what is ready into one write
                    if item is _END:
                        yield bytes(out) + DONE
                        return
                    if item is _GONE:
                        return
                    if isinstance(item, Exception):
                        yield bytes(out) + sse_error(item)
                        return
                    out += item
                    if queue.empty():
                        break
                    item = queue.get_nowait()
                yield bytes(out)
                item = await queue.get()
        finally:
            stop()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
