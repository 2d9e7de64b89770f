"""Build adapters from a providers file: the one place that turns a provider name into an object."""

from __future__ import annotations

from typing import cast

from .config import Providers
from .registry import load_adapter
from .storage import ObjectStore

__all__ = ["open_store"]


def open_store(providers: Providers, name: str) -> ObjectStore:
    """The storage adapter of provider ``name`` (credentials are read from the environment now)."""
    spec = providers.spec(name, "storage")
    adapter = load_adapter("storage", spec.type)
    return cast(ObjectStore, adapter.from_spec(spec))
