"""Latency the ``ponder serve`` proxy adds to pass-through requests, measured side by side in one run.

A fast fake OpenAI upstream (no token delay) and the proxy (``ponder serve``) each run in their own process,
as they would in use (in one process they would share one GIL and one core); ``--clients`` concurrent aiohttp
clients each send ``--requests`` pairs of identical requests, one straight to the upstream and one through the
proxy, alternating which goes first, with a think time between pairs drawn from an exponential distribution of
mean ``--pause`` seconds (so the 50 users arrive independently rather than in lockstep bursts). Prints the
p50/p99 of the per-pair added latency (proxy - direct; target: p50 <= 5 ms), the error count (target: 0) and
each server's CPU time per request.

With no pause the clients saturate the two cores, and the added latency measures queueing behind the proxy's
CPU time per request (50 requests arriving at once wait for each other); a pause gives the load of 50 users
with think time, where the added latency is the proxy's own work plus the extra network hop.

Usage: python bench/proxy.py [--clients 50] [--requests 20] [--pause 0.0] [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from servers import Server, free_port, pct  # bench/servers.py: the script's directory is on sys.path

JSON = {"content-type": "application/json"}
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 32}


async def one(session: aiohttp.ClientSession, url: str, stream: bool) -> float:
    start = time.perf_counter()
    body = json.dumps({**BODY, "stream": stream}).encode()
    async with session.post(url + "/chat/completions", data=body, headers=JSON) as response:
        response.raise_for_status()
        if stream:
            async for _ in response.content:
                pass
        elif not json.loads(await response.read())["choices"][0]["message"]["content"]:
            raise RuntimeError("empty reply")
    return time.perf_counter() - start


async def run(direct: str, proxied: str, clients: int, requests: int, stream: bool,
              pause: float) -> tuple[list[float], ...]:
    pairs: list[tuple[float, float]] = []
    errors: list[str] = []
    ready = asyncio.Barrier(clients)

    async def worker(w: int) -> None:
        # One client per worker, as 50 independent users would be. aiohttp: the clients share this process's
        # CPU with nothing else, but a heavier client (httpx) would compete with the servers for the 2 cores.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client:
            for url in (direct, proxied):  # open the connections before measuring
                await one(client, url, stream)
            await ready.wait()
            rng = random.Random(w)
            if pause:
                await asyncio.sleep(rng.uniform(0, pause))  # spread the first arrivals too
            for i in range(requests):
                order = (direct, proxied) if (w + i) % 2 == 0 else (proxied, direct)
                times: dict[str, float] = {}
                for url in order:
                    try:
                        times[url] = await one(client, url, stream)
                    except Exception as exc:
                        errors.append(f"{'proxy' if url == proxied else 'direct'}: {type(exc).__name__}: {exc}")
                if len(times) == 2:
                    pairs.append((times[direct], times[proxied]))
                if pause:
                    await asyncio.sleep(rng.expovariate(1 / pause))

    await asyncio.gather(*(worker(w) for w in range(clients)))
    return [d for d, _ in pairs], [p for _, p in pairs], [p - d for d, p in pairs], errors  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="request pairs per client")
    parser.add_argument("--stream", action="store_true", help="streamed requests instead of plain ones")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="mean seconds each client waits between pairs (exponential)")
    args = parser.parse_args()
    reply = "Two plus two is four, so the answer is \\boxed{4}."
    up, px = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        upstream = Server(["-m", "tests.fakes.openai_server", "--port", str(up), "--reply", reply], up,
                          Path(tmp) / "upstream.log")
        proxy = Server(["-m", "ponder.cli", "serve", "--model", f"openai:http://127.0.0.1:{up}/v1", "--port",
                        str(px), "--no-log"], px, Path(tmp) / "proxy.log")
        with upstream, proxy:
            cpu_before = proxy.cpu_seconds(), upstream.cpu_seconds()
            direct, proxied, added, errors = asyncio.run(
                run(upstream.url + "/v1", proxy.url + "/v1", args.clients, args.requests, args.stream, args.pause))
            cpu_after = proxy.cpu_seconds(), upstream.cpu_seconds()
    served = args.clients * (args.requests + 1)  # the measured pairs plus each client's warm-up request
    proxy_cpu = (cpu_after[0] - cpu_before[0]) / served
    upstream_cpu = (cpu_after[1] - cpu_before[1]) / (2 * served)  # the upstream serves both paths
    ms = 1000.0
    print(f"{args.clients} clients x {args.requests} pairs, {'streamed' if args.stream else 'plain'} requests, "
          f"think time {args.pause:g} s on average between pairs")
    print(f"direct  p50 {pct(direct, 50) * ms:7.2f} ms   p99 {pct(direct, 99) * ms:7.2f} ms")
    print(f"proxy   p50 {pct(proxied, 50) * ms:7.2f} ms   p99 {pct(proxied, 99) * ms:7.2f} ms")
    print(f"added   p50 {pct(added, 50) * ms:7.2f} ms   p99 {pct(added, 99) * ms:7.2f} ms   "
          f"mean {statistics.fmean(added) * ms:.2f} ms   (target: p50 <= 5 ms)")
    print(f"CPU per request: proxy {proxy_cpu * ms:.2f} ms, upstream {upstream_cpu * ms:.2f} ms "
          "(the proxy's CPU time is what it adds under load; the ratio is robust to a noisy machine)")
    print(f"errors  {len(errors)}   (target: 0)")
    for error in errors[:5]:
        print("  ", error)


if __name__ == "__main__":
    main()
