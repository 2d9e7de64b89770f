"""Copying one object: stream it from the source to the target, digest it on the way, carry its
metadata and tags, and prove it arrived. Large objects go part by part and resume after a crash.

What is proof here, and what is only a claim:

* The digest of the bytes read from the source, computed while they stream, is a fact about those
  bytes. A target that checks every body against the checksum sent with it (VERIFIED_WRITES) holds
  exactly what was sent once the write returns; otherwise the copy is read back and compared.
* A digest recorded earlier (in the journal, or in the target object's ``failover-<digest>``
  metadata) is a claim about the target. Recognising an object as already copied by its claimed
  digest therefore also reads the target's bytes and compares them before anything is called
  verified; only the plain incremental skip (verified by an earlier run, unchanged at the source,
  listed on the target with its size) rests on the journal, and the report says so.
* A multipart upload belongs to one version of the source object (ETag, size, modification time,
  recorded before it starts). A resumed upload continues only if the source still is that version,
  and reuses a part only when the bytes it would send now have the checksum recorded for the part
  when it was sent (or one the store reports for it).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import functools
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..capabilities import Capability
from ..errors import IntegrityError, NotFound, ProviderError
from ..storage import ObjectReader, ObjectStore, read_full
from ..types import ByteRange, MetaField, ObjectInfo, ObjectMeta, PartInfo
from .digests import Algorithm, Digest, digest_like, is_parts_digest, metadata_key, new_digest, parts_digest_of
from .journal import Ledger, ObjectRow, PartRow, SourceVersion
from .keys import SOURCE_KEY_META, is_encoding_of, quote_source_key
from .report import SyncReport
from .throttle import Bandwidth

__all__ = ["Copier", "Outcome", "PartRange", "Result", "UploadedPart"]

# An upload started by a crashed run is ours if it began within this long of the recorded intent.
_INTENT_MARGIN = 300.0


class Outcome(enum.Enum):
    COPIED = "copied"
    UNCHANGED = "unchanged"
    """Verified earlier; the target listing did not show it, a HEAD found it there, unchanged."""
    CONTENT_UNCHANGED = "content_unchanged"
    """Listed as changed, but the target holds the same bytes (read on both sides): only metadata
    and tags were brought up to date."""
    REVERIFIED = "reverified"
    """--checksum: verified by an earlier run, and the target's bytes were read again and match."""
    SERVER_SIDE = "server_side"
    VANISHED = "vanished"


@dataclass
class Result:
    outcome: Outcome
    size: int
    sent: int = 0
    repaired: bool = False
    """The target held other bytes than the journal said (found by re-reading): sent again."""


@dataclass(frozen=True)
class PartRange:
    """Parts ``first`` to ``last`` of a multipart upload of ``row``'s object, for one worker to send
    (see :meth:`Copier.spread`): read from the source as one byte range of the version ``etag``."""

    row: ObjectRow
    upload_id: str
    part_size: int
    size: int
    first: int
    last: int
    etag: str | None


@dataclass(frozen=True)
class UploadedPart:
    part: PartInfo
    proof: str
    """The part's checksum as sent (what a resume proves a part by)."""
    digest: str
    """The digest of the part's bytes (for the object's parts digest)."""


RangeRunner = Callable[[list[PartRange]], "Iterator[list[UploadedPart]]"]
"""Sends part ranges (on a cluster's workers) and yields each range's parts as it finishes; raises
the first failure."""


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


def version_of(info: ObjectInfo) -> SourceVersion:
    """The source version ``info`` describes (what a multipart upload is bound to)."""
    modified = info.last_modified.isoformat() if info.last_modified else None
    return SourceVersion(info.etag, info.size, modified)


def _same_version(recorded: SourceVersion, now: SourceVersion) -> bool:
    if recorded.size != now.size or recorded.etag != now.etag:
        return False
    # A listing and a GET may word the time differently (ISO vs HTTP date, with or without
    # fractions of a second): compare to the second.
    if recorded.modified and now.modified:
        return recorded.modified[:19] == now.modified[:19]
    return True


