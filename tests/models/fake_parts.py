"""Small synthetic named models: part packages written to a temporary folder put on ``sys.path``."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from ponder.models.catalog import NamedModel, Part

_ids = itertools.count()


class FakeModel:
    """A catalog entry whose parts are real installed (importable) packages with random bytes."""

    def __init__(self, site: Path, sizes: list[int], name: str = "tiny-model") -> None:
        tag = f"{os.getpid()}_{next(_ids)}"
        self.site = site
        self.blobs = [os.urandom(size) for size in sizes]
        parts = []
        for k, blob in enumerate(self.blobs, start=1):
            module = f"ponder_fake_part_{tag}_{k}"
            package = site / module
            (package / "data").mkdir(parents=True)
            # A part package's code must never run: ponder locates the file without importing the package.
            (package / "__init__.py").write_text("raise RuntimeError('part packages must not be imported')\n")
            (package / "data" / f"part{k:02d}.bin").write_bytes(blob)
            parts.append(Part(f"ponder-fake-part-{tag}-{k}", "1.0.0", module, f"data/part{k:02d}.bin", len(blob),
                              hashlib.sha256(blob).hexdigest()))
        self.model = NamedModel(
            name=name, description="a tiny synthetic model", licence="Apache-2.0 (test)", source="tests",
            filename=f"{name}.gguf", size=sum(sizes), sha256=hashlib.sha256(b"".join(self.blobs)).hexdigest(),
            parts=tuple(parts), extra="tiny",
        )
        importlib.invalidate_caches()

    @property
    def content(self) -> bytes:
        return b"".join(self.blobs)

    def part_file(self, k: int) -> Path:
        part = self.model.parts[k - 1]
        return self.site / part.module / part.file

    def remove_part(self, k: int) -> None:
        shutil.rmtree(self.site / self.model.parts[k - 1].module)
        importlib.invalidate_caches()

    def with_part_sha(self, k: int, sha256: str) -> NamedModel:
        parts = list(self.model.parts)
        parts[k - 1] = replace(parts[k - 1], sha256=sha256)
        return replace(self.model, parts=tuple(parts))


def make_fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sizes: list[int] | None = None,
                    name: str = "tiny-model") -> FakeModel:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    monkeypatch.syspath_prepend(str(site))
    return FakeModel(site, sizes or [3000, 2500, 1200], name)
