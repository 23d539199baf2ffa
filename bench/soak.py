"""Soak ``ponder serve``: many concurrent clients for a while, counting every status and watching memory.

A fast fake OpenAI upstream (tests/fakes/openai_server.py) and the proxy (``ponder serve``) run in their own
processes; ``--clients`` concurrent clients (one aiohttp session each, as independent users) send requests back
to back for ``--duration`` seconds, mixing plain pass-through, streamed pass-through and strategy requests
(self-consistency, n=3, plain and streamed) in the ``--mix`` proportions. Every response is checked: 200 with the
upstream's answer in it, and streams must end with ``[DONE]``.

Prints the count of each outcome per kind of request (target: zero 5xx, since the upstream injects no faults
unless ``--upstream-faults`` is set), latency percentiles per kind, throughput, and the proxy's resident memory
(RSS) after a warm-up, every ``--sample`` seconds, and at the end (growth under a steady load hints at a leak).
The first failures are printed in full (request kind, body, status, response) so they can be reproduced.

Usage: python bench/soak.py [--clients 200] [--duration 60] [--mix plain=2,stream=1,strategy=1,strategy_stream=0]
                            [--upstream-faults 0.0] [--pause 0.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from servers import Server, free_port, pct  # bench/servers.py: the script's directory is on sys.path

REPLY = "Two plus two is four, so the answer is \\boxed{4}."
MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
JSON = {"content-type": "application/json"}
KINDS = ("plain", "stream", "strategy", "strategy_stream")




def body(kind: str, i: int) -> dict[str, object]:
    """The request of one kind; ``i`` varies the seed so requests are not all identical."""
    out: dict[str, object] = {"model": "fake-model", "messages": MESSAGES, "max_tokens": 64, "seed": i}
    if kind.startswith("strategy"):
        out["ponder"] = {"strategy": "self-consistency", "n": 3}
    if kind.endswith("stream"):
        out["stream"] = True
    return out


@dataclass
class Tally:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, status or error name)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)  # full reports of the first failures

    def fail(self, kind: str, request: dict[str, object], outcome: str, detail: str) -> None:
        self.outcomes[(kind, outcome)] += 1
        if len(self.failures) < 10:
            detail = detail if len(detail) <= 600 else detail[:200] + " [...] " + detail[-400:]
            self.failures.append(f"{kind} -> {outcome}: {detail}\n      request: {json.dumps(request)}")


async def one(session: aiohttp.ClientSession, url: str, kind: str, request: dict[str, object], tally: Tally) -> None:
    start = time.perf_counter()
    try:
        async with session.post(url + "/chat/completions", data=json.dumps(request).encode(),
                                headers=JSON) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        tally.fail(kind, request, type(exc).__name__, str(exc))
        return
    text = raw.decode("utf-8", "replace")
    if status != 200:
        tally.fail(kind, request, str(status), text)
        return
    if kind.endswith("stream"):
        events = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
        content = "".join(
            choice.get("delta", {}).get("content") or ""
            for event in events if event.startswith("{")
            for choice in json.loads(event).get("choices", [])
        )
        ok = bool(events) and events[-1] == "[DONE]" and "4" in content
    else:
        try:
            content = json.loads(text)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            content = ""
        ok = "4" in content
    if not ok:
        tally.fail(kind, request, "200-bad-body", text)
        return
    tally.outcomes[(kind, "200")] += 1
    tally.latencies[kind].append(time.perf_counter() - start)


async def soak(url: str, proxy: Server, clients: int, duration: float, mix: dict[str, float], pause: float,
               sample_s: float) -> tuple[Tally, list[tuple[float, float]], float]:
    tally = Tally()
    kinds = [k for k in KINDS if mix.get(k)]
    weights = [mix[k] for k in kinds]
    ready = asyncio.Barrier(clients + 1)
    stop = asyncio.Event()

    async def client(c: int) -> None:
        rng = random.Random(c)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=4)) as session:
            await one(session, url, "plain", body("plain", -c), Tally())  # connect before the clock starts
            await ready.wait()
            i = 0
            while not stop.is_set():
                kind = rng.choices(kinds, weights)[0]
                await one(session, url, kind, body(kind, c * 1_000_000 + i), tally)
                i += 1
                if pause:
                    await asyncio.sleep(rng.expovariate(1 / pause))

    tasks = [asyncio.create_task(client(c)) for c in range(clients)]
    await ready.wait()
    memory = [(0.0, proxy.rss_mb())]
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < duration:
        await asyncio.sleep(min(sample_s, duration - elapsed))
        memory.append((time.perf_counter() - start, proxy.rss_mb()))
    stop.set()
    await asyncio.gather(*tasks)
    return tally, memory, time.perf_counter() - start


def parse_mix(spec: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for item in spec.split(","):
        kind, _, weight = item.partition("=")
        if kind not in KINDS:
            raise SystemExit(f"--mix: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        mix[kind] = float(weight or 1)
    return mix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--mix", default="plain=2,stream=1,strategy=1,strategy_stream=0",
                        help="relative weights of the request kinds: " + ", ".join(KINDS))
    parser.add_argument("--pause", type=float, default=0.0, help="mean think time between a client's requests")
    parser.add_argument("--upstream-faults", type=float, default=0.0,
                        help="rate of transient faults the fake upstream injects (then 502s are expected)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between memory samples")
    args = parser.parse_args()
    mix = parse_mix(args.mix)

    up, px = free_port(), free_port()
    upstream_args = ["-m", "tests.fakes.openai_server", "--port", str(up), "--reply", REPLY]
    if args.upstream_faults:
        upstream_args += ["--transient-faults", str(args.upstream_faults), "--fault-delay", "5", "--retry-after", "0.1"]
    with tempfile.TemporaryDirectory() as tmp:
        upstream = Server(upstream_args, up, Path(tmp) / "upstream.log")
        proxy = Server(["-m", "ponder.cli", "serve", "--model", f"openai:http://127.0.0.1:{up}/v1", "--port",
                        str(px), "--no-log"], px, Path(tmp) / "proxy.log")
        with upstream, proxy:
            rss_idle = proxy.rss_mb()
            cpu_before = proxy.cpu_seconds()
            tally, memory, elapsed = asyncio.run(
                soak(proxy.url + "/v1", proxy, args.clients, args.duration, mix, args.pause, args.sample))
            cpu = proxy.cpu_seconds() - cpu_before
            alive = proxy.proc is not None and proxy.proc.poll() is None
            proxy_log = proxy.tail()

    total = sum(tally.outcomes.values())
    print(f"{args.clients} clients for {elapsed:.0f} s, mix {args.mix}, think time {args.pause:g} s, "
          f"upstream faults {args.upstream_faults:g}")
    print(f"requests {total:,}  ({total / elapsed:,.0f}/s), proxy CPU {cpu:.1f} s "
          f"({1000 * cpu / max(total, 1):.2f} ms per request), proxy alive at the end: {alive}")
    print("outcomes by kind:")
    for kind in KINDS:
        counts = {o: n for (k, o), n in sorted(tally.outcomes.items()) if k == kind}
        if counts:
            print(f"  {kind:16s} " + "  ".join(f"{o}: {n:,}" for o, n in counts.items()))
    fivexx = sum(n for (_, o), n in tally.outcomes.items() if o.startswith("5"))
    other = sum(n for (_, o), n in tally.outcomes.items() if o != "200" and not o.startswith("5"))
    print(f"5xx: {fivexx}   other failures: {other}   (target: 0 and 0"
          + (", but the upstream injected faults)" if args.upstream_faults else ")"))
    print("latency of successful requests (ms):")
    for kind in KINDS:
        values = tally.latencies.get(kind)
        if values:
            print(f"  {kind:16s} p50 {pct(values, 50) * 1000:8.1f}  p90 {pct(values, 90) * 1000:8.1f}  "
                  f"p99 {pct(values, 99) * 1000:8.1f}  max {max(values) * 1000:8.1f}   n={len(values):,}")
    first, last = memory[0][1], memory[-1][1]
    print(f"proxy RSS: {rss_idle:.1f} MB idle, {first:.1f} MB after warm-up, {last:.1f} MB at the end "
          f"(growth {last - first:+.1f} MB), peak {max(m for _, m in memory):.1f} MB")
    print("  samples: " + ", ".join(f"{t:.0f}s {m:.0f}" for t, m in memory))
    if tally.failures:
        print("first failures:")
        for failure in tally.failures:
            print("  " + failure)
        print("proxy stderr (last lines):\n" + proxy_log)


if __name__ == "__main__":
    main()
