"""failover: a provider-neutral toolkit to evacuate storage, compute and DNS from one hosting provider
to another, verified and resumable, and to rehearse it in CI.

The public API is importable from here (``from failover import ObjectStore, SyncEngine``); each
name is loaded on first use, so ``import failover`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> the module that defines it
_PUBLIC = {
    # the interfaces
    "ObjectStore": "failover.storage",
    "ObjectReader": "failover.storage",
    "Compute": "failover.compute",
    "Dns": "failover.dns",
    # values passed across them
    "BucketInfo": "failover.types",
    "ByteRange": "failover.types",
    "MetaField": "failover.types",
    "ObjectInfo": "failover.types",
    "ObjectMeta": "failover.types",
    "Instance": "failover.compute",
    "InstanceSpec": "failover.compute",
    "RecordSet": "failover.dns",
    "Capability": "failover.capabilities",
    "StoreCapabilities": "failover.capabilities",
    # errors
    "FailoverError": "failover.errors",
    "ConfigError": "failover.errors",
    "PlaybookError": "failover.errors",
    "ProviderError": "failover.errors",
    "NotFound": "failover.errors",
    "AuthError": "failover.errors",
    "NotSupported": "failover.errors",
    "IntegrityError": "failover.errors",
    "Transient": "failover.errors",
    # configuration and adapters
    "Providers": "failover.config",
    "load_providers": "failover.config",
    "open_store": "failover.connect",
    "open_compute": "failover.connect",
    "open_dns": "failover.connect",
    # the engines
    "SyncEngine": "failover.sync",
    "SyncOptions": "failover.sync",
    "SyncReport": "failover.sync",
    "VerifyOptions": "failover.sync",
    "run_verify": "failover.sync",
    "load_playbook": "failover.playbook",
    "run_playbook": "failover.playbook",
    "RunOptions": "failover.playbook",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'failover' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
