"""``MemoryDns`` and ``MemoryCompute``: DNS zones and instances in this process's memory, for
in-process tests of what sits above the DNS and compute interfaces (the playbook runner, the DNS
cutover and its rollback, rehost).

Both implement every hook of their interface and pass its conformance suite
(``tests/providers/test_dns_memory.py``, ``tests/providers/test_compute_memory.py``). Services with
the same ``space`` option share their state, so two providers of type ``memory`` can be a source
and a target, and a service opened again (a new CLI process would) sees what the first one did.
``fail_on`` makes an operation raise, for tests of what happens when a provider refuses halfway.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from ..compute import (
    Catalog,
    Compute,
    ComputeCapabilities,
    ComputeCapability,
    Image,
    Instance,
    InstanceSpec,
    InstanceState,
    Size,
)
from ..config import ServiceSpec
from ..dns import Dns, DnsCapabilities, DnsCapability, NameserverAddress, RecordSet, Zone, record_set
from ..errors import AlreadyExists, InvalidRequest, NotFound, ProviderError

__all__ = ["MemoryCompute", "MemoryComputeOptions", "MemoryDns", "MemoryDnsOptions", "reset_services"]

_LOCK = threading.Lock()


class MemoryDnsOptions(BaseModel):
    """Options of the ``memory`` DNS adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str = Field(default="default", description="services with the same space share their zones")
    operations: tuple[DnsCapability, ...] = Field(default=tuple(DnsCapability), description="declared capabilities")
    nameserver: NameserverAddress = None
    fail_on: tuple[str, ...] = Field(
        default=(), description="operations (hook names without '_': apply, create_zone...) that raise ProviderError"
    )


