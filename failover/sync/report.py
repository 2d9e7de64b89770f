"""What a sync run did, for people (summary) and scripts (JSON).

The report owns its counters: workers change them only through :meth:`SyncReport.add` and name
keys only through :meth:`SyncReport.name_key`, both under the report's lock. Every key a run
deleted, kept, skipped, failed, repaired, filtered or could not confirm is named, in the report
(beyond ``KEY_LIMIT`` per kind spilled to a temporary file, see :class:`KeyList`) and in the
journal's ``events`` table.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import IO, Any

from ..changes import Action, Change, JsonValue
from ..settings import SettingOutcome

__all__ = [
    "JSON_SCHEMA",
    "KEY_KINDS",
    "KEY_LIMIT",
    "MAX_EXAMPLES",
    "BucketReport",
    "Fidelity",
    "KeyList",
    "SyncReport",
    "iso",
]

MAX_EXAMPLES = 50
KEY_LIMIT = 10_000
JSON_SCHEMA = 1
KEY_KINDS = ("failed", "skipped", "deleted", "kept", "repaired", "unconfirmed", "listing", "filtered", "to_copy")
"""The named-key lists of a report: what went wrong or was changed, key by key (``to_copy``: a dry
run's plan; ``filtered``: left out by --include/--exclude/--min-size/--max-size/--max-age)."""
SAMPLE_EVERY = 0.25
"""Seconds between throughput samples (the HTML report's chart) at the start of a run; the interval
doubles whenever MAX_SAMPLES are reached, so a long run keeps its whole curve in bounded space."""
MAX_SAMPLES = 2000


class KeyList:
    """Named keys of one kind: the first KEY_LIMIT in memory, the rest spilled to a temporary file,
    so a report names every key (a million deletes, a dry run's whole plan) in bounded memory."""

    def __init__(self) -> None:
        self.head: list[dict[str, str]] = []
        self.count = 0
        self._spill: IO[str] | None = None

    def append(self, item: dict[str, str]) -> None:
        self.count += 1
        if len(self.head) < KEY_LIMIT:
            self.head.append(item)
            return
        if self._spill is None:
            self._spill = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - lives as long as the report
        self._spill.write(json.dumps(item, ensure_ascii=False) + "\n")

    def __iter__(self) -> Iterator[dict[str, str]]:
        yield from self.head
        if self._spill is not None:
            self._spill.flush()
            self._spill.seek(0)
            for line in self._spill:
                yield json.loads(line)
            self._spill.seek(0, 2)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: slice) -> list[dict[str, str]]:
        return self.head[index]


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
    filtered: int = 0
    """Left out by the filters (not copied, not counted as listed, never deleted from the target)."""
    to_copy: int = 0
    to_copy_bytes: int = 0
    to_check: int = 0
    """(A dry run) on the target already with the same size, not verified by this journal (copied by
    another run or tool): compared by digest when applied, sent only if the bytes differ."""
    to_check_bytes: int = 0
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
    delete_pending: int = 0
    """Delete candidates not deleted yet: gone from the source for less than the delete delay
    (``failover standby --delete-delay``); a later run deletes them if they stay gone."""
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
    target_listing_check: str = "end confirmed"
    """With --delete, how the target listing (what deletes are chosen from) was confirmed:
    "cross-checked" with the target's second listing mechanism, and how many keys only the second
    listing showed (added to the delete candidates, each still looked up on the source first)."""
    shards: int = 0
    """--cluster: the key ranges the source listing was split into (0: listed in one piece)."""
    settings: list[SettingOutcome] = field(default_factory=list)
    """--bucket-settings: each setting's outcome (carried, translated, not_carried, not_stored, planned)."""


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
    keys: dict[str, KeyList] = field(default_factory=lambda: {kind: KeyList() for kind in KEY_KINDS})
    keys_not_listed: Counter[str] = field(default_factory=Counter)
    """Kept for readers of older reports: every named key is now listed (see KeyList)."""
    on_key: Callable[[str, str, str], None] | None = field(default=None, repr=False)
    """Told of every key named, and of every key copied (kind ``copied``): ``-v`` prints them."""
    samples: list[dict[str, float]] = field(default_factory=list)
    """Throughput over time: seconds since the start, objects and bytes copied by then."""
    _last_sample: float = field(default=0.0, repr=False)
    _sample_every: float = field(default=SAMPLE_EVERY, repr=False)
    delete_refused: str | None = None
    aborted: str | None = None
    auth_failed: bool = False
    """The run stopped because credentials were refused (the CLI exits 4)."""
    stalled: bool = False
    """The run stopped because a provider stopped answering (the CLI exits 3)."""
    interrupted: bool = False
    filters: dict[str, Any] = field(default_factory=dict)
    """The --include/--exclude/size/age filters in effect (empty: none)."""
    cluster: dict[str, Any] | None = None
    """--cluster: the cluster, and per worker objects, bytes sent, busy seconds and rate."""
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
            self.keys[kind].append({"key": key, "detail": detail} if detail else {"key": key})
            if kind == "failed" and len(self.errors) < KEY_LIMIT:
                self.errors.append({"key": key, "error": detail})
        if self.on_key is not None:
            self.on_key(kind, key, detail)

    def copied_key(self, key: str, size: int) -> None:
        """A key was copied and verified: told to ``on_key``, and sampled for the throughput chart."""
        if self.on_key is not None:
            self.on_key("copied", key, f"{size} bytes")
        self.sample()

    def sample(self, *, force: bool = False) -> None:
        """Record objects and bytes copied so far (at most every SAMPLE_EVERY seconds unless ``force``)."""
        now = time.time()
        if force or now - self._last_sample >= self._sample_every:
            with self._lock:
                if len(self.samples) >= MAX_SAMPLES:
                    self.samples = self.samples[::2]
                    self._sample_every *= 2
                self._last_sample = now
                self.samples.append(
                    {
                        "t": round(now - self.started, 3),
                        "objects": float(self.total("copied")),
                        "bytes": float(self.total("copied_bytes")),
                    }
                )

    def error(self, where: str, message: str) -> None:
        with self._lock:
            if len(self.errors) < KEY_LIMIT:
                self.errors.append({"key": where, "error": message})

    # -- what the run amounts to ---------------------------------------------------------------------

    def settings_not_carried(self) -> list[str]:
        """--bucket-settings: "bucket: setting" for every setting that did not reach a target."""
        return [
            f"{b.source}: {o.setting}"
            for b in self.buckets
            for o in b.settings
            if o.outcome in ("not_carried", "not_stored")
        ]

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
            if self.dry_run and b.to_check:
                checked: dict[str, JsonValue] = {"objects": b.to_check, "bytes": b.to_check_bytes}
                out.append(
                    Change(
                        Action.READ,
                        f"{b.target}: objects already there with the source's size",
                        None,
                        checked,
                        "not verified by this journal (copied by another run or tool): compared by digest, "
                        "sent only if different",
                    )
                )
            deletes = b.delete_candidates if self.dry_run else b.deleted
            if deletes:
                what = f"{deletes} object(s) of {b.target} that {b.source} does not hold"
                out.append(Change(Action.DELETE, what, {"objects": deletes}, None))
        return out

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data, naming the first KEY_LIMIT keys of each kind (``keys_counts``
        has how many there are): what the summary, the HTML page, the journal and a playbook's
        state hold. :meth:`write_json` writes the same with every key named."""
        buckets = [asdict(b) for b in self.buckets]
        seconds = self.duration or 1e-9
        copied_bytes = self.total("copied_bytes")
        totals = {
            name: self.total(name)
            for name in (
                "listed",
                "listed_bytes",
                "filtered",
                "to_copy",
                "to_copy_bytes",
                "to_check",
                "to_check_bytes",
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
                "lossless": self.fidelity.lossless and not self.settings_not_carried(),
                "fields_not_carried": dict(self.fidelity.fields_not_carried),
                "settings_not_carried": self.settings_not_carried(),
                "objects_with_tags_not_carried": self.fidelity.objects_with_tags_not_carried,
                "digest_only_in_journal": self.fidelity.digest_only_in_journal,
                "examples": self.fidelity.examples,
            },
            "buckets": buckets,
            "changes": [c.to_json() for c in self.changes()],
            "errors": self.errors,
            "keys": {kind: found[:KEY_LIMIT] for kind, found in self.keys.items()},
            "keys_counts": {kind: len(found) for kind, found in self.keys.items()},
            "samples": self.samples,
            "keys_not_listed": dict(self.keys_not_listed),
            "skipped_keys": [
                {"key": k["key"], "reason": k.get("detail", "")} for k in self.keys["skipped"][:KEY_LIMIT]
            ],
            "filters": self.filters,
            "cluster": self.cluster,
            "delete_refused": self.delete_refused,
            "aborted": self.aborted,
            "auth_failed": self.auth_failed,
            "stalled": self.stalled,
            "interrupted": self.interrupted,
        }

    def write_json(self, write: Callable[[str], object], *, transform: Callable[[str], str] = lambda t: t) -> None:
        """The JSON report with every key named, written in pieces (``transform``, as redaction,
        applies to each): the names of a million keys are streamed from their spill files, never
        held in memory at once. The same document as :meth:`to_json`, ``keys`` complete and last."""
        data = self.to_json()
        data.pop("keys")
        head = json.dumps(data, indent=2, default=str, ensure_ascii=False)
        write(transform(head[: head.rstrip().rindex("}")].rstrip() + ',\n  "keys": {'))
        for number, (kind, found) in enumerate(self.keys.items()):
            write(transform(("," if number else "") + f"\n    {json.dumps(kind)}: ["))
            for index, item in enumerate(found):
                write(transform(("," if index else "") + "\n      " + json.dumps(item, ensure_ascii=False)))
            write("\n    ]" if len(found) else "]")
        write("\n  }\n}\n")
