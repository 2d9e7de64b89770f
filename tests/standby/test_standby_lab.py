"""``failover standby`` on the lab: LocalStack's S3 notifications to SQS as the change feed,
SeaweedFS as the target. Writes, overwrites and deletes are made with plain boto3, and the target
is read back with plain boto3 (bytes compared by SHA-256): nothing here trusts failover's code."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from failover.lab import LabInfo

from tests.helpers import list_keys, raw_client, raw_s3, run_cli, unique

pytestmark = pytest.mark.timeout(300)


def _bytes(client: Any, bucket: str) -> dict[str, str]:
    try:
        keys = list_keys(client, bucket)
    except client.exceptions.NoSuchBucket:
        return {}
    return {key: hashlib.sha256(client.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() for key in keys}


def _until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what}: not met within {timeout} s")


@pytest.fixture
def setup(lab: LabInfo, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A bucket on aws with objects, a providers file whose aws feed has a queue of its own, and a
    state directory of its own."""
    document = yaml.safe_load(lab.providers_file.read_text())
    queue = unique("sb-queue")
    document["providers"]["aws"]["feed"] = {"type": "sqs", "options": {"queue": queue}}
    providers = tmp_path / "providers.yaml"
    providers.write_text(yaml.safe_dump(document))
    bucket = unique("standby")
    aws, onprem = raw_s3(lab, "aws"), raw_s3(lab, "onprem")
    aws.create_bucket(Bucket=bucket)
    for i in range(5):
        aws.put_object(
            Bucket=bucket, Key=f"before/{i}.txt", Body=f"there before {i}".encode(), ContentType="text/plain"
        )
    env = {"FAILOVER_PROVIDERS": str(providers), "FAILOVER_STATE_DIR": str(tmp_path / "state")}
    yield {"bucket": bucket, "aws": aws, "onprem": onprem, "env": env, "queue": queue, "tmp": tmp_path, "lab": lab}
    run_cli("standby", f"aws:{bucket}", f"onprem:{bucket}", "--teardown-feed", env=env)


class Standby:
    def __init__(self, setup: dict[str, Any], *extra: str) -> None:
        self.status_file = setup["tmp"] / "status.json"
        bucket = setup["bucket"]
        argv = [sys.executable, "-m", "failover", "standby", f"aws:{bucket}", f"onprem:{bucket}"]
        argv += ["--status-file", str(self.status_file), *extra]
        self.process = subprocess.Popen(
            argv,
            env={**os.environ, **setup["env"]},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def status(self) -> dict[str, Any]:
        """The status this process wrote (not an earlier run's file)."""
        try:
            data = dict(json.loads(self.status_file.read_text()))
        except (FileNotFoundError, ValueError):
            return {}
        return data if data.get("pid") == self.process.pid else {}

    def following(self) -> bool:
        assert self.process.poll() is None, self.process.communicate()
        return self.status().get("phase") == "following"

    def stop(self, sig: int = signal.SIGTERM) -> tuple[float, int, str, str]:
        started = time.monotonic()
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=30)
        assert "Traceback" not in err, err
        return time.monotonic() - started, self.process.returncode, out, err


def test_follows_writes_overwrites_and_deletes_made_with_boto3(setup: dict[str, Any]) -> None:
    aws, onprem, bucket = setup["aws"], setup["onprem"], setup["bucket"]
    other = raw_client(setup["lab"], "aws", "sqs").create_queue(QueueName=unique("other-events"))["QueueUrl"]
    other_arn = raw_client(setup["lab"], "aws", "sqs").get_queue_attributes(
        QueueUrl=other, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    aws.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"Id": "the-platforms-own", "QueueArn": other_arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    standby = Standby(
        setup, "--setup-feed", "--propagate-deletes", "--delete-delay", "1s", "--reconcile-every", "1h", "-j", "4"
    )
    _until(standby.following, what="the initial sync")
    assert _bytes(onprem, bucket) == _bytes(aws, bucket)
    assert standby.status()["mode"] == "feed"
    ids = [q["Id"] for q in aws.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]]
    assert sorted(ids) == ["failover-standby", "the-platforms-own"], "setting up the feed dropped a notification"

    lags = []
    for i in range(10):
        key = f"new/{i} with space+plus é.bin"
        aws.put_object(Bucket=bucket, Key=key, Body=os.urandom(1024 * (i + 1)), Metadata={"n": str(i)})
        written = time.monotonic()
        _until(lambda key=key: key in list_keys(onprem, bucket), what=f"{key} on the target")
        lags.append(time.monotonic() - written)
    aws.put_object(Bucket=bucket, Key="before/1.txt", Body=b"overwritten with new bytes", ContentType="text/csv")
    aws.delete_object(Bucket=bucket, Key="before/2.txt")
    _until(lambda: _bytes(onprem, bucket) == _bytes(aws, bucket), what="the target equal to the source")
    head = onprem.head_object(Bucket=bucket, Key="before/1.txt")
    assert head["ContentType"] == "text/csv"
    assert onprem.head_object(Bucket=bucket, Key="new/3 with space+plus é.bin")["Metadata"]["n"] == "3"
    assert max(lags) < 10, lags

    _until(lambda: standby.status().get("behind_objects") == 0, what="nothing behind")
    seconds, code, out, err = standby.stop()
    assert code == 0, err
    assert seconds < 2.0, f"SIGTERM took {seconds:.2f} s"
    assert "standby stopped" in out
    status = run_cli("standby", "status", "--status-file", str(standby.status_file), "--json", env=setup["env"])
    assert status.code == 1, "a stopped standby's status is stale"
    data = status.json
    assert data["running"] is False and data["deletes"] == 1 and data["errors"] == 0
    assert data["copies"] == 5 + 10 + 1

    teardown = run_cli("standby", f"aws:{bucket}", f"onprem:{bucket}", "--teardown-feed", env=setup["env"])
    assert teardown.code == 0, teardown.stderr
    ids = [q["Id"] for q in aws.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]]
    assert ids == ["the-platforms-own"], "teardown removed more (or less) than its own notification"


