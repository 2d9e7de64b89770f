"""Build adapters from a providers file: the one place that turns a provider name into an object."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from .config import Providers
from .registry import load_adapter

if TYPE_CHECKING:  # imported for annotations only: a storage command need not load the DNS library
    from .compute import Compute
    from .dns import Dns
    from .feed import ChangeFeed
    from .storage import ObjectStore

__all__ = ["open_account", "open_compute", "open_dns", "open_feed", "open_store", "same_store"]


def same_store(providers: Providers, first: str, second: str) -> bool:
    """True when two provider names reach the same store with the same credentials and options
    (one client serves both, and copies between them can stay on the server)."""
    if first == second:
        return True
    a, b = providers.spec(first, "storage"), providers.spec(second, "storage")
    return (a.type, a.endpoint, a.region, a.credentials_ref, a.options) == (
        b.type,
        b.endpoint,
        b.region,
        b.credentials_ref,
        b.options,
    ) and a.endpoint is not None


def open_store(providers: Providers, name: str, *, option_overrides: Mapping[str, Any] | None = None) -> ObjectStore:
    """The storage adapter of provider ``name`` (credentials are read from the environment now).
    ``option_overrides`` replace single adapter options (validated like the providers file's)."""
    spec = providers.spec(name, "storage")
    if option_overrides:
        options = type(spec.options).model_validate({**spec.options.model_dump(), **option_overrides})
        spec = dataclasses.replace(spec, options=options)
    adapter = load_adapter("storage", spec.type)
    return cast("ObjectStore", adapter.from_spec(spec))


def open_compute(providers: Providers, name: str) -> Compute:
    """The compute adapter of provider ``name``."""
    spec = providers.spec(name, "compute")
    return cast("Compute", load_adapter("compute", spec.type).from_spec(spec))


def open_dns(providers: Providers, name: str) -> Dns:
    """The DNS adapter of provider ``name``."""
    spec = providers.spec(name, "dns")
    return cast("Dns", load_adapter("dns", spec.type).from_spec(spec))


def open_feed(providers: Providers, name: str) -> ChangeFeed | None:
    """The change feed of provider ``name``'s storage, or None when it declares none."""
    if "feed" not in providers.services(name):
        return None
    spec = providers.spec(name, "feed")
    return cast("ChangeFeed", load_adapter("feed", spec.type).from_spec(spec))


def open_account(providers: Providers, name: str) -> Any:
    """The account inspector of provider ``name`` (see failover.inventory)."""
    spec = providers.spec(name, "account")
    return load_adapter("account", spec.type).from_spec(spec)
