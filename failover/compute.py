"""The compute interface: instances on one provider, described provider-neutrally.

:class:`Compute` is what every compute adapter implements. Public methods are the contract; they
check declared capabilities and name the provider in errors, then call the adapter's hooks.

Contract shared by every method:

* Instances are identified by the provider's id; ``name`` and tags are the provider-neutral handles.
* A missing instance raises :class:`~failover.errors.NotFound`.
* An operation whose capability is not declared raises :class:`~failover.errors.NotSupported`.
* Sizes and images are the provider's own identifiers, chosen from its :class:`Catalog` (data
  beside the adapter); translating between providers is the rehost planner's job, not the adapter's.
"""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from .capabilities import Declared, DeclaringService
from .errors import NotFound, NotSupported, ProviderError, Timeout

__all__ = [
    "Catalog",
    "Compute",
    "ComputeCapabilities",
    "ComputeCapability",
    "Image",
    "ImageRef",
    "Instance",
    "InstanceSpec",
    "InstanceState",
    "Size",
]


class InstanceState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    TERMINATED = "terminated"
    UNKNOWN = "unknown"


class ComputeCapability(enum.StrEnum):
    START_STOP = "start_stop"
    """Instances can be stopped and started again (not only destroyed)."""
    USER_DATA = "user_data"
    """A boot script (cloud-init user-data) runs on first start."""
    READ_USER_DATA = "read_user_data"
    """An existing instance's boot script can be read back, so a rehost can carry it."""
    TAGS = "tags"
    """Instances carry key/value tags, and can be listed by them."""
    OPEN_PORTS = "open_ports"
    """Inbound ports are opened explicitly (a firewall / security group); otherwise all are open."""
    SSH_KEYS = "ssh_keys"
    """Public SSH keys are installed on the instance."""
    GPU = "gpu"
    """Sizes with GPUs exist."""


@dataclass(frozen=True)
class ImageRef:
    """An image as the OS it runs (``os``, ``version``), or a provider's explicit image ``id``."""

    os: str | None = None
    version: str | None = None
    id: str | None = None

    def __str__(self) -> str:
        return self.id or f"{self.os} {self.version}".strip()


@dataclass(frozen=True)
class InstanceSpec:
    """What an instance needs, independently of any provider."""

    name: str
    vcpus: int
    memory_mib: int
    arch: str = "x86_64"
    gpus: int = 0
    disk_gib: int = 8
    image: ImageRef = field(default_factory=ImageRef)
    user_data: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ports: tuple[int, ...] = ()
    ssh_keys: tuple[str, ...] = ()
    """Public keys (OpenSSH format)."""
    count: int = 1
    health_check: str | None = None
    """URL template checked once the instance runs; ``{address}`` is replaced by its address."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))


@dataclass(frozen=True)
class Instance:
    id: str
    name: str
    state: InstanceState
    size: str
    image: str
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    address: str | None = None
    """The address to reach the instance's services on (public if it has one, else private)."""
    private_address: str | None = None
    user_data: str | None = None
    """The boot script, where the provider returns it (None: none, or not readable)."""
    ports: tuple[int, ...] = ()
    arch: str | None = None
    disk_gib: int | None = None
    """Size of the root disk, where the provider says."""
    created: datetime | None = None
    not_portable: tuple[str, ...] = ()
    """Provider features this instance uses that have no portable equivalent (IAM instance
    profile, EBS volume types, placement group...), as short descriptions."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))


@dataclass(frozen=True)
class Size:
    """One instance size of a provider's catalog."""

    id: str
    vcpus: int
    memory_mib: int
    arch: str = "x86_64"
    gpus: int = 0
    price_per_hour: float | None = None
    """On-demand price; None when unknown (the planner then prefers sizes with a known price)."""
    disk_gib: int | None = None
    """Local disk included with the size, if any."""


@dataclass(frozen=True)
class Image:
    """One image of a provider's catalog, as far as the planner needs to know it."""

    id: str
    os: str
    version: str
    arch: str = "x86_64"
    name: str = ""


@dataclass(frozen=True)
class Catalog:
    """Sizes and images of one provider (data files beside each adapter)."""

    sizes: tuple[Size, ...]
    images: tuple[Image, ...] = ()
    notes: tuple[str, ...] = ()
    """What the provider does not honour, for the translation table (e.g. "sizes are not enforced")."""

    def size(self, size_id: str) -> Size | None:
        return next((s for s in self.sizes if s.id == size_id), None)

    def image(self, image_id: str) -> Image | None:
        return next((i for i in self.images if i.id == image_id), None)


ComputeCapabilities = Declared[ComputeCapability]