def test_kill_9_and_restart_copies_nothing_already_verified(setup: dict[str, Any]) -> None:
    aws, onprem, bucket = setup["aws"], setup["onprem"], setup["bucket"]
    first = Standby(setup, "--setup-feed")
    _until(first.following, what="the initial sync")
    for i in range(20):
        aws.put_object(Bucket=bucket, Key=f"during/{i}", Body=f"{i}".encode() * 100)
    _until(lambda: len(list_keys(onprem, bucket)) == 25, what="the writes on the target")
    first.stop(signal.SIGKILL)
    aws.put_object(Bucket=bucket, Key="while-down", Body=b"written while the standby was dead")

    second = Standby(setup)
    _until(second.following, what="the restart's reconciliation")
    reconciliation = second.status()["last_reconciliation"]
    assert reconciliation["listed"] == 26
    assert reconciliation["copied"] == 1, "the restart copied objects an earlier run had verified"
    assert _bytes(onprem, bucket) == _bytes(aws, bucket)
    second.stop()


def test_a_queue_deleted_under_it_falls_back_to_listings(setup: dict[str, Any]) -> None:
    aws, onprem, bucket = setup["aws"], setup["onprem"], setup["bucket"]
    standby = Standby(setup, "--setup-feed", "--interval", "1s")
    _until(standby.following, what="the initial sync")
    sqs = raw_client(setup["lab"], "aws", "sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=setup["queue"])["QueueUrl"])
    aws.put_object(Bucket=bucket, Key="after-the-queue", Body=b"found by listing")
    _until(lambda: "after-the-queue" in list_keys(onprem, bucket), what="the write after the queue was deleted")
    _until(lambda: standby.status().get("mode") == "listing", what="the status saying so", timeout=5)
    status = standby.status()
    assert status["mode"] == "listing"
    assert "gone" in status["feed_fallback"] or "does not exist" in status["feed_fallback"]
    _, code, _, err = standby.stop()
    assert code == 0
    assert "change feed not used" in err


def test_without_a_feed_it_follows_by_listing(setup: dict[str, Any]) -> None:
    aws, onprem, bucket = setup["aws"], setup["onprem"], setup["bucket"]
    standby = Standby(setup, "--no-feed", "--interval", "1s")
    _until(standby.following, what="the initial sync")
    aws.put_object(Bucket=bucket, Key="listed", Body=b"seen by the next listing")
    lag = _until(lambda: "listed" in list_keys(onprem, bucket), what="the write on the target")
    assert lag < 1 + 5
    assert standby.status()["mode"] == "listing"
    standby.stop()


def test_bad_input_is_refused_with_a_message(setup: dict[str, Any]) -> None:
    bucket, env = setup["bucket"], setup["env"]
    no_feed = run_cli("standby", f"onprem:{bucket}", f"aws:{bucket}", "--setup-feed", env=env)
    assert no_feed.code == 2 and "declares no change feed" in no_feed.stderr
    missing = run_cli("standby", "aws:no-such-bucket-here", f"onprem:{bucket}", env=env, timeout=60)
    assert missing.code == 3 and "does not exist" in missing.stderr
    which = run_cli("standby", "status", env=env)
    assert which.code == 2 and "--status-file" in which.stderr
    metrics = run_cli("standby", f"aws:{bucket}", f"onprem:{bucket}", "--metrics", "nowhere", env=env)
    assert metrics.code == 2 and "HOST:PORT" in metrics.stderr
    duration = run_cli("standby", f"aws:{bucket}", f"onprem:{bucket}", "--interval", "soon", env=env)
    assert duration.code == 2 and "not a duration" in duration.stderr


def test_dry_run_plans_and_changes_nothing(setup: dict[str, Any]) -> None:
    aws, onprem, bucket = setup["aws"], setup["onprem"], setup["bucket"]
    result = run_cli("standby", f"aws:{bucket}", f"onprem:{bucket}", "--setup-feed", "--dry-run", "--json",
                     env=setup["env"])  # fmt: skip
    assert result.code == 0, result.stderr
    plan = result.json
    assert plan["kind"] == "standby-plan" and plan["initial_sync"]["totals"]["to_copy"] == 5
    assert any(c["resource"].startswith("queue ") for c in plan["feed_setup"])
    assert "QueueConfigurations" not in aws.get_bucket_notification_configuration(Bucket=bucket)
    assert bucket not in [b["Name"] for b in onprem.list_buckets()["Buckets"]]
