"""Does packing a bank change what strategies decide? Replays from a JSON bank and its packed form, side by side.

For each confidence strategy, serving order and problem, both forms are replayed with the same seed; a replay is
identical when the answer and the completion tokens match. Prints every difference and the count.

Usage: python bench/pack_fidelity.py BANK.bank.jsonl.gz BANK.bank.zip [--limit 16] [--orders 3]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from ponder.backends.replay import ReplayBackend
from ponder.bank import Bank
from ponder.context import Ctx
from ponder.runner import solve

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("deepconf", {"mode": "offline", "n": 16}),
    ("deepconf", {"mode": "online", "n": 32, "warmup": 8, "window": 64}),
    ("deepconf", {"mode": "online", "n": 16, "warmup": 4, "window": 32}),
    ("self-certainty", {"n": 16}),
    ("self-certainty", {"n": 16, "selection": "borda"}),
    ("rpc", {"n": 16}),
    ("router", {"max_n": 32}),
]


async def main(full: Path, packed: Path, limit: int, orders: int) -> None:
    banks = Bank.load(full), Bank.load(packed)
    problems = banks[0].problems_for_task()[:limit]
    same = total = 0
    for strategy, params in CONFIGS:
        for seed in range(orders):
            for problem in problems:
                outcome = []
                for bank in banks:
                    ctx = Ctx(ReplayBackend(bank).for_problem(problem.id, seed=seed), problem, sampling=bank.sampling)
                    result = await solve(problem, ctx, strategy, dict(params))
                    outcome.append((result.answer, ctx.usage.completion_tokens))
                total += 1
                same += outcome[0] == outcome[1]
                if outcome[0] != outcome[1]:
                    print(f"differs: {strategy} {params} order {seed} {problem.id}: json {outcome[0]}, "
                          f"packed {outcome[1]}")
    print(f"{same}/{total} replays identical (answer and tokens) over {len(problems)} problems, {len(CONFIGS)} "
          f"configurations, {orders} orders")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("full", type=Path)
    parser.add_argument("packed", type=Path)
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--orders", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.full, args.packed, args.limit, args.orders))
