"""``failover inventory PROVIDER``: what a provider account holds, and what of it has no portable
equivalent. Read-only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from .compute import Compute, ComputeCapability
from .config import Providers
from .connect import open_account, open_compute, open_dns, open_store
from .dns import Zone
from .errors import FailoverError

__all__ = ["AccountInspector", "Inventory", "NonPortable", "label", "take_inventory"]


@dataclass(frozen=True)
class NonPortable:
    """A resource of a service with no portable equivalent (it must be rebuilt by hand), labelled
    with the ``failover lint`` rule for its service (:func:`label`): one vocabulary for a live
    account and a repository."""

    service: str
    """The AWS SDK's service id (``sqs``, ``cognito-idp``)."""
    kind: str
    name: str
    detail: str = ""
    rule: str = ""
    portability: str = ""
    """proprietary, managed or portable, as lint classes the service."""
    replacement: str = ""
    effort: str = ""


def label(item: NonPortable) -> NonPortable:
    """``item`` with its lint rule's id, class, replacement and effort (unchanged if no rule)."""
    from .lint import shipped_rules

    rule = shipped_rules().for_service(item.service)
    if rule is None:
        return item
    return replace(
        item, rule=rule.id, portability=rule.portability.value, replacement=rule.replacement, effort=rule.effort
    )


class AccountInspector(Protocol):
    """What an ``account`` adapter offers (read-only)."""

    def non_portable(self) -> tuple[list[NonPortable], list[str]]:
        """Resources of non-portable services, and the services that could not be checked (why)."""

    def identity(self) -> str:
        """Who the credentials belong to (account and principal); raises AuthError when refused."""

    def close(self) -> None: ...


@dataclass
class Inventory:
    provider: str
    buckets: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    dns_zones: list[Zone] = field(default_factory=list)
    non_portable: list[NonPortable] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    """Services or sections that could not be read, with the reason."""

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "buckets": self.buckets,
            "instances": self.instances,
            "dns_zones": [asdict(z) for z in self.dns_zones],
            "non_portable": [asdict(n) for n in self.non_portable],
            "unchecked": self.unchecked,
        }


def _instances(compute: Compute) -> list[dict[str, Any]]:
    rows = []
    readable = ComputeCapability.READ_USER_DATA in compute.capabilities
    for instance in compute.list_instances():
        image = compute.describe_image(instance.image) if instance.image else None
        size = compute.describe_size(instance.size) if instance.size else None
        rows.append(
            {
                "id": instance.id,
                "name": instance.name,
                "state": instance.state.value,
                "type": instance.size,
                "vcpus": size.vcpus if size else None,
                "memory_mib": size.memory_mib if size else None,
                "image": instance.image,
                "os": f"{image.os} {image.version}" if image else None,
                "tags": dict(instance.tags),
                # None: the provider cannot say (it does not return user-data).
                "user_data": compute.user_data(instance.id) is not None if readable else None,
                "open_ports": list(instance.ports),
                "address": instance.address,
                "not_portable": list(instance.not_portable),
            }
        )
    return rows


def take_inventory(providers: Providers, name: str, *, sizes: bool = True) -> Inventory:
    """Everything the provider's configured services can see. A section that cannot be read is
    listed in ``unchecked`` with its reason instead of failing the whole inventory."""
    inventory = Inventory(name)
    services = providers.services(name)
    if "storage" in services:
        try:
            with open_store(providers, name) as store:
                for bucket in store.list_buckets():
                    row: dict[str, Any] = {"name": bucket.name}
                    if sizes:
                        count = total = 0
                        for info in store.list_objects(bucket.name):
                            count += 1
                            total += info.size
                        row.update(objects=count, bytes=total)
                    if store.capabilities.settings:
                        try:
                            row["settings"] = store.bucket_settings(bucket.name).describe()
                        except FailoverError as error:
                            row["settings"] = {"unreadable": str(error)}
                    inventory.buckets.append(row)
        except FailoverError as error:
            inventory.unchecked.append(f"storage: {error}")
    if "compute" in services:
        try:
            with open_compute(providers, name) as compute:
                inventory.instances = _instances(compute)
        except FailoverError as error:
            inventory.unchecked.append(f"compute: {error}")
    if "dns" in services:
        try:
            with open_dns(providers, name) as dns:
                inventory.dns_zones = dns.list_zones()
        except FailoverError as error:
            inventory.unchecked.append(f"dns: {error}")
    if "account" in services:
        inspector: AccountInspector = open_account(providers, name)
        try:
            found, unchecked = inspector.non_portable()
            inventory.non_portable = [label(item) for item in found]
            inventory.unchecked += unchecked
        except FailoverError as error:
            inventory.unchecked.append(f"account: {error}")
        finally:
            inspector.close()
    return inventory
