"""File digests, computed once per file version."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path


def file_digest(path: str | Path) -> str:
    """The file's sha256, as 16 hex digits. Cached by path, modification time and size, so naming a large bank
    again (every run identity does) does not re-read it; a rewritten file is read anew."""
    stat = Path(path).stat()
    return _digest(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
