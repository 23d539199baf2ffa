"""Replay: serve a recorded trace bank to any strategy in place of a live server.

Each problem's traces are served in a seeded permutation, without replacement: a request for ``n`` samples
gets the next ``n`` traces of that order, a stream the next one, token by token with its recorded logprobs.
Cutting a trace short (``max_tokens``, ``stop``, or cancelling a stream) is emulated exactly, so token
accounting matches what a live server would have charged. What cannot be served honestly is refused with a
``ReplayError``: prompts the bank has no traces for, more traces than were recorded, or sampling settings
other than the recording's (``strict=False`` serves them anyway).

Runs that evaluate several problems at once should give each problem its own view,
``backend.for_problem(problem.id)``: generated tasks can hold two problems with the same prompt, which a
request alone cannot tell apart, and a view makes each problem's draws independent of scheduling.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ponder.backends.base import Capabilities, StreamEnd, StreamEvent
from ponder.backends.thinking import CLOSE, OPEN, ThinkSplitter
from ponder.bank import Bank, BankError, BankProblem
from ponder.errors import CapabilityError, ConfigError
from ponder.top_rows import PackedTop
from ponder.types import Delta, GenerationRequest, Message, TokenLogprob, Trace

__all__ = ["ReplayBackend", "ReplayError", "ReplaySession", "replay_order"]


class ReplayError(BankError, ConfigError):
    """A request a trace bank cannot serve honestly."""


def replay_order(seed: int, problem_id: str, count: int) -> list[int]:
    """The order in which a problem's ``count`` traces are served under ``seed`` (the same in every process)."""
    digest = hashlib.sha256(f"ponder-replay\0{seed}\0{problem_id}".encode()).digest()
    order = list(range(count))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def messages_key(messages: list[Message]) -> str:
    """Canonical form of a message list, for exact lookup."""
    return json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class _Pool:
    """One problem's traces in serving order, and how many have been served."""

    def __init__(self, problem: BankProblem, seed: int) -> None:
        self.problem = problem
        self.order = replay_order(seed, problem.id, len(problem.traces))
        self.served = 0

    def take(self, count: int) -> list[int]:
        available = len(self.order)
        if self.served + count > available:
            raise ReplayError(
                f"problem {self.problem.id}: the strategy asked for {self.served + count} traces "
                f"({self.served} served, {count} more requested) but the bank has {available}; record a bank with "
                "a larger n"
            )
        picked = self.order[self.served : self.served + count]
        self.served += count
        return picked


@dataclass
class _Served:
    """A recorded trace as served to one request: its first ``cut`` tokens and what they say."""

    source: Trace
    cut: int
    text: str
    reasoning: str
    finish_reason: str | None
    completion_tokens: int
    pieces: list[tuple[str, str]] | None  # (text, reasoning) per served token; None when served whole
    top_k: int


