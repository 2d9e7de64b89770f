"""The sync engine: ``failover sync SRC DST``.

1. Plan bucket pairs (mapping names the target cannot hold) and create missing target buckets.
2. List the target into the journal, then stream the source listing into it in batches; each batch
   is decided at once (unchanged and verified -> skip; otherwise copy) and handed to a bounded pool
   of workers, so memory stays flat however many objects there are.
3. Workers copy, digest and verify (see copier.py) and commit each object to the journal.
4. Deletes (``--delete``) only after complete, error-free listings of both sides, and never more
   than ``max_delete_share`` of the target without ``--force``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..config import Providers
from ..connect import open_store, same_store
from ..errors import AuthError, ConfigError, FailoverError, InvalidRequest, NotSupported, ProviderError
from ..location import Location, parse_location
from ..storage import ObjectStore
from ..types import ObjectInfo
from .copier import Copier, Outcome, Result
from .digests import Algorithm
from .journal import Journal, ObjectRow
from .keys import KeyPolicy, TargetKeys
from .plan import BucketPair, plan_buckets
from .report import BucketReport, SyncReport
from .throttle import Bandwidth

__all__ = ["Progress", "SyncEngine", "SyncOptions", "check_locations", "default_journal_path", "state_dir"]

BATCH = 500
_counter_lock = threading.Lock()


class Progress(Protocol):
    """Where the engine reports progress (the CLI draws it; tests may ignore it)."""

    def planned(self, objects: int, size: int) -> None:
        """More work was found: ``objects`` objects of ``size`` bytes to copy."""

    def advanced(self, objects: int, size: int) -> None:
        """Work was done (copied, or found unchanged)."""

    def note(self, message: str) -> None:
        """A line worth telling a person."""


class SilentProgress:
    def planned(self, objects: int, size: int) -> None:
        pass

    def advanced(self, objects: int, size: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass
class SyncOptions:
    dry_run: bool = False
    delete: bool = False
    force: bool = False
    max_delete_share: float = 0.25
    """Refuse (without --force) to delete more than this share of the target's objects."""
    workers: int = 16
    parts_in_flight: int = 4
    """Multipart parts uploading at once across all objects (memory: this x the part size). Raise it
    for far-away targets; on a 2-core machine shared with the servers, more is slower (see bench/)."""
    bandwidth: float | None = None
    digest: Algorithm = "sha256"
    readback: bool = False
    """Verify by reading every copy back, even from targets that check bodies on arrival."""
    bucket_map: dict[str, str] = field(default_factory=dict)
    invalid_keys: KeyPolicy = "skip"
    """Keys the target cannot hold: skip and report, abort before writing, or encode (see keys.py)."""
    journal: Path | None = None
    durable: bool = False
    max_attempts: int = 3
    """Attempts per object for retryable failures (each request is also retried by the store)."""


