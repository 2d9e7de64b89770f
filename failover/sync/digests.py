"""Content digests computed while bytes stream through: SHA-256 (default) or CRC32C.

A digest names what the bytes are, independently of any provider: ETags are never compared across
providers. The digest is recorded in the journal and in the target object's user metadata under
``failover-<algorithm>``.

An object copied as part ranges by several workers (``--cluster``) gets a *parts digest*: the
digest of its parts' digests, in order, written ``parts-<part size>:<hex>``. Its bytes alone
determine it (given the part size it names), so anyone can compute it again by reading the object;
it never equals a plain digest, so one is never mistaken for the other (a mismatch costs a re-read
or a re-send, never a false match).
"""

from __future__ import annotations

import hashlib
from typing import Literal, Protocol

from ..errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "Digest",
    "PartsDigest",
    "digest_like",
    "is_parts_digest",
    "metadata_key",
    "new_digest",
    "parts_digest_of",
]

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


_PARTS = "parts-"


class PartsDigest:
    """A parts digest computed over a stream (see the module docstring)."""

    def __init__(self, algorithm: Algorithm, part_size: int) -> None:
        self.algorithm, self.part_size = algorithm, part_size
        self._parts: list[str] = []
        self._part = new_digest(algorithm)
        self._filled = 0

    def update(self, data: bytes, /) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self.part_size - self._filled)
            self._part.update(bytes(view[:take]))
            self._filled += take
            view = view[take:]
            if self._filled == self.part_size:
                self._parts.append(self._part.hexdigest())
                self._part, self._filled = new_digest(self.algorithm), 0

    def hexdigest(self) -> str:
        parts = self._parts + ([self._part.hexdigest()] if self._filled or not self._parts else [])
        return parts_digest_of(self.algorithm, self.part_size, parts)


def parts_digest_of(algorithm: Algorithm, part_size: int, part_digests: list[str]) -> str:
    """The parts digest of an object whose parts (of ``part_size`` bytes, the last shorter) have
    ``part_digests``, in order."""
    whole = new_digest(algorithm)
    whole.update("".join(part_digests).encode())
    return f"{_PARTS}{part_size}:{whole.hexdigest()}"


def is_parts_digest(value: str | None) -> bool:
    return bool(value) and str(value).startswith(_PARTS)


def digest_like(algorithm: Algorithm, value: str | None) -> Digest:
    """A digest of the kind ``value`` is (a parts digest and its part size, or a plain one), to
    compute it again from the bytes."""
    if value and value.startswith(_PARTS):
        size = value[len(_PARTS) :].split(":", 1)[0]
        if size.isdigit() and int(size) > 0:
            return PartsDigest(algorithm, int(size))
    return new_digest(algorithm)


def metadata_key(algorithm: Algorithm) -> str:
    """The user-metadata name the digest is stored under on the target."""
    return f"failover-{algorithm}"
