"""Token efficiency of each strategy against self-consistency, replayed from one trace bank.

For every strategy (swept over its sample budget) this prints, from replays of the same bank with the same seeds:
  - accuracy (mean over repeats) and mean completion tokens per problem;
  - the tokens its cheapest setting needs to reach self-consistency@N's accuracy, as a fraction of
    self-consistency@N's tokens (target on banks where confidence carries signal: <= 0.20 at N = 32), both for
    SC@N's mean accuracy and for the lower end of its 95% CI;
  - its accuracy minus self-consistency's at equal tokens, with a paired 95% bootstrap CI over problems: each
    problem's self-consistency accuracy is interpolated in log tokens between the two SC settings whose mean
    tokens bracket the strategy's (clamped, and marked *, outside SC's range).

Usage: python bench/efficiency.py BANK [--repeats 10] [--target-n 32] [--limit 100] [--only deepconf,rpc]
Record a bank first, e.g.: ponder bank record add1.bank.jsonl.gz --task add1 --n 64 --max-tokens 96
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ponder.backends.replay import ReplayBackend
from ponder.bank import Bank
from ponder.context import Ctx
from ponder.metrics import Estimate, bootstrap_mean
from ponder.runner import solve
from ponder.types import Problem


@dataclass
class Point:
    label: str
    strategy: str
    params: dict[str, Any]
    accuracy: Estimate  # bootstrap over problems of per-problem accuracy averaged over repeats
    tokens: float  # mean completion tokens per problem (cancelled tokens included)
    per_problem: np.ndarray  # accuracy of each problem, averaged over repeats


async def replay(bank: Bank, problems: list[Problem], strategy: str, params: dict[str, Any],
                 repeats: int) -> tuple[list[float], float]:
    """Per-problem accuracy averaged over `repeats` seeds, and mean tokens per problem."""
    backend = ReplayBackend(bank)
    correct = np.zeros(len(problems))
    tokens = 0

    async def one(i: int, problem: Problem, seed: int) -> None:
        nonlocal tokens
        ctx = Ctx(backend.for_problem(problem.id, seed=seed), problem, sampling=bank.sampling)
        result = await solve(problem, ctx, strategy, dict(params))
        correct[i] += bool(result.correct)
        tokens += ctx.usage.completion_tokens

    for seed in range(repeats):
        await asyncio.gather(*(one(i, p, seed) for i, p in enumerate(problems)))
    return list(correct / repeats), tokens / (repeats * len(problems))


def label(strategy: str, params: dict[str, Any]) -> str:
    return strategy + " " + " ".join(f"{k}={v}" for k, v in params.items())


def sweeps(max_n: int) -> list[tuple[str, dict[str, Any]]]:
    """Each strategy over sample budgets up to max_n, with its paper's other defaults."""
    ns = [n for n in (2, 4, 8, 16, 32, 64) if n <= max_n]
    grid: list[tuple[str, dict[str, Any]]] = [("cot", {"greedy": False})]
    grid += [("self-consistency", {"n": n}) for n in ns]
    grid += [("deepconf", {"mode": "offline", "n": n}) for n in ns if n >= 4]
    grid += [("deepconf", {"mode": "online", "n": n, "warmup": w}) for n in ns for w in (2, 4, 8) if w < n]
    # the paper's 2048-token window never fills on short traces (add1: 25 tokens, GSM8K on a 0.5B model: ~300):
    # smaller windows let online mode cancel them
    grid += [("deepconf", {"mode": "online", "n": n, "warmup": 8, "window": w}) for n in ns if n > 8
             for w in (32, 64, 128)]
    grid += [("adaptive-consistency", {"max_n": n}) for n in ns if n >= 4]
    grid += [("self-certainty", {"n": n, "selection": sel}) for n in ns for sel in ("best", "borda")]
    grid += [("rpc", {"n": n}) for n in ns if n >= 4]
    grid += [("crew", {"n": n}) for n in ns]
    grid += [("router", {"max_n": n}) for n in ns if n >= 8]
    grid += [("router", {"max_n": n, "strategies": "self-consistency"}) for n in ns if n >= 8]
    grid += [("deepprune", {"n": n}) for n in ns if n >= 4]
    grid += [("deepprune", {"n": n, "pruned_vote": "stated"}) for n in ns if n >= 4]
    return grid


