"""``failover sync`` to and from Azure Blob storage (Azurite, through libcloud's Azure Blobs driver):
bytes, metadata and what the target cannot hold, checked with Microsoft's Azure SDK and plain boto3,
never with failover's own adapters; and a run killed with SIGKILL resumes without sending again what
it had verified."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from failover.lab import LabInfo

from tests.helpers import all_objects, azure_blobs, raw_s3, run_cli, seed, unique

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(tmp_path / "state"))


def _objects() -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {
        "café/naïve.txt": {"body": b"nfc", "ContentType": "text/plain", "Metadata": {"origin": "seed"}},
        "with spaces/and more.txt": {"body": b"spaces", "ContentType": "text/plain"},
        "plus+sign%25.txt": {"body": b"plus", "ContentType": "text/plain"},
        "emoji/📦.bin": {"body": b"emoji", "ContentType": "application/octet-stream"},
        "empty.bin": {"body": b"", "ContentType": "application/octet-stream"},
        # Azure takes only identifiers as metadata names: "uploaded-by" is stored escaped.
        "media/avatar.png": {
            "body": os.urandom(300_000),
            "ContentType": "image/png",
            "CacheControl": "public, max-age=86400",
            "Metadata": {"uploaded-by": "user 42", "city": "Zurich"},
        },
        # Larger than libcloud's 4 MiB Azure block: a block list of several blocks.
        "video/clip.mp4": {"body": os.urandom(9 * MIB + 7), "ContentType": "video/mp4"},
    }
    return objects


def _azure_objects(service: Any, container: str) -> dict[str, dict[str, Any]]:
    """Every blob of ``container`` as the Azure SDK reads it: sha256 of the bytes, content type,
    metadata (names as stored)."""
    client = service.get_container_client(container)
    found = {}
    for blob in client.list_blobs(include=["metadata"]):
        data = client.download_blob(blob.name).readall()
        found[blob.name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "ContentType": blob.content_settings.content_type,
            "Metadata": dict(blob.metadata or {}),
            "etag": blob.etag,
        }
    return found


def test_aws_to_azure_and_back_carries_bytes_and_metadata(lab: LabInfo) -> None:
    bucket = unique("az")
    objects = _objects()
    s3 = raw_s3(lab, "aws")
    seed(s3, bucket, objects)

    there = run_cli("--json", "sync", f"aws:{bucket}", f"azure:{bucket}")
    assert there.code == 0, there.stderr
    report = there.json
    assert report["complete"] is True
    assert report["verified"]["now"] == len(objects)
    assert report["totals"]["copied"] == len(objects)
    # Cache-Control is not carried by libcloud's Azure driver: named, never silently dropped.
    assert report["fidelity"]["fields_not_carried"] == {"cache_control": 1}
    assert report["fidelity"]["lossless"] is False

    held = _azure_objects(azure_blobs(lab), bucket)
    assert set(held) == set(objects)
    for key, spec in objects.items():
        assert held[key]["sha256"] == hashlib.sha256(spec["body"]).hexdigest(), key
        assert held[key]["ContentType"] == spec["ContentType"], key
    avatar = held["media/avatar.png"]["Metadata"]
    assert avatar["uploaded_x002D_by"] == "user 42"
    assert avatar["city"] == "Zurich"
    assert "failover_x002D_sha256" in avatar  # the digest failover verified, under an Azure name

    check = run_cli("--json", "verify", f"aws:{bucket}", f"azure:{bucket}")
    assert check.code == 0, check.stdout + check.stderr

    back = unique("az-back")
    returned = run_cli("--json", "sync", f"azure:{bucket}", f"aws:{back}")
    assert returned.code == 0, returned.stderr
    again = all_objects(s3, back)
    assert set(again) == set(objects)
    for key, spec in objects.items():
        assert again[key]["sha256"] == hashlib.sha256(spec["body"]).hexdigest(), key
        assert again[key]["content_type"] == spec["ContentType"], key
        user = {k: v for k, v in again[key]["metadata"].items() if not k.startswith("failover-")}
        assert user == spec.get("Metadata", {}), key  # names unescaped again on the way back


def test_kill_9_mid_sync_to_azure_resumes_without_resending(lab: LabInfo, tmp_path: Path) -> None:
    bucket = unique("az-crash")
    objects = {f"objects/{i:04d}.bin": {"body": os.urandom(2_000 + i)} for i in range(240)}
    seed(raw_s3(lab, "aws"), bucket, objects)
    env = {**os.environ, "FAILOVER_FAILPOINTS": "journal.verified=2"}
    argv = [sys.executable, "-m", "failover", "-q", "--json", "sync", f"aws:{bucket}", f"azure:{bucket}"]
    killed = subprocess.run([*argv, "--max-workers", "8"], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr

    service = azure_blobs(lab)
    before = _azure_objects(service, bucket)
    journals = list((tmp_path / "state" / "journals").glob("*.sqlite"))
    assert len(journals) == 1
    with sqlite3.connect(journals[0]) as db:
        verified = {row[0] for row in db.execute("SELECT src_key FROM objects WHERE state = 'verified'")}
    assert 0 < len(verified) < len(objects)

    resumed = run_cli("--json", "sync", f"aws:{bucket}", f"azure:{bucket}")
    assert resumed.code == 0, resumed.stderr
    after = _azure_objects(service, bucket)
    assert set(after) == set(objects)
    for key, spec in objects.items():
        assert after[key]["sha256"] == hashlib.sha256(spec["body"]).hexdigest(), key
    rewritten = {key for key in verified if after[key]["etag"] != before[key]["etag"]}
    assert rewritten == set(), "nothing verified before the kill was sent again"
