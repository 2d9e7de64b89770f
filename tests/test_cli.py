"""The CLI against the lab: exit codes, messages, JSON, and no secrets or tracebacks in output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from failover.lab import LabInfo


def failover(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "failover", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_providers_check_reports_every_lab_provider(lab: LabInfo) -> None:
    result = failover("--json", "providers", "check", check=True)
    checks = {(c["provider"], c["service"]): c for c in json.loads(result.stdout)["checks"]}
    assert set(checks) == {
        ("aws", "storage"),
        ("aws", "compute"),
        ("aws", "account"),
        ("aws", "dns"),
        ("aws", "feed"),
        ("aws-west", "compute"),
        ("onprem", "storage"),
        ("onprem", "compute"),
        ("onprem", "dns"),
        ("onprem-libcloud", "storage"),
        ("onprem-libcloud", "dns"),
        ("azure", "storage"),
        ("swift", "storage"),
        ("hosts", "compute"),
        ("disk", "storage"),
    }
    for check in checks.values():
        assert check["ok"] and check["authorised"], check
    for service in ("storage", "compute", "dns"):
        assert all("operations" in c["capabilities"] for (_, s), c in checks.items() if s == service)
    assert "multipart" in checks[("aws", "storage")]["capabilities"]["operations"]
    assert "user_data" in checks[("aws-west", "compute")]["capabilities"]["operations"]
    assert "000000000000" in checks[("aws", "account")]["notes"][0], "LocalStack's account id"


def test_wrong_secret_is_reported_as_not_authorised_without_leaking_it(lab: LabInfo) -> None:
    canary = "CANARY-wrong-secret-5f1e2d"
    result = failover("providers", "check", "onprem", env={"FAILOVER_LAB_ONPREM_SECRET_ACCESS_KEY": canary})
    assert result.returncode == 3
    assert "NOT AUTHORISED" in result.stdout
    assert canary not in result.stdout + result.stderr


def test_missing_credentials_variable_is_named(lab: LabInfo) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FAILOVER_LAB_ONPREM_ACCESS_KEY_ID"}
    result = subprocess.run(
        [sys.executable, "-m", "failover", "ls", "onprem:"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 2
    assert "FAILOVER_LAB_ONPREM_ACCESS_KEY_ID" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_provider_and_bad_location(lab: LabInfo) -> None:
    result = failover("ls", "nowhere:bucket")
    assert result.returncode == 2
    assert "unknown provider 'nowhere'" in result.stderr
    assert "known providers: aws, aws-west, azure, disk, hosts, onprem, onprem-libcloud, swift" in result.stderr
    result = failover("ls", "onprem")
    assert result.returncode == 2
    assert "PROVIDER:BUCKET" in result.stderr


def test_missing_bucket_is_a_provider_error(lab: LabInfo) -> None:
    result = failover("ls", "onprem:no-such-bucket-here")
    assert result.returncode == 3
    assert "NoSuchBucket" in result.stderr


def test_bad_providers_file_is_rejected_with_its_location(tmp_path: Path) -> None:
    bad = tmp_path / "providers.yaml"
    bad.write_text("providers:\n  aws:\n    type: s3\n    credentials:\n      secret_access_key: hunter2hunter2\n")
    result = failover("--providers", str(bad), "providers", "list")
    assert result.returncode == 2
    assert f"{bad}:" in result.stderr
    assert "hunter2hunter2" not in result.stderr


def test_lab_status_names_the_s3_server(lab: LabInfo) -> None:
    result = failover("--json", "lab", "status", check=True)
    servers = json.loads(result.stdout)["servers"]
    assert servers["onprem-s3"]["kind"] in ("seaweedfs", "minio", "minio (external)")
    assert servers["localstack"]["healthy"]
    assert servers["onprem-s3"]["healthy"]
    assert "secret_access_key" not in servers["onprem-s3"]
    assert servers["onprem-dns"]["kind"].startswith("powerdns") and servers["onprem-dns"]["healthy"]
    assert "secret_access_key" not in servers["onprem-dns"]
    text = failover("lab", "status", check=True).stdout
    assert servers["onprem-s3"]["kind"] in text


def test_lab_env_exports_and_json(lab: LabInfo) -> None:
    exports = failover("lab", "env", check=True).stdout
    assert "export FAILOVER_PROVIDERS=" in exports
    assert "export FAILOVER_LAB_ONPREM_SECRET_ACCESS_KEY=" in exports
    data = json.loads(failover("--json", "lab", "env", check=True).stdout)
    assert json.loads(failover("lab", "env", "--json", check=True).stdout) == data, "--json may follow the command"
    assert data["servers"]["onprem-s3"]["endpoint"].startswith("http://127.0.0.1:")
    assert data["servers"]["onprem-s3"]["secret_access_key"]
    assert data["env"]["FAILOVER_PROVIDERS"] == str(lab.providers_file)


def test_version_and_help() -> None:
    assert failover("--version", check=True).stdout.startswith("failover, version")
    assert "lab" in failover("--help", check=True).stdout


@pytest.mark.parametrize("args", [["lab", "bogus"], ["ls"], ["providers", "check", "--nope"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert failover(*args).returncode == 2
