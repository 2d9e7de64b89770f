"""Options of the ``libcloud`` storage adapter."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from failover.capabilities import Capability

__all__ = ["LibcloudStorageOptions"]


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
    max_key_segment_bytes: int | None = Field(default=None, ge=1, description="the server's path-segment limit")
