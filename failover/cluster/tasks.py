"""What a cluster's worker runs: list one shard of a bucket, copy one chunk of objects.

Everything a task carries is data (no store, no credential, no callable): the providers file as
loaded, which holds references only, the two locations, and the rows to copy. Each worker process opens
its stores once per job and keeps them (connection pools, credentials resolved from its own
environment). A task never writes the journal: it returns, with each object's outcome, the journal
calls its copy made, for the coordinator to commit.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Providers, ProvidersFile
from ..errors import FailoverError
from ..storage import ObjectStore
from ..sync.copier import Copier, PartRange, UploadedPart
from ..sync.digests import Algorithm
from ..sync.journal import ObjectRow, PartRow, SourceVersion
from ..sync.report import SyncReport
from ..sync.throttle import Bandwidth
from ..sync.verify import CompareItem
from ..types import ObjectInfo, PartInfo
from .shards import Shard

__all__ = [
    "ChunkOutcome",
    "CopyItem",
    "ItemOutcome",
    "Job",
    "LedgerCall",
    "ShardListing",
    "compare_chunk",
    "copy_chunk",
    "list_shard",
    "send_range",
]


@dataclass(frozen=True)
class Job:
    """What every task of one run shares: no secret is in it (the providers file holds references)."""

    providers: ProvidersFile
    """The providers file as loaded: names, endpoints and references to credentials, never a secret."""
    providers_path: str
    source: str
    target: str
    digest: Algorithm = "sha256"
    readback: bool = False
    parts_in_flight: int = 4
    stall_timeout: float | None = None
    check_metadata: bool = True
    bandwidth: float | None = None
    """--bwlimit, in bytes per second: each worker process keeps under it."""
    run_token: str = ""
    """Unique per run: a long-lived worker opens the stores afresh for each run (its counters are
    the run's)."""

    @property
    def key(self) -> str:
        return hashlib.sha256(pickle.dumps(self)).hexdigest()


@dataclass(frozen=True)
class CopyItem:
    row: ObjectRow
    reverify: bool
    target_size: int | None
    parts: tuple[PartRow, ...] = ()
    """The parts the journal has for ``row``'s recorded upload (a resume needs them)."""

    @property
    def name(self) -> tuple[str, str]:
        return (self.row.src_bucket, self.row.src_key)

    @property
    def size(self) -> int:
        return self.row.size


@dataclass(frozen=True)
class LedgerCall:
    """One journal call a copy made on a worker, to be made again on the coordinator."""

    method: str
    args: tuple[Any, ...]


LEDGER_METHODS = frozenset({"mark_verified", "begin_upload_intent", "set_upload", "record_part", "clear_upload"})


@dataclass
class ItemOutcome:
    """One item's outcome: its result (a copy's Result, a comparison), or the error it ended in,
    and, for copies, the journal calls it made."""

    name: tuple[str, str]
    result: Any
    error: BaseException | None
    calls: list[LedgerCall] = field(default_factory=list)


@dataclass
class ChunkOutcome:
    items: list[ItemOutcome]
    worker: str
    seconds: float
    totals: dict[str, int] = field(default_factory=dict)
    """The worker's counters for the whole run so far (bytes read and sent, retries): chunks run
    side by side in one worker, so only the totals are exact."""
    bytes_sent: int = 0
    """What this chunk's objects sent (their bodies and parts)."""
    multipart: Counter[str] = field(default_factory=Counter)
    fields_not_carried: Counter[str] = field(default_factory=Counter)
    objects_with_tags_not_carried: int = 0
    digest_only_in_journal: int = 0
    fidelity_examples: list[dict[str, Any]] = field(default_factory=list)


SHARD_PAGE = 20_000
"""Objects one listing task returns at most; the rest of its shard is another task. What the
coordinator holds of a listing at once is bounded by this times the tasks in flight."""


@dataclass
class ShardListing:
    objects: list[ObjectInfo]
    worker: str
    seconds: float
    ended_early: int = 0
    rest: Shard | None = None
    """What of the shard is still to list (None: it is done)."""


class RecordingLedger:
    """The :class:`~failover.sync.journal.Ledger` of a worker: answers from what the task was given
    and what its copies did, and records every write for the coordinator."""

    def __init__(self, items: list[CopyItem]) -> None:
        self._lock = threading.Lock()
        self._rows = {(i.row.src_bucket, i.row.src_key): i.row for i in items}
        self._parts: dict[tuple[str, str], dict[int, PartRow]] = {
            (i.row.src_bucket, i.row.src_key): {p.number: p for p in i.parts} for i in items
        }
        self.calls: dict[tuple[str, str], list[LedgerCall]] = {}

    def _record(self, row: ObjectRow, method: str, *args: Any) -> None:
        with self._lock:
            self.calls.setdefault((row.src_bucket, row.src_key), []).append(LedgerCall(method, (row, *args)))

    def _update(self, row: ObjectRow, **changes: Any) -> None:
        name = (row.src_bucket, row.src_key)
        current = self._rows.get(name, row)
        self._rows[name] = ObjectRow(**{**current.__dict__, **changes})

    def mark_verified(
        self, row: ObjectRow, digest: str | None, size: int | None = None, dst_etag: str | None = None
    ) -> None:
        self._record(row, "mark_verified", digest, size, dst_etag)

    def begin_upload_intent(self, row: ObjectRow, version: SourceVersion) -> None:
        self._record(row, "begin_upload_intent", version)
        with self._lock:
            self._update(
                row,
                upload_id=None,
                upload_started=time.time(),
                upload_etag=version.etag,
                upload_size=version.size,
                upload_modified=version.modified,
            )

    def set_upload(self, row: ObjectRow, upload_id: str, part_size: int) -> None:
        self._record(row, "set_upload", upload_id, part_size)
        with self._lock:
            self._update(row, upload_id=upload_id, part_size=part_size)

    def record_part(self, row: ObjectRow, upload_id: str, part: PartInfo, proof: str) -> None:
        self._record(row, "record_part", upload_id, part, proof)
        with self._lock:
            self._parts.setdefault((row.src_bucket, row.src_key), {})[part.number] = PartRow(
                part.number, part.etag, part.size, part.checksum, proof
            )

    def parts(self, row: ObjectRow, upload_id: str) -> list[PartRow]:
        with self._lock:
            return list(self._parts.get((row.src_bucket, row.src_key), {}).values())

    def clear_upload(self, row: ObjectRow) -> None:
        self._record(row, "clear_upload")
        with self._lock:
            self._parts.pop((row.src_bucket, row.src_key), None)
            self._update(row, upload_id=None, upload_started=None, part_size=None)

    def refresh(self, row: ObjectRow) -> ObjectRow:
        with self._lock:
            return self._rows.get((row.src_bucket, row.src_key), row)


# -- the stores of a worker process ----------------------------------------------------------------

_stores_lock = threading.Lock()
_stores: dict[str, tuple[ObjectStore, ObjectStore]] = {}
_limits: dict[str, Bandwidth] = {}
_KEEP_JOBS = 2


def _open(job: Job) -> tuple[ObjectStore, ObjectStore]:
    from ..liveness import Liveness
    from ..sync.engine import open_locations

    with _stores_lock:
        found = _stores.get(job.key)
        if found is None:
            providers = Providers(path=job.providers_path, file=job.providers)
            _, _, source, target = open_locations(providers, job.source, job.target)
            liveness = Liveness(job.stall_timeout)
            for store in {id(source): source, id(target): target}.values():
                store.liveness = liveness
            while len(_stores) >= _KEEP_JOBS:  # an earlier run's stores (dict order: oldest first)
                oldest = next(iter(_stores))
                _limits.pop(oldest, None)
                for store in set(_stores.pop(oldest)):
                    store.close()
            found = _stores[job.key] = (source, target)
            _limits[job.key] = Bandwidth(job.bandwidth)
        return found


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def portable(error: BaseException) -> BaseException:
    """``error`` as it can travel back to the coordinator: failover's own errors as they are (they
    pickle), anything else as a RuntimeError naming its type (an SDK's exception may not pickle)."""
    if isinstance(error, FailoverError):
        error.__cause__ = error.__context__ = None
        error.__traceback__ = None
        try:
            # Our own bytes, just made: nothing untrusted is unpickled here.
            pickle.loads(pickle.dumps(error))  # noqa: S301
        except Exception:  # noqa: BLE001 - any failure to travel is replaced below
            return RuntimeError(f"{type(error).__name__}: {error}")
        return error
    return RuntimeError(f"{type(error).__name__}: {error}")


# -- the tasks -------------------------------------------------------------------------------------


def copy_chunk(job: Job, items: list[CopyItem]) -> ChunkOutcome:
    """Copy every object of ``items`` (a few in parallel) and return each one's outcome with the
    journal calls it made. Never raises for one object's failure: that is its outcome."""
    started = time.monotonic()
    source, target = _open(job)
    ledger = RecordingLedger(items)
    report = SyncReport(source=job.source, target=job.target, dry_run=False, journal="(coordinator)")
    copier = Copier(
        source,
        target,
        ledger,
        report,
        algorithm=job.digest,
        bandwidth=_limits.get(job.key) or Bandwidth(job.bandwidth),
        readback=job.readback,
        max_parts_in_flight=job.parts_in_flight,
    )

    try:
        outcomes = _each(
            items, lambda item: copier.copy_retrying(item.row, reverify=item.reverify, target_size=item.target_size)
        )
    finally:
        copier.close()
    for outcome in outcomes:
        outcome.calls = ledger.calls.get(outcome.name, [])
    fidelity = report.fidelity
    return ChunkOutcome(
        outcomes,
        _worker_name(),
        time.monotonic() - started,
        totals={
            "bytes_read": source.counters.bytes_read,
            "bytes_sent": target.counters.bytes_written if source is not target else 0,
            "source_retries": source.counters.retries,
            "target_retries": target.counters.retries,
        },
        bytes_sent=sum(o.result.sent for o in outcomes if o.result is not None),
        multipart=Counter(report.multipart),
        fields_not_carried=Counter(fidelity.fields_not_carried),
        objects_with_tags_not_carried=fidelity.objects_with_tags_not_carried,
        digest_only_in_journal=fidelity.digest_only_in_journal,
        fidelity_examples=list(fidelity.examples),
    )


def _each(items: list[Any], work: Callable[[Any], Any]) -> list[ItemOutcome]:
    """``work`` on every item, a few at once; each item's exception is its outcome."""
    import concurrent.futures

    def one(item: Any) -> ItemOutcome:
        try:
            return ItemOutcome(item.name, work(item), None)
        except BaseException as error:  # noqa: BLE001 - every item's failure is its outcome
            return ItemOutcome(item.name, None, portable(error))

    with concurrent.futures.ThreadPoolExecutor(min(8, max(1, len(items))), thread_name_prefix="chunk") as pool:
        return list(pool.map(one, items))


def send_range(job: Job, span: PartRange) -> list[UploadedPart]:
    """Send one part range of a large object spread over the workers (see Copier.spread)."""
    source, target = _open(job)
    report = SyncReport(source=job.source, target=job.target, dry_run=False, journal="(coordinator)")
    copier = Copier(
        source,
        target,
        RecordingLedger([]),
        report,
        algorithm=job.digest,
        bandwidth=_limits.get(job.key) or Bandwidth(job.bandwidth),
        readback=job.readback,
        max_parts_in_flight=1,
    )
    try:
        return copier.send_range(span)
    except BaseException as error:  # noqa: BLE001 - raised as it can travel
        raise portable(error) from None
    finally:
        copier.close()


def compare_chunk(job: Job, items: list[CompareItem]) -> ChunkOutcome:
    """``failover verify``'s comparisons of ``items`` (reading and digesting both sides)."""
    from ..sync.verify import Comparer

    started = time.monotonic()
    source, target = _open(job)
    comparer = Comparer(source, target, algorithm=job.digest, check_metadata=job.check_metadata)
    outcomes = _each(
        items,
        lambda i: comparer.compare(i.src_bucket, i.src_key, i.dst_bucket, i.dst_key, trust=i.trust, claim=i.claim),
    )
    read = source.counters.bytes_read + (target.counters.bytes_read if target is not source else 0)
    return ChunkOutcome(outcomes, _worker_name(), time.monotonic() - started, totals={"bytes_read": read})


def list_shard(job: Job, bucket: str, prefix: str, shard: Shard, limit: int = SHARD_PAGE) -> ShardListing:
    """Up to ``limit`` source objects of ``bucket`` under ``prefix`` in ``shard``, in key order, and
    what of the shard is left. The store confirms the end of what it lists (a listing that stops
    early goes on); the shard stops where the next one starts."""
    started = time.monotonic()
    source, _ = _open(job)
    ended_early = source.counters.listings_ended_early
    found: list[ObjectInfo] = []
    upto = shard.upto.encode() if shard.upto is not None else None
    rest = None
    listing = source.list_objects(bucket, prefix, start_after=shard.after)
    try:
        for info in listing:
            if upto is not None and info.key.encode() > upto:
                break
            if len(found) >= limit:
                rest = Shard(found[-1].key, shard.upto)
                break
            found.append(info)
    finally:
        close = getattr(listing, "close", None)
        if close is not None:
            close()
    seconds = time.monotonic() - started
    early = source.counters.listings_ended_early - ended_early
    return ShardListing(found, _worker_name(), seconds, early, rest)
