"""``failover verify SRC DST``: compare both sides and report missing, different and extra keys.

By default every byte is re-read on both sides and digested; ``--trust-digests`` instead compares
the digests recorded in the journal or in ``failover-<algorithm>`` metadata (claims, reading only
where no digest is recorded). Metadata the target can hold is compared too. Independent of the
sync engine's bookkeeping: the target listing goes into a scratch SQLite table, so memory stays
flat. Listings are confirmed as in ``sync``, and the source is cross-checked with its second
listing mechanism where it has one.

Every comparison ends in the report: ``ok`` holds only when every listed object matched, and an
exception of any kind in a worker is a named error. What verify finds missing or different goes
into the sync journal of the pair, so the next ``failover sync`` copies it again.
"""

from __future__ import annotations

import functools
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FailoverError, NotFound, NotSupported, ProviderError
from ..liveness import DEFAULT_STALL_TIMEOUT, Liveness
from ..location import Location
from ..storage import ObjectStore
from ..types import MetaField, ObjectInfo, ObjectMeta
from .digests import Algorithm, digest_like, metadata_key
from .engine import Progress, SilentProgress
from .journal import Journal, JournalBusy
from .keys import TargetKeys
from .plan import BucketPair, plan_buckets
from .report import JSON_SCHEMA, KEY_LIMIT, iso
from .workers import Workers

if TYPE_CHECKING:  # Dask is imported only by a run with --cluster
    from ..cluster.pool import ClusterPool
    from ..cluster.spec import ClusterSpec
    from .engine import ClusterRun


@dataclass(frozen=True)
class CompareItem:
    """One comparison as a cluster's worker receives it."""

    src_bucket: str
    src_key: str
    dst_bucket: str
    dst_key: str
    size: int
    trust: bool
    claim: str | None

    @property
    def name(self) -> tuple[str, str]:
        return (self.src_bucket, self.src_key)


__all__ = ["CompareItem", "Comparer", "Comparison", "VerifyOptions", "VerifyReport", "run_verify"]

MAX_LISTED = KEY_LIMIT
_BATCH = 1000


@dataclass
class VerifyOptions:
    trust_digests: bool = False
    digest: Algorithm = "sha256"
    workers: int = 16
    bucket_map: dict[str, str] = field(default_factory=dict)
    journal: Path | None = None
    check_metadata: bool = True
    record_findings: bool = True
    """Write what is missing or different into the sync journal (so the next sync repairs it)."""
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    cross_check: bool = True
    cluster: ClusterSpec | None = None
    """--cluster: compare on a Dask cluster's workers (see failover/cluster)."""


@dataclass
class VerifyReport:
    source: str
    target: str
    mode: str
    checked: int = 0
    matching: int = 0
    bytes_compared: int = 0
    missing: list[str] = field(default_factory=list)
    different: list[dict[str, str]] = field(default_factory=list)
    metadata_different: list[dict[str, Any]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"missing": 0, "different": 0, "metadata_different": 0, "extra": 0}
    )
    errors: list[dict[str, str]] = field(default_factory=list)
    listing_complete: bool = True
    listing_check: str = "end confirmed"
    journal_updated: str | None = None
    """Where the findings were recorded for the next sync (or why they could not be)."""
    started: float = 0.0
    finished: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, item: Any) -> None:
        with self._lock:
            self.counts[kind] += 1
            bucket: list[Any] = getattr(self, kind)
            if len(bucket) < MAX_LISTED:
                bucket.append(item)

    def error(self, key: str, message: str) -> None:
        with self._lock:
            self.errors.append({"key": key, "error": message})

    def matched(self, size: int = 0) -> None:
        with self._lock:
            self.matching += 1

    def compared(self, size: int) -> None:
        with self._lock:
            self.bytes_compared += size

    @property
    def ok(self) -> bool:
        return (
            self.listing_complete
            and not self.errors
            and self.matching == self.checked
            and not self.counts["missing"]
            and not self.counts["different"]
            and not self.counts["metadata_different"]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": JSON_SCHEMA,
            "kind": "verify",
            "source": self.source,
            "target": self.target,
            "mode": self.mode,
            "ok": self.ok,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "duration_s": round(self.finished - self.started, 3),
            "checked": self.checked,
            "matching": self.matching,
            "unaccounted": self.checked
            - self.matching
            - self.counts["missing"]
            - self.counts["different"]
            - self.counts["metadata_different"],
            "bytes_compared": self.bytes_compared,
            "counts": self.counts,
            "missing": self.missing,
            "different": self.different,
            "metadata_different": self.metadata_different,
            "extra": self.extra,
            "errors": self.errors,
            "listing_complete": self.listing_complete,
            "listing_check": self.listing_check,
            "journal_updated": self.journal_updated,
        }


