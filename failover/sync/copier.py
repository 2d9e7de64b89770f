"""Copying one object: stream it from the source to the target, digest it on the way, carry its
metadata and tags, and prove it arrived. Large objects go part by part and resume after a crash."""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..capabilities import Capability
from ..errors import IntegrityError, NotFound, ProviderError
from ..storage import ObjectReader, ObjectStore, read_full
from ..types import MetaField, ObjectInfo, ObjectMeta, PartInfo
from .digests import Algorithm, Digest, metadata_key, new_digest
from .journal import Journal, ObjectRow
from .keys import SOURCE_KEY_META, is_encoding_of, quote_source_key
from .report import SyncReport
from .throttle import Bandwidth

__all__ = ["Copier", "Outcome"]

# An upload started by a crashed run is ours if it began within this long of the recorded intent.
_INTENT_MARGIN = 300.0


class Outcome(enum.Enum):
    COPIED = "copied"
    UNCHANGED = "unchanged"
    """Verified earlier; the target listing did not show it, a HEAD found it there, unchanged."""
    CONTENT_UNCHANGED = "content_unchanged"
    SERVER_SIDE = "server_side"
    VANISHED = "vanished"


@dataclass
class Result:
    outcome: Outcome
    size: int
    sent: int = 0


class _Tee:
    """Reads from the source, feeding the digest and the bandwidth limit on the way."""

    def __init__(self, reader: ObjectReader, digest: Digest, bandwidth: Bandwidth) -> None:
        self._reader = reader
        self._digest = digest
        self._bandwidth = bandwidth
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._reader.read(size)
        if data:
            self._bandwidth.take(len(data))
            self._digest.update(data)
            self.count += len(data)
        return data


def _release(slots: threading.BoundedSemaphore, _future: object) -> None:
    slots.release()


