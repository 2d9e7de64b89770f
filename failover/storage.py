"""The object-storage interface.

:class:`ObjectStore` is what every storage adapter implements and everything above ``providers/``
uses. Its public methods are the contract; they check declared capabilities, validate keys, apply
the retry policy and keep counters, then call the adapter's underscore hooks. Adapters implement the
hooks and raise only :mod:`failover.errors` types (SDK errors are converted in each adapter's
``errors`` module).

Contract shared by every method:

* ``bucket`` is a bucket (container) name, ``key`` an object key: any non-empty string within the
  store's :class:`~failover.capabilities.StoreLimits`, compared as is (no Unicode normalisation, no
  slash folding: ``a//b``, ``a/`` and NFD keys are distinct objects).
* A missing bucket or object raises :class:`~failover.errors.NotFound`.
* An operation whose capability is not declared raises :class:`~failover.errors.NotSupported`
  before anything is sent.
* Transient failures are retried under the store's :class:`~failover.retry.RetryPolicy`; when attempts
  run out the last error is raised. When the store belongs to a run with a :class:`~failover.liveness.
  Liveness`, every request counts towards it and retries stop once the run has stalled.
* A listing's end is a claim: :meth:`ObjectStore.list_objects` confirms it by asking again after the
  last key (through the store's second listing mechanism where it declares one) and goes on when
  more keys turn up.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import hashlib
import io
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from .capabilities import MIB, Capability, StoreCapabilities, key_shapes
from .errors import (
    ConnectionLost,
    IntegrityError,
    InvalidRequest,
    ListingIncomplete,
    NotFound,
    NotSupported,
    ProviderError,
    Stalled,
    Timeout,
    Transient,
)
from .liveness import Liveness
from .retry import Counters, RetryPolicy
from .settings import BucketSettings, HeldSettings, Setting
from .types import BucketInfo, ByteRange, ObjectInfo, ObjectMeta, PartInfo, UploadInfo

__all__ = [
    "ObjectReader",
    "ObjectStore",
    "RawBody",
    "Readable",
    "read_full",
]

T = TypeVar("T")

DEFAULT_PART_SIZE = 8 * MIB
READ_CHUNK = 1 * MIB


class Readable(Protocol):
    """Anything with ``read(n)``: files, ``io.BytesIO``, an :class:`ObjectReader`."""

    def read(self, size: int = -1, /) -> bytes: ...


class RawBody(Protocol):
    """A response body as an adapter returns it."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def read_full(source: Readable, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; fewer only at end of stream."""
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = source.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class _Prepend:
    """A Readable that replays ``head`` and then continues with ``rest``."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        data = self._head.read(size)
        if data or size == 0:
            return data
        return self._rest.read(size)


class ObjectReader:
    """A streamed object body (or byte range of one).

    ``read(n)`` returns at most ``n`` bytes and ``b""`` at the end. The reader knows how many bytes
    the body must have: a body that ends early raises :class:`IntegrityError` instead of passing a
    truncated object on as complete. When the connection drops mid-body and the store declares
    ``RANGE_READ``, the rest is requested again from where it stopped (a bounded number of times);
    if the object changed meanwhile (different ETag) that is an IntegrityError too.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        info: ObjectInfo,
        body: RawBody,
        *,
        start: int,
        length: int,
        reopen: Callable[[int], tuple[ObjectInfo, RawBody]] | None,
        policy: RetryPolicy,
        counters: Counters,
        on_bytes: Callable[[], None] | None = None,
    ) -> None:
        self.info = info
        self.length = length
        self._on_bytes = on_bytes
        self._body = body
        self._start = start
        self._position = 0
        self._reopen = reopen
        self._policy = policy
        self._counters = counters
        self._resumes = 0
        self._closed = False

    @property
    def position(self) -> int:
        """Bytes delivered so far."""
        return self._position

    def read(self, size: int = -1, /) -> bytes:
        remaining = self.length - self._position
        if remaining <= 0:
            return b""
        want = remaining if size is None or size < 0 else min(size, remaining)
        while True:
            try:
                data = self._body.read(want)
            except (Transient, IntegrityError) as error:  # reset, timed out, or cut short: go on from here
                self._resume(error)
                continue
            if not data:
                # The server closed the body before the declared length.
                self._resume(
                    IntegrityError(
                        f"body ended after {self._position} of {self.length} bytes",
                        operation="read",
                        target=f"{self.info.bucket}/{self.info.key}",
                    )
                )
                continue
            if len(data) > want:
                raise IntegrityError(
                    f"body is longer than its declared {self.length} bytes",
                    operation="read",
                    target=f"{self.info.bucket}/{self.info.key}",
                )
            self._position += len(data)
            self._counters.add("bytes_read", len(data))
            if self._on_bytes is not None:
                self._on_bytes()
            return data

    def _resume(self, error: ProviderError) -> None:
        """Ask for the rest of the body again, from where it stopped: the reader's one retry loop,
        with the policy's backoff and attempt limit."""
        while True:
            self._resumes += 1
            if self._reopen is None or self._resumes >= self._policy.max_attempts:
                raise error
            self._counters.add("retries")
            self._body.close()
            time.sleep(self._policy.delay(self._resumes, error))
            try:
                info, body = self._reopen(self._start + self._position)
            except (Transient, IntegrityError) as again:
                error = again
                continue
            if info.etag and self.info.etag and info.etag != self.info.etag:
                body.close()
                raise IntegrityError(
                    "object changed while it was being read",
                    operation="read",
                    target=f"{self.info.bucket}/{self.info.key}",
                )
            self._body = body
            return

    def iter_chunks(self, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def readall(self) -> bytes:
        return b"".join(self.iter_chunks())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._body.close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ObjectStore(abc.ABC):
    """A bucket-and-key object store on one provider.

    Subclasses set :attr:`capabilities` and implement the underscore hooks. Optional hooks default to
    raising NotSupported, and the public methods refuse undeclared operations before calling them.
    """

    def __init__(
        self,
        name: str,
        capabilities: StoreCapabilities,
        *,
        retry: RetryPolicy | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        multipart_threshold: int | None = None,
    ) -> None:
        self.name = name
        self.capabilities = capabilities
        self.retry = retry or RetryPolicy()
        self.counters = Counters()
        self.liveness: Liveness | None = None
        """Set by a run: every request counts towards its deadline for making no progress."""
        limits = capabilities.limits
        self.part_size = max(part_size, limits.min_part_size)
        self.multipart_threshold = min(
            multipart_threshold if multipart_threshold is not None else self.part_size,
            limits.max_single_put,
        )

    # -- helpers -----------------------------------------------------------------------------------

    def _require(self, capability: Capability, operation: str) -> None:
        if capability not in self.capabilities:
            raise NotSupported(capability.value, provider=self.name, operation=operation)

    @contextlib.contextmanager
    def _naming(self, operation: str) -> Iterator[None]:
        """Fill in provider and operation on errors raised by the adapter."""
        try:
            yield
        except ProviderError as error:
            error.provider = error.provider or self.name
            error.operation = error.operation or operation
            raise

    @property
    def namespace(self) -> str:
        """Which bucket namespace this store reaches: two stores with the same namespace see the
        same buckets whatever their provider names, options or credentials (the overlap guard of a
        copy compares these). Adapters name their endpoint; the default is the provider name."""
        return f"{type(self).__name__}:{self.name}"

    @property
    def endpoint_label(self) -> str:
        """How errors and the run's deadline name this store: the provider and where it is."""
        return self.name

    def _stopped(self) -> str | None:
        return self.liveness.stalled() if self.liveness is not None else None

    def _attempt(self, operation: str, fn: Callable[[], T]) -> T:
        """One request, naming the provider in its errors and counting towards the run's deadline."""
        liveness = self.liveness
        if liveness is None:
            with self._naming(operation):
                return fn()
        who = self.endpoint_label
        liveness.asking(who)
        answered = False
        try:
            with self._naming(operation):
                result = fn()
            answered = True
            return result
        except ProviderError as error:
            # An error response is an answer; a timeout, a refused or reset connection is not.
            answered = not isinstance(error, Timeout | ConnectionLost)
            raise
        finally:
            liveness.finished(who, answered=answered)

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one idempotent request under the retry policy, naming the provider in errors. When
        the run has stalled, a failure that would have been retried becomes :class:`Stalled`."""
        try:
            return self.retry.call(
                lambda: self._attempt(operation, fn),
                on_retry=lambda error, delay: self.counters.add("retries"),
                stop=self._stopped,
            )
        except ProviderError as error:
            reason = self._stopped()
            if reason is not None and error.retryable:
                raise Stalled(reason, provider=self.name, operation=operation, target=error.target) from error
            raise

    def check_key(self, key: str) -> None:
        """Raise InvalidRequest or NotSupported if this store cannot hold ``key`` exactly as given
        (too long, or a key shape it does not declare). Nothing is sent."""
        self._check_key(key)

    def _check_key(self, key: str) -> None:
        """Refuse, before sending anything, a key this store cannot hold as given."""
        try:
            self.capabilities.limits.check_key(key)
        except InvalidRequest as error:
            error.provider = self.name
            raise
        for shape in key_shapes(key):
            if shape not in self.capabilities:
                raise NotSupported(shape.value, provider=self.name, operation=f"key {key[:60]!r}")

    def check_bucket_name(self, bucket: str) -> None:
        """Raise InvalidRequest when ``bucket`` is not a valid name on this store."""
        if not self.capabilities.limits.valid_bucket_name(bucket):
            raise InvalidRequest(
                "invalid bucket name for this store",
                provider=self.name,
                target=bucket,
                hint="map it to a valid name (lower-case letters, digits, '-' and '.', 3-63 chars)",
            )

    # -- buckets -----------------------------------------------------------------------------------

    def list_buckets(self) -> list[BucketInfo]:
        """Every bucket the credentials can see, sorted by name."""
        return sorted(self._call("list_buckets", self._list_buckets), key=lambda b: b.name)

    def bucket_exists(self, bucket: str) -> bool:
        """True when ``bucket`` exists and is reachable with these credentials."""
        return self._call("bucket_exists", lambda: self._bucket_exists(bucket))

    def clock(self, bucket: str) -> datetime:
        """The store's time now, as it stamps objects' modification times (a remote store's clock may
        differ from this machine's): what tells an object written during a run from one written
        before it."""
        return self._call("clock", lambda: self._clock(bucket))

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket``. Idempotent: an existing bucket of ours is fine; one owned by another
        account raises AlreadyExists."""
        self._require(Capability.CREATE_BUCKET, "create_bucket")
        self.check_bucket_name(bucket)
        self._call("create_bucket", lambda: self._create_bucket(bucket))

    def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket. Idempotent: a missing bucket is not an error."""
        self._require(Capability.DELETE_BUCKET, "delete_bucket")
        with contextlib.suppress(NotFound):
            self._call("delete_bucket", lambda: self._delete_bucket(bucket))

    # -- objects -----------------------------------------------------------------------------------

    def list_objects(self, bucket: str, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Stream the objects of ``bucket`` whose keys start with ``prefix``, each exactly once, after
        ``start_after`` when given. Memory does not grow with the number of objects.

        Order: ascending UTF-8 byte order on stores that declare SORTED_LISTING; otherwise the
        store's own stable order (and ``start_after`` means "after that key in this order").

        The end is confirmed, never taken on trust: when the listing stops, the store is asked
        again for a key after the last one (through its second listing mechanism where it declares
        SECOND_LISTING); if one turns up, the listing ended early and goes on from there. A listing
        interrupted by a transient error resumes after the last key it yielded; when retries run
        out, or the store's answers contradict each other, the error propagates and the caller must
        treat the listing as incomplete (:class:`~failover.errors.ListingIncomplete`).
        """
        return self._confirmed_listing(bucket, prefix, start_after, lister=self._list_objects, first=False)

    def list_objects_second_way(
        self, bucket: str, prefix: str = "", *, start_after: str | None = None
    ) -> Iterator[ObjectInfo]:
        """The same listing through the store's second, independent mechanism (SECOND_LISTING),
        with the same contract; its end is confirmed through the first mechanism."""
        self._require(Capability.SECOND_LISTING, "list_objects_second_way")
        return self._confirmed_listing(bucket, prefix, start_after, lister=self._list_objects_second, first=True)

    def first_key_after(self, bucket: str, prefix: str = "", key: str | None = None) -> str | None:
        """The first key under ``prefix`` after ``key`` (the first key when None), or None: one
        question for one key (a probe, as when a bucket's key space is split into shards). A hint,
        not a listing: nothing is concluded about keys it did not name."""
        return self._call("list_objects", lambda: self._first_after(bucket, prefix, key, second_way=False))

    def _after_end(self, bucket: str, prefix: str, last: str | None, *, second: bool) -> str | None:
        """Is there a key after ``last``? Asked through the other mechanism than the listing used,
        and, when that says no, through the same one again: one answer that claims the end may be as
        wrong as the listing was (a confirmation is a request like any other)."""
        if Capability.SECOND_LISTING not in self.capabilities:
            return self._first_after(bucket, prefix, last, second_way=False)
        found = self._first_after(bucket, prefix, last, second_way=not second)
        if found is None:
            found = self._first_after(bucket, prefix, last, second_way=second)
        return found

    def _confirmed_listing(
        self,
        bucket: str,
        prefix: str,
        start_after: str | None,
        *,
        lister: Callable[[str, str, str | None], Iterable[ObjectInfo]],
        first: bool,
    ) -> Iterator[ObjectInfo]:
        def confirm(last: str | None) -> str | None:
            return self._after_end(bucket, prefix, last, second=first)

        resumable = (
            Capability.SORTED_LISTING in self.capabilities or Capability.LISTING_START_AFTER in self.capabilities
        )
        ordered = Capability.SORTED_LISTING in self.capabilities
        last = start_after
        failures = 0
        stuck = 0
        while True:
            # Stores that cannot start after a key are listed again and skipped to it.
            skipping = last is not None and not resumable
            progressed = False
            try:
                for info in lister(bucket, prefix, None if skipping else last):
                    if skipping:
                        skipping = info.key != last
                        continue
                    if ordered and last is not None and info.key <= last:
                        raise ListingIncomplete(
                            f"listing went backwards or repeated ({info.key!r} after {last!r})", target=bucket
                        )
                    yield info
                    last = info.key
                    progressed = True
                    failures = 0
                if skipping:
                    raise ListingIncomplete(
                        f"cannot resume the listing: {last!r} is gone", provider=self.name, target=bucket
                    )
                following = self._attempt("list_objects", functools.partial(confirm, last))
            except ProviderError as error:
                # The one retry of a listing: resume after the last key yielded (pages are not
                # retried on their own, so attempts do not multiply).
                error.provider = error.provider or self.name
                error.operation = error.operation or "list_objects"
                failures += 1
                reason = self._stopped()
                if reason is not None and error.retryable:
                    raise Stalled(reason, provider=self.name, operation="list_objects", target=bucket) from error
                if not error.retryable or failures >= self.retry.max_attempts:
                    raise
                self.counters.add("retries")
                time.sleep(self.retry.delay(failures, error))
                continue
            if following is None:
                return
            if ordered and last is not None and following <= last:
                raise ListingIncomplete(
                    f"the listing's confirmation named {following!r}, which is not after {last!r}",
                    provider=self.name,
                    target=bucket,
                )
            # The listing ended early: it claimed to be complete, yet there is more after its last key.
            self.counters.add("listings_ended_early")
            stuck = 0 if progressed else stuck + 1
            if stuck >= 2:
                # Listing again after the same key found nothing while the confirmation insists there
                # is more: the two mechanisms contradict each other, and neither can be trusted.
                raise ListingIncomplete(
                    f"the store keeps ending its listing after {last!r} while a confirmation finds {following!r}",
                    provider=self.name,
                    target=bucket,
                    hint="the store's listing is unreliable here; its vendor profile may need another listing "
                    "mode (see providers/s3/vendors.yaml)",
                )
            failures = 0

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Size, ETag, modification time and metadata of one object (``meta`` is filled)."""
        self._check_key(key)
        return self._call("head", lambda: self._head(bucket, key))

    def open(self, bucket: str, key: str, byte_range: ByteRange | None = None) -> ObjectReader:
        """Open the object for streamed reading; with ``byte_range``, only those bytes.

        The reader's ``info`` carries size and metadata from the same response, so a copy needs no
        separate head(). A range past the end is clipped to the object, as HTTP does; a range that
        starts past the end raises InvalidRequest.
        """
        self._check_key(key)
        if byte_range is not None:
            self._require(Capability.RANGE_READ, "open")
        info, body, start, length = self._call("open", lambda: self._open(bucket, key, byte_range))
        reopen: Callable[[int], tuple[ObjectInfo, RawBody]] | None = None
        if Capability.RANGE_READ in self.capabilities:
            end = start + length - 1

            def reopen(offset: int) -> tuple[ObjectInfo, RawBody]:
                # One attempt: the reader's own loop is the retry (with the policy's backoff).
                again = self._attempt("open", lambda: self._open(bucket, key, ByteRange(offset, end)))
                return again[0], again[1]

        liveness, who = self.liveness, self.endpoint_label
        return ObjectReader(
            info,
            body,
            start=start,
            length=length,
            reopen=reopen,
            policy=self.retry,
            counters=self.counters,
            on_bytes=(lambda: liveness.answered(who)) if liveness is not None else None,
        )

    def get_bytes(self, bucket: str, key: str, byte_range: ByteRange | None = None) -> bytes:
        """The whole body (or range) in memory; for small objects and tests."""
        with self.open(bucket, key, byte_range) as reader:
            return reader.readall()

    def put(
        self,
        bucket: str,
        key: str,
        data: Readable | bytes,
        *,
        size: int | None = None,
        meta: ObjectMeta | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Write an object from a stream, never holding the whole of a large object in memory.

        With ``size`` given, exactly that many bytes are read from ``data`` (fewer is an
        IntegrityError and nothing is written). Objects above the multipart threshold are uploaded
        part by part on stores that declare MULTIPART; on failure the partial upload is aborted.
        ``meta`` fields the store does not declare are not sent; ``tags`` need TAGS.
        Returns what the store reports (size and ETag; ``meta`` is not re-read).
        """
        self._check_key(key)
        meta = (meta or ObjectMeta()).only(self.capabilities.metadata)
        if tags:
            self._require(Capability.TAGS, "put")
        stream: Readable = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
        if size is None and isinstance(data, bytes | bytearray | memoryview):
            size = len(data)
        if size is not None and size > self.capabilities.limits.max_object_size:
            raise InvalidRequest(f"{size} bytes exceeds this store's object size limit", provider=self.name, target=key)
        tag_map = dict(tags or {})
        if Capability.MULTIPART not in self.capabilities:
            with self._naming("put"):  # not retried here: the stream is consumed
                return self._put_stream(bucket, key, stream, size, meta, tag_map)

        threshold = self.multipart_threshold
        if size is not None and size <= threshold:
            body = read_full(stream, size)
            if len(body) != size:
                raise IntegrityError(f"source gave {len(body)} of {size} bytes", provider=self.name, target=key)
            return self._call("put", lambda: self._put_bytes(bucket, key, body, meta, tag_map))
        if size is None:
            head = read_full(stream, threshold + 1)
            if len(head) <= threshold:
                return self._call("put", lambda: self._put_bytes(bucket, key, head, meta, tag_map))
            stream = _Prepend(head, stream)
        return self._put_multipart(bucket, key, stream, size, meta, tag_map)

    def _put_multipart(
        self,
        bucket: str,
        key: str,
        stream: Readable,
        size: int | None,
        meta: ObjectMeta,
        tags: dict[str, str],
    ) -> ObjectInfo:
        limits = self.capabilities.limits
        part_size = limits.part_size_for(size, self.part_size) if size is not None else self.part_size
        upload_id = self.start_upload(bucket, key, meta=meta, tags=tags)
        parts: list[PartInfo] = []
        total = 0
        try:
            for number in itertools.count(1):
                chunk = read_full(stream, part_size)
                if not chunk and number > 1:
                    break
                if number > limits.max_parts:
                    raise InvalidRequest(
                        f"stream needs more than {limits.max_parts} parts of {part_size} bytes; pass size=",
                        provider=self.name,
                        target=key,
                    )
                parts.append(self.upload_part(bucket, key, upload_id, number, chunk))
                total += len(chunk)
                if len(chunk) < part_size:
                    break
            if size is not None and total != size:
                raise IntegrityError(f"source gave {total} of {size} bytes", provider=self.name, target=key)
            self.complete_upload(bucket, key, upload_id, parts)
        except BaseException:
            # The original error matters more; list_uploads() finds what an abort leaves behind.
            with contextlib.suppress(ProviderError):
                self.abort_upload(bucket, key, upload_id)
            raise
        return ObjectInfo(bucket=bucket, key=key, size=total)

    def delete(self, bucket: str, key: str) -> None:
        """Delete one object. Idempotent: deleting a missing object is not an error."""
        self._check_key(key)
        with contextlib.suppress(NotFound):
            self._call("delete", lambda: self._delete(bucket, key))

    def copy(
        self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *, meta: ObjectMeta | None = None
    ) -> None:
        """Server-side copy within this store (SERVER_SIDE_COPY). Metadata is carried over unless
        ``meta`` replaces it. Objects of any size; large ones are copied part by part."""
        self._require(Capability.SERVER_SIDE_COPY, "copy")
        self._check_key(src_key)
        self._check_key(dst_key)
        if meta is not None:
            meta = meta.only(self.capabilities.metadata)
        self._call("copy", lambda: self._copy(src_bucket, src_key, dst_bucket, dst_key, meta))

    def bucket_settings(self, bucket: str) -> BucketSettings:
        """What ``bucket`` has set, of the settings the store declares (the others read as unset)."""
        if not self.capabilities.settings:
            raise NotSupported("bucket settings", provider=self.name, operation="bucket_settings")
        found = self._call("bucket_settings", lambda: self._bucket_settings(bucket))
        return found.only(self.capabilities.settings)

    def put_bucket_settings(self, bucket: str, settings: BucketSettings, which: frozenset[Setting]) -> None:
        """Make ``bucket``'s settings among ``which`` what ``settings`` says (an unset one is removed).
        Every one of ``which`` must be declared. Read back with :meth:`bucket_settings` to know it
        was stored: some servers accept settings they do not keep."""
        undeclared = which - self.capabilities.settings
        if undeclared:
            names = ", ".join(sorted(s.value for s in undeclared))
            raise NotSupported(f"bucket settings {names}", provider=self.name, operation="put_bucket_settings")
        self._call("put_bucket_settings", lambda: self._put_bucket_settings(bucket, settings, which))

    def settings_as_held(self, bucket: str, settings: BucketSettings) -> HeldSettings:
        """``settings`` (declared ones only) in the form this store holds them for ``bucket``: what
        writing them with :meth:`put_bucket_settings` makes :meth:`bucket_settings` read back, and
        what the translation changed or cannot keep. A store whose terms are S3's returns them as
        they are. May read the store (a setting it keeps for more than one bucket is merged with
        what it has); writes nothing, so a dry run can show it."""
        undeclared = settings.present() - self.capabilities.settings
        if undeclared:
            names = ", ".join(sorted(s.value for s in undeclared))
            raise NotSupported(f"bucket settings {names}", provider=self.name, operation="settings_as_held")
        return self._call("settings_as_held", lambda: self._settings_as_held(bucket, settings))

    def object_public(self, bucket: str, key: str) -> bool:
        """True when the object's own ACL lets anyone read it (OBJECT_ACLS)."""
        self._require(Capability.OBJECT_ACLS, "object_public")
        return self._call("object_public", lambda: self._object_public(bucket, key))

    def make_object_public(self, bucket: str, key: str) -> None:
        """Give the object the public-read ACL (OBJECT_ACLS)."""
        self._require(Capability.OBJECT_ACLS, "make_object_public")
        self._call("make_object_public", lambda: self._make_object_public(bucket, key))

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        """The object's tags (TAGS)."""
        self._require(Capability.TAGS, "get_tags")
        return self._call("get_tags", lambda: self._get_tags(bucket, key))

    def put_tags(self, bucket: str, key: str, tags: Mapping[str, str]) -> None:
        """Replace the object's tags (TAGS)."""
        self._require(Capability.TAGS, "put_tags")
        self._call("put_tags", lambda: self._put_tags(bucket, key, dict(tags)))

    # -- multipart (MULTIPART) ---------------------------------------------------------------------

    def start_upload(
        self, bucket: str, key: str, *, meta: ObjectMeta | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        """Begin a multipart upload; returns its id. Metadata and tags are fixed here."""
        self._require(Capability.MULTIPART, "start_upload")
        self._check_key(key)
        m = (meta or ObjectMeta()).only(self.capabilities.metadata)
        return self._call("start_upload", lambda: self._start_upload(bucket, key, m, dict(tags or {})))

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> PartInfo:
        """Upload part ``number`` (1-based). Re-uploading a number replaces it, so this is retried."""
        self._require(Capability.MULTIPART, "upload_part")
        part = self._call("upload_part", lambda: self._upload_part(bucket, key, upload_id, number, data))
        self.counters.add("bytes_written", len(data))
        return part

    def complete_upload(self, bucket: str, key: str, upload_id: str, parts: Sequence[PartInfo]) -> str | None:
        """Assemble the parts into the object. Only after this returns is the object durable.
        Returns the assembled object's ETag, when the store says."""
        self._require(Capability.MULTIPART, "complete_upload")
        ordered = sorted(parts, key=lambda p: p.number)
        return self._call("complete_upload", lambda: self._complete_upload(bucket, key, upload_id, ordered))

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Abandon an upload and free its parts. Idempotent."""
        self._require(Capability.MULTIPART, "abort_upload")
        with contextlib.suppress(NotFound):
            self._call("abort_upload", lambda: self._abort_upload(bucket, key, upload_id))

    def list_uploads(self, bucket: str, prefix: str = "") -> Iterator[UploadInfo]:
        """Multipart uploads in progress (to resume them, or find orphans)."""
        self._require(Capability.MULTIPART, "list_uploads")
        return iter(self._call("list_uploads", lambda: list(self._list_uploads(bucket, prefix))))

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        """Parts already uploaded to an upload in progress, by number."""
        self._require(Capability.MULTIPART, "list_parts")
        return self._call(
            "list_parts", lambda: sorted(self._list_parts(bucket, key, upload_id), key=lambda p: p.number)
        )

    def confirm_part(self, part: PartInfo, data: bytes) -> PartInfo | None:
        """``part`` as :meth:`list_parts` reported it, completed for :meth:`complete_upload`, when
        a content digest the store reports for it (a checksum, or an MD5 part ETag where the vendor
        documents one) proves it holds exactly ``data``; None when that cannot be told: the caller
        sends the part again."""
        return None

    def part_proof(self, data: bytes) -> str:
        """A checksum of a part's bytes, recorded when the part is sent so that a resumed upload
        reuses the part only if the bytes it would send now have the same checksum. Stores return
        the checksum they already compute for the body (cheap); the default is SHA-256."""
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def close(self) -> None:  # noqa: B027 - optional hook; stores without connections keep it
        """Release connections. The store is unusable afterwards."""

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hooks every adapter implements --------------------------------------------------------------

    @abc.abstractmethod
    def _list_buckets(self) -> list[BucketInfo]: ...

    @abc.abstractmethod
    def _bucket_exists(self, bucket: str) -> bool: ...

    @abc.abstractmethod
    def _list_objects(self, bucket: str, prefix: str, start_after: str | None) -> Iterable[ObjectInfo]:
        """Objects under ``prefix`` in the store's listing order (ascending UTF-8 byte order with
        SORTED_LISTING), strictly after ``start_after`` when the store can start after a key
        (SORTED_LISTING or LISTING_START_AFTER; otherwise ``start_after`` is always None). Each object
        once; ``meta`` is None. May raise Transient mid-way (the caller resumes after the last key it
        received) and must raise ListingIncomplete for a page it cannot trust (a truncated page
        without a way to continue, an unparseable one). Never ends silently before the last key."""

    def _list_objects_second(self, bucket: str, prefix: str, start_after: str | None) -> Iterable[ObjectInfo]:
        """SECOND_LISTING: the same contract as :meth:`_list_objects`, through a mechanism of the
        store independent of it."""
        raise NotSupported(Capability.SECOND_LISTING.value, provider=self.name)

    def _first_after(self, bucket: str, prefix: str, key: str | None, *, second_way: bool) -> str | None:
        """The key listed right after ``key`` under ``prefix`` (the first key when ``key`` is None),
        or None when there is none: how the end of a listing is confirmed. ``second_way``: ask
        through the second listing mechanism. Adapters override this to ask for one key only; this
        default reads the first page of a listing (and, on stores that cannot start after a key,
        lists again from the start)."""
        lister = self._list_objects_second if second_way else self._list_objects
        resumable = (
            Capability.SORTED_LISTING in self.capabilities or Capability.LISTING_START_AFTER in self.capabilities
        )
        skipping = key is not None and not resumable
        for info in lister(bucket, prefix, None if skipping else key):
            if skipping:
                skipping = info.key != key
                continue
            return info.key
        if skipping:
            raise ListingIncomplete(f"cannot confirm the listing: {key!r} is gone", provider=self.name, target=bucket)
        return None

    @abc.abstractmethod
    def _head(self, bucket: str, key: str) -> ObjectInfo: ...

    @abc.abstractmethod
    def _open(self, bucket: str, key: str, byte_range: ByteRange | None) -> tuple[ObjectInfo, RawBody, int, int]:
        """Return (info with meta, body, first byte offset, body length in bytes)."""

    @abc.abstractmethod
    def _delete(self, bucket: str, key: str) -> None: ...

    # -- hooks for declared capabilities -------------------------------------------------------------

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
        """Single-request write (stores with MULTIPART; the others implement :meth:`_put_stream`).

        Writes ``body`` with ``meta`` (already reduced to the declared fields) and ``tags``; a write
        that returns has replaced any object of that key. A store that declares VERIFIED_WRITES
        sends a checksum of the bytes with them and must raise IntegrityError, storing nothing,
        when what arrived does not match it; ``checksum_of`` (only the conformance suite passes it)
        makes that checksum one of other bytes, to prove the store refuses. Raises NotFound for a
        missing bucket."""
        raise NotSupported(Capability.MULTIPART.value, provider=self.name, operation="put")

    def _put_stream(
        self,
        bucket: str,
        key: str,
        stream: Readable,
        size: int | None,
        meta: ObjectMeta,
        tags: dict[str, str],
        *,
        checksum_of: bytes | None = None,
    ) -> ObjectInfo:
        """Streamed write for stores without the part-level API: ``size`` bytes (or the whole
        stream when None) from ``stream``; fewer than ``size`` is an IntegrityError and nothing is
        stored. Otherwise the same contract as :meth:`_put_bytes`."""
        raise NotSupported("put_stream", provider=self.name, operation="put")

    def _create_bucket(self, bucket: str) -> None:
        raise NotSupported(Capability.CREATE_BUCKET.value, provider=self.name)

    def _delete_bucket(self, bucket: str) -> None:
        raise NotSupported(Capability.DELETE_BUCKET.value, provider=self.name)

    def _clock(self, bucket: str) -> datetime:
        """The store's current time (see :meth:`clock`). Stores on this machine use its clock;
        remote adapters read the server's (an HTTP Date header)."""
        return datetime.now(UTC)

    def _copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, meta: ObjectMeta | None) -> None:
        raise NotSupported(Capability.SERVER_SIDE_COPY.value, provider=self.name)

    def _object_public(self, bucket: str, key: str) -> bool:
        raise NotSupported(Capability.OBJECT_ACLS.value, provider=self.name)

    def _make_object_public(self, bucket: str, key: str) -> None:
        raise NotSupported(Capability.OBJECT_ACLS.value, provider=self.name)

    def _bucket_settings(self, bucket: str) -> BucketSettings:
        """The bucket's settings (only called when the store declares some). NotFound: no bucket."""
        raise NotSupported("bucket settings", provider=self.name)

    def _put_bucket_settings(self, bucket: str, settings: BucketSettings, which: frozenset[Setting]) -> None:
        """Write the settings ``which`` (all declared) as ``settings`` has them, removing unset ones."""
        raise NotSupported("bucket settings", provider=self.name)

    def _settings_as_held(self, bucket: str, settings: BucketSettings) -> HeldSettings:
        """``settings`` as the store holds them (default: S3's terms, unchanged)."""
        return HeldSettings(settings)

    def _get_tags(self, bucket: str, key: str) -> dict[str, str]:
        raise NotSupported(Capability.TAGS.value, provider=self.name)

    def _put_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        raise NotSupported(Capability.TAGS.value, provider=self.name)

    def _start_upload(self, bucket: str, key: str, meta: ObjectMeta, tags: dict[str, str]) -> str:
        raise NotSupported(Capability.MULTIPART.value, provider=self.name)

    def _upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> PartInfo:
        raise NotSupported(Capability.MULTIPART.value, provider=self.name)

    def _complete_upload(self, bucket: str, key: str, upload_id: str, parts: list[PartInfo]) -> str | None:
        raise NotSupported(Capability.MULTIPART.value, provider=self.name)

    def _abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        raise NotSupported(Capability.MULTIPART.value, provider=self.name)

    def _list_uploads(self, bucket: str, prefix: str) -> Iterable[UploadInfo]:
        raise NotSupported(Capability.MULTIPART.value, provider=self.name)

    def _list_parts(self, bucket: str, key: str, upload_id: str) -> Iterable[PartInfo]:
        raise NotSupported(Capability.MULTIPART.value, provider=self.name)
