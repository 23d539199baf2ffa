"""Repeated SSE chunks: duplicates are dropped, real repeated tokens are kept, and what cannot be told apart fails."""

from __future__ import annotations

import pytest

from ponder.backends.base import StreamEnd
from ponder.backends.openai import OpenAIBackend
from ponder.backends.retry import RetryPolicy
from ponder.errors import BackendError
from ponder.types import Delta, GenerationRequest
from tests.fakes.openai_server import FakeOpenAIServer, Fault, ScriptedReply

MESSAGES = [{"role": "user", "content": "Laugh."}]
NO_RETRY = RetryPolicy(attempts=1)


async def _stream(srv: FakeOpenAIServer, **request: object) -> tuple[list[Delta], StreamEnd]:
    backend = OpenAIBackend(srv.base_url, "m", retry=NO_RETRY)
    try:
        events = [e async for e in backend.stream(GenerationRequest(list(MESSAGES), **request))]  # type: ignore[arg-type]
    finally:
        await backend.aclose()
    end = events[-1]
    assert isinstance(end, StreamEnd)
    return [e for e in events if isinstance(e, Delta)], end


def _tokens(deltas: list[Delta]) -> list[str]:
    return [t.token for d in deltas for t in d.tokens]


@pytest.mark.parametrize("fault", [Fault("duplicate_chunks"), Fault("duplicate_chunks", after_tokens=2)])
async def test_duplicated_chunks_with_logprobs_are_dropped(fault: Fault) -> None:
    with FakeOpenAIServer("ha ha ha, the answer is 4.", faults=[fault]) as srv:
        deltas, end = await _stream(srv, logprobs=True, top_logprobs=3)
    assert "".join(d.text for d in deltas) == "ha ha ha, the answer is 4."
    assert _tokens(deltas) == ["ha", " ha", " ha", ",", " the", " answer", " is", " 4", "."]
    assert end.completion_tokens == 9


async def test_a_token_the_model_really_repeats_is_kept_even_when_its_chunks_are_identical() -> None:
    # A greedy loop without top-k: every position has the same token and logprob, so the chunks are
    # byte-identical; the server's usage count shows they are real tokens.
    reply = ScriptedReply("\n\n\n\n", tokens=["\n"] * 4, logprobs=[0.0] * 4)
    with FakeOpenAIServer(reply) as srv:
        deltas, end = await _stream(srv, logprobs=True)
    assert _tokens(deltas) == ["\n"] * 4 and "".join(d.text for d in deltas) == "\n\n\n\n"
    assert end.completion_tokens == 4


async def test_repeated_chunks_of_a_real_repeat_fail_rather_than_guess() -> None:
    reply = ScriptedReply("\n\n\n", tokens=["\n"] * 3, logprobs=[0.0] * 3)
    # 6 identical chunks for 3 tokens: which of them are repeats cannot be known
    with FakeOpenAIServer(reply, faults=["duplicate_chunks"]) as srv, pytest.raises(BackendError, match="fits neither"):
        await _stream(srv, logprobs=True)


async def test_without_logprobs_a_repeated_chunk_fails_the_stream_instead_of_doubling_the_text() -> None:
    with (
        FakeOpenAIServer("The answer is 4.", faults=["duplicate_chunks"]) as srv,
        pytest.raises(BackendError, match="streamed 10 tokens but counted 5"),
    ):
        await _stream(srv)


async def test_without_logprobs_repeated_words_are_fine() -> None:
    with FakeOpenAIServer("ha ha ha ha") as srv:
        deltas, end = await _stream(srv)
    assert "".join(d.text for d in deltas) == "ha ha ha ha" and end.completion_tokens == 4
