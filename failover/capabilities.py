"""What a store declares it can do, and the limits it works within.

Capabilities are declared, not discovered by failure: the sync engine plans with them, the conformance
suite skips on them, and calling an undeclared operation raises :class:`~failover.errors.NotSupported`
before anything is sent.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from .errors import InvalidRequest, NotSupported, ProviderError
from .settings import Setting
from .types import MetaField

__all__ = [
    "GIB",
    "KEY_SHAPES",
    "MIB",
    "Capability",
    "KeyRewrite",
    "StoreCapabilities",
    "StoreLimits",
    "key_shapes",
]

MIB = 1024 * 1024
GIB = 1024 * MIB


E = TypeVar("E", bound=enum.StrEnum)


@dataclass(frozen=True)
class Declared(Generic[E]):
    """The operations an adapter of a non-storage service declares (compute, DNS)."""

    operations: frozenset[E]

    def __contains__(self, capability: object) -> bool:
        return capability in self.operations

    def describe(self) -> dict[str, object]:
        return {"operations": sorted(c.value for c in self.operations)}


class DeclaringService(Generic[E]):
    """What the compute and DNS interfaces share: a provider name, the operations it declares,
    undeclared operations refused, and errors named after the provider and the operation."""

    def __init__(self, name: str, capabilities: Declared[E]) -> None:
        self.name = name
        self.capabilities = capabilities

    def _require(self, capability: E, operation: str) -> None:
        if capability not in self.capabilities:
            raise NotSupported(capability.value, provider=self.name, operation=operation)

    def _named(self, error: ProviderError, operation: str) -> ProviderError:
        error.provider = error.provider or self.name
        error.operation = error.operation or operation
        return error


class Capability(enum.StrEnum):
    """Optional object-store operations. The core (list, head, open, put, delete, bucket exists) is
    mandatory and not listed."""

    CREATE_BUCKET = "create_bucket"
    """create_bucket() works (some accounts or stores only allow pre-made buckets)."""
    DELETE_BUCKET = "delete_bucket"
    """delete_bucket() removes an empty bucket."""
    RANGE_READ = "range_read"
    """open() honours a byte range."""
    SORTED_LISTING = "sorted_listing"
    """list_objects() yields keys in ascending UTF-8 byte order, as S3 does. Without it every key
    still comes exactly once, in an order of the store's own (SeaweedFS walks its directory tree)."""
    SERVER_SIDE_COPY = "server_side_copy"
    """copy() copies within the store without the bytes passing through this process."""
    TAGS = "tags"
    """Object tags: get_tags(), put_tags() and tags on put()."""
    OBJECT_ACLS = "object_acls"
    """Per-object ACLs that let anyone read one object (S3's public-read canned ACL), honoured for
    anonymous reads: object_public() and make_object_public()."""
    VERIFIED_WRITES = "verified_writes"
    """The store checks every body it receives against a digest sent with it (Content-MD5) and
    refuses a mismatch: a write that succeeded stored exactly the bytes sent. Without it, a copy is
    verified by reading the object back."""
    MULTIPART = "multipart"
    """The part-level upload API (start/upload_part/complete/abort/list uploads), which makes large
    uploads resumable after a crash."""
    KEY_IS_PREFIX = "key_is_prefix"
    """A key may also be the prefix of other keys ("a" and "a/b" together). Filesystems cannot."""
    KEY_EMPTY_SEGMENTS = "key_empty_segments"
    """Keys with empty segments ("a//b", "/a") are stored as given, not collapsed to "a/b"."""
    KEY_TRAILING_SLASH = "key_trailing_slash"
    """A key ending in "/" is an ordinary object with a body, not a directory marker."""
    KEY_DOT_SEGMENTS = "key_dot_segments"
    """Keys with "." or ".." segments ("a/./b", "../x") are stored as given, not resolved as paths."""
    KEY_BACKSLASH = "key_backslash"
    """A key holding "\\" is stored as given, not with "/" in its place (as Windows-minded filers do)."""
    KEY_CONTROL_CHARACTERS = "key_control_characters"
    """Keys holding control characters an XML listing cannot carry unencoded (U+0000-U+001F but tab
    and line feed; a carriage return, which XML turns into a line feed, included) are stored, and
    listed, as given."""
    LISTING_START_AFTER = "listing_start_after"
    """list_objects(start_after=k) continues right after k in the store's own listing order (stores
    with SORTED_LISTING do by definition), so a listing can resume, and be confirmed, cheaply."""
    SECOND_LISTING = "second_listing"
    """list_objects_second_way() lists through a second mechanism of the store, independent of the
    first (S3: ListObjects with markers beside ListObjectsV2 with continuation tokens). Each confirms
    the other's end, and a sync cross-checks one with the other."""


