"""``ponder demo``: evidence, in minutes on two CPU cores, that test-time strategies buy accuracy per token.

Part 1 replays the trace bank shipped with ponder (``ponder/banks``): samples that Qwen2.5-Coder-0.5B-Instruct
drew on GSM8K test problems, with top-20 logprobs. Every strategy is served exactly those samples, so the rows
are paired comparisons over the same draws, and each is repeated over several serving orders. Part 2 runs the
model live on the first few of those problems, at the bank's sampling settings, to show the same strategies end
to end (a handful of problems: wide intervals; the replay carries the evidence). Both go to the store and into
one HTML report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ponder.backends import BackendSpec
from ponder.bank import Bank
from ponder.errors import ConfigError
from ponder.metrics import Estimate, bootstrap_mean
from ponder.runner import EvalConfig, Progress, run_eval
from ponder.store import ProblemRecord, Store

__all__ = ["LIVE", "REPLAY", "DemoRow", "DemoStep", "default_bank", "run_demo"]

BANK_NAME = "gsm8k-qwen-coder-0.5b-n32.bank.zip"


@dataclass(frozen=True)
class DemoStep:
    label: str
    strategy: str
    params: dict[str, Any]
    meaning: str  # one line for the closing explanation


# What the replay compares: one sample, majority votes, and settings taken from the GSM8K bank's efficiency table
# (docs/efficiency.md): self-certainty n=8 and DeepConf online n=16 are the cheapest of their strategies within
# self-consistency@32's interval; rpc n=8 is a cheap near miss (RPC reaches it at n=16 only); the
# self-consistency router at max_n=32 comes nearest SC@32's mean (0.415) at 69% of its tokens.
REPLAY: tuple[DemoStep, ...] = (
    DemoStep("one sample", "cot", {"greedy": False}, "one sampled solution: what a single call gets"),
    DemoStep("self-consistency n=8", "self-consistency", {"n": 8}, "majority vote over 8 samples"),
    DemoStep("self-consistency n=32", "self-consistency", {"n": 32},
             "majority vote over 32 samples: the accuracy to match"),
    DemoStep("self-certainty n=8", "self-certainty", {"n": 8, "selection": "borda"},
             "self-certainty: 8 samples, votes ranked by how certain each sample's tokens were (Borda)"),
    DemoStep("deepconf online n=16", "deepconf", {"mode": "online", "n": 16, "warmup": 2},
             "DeepConf: 2 warm-up samples set a confidence bar; later samples are cut when a 2048-token window "
             "falls below it (never, on ~300-token answers) and sampling stops when the confident ones agree"),
    DemoStep("rpc n=8", "rpc", {"n": 8}, "RPC: vote weighted by each answer's path probability"),
    DemoStep("router max_n=32", "router", {"max_n": 32, "strategies": "self-consistency"},
             "router: samples a few, stops when they agree, samples more when they do not"),
)

# What runs live: one sample (greedy, as a user would call the model) and DeepConf at a small budget.
LIVE: tuple[DemoStep, ...] = (
    DemoStep("greedy", "cot", {}, "the model's greedy answer"),
    DemoStep("deepconf n=8", "deepconf", {"mode": "online", "n": 8, "warmup": 4, "window": 32},
             "DeepConf with 4 warm-up samples and 4 more at most"),
)


@dataclass
class DemoRow:
    label: str
    source: str  # "replay" or "live"
    strategy: str
    params: dict[str, Any]
    accuracy: Estimate
    tokens: float  # completion tokens per problem (cancelled ones included)
    per_problem: dict[str, float]  # accuracy per problem id (averaged over repeats)
    run_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    meaning: str = ""


def default_bank() -> Path:
    """The GSM8K bank shipped inside the package."""
    return Path(__file__).parent / "banks" / BANK_NAME


def _row(step: DemoStep, source: str, runs: list[tuple[str, list[ProblemRecord]]], seconds: float) -> DemoRow:
    by_problem: dict[str, list[float]] = {}
    tokens = 0
    count = 0
    for _, records in runs:
        for record in records:
            by_problem.setdefault(record.problem_id, []).append(float(bool(record.correct)))
            tokens += record.completion_tokens
            count += 1
    per_problem = {pid: float(np.mean(values)) for pid, values in by_problem.items()}
    return DemoRow(step.label, source, step.strategy, dict(step.params), bootstrap_mean(list(per_problem.values())),
                   tokens / max(count, 1), per_problem, [run_id for run_id, _ in runs], seconds, step.meaning)


async def run_demo(
    store: Store,
    *,
    bank_path: Path,
    model: BackendSpec | None,
    live: int = 10,
    repeats: int = 3,
    limit: int | None = None,
    on_step: Callable[[str, str], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    replay_steps: Sequence[DemoStep] = REPLAY,
    live_steps: Sequence[DemoStep] = LIVE,
) -> list[DemoRow]:
    """Replay ``replay_steps`` on the bank (``repeats`` serving orders each) and, with a ``model`` and
    ``live > 0``, run ``live_steps`` live on the bank's first ``live`` problems. Runs already in the store are
    reused (running the demo again is fast). ``on_step(source, label)`` is called before each step."""
    import time

    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if live < 0:
        raise ConfigError(f"--live must be 0 (no live run) or a number of problems, got {live}")
    if not bank_path.exists():
        raise ConfigError(f"trace bank {bank_path} not found: pass --bank PATH (record one with 'ponder bank record')")
    bank = Bank.load(bank_path)
    sampling = replace(bank.sampling, seed=None)
    base = EvalConfig(task=bank.task.name, strategy="cot", model=model or BackendSpec(kind="fake"), sampling=sampling,
                      limit=limit, task_seed=bank.task.seed, task_size=bank.task.size)
    rows: list[DemoRow] = []
    for step in replay_steps:
        if on_step:
            on_step("replay", step.label)
        started = time.perf_counter()
        runs = []
        for seed in range(repeats):
            config = replace(base, strategy=step.strategy, params=dict(step.params), replay=bank_path,
                             replay_seed=seed, store_traces=False)
            outcome = await run_eval(config, store, on_progress=on_progress)
            runs.append((outcome.run_id, store.results(outcome.run_id)))
        rows.append(_row(step, "replay", runs, time.perf_counter() - started))
    if model is None or live == 0:
        return rows

    from ponder.backends import open_backend

    async with open_backend(model.sized_for(sampling.max_tokens)) as backend:
        for step in live_steps:
            if on_step:
                on_step("live", step.label)
            started = time.perf_counter()
            config = replace(base, strategy=step.strategy, params=dict(step.params), limit=live, model=model,
                             problems_from=bank_path)
            outcome = await run_eval(config, store, on_progress=on_progress, backend=backend)
            rows.append(_row(step, "live", [(outcome.run_id, store.results(outcome.run_id))],
                             time.perf_counter() - started))
    return rows


def paired_difference(row: DemoRow, baseline: DemoRow) -> Estimate | None:
    """Mean per-problem accuracy difference over the problems both rows solved, with a bootstrap 95% CI."""
    shared = [pid for pid in row.per_problem if pid in baseline.per_problem]
    if not shared:
        return None
    return bootstrap_mean([row.per_problem[pid] - baseline.per_problem[pid] for pid in shared])
