"""``failover sync`` to and from Azure Blob storage (Azurite) and OpenStack Swift, both through
libcloud's drivers: bytes, metadata and what the target cannot hold, checked with each store's own
SDK (Microsoft's azure-storage-blob, OpenStack's python-swiftclient) and plain boto3, never with
failover's adapters; and a run killed with SIGKILL resumes without sending again what it verified."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from failover.lab import LabInfo

from tests.helpers import all_objects, azure_blobs, raw_s3, run_cli, seed, swift_connection, unique

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(tmp_path / "state"))


def _azure_objects(lab: LabInfo, container: str) -> dict[str, dict[str, Any]]:
    """Every blob of ``container`` as the Azure SDK reads it: sha256, content type, metadata (names
    as stored), ETag."""
    client = azure_blobs(lab).get_container_client(container)
    found = {}
    for blob in client.list_blobs(include=["metadata"]):
        data = client.download_blob(blob.name).readall()
        found[blob.name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": blob.content_settings.content_type,
            "metadata": dict(blob.metadata or {}),
            "etag": blob.etag,
        }
    return found


def _swift_objects(lab: LabInfo, container: str) -> dict[str, dict[str, Any]]:
    """Every object of ``container`` as python-swiftclient reads it."""
    connection = swift_connection(lab)
    found = {}
    for entry in connection.get_container(container, full_listing=True)[1]:
        headers, data = connection.get_object(container, entry["name"])
        found[entry["name"]] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": headers.get("content-type"),
            "metadata": {
                k.removeprefix("x-object-meta-"): v for k, v in headers.items() if k.startswith("x-object-meta-")
            },
            "etag": headers.get("etag"),
        }
    return found


READERS: dict[str, Callable[[LabInfo, str], dict[str, dict[str, Any]]]] = {
    "azure": _azure_objects,
    "swift": _swift_objects,
}
# What each target holds of the source's metadata: names and the fields libcloud's driver carries.
STORED_NAME = {"azure": {"uploaded-by": "uploaded_x002D_by"}, "swift": {}}
NOT_CARRIED = {
    "azure": {"cache_control": 1, "content_disposition": 1},
    "swift": {"cache_control": 1, "content_disposition": 1, "content_language": 1},
}


def _objects() -> dict[str, dict[str, Any]]:
    return {
        "café/naïve.txt": {"body": b"nfc", "ContentType": "text/plain", "Metadata": {"origin": "seed"}},
        "with spaces/and more.txt": {"body": b"spaces", "ContentType": "text/plain"},
        "plus+sign%25.txt": {"body": b"plus", "ContentType": "text/plain"},
        "query?and#fragment.txt": {"body": b"reserved", "ContentType": "text/plain"},
        "emoji/📦.bin": {"body": b"emoji", "ContentType": "application/octet-stream"},
        "empty.bin": {"body": b"", "ContentType": "application/octet-stream"},
        "media/avatar.png": {
            "body": os.urandom(300_000),
            "ContentType": "image/png",
            "CacheControl": "public, max-age=86400",
            "ContentDisposition": 'inline; filename="avatar.png"',
            "ContentLanguage": "en",
            "Metadata": {"uploaded-by": "user 42", "city": "Zurich"},
        },
        # Larger than libcloud's 4 MiB Azure block: a block list of several blocks.
        "video/clip.mp4": {"body": os.urandom(9 * MIB + 7), "ContentType": "video/mp4"},
    }


@pytest.mark.parametrize("cloud", ["azure", "swift"])
def test_aws_to_cloud_and_back_carries_bytes_and_metadata(lab: LabInfo, cloud: str) -> None:
    bucket = unique(f"{cloud}-to")
    objects = _objects()
    s3 = raw_s3(lab, "aws")
    seed(s3, bucket, objects)
    s3.put_object(Bucket=bucket, Key="media/avatar.png", **_put_args(objects["media/avatar.png"]))

    there = run_cli("--json", "sync", f"aws:{bucket}", f"{cloud}:{bucket}")
    assert there.code == 0, there.stderr
    report = there.json
    assert report["complete"] is True
    assert report["verified"]["now"] == len(objects)
    # What libcloud's driver cannot carry is named, never silently dropped.
    assert report["fidelity"]["fields_not_carried"] == NOT_CARRIED[cloud]
    assert report["fidelity"]["lossless"] is False

    held = READERS[cloud](lab, bucket)
    assert set(held) == set(objects)
    for key, spec in objects.items():
        assert held[key]["sha256"] == hashlib.sha256(spec["body"]).hexdigest(), key
        assert held[key]["content_type"] == spec["ContentType"], key
    avatar = held["media/avatar.png"]["metadata"]
    names = STORED_NAME[cloud]
    assert avatar[names.get("uploaded-by", "uploaded-by")] == "user 42"
    assert avatar["city"] == "Zurich"
    assert any(name.startswith("failover") and "sha256" in name for name in avatar), avatar

    check = run_cli("--json", "verify", f"aws:{bucket}", f"{cloud}:{bucket}")
    assert check.code == 0, check.stdout + check.stderr

    back = unique(f"{cloud}-back")
    returned = run_cli("--json", "sync", f"{cloud}:{bucket}", f"aws:{back}")
    assert returned.code == 0, returned.stderr
    again = all_objects(s3, back)
    assert set(again) == set(objects)
    for key, spec in objects.items():
        assert again[key]["sha256"] == hashlib.sha256(spec["body"]).hexdigest(), key
        assert again[key]["content_type"] == spec["ContentType"], key
        user = {k: v for k, v in again[key]["metadata"].items() if not k.startswith("failover-")}
        assert user == spec.get("Metadata", {}), key  # names as the source had them


def _put_args(spec: dict[str, Any]) -> dict[str, Any]:
    """boto3 put_object arguments for a spec (``seed`` leaves Content-Language out)."""
    names = ("ContentType", "CacheControl", "ContentDisposition", "ContentLanguage", "Metadata")
    return {"Body": spec["body"], **{k: v for k, v in spec.items() if k in names}}