class ReplayBackend:
    """A ``Backend`` over a ``Bank``: same seed, same traces in the same order, whatever the concurrency."""

    def __init__(self, bank: Bank | str | Path, *, seed: int = 0, strict: bool = True, name: str | None = None,
                 interleave: bool = True) -> None:
        self.bank = bank if isinstance(bank, Bank) else Bank.load(bank)
        self.seed = seed
        self.strict = strict
        self.interleave = interleave  # yield to the event loop between streamed tokens, like a live server
        self.name = name or (f"replay:{self.bank.path.name}" if self.bank.path else "replay")
        self.capabilities = Capabilities(
            logprobs=True,
            top_logprobs=self.bank.top_logprobs,
            native_n=True,
            streaming=True,
            reasoning=any(t.reasoning for p in self.bank.problems.values() for t in p.traces),
        )
        self._by_messages: dict[str, list[str]] = {}
        for problem in self.bank.problems.values():
            self._by_messages.setdefault(messages_key(problem.messages), []).append(problem.id)
        self._length_cut = any(
            t.finish_reason == "length" for p in self.bank.problems.values() for t in p.traces
        )
        self._pools: dict[str, _Pool] = {}
        self._pieces: dict[tuple[str, int], list[tuple[str, str]]] = {}

    # ---- views and state ------------------------------------------------------------------------

    def for_problem(self, problem_id: str, *, seed: int | None = None) -> ReplaySession:
        """A backend serving only ``problem_id``, starting afresh at the top of its serving order."""
        problem = self.bank.problems.get(problem_id)
        if problem is None:
            raise ReplayError(f"the bank has no problem {problem_id!r}")
        return ReplaySession(self, _Pool(problem, self.seed if seed is None else seed))

    def reset(self, seed: int | None = None) -> None:
        """Forget what was served (optionally switching seed): the next run starts every problem afresh."""
        if seed is not None:
            self.seed = seed
        self._pools.clear()

    def served(self, problem_id: str) -> list[int]:
        """Indices (into the bank's traces) of what this backend has served for a problem, in order."""
        pool = self._pools.get(problem_id)
        return pool.order[: pool.served] if pool else []

    def _pool_for(self, messages: list[Message]) -> _Pool:
        ids = self._by_messages.get(messages_key(messages))
        if not ids:
            raise ReplayError(
                f"the strategy asked for a prompt the bank has no traces for ({_preview(messages)}); strategies "
                "that build new prompts cannot be replayed"
            )
        if len(ids) > 1:
            raise ReplayError(
                f"{len(ids)} problems of the bank ({', '.join(ids[:3])}) share this prompt, so a request cannot say "
                "which one it is for: replay through ReplayBackend.for_problem(problem_id)"
            )
        pool = self._pools.get(ids[0])
        if pool is None:
            pool = self._pools[ids[0]] = _Pool(self.bank.problems[ids[0]], self.seed)
        return pool

    # ---- Backend protocol -----------------------------------------------------------------------

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        return self._complete(request, self._pool_for(request.messages))

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        try:
            pool = self._pool_for(request.messages)
        except ReplayError as exc:
            return _failing(exc)
        return self._stream(request, pool)

    async def aclose(self) -> None:
        return None

    # ---- serving --------------------------------------------------------------------------------

    def _complete(self, request: GenerationRequest, pool: _Pool) -> list[Trace]:
        top_k = self._check(request)
        picked = pool.take(max(request.n, 1))
        traces = []
        for position, index in enumerate(picked):
            served = self._serve(pool.problem, index, request, top_k)
            src, cut = served.source, served.cut
            traces.append(Trace(
                text=served.text,
                reasoning=served.reasoning,
                tokens=src.tokens[:cut],
                logprobs=src.logprobs[:cut],
                top_logprobs=_head(src.top_logprobs, cut, top_k),
                finish_reason=served.finish_reason,
                prompt_tokens=src.prompt_tokens,
                completion_tokens=served.completion_tokens,
                index=position,
            ))
        return traces

    def _stream(self, request: GenerationRequest, pool: _Pool) -> AsyncIterator[StreamEvent]:
        # The trace is claimed now, in call order; errors surface on first iteration, inside the caller's
        # ``async with``, so the caller's bookkeeping (slots, call records) still runs.
        try:
            top_k = self._check(request)
            (index,) = pool.take(1)
            served = self._serve(pool.problem, index, request, top_k, pieces=True)
        except (ReplayError, CapabilityError) as exc:
            return _failing(exc)
        return self._events(served)

    async def _events(self, served: _Served) -> AsyncIterator[StreamEvent]:
        src = served.source
        pieces = served.pieces or []
        for i in range(served.cut):
            if self.interleave:
                await asyncio.sleep(0)  # concurrent streams advance together, as they would on a server
            text, reasoning = pieces[i]
            top = list(src.top_logprobs[i][: served.top_k]) if i < len(src.top_logprobs) else []
            yield Delta(text=text, reasoning=reasoning, tokens=[TokenLogprob(src.tokens[i], src.logprobs[i], top)])
        if served.cut == 0 and (served.text or served.reasoning):
            yield Delta(text=served.text, reasoning=served.reasoning)  # a recorded trace without tokens
        yield StreamEnd(served.finish_reason, src.prompt_tokens, served.completion_tokens)

    def _check(self, request: GenerationRequest) -> int:
        """Refuse sampling settings the recording cannot stand for; return the top-k to serve."""
        recorded = self.bank.sampling
        k = self.bank.top_logprobs
        if request.top_logprobs is not None and request.top_logprobs > k:
            if self.strict:
                raise CapabilityError(f"the strategy asks for top_logprobs={request.top_logprobs} but the bank "
                                      f"recorded the top {k} per token")
            return k
        top_k = k if request.top_logprobs is None else request.top_logprobs
        if not self.strict:
            return top_k
        if request.temperature is not None and request.temperature != recorded.temperature:
            raise self._mismatch("temperature", request.temperature, recorded.temperature)
        if request.top_p is not None and request.top_p != (1.0 if recorded.top_p is None else recorded.top_p):
            raise self._mismatch("top_p", request.top_p, recorded.top_p)
        if (request.max_tokens is not None and recorded.max_tokens is not None
                and request.max_tokens > recorded.max_tokens and self._length_cut):
            raise ReplayError(
                f"the strategy asks for max_tokens={request.max_tokens} but bank traces were cut at "
                f"{recorded.max_tokens} and cannot be extended: use max_tokens <= {recorded.max_tokens}, or record "
                "a bank with a larger max_tokens"
            )
        for key, value in request.extra.items():
            if recorded.extra.get(key, _MISSING) != value:
                raise self._mismatch(key, value, recorded.extra.get(key))
        return top_k

    def _mismatch(self, param: str, asked: object, recorded: object) -> ReplayError:
        where = f"bank {self.bank.path}" if self.bank.path else "the bank"
        return ReplayError(
            f"the strategy asks for {param}={asked!r} but {where} was recorded with {param}={recorded!r}, so its "
            "traces cannot stand for these samples: record a bank with those settings (or replay with strict=False)"
        )

    def _serve(self, problem: BankProblem, index: int, request: GenerationRequest, top_k: int,
               pieces: bool = False) -> _Served:
        """The trace as this request would have received it: cut at a stop string or at max_tokens."""
        src = problem.traces[index]
        total = len(src.tokens)
        stop = [s for s in request.stop or [] if s]
        limit = request.max_tokens if request.max_tokens is not None and request.max_tokens < total else None
        if not stop and limit is None:
            whole = self._pieces_of(problem.id, index) if pieces else None
            return _Served(src, total, src.text, src.reasoning, src.finish_reason, src.completion_tokens, whole, top_k)
        all_pieces = self._pieces_of(problem.id, index)
        cut, finish = total, src.finish_reason
        text_len: int | None = None
        if stop:
            found = _find_stop(all_pieces, stop)
            if found is not None:
                cut, text_len, finish = found[0], found[1], "stop"
        if limit is not None and limit < cut:
            cut, text_len, finish = limit, None, "length"
        if cut == total and text_len is None:
            return _Served(src, total, src.text, src.reasoning, src.finish_reason, src.completion_tokens,
                           all_pieces if pieces else None, top_k)
        served_pieces = _clip(all_pieces[:cut], text_len)
        text = "".join(t for t, _ in served_pieces)
        reasoning = "".join(r for _, r in served_pieces)
        return _Served(src, cut, text, reasoning, finish, cut, served_pieces, top_k)

    def _pieces_of(self, problem_id: str, index: int) -> list[tuple[str, str]]:
        key = (problem_id, index)
        cached = self._pieces.get(key)
        if cached is None:
            cached = self._pieces[key] = align(self.bank.problems[problem_id].traces[index])
        return cached


