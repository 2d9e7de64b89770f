"""The reliability dataset: thousands of small objects, some multipart-sized ones, and every awkward
key, with real metadata; seeded and read back with plain boto3 (never failover's code)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from tests.conformance.storage import TRICKY_KEYS, build_key

MIB = 1024 * 1024
SOURCE_CANNOT_LIST = {"control-cr", "control-0x01"}
"""Tricky keys the rig's source (LocalStack) declares it cannot list faithfully (its listing stops
with an error on them, see providers/s3/vendors.yaml), so they are not in the dataset."""


@dataclass(frozen=True)
class Item:
    key: str
    body: bytes
    content_type: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def build(small: int, large: int, large_mib: int, seed: int = 7) -> dict[str, Item]:
    rng = random.Random(seed)
    items: dict[str, Item] = {}
    for n in range(small):
        size = 0 if n % 97 == 0 else rng.randrange(1, 64 * 1024)
        key = f"small/{n % 13:02d}/obj-{n:06d}.bin"
        items[key] = Item(key, rng.randbytes(size), "application/octet-stream", {"n": str(n)})
    for n in range(large):
        key = f"large/video-{n}.mp4"
        items[key] = Item(key, rng.randbytes(large_mib * MIB + n * 1013), "video/mp4", {"title": f"clip {n}"})
    for label, suffix in TRICKY_KEYS:
        if label in SOURCE_CANNOT_LIST:
            continue
        key = build_key("awkward/", suffix)
        items[key] = Item(key, f"{label}\n".encode(), "text/plain; charset=utf-8", {"label": label})
    return items


def seed(client: Any, bucket: str, items: dict[str, Item]) -> int:
    client.create_bucket(Bucket=bucket)

    def put(item: Item) -> None:
        client.put_object(
            Bucket=bucket, Key=item.key, Body=item.body, ContentType=item.content_type, Metadata=item.meta
        )

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, items.values()))
    return sum(len(i.body) for i in items.values())


def listing(client: Any, bucket: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return found


def compare(client: Any, bucket: str, expected: dict[str, Item]) -> dict[str, list[str]]:
    """What the target holds against what it should: missing, altered (bytes), metadata lost."""
    present = listing(client, bucket)
    problems: dict[str, list[str]] = {"missing": [], "altered": [], "metadata": []}

    def check(item: Item) -> tuple[str, str] | None:
        if item.key not in present:
            return ("missing", item.key)
        got = client.get_object(Bucket=bucket, Key=item.key)
        body = got["Body"].read()
        if hashlib.sha256(body).hexdigest() != item.sha256:
            return ("altered", item.key)
        if got.get("ContentType") != item.content_type or not item.meta.items() <= got.get("Metadata", {}).items():
            return ("metadata", item.key)
        return None

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for found in pool.map(check, expected.values()):
            if found:
                problems[found[0]].append(found[1])
    return problems


def orphans(client: Any, bucket: str) -> list[str]:
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [u["Key"] for u in uploads]
