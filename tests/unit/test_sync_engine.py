"""The sync engine and verify, in process, on the memory store with faults injected (the same cases
also run against LocalStack and SeaweedFS in tests/reliability/test_trust.py)."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from failover.errors import ConnectionLost
from failover.location import parse_location
from failover.sync import SyncEngine, SyncOptions, VerifyOptions, run_verify
from failover.sync.journal import Journal, JournalBusy
from failover.testing import MemoryOptions, MemoryStore
from failover.types import ObjectMeta

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    MemoryStore.reset()
    yield
    MemoryStore.reset()


def stores(**options: object) -> tuple[MemoryStore, MemoryStore]:
    source = MemoryStore("src", MemoryOptions(space="source", page_size=100, **options))  # type: ignore[arg-type]
    target = MemoryStore("dst", MemoryOptions(space="target", page_size=100))
    source.create_bucket("bkt")
    return source, target


def age(store: MemoryStore, bucket: str, hours: float = 2) -> None:
    """Make every object of ``bucket`` older (written before the run, as data being evacuated is)."""
    for obj in store.space.buckets[bucket].values():
        obj.modified = datetime.now(UTC) - timedelta(hours=hours)


def seed(store: MemoryStore, count: int, prefix: str = "k/") -> dict[str, bytes]:
    data = {f"{prefix}{i:04d}": os.urandom(64 + i % 50) for i in range(count)}
    for key, body in data.items():
        store.put("bkt", key, body, meta=ObjectMeta(content_type="x/y", user={"n": key}))
    age(store, "bkt")
    return data


def sync(source: MemoryStore, target: MemoryStore, journal: Path, **options: object) -> dict[str, object]:
    engine = SyncEngine(
        source,
        target,
        parse_location("src:bkt"),
        parse_location("dst:bkt"),
        SyncOptions(journal=journal, **options),  # type: ignore[arg-type]
    )
    return engine.run().to_json()


def test_a_listing_that_ends_early_is_continued(tmp_path: Path) -> None:
    source, target = stores()
    data = seed(source, 350)
    source.faults.end_after = 120  # each listing call stops after 120 keys and claims to be done
    report = sync(source, target, tmp_path / "j.sqlite")
    assert report["complete"] and report["totals"]["copied"] == 350
    assert report["totals"]["listing_ended_early"] >= 2
    assert target.objects("bkt") == data


def test_keys_one_listing_leaves_out_are_found_by_the_other_and_nothing_is_deleted(tmp_path: Path) -> None:
    source, target = stores()
    data = seed(source, 300)
    target.create_bucket("bkt")
    for key, body in data.items():  # both sides hold the same objects
        target.put("bkt", key, body)
    source.faults.omit = {"k/0007", "k/0150", "k/0200"}
    report = sync(source, target, tmp_path / "j.sqlite", delete=True)
    assert not report["complete"]
    assert {item["key"] for item in report["keys"]["listing"]} == source.faults.omit
    assert report["totals"]["deleted"] == 0 and "disagree" in str(report["delete_refused"])
    assert target.objects("bkt") == data
    # The last key left out: the confirmation after the end finds it, listing again does not: the
    # listing cannot be trusted, and says so.
    source.faults.omit = {"k/0299"}
    stuck = sync(source, target, tmp_path / "j.sqlite", delete=True)
    assert not stuck["complete"] and "keeps ending its listing" in str(stuck["errors"])
    assert stuck["totals"]["deleted"] == 0 and target.objects("bkt") == data
    source.faults.omit = set()
    again = sync(source, target, tmp_path / "j.sqlite", delete=True)
    assert again["complete"] and again["totals"]["deleted"] == 0


def test_no_delete_of_a_key_the_source_holds_even_when_both_listings_miss_it(tmp_path: Path) -> None:
    source, target = stores()
    data = seed(source, 50)
    target.create_bucket("bkt")
    for key, body in data.items():
        target.put("bkt", key, body)
    target.put("bkt", "stale", b"only on the target")
    source.faults.omit = source.faults.omit_second = {"k/0010"}  # a key no listing shows
    report = sync(source, target, tmp_path / "j.sqlite", delete=True, max_delete_share=0.5)
    assert [item["key"] for item in report["keys"]["deleted"]] == ["stale"]
    assert [item["key"] for item in report["keys"]["kept"]] == ["k/0010"]
    assert "k/0010" in target.objects("bkt")
    journal = Journal(tmp_path / "j.sqlite")
    assert {(kind, key) for kind, _, key, _ in journal.events(run=1)} >= {("deleted", "stale"), ("kept", "k/0010")}
    journal.close()


def test_a_resumed_upload_never_keeps_parts_of_an_older_version(tmp_path: Path) -> None:
    source, target = stores(min_part_size=1 * MIB)
    target = MemoryStore("dst", MemoryOptions(space="target", min_part_size=1 * MIB))
    target.part_size = target.multipart_threshold = 1 * MIB
    old = os.urandom(5 * MIB)
    source.put("bkt", "big", io.BytesIO(old), size=len(old))
    target.faults.raise_on["upload_part"] = (3, RuntimeError("the process died here"))
    first = sync(source, target, tmp_path / "j.sqlite")
    assert not first["complete"] and first["totals"]["failed"] == 1
    new = os.urandom(5 * MIB)
    source.put("bkt", "big", io.BytesIO(new), size=len(new))  # overwritten while the upload waits
    target.faults.raise_on.clear()
    second = sync(source, target, tmp_path / "j.sqlite")
    assert second["complete"], second["errors"]
    assert target.objects("bkt")["big"] == new
    assert second["multipart"].get("abandoned_source_changed") == 1


def test_a_resumed_upload_reuses_parts_proven_to_be_the_bytes(tmp_path: Path) -> None:
    source, target = stores()
    target = MemoryStore("dst", MemoryOptions(space="target", min_part_size=1 * MIB))
    target.part_size = target.multipart_threshold = 1 * MIB
    body = os.urandom(5 * MIB)
    source.put("bkt", "big", io.BytesIO(body), size=len(body))
    target.faults.raise_on["upload_part"] = (4, ConnectionLost("reset"))
    target.retry = target.retry.__class__(max_attempts=1)
    assert not sync(source, target, tmp_path / "j.sqlite")["complete"]
    target.faults.raise_on.clear()
    second = sync(source, target, tmp_path / "j.sqlite")
    assert second["complete"] and target.objects("bkt")["big"] == body
    assert second["multipart"]["parts_reused"] >= 2


def test_the_targets_record_is_not_believed_over_its_bytes(tmp_path: Path) -> None:
    source, target = stores()
    seed(source, 20)
    assert sync(source, target, tmp_path / "j.sqlite")["complete"]
    stored = target.space.buckets["bkt"]["k/0003"]
    stored.data = bytes(len(stored.data))  # same size, same metadata, other bytes
    verify = run_verify(
        source,
        target,
        parse_location("src:bkt"),
        parse_location("dst:bkt"),
        VerifyOptions(journal=tmp_path / "j.sqlite"),
    )
    assert not verify.ok and verify.counts["different"] == 1
    repaired = sync(source, target, tmp_path / "j.sqlite")
    assert repaired["complete"] and repaired["totals"]["copied"] == 1
    assert [item["key"] for item in repaired["keys"]["repaired"]] == ["k/0003"]
    assert target.objects("bkt")["k/0003"] == source.objects("bkt")["k/0003"]


def test_checksum_mode_reads_the_target_again(tmp_path: Path) -> None:
    source, target = stores()
    seed(source, 20)
    assert sync(source, target, tmp_path / "j.sqlite")["complete"]
    target.space.buckets["bkt"]["k/0005"].data = b"x" * len(target.space.buckets["bkt"]["k/0005"].data)
    plain = sync(source, target, tmp_path / "j.sqlite")
    assert plain["totals"]["unchanged"] == 20, "without --checksum the journal's word stands (and says so)"
    checked = sync(source, target, tmp_path / "j.sqlite", checksum=True)
    assert checked["complete"]
    assert checked["totals"]["reverified"] == 19 and checked["totals"]["repaired"] == 1
    assert target.objects("bkt") == source.objects("bkt")


def test_one_run_per_journal(tmp_path: Path) -> None:
    source, target = stores()
    seed(source, 10)
    holder = Journal(tmp_path / "j.sqlite")
    with pytest.raises(JournalBusy, match="in use by another failover run"):
        sync(source, target, tmp_path / "j.sqlite")
    holder.close()
    assert sync(source, target, tmp_path / "j.sqlite")["complete"]


def test_every_worker_exception_is_accounted_for(tmp_path: Path) -> None:
    source, target = stores()
    seed(source, 30)
    source.faults.raise_on["open"] = (-5, KeyError("a bug, not a failover error"))
    report = sync(source, target, tmp_path / "j.sqlite")
    assert not report["complete"]
    assert report["totals"]["failed"] == 26 and len(report["keys"]["failed"]) == 26
    assert all("internal error in a worker: KeyError" in item["detail"] for item in report["keys"]["failed"])
    assert report["totals"]["copied"] + report["totals"]["failed"] == report["totals"]["listed"] == 30


def test_verify_accounts_for_every_comparison(tmp_path: Path) -> None:
    source, target = stores()
    seed(source, 10)
    assert sync(source, target, tmp_path / "j.sqlite")["complete"]
    target.faults.raise_on["open"] = (-1, TypeError("a bug in a reader"))
    report = run_verify(source, target, parse_location("src:bkt"), parse_location("dst:bkt"), VerifyOptions())
    assert not report.ok
    assert report.checked == 10 and report.matching == 0 and len(report.errors) == 10
    assert all("TypeError" in error["error"] for error in report.errors)


def test_two_source_keys_landing_on_one_target_key_are_refused(tmp_path: Path) -> None:
    from failover.sync.keys import encode_key

    source, target = stores()
    source.put("bkt", "photo.jpg", b"the real one")
    source.put("bkt", encode_key("photo.jpg"), b"a literal key that looks encoded")
    age(source, "bkt")
    report = sync(source, target, tmp_path / "j.sqlite")
    assert not report["complete"]
    assert len(report["keys"]["skipped"]) >= 1
    assert all("same target key" in item["detail"] for item in report["keys"]["skipped"])
    assert target.objects("bkt").get("photo.jpg") in (None, b"the real one"), "never overwritten by the other"


def test_a_stalled_target_stops_the_run_within_the_deadline(tmp_path: Path) -> None:
    source, target = stores()
    seed(source, 40)
    target.create_bucket("bkt")
    target.faults.hold = {"put"}  # every write waits, unanswered
    started = time.monotonic()
    # The held writes are answered after 20 s: a run that waited for them would take that long.
    # It stops after the 2 s stall deadline and the 3 s stop grace (about 8 s here, idle); the
    # bound leaves room for a loaded 2-core CI machine (9.2 s seen) and still fails a run that waits.
    holder = threading.Timer(20, target.faults.release.set)
    holder.start()
    try:
        target.retry = target.retry.__class__(max_attempts=2, initial_backoff=0.01)
        engine = SyncEngine(
            source,
            target,
            parse_location("src:bkt"),
            parse_location("dst:bkt"),
            SyncOptions(journal=tmp_path / "j.sqlite", stall_timeout=2, workers=4),
        )
        watchdog_seen = engine.run()
    finally:
        target.faults.release.set()
        holder.cancel()
    assert watchdog_seen.stalled and "has not answered" in str(watchdog_seen.aborted)
    assert time.monotonic() - started < 15
