"""On the real llama-server: a slot whose context fills before max_tokens raises instead of passing as a cut."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ponder.answers import check_math, extract_answer
from ponder.backends.local import LocalBackend
from ponder.context import Ctx, Sampling
from ponder.errors import BackendError
from ponder.types import Problem

pytestmark = pytest.mark.integration

STORY = Problem("story", [{"role": "user", "content": "Write a very long story about a dragon."}], None, check_math,
                extract_answer)


def test_a_sample_that_fills_its_slot_raises_and_one_that_fits_does_not(llama_parts: tuple[Path, Path]) -> None:
    binary, model = llama_parts

    async def run() -> None:
        backend = LocalBackend(model, server_bin=str(binary), slots=1, ctx_per_slot=256, threads=1)
        await backend.start()
        try:
            # ignore_eos: the model cannot stop by itself, so only max_tokens or the context can stop it
            tight = Sampling(temperature=0.8, max_tokens=600, extra={"ignore_eos": True})
            with pytest.raises(BackendError, match="ran out of context"):
                await Ctx(backend, STORY, sampling=tight).sample(n=1)
            with pytest.raises(BackendError, match="ran out of context"):
                async with Ctx(backend, STORY, sampling=tight).stream() as stream:
                    async for _ in stream:
                        pass
            fits = Sampling(temperature=0.8, max_tokens=100, extra={"ignore_eos": True})
            (trace,) = await Ctx(backend, STORY, sampling=fits).sample(n=1)
            assert trace.finish_reason == "length" and trace.completion_tokens == 100  # a real max_tokens cut
        finally:
            await backend.aclose()

    asyncio.run(run())