class Compute(DeclaringService[ComputeCapability], abc.ABC):
    """Instances of one provider."""

    # -- the contract ------------------------------------------------------------------------------

    def catalog(self) -> Catalog:
        """Sizes and images usable on this provider (the region's, where that matters)."""
        return self._catalog()

    def list_instances(self, tags: Mapping[str, str] | None = None) -> list[Instance]:
        """Instances not terminated, with all of ``tags`` (TAGS needed to filter), sorted by name."""
        if tags:
            self._require(ComputeCapability.TAGS, "list_instances")
        try:
            found = self._list(dict(tags or {}))
        except ProviderError as error:
            raise self._named(error, "list_instances") from None
        return sorted((i for i in found if i.state is not InstanceState.TERMINATED), key=lambda i: (i.name, i.id))

    def get(self, instance_id: str) -> Instance:
        try:
            return self._get(instance_id)
        except ProviderError as error:
            raise self._named(error, "get") from None

    def describe_size(self, size_id: str) -> Size | None:
        """What a size of this provider is (vCPU, memory, arch, GPUs), also sizes outside the
        catalog (an instance's own); None if the provider does not know it."""
        try:
            return self._describe_size(size_id)
        except ProviderError as error:
            raise self._named(error, "describe_size") from None

    def describe_image(self, image_id: str) -> Image | None:
        """Which OS and version an image of this provider is; None when that cannot be told."""
        try:
            return self._describe_image(image_id)
        except ProviderError as error:
            raise self._named(error, "describe_image") from None

    def user_data(self, instance_id: str) -> str | None:
        """The instance's boot script, or None when it has none (READ_USER_DATA)."""
        self._require(ComputeCapability.READ_USER_DATA, "user_data")
        try:
            return self._user_data(instance_id)
        except ProviderError as error:
            raise self._named(error, "user_data") from None

    def create(self, spec: InstanceSpec, *, size: str, image: str, client_token: str) -> Instance:
        """Create one instance of ``size`` from ``image``. ``client_token`` makes a retried create
        return the first instance where the provider supports it; callers that need idempotency
        everywhere look instances up by tag first. Spec fields the provider does not declare
        (user-data, ports, keys) are refused here; the planner drops and reports them before."""
        if spec.user_data:
            self._require(ComputeCapability.USER_DATA, "create")
        if spec.ssh_keys:
            self._require(ComputeCapability.SSH_KEYS, "create")
        if spec.ports:
            self._require(ComputeCapability.OPEN_PORTS, "create")
        if spec.tags:
            self._require(ComputeCapability.TAGS, "create")
        try:
            return self._create(spec, size, image, client_token)
        except ProviderError as error:
            raise self._named(error, "create") from None

    def start(self, instance_id: str) -> None:
        self._require(ComputeCapability.START_STOP, "start")
        try:
            self._start(instance_id)
        except ProviderError as error:
            raise self._named(error, "start") from None

    def stop(self, instance_id: str) -> None:
        self._require(ComputeCapability.START_STOP, "stop")
        try:
            self._stop(instance_id)
        except ProviderError as error:
            raise self._named(error, "stop") from None

    def destroy(self, instance_id: str) -> None:
        """Terminate and delete. Idempotent: an instance already gone is not an error."""
        try:
            self._destroy(instance_id)
        except NotFound:
            return
        except ProviderError as error:
            raise self._named(error, "destroy") from None

    def wait_for(
        self, instance_id: str, state: InstanceState, *, timeout: float = 300.0, interval: float = 1.0
    ) -> Instance:
        """Poll until the instance reaches ``state``; raise Timeout (with its last state) if it does not."""
        deadline = time.monotonic() + timeout
        while True:
            instance = self.get(instance_id)
            if instance.state is state:
                return instance
            if instance.state is InstanceState.TERMINATED and state is not InstanceState.TERMINATED:
                raise ProviderError(f"instance {instance_id} terminated while waiting for {state}", provider=self.name)
            if time.monotonic() >= deadline:
                raise Timeout(
                    f"instance {instance_id} is {instance.state}, not {state}, after {timeout:.0f} s",
                    provider=self.name,
                    operation="wait_for",
                )
            time.sleep(interval)

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Compute:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hooks -------------------------------------------------------------------------------------
    #
    # What an adapter implements. Every hook raises failover errors only (the adapter converts its
    # SDK's in one place): NotFound for an instance, size or image that is not there, AuthError for
    # refused credentials, InvalidRequest for a request the provider refuses as malformed (unknown
    # size, image not usable with that size), ProviderError with ``retryable`` set for throttling and
    # outages, NotSupported for an operation the provider cannot do.

    @abc.abstractmethod
    def _catalog(self) -> Catalog:
        """The sizes (and images, where the provider has an image catalog) new instances can be
        created with, here; notes on what the provider does not honour. May be cached per object."""

    @abc.abstractmethod
    def _list(self, tags: dict[str, str]) -> Sequence[Instance]:
        """Instances with every tag in ``tags`` (all instances: empty), in any order. Terminated
        ones may be included (the caller drops them). Only called with tags when TAGS is declared."""

    @abc.abstractmethod
    def _get(self, instance_id: str) -> Instance:
        """The instance as it is now; NotFound when there is no such instance (or it is gone)."""

    @abc.abstractmethod
    def _create(self, spec: InstanceSpec, size: str, image: str, client_token: str) -> Instance:
        """Create one instance named ``spec.name`` of ``size`` from ``image`` ("" where the
        provider has no images), with the spec's tags, user-data, ports and keys (only those the
        adapter declares: the caller refuses the others first), and return it (it may still be
        pending). Called again with the same ``client_token``, return the first instance instead of
        a second one where the provider supports tokens."""

    @abc.abstractmethod
    def _destroy(self, instance_id: str) -> None:
        """Terminate the instance and release what it holds (its disk, its address). NotFound when
        it is already gone (the caller treats that as done)."""

    def _describe_size(self, size_id: str) -> Size | None:
        """What ``size_id`` is, also outside the catalog (an existing instance's own size); None
        when the provider does not know it."""
        return self.catalog().size(size_id)

    def _describe_image(self, image_id: str) -> Image | None:
        """Which OS and version ``image_id`` is; None when that cannot be told."""
        return self.catalog().image(image_id)

    def _user_data(self, instance_id: str) -> str | None:
        """The instance's boot script, decoded (None: it has none). Only called when
        READ_USER_DATA is declared."""
        return None

    def _start(self, instance_id: str) -> None:
        """Start a stopped instance (START_STOP); starting a running one is not an error."""
        raise NotSupported(ComputeCapability.START_STOP.value, provider=self.name)

    def _stop(self, instance_id: str) -> None:
        """Stop a running instance, keeping its disk (START_STOP); stopping a stopped one is not
        an error."""
        raise NotSupported(ComputeCapability.START_STOP.value, provider=self.name)
