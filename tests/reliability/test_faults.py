"""Each fault alone, then crashes: kill -9 at every failpoint of the journal, and the target server
killed and restarted under a running sync. Every case ends with an independent reader's check."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from failover.failpoints import POINTS
from tests.helpers import unique
from tests.reliability import dataset
from tests.reliability.conftest import SIZES, Rig
from tests.reliability.faultproxy import Plan
from tests.reliability.test_scenario import journal_of, on_target, run_sync, verified_keys

MIB = 1024 * 1024

# (fault, which side, rate): each alone, at a rate that hits many requests of a small copy. A
# listing is one or two requests: those fail every time, twice (then the retry gets through).
CASES = [
    ("slowdown", "target", 0.2),
    ("slowdown_bare", "target", 0.2),
    ("error500", "target", 0.2),
    ("reset", "source", 0.2),
    ("truncate", "source", 0.2),
    ("complete_error", "target", 0.6),
    ("listing_no_token", "source", 1.0),
    ("listing_no_token", "target", 1.0),
    ("black_hole", "target", 0.05),
]


def _copy(rig: Rig, items: dict[str, dataset.Item], tmp_path: Path, **run: Any) -> tuple[str, int, dict[str, Any]]:
    bucket = unique("fault")
    dataset.seed(rig.reader("source"), bucket, items)
    rig.reader("target").create_bucket(Bucket=bucket)  # so the target is listed too
    report = tmp_path / f"{bucket}.json"
    code = run_sync(rig, bucket, report, **run)
    return bucket, code, json.loads(report.read_text()) if report.exists() else {}


@pytest.mark.parametrize(("fault", "side", "rate"), CASES, ids=[f"{f}-{s}" for f, s, _ in CASES])
def test_each_fault_alone(rig: Rig, record: Any, tmp_path: Path, fault: str, side: str, rate: float) -> None:
    items = dataset.build(60, 2, 12, seed=len(fault))
    limit = {"listing_no_token": 2} if fault == "listing_no_token" else {}
    plan = Plan(seed=zlib.crc32(f"{fault}-{side}".encode()), rates={fault: rate}, hold=8, limit=limit)
    rig.faults(source=plan if side == "source" else None, target=plan if side == "target" else None)
    started = time.monotonic()
    bucket, code, report = _copy(rig, items, tmp_path)
    proxy = rig.source_proxy if side == "source" else rig.target_proxy
    injected = proxy.stats.faults[fault]
    reruns = 0
    while code != 0 and reruns < 3:  # a fault that outlasts every retry fails that run, never silently
        listed = all(b["listing_complete"] and b["target_listing_complete"] for b in report["buckets"])
        assert report["errors"] or report["aborted"] or not listed, (code, report["totals"], report["skipped_keys"])
        code = run_sync(rig, bucket, tmp_path / "rerun.json")
        reruns += 1
    rig.faults()
    problems = dataset.compare(rig.reader("target"), bucket, on_target(items)[0])
    record(
        f"fault {fault} ({side})",
        injected=injected,
        reruns=reruns,
        seconds=round(time.monotonic() - started, 1),
        missing=len(problems["missing"]),
        altered=len(problems["altered"]),
        metadata_lost=len(problems["metadata"]),
        retries=sum(report.get("retries", {}).values()),
    )
    assert injected > 0, "the fault was injected"
    assert code == 0
    log = [entry for entry in proxy.stats.log if any(m in entry[1] for m in problems["missing"])]
    assert problems == {"missing": [], "altered": [], "metadata": []}, log
    assert dataset.orphans(rig.reader("target"), bucket) == []


@pytest.mark.parametrize("point", sorted(POINTS))
def test_kill_9_at_each_journal_point(rig: Rig, record: Any, tmp_path: Path, point: str) -> None:
    rig.faults()
    items = dataset.build(SIZES["crash_small"], 2, 11, seed=3)
    bucket = unique("crash")
    dataset.seed(rig.reader("source"), bucket, items)
    nth = 1 if point.startswith("journal.upload") else 2
    code = run_sync(rig, bucket, tmp_path / "killed.json", failpoint=f"{point}={nth}")
    assert code == -9, f"the failpoint {point} was reached and killed the run (exit {code})"
    journal = journal_of(rig, bucket)
    verified = verified_keys(journal)
    with sqlite3.connect(journal) as db:
        started_uploads = db.execute("SELECT COUNT(*) FROM objects WHERE upload_id IS NOT NULL").fetchone()[0]
    before = dict(rig.target_proxy.stats.writes_per_key)
    code = run_sync(rig, bucket, tmp_path / "resumed.json")
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    written = {
        k.removeprefix(f"/{bucket}/") for k, n in rig.target_proxy.stats.writes_per_key.items() if n > before.get(k, 0)
    }
    problems = dataset.compare(rig.reader("target"), bucket, on_target(items)[0])
    orphans = dataset.orphans(rig.reader("target"), bucket)
    record(
        f"kill -9 at {point}",
        verified_before_crash=len(verified),
        uploads_in_flight=started_uploads,
        resent_verified=len(written & verified),
        missing=len(problems["missing"]),
        altered=len(problems["altered"]),
        orphans=len(orphans),
    )
    assert code == 0, resumed
    assert not written & verified, "nothing verified before the crash was sent again"
    assert problems == {"missing": [], "altered": [], "metadata": []}
    assert orphans == []


def test_target_server_killed_and_restarted_mid_run(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    items = dataset.build(SIZES["crash_small"], 2, 11, seed=5)
    bucket = unique("restart")
    dataset.seed(rig.reader("source"), bucket, items)
    env = {**rig.env}
    argv = [sys.executable, "-m", "failover", "-q", "sync", f"src:{bucket}", f"dst:{bucket}", "--max-workers", "8"]
    argv += ["--report", str(tmp_path / "first.json")]
    child = subprocess.Popen(argv, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while sum(rig.target_proxy.stats.requests.values()) < 60 and time.monotonic() < deadline:
        time.sleep(0.02)
    rig.target.kill()
    down = time.monotonic()
    restarter = threading.Timer(2.0, rig.restart_target)
    restarter.start()
    first = child.wait(300)
    restarter.join()
    code = first
    runs = 1
    while code != 0 and runs < 4:
        code = run_sync(rig, bucket, tmp_path / f"run-{runs}.json")
        runs += 1
    problems = dataset.compare(rig.reader("target"), bucket, on_target(items)[0])
    record(
        "target killed and restarted",
        first_exit=first,
        runs=runs,
        outage_s=round(time.monotonic() - down, 1) if runs else None,
        bad_gateway_answers=rig.target_proxy.stats.faults["upstream_down"],
        missing=len(problems["missing"]),
        altered=len(problems["altered"]),
        orphans=len(dataset.orphans(rig.reader("target"), bucket)),
    )
    assert code == 0
    assert problems == {"missing": [], "altered": [], "metadata": []}
    assert dataset.orphans(rig.reader("target"), bucket) == []


@pytest.mark.parametrize("side", ["source", "target"])
def test_no_delete_after_a_listing_error(rig: Rig, record: Any, tmp_path: Path, side: str) -> None:
    items = dataset.build(40, 0, 0, seed=9)
    bucket = unique("nodelete")
    dataset.seed(rig.reader("source"), bucket, items)
    target = rig.reader("target")
    target.create_bucket(Bucket=bucket)
    stale = [f"stale/{n}.txt" for n in range(5)]
    for key in stale:
        target.put_object(Bucket=bucket, Key=key, Body=b"only here")
    broken = Plan(seed=1, rates={"listing_no_token": 1.0})  # every listing claims more, never says where
    rig.faults(source=broken if side == "source" else None, target=broken if side == "target" else None)
    code = run_sync(rig, bucket, tmp_path / "broken.json")
    report = json.loads((tmp_path / "broken.json").read_text())
    deletes_while_broken = len(rig.target_proxy.stats.deletes)
    rig.faults()
    clean = run_sync(rig, bucket, tmp_path / "clean.json")
    left = dataset.listing(target, bucket)
    record(
        f"listing always broken ({side}), --delete",
        exit=code,
        deletes=deletes_while_broken,
        delete_refused=report["delete_refused"],
        then_clean_exit=clean,
        stale_left_after_clean_run=sum(1 for key in stale if key in left),
    )
    assert code == 1, "a run with a broken listing is not a success"
    assert deletes_while_broken == 0, "nothing is deleted on the strength of a broken listing"
    assert report["delete_refused"] and "listing" in report["delete_refused"]
    assert clean == 0 and not any(key in left for key in stale)


def test_a_broken_target_listing_sends_nothing_again(rig: Rig, record: Any, tmp_path: Path) -> None:
    """Every target listing page broken on a re-run: objects verified before are confirmed with a
    HEAD (our digest still in their metadata), not sent again; the run refuses to delete and says so."""
    rig.faults()
    items = dataset.build(60, 1, 9, seed=13)
    bucket, code, _ = _copy(rig, items, tmp_path)
    assert code == 0
    rig.faults(target=Plan(seed=4, rates={"listing_no_token": 1.0}))
    code = run_sync(rig, bucket, tmp_path / "again.json")
    report = json.loads((tmp_path / "again.json").read_text())
    heads = rig.target_proxy.stats.requests["head"]
    record(
        "target listing always broken, re-run with --delete",
        exit=code,
        objects=report["totals"]["listed"],
        confirmed_by_head=report["totals"]["unchanged"],
        write_requests=rig.target_writes(),
    )
    assert code == 1 and "the target listing failed" in report["delete_refused"]
    assert report["totals"]["unchanged"] == report["totals"]["listed"] == len(items)
    assert rig.target_writes() == 0, "nothing verified was sent again"
    assert heads >= len(items)
