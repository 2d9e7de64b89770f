"""``MemoryStore``: an object store in this process's memory, for tests of what sits above the
storage interface (the sync engine, copier resume, verify, the playbook runner and rollback).

It implements every hook of :class:`~failover.storage.ObjectStore` and passes the storage
conformance suite (``tests/providers/test_storage_memory.py``). Stores with the same ``space``
option share their buckets, so two providers of type ``memory`` can be a source and a target.

:class:`Faults` makes it misbehave on purpose, the way real servers have: raise on the n-th call of
an operation (any exception, not only failover's own), return a truncated body, leave keys out of a
listing page, end a listing early while claiming it is complete, store keys under another name
than asked, or hold an operation until released (a server that stopped answering).
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..capabilities import MIB, Capability, StoreCapabilities, StoreLimits
from ..changes import Action, Change
from ..config import ServiceSpec
from ..errors import IntegrityError, InvalidRequest, NotFound
from ..feed import ChangeEvent, ChangeFeed
from ..storage import ObjectStore, RawBody
from ..types import BucketInfo, ByteRange, ObjectInfo, ObjectMeta, PartInfo, UploadInfo

__all__ = ["Faults", "MemoryFeed", "MemoryFeedOptions", "MemoryOptions", "MemoryStore"]

ALL_OPERATIONS = tuple(Capability)


class MemoryOptions(BaseModel):
    """Options of the ``memory`` storage adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str = Field(default="default", description="stores with the same space share their buckets")
    operations: tuple[Capability, ...] = Field(default=ALL_OPERATIONS, description="declared capabilities")
    page_size: int = Field(default=1000, ge=1, le=10000, description="objects per listing page")
    min_part_size: int = Field(default=5 * MIB, ge=1)
    normalize_unicode: Literal["NFC", "NFD"] | None = None
    synthetic: int = Field(
        default=0,
        ge=0,
        description="a bucket named 'synthetic' that lists this many generated 1 KiB objects (obj-0000000000...), "
        "computed, never stored (listings and HEADs only): listings of tens of millions of objects for benchmarks",
    )


@dataclass
class _Object:
    data: bytes
    meta: ObjectMeta
    tags: dict[str, str]
    etag: str
    modified: datetime
    public: bool = False
    """Its ACL lets anyone read it (OBJECT_ACLS); a new write makes it private, as S3 does."""


@dataclass
class _Upload:
    key: str
    meta: ObjectMeta
    tags: dict[str, str]
    initiated: datetime
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)


@dataclass
class Faults:
    """Misbehaviour on purpose. Each hook is plain data a test sets; every call of an operation
    counts (``calls``), faults or not."""

    raise_on: dict[str, tuple[int, BaseException | Callable[[], BaseException]]] = field(default_factory=dict)
    """operation -> (n, error): the n-th call of that operation (and every later one, when n is
    negative, counting from 1) raises the error."""
    truncate: dict[str, int] = field(default_factory=dict)
    """key -> bytes: reading that key's body ends after so many bytes."""
    omit: set[str] = field(default_factory=set)
    """Keys left out of every listing page of the first listing mechanism."""
    omit_second: set[str] = field(default_factory=set)
    """Keys left out of the second listing mechanism."""
    end_after: int | None = None
    """The first listing mechanism ends, claiming to be complete, after this many keys (per call)."""
    rewrite: Callable[[str], str] | None = None
    """Keys are stored under ``rewrite(key)`` (an undeclared key rewrite)."""
    hold: set[str] = field(default_factory=set)
    """Operations that block until ``release`` is set (a server that stopped answering)."""
    release: threading.Event = field(default_factory=threading.Event)
    calls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self, operation: str) -> None:
        with self._lock:
            count = self.calls[operation] = self.calls.get(operation, 0) + 1
        if operation in self.hold:
            self.release.wait()
        found = self.raise_on.get(operation)
        if found is not None:
            nth, error = found
            if count == nth or (nth < 0 and count >= -nth):
                raise error() if callable(error) and not isinstance(error, BaseException) else error


