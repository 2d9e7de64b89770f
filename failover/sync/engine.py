"""The sync engine: ``failover sync SRC DST``.

Per bucket pair, in stages:

1. **List**: the source bucket must exist (nothing is created for a mistyped one). The target is
   listed into the journal, then the source is streamed into it in batches. Every listing's end is
   confirmed (see :meth:`ObjectStore.list_objects`); where the source declares a second listing
   mechanism, a second, independent listing runs alongside and the two are compared at the end.
2. **Decide** each batch at once: unchanged and verified -> skip; a key the target cannot hold,
   or two source keys landing on one target key -> refused and named; otherwise copy.
3. **Copy** on a bounded pool of workers (see copier.py): every worker's outcome, an exception of
   any kind included, is accounted for and named in the report.
4. **Commit**: verified marks in the journal; then the target is listed over what was copied, and
   a copied object that does not show there under its name is not verified.

Deletes (``--delete``) happen only after complete, confirmed and agreeing listings of both sides
and a run without failures, never beyond ``max_delete_share`` of the target without ``--force``,
and never of a key the source still holds (each candidate is looked up on the source first).

One run per journal: the journal is locked for the run. A run has a deadline for making no
progress (``stall_timeout``): when a provider stops answering, the run stops and says which.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..capabilities import Capability
from ..config import Providers
from ..connect import open_store
from ..errors import (
    AuthError,
    ConfigError,
    FailoverError,
    InvalidRequest,
    ListingIncomplete,
    NotFound,
    NotSupported,
    ProviderError,
    Stalled,
)
from ..liveness import DEFAULT_STALL_TIMEOUT, Liveness
from ..location import Location, parse_location
from ..settings import BucketSettings, Setting, SettingOutcome, differences, plan_settings
from ..storage import ObjectStore
from ..types import ObjectInfo
from .copier import Copier, Outcome, PartRange, Result, UploadedPart
from .digests import Algorithm
from .filters import Filters
from .journal import Journal, Listed, ObjectRow, SourceVersion, snapshot
from .keys import KeyPolicy, TargetKeys, decode_key
from .plan import BucketPair, plan_buckets
from .report import MAX_EXAMPLES, BucketReport, SyncReport
from .throttle import Bandwidth
from .workers import Workers

if TYPE_CHECKING:  # Dask is imported only by a run with --cluster
    from ..cluster.pool import ClusterPool
    from ..cluster.spec import ClusterSpec
    from ..cluster.tasks import ChunkOutcome, Job

__all__ = [
    "ClusterRun",
    "DeleteDelay",
    "Progress",
    "SyncEngine",
    "SyncOptions",
    "check_locations",
    "default_journal_path",
    "open_locations",
    "state_dir",
]

BATCH = 500
STOP_GRACE = 3.0
"""Once a run stops, how long copies still in flight get to finish before the run ends without
them (they are waiting on a server that stopped answering; the next run does them again)."""
INTERRUPT_GRACE = 1.0
"""The same after Ctrl-C: a person is waiting, and whatever was in flight is resumed by the next run."""
CHANGED_DURING_RUN_MARGIN = 2.0
"""A key only one listing showed, last modified after (the source's clock at the bucket's start -
this), was written during the run; any other difference between the two listings is theirs."""
_Item = TypeVar("_Item")
_Answer = TypeVar("_Answer")
KEYS_BY_LISTING = 64
"""A run over more named keys than this (a standby's feed batch) reads them with a listing of
their range (where the source lists in order), and asks by name only for what it did not show."""
CONFIRM_BY_NAME = 64
"""A run over named keys (a standby's feed batch) with at most this many copies confirms them by
name, one small listing each (several at once), instead of listing the range they span."""


class DeleteDelay(Protocol):
    """When a delete candidate may be deleted (``SyncOptions.delete_delay``)."""

    def ripe(self, bucket: str, key: str) -> bool:
        """Whether target ``key`` of ``bucket``, found (again) to have no source object by a run
        whose listings were confirmed, has been a candidate long enough to delete. The first call
        for a key starts its clock."""
        ...


class Progress(Protocol):
    """Where the engine reports progress (the CLI draws it; tests may ignore it)."""

    def planned(self, objects: int, size: int) -> None:
        """More work was found: ``objects`` objects of ``size`` bytes to copy."""

    def advanced(self, objects: int, size: int) -> None:
        """Planned work finished (copied, or failed with ``size`` 0)."""

    def checked(self, objects: int, size: int) -> None:
        """Objects found done already (verified by an earlier run, unchanged): nothing to transfer."""

    def watch_in_flight(self, count: Callable[[], int]) -> None:
        """How to read the number of transfers in flight."""

    def transferring(self, size: int) -> None:
        """``size`` more bytes went out (as they are sent: the rate of a large object shows while it moves)."""

    def note(self, message: str) -> None:
        """A line worth telling a person."""


class SilentProgress:
    def planned(self, objects: int, size: int) -> None:
        pass

    def advanced(self, objects: int, size: int) -> None:
        pass

    def checked(self, objects: int, size: int) -> None:
        pass

    def watch_in_flight(self, count: Callable[[], int]) -> None:
        pass

    def transferring(self, size: int) -> None:
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
    """Verify every copy by reading it back from the target, even from targets that check bodies."""
    checksum: bool = False
    """Read every object verified by an earlier run again on the target; send again what differs."""
    bucket_map: dict[str, str] = field(default_factory=dict)
    invalid_keys: KeyPolicy = "skip"
    """Keys the target cannot hold: skip and report, abort before writing, or encode (see keys.py)."""
    journal: Path | None = None
    durable: bool = False
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    """Stop the run when a provider answers nothing for this long (None: never)."""
    cross_check: bool = True
    """List the source a second way (where it declares one) and compare the two listings."""
    filters: Filters = field(default_factory=Filters)
    """--include/--exclude/--min-size/--max-size/--max-age: which source objects are considered."""
    on_key: Callable[[str, str, str], None] | None = None
    """Told of every key copied, deleted, kept, skipped, filtered or failed (``-v``)."""
    cluster: ClusterSpec | None = None
    """--cluster: list and copy on a Dask cluster (see failover/cluster); None: in this process."""
    spread_above: int = 1024**3
    """--cluster: an object at least this large (and of several parts) is sent as part ranges by
    several workers at once (Copier.spread), not by one."""
    keys: Mapping[str, Collection[str]] | None = None
    """Only these source keys (per source bucket), each read by name instead of listed: a
    standby's change feed. The target is not listed (``list_target`` must be False) and nothing is
    deleted; a key the source no longer holds is left for a run that lists."""
    list_target: bool = True
    """False: the target is not listed, and an object the journal has verified whose source is
    unchanged is taken to be on the target still (a standby's quick passes between its full
    reconciliations, which list both sides and confirm the claim). Incompatible with ``delete``."""
    bucket_settings: bool = False
    """Carry each bucket's settings (policy, public read, CORS, lifecycle, versioning, website,
    encryption, tags) as far as the target holds them, read back after writing (failover.settings)."""
    delete_delay: DeleteDelay | None = None
    """With ``delete``: a candidate is deleted only once the delay says it is ripe (standby's
    ``--delete-delay``); until then it is counted as ``delete_pending``. None: at once."""


@dataclass
class ClusterRun:
    """A run's cluster: its Dask client (``starting.client``, which waits for it to be up) and
    what every task of the run shares."""

    starting: Any
    job: Job
    spec: ClusterSpec
    shards_per_worker: int = 4

    @property
    def client(self) -> Any:
        return self.starting.client


def state_dir() -> Path:
    explicit = os.environ.get("FAILOVER_STATE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "failover"


def default_journal_path(source: Location, target: Location) -> Path:
    identity = f"{source} -> {target}"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", identity).strip("-")[:60]
    return state_dir() / "journals" / f"{slug}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}.sqlite"


class _Abort(Exception):
    """Stop the run (an authorisation error, a stall, or an invalid key under --invalid-keys abort)."""


class _Stop:
    """Why the run stops (the first reason wins), shared by every worker."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.auth_failed = False
        self.stalled = False
        self.interrupted = False
        self._lock = threading.Lock()

    def set(self, reason: str, *, auth: bool = False, stalled: bool = False, interrupted: bool = False) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self.auth_failed, self.stalled, self.interrupted = auth, stalled, interrupted

    def __bool__(self) -> bool:
        return self.reason is not None


def _message(error: BaseException) -> str:
    if isinstance(error, FailoverError):
        return str(error) + (f" (hint: {error.hint})" if error.hint else "")
    return f"internal error in a worker: {type(error).__name__}: {error}"


def _common_prefix(first: str, last: str) -> str:
    """The longest prefix two keys share, character by character (what a listing's prefix means)."""
    length = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        length += 1
    return first[:length]


class SyncEngine:
    def __init__(
        self,
        source: ObjectStore,
        target: ObjectStore,
        source_location: Location,
        target_location: Location,
        options: SyncOptions,
        progress: Progress | None = None,
        cluster: ClusterRun | None = None,
    ) -> None:
        self.cluster = cluster
        self._pools: list[ClusterPool] = []
        self.source = source
        self.target = target
        self.source_location = source_location
        self.target_location = target_location
        self.options = options
        self.progress = progress or SilentProgress()
        self.keys = TargetKeys(target, options.invalid_keys)
        self.stop = _Stop()
        self.liveness = Liveness(options.stall_timeout)
        self._inflight: dict[tuple[str, str], ObjectRow] = {}
        self.progress.watch_in_flight(lambda: len(self._inflight))
        self._remote_by_worker: dict[str, dict[str, int]] = {}
        """--cluster: each worker's counters for this run (the latest totals it reported)."""
        self._inflight_lock = threading.Lock()
        self.abandoned = False
        """Copies were still waiting on a server when the run ended (the CLI does not wait for them)."""

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> SyncReport:
        """Run the sync. Raises (before anything is recorded or changed) when the source bucket does
        not exist; every other failure ends up in the returned report."""
        options = self.options
        if options.delete and options.filters.max_age is not None:
            raise ConfigError(
                "--delete with --max-age: the target's objects would be judged by an age failover cannot read there",
                hint="run the copy with --max-age, and --delete in a run without it",
            )
        if options.delete and not options.list_target:
            raise ConfigError(
                "deletes are chosen from the target's listing: a run that does not list it deletes nothing"
            )
        if options.keys is not None and options.list_target:
            raise ConfigError("a run over named keys does not list the target (set list_target=False)")
        journal_path = options.journal or default_journal_path(self.source_location, self.target_location)
        self._check_source()
        for store in {id(self.source): self.source, id(self.target): self.target}.values():
            store.liveness = self.liveness
        watchdog = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        done = threading.Event()
        self._done = done
        with self._journal(journal_path) as journal:
            report = SyncReport(
                source=str(self.source_location),
                target=str(self.target_location),
                dry_run=options.dry_run,
                journal=str(journal_path),
                digest=options.digest,
                checksum=options.checksum,
            )
            report.started = time.time()
            report.sample(force=True)
            report.on_key = options.on_key
            filters = options.filters
            report.filters = {
                k: v
                for k, v in {
                    "include": list(filters.include),
                    "exclude": list(filters.exclude),
                    "min_size": filters.min_size,
                    "max_size": filters.max_size,
                    "max_age_s": filters.max_age.total_seconds() if filters.max_age else None,
                }.items()
                if v
            }
            journal.bind(str(self.source_location), str(self.target_location), options.digest)
            report.run = journal.start_run()
            copier = Copier(
                self.source,
                self.target,
                journal,
                report,
                algorithm=options.digest,
                bandwidth=Bandwidth(options.bandwidth, self.progress.transferring),
                readback=options.readback,
                max_parts_in_flight=options.parts_in_flight,
            )
            report.verification = copier.verification
            watchdog.start()
            try:
                pairs = self._plan()
                for pair in pairs:
                    report.buckets.append(
                        BucketReport(
                            source=f"{self.source_location.provider}:{pair.src_bucket}/{pair.src_prefix}".rstrip("/"),
                            target=f"{self.target_location.provider}:{pair.dst_bucket}/{pair.dst_prefix}".rstrip("/"),
                            mapped_because=pair.mapped_because,
                        )
                    )
                for pair, bucket in zip(pairs, report.buckets, strict=True):
                    if self.stop:
                        break
                    self._sync_bucket(pair, bucket, journal, copier, report)
            except _Abort:
                pass
            except KeyboardInterrupt:
                self.stop.set("interrupted", interrupted=True)
                self.progress.note("stopping (Ctrl-C): copies in flight are left for the next run to resume")
            finally:
                done.set()
                copier.close(wait=not self.abandoned)
                report.aborted = self.stop.reason
                report.auth_failed = self.stop.auth_failed
                report.stalled = self.stop.stalled
                report.interrupted = self.stop.interrupted
                report.finished = time.time()
                report.sample(force=True)
                remote = {
                    name: sum(totals.get(name, 0) for totals in self._remote_by_worker.values())
                    for name in ("bytes_read", "bytes_sent", "source_retries", "target_retries")
                }
                report.retries = {
                    "source": self.source.counters.retries + remote["source_retries"],
                    "target": self.target.counters.retries + remote["target_retries"],
                }
                report.bytes_read = self.source.counters.bytes_read + remote["bytes_read"]
                local_sent = self.target.counters.bytes_written if self.source is not self.target else 0
                report.bytes_sent = local_sent + remote["bytes_sent"]
                if self.cluster is not None:
                    report.cluster = self._cluster_summary()
                if not options.dry_run:
                    journal.finish_run("complete" if report.complete else "incomplete", report.to_json())
            return report

    def _check_source(self) -> None:
        bucket = self.source_location.bucket
        if bucket is not None and not self.source.bucket_exists(bucket):
            raise NotFound(
                f"source bucket {bucket!r} does not exist on {self.source_location.provider}",
                provider=self.source.name,
                target=bucket,
                hint=f"failover ls {self.source_location.provider}: lists its buckets; nothing was created or copied",
            )

    def _watch(self) -> None:
        """The run's deadline for making no progress: stop everything once a provider is silent."""
        while not self._done.wait(1.0):
            reason = self.liveness.stalled()
            if reason is not None:
                self.stop.set(f"stopped: {reason}", stalled=True)
                self.progress.note(f"stopping: {reason}")
                return

    @contextlib.contextmanager
    def _journal(self, path: Path) -> Iterator[Journal]:
        """The real journal (locked for this run); for a dry run, a throwaway copy of it (nothing is
        recorded, and a run in progress is not disturbed)."""
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
                snapshot(path, copy)
            journal = Journal(copy, lock=False)
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
            same = self.source.namespace == self.target.namespace and pair.src_bucket == pair.dst_bucket
            if same and (pair.src_prefix.startswith(pair.dst_prefix) or pair.dst_prefix.startswith(pair.src_prefix)):
                raise ConfigError(
                    f"{self.source_location} and {self.target_location} reach the same bucket "
                    f"{pair.src_bucket} ({self.source.namespace}) and their prefixes overlap",
                    hint="copy to another bucket or a disjoint prefix",
                )
        return pairs

    def _fail_fast(self, error: FailoverError) -> None:
        self.stop.set(_message(error), auth=isinstance(error, AuthError), stalled=isinstance(error, Stalled))

    # -- one bucket --------------------------------------------------------------------------------

    def _sync_bucket(
        self, pair: BucketPair, bucket: BucketReport, journal: Journal, copier: Copier, report: SyncReport
    ) -> None:
        options = self.options
        try:
            if not self.source.bucket_exists(pair.src_bucket):
                raise NotFound(
                    f"source bucket {pair.src_bucket!r} does not exist",
                    provider=self.source.name,
                    target=pair.src_bucket,
                    hint=f"failover ls {self.source_location.provider}: lists the buckets there; nothing was created",
                )
        except ProviderError as error:
            bucket.listing_complete = False
            report.error(f"{pair.src_bucket}", str(error) + (f" (hint: {error.hint})" if error.hint else ""))
            if isinstance(error, AuthError):
                self._fail_fast(error)
            return
        if options.invalid_keys == "abort":
            try:
                self._prescan(pair)
            except ProviderError as error:
                bucket.listing_complete = isinstance(error, InvalidRequest)
                report.error(f"{pair.src_bucket}/{pair.src_prefix}", str(error))
                self._fail_fast(error)
                return
        ended_early = self.source.counters.listings_ended_early, self.target.counters.listings_ended_early
        if self.source is not self.target or pair.src_bucket != pair.dst_bucket:
            bucket.created = self._ensure_bucket(pair.dst_bucket)
        if options.bucket_settings:
            self._carry_settings(pair, bucket, report)
        if options.list_target:
            self._list_target(pair, bucket, journal, report)
        else:
            bucket.target_listing_check = "not listed (objects verified earlier are taken as still there)"
        failures_before = report.total("failed")
        workers = self._copy_pool(journal, report)
        check = self._start_cross_check(pair, bucket, journal, report)
        try:
            try:
                for batch in self._batches(self._source_listing(pair, bucket)):
                    if self.stop:
                        break
                    self._decide(pair, batch, bucket, journal, report, workers, copier)
            except ProviderError as error:
                bucket.listing_complete = False
                report.error(f"{pair.src_bucket}/{pair.src_prefix}", f"listing failed: {error}")
                if isinstance(error, AuthError | Stalled):
                    self._fail_fast(error)
            if check is not None:
                self._finish_cross_check(check, pair, bucket, journal, report, workers, copier)
        except KeyboardInterrupt:
            # Set before the workers are closed below, so that closing cancels what has not started
            # and waits at most STOP_GRACE for what is in flight (Ctrl-C stops at once).
            self.stop.set("interrupted", interrupted=True)
            raise
        finally:
            grace = INTERRUPT_GRACE if self.stop.interrupted else STOP_GRACE
            finished = workers.close(cancel=bool(self.stop), timeout=grace if self.stop else None)
            if not finished:
                self._abandon(bucket, report)
        for bug in workers.callback_errors:
            report.error(pair.src_bucket, _message(bug))
        if not workers.accounted and not workers.abandoned:
            report.error(pair.src_bucket, f"{workers.submitted - workers.finished} copies did not report back")
        report.add(
            bucket,
            listing_ended_early=self.source.counters.listings_ended_early
            - ended_early[0]
            + self.target.counters.listings_ended_early
            - ended_early[1],
        )
        if not options.dry_run and not self.stop:
            self._confirm_copies(pair, bucket, journal, report)
        if options.delete:
            self._delete(pair, bucket, journal, report, clean=report.total("failed") == failures_before)
        if options.bucket_settings and not self.stop and Capability.OBJECT_ACLS in self.source.capabilities:
            self._carry_object_acls(pair, bucket, journal, report)

    def _carry_object_acls(self, pair: BucketPair, bucket: BucketReport, journal: Journal, report: SyncReport) -> None:
        """Objects public-read by their own ACL stay readable by anyone: the same ACL where the
        target has per-object ACLs (each read back); else the whole bucket made public for reads,
        but only when every object is public on the source (it would expose the others: named
        instead). One ACL read per object on the source: asked for with --bucket-settings only."""
        where = f"{pair.dst_bucket} (object ACLs)"
        objects = journal.verified_objects(pair.src_bucket, pair.src_prefix)
        if self.options.dry_run:
            objects = [(info.key, info.key) for info in self.source.list_objects(pair.src_bucket, pair.src_prefix)]

        def public_on_source(keys: tuple[str, str]) -> bool:
            try:
                return self.source.object_public(pair.src_bucket, keys[0])
            except NotFound:
                return False  # deleted since it was listed: there is nothing to keep public

        try:
            flags = self._each(public_on_source, objects)
        except ProviderError as error:
            report.error(where, f"reading the source's object ACLs failed: {error}")
            return
        public = [dst for (_, dst), is_public in zip(objects, flags, strict=True) if is_public]
        if not public:
            return
        count = f"{len(public)} of {len(objects)} object(s) public-read by their own ACL"
        target = self.target.capabilities
        if self.options.dry_run:
            how = "the same ACL" if Capability.OBJECT_ACLS in target else "the bucket made public for reads"
            bucket.settings.append(SettingOutcome("object_acls", "planned", f"{count}: {how}"))
            return
        if Capability.OBJECT_ACLS in target:
            try:
                self._each(lambda key: self.target.make_object_public(pair.dst_bucket, key), public)
                kept = self._each(lambda key: self.target.object_public(pair.dst_bucket, key), public)
            except ProviderError as error:
                report.error(where, f"writing object ACLs failed: {error}")
                return
            lost = [key for key, ok in zip(public, kept, strict=True) if not ok]
            if lost:
                detail = f"{len(lost)} public-read ACL(s) accepted and not read back (first: {lost[0]!r})"
                bucket.settings.append(SettingOutcome("object_acls", "not_stored", detail))
                report.error(where, detail)
            else:
                bucket.settings.append(SettingOutcome("object_acls", "carried", count))
        elif Setting.PUBLIC_READ in target.settings and len(public) == len(objects):
            try:
                self.target.put_bucket_settings(
                    pair.dst_bucket, BucketSettings(public_read=True), frozenset({Setting.PUBLIC_READ})
                )
                ok = self.target.bucket_settings(pair.dst_bucket).public_read
            except ProviderError as error:
                report.error(where, f"making the bucket public failed: {error}")
                return
            outcome = "translated" if ok else "not_stored"
            bucket.settings.append(SettingOutcome("object_acls", outcome, f"{count}: the bucket is readable by anyone"))
            if not ok:
                report.error(where, "the bucket's public read was accepted and not read back")
        else:
            why = (
                f"{count}; the target has no per-object ACLs, and making the bucket public would expose the others"
                if Setting.PUBLIC_READ in target.settings
                else f"{count}; the target has no per-object ACLs nor public read"
            )
            bucket.settings.append(SettingOutcome("object_acls", "not_carried", why))

    def _abandon(self, bucket: BucketReport, report: SyncReport) -> None:
        """The run stopped and copies are still waiting on a server that does not answer: end
        without them, each named (the journal has them as not verified; the next run copies them)."""
        self.abandoned = True
        with self._inflight_lock:
            waiting = list(self._inflight.values())
            self._inflight.clear()
        for row in waiting:
            report.add(bucket, stopped=1)
            report.name_key("failed", row.src_key, f"in flight when the run stopped ({self.stop.reason})")

    def _carry_settings(self, pair: BucketPair, bucket: BucketReport, report: SyncReport) -> None:
        """The source bucket's settings, as far as the target holds them; each one written is read
        back, since some servers accept settings they do not keep. Only the settings the source has
        are written: the target's others stay as they are."""
        where = f"{pair.dst_bucket} (bucket settings)"
        if pair.src_prefix or pair.dst_prefix:
            bucket.settings.append(SettingOutcome("all", "not_carried", "a prefix is copied, not the whole bucket"))
            return
        if not self.source.capabilities.settings:
            bucket.settings.append(SettingOutcome("all", "not_carried", "the source declares no bucket settings"))
            return
        try:
            found = self.source.bucket_settings(pair.src_bucket)
        except ProviderError as error:
            report.error(where, f"reading the source's settings failed: {error}")
            return
        declared = self.target.capabilities
        holds = declared.settings
        plan = plan_settings(
            found,
            pair.src_bucket,
            pair.dst_bucket,
            holds,
            reasons=declared.settings_not_held,
            implied=declared.settings_implied,
        )
        bucket.settings.extend(plan.outcomes)
        try:
            # In the target's own terms: that is what it will read back, and what the plan shows.
            held = self.target.settings_as_held(pair.dst_bucket, plan.write)
        except ProviderError as error:
            report.error(where, f"reading the target's settings failed: {error}")
            return
        translations = {o.setting: o.detail for o in held.outcomes if o.outcome == "translated"}
        bucket.settings.extend(o for o in held.outcomes if o.outcome != "translated")
        if Setting.POLICY not in holds and plan.write.public_read:
            translations.setdefault(Setting.PUBLIC_READ.value, "as the target's own public read")
        which = held.settings.present() & plan.write.present()
        if self.options.dry_run:
            bucket.settings.extend(
                SettingOutcome(s.value, "planned", translations.get(s.value) or _setting_detail(s))
                for s in _ordered(which)
            )
            return
        if not which:
            return
        try:
            self.target.put_bucket_settings(pair.dst_bucket, held.settings, which)
            stored = self.target.bucket_settings(pair.dst_bucket)
        except ProviderError as error:
            report.error(where, f"writing the settings failed: {error}")
            return
        missing = set(differences(held.settings, stored, _ordered(which)))
        for setting in _ordered(which):
            if setting in missing:
                detail = "the target accepted it and reads back otherwise: it is not stored"
                bucket.settings.append(SettingOutcome(setting.value, "not_stored", detail))
                report.error(where, f"{setting.value}: {detail}")
            elif setting.value in translations:
                bucket.settings.append(SettingOutcome(setting.value, "translated", translations[setting.value]))
            else:
                bucket.settings.append(SettingOutcome(setting.value, "carried", _setting_detail(setting)))

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
            if self.options.delete:
                self._cross_check_target(pair, bucket, journal)
        except ProviderError as error:
            bucket.target_listing_complete = False
            if self.options.delete:  # then it is why the run cannot finish what it was asked to do
                report.error(f"{pair.dst_bucket}/{pair.dst_prefix}", f"listing the target failed: {error}")
            # Without --delete it costs only re-sends: objects it did not show are copied again.
            self.progress.note(f"listing {pair.dst_bucket} on the target failed: {error}; nothing will be deleted")
            if isinstance(error, AuthError | Stalled):
                self._fail_fast(error)
                raise _Abort from error

    def _cross_check_target(self, pair: BucketPair, bucket: BucketReport, journal: Journal) -> None:
        """Deletes are chosen from the target listing: a key it silently left out would stay on the
        target although the source no longer holds it. Where the target declares a second listing
        mechanism, list it that way too; the delete candidates are what either listing showed
        (each one is still looked up on the source before it is deleted)."""
        if not self.options.cross_check:
            bucket.target_listing_check = "end confirmed (cross-check off)"
            return
        try:
            listing = self.target.list_objects_second_way(pair.dst_bucket, pair.dst_prefix)
        except NotSupported:
            bucket.target_listing_check = "end confirmed (the target has no second listing mechanism)"
            return
        for batch in self._batches(listing):
            journal.record_target([(pair.dst_bucket, info.key, info.size) for info in batch])
        only_second = journal.target_count(pair.dst_bucket, pair.dst_prefix) - bucket.target_listed
        bucket.target_listed += only_second
        bucket.target_listing_check = (
            "cross-checked"
            if not only_second
            else f"cross-checked: {only_second} key(s) shown only by the second listing"
        )
        if only_second:
            self.progress.note(
                f"{pair.dst_bucket}: the target's second listing showed {only_second} key(s) the first left out"
            )

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

    # -- the cross-check ---------------------------------------------------------------------------

    def _start_cross_check(
        self, pair: BucketPair, bucket: BucketReport, journal: Journal, report: SyncReport
    ) -> tuple[concurrent.futures.Future[None], float] | None:
        """Start the second listing; returns it and the source's clock when the listings began."""
        if self.options.keys is not None:
            bucket.listing_check = "not listed: the keys of a change feed, each read by name"
            return None
        if not self.options.cross_check:
            bucket.listing_check = "end confirmed (cross-check off)"
            return None
        try:
            listing = self.source.list_objects_second_way(pair.src_bucket, pair.src_prefix)
        except NotSupported:
            bucket.listing_check = "end confirmed (the source has no second listing mechanism)"
            return None
        started = self.source.clock(pair.src_bucket).timestamp()

        def run() -> None:
            for batch in self._batches(listing):
                if self.stop:
                    return
                considered = self._considered(pair, batch, None, None)
                journal.record_check([(pair.src_bucket, info.key, info.size) for info in considered])

        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cross-check")
        future = pool.submit(run)
        pool.shutdown(wait=False)
        return future, started

    def _finish_cross_check(
        self,
        started_check: tuple[concurrent.futures.Future[None], float],
        pair: BucketPair,
        bucket: BucketReport,
        journal: Journal,
        report: SyncReport,
        workers: Workers[Result] | ClusterPool,
        copier: Copier,
    ) -> None:
        check, check_started = started_check
        try:
            check.result()
        except ProviderError as error:
            bucket.listing_check = f"not cross-checked: the second listing failed ({error})"
            bucket.listing_complete = False
            report.error(f"{pair.src_bucket}/{pair.src_prefix}", f"the second listing of the source failed: {error}")
            return
        except BaseException as error:  # noqa: BLE001 - any failure of the check is accounted for
            bucket.listing_check = "not cross-checked"
            bucket.listing_complete = False
            report.error(f"{pair.src_bucket}/{pair.src_prefix}", _message(error))
            return
        if self.stop or not bucket.listing_complete:
            bucket.listing_check = "not cross-checked (the run stopped or the first listing failed)"
            return
        only_main, only_check = journal.check_differences(pair.src_bucket, pair.src_prefix)
        started = check_started - CHANGED_DURING_RUN_MARGIN
        disagreements: list[tuple[str, str]] = []
        found_only_by_check: list[ObjectInfo] = []
        for key in only_main:
            info = self._head_source(pair.src_bucket, key)
            if info is not None:
                disagreements.append((key, "listed by the first listing only; the source holds it"))
        for key in only_check:
            info = self._head_source(pair.src_bucket, key)
            if info is None:
                continue  # deleted during the run
            found_only_by_check.append(info)
            modified = info.last_modified.timestamp() if info.last_modified else 0.0
            if modified < started:
                disagreements.append((key, "left out of the first listing, found by the second; copied"))
        if found_only_by_check:
            self._decide(pair, found_only_by_check, bucket, journal, report, workers, copier)
        for key, detail in disagreements:
            report.name_key("listing", key, detail)
            journal.event("listing", pair.src_bucket, key, detail)
        bucket.listing_disagreements = len(disagreements)
        bucket.listing_check = (
            "cross-checked"
            if not disagreements
            else f"cross-checked: the two listings disagree on {len(disagreements)}"
        )
        if disagreements:
            self.progress.note(
                f"{pair.src_bucket}: the source's two listings disagree on {len(disagreements)} key(s) "
                "(named in the report); nothing will be deleted"
            )

    def _head_source(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            return self.source.head(bucket, key)
        except NotFound:
            return None

    # -- deciding ----------------------------------------------------------------------------------

    def _decide(
        self,
        pair: BucketPair,
        batch: list[ObjectInfo],
        bucket: BucketReport,
        journal: Journal,
        report: SyncReport,
        workers: Workers[Result] | ClusterPool,
        copier: Copier,
    ) -> None:
        rows = []
        for info in self._considered(pair, batch, bucket, report):
            report.add(bucket, listed=1, listed_bytes=info.size)
            modified = info.last_modified.isoformat() if info.last_modified else None
            dst_key = self.keys.map(pair.dst_key(info.key))
            rows.append((pair.src_bucket, info.key, pair.dst_bucket, dst_key, info.size, info.etag, modified))
        trusted = not self.options.list_target
        for listed in journal.record_listed(rows):
            row = listed.row
            if row.state == "verified" and (listed.target_size == row.size or (trusted and listed.target_size is None)):
                if not self.options.checksum:
                    report.add(bucket, unchanged=1)
                    self.progress.checked(1, row.size)
                    continue
                reverify = True
            else:
                reverify = False
            reason = self._refusal(listed)
            if reason is not None:
                report.add(bucket, skipped=1)
                report.name_key("skipped", row.src_key, reason)
                if not self.options.dry_run:
                    journal.mark_skipped(row, reason)
                continue
            if not reverify and self.options.dry_run and listed.target_size == row.size:
                report.add(bucket, to_check=1, to_check_bytes=row.size)
                self.progress.checked(1, row.size)
                continue
            if not reverify:
                report.add(bucket, to_copy=1, to_copy_bytes=row.size)
                if self.options.dry_run:
                    report.name_key("to_copy", row.src_key, f"{row.size} bytes")
            self.progress.planned(1, row.size)
            if not self.options.dry_run:
                self._submit(listed, bucket, journal, copier, report, workers, reverify=reverify)

    def _considered(
        self, pair: BucketPair, batch: list[ObjectInfo], bucket: BucketReport | None, report: SyncReport | None
    ) -> list[ObjectInfo]:
        """The objects of ``batch`` the filters let in; those left out are counted and named when a
        report is given (the cross-check's listing is filtered the same way, silently)."""
        filters = self.options.filters
        if not filters.active:
            return batch
        kept = []
        for info in batch:
            reason = filters.refused(info.key[len(pair.src_prefix) :], info.size, info.last_modified)
            if reason is None:
                kept.append(info)
            elif report is not None and bucket is not None:
                report.add(bucket, filtered=1)
                report.name_key("filtered", info.key, reason)
        return kept

    def _refusal(self, listed: Listed) -> str | None:
        """Why ``row`` cannot be copied as mapped (None: it can). Invalid keys were found before
        anything was written under the abort policy (see :meth:`_prescan`)."""
        row = listed.row
        try:
            self.target.check_key(row.dst_key)
            self.target.capabilities.limits.part_size_for(row.size, self.target.part_size)
        except (InvalidRequest, NotSupported) as error:
            return f"cannot be stored on the target: {error.message}"
        if listed.other_source is not None:
            return (
                f"would land on the same target key as {listed.other_source!r} ({row.dst_key!r}); "
                "neither is overwritten"
            )
        return None

    def _prescan(self, pair: BucketPair) -> None:
        """The abort policy: list the whole bucket and refuse, before writing anything, if any key
        cannot be stored on the target or two keys land on one."""
        refused: list[str] = []
        seen: dict[str, str] = {}
        for info in self.source.list_objects(pair.src_bucket, pair.src_prefix):
            if not self._considered(pair, [info], None, None):
                continue
            dst_key = self.keys.map(pair.dst_key(info.key))
            try:
                self.target.check_key(dst_key)
            except (InvalidRequest, NotSupported) as error:
                refused.append(f"{info.key!r}: {error.message}")
                continue
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

    # -- copying -----------------------------------------------------------------------------------

    def _submit(
        self,
        listed: Listed,
        bucket: BucketReport,
        journal: Journal,
        copier: Copier,
        report: SyncReport,
        workers: Workers[Result] | ClusterPool,
        *,
        reverify: bool,
    ) -> None:
        row = listed.row
        name = (row.src_bucket, row.src_key)
        remote = not isinstance(workers, Workers)

        def on_result(result: Result) -> None:
            with self._inflight_lock:
                self._inflight.pop(name, None)
            self._count(report, bucket, row, result, journal)
            report.copied_key(row.src_key, row.size)
            self.progress.advanced(1, row.size)

        def on_error(error: BaseException) -> None:
            with self._inflight_lock:
                self._inflight.pop(name, None)
            if remote and isinstance(error, AuthError | Stalled):
                self._fail_fast(error)  # here, the copy's own attempts do it
            self._failed(row, bucket, journal, report, error)

        if isinstance(workers, Workers):

            def copy() -> Result:
                return self._copy_one(row, copier, reverify=reverify, target_size=listed.target_size)

            submitted = workers.submit(copy, on_result, on_error)
        else:
            with self._inflight_lock:  # before it leaves: its outcome may arrive at once
                self._inflight[name] = row
            if self._spreads(listed, reverify):
                submitted = workers.submit_local(lambda: self._spread_one(row, copier), on_result, on_error)
            else:
                submitted = workers.submit(self._cluster_item(listed, journal, reverify), on_result, on_error)
            if not submitted:
                with self._inflight_lock:
                    self._inflight.pop(name, None)
        if not submitted:
            report.add(bucket, stopped=1)

    def _copy_one(self, row: ObjectRow, copier: Copier, *, reverify: bool, target_size: int | None) -> Result:
        """Copy one object. Requests are retried by the stores' retry policy; a copy whose bytes
        did not arrive intact (or whose source changed while being read) is tried once more."""
        name = (row.src_bucket, row.src_key)
        with self._inflight_lock:
            self._inflight[name] = row
        try:
            return self._copy_attempts(row, copier, reverify=reverify, target_size=target_size)
        finally:
            with self._inflight_lock:
                self._inflight.pop(name, None)

    def _copy_attempts(self, row: ObjectRow, copier: Copier, *, reverify: bool, target_size: int | None) -> Result:
        try:
            return copier.copy_retrying(
                row, reverify=reverify, target_size=target_size, stopping=lambda: bool(self.stop)
            )
        except (AuthError, Stalled) as error:
            self._fail_fast(error)
            raise

    def _failed(
        self, row: ObjectRow, bucket: BucketReport, journal: Journal, report: SyncReport, error: BaseException
    ) -> None:
        if isinstance(error, concurrent.futures.CancelledError):
            report.add(bucket, stopped=1)
            return
        if self.stop.stalled and isinstance(error, ProviderError) and error.retryable:
            message = f"not copied: {self.stop.reason}"
        else:
            message = _message(error)
        journal.mark_failed(row, message)
        report.add(bucket, failed=1)
        report.name_key("failed", row.src_key, message)
        self.progress.advanced(1, 0)

    def _count(
        self, report: SyncReport, bucket: BucketReport, row: ObjectRow, result: Result, journal: Journal
    ) -> None:
        outcome = result.outcome
        if outcome is Outcome.COPIED:
            report.add(bucket, copied=1, copied_bytes=result.size, repaired=int(result.repaired))
            if result.repaired:
                detail = "the target held other bytes than recorded; sent again"
                report.name_key("repaired", row.src_key, detail)
                journal.event("repaired", row.src_bucket, row.src_key, detail)
        elif outcome is Outcome.UNCHANGED:
            report.add(bucket, unchanged=1)
        elif outcome is Outcome.CONTENT_UNCHANGED:
            report.add(bucket, content_unchanged=1)
        elif outcome is Outcome.REVERIFIED:
            report.add(bucket, reverified=1)
        elif outcome is Outcome.SERVER_SIDE:
            report.add(bucket, server_side=1, copied_bytes=result.size)
        else:
            report.add(bucket, vanished=1)

    # -- on a cluster ------------------------------------------------------------------------------

    def _copy_pool(self, journal: Journal, report: SyncReport) -> Workers[Result] | ClusterPool:
        """The copy stage's pool: threads here, or chunks on the cluster's workers."""
        stopping = lambda: bool(self.stop)  # noqa: E731 - one predicate for both pools
        if self.cluster is None or self.options.dry_run:
            return Workers(self.options.workers, name="copy", stopping=stopping)
        from ..cluster.pool import copy_pool

        pool = copy_pool(
            self.cluster.client,
            self.cluster.job,
            journal,
            on_chunk=lambda outcome: self._merge_chunk(report, outcome),
            stopping=stopping,
            on_lost=self._cluster_lost,
        )
        self._pools.append(pool)
        return pool

    def _cluster_lost(self) -> None:
        assert self.cluster is not None
        self.stop.set(
            f"the cluster's scheduler ({self.cluster.spec}) was lost: everything verified so far is in the journal; "
            "start the cluster again and re-run the same command to resume"
        )

    def _cluster_item(self, listed: Listed, journal: Journal, reverify: bool) -> Any:
        """What a worker needs to copy ``listed``. An object that may go as a multipart upload gets
        its upload intent recorded here first: if the worker is lost, the worker that takes the
        chunk over (or the next run) finds the upload by it, and aborts or resumes it."""
        from ..cluster.tasks import CopyItem

        row = listed.row
        large = Capability.MULTIPART in self.target.capabilities and row.size > self.target.multipart_threshold
        if large and not row.upload_id and not row.upload_started and not reverify:
            journal.begin_upload_intent(row, SourceVersion(row.src_etag, row.size, row.src_modified))
            row = journal.refresh(row)
        parts = tuple(journal.parts(row, row.upload_id)) if row.upload_id else ()
        return CopyItem(row, reverify, listed.target_size, parts)

    def _spreads(self, listed: Listed, reverify: bool) -> bool:
        """Whether ``listed`` goes as part ranges over several workers: large, new on the target,
        and with no upload of an earlier run to resume (those go whole to one worker)."""
        row = listed.row
        if reverify or row.upload_id or row.upload_started or listed.target_size is not None:
            return False
        if Capability.MULTIPART not in self.target.capabilities or row.size < self.options.spread_above:
            return False
        part_size = self.target.capabilities.limits.part_size_for(row.size, self.target.part_size)
        return row.size > 2 * part_size

    def _spread_one(self, row: ObjectRow, copier: Copier) -> Result:
        """One large object's part ranges on the cluster, coordinated here (see Copier.spread)."""
        from distributed import as_completed

        from ..cluster.tasks import send_range

        assert self.cluster is not None
        client, job = self.cluster.client, self.cluster.job

        def run(ranges: list[PartRange]) -> Iterator[list[UploadedPart]]:
            futures = [client.submit(send_range, job, span, pure=False, retries=2) for span in ranges]
            try:
                for future in as_completed(futures):
                    if self.stop:
                        raise concurrent.futures.CancelledError("stopped before it finished")
                    yield future.result()
                    future.release()
            finally:
                with contextlib.suppress(Exception):  # a client the scheduler's loss closed cancels nothing
                    client.cancel([f for f in futures if not f.done()])

        return copier.spread(row, run)

    def _merge_chunk(self, report: SyncReport, outcome: ChunkOutcome) -> None:
        """A chunk's counters into the run's (its objects' outcomes arrive through the callbacks)."""
        with report._lock:
            for name, count in outcome.multipart.items():
                report.multipart[name] += count
            fidelity = report.fidelity
            for name, count in outcome.fields_not_carried.items():
                fidelity.fields_not_carried[name] += count
            fidelity.objects_with_tags_not_carried += outcome.objects_with_tags_not_carried
            fidelity.digest_only_in_journal += outcome.digest_only_in_journal
            room = max(0, MAX_EXAMPLES - len(fidelity.examples))
            fidelity.examples.extend(outcome.fidelity_examples[:room])
            seen = self._remote_by_worker.setdefault(outcome.worker, {})
            for name, value in outcome.totals.items():
                seen[name] = max(seen.get(name, 0), value)

    def _source_listing(self, pair: BucketPair, bucket: BucketReport) -> Iterator[ObjectInfo]:
        """The source bucket's objects: one listing here, or, on a cluster (for stores that list in
        byte order), shards listed by the workers in parallel, in the order they finish."""
        if self.options.keys is not None:
            keys = sorted(k for k in self.options.keys.get(pair.src_bucket, ()) if k.startswith(pair.src_prefix))
            unlisted = keys
            if len(keys) > KEYS_BY_LISTING and Capability.SORTED_LISTING in self.source.capabilities:
                found = self._listed_range(pair.src_bucket, keys)
                yield from found.values()
                unlisted = [key for key in keys if key not in found]
            # Each key the range listing did not show is asked by name: deleted, or left out by it.
            for start in range(0, len(unlisted), BATCH):
                batch = unlisted[start : start + BATCH]
                for info in self._each(lambda key: self._head_source(pair.src_bucket, key), batch):
                    if info is not None:
                        yield info
            return
        if self.cluster is None:
            yield from self.source.list_objects(pair.src_bucket, pair.src_prefix)
            return
        from ..cluster.pool import client_lost
        from ..cluster.shards import plan_shards
        from ..cluster.tasks import list_shard

        client, job = self.cluster.client, self.cluster.job
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        shards = plan_shards(self.source, pair.src_bucket, pair.src_prefix, workers * self.cluster.shards_per_worker)
        bucket.shards = len(shards)
        from distributed import as_completed

        waiting: set[Any] = set()

        def listing_of(shard: Any) -> Any:
            future = client.submit(list_shard, job, pair.src_bucket, pair.src_prefix, shard, pure=False, retries=2)
            waiting.add(future)
            return future

        pending = as_completed([listing_of(shard) for shard in shards])
        try:
            for future in pending:
                try:
                    listed = future.result()
                except ProviderError:
                    raise
                except Exception as error:  # noqa: BLE001 - a lost shard listing is an incomplete listing
                    if client_lost(client):
                        self._cluster_lost()
                    raise ListingIncomplete(
                        f"a shard's listing did not finish on the cluster: {_message(error)}",
                        provider=self.source.name,
                        operation="list_objects",
                        target=pair.src_bucket,
                    ) from None
                # Released at once: a result the client still refers to stays in the worker's memory.
                waiting.discard(future)
                future.release()
                if listed.rest is not None:
                    pending.add(listing_of(listed.rest))
                bucket.listing_ended_early += listed.ended_early
                yield from listed.objects
        finally:
            with contextlib.suppress(Exception):  # a client the scheduler's loss closed cancels nothing
                pending.clear()
                client.cancel([f for f in waiting if not f.done()])

    def _cluster_summary(self) -> dict[str, Any]:
        assert self.cluster is not None
        workers: dict[str, dict[str, float]] = {}
        lost = run_again = 0
        for pool in self._pools:
            lost += pool.lost_chunks
            run_again += pool.chunks_run_again
            for name, stats in pool.workers.items():
                mine = workers.setdefault(name, {"objects": 0, "bytes": 0, "seconds": 0.0, "chunks": 0})
                mine["objects"] += stats.objects
                mine["bytes"] += stats.bytes
                mine["seconds"] += stats.seconds
                mine["chunks"] += stats.chunks
        for mine in workers.values():
            mine["bytes_per_second"] = round(mine["bytes"] / mine["seconds"], 1) if mine["seconds"] else 0.0
            mine["seconds"] = round(mine["seconds"], 3)
        return {
            "cluster": str(self.cluster.spec),
            "workers": workers,
            "chunks_lost": lost,
            "chunks_run_again": run_again,
        }

    # -- after the copies: does the target show them? ----------------------------------------------

    def _confirm_copies(self, pair: BucketPair, bucket: BucketReport, journal: Journal, report: SyncReport) -> None:
        """List the target over what this run copied: each copied object must show there under its
        own name with its size (a store that stores a key under another name, or loses it, is
        caught here, not believed)."""
        first = journal.copied_in_run(pair.dst_bucket, limit=1)
        if not first:
            return
        expected: dict[str, tuple[str, int]] = {}
        after = ""
        lowest = first[0][0]
        highest = lowest
        while True:
            page = journal.copied_in_run(pair.dst_bucket, after=after, limit=1000)
            if not page:
                break
            for dst_key, src_key, size in page:
                expected[dst_key] = (src_key, size)
            highest = page[-1][0]
            after = highest
            if len(expected) > 200_000:
                break  # bounded memory: confirm this many; the rest were confirmed by their writes
        prefix = _common_prefix(lowest, highest)
        try:
            # A standby's small feed batch is confirmed key by key; anything else by listing the
            # range of keys it copied first (what that listing leaves out is then asked by name).
            by_name = self.options.keys is not None and len(expected) <= CONFIRM_BY_NAME
            listing = () if by_name else self.target.list_objects(pair.dst_bucket, prefix)
            for info in listing:
                wanted = expected.get(info.key)
                if wanted is not None and wanted[1] == info.size:
                    del expected[info.key]
                if not expected:
                    break
        except ProviderError as error:
            report.error(pair.dst_bucket, f"could not list the target to confirm the copies: {error}")
            return
        unshown = sorted(expected.items())
        for (dst_key, (src_key, size)), shown in zip(
            unshown, self._each(lambda item: self._listed_as(pair.dst_bucket, item[0]), unshown), strict=True
        ):
            if shown == (dst_key, size):
                continue  # the range listing left it out; asked by name, the target shows it
            detail = (
                f"copied to {dst_key!r}, but the target lists it as {shown[0]!r}: it stores that key under another name"
                if shown is not None
                else f"copied to {dst_key!r}, but the target's listing does not show it"
            )
            journal.mark_unverified(pair.src_bucket, src_key, detail)
            journal.event("failed", pair.src_bucket, src_key, detail)
            report.add(bucket, unconfirmed=1)
            report.name_key("unconfirmed", src_key, detail)

    def _listed_range(self, bucket: str, keys: list[str]) -> dict[str, ObjectInfo]:
        """The objects of sorted ``keys`` that one listing over their range shows (a page holds
        up to a thousand, where asking by name costs a request each). The listing stops at the
        last key, or once it has shown several times as many other keys as wanted: sparse keys in
        a large bucket are asked by name instead."""
        wanted = set(keys)
        first, last = keys[0], keys[-1]
        before = first[:-1] + chr(ord(first[-1]) - 1) if first[-1] > "\x00" else first[:-1]
        found: dict[str, ObjectInfo] = {}
        others = 0
        for info in self.source.list_objects(bucket, _common_prefix(first, last), start_after=before or None):
            if info.key > last:
                break
            if info.key in wanted:
                found[info.key] = info
            else:
                others += 1
                if others > 4 * len(keys):
                    break
        return found

    def _each(self, ask: Callable[[_Item], _Answer], items: list[_Item]) -> list[_Answer]:
        """``ask`` about each item, several at once (requests by name: HEADs, small listings), in
        the items' order."""
        if len(items) <= 1:
            return [ask(item) for item in items]
        with concurrent.futures.ThreadPoolExecutor(min(self.options.workers, 16, len(items))) as pool:
            return list(pool.map(ask, items))

    def _listed_as(self, bucket: str, key: str) -> tuple[str, int] | None:
        """(name, size) the target shows for ``key``: listed with the key as the prefix, or, when the
        listing does not show it but a read by name finds it, a placeholder for "another name"."""
        try:
            # A listing that left it out is asked the other way before "another name" is said.
            listings = [self.target.list_objects]
            if Capability.SECOND_LISTING in self.target.capabilities:
                listings.append(self.target.list_objects_second_way)
            for listing in listings:
                for info in listing(bucket, key):
                    if info.key == key:
                        return info.key, info.size
            head = self.target.head(bucket, key)
        except ProviderError:
            return None
        return (f"(a name other than {key!r})", head.size)

    # -- deletes -----------------------------------------------------------------------------------

    def _delete(
        self, pair: BucketPair, bucket: BucketReport, journal: Journal, report: SyncReport, *, clean: bool
    ) -> None:
        reasons = [
            reason
            for reason, present in (
                ("the source listing failed", not bucket.listing_complete),
                ("the source's two listings disagree", bool(bucket.listing_disagreements)),
                ("the target listing failed", not bucket.target_listing_complete),
                ("copies failed", not clean),
                ("copies could not be confirmed on the target", bool(bucket.unconfirmed)),
                ("the run was stopped", bool(self.stop)),
            )
            if present
        ]
        if reasons:
            report.delete_refused = f"{bucket.target}: not deleting anything: {', '.join(reasons)} (see errors)"
            self.progress.note(report.delete_refused)
            return
        candidates = sum(
            1
            for key, size in journal.target_only(pair.dst_bucket, pair.dst_prefix)
            if not self._protected(pair, key, size)
        )
        bucket.delete_candidates = candidates
        total = journal.target_count(pair.dst_bucket, pair.dst_prefix)
        if candidates and total and candidates / total > self.options.max_delete_share and not self.options.force:
            report.delete_refused = (
                f"{bucket.target}: {candidates} of {total} objects ({candidates / total:.0%}) would be deleted, more "
                f"than the allowed {self.options.max_delete_share:.0%}; re-run with --force if that is intended"
            )
            self.progress.note(report.delete_refused)
            return
        # Keyset-paginated: deleting rows behind the cursor does not disturb it.
        for key, size in journal.target_only(pair.dst_bucket, pair.dst_prefix):
            if self.stop:
                return
            if self._protected(pair, key, size):
                continue  # a filter leaves it out: not this run's to delete (as with rclone)
            holder = self._source_holds(pair, key)
            if holder is not None:
                detail = f"the source holds {holder!r} (not in this run's listing): not deleted"
                report.add(bucket, kept=1)
                report.name_key("kept", key, detail)
                if not self.options.dry_run:
                    journal.event("kept", pair.dst_bucket, key, detail)
                continue
            delay = self.options.delete_delay
            if delay is not None and not delay.ripe(pair.dst_bucket, key):
                report.add(bucket, delete_pending=1)
                continue
            if self.options.dry_run:
                report.name_key("deleted", key, "would be deleted (dry run)")
                continue
            try:
                self.target.delete(pair.dst_bucket, key)
            except ProviderError as error:
                report.error(key, f"delete failed: {error}")
                continue
            journal.forget_target(pair.dst_bucket, key)
            journal.event("deleted", pair.dst_bucket, key)
            report.add(bucket, deleted=1)
            report.name_key("deleted", key)

    def _protected(self, pair: BucketPair, dst_key: str, size: int) -> bool:
        """A target key the filters leave out (by name or size) is never deleted."""
        filters = self.options.filters
        if not filters.active:
            return False
        relative = dst_key[len(pair.dst_prefix) :]
        return filters.name_refused(relative) is not None or filters.size_refused(size) is not None

    def _source_holds(self, pair: BucketPair, dst_key: str) -> str | None:
        """The source key that a target key could be the copy of, if the source holds it now (it may
        have been written after this run listed it, or a listing may have left it out)."""
        candidates = {pair.src_key(dst_key)}
        decoded = decode_key(dst_key)
        if decoded is not None:
            candidates.add(pair.src_key(decoded))
        for key in sorted(candidates):
            if not key:
                continue
            try:
                self.source.check_key(key)
                self.source.head(pair.src_bucket, key)
            except (NotFound, InvalidRequest, NotSupported):
                continue
            return key
        return None


def check_locations(source: Location, target: Location, *, same_store: bool = False) -> None:
    """Refuse a copy of a place onto itself (or into itself), by location alone."""
    same_bucket = (same_store or source.provider == target.provider) and source.bucket == target.bucket
    if same_bucket and (source.prefix.startswith(target.prefix) or target.prefix.startswith(source.prefix)):
        raise ConfigError(f"{source} and {target} overlap", hint="copy to another bucket or a disjoint prefix")


def open_locations(
    providers: Providers, source: str, target: str
) -> tuple[Location, Location, ObjectStore, ObjectStore]:
    """Parse ``PROVIDER:BUCKET[/PREFIX]`` source and target, open both stores (one store serves both
    when they are the same endpoint and credentials), and refuse overlaps: two provider names that
    reach the same bucket namespace are the same place, whatever they are called."""
    from ..connect import same_store

    src, dst = parse_location(source), parse_location(target)
    shared = same_store(providers, src.provider, dst.provider)
    check_locations(src, dst, same_store=shared)
    source_store = open_store(providers, src.provider)
    try:
        target_store = source_store if shared else open_store(providers, dst.provider)
    except BaseException:
        source_store.close()
        raise
    if source_store.namespace == target_store.namespace:
        try:
            check_locations(src, dst, same_store=True)
        except ConfigError as error:
            source_store.close()
            if target_store is not source_store:
                target_store.close()
            raise ConfigError(
                f"{error.message}: {src.provider} and {dst.provider} reach the same store ({source_store.namespace})",
                hint=error.hint,
            ) from None
    return src, dst, source_store, target_store


def _ordered(settings: frozenset[Setting]) -> list[Setting]:
    return [s for s in Setting if s in settings]


def _setting_detail(setting: Setting) -> str:
    if setting is Setting.POLICY:
        return "resource ARNs rewritten for the target bucket"
    return ""
