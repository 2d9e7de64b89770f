"""Options of the ``s3`` storage adapter (the ``options:`` block of a provider's storage service)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from failover.capabilities import Capability

__all__ = ["S3Options"]


class S3Options(BaseModel):
    """Per-provider settings. ``vendor`` picks a quirk profile from ``vendors.yaml``; the other
    fields override single entries of that profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: str = Field(default="aws", description="quirk profile: aws, minio, seaweedfs, ceph, r2, b2, ...")
    addressing_style: Literal["path", "virtual", "auto"] | None = None
    checksums: Literal["when_supported", "when_required"] | None = None
    operations: tuple[Capability, ...] | None = Field(
        default=None, description="replace the profile's declared optional operations"
    )
    part_size_mib: int = Field(default=8, ge=5, le=5120, description="preferred multipart part size")
    multipart_threshold_mib: int | None = Field(default=None, ge=5, description="single PUT up to this size")
    max_pool_connections: int = Field(default=64, ge=1, le=1024, description="kept-alive connections per host")
    expect_continue: bool | None = Field(
        default=None, description="ask Expect: 100-continue for large bodies (the vendor profile's default)"
    )
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