class MemoryComputeOptions(BaseModel):
    """Options of the ``memory`` compute adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str = Field(default="default", description="services with the same space share their instances")
    operations: tuple[ComputeCapability, ...] = Field(
        default=(ComputeCapability.START_STOP, ComputeCapability.USER_DATA, ComputeCapability.READ_USER_DATA,
                 ComputeCapability.TAGS, ComputeCapability.OPEN_PORTS),
        description="declared capabilities",
    )  # fmt: skip
    address_prefix: str = Field(default="198.51.100.", description="instances get addresses PREFIX1, PREFIX2...")
    fail_on: tuple[str, ...] = Field(default=(), description="operations (create, destroy...) that raise ProviderError")


@dataclass
class _DnsSpace:
    zones: dict[str, dict[tuple[str, str], RecordSet]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    zone_ids: dict[str, str] = field(default_factory=dict)


@dataclass
class _ComputeSpace:
    instances: dict[str, Instance] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    """client token -> instance id: a retried create returns the first instance."""
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


_DNS: dict[str, _DnsSpace] = {}
_COMPUTE: dict[str, _ComputeSpace] = {}


def reset_services(space: str | None = None) -> None:
    """Forget the zones and instances of ``space`` (every space: None)."""
    with _LOCK:
        for spaces in (_DNS, _COMPUTE):
            if space is None:
                spaces.clear()
            else:
                spaces.pop(space, None)


def _refuse(fail_on: Sequence[str], operation: str, provider: str) -> None:
    if operation in fail_on:
        raise ProviderError(f"{operation} refused (memory fault: fail_on)", provider=provider, operation=operation)


class MemoryDns(Dns):
    """Zones of one memory space. A new zone gets its apex SOA and NS sets, as hosted zones do."""

    options_model = MemoryDnsOptions

    def __init__(self, name: str, options: MemoryDnsOptions | None = None) -> None:
        self.options = options or MemoryDnsOptions()
        super().__init__(name, DnsCapabilities(frozenset(self.options.operations)), nameserver=self.options.nameserver)
        with _LOCK:
            self._space = _DNS.setdefault(self.options.space, _DnsSpace())

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> MemoryDns:
        return cls(spec.provider, spec.options)

    def _list_zones(self) -> list[Zone]:
        with _LOCK:
            return [Zone(name, self._space.zone_ids[name], len(sets)) for name, sets in self._space.zones.items()]

    def _create_zone(self, zone: str) -> Zone:
        _refuse(self.options.fail_on, "create_zone", self.name)
        with _LOCK:
            if zone in self._space.zones:
                raise AlreadyExists(f"zone {zone} exists", provider=self.name)
            self._space.zone_ids[zone] = f"Z{next(self._space.ids)}"
            apex = [
                record_set(zone, "SOA", 3600, [f"ns1.{zone}. hostmaster.{zone}. 1 10800 3600 604800 3600"]),
                record_set(zone, "NS", 3600, [f"ns1.{zone}."]),
            ]
            self._space.zones[zone] = {r.key: r for r in apex}
            return Zone(zone, self._space.zone_ids[zone])

    def _delete_zone(self, zone: Zone) -> None:
        _refuse(self.options.fail_on, "delete_zone", self.name)
        with _LOCK:
            if self._space.zones.pop(zone.name, None) is None:
                raise NotFound(f"zone {zone.name} not found", provider=self.name)
            self._space.zone_ids.pop(zone.name, None)

    def _sets(self, zone: Zone) -> dict[tuple[str, str], RecordSet]:
        found = self._space.zones.get(zone.name)
        if found is None:
            raise NotFound(f"zone {zone.name} not found", provider=self.name)
        return found

    def _list_records(self, zone: Zone) -> list[RecordSet]:
        with _LOCK:
            return list(self._sets(zone).values())

    def _apply(self, zone: Zone, upserts: list[RecordSet], deletes: list[RecordSet]) -> None:
        _refuse(self.options.fail_on, "apply", self.name)
        with _LOCK:  # all or nothing, as ATOMIC_CHANGES promises
            sets = self._sets(zone)
            for record in deletes:
                sets.pop(record.key, None)
            for record in upserts:
                sets[record.key] = record_set(record.name, record.type, record.ttl, record.values)


_SIZES = (
    Size("mem-small", 1, 1024, "x86_64", 0, 0.01),
    Size("mem-medium", 2, 4096, "x86_64", 0, 0.04),
    Size("mem-large", 4, 16384, "x86_64", 0, 0.16),
    Size("mem-arm-medium", 2, 4096, "arm64", 0, 0.03),
)
_IMAGES = (
    Image("img-ubuntu-2204", "ubuntu", "22.04"),
    Image("img-ubuntu-2404", "ubuntu", "24.04"),
    Image("img-debian-12", "debian", "12"),
    Image("img-ubuntu-2404-arm", "ubuntu", "24.04", "arm64"),
)


class MemoryCompute(Compute):
    """Instances of one memory space: running as soon as they are created, addressed from
    ``address_prefix``; nothing runs (health checks against them find nobody)."""

    options_model = MemoryComputeOptions

    def __init__(self, name: str, options: MemoryComputeOptions | None = None) -> None:
        self.options = options or MemoryComputeOptions()
        super().__init__(name, ComputeCapabilities(frozenset(self.options.operations)))
        with _LOCK:
            self._space = _COMPUTE.setdefault(self.options.space, _ComputeSpace())

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> MemoryCompute:
        return cls(spec.provider, spec.options)

    def _catalog(self) -> Catalog:
        return Catalog(_SIZES, _IMAGES, ("memory instances run nothing: they exist for tests",))

    def _list(self, tags: dict[str, str]) -> Sequence[Instance]:
        with _LOCK:
            return [i for i in self._space.instances.values() if all(i.tags.get(k) == v for k, v in tags.items())]

    def _get(self, instance_id: str) -> Instance:
        with _LOCK:
            found = self._space.instances.get(instance_id)
        if found is None:
            raise NotFound("no such instance", provider=self.name, target=instance_id)
        return found

    def _user_data(self, instance_id: str) -> str | None:
        return self._get(instance_id).user_data

    def _create(self, spec: InstanceSpec, size: str, image: str, client_token: str) -> Instance:
        _refuse(self.options.fail_on, "create", self.name)
        chosen = next((s for s in _SIZES if s.id == size), None)
        if chosen is None:
            raise InvalidRequest(f"unknown size {size!r}", provider=self.name, target=spec.name)
        if image and not any(i.id == image for i in _IMAGES):
            raise InvalidRequest(f"unknown image {image!r}", provider=self.name, target=spec.name)
        with _LOCK:
            earlier = self._space.tokens.get(client_token)
            if earlier is not None and earlier in self._space.instances:
                return self._space.instances[earlier]
            number = next(self._space.ids)
            instance = Instance(
                id=f"m-{number:06d}",
                name=spec.name,
                state=InstanceState.RUNNING,
                size=size,
                image=image or _IMAGES[0].id,
                tags=dict(spec.tags),
                address=f"{self.options.address_prefix}{number}",
                private_address=f"{self.options.address_prefix}{number}",
                user_data=spec.user_data,
                ports=tuple(sorted(set(spec.ports))),
                arch=chosen.arch,
                created=datetime.now(UTC),
            )
            self._space.instances[instance.id] = instance
            self._space.tokens[client_token] = instance.id
            return instance

    def _set_state(self, instance_id: str, state: InstanceState) -> None:
        with _LOCK:
            found = self._space.instances.get(instance_id)
            if found is None:
                raise NotFound("no such instance", provider=self.name, target=instance_id)
            self._space.instances[instance_id] = replace(found, state=state)

    def _start(self, instance_id: str) -> None:
        self._set_state(instance_id, InstanceState.RUNNING)

    def _stop(self, instance_id: str) -> None:
        self._set_state(instance_id, InstanceState.STOPPED)

    def _destroy(self, instance_id: str) -> None:
        _refuse(self.options.fail_on, "destroy", self.name)
        with _LOCK:
            if self._space.instances.pop(instance_id, None) is None:
                raise NotFound("no such instance", provider=self.name, target=instance_id)
