"""Assembling a named model from its part packages: verified, atomic, once."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from ponder.errors import ModelError
from ponder.models import assembly
from ponder.models.assembly import assemble, cache_dir, cached, ensure_assembled, find_part, status
from ponder.models.catalog import CATALOG, NamedModel, Part
from tests.models.fake_parts import FakeModel


def leftovers(folder: Path) -> list[str]:
    """Everything in the cache folder: after a failure it must hold no model file and no temp file."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_assembles_the_parts_in_order(fake: FakeModel, cache: Path) -> None:
    path = assemble(fake.model)
    assert path == cache / "tiny-model.gguf"
    assert path.read_bytes() == fake.content
    assert leftovers(cache) == ["tiny-model.gguf", "tiny-model.gguf.verified"]
    marker = json.loads((cache / "tiny-model.gguf.verified").read_text())
    assert marker["sha256"] == fake.model.sha256 and marker["size"] == fake.model.size


def test_parts_are_found_without_importing_their_packages(fake: FakeModel) -> None:
    # Each fake package's __init__ raises: finding the file must not run third-party code.
    assert find_part(fake.model.parts[0]) == fake.part_file(1)


def test_progress_reports_bytes_written(fake: FakeModel) -> None:
    seen: list[int] = []
    assemble(fake.model, on_progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == fake.model.size and len(seen) > len(fake.model.parts)


def test_a_part_checksum_mismatch_names_the_part_and_keeps_nothing(fake: FakeModel, cache: Path) -> None:
    bad = fake.with_part_sha(2, "0" * 64)
    with pytest.raises(ModelError) as info:
        assemble(bad)
    message = str(info.value)
    assert bad.parts[1].package in message and "0" * 64 in message
    assert f"ponder models pull {bad.name} --reinstall" in message
    assert leftovers(cache) == []


def test_a_part_of_the_wrong_size_is_refused_before_writing(fake: FakeModel, cache: Path) -> None:
    fake.part_file(3).write_bytes(b"short")
    with pytest.raises(ModelError, match=r"part .*-3 of tiny-model .* has 5 bytes, expected 1,200"):
        assemble(fake.model)
    assert leftovers(cache) == []


def test_a_whole_file_checksum_mismatch_keeps_nothing(fake: FakeModel, cache: Path) -> None:
    with pytest.raises(ModelError, match=r"assembled tiny-model has sha256 .* nothing was kept"):
        assemble(replace(fake.model, sha256="f" * 64))
    assert leftovers(cache) == []


def test_a_missing_part_says_how_to_install_and_keeps_nothing(fake: FakeModel, cache: Path) -> None:
    fake.remove_part(2)
    notes: list[str] = []
    with pytest.raises(ModelError) as info:
        ensure_assembled(fake.model, notify=notes.append)
    assert notes == []  # no "assembling" line for an assembly that cannot start
    message = str(info.value)
    assert "tiny-model is not installed" in message and fake.model.parts[1].package in message
    assert "ponder models pull tiny-model" in message and "ponder[tiny]" in message
    assert leftovers(cache) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_an_interruption_after_the_first_chunk_keeps_nothing(fake: FakeModel, cache: Path,
                                                              error: type[BaseException]) -> None:
    def stop(written: int) -> None:
        raise error("stopped midway")

    with pytest.raises(error):
        assemble(fake.model, on_progress=stop)
    assert leftovers(cache) == []


def test_an_interrupted_reassembly_leaves_the_old_file_whole(fake: FakeModel, cache: Path) -> None:
    cache.mkdir()
    old = cache / "tiny-model.gguf"
    old.write_bytes(b"x" * fake.model.size)  # the right size, the wrong bytes: to be replaced

    def stop(written: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        assemble(fake.model, on_progress=stop)
    assert old.read_bytes() == b"x" * fake.model.size
    assert leftovers(cache) == ["tiny-model.gguf"]


def test_a_killed_assemblys_temp_file_is_removed_once_stale(fake: FakeModel, cache: Path) -> None:
    cache.mkdir()
    stale, fresh = cache / ".tiny-model.gguf.abc.partial", cache / ".tiny-model.gguf.def.partial"
    for leftover in (stale, fresh):
        leftover.write_bytes(b"half")
    long_ago = stale.stat().st_mtime - 3600
    os.utime(stale, (long_ago, long_ago))
    assemble(fake.model)
    assert leftovers(cache) == [fresh.name, "tiny-model.gguf", "tiny-model.gguf.verified"]  # fresh: maybe in use


def test_assembles_once_then_reuses_without_rehashing(fake: FakeModel, cache: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    notes: list[str] = []
    first = ensure_assembled(fake.model, notify=notes.append)
    assert len(notes) == 1 and "assembling tiny-model" in notes[0] and "(once)" in notes[0]

    def no_hashing(path: Path) -> str:
        raise AssertionError("a verified cached file must not be hashed again")

    monkeypatch.setattr(assembly, "file_sha256", no_hashing)
    monkeypatch.setattr(assembly, "assemble", lambda *a, **k: pytest.fail("must not reassemble"))
    assert ensure_assembled(fake.model, notify=notes.append) == first
    assert len(notes) == 1


def test_a_changed_cached_file_is_rehashed_and_reassembled(fake: FakeModel, cache: Path) -> None:
    path = ensure_assembled(fake.model)
    verified_at = path.stat().st_mtime_ns
    path.write_bytes(b"y" * fake.model.size)  # same size, new mtime: the marker no longer vouches for it
    os.utime(path, ns=(verified_at + 10**9, verified_at + 10**9))  # a later mtime even on a coarse clock
    assert cached(fake.model) is None
    notes: list[str] = []
    assert ensure_assembled(fake.model, notify=notes.append) == path
    assert path.read_bytes() == fake.content and len(notes) == 1


def test_a_good_file_without_marker_is_hashed_once(fake: FakeModel, cache: Path) -> None:
    cache.mkdir()
    (cache / "tiny-model.gguf").write_bytes(fake.content)
    assert status(fake.model).assembled and not status(fake.model).verified
    assert cached(fake.model) == cache / "tiny-model.gguf"
    assert status(fake.model).verified


def test_status_counts_parts_without_hashing(fake: FakeModel, cache: Path) -> None:
    fake.remove_part(1)
    here = status(fake.model)
    assert (here.parts_found, here.parts_total, here.installed, here.assembled) == (2, 3, False, False)
    assert here.path == cache / "tiny-model.gguf"


def test_cache_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PONDER_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PONDER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ponder" / "models"


def test_the_catalog_pins_every_part() -> None:
    assert set(CATALOG) == {"qwen-coder-0.5b", "qwen-coder-1.5b"}
    for model in CATALOG.values():
        assert len(model.sha256) == 64 and model.filename.endswith(".gguf")
        assert sum(p.size for p in model.parts) == model.size
        for k, part in enumerate(model.parts, start=1):
            assert part.requirement.endswith(f"-part{k}=={part.version}")
            assert part.file == f"data/part{k:02d}.bin" and part.module == part.package.replace("-", "_")
            assert len(part.sha256) == 64 and int(part.sha256, 16) >= 0
    assert CATALOG["qwen-coder-0.5b"].size == 491_400_064 and len(CATALOG["qwen-coder-0.5b"].parts) == 6
    assert len(CATALOG["qwen-coder-1.5b"].parts) == 22


def test_a_catalog_entry_whose_sizes_do_not_add_up_is_rejected() -> None:
    part = Part("p1", "1", "p1", "data/part01.bin", 10, "0" * 64)
    with pytest.raises(ValueError, match="do not add up"):
        NamedModel("m", "", "", "", "m.gguf", 11, "0" * 64, (part,), "m")


def test_no_room_is_a_clear_error(fake: FakeModel, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assembly.shutil, "disk_usage", lambda path: SimpleNamespace(free=10))
    with pytest.raises(ModelError, match="not enough space"):
        assemble(fake.model)
    assert leftovers(cache) == []


def test_the_pip_extras_match_the_catalog() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for model in CATALOG.values():
        assert extras[model.extra] == model.requirements, model.name
