"""Throughput over two upstreams of one model, without Ray and with ``--ray``, measured side by side in one run.

Two fake OpenAI-compatible servers, each in its own process, stand for two data-parallel replicas: every request
takes ``--token-delay`` seconds per token of its reply (``--tokens`` long), its ``n`` samples decoded together as a
batching server does, and streams pace each token the same way. (Two llama-servers would not fit: the two cores
are shared with a running model server, and each llama-server alone saturates both.) The same evaluation
(``add1``, self-consistency with ``--n`` samples, ``--concurrency`` problems in flight, logprobs with 20
alternatives as by default) runs over ``--model openai:URL1,URL2`` in this process, then on a local Ray cluster of
2 CPUs with one worker per upstream, in alternating rounds so machine noise hits both alike. Each Ray run starts
its workers (as every ``ponder eval --ray`` does); starting the cluster itself is timed once, apart.

Prints, per round and as medians: wall time, problems/s, completion tokens/s, and the overhead ratio
(Ray wall time / local wall time; the upstreams bound both, so 1.0 is the best either can do).

Usage: python bench/fleet.py [--problems 64] [--n 4] [--concurrency 16] [--tokens 100] [--token-delay 0.02]
       [--rounds 3]
Needs the ray extra (pip install -e '.[ray]') and the test dependencies (the fake server).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from servers import Server, free_port  # bench/servers.py: the script's directory is on sys.path

ROOT = Path(__file__).resolve().parents[1]
# Ray would bind the machine's address; the benchmark's traffic stays on loopback. Set before ray is imported.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def upstream(port: int, tokens: int, token_delay: float) -> None:
    """Serve one fake replica until killed: replies of about ``tokens`` tokens, ``token_delay`` s each."""
    sys.path.insert(0, str(ROOT))
    from tests.fakes.openai_server import FakeOpenAIServer, tokenize

    filler = "Let me add the two numbers step by step, carefully. "

    def text(request: dict[str, Any]) -> str:
        a, b = map(int, re.findall(r"\d+", request["messages"][-1]["content"])[:2])
        answer = f"So the answer is {a + b}."
        pad = max(0, tokens - len(tokenize(answer))) // len(tokenize(filler))
        return filler * pad + answer

    async def reply(request: dict[str, Any], index: int) -> str:
        out = text(request)
        if index == 0 and not request.get("stream"):
            await asyncio.sleep(len(tokenize(out)) * token_delay)  # the batch of n decodes together
        return out

    FakeOpenAIServer(reply, port=port, token_delay_s=token_delay).serve_forever()


async def one_run(urls: list[str], store_path: Path, args: argparse.Namespace, ray_address: str | None
                  ) -> tuple[float, int, int]:
    from ponder.backends import parse_model_spec
    from ponder.runner import EvalConfig, run_eval
    from ponder.store import Store

    config = EvalConfig(task="add1", strategy="self-consistency", params={"n": args.n},
                        model=parse_model_spec("openai:" + ",".join(urls)), limit=args.problems,
                        concurrency=args.concurrency, max_inflight=args.concurrency * args.n, run_id="bench",
                        ray=ray_address, ray_workers=len(urls) if ray_address else None)
    with Store(store_path) as store:
        start = time.perf_counter()
        outcome = await run_eval(config, store)
        wall = time.perf_counter() - start
    progress = outcome.progress
    if progress.errors or progress.done != args.problems:
        raise SystemExit(f"run failed: {progress.done} done, {progress.errors} errors")
    return wall, progress.done, progress.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("upstream", help="(internal) serve one fake replica")
    up.add_argument("--port", type=int, required=True)
    for p in (parser, up):
        p.add_argument("--tokens", type=int, default=100, help="completion tokens per sample")
        p.add_argument("--token-delay", type=float, default=0.02, help="seconds per token (0.02: 50 tokens/s)")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.command == "upstream":
        upstream(args.port, args.tokens, args.token_delay)
        return

    import ray
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # loopback for this process too (it read the variable at import)
    work = Path(tempfile.mkdtemp(prefix="ponder-fleet-", dir="/tmp"))
    try:
        ports = [free_port(), free_port()]
        servers = [Server([__file__, "upstream", "--port", str(port), "--tokens", str(args.tokens),
                           "--token-delay", str(args.token_delay)], port, work / f"upstream{i}.log")
                   for i, port in enumerate(ports)]
        with servers[0], servers[1]:
            urls = [server.url + "/v1" for server in servers]
            start = time.perf_counter()
            ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=str(work / "ray"),
                     logging_level=logging.WARNING, log_to_driver=False)
            cluster_s = time.perf_counter() - start
            address = ray.get_runtime_context().gcs_address
            request_s = args.tokens * args.token_delay
            print(f"upstreams: 2 fake OpenAI servers (own processes), {args.token_delay * 1000:g} ms/token, "
                  f"{args.tokens}-token samples, n={args.n} decoded together: {request_s:.1f} s per request")
            print(f"run: add1, {args.problems} problems, self-consistency n={args.n}, --concurrency "
                  f"{args.concurrency}, --max-inflight {args.concurrency * args.n}; upstream bound "
                  f"{args.concurrency / request_s:.2f} problems/s")
            print(f"Ray: local cluster of 2 CPUs started in {cluster_s:.1f} s (not in the times below); "
                  "2 workers per run, one per upstream, started by each run")
            print(f"{'round':>5}  {'mode':<6} {'wall s':>7} {'problems/s':>11} {'tokens/s':>9}")
            walls: dict[str, list[float]] = {"local": [], "ray": []}
            rates: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
            for r in range(args.rounds):
                order = ("local", "ray") if r % 2 == 0 else ("ray", "local")
                for mode in order:
                    store = work / f"{mode}-{r}.db"
                    wall, done, tokens = asyncio.run(
                        one_run(urls, store, args, address if mode == "ray" else None))
                    walls[mode].append(wall)
                    rates[mode].append((done / wall, tokens / wall))
                    print(f"{r + 1:>5}  {mode:<6} {wall:7.2f} {done / wall:11.2f} {tokens / wall:9.0f}")
            for mode in ("local", "ray"):
                print(f"median {mode:<6} {statistics.median(walls[mode]):7.2f} "
                      f"{statistics.median(p for p, _ in rates[mode]):11.2f} "
                      f"{statistics.median(t for _, t in rates[mode]):9.0f}")
            ratios = [w_ray / w_local for w_ray, w_local in zip(walls["ray"], walls["local"], strict=True)]
            print(f"overhead ratio (Ray wall / local wall): median {statistics.median(ratios):.2f} "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
            ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
