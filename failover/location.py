"""``provider:bucket/prefix`` locations, as written on the command line and in playbooks."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["Location", "parse_location"]


@dataclass(frozen=True)
class Location:
    provider: str
    bucket: str | None = None
    """None means every bucket of the account (``provider:``)."""
    prefix: str = ""

    def __str__(self) -> str:
        if self.bucket is None:
            return f"{self.provider}:"
        return f"{self.provider}:{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


def parse_location(text: str) -> Location:
    """Parse ``provider:`` or ``provider:bucket`` or ``provider:bucket/prefix``."""
    scheme, found, path = text.partition("://")
    if found and scheme:
        bucket = path.split("/", 1)[0]
        raise ConfigError(
            f"{text!r}: failover names locations by provider, not by URL scheme",
            hint=f"write PROVIDER:{path or 'BUCKET'} with a provider from your providers file "
            f"(e.g. aws:{bucket or 'BUCKET'}); `failover providers check` lists them",
        )
    provider, colon, rest = text.partition(":")
    if not colon or not provider:
        raise ConfigError(
            f"{text!r} is not a location",
            hint="write PROVIDER:BUCKET[/PREFIX], or PROVIDER: for every bucket (e.g. aws:media/2024/)",
        )
    if not rest:
        return Location(provider)
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"{text!r}: the bucket name is empty", hint="write PROVIDER:BUCKET[/PREFIX]")
    return Location(provider, bucket, prefix)