def state_dir() -> Path:
    explicit = os.environ.get("FAILOVER_STATE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "failover"


def default_journal_path(source: Location, target: Location) -> Path:
    import hashlib
    import re

    identity = f"{source} -> {target}"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", identity).strip("-")[:60]
    return state_dir() / "journals" / f"{slug}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}.sqlite"


class _Abort(Exception):
    """Stop the run (an authorisation error, or an invalid key under --invalid-keys abort)."""


class SyncEngine:
    def __init__(
        self,
        source: ObjectStore,
        target: ObjectStore,
        source_location: Location,
        target_location: Location,
        options: SyncOptions,
        progress: Progress | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.source_location = source_location
        self.target_location = target_location
        self.options = options
        self.progress = progress or SilentProgress()
        self.keys = TargetKeys(target, options.invalid_keys)
        self._abort: str | None = None
        self._auth_failed = False
        self._abort_lock = threading.Lock()

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> SyncReport:
        options = self.options
        journal_path = options.journal or default_journal_path(self.source_location, self.target_location)
        with self._journal(journal_path) as journal:
            report = SyncReport(
                source=str(self.source_location),
                target=str(self.target_location),
                dry_run=options.dry_run,
                journal=str(journal_path),
                digest=options.digest,
            )
            report.started = time.time()
            journal.bind(str(self.source_location), str(self.target_location), options.digest)
            report.run = journal.start_run()
            copier = Copier(
                self.source,
                self.target,
                journal,
                report,
                algorithm=options.digest,
                bandwidth=Bandwidth(options.bandwidth),
                readback=options.readback,
                max_parts_in_flight=options.parts_in_flight,
            )
            report.verification = copier.verification
            try:
                pairs = self._plan()
                for pair in pairs:
                    bucket = BucketReport(
                        source=f"{self.source_location.provider}:{pair.src_bucket}/{pair.src_prefix}".rstrip("/"),
                        target=f"{self.target_location.provider}:{pair.dst_bucket}/{pair.dst_prefix}".rstrip("/"),
                        mapped_because=pair.mapped_because,
                    )
                    report.buckets.append(bucket)
                for pair, bucket in zip(pairs, report.buckets, strict=True):
                    if self._abort:
                        break
                    self._sync_bucket(pair, bucket, journal, copier, report)
            except _Abort:
                pass
            finally:
                copier.close()
                report.aborted = self._abort
                report.auth_failed = self._auth_failed
                report.finished = time.time()
                report.retries = {"source": self.source.counters.retries, "target": self.target.counters.retries}
                report.bytes_read = self.source.counters.bytes_read
                report.bytes_sent = self.target.counters.bytes_written if self.source is not self.target else 0
                if not options.dry_run:
                    journal.finish_run("complete" if report.complete else "incomplete", report.to_json())
            return report

    @contextlib.contextmanager
    def _journal(self, path: Path) -> Iterator[Journal]:
        """The real journal; for a dry run, a throwaway copy of it (nothing is recorded)."""
        if not self.options.dry_run:
            journal = Journal(path, durable=self.options.durable)
            try:
                yield journal
            finally:
                journal.close()
            return
        with tempfile.TemporaryDirectory(prefix="failover-dry-run-") as scratch:
            copy = Path(scratch) / "journal.sqlite"
            if path.exists():
                source = Journal(path)  # checkpoints the WAL so the copy is whole
                source.close()
                shutil.copyfile(path, copy)
            journal = Journal(copy)
            try:
                yield journal
            finally:
                journal.close()

    def _plan(self) -> list[BucketPair]:
        if self.source_location.bucket is None:
            names: Iterable[str] = [b.name for b in self.source.list_buckets()]
        else:
            names = [self.source_location.bucket]
        pairs = plan_buckets(
            self.source_location,
            self.target_location,
            names,
            self.target.capabilities.limits.valid_bucket_name,
            self.options.bucket_map,
        )
        for pair in pairs:
            if pair.mapped_because:
                self.progress.note(f"bucket {pair.src_bucket} -> {pair.dst_bucket} ({pair.mapped_because})")
        return pairs

    def _fail_fast(self, error: FailoverError) -> None:
        with self._abort_lock:
            if self._abort is None:
                self._abort = str(error) + (f" ({error.hint})" if error.hint else "")
                self._auth_failed = isinstance(error, AuthError)

    # -- one bucket --------------------------------------------------------------------------------

    def _sync_bucket(
        self, pair: BucketPair, bucket: BucketReport, journal: Journal, copier: Copier, report: SyncReport
    ) -> None:
        options = self.options
        if options.invalid_keys == "abort":
            try:
                self._prescan(pair)
            except ProviderError as error:
                bucket.listing_complete = isinstance(error, InvalidRequest)
                report.error(f"{pair.src_bucket}/{pair.src_prefix}", str(error))
                self._fail_fast(error)
                return
        if self.source is not self.target or pair.src_bucket != pair.dst_bucket:
            bucket.created = self._ensure_bucket(pair.dst_bucket)
        self._list_target(pair, bucket, journal, report)
        workers = max(1, options.workers)
        slots = threading.BoundedSemaphore(workers * 2)
        failures_before = report.total("failed")
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="copy") as pool:

            def submit(row: ObjectRow) -> None:
                slots.acquire()
                future = pool.submit(self._copy_one, row, bucket, copier, report)
                future.add_done_callback(lambda _: slots.release())

            try:
                for batch in self._batches(self.source.list_objects(pair.src_bucket, pair.src_prefix)):
                    if self._abort:
                        break
                    self._decide(pair, batch, bucket, journal, report, submit)
            except ProviderError as error:
                bucket.listing_complete = False
                report.error(f"{pair.src_bucket}/{pair.src_prefix}", f"listing failed: {error}")
                if isinstance(error, AuthError):
                    self._fail_fast(error)
        if options.delete:
            self._delete(pair, bucket, journal, report, clean=report.total("failed") == failures_before)

    def _ensure_bucket(self, name: str) -> bool:
        if self.target.bucket_exists(name):
            return False
        if self.options.dry_run:
            self.progress.note(f"would create bucket {name} on {self.target_location.provider}")
            return True
        self.target.create_bucket(name)
        return True

    def _list_target(self, pair: BucketPair, bucket: BucketReport, journal: Journal, report: SyncReport) -> None:
        try:
            if not self.target.bucket_exists(pair.dst_bucket):
                return
            for batch in self._batches(self.target.list_objects(pair.dst_bucket, pair.dst_prefix)):
                journal.record_target([(pair.dst_bucket, info.key, info.size) for info in batch])
                bucket.target_listed += len(batch)
        except ProviderError as error:
            bucket.target_listing_complete = False
            if self.options.delete:  # then it is why the run cannot finish what it was asked to do
                report.error(f"{pair.dst_bucket}/{pair.dst_prefix}", f"listing the target failed: {error}")
            # Without --delete it costs only re-sends: objects it did not show are copied again.
            self.progress.note(f"listing {pair.dst_bucket} on the target failed: {error}; nothing will be deleted")
            if isinstance(error, AuthError):
                self._fail_fast(error)
                raise _Abort from error

    @staticmethod
    def _batches(items: Iterable[ObjectInfo]) -> Iterator[list[ObjectInfo]]:
        batch: list[ObjectInfo] = []
        for item in items:
            batch.append(item)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _decide(
        self,
        pair: BucketPair,
        batch: list[ObjectInfo],
        bucket: BucketReport,
        journal: Journal,
        report: SyncReport,
        submit: Callable[[ObjectRow], None],
    ) -> None:
        rows = []
        for info in batch:
            bucket.listed += 1
            bucket.listed_bytes += info.size
            modified = info.last_modified.isoformat() if info.last_modified else None
            dst_key = self.keys.map(pair.dst_key(info.key))
            rows.append((pair.src_bucket, info.key, pair.dst_bucket, dst_key, info.size, info.etag, modified))
        for row in journal.record_listed(rows):
            if row.state == "verified" and journal.target_size(row.dst_bucket, row.dst_key) == row.size:
                bucket.unchanged += 1
                self.progress.advanced(1, row.size)
                continue
            reason = self._refusal(row, journal)
            if reason is not None:
                bucket.skipped += 1
                report.skip(row.src_key, reason)
                if not self.options.dry_run:
                    journal.mark_skipped(row, reason)
                continue
            bucket.to_copy += 1
            bucket.to_copy_bytes += row.size
            self.progress.planned(1, row.size)
            if not self.options.dry_run:
                submit(row)

    def _refusal(self, row: ObjectRow, journal: Journal) -> str | None:
        """Why ``row`` cannot be copied as mapped (None: it can). Invalid keys were found before
        anything was written under the abort policy (see :meth:`_prescan`)."""
        try:
            self.target.check_key(row.dst_key)
            self.target.capabilities.limits.part_size_for(row.size, self.target.part_size)
        except (InvalidRequest, NotSupported) as error:
            return f"cannot be stored on the target: {error.message}"
        if self.keys.may_collide:
            other = journal.other_source(row)
            if other is not None:
                return f"would land on the same target key as {other!r} ({row.dst_key!r}); neither is overwritten"
        return None

    def _prescan(self, pair: BucketPair) -> None:
        """The abort policy: list the whole bucket and refuse, before writing anything, if any key
        cannot be stored on the target or two keys land on one."""
        refused: list[str] = []
        seen: dict[str, str] = {}
        for info in self.source.list_objects(pair.src_bucket, pair.src_prefix):
            dst_key = self.keys.map(pair.dst_key(info.key))
            try:
                self.target.check_key(dst_key)
            except (InvalidRequest, NotSupported) as error:
                refused.append(f"{info.key!r}: {error.message}")
                continue
            if self.keys.may_collide:
                if dst_key in seen:
                    refused.append(f"{info.key!r} and {seen[dst_key]!r} land on one target key")
                seen[dst_key] = info.key
        if refused:
            shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
            raise InvalidRequest(
                f"{len(refused)} key(s) of {pair.src_bucket} cannot be stored on the target, nothing was written: "
                f"{shown}",
                hint="--invalid-keys skip copies the rest and reports these; --invalid-keys encode stores them "
                "under reversible names",
            )

    def _copy_one(self, row: ObjectRow, bucket: BucketReport, copier: Copier, report: SyncReport) -> None:
        if self._abort:
            return
        last: ProviderError | None = None
        for attempt in range(1, self.options.max_attempts + 1):
            if attempt > 1:
                # An earlier attempt may have begun a multipart upload: resume it, never start a
                # second one beside it.
                row = copier.journal.refresh(row)
            try:
                result = copier.copy(row)
                self._count(bucket, result)
                self.progress.advanced(1, row.size)
                return
            except AuthError as error:
                self._fail_fast(error)
                last = error
                break
            except ProviderError as error:
                last = error
                if not error.retryable or attempt == self.options.max_attempts:
                    break
                time.sleep(self.target.retry.delay(attempt, error))
            except FailoverError as error:
                last = ProviderError(str(error))
                break
        message = str(last) if last else "unknown error"
        copier.journal.mark_failed(row, message)
        with report._lock:
            bucket.failed += 1
        report.error(row.src_key, message)
        self.progress.advanced(1, 0)

    @staticmethod
    def _count(bucket: BucketReport, result: Result) -> None:
        # Workers of one bucket run concurrently; these are plain ints under the GIL, but a lock keeps
        # the arithmetic obviously atomic.
        with _counter_lock:
            if result.outcome is Outcome.COPIED:
                bucket.copied += 1
                bucket.copied_bytes += result.size
            elif result.outcome is Outcome.UNCHANGED:
                bucket.unchanged += 1
            elif result.outcome is Outcome.CONTENT_UNCHANGED:
                bucket.content_unchanged += 1
            elif result.outcome is Outcome.SERVER_SIDE:
                bucket.server_side += 1
                bucket.copied_bytes += result.size
            else:
                bucket.vanished += 1

    # -- deletes -----------------------------------------------------------------------------------

    def _delete(
        self, pair: BucketPair, bucket: BucketReport, journal: Journal, report: SyncReport, *, clean: bool
    ) -> None:
        reasons = [
            reason
            for reason, present in (
                ("the source listing failed", not bucket.listing_complete),
                ("the target listing failed", not bucket.target_listing_complete),
                ("copies failed", not clean),
                ("the run was stopped", bool(self._abort)),
            )
            if present
        ]
        if reasons:
            report.delete_refused = f"{bucket.target}: not deleting anything: {', '.join(reasons)} (see errors)"
            self.progress.note(report.delete_refused)
            return
        candidates = sum(1 for _ in journal.target_only(pair.dst_bucket, pair.dst_prefix))
        bucket.delete_candidates = candidates
        total = journal.target_count(pair.dst_bucket, pair.dst_prefix)
        if candidates and total and candidates / total > self.options.max_delete_share and not self.options.force:
            report.delete_refused = (
                f"{bucket.target}: {candidates} of {total} objects ({candidates / total:.0%}) would be deleted, more "
                f"than the allowed {self.options.max_delete_share:.0%}; re-run with --force if that is intended"
            )
            self.progress.note(report.delete_refused)
            return
        if self.options.dry_run:
            return
        # Keyset-paginated: deleting rows behind the cursor does not disturb it.
        for key, _size in journal.target_only(pair.dst_bucket, pair.dst_prefix):
            try:
                self.target.delete(pair.dst_bucket, key)
            except ProviderError as error:
                report.error(key, f"delete failed: {error}")
                continue
            journal.forget_target(pair.dst_bucket, key)
            bucket.deleted += 1


def check_locations(source: Location, target: Location, *, same_store: bool = False) -> None:
    """Refuse a copy of a place onto itself (or into itself)."""
    same_bucket = (same_store or source.provider == target.provider) and source.bucket == target.bucket
    if same_bucket and (source.prefix.startswith(target.prefix) or target.prefix.startswith(source.prefix)):
        raise ConfigError(f"{source} and {target} overlap", hint="copy to another bucket or a disjoint prefix")


def open_locations(
    providers: Providers, source: str, target: str
) -> tuple[Location, Location, ObjectStore, ObjectStore]:
    """Parse ``PROVIDER:BUCKET[/PREFIX]`` source and target, refuse overlaps, and open both stores
    (one store serves both when they are the same endpoint and credentials)."""
    src, dst = parse_location(source), parse_location(target)
    shared = same_store(providers, src.provider, dst.provider)
    check_locations(src, dst, same_store=shared)
    source_store = open_store(providers, src.provider)
    target_store = source_store if shared else open_store(providers, dst.provider)
    return src, dst, source_store, target_store
