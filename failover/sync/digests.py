"""Content digests computed while bytes stream through: SHA-256 (default) or CRC32C.

A digest names what the bytes are, independently of any provider: ETags are never compared across
providers. The digest is recorded in the journal and in the target object's user metadata under
``failover-<algorithm>``.
"""

from __future__ import annotations

import hashlib
from typing import Literal, Protocol

from ..errors import ConfigError

__all__ = ["ALGORITHMS", "Digest", "metadata_key", "new_digest"]

Algorithm = Literal["sha256", "crc32c"]
ALGORITHMS: tuple[Algorithm, ...] = ("sha256", "crc32c")


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class _Crc32c:
    def __init__(self) -> None:
        try:
            import google_crc32c
        except ImportError as exc:  # pragma: no cover - a dependency of failover
            raise ConfigError("CRC32C needs the google-crc32c package", hint="pip install google-crc32c") from exc
        self._value = 0
        self._extend = google_crc32c.extend

    def update(self, data: bytes, /) -> None:
        self._value = self._extend(self._value, data)

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


def new_digest(algorithm: Algorithm) -> Digest:
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "crc32c":
        return _Crc32c()
    raise ConfigError(f"unknown digest {algorithm!r}", hint=f"use one of: {', '.join(ALGORITHMS)}")


def metadata_key(algorithm: Algorithm) -> str:
    """The user-metadata name the digest is stored under on the target."""
    return f"failover-{algorithm}"
