"""Memory a loaded bank holds per token: ponder's arrays (PackedTop) against lists of (token, logprob) tuples.

Usage: python bench/bank_memory.py BANK.bank.jsonl.gz
Measured with tracemalloc (Python allocations: what the bank keeps alive after loading).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import tracemalloc
from pathlib import Path

from ponder.bank import Bank


def held_by_tuples(path: Path) -> tuple[int, int]:
    """Bytes held and tokens when every trace keeps its rows as lists of tuples (as before ponder packed them)."""
    kept: list[object] = []
    tokens = 0
    start, _ = tracemalloc.get_traced_memory()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        fh.readline()
        for line in fh:
            record = json.loads(line)
            for trace in record["traces"]:
                kept.append([[(token, lp) for token, lp in row] for row in trace["top_logprobs"]])
                kept.append(list(trace["tokens"]))
                kept.append([float(x) for x in trace["logprobs"]])
                tokens += len(trace["tokens"])
            del record
    held, _ = tracemalloc.get_traced_memory()
    return held - start, tokens


def held_by_bank(path: Path) -> int:
    start, _ = tracemalloc.get_traced_memory()
    bank = Bank.load(path)
    held, _ = tracemalloc.get_traced_memory()
    assert bank.problems
    return held - start


def main(path: Path) -> None:
    tracemalloc.start()
    tuples, tokens = held_by_tuples(path)
    gc.collect()
    arrays = held_by_bank(path)
    print(f"{path.name}: {tokens:,} tokens")
    print(f"rows as tuples: {tuples / 2**20:8.1f} MB  {tuples / tokens:6.0f} bytes/token")
    print(f"PackedTop:      {arrays / 2**20:8.1f} MB  {arrays / tokens:6.0f} bytes/token")
    print(f"tuples / PackedTop: {tuples / arrays:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bank", type=Path)
    main(parser.parse_args().bank)
