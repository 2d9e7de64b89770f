"""``failover sync --bucket-settings`` on the lab: a bucket's policy, public read, CORS, lifecycle,
versioning and tags carried from LocalStack to SeaweedFS, Azure (Azurite) and Swift as far as each
holds them, read back with boto3 and proved by anonymous HTTP reads; what a target cannot hold is
named; a dry run writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from failover.lab import LabInfo

from tests.helpers import azure_blobs, raw_s3, run_cli, swift_connection, unique


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(tmp_path / "state"))


def _source_bucket(lab: LabInfo) -> str:
    """A media bucket on aws with the settings a platform's media bucket has."""
    bucket = unique("settings")
    s3 = raw_s3(lab, "aws")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="avatars/a.png", Body=b"\x89PNG avatar", ContentType="image/png")
    statements = [
        {
            "Sid": "Public",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        },
        {
            "Sid": "Listing",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
        },
        {
            "Sid": "Uploader",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::000000000000:role/uploader"},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        },
    ]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    rule = {"AllowedOrigins": ["https://social.example"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 600}
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    expire = {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 3}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [expire]})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "media"}]})
    return bucket


def _outcomes(report: dict[str, Any]) -> dict[str, str]:
    [bucket] = report["buckets"]
    return {
        o["setting"]: o["outcome"]
        for o in bucket["settings"]
        if o["setting"] != "policy" or o["outcome"] != "not_carried"
    }


def _endpoint(lab: LabInfo, provider: str) -> str:
    return str(yaml.safe_load(lab.providers_file.read_text())["providers"][provider]["endpoint"])


def test_settings_carried_to_an_s3_compatible_server_and_read_back(lab: LabInfo) -> None:
    bucket = _source_bucket(lab)
    target = raw_s3(lab, "onprem")
    planned = run_cli("--json", "sync", f"aws:{bucket}", f"onprem:{bucket}", "--bucket-settings", "--dry-run")
    assert planned.code == 0, planned.stderr
    assert set(_outcomes(planned.json).values()) >= {"planned"}
    assert bucket not in [b["Name"] for b in target.list_buckets()["Buckets"]], "a dry run writes nothing"

    result = run_cli("--json", "sync", f"aws:{bucket}", f"onprem:{bucket}", "--bucket-settings")
    assert result.code == 0, result.stdout + result.stderr
    outcomes = _outcomes(result.json)
    for setting in ("public_read", "policy", "cors", "lifecycle", "versioning", "tags"):
        assert outcomes[setting] == "carried", (setting, outcomes)
    assert outcomes["encryption"] == "not_carried"  # SeaweedFS declares why
    [row] = result.json["buckets"]
    dropped = [o["detail"] for o in row["settings"] if o["setting"] == "policy" and o["outcome"] == "not_carried"]
    assert len(dropped) == 1 and "Uploader" in dropped[0] and "000000000000" in dropped[0]
    assert result.json["fidelity"]["lossless"] is False
    assert f"aws:{bucket}: encryption" in " ".join(result.json["fidelity"]["settings_not_carried"])

    # Read back with boto3, independently of failover's adapter.
    policy = json.loads(target.get_bucket_policy(Bucket=bucket)["Policy"])
    actions = sorted(str(s["Action"]) for s in policy["Statement"])
    assert actions == ["s3:GetObject", "s3:ListBucket"], policy
    assert all(bucket in json.dumps(s["Resource"]) for s in policy["Statement"])
    assert target.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["AllowedOrigins"] == ["https://social.example"]
    assert target.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert target.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "media"}]
    assert target.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["Expiration"] == {"Days": 3}
    # Public read means it: an anonymous GET of an object answers.
    anonymous = httpx.get(f"{_endpoint(lab, 'onprem')}/{bucket}/avatars/a.png", timeout=10, trust_env=False)
    assert anonymous.status_code == 200 and anonymous.content == b"\x89PNG avatar"

    again = run_cli("--json", "sync", f"aws:{bucket}", f"onprem:{bucket}", "--bucket-settings")
    assert again.code == 0 and _outcomes(again.json) == outcomes, "a re-run carries the same, harmlessly"


@pytest.fixture
def azure_account_cors(lab: LabInfo) -> Iterator[Any]:
    """The Azure account's own CORS rules, put back after the test (they are the whole account's)."""
    service = azure_blobs(lab)
    before = service.get_service_properties()["cors"]
    yield service
    service.set_service_properties(cors=before)


