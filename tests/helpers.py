"""Test helpers: run the CLI, and read the lab's S3 servers with plain boto3, independently of
failover's own adapters, so assertions never trust the code under test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.handlers
import yaml
from botocore.config import Config
from failover.lab import LabInfo


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> CliResult:
    result = subprocess.run(
        [sys.executable, "-m", "failover", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return CliResult(result.returncode, result.stdout, result.stderr)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def raw_client(lab: LabInfo, provider: str, service: str) -> Any:
    """A plain boto3 client for a lab provider's endpoint, region and credentials, configured from
    the lab's providers file."""
    document = yaml.safe_load(lab.providers_file.read_text())["providers"][provider]
    creds = document["credentials"]
    return boto3.client(
        service,
        endpoint_url=document["endpoint"],
        aws_access_key_id=os.environ[creds["key_env"]],
        aws_secret_access_key=os.environ[creds["secret_env"]],
        region_name=document.get("region") or "us-east-1",
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
    )


def azure_blobs(lab: LabInfo, provider: str = "azure") -> Any:
    """Microsoft's own Azure Blob SDK (a BlobServiceClient) for a lab provider: an independent reader
    of what failover wrote through libcloud."""
    from azure.storage.blob import BlobServiceClient

    document = yaml.safe_load(lab.providers_file.read_text())["providers"][provider]
    account = os.environ[document["credentials"]["key_env"]]
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={account};"
        f"AccountKey={os.environ[document['credentials']['secret_env']]};"
        f"BlobEndpoint={document['endpoint']}/{account};"
    )
    return BlobServiceClient.from_connection_string(connection)


def swift_connection(lab: LabInfo, provider: str = "swift") -> Any:
    """python-swiftclient (OpenStack's own Swift client) for a lab provider: an independent reader of
    what failover wrote through libcloud."""
    import swiftclient

    document = yaml.safe_load(lab.providers_file.read_text())["providers"][provider]
    return swiftclient.Connection(
        authurl=document["endpoint"] + "/v1.0",
        user=os.environ[document["credentials"]["key_env"]],
        key=os.environ[document["credentials"]["secret_env"]],
        auth_version="1",
    )


def raw_s3(lab: LabInfo, provider: str) -> Any:
    """A boto3 S3 client for a lab provider."""
    return raw_client(lab, provider, "s3")


def list_keys(client: Any, bucket: str) -> dict[str, dict[str, Any]]:
    """Every object of ``bucket`` (key -> listing entry), listed with plain boto3 page by page with
    StartAfter and without URL encoding: the way LocalStack 2026.3.0 lists non-ASCII keys correctly
    (its continuation tokens fail on them, and its StartAfter comparisons go wrong when keys are
    URL-encoded; see providers/s3/vendors.yaml). An independent reader, not failover's code."""
    handler = botocore.handlers.set_list_objects_encoding_type_url
    client.meta.events.unregister("before-parameter-build.s3.ListObjectsV2", handler)
    found: dict[str, dict[str, Any]] = {}
    last = None
    while True:
        page = client.list_objects_v2(Bucket=bucket, **({"StartAfter": last} if last else {}))
        contents = page.get("Contents", [])
        for item in contents:
            found[item["Key"]] = item
        if not page.get("IsTruncated"):
            return found
        last = contents[-1]["Key"]


def all_objects(client: Any, bucket: str) -> dict[str, dict[str, Any]]:
    """Every object with its sha256, size, metadata and tags, read with plain boto3."""
    found = {}
    for key in list_keys(client, bucket):
        body = client.get_object(Bucket=bucket, Key=key)
        data = body["Body"].read()
        tags = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        found[key] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "content_type": body.get("ContentType"),
            "cache_control": body.get("CacheControl"),
            "content_disposition": body.get("ContentDisposition"),
            "metadata": body.get("Metadata", {}),
            "tags": {t["Key"]: t["Value"] for t in tags},
        }
    return found


def snapshot(client: Any) -> dict[str, dict[str, tuple[int, str]]]:
    """Every bucket and object (size, ETag) a client can see: for 'nothing changed' checks."""
    state = {}
    for bucket in client.list_buckets()["Buckets"]:
        state[bucket["Name"]] = {
            key: (item["Size"], item["ETag"]) for key, item in list_keys(client, bucket["Name"]).items()
        }
    return state


def seed(client: Any, bucket: str, objects: dict[str, dict[str, Any]]) -> None:
    """Create ``bucket`` with boto3 and put ``objects`` (key -> {body, ContentType, ..., tags})."""
    client.create_bucket(Bucket=bucket)
    for key, spec in objects.items():
        extra = {
            k: v for k, v in spec.items() if k in ("ContentType", "CacheControl", "ContentDisposition", "Metadata")
        }
        if "tags" in spec:
            extra["Tagging"] = "&".join(f"{k}={v}" for k, v in spec["tags"].items())
        client.put_object(Bucket=bucket, Key=key, Body=spec["body"], **extra)


def empty_bucket(client: Any, bucket: str) -> None:
    """Delete every object of ``bucket``, its versions and unfinished uploads (the bucket and its
    settings stay)."""
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    keys = [{"Key": key} for key in list_keys(client, bucket)]
    versions = client.list_object_versions(Bucket=bucket)
    keys += [
        {"Key": v["Key"], "VersionId": v["VersionId"]}
        for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
        if v.get("VersionId") not in (None, "null")
    ]
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})


def remove_buckets(client: Any, *, keep: tuple[str, ...]) -> list[str]:
    """Delete every bucket but ``keep`` (emptied first), as far as the server lets: what earlier
    tests left behind. Returns the buckets removed."""
    removed = []
    for bucket in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        if bucket in keep:
            continue
        try:
            empty_bucket(client, bucket)
            client.delete_bucket(Bucket=bucket)
            removed.append(bucket)
        except client.exceptions.ClientError:
            continue  # left as it is: it only costs the account-wide runs time
    return removed
