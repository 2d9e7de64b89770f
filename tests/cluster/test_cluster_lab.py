"""``failover sync --cluster local:2`` on the lab's real servers (LocalStack -> SeaweedFS), with a
Dask LocalCluster of two worker processes. What the target holds is read with plain boto3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from failover.lab import LabInfo

from tests.helpers import all_objects, list_keys, raw_s3, run_cli, seed, unique
from tests.sync.test_sync_lab import dataset

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(tmp_path / "state"))


def bulk(count: int, *, large: int = 0, large_mib: int = 12) -> dict[str, dict[str, Any]]:
    """Small objects under nested and flat prefixes, non-ASCII ones included, and a few large ones."""
    objects: dict[str, dict[str, Any]] = {}
    for n in range(count):
        prefix = ("posts/", "été/", "日本/", "")[n % 4]
        objects[f"{prefix}obj-{n:05d}.bin"] = {"body": os.urandom(50 + n % 3000), "Metadata": {"n": str(n)}}
    for n in range(large):
        objects[f"video/clip-{n}.mp4"] = {"body": os.urandom(large_mib * MIB + n), "ContentType": "video/mp4"}
    return objects


def put_many(client: Any, bucket: str, objects: dict[str, dict[str, Any]]) -> None:
    import concurrent.futures

    client.create_bucket(Bucket=bucket)

    def put(item: tuple[str, dict[str, Any]]) -> None:
        key, spec = item
        extra = {k: v for k, v in spec.items() if k in ("ContentType", "Metadata")}
        client.put_object(Bucket=bucket, Key=key, Body=spec["body"], **extra)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, objects.items()))


def test_a_cluster_copy_equals_a_single_process_copy(lab: LabInfo) -> None:
    """The conformance data set's awkward keys and sizes (part boundaries, empty, long, NFC/NFD),
    with metadata and tags, plus enough small objects that the listing splits into shards: the
    target of a --cluster copy holds exactly what the target of a plain copy holds."""
    source, plain, clustered = unique("cl-src"), unique("cl-plain"), unique("cl-dask")
    aws, onprem = raw_s3(lab, "aws"), raw_s3(lab, "onprem")
    objects = {**dataset(), **bulk(400)}
    seed(aws, source, objects)
    single = run_cli("--json", "sync", f"aws:{source}", f"onprem:{plain}", timeout=600)
    assert single.code == 0, single.stdout[-2000:]
    cluster = run_cli("--json", "sync", f"aws:{source}", f"onprem:{clustered}", "--cluster", "local:2", timeout=600)
    assert cluster.code == 0, cluster.stdout[-3000:] + cluster.stderr[-3000:]
    report = cluster.json
    assert report["complete"] is True
    assert report["totals"]["copied"] == len(objects) == single.json["totals"]["copied"]
    assert report["buckets"][0]["shards"] > 1, "the listing was split"
    assert report["buckets"][0]["listing_check"] == "cross-checked"
    workers = report["cluster"]["workers"]
    assert len(workers) == 2 and all(w["objects"] > 0 for w in workers.values()), workers
    assert sum(w["objects"] for w in workers.values()) == len(objects)
    assert all_objects(onprem, clustered) == all_objects(onprem, plain)
    assert set(list_keys(onprem, clustered)) == set(objects)
    again = run_cli("--json", "sync", f"aws:{source}", f"onprem:{clustered}", "--cluster", "local:2", timeout=600)
    assert again.code == 0 and again.json["totals"]["copied"] == 0, again.stdout[-2000:]
    assert again.json["totals"]["unchanged"] == len(objects)


def seeded_pair(lab: LabInfo, name: str, objects: dict[str, dict[str, Any]]) -> tuple[str, str, Any]:
    """A source bucket on aws holding ``objects``, an empty target bucket on onprem, and a reader of it."""
    source, target = unique(name), unique(f"{name}-dst")
    put_many(raw_s3(lab, "aws"), source, objects)
    onprem = raw_s3(lab, "onprem")
    onprem.create_bucket(Bucket=target)
    return source, target, onprem


def _workers_of(pid: int) -> list[int]:
    """The Dask worker processes a LocalCluster started under ``pid`` (spawned Python children)."""
    found = subprocess.run(
        ["ps", "-ww", "--ppid", str(pid), "-o", "pid=,args="], capture_output=True, text=True, check=False
    )
    return [int(line.split()[0]) for line in found.stdout.splitlines() if "spawn_main" in line]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "failover", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the whole run (workers too) can be killed
    )


def _wait_for(run: subprocess.Popen[str], condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if run.poll() is not None:
            out, err = run.communicate()
            raise AssertionError(f"the run ended ({run.returncode}) before {what}: {out[-2000:]} {err[-2000:]}")
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_worker_killed_mid_run_loses_nothing(lab: LabInfo) -> None:
    """kill -9 of one worker process while it copies: its chunk runs again elsewhere, the run
    exits 0, every object is on the target with its bytes, and no multipart upload is left."""
    objects = bulk(1500, large=4)
    source, target, onprem = seeded_pair(lab, "cl-kill", objects)
    # --bwlimit (per worker) keeps the run going for about ten seconds: the kill lands mid-copy.
    run = _start("--json", "sync", f"aws:{source}", f"onprem:{target}", "--cluster", "local:2", "--bwlimit", "3M")
    try:
        _wait_for(run, lambda: len(_workers_of(run.pid)) == 2, 60, "two workers started")
        victim = _workers_of(run.pid)[0]
        _wait_for(run, lambda: onprem.list_objects_v2(Bucket=target).get("KeyCount", 0) >= 100, 120, "copies began")
        os.kill(victim, signal.SIGKILL)
        out, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert "Traceback" not in err, err[-3000:]
    report = json.loads(out)
    assert run.returncode == 0, (report["errors"][:5], report["totals"])
    held = all_objects(onprem, target)
    assert set(held) == set(objects)
    import hashlib

    assert all(held[k]["sha256"] == hashlib.sha256(v["body"]).hexdigest() for k, v in objects.items())
    assert not onprem.list_multipart_uploads(Bucket=target).get("Uploads"), "no upload left behind"
    dataset_bytes = sum(len(v["body"]) for v in objects.values())
    # What the killed worker had in flight is sent again: at most its chunks in flight (4 threads x
    # a chunk of at most 64 MiB, or one large object) above 1.15x.
    assert report["bytes_sent"] <= 1.15 * dataset_bytes + 4 * 64 * MIB, report["bytes_sent"] / dataset_bytes


def test_the_coordinator_killed_resumes_from_its_journal(lab: LabInfo) -> None:
    """kill -9 of the command and its workers mid-run, then the same command again: it resumes from
    the journal (objects verified before the kill are not sent again) and exits 0."""
    objects = bulk(1500, large=2)
    source, target, onprem = seeded_pair(lab, "cl-coord", objects)
    run = _start("--json", "sync", f"aws:{source}", f"onprem:{target}", "--cluster", "local:2")
    try:
        _wait_for(run, lambda: onprem.list_objects_v2(Bucket=target).get("KeyCount", 0) >= 300, 120, "copies began")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    again = run_cli("--json", "sync", f"aws:{source}", f"onprem:{target}", "--cluster", "local:2", timeout=600)
    assert again.code == 0, again.stdout[-3000:]
    totals = again.json["totals"]
    assert totals["unchanged"] > 0, "what the journal verified before the kill is not copied again"
    assert totals["copied"] + totals["unchanged"] + totals["content_unchanged"] == len(objects), totals
    assert set(list_keys(onprem, target)) == set(objects)
    assert not onprem.list_multipart_uploads(Bucket=target).get("Uploads"), "the killed run's uploads were aborted"
    verify = run_cli("--json", "verify", f"aws:{source}", f"onprem:{target}", timeout=600)
    assert verify.code == 0 and verify.json["matching"] == len(objects), verify.stdout[-2000:]


def test_deletes_wait_for_every_shard_and_spare_what_the_source_holds(lab: LabInfo) -> None:
    """--delete on a sharded listing: only keys no shard listed and the source does not hold are
    deleted; a key in any shard survives."""
    source = unique("cl-del")
    aws, onprem = raw_s3(lab, "aws"), raw_s3(lab, "onprem")
    objects = bulk(600)
    put_many(aws, source, objects)
    stale = {
        f"{prefix}stale-{n}.txt": {"body": b"only on the target"} for n, prefix in enumerate(("", "posts/", "été/"))
    }
    put_many(onprem, source, stale)
    result = run_cli("--json", "sync", f"aws:{source}", f"onprem:{source}", "--delete", "--cluster", "local:2")
    assert result.code == 0, result.stdout[-3000:]
    assert result.json["buckets"][0]["shards"] > 1
    assert result.json["totals"]["deleted"] == len(stale)
    assert set(list_keys(onprem, source)) == set(objects)


def test_a_cluster_that_cannot_be_reached_is_a_clear_error(lab: LabInfo) -> None:
    bucket = unique("cl-none")
    seed(raw_s3(lab, "aws"), bucket, {"a.txt": {"body": b"a"}})
    result = run_cli("sync", f"aws:{bucket}", f"onprem:{bucket}", "--cluster", "tcp://127.0.0.1:9", timeout=120)
    assert result.code == 3, (result.stdout, result.stderr)
    assert "Dask scheduler at tcp://127.0.0.1:9" in result.stderr
    assert "Connection refused" in result.stderr, "said at once, not after the client's connect timeout"
    bad = run_cli("sync", f"aws:{bucket}", f"onprem:{bucket}", "--cluster", "local:zero")
    assert bad.code == 2 and "local:N" in bad.stderr


def test_verify_on_the_cluster_finds_what_is_missing_or_different(lab: LabInfo) -> None:
    """verify --cluster reads and digests both sides on the workers: an object deleted on the target
    and one overwritten there with other bytes of the same size are named, and exit 1."""
    source = unique("cl-verify")
    aws, onprem = raw_s3(lab, "aws"), raw_s3(lab, "onprem")
    objects = bulk(300)
    put_many(aws, source, objects)
    synced = run_cli("sync", f"aws:{source}", f"onprem:{source}", "--cluster", "local:2", timeout=600)
    assert synced.code == 0, synced.stdout[-2000:]
    assert "cluster local:2: 2 worker(s)" in synced.stdout, synced.stdout[-2000:]
    clean = run_cli("--json", "verify", f"aws:{source}", f"onprem:{source}", "--cluster", "local:2", timeout=600)
    assert clean.code == 0 and clean.json["matching"] == len(objects), clean.stdout[-2000:]
    assert clean.json["bytes_compared"] == 2 * sum(len(v["body"]) for v in objects.values())
    gone, changed = sorted(objects)[7], sorted(objects)[123]
    onprem.delete_object(Bucket=source, Key=gone)
    onprem.put_object(Bucket=source, Key=changed, Body=os.urandom(len(objects[changed]["body"])))
    found = run_cli("--json", "verify", f"aws:{source}", f"onprem:{source}", "--cluster", "local:2", timeout=600)
    assert found.code == 1, found.stdout[-2000:]
    assert found.json["missing"] == [f"{source}/{gone}"]
    assert [d["key"] for d in found.json["different"]] == [f"{source}/{changed}"]
    assert found.json["matching"] == len(objects) - 2


class Scheduler:
    """A Dask scheduler (and workers) started apart from the command, on 127.0.0.1."""

    def __init__(self, tmp_path: Path) -> None:
        self.dask = str(Path(sys.executable).with_name("dask"))
        self.info = tmp_path / "scheduler.json"
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def start(self, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
        http = ["--dashboard-address", "127.0.0.1:0"]
        argv = [self.dask, "scheduler", "--host", "127.0.0.1", "--port", "0", *http, "--scheduler-file", str(self.info)]
        process = self.spawn(argv, env)
        _wait_until(lambda: self.info.exists() and "address" in self.info.read_text(), 60, "the scheduler started")
        return json.loads(self.info.read_text())["address"], process

    def worker(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        argv = [self.dask, "worker", "--scheduler-file", str(self.info), "--host", "127.0.0.1", "--nthreads", "2"]
        process = self.spawn(argv, env)
        _wait_until(lambda: _workers_at(self.info) >= 1, 60, "a worker joined")
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(30)


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Scheduler]:
    found = Scheduler(tmp_path)
    try:
        yield found
    finally:
        found.stop()


def test_a_running_scheduler_whose_workers_hold_the_credentials(lab: LabInfo, scheduler: Scheduler) -> None:
    """--cluster tcp://HOST:PORT: a scheduler and a worker started apart from the command. A worker
    without the credentials' variables fails what it is given, naming the variable (it resolves the
    providers file's references itself: none travels with the task); one with them copies."""
    source = unique("cl-tcp")
    aws, onprem = raw_s3(lab, "aws"), raw_s3(lab, "onprem")
    objects = bulk(120)
    put_many(aws, source, objects)
    secrets = {k for k in os.environ if k.startswith("FAILOVER_LAB_") and ("KEY" in k or "SECRET" in k)}
    bare = {k: v for k, v in os.environ.items() if k not in secrets}
    address, _ = scheduler.start(bare)
    worker = scheduler.worker(bare)
    refused = run_cli("--json", "sync", f"aws:{source}", f"onprem:{source}", "--cluster", address, timeout=300)
    assert refused.code != 0, refused.stdout[-2000:]
    assert any(name in refused.stdout for name in secrets), "the error names the missing variable"
    assert not _bucket(onprem, source) or not onprem.list_objects_v2(Bucket=source).get("KeyCount")
    worker.kill()
    worker.wait(30)
    _wait_until(lambda: _workers_at(scheduler.info) == 0, 60, "the worker left")
    scheduler.worker(dict(os.environ))
    copied = run_cli("--json", "sync", f"aws:{source}", f"onprem:{source}", "--cluster", address, timeout=300)
    assert copied.code == 0, copied.stdout[-3000:]
    assert copied.json["totals"]["copied"] == len(objects)
    assert set(list_keys(onprem, source)) == set(objects)


