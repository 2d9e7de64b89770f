"""A standby rehearsal: follow the source for a while, optionally writing to it at a steady rate
(as the platform would), then cut over and measure the **recovery point**.

The cutover is the moment the writes stop: from then on the source is taken to be gone. The
recovery point is the age, at that moment, of the oldest write that is not on the target with its
bytes (each write is read back from the target and compared by SHA-256; 0 when every write is
there). It is measured from the writes themselves, not taken from the standby's own status, which
is reported beside it (``claimed_recovery_point_s``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Providers
from ..connect import open_store
from ..errors import NotFound, ProviderError
from ..location import parse_location
from ..storage import ObjectStore
from ..sync.plan import plan_buckets
from .engine import Standby, StandbyOptions

__all__ = ["DrillResult", "DrillWrites", "remove_drill_writes", "run_drill"]


@dataclass(frozen=True)
class DrillWrites:
    bucket: str
    prefix: str
    """Keys are ``<prefix><n>``: the run's own prefix, removed again by :func:`remove_drill_writes`."""
    rate: float
    """Writes per second."""
    size: int


@dataclass
class DrillResult:
    notice_at: float
    """The cutover: when the writes stopped."""
    recovery_point_s: float
    claimed_recovery_point_s: float
    writes: int
    missing: list[str] = field(default_factory=list)
    """Writes not on the target (with their bytes) at the cutover, oldest first (at most 20)."""
    missing_count: int = 0
    mode: str = "listing"
    copies: int = 0
    followed_s: float = 0.0


class _Writer:
    def __init__(self, providers: Providers, provider: str, writes: DrillWrites) -> None:
        self.store = open_store(providers, provider)
        self.writes = writes
        self.done: list[tuple[str, float, str]] = []
        """(key, when written, sha256) of each write that the source acknowledged (a refused write
        is no change of the source: it is not counted)."""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="drill-writer", daemon=True)

    def _run(self) -> None:
        period = 1.0 / self.writes.rate
        following = time.monotonic()
        n = 0
        while not self._stop.is_set():
            body = os.urandom(self.writes.size)
            key = f"{self.writes.prefix}{n:06d}"
            with contextlib.suppress(ProviderError):
                self.store.put(self.writes.bucket, key, body)
                self.done.append((key, time.time(), hashlib.sha256(body).hexdigest()))
            n += 1
            following += period
            self._stop.wait(max(0.0, following - time.monotonic()))

    def stop(self) -> float:
        """Stop writing; returns the moment of the cutover."""
        self._stop.set()
        self.thread.join(10)
        return time.time()


def _on_target(target: ObjectStore, bucket: str, key: str, digest: str) -> bool:
    try:
        with target.open(bucket, key) as reader:
            found = hashlib.sha256()
            while chunk := reader.read(1024 * 1024):
                found.update(chunk)
    except NotFound:
        return False
    return found.hexdigest() == digest


def run_drill(
    providers: Providers,
    source: str,
    target: str,
    options: StandbyOptions,
    *,
    follow_for: float,
    writes: DrillWrites | None,
    note: Callable[[str], None] = lambda message: None,
    during: Callable[[], None] = lambda: None,
) -> DrillResult:
    """Follow ``source`` for ``follow_for`` seconds after the initial sync (``during`` is called
    every second meanwhile: the DNS standby), then cut over and measure the recovery point."""
    runner = Standby(providers, source, target, options, note)
    thread = threading.Thread(target=runner.run, name="standby", daemon=True)
    thread.start()
    writer = None
    try:
        while not runner.status.reconciliations and thread.is_alive():  # the initial sync
            time.sleep(0.1)
        if writes is not None:
            writer = _Writer(providers, runner.src.provider, writes)
            writer.thread.start()
        started = time.monotonic()
        while time.monotonic() - started < follow_for and thread.is_alive():
            during()
            time.sleep(min(1.0, max(0.0, follow_for - (time.monotonic() - started))))
        notice_at = writer.stop() if writer is not None else time.time()
        claimed = runner.status.to_json()["oldest_change_age_s"]
        # Without writes of its own, the recovery point is what the standby knew to be behind.
        result = DrillResult(notice_at, 0.0 if writes else claimed, claimed, 0, mode=runner.status.mode)
        if writer is not None:
            pair = runner.pairs([writer.writes.bucket])[0]
            result.writes = len(writer.done)
            missing = [
                (key, when)
                for key, when, digest in writer.done
                if not _on_target(runner.target_store, pair.dst_bucket, pair.dst_key(key), digest)
            ]
            result.missing_count = len(missing)
            result.missing = [key for key, _ in missing[:20]]
            if missing:
                result.recovery_point_s = round(notice_at - min(when for _, when in missing), 3)
            writer.store.close()
        result.followed_s = round(time.monotonic() - started, 3)
    finally:
        runner.request_stop()
        thread.join(30)
    result.copies = runner.status.copies
    return result


def remove_drill_writes(
    providers: Providers, source: str, target: str, writes: DrillWrites, bucket_map: dict[str, str]
) -> int:
    """Delete the drill's writes (its prefix) on the source and on the target; returns how many."""
    src, dst = parse_location(source), parse_location(target)
    removed = 0
    for location, mapped in ((src, False), (dst, True)):
        store = open_store(providers, location.provider)
        try:
            bucket, prefix = writes.bucket, writes.prefix
            if mapped:
                pair = plan_buckets(src, dst, [writes.bucket], store.capabilities.limits.valid_bucket_name, bucket_map)[
                    0
                ]
                bucket, prefix = pair.dst_bucket, pair.dst_key(writes.prefix)
            if not store.bucket_exists(bucket):
                continue
            for info in list(store.list_objects(bucket, prefix)):
                store.delete(bucket, info.key)
                removed += 1
        finally:
            store.close()
    return removed