class ReplaySession:
    """A ``ReplayBackend`` bound to one problem, with its own place in that problem's serving order."""

    def __init__(self, parent: ReplayBackend, pool: _Pool) -> None:
        self.parent = parent
        self.pool = pool
        self.name = parent.name
        self.capabilities = parent.capabilities
        self._key = messages_key(pool.problem.messages)

    @property
    def served(self) -> list[int]:
        return self.pool.order[: self.pool.served]

    def _check_prompt(self, messages: list[Message]) -> None:
        if messages_key(messages) != self._key:
            raise ReplayError(
                f"problem {self.pool.problem.id}: the strategy asked for a prompt the bank has no traces for "
                f"({_preview(messages)}); strategies that build new prompts cannot be replayed"
            )

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        self._check_prompt(request.messages)
        return self.parent._complete(request, self.pool)

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        try:
            self._check_prompt(request.messages)
        except ReplayError as exc:
            return _failing(exc)
        return self.parent._stream(request, self.pool)

    async def aclose(self) -> None:
        return None


# ---- token alignment ----------------------------------------------------------------------------


def align(trace: Trace) -> list[tuple[str, str]]:
    """The (answer text, reasoning text) each token of a recorded trace reveals.

    Joined, the pieces give exactly the trace's text and reasoning. Exact per token when the tokens spell
    reasoning + text, or text with inline ``<think>`` tags; otherwise (byte-level tokens, say) positions are
    mapped proportionally and only the whole is exact.
    """
    tokens = trace.tokens
    if not tokens:
        return []
    combined = trace.reasoning + trace.text
    if "".join(tokens) != combined:
        split = _align_think(trace)
        if split is not None:
            return split
    boundary = len(trace.reasoning)
    pieces: list[tuple[str, str]] = []
    pos = seen = 0
    for i, token in enumerate(tokens):
        seen += len(token)
        end = len(combined) if i == len(tokens) - 1 else max(pos, min(seen, len(combined)))
        reasoning = combined[pos : min(end, boundary)] if pos < boundary else ""
        text = combined[max(pos, boundary) : end] if end > boundary else ""
        pieces.append((text, reasoning))
        pos = end
    return pieces


