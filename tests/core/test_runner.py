from __future__ import annotations

from pathlib import Path

import pytest

from ponder.backends import parse_model_spec
from ponder.context import Sampling
from ponder.errors import ConfigError
from ponder.runner import EvalConfig, run_eval
from ponder.store import Store


def _config(**overrides: object) -> EvalConfig:
    base = dict(task="add1", strategy="self-consistency", model=parse_model_spec("fake"), params={"n": 5},
                sampling=Sampling(seed=1), limit=12, task_size=40)
    base.update(overrides)
    return EvalConfig(**base)  # type: ignore[arg-type]


async def test_eval_scores_every_problem_and_stores_traces(store: Store) -> None:
    seen = []
    outcome = await run_eval(_config(), store, on_progress=lambda p: seen.append(p.done))
    assert outcome.progress.done == 12 and seen[-1] == 12 and not outcome.resumed
    results = store.results(outcome.run_id)
    assert len(results) == 12 and all(r.error is None for r in results)
    assert all(r.correct == (r.answer == r.gold) for r in results)
    traces = store.traces(outcome.run_id)
    assert len(traces) == 12 * 5 and all(t.correct is not None for _, t in traces)
    assert sum(r.completion_tokens for r in results) == sum(t.completion_tokens for _, t in traces)


async def test_rerun_resumes_and_extending_the_limit_adds_only_new_problems(store: Store) -> None:
    first = await run_eval(_config(limit=5), store)
    again = await run_eval(_config(limit=5), store)
    assert again.resumed and again.progress.skipped == 5 and again.progress.done == 0
    more = await run_eval(_config(limit=8), store)
    assert more.run_id == first.run_id and more.progress.done == 3
    assert len(store.results(first.run_id)) == 8


async def test_self_consistency_improves_on_single_samples(store: Store) -> None:
    # the fake solver is right 60% of the time per sample: a 9-vote majority should be right more often
    sc = await run_eval(_config(params={"n": 9}, limit=40), store)
    single = await run_eval(_config(strategy="cot", params={"greedy": False}, limit=40), store)
    assert sc.progress.correct > single.progress.correct


async def test_different_settings_are_different_runs(store: Store) -> None:
    a = await run_eval(_config(limit=2), store)
    b = await run_eval(_config(limit=2, sampling=Sampling(seed=2)), store)
    assert a.run_id != b.run_id


async def test_bad_params_fail_before_any_work(store: Store) -> None:
    with pytest.raises(ConfigError, match="no parameter 'bogus'"):
        await run_eval(_config(params={"bogus": 1}), store)
    assert store.runs() == []


async def test_budget_errors_are_recorded_per_problem(store: Store) -> None:
    outcome = await run_eval(_config(strategy="cot", params={}, token_budget=0, limit=3), store)
    results = store.results(outcome.run_id)
    assert len(results) == 3 and all(r.error and "budget" in r.error for r in results)


async def test_unreachable_server_stops_the_run_with_a_clear_error(tmp_path: Path) -> None:
    from ponder.errors import BackendUnavailable

    with Store(tmp_path / "s.db") as store:
        config = _config(model=parse_model_spec("openai:http://127.0.0.1:9/v1"))
        with pytest.raises(BackendUnavailable, match="cannot reach"):
            await run_eval(config, store)


async def test_a_systematic_failure_stops_the_run_early(store: Store) -> None:
    from ponder.errors import PonderError

    config = _config(strategy="cot", params={}, token_budget=0, limit=30, concurrency=1)
    with pytest.raises(PonderError, match="first 5 problems all failed"):
        await run_eval(config, store)
    assert len(store.results(config.resolved_run_id())) == 5


async def _bank(tmp_path: Path) -> Path:
    from ponder.backends.fake import FakeBackend
    from ponder.bank import record_bank

    path = tmp_path / "add1.bank.jsonl.gz"
    await record_bank("add1", backend=FakeBackend(), n=16, path=path, size=20, sampling=Sampling(max_tokens=64))
    return path


async def test_replay_runs_are_seeded_repeats_of_one_group(store: Store, tmp_path: Path) -> None:
    from ponder.bank import Bank

    bank_path = await _bank(tmp_path)
    bank = Bank.load(bank_path)

    def config(seed: int) -> EvalConfig:
        return _config(model=parse_model_spec("fake"), replay=bank_path, replay_seed=seed, sampling=bank.sampling,
                       params={"n": 3}, limit=None, store_traces=False)

    configs = [config(s) for s in (0, 1, 0)]
    a, b, a_again = [await run_eval(c, store) for c in configs]  # run_eval fills in the parameters' defaults
    assert a.run_id != b.run_id and a.run_id == a_again.run_id and a_again.resumed
    assert configs[0].group() == configs[1].group()
    assert {r.id: r.config["group"] for r in store.runs()} == {a.run_id: configs[0].group(),
                                                                 b.run_id: configs[0].group()}
    results = {run: store.results(run) for run in (a.run_id, b.run_id)}
    assert all(len(rows) == 20 for rows in results.values())
    assert store.traces(a.run_id) == []  # replayed traces live in the bank
    # the served traces, and so the votes, differ between seeds on at least one problem
    assert [r.votes for r in results[a.run_id]] != [r.votes for r in results[b.run_id]]
    # tokens are the bank's own: 3 recorded traces per problem
    per_problem = {p.id: p.traces for p in bank.problems.values()}
    assert all(r.completion_tokens <= 3 * max(t.completion_tokens for t in per_problem[r.problem_id])
               for r in results[a.run_id])


async def test_replay_refuses_samples_the_bank_cannot_stand_for(store: Store, tmp_path: Path) -> None:
    from ponder.bank import Bank

    bank_path = await _bank(tmp_path)
    config = _config(strategy="cot", params={}, replay=bank_path, sampling=Bank.load(bank_path).sampling, limit=None)
    with pytest.raises(ConfigError, match="temperature"):
        await run_eval(config, store)  # greedy decoding cannot be served from temperature-0.8 samples
    (run,) = store.runs()
    assert len(store.results(run.id)) == 0
