"""A small reference platform to migrate: user media with real metadata, on the lab's ``aws`` side.

Deterministic (same bytes every time), so re-seeding changes nothing and a sync after it copies
nothing.
"""

from __future__ import annotations

import contextlib
import random
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

from failover.storage import ObjectStore
from failover.types import ObjectMeta

from .servers import LabError

__all__ = ["MEDIA_BUCKETS", "SeedObject", "media_objects", "publish_media", "seed_media"]

MEDIA_BUCKETS = ("media", "backups")
MIB = 1024 * 1024


@dataclass(frozen=True)
class SeedObject:
    bucket: str
    key: str
    body: bytes
    meta: ObjectMeta
    tags: dict[str, str] = field(default_factory=dict)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real (solid colour) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def media_objects(users: int = 12) -> list[SeedObject]:
    rng = random.Random(2021)
    objects: list[SeedObject] = []
    for n in range(users):
        user = f"user{n:03d}"
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        objects.append(
            SeedObject(
                "media",
                f"avatars/{user}.png",
                png(64, 64, colour),
                ObjectMeta(
                    content_type="image/png",
                    cache_control="public, max-age=86400",
                    user={"uploader": user, "width": "64", "height": "64"},
                ),
                {"visibility": "public"},
            )
        )
        for post in range(3):
            text = f"Post {post} by {user}: " + " ".join(
                rng.choice(["free", "speech", "moves", "fast"]) for _ in range(40)
            )
            objects.append(
                SeedObject(
                    "media",
                    f"posts/{user}/{post:04d}.json",
                    (f'{{"author": "{user}", "body": "{text}"}}').encode(),
                    ObjectMeta(
                        content_type="application/json; charset=utf-8", content_language="en", user={"author": user}
                    ),
                )
            )
    objects.append(
        SeedObject(
            "media",
            "videos/launch.mp4",
            rng.randbytes(12 * MIB + 12345),  # above the multipart threshold
            ObjectMeta(
                content_type="video/mp4",
                cache_control="public, max-age=604800, immutable",
                content_disposition='inline; filename="launch.mp4"',
                user={"uploader": "user000", "duration-s": "93"},
            ),
            {"visibility": "public", "kind": "video"},
        )
    )
    objects.append(
        SeedObject(
            "media",
            "exports/terms of service (2021).pdf",
            b"%PDF-1.4\n" + rng.randbytes(40_000),
            ObjectMeta(
                content_type="application/pdf",
                content_disposition='attachment; filename="terms.pdf"',
                expires=datetime(2031, 1, 1, tzinfo=UTC),
            ),
        )
    )
    objects.append(
        SeedObject(
            "backups",
            "db/2021-01-09.sql.gz",
            rng.randbytes(3 * MIB),
            ObjectMeta(content_type="application/gzip", content_encoding="gzip", user={"database": "posts"}),
            {"retention": "90d"},
        )
    )
    return objects


def seed_media(store: ObjectStore) -> list[SeedObject]:
    """Create the media buckets and objects (idempotent)."""
    objects = media_objects()
    for bucket in MEDIA_BUCKETS:
        store.create_bucket(bucket)
    for obj in objects:
        store.put(obj.bucket, obj.key, obj.body, meta=obj.meta, tags=obj.tags or None)
    return objects


def publish_media(info: Any) -> None:
    """Make ``media`` public-read on the aws side (browsers load it straight from the store). The
    evacuation carries that to the target (its sync step has ``bucket_settings: true``)."""
    from .platform import public_read

    for name in ("localstack",):
        state = info.servers[name]
        s3 = state.client("s3")
        try:
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
                s3.create_bucket(Bucket="media")
            public_read(s3, "media")
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise LabError(f"making media public on {name} failed: {error}") from error
        finally:
            s3.close()
