"""The ``libcloud`` compute adapter: any apache-libcloud compute driver by name (EC2, OpenStack,
DigitalOcean, Linode, GCE, Azure...), with each driver's argument names hidden behind
:class:`~failover.compute.InstanceSpec` (see ``compute.yaml``). libcloud's Node, NodeSize and
NodeImage never leave this module."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Literal

from libcloud.compute.base import Node, NodeDriver
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState
from pydantic import BaseModel, ConfigDict

from failover.compute import (
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
from failover.config import ServiceSpec
from failover.errors import NotFound
from failover.yamlio import load_yaml

from .drivers import ThreadDrivers, connection_kwargs, profile_for
from .errors import converted
from .options import LibcloudComputeOptions

__all__ = ["LibcloudCompute"]

_STATES = {
    NodeState.RUNNING: InstanceState.RUNNING,
    NodeState.PENDING: InstanceState.PENDING,
    NodeState.STARTING: InstanceState.PENDING,
    NodeState.REBOOTING: InstanceState.PENDING,
    NodeState.STOPPING: InstanceState.STOPPING,
    NodeState.STOPPED: InstanceState.STOPPED,
    NodeState.SUSPENDED: InstanceState.STOPPED,
    NodeState.PAUSED: InstanceState.STOPPED,
    NodeState.TERMINATED: InstanceState.TERMINATED,
}


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    user_data: str | None = None
    tags: str | None = None
    key: str | None = None
    key_import: str | None = None
    client_token: str | None = None


class _Images(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    image_catalog: str | None = None
    by_id: str | None = None


class DriverProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    endpoint: Literal["host_port", "none"]
    region: bool
    operations: tuple[ComputeCapability, ...]
    create: _Create
    name_tag: str | None = None
    tags_mode: Literal["dict", "list"]
    size: dict[str, str]
    node: dict[str, str]
    images: _Images
    tested: bool
    driver_args: dict[str, Any] = {}
    namespace: str | None = None
    namespace_aliases: tuple[str, ...] = ()


class _ProfileFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drivers: dict[str, DriverProfile]


@functools.cache
def compute_profiles() -> dict[str, DriverProfile]:
    text = resources.files(__package__).joinpath("compute.yaml").read_text(encoding="utf-8")
    return _ProfileFile.model_validate(load_yaml(text, "compute.yaml").data).drivers


@functools.cache
def _image_rules(reference: str) -> list[dict[str, Any]]:
    package, _, name = reference.partition(":")
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    rules: list[dict[str, Any]] = load_yaml(text, name).data["images"]
    return rules


def _dig(value: Any, path: str) -> Any:
    for part in path.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    return value


def _recognise(rules: Sequence[dict[str, Any]], name: str) -> tuple[str, str, str] | None:
    for rule in rules:
        for version in rule["versions"]:
            for arch, arch_name in rule["arch_names"].items():
                if fnmatch.fnmatchcase(name, rule["pattern"].format(version=version, arch=arch_name)):
                    return rule["os"], version, arch
    return None


def _read_aliases_as(driver: NodeDriver, namespace: str, aliases: Sequence[str]) -> None:
    """Make the driver read responses in an aliased XML namespace as its own (see compute.yaml).
    Rewritten before parsing, so nothing else of the response changes."""
    base = driver.connection.responseCls

    class Response(base):  # type: ignore[misc, valid-type]
        def parse_body(self) -> Any:
            body: Any = getattr(self, "body", None)
            if isinstance(body, str):
                for alias in aliases:
                    body = body.replace(f'xmlns="{alias}"', f'xmlns="{namespace}"')
                self.body = body
            return super().parse_body()

    driver.connection.responseCls = Response


class LibcloudCompute(Compute):
    options_model = LibcloudComputeOptions

    def __init__(self, name: str, options: LibcloudComputeOptions, *, make: Callable[[], NodeDriver]) -> None:
        self.profile = profile_for(compute_profiles(), options.driver, name, "compute")
        super().__init__(name, ComputeCapabilities(frozenset(self.profile.operations)))
        self.options = options
        profile = self.profile
        namespace = profile.namespace

        def prepare(driver: NodeDriver) -> None:
            if namespace and profile.namespace_aliases:
                _read_aliases_as(driver, namespace, profile.namespace_aliases)

        self._drivers = ThreadDrivers(make, prepare)
        self._catalog_cache: Catalog | None = None
        self._lock = threading.Lock()
        self._driver  # noqa: B018 - build one now so bad arguments fail at construction

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> LibcloudCompute:
        options: LibcloudComputeOptions = spec.options
        profile = compute_profiles().get(options.driver)
        creds = spec.credentials()
        kwargs = connection_kwargs(
            spec.endpoint,
            profile.endpoint if profile else "none",
            region=spec.region,
            takes_region=bool(profile and profile.region),
            base=profile.driver_args if profile else None,
            extra=options.driver_args,
        )
        secret = creds.secret.reveal() if creds.secret else None
        with converted("connect"):
            driver_class: Callable[..., NodeDriver] = get_driver(options.driver)
        return cls(spec.provider, options, make=lambda: driver_class(creds.key, secret, **kwargs))

    @property
    def _driver(self) -> Any:
        """This thread's driver. Any: the concrete driver's ex_* arguments are not part of
        NodeDriver's declared signature."""
        return self._drivers.get()

    # -- catalog -----------------------------------------------------------------------------------

    def _catalog(self) -> Catalog:
        with self._lock:
            if self._catalog_cache is None:
                with converted("catalog"):
                    sizes = tuple(self._size(s) for s in self._driver.list_sizes())
                self._catalog_cache = Catalog(sizes=tuple(s for s in sizes if s.vcpus), images=self._images())
            return self._catalog_cache

    def _size(self, size: Any) -> Size:
        fields = self.profile.size
        vcpus = _dig(size, fields["vcpus"]) or 0
        marker = fields.get("arm64_marker")
        processor = str(_dig(size, fields["arch_path"]) or "") if "arch_path" in fields else ""
        arch = "arm64" if marker and marker in processor else "x86_64"
        gpus = int(_dig(size, fields["gpus"]) or 0) if "gpus" in fields else 0
        return Size(
            id=str(size.id),
            vcpus=int(vcpus),
            memory_mib=int(_dig(size, fields["memory_mib"]) or 0),
            arch=arch,
            gpus=gpus,
            price_per_hour=float(_dig(size, fields["price"]) or 0.0) or None,  # libcloud: 0 or None = unknown
            disk_gib=int(_dig(size, fields["disk_gib"]) or 0) or None,
        )

    def _images(self) -> tuple[Image, ...]:
        if self.profile.images.image_catalog:
            rules = _image_rules(self.profile.images.image_catalog)
            found: dict[tuple[str, str, str], Any] = {}
            for rule in rules:
                names = [
                    rule["pattern"].format(version=v, arch=a)
                    for v in rule["versions"]
                    for a in rule["arch_names"].values()
                ]
                with converted("catalog"):
                    images = self._driver.list_images(ex_owner=rule["owner"], ex_filters={"name": names})
                for image in images:
                    match = _recognise([rule], image.name or "")
                    if match and (
                        match not in found
                        or (image.extra or {}).get("creation_date", "")
                        > (found[match].extra or {}).get("creation_date", "")
                    ):
                        found[match] = image
            return tuple(
                Image(str(img.id), os_, version, arch, img.name or "")
                for (os_, version, arch), img in sorted(found.items())
            )
        return ()

    def _describe_image(self, image_id: str) -> Image | None:
        known = self.catalog().image(image_id)
        images_profile = self.profile.images
        if known or not images_profile.image_catalog or not images_profile.by_id:
            return known
        with converted("describe_image", image_id):
            images = self._driver.list_images(**{images_profile.by_id: [image_id]})
        if not images:
            return None
        match = _recognise(_image_rules(self.profile.images.image_catalog), images[0].name or "")
        return Image(image_id, *match, images[0].name or "") if match else None

    # -- instances ---------------------------------------------------------------------------------

    def _to_instance(self, node: Node) -> Instance:
        fields = self.profile.node
        tags = _dig(node, fields["tags"]) or {}
        if isinstance(tags, list):
            tags = dict(t.split("=", 1) if "=" in t else (t, "") for t in tags)
        addresses: list[str] = [str(a) for a in [*(node.public_ips or []), *(node.private_ips or [])] if a]
        return Instance(
            id=str(node.id),
            name=str(node.name),
            state=_STATES.get(node.state, InstanceState.UNKNOWN),
            size=str(_dig(node, fields["size"]) or ""),
            image=str(_dig(node, fields["image"]) or ""),
            tags={str(k): str(v) for k, v in dict(tags).items()},
            address=addresses[0] if addresses else None,
            private_address=str(node.private_ips[0]) if node.private_ips else None,
            arch=_dig(node, fields["arch"]) if "arch" in fields else None,
            created=node.created_at,
        )

    def _nodes(self) -> list[Node]:
        with converted("list_instances"):
            nodes: list[Node] = self._driver.list_nodes()
        return nodes

    def _list(self, tags: dict[str, str]) -> Sequence[Instance]:
        instances = [self._to_instance(node) for node in self._nodes()]
        return [i for i in instances if all(i.tags.get(k) == v for k, v in tags.items())]

    def _node(self, instance_id: str) -> Node:
        for node in self._nodes():
            if str(node.id) == instance_id:
                return node
        raise NotFound("no such instance", target=instance_id)

    def _get(self, instance_id: str) -> Instance:
        return self._to_instance(self._node(instance_id))

    def _create(self, spec: InstanceSpec, size: str, image: str, client_token: str) -> Instance:
        create = self.profile.create
        kwargs: dict[str, Any] = {}

        def put(argument: str | None, value: Any) -> None:
            if argument is None:
                return
            name, _, key = argument.partition(".")
            if key:
                kwargs.setdefault(name, {})[key] = value
            else:
                kwargs[name] = value

        if spec.user_data:
            put(create.user_data, spec.user_data)
        tags = dict(spec.tags)
        if self.profile.name_tag:
            tags = {self.profile.name_tag: spec.name, **tags}
        if tags and create.tags:
            put(create.tags, tags if self.profile.tags_mode == "dict" else [f"{k}={v}" for k, v in tags.items()])
        if spec.ssh_keys and create.key:
            put(create.key, self._key(spec.ssh_keys[0]))
        if create.client_token:
            put(create.client_token, client_token[:64])
        with converted("create", spec.name):
            node_size = next((s for s in self._driver.list_sizes() if str(s.id) == size), None)
            if node_size is None:
                raise NotFound(f"no size {size!r}", target=spec.name)
            node_image = self._image_object(image)
            location = None
            if self.options.location:
                location = next((loc for loc in self._driver.list_locations() if loc.id == self.options.location), None)
            node = self._driver.create_node(
                name=spec.name, size=node_size, image=node_image, location=location, **kwargs
            )
        return self._to_instance(node)

    def _image_object(self, image: str) -> Any:
        by_id = self.profile.images.by_id
        if by_id:
            images = self._driver.list_images(**{by_id: [image]})
        else:
            images = [i for i in self._driver.list_images() if str(i.id) == image]
        if not images:
            raise NotFound(f"no image {image!r}")
        return images[0]

    def _key(self, public_key: str) -> str:
        """The driver's handle for a public key: the key itself, or the name of a key pair imported
        with the profile's key_import method (EC2)."""
        importer = self.profile.create.key_import
        if importer is None:
            return public_key
        name = "failover-" + hashlib.sha256(public_key.strip().encode()).hexdigest()[:12]
        with converted("import_key", name):
            existing = {k.name for k in self._driver.list_key_pairs()}
            if name not in existing:
                getattr(self._driver, importer)(name, public_key.strip())
        return name

    def _start(self, instance_id: str) -> None:
        with converted("start", instance_id):
            self._driver.start_node(self._node(instance_id))

    def _stop(self, instance_id: str) -> None:
        with converted("stop", instance_id):
            self._driver.stop_node(self._node(instance_id))

    def _destroy(self, instance_id: str) -> None:
        node = self._node(instance_id)
        with converted("destroy", instance_id):
            self._driver.destroy_node(node)
