"""``failover verify SRC DST``: compare both sides and report missing, different and extra keys.

By default every byte is re-read on both sides and digested; ``--trust-digests`` instead compares
the digests recorded in the journal or in ``failover-<algorithm>`` metadata (reading only where no
digest is recorded). Metadata the target can hold is compared too. Independent of the sync engine's
bookkeeping: the target listing goes into a scratch SQLite table, so memory stays flat.
"""

from __future__ import annotations

import concurrent.futures
import functools
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FailoverError, NotFound, ProviderError
from ..location import Location
from ..storage import ObjectStore
from ..types import MetaField, ObjectMeta
from .digests import Algorithm, metadata_key, new_digest
from .journal import Journal
from .keys import TargetKeys
from .plan import BucketPair, plan_buckets

__all__ = ["VerifyOptions", "VerifyReport", "run_verify"]

MAX_LISTED = 10_000


@dataclass
class VerifyOptions:
    trust_digests: bool = False
    digest: Algorithm = "sha256"
    workers: int = 16
    bucket_map: dict[str, str] = field(default_factory=dict)
    journal: Path | None = None
    check_metadata: bool = True


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
    started: float = 0.0
    finished: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, item: Any) -> None:
        with self._lock:
            self.counts[kind] += 1
            bucket: list[Any] = getattr(self, kind)
            if len(bucket) < MAX_LISTED:
                bucket.append(item)

    @property
    def ok(self) -> bool:
        return (
            self.listing_complete
            and not self.errors
            and not self.counts["missing"]
            and not self.counts["different"]
            and not self.counts["metadata_different"]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "mode": self.mode,
            "ok": self.ok,
            "duration_s": round(self.finished - self.started, 3),
            "checked": self.checked,
            "matching": self.matching,
            "bytes_compared": self.bytes_compared,
            "counts": self.counts,
            "missing": self.missing,
            "different": self.different,
            "metadata_different": self.metadata_different,
            "extra": self.extra,
            "errors": self.errors,
            "listing_complete": self.listing_complete,
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


class _Verifier:
    def __init__(self, source: ObjectStore, target: ObjectStore, options: VerifyOptions, report: VerifyReport) -> None:
        self.source = source
        self.target = target
        self.options = options
        self.report = report
        self.digest_key = metadata_key(options.digest)
        self.journal = Journal(options.journal) if options.journal and options.journal.exists() else None

    def _read_digest(self, store: ObjectStore, bucket: str, key: str) -> tuple[str, int, ObjectMeta]:
        digest = new_digest(self.options.digest)
        with store.open(bucket, key) as reader:
            for chunk in reader.iter_chunks():
                digest.update(chunk)
            size = reader.position
            meta = reader.info.meta or ObjectMeta()
        with self.report._lock:
            self.report.bytes_compared += size
        return digest.hexdigest(), size, meta

    def _recorded(self, store: ObjectStore, bucket: str, key: str) -> tuple[str | None, ObjectMeta]:
        meta = store.head(bucket, key).meta or ObjectMeta()
        return meta.user.get(self.digest_key), meta

    def compare(self, pair: BucketPair, src_key: str, dst_key: str) -> None:
        try:
            if self.options.trust_digests:
                src_digest: str | None = None
                if self.journal is not None:
                    state, src_digest = self.journal.digest_of(pair.src_bucket, src_key)
                    src_digest = src_digest if state == "verified" else None
                recorded, src_meta = self._recorded(self.source, pair.src_bucket, src_key)
                src_digest = src_digest or recorded
                if src_digest is None:
                    src_digest, _, src_meta = self._read_digest(self.source, pair.src_bucket, src_key)
                dst_digest, dst_meta = self._recorded(self.target, pair.dst_bucket, dst_key)
                if dst_digest is None:
                    dst_digest, _, dst_meta = self._read_digest(self.target, pair.dst_bucket, dst_key)
            else:
                src_digest, _, src_meta = self._read_digest(self.source, pair.src_bucket, src_key)
                dst_digest, _, dst_meta = self._read_digest(self.target, pair.dst_bucket, dst_key)
        except NotFound:
            self.report.add("missing", f"{pair.dst_bucket}/{dst_key}")
            return
        except FailoverError as error:
            with self.report._lock:
                self.report.errors.append({"key": src_key, "error": str(error)})
            return
        if src_digest != dst_digest:
            self.report.add(
                "different", {"key": f"{pair.dst_bucket}/{dst_key}", "source": src_digest, "target": dst_digest or ""}
            )
            return
        if self.options.check_metadata:
            fields = self.source.capabilities.metadata & self.target.capabilities.metadata
            differences = _compare_meta(src_meta, dst_meta, fields)
            if differences:
                self.report.add("metadata_different", {"key": f"{pair.dst_bucket}/{dst_key}", "fields": differences})
                return
        with self.report._lock:
            self.report.matching += 1


def _release(slots: threading.BoundedSemaphore, _future: object) -> None:
    slots.release()


def run_verify(
    source: ObjectStore,
    target: ObjectStore,
    source_location: Location,
    target_location: Location,
    options: VerifyOptions,
) -> VerifyReport:
    report = VerifyReport(
        str(source_location),
        str(target_location),
        "recorded digests (--trust-digests)" if options.trust_digests else f"re-read both sides ({options.digest})",
    )
    report.started = time.time()
    names = [b.name for b in source.list_buckets()] if source_location.bucket is None else [source_location.bucket]
    pairs = plan_buckets(
        source_location, target_location, names, target.capabilities.limits.valid_bucket_name, options.bucket_map
    )
    verifier = _Verifier(source, target, options, report)
    # A key the target cannot hold is looked for under its encoded name: there if the sync encoded
    # it, reported missing otherwise (it is).
    keys = TargetKeys(target, "encode")
    with tempfile.TemporaryDirectory(prefix="failover-verify-") as scratch:
        db = sqlite3.connect(Path(scratch) / "target.sqlite", isolation_level=None)
        db.execute("CREATE TABLE target (key TEXT PRIMARY KEY, size INTEGER, seen INTEGER DEFAULT 0)")
        for pair in pairs:
            db.execute("DELETE FROM target")
            try:
                if target.bucket_exists(pair.dst_bucket):
                    batch = []
                    for info in target.list_objects(pair.dst_bucket, pair.dst_prefix):
                        batch.append((info.key, info.size))
                        if len(batch) >= 1000:
                            db.executemany("INSERT INTO target (key, size) VALUES (?, ?)", batch)
                            batch = []
                    db.executemany("INSERT INTO target (key, size) VALUES (?, ?)", batch)
            except ProviderError as error:
                report.listing_complete = False
                report.errors.append({"key": pair.dst_bucket, "error": f"target listing failed: {error}"})
                continue
            with concurrent.futures.ThreadPoolExecutor(max(1, options.workers)) as pool:
                slots = threading.BoundedSemaphore(options.workers * 2)
                try:
                    for info in source.list_objects(pair.src_bucket, pair.src_prefix):
                        report.checked += 1
                        dst_key = keys.map(pair.dst_key(info.key))
                        row = db.execute("SELECT size FROM target WHERE key = ?", (dst_key,)).fetchone()
                        if row is None:
                            report.add("missing", f"{pair.dst_bucket}/{dst_key}")
                            continue
                        db.execute("UPDATE target SET seen = 1 WHERE key = ?", (dst_key,))
                        if row[0] != info.size:
                            report.add(
                                "different",
                                {
                                    "key": f"{pair.dst_bucket}/{dst_key}",
                                    "source": f"{info.size} bytes",
                                    "target": f"{row[0]} bytes",
                                },
                            )
                            continue
                        slots.acquire()
                        future = pool.submit(verifier.compare, pair, info.key, dst_key)
                        future.add_done_callback(functools.partial(_release, slots))
                except ProviderError as error:
                    report.listing_complete = False
                    report.errors.append({"key": pair.src_bucket, "error": f"source listing failed: {error}"})
            for (key,) in db.execute("SELECT key FROM target WHERE seen = 0 ORDER BY key"):
                report.add("extra", f"{pair.dst_bucket}/{key}")
        db.close()
    if verifier.journal is not None:
        verifier.journal.close()
    report.finished = time.time()
    return report