class Copier:
    def __init__(
        self,
        source: ObjectStore,
        target: ObjectStore,
        journal: Ledger,
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
        # Parts of large objects upload in parallel (part_concurrency per object); parts in flight
        # across all objects are bounded, so memory stays under max_parts_in_flight x part size.
        self.part_concurrency = max(1, part_concurrency)
        self.part_slots = threading.BoundedSemaphore(max(1, max_parts_in_flight))
        self.part_pool = concurrent.futures.ThreadPoolExecutor(max(1, max_parts_in_flight), thread_name_prefix="part")

    def close(self, *, wait: bool = True) -> None:
        """Stop the part uploads' pool (``wait=False``: parts still blocked on a server that stopped
        answering are left behind; their objects are not verified)."""
        self.part_pool.shutdown(wait=wait, cancel_futures=not wait)

    @property
    def verification(self) -> str:
        if self.server_side:
            return "server-side copy within one store"
        if self.verify_by_reading:
            return f"{self.algorithm} of the source stream compared with a read-back of the target"
        return f"{self.algorithm} of the source stream; every body checked by the target on arrival"

    # -- entry point -------------------------------------------------------------------------------

    def copy(self, row: ObjectRow, *, reverify: bool = False, target_size: int | None = None) -> Result:
        """Bring ``row``'s object to the target and prove it; ``reverify``: the journal says it is
        verified and unchanged, and the target's bytes are to be read again (--checksum);
        ``target_size``: the size this run's target listing showed for the target key (None: not
        listed)."""
        if self.server_side:
            return self._server_side(row)
        if reverify and row.digest:
            found = self._target_digest(row, row.size)
            if found == row.digest:
                return Result(Outcome.REVERIFIED, row.size)
            repaired = self._send(row, target_size)
            repaired.repaired = True
            return repaired
        if row.state == "verified" and row.digest and self._still_there(row):
            # Verified earlier, but the target listing did not show it (the listing failed part-way,
            # or it was deleted): a HEAD, not a re-send, when it is still the object we verified.
            return Result(Outcome.UNCHANGED, row.size)
        if row.upload_id or row.upload_started:
            resumed = self._resume(row)
            if resumed is not None:
                return resumed
        return self._send(row, target_size)

    def copy_retrying(
        self,
        row: ObjectRow,
        *,
        reverify: bool = False,
        target_size: int | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> Result:
        """:meth:`copy`, once more when the bytes did not arrive intact (or the source changed while
        being read): the second attempt resumes an upload the first began, never starts a second
        one beside it. Any other failure is raised at once."""
        for attempt in (1, 2):
            if stopping():
                raise concurrent.futures.CancelledError("stopped before it started")
            if attempt > 1:
                row = self.journal.refresh(row)
            try:
                return self.copy(row, reverify=reverify, target_size=target_size)
            except IntegrityError:
                if attempt == 2 or stopping():
                    raise
        raise AssertionError("unreachable")

    def spread(self, row: ObjectRow, run: RangeRunner, *, parts_per_range: int = 2) -> Result:
        """Copy one large object as part ranges that ``run`` sends in parallel (each range read from
        the source and uploaded by whoever runs it): the upload is started and completed here, each
        part is in the journal once its range reports it (a crash resumes from them), and the object
        is recorded with its parts digest (the digests of its parts, computed by the ranges)."""
        try:
            info = self.source.head(row.src_bucket, row.src_key)
        except NotFound:
            return Result(Outcome.VANISHED, 0)
        meta, tags = self._metadata(row, info)
        part_size = self.target.capabilities.limits.part_size_for(info.size, self.target.part_size)
        self.journal.begin_upload_intent(row, version_of(info))
        upload_id = self.target.start_upload(row.dst_bucket, row.dst_key, meta=meta, tags=tags or None)
        self.journal.set_upload(row, upload_id, part_size)
        with self.report._lock:
            self.report.multipart["started"] += 1
            self.report.multipart["spread"] += 1
        total = max(1, -(-info.size // part_size))
        ranges = [
            PartRange(row, upload_id, part_size, info.size, first, min(first + parts_per_range - 1, total), info.etag)
            for first in range(1, total + 1, parts_per_range)
        ]
        done: dict[int, UploadedPart] = {}
        try:
            for uploaded in run(ranges):
                for part in uploaded:
                    self.journal.record_part(row, upload_id, part.part, part.proof)
                    done[part.part.number] = part
        except ProviderError as error:
            if not error.retryable:
                self._abort(row, upload_id)
            raise
        if sorted(done) != list(range(1, total + 1)):
            raise IntegrityError(f"{total - len(done)} of {total} parts did not report back", target=row.src_key)
        ordered = [done[number] for number in range(1, total + 1)]
        etag = self._complete(row, upload_id, [p.part for p in ordered], info.size)
        value = parts_digest_of(self.algorithm, part_size, [p.digest for p in ordered])
        self._digest_in_journal_only()
        self._confirm(row, value, info.size, etag)
        return Result(Outcome.COPIED, info.size, info.size)

    def send_range(self, span: PartRange) -> list[UploadedPart]:
        """Read ``span``'s bytes from the source (they must still be the version the upload is
        for) and upload them as its parts."""
        start = (span.first - 1) * span.part_size
        end = min(span.size, span.last * span.part_size) - 1
        sent: list[UploadedPart] = []
        row = span.row
        with self.source.open(row.src_bucket, row.src_key, ByteRange(start, end)) as reader:
            if span.etag and reader.info.etag and reader.info.etag.strip('"') != span.etag.strip('"'):
                raise IntegrityError("the source object changed since its upload began", target=row.src_key)
            for number in range(span.first, span.last + 1):
                chunk = read_full(reader, min(span.part_size, span.size - (number - 1) * span.part_size))
                self.bandwidth.take(len(chunk))
                digest = new_digest(self.algorithm)
                digest.update(chunk)
                part = self.target.upload_part(row.dst_bucket, row.dst_key, span.upload_id, number, chunk)
                sent.append(UploadedPart(part, self.target.part_proof(chunk), digest.hexdigest()))
        return sent

    def _send(self, row: ObjectRow, target_size: int | None) -> Result:
        reader = self._open_source(row)
        if reader is None:
            return Result(Outcome.VANISHED, 0)
        with reader:
            info = reader.info
            meta, tags = self._metadata(row, info)
            claimed = None
            if target_size == info.size:
                # The target listing showed an object of this size: verified earlier, or stored by
                # an attempt that died before the journal recorded it (its digest is in its metadata).
                claimed = row.digest or self._digest_on_target(row, info.size)
            if claimed is None:
                return self._transfer(row, reader, info, meta, tags)
            unchanged = self._same_content(row, reader, info, meta, tags, claimed)
            if isinstance(unchanged, Result):
                return unchanged
        # The bytes differ after all: read again, this time to send.
        again = self._open_source(row)
        if again is None:
            return Result(Outcome.VANISHED, 0)
        with again:
            sent = self._transfer(row, again, again.info, meta, tags)
        sent.repaired = unchanged == "repair"
        return sent

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
        written = self.target.put(
            row.dst_bucket, row.dst_key, body, meta=self._with_digest(meta, value), tags=tags or None
        )
        self._confirm(row, value, len(body), written.etag)
        return Result(Outcome.COPIED, len(body), len(body))

    def _still_there(self, row: ObjectRow) -> bool:
        """Whether the target still holds the object verified earlier, by a HEAD: its size, and our
        digest in its metadata or the ETag it had when verified (the journal's record, not its bytes;
        the same standing as an unchanged object found by a listing)."""
        try:
            found = self.target.head(row.dst_bucket, row.dst_key)
        except NotFound:
            return False
        if found.size != row.size:
            return False
        if found.meta is not None and found.meta.user.get(self.digest_key) == row.digest:
            return True
        return bool(row.dst_etag) and (found.etag or "").strip('"') == row.dst_etag

    def _digest_on_target(self, row: ObjectRow, size: int) -> str | None:
        """The digest failover wrote into the target object's metadata, if the target holds an
        object of the right size with one: a claim, never proof of the bytes."""
        try:
            found = self.target.head(row.dst_bucket, row.dst_key)
        except NotFound:
            return None
        if found.size != size or found.meta is None:
            return None
        return found.meta.user.get(self.digest_key)

    def _target_digest(self, row: ObjectRow, size: int, like: str | None = None) -> str | None:
        """The digest of the bytes the target holds for ``row`` (read in full), of the kind ``like``
        is (default: the recorded one; a parts digest is computed as one), or None when it holds no
        object of that size."""
        digest = digest_like(self.algorithm, like if like is not None else row.digest)
        try:
            with self.target.open(row.dst_bucket, row.dst_key) as reader:
                if reader.info.size != size:
                    return None
                for chunk in reader.iter_chunks():
                    digest.update(chunk)
        except NotFound:
            return None
        return digest.hexdigest()

    def _same_content(
        self,
        row: ObjectRow,
        reader: ObjectReader,
        info: ObjectInfo,
        meta: ObjectMeta,
        tags: dict[str, str],
        claimed: str,
    ) -> Result | str | None:
        """The target holds an object of the right size with a digest recorded for it (by an earlier
        verified copy, or by an interrupted attempt). Digest the source; if it matches the claim,
        read the target's bytes too: only if they agree is the object the same, and then only its
        metadata and tags are brought up to date (server-side, nothing sent). None: send it;
        ``"repair"``: send it, the target's bytes were not what its record claimed."""
        digest = digest_like(self.algorithm, claimed)  # a parts digest is computed as one
        for chunk in reader.iter_chunks():
            digest.update(chunk)
        value = digest.hexdigest()
        reader.close()
        if value != claimed:
            return None
        if Capability.SERVER_SIDE_COPY not in self.target.capabilities:
            return None  # cannot update metadata in place: send the object again
        if self._target_digest(row, info.size, like=value) != value:
            return "repair"
        # A parts digest stays in the journal: the metadata carries plain digests only.
        meta = meta if is_parts_digest(value) else self._with_digest(meta, value)
        self.target.copy(row.dst_bucket, row.dst_key, row.dst_bucket, row.dst_key, meta=meta)
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
        written = self.target.put(row.dst_bucket, row.dst_key, tee, size=info.size, meta=meta, tags=tags or None)
        value = digest.hexdigest()
        self._digest_in_journal_only()
        self._confirm(row, value, info.size, written.etag)
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
            self.journal.begin_upload_intent(row, version_of(info))
            upload_id = target.start_upload(row.dst_bucket, row.dst_key, meta=meta, tags=tags or None)
            self.journal.set_upload(row, upload_id, part_size)
            with self.report._lock:
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
                    with self.report._lock:
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
            etag = self._complete(row, upload_id, sorted(parts, key=lambda part: part.number), info.size)
        except BaseException as error:
            concurrent.futures.wait(inflight)  # never leave a part upload running behind us
            if isinstance(error, ProviderError) and not error.retryable:
                self._abort(row, upload_id)
            raise
        value = digest.hexdigest()
        # The digest is known only now, after the parts: it stays in the journal (a server-side
        # rewrite of every large object just to store it in metadata is not worth its cost).
        self._digest_in_journal_only()
        self._confirm(row, value, info.size, etag)
        return Result(Outcome.COPIED, info.size, sent)

    def _upload_part(self, row: ObjectRow, upload_id: str, number: int, chunk: bytes) -> PartInfo:
        part = self.target.upload_part(row.dst_bucket, row.dst_key, upload_id, number, chunk)
        self.journal.record_part(row, upload_id, part, self.target.part_proof(chunk))
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

    def _complete(self, row: ObjectRow, upload_id: str, parts: list[PartInfo], size: int) -> str | None:
        """Complete the upload; returns the object's ETag. The upload and its parts stay in the
        journal until the verified mark is committed (which clears them): a crash in between finds
        the completed object by its parts."""
        try:
            return self.target.complete_upload(row.dst_bucket, row.dst_key, upload_id, parts)
        except NotFound:
            # A retried Complete whose first attempt succeeded finds no upload: the object is
            # there if it is the one these parts make.
            etag = self._assembled(row, parts, size)
            if etag is None:
                raise
            return etag

    def _completed_earlier(self, row: ObjectRow, parts: list[PartRow], part_size: int) -> Result | None:
        """An upload the target no longer knows, whose object is on the target as the recorded parts
        assemble it (its multipart ETag says so): proven with the source's bytes as they are now,
        part by part against the checksums recorded when the parts were sent, and recorded as
        verified without sending anything. None when that cannot be shown."""
        recorded = row.upload_version
        if not parts or recorded is None:
            return None
        ordered = sorted(parts, key=lambda p: p.number)
        if [p.number for p in ordered] != list(range(1, len(ordered) + 1)) or any(p.proof is None for p in ordered):
            return None
        infos = [PartInfo(p.number, p.etag, p.size, p.checksum) for p in ordered]
        etag = self._assembled(row, infos, recorded.size) if sum(p.size for p in ordered) == recorded.size else None
        if etag is None:
            return None
        reader = self._open_source(row)
        if reader is None:
            return None
        digest = new_digest(self.algorithm)
        with reader:
            if not _same_version(recorded, version_of(reader.info)):
                return None
            for part in ordered:
                chunk = read_full(reader, part.size)
                digest.update(chunk)
                if len(chunk) != part.size or self.target.part_proof(chunk) != part.proof:
                    return None
        value = digest.hexdigest()
        try:
            self._confirm(row, value, recorded.size, etag)
        except IntegrityError:
            return None  # the assembled object does not read back as these bytes: send it again
        self._digest_in_journal_only()
        with self.report._lock:
            self.report.multipart["recovered_completed"] += 1
        return Result(Outcome.UNCHANGED, recorded.size)

    def _assembled(self, row: ObjectRow, parts: list[PartInfo], size: int) -> str | None:
        """The target object's ETag if it is the one ``parts`` assemble into (its size, and, where
        the store's multipart ETag is the MD5 of the parts' MD5s, that ETag); None otherwise."""
        try:
            found = self.target.head(row.dst_bucket, row.dst_key)
        except NotFound:
            return None
        etag = (found.etag or "").strip('"')
        if found.size != size:
            return None
        expected = _multipart_etag(parts)
        if expected is not None and etag.lower() != expected:
            return None
        return etag or "unknown"

    def _resume(self, row: ObjectRow) -> Result | None:
        """Continue a multipart upload an earlier run left behind, or clean it up. Parts already on
        the target are not sent again when proven to hold the bytes now being sent; their bytes are
        re-read from the source to prove that and to rebuild the digest. Returns None when the copy
        must start over."""
        target = self.target
        if row.upload_id is None:
            self._abort_strays(row)
            return None
        recorded = row.upload_version
        upload_id, part_size = row.upload_id, row.part_size or target.part_size
        local = {p.number: p for p in self.journal.parts(row, upload_id)}
        try:
            remote = {p.number: p for p in target.list_parts(row.dst_bucket, row.dst_key, upload_id)}
        except NotFound:
            # Gone: completed by an attempt that died before its verified mark was committed (then
            # the object is there, made of the recorded parts), or aborted.
            recovered = self._completed_earlier(row, list(local.values()), part_size)
            if recovered is None:
                self.journal.clear_upload(row)
            return recovered
        reader = self._open_source(row)
        if reader is None:
            self._abort(row, upload_id)
            return Result(Outcome.VANISHED, 0)
        with reader:
            info = reader.info
            if recorded is None or not _same_version(recorded, version_of(info)):
                # The upload belongs to another version of the object (or to none we know of): its
                # parts hold other bytes than those to be sent now.
                reader.close()
                self._abort(row, upload_id)
                with self.report._lock:
                    self.report.multipart["abandoned_source_changed"] += 1
                return None

            def on_target(number: int, chunk: bytes) -> PartInfo | None:
                theirs = remote.get(number)
                if theirs is None or theirs.size != len(chunk):
                    return None
                mine = local.get(number)
                if mine is not None and mine.etag == theirs.etag and mine.proof == target.part_proof(chunk):
                    # The part the target holds is the one recorded, and the bytes to send now
                    # have the checksum recorded when it was sent.
                    return PartInfo(theirs.number, theirs.etag, theirs.size, theirs.checksum or mine.checksum)
                return target.confirm_part(theirs, chunk)

            meta, tags = self._metadata(row, info)
            with self.report._lock:
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
            with self.report._lock:
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
                    with self.report._lock:
                        self.report.multipart["aborted"] += 1
        self.journal.clear_upload(row)

    # -- metadata, digests, proof ------------------------------------------------------------------

    def _metadata(self, row: ObjectRow, info: ObjectInfo) -> tuple[ObjectMeta, dict[str, str]]:
        """What of the source's metadata and tags the target can hold; the rest goes in the report."""
        meta = info.meta or ObjectMeta()
        user = {k: v for k, v in meta.user.items() if not k.startswith("failover-")}
        meta = ObjectMeta(**{f.value: getattr(meta, f.value) for f in MetaField if f is not MetaField.USER}, user=user)
        lost = sorted(f.value for f in meta.present() - self.target.capabilities.metadata)
        lost += sorted(info.uncarried)
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

    def _digest_in_journal_only(self) -> None:
        with self.report._lock:
            self.report.fidelity.digest_only_in_journal += 1

    def _confirm(self, row: ObjectRow, value: str, size: int, etag: str | None = None) -> None:
        """Prove the bytes arrived, then commit: the target checked every body it received, or we
        read the object back and compare digests."""
        if self.verify_by_reading:
            found = self._target_digest(row, size, like=value)
            if found != value:
                raise IntegrityError(
                    f"target holds other bytes than sent ({self.algorithm} {str(found)[:16]}..., expected "
                    f"{size} bytes with {value[:16]}...)",
                    target=f"{row.dst_bucket}/{row.dst_key}",
                )
        self.journal.mark_verified(row, value, size, etag)


def _multipart_etag(parts: list[PartInfo]) -> str | None:
    """The ETag S3 gives an object assembled from ``parts`` (MD5 of the parts' MD5s, "-N"), when
    every part ETag is an MD5; None otherwise."""
    digests = []
    for part in parts:
        etag = part.etag.strip('"').lower()
        if len(etag) != 32 or any(c not in "0123456789abcdef" for c in etag):
            return None
        digests.append(bytes.fromhex(etag))
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(parts)}"
