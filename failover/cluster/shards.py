"""Splitting a bucket's key space into shards that workers list in parallel.

A shard is a key range ``(after, upto]``: the keys greater than ``after`` (from the start when
None) and at most ``upto`` (to the end when None); consecutive shards share their boundary, so
every key is in exactly one, whatever the boundaries are (they need not be keys).

The boundaries come from probes, not from a listing of the bucket (which is what the shards are
for): one-key listings after chosen strings find the first key and a bound on the last, and the
range between them is cut at evenly spaced points of the key space (keys read as base-256
fractions after the prefix they share). Nested (``a/b/c``) and flat (``obj-000001``) buckets split
alike. Sizes are similar where keys spread evenly over the range between first and last; one shard
holding most keys costs parallelism, never correctness.

Only stores that list in byte order (SORTED_LISTING) can be split; any other is one shard.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..capabilities import Capability
from ..storage import ObjectStore

__all__ = ["Shard", "plan_shards"]

# Characters a probe may append, in byte order; the last stands for "any non-ASCII character" (U+FFFD:
# servers echo a probe into XML, which cannot carry U+FFFF).
_ALPHABET = "".join(chr(c) for c in range(0x20, 0x7F)) + "\ufffd"
_DEPTH = 4
"""Characters of the last key's bound found by probing (beyond what it shares with the first)."""
_POINT_BYTES = 8
_MAX_PROBED = 64


@dataclass(frozen=True)
class Shard:
    after: str | None
    upto: str | None

    def __str__(self) -> str:
        return f"({self.after!r}, {self.upto!r}]"


def plan_shards(store: ObjectStore, bucket: str, prefix: str, count: int) -> list[Shard]:
    """About ``count`` shards of ``bucket``'s keys under ``prefix`` (one when the store cannot be
    split, or holds too few distinct keys to cut)."""
    whole = [Shard(None, None)]
    if count <= 1 or Capability.SORTED_LISTING not in store.capabilities:
        return whole
    first = _first_after(store, bucket, prefix, None)
    if first is None:
        return whole
    last = _last_bound(store, bucket, prefix, first)
    low, high = first.encode(), last.encode()
    shared = 0
    while shared < min(len(low), len(high)) and low[shared] == high[shared]:
        shared += 1
    start, end = _number(low[shared:]), _number(high[shared:])
    if end <= start:
        return whole
    points: list[str] = []
    for i in range(1, count):
        value = start + (end - start) * i // count
        text = _printable((high[:shared] + _bytes(value)).decode("utf-8", errors="ignore"))
        if text and (not points or text > points[-1]) and text.startswith(prefix):
            points.append(text)
    bounds: list[str | None] = [None, *points, None]
    return [Shard(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _printable(text: str) -> str:
    """A boundary a server can be sent and echo in XML: without control characters or U+FFFE/FFFF
    (any string serves as a boundary; it need not be a key)."""
    return "".join(c for c in text if c >= " " and c not in "\ufffe\uffff")


def _number(data: bytes) -> int:
    padded = data[:_POINT_BYTES].ljust(_POINT_BYTES, b"\x00")
    return int.from_bytes(padded, "big")


def _bytes(value: int) -> bytes:
    return value.to_bytes(_POINT_BYTES, "big")


def _first_after(store: ObjectStore, bucket: str, prefix: str, after: str | None) -> str | None:
    return store.first_key_after(bucket, prefix, after)


def _last_bound(store: ObjectStore, bucket: str, prefix: str, first: str) -> str:
    """A string at least as great as every key under ``prefix`` in the characters that matter: built
    one character at a time, each the greatest for which a key after it still exists, until
    _DEPTH characters past where it leaves the first key (about 7 one-key listings a character)."""
    bound, beyond = prefix, 0
    for _ in range(_MAX_PROBED):
        if beyond >= _DEPTH or _first_after(store, bucket, prefix, bound + _ALPHABET[0]) is None:
            break
        low, high = 0, len(_ALPHABET) - 1
        while low < high:  # the greatest character c with a key after bound + c
            middle = (low + high + 1) // 2
            if _first_after(store, bucket, prefix, bound + _ALPHABET[middle]) is not None:
                low = middle
            else:
                high = middle - 1
        bound += _ALPHABET[low]
        if not first.startswith(bound):
            beyond += 1
    return bound + _ALPHABET[-1]
