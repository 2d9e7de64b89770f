"""What a sync run did, for people (summary) and scripts (JSON).

The report owns its counters: workers change them only through :meth:`SyncReport.add` and name
keys only through :meth:`SyncReport.name_key`, both under the report's lock. Every key a run
deleted, kept, skipped, failed, repaired, or could not confirm is named (up to ``KEY_LIMIT`` per
kind in the report; all of them in the journal's ``events`` table).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from ..changes import Action, Change, JsonValue

__all__ = ["JSON_SCHEMA", "KEY_KINDS", "KEY_LIMIT", "MAX_EXAMPLES", "BucketReport", "Fidelity", "SyncReport", "iso"]

MAX_EXAMPLES = 50
KEY_LIMIT = 10_000
JSON_SCHEMA = 1
KEY_KINDS = ("failed", "skipped", "deleted", "kept", "repaired", "unconfirmed", "listing")
"""The named-key lists of a report: what went wrong or was changed, key by key."""


def iso(timestamp: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC (what every JSON report carries)."""
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class BucketReport:
    source: str
    target: str
    mapped_because: str | None = None
    created: bool = False
    listed: int = 0
    listed_bytes: int = 0
    to_copy: int = 0
    to_copy_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    unchanged: int = 0
    """Verified by an earlier run and unchanged since: not read, not sent (the journal's word)."""
    content_unchanged: int = 0
    """Listed as changed (new ETag) but the same bytes, read on both sides: not sent."""
    reverified: int = 0
    """--checksum: verified earlier, and the target's bytes read again and found the same."""
    repaired: int = 0
    """The target held other bytes than recorded (found by re-reading): sent again."""
    server_side: int = 0
    failed: int = 0
    skipped: int = 0
    vanished: int = 0
    stopped: int = 0
    """Not attempted: the run stopped first (interrupted, or a provider stopped answering)."""
    target_listed: int = 0
    delete_candidates: int = 0
    deleted: int = 0
    kept: int = 0
    """Delete candidates kept because the source holds them after all (asked key by key)."""
    unconfirmed: int = 0
    """Copied, but the target's listing afterwards does not show them under their names."""
    listing_complete: bool = True
    listing_check: str = "end confirmed"
    """How the source listing was confirmed: "cross-checked" (with the store's second listing
    mechanism), "end confirmed" (asked again after its last key), or why it could not be."""
    listing_ended_early: int = 0
    """Times a listing claimed to be complete and more keys were found after its end."""
    listing_disagreements: int = 0
    """Keys the two listings disagree on that are not explained by changes during the run."""
    target_listing_complete: bool = True


@dataclass
class Fidelity:
    """Metadata that could not be carried to the target. Nothing is dropped silently: every field
    the source had and the target cannot hold is counted here, with examples."""

    fields_not_carried: Counter[str] = field(default_factory=Counter)
    objects_with_tags_not_carried: int = 0
    digest_only_in_journal: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def note(self, key: str, lost: list[str]) -> None:
        for name in lost:
            self.fields_not_carried[name] += 1
        if lost and len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"key": key, "not_carried": lost})

    @property
    def lossless(self) -> bool:
        return not self.fields_not_carried and not self.objects_with_tags_not_carried


_COUNTERS = frozenset(f.name for f in fields(BucketReport) if f.type in ("int", int))


