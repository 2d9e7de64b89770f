"""Inventory and rehost on the lab's real servers: the reference platform seeded on LocalStack
(``aws``), rebuilt as local processes (``onprem``) whose workload really answers HTTP, and in a
second LocalStack region through libcloud's EC2 driver (``aws-west``).

Assertions read the servers independently of failover's adapters where they can: plain boto3 for
LocalStack, plain HTTP for the rebuilt workload."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from failover.lab import LabInfo

from failover.compute import ImageRef, InstanceSpec, InstanceState
from failover.config import Providers
from failover.connect import open_compute
from failover.rehost import FLEET_TAG
from tests.helpers import raw_client, run_cli, unique

WEB = ("--select", "app=social", "--select", "role=web")
WEB_NAMES = ["web-1", "web-2", "web-3"]


@pytest.fixture(scope="module")
def seeded(lab: LabInfo) -> dict[str, Any]:
    result = run_cli("lab", "seed", "--json")
    assert result.code == 0, result.stderr
    again = run_cli("lab", "seed", "--json")
    assert again.code == 0 and again.json["instances"] == result.json["instances"], "seeding twice is harmless"
    return dict(result.json)


def _by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


def _onprem_ids(lab_providers: Providers) -> set[str]:
    with open_compute(lab_providers, "onprem") as compute:
        return {i.id for i in compute.list_instances()}


def _raw_seeded_instances(lab: LabInfo) -> dict[str, dict[str, Any]]:
    ec2 = raw_client(lab, "aws", "ec2")
    found = ec2.describe_instances(
        Filters=[
            {"Name": "tag:failover:lab-seed", "Values": ["1"]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )
    instances = {}
    for reservation in found["Reservations"]:
        for instance in reservation["Instances"]:
            name = {t["Key"]: t["Value"] for t in instance["Tags"]}["Name"]
            instances[name] = instance
    return instances


def test_inventory_of_the_seeded_account(lab: LabInfo, seeded: dict[str, Any]) -> None:
    result = run_cli("inventory", "aws", "--json")
    assert result.code == 0, result.stderr
    found = result.json
    buckets = {b["name"]: b for b in found["buckets"]}
    media = raw_client(lab, "aws", "s3").list_objects_v2(Bucket="media")
    assert buckets["media"]["objects"] == media["KeyCount"] == 50
    assert buckets["media"]["bytes"] == sum(o["Size"] for o in media["Contents"])
    assert "backups" in buckets

    raw = _raw_seeded_instances(lab)
    instances = {name: row for name, row in _by_name(found["instances"]).items() if name in raw}
    assert sorted(instances) == sorted(raw) == ["arm-1", "ml-1", "web-1", "web-2", "web-3", "worker-1"]
    for name, row in instances.items():
        assert row["id"] == raw[name]["InstanceId"]
        assert row["type"] == raw[name]["InstanceType"]
        assert row["tags"]["failover:lab-seed"] == "1"
    assert instances["web-1"]["os"] == "ubuntu 16.04"
    assert instances["arm-1"]["os"] == "amazon-linux 2023"
    assert instances["web-1"]["user_data"] is True and instances["ml-1"]["user_data"] is False
    assert instances["web-1"]["open_ports"] == [22, 8080]
    assert any("io1" in note and "5000" in note for note in instances["worker-1"]["not_portable"])
    assert not instances["web-1"]["not_portable"]

    services = {(n["service"], n["name"]) for n in found["non_portable"]}
    assert {
        ("lambda", "thumbnailer"),
        ("sqs", "upload-events"),
        ("sns", "notifications"),
        ("secretsmanager", "social/db-password"),
    } <= services
    # Labelled with failover lint's rules: one vocabulary for an account and a repository.
    labels = {n["service"]: (n["rule"], n["portability"]) for n in found["non_portable"]}
    assert labels["lambda"] == ("aws-lambda", "proprietary") and labels["sqs"] == ("aws-sqs", "proprietary")
    assert all(n["replacement"] for n in found["non_portable"])
    # What the emulator cannot answer is listed as not checked, never silently left out.
    assert any(note.startswith("dynamodb:") for note in found["unchecked"])
    assert "seeded-by-the-lab" not in result.stdout, "a secret's value never appears"

    text = run_cli("inventory", "aws", "--no-sizes")
    assert text.code == 0
    for expected in ("thumbnailer", "worker-1", "not portable", "io1", "no portable equivalent", "not checked"):
        assert expected in text.stdout


def test_full_fleet_dry_run_reports_what_does_not_carry_and_creates_nothing(
    lab_providers: Providers, seeded: dict[str, Any]
) -> None:
    before = _onprem_ids(lab_providers)
    result = run_cli("rehost", "aws", "onprem", "--select", "failover:lab-seed=1", "--dry-run", "--json")
    assert result.code == 1, "arm-1 cannot be rebuilt on an x86_64 host, so the plan is not clean"
    plan = result.json
    assert plan["dry_run"] is True
    rows = _by_name(plan["instances"])
    assert sorted(rows) == ["arm-1", "ml-1", "web-1", "web-2", "web-3", "worker-1"]
    assert rows["arm-1"]["problems"] and rows["arm-1"]["target_size"] is None
    assert any("GPU" in item for item in rows["ml-1"]["shortfall"])
    assert any("io1" in item for item in rows["worker-1"]["losses"])
    assert rows["web-1"]["target_size"] == "host" and not rows["web-1"]["problems"]
    assert rows["web-1"]["health_check"] == "http://{address}:8080/healthz"
    assert _onprem_ids(lab_providers) == before

    text = run_cli("rehost", "aws", "onprem", "--select", "failover:lab-seed=1", "--dry-run")
    assert text.code == 1
    assert "nothing created" in text.stdout and "arm-1: PROBLEM" in text.stdout
    assert _onprem_ids(lab_providers) == before


def test_rehost_web_fleet_to_onprem_serves_http_and_is_idempotent(
    lab_providers: Providers, seeded: dict[str, Any]
) -> None:
    fleet = unique("web")
    args = ("rehost", "aws", "onprem", *WEB, "--fleet", fleet, "--json", "--yes")
    try:
        first = run_cli(*args)
        assert first.code == 0, first.stdout + first.stderr
        report = first.json
        results = _by_name(report["results"])
        assert sorted(results) == WEB_NAMES
        assert {r["action"] for r in results.values()} == {"created"}
        assert all(r["health"]["healthy"] is True for r in results.values())
        assert report["seconds_to_healthy"] is not None
        addresses = {r["address"] for r in results.values()}
        assert len(addresses) == 3 and all(a.startswith("127.0.0.") for a in addresses)
        for name, r in results.items():
            # The workload itself answers, on its own address, knowing which instance it is.
            page = httpx.get(f"http://{r['address']}:8080/", timeout=5, trust_env=False)
            assert page.status_code == 200 and page.json()["instance"] == name

        again = run_cli(*args)
        assert again.code == 0, again.stdout
        rerun = _by_name(again.json["results"])
        assert {r["action"] for r in rerun.values()} == {"reused"}
        assert {r["target_id"] for r in rerun.values()} == {r["target_id"] for r in results.values()}
        with open_compute(lab_providers, "onprem") as compute:
            assert len(compute.list_instances({FLEET_TAG: fleet})) == 3
            compute.stop(results["web-2"]["target_id"])

        restarted = run_cli(*args)
        assert restarted.code == 0, restarted.stdout
        actions = {name: r["action"] for name, r in _by_name(restarted.json["results"]).items()}
        assert actions == {"web-1": "reused", "web-2": "started", "web-3": "reused"}
        web2 = _by_name(restarted.json["results"])["web-2"]
        assert httpx.get(f"http://{web2['address']}:8080/healthz", timeout=5, trust_env=False).text == "ok"
    finally:
        gone = run_cli("rehost", "aws", "onprem", *WEB, "--fleet", fleet, "--rollback", "--json", "--yes")
    assert gone.code == 0
    assert len(gone.json["destroyed"]) == 3
    with open_compute(lab_providers, "onprem") as compute:
        assert compute.list_instances({FLEET_TAG: fleet}) == []
    for address in addresses:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{address}:8080/healthz", timeout=2, trust_env=False)


def test_rehost_to_own_servers_over_ssh_answers_and_rolls_back_exactly_what_it_placed(
    lab_providers: Providers, seeded: dict[str, Any]
) -> None:
    """The app's fleet rebuilt on the lab's SSH hosts (real sshd on 127.0.1.x): every instance's
    workload answers on its host's address; the rollback stops and removes the fleet and leaves an
    instance someone else placed on the pool alone."""
    fleet = unique("ssh")
    with open_compute(lab_providers, "hosts") as compute:
        spec = InstanceSpec(
            "someone-elses", 1, 256, image=ImageRef("any", "1"), user_data="#!/bin/sh\nexec sleep 600\n"
        )
        other = compute.create(spec, size="host", image="", client_token=unique("other"))
    try:
        args = ("rehost", "aws", "hosts", "--select", "app=social", "--select", "role=web", "--fleet", fleet)
        placed = run_cli(*args, "--json", "--yes")
        assert placed.code == 0, placed.stdout + placed.stderr
        results = _by_name(placed.json["results"])
        assert sorted(results) == WEB_NAMES
        addresses = {r["address"] for r in results.values()}
        assert len(addresses) == 3 and all(a.startswith("127.0.1.") for a in addresses), addresses
        assert compute_address(lab_providers, other.id) not in addresses, "one instance per host"
        for name, r in results.items():
            page = httpx.get(f"http://{r['address']}:8080/", timeout=5, trust_env=False)
            assert page.status_code == 200 and page.json()["instance"] == name
        gone = run_cli(*args, "--rollback", "--json", "--yes")
        assert gone.code == 0, gone.stdout + gone.stderr
        assert len(gone.json["destroyed"]) == 3
        for address in addresses:
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://{address}:8080/healthz", timeout=2, trust_env=False)
        with open_compute(lab_providers, "hosts") as compute:
            assert [i.id for i in compute.list_instances()] == [other.id]
            assert compute.get(other.id).state is InstanceState.RUNNING
    finally:
        with open_compute(lab_providers, "hosts") as compute:
            compute.destroy(other.id)


def compute_address(lab_providers: Providers, instance_id: str) -> str | None:
    with open_compute(lab_providers, "hosts") as compute:
        return compute.get(instance_id).address


def test_failing_health_check_exits_non_zero_naming_the_instances(seeded: dict[str, Any]) -> None:
    fleet = unique("unhealthy")
    base = ("rehost", "aws", "onprem", *WEB, "--fleet", fleet, "--yes")
    try:
        result = run_cli(*base, "--health-check", "http://{address}:9999/healthz", "--health-timeout", "2")
        assert result.code == 1
        for name in WEB_NAMES:
            assert f"{name}: created" in result.stdout and "UNHEALTHY" in result.stdout
        assert "NOT healthy: web-1, web-2, web-3" in result.stdout.replace("\n", " ")
    finally:
        assert run_cli(*base, "--rollback").code == 0


def test_rehost_to_a_second_region_through_libcloud(lab: LabInfo, seeded: dict[str, Any]) -> None:
    fleet = unique("west")
    args = ("rehost", "aws", "aws-west", *WEB, "--fleet", fleet, "--no-health-check", "--json", "--yes")
    west = raw_client(lab, "aws-west", "ec2")
    east = raw_client(lab, "aws", "ec2")

    def fleet_instances() -> list[dict[str, Any]]:
        found = west.describe_instances(
            Filters=[
                {"Name": f"tag:{FLEET_TAG}", "Values": [fleet]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )
        return [i for r in found["Reservations"] for i in r["Instances"]]

    try:
        dry = run_cli(*args, "--dry-run")
        assert dry.code == 0, dry.stdout
        sizes = {row["name"]: row["target_size"] for row in dry.json["instances"]}
        assert sizes == {"web-1": "t3a.small", "web-2": "t3a.small", "web-3": "t3a.medium"}, "cheapest that fits"
        assert fleet_instances() == []

        first = run_cli(*args)
        assert first.code == 0, first.stdout + first.stderr
        assert {r["action"] for r in first.json["results"]} == {"created"}
        created = fleet_instances()
        assert sorted(i["InstanceType"] for i in created) == ["t3a.medium", "t3a.small", "t3a.small"]
        source = _raw_seeded_instances(lab)["web-1"]
        web1 = next(i for i in created if {t["Key"]: t["Value"] for t in i["Tags"]}["Name"] == "web-1")
        user_data = {
            name: base64.b64decode(
                client.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
            )
            for name, client, iid in (("source", east, source["InstanceId"]), ("target", west, web1["InstanceId"]))
        }
        assert user_data["target"] == user_data["source"]

        again = run_cli(*args)
        assert again.code == 0
        assert {r["action"] for r in again.json["results"]} == {"reused"}
        assert len(fleet_instances()) == 3, "a re-run never makes a second instance"
    finally:
        gone = run_cli(*args, "--rollback")
    assert gone.code == 0 and len(gone.json["destroyed"]) == 3
    assert fleet_instances() == []


def test_rehost_input_errors_are_explained(seeded: dict[str, Any]) -> None:
    nothing = run_cli("rehost", "aws", "onprem", "--select", "role=no-such-role", "--dry-run")
    assert nothing.code != 0 and "no instances on aws match" in nothing.stderr
    bad = run_cli("rehost", "aws", "onprem", "--select", "role", "--dry-run")
    assert bad.code != 0 and "KEY=VALUE" in bad.stderr
    storage_only = run_cli("rehost", "aws", "disk", "--dry-run")
    assert storage_only.code != 0 and "no compute service" in storage_only.stderr