@dataclass
class _Space:
    buckets: dict[str, dict[str, _Object]] = field(default_factory=dict)
    created: dict[str, datetime] = field(default_factory=dict)
    uploads: dict[str, dict[str, _Upload]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: Faults | None = None
    """Faults every store opened on this space shares (see :meth:`MemoryStore.space_faults`)."""
    feeds: dict[str, list[tuple[str, str, float, int | None]]] = field(default_factory=dict)
    """Buckets with a change feed (:class:`MemoryFeed`), and their events not yet received."""

    def notify(self, bucket: str, key: str, kind: str, size: int | None = None) -> None:
        with self.lock:
            events = self.feeds.get(bucket)
            if events is not None:
                events.append((key, kind, time.time(), size))


_SPACES: dict[str, _Space] = {}
_SPACES_LOCK = threading.Lock()


def _space(name: str) -> _Space:
    with _SPACES_LOCK:
        return _SPACES.setdefault(name, _Space())


class _Body:
    def __init__(self, data: memoryview, limit: int | None) -> None:
        self._data = data
        self._position = 0
        self._limit = len(data) if limit is None else min(limit, len(data))

    def read(self, size: int = -1, /) -> bytes:
        end = self._limit if size < 0 else min(self._limit, self._position + size)
        chunk = bytes(self._data[self._position : end])
        self._position = end
        return chunk

    def close(self) -> None:
        pass


def _etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


SYNTHETIC = "synthetic"
_SYNTHETIC_SIZE = 1024
_SYNTHETIC_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def _synthetic_key(n: int) -> str:
    return f"obj-{n:010d}"


def _synthetic_info(count: int, key: str) -> ObjectInfo:
    if not (key.startswith("obj-") and key[4:].isdigit() and len(key) == 14 and int(key[4:]) < count):
        raise NotFound("no such key", target=f"{SYNTHETIC}/{key}")
    return ObjectInfo(SYNTHETIC, key, _SYNTHETIC_SIZE, _etag(key.encode()), _SYNTHETIC_TIME)


def _synthetic_listing(count: int, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
    """The synthetic bucket's objects under ``prefix`` after ``start_after``, in byte order (the
    keys are fixed-width numbers: the first one is found by bisection, not by a scan)."""
    keys = range(count)
    first = bisect.bisect_left(keys, prefix.encode(), key=lambda n: _synthetic_key(n).encode())
    if start_after is not None:
        after = bisect.bisect_right(keys, start_after.encode(), key=lambda n: _synthetic_key(n).encode())
        first = max(first, after)
    for n in range(first, count):
        key = _synthetic_key(n)
        if not key.startswith(prefix):
            return
        yield ObjectInfo(SYNTHETIC, key, _SYNTHETIC_SIZE, None, _SYNTHETIC_TIME)


class MemoryStore(ObjectStore):
    """See the module docstring."""

    options_model = MemoryOptions

    def __init__(self, name: str, options: MemoryOptions | None = None) -> None:
        options = options or MemoryOptions()
        super().__init__(name, self.declared_capabilities(options))
        self.options = options
        self.space = _space(options.space)
        self.faults = self.space.faults or Faults()

    @classmethod
    def declared_capabilities(cls, options: MemoryOptions) -> StoreCapabilities:
        limits = StoreLimits(min_part_size=options.min_part_size, key_normalization=options.normalize_unicode)
        return StoreCapabilities(operations=frozenset(options.operations), limits=limits)

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> MemoryStore:
        return cls(spec.provider, spec.options)

    @staticmethod
    def space_faults(space: str) -> Faults:
        """Faults shared by every store opened on ``space`` from now on (until :meth:`reset`):
        how a test makes the stores a command opens by itself misbehave."""
        found = _space(space)
        with found.lock:
            if found.faults is None:
                found.faults = Faults()
            return found.faults

    @property
    def namespace(self) -> str:
        return f"memory:{self.options.space}"

    @staticmethod
    def reset(space: str | None = None) -> None:
        """Forget every bucket (of one space, or of all)."""
        with _SPACES_LOCK:
            if space is None:
                _SPACES.clear()
            else:
                _SPACES.pop(space, None)

    # -- helpers -----------------------------------------------------------------------------------

    def _synthetic(self, bucket: str) -> bool:
        return bucket == SYNTHETIC and self.options.synthetic > 0 and bucket not in self.space.buckets

    def _stored(self, key: str) -> str:
        form = self.capabilities.limits.key_normalization
        key = unicodedata.normalize(form, key) if form else key
        return self.faults.rewrite(key) if self.faults.rewrite else key

    def _bucket(self, bucket: str) -> dict[str, _Object]:
        found = self.space.buckets.get(bucket)
        if found is None:
            raise NotFound("no such bucket", target=bucket)
        return found

    def _object(self, bucket: str, key: str) -> _Object:
        found = self._bucket(bucket).get(self._stored(key))
        if found is None:
            raise NotFound("no such key", target=f"{bucket}/{key}")
        return found

    def _info(self, bucket: str, key: str, obj: _Object, *, meta: bool) -> ObjectInfo:
        return ObjectInfo(
            bucket,
            key,
            len(obj.data),
            obj.etag,
            obj.modified,
            obj.meta if meta else None,
            len(obj.tags) if meta else None,
        )

    def _write(self, bucket: str, key: str, data: bytes, meta: ObjectMeta, tags: dict[str, str]) -> ObjectInfo:
        with self.space.lock:
            objects = self._bucket(bucket)
            obj = _Object(data, meta, dict(tags), _etag(data), datetime.now(UTC))
            objects[self._stored(key)] = obj
            self.space.notify(bucket, key, "put", len(data))
        self.counters.add("bytes_written", len(data))
        return ObjectInfo(bucket, key, len(data), obj.etag)

    # -- buckets -----------------------------------------------------------------------------------

    def _list_buckets(self) -> list[BucketInfo]:
        self.faults.enter("list_buckets")
        with self.space.lock:
            return [BucketInfo(name, self.space.created.get(name)) for name in self.space.buckets]

    def _bucket_exists(self, bucket: str) -> bool:
        self.faults.enter("bucket_exists")
        return bucket in self.space.buckets or (bucket == SYNTHETIC and self.options.synthetic > 0)

    def _create_bucket(self, bucket: str) -> None:
        self.faults.enter("create_bucket")
        with self.space.lock:
            self.space.buckets.setdefault(bucket, {})
            self.space.created.setdefault(bucket, datetime.now(UTC))
            self.space.uploads.setdefault(bucket, {})

    def _delete_bucket(self, bucket: str) -> None:
        self.faults.enter("delete_bucket")
        with self.space.lock:
            if self._bucket(bucket):
                raise InvalidRequest("bucket is not empty", target=bucket)
            del self.space.buckets[bucket]
            self.space.uploads.pop(bucket, None)

    # -- listings ----------------------------------------------------------------------------------

    def _sorted_keys(self, bucket: str, prefix: str) -> list[str]:
        with self.space.lock:
            keys = [k for k in self._bucket(bucket) if k.startswith(prefix)]
        return sorted(keys, key=lambda k: k.encode("utf-8", "surrogatepass"))

    def _listing(self, bucket: str, prefix: str, start_after: str | None, *, second: bool) -> Iterator[ObjectInfo]:
        if self._synthetic(bucket):
            yield from _synthetic_listing(self.options.synthetic, prefix, start_after)
            return
        operation = "list_objects_second" if second else "list_objects"
        keys = self._sorted_keys(bucket, prefix)
        if start_after is not None:
            after = start_after.encode("utf-8", "surrogatepass")
            keys = [k for k in keys if k.encode("utf-8", "surrogatepass") > after]
        omitted = self.faults.omit_second if second else self.faults.omit
        given = 0
        for start in range(0, max(len(keys), 1), self.options.page_size):
            self.faults.enter(operation)
            page = keys[start : start + self.options.page_size]
            for key in page:
                if key in omitted:
                    continue
                if not second and self.faults.end_after is not None and given >= self.faults.end_after:
                    return
                with self.space.lock:
                    obj = self.space.buckets.get(bucket, {}).get(key)
                if obj is not None:
                    given += 1
                    yield self._info(bucket, key, obj, meta=False)

    def _list_objects(self, bucket: str, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        return self._listing(bucket, prefix, start_after, second=False)

    def _list_objects_second(self, bucket: str, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        self._require(Capability.SECOND_LISTING, "list_objects_second_way")
        return self._listing(bucket, prefix, start_after, second=True)

    def _first_after(self, bucket: str, prefix: str, key: str | None, *, second_way: bool) -> str | None:
        self.faults.enter("first_after")
        if self._synthetic(bucket):
            return next((info.key for info in _synthetic_listing(self.options.synthetic, prefix, key)), None)
        keys = self._sorted_keys(bucket, prefix)
        after = (key or "").encode("utf-8", "surrogatepass")
        omitted = self.faults.omit_second if second_way else self.faults.omit
        for candidate in keys:
            if (key is None or candidate.encode("utf-8", "surrogatepass") > after) and candidate not in omitted:
                return candidate
        return None

    # -- objects -----------------------------------------------------------------------------------

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        self.faults.enter("head")
        if self._synthetic(bucket):
            return _synthetic_info(self.options.synthetic, key)
        return self._info(bucket, key, self._object(bucket, key), meta=True)

    def _open(self, bucket: str, key: str, byte_range: ByteRange | None) -> tuple[ObjectInfo, RawBody, int, int]:
        self.faults.enter("open")
        obj = self._object(bucket, key)
        size = len(obj.data)
        start, end = 0, size - 1
        if byte_range is not None:
            if byte_range.start >= size and size > 0:
                raise InvalidRequest("range starts past the end of the object", target=f"{bucket}/{key}")
            start = byte_range.start
            end = size - 1 if byte_range.end is None else min(byte_range.end, size - 1)
        length = max(end - start + 1, 0)
        view = memoryview(obj.data)[start : start + length]
        limit = self.faults.truncate.get(key)
        body = _Body(view, None if limit is None else max(limit - start, 0))
        return self._info(bucket, key, obj, meta=True), body, start, length

    def _put_bytes(
        self,
        bucket: str,
        key: str,
        body: bytes,
        meta: ObjectMeta,
        tags: dict[str, str],
        *,
        checksum_of: bytes | None = None,
    ) -> ObjectInfo:
        self.faults.enter("put")
        if checksum_of is not None and _etag(checksum_of) != _etag(body):
            raise IntegrityError("the body does not match the checksum sent with it", target=f"{bucket}/{key}")
        return self._write(bucket, key, body, meta, tags)

    def _delete(self, bucket: str, key: str) -> None:
        self.faults.enter("delete")
        with self.space.lock:
            if self._bucket(bucket).pop(self._stored(key), None) is not None:
                self.space.notify(bucket, key, "delete")

    def _copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, meta: ObjectMeta | None) -> None:
        self.faults.enter("copy")
        obj = self._object(src_bucket, src_key)
        self._write(dst_bucket, dst_key, obj.data, meta if meta is not None else obj.meta, obj.tags)

    def _get_tags(self, bucket: str, key: str) -> dict[str, str]:
        self.faults.enter("get_tags")
        return dict(self._object(bucket, key).tags)

    def _put_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        self.faults.enter("put_tags")
        with self.space.lock:
            obj = self._object(bucket, key)
            self._bucket(bucket)[self._stored(key)] = replace(obj, tags=dict(tags))

    def _object_public(self, bucket: str, key: str) -> bool:
        self.faults.enter("object_public")
        return self._object(bucket, key).public

    def _make_object_public(self, bucket: str, key: str) -> None:
        self.faults.enter("make_object_public")
        with self.space.lock:
            obj = self._object(bucket, key)
            self._bucket(bucket)[self._stored(key)] = replace(obj, public=True)

    # -- multipart ---------------------------------------------------------------------------------

    def _uploads(self, bucket: str) -> dict[str, _Upload]:
        self._bucket(bucket)
        return self.space.uploads.setdefault(bucket, {})

    def _upload(self, bucket: str, upload_id: str) -> _Upload:
        found = self._uploads(bucket).get(upload_id)
        if found is None:
            raise NotFound("no such upload", target=f"{bucket}#{upload_id}")
        return found

    def _start_upload(self, bucket: str, key: str, meta: ObjectMeta, tags: dict[str, str]) -> str:
        self.faults.enter("start_upload")
        upload_id = uuid.uuid4().hex
        with self.space.lock:
            self._uploads(bucket)[upload_id] = _Upload(key, meta, dict(tags), datetime.now(UTC))
        return upload_id

    def _upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> PartInfo:
        self.faults.enter("upload_part")
        etag = _etag(data)
        with self.space.lock:
            self._upload(bucket, upload_id).parts[number] = (bytes(data), etag)
        return PartInfo(number, etag, len(data))

    def _complete_upload(self, bucket: str, key: str, upload_id: str, parts: list[PartInfo]) -> str | None:
        self.faults.enter("complete_upload")
        with self.space.lock:
            upload = self._upload(bucket, upload_id)
            chunks = []
            for part in parts:
                stored = upload.parts.get(part.number)
                if stored is None or stored[1] != part.etag:
                    raise InvalidRequest(f"part {part.number} is not the one uploaded", target=f"{bucket}/{key}")
                chunks.append(stored[0])
            for part in parts[:-1]:
                if part.size < self.capabilities.limits.min_part_size:
                    raise InvalidRequest(f"part {part.number} is smaller than the minimum", target=f"{bucket}/{key}")
            del self._uploads(bucket)[upload_id]
        self.counters.add("bytes_written", -sum(len(c) for c in chunks))  # parts were counted when sent
        return self._write(bucket, key, b"".join(chunks), upload.meta, upload.tags).etag

    def _abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.faults.enter("abort_upload")
        with self.space.lock:
            if self._uploads(bucket).pop(upload_id, None) is None:
                raise NotFound("no such upload", target=f"{bucket}#{upload_id}")

    def _list_uploads(self, bucket: str, prefix: str) -> Iterator[UploadInfo]:
        self.faults.enter("list_uploads")
        with self.space.lock:
            found = [
                UploadInfo(bucket, upload.key, upload_id, upload.initiated)
                for upload_id, upload in self._uploads(bucket).items()
                if upload.key.startswith(prefix)
            ]
        return iter(sorted(found, key=lambda u: (u.key, u.upload_id)))

    def _list_parts(self, bucket: str, key: str, upload_id: str) -> Iterator[PartInfo]:
        self.faults.enter("list_parts")
        with self.space.lock:
            upload = self._upload(bucket, upload_id)
            return iter([PartInfo(n, etag, len(data)) for n, (data, etag) in sorted(upload.parts.items())])

    def confirm_part(self, part: PartInfo, data: bytes) -> PartInfo | None:
        return part if part.size == len(data) and part.etag == _etag(data) else None

    def part_proof(self, data: bytes) -> str:
        return "md5:" + _etag(data)

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of ``bucket`` as stored: key -> bytes (for assertions)."""
        with self.space.lock:
            return {key: obj.data for key, obj in self._bucket(bucket).items()}

    def stored_meta(self, bucket: str, key: str) -> ObjectMeta:
        with self.space.lock:
            return self._bucket(bucket)[key].meta


class MemoryFeedOptions(BaseModel):
    """Options of the ``memory`` change feed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str = Field(default="default", description="the memory space whose buckets it follows")


class MemoryFeed(ChangeFeed):
    """The change events of a memory space's buckets (see failover/feed.py for the contract).
    Events are delivered once each and acknowledged by receiving them; :meth:`drop` loses the
    waiting ones, as a feed that misses events would."""

    options_model = MemoryFeedOptions

    def __init__(self, name: str = "memory", options: MemoryFeedOptions | None = None) -> None:
        self.name = name
        self.options = options or MemoryFeedOptions()

    @property
    def space(self) -> _Space:
        return _space(self.options.space)  # looked up each time: MemoryStore.reset replaces spaces

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> MemoryFeed:
        return cls(spec.provider, spec.options)

    def plan_setup(self, buckets: Sequence[str]) -> list[Change]:
        with self.space.lock:
            return [Change(Action.CREATE, f"feed of bucket {b}") for b in buckets if b not in self.space.feeds]

    def setup(self, buckets: Sequence[str]) -> list[Change]:
        changes = self.plan_setup(buckets)
        with self.space.lock:
            for bucket in buckets:
                self.space.feeds.setdefault(bucket, [])
        return changes

    def teardown(self, buckets: Sequence[str]) -> list[Change]:
        with self.space.lock:
            gone = [b for b in buckets if self.space.feeds.pop(b, None) is not None]
        return [Change(Action.DELETE, f"feed of bucket {b}") for b in gone]

    def check(self, buckets: Sequence[str]) -> None:
        with self.space.lock:
            missing = [b for b in buckets if b not in self.space.feeds]
        if missing:
            raise NotFound(
                f"bucket(s) {', '.join(missing)} have no change feed",
                provider=self.name,
                operation="check_feed",
                target=missing[0],
                hint="failover standby --setup-feed creates it",
            )

    def receive(self, wait: float) -> list[ChangeEvent]:
        deadline = time.monotonic() + wait
        while True:
            with self.space.lock:
                if not self.space.feeds:
                    raise NotFound("the change feed is gone", provider=self.name, operation="receive")
                events = [
                    ChangeEvent(bucket, key, "delete" if kind == "delete" else "put", when, "", size)
                    for bucket, waiting in self.space.feeds.items()
                    for key, kind, when, size in waiting
                ]
                for waiting in self.space.feeds.values():
                    waiting.clear()
            if events or time.monotonic() >= deadline:
                return events
            time.sleep(0.02)

    def ack(self, events: Sequence[ChangeEvent]) -> None:
        pass  # delivered once: received is acknowledged

    def backlog(self) -> int | None:
        with self.space.lock:
            return sum(len(waiting) for waiting in self.space.feeds.values())

    def drop(self) -> int:
        """Lose the events waiting (a feed that misses events); returns how many."""
        with self.space.lock:
            lost = sum(len(waiting) for waiting in self.space.feeds.values())
            for waiting in self.space.feeds.values():
                waiting.clear()
        return lost