def _align_think(trace: Trace) -> list[tuple[str, str]] | None:
    joined = "".join(trace.tokens)
    if CLOSE not in joined:
        return None
    splitter = ThinkSplitter()
    splitter.in_think = OPEN not in joined  # the template opened the think block in the prompt
    pieces = [splitter.feed(token) for token in trace.tokens]
    tail = splitter.flush()
    pieces[-1] = (pieces[-1][0] + tail[0], pieces[-1][1] + tail[1])
    text = "".join(t for t, _ in pieces)
    if "".join(r for _, r in pieces) != trace.reasoning:
        return None
    if text != trace.text:
        if text.lstrip() != trace.text:
            return None
        strip = len(text) - len(trace.text)  # split_reasoning strips the answer's leading whitespace
        fixed = []
        for t, r in pieces:
            cut = min(strip, len(t))
            strip -= cut
            fixed.append((t[cut:], r))
        pieces = fixed
    return pieces


def _find_stop(pieces: list[tuple[str, str]], stop: list[str]) -> tuple[int, int] | None:
    """(tokens generated, answer text kept) when a stop string completes in the answer text, else None."""
    longest = max(len(s) for s in stop)
    text = ""
    for i, (piece, _) in enumerate(pieces):
        start = max(0, len(text) - longest + 1)
        text += piece
        hits = [pos for s in stop if (pos := text.find(s, start)) >= 0]
        if hits:
            return i + 1, min(hits)
    return None


def _clip(pieces: list[tuple[str, str]], text_len: int | None) -> list[tuple[str, str]]:
    """Pieces whose answer text is cut to ``text_len`` characters (a stop string is not part of the output)."""
    if text_len is None:
        return list(pieces)
    out = []
    left = text_len
    for text, reasoning in pieces:
        keep = text[: max(left, 0)]
        left -= len(keep)
        out.append((keep, reasoning))
    return out


def _head(top: Sequence[Sequence[tuple[str, float]]], rows: int, k: int) -> Sequence[Sequence[tuple[str, float]]]:
    """The first ``rows`` positions' top ``k`` alternatives (a view of a packed bank's arrays, not a copy)."""
    if isinstance(top, PackedTop):
        return top.head(rows, k)
    return [list(row[:k]) for row in top[:rows]]


async def _failing(exc: Exception) -> AsyncIterator[StreamEvent]:
    raise exc
    yield  # pragma: no cover - makes this an async generator


def _preview(messages: list[Message], limit: int = 80) -> str:
    last = messages[-1].get("content", "") if messages else ""
    last = " ".join(last.split())
    return repr(last if len(last) <= limit else last[: limit - 3] + "...")


_MISSING = object()
