"""ponder demo: replay rows from a bank, live rows from a model, paired differences, reuse of stored runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.backends import BackendSpec
from ponder.backends.fake import FakeBackend
from ponder.bank import record_bank
from ponder.context import Sampling
from ponder.demo import REPLAY, DemoStep, default_bank, paired_difference, run_demo
from ponder.errors import ConfigError
from ponder.store import Store
from tests.core.test_cli import ponder

STEPS = (DemoStep("one sample", "cot", {"greedy": False}, "one"),
         DemoStep("self-consistency n=8", "self-consistency", {"n": 8}, "vote"))


@pytest.fixture
async def bank_path(tmp_path: Path) -> Path:
    path = tmp_path / "add1.bank.zip"
    await record_bank("add1", backend=FakeBackend(), n=32, size=12, path=tmp_path / "add1.bank.jsonl.gz",
                      sampling=Sampling(max_tokens=64, top_logprobs=5))
    from ponder.bank import Bank

    Bank.load(tmp_path / "add1.bank.jsonl.gz").save(path)
    return path


async def test_demo_replays_each_step_over_repeats_and_runs_live_on_the_first_problems(bank_path: Path,
                                                                                       tmp_path: Path) -> None:
    with Store(tmp_path / "demo.db") as store:
        rows = await run_demo(store, bank_path=bank_path, model=BackendSpec(kind="fake"), live=4, repeats=3,
                              replay_steps=STEPS, live_steps=STEPS[:1])
        assert [(r.source, r.label) for r in rows] == [("replay", "one sample"), ("replay", "self-consistency n=8"),
                                                       ("live", "one sample")]
        one, vote, live = rows
        assert len(one.run_ids) == 3 and one.accuracy.n == 12  # 3 serving orders of all 12 problems
        assert len(live.run_ids) == 1 and live.accuracy.n == 4  # live: only the first 4 problems
        assert vote.tokens > 6 * one.tokens  # eight samples cost about eight times one
        assert vote.accuracy.mean > one.accuracy.mean  # the noisy fake solver: voting helps
        diff = paired_difference(vote, one)
        assert diff is not None and diff.mean == pytest.approx(vote.accuracy.mean - one.accuracy.mean)
        assert paired_difference(live, vote) is not None and paired_difference(live, vote).n == 4  # type: ignore[union-attr]
        # a second demo reuses the stored runs: the same run ids and numbers
        again = await run_demo(store, bank_path=bank_path, model=BackendSpec(kind="fake"), live=4, repeats=3,
                               replay_steps=STEPS, live_steps=STEPS[:1])
        assert [r.run_ids for r in again] == [r.run_ids for r in rows]
        assert [r.accuracy for r in again] == [r.accuracy for r in rows]


async def test_demo_refuses_bad_settings(bank_path: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "demo.db") as store:
        with pytest.raises(ConfigError, match="not found"):
            await run_demo(store, bank_path=tmp_path / "nope.bank.zip", model=None)
        with pytest.raises(ConfigError, match="--repeats"):
            await run_demo(store, bank_path=bank_path, model=None, repeats=0)
        with pytest.raises(ConfigError, match="--live"):
            await run_demo(store, bank_path=bank_path, model=None, live=-1)


def test_demo_defaults_name_a_shipped_bank_with_enough_traces() -> None:
    """The default steps need at most as many traces as the shipped bank holds (when it is there)."""
    from ponder.bank import Bank

    bank = Bank.load(default_bank())
    assert bank.task.name == "gsm8k" and bank.top_logprobs == 20
    assert max(int(s.params.get("n", s.params.get("max_n", 1))) for s in REPLAY) <= bank.n
    assert len(bank.problems) >= 30


def test_demo_command_prints_the_table_the_explanation_and_the_report(bank_path: Path, tmp_path: Path) -> None:
    out = ponder("demo", "--bank", str(bank_path), "--model", "fake", "--live", "3", "--repeats", "2",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for text in ("one sample", "self-consistency n=32", "deepconf online n=16", "self-certainty n=8", "vs one sample",
                 "HTML report:", "live", "paired comparison on the same draws"):
        assert text in out.stdout, text
    assert (tmp_path / "ponder-demo" / "index.html").exists() and (tmp_path / "ponder-demo.db").exists()


def test_demo_without_a_server_fails_before_replaying(bank_path: Path, tmp_path: Path) -> None:
    out = ponder("demo", "--bank", str(bank_path), "--server-bin", str(tmp_path / "no-server"), cwd=tmp_path)
    assert out.returncode == 2 and "llama-server not found" in out.stderr
    assert not (tmp_path / "ponder-demo.db").exists()  # nothing ran


def test_headline_names_the_gain_of_voting_and_the_cheapest_strategy_within_reach() -> None:
    from ponder.cli_demo import headline
    from ponder.demo import DemoRow
    from ponder.metrics import bootstrap_mean

    def row(label: str, strategy: str, right: list[float], tokens: float) -> DemoRow:
        per = {f"p{i}": v for i, v in enumerate(right)}
        return DemoRow(label, "replay", strategy, {}, bootstrap_mean(right), tokens, per)

    one = row("one sample", "cot", [0, 0, 1, 0] * 5, 300)
    sc = row("self-consistency n=32", "self-consistency", [1, 0, 1, 1] * 5, 9600)
    cheap = row("deepconf online n=32", "deepconf", [1, 0, 1, 1] * 5, 4800)
    weak = row("rpc n=8", "rpc", [0, 0, 1, 0] * 5, 2400)
    text = headline([one, sc, cheap, weak])
    assert text is not None
    assert "75.0% of the problems against 25.0% for one sample" in text and "32× the tokens" in text
    assert "deepconf online n=32 reaches 75.0%" in text and "50% of its tokens" in text
    assert "rpc" not in text  # below self-consistency@32's interval
    assert headline([one]) is None
