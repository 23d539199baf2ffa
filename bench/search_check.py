"""Search and verification against self-consistency at equal tokens, on the first problems of a bank.

Search and verification strategies (beam search, an LLM judge, programs, backward checks, self-refine) ask the
model for things a bank does not hold (step continuations, verdicts, programs), so they run live. Self-consistency
is replayed from the same bank on the same problems over many serving orders, at n = 1, 2, 4, ... up to the bank's
n: its accuracy/token curve. Each live strategy is then compared with self-consistency at its own token count: each
problem's SC accuracy is interpolated in log tokens between the two SC settings that bracket it (as in
bench/efficiency.py), and the paired difference gets a bootstrap 95% CI over problems.

A live run is one draw: its interval is over problems only, not over sampling luck, so read a difference whose
CI crosses zero as "no evidence either way".

Usage: python bench/search_check.py BANK --model local:qwen-coder-0.5b [--limit 30] [--repeats 20] [--threads 2]
  [--only beam,pal]   (strategies by name; default: all of STEPS)
Runs finished earlier are reused from --store, so an interrupted check resumes where it stopped.
After the table, one line per live strategy says what its own report holds (programs with no code, Prove's
fallbacks, where self-refine stopped, the judge's verdict spread, traces cut at max_tokens) and, for the judge and
Prove, how they fare against a plain vote over their own samples.
On 30 GSM8K problems with Qwen2.5-Coder-0.5B on 2 cores (--threads 2), the steps were busy for (minutes,
2026-12-06): beam 35, judge 14, pal n=4 7, pal n=8 16, prove 15, self-refine 11 (results: docs/efficiency.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ponder.backends import parse_model_spec
from ponder.bank import Bank
from ponder.demo import DemoRow, DemoStep, run_demo
from ponder.metrics import bootstrap_mean, is_sample, majority_correct
from ponder.store import Store
from ponder.types import Trace

sys.path.insert(0, str(Path(__file__).parent))
from efficiency import Point, paired_delta  # a sibling script, not a package

# Each at a small budget, so the comparison lands inside SC's replayed range (n = 1 … 32). The beam scores steps
# with the model's own token confidence (from the logprobs it already returns), which costs no extra calls; a judge
# scorer would add one model call per candidate step.
STEPS = (
    DemoStep("beam n=4 expansions=4 scorer=confidence", "beam",
             {"n": 4, "expansions": 4, "scorer": "confidence"}, ""),
    DemoStep("judge n=4 (GenRM direct verdict)", "judge", {"n": 4}, ""),
    DemoStep("pal n=4", "pal", {"n": 4}, ""),
    DemoStep("pal n=8", "pal", {"n": 8}, ""),
    DemoStep("prove n=4", "prove", {"n": 4}, ""),
    DemoStep("self-refine max_iters=2", "self-refine", {"max_iters": 2}, ""),
)


def as_point(row: DemoRow, order: list[str]) -> Point:
    """A run's per-problem accuracy in the bank's problem order, in the form bench/efficiency.py compares."""
    per_problem = np.asarray([row.per_problem[pid] for pid in order])
    return Point(row.label, row.strategy, row.params, bootstrap_mean(list(per_problem)), row.tokens, per_problem)


def busy_minutes(store_path: Path, run_id: str) -> float:
    """Minutes during which at least one of the run's problems was in flight: the union of each problem's
    [finished - latency, finished] interval. Unlike this invocation's wall time, it is right for a run reused from
    the store (which took no time now) and for one resumed after an interruption (the gap is not counted)."""
    with sqlite3.connect(store_path) as db:
        spans = sorted((end - latency, end) for latency, end in
                       db.execute("SELECT latency_s, finished_at FROM results WHERE run_id = ?", (run_id,)))
    busy, covered_to = 0.0, float("-inf")
    for start, end in spans:
        busy += max(0.0, end - max(start, covered_to))
        covered_to = max(covered_to, end)
    return busy / 60


def diagnostics(store_path: Path, run_id: str, strategy: str) -> str:
    """What the strategy's own report says about its problems, so a result can be read for why, not only how much:
    how many programs had no code or failed (PAL, Prove), how often Prove fell back to the plain vote, where
    self-refine stopped, how spread the judge's verdicts are; and, for every strategy, the traces cut at max_tokens."""
    with sqlite3.connect(store_path) as db:
        infos = [json.loads(info) for (info,) in db.execute("SELECT info FROM results WHERE run_id = ?", (run_id,))]
        traces, cut = db.execute("SELECT count(*), coalesce(sum(finish_reason = 'length'), 0) FROM traces "
                                 "WHERE run_id = ?", (run_id,)).fetchone()
    parts = []
    programs = [p for info in infos for p in info.get("programs", [])]
    if programs:
        no_code = sum(p["killed_reason"] == "no code" for p in programs)
        failed = sum(p["killed_reason"] not in (None, "no code") or (p["exit_code"] not in (None, 0)) for p in programs)
        printed = sum(p["output"] is not None for p in programs)
        parts.append(f"programs {len(programs)}: no code {no_code}, failed or killed {failed}, printed an answer "
                     f"{printed}")
    if strategy == "prove":
        parts.append(f"fell back to the plain vote on {sum(bool(i.get('fallback')) for i in infos)} of {len(infos)}")
    if strategy == "self-refine":
        stops = Counter(f"{i['stopped']} after {i['refinements']} refinements" for i in infos)
        parts.append("stopped: " + ", ".join(f"{why} ×{k}" for why, k in sorted(stops.items())))
    scores = [s for i in infos for s in i.get("scores", []) if s is not None]
    if scores:
        q = np.percentile(scores, [0, 25, 50, 75, 100])
        parts.append("verdict P(yes) min/q1/median/q3/max " + "/".join(f"{v:.2f}" for v in q))
    if strategy in ("judge", "prove"):
        parts.append(against_own_majority(store_path, run_id))
    parts.append(f"traces cut at max_tokens {cut} of {traces}")
    return "; ".join(parts)