def test_the_scheduler_lost_mid_run_stops_it_clearly_and_the_rerun_resumes(lab: LabInfo, scheduler: Scheduler) -> None:
    objects = bulk(1000, large=3)
    source, target, onprem = seeded_pair(lab, "cl-sched", objects)
    address, process = scheduler.start(dict(os.environ))
    scheduler.worker(dict(os.environ))
    run = _start("sync", f"aws:{source}", f"onprem:{target}", "--cluster", address, "--bwlimit", "2M")
    try:
        _wait_for(run, lambda: onprem.list_objects_v2(Bucket=target).get("KeyCount", 0) >= 50, 120, "copies began")
        process.kill()
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 1, (out[-2000:], err[-2000:])
    assert "Traceback" not in err and "ERROR distributed" not in err, err[-3000:]
    assert "scheduler (" in out + err and "was lost" in out + err and "re-run the same command" in out + err
    again = run_cli("--json", "sync", f"aws:{source}", f"onprem:{target}", timeout=600)
    assert again.code == 0, again.stdout[-2000:]
    totals = again.json["totals"]
    # Verified before the loss (journal), or on the target unreported (recognised by its bytes):
    # either way not sent again.
    assert totals["unchanged"] + totals["content_unchanged"] > 0, totals
    assert totals["copied"] < len(objects), totals
    assert set(list_keys(onprem, target)) == set(objects)