def sc_at_tokens(sc: list[Point], tokens: float) -> tuple[np.ndarray, bool]:
    """Each problem's self-consistency accuracy at a token count: linear in log tokens between the two SC
    settings that bracket it; beyond SC's range, the nearest setting (and True: clamped)."""
    xs = [math.log(p.tokens) for p in sc]
    x = math.log(max(tokens, 1e-9))
    if x <= xs[0] or x >= xs[-1]:
        nearest = sc[0] if x <= xs[0] else sc[-1]
        return nearest.per_problem, not math.isclose(x, math.log(nearest.tokens), rel_tol=1e-9)
    j = int(np.searchsorted(xs, x))
    w = (x - xs[j - 1]) / (xs[j] - xs[j - 1])
    return (1 - w) * sc[j - 1].per_problem + w * sc[j].per_problem, False


def paired_delta(point: Point, sc: list[Point]) -> str:
    """Accuracy minus self-consistency's at the same tokens, with a paired bootstrap 95% CI over problems."""
    at, clamped = sc_at_tokens(sc, point.tokens)
    delta = bootstrap_mean(point.per_problem - at)
    return f"{delta.mean:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}]" + ("*" if clamped else "")


async def main(bank_path: Path, repeats: int, target_n: int, limit: int | None, only: set[str] | None) -> None:
    bank = Bank.load(bank_path)
    problems = bank.problems_for_task()[:limit] if limit else bank.problems_for_task()
    print(f"bank {bank_path.name}: {bank.model}, task {bank.task.name}, {len(problems)} problems × {bank.n} traces, "
          f"{repeats} repeats")
    kept = {p.id for p in problems}
    traces = [t for pid, bp in bank.problems.items() if pid in kept for t in bp.traces]
    capped = sum(t.finish_reason == "length" for t in traces)
    print(f"sampling: {bank.sampling}; {capped} of {len(traces)} traces ({capped / max(len(traces), 1):.1%}) were "
          "cut at max_tokens and carry no answer")
    if target_n > bank.n:
        raise SystemExit(f"--target-n {target_n} exceeds the bank's {bank.n} traces per problem")
    points: list[Point] = []
    started = time.perf_counter()
    grid = [(s, p) for s, p in sweeps(bank.n) if only is None or s in only | {"self-consistency"}]
    for done, (strategy, params) in enumerate(grid, 1):
        per_problem, tokens = await replay(bank, problems, strategy, params, repeats)
        name = label(strategy, params)
        # progress on stderr: a full sweep of a million-token bank takes about an hour
        print(f"[{done}/{len(grid)} {time.perf_counter() - started:.0f} s] {name}: "
              f"{np.mean(per_problem):.3f}, {tokens:.0f} tokens", file=sys.stderr, flush=True)
        points.append(Point(name, strategy, params, bootstrap_mean(per_problem), tokens, np.asarray(per_problem)))
    elapsed = time.perf_counter() - started

    sc = sorted((p for p in points if p.strategy == "self-consistency"), key=lambda p: p.tokens)
    target = next(p for p in sc if p.params["n"] == target_n)
    print(f"\nself-consistency@{target_n}: accuracy {target.accuracy}, {target.tokens:.1f} tokens/problem "
          f"({elapsed:.0f} s for {len(points)} configurations)\n")
    print("| strategy | accuracy [95% CI] | tokens/problem | vs SC at equal tokens [paired 95% CI] | reaches SC@N? "
          "| token fraction |")
    print("|---|---|---|---|---|---|")
    for p in sorted(points, key=lambda p: (p.strategy, p.tokens)):
        reaches = p.accuracy.mean >= target.accuracy.low
        fraction = f"{p.tokens / target.tokens:.3f}" if reaches else "–"
        print(f"| {p.label} | {p.accuracy} | {p.tokens:.1f} | {paired_delta(p, sc)} | {'yes' if reaches else 'no'} | "
              f"{fraction} |")
    print("(* outside self-consistency's token range: compared with its nearest setting)")

    print(f"\ncheapest configuration of each strategy that reaches SC@{target_n}'s accuracy: its mean "
          f"({target.accuracy.mean:.3f}), and the lower end of its 95% CI ({target.accuracy.low:.3f})")
    print("| strategy | reaches the mean with | token fraction | reaches the CI with | token fraction |")
    print("|---|---|---|---|---|")
    for strategy in dict.fromkeys(p.strategy for p in points):
        cells = []
        for bar in (target.accuracy.mean, target.accuracy.low):
            ok = [p for p in points if p.strategy == strategy and p.accuracy.mean >= bar - 1e-9]
            best = min(ok, key=lambda p: p.tokens) if ok else None
            cells += [best.label, f"{best.tokens / target.tokens:.3f}"] if best else ["does not", "–"]
        print(f"| {strategy} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bank", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--target-n", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--only", default=None, help="comma-separated strategies to sweep (self-consistency always)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    asyncio.run(main(args.bank, args.repeats, args.target_n, args.limit, only))
