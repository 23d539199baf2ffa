from __future__ import annotations

import asyncio
import html
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ponder.backends import parse_model_spec
from ponder.context import Sampling
from ponder.errors import ConfigError
from ponder.metrics import summarize
from ponder.report import build_report, resolve_runs
from ponder.report.data import BASELINE, collect
from ponder.report.html import estimate_text, render
from ponder.report.stats import mean_across_repeats
from ponder.runner import EvalConfig, run_eval
from ponder.store import ProblemRecord, Store

pytest.importorskip("matplotlib")

HOSTILE = "<script>alert(1)</script>"


def _config(**overrides: Any) -> EvalConfig:
    base: dict[str, Any] = dict(task="add1", strategy="self-consistency", model=parse_model_spec("fake"),
                                params={"n": 4}, sampling=Sampling(seed=1), limit=20, task_size=40)
    base.update(overrides)
    return EvalConfig(**base)


@pytest.fixture(scope="module")
def fake_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict[str, str]]]:
    """Self-consistency at N=1, 4 and 8, single-sample CoT, and a run with a hostile name, on the fake backend."""

    async def fill(store: Store) -> dict[str, str]:
        ids = {}
        for n in (1, 4, 8):
            ids[f"sc{n}"] = (await run_eval(_config(params={"n": n}), store)).run_id
        ids["cot"] = (await run_eval(_config(strategy="cot", params={"greedy": False}), store)).run_id
        ids["hostile"] = (await run_eval(_config(params={"n": 2}, limit=5, run_id=HOSTILE), store)).run_id
        return ids

    with Store(tmp_path_factory.mktemp("report") / "runs.db") as store:
        yield store, asyncio.run(fill(store))