def _anonymous_url(lab: LabInfo, cloud: str, bucket: str) -> str:
    if cloud == "azure":
        return f"{_endpoint(lab, 'azure')}/{result_account(lab)}/{bucket}/avatars/a.png"
    return f"{_endpoint(lab, 'swift').removesuffix('/auth')}/v1/AUTH_failover/{bucket}/avatars/a.png"


def test_settings_translated_for_swift_as_container_metadata(lab: LabInfo) -> None:
    bucket = _source_bucket(lab)
    planned = run_cli("--json", "sync", f"aws:{bucket}", f"swift:{bucket}", "--bucket-settings", "--dry-run")
    assert planned.code == 0, planned.stdout + planned.stderr
    [row] = planned.json["buckets"]
    plan = {o["setting"]: o for o in row["settings"] if o["outcome"] == "planned"}
    assert "one origin list" in plan["cors"]["detail"] and "every method" in plan["cors"]["detail"], plan

    result = run_cli("--json", "sync", f"aws:{bucket}", f"swift:{bucket}", "--bucket-settings")
    assert result.code == 0, result.stdout + result.stderr
    outcomes = _outcomes(result.json)
    assert outcomes["public_read"] == "translated" and outcomes["cors"] == "translated", outcomes
    assert outcomes["versioning"] == "carried" and outcomes["tags"] == "carried", outcomes
    assert outcomes["lifecycle"] == "not_carried" and outcomes["encryption"] == "not_carried", outcomes

    # Read back with OpenStack's own client, and asked of the proxy as a browser would.
    headers = swift_connection(lab).head_container(bucket)
    assert headers["x-container-meta-access-control-allow-origin"] == "https://social.example"
    assert headers["x-container-meta-access-control-max-age"] == "600"
    assert headers["x-container-meta-team"] == "media"
    assert headers["x-versions-enabled"] == "True"
    url = _anonymous_url(lab, "swift", bucket)
    preflight = httpx.options(
        url,
        headers={"Origin": "https://social.example", "Access-Control-Request-Method": "GET"},
        timeout=10,
        trust_env=False,
    )
    assert preflight.status_code == 200, preflight.text[:300]
    assert preflight.headers["access-control-allow-origin"] == "https://social.example"
    other = httpx.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}, trust_env=False
    )
    assert other.status_code == 401, "an origin the source did not allow is refused"
    anonymous = httpx.get(url, timeout=10, trust_env=False)
    assert anonymous.status_code == 200 and anonymous.content == b"\x89PNG avatar", anonymous.text[:300]

    # And back: Swift's one rule is S3's to hold as it is.
    back = unique("settings-back")
    returned = run_cli("--json", "sync", f"swift:{bucket}", f"aws:{back}", "--bucket-settings")
    assert returned.code == 0, returned.stdout + returned.stderr
    s3 = raw_s3(lab, "aws")
    [rule] = s3.get_bucket_cors(Bucket=back)["CORSRules"]
    assert rule["AllowedOrigins"] == ["https://social.example"] and rule["MaxAgeSeconds"] == 600
    assert s3.get_bucket_tagging(Bucket=back)["TagSet"] == [{"Key": "team", "Value": "media"}]
    assert s3.get_bucket_versioning(Bucket=back)["Status"] == "Enabled"


def test_cors_added_to_the_azure_accounts_rules_and_public_read_translated(
    lab: LabInfo, azure_account_cors: Any
) -> None:
    from azure.storage.blob import CorsRule

    theirs = CorsRule(["https://admin.example"], ["PUT"], max_age_in_seconds=60)
    azure_account_cors.set_service_properties(cors=[theirs])
    bucket = _source_bucket(lab)
    result = run_cli("--json", "sync", f"aws:{bucket}", f"azure:{bucket}", "--bucket-settings")
    assert result.code == 0, result.stdout + result.stderr
    outcomes = _outcomes(result.json)
    assert outcomes["public_read"] == "translated" and outcomes["cors"] == "translated", outcomes
    [row] = result.json["buckets"]
    [cors] = [o for o in row["settings"] if o["setting"] == "cors"]
    assert "every container of the account" in cors["detail"] and "1 new, 2 there now" in cors["detail"], cors
    for setting in ("lifecycle", "versioning", "tags"):
        assert outcomes[setting] == "not_carried", (setting, outcomes)
    assert outcomes["encryption"] == "translated"

    # Read back with Microsoft's SDK: the account's own rule is still there, the bucket's is added.
    rules = azure_account_cors.get_service_properties()["cors"]
    assert [(r.allowed_origins, r.allowed_methods) for r in rules] == [
        ("https://admin.example", "PUT"),
        ("https://social.example", "GET"),
    ]
    assert rules[1].max_age_in_seconds == 600
    again = run_cli("--json", "sync", f"aws:{bucket}", f"azure:{bucket}", "--bucket-settings")
    assert again.code == 0, again.stdout + again.stderr
    assert len(azure_account_cors.get_service_properties()["cors"]) == 2, "a re-run adds no rule twice"
    anonymous = httpx.get(_anonymous_url(lab, "azure", bucket), timeout=10, trust_env=False)
    assert anonymous.status_code == 200 and anonymous.content == b"\x89PNG avatar", anonymous.text[:300]


