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