@pytest.fixture(scope="module")
def built(fake_store: tuple[Store, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of every run in ``fake_store``, with a hostile title too."""
    return build_report(fake_store[0], [], tmp_path_factory.mktemp("built") / "out", title=f"title {HOSTILE}")


def _row(page: str, key: str) -> str:
    match = re.search(r'<tr class="[^"]*" data-key="' + re.escape(key) + r'">(.*?)</tr>', page, re.S)
    assert match, f"no table row for {key}"
    return match.group(1)


def test_report_writes_page_and_plots(built: Path) -> None:
    index = built
    assert index.name == "index.html" and index.is_file()
    for name in ("accuracy_vs_tokens.png", "calibration.png"):
        data = (index.parent / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
        assert f'<img src="{name}"' in index.read_text()


def test_table_numbers_match_summarize(fake_store: tuple[Store, dict[str, str]], built: Path) -> None:
    store, ids = fake_store
    page = built.read_text()
    for run_id in (ids["sc1"], ids["sc4"], ids["sc8"], ids["cot"]):
        summary = summarize(store.results(run_id))
        row = _row(page, run_id)
        assert str(summary.accuracy) in row and estimate_text(summary.accuracy) == str(summary.accuracy)
        assert f"{summary.mean_prompt_tokens + summary.mean_completion_tokens:.1f}" in row
        assert f"{summary.mean_completion_tokens:.1f}" in row


def test_difference_against_self_consistency_at_the_same_n(fake_store: tuple[Store, dict[str, str]]) -> None:
    store, ids = fake_store
    data = collect(store, resolve_runs(store, [ids["sc1"], ids["sc4"], ids["cot"]]))
    rows = {row.point.key: row for row in data.rows}
    cot = rows[ids["cot"]]
    assert cot.point.n == 1 and cot.baseline is not None and cot.baseline.key == ids["sc1"]
    assert cot.difference is not None and cot.difference.n == 20
    cot_hits = {r.problem_id: float(bool(r.correct)) for r in store.results(ids["cot"])}
    sc_hits = {r.problem_id: float(bool(r.correct)) for r in store.results(ids["sc1"])}
    expected = sum(cot_hits[k] - sc_hits[k] for k in cot_hits) / 20
    assert cot.difference.mean == pytest.approx(expected)
    assert cot.difference.low <= expected <= cot.difference.high
    assert rows[ids["sc4"]].baseline is None and rows[ids["sc4"]].difference is None
    assert cot.ece is None and rows[ids["sc4"]].ece is not None  # cot records no confidence
    # labels name n and the parameters off their defaults; series drop n
    assert cot.point.label == "cot greedy=False" and cot.point.series == "cot greedy=False"
    assert rows[ids["sc4"]].point.label == "self-consistency n=4" and rows[ids["sc4"]].point.series == BASELINE


def test_frontier_is_marked(fake_store: tuple[Store, dict[str, str]]) -> None:
    store, _ = fake_store
    data = collect(store, store.runs())
    frontier = [row for row in data.rows if row.on_frontier]
    assert frontier
    cheapest = min(data.rows, key=lambda r: r.point.mean_tokens)
    best = max(data.rows, key=lambda r: (r.point.accuracy.mean, -r.point.mean_tokens))
    assert cheapest.on_frontier and best.on_frontier
    for row in data.rows:  # nothing on the frontier is beaten on both axes
        if row.on_frontier:
            assert not any(o.point.mean_tokens < row.point.mean_tokens
                           and o.point.accuracy.mean > row.point.accuracy.mean for o in data.rows)


def test_html_escapes_a_hostile_run_name(fake_store: tuple[Store, dict[str, str]], built: Path) -> None:
    store, ids = fake_store
    assert ids["hostile"] == HOSTILE and store.find_run(HOSTILE).id == HOSTILE
    page = built.read_text()
    assert HOSTILE not in page and "alert(1)</" not in page
    assert f'data-key="{html.escape(HOSTILE)}"' in page  # the run's table row
    assert f"<title>title {html.escape(HOSTILE)}</title>" in page
    assert page.count("<script>") == 1  # only the page's own image check


def test_run_refs_choose_runs(fake_store: tuple[Store, dict[str, str]], tmp_path: Path) -> None:
    store, ids = fake_store
    page = build_report(store, [ids["sc4"][:-2], ids["sc4"]], tmp_path).read_text()  # prefix and id: one run
    assert page.count("<tr class=") == 1 and ids["sc4"] in page and ids["sc8"] not in page
    with pytest.raises(ConfigError, match="no run"):
        build_report(store, ["nope"], tmp_path)


def test_empty_store_and_unfinished_runs_are_clear_errors(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.db") as store:
        with pytest.raises(ConfigError, match="no runs yet"):
            build_report(store, [], tmp_path / "out")
        store.ensure_run("started", task="add1", strategy="cot", model="fake", config={"params": {}})
        with pytest.raises(ConfigError, match="nothing to report"):
            build_report(store, [], tmp_path / "out")


def test_missing_matplotlib_says_how_to_install(fake_store: tuple[Store, dict[str, str]], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = fake_store
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(ConfigError, match=re.escape("pip install 'ponder[report]'")):
        build_report(store, [], tmp_path)
    assert not (tmp_path / "index.html").exists()


# ---- groups of replayed repeats -------------------------------------------------------------------------------


def _fake_group(store: Store, group: str, strategy: str, hits: list[list[bool]], tokens: list[int],
                confidence: float | None = None, prefix: str | None = None) -> list[str]:
    """Write one run per repeat straight into the store, as replayed runs will look."""
    ids = []
    for seed, (repeat_hits, completion) in enumerate(zip(hits, tokens, strict=True)):
        run_id = f"{prefix or group}-r{seed}"
        config = {"task": "add1", "task_seed": 0, "task_size": None, "strategy": strategy, "params": {"n": 8},
                  "model": "fake", "model_name": None, "sampling": {"temperature": 0.8},
                  "group": group, "replay": {"bank": "bank-1", "seed": seed}}
        store.ensure_run(run_id, task="add1", strategy=strategy, model="fake", config=config)
        for i, ok in enumerate(repeat_hits):
            store.save_problem(run_id, ProblemRecord(
                problem_id=f"add1/{i}", position=i, gold="1", answer="1" if ok else "2", correct=ok,
                confidence=confidence, votes={}, info={}, prompt_tokens=20, completion_tokens=completion, calls=1,
                traces=8, cancelled_traces=0, latency_s=0.0), [])
        ids.append(run_id)
    return ids


def test_groups_of_repeats_pool_into_one_point(tmp_path: Path) -> None:
    problems = 20
    sc_hits = [[i % 2 == 0 for i in range(problems)],  # 0.50
               [i % 4 != 3 for i in range(problems)],  # 0.75
               [i % 5 != 4 for i in range(problems)]]  # 0.80
    other_hits = [[True] * problems, [i != 0 for i in range(problems)], [i % 10 != 0 for i in range(problems)]]
    with Store(tmp_path / "groups.db") as store:
        sc_ids = _fake_group(store, "sc-replay", "self-consistency", sc_hits, [100, 110, 120], confidence=0.7)
        other_ids = _fake_group(store, "dc-replay", "deepconf", other_hits, [50, 60, 70], confidence=14.2)
        data = collect(store, resolve_runs(store, []))
        assert len(data.rows) == 2
        rows = {row.point.strategy: row for row in data.rows}
        sc, other = rows["self-consistency"], rows["deepconf"]

        assert sc.point.key == "group:sc-replay" and sc.point.run_ids == sc_ids and sc.point.repeats == 3
        assert sc.point.interval == "repeats" and sc.point.problems == problems and sc.point.n == 8
        assert sc.point.repeat_accuracies == pytest.approx([0.5, 0.75, 0.8])
        assert sc.point.accuracy == mean_across_repeats([0.5, 0.75, 0.8], (0.0, 1.0))
        assert other.point.accuracy.high == 1.0  # the t interval of 0.95 over three repeats is clipped
        assert sc.point.accuracy.low < sc.point.accuracy.mean < sc.point.accuracy.high
        assert sc.point.mean_tokens == pytest.approx(20 + 110) and sc.point.mean_completion_tokens == 110
        assert len(sc.point.confidences) == 3 * problems and sc.ece is not None

        # paired by problem id, with correctness averaged over repeats
        assert other.baseline is sc.point and other.difference is not None
        mean_other = [sum(h[i] for h in other_hits) / 3 for i in range(problems)]
        mean_sc = [sum(h[i] for h in sc_hits) / 3 for i in range(problems)]
        expected = sum(a - b for a, b in zip(mean_other, mean_sc, strict=True)) / problems
        assert other.difference.mean == pytest.approx(expected) and other.difference.low > 0
        assert other.difference.n == problems
        # a confidence that is no probability is left out of calibration, with a note
        assert other.ece is None and any("outside [0, 1]" in note for note in data.notes)
        assert other.on_frontier and not sc.on_frontier  # cheaper and more accurate

        page = render(data, [], "groups")
        assert "3 repeats (t)" in page and "group:sc-replay" in page and other_ids[0] in page
        assert estimate_text(sc.point.accuracy) in _row(page, "group:sc-replay")


def test_a_group_of_one_reports_like_a_single_run(tmp_path: Path) -> None:
    with Store(tmp_path / "one.db") as store:
        (run_id,) = _fake_group(store, "solo", "self-consistency", [[True, False, True, True]], [40])
        (row,) = collect(store, store.runs()).rows
        assert row.point.interval == "problems" and row.point.group == "solo" and row.point.key == run_id
        assert row.point.accuracy == summarize(store.results(run_id)).accuracy


def test_a_group_name_over_different_settings_splits_and_is_escaped(tmp_path: Path) -> None:
    with Store(tmp_path / "mixed.db") as store:
        _fake_group(store, HOSTILE, "self-consistency", [[True, False]] * 2, [40, 40])
        _fake_group(store, HOSTILE, "cot", [[True, True]], [10], prefix="other")  # same group, another strategy
        data = collect(store, store.runs())
        assert sorted(row.point.strategy for row in data.rows) == ["cot", "self-consistency"]
        assert len({row.point.key for row in data.rows}) == 2
        assert sum("different settings" in note for note in data.notes) == 1
        page = render(data, [], "mixed")
        assert HOSTILE not in page and "&lt;script&gt;" in page


def test_a_run_whose_problems_all_failed_is_left_out_with_a_note(tmp_path: Path) -> None:
    from ponder.report.data import collect
    from ponder.store import ProblemRecord, Store

    with Store(tmp_path / "s.db") as store:
        store.ensure_run("ok", task="t", strategy="self-consistency", model="m", config={"params": {"n": 2}})
        store.ensure_run("bad", task="t", strategy="cot", model="m", config={"params": {}})
        store.save_problem("ok", ProblemRecord("p", 0, "1", "1", True, 1.0, {}, {}, 1, 5, 1, 2, 0, 0.1), [])
        store.save_problem("bad", ProblemRecord("p", 0, "1", None, None, None, {}, {}, 0, 0, 1, 0, 0, 0.1, "boom"), [])
        data = collect(store, store.runs())
    assert [p.key for p in data.points] == ["ok"]
    assert any("bad" in note and "error" in note for note in data.notes)


def test_a_search_steered_by_the_exact_checker_is_marked(tmp_path: Path) -> None:
    # tot on game24 verifies every step with the task's own checker: its accuracy is an upper bound, not a peer
    # of unverified strategies, and the report must say so wherever it is shown
    from ponder.report.data import EXACT_REWARD_MARK, collect
    from ponder.store import ProblemRecord, Store

    with Store(tmp_path / "s.db") as store:
        store.ensure_run("tot", task="game24", strategy="tot", model="m", config={"params": {}})
        store.ensure_run("sc", task="game24", strategy="self-consistency", model="m", config={"params": {"n": 2}})
        store.save_problem("tot", ProblemRecord("p", 0, "1", "1", True, 1.0, {}, {"exact_reward": True}, 1, 5, 1,
                                                2, 0, 0.1), [])
        store.save_problem("sc", ProblemRecord("p", 0, "1", "1", True, 1.0, {}, {}, 1, 5, 1, 2, 0, 0.1), [])
        data = collect(store, store.runs())
    labels = {p.key: p.label for p in data.points}
    assert labels["tot"].endswith(EXACT_REWARD_MARK) and not labels["sc"].endswith(EXACT_REWARD_MARK)
    assert any("exact checker" in note and "upper bound" in note for note in data.notes)
