"""Vendor profiles of S3-compatible stores, loaded from ``vendors.yaml`` beside this module."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

from failover.capabilities import MIB, Capability, KeyRewrite, StoreCapabilities, StoreLimits
from failover.errors import ConfigError
from failover.settings import Setting
from failover.types import MetaField
from failover.yamlio import load_yaml

__all__ = ["ListingProfile", "VendorLimits", "VendorProfile", "vendor_names", "vendor_profile"]

AddressingStyle = Literal["path", "virtual", "auto"]
ChecksumMode = Literal["when_supported", "when_required"]


class VendorLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_part_size_mib: int = 5
    max_part_size_mib: int = 5120
    max_parts: int = 10_000
    max_single_put_mib: int = 5120
    max_copy_mib: int = 5120
    max_key_bytes: int = 1024
    max_key_segment_bytes: int | None = None


class ListingProfile(BaseModel):
    """How to page through a listing on this store (see the notes in vendors.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pagination: Literal["token", "start_after"] = "token"
    """ListObjectsV2 pages followed by continuation token, or by start-after the last key."""
    url_encoding: bool = True
    """Ask for URL-encoded keys (encoding-type=url), which XML can carry whatever they hold."""
    page_size: int = 1000


class VendorProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    notes: str = ""
    addressing_style: AddressingStyle = "path"
    checksums: ChecksumMode = "when_required"
    etag: Literal["md5", "md5-parts", "opaque"] = "md5-parts"
    location_constraint: bool = False
    reports_tag_count: bool = False
    body_checksum: Literal["crc32c", "md5"] = "md5"
    expect_continue: bool = False
    operations: tuple[Capability, ...] = ()
    metadata: tuple[str, ...] = ("all",)
    limits: VendorLimits = VendorLimits()
    listing: ListingProfile = ListingProfile()
    key_rewrites: dict[Capability, KeyRewrite] = {}
    settings: tuple[Setting, ...] = ()
    settings_not_held: dict[Setting, str] = {}

    def capabilities(self) -> StoreCapabilities:
        limits = StoreLimits(
            max_key_bytes=self.limits.max_key_bytes,
            max_key_segment_bytes=self.limits.max_key_segment_bytes,
            min_part_size=self.limits.min_part_size_mib * MIB,
            max_part_size=self.limits.max_part_size_mib * MIB,
            max_parts=self.limits.max_parts,
            max_single_put=self.limits.max_single_put_mib * MIB,
        )
        metadata = frozenset(MetaField) if "all" in self.metadata else frozenset(MetaField(m) for m in self.metadata)
        return StoreCapabilities(
            operations=frozenset(self.operations),
            metadata=metadata,
            limits=limits,
            key_rewrites=dict(self.key_rewrites),
            settings=frozenset(self.settings),
            settings_not_held=dict(self.settings_not_held),
        )


class _VendorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: VendorProfile
    vendors: dict[str, VendorProfile]


@functools.cache
def _profiles() -> dict[str, VendorProfile]:
    text = resources.files(__package__).joinpath("vendors.yaml").read_text(encoding="utf-8")
    return _VendorFile.model_validate(load_yaml(text, "vendors.yaml").data).vendors


def vendor_names() -> list[str]:
    return sorted(_profiles())


def vendor_profile(name: str) -> VendorProfile:
    try:
        return _profiles()[name]
    except KeyError:
        raise ConfigError(f"unknown S3 vendor {name!r}", hint=f"known vendors: {', '.join(vendor_names())}") from None
