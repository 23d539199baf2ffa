"""The report's search-tree section: stored trees render as nested <details>, escaped and bounded."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ponder.backends import parse_model_spec
from ponder.context import Sampling
from ponder.report import build_report
from ponder.report.trees import collect_trees, render_tree, render_trees
from ponder.runner import EvalConfig, run_eval
from ponder.search import SearchTree
from ponder.store import Store

pytest.importorskip("matplotlib")

HOSTILE = "<script>alert('step')</script>"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path, dict[str, str]]]:
    """A beam-search run (stores trees) and a self-consistency run (does not), on the fake backend."""
    folder = tmp_path_factory.mktemp("trees")

    async def fill(store: Store) -> dict[str, str]:
        ids = {}
        for name, strategy, params in (("beam", "beam", {"n": 2, "expansions": 2, "scorer": "confidence"}),
                                       ("sc", "self-consistency", {"n": 2})):
            config = EvalConfig(task="add1", strategy=strategy, model=parse_model_spec("fake"), params=params,
                                sampling=Sampling(seed=3), limit=7, task_size=20)
            ids[name] = (await run_eval(config, store)).run_id
        return ids

    with Store(folder / "runs.db") as store:
        yield store, folder, asyncio.run(fill(store))


def test_only_runs_with_trees_get_a_section_with_the_first_problems(runs: tuple[Store, Path, dict[str, str]]
                                                                     ) -> None:
    store, folder, ids = runs
    page = build_report(store, [], folder / "report").read_text(encoding="utf-8")
    assert "<h2>Search trees</h2>" in page
    sections = re.findall(r'<section data-run="([^"]+)">', page)
    assert sections == [ids["beam"]]
    assert page.count('<details class="problem"') == 5 and "first 5 of 7 problems" in page
    # each problem shows its answer and a highlighted path down to that answer
    first = page.split('<details class="problem"')[1]
    answer = re.search(r"answer <b>([^<]*)</b>", first)
    assert answer is not None
    assert re.search(r'class="node leaf selected"[^>]*>.*?→ ' + re.escape(answer.group(1)), first)

    only_sc = build_report(store, [ids["sc"]], folder / "sc").read_text(encoding="utf-8")
    assert "Search trees" not in only_sc


def test_collect_trees_keeps_the_first_k_problems(runs: tuple[Store, Path, dict[str, str]]) -> None:
    store, _, ids = runs
    (section,) = collect_trees(store, store.runs(), [], max_problems=2)
    assert section.run.id == ids["beam"] and section.total == 7
    assert [p.problem_id for p in section.problems] == [r.problem_id for r in store.results(ids["beam"])][:2]


def _tree() -> SearchTree:
    """A wide tree with hostile and long model text; the returned path runs through the last child."""
    tree = SearchTree(label=f"question {HOSTILE}")
    firsts = [tree.add(tree.root, f"first step {i} {HOSTILE}", score=i / 40, value=i / 40) for i in range(30)]
    for first in firsts:
        for j in range(8):
            tree.add(first, f"second step {j}", score=0.5, value=0.5, pruned=j > 0)
    chosen = tree.add(firsts[0], "x" * 2000 + " The answer is 7.", score=0.9, value=0.9, terminal=True, answer="7")
    tree.select(chosen)
    return tree


def test_trees_escape_model_text_and_are_bounded() -> None:
    html = render_tree(_tree(), max_nodes=40, max_chars=300)
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;step&#x27;)&lt;/script&gt;" in html
    assert f"{2000 + len(' The answer is 7.') - 300} more characters" in html
    nodes = re.findall(r'data-node="(\d+)"', html)
    assert len(nodes) == 40
    assert re.search(r"\d+ of 271 nodes not shown \(limit 40\)", html)
    # the returned path is shown first even though its first step has the lowest score, and it is open
    assert html.index('data-node="1"') < html.index('data-node="30"')  # node 30 has the best value
    assert re.search(r'<details class="node selected" data-node="1" open>', html)
    assert re.search(r'class="node leaf selected" data-node="271"', html)
    assert 'class="node leaf pruned"' in html


class _Nesting(HTMLParser):
    """Which data-node element each data-node element sits in, as the browser parsed the page."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str | None]] = []
        self.parent: dict[int, int | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = dict(attrs).get("data-node")
        if node is not None:
            enclosing = next((int(n) for _, n in reversed(self.stack) if n is not None), None)
            self.parent[int(node)] = enclosing
        if tag not in ("br", "img", "meta", "link", "input", "hr"):
            self.stack.append((tag, node))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break


def test_the_browser_parses_the_tree_as_the_search_built_it(tmp_path: Path) -> None:
    from tests.report.test_report_browser import CHROMIUM, _run_chromium

    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found")
    from ponder.report.trees import ProblemTree, RunTrees
    from ponder.store import RunRow

    tree = _tree()
    run = RunRow("run-1", 0.0, "add1", "beam", "fake", {})
    page = render_trees([RunTrees(run, [ProblemTree("p0", "7", "7", True, tree)], 1)], max_nodes=60)
    path = tmp_path / "trees.html"
    path.write_text(f"<!DOCTYPE html><html><body>{page}</body></html>", encoding="utf-8")
    dom = _run_chromium(CHROMIUM, tmp_path / "profile", "--dump-dom", path.as_uri())
    nesting = _Nesting()
    nesting.feed(dom)
    assert len(nesting.parent) == 60
    for node_id, enclosing in nesting.parent.items():
        expected = tree.nodes[node_id].parent
        assert enclosing == (None if expected == 0 else expected), f"node {node_id} is misplaced"
    assert "<script>alert" not in dom
