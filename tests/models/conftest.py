"""Fixtures for the named-model tests: a synthetic model in the catalog and a private cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.models import assembly, catalog
from tests.models.fake_parts import FakeModel, make_fake_model


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PONDER_CACHE", str(folder))
    return folder


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> FakeModel:
    """A three-part model registered in the catalog, streamed in 1 KiB chunks so every part takes several."""
    monkeypatch.setattr(assembly, "CHUNK_BYTES", 1024)
    model = make_fake_model(tmp_path, monkeypatch)
    monkeypatch.setitem(catalog.CATALOG, model.model.name, model.model)
    return model
