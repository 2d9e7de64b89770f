"""What a sync or verify run did, for people (summary) and scripts (JSON)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MAX_EXAMPLES", "BucketReport", "Fidelity", "SyncReport"]

MAX_EXAMPLES = 50


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
    """Verified by an earlier run and unchanged since: not read, not sent."""
    content_unchanged: int = 0
    """Listed as changed (new ETag) but the same bytes: read and recognised, not sent."""
    server_side: int = 0
    failed: int = 0
    skipped: int = 0
    vanished: int = 0
    target_listed: int = 0
    delete_candidates: int = 0
    deleted: int = 0
    listing_complete: bool = True
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
    buckets: list[BucketReport] = field(default_factory=list)
    fidelity: Fidelity = field(default_factory=Fidelity)
    retries: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    bytes_sent: int = 0
    multipart: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    skipped_keys: list[dict[str, str]] = field(default_factory=list)
    delete_refused: str | None = None
    aborted: str | None = None
    auth_failed: bool = False
    """The run stopped because credentials were refused (the CLI exits 4)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def error(self, key: str, message: str) -> None:
        with self._lock:
            if len(self.errors) < MAX_EXAMPLES:
                self.errors.append({"key": key, "error": message})

    def skip(self, key: str, reason: str) -> None:
        with self._lock:
            if len(self.skipped_keys) < MAX_EXAMPLES:
                self.skipped_keys.append({"key": key, "reason": reason})

    def total(self, name: str) -> int:
        return sum(int(getattr(b, name)) for b in self.buckets)

    @property
    def duration(self) -> float:
        return max(self.finished - self.started, 0.0)

    @property
    def complete(self) -> bool:
        """Every listed object is verified on the target (copied now, or earlier and unchanged)."""
        return (
            self.aborted is None
            and all(b.listing_complete for b in self.buckets)
            and self.total("failed") == 0
            and self.total("skipped") == 0
            and self.delete_refused is None
            and (self.dry_run or self.total("listed") == self.done())
        )

    def done(self) -> int:
        return sum(b.copied + b.unchanged + b.content_unchanged + b.server_side + b.vanished for b in self.buckets)

    def to_json(self) -> dict[str, Any]:
        buckets = [asdict(b) for b in self.buckets]
        seconds = self.duration or 1e-9
        copied_bytes = self.total("copied_bytes")
        return {
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "run": self.run,
            "journal": self.journal,
            "digest": self.digest,
            "verification": self.verification,
            "duration_s": round(self.duration, 3),
            "complete": self.complete,
            "totals": {
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
                    "server_side",
                    "failed",
                    "skipped",
                    "vanished",
                    "delete_candidates",
                    "deleted",
                )
            },
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
            "errors": self.errors,
            "skipped_keys": self.skipped_keys,
            "delete_refused": self.delete_refused,
            "aborted": self.aborted,
            "auth_failed": self.auth_failed,
        }