class Copier:
    def __init__(
        self,
        source: ObjectStore,
        target: ObjectStore,
        journal: Journal,
        report: SyncReport,
        *,
        algorithm: Algorithm,
        bandwidth: Bandwidth,
        readback: bool,
        part_concurrency: int = 2,
        max_parts_in_flight: int = 4,
    ) -> None:
        self.source = source
        self.target = target
        self.journal = journal
        self.report = report
        self.algorithm = algorithm
        self.digest_key = metadata_key(algorithm)
        self.bandwidth = bandwidth
        self.server_side = source is target and Capability.SERVER_SIDE_COPY in target.capabilities
        self.verify_by_reading = readback or Capability.VERIFIED_WRITES not in target.capabilities
        caps = target.capabilities
        self.can_rewrite_meta = Capability.SERVER_SIDE_COPY in caps and MetaField.USER in caps.metadata
        # Parts of large objects upload in parallel (part_concurrency per object); parts in flight
        # across all objects are bounded, so memory stays under max_parts_in_flight x part size.
        self.part_concurrency = max(1, part_concurrency)
        self.part_slots = threading.BoundedSemaphore(max(1, max_parts_in_flight))
        self.part_pool = concurrent.futures.ThreadPoolExecutor(max(1, max_parts_in_flight), thread_name_prefix="part")

    def close(self) -> None:
        self.part_pool.shutdown(wait=True)

    @property
    def verification(self) -> str:
        if self.server_side:
            return "server-side copy within one store"
        if self.verify_by_reading:
            return f"{self.algorithm} of the source stream compared with a read-back of the target"
        return f"{self.algorithm} of the source stream; every body checked by the target on arrival"

    # -- entry point -------------------------------------------------------------------------------

    def copy(self, row: ObjectRow) -> Result:
        if self.server_side:
            return self._server_side(row)
        if row.state == "verified" and row.digest and self._digest_on_target(row, row.size) == row.digest:
            # Verified earlier, but the target listing did not show it (the listing failed part-way,
            # or it was deleted): a HEAD, not a re-send, when our digest is still on it.
            return Result(Outcome.UNCHANGED, row.size)
        if row.upload_id or row.upload_started:
            resumed = self._resume(row)
            if resumed is not None:
                return resumed
        reader = self._open_source(row)
        if reader is None:
            return Result(Outcome.VANISHED, 0)
        with reader:
            info = reader.info
            meta, tags = self._metadata(row, info)
            expected = None
            if self.journal.target_size(row.dst_bucket, row.dst_key) == info.size:
                # The target listing showed an object of this size: verified earlier, or stored by
                # an attempt that died before the journal recorded it (its digest is in its metadata).
                expected = row.digest or self._digest_on_target(row, info.size)
            if expected is None:
                return self._transfer(row, reader, info, meta, tags)
            unchanged = self._same_content(row, reader, info, meta, tags, expected)
            if unchanged is not None:
                return unchanged
        # The bytes differ after all: read again, this time to send.
        again = self._open_source(row)
        if again is None:
            return Result(Outcome.VANISHED, 0)
        with again:
            return self._transfer(row, again, again.info, meta, tags)

    def _open_source(self, row: ObjectRow) -> ObjectReader | None:
        """The source object's body, or None if it was deleted since it was listed."""
        try:
            return self.source.open(row.src_bucket, row.src_key)
        except NotFound:
            return None

    def _transfer(
        self, row: ObjectRow, reader: ObjectReader, info: ObjectInfo, meta: ObjectMeta, tags: dict[str, str]
    ) -> Result:
        if Capability.MULTIPART in self.target.capabilities and info.size > self.target.multipart_threshold:
            return self._multipart(row, reader, info, meta, tags, digest=new_digest(self.algorithm))
        if info.size <= self.target.multipart_threshold:
            return self._single(row, reader, info, meta, tags)
        return self._streamed(row, reader, info, meta, tags)

    # -- the ways to copy --------------------------------------------------------------------------

    def _server_side(self, row: ObjectRow) -> Result:
        try:
            self.target.copy(row.src_bucket, row.src_key, row.dst_bucket, row.dst_key)
        except NotFound:
            return Result(Outcome.VANISHED, 0)
        self.journal.mark_verified(row, None)
        return Result(Outcome.SERVER_SIDE, row.size)

    def _single(
        self, row: ObjectRow, reader: ObjectReader, info: ObjectInfo, meta: ObjectMeta, tags: dict[str, str]
    ) -> Result:
        """Small objects: one read into memory (at most the multipart threshold), one PUT."""
        body = reader.readall()
        digest = new_digest(self.algorithm)
        digest.update(body)
        value = digest.hexdigest()
        self.bandwidth.take(len(body))
        self.target.put(row.dst_bucket, row.dst_key, body, meta=self._with_digest(meta, value), tags=tags or None)
        self._confirm(row, value, len(body))
        return Result(Outcome.COPIED, len(body), len(body))

    def _digest_on_target(self, row: ObjectRow, size: int) -> str | None:
        """The digest failover wrote into the target object's metadata, if the target holds an
        object of the right size with one: a copy verified earlier, or one stored by an attempt that
        died (or failed) after the target had it but before the journal recorded it."""
        try:
            found = self.target.head(row.dst_bucket, row.dst_key)
        except NotFound:
            return None
        if found.size != size or found.meta is None:
            return None
        return found.meta.user.get(self.digest_key)

    def _same_content(
        self,
        row: ObjectRow,
        reader: ObjectReader,
        info: ObjectInfo,
        meta: ObjectMeta,
        tags: dict[str, str],
        expected: str,
    ) -> Result | None:
        """The target holds an object of the right size with a known digest (an earlier verified
        copy, or one an interrupted attempt stored): digest the source, and if the bytes are the
        same, bring only the metadata and tags up to date (server-side, nothing sent). None if
        the bytes differ."""
        digest = new_digest(self.algorithm)
        for chunk in reader.iter_chunks():
            digest.update(chunk)
        value = digest.hexdigest()
        reader.close()
        if value != expected:
            return None
        if Capability.SERVER_SIDE_COPY not in self.target.capabilities:
            return None  # cannot update metadata in place: send the object again
        self.target.copy(row.dst_bucket, row.dst_key, row.dst_bucket, row.dst_key, meta=self._with_digest(meta, value))
        if Capability.TAGS in self.target.capabilities:
            self.target.put_tags(row.dst_bucket, row.dst_key, tags)
        self.journal.mark_verified(row, value, info.size)
        return Result(Outcome.CONTENT_UNCHANGED, info.size)

    def _streamed(
        self, row: ObjectRow, reader: ObjectReader, info: ObjectInfo, meta: ObjectMeta, tags: dict[str, str]
    ) -> Result:
        """Large objects on targets without the part API: one streamed write."""
        digest = new_digest(self.algorithm)
        tee = _Tee(reader, digest, self.bandwidth)
        self.target.put(row.dst_bucket, row.dst_key, tee, size=info.size, meta=meta, tags=tags or None)
        value = digest.hexdigest()
        self._record_digest(row, meta, value, info.size)
        self._confirm(row, value, info.size)
        return Result(Outcome.COPIED, info.size, tee.count)

    def _multipart(
        self,
        row: ObjectRow,
        reader: ObjectReader,
        info: ObjectInfo,
        meta: ObjectMeta,
        tags: dict[str, str],
        *,
        digest: Digest,
        upload_id: str | None = None,
        part_size: int | None = None,
        on_target: Callable[[int, bytes], PartInfo | None] | None = None,
    ) -> Result:
        """Part by part; every part is in the journal once the target has it, so a crash loses at
        most the parts in flight. Only ``part_size`` bytes per part in flight are in memory.

        Resuming, ``on_target(number, chunk)`` returns the part when the target already has those
        bytes as that part: it is reused, not sent, wherever it is (parts finish out of order, so
        an earlier run may have left any of them)."""
        target = self.target
        if upload_id is None:
            part_size = target.capabilities.limits.part_size_for(info.size, target.part_size)
            self.journal.begin_upload_intent(row)
            upload_id = target.start_upload(row.dst_bucket, row.dst_key, meta=meta, tags=tags or None)
            self.journal.set_upload(row, upload_id, part_size)
            self.report.multipart["started"] += 1
        assert part_size is not None
        parts: list[PartInfo] = []
        sent = 0
        total_parts = max(1, -(-info.size // part_size))
        inflight: list[concurrent.futures.Future[PartInfo]] = []
        try:
            for number in range(1, total_parts + 1):
                chunk = read_full(reader, min(part_size, info.size - (number - 1) * part_size))
                digest.update(chunk)  # in order, whatever order the parts finish in
                reused = on_target(number, chunk) if on_target else None
                if reused is not None:
                    parts.append(reused)
                    self.report.multipart["parts_reused"] += 1
                    continue
                self.bandwidth.take(len(chunk))
                self.part_slots.acquire()
                future = self.part_pool.submit(self._upload_part, row, upload_id, number, chunk)
                future.add_done_callback(functools.partial(_release, self.part_slots))
                inflight.append(future)
                sent += len(chunk)
                self._wait_parts(inflight, self.part_concurrency - 1)
            if reader.read(1):
                raise IntegrityError("source is longer than listed", target=row.src_key)
            self._wait_parts(inflight, 0)
            parts += [future.result() for future in inflight]
            self._complete(row, upload_id, sorted(parts, key=lambda part: part.number), info.size)
        except BaseException as error:
            concurrent.futures.wait(inflight)  # never leave a part upload running behind us
            if isinstance(error, ProviderError) and not error.retryable:
                self._abort(row, upload_id)
            raise
        value = digest.hexdigest()
        self._record_digest(row, meta, value, info.size)
        self._confirm(row, value, info.size)
        return Result(Outcome.COPIED, info.size, sent)

    def _upload_part(self, row: ObjectRow, upload_id: str, number: int, chunk: bytes) -> PartInfo:
        part = self.target.upload_part(row.dst_bucket, row.dst_key, upload_id, number, chunk)
        self.journal.record_part(row, upload_id, part)
        return part

    @staticmethod
    def _wait_parts(inflight: list[concurrent.futures.Future[PartInfo]], allowed: int) -> None:
        """Block until at most ``allowed`` parts are still uploading; raise the first failure."""
        while True:
            running = [f for f in inflight if not f.done()]
            for future in inflight:
                if future.done() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            if len(running) <= allowed:
                return
            concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)

    def _complete(self, row: ObjectRow, upload_id: str, parts: list[PartInfo], size: int) -> None:
        try:
            self.target.complete_upload(row.dst_bucket, row.dst_key, upload_id, parts)
        except NotFound:
            # A retried Complete whose first attempt succeeded finds no upload: the object is there.
            if self.target.head(row.dst_bucket, row.dst_key).size != size:
                raise
        self.journal.clear_upload(row)

    def _resume(self, row: ObjectRow) -> Result | None:
        """Continue a multipart upload an earlier run left behind, or clean it up. Parts already on
        the target are not sent again; their bytes are re-read from the source only to rebuild the
        digest. Returns None when the copy must start over."""
        target = self.target
        if row.upload_id is None:
            self._abort_strays(row)
            return None
        upload_id, part_size = row.upload_id, row.part_size or target.part_size
        try:
            remote = {p.number: p for p in target.list_parts(row.dst_bucket, row.dst_key, upload_id)}
        except NotFound:
            self.journal.clear_upload(row)
            return None
        local = {p.number: p for p in self.journal.parts(row, upload_id)}
        reader = self._open_source(row)
        if reader is None:
            self._abort(row, upload_id)
            return Result(Outcome.VANISHED, 0)
        with reader:
            info = reader.info
            if info.etag != row.src_etag or info.size != row.size:
                reader.close()
                self._abort(row, upload_id)  # the source changed: these parts are stale
                return None

            # The parts are re-read from the source (to rebuild the digest), never re-sent while
            # they prove to be on the target: recorded in the journal, or (sent just before a crash,
            # not yet recorded) matching a content digest the store reports for them.
            def on_target(number: int, chunk: bytes) -> PartInfo | None:
                theirs = remote.get(number)
                if theirs is None:
                    return None
                mine = local.get(number)
                if mine is not None and mine.etag == theirs.etag and mine.size == len(chunk):
                    # The part's checksum comes from the journal where the store does not list it.
                    return PartInfo(theirs.number, theirs.etag, theirs.size, theirs.checksum or mine.checksum)
                return target.confirm_part(theirs, chunk)

            meta, tags = self._metadata(row, info)
            self.report.multipart["resumed"] += 1
            return self._multipart(
                row,
                reader,
                info,
                meta,
                tags,
                digest=new_digest(self.algorithm),
                upload_id=upload_id,
                part_size=part_size,
                on_target=on_target,
            )

    def _abort(self, row: ObjectRow, upload_id: str) -> None:
        with contextlib.suppress(ProviderError):
            self.target.abort_upload(row.dst_bucket, row.dst_key, upload_id)
            self.report.multipart["aborted"] += 1
        self.journal.clear_upload(row)

    def _abort_strays(self, row: ObjectRow) -> None:
        """A crash between 'start an upload' and recording its id: abort uploads of this key that
        began around the recorded intent (they can only be ours)."""
        since = (row.upload_started or 0.0) - _INTENT_MARGIN
        for upload in self.target.list_uploads(row.dst_bucket, row.dst_key):
            started = upload.initiated.timestamp() if upload.initiated else time.time()
            if upload.key == row.dst_key and started >= since:
                with contextlib.suppress(ProviderError):
                    self.target.abort_upload(upload.bucket, upload.key, upload.upload_id)
                    self.report.multipart["aborted"] += 1
        self.journal.clear_upload(row)

    # -- metadata, digests, proof ------------------------------------------------------------------

    def _metadata(self, row: ObjectRow, info: ObjectInfo) -> tuple[ObjectMeta, dict[str, str]]:
        """What of the source's metadata and tags the target can hold; the rest goes in the report."""
        meta = info.meta or ObjectMeta()
        user = {k: v for k, v in meta.user.items() if not k.startswith("failover-")}
        meta = ObjectMeta(**{f.value: getattr(meta, f.value) for f in MetaField if f is not MetaField.USER}, user=user)
        lost = sorted(f.value for f in meta.present() - self.target.capabilities.metadata)
        tags: dict[str, str] = {}
        if Capability.TAGS in self.source.capabilities and (info.tag_count is None or info.tag_count > 0):
            tags = self.source.get_tags(row.src_bucket, row.src_key)
        if tags and Capability.TAGS not in self.target.capabilities:
            lost.append("tags")
            with self.report._lock:
                self.report.fidelity.objects_with_tags_not_carried += 1
            tags = {}
        if lost:
            with self.report._lock:
                self.report.fidelity.note(row.src_key, lost)
        if is_encoding_of(row.dst_key, row.src_key) and MetaField.USER in self.target.capabilities.metadata:
            meta = meta.with_user(**{SOURCE_KEY_META: quote_source_key(row.src_key)})  # stored under its encoding
        return meta.only(self.target.capabilities.metadata), tags

    def _with_digest(self, meta: ObjectMeta, value: str) -> ObjectMeta:
        if MetaField.USER not in self.target.capabilities.metadata:
            return meta
        return meta.with_user(**{self.digest_key: value})

    def _record_digest(self, row: ObjectRow, meta: ObjectMeta, value: str, size: int) -> None:
        """Put the digest, known only now, into the target's metadata: a server-side copy onto
        itself where the target can do that cheaply; otherwise it lives in the journal only."""
        limit = self.target.capabilities.limits.max_single_put
        if self.can_rewrite_meta and size <= limit:
            self.target.copy(
                row.dst_bucket, row.dst_key, row.dst_bucket, row.dst_key, meta=self._with_digest(meta, value)
            )
        else:
            with self.report._lock:
                self.report.fidelity.digest_only_in_journal += 1

    def _confirm(self, row: ObjectRow, value: str, size: int) -> None:
        """Prove the bytes arrived, then commit: the target checked every body it received, or we
        read the object back and compare digests."""
        if self.verify_by_reading:
            digest = new_digest(self.algorithm)
            with self.target.open(row.dst_bucket, row.dst_key) as reader:
                for chunk in reader.iter_chunks():
                    digest.update(chunk)
                length = reader.position
            if length != size or digest.hexdigest() != value:
                raise IntegrityError(
                    f"target holds {length} bytes with {self.algorithm} {digest.hexdigest()[:16]}..., "
                    f"expected {size} bytes with {value[:16]}...",
                    target=f"{row.dst_bucket}/{row.dst_key}",
                )
        self.journal.mark_verified(row, value, size)
