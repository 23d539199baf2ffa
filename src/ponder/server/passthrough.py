"""Plain pass-through: the client's request goes to the upstream as is (unknown fields in ``extra``).

Calls go through a ``Ctx`` so they share the server's slots, are counted the same way as strategy calls and
can be logged. Streaming relays the upstream's tokens one chunk per delta; ``n > 1`` streams ``n`` samples
concurrently, interleaved by ``index``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from ponder.context import Ctx, TraceStream
from ponder.server.requests import ChatRequest
from ponder.server.responses import Chunks, completion, trace_choice
from ponder.server.streaming import Emit


async def complete(ctx: Ctx, chat: ChatRequest, cid: str) -> dict[str, Any]:
    traces = await ctx.complete(chat.generation)
    choices = [trace_choice(t, i, chat.generation.logprobs) for i, t in enumerate(traces)]
    return completion(cid, chat.model, choices, ctx.usage)


async def stream(ctx: Ctx, chat: ChatRequest, cid: str, emit: Emit) -> None:
    chunks = Chunks(cid, chat.model)
    gen = chat.generation
    logprobs = gen.logprobs

    async def one(index: int) -> None:
        seed = None if gen.seed is None else gen.seed + index
        request = replace(gen, n=1, seed=seed) if gen.n > 1 else gen
        started = False
        async with TraceStream(ctx, request) as trace_stream:
            async for delta in trace_stream:
                event = chunks.delta(index, delta, logprobs)
                # The role chunk waits for the first token: an upstream failure before it gets a proper status.
                emit(event if started else chunks.role(index) + event)
                started = True
        emit((b"" if started else chunks.role(index)) + chunks.finish(index, trace_stream.trace.finish_reason))

    if gen.n == 1:
        await one(0)
    else:
        tasks = [asyncio.create_task(one(i)) for i in range(gen.n)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
    if chat.include_usage:
        emit(chunks.usage(ctx.usage))
