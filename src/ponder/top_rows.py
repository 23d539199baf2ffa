"""Top-k alternatives held as arrays: ``PackedTop`` reads like the rows of ``(token, logprob)`` pairs a backend
returns, at about a ninth of the memory of Python tuples (see ``ponder.bank.packed`` for why it matters)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

__all__ = ["PackedTop", "Vocabulary", "pack_rows"]


class Vocabulary:
    """Token strings of one bank, each stored once; id -1 is the unknown token ``""``."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, token: str) -> int:
        found = self._ids.get(token)
        if found is None:
            found = self._ids[token] = len(self.strings)
            self.strings.append(token)
        return found

    def string(self, token_id: int) -> str:
        return self.strings[token_id] if token_id >= 0 else ""


Row = list[tuple[str, float]]


class PackedTop(Sequence[Row]):
    """One trace's top-k alternatives per token, read as rows of ``(token, logprob)`` pairs.

    Read-only. Indexing gives a fresh list of tuples; slicing gives a ``PackedTop`` view. It compares equal to
    the list of rows it stands for.
    """

    __slots__ = ("ids", "values", "vocab", "widths")

    def __init__(self, values: np.ndarray, ids: np.ndarray, vocab: Vocabulary,
                 widths: np.ndarray | None = None) -> None:
        self.values = values  # float64, tokens × k
        self.ids = ids  # int32, tokens × k
        self.vocab = vocab
        self.widths = widths  # alternatives in each row when some rows hold fewer than k; None when all hold k

    @property
    def width(self) -> int:
        """Alternatives per token (k)."""
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> PackedTop: ...

    def __getitem__(self, index: int | slice) -> Row | PackedTop:
        if isinstance(index, slice):
            widths = self.widths[index] if self.widths is not None else None
            return PackedTop(self.values[index], self.ids[index], self.vocab, widths)
        strings = self.vocab.strings
        width = self.width if self.widths is None else int(self.widths[index])
        ids, values = self.ids[index, :width].tolist(), self.values[index, :width].tolist()
        return [(strings[i] if i >= 0 else "", v) for i, v in zip(ids, values, strict=True)]

    def __iter__(self) -> Iterator[Row]:
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedTop):
            other = other.tolist()
        if not isinstance(other, list):
            return NotImplemented
        return self.tolist() == [[tuple(pair) for pair in row] for row in other]

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like the list it stands for

    def __repr__(self) -> str:
        return f"PackedTop({len(self)} tokens × {self.width})"

    def tolist(self) -> list[Row]:
        return list(self)

    def head(self, rows: int, k: int) -> PackedTop:
        """The first ``rows`` positions with at most ``k`` alternatives each: a view, nothing is copied."""
        widths = np.minimum(self.widths[:rows], k) if self.widths is not None else None
        return PackedTop(self.values[:rows, :k], self.ids[:rows, :k], self.vocab, widths)

    def min_width(self) -> int:
        """The fewest alternatives any position holds (``width`` when all hold k; 0 when empty)."""
        if not len(self):
            return 0
        return int(self.widths.min()) if self.widths is not None else self.width

    def logprob_matrix(self) -> np.ndarray | None:
        """The values as a ``tokens × k`` array when every position holds k alternatives, else None."""
        return self.values if self.widths is None else None


def pack_rows(rows: Sequence[Sequence[tuple[str, float]]], vocab: Vocabulary) -> PackedTop:
    """Rows of ``(token, logprob)`` as a ``PackedTop``, exactly (rows may differ in length)."""
    if isinstance(rows, PackedTop):
        return rows
    lengths = [len(row) for row in rows]
    width = max(lengths, default=0)
    values = np.full((len(rows), width), -np.inf)
    ids = np.full((len(rows), width), -1, dtype=np.int32)
    for r, row in enumerate(rows):
        for c, (token, logprob) in enumerate(row):
            values[r, c] = logprob
            ids[r, c] = vocab.id(token)
    ragged = any(n != width for n in lengths)
    return PackedTop(values, ids, vocab, np.array(lengths, dtype=np.int32) if ragged else None)