def _wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _workers_at(info: Path) -> int:
    from distributed import Client

    with Client(scheduler_file=str(info), timeout=10) as client:
        return len(client.scheduler_info()["workers"])


def _bucket(client: Any, name: str) -> bool:
    return any(b["Name"] == name for b in client.list_buckets()["Buckets"])


def test_a_large_object_is_spread_over_the_workers_and_proven(lab: LabInfo) -> None:
    """--spread-above: a 40 MiB object goes as part ranges sent by both workers; the target holds
    its bytes (read back with boto3), verify agrees, and --checksum re-reads it against its parts
    digest without sending it again."""
    import hashlib

    objects = {"video/big.mp4": {"body": os.urandom(40 * MIB + 123), "ContentType": "video/mp4"}, **bulk(20)}
    source, target, onprem = seeded_pair(lab, "cl-spread", objects)
    argv = ["--json", "sync", f"aws:{source}", f"onprem:{target}", "--cluster", "local:2", "--spread-above", "16M"]
    copied = run_cli(*argv, timeout=600)
    assert copied.code == 0, copied.stdout[-3000:]
    assert copied.json["multipart"].get("spread") == 1, copied.json["multipart"]
    body = onprem.get_object(Bucket=target, Key="video/big.mp4")
    sent = objects["video/big.mp4"]["body"]
    assert hashlib.sha256(body["Body"].read()).hexdigest() == hashlib.sha256(sent).hexdigest()
    assert body["ContentType"] == "video/mp4"
    assert not onprem.list_multipart_uploads(Bucket=target).get("Uploads")
    verify = run_cli("--json", "verify", f"aws:{source}", f"onprem:{target}", timeout=600)
    assert verify.code == 0 and verify.json["matching"] == len(objects), verify.stdout[-2000:]
    trusted = run_cli("--json", "verify", f"aws:{source}", f"onprem:{target}", "--trust-digests", timeout=600)
    assert trusted.code == 0, trusted.stdout[-2000:]
    again = run_cli(*argv, "--checksum", timeout=600)
    assert again.code == 0, again.stdout[-2000:]
    assert again.json["totals"]["reverified"] == len(objects) and again.json["totals"]["copied"] == 0
