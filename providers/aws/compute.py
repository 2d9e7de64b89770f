"""The ``ec2`` compute adapter: Amazon EC2 (and LocalStack's EC2) through boto3."""

from __future__ import annotations

import base64
import fnmatch
import functools
import hashlib
import threading
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

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
from failover.errors import AlreadyExists, NotFound
from failover.yamlio import load_yaml

from .errors import converted
from .options import AwsOptions
from .session import client_for

__all__ = ["Ec2Compute"]

CAPABILITIES = ComputeCapabilities(
    frozenset(
        {
            ComputeCapability.START_STOP,
            ComputeCapability.USER_DATA,
            ComputeCapability.READ_USER_DATA,
            ComputeCapability.TAGS,
            ComputeCapability.OPEN_PORTS,
            ComputeCapability.SSH_KEYS,
            ComputeCapability.GPU,
        }
    )
)

_STATES = {
    "pending": InstanceState.PENDING,
    "running": InstanceState.RUNNING,
    "stopping": InstanceState.STOPPING,
    "shutting-down": InstanceState.STOPPING,
    "stopped": InstanceState.STOPPED,
    "terminated": InstanceState.TERMINATED,
}


class _SizeRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    vcpus: int
    memory_mib: int
    price: float
    arch: str = "x86_64"
    gpus: int = 0


class _ImageRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    os: str
    owner: str
    pattern: str
    versions: tuple[str, ...]
    arch_names: dict[str, str]

    def names(self) -> list[str]:
        return [
            self.pattern.format(version=version, arch=arch)
            for version in self.versions
            for arch in self.arch_names.values()
        ]

    def recognise(self, name: str) -> tuple[str, str] | None:
        """(version, arch) if ``name`` is one of this rule's images."""
        for version in self.versions:
            for arch, arch_name in self.arch_names.items():
                if fnmatch.fnmatchcase(name, self.pattern.format(version=version, arch=arch_name)):
                    return version, arch
        return None


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sizes: tuple[_SizeRow, ...]
    images: tuple[_ImageRule, ...]
    not_portable: dict[str, str]


@functools.cache
def catalog_data() -> _CatalogFile:
    text = resources.files(__package__).joinpath("catalog.yaml").read_text(encoding="utf-8")
    return _CatalogFile.model_validate(load_yaml(text, "catalog.yaml").data)


