"""Top-k logprobs held compactly: in memory as arrays, on disk as a quantized, LZMA-compressed column file.

A GSM8K bank of 100 problems × 32 traces holds about a million tokens with 20 alternatives each. As Python
tuples that is about 2.9 KB per token (2.9 GB, ``bench/bank_memory.py``); as a JSON bank about 240 bytes per
token on disk. Two remedies:

* ``ponder.top_rows.PackedTop``: one trace's alternatives as a ``tokens × k`` float64 array plus int32 ids
  into a shared vocabulary (~340 bytes per token in memory). It reads like the list of ``(token, logprob)``
  rows a backend returns, and every loaded bank uses it.
* The **packed bank format** (``.bank.zip``, ``ponder bank pack``): what confidence measures read, at about a
  sixteenth of a gzipped JSON bank's size (15 bytes per token on Qwen GSM8K traces), small enough to ship.
  The alternatives' logprobs are quantized to ``1/QUANTUM`` nats (at most 1/64 nat off; DeepConf's token and
  group confidences average 20 of them over many tokens, so their error is far smaller) and stored as
  differences down each sorted top-k list. The sampled token's logprob is kept to ``1/CHOSEN_QUANTUM`` nats:
  perplexity-based measures (RPC, neg_perplexity) sum hundreds of mostly near-zero logprobs, and rounding those
  to 1/16 nat flipped an RPC vote on that bank. The alternatives' token strings are not kept: a packed bank names
  the sampled token at its rank among the alternatives and leaves the others as ``""``. Texts, tokens, answers
  and every other trace field are exact. On 16 problems of the Qwen GSM8K bank, 7 confidence strategies and 3
  serving orders, 333 of 336 replays gave the same answer and tokens from both forms, and the other 3 the same
  answer with online DeepConf stopping a trace one token earlier or later.

The zip holds ``header.json`` (the bank header, with ``"packing"``), ``problems.jsonl`` (one problem per line,
traces without their logprob arrays, each with ``n_tokens`` and, when its tokens do not spell its text, an
explicit ``tokens`` list) and four little-endian columns over all tokens in trace order: ``top.u16``
(k columns of quantized differences), ``chosen.u32`` (the sampled token's logprob, finely quantized), ``rank.u8``
(its rank among the alternatives, 255 when absent) and ``chars.u8`` (characters per token; unused for a trace
that lists its tokens).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ponder.top_rows import PackedTop, Vocabulary

__all__ = ["CHOSEN_QUANTUM", "QUANTUM", "is_packed", "read_packed", "write_packed"]

QUANTUM = 32  # alternatives' logprobs are stored as round(-logprob * QUANTUM)
CHOSEN_QUANTUM = 16384  # the sampled token's logprob, finer: perplexity-based measures sum hundreds of them
_NEG_INF16 = 0xFFFF  # the code of -inf (and of anything below the range) in top.u16
_NEG_INF32 = 0xFFFFFFFF  # the same in chosen.u32
_NO_RANK = 255  # rank.u8: the sampled token is not among the alternatives
_MEMBERS = ("header.json", "problems.jsonl", "top.u16", "chosen.u32", "rank.u8", "chars.u8")
_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member dates: the same bank always gives the same bytes


def _quantize(logprobs: np.ndarray, quantum: int, top: int) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        codes = np.rint(-logprobs * quantum)
    codes = np.where(np.isfinite(codes), codes, top)
    return np.clip(codes, 0, top).astype(np.int64)


def _dequantize(codes: np.ndarray, quantum: int, top: int) -> np.ndarray:
    values = -codes.astype(np.float64) / quantum
    values[codes >= top] = -np.inf
    return values


def write_packed(path: Path, header: dict[str, Any], problems: list[dict[str, Any]],
                 traces: list[tuple[list[str], list[float], Sequence[Sequence[tuple[str, float]]]]], k: int) -> None:
    """Write a packed bank. ``problems`` are JSON problem records whose traces lack token arrays; ``traces``
    gives, in the same order, each trace's (tokens, logprobs, top rows)."""
    header = {**header, "packing": {"k": k, "quantum": QUANTUM, "chosen_quantum": CHOSEN_QUANTUM}}
    tops, chosen, ranks, chars = [], [], [], []
    for record, (tokens, logprobs, rows) in zip((t for p in problems for t in p["traces"]), traces, strict=True):
        record["n_tokens"] = len(tokens)
        joined = "".join(tokens) == record.get("reasoning", "") + record.get("text", "")
        if not joined or any(len(t) > 255 for t in tokens):
            record["tokens"] = tokens  # cannot be cut from the text by lengths alone
            chars.append(np.zeros(len(tokens), dtype=np.uint8))
        else:
            chars.append(np.array([len(t) for t in tokens], dtype=np.uint8))
        values = np.full((len(tokens), k), -np.inf)
        rank = np.full(len(tokens), _NO_RANK, dtype=np.uint8)
        for r, row in enumerate(rows):
            ordered = sorted(row, key=lambda pair: -pair[1])[:k]  # the server's order, enforced
            values[r, : len(ordered)] = [lp for _, lp in ordered]
            for j, (token, _) in enumerate(ordered):
                if token == tokens[r]:
                    rank[r] = j
                    break
        codes = _quantize(values, QUANTUM, _NEG_INF16)
        deltas = np.diff(codes, axis=1, prepend=0) if len(tokens) else codes
        tops.append(deltas.astype(np.uint16))
        chosen.append(_quantize(np.asarray(logprobs, dtype=np.float64), CHOSEN_QUANTUM, _NEG_INF32).astype(np.uint32))
        ranks.append(rank)
    top = np.concatenate(tops) if tops else np.zeros((0, k), dtype=np.uint16)
    body = "".join(json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n" for p in problems)
    members = {
        "header.json": json.dumps(header, ensure_ascii=False, indent=1).encode(),
        "problems.jsonl": body.encode(),
        "top.u16": np.ascontiguousarray(top.T).astype("<u2").tobytes(),  # column-major: differences compress best
        "chosen.u32": (np.concatenate(chosen) if chosen else np.zeros(0)).astype("<u4").tobytes(),
        "rank.u8": (np.concatenate(ranks) if ranks else np.zeros(0)).astype(np.uint8).tobytes(),
        "chars.u8": (np.concatenate(chars) if chars else np.zeros(0)).astype(np.uint8).tobytes(),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_LZMA) as zf:
        for name in _MEMBERS:
            zf.writestr(zipfile.ZipInfo(name, date_time=_DATE), members[name], compress_type=zipfile.ZIP_LZMA)


def read_packed(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[list[str], list[float],
                                                                                       PackedTop]]]:
    """The header, the problem records and each trace's (tokens, logprobs, top rows), in file order.

    Raises ``ValueError`` (with what is wrong) on a malformed file; the caller adds the path.
    """
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        missing = [m for m in _MEMBERS if m not in names]
        if missing:
            raise ValueError(f"packed bank lacks {', '.join(missing)}")
        header = json.loads(zf.read("header.json"))
        problems = [json.loads(line) for line in zf.read("problems.jsonl").decode().splitlines() if line.strip()]
        top_raw = np.frombuffer(zf.read("top.u16"), dtype="<u2")
        chosen_raw = np.frombuffer(zf.read("chosen.u32"), dtype="<u4")
        rank = np.frombuffer(zf.read("rank.u8"), dtype=np.uint8)
        chars = np.frombuffer(zf.read("chars.u8"), dtype=np.uint8)
    if not isinstance(header, dict):
        raise ValueError("header.json is not an object")
    packing = header.get("packing") or {}
    k, quantum, fine = int(packing.get("k", 0)), int(packing.get("quantum", 0)), int(packing.get("chosen_quantum", 0))
    if quantum < 1 or fine < 1:
        raise ValueError(f"its header's packing {packing!r} gives no quantum")
    records = [t for p in problems for t in p.get("traces", [])]
    total = sum(int(t.get("n_tokens", 0)) for t in records)
    if len(chosen_raw) != total or len(rank) != total or len(chars) != total or len(top_raw) != total * k:
        raise ValueError(f"its columns hold {len(chosen_raw)} tokens but its traces announce {total}")
    codes = np.cumsum(top_raw.reshape(k, total).T.astype(np.int64), axis=1) if k else np.zeros((total, 0), np.int64)
    top_values = _dequantize(codes, quantum, _NEG_INF16)
    own_values = _dequantize(chosen_raw.astype(np.int64), fine, _NEG_INF32)
    # The sampled token's alternative carries its exact(er) logprob, as the server sent the same number twice.
    ranked = np.nonzero(rank < min(k, _NO_RANK))[0]
    top_values[ranked, rank[ranked]] = own_values[ranked]
    vocab = Vocabulary()
    out: list[tuple[list[str], list[float], PackedTop]] = []
    start = 0
    for record in records:
        count = int(record.pop("n_tokens", 0))
        end = start + count
        explicit = record.pop("tokens", None)
        if explicit is not None:
            tokens = [str(t) for t in explicit]
        else:
            whole = record.get("reasoning", "") + record.get("text", "")
            tokens, pos = [], 0
            for width in chars[start:end].tolist():
                tokens.append(whole[pos : pos + width])
                pos += width
            if pos != len(whole):
                raise ValueError("a trace's token lengths do not spell its text")
        ids = np.full((count, k), -1, dtype=np.int32)
        for r, j in enumerate(rank[start:end].tolist()):
            if j < k:
                ids[r, j] = vocab.id(tokens[r])  # the sampled token is named; the others' names are not kept
        # Rows the server gave fewer than k alternatives were padded with -inf: cut the padding off again.
        values = top_values[start:end]
        finite = np.isfinite(values)
        widths = finite.sum(axis=1).astype(np.int32) if not finite.all() else None
        out.append((tokens, own_values[start:end].tolist(), PackedTop(values, ids, vocab, widths)))
        start = end
    return header, problems, out


def is_packed(path: Path) -> bool:
    """True when ``path`` starts like a zip file (a packed bank) rather than gzip or JSON."""
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"