def _compare_meta(source: ObjectMeta, target: ObjectMeta, fields: frozenset[MetaField]) -> list[str]:
    differences = []
    for name in sorted(fields, key=lambda f: f.value):
        if name is MetaField.USER:
            mine = {k: v for k, v in source.user.items() if not k.startswith("failover-")}
            theirs = {k: v for k, v in target.user.items() if not k.startswith("failover-")}
            if mine != theirs:
                differences.append("user")
        elif getattr(source, name.value) != getattr(target, name.value):
            differences.append(name.value)
    return differences


@dataclass(frozen=True)
class Comparison:
    """What comparing one object found: ``match``, ``vanished`` (deleted at the source since it was
    listed), ``missing``, ``different`` or ``metadata``, with the digests or fields that differ and
    the bytes read to find out. Data: made here or on a cluster's worker, recorded by the caller."""

    found: str
    bytes_read: int = 0
    source_digest: str = ""
    target_digest: str = ""
    fields: tuple[str, ...] = ()


class Comparer:
    """Compares one object of the source with its copy on the target (see :meth:`compare`)."""

    def __init__(self, source: ObjectStore, target: ObjectStore, *, algorithm: Algorithm, check_metadata: bool) -> None:
        self.source = source
        self.target = target
        self.algorithm = algorithm
        self.check_metadata = check_metadata
        self.digest_key = metadata_key(algorithm)

    def _read_digest(
        self, store: ObjectStore, bucket: str, key: str, like: str | None = None
    ) -> tuple[str, int, ObjectMeta]:
        """The digest of an object's bytes, of the kind ``like`` is (a parts digest is computed as one)."""
        digest = digest_like(self.algorithm, like)
        with store.open(bucket, key) as reader:
            for chunk in reader.iter_chunks():
                digest.update(chunk)
            size = reader.position
            meta = reader.info.meta or ObjectMeta()
        return digest.hexdigest(), size, meta

    def _recorded(self, store: ObjectStore, bucket: str, key: str) -> tuple[str | None, ObjectMeta]:
        meta = store.head(bucket, key).meta or ObjectMeta()
        return meta.user.get(self.digest_key), meta

    def compare(
        self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *, trust: bool, claim: str | None = None
    ) -> Comparison:
        """Compare one object: its bytes on both sides (or, ``trust``, the digests recorded for
        them: ``claim`` from the journal, else the objects' metadata), then the metadata both
        sides can hold. Errors are raised to the caller, which accounts for them."""
        read = 0
        try:
            src_digest: str | None = None
            if trust:
                recorded, src_meta = self._recorded(self.source, src_bucket, src_key)
                src_digest = claim or recorded
            if src_digest is None:
                src_digest, size, src_meta = self._read_digest(self.source, src_bucket, src_key)
                read += size
        except NotFound:
            return Comparison("vanished", read)
        try:
            dst_digest: str | None = None
            if trust:
                dst_digest, dst_meta = self._recorded(self.target, dst_bucket, dst_key)
            if dst_digest is None:
                dst_digest, size, dst_meta = self._read_digest(self.target, dst_bucket, dst_key, like=src_digest)
                read += size
        except NotFound:
            return Comparison("missing", read)
        if src_digest != dst_digest:
            return Comparison("different", read, src_digest, dst_digest or "")
        if self.check_metadata:
            fields = self.source.capabilities.metadata & self.target.capabilities.metadata
            differences = _compare_meta(src_meta, dst_meta, fields)
            if differences:
                return Comparison("metadata", read, fields=tuple(differences))
        return Comparison("match", read)


