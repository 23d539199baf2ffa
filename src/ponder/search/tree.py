"""A search tree that strategies build as they explore, stored with each result and drawn in the report.

Beam search, DVTS, best-first, MCTS and Tree of Thoughts all record what they tried here: every node is a
partial solution (one more step), with the scores and visit counts the search used to rank it. The tree goes
into ``Result.info["tree"]`` as plain JSON (``SearchTree.to_json``), so ``ponder report`` can render it and a
stored run keeps the whole search, not just its answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    """One step of a partial solution; the solution so far is the path from the root to here."""

    id: int
    parent: int | None
    step: str
    depth: int
    score: float | None = None  # the scorer's value for this step (or for the path, as the search defines)
    value: float | None = None  # what the search ranks by (aggregated score, mean rollout value, ...)
    visits: int = 0
    answer: str | None = None
    terminal: bool = False
    selected: bool = False  # on the path the search returned
    pruned: bool = False
    tokens: int = 0  # completion tokens spent producing this step
    children: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


class SearchTree:
    """Nodes by id; node 0 is the root (the question, no step)."""

    def __init__(self, label: str = "") -> None:
        self.nodes: list[Node] = [Node(0, None, label, 0)]

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def add(self, parent: Node, step: str, **fields: Any) -> Node:
        node = Node(len(self.nodes), parent.id, step, parent.depth + 1, **fields)
        self.nodes.append(node)
        parent.children.append(node.id)
        return node

    def parent(self, node: Node) -> Node | None:
        return None if node.parent is None else self.nodes[node.parent]

    def path(self, node: Node) -> list[Node]:
        """The nodes from the root's first child down to ``node`` (the root itself carries no step)."""
        out: list[Node] = []
        current: Node | None = node
        while current is not None and current.parent is not None:
            out.append(current)
            current = self.parent(current)
        return out[::-1]

    def steps(self, node: Node) -> list[str]:
        return [n.step for n in self.path(node)]

    def select(self, node: Node) -> None:
        """Mark the path to ``node`` as the one the search returned."""
        for n in self.path(node):
            n.selected = True

    def leaves(self) -> list[Node]:
        return [n for n in self.nodes if not n.children and n.parent is not None]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: a list of nodes with their parents (children are implied)."""
        keys = ("score", "value", "answer", "meta")
        nodes = []
        for n in self.nodes:
            row: dict[str, Any] = {"id": n.id, "parent": n.parent, "step": n.step, "depth": n.depth}
            row.update({k: getattr(n, k) for k in keys if getattr(n, k) not in (None, {})})
            row.update({k: True for k in ("terminal", "selected", "pruned") if getattr(n, k)})
            row.update({k: getattr(n, k) for k in ("visits", "tokens") if getattr(n, k)})
            nodes.append(row)
        return {"nodes": nodes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchTree:
        tree = cls.__new__(cls)
        tree.nodes = []
        for row in data["nodes"]:
            node = Node(
                row["id"],
                row["parent"],
                row.get("step", ""),
                row.get("depth", 0),
                score=row.get("score"),
                value=row.get("value"),
                visits=row.get("visits", 0),
                answer=row.get("answer"),
                terminal=row.get("terminal", False),
                selected=row.get("selected", False),
                pruned=row.get("pruned", False),
                tokens=row.get("tokens", 0),
                meta=row.get("meta", {}),
            )
            tree.nodes.append(node)
        for node in tree.nodes:
            if node.parent is not None:
                tree.nodes[node.parent].children.append(node.id)
        return tree
