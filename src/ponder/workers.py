"""A bounded pool of asyncio workers over a list of items."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def run_each(items: Sequence[T], concurrency: int, handle: Callable[[T], Awaitable[None]]) -> None:
    """Handle every item, at most ``concurrency`` at once, in order of the list.

    The first exception cancels the other workers (so no work goes on behind a failed run) and is raised.
    """
    pending = deque(items)

    async def worker() -> None:
        while pending:
            await handle(pending.popleft())

    workers = [asyncio.create_task(worker()) for _ in range(min(max(concurrency, 1), len(pending)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