def _tags(items: Sequence[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def instance_notes(item: Mapping[str, Any]) -> list[str]:
    """What an instance (a DescribeInstances item) uses that no other provider carries, from the
    catalog's ``not_portable`` table (an instance's attached volumes are read separately)."""
    extras = catalog_data().not_portable
    notes = [text for field, text in extras.items() if item.get(field)]
    if item.get("Placement", {}).get("GroupName"):
        notes.append(extras["PlacementGroup"])
    return notes


class Ec2Compute(Compute):
    options_model = AwsOptions

    def __init__(self, name: str, client: Any, options: AwsOptions) -> None:
        super().__init__(name, CAPABILITIES)
        self._client = client
        self.options = options
        self._catalog_cache: Catalog | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> Ec2Compute:
        return cls(spec.provider, client_for(spec, "ec2"), spec.options)

    def close(self) -> None:
        self._client.close()

    # -- catalog -----------------------------------------------------------------------------------

    def _catalog(self) -> Catalog:
        with self._lock:
            if self._catalog_cache is None:
                data = catalog_data()
                sizes = tuple(Size(r.id, r.vcpus, r.memory_mib, r.arch, r.gpus, r.price) for r in data.sizes)
                self._catalog_cache = Catalog(sizes=sizes, images=self._resolve_images(data.images))
            return self._catalog_cache

    def _resolve_images(self, rules: Sequence[_ImageRule]) -> tuple[Image, ...]:
        """For every OS, version and architecture of the rules, the newest image in this region."""
        newest: dict[tuple[str, str, str], dict[str, Any]] = {}
        for rule in rules:
            with converted("catalog"):
                found = self._client.describe_images(
                    Owners=[rule.owner], Filters=[{"Name": "name", "Values": rule.names()}]
                ).get("Images", [])
            for image in found:
                match = rule.recognise(image.get("Name", ""))
                if match is None:
                    continue
                key = (rule.os, *match)
                if key not in newest or image.get("CreationDate", "") > newest[key].get("CreationDate", ""):
                    newest[key] = image
        return tuple(
            Image(image["ImageId"], os_name, version, arch, image.get("Name", ""))
            for (os_name, version, arch), image in sorted(newest.items())
        )

    def _describe_size(self, size_id: str) -> Size | None:
        known = self.catalog().size(size_id)
        try:
            with converted("describe_size", size_id):
                found = self._client.describe_instance_types(InstanceTypes=[size_id]).get("InstanceTypes", [])
        except NotFound:
            return known
        if not found:
            return known
        info = found[0]
        gpus = sum(g.get("Count", 0) for g in info.get("GpuInfo", {}).get("Gpus", []))
        arch = "arm64" if "arm64" in info.get("ProcessorInfo", {}).get("SupportedArchitectures", []) else "x86_64"
        return Size(
            size_id,
            int(info["VCpuInfo"]["DefaultVCpus"]),
            int(info["MemoryInfo"]["SizeInMiB"]),
            arch,
            gpus,
            known.price_per_hour if known else None,
        )

    def _describe_image(self, image_id: str) -> Image | None:
        try:
            with converted("describe_image", image_id):
                found = self._client.describe_images(ImageIds=[image_id]).get("Images", [])
        except NotFound:
            return None
        if not found:
            return None
        name = found[0].get("Name", "")
        for rule in catalog_data().images:
            match = rule.recognise(name)
            if match is not None:
                return Image(image_id, rule.os, match[0], match[1], name)
        return None

    # -- instances ---------------------------------------------------------------------------------

    def _to_instance(self, item: Mapping[str, Any], groups: Mapping[str, tuple[int, ...]]) -> Instance:
        tags = _tags(item.get("Tags"))
        not_portable = instance_notes(item)
        disk_gib, volume_notes = self._volumes(item)
        not_portable.extend(volume_notes)
        ports = sorted({p for g in item.get("SecurityGroups", []) for p in groups.get(g["GroupId"], ())})
        return Instance(
            id=item["InstanceId"],
            name=tags.get("Name", item["InstanceId"]),
            state=_STATES.get(item.get("State", {}).get("Name", ""), InstanceState.UNKNOWN),
            size=item.get("InstanceType", ""),
            image=item.get("ImageId", ""),
            tags=tags,
            address=item.get("PublicIpAddress") or item.get("PrivateIpAddress"),
            private_address=item.get("PrivateIpAddress"),
            ports=tuple(ports),
            arch=item.get("Architecture"),
            disk_gib=disk_gib,
            created=item.get("LaunchTime"),
            not_portable=tuple(dict.fromkeys(not_portable)),
        )

    def _volumes(self, item: Mapping[str, Any]) -> tuple[int | None, list[str]]:
        """The root volume's size (it becomes the spec's disk), and notes on what does not carry:
        data volumes beyond the root, and volume types with provisioned performance."""
        mappings = [m for m in item.get("BlockDeviceMappings", []) if "Ebs" in m]
        if not mappings:
            return None, []
        try:
            with converted("describe_volumes"):
                found = self._client.describe_volumes(VolumeIds=[m["Ebs"]["VolumeId"] for m in mappings])
        except NotFound:
            return None, []
        volumes = {v["VolumeId"]: v for v in found.get("Volumes", [])}
        # The root volume is the one on RootDeviceName; images that name a device no mapping uses
        # boot from the first mapping.
        names = [m.get("DeviceName") for m in mappings]
        root_name = item.get("RootDeviceName") if item.get("RootDeviceName") in names else names[0]
        root_size: int | None = None
        notes = []
        for mapping in mappings:
            volume = volumes.get(mapping["Ebs"]["VolumeId"])
            if volume is None:
                continue
            kind, size = volume.get("VolumeType", "?"), int(volume.get("Size", 0))
            iops = f", {volume['Iops']} provisioned IOPS" if kind in ("io1", "io2") and volume.get("Iops") else ""
            if mapping.get("DeviceName") == root_name:
                root_size = size
                if kind not in ("gp2", "gp3", "standard"):
                    notes.append(f"root EBS volume type {kind}{iops}")
            else:
                notes.append(f"EBS data volume {mapping.get('DeviceName', '')} ({size} GiB {kind}{iops})")
        return root_size, notes

    def _group_ports(self, items: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, ...]]:
        ids = sorted({g["GroupId"] for item in items for g in item.get("SecurityGroups", [])})
        if not ids:
            return {}
        with converted("describe_security_groups"):
            found = self._client.describe_security_groups(GroupIds=ids).get("SecurityGroups", [])
        ports: dict[str, tuple[int, ...]] = {}
        for group in found:
            open_ports: set[int] = set()
            for rule in group.get("IpPermissions", []):
                low, high = rule.get("FromPort"), rule.get("ToPort")
                if rule.get("IpProtocol") in ("tcp", "-1") and low is not None and high is not None and high - low < 64:
                    open_ports.update(range(max(low, 0), high + 1))
            ports[group["GroupId"]] = tuple(sorted(open_ports))
        return ports

    def _describe(self, **params: Any) -> list[Instance]:
        items: list[dict[str, Any]] = []
        with converted("describe_instances"):
            for page in self._client.get_paginator("describe_instances").paginate(**params):
                for reservation in page.get("Reservations", []):
                    items.extend(reservation.get("Instances", []))
        groups = self._group_ports(items)
        return [self._to_instance(item, groups) for item in items]

    def _list(self, tags: dict[str, str]) -> Sequence[Instance]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        return self._describe(Filters=filters) if filters else self._describe()

    def _get(self, instance_id: str) -> Instance:
        found = self._describe(InstanceIds=[instance_id])
        if not found:
            raise NotFound("no such instance", target=instance_id)
        return found[0]

    def _user_data(self, instance_id: str) -> str | None:
        with converted("user_data", instance_id):
            value = self._client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        encoded = value.get("UserData", {}).get("Value")
        return base64.b64decode(encoded).decode(errors="replace") if encoded else None

    def _security_group(self, ports: Sequence[int]) -> str:
        """A security group opening exactly ``ports`` (TCP, from anywhere), shared by equal sets."""
        digest = hashlib.sha256(",".join(map(str, sorted(ports))).encode()).hexdigest()[:10]
        name = f"{self.options.security_group_prefix}-{digest}"
        with converted("security_group", name):
            found = self._client.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
        if found.get("SecurityGroups"):
            return str(found["SecurityGroups"][0]["GroupId"])
        with converted("security_group", name):
            group_id = str(
                self._client.create_security_group(
                    GroupName=name, Description=f"failover: tcp {', '.join(map(str, sorted(ports)))}"
                )["GroupId"]
            )
            self._client.authorize_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[
                    {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                    for p in sorted(ports)
                ],
            )
        return group_id

    def _key_pair(self, public_key: str) -> str:
        name = "failover-" + hashlib.sha256(public_key.strip().encode()).hexdigest()[:12]
        try:
            with converted("import_key_pair", name):
                self._client.import_key_pair(KeyName=name, PublicKeyMaterial=public_key.strip().encode())
        except AlreadyExists:
            pass
        return name

    def _create(self, spec: InstanceSpec, size: str, image: str, client_token: str) -> Instance:
        params: dict[str, Any] = {
            "ImageId": image,
            "InstanceType": size,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": client_token[:64],
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Name", "Value": spec.name}]
                    + [{"Key": k, "Value": v} for k, v in spec.tags.items() if k != "Name"],
                }
            ],
        }
        if spec.user_data:
            params["UserData"] = spec.user_data
        if spec.ports:
            params["SecurityGroupIds"] = [self._security_group(spec.ports)]
        if spec.ssh_keys:
            params["KeyName"] = self._key_pair(spec.ssh_keys[0])
        if self.options.subnet_id:
            params["SubnetId"] = self.options.subnet_id
        root = self._root_device(image)
        if root and spec.disk_gib:
            params["BlockDeviceMappings"] = [{"DeviceName": root, "Ebs": {"VolumeSize": spec.disk_gib}}]
        with converted("create", spec.name):
            created = self._client.run_instances(**params)["Instances"][0]
        return self._get(str(created["InstanceId"]))

    def _root_device(self, image: str) -> str | None:
        with converted("describe_image", image):
            found = self._client.describe_images(ImageIds=[image]).get("Images", [])
        return str(found[0]["RootDeviceName"]) if found and found[0].get("RootDeviceName") else None

    def _start(self, instance_id: str) -> None:
        with converted("start", instance_id):
            self._client.start_instances(InstanceIds=[instance_id])

    def _stop(self, instance_id: str) -> None:
        with converted("stop", instance_id):
            self._client.stop_instances(InstanceIds=[instance_id])

    def _destroy(self, instance_id: str) -> None:
        with converted("destroy", instance_id):
            self._client.terminate_instances(InstanceIds=[instance_id])
