"""Merging banks: two recordings of the same problems at the same settings become one bank with more traces.

Independent recordings at one temperature are draws from the same distribution, so their traces pool: two banks
of 32 traces per problem give one of 64 (what self-consistency@64 and its 15% target need) without recording the
first 32 again. What must agree: model, task (name, seed, size), every sampling setting but the seed, and each
shared problem's prompt. A shared non-null seed is refused: the same seed draws the same samples.
"""

from __future__ import annotations

from dataclasses import replace

from ponder.bank.format import Bank, BankError, BankProblem, _flat, _identity

__all__ = ["merge_banks"]


def merge_banks(first: Bank, second: Bank) -> Bank:
    """A bank holding, for each problem both banks recorded, the first bank's traces then the second's."""
    a, b = _settings(first), _settings(second)
    diffs = [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if diffs:
        raise BankError(f"banks {first.path} and {second.path} were recorded with other settings "
                        f"({'; '.join(diffs[:3])}): only recordings of one model, task and sampling pool")
    if first.digest is not None and first.digest == second.digest:
        raise BankError(f"{first.path} and {second.path} are the same recording: merging it with itself would "
                        "count every trace twice")
    seed = first.sampling.seed
    if seed is not None and seed == second.sampling.seed:
        raise BankError(f"both banks were recorded with sampling seed {seed}: their traces are the same draws, "
                        "not independent ones")
    shared = [pid for pid in first.problems if pid in second.problems]
    if not shared:
        raise BankError(f"banks {first.path} and {second.path} have no problem in common")
    problems: dict[str, BankProblem] = {}
    for pid in shared:
        one, two = first.problems[pid], second.problems[pid]
        if one.messages != two.messages:
            raise BankError(f"problem {pid} has another prompt in {second.path}: the banks do not pool")
        traces = [replace(t, index=i) for i, t in enumerate([*one.traces, *two.traces])]
        problems[pid] = BankProblem(pid, one.messages, one.gold, traces)
    counts = {len(p.traces) for p in problems.values()}
    if len(counts) != 1:
        raise BankError("the merged problems would hold different numbers of traces; merge complete banks")
    sampling = replace(first.sampling, seed=None) if seed != second.sampling.seed else first.sampling
    task = replace(first.task, limit=len(problems))
    return replace(first, problems=problems, n=counts.pop(), sampling=sampling, task=task, path=None, digest=None,
                   warning=None)


def _settings(bank: Bank) -> dict[str, object]:
    identity = _identity(bank.header())
    identity.pop("n", None)
    flat = _flat(identity)
    flat.pop("sampling.seed", None)
    return flat
