"""``failover standby``: keep the target following the source until stopped.

The standby is a loop of sync engine runs over one journal, so every copy is the engine's
(streamed, digest-verified, resumable after ``kill -9``) and nothing here copies bytes itself:

* **reconciliation**: a full run, both sides listed and each listing confirmed (as ``sync``). It
  runs first (the initial sync), then every ``reconcile_every`` seconds, and early when a delete
  waiting out its delay is due. Deletes happen only here: from confirmed listings, within the
  delete-share guard, and only for target objects whose source has been gone for ``delete_delay``
  (:class:`PendingDeletes`, kept beside the journal so a restart keeps their clocks);
* **feed passes** (where the source provider declares a change feed): the keys the feed's events
  name, each read by name on the source and copied if changed; an event is acknowledged only
  once its key is settled, so a crash has it delivered again;
* **listing passes** (no feed, or the feed was deleted): the source listed every ``interval``
  seconds and compared with the journal (the target is not listed: objects the journal verified are
  taken to be there until the next reconciliation lists it).

Outages (a provider refusing connections, timing out, failing its requests) are backed off from
exponentially and recorded as gaps; the loop catches up when they end.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import Providers
from ..connect import open_feed
from ..errors import AuthError, ConfigError, FailoverError, NotFound, ProviderError
from ..feed import ChangeEvent, ChangeFeed
from ..filelock import LockBusy, held_or_refused
from ..files import write_atomic
from ..location import Location
from ..sync import SyncEngine, SyncOptions, SyncReport, default_journal_path, open_locations
from ..sync.engine import SilentProgress
from ..sync.plan import BucketPair, plan_buckets
from .status import Outage, StandbyStatus

__all__ = ["PendingDeletes", "Standby", "StandbyOptions"]

FEED_WAIT = 1.0
"""Longest wait for the feed's next events: the loop looks at its stop flag at least this often."""
BATCH_WINDOW = 1.0
"""After the first event of a batch, at most how long more waiting events are received (while the
feed has more) before the batch is copied: one pass's fixed costs (the journal, a bucket check, the
acknowledgements) are shared by more changes when many come."""
BATCH_EVENTS = 2000


@dataclass
class StandbyOptions:
    sync: SyncOptions = field(default_factory=SyncOptions)
    """How each copy is made (workers, digest, filters, bucket map, journal, ...); ``delete`` is
    taken from ``propagate_deletes``."""
    interval: float = 10.0
    """Listing mode: seconds between incremental listings of the source."""
    reconcile_every: float = 3600.0
    """Seconds between full reconciliations (both sides listed)."""
    propagate_deletes: bool = False
    delete_delay: float = 300.0
    """A target object is deleted only once its source has been gone this long."""
    use_feed: bool = True
    """Follow the source's change feed where its provider declares one (False: listings)."""
    status_file: Path | None = None
    status_every: float = 2.0
    max_backoff: float = 60.0


