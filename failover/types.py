"""Provider-neutral values passed across the interfaces. All frozen: nothing downstream mutates them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

__all__ = [
    "BucketInfo",
    "ByteRange",
    "MetaField",
    "ObjectInfo",
    "ObjectMeta",
    "PartInfo",
    "UploadInfo",
]


class MetaField(enum.StrEnum):
    """The object metadata a store may or may not be able to hold (declared per store)."""

    CONTENT_TYPE = "content_type"
    CACHE_CONTROL = "cache_control"
    CONTENT_DISPOSITION = "content_disposition"
    CONTENT_ENCODING = "content_encoding"
    CONTENT_LANGUAGE = "content_language"
    EXPIRES = "expires"
    WEBSITE_REDIRECT_LOCATION = "website_redirect_location"
    """Where a static-website request for the object redirects (S3's x-amz-website-redirect-location)."""
    USER = "user"


_SCALARS = tuple(f for f in MetaField if f is not MetaField.USER)
_ALL = frozenset(MetaField)


def _frozen_user(user: Mapping[str, str]) -> Mapping[str, str]:
    # S3 folds user-metadata names to lower case; every store here does the same so that a
    # round trip compares equal whatever the provider.
    return MappingProxyType({str(k).lower(): str(v) for k, v in user.items()})


@dataclass(frozen=True)
class ObjectMeta:
    """HTTP-level metadata of an object. ``None`` means "not set", never "unknown"."""

    content_type: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_encoding: str | None = None
    content_language: str | None = None
    expires: datetime | None = None
    website_redirect_location: str | None = None
    user: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "user", _frozen_user(self.user))

    def present(self) -> frozenset[MetaField]:
        """The fields that carry a value."""
        found: set[MetaField] = {f for f in _SCALARS if getattr(self, f.value) is not None}
        if self.user:
            found.add(MetaField.USER)
        return frozenset(found)

    def only(self, fields: frozenset[MetaField]) -> ObjectMeta:
        """A copy keeping only ``fields`` (what a target can hold)."""
        if fields >= _ALL:  # frozen, so the same object serves
            return self
        return ObjectMeta(
            **{f.value: getattr(self, f.value) for f in _SCALARS if f in fields},
            user=self.user if MetaField.USER in fields else {},
        )

    def with_user(self, **extra: str) -> ObjectMeta:
        return replace(self, user={**self.user, **extra})


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: datetime | None = None


@dataclass(frozen=True)
class ObjectInfo:
    """One object. ``etag`` is opaque: never compared across providers.

    Listings leave ``meta`` as ``None``; :meth:`ObjectStore.head` fills it.
    """

    bucket: str
    key: str
    size: int
    etag: str | None = None
    last_modified: datetime | None = None
    meta: ObjectMeta | None = None
    tag_count: int | None = None
    """How many tags the object has, when the response said (S3 GETs do); None when unknown."""
    uncarried: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Properties of the source object that failover does not carry to another store, by name
    (``storage_class``, ``server_side_encryption``, ``object_lock``, user metadata the store could
    not return...), so a copy can report them as not carried instead of dropping them silently."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive (HTTP semantics); ``end=None`` reads to the end."""

    start: int
    end: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.end is not None and self.end < self.start):
            raise ValueError(f"invalid byte range {self.start}-{self.end}")

    def header(self) -> str:
        return f"bytes={self.start}-{'' if self.end is None else self.end}"


@dataclass(frozen=True)
class UploadInfo:
    """A multipart upload in progress on a store."""

    bucket: str
    key: str
    upload_id: str
    initiated: datetime | None = None


@dataclass(frozen=True)
class PartInfo:
    """One uploaded part; ``etag`` is whatever the store needs back to complete the upload."""

    number: int
    etag: str
    size: int
    checksum: str | None = None
    """The part's body checksum as the store needs it back at completion (e.g. base64 CRC32C)."""
