"""The report's search-tree section: the trees that step-level searches stored in ``Result.info["tree"]``.

Per run whose results carry trees, the first ``max_problems`` problems are shown, each as an expandable
``<details>`` element (no script needed): every node is one step with its score, path value, visits and answer;
the path the search returned is highlighted and open, pruned steps are struck through. A tree is cut at
``max_nodes`` nodes (the returned path first, then children by value) and each step at ``max_chars`` characters,
with a note saying what was left out. All model text is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ponder.search.tree import Node, SearchTree
from ponder.store import RunRow, Store

MAX_PROBLEMS = 5
MAX_NODES = 150
MAX_CHARS = 400

STYLE = """
.trees details { margin: .1rem 0 .1rem 1.1rem; }
.trees > section > details { margin-left: 0; border-top: 1px solid #e3e3e3; padding: .3rem 0; }
.trees summary { cursor: pointer; }
.node { font-size: .85rem; }
.node .step { white-space: pre-wrap; }
.node.leaf { margin: .1rem 0 .1rem 2.2rem; }
.node.selected > summary .step, .node.leaf.selected .step { background: #fff3bf; font-weight: 600; }
.node.pruned > summary .step, .node.leaf.pruned .step { text-decoration: line-through; color: #888; }
.badge { color: #555; font-size: .75rem; margin-left: .4rem; font-variant-numeric: tabular-nums; }
.badge.answer { color: #0b57d0; } .badge.right { color: #0a7d32; } .badge.wrong { color: #b3261e; }
.cut { color: #888; font-size: .8rem; font-style: italic; margin-left: 2.2rem; }
"""


@dataclass
class ProblemTree:
    problem_id: str
    answer: str | None
    gold: str | None
    correct: bool | None
    tree: SearchTree


@dataclass
class RunTrees:
    run: RunRow
    problems: list[ProblemTree]
    total: int  # problems of the run that carry a tree


def collect_trees(store: Store, runs: Sequence[RunRow], notes: list[str],
                  max_problems: int = MAX_PROBLEMS) -> list[RunTrees]:
    """The stored trees of the first ``max_problems`` problems of each run that has any."""
    out = []
    for run in runs:
        records = [r for r in store.results(run.id) if isinstance(r.info.get("tree"), dict)]
        problems = []
        for record in records[:max_problems]:
            try:
                tree = SearchTree.from_json(record.info["tree"])
            except (KeyError, TypeError, IndexError, ValueError) as exc:
                notes.append(f"the search tree of problem {record.problem_id} in run {run.id} cannot be read "
                             f"({type(exc).__name__}); left out")
                continue
            problems.append(ProblemTree(record.problem_id, record.answer, record.gold, record.correct, tree))
        if problems:
            out.append(RunTrees(run, problems, len(records)))
    return out


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _badges(node: Node, gold_hint: str) -> str:
    parts = []
    if node.score is not None:
        parts.append(f'<span class="badge" title="the scorer\'s value for this step">score {node.score:.3f}</span>')
    if node.value is not None and node.value != node.score:
        parts.append(f'<span class="badge" title="what the search ranked by">value {node.value:.3f}</span>')
    if node.visits:
        parts.append(f'<span class="badge">visits {node.visits}</span>')
    if node.tokens:
        parts.append(f'<span class="badge">{node.tokens} tok</span>')
    if node.terminal:
        reason = node.meta.get("reason")
        parts.append(f'<span class="badge">end{f" ({_e(reason)})" if reason else ""}</span>')
    if node.answer is not None and (node.terminal or node.selected):
        css = "answer" + (f" {gold_hint}" if node.selected and gold_hint else "")
        parts.append(f'<span class="badge {css}">→ {_e(node.answer)}</span>')
    if node.pruned:
        parts.append(f'<span class="badge">{"duplicate" if "duplicate_of" in node.meta else "pruned"}</span>')
    if "subtree" in node.meta:
        parts.append(f'<span class="badge">subtree {_e(node.meta["subtree"])}</span>')
    return "".join(parts)


def _step_text(node: Node, max_chars: int) -> str:
    text = node.step if node.step.strip() else "(end of solution)"
    if len(text) > max_chars:
        return f'{_e(text[:max_chars])}<span class="cut"> … {len(text) - max_chars} more characters</span>'
    return _e(text)


class _Renderer:
    def __init__(self, tree: SearchTree, gold_hint: str, max_nodes: int, max_chars: int) -> None:
        self.tree = tree
        self.gold_hint = gold_hint
        self.left = max_nodes
        self.max_chars = max_chars
        self.hidden = 0

    def node(self, node: Node) -> str:
        self.left -= 1
        classes = " ".join(c for c, on in (("selected", node.selected), ("pruned", node.pruned)) if on)
        line = f'<span class="step">{_step_text(node, self.max_chars)}</span>{_badges(node, self.gold_hint)}'
        if not node.children:
            return f'<div class="node leaf {classes}" data-node="{node.id}">{line}</div>'
        inner = self.children(node)
        opened = " open" if node.selected else ""
        return (f'<details class="node {classes}" data-node="{node.id}"{opened}><summary>{line}</summary>'
                f"{inner}</details>")

    def children(self, node: Node) -> str:
        # the returned path first, then the better-valued steps: what is cut is the least interesting
        kids = sorted((self.tree.nodes[i] for i in node.children),
                      key=lambda n: (not n.selected, -(n.value if n.value is not None else -1.0), n.id))
        parts = []
        for position, child in enumerate(kids):
            if self.left <= 0:
                missing = sum(self._size(k) for k in kids[position:])
                self.hidden += missing
                parts.append(f'<div class="cut">… {missing} more nodes not shown</div>')
                break
            parts.append(self.node(child))
        return "".join(parts)

    def _size(self, node: Node) -> int:
        return 1 + sum(self._size(self.tree.nodes[i]) for i in node.children)


def render_tree(tree: SearchTree, *, gold_hint: str = "", max_nodes: int = MAX_NODES,
                max_chars: int = MAX_CHARS) -> str:
    """One tree as nested ``<details>``: the root's children and below (the root is the question)."""
    renderer = _Renderer(tree, gold_hint, max_nodes, max_chars)
    body = renderer.children(tree.root)
    if renderer.hidden:
        body += f'<p class="cut">{renderer.hidden} of {len(tree.nodes) - 1} nodes not shown (limit {max_nodes}).</p>'
    return body


def _problem(p: ProblemTree, max_nodes: int, max_chars: int) -> str:
    verdict = {True: ("right", "✓"), False: ("wrong", "✗"), None: ("", "")}[p.correct]
    nodes = len(p.tree.nodes) - 1
    finished = sum(n.terminal for n in p.tree.nodes)
    summary = (f"<code>{_e(p.problem_id)}</code> · answer <b>{_e(p.answer if p.answer is not None else '(none)')}"
               f'</b> <span class="badge {verdict[0]}">{verdict[1]}</span> · gold {_e(p.gold)} · {nodes} nodes, '
               f"{finished} finished")
    question = _e(p.tree.root.step[:max_chars])
    return (f'<details class="problem" data-problem="{_e(p.problem_id)}"><summary>{summary}</summary>'
            f'<p class="note">{question}</p>'
            f"{render_tree(p.tree, gold_hint=verdict[0], max_nodes=max_nodes, max_chars=max_chars)}</details>")


def render_trees(sections: Sequence[RunTrees], *, max_nodes: int = MAX_NODES, max_chars: int = MAX_CHARS) -> str:
    """The whole section, or "" when no run stored a tree."""
    if not sections:
        return ""
    parts = ['<div class="trees">', "<h2>Search trees</h2>",
             '<p class="legend">Each node is one reasoning step with the scorer\'s score, the value the search '
             "ranked it by, its visits and its cost; the highlighted path is the one the search returned, struck-"
             "through steps were pruned. Open a problem, then any step, to see what was tried after it.</p>"]
    for section in sections:
        run = section.run
        shown = len(section.problems)
        more = f" (first {shown} of {section.total} problems)" if section.total > shown else ""
        parts.append(f'<section data-run="{_e(run.id)}"><h3><code>{_e(run.id)}</code> · {_e(run.strategy)} · '
                     f"{_e(run.task)}{_e(more)}</h3>")
        parts += [_problem(p, max_nodes, max_chars) for p in section.problems]
        parts.append("</section>")
    parts.append("</div>")
    return "\n".join(parts)