@dataclass
class SyncReport:
    source: str
    target: str
    dry_run: bool
    journal: str
    run: int = 0
    started: float = 0.0
    finished: float = 0.0
    digest: str = "sha256"
    verification: str = ""
    checksum: bool = False
    """--checksum: every object verified earlier was read again on the target."""
    buckets: list[BucketReport] = field(default_factory=list)
    fidelity: Fidelity = field(default_factory=Fidelity)
    retries: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    bytes_sent: int = 0
    multipart: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    """Failures that are not about one key (a listing, a bucket), and every failed key's error."""
    keys: dict[str, list[dict[str, str]]] = field(default_factory=lambda: {kind: [] for kind in KEY_KINDS})
    keys_not_listed: Counter[str] = field(default_factory=Counter)
    """Named keys beyond KEY_LIMIT per kind (the journal's events table has them all)."""
    delete_refused: str | None = None
    aborted: str | None = None
    auth_failed: bool = False
    """The run stopped because credentials were refused (the CLI exits 4)."""
    stalled: bool = False
    """The run stopped because a provider stopped answering (the CLI exits 3)."""
    interrupted: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- the one way counters change -----------------------------------------------------------------

    def add(self, bucket: BucketReport, **amounts: int) -> None:
        """Add to ``bucket``'s counters, atomically (workers report concurrently)."""
        unknown = set(amounts) - _COUNTERS
        if unknown:
            raise AttributeError(f"no such counter: {', '.join(sorted(unknown))}")
        with self._lock:
            for name, amount in amounts.items():
                setattr(bucket, name, getattr(bucket, name) + amount)

    def name_key(self, kind: str, key: str, detail: str = "") -> None:
        """Name one key of a kind in KEY_KINDS (failed keys also go into ``errors``)."""
        with self._lock:
            listed = self.keys[kind]
            if len(listed) < KEY_LIMIT:
                listed.append({"key": key, "detail": detail} if detail else {"key": key})
            else:
                self.keys_not_listed[kind] += 1
            if kind == "failed" and len(self.errors) < KEY_LIMIT:
                self.errors.append({"key": key, "error": detail})

    def error(self, where: str, message: str) -> None:
        with self._lock:
            if len(self.errors) < KEY_LIMIT:
                self.errors.append({"key": where, "error": message})

    # -- what the run amounts to ---------------------------------------------------------------------

    def total(self, name: str) -> int:
        return sum(int(getattr(b, name)) for b in self.buckets)

    @property
    def duration(self) -> float:
        return max(self.finished - self.started, 0.0)

    def verified_now(self) -> int:
        return sum(b.copied + b.content_unchanged + b.reverified + b.server_side for b in self.buckets)

    def done(self) -> int:
        return self.verified_now() + sum(b.unchanged + b.vanished for b in self.buckets)

    @property
    def complete(self) -> bool:
        """Every listed object is verified on the target (now, or by an earlier run and unchanged),
        both ways of listing agree, and everything copied shows in the target's listing."""
        return (
            self.aborted is None
            and not self.errors
            and all(b.listing_complete and not b.listing_disagreements for b in self.buckets)
            and self.total("failed") == 0
            and self.total("skipped") == 0
            and self.total("unconfirmed") == 0
            and self.total("stopped") == 0
            and self.delete_refused is None
            and (self.dry_run or self.total("listed") == self.done())
        )

    def changes(self) -> list[Change]:
        """What the run would change (a dry run) or changed, per bucket: a target bucket created,
        objects copied, target objects deleted."""
        out = []
        for b in self.buckets:
            if b.created:
                out.append(Change(Action.CREATE, f"bucket {b.target}"))
            copies, size = (b.to_copy, b.to_copy_bytes) if self.dry_run else (b.copied, b.copied_bytes)
            if copies:
                detail = f"{b.unchanged} unchanged" + (f", {b.skipped} skipped" if b.skipped else "")
                after: dict[str, JsonValue] = {"objects": copies, "bytes": size}
                out.append(Change(Action.COPY, f"{b.source} -> {b.target}", None, after, detail))
            deletes = b.delete_candidates if self.dry_run else b.deleted
            if deletes:
                what = f"{deletes} object(s) of {b.target} that {b.source} does not hold"
                out.append(Change(Action.DELETE, what, {"objects": deletes}, None))
        return out

    def to_json(self) -> dict[str, Any]:
        buckets = [asdict(b) for b in self.buckets]
        seconds = self.duration or 1e-9
        copied_bytes = self.total("copied_bytes")
        totals = {
            name: self.total(name)
            for name in (
                "listed",
                "listed_bytes",
                "to_copy",
                "to_copy_bytes",
                "copied",
                "copied_bytes",
                "unchanged",
                "content_unchanged",
                "reverified",
                "repaired",
                "server_side",
                "failed",
                "skipped",
                "vanished",
                "stopped",
                "unconfirmed",
                "delete_candidates",
                "deleted",
                "kept",
                "listing_ended_early",
                "listing_disagreements",
            )
        }
        return {
            "schema": JSON_SCHEMA,
            "kind": "sync",
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "run": self.run,
            "journal": self.journal,
            "digest": self.digest,
            "verification": self.verification,
            "checksum": self.checksum,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "duration_s": round(self.duration, 3),
            "complete": self.complete,
            "verified": {
                "now": self.verified_now(),
                "earlier_unchanged": self.total("unchanged"),
                "how_earlier": "verified by an earlier run, unchanged at the source and listed on the target with "
                "its size; the bytes were not read again (--checksum reads them)",
            },
            "totals": totals,
            "throughput": {
                "objects_per_s": round(self.total("copied") / seconds, 1),
                "bytes_per_s": round(copied_bytes / seconds),
            },
            "bytes_read": self.bytes_read,
            "bytes_sent": self.bytes_sent,
            "retries": self.retries,
            "multipart": dict(self.multipart),
            "fidelity": {
                "lossless": self.fidelity.lossless,
                "fields_not_carried": dict(self.fidelity.fields_not_carried),
                "objects_with_tags_not_carried": self.fidelity.objects_with_tags_not_carried,
                "digest_only_in_journal": self.fidelity.digest_only_in_journal,
                "examples": self.fidelity.examples,
            },
            "buckets": buckets,
            "changes": [c.to_json() for c in self.changes()],
            "errors": self.errors,
            "keys": self.keys,
            "keys_not_listed": dict(self.keys_not_listed),
            "skipped_keys": [{"key": k["key"], "reason": k.get("detail", "")} for k in self.keys["skipped"]],
            "delete_refused": self.delete_refused,
            "aborted": self.aborted,
            "auth_failed": self.auth_failed,
            "stalled": self.stalled,
            "interrupted": self.interrupted,
        }