KEY_SHAPES = (
    Capability.KEY_EMPTY_SEGMENTS,
    Capability.KEY_TRAILING_SLASH,
    Capability.KEY_DOT_SEGMENTS,
    Capability.KEY_BACKSLASH,
    Capability.KEY_CONTROL_CHARACTERS,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")


def key_shapes(key: str) -> list[Capability]:
    """The key-shape capabilities a store needs to hold ``key`` faithfully."""
    needed = []
    if "//" in key or key.startswith("/"):
        needed.append(Capability.KEY_EMPTY_SEGMENTS)
    if key.endswith("/"):
        needed.append(Capability.KEY_TRAILING_SLASH)
    if any(segment in (".", "..") for segment in key.split("/")):
        needed.append(Capability.KEY_DOT_SEGMENTS)
    if "\\" in key:
        needed.append(Capability.KEY_BACKSLASH)
    if _CONTROL.search(key):
        needed.append(Capability.KEY_CONTROL_CHARACTERS)
    return needed


class KeyRewrite(enum.StrEnum):
    """What a store does with a key of a shape it does not declare: data in each store's declaration,
    probed by the conformance suite (a store that silently holds such a key as given must declare the
    shape; one that rewrites it must say how)."""

    REFUSED = "refused"
    """The write is rejected."""
    COLLAPSED = "collapsed"
    """Runs of "/" become one, and a leading "/" goes ("a//b" is stored as "a/b")."""
    RESOLVED = "resolved"
    """"." and ".." segments are resolved as a path ("a/./b/../c" is stored as "a/c")."""
    DIRECTORY = "directory"
    """A key ending in "/" becomes a directory marker that holds no data and is not listed."""
    SLASH = "slash"
    """"\\" is stored as "/"."""
    UNLISTABLE = "unlistable"
    """Stored, but the store's listing cannot show it faithfully (the listing fails on it, or shows
    another name)."""


@dataclass(frozen=True)
class StoreLimits:
    """Sizes and name rules. Defaults are Amazon S3's documented limits."""

    max_key_bytes: int = 1024
    max_key_segment_bytes: int | None = None
    """Longest run between two '/' (filesystems: 255 bytes); ``None`` for no such limit."""
    min_part_size: int = 5 * MIB
    max_part_size: int = 5 * GIB
    max_parts: int = 10_000
    max_single_put: int = 5 * GIB
    max_object_size: int = 5 * 1024 * GIB
    max_user_metadata_bytes: int = 2048
    key_normalization: Literal["NFC", "NFD"] | None = None
    """The Unicode form the store rewrites names to (two spellings of a name are one object)."""
    bucket_name_pattern: str = r"^(?!xn--)(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"

    def check_key(self, key: str) -> None:
        """Raise InvalidRequest when ``key`` cannot be stored under these limits."""
        if not key:
            raise InvalidRequest("an object key cannot be empty", target=repr(key))
        encoded = key.encode("utf-8", errors="surrogatepass")
        if len(encoded) > self.max_key_bytes:
            raise InvalidRequest(
                f"key is {len(encoded)} bytes long; this store allows at most {self.max_key_bytes}",
                target=key[:80] + "...",
            )
        if self.max_key_segment_bytes is not None:
            for segment in key.split("/"):
                if len(segment.encode("utf-8", errors="surrogatepass")) > self.max_key_segment_bytes:
                    raise InvalidRequest(
                        f"a path segment of this key is longer than {self.max_key_segment_bytes} bytes",
                        target=key[:80] + "...",
                        hint="keys that must live on a filesystem need segments under its name limit",
                    )

    def valid_bucket_name(self, name: str) -> bool:
        return re.fullmatch(self.bucket_name_pattern, name) is not None

    def part_size_for(self, size: int, preferred: int) -> int:
        """The part size for an object of ``size`` bytes: ``preferred`` unless that would need more
        than ``max_parts`` parts, then grown (in whole MiB) until it fits."""
        if size > self.max_object_size:
            raise InvalidRequest(f"object of {size} bytes exceeds this store's limit of {self.max_object_size} bytes")
        part = max(preferred, self.min_part_size)
        needed = math.ceil(size / self.max_parts) if size else 0
        if needed > part:
            part = math.ceil(needed / MIB) * MIB
        if part > self.max_part_size:
            raise InvalidRequest(
                f"object of {size} bytes needs parts larger than this store's {self.max_part_size} bytes"
            )
        return part


ALL_META = frozenset(MetaField)


@dataclass(frozen=True)
class StoreCapabilities:
    """A store's declaration: optional operations, which metadata fields round-trip, and limits."""

    operations: frozenset[Capability]
    metadata: frozenset[MetaField] = ALL_META
    limits: StoreLimits = field(default_factory=StoreLimits)
    key_rewrites: Mapping[Capability, KeyRewrite] = field(default_factory=dict)
    """For each key shape the store does not declare, what it does with such a key."""
    settings: frozenset[Setting] = frozenset()
    """Bucket settings the store holds and reads back (failover.settings)."""
    settings_not_held: Mapping[Setting, str] = field(default_factory=dict)
    """Why it does not hold some others, in its own terms (for plans and reports)."""
    settings_implied: Mapping[Setting, str] = field(default_factory=dict)
    """Settings the store always has, so there is nothing to write (Azure encrypts every blob at rest)."""
    settings_shared: frozenset[Setting] = frozenset()
    """Held settings the store keeps for more than one bucket (Azure's CORS rules are its storage
    account's): a bucket's are added to them, and every bucket reads all of them back."""

    def __contains__(self, capability: object) -> bool:
        return capability in self.operations

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary for `providers check` and reports."""
        return {
            "operations": sorted(c.value for c in self.operations),
            "metadata": sorted(m.value for m in self.metadata),
            "max_key_bytes": self.limits.max_key_bytes,
            "max_key_segment_bytes": self.limits.max_key_segment_bytes,
            "multipart_min_part": self.limits.min_part_size,
            "multipart_max_parts": self.limits.max_parts,
            "max_single_put": self.limits.max_single_put,
            "key_rewrites": {shape.value: rewrite.value for shape, rewrite in sorted(self.key_rewrites.items())},
            "bucket_settings": sorted(s.value for s in self.settings),
            "bucket_settings_shared": sorted(s.value for s in self.settings_shared),
        }
