"""Everything at once: a seeded dataset copied through proxies that inject every fault, with
kill -9 at journal points and the target server killed and restarted mid-run, re-run until done.

Pass: an independent reader finds 0 missing or altered objects and metadata intact; no object
verified before a crash is sent again; bytes sent at most 1.15x the dataset; no orphaned multipart
upload; no delete after a listing error; exit code non-zero exactly when something is unverified;
bounded retries; no hang (timeouts on every run)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from failover.capabilities import key_shapes
from failover.registry import declared_storage_capabilities
from tests.helpers import unique
from tests.reliability import dataset
from tests.reliability.conftest import SIZES, Rig
from tests.reliability.faultproxy import Plan

SOURCE_FAULTS = {
    "slowdown": 0.02,
    "slowdown_bare": 0.01,
    "error500": 0.02,
    "reset": 0.02,
    "truncate": 0.02,
    "listing_no_token": 0.2,
    "listing_ends_early": 0.1,
    "listing_omits": 0.1,
    "black_hole": 0.002,
}
TARGET_FAULTS = {
    "slowdown": 0.02,
    "slowdown_bare": 0.01,
    "error500": 0.02,
    "complete_error": 0.4,
    "listing_no_token": 0.2,
    "listing_ends_early": 0.1,
    "listing_omits": 0.1,
    "black_hole": 0.002,
}
# Listing faults make a run incomplete (it says so, and deletes nothing); bounded, so re-runs converge.
LIMITS = {"listing_ends_early": 8, "listing_omits": 4}


def on_target(items: dict[str, dataset.Item]) -> tuple[dict[str, dataset.Item], set[str]]:
    """Where each object must end up on the target (SeaweedFS, by its declaration): under its own
    key, or, for a key it cannot hold, under the documented reversible encoding
    (failover-encoded/ + base64url of the key in 200-character segments), original in metadata."""
    declared = declared_storage_capabilities("s3", {"vendor": "seaweedfs"})
    limit = declared.limits.max_key_segment_bytes
    placed, encoded = {}, set()
    for key, item in items.items():
        fits = all(shape in declared.operations for shape in key_shapes(key)) and not (
            limit and any(len(part.encode()) > limit for part in key.split("/"))
        )
        if fits:
            placed[key] = item
            continue
        token = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
        name = "failover-encoded/" + "/".join(token[i : i + 200] for i in range(0, len(token), 200))
        if len(name.encode()) > declared.limits.max_key_bytes:  # too long even encoded: its digest
            name = "failover-encoded/sha256/" + hashlib.sha256(key.encode()).hexdigest()
        meta = {**item.meta, "failover-source-key": urllib.parse.quote(key, safe="/")}
        placed[name] = dataset.Item(name, item.body, item.content_type, meta)
        encoded.add(key)
    return placed, encoded


def run_sync(rig: Rig, bucket: str, report: Path, *, failpoint: str | None = None, timeout: float = 600) -> int:
    env = {**os.environ, **rig.env}
    env.pop("FAILOVER_FAILPOINTS", None)
    if failpoint:
        env["FAILOVER_FAILPOINTS"] = failpoint
    argv = [sys.executable, "-m", "failover", "-q", "sync", f"src:{bucket}", f"dst:{bucket}", "--delete"]
    argv += ["--invalid-keys", "encode", "--max-workers", "8", "--report", str(report)]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    rig.outputs.append(result.stdout + result.stderr)
    report.with_suffix(".log").write_text(result.stdout + result.stderr)  # beside its report, to explain a failure
    return result.returncode


def journal_of(rig: Rig, bucket: str) -> Path:
    found = list(Path(rig.env["FAILOVER_STATE_DIR"], "journals").glob(f"src-{bucket}-dst-{bucket}-*.sqlite"))
    assert len(found) == 1, found
    return found[0]


def verified_keys(journal: Path) -> set[str]:
    with sqlite3.connect(journal) as db:
        return {row[0] for row in db.execute("SELECT src_key FROM objects WHERE state = 'verified'")}


class SourceChurn(threading.Thread):
    """The platform keeps running during the evacuation: new objects, overwrites and deletes on the
    source while a run is under way. ``items`` is kept equal to what the source holds."""

    def __init__(self, rig: Rig, bucket: str, items: dict[str, dataset.Item], serial: int) -> None:
        super().__init__(daemon=True)
        self.client, self.bucket, self.items, self.serial = rig.reader("source"), bucket, items, serial
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.done = {"created": 0, "overwritten": 0, "deleted": 0}
        self.changed: set[str] = set()
        """Keys the source wrote again: sending them again is right, not a re-send."""
        self.start()

    def run(self) -> None:
        rng = __import__("random").Random(self.serial)
        n = 0
        try:
            while not self.stop.wait(0.05):
                n += 1
                small = sorted(k for k in self.items if k.startswith("small/"))
                choice = n % 3
                if choice == 0 or not small:
                    key = f"churn/{self.serial}/{n:05d}.bin"
                    self._put(dataset.Item(key, rng.randbytes(rng.randrange(1, 4096)), "text/plain", {"churn": "new"}))
                    self.done["created"] += 1
                elif choice == 1:
                    key = rng.choice(small)
                    self._put(dataset.Item(key, rng.randbytes(512), "application/octet-stream", {"churn": "over"}))
                    self.done["overwritten"] += 1
                    self.changed.add(key)
                else:
                    key = rng.choice(small)
                    self.client.delete_object(Bucket=self.bucket, Key=key)
                    del self.items[key]
                    self.done["deleted"] += 1
        except BaseException as error:
            self.error = error

    def _put(self, item: dataset.Item) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=item.key, Body=item.body, ContentType=item.content_type, Metadata=item.meta
        )
        self.items[item.key] = item


class TargetOutage(threading.Thread):
    """Kills the target server once the run has sent ``after`` more requests to it, and starts it
    again a second later. ``error`` holds what went wrong, if anything did."""

    def __init__(self, rig: Rig, after: int) -> None:
        super().__init__(daemon=True)
        self.rig, self.stop = rig, threading.Event()
        self.goal = sum(rig.target_proxy.stats.requests.values()) + after
        self.killed = False
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            while not self.stop.is_set() and sum(self.rig.target_proxy.stats.requests.values()) < self.goal:
                time.sleep(0.02)
            if self.stop.is_set():
                return
            self.rig.target.kill()
            self.killed = True
            time.sleep(1.0)
            self.rig.restart_target()
        except BaseException as error:
            self.error = error


def test_everything_at_once(rig: Rig, record: Any, tmp_path: Path) -> None:
    bucket = unique("chaos")
    items = dataset.build(SIZES["small"], SIZES["large"], SIZES["large_mib"])
    expected, encoded = on_target(items)
    dataset.seed(rig.reader("source"), bucket, items)
    target = rig.reader("target")
    target.create_bucket(Bucket=bucket)
    stale = [f"stale/{n}.txt" for n in range(20)]
    for key in stale:
        target.put_object(Bucket=bucket, Key=key, Body=b"only on the target")
    dataset_bytes = sum(len(i.body) for i in expected.values())

    rig.faults(Plan(11, dict(SOURCE_FAULTS), limit=dict(LIMITS)), Plan(12, dict(TARGET_FAULTS), limit=dict(LIMITS)))
    runs: list[dict[str, Any]] = []
    churned = {"created": 0, "overwritten": 0, "deleted": 0}
    changed_at_source: set[str] = set()
    verified_before: set[str] = set()
    resent_after_crash: set[str] = set()
    deletes_after_listing_error = 0
    # 1: killed at the third commit of verified marks; 2: killed mid multipart upload;
    # 3: the target server killed and restarted under it; then as many plain runs as it takes.
    # The source changes under runs 1 and 3 (new objects, overwrites, deletes).
    plan = ["journal.verified=3", "journal.part=2", "server", None, None, None, None, None, None, None]
    for attempt, step in enumerate(plan):
        report_path = tmp_path / f"run-{attempt}.json"
        report_path.unlink(missing_ok=True)
        chaos = TargetOutage(rig, 150) if step == "server" else None
        churn = SourceChurn(rig, bucket, items, attempt) if attempt in (0, 2) else None
        writes_before = dict(rig.target_proxy.stats.writes_per_key)
        deletes_before = len(rig.target_proxy.stats.deletes)
        code = run_sync(rig, bucket, report_path, failpoint=step if step and step.startswith("journal") else None)
        if chaos:
            chaos.stop.set()
            chaos.join(90)
            assert chaos.error is None, chaos.error
        if churn:
            churn.stop.set()
            churn.join(30)
            assert churn.error is None, churn.error
            for kind, count in churn.done.items():
                churned[kind] += count
            changed_at_source |= churn.changed
            expected, encoded = on_target(items)
        written = {k for k, n in rig.target_proxy.stats.writes_per_key.items() if n > writes_before.get(k, 0)}
        resent_after_crash |= {
            k
            for k in written
            if k.removeprefix(f"/{bucket}/") in verified_before
            and k.removeprefix(f"/{bucket}/") not in changed_at_source
        }
        run: dict[str, Any] = {
            "step": step or "plain",
            "exit": code,
            "bytes_sent": rig.target_proxy.stats.body_bytes,
            "bytes_by_outcome": dict(rig.target_proxy.stats.bytes_by_outcome),
        }
        if chaos:
            run["server_killed"] = chaos.killed
        if code == -9:
            run["killed"] = True
        else:
            report = json.loads(report_path.read_text())
            # With --delete, both listings must be complete for the run to do what it was asked.
            listing_ok = report["aborted"] is None and all(
                b["listing_complete"] and b["target_listing_complete"] and not b["listing_disagreements"]
                for b in report["buckets"]
            )
            deleted_now = len(rig.target_proxy.stats.deletes) - deletes_before
            if not listing_ok:
                deletes_after_listing_error += deleted_now
            unverified = report["totals"]["listed"] - sum(
                b["copied"]
                + b["unchanged"]
                + b["content_unchanged"]
                + b["reverified"]
                + b["server_side"]
                + b["vanished"]
                for b in report["buckets"]
            )
            unconfirmed = report["totals"]["unconfirmed"] + report["totals"]["stopped"]
            # Exit 0 exactly when every object is verified; 1 names what is not.
            assert code in (0, 1), report
            clean = unverified == 0 and listing_ok and report["totals"]["failed"] == 0 and not unconfirmed
            assert (code == 0) == clean, run
            assert code == 0 or report["errors"] or report["aborted"] or not listing_ok or unverified
            run.update(
                complete=report["complete"],
                failed=report["totals"]["failed"],
                skipped=report["totals"]["skipped"],
                retries=sum(report["retries"].values()),
                listing_complete=listing_ok,
                deleted=deleted_now,
            )
        runs.append(run)
        verified_before = verified_keys(journal_of(rig, bucket))
        if code == 0:
            break
    assert runs[-1]["exit"] == 0, runs

    expected, encoded = on_target(items)  # what the source holds now, after the churn
    dataset_bytes = sum(len(i.body) for i in expected.values())
    # Churn deletes only keys it then never writes again: a key the source holds at the end was held
    # all along, and deleting it on the target at any point was wrong.
    deleted_held = [
        path.removeprefix(f"/{bucket}/")
        for path in rig.target_proxy.stats.deletes
        if path.removeprefix(f"/{bucket}/") in expected
    ]
    target = rig.reader("target")  # the server may be on new ports since its restart
    problems = dataset.compare(target, bucket, expected)
    left = dataset.listing(target, bucket)
    sent = rig.target_proxy.stats.body_bytes
    figures = {
        "objects": len(items),
        "holdable": len(expected),
        "stored_encoded": len(encoded),
        "dataset_bytes": dataset_bytes,
        "runs": runs,
        "faults_injected": dict(rig.source_proxy.stats.faults + rig.target_proxy.stats.faults),
        "missing": len(problems["missing"]),
        "altered": len(problems["altered"]),
        "metadata_lost": len(problems["metadata"]),
        "bytes_sent_ratio": round(sent / dataset_bytes, 3),
        "resent_after_crash": len(resent_after_crash),
        "orphaned_uploads": len(dataset.orphans(target, bucket)),
        "deletes_after_listing_error": deletes_after_listing_error,
        "stale_left": sum(1 for key in stale if key in left),
        "max_writes_of_one_key": max(rig.target_proxy.stats.writes_per_key.values()),
        "deleted": rig.target_proxy.stats.deletes,
        "source_changes_during_runs": churned,
        "deleted_while_the_source_held_them": len(deleted_held),
    }
    record("combined", **figures)
    assert problems == {"missing": [], "altered": [], "metadata": []}, problems
    assert figures["resent_after_crash"] == 0
    assert figures["bytes_sent_ratio"] <= 1.15, figures
    assert figures["orphaned_uploads"] == 0
    assert figures["deletes_after_listing_error"] == 0
    assert figures["stale_left"] == 0, "the final complete run deleted what only the target had"
    assert figures["max_writes_of_one_key"] <= 8, "retries are bounded"
    extra, absent = sorted(set(left) - set(expected)), sorted(set(expected) - set(left))
    assert not extra and not absent, (
        f"nothing but the dataset is left on the target: extra {extra}, not listed {absent}"
    )
    assert not deleted_held, "nothing the source still holds was deleted"
