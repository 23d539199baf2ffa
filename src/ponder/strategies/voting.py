"""Group answers by equivalence and vote, as self-consistency and its weighted variants do."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ponder.answers import normalize_answer
from ponder.types import Result, Trace

Equivalent = Callable[[str, str], Awaitable[bool]]


@dataclass
class Cluster:
    """Answers judged equivalent; ``members`` are trace positions."""

    forms: Counter[str] = field(default_factory=Counter)
    members: list[int] = field(default_factory=list)
    weight: float = 0.0

    @property
    def answer(self) -> str:
        """The most common written form; ties go to the form seen first."""
        return self.forms.most_common(1)[0][0]


async def cluster_answers(answers: Sequence[str | None], equivalent: Equivalent) -> list[Cluster]:
    """Clusters of equivalent answers, in order of first appearance; ``None`` answers are left out.

    Answers with the same normal form are merged without a check; each new form is compared with one
    representative per cluster, so the cost is (distinct forms) x (clusters) checks at most.
    """
    clusters: list[Cluster] = []
    by_form: dict[str, Cluster] = {}
    for position, answer in enumerate(answers):
        if answer is None:
            continue
        form = normalize_answer(answer)
        cluster = by_form.get(form)
        if cluster is None:
            for candidate in clusters:
                if await equivalent(candidate.answer, answer):
                    cluster = candidate
                    break
            if cluster is None:
                cluster = Cluster()
                clusters.append(cluster)
            by_form[form] = cluster
        cluster.forms[answer] += 1
        cluster.members.append(position)
    return clusters


@dataclass
class Vote:
    winner: str | None
    share: float  # the winner's weight over the total weight of all traces (unanswered ones included)
    tally: dict[str, float]
    clusters: list[Cluster]

    def result(self, traces: list[Trace], info: dict[str, Any] | None = None) -> Result:
        """The strategy result of this vote: the winner, its share as confidence, and the tally."""
        return Result(answer=self.winner, confidence=self.share, votes=self.tally, traces=traces, info=info or {})


async def vote(
    answers: Sequence[str | None], equivalent: Equivalent, weights: Sequence[float] | None = None
) -> Vote:
    """Weighted plurality vote over equivalence clusters.

    Ties break toward the cluster that appeared first in sampling order, which for exchangeable samples is a
    uniformly random but reproducible choice.
    """
    weights = list(weights) if weights is not None else [1.0] * len(answers)
    if len(weights) != len(answers):
        raise ValueError("one weight per answer")
    clusters = await cluster_answers(answers, equivalent)
    for cluster in clusters:
        cluster.weight = sum(weights[i] for i in cluster.members)
    total = sum(weights)
    if not clusters:
        return Vote(None, 0.0, {}, [])
    best = max(clusters, key=lambda c: (c.weight, -c.members[0]))  # max keeps the first of equal keys
    tally = {c.answer: c.weight for c in clusters}
    return Vote(best.answer, best.weight / total if total > 0 else 0.0, tally, clusters)
