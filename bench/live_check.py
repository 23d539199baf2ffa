"""Do replays predict live runs? Each strategy runs live on the first problems of a bank and is replayed on them.

A replayed run serves the model's recorded samples; a live run draws new ones at the same settings. If the
replay is faithful (token accounting, cancellation, answer extraction), a live run is one more draw from the
distribution the replay's repeats sample, so its accuracy and tokens should fall inside their spread. Printed per
strategy: live accuracy and tokens per problem; the replay's mean with the 95% bootstrap CI over problems, and the
2.5-97.5 percentile range over repeats (the spread a single live run should land in).

Usage: python bench/live_check.py BANK --model local:qwen-coder-0.5b [--limit 50] [--repeats 20] [--threads 2]
The live part takes time: 1 h 58 min for three strategies on 50 GSM8K problems with Qwen2.5-Coder-0.5B on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np

from ponder.backends import parse_model_spec
from ponder.demo import DemoRow, DemoStep, run_demo
from ponder.metrics import bootstrap_mean
from ponder.store import Store

# The settings docs/efficiency.md recommends on this bank (each strategy's cheapest setting near SC@32), so the
# check covers what a user would run: 547k generated tokens on 50 GSM8K problems (measured 2026-12-06).
STEPS = (
    DemoStep("deepconf online n=16 warmup=2", "deepconf", {"mode": "online", "n": 16, "warmup": 2}, ""),
    DemoStep("router max_n=16 (self-consistency)", "router", {"max_n": 16, "strategies": "self-consistency"}, ""),
    DemoStep("rpc n=8", "rpc", {"n": 8}, ""),
)


def per_repeat(store: Store, row: DemoRow) -> tuple[list[float], list[float]]:
    """Accuracy and tokens per problem of each run of a row."""
    accuracy, tokens = [], []
    for run_id in row.run_ids:
        results = store.results(run_id)
        accuracy.append(float(np.mean([bool(r.correct) for r in results])))
        tokens.append(float(np.mean([r.completion_tokens for r in results])))
    return accuracy, tokens


async def main(bank: Path, model: str, limit: int, repeats: int, threads: int | None, store_path: Path) -> None:
    spec = parse_model_spec(model, threads=threads)
    with Store(store_path) as store:
        rows = await run_demo(store, bank_path=bank, model=spec, live=limit, repeats=repeats, limit=limit,
                              replay_steps=STEPS, live_steps=STEPS,
                              on_step=lambda source, label: print(f"{source}: {label}", flush=True))
        print(f"\n{bank.name}: the first {limit} problems; replay over {repeats} orders, live once ({model})\n")
        print("| strategy | live accuracy | replay accuracy [95% CI over problems] | replay range over repeats | "
              "inside? | live tokens | replay tokens [range over repeats] | inside? |")
        print("|---|---|---|---|---|---|---|---|")
        for step in STEPS:
            replay = next(r for r in rows if r.source == "replay" and r.label == step.label)
            live = next(r for r in rows if r.source == "live" and r.label == step.label)
            accuracy, tokens = per_repeat(store, replay)
            lo, hi = np.percentile(accuracy, [2.5, 97.5])
            tlo, thi = np.percentile(tokens, [2.5, 97.5])
            ci = bootstrap_mean(list(replay.per_problem.values()))
            in_acc = ci.low <= live.accuracy.mean <= ci.high
            in_tok = tlo <= live.tokens <= thi
            print(f"| {step.label} | {live.accuracy.mean:.3f} | {ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}] | "
                  f"{lo:.3f}–{hi:.3f} | {'yes' if in_acc else 'NO'} | {live.tokens:,.0f} | "
                  f"{np.mean(tokens):,.0f} [{tlo:,.0f}–{thi:,.0f}] | {'yes' if in_tok else 'NO'} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bank", type=Path)
    parser.add_argument("--model", default="local:qwen-coder-0.5b")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--store", type=Path, default=Path("live-check.db"))
    args = parser.parse_args()
    asyncio.run(main(args.bank, args.model, args.limit, args.repeats, args.threads, args.store))
