"""Options of the ``libcloud`` storage adapter."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from failover.capabilities import Capability, KeyRewrite
from failover.dns import NameserverAddress

__all__ = ["LibcloudComputeOptions", "LibcloudDnsOptions", "LibcloudStorageOptions"]


class LibcloudStorageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: str = Field(
        description="libcloud storage driver: minio, s3, google_storage, azure_blobs, openstack_swift, ..."
    )
    driver_args: dict[str, Any] = Field(
        default_factory=dict,
        description="extra non-secret constructor arguments (project=, ex_tenant_name=, ...)",
    )
    without: tuple[Capability, ...] = Field(default=(), description="capabilities the server behind the driver lacks")
    key_rewrites: dict[Capability, KeyRewrite] = Field(
        default_factory=dict, description="what the server behind the driver does to keys of undeclared shapes"
    )
    max_key_segment_bytes: int | None = Field(default=None, ge=1, description="the server's path-segment limit")


class LibcloudComputeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: str = Field(description="libcloud compute driver: ec2, openstack, digitalocean, linode, gce, azure_arm")
    driver_args: dict[str, Any] = Field(default_factory=dict, description="extra non-secret constructor arguments")
    location: str | None = Field(default=None, description="location id for drivers without regions")


class LibcloudDnsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: str = Field(description="libcloud DNS driver: powerdns, route53, digitalocean, cloudflare, google, linode")
    driver_args: dict[str, Any] = Field(default_factory=dict, description="extra non-secret constructor arguments")
    nameserver: NameserverAddress = None
