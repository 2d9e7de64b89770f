"""Which source bucket goes to which target bucket, and under which key. Pure logic."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..errors import ConfigError
from ..location import Location

__all__ = ["BucketPair", "map_bucket_name", "plan_buckets"]


@dataclass(frozen=True)
class BucketPair:
    src_bucket: str
    src_prefix: str
    dst_bucket: str
    dst_prefix: str
    mapped_because: str | None = None
    """Why the target bucket has another name (explicit --bucket-map, or invalid on the target)."""

    def dst_key(self, src_key: str) -> str:
        return self.dst_prefix + src_key[len(self.src_prefix) :]

    def src_key(self, dst_key: str) -> str:
        return self.src_prefix + dst_key[len(self.dst_prefix) :]

    @property
    def label(self) -> str:
        return f"{self.src_bucket}/{self.src_prefix} -> {self.dst_bucket}/{self.dst_prefix}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def map_bucket_name(name: str, valid: Callable[[str], bool], taken: set[str]) -> str:
    """A valid target name for source bucket ``name``: itself when valid and free, otherwise a
    deterministic cleaned-up name (lower case, '-' for anything else, 3-63 characters), with a short
    hash of the original when cleaning made two names equal."""
    if valid(name) and name not in taken:
        return name
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", name.lower())
    cleaned = re.sub(r"\.{2,}", ".", re.sub(r"-{2,}", "-", cleaned)).strip(".-")
    if cleaned.startswith("xn--"):
        cleaned = "b-" + cleaned
    cleaned = (cleaned or "bucket")[:56]
    if len(cleaned) < 3:
        cleaned = f"{cleaned}-bucket"
    if not valid(cleaned) or cleaned in taken:
        cleaned = f"{cleaned[:56].rstrip('.-')}-{_short_hash(name)}"
    if not valid(cleaned):
        raise ConfigError(f"cannot find a valid target name for bucket {name!r}", hint="give one with --bucket-map")
    return cleaned


def plan_buckets(
    source: Location,
    target: Location,
    source_buckets: Iterable[str],
    valid_on_target: Callable[[str], bool],
    bucket_map: Mapping[str, str] | None = None,
) -> list[BucketPair]:
    """The bucket pairs a sync from ``source`` to ``target`` covers.

    ``provider:`` -> ``provider:`` copies every bucket to the same name (mapped where needed);
    ``p:b[/x]`` -> ``q:c[/y]`` copies one bucket (prefix x to prefix y); ``p:b[/x]`` -> ``q:``
    keeps the bucket name and prefix.
    """
    explicit = dict(bucket_map or {})
    for src_name, dst_name in explicit.items():
        if not valid_on_target(dst_name):
            raise ConfigError(
                f"--bucket-map {src_name}={dst_name}: {dst_name!r} is not a valid bucket name on the target"
            )
    if source.bucket is None:
        if target.bucket is not None:
            raise ConfigError(
                f"copying every bucket of {source} needs a whole account as the target, not {target}",
                hint=f"write the target as {target.provider}:",
            )
        names = sorted(source_buckets)
    else:
        names = [source.bucket]
    taken = set(explicit.values())
    pairs = []
    for name in names:
        if target.bucket is not None:
            dst_bucket, reason = target.bucket, None
            if not valid_on_target(dst_bucket):
                raise ConfigError(f"{dst_bucket!r} is not a valid bucket name on {target.provider}")
        elif name in explicit:
            dst_bucket, reason = explicit[name], "--bucket-map"
        else:
            dst_bucket = map_bucket_name(name, valid_on_target, taken)
            reason = None if dst_bucket == name else "invalid on the target"
            taken.add(dst_bucket)
        src_prefix = source.prefix if source.bucket is not None else ""
        dst_prefix = target.prefix if target.bucket is not None else src_prefix
        pairs.append(BucketPair(name, src_prefix, dst_bucket, dst_prefix, reason))
    duplicates = {p.dst_bucket for p in pairs if sum(q.dst_bucket == p.dst_bucket for q in pairs) > 1}
    if duplicates and target.bucket is None:
        raise ConfigError(f"several source buckets would land in {sorted(duplicates)}", hint="fix --bucket-map")
    return pairs