class _Verifier:
    """Records comparisons in the report, and findings for the sync journal."""

    def __init__(self, options: VerifyOptions, report: VerifyReport, journal: Journal | None) -> None:
        self.options = options
        self.report = report
        self.journal = journal
        self.findings: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def finding(self, pair: BucketPair, src_key: str, kind: str) -> None:
        with self._lock:
            self.findings.append((pair.src_bucket, src_key, kind))

    def claim(self, pair: BucketPair, src_key: str) -> str | None:
        """--trust-digests: the digest the journal recorded for a verified copy (a claim)."""
        if not self.options.trust_digests or self.journal is None:
            return None
        state, digest = self.journal.digest_of(pair.src_bucket, src_key)
        return digest if state == "verified" else None

    def record(self, pair: BucketPair, src_key: str, dst_key: str, found: Comparison) -> None:
        self.report.compared(found.bytes_read)
        where = f"{pair.dst_bucket}/{dst_key}"
        if found.found == "missing":
            self.report.add("missing", where)
            self.finding(pair, src_key, "missing on the target (found by verify)")
        elif found.found == "different":
            self.report.add("different", {"key": where, "source": found.source_digest, "target": found.target_digest})
            self.finding(pair, src_key, "different bytes on the target (found by verify)")
        elif found.found == "metadata":
            self.report.add("metadata_different", {"key": where, "fields": list(found.fields)})
            self.finding(pair, src_key, f"different metadata on the target ({', '.join(found.fields)})")
        elif found.found == "match":
            self.report.matched()


def _open_journal(options: VerifyOptions, report: VerifyReport) -> Journal | None:
    """The pair's sync journal, to read recorded digests and record findings: None when there is
    none; read without the lock (findings not recorded) when a sync holds it."""
    path = options.journal
    if path is None or not path.exists():
        report.journal_updated = "no sync journal for this pair"
        return None
    if options.record_findings:
        try:
            journal = Journal(path)
            report.journal_updated = str(path)
            return journal
        except JournalBusy:
            report.journal_updated = "not recorded: a sync of this pair holds its journal"
    return Journal(path, lock=False)


def _listing(store: ObjectStore, bucket: str, prefix: str, second: bool) -> Iterator[ObjectInfo]:
    return store.list_objects_second_way(bucket, prefix) if second else store.list_objects(bucket, prefix)


def run_verify(
    source: ObjectStore,
    target: ObjectStore,
    source_location: Location,
    target_location: Location,
    options: VerifyOptions,
    progress: Progress | None = None,
    cluster: ClusterRun | None = None,
) -> VerifyReport:
    """Compare the two sides (see the module docstring); ``cluster``: the comparisons (the reading
    and digesting) run on its workers, the listings and the report here."""
    progress = progress or SilentProgress()
    report = VerifyReport(
        str(source_location),
        str(target_location),
        "recorded digests (--trust-digests: claims, not a read of the bytes)"
        if options.trust_digests
        else f"re-read both sides ({options.digest})",
    )
    report.started = time.time()
    liveness = Liveness(options.stall_timeout)
    source.liveness = target.liveness = liveness
    names = [b.name for b in source.list_buckets()] if source_location.bucket is None else [source_location.bucket]
    pairs = plan_buckets(
        source_location, target_location, names, target.capabilities.limits.valid_bucket_name, options.bucket_map
    )
    journal = _open_journal(options, report)
    verifier = _Verifier(options, report, journal)
    comparer = Comparer(source, target, algorithm=options.digest, check_metadata=options.check_metadata)
    # A key the target cannot hold is looked for under its encoded name: there if the sync encoded
    # it, reported missing otherwise (it is).
    keys = TargetKeys(target, "encode")
    try:
        with tempfile.TemporaryDirectory(prefix="failover-verify-") as scratch:
            db = sqlite3.connect(Path(scratch) / "verify.sqlite", isolation_level=None, check_same_thread=False)
            db.execute("CREATE TABLE target (key TEXT PRIMARY KEY, size INTEGER, seen INTEGER DEFAULT 0)")
            db.execute("CREATE TABLE listed (key TEXT PRIMARY KEY)")
            db.execute("CREATE TABLE second (key TEXT PRIMARY KEY)")
            for pair in pairs:
                _verify_pair(pair, source, target, options, report, verifier, comparer, keys, db, progress, cluster)
            db.close()
    finally:
        if journal is not None:
            if report.journal_updated == str(options.journal):
                for src_bucket, src_key, reason in verifier.findings:
                    journal.mark_unverified(src_bucket, src_key, reason)
            journal.close()
    report.finished = time.time()
    return report