def against_own_majority(store_path: Path, run_id: str) -> str:
    """A selector (judge, Prove) against plain voting over its *own* samples: the paired comparison that is free of
    the luck of the live draw. Samples and the vote are maj@k's (``metrics.is_sample``, ``metrics.majority_correct``):
    verdicts and programs are aux traces and do not vote."""
    with Store(store_path) as store:
        results = store.results(run_id)
        samples: dict[str, list[Trace]] = {}
        for problem_id, trace in store.traces(run_id):
            if is_sample(trace):
                samples.setdefault(problem_id, []).append(trace)
    n = max(map(len, samples.values()), default=0)
    gains = losses = voted = chosen = 0
    for record in results:
        own = samples.get(record.problem_id, [])
        right, vote_right = bool(record.correct), majority_correct([t.answer for t in own], [t.correct for t in own])
        voted, chosen = voted + vote_right, chosen + right
        gains, losses = gains + (right and not vote_right), losses + (vote_right and not right)
    return (f"right {chosen}, plain vote over its own {n} samples right {voted} (the strategy right where the vote "
            f"was wrong {gains}, wrong where it was right {losses})")


async def main(bank_path: Path, model: str, limit: int, repeats: int, threads: int | None, store_path: Path,
               only: set[str] | None) -> None:
    bank = Bank.load(bank_path)
    order = list(bank.problems)[:limit]
    ns = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= bank.n]
    sc_steps = [DemoStep(f"self-consistency n={n}", "self-consistency", {"n": n}, "") for n in ns]
    steps = [s for s in STEPS if only is None or s.strategy in only]
    if not steps:
        raise SystemExit(f"--only matches none of {sorted({s.strategy for s in STEPS})}")
    spec = parse_model_spec(model, threads=threads)
    with Store(store_path) as store:
        rows = await run_demo(store, bank_path=bank_path, model=spec, live=limit, repeats=repeats, limit=limit,
                              replay_steps=sc_steps, live_steps=steps,
                              on_step=lambda source, label: print(f"{source}: {label}", flush=True))
    sc = sorted((as_point(r, order) for r in rows if r.source == "replay"), key=lambda p: p.tokens)
    print(f"\n{bank_path.name}: the first {limit} problems; self-consistency replayed over {repeats} orders, "
          f"each strategy live once ({model})\n")
    print("| strategy | accuracy [95% CI over problems] | tokens/problem | minutes | "
          "vs SC at equal tokens [paired 95% CI] |")
    print("|---|---|---|---|---|")
    for point in sc:
        print(f"| {point.label} (replay) | {point.accuracy} | {point.tokens:,.0f} | – | – |")
    for row in (r for r in rows if r.source == "live"):
        point = as_point(row, order)
        minutes = busy_minutes(store_path, row.run_ids[0])
        print(f"| {point.label} | {point.accuracy} | {point.tokens:,.0f} | {minutes:.1f} | {paired_delta(point, sc)} |")
    print("(* outside self-consistency's token range: compared with its nearest setting)\n")
    for row in (r for r in rows if r.source == "live"):
        print(f"{row.label}: {diagnostics(store_path, row.run_ids[0], row.strategy)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bank", type=Path)
    parser.add_argument("--model", default="local:qwen-coder-0.5b")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--store", type=Path, default=Path("search-check.db"))
    parser.add_argument("--only", default=None, help="comma-separated strategy names from STEPS")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    asyncio.run(main(args.bank, args.model, args.limit, args.repeats, args.threads, args.store, only))
