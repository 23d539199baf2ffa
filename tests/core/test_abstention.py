"""Abstention metrics on hand-made records, and abstain_below on the voting strategies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.abstention import abstain_below, summarize_abstention
from ponder.answers.abstain import ABSTAIN
from ponder.backends import parse_model_spec
from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx, Sampling
from ponder.display import abstention_table
from ponder.errors import ConfigError
from ponder.runner import EvalConfig, run_eval
from ponder.store import ProblemRecord, Store
from ponder.strategies import get_strategy
from ponder.types import Result
from tests.conftest import make_problem
from tests.core.test_cli import ponder


def record(gold: str, answer: str | None, correct: bool, error: str | None = None) -> ProblemRecord:
    return ProblemRecord("p", 0, gold, answer, correct, None, {}, {}, 1, 1, 1, 1, 0, 0.1, error)


def test_metrics_on_hand_made_records() -> None:
    records = [
        record("7", "7", True),  # answerable: right
        record("7", "8", False),  # answerable: wrong
        record("7", ABSTAIN, False),  # answerable: abstained (a refusal)
        record("5", "5", True),  # answerable: right
        record(ABSTAIN, ABSTAIN, True),  # unanswerable: abstained (a success)
        record(ABSTAIN, "3", False),  # unanswerable: answered anyway
        record(ABSTAIN, None, False, error="boom"),  # errored: a failure
    ]
    s = summarize_abstention(records)
    assert s is not None
    assert (s.problems, s.answerable, s.unanswerable, s.answered, s.abstained) == (7, 4, 3, 4, 2)
    assert s.precision == pytest.approx(2 / 4)  # 7, 8, 5, 3 given; 7 and 5 right
    assert s.abstention_rate == pytest.approx(2 / 7)
    assert s.success_answerable == pytest.approx(2 / 4) and s.refusal_answerable == pytest.approx(1 / 4)
    assert s.success_unanswerable == pytest.approx(1 / 3)
    assert s.reliability == pytest.approx((2 / 4 + 1 / 3) / 2)
    assert s.prudence == pytest.approx((1 / 4) / 2)
    table = abstention_table(records)
    assert table is not None and table.row_count >= 6


def test_runs_without_abstention_have_no_abstention_metrics() -> None:
    assert summarize_abstention([record("7", "7", True), record("7", "8", False)]) is None
    assert abstention_table([record("7", "7", True)]) is None
    # abstentions on an ordinary task (abstain_below): precision and coverage, but no reliability score
    s = summarize_abstention([record("7", "7", True), record("7", ABSTAIN, False), record("7", "8", False)])
    assert s is not None and s.precision == pytest.approx(1 / 2) and s.abstention_rate == pytest.approx(1 / 3)
    assert s.reliability is None and s.success_unanswerable is None


def test_abstain_below_withholds_unsure_answers() -> None:
    sure = abstain_below(Result("7", 0.8), 0.5)
    assert sure.answer == "7" and sure.confidence == 0.8
    unsure = abstain_below(Result("7", 0.4, votes={"7": 2.0, "8": 1.0}), 0.5)
    assert unsure.answer == ABSTAIN and unsure.confidence is None and unsure.votes == {"7": 2.0, "8": 1.0}
    assert unsure.info["withheld"] == {"answer": "7", "confidence": 0.4, "below": 0.5}
    assert abstain_below(Result(None, 0.0), 0.5).answer == ABSTAIN
    assert abstain_below(Result("7", 0.1), 0.0).answer == "7"  # 0 never abstains
    assert abstain_below(Result(ABSTAIN, 0.2), 0.5).confidence == 0.2  # the model's own abstention is kept


async def test_self_consistency_abstains_below_its_vote_share() -> None:
    problem = make_problem()
    split = ["The answer is 7.", "The answer is 8.", "The answer is 7.", "The answer is 9."]
    result = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(split), problem), n=4,
                                                    abstain_below=0.6)
    assert result.answer == ABSTAIN and result.info["withheld"]["answer"] == "7"
    result = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(split), problem), n=4,
                                                    abstain_below=0.5)
    assert result.answer == "7" and result.confidence == 0.5
    with pytest.raises(ConfigError, match="abstain_below"):
        await get_strategy("self-consistency")(problem, Ctx(FakeBackend(split), problem), abstain_below=1.0)


async def test_deepconf_and_adaptive_consistency_abstain_below_their_confidence() -> None:
    problem = make_problem()
    # confident 7s against one hesitant 8: the weighted share of 7 is high
    script = [Scripted("The answer is 7.", 0.95), Scripted("The answer is 7.", 0.95), Scripted("The answer is 8.", 0.3)]
    kept = await get_strategy("deepconf")(problem, Ctx(FakeBackend(script), problem), n=3, eta=100, window=4,
                                          abstain_below=0.6)
    assert kept.answer == "7" and kept.confidence is not None and kept.confidence > 0.6
    withheld = await get_strategy("deepconf")(problem, Ctx(FakeBackend(script), problem), n=3, eta=100, window=4,
                                              abstain_below=kept.confidence + 0.01)
    assert withheld.answer == ABSTAIN and withheld.info["withheld"]["confidence"] == kept.confidence
    split = ["The answer is 7.", "The answer is 8."]
    result = await get_strategy("adaptive-consistency")(problem, Ctx(FakeBackend(split), problem), max_n=8,
                                                        abstain_below=0.75)
    assert result.answer == ABSTAIN and result.info["withheld"]["confidence"] == 0.5


async def test_an_abstention_run_is_scored_and_summarised(store: Store) -> None:
    config = EvalConfig(task="add1-abstain", strategy="self-consistency", model=parse_model_spec("fake"),
                        params={"n": 6, "abstain_below": 0.7}, sampling=Sampling(seed=1), limit=30)
    outcome = await run_eval(config, store)
    results = store.results(outcome.run_id)
    assert {r.gold == ABSTAIN for r in results} == {True, False}
    for r in results:  # abstaining is right exactly on the unanswerable problems
        if r.answer == ABSTAIN:
            assert r.correct == (r.gold == ABSTAIN)
    summary = summarize_abstention(results)
    assert summary is not None and summary.abstained > 0 and summary.reliability is not None


def test_show_prints_the_abstention_table(tmp_path: Path) -> None:
    args = ["eval", "--task", "add1-abstain", "--model", "fake", "--n", "4", "--limit", "8", "--param",
            "abstain_below=0.8"]
    assert ponder(*args, cwd=tmp_path).returncode == 0
    shown = ponder("show", "last", cwd=tmp_path)
    assert shown.returncode == 0 and "precision of given answers" in shown.stdout and "reliability" in shown.stdout
    as_json = json.loads(ponder("show", "last", "--json", cwd=tmp_path).stdout)
    assert as_json["abstention"]["problems"] == 8
    plain = ponder("eval", "--task", "add1", "--model", "fake", "--n", "2", "--limit", "3", cwd=tmp_path)
    assert plain.returncode == 0 and "abstention" not in plain.stdout