def _verify_pair(
    pair: BucketPair,
    source: ObjectStore,
    target: ObjectStore,
    options: VerifyOptions,
    report: VerifyReport,
    verifier: _Verifier,
    comparer: Comparer,
    keys: TargetKeys,
    db: sqlite3.Connection,
    progress: Progress,
    cluster: ClusterRun | None,
) -> None:
    for table in ("target", "listed", "second"):
        db.execute(f"DELETE FROM {table}")  # noqa: S608 - a constant table name
    try:
        if target.bucket_exists(pair.dst_bucket):
            batch: list[tuple[str, int]] = []
            for info in target.list_objects(pair.dst_bucket, pair.dst_prefix):
                batch.append((info.key, info.size))
                if len(batch) >= _BATCH:
                    db.executemany("INSERT OR REPLACE INTO target (key, size) VALUES (?, ?)", batch)
                    batch = []
            db.executemany("INSERT OR REPLACE INTO target (key, size) VALUES (?, ?)", batch)
    except ProviderError as error:
        report.listing_complete = False
        report.error(pair.dst_bucket, f"target listing failed: {error}")
        return
    second = options.cross_check and _has_second_listing(source)
    second_error: list[BaseException] = []
    lock = threading.Lock()

    def cross_check() -> None:
        try:
            rows: list[tuple[str]] = []
            for info in _listing(source, pair.src_bucket, pair.src_prefix, True):
                rows.append((info.key,))
                if len(rows) >= _BATCH:
                    with lock:
                        db.executemany("INSERT OR IGNORE INTO second (key) VALUES (?)", rows)
                    rows = []
            with lock:
                db.executemany("INSERT OR IGNORE INTO second (key) VALUES (?)", rows)
        except BaseException as error:  # noqa: BLE001 - reported below
            second_error.append(error)

    checker = threading.Thread(target=cross_check, name="verify-cross-check", daemon=True) if second else None
    if checker is not None:
        checker.start()
    workers: Workers[Comparison] | ClusterPool
    if cluster is None:
        workers = Workers(options.workers, name="verify")
    else:
        from ..cluster.pool import ClusterPool
        from ..cluster.tasks import compare_chunk

        workers = ClusterPool(cluster.client, cluster.job, compare_chunk, name="verify")

    def submit(src_key: str, dst_key: str, size: int) -> None:
        def on_error(error: BaseException) -> None:
            message = str(error) if isinstance(error, FailoverError) else f"{type(error).__name__}: {error}"
            report.error(src_key, message if isinstance(error, FailoverError) else f"internal error: {message}")
            progress.advanced(1, 0)

        def on_result(found: Comparison) -> None:
            verifier.record(pair, src_key, dst_key, found)
            if found.found == "vanished":
                with report._lock:
                    report.checked -= 1
            progress.advanced(1, 0 if options.trust_digests else size)

        trust, claim = options.trust_digests, verifier.claim(pair, src_key)
        if isinstance(workers, Workers):
            task = functools.partial(
                comparer.compare, pair.src_bucket, src_key, pair.dst_bucket, dst_key, trust=trust, claim=claim
            )
            workers.submit(task, on_result, on_error)
        else:
            item = CompareItem(pair.src_bucket, src_key, pair.dst_bucket, dst_key, size, trust, claim)
            workers.submit(item, on_result, on_error)

    def check(info: ObjectInfo) -> None:
        report.checked += 1
        progress.planned(1, info.size)
        dst_key = keys.map(pair.dst_key(info.key))
        with lock:
            row = db.execute("SELECT size FROM target WHERE key = ?", (dst_key,)).fetchone()
            if row is not None:
                db.execute("UPDATE target SET seen = 1 WHERE key = ?", (dst_key,))
        if row is None:
            report.add("missing", f"{pair.dst_bucket}/{dst_key}")
            verifier.finding(pair, info.key, "missing on the target (found by verify)")
            progress.advanced(1, 0)
            return
        if row[0] != info.size:
            report.add(
                "different",
                {"key": f"{pair.dst_bucket}/{dst_key}", "source": f"{info.size} bytes", "target": f"{row[0]} bytes"},
            )
            verifier.finding(pair, info.key, "different size on the target (found by verify)")
            progress.advanced(1, 0)
            return
        submit(info.key, dst_key, info.size)

    try:
        try:
            listed: list[tuple[str]] = []
            for info in source.list_objects(pair.src_bucket, pair.src_prefix):
                listed.append((info.key,))
                if len(listed) >= _BATCH:
                    with lock:
                        db.executemany("INSERT OR IGNORE INTO listed (key) VALUES (?)", listed)
                    listed = []
                check(info)
            with lock:
                db.executemany("INSERT OR IGNORE INTO listed (key) VALUES (?)", listed)
        except ProviderError as error:
            report.listing_complete = False
            report.error(pair.src_bucket, f"source listing failed: {error}")
        if checker is not None:
            checker.join()
            _reconcile(pair, source, report, db, lock, second_error, check)
        elif not second:
            report.listing_check = "end confirmed (no second listing)"
    finally:
        workers.close()
    for bug in workers.callback_errors:
        report.error(pair.src_bucket, f"internal error: {bug!r}")
    if not workers.accounted:
        report.error(pair.src_bucket, f"{workers.submitted - workers.finished} comparisons did not report back")
    for (key,) in db.execute("SELECT key FROM target WHERE seen = 0 ORDER BY key"):
        report.add("extra", f"{pair.dst_bucket}/{key}")


