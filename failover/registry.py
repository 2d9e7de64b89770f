"""Adapter registry: (service, type) -> adapter class, imported lazily.

Built-in adapters live in ``failover.providers``; third parties register more through the
``failover.providers`` entry-point group with names ``<service>.<type>`` (for example
``storage.myvendor = "mypkg.store:MyStore"``). An adapter class must provide
``from_spec(spec: ServiceSpec)`` and ``options_model`` (a pydantic model of its ``options:``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from typing import Any, cast

from .capabilities import StoreCapabilities
from .errors import ConfigError

__all__ = [
    "SERVICES",
    "AdapterEntry",
    "adapter",
    "declared_storage_capabilities",
    "load_adapter",
    "load_options_model",
    "types_for",
]

SERVICES = ("storage", "compute", "dns", "account", "feed")
"""What a provider can offer. ``account`` is read-only: an inventory of the provider's services;
``feed``: a change feed of its storage's buckets (``failover standby``; see failover/feed.py)."""


@dataclass(frozen=True)
class AdapterEntry:
    service: str
    type: str
    target: str
    """``module:Class`` of the adapter."""
    options: str
    """``module:Model`` of its options; light to import (no SDK), so config validation stays fast."""
    summary: str
    install_hint: str | None = None
    remote: bool = True
    """False for adapters that work on this machine: they take no endpoint, and a provider-level
    endpoint (meant for its other services) does not apply to them."""


_BUILTIN = [
    AdapterEntry(
        "storage",
        "s3",
        "failover.providers.s3.store:S3Store",
        "failover.providers.s3.options:S3Options",
        "Amazon S3 and S3-compatible stores (MinIO, SeaweedFS, Ceph RGW, R2, B2, Wasabi, Spaces) via boto3",
    ),
    AdapterEntry(
        "storage",
        "libcloud",
        "failover.providers.libcloud.storage:LibcloudStore",
        "failover.providers.libcloud.options:LibcloudStorageOptions",
        "Google Cloud Storage, Azure Blobs, OpenStack Swift and other libcloud storage drivers",
    ),
    AdapterEntry(
        "storage",
        "local",
        "failover.providers.local.store:LocalStore",
        "failover.providers.local.options:LocalStoreOptions",
        "a directory of buckets on this machine",
        remote=False,
    ),
    AdapterEntry(
        "storage",
        "memory",
        "failover.testing.memory:MemoryStore",
        "failover.testing.memory:MemoryOptions",
        "an object store in this process's memory, for tests (failover.testing.MemoryStore)",
        remote=False,
    ),
    AdapterEntry(
        "compute",
        "memory",
        "failover.testing.memory_services:MemoryCompute",
        "failover.testing.memory_services:MemoryComputeOptions",
        "instances in this process's memory, for tests (failover.testing.MemoryCompute)",
        remote=False,
    ),
    AdapterEntry(
        "compute",
        "ec2",
        "failover.providers.aws.compute:Ec2Compute",
        "failover.providers.aws.options:AwsOptions",
        "Amazon EC2 (and LocalStack) through boto3",
    ),
    AdapterEntry(
        "compute",
        "libcloud",
        "failover.providers.libcloud.compute:LibcloudCompute",
        "failover.providers.libcloud.options:LibcloudComputeOptions",
        "any libcloud compute driver: EC2, OpenStack, DigitalOcean, Linode, GCE, Azure",
    ),
    AdapterEntry(
        "compute",
        "local",
        "failover.providers.local.compute:LocalCompute",
        "failover.providers.local.options:LocalComputeOptions",
        "processes on this machine, one loopback address each",
        remote=False,
    ),
    AdapterEntry(
        "compute",
        "hosts",
        "failover.providers.hosts.compute:HostsCompute",
        "failover.providers.hosts.options:HostsComputeOptions",
        "your own servers over SSH (paramiko), one instance per host, host keys pinned",
    ),
    AdapterEntry(
        "dns",
        "memory",
        "failover.testing.memory_services:MemoryDns",
        "failover.testing.memory_services:MemoryDnsOptions",
        "zones in this process's memory, for tests (failover.testing.MemoryDns)",
        remote=False,
    ),
    AdapterEntry(
        "dns",
        "route53",
        "failover.providers.aws.dns:Route53Dns",
        "failover.providers.aws.options:Route53Options",
        "Amazon Route53 (and LocalStack) through boto3",
    ),
    AdapterEntry(
        "dns",
        "powerdns",
        "failover.providers.powerdns.dns:PowerDns",
        "failover.providers.powerdns.options:PowerDnsOptions",
        "a PowerDNS Authoritative server through its HTTP API",
    ),
    AdapterEntry(
        "dns",
        "libcloud",
        "failover.providers.libcloud.dns:LibcloudDns",
        "failover.providers.libcloud.options:LibcloudDnsOptions",
        "any libcloud DNS driver: PowerDNS, Route53, DigitalOcean, Cloudflare, Google, Linode",
    ),
    AdapterEntry(
        "feed",
        "sqs",
        "failover.providers.aws.feed:SqsFeed",
        "failover.providers.aws.options:SqsFeedOptions",
        "S3 event notifications delivered to an SQS queue (AWS and LocalStack) through boto3",
    ),
    AdapterEntry(
        "feed",
        "memory",
        "failover.testing.memory:MemoryFeed",
        "failover.testing.memory:MemoryFeedOptions",
        "the change events of a memory store's space, for tests (failover.testing.MemoryFeed)",
        remote=False,
    ),
    AdapterEntry(
        "account",
        "aws",
        "failover.providers.aws.account:AwsAccount",
        "failover.providers.aws.options:AwsOptions",
        "an AWS account's services, for the inventory (Lambda, DynamoDB, SQS, Route53, ...)",
    ),
]

_ENTRY_POINT_GROUP = "failover.providers"


def _entries() -> dict[tuple[str, str], AdapterEntry]:
    entries = {(e.service, e.type): e for e in _BUILTIN}
    for point in importlib.metadata.entry_points(group=_ENTRY_POINT_GROUP):
        service, _, kind = point.name.partition(".")
        if service in SERVICES and kind and (service, kind) not in entries:
            entries[(service, kind)] = AdapterEntry(
                service, kind, point.value, point.value + ".options_model", point.value
            )
    return entries


def types_for(service: str) -> list[str]:
    return sorted(kind for (svc, kind) in _entries() if svc == service)


def adapter(service: str, kind: str) -> AdapterEntry:
    entry = _entries().get((service, kind))
    if entry is None:
        known = ", ".join(types_for(service)) or "none"
        raise ConfigError(f"unknown {service} type {kind!r}", hint=f"{service} types: {known}")
    return entry


def _import(target: str, entry: AdapterEntry) -> Any:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = entry.install_hint or f"the {entry.type} adapter could not be imported: {exc}"
        raise ConfigError(f"{entry.service} type {entry.type!r} is not available", hint=hint) from exc
    value = module
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def load_adapter(service: str, kind: str) -> Any:
    """The adapter class for ``service``/``kind`` (imports its SDK)."""
    entry = adapter(service, kind)
    return _import(entry.target, entry)


def load_options_model(service: str, kind: str) -> Any:
    """The pydantic model validating this adapter's ``options:``."""
    entry = adapter(service, kind)
    return _import(entry.options, entry)


def declared_storage_capabilities(kind: str, options: dict[str, Any]) -> StoreCapabilities:
    """What a storage adapter of ``kind`` declares with ``options``, without connecting anywhere."""
    model = load_options_model("storage", kind)
    return cast(StoreCapabilities, load_adapter("storage", kind).declared_capabilities(model.model_validate(options)))