class PendingDeletes:
    """When each delete candidate was first seen without a source object (the engine's
    ``DeleteDelay``), kept in a JSON file beside the journal."""

    def __init__(self, path: Path, delay: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.delay = delay
        self.clock = clock
        self.first_seen: dict[str, dict[str, float]] = {}
        self._asked: set[tuple[str, str]] = set()
        with contextlib.suppress(FileNotFoundError, ValueError):
            loaded = json.loads(path.read_text(encoding="utf-8"))
            self.first_seen = {b: {k: float(t) for k, t in keys.items()} for b, keys in loaded.items()}

    def seen_deleted(self, bucket: str, key: str, when: float) -> None:
        """A feed said ``key`` was deleted at ``when``: its clock starts then (if not earlier)."""
        keys = self.first_seen.setdefault(bucket, {})
        keys[key] = min(keys.get(key, when), when)

    def ripe(self, bucket: str, key: str) -> bool:
        self._asked.add((bucket, key))
        keys = self.first_seen.setdefault(bucket, {})
        first = keys.setdefault(key, self.clock())
        return self.clock() - first >= self.delay

    def begin(self) -> None:
        self._asked.clear()

    def settle(self, buckets: set[str]) -> None:
        """After a reconciliation with complete listings of ``buckets``: forget the candidates it
        did not ask about (the source holds them again, or they were deleted before); save."""
        for bucket in buckets:
            keys = self.first_seen.get(bucket, {})
            for key in list(keys):
                if (bucket, key) not in self._asked:
                    del keys[key]
        self.save()

    def due(self) -> bool:
        """Some candidate's delay has run out (a reconciliation would delete it now)."""
        now = self.clock()
        return any(now - first >= self.delay for keys in self.first_seen.values() for first in keys.values())

    @property
    def count(self) -> int:
        return sum(len(keys) for keys in self.first_seen.values())

    def save(self) -> None:
        write_atomic(self.path, json.dumps({b: k for b, k in self.first_seen.items() if k}, indent=1) + "\n")


class _PassProgress(SilentProgress):
    """The engine's progress hooks for one pass: what it planned and finished (for the lag), and
    its notes passed on."""

    def __init__(self, note: Callable[[str], None]) -> None:
        self._note = note
        self.planned_objects = 0
        self.planned_bytes = 0
        self.done_objects = 0
        self.done_bytes = 0

    def planned(self, objects: int, size: int) -> None:
        self.planned_objects += objects
        self.planned_bytes += size

    def advanced(self, objects: int, size: int) -> None:
        self.done_objects += objects
        self.done_bytes += size

    def note(self, message: str) -> None:
        self._note(message)

    @property
    def behind(self) -> tuple[int, int]:
        return max(0, self.planned_objects - self.done_objects), max(0, self.planned_bytes - self.done_bytes)


class Standby:
    def __init__(
        self,
        providers: Providers,
        source: str,
        target: str,
        options: StandbyOptions,
        note: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.options = options
        self.note = note
        self._stop = threading.Event()
        self._engine: SyncEngine | None = None
        self.src: Location
        self.dst: Location
        self.src, self.dst, self.source_store, self.target_store = open_locations(providers, source, target)
        journal = options.sync.journal or default_journal_path(self.src, self.dst)
        self.journal_path = journal
        self.status_path = options.status_file or journal.with_suffix(".standby-status.json")
        self.deletes = PendingDeletes(journal.with_suffix(".standby-deletes.json"), options.delete_delay)
        self.status = StandbyStatus(
            str(self.src),
            str(self.dst),
            str(journal),
            status_every_s=options.status_every,
            interval_s=options.interval,
            reconcile_every_s=options.reconcile_every,
            propagate_deletes=options.propagate_deletes,
            delete_delay_s=options.delete_delay,
        )
        self.feed: ChangeFeed | None = open_feed(providers, self.src.provider) if options.use_feed else None
        self.pending: dict[tuple[str, str], list[ChangeEvent]] = {}
        """Feed events not yet settled, by (source bucket, key)."""
        self._last_complete_listing: float | None = None
        self._outage: Outage | None = None
        self._progress: _PassProgress | None = None
        self._followed_buckets: set[str] | None = None
        self._followed_at = 0.0

    # -- control -----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop soon (a signal handler may call it): the pass under way stops as after Ctrl-C and
        its copies in flight are left for the next run to resume."""
        self._stop.set()
        engine = self._engine
        if engine is not None:
            engine.stop.set("stopped (standby ending)", interrupted=True)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _followed(self) -> set[str]:
        if self._followed_buckets is None or time.monotonic() - self._followed_at > self.options.interval * 10:
            self._followed_buckets = set(self.buckets())
            self._followed_at = time.monotonic()
        return self._followed_buckets

    def buckets(self) -> list[str]:
        """The source buckets followed (every bucket of the provider for ``PROVIDER:``)."""
        if self.src.bucket is not None:
            return [self.src.bucket]
        return sorted(b.name for b in self.source_store.list_buckets())

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> StandbyStatus:
        """Follow the source until :meth:`request_stop`; returns the final status. One standby per
        pair: a second one is refused (two would share one status file and one delete clock)."""
        try:
            with held_or_refused(self.journal_path.with_suffix(".standby.lock")):
                return self._run()
        except LockBusy as busy:
            self._close()
            raise ConfigError(
                f"another standby already follows {self.src} -> {self.dst} ({busy.holder})",
                hint="stop it first (SIGTERM); a new one resumes from the same journal",
            ) from None

    def _close(self) -> None:
        if self.feed is not None:
            self.feed.close()
        self.source_store.close()
        if self.target_store is not self.source_store:
            self.target_store.close()

    def _run(self) -> StandbyStatus:
        writer = threading.Thread(target=self._write_status_loop, name="standby-status", daemon=True)
        writer.start()
        try:
            self._choose_mode()
            self.status.update(phase="initial sync")
            while not self.stopping and not self._reconcile():
                self._back_off()
            next_reconcile = time.monotonic() + self.options.reconcile_every
            next_listing = time.monotonic() + self.options.interval
            self.status.update(phase="following")
            while not self.stopping:
                if time.monotonic() >= next_reconcile or (self.options.propagate_deletes and self.deletes.due()):
                    if self._reconcile():
                        next_reconcile = time.monotonic() + self.options.reconcile_every
                    else:
                        self._back_off()
                    continue
                if self.feed is not None:
                    ok = self._feed_pass()
                else:
                    wait = next_listing - time.monotonic()
                    if wait > 0:
                        self._stop.wait(min(wait, FEED_WAIT))
                        self._refresh_lag()
                        continue
                    next_listing = time.monotonic() + self.options.interval
                    ok = self._listing_pass()
                if not ok:
                    self._back_off()
        finally:
            self.status.update(phase="stopped")
            self._refresh_lag()
            self._write_status()
            self._close()
        return self.status

    def _choose_mode(self) -> None:
        if self.feed is None:
            return
        try:
            self.feed.check(self.buckets())
        except NotFound as error:
            self._fall_back(f"{error.message} ({error.hint})" if error.hint else error.message)
            return
        self.status.update(mode="feed", feed=self.feed.name)
        self.note(f"following {self.src} through {self.feed.name}'s change feed")

    def _fall_back(self, reason: str) -> None:
        if self.feed is not None:
            self.feed.close()
        self.feed = None
        self.status.update(mode="listing", feed_fallback=reason)
        self.status.error(f"change feed not used: {reason}")
        self.note(f"change feed not used: {reason}; following by listing every {self.options.interval:g} s")

    # -- passes ------------------------------------------------------------------------------------

    def _run_engine(self, options: SyncOptions, kind: str) -> SyncReport | None:
        """One engine run; None when it could not start (an outage), after recording it."""
        progress = _PassProgress(self.note)
        self._progress = progress
        engine = SyncEngine(self.source_store, self.target_store, self.src, self.dst, options, progress)
        self._engine = engine
        if self.stopping:
            engine.stop.set("stopped (standby ending)", interrupted=True)
        started = time.time()
        try:
            report = engine.run()
        except FailoverError as error:
            if isinstance(error, NotFound | AuthError) and not self.status.reconciliations:
                raise  # a source that is not there, or credentials refused, at the start: say so and end
            if isinstance(error, ProviderError) or not isinstance(error, ConfigError):
                self._failed(kind, str(error))
                return None
            raise
        finally:
            self._engine = None
            self._progress = None
        self.status.add(copies=progress.done_objects, bytes_copied=progress.done_bytes, passes=1)
        deleted = report.total("deleted")
        self.status.add(deletes=deleted)
        for item in report.errors[:5]:
            self.status.error(f"{kind}: {item['key']}: {item['error']}")
        self.status.update(
            last_pass={
                "kind": kind,
                "started": started,
                "finished": time.time(),
                "copied": progress.done_objects,
                "bytes": progress.done_bytes,
                "failed": report.total("failed"),
                "deleted": deleted,
                "complete": report.complete,
                "aborted": report.aborted,
            }
        )
        if self.stopping:
            return report
        if report.aborted:
            self._failed(kind, report.aborted)
            return None
        broken = [b for b in report.buckets if not b.listing_complete or not b.target_listing_complete]
        if broken:
            # A listing (or, for a feed pass, a read by name) failed: the source or target is out.
            first = report.errors[0]["error"] if report.errors else f"listing {broken[0].source} failed"
            self._failed(kind, first)
            return None
        return report

    def _reconcile(self) -> bool:
        self.status.update(phase="reconciling" if self.status.reconciliations else "initial sync")
        self.deletes.begin()
        options = replace(
            self.options.sync,
            delete=self.options.propagate_deletes,
            delete_delay=self.deletes if self.options.propagate_deletes else None,
            keys=None,
            list_target=True,
            journal=self.journal_path,
        )
        started = time.time()
        report = self._run_engine(options, "reconciliation")
        if report is None:
            return False
        complete_listings = all(b.listing_complete and b.target_listing_complete for b in report.buckets)
        if complete_listings and not report.aborted:
            self._last_complete_listing = started
            if self.options.propagate_deletes:
                self.deletes.settle(set(self._target_buckets()))
        pending = report.total("delete_pending")
        self.status.update(
            delete_pending=pending,
            last_reconciliation={
                "started": started,
                "finished": time.time(),
                "complete": report.complete,
                "listed": report.total("listed"),
                "copied": report.total("copied"),
                "deleted": report.total("deleted"),
                "delete_pending": pending,
                "delete_refused": report.delete_refused,
                "listing_check": sorted({b.listing_check for b in report.buckets}),
            },
        )
        self.status.add(reconciliations=1)
        if report.delete_refused:
            self.status.error(report.delete_refused)
        if self.stopping:
            return True
        self._recovered()
        self.status.update(phase="following")
        return True

    def pairs(self, src_buckets: list[str]) -> list[BucketPair]:
        """Where each source bucket lands on the target, as the sync engine maps it."""
        limits = self.target_store.capabilities.limits
        return plan_buckets(self.src, self.dst, src_buckets, limits.valid_bucket_name, self.options.sync.bucket_map)

    def _target_buckets(self) -> list[str]:
        return [pair.dst_bucket for pair in self.pairs(self.buckets())]

    def _listing_pass(self) -> bool:
        started = time.time()
        options = replace(
            self.options.sync,
            delete=False,
            delete_delay=None,
            keys=None,
            list_target=False,
            cross_check=False,
            bucket_settings=False,  # carried by the reconciliations only, not every few seconds
        )
        report = self._run_engine(options, "listing")
        if report is None:
            return False
        if all(b.listing_complete for b in report.buckets) and not report.aborted and not self.stopping:
            self._last_complete_listing = started
            self._recovered()
        self._refresh_lag(failed=report.total("failed"))
        return True

    def _feed_pass(self) -> bool:
        assert self.feed is not None
        try:
            events = self.feed.receive(FEED_WAIT if not self.pending else 0)
            if events:
                deadline = time.monotonic() + BATCH_WINDOW
                while time.monotonic() < deadline and len(events) < BATCH_EVENTS:
                    more = self.feed.receive(0)
                    if not more:
                        break
                    events.extend(more)
            backlog = self.feed.backlog()
        except NotFound as error:
            self._fall_back(f"the change feed is gone: {error.message}")
            return True
        except ProviderError as error:
            self._failed("feed", str(error))
            return False
        self.status.update(feed_backlog=backlog)
        followed = self._followed()
        # Another standby's events (a queue shared by mistake) are left alone: not tracked, not
        # acknowledged, so that they are delivered again (to it, eventually).
        events = [event for event in events if event.bucket in followed]
        for event in events:
            self.pending.setdefault((event.bucket, event.key), []).append(event)
            if event.kind == "delete" and self.options.propagate_deletes:
                pair = self.pairs([event.bucket])[0]
                self.deletes.seen_deleted(pair.dst_bucket, pair.dst_key(event.key), event.time)
        self._refresh_lag()
        if not self.pending:
            self._recovered()
            return True
        keys: dict[str, list[str]] = {}
        for bucket, key in self.pending:
            keys.setdefault(bucket, []).append(key)
        failed: set[tuple[str, str]] = set()

        def on_key(kind: str, key: str, detail: str) -> None:
            if kind in ("failed", "unconfirmed", "skipped"):
                failed.update((bucket, key) for bucket in keys)

        options = replace(
            self.options.sync,
            delete=False,
            delete_delay=None,
            keys=keys,
            list_target=False,
            cross_check=False,
            bucket_settings=False,
            on_key=_both(self.options.sync.on_key, on_key),
        )
        report = self._run_engine(options, "feed")
        if report is None:
            return False
        if self.stopping and not report.complete:
            return True
        # Every key was looked up (a failed lookup makes the pass an outage: report is None).
        settled = [(name, events) for name, events in self.pending.items() if name not in failed]
        try:
            self.feed.ack([event for _, events in settled for event in events])
        except ProviderError as error:
            self.status.error(f"feed: acknowledging events failed: {error} (they will be delivered again)")
        for name, _ in settled:
            del self.pending[name]
        self._refresh_lag()
        if not self.pending:
            self._recovered()
        return not self.pending or bool(settled)

    # -- lag and outages ---------------------------------------------------------------------------

    def _refresh_lag(self, failed: int = 0) -> None:
        now = time.time()
        objects, size = self._progress.behind if self._progress is not None else (0, 0)
        oldest: float | None = None
        if self.pending:
            objects += len(self.pending)
            size += sum(events[-1].size or 0 for events in self.pending.values())
            oldest = min(e.time for events in self.pending.values() for e in events)
        backlog = self.status.feed_backlog if self.status.mode == "feed" else None
        objects += (backlog or 0) + failed
        unseen = (
            now - self._last_complete_listing
            if self._last_complete_listing is not None
            else now - self.status.started_at
        )
        if self.status.mode == "listing" and objects:
            oldest = min(oldest or now, self._last_complete_listing or self.status.started_at)
        if self._outage is not None:
            oldest = min(oldest or now, self._outage.since)
        self.status.update(
            behind_objects=objects,
            behind_bytes=size,
            oldest_change_age_s=round(now - oldest, 3) if oldest is not None else 0.0,
            unseen_for_s=round(unseen, 3) if self.status.mode == "listing" else 0.0,
            delete_pending=self.deletes.count if self.options.propagate_deletes else 0,
        )

    def _failed(self, kind: str, message: str) -> None:
        self.status.error(f"{kind}: {message}")
        if self._outage is None:
            self._outage = Outage(time.time(), message)
            self.note(f"{kind} failed: {message}; backing off and trying again")
        else:
            self._outage.error = message
        self.status.update(outage={"since": self._outage.since, "error": message})

    def _recovered(self) -> None:
        outage = self._outage
        if outage is None:
            return
        outage.ended = time.time()
        self._outage = None
        gap = {"since": outage.since, "ended": outage.ended, "seconds": round(outage.seconds, 3), "error": outage.error}
        self.status.update(outage=None, gaps=[*self.status.gaps, gap][-50:])
        self.note(f"caught up after an outage of {outage.seconds:.1f} s ({outage.error})")

    def _back_off(self) -> None:
        if self.stopping:
            return
        outage = self._outage
        seconds = 1.0
        if outage is not None:
            seconds = min(self.options.max_backoff, max(1.0, outage.seconds))
        self.status.update(phase="backing off")
        self._refresh_lag()
        self._stop.wait(seconds)
        if not self.stopping:
            self.status.update(phase="following" if self.status.reconciliations else "initial sync")

    # -- the status file ---------------------------------------------------------------------------

    def _write_status(self) -> None:
        try:
            self.status.write(self.status_path)
        except OSError as error:
            self.note(f"could not write the status file {self.status_path}: {error}")

    def _write_status_loop(self) -> None:
        while True:
            self._write_status()
            if self._stop.wait(self.options.status_every):
                return


def _both(first: Callable[[str, str, str], None] | None, second: Callable[[str, str, str], None]) -> Any:
    if first is None:
        return second

    def both(kind: str, key: str, detail: str) -> None:
        first(kind, key, detail)
        second(kind, key, detail)

    return both