def _has_second_listing(store: ObjectStore) -> bool:
    from ..capabilities import Capability

    return Capability.SECOND_LISTING in store.capabilities


def _reconcile(
    pair: BucketPair,
    source: ObjectStore,
    report: VerifyReport,
    db: sqlite3.Connection,
    lock: threading.Lock,
    second_error: list[BaseException],
    check: Any,
) -> None:
    """Compare the source's two listings: keys the first one left out (and the source holds) are
    checked now and reported; any disagreement makes the result not ok."""
    if second_error:
        error = second_error[0]
        report.listing_complete = False
        report.listing_check = "not cross-checked: the second listing failed"
        message = str(error) if isinstance(error, FailoverError | NotSupported) else repr(error)
        report.error(pair.src_bucket, f"the second listing of the source failed: {message}")
        return
    with lock:
        only_second = [r[0] for r in db.execute("SELECT key FROM second WHERE key NOT IN (SELECT key FROM listed)")]
        only_first = [r[0] for r in db.execute("SELECT key FROM listed WHERE key NOT IN (SELECT key FROM second)")]
    disagreements = 0
    for key in only_second:
        try:
            info = source.head(pair.src_bucket, key)
        except NotFound:
            continue
        disagreements += 1
        report.error(key, "left out of the source's first listing, found by the second (checked now)")
        check(info)
    for key in only_first:
        try:
            source.head(pair.src_bucket, key)
        except NotFound:
            continue
        disagreements += 1
        report.error(key, "left out of the source's second listing")
    report.listing_check = "cross-checked" + (f": the listings disagree on {disagreements}" if disagreements else "")