def test_cors_not_carried_when_the_azure_account_is_full(lab: LabInfo, azure_account_cors: Any) -> None:
    from azure.storage.blob import CorsRule

    full = [CorsRule([f"https://site{i}.example"], ["GET"]) for i in range(5)]
    azure_account_cors.set_service_properties(cors=full)
    bucket = _source_bucket(lab)
    result = run_cli("--json", "sync", f"aws:{bucket}", f"azure:{bucket}", "--bucket-settings")
    assert result.code == 0, result.stdout + result.stderr
    [row] = result.json["buckets"]
    [cors] = [o for o in row["settings"] if o["setting"] == "cors"]
    assert cors["outcome"] == "not_carried" and "at most 5" in cors["detail"], cors
    assert "cors" in " ".join(result.json["fidelity"]["settings_not_carried"])
    assert len(azure_account_cors.get_service_properties()["cors"]) == 5, "the account's rules are untouched"


def result_account(lab: LabInfo) -> str:
    return lab.servers["azure-blob"].access_key_id


def test_public_objects_keep_their_acl_or_make_the_bucket_public_only_when_all_are(lab: LabInfo) -> None:
    """Objects public-read by their own ACL: the same ACL on a target with per-object ACLs (a second
    LocalStack bucket); on SeaweedFS (no honoured object ACLs) the bucket is made public only when
    every object is public, and a mix is named instead of exposing the private ones."""
    s3 = raw_s3(lab, "aws")
    mixed = unique("acl-mixed")
    s3.create_bucket(Bucket=mixed)
    s3.put_object(Bucket=mixed, Key="public.png", Body=b"open", ACL="public-read")
    s3.put_object(Bucket=mixed, Key="private.txt", Body=b"closed")

    same = run_cli("--json", "sync", f"aws:{mixed}", f"aws:{mixed}-copy", "--bucket-settings")
    assert same.code == 0, same.stdout + same.stderr
    acl = {o["setting"]: o for o in same.json["buckets"][0]["settings"]}["object_acls"]
    assert acl["outcome"] == "carried" and acl["detail"].startswith("1 of 2")
    grants = {
        key: [g["Grantee"].get("URI") for g in s3.get_object_acl(Bucket=f"{mixed}-copy", Key=key)["Grants"]]
        for key in ("public.png", "private.txt")
    }
    assert "http://acs.amazonaws.com/groups/global/AllUsers" in grants["public.png"]
    assert "http://acs.amazonaws.com/groups/global/AllUsers" not in grants["private.txt"]

    onprem = run_cli("--json", "sync", f"aws:{mixed}", f"onprem:{mixed}", "--bucket-settings")
    assert onprem.code == 0, onprem.stdout + onprem.stderr
    acl = {o["setting"]: o for o in onprem.json["buckets"][0]["settings"]}["object_acls"]
    assert acl["outcome"] == "not_carried" and "would expose" in acl["detail"]
    closed = httpx.get(f"{_endpoint(lab, 'onprem')}/{mixed}/private.txt", timeout=10, trust_env=False)
    assert closed.status_code == 403, "the private object stays private"

    everyone = unique("acl-all")
    s3.create_bucket(Bucket=everyone)
    for key in ("a.png", "b.png"):
        s3.put_object(Bucket=everyone, Key=key, Body=key.encode(), ACL="public-read")
    opened = run_cli("--json", "sync", f"aws:{everyone}", f"onprem:{everyone}", "--bucket-settings")
    assert opened.code == 0, opened.stdout + opened.stderr
    acl = {o["setting"]: o for o in opened.json["buckets"][0]["settings"]}["object_acls"]
    assert acl["outcome"] == "translated", acl
    anonymous = httpx.get(f"{_endpoint(lab, 'onprem')}/{everyone}/a.png", timeout=10, trust_env=False)
    assert anonymous.status_code == 200 and anonymous.content == b"a.png"
