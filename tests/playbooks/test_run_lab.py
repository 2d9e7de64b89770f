"""Playbook runs on the lab's real servers: the README's main job end to end (evacuate, resume,
fail back, roll back), a dry-run that changes nothing on any server, kill -9 in the middle of a run,
approvals, rollback handlers, budgets and preflight.

Assertions read the servers with plain clients (boto3, httpx, dnspython), not failover's adapters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import dns.message
import dns.query
import httpx
import pytest
import yaml
from failover.lab import LabInfo
from failover.lab.seed import MEDIA_BUCKETS

from tests.helpers import empty_bucket, list_keys, raw_client, remove_buckets, run_cli

REPO = Path(__file__).resolve().parents[2]
EVACUATE = str(REPO / "playbooks" / "evacuate-aws.yaml")
FAILBACK = str(REPO / "playbooks" / "failback.yaml")
ZONE = "social.example"


@pytest.fixture(scope="module", autouse=True)
def _only_the_platform_on_both_sides(lab: LabInfo) -> None:
    """The playbooks move whole accounts (evacuate: aws to onprem; fail back: onprem to aws): the
    buckets earlier tests left on either side (thousands of objects, large ones among them) are
    removed first, or every run here would copy them too. The lab outlives test runs: the platform's
    copies an earlier run left on onprem are removed too."""
    for provider in ("aws", "onprem"):
        remove_buckets(raw_client(lab, provider, "s3"), keep=MEDIA_BUCKETS)
    _empty_onprem_copies(lab)


@pytest.fixture
def state_dir(tmp_path: Path) -> dict[str, str]:
    """Run states of this test only."""
    return {"FAILOVER_STATE_DIR": str(tmp_path / "state")}


def _provider(lab: LabInfo, name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(lab.providers_file.read_text())["providers"][name]
    return document


def _powerdns(lab: LabInfo, path: str = "") -> Any:
    onprem = _provider(lab, "onprem")["dns"]
    key = os.environ[onprem["credentials"]["secret_env"]]
    response = httpx.get(
        f"{onprem['endpoint']}/api/v1/servers/localhost/zones{path}", headers={"X-API-Key": key}, trust_env=False
    )
    return response.json() if response.status_code == 200 else None


def _ask_powerdns(lab: LabInfo, name: str) -> list[str]:
    host, port = _provider(lab, "onprem")["dns"]["options"]["nameserver"].split(":")
    answer = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(port), timeout=3)
    return sorted(item.to_text() for rrset in answer.answer for item in rrset)


def _route53(lab: LabInfo) -> dict[tuple[str, str], tuple[int, list[str]]]:
    client = raw_client(lab, "aws", "route53")
    zone = next(z for z in client.list_hosted_zones()["HostedZones"] if z["Name"] == ZONE + ".")
    sets = client.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    return {
        (s["Name"], s["Type"]): (s.get("TTL", 0), sorted(str(r["Value"]) for r in s.get("ResourceRecords", [])))
        for s in sets
    }


def _snapshot(lab: LabInfo) -> dict[str, Any]:
    """Everything every lab server holds, read with plain clients."""
    found: dict[str, Any] = {}
    for provider in ("aws", "onprem"):
        s3 = raw_client(lab, provider, "s3")
        for bucket in sorted(b["Name"] for b in s3.list_buckets().get("Buckets", [])):
            listed = list_keys(s3, bucket)
            found[f"s3 {provider} {bucket}"] = sorted((k, o["ETag"], o["Size"]) for k, o in listed.items())
    for provider in ("aws", "aws-west"):
        ec2 = raw_client(lab, provider, "ec2")
        instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        found[f"ec2 {provider}"] = sorted((i["InstanceId"], i["State"]["Name"], str(i.get("Tags"))) for i in instances)
    route53 = raw_client(lab, "aws", "route53")
    for zone in route53.list_hosted_zones()["HostedZones"]:
        sets = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
        found[f"route53 {zone['Id']}"] = sorted(json.dumps(s, sort_keys=True, default=str) for s in sets)
    for zone in _powerdns(lab) or []:
        found[f"powerdns {zone['id']}"] = json.dumps(_powerdns(lab, "/" + zone["id"])["rrsets"], sort_keys=True)
    instances = lab.root / "instances"
    found["local instances"] = sorted(
        (p.name, json.loads((p / "instance.json").read_text())["state"])
        for p in (instances.iterdir() if instances.is_dir() else [])
        if (p / "instance.json").exists()
    )
    return found


def _onprem_fleet(lab: LabInfo) -> list[dict[str, Any]]:
    instances = lab.root / "instances"
    records = [json.loads(p.read_text()) for p in instances.glob("*/instance.json")]
    return [r for r in records if r["state"] != "terminated" and r["tags"].get("app") == "social"]


def _empty_onprem_copies(lab: LabInfo) -> None:
    """Delete the objects (not the buckets or their policies) an earlier evacuation left in the
    platform's buckets on onprem."""
    onprem = raw_client(lab, "onprem", "s3")
    for bucket in MEDIA_BUCKETS:
        try:
            empty_bucket(onprem, bucket)
        except onprem.exceptions.NoSuchBucket:
            continue


def test_dry_run_changes_nothing_on_any_server(lab: LabInfo, failover_seeded_lab: LabInfo, state_dir: dict) -> None:
    before = _snapshot(lab)
    result = run_cli("--json", "run", EVACUATE, "--dry-run", env=state_dir)
    assert result.code == 0, result.stdout + result.stderr
    report = result.json
    assert report["outcome"] == "planned" and report["dry_run"] is True
    steps = {s["id"]: s for s in report["steps"]}
    assert all(s["status"] == "planned" for s in steps.values()), steps
    # The plan is typed changes per step: an action on a named resource, before and after.
    lowered = [c for c in steps["dns-prepare"]["changes"] if c["resource"] == "record www.social.example A on aws"]
    assert [c["action"] for c in lowered] == ["update"] and lowered[0]["after"]["ttl"] == 60
    assert lowered[0]["before"]["ttl"] > 60 and lowered[0]["before"]["values"] == lowered[0]["after"]["values"]
    copies = {c["resource"]: c for c in steps["copy-buckets"]["changes"] if c["action"] == "copy"}
    assert copies["aws:media -> onprem:media"]["after"]["objects"] > 0
    created = {c["resource"].split(" on ")[0]: c for c in steps["rehost"]["changes"] if c["action"] == "create"}
    assert created["instance web-1"]["after"]["size"] == "host"
    assert "t3.small" in created["instance web-1"]["detail"]
    text = run_cli("run", EVACUATE, "--dry-run", env=state_dir)
    assert "~ update record www.social.example A on aws: ttl" in text.stdout
    assert "+ create instance web-1" in text.stdout
    assert _snapshot(lab) == before
    assert not Path(state_dir["FAILOVER_STATE_DIR"], "runs").exists() or not any(
        Path(state_dir["FAILOVER_STATE_DIR"], "runs").glob("*/state.json")
    ), "a dry-run leaves no run state"


def test_evacuation_end_to_end_then_failback_and_rollback(
    lab: LabInfo, failover_seeded_lab: LabInfo, state_dir: dict
) -> None:
    original = _route53(lab)
    old_web = original[(f"www.{ZONE}.", "A")]
    args = ("--json", "run", EVACUATE, "--yes", "--var", "max_ttl_wait=1")
    try:
        result = run_cli(*args, env=state_dir, timeout=600)
        assert result.code == 0, result.stdout + result.stderr
        report = result.json
        assert report["outcome"] == "succeeded" and report["ok"]
        statuses = {s["id"]: s["status"] for s in report["steps"]}
        assert statuses == {
            "inventory": "ok",
            "dns-prepare": "changed",
            "copy-buckets": "changed",
            "rehost": "changed",
            "fleet-healthy": "ok",
            "go-ahead": "ok",
            "dns-cutover": "changed",
            "verify-buckets": "ok",
        }
        assert 0 < report["recovery_time_s"] < report["duration_s"] + 1
        assert all(s["seconds"] is not None for s in report["steps"])

        # Users resolve the zone at the new DNS server and reach the new fleet...
        addresses = _ask_powerdns(lab, f"www.{ZONE}.")
        fleet = _onprem_fleet(lab)
        assert len(fleet) == 4
        web = {r["address"]: r["name"] for r in fleet if r["name"].startswith("web-")}
        assert addresses == sorted(web)
        onprem = _provider(lab, "onprem")["endpoint"]
        stored = raw_client(lab, "onprem", "s3").get_object(Bucket="media", Key="avatars/user000.png")["Body"].read()
        for address in addresses:
            page = httpx.get(f"http://{address}:8080/", timeout=10, trust_env=False).json()
            assert page == {"app": "social", "instance": web[address], "media": f"{onprem}/media"}
            # ...which serves media from the new store.
            image = httpx.get(f"http://{address}:8080/media/avatars/user000.png", timeout=10, trust_env=False)
            assert image.status_code == 200 and image.content == stored
        # The old provider's zone answers the same, with the lowered TTL.
        now = _route53(lab)
        assert now[(f"www.{ZONE}.", "A")] == (60, addresses)
        assert now[(f"mail.{ZONE}.", "A")] == original[(f"mail.{ZONE}.", "A")], "records outside the fleet stay"
        assert _ask_powerdns(lab, f"mail.{ZONE}.") == ["198.51.100.25"], "the whole zone was copied"

        # The same command again: every step done earlier, nothing created twice.
        again = run_cli(*args, env=state_dir, timeout=600)
        assert again.code == 0 and all(s["done_earlier"] for s in again.json["steps"])
        assert len(_onprem_fleet(lab)) == 4

        # Fail back: DNS points at the original instances again, on both providers.
        back = run_cli("--json", "run", FAILBACK, "--yes", "--var", "health_gate=false", env=state_dir, timeout=600)
        assert back.code == 0, back.stdout + back.stderr
        assert _route53(lab)[(f"www.{ZONE}.", "A")][1] == old_web[1]
        assert _ask_powerdns(lab, f"www.{ZONE}.") == old_web[1]

        # What a rollback would undo, before undoing it: the fleet deleted, records and TTLs put back.
        undo = run_cli(*args, "--rollback", "--dry-run", env=state_dir, timeout=600)
        assert undo.code == 0, undo.stdout + undo.stderr
        undo_changes = {s["id"]: [(c["action"], c["resource"]) for c in s["changes"]] for s in undo.json["steps"]}
        assert sum(1 for a, r in undo_changes["rehost"] if a == "delete" and r.startswith("instance ")) == 4
        assert any(a == "update" and r.startswith(f"record www.{ZONE} A") for a, r in undo_changes["dns-cutover"])
        assert ("delete", f"zone {ZONE} on onprem") in undo_changes["dns-prepare"]
        assert _onprem_fleet(lab), "a dry run of the rollback changed nothing"
    finally:
        rolled = run_cli(*args, "--rollback", env=state_dir, timeout=600)
    assert rolled.code == 1 and rolled.json["outcome"] == "rolled back"
    assert _route53(lab) == original, "the source zone is exactly as before, TTLs included"
    assert _powerdns(lab, f"/{ZONE}.") is None, "the zone the run created on the target is gone"
    assert _onprem_fleet(lab) == []


def _wait_for_step(state_root: Path, step: str, status: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in state_root.glob("runs/*/state.json"):
            try:
                state = json.loads(path.read_text())
            except ValueError:
                continue  # never half-written, but the file may be replaced between reads
            if state["steps"].get(step, {}).get("status") == status:
                return dict(state)
        time.sleep(0.05)
    raise AssertionError(f"step {step} never reached {status}")


def test_kill_9_in_the_middle_of_a_run_then_the_same_command_completes(
    lab: LabInfo, failover_seeded_lab: LabInfo, state_dir: dict
) -> None:
    args = ["run", EVACUATE, "--yes", "--var", "max_ttl_wait=6"]
    env = {**os.environ, **state_dir}
    child = subprocess.Popen(
        [sys.executable, "-m", "failover", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        # The cutover waits out the lowered TTLs: the fleet and the data are in place by then.
        state = _wait_for_step(Path(state_dir["FAILOVER_STATE_DIR"]), "dns-cutover", "running", 120)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert state["steps"]["rehost"]["status"] == "changed"
        resumed = run_cli("--json", *args, env=state_dir, timeout=600)
        assert resumed.code == 0, resumed.stdout + resumed.stderr
        steps = {s["id"]: s for s in resumed.json["steps"]}
        assert all(steps[s]["done_earlier"] for s in ("inventory", "dns-prepare", "copy-buckets", "rehost"))
        assert steps["rehost"]["attempts"] == 1, "finished steps are not run again"
        assert steps["dns-cutover"]["attempts"] == 2 and steps["dns-cutover"]["status"] == "changed"
        assert len(_onprem_fleet(lab)) == 4, "no instance was created twice"
        assert _ask_powerdns(lab, f"www.{ZONE}.") == sorted(
            r["address"] for r in _onprem_fleet(lab) if r["name"].startswith("web-")
        )
    finally:
        if child.poll() is None:
            child.kill()
        rolled = run_cli("run", *args[1:], "--rollback", env=state_dir, timeout=600)
    assert rolled.code == 1  # rolled back is not success
    assert _onprem_fleet(lab) == []


class _Hook(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def _answer(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Hook.seen.append((method, self.path, dict(self.headers), body))
        status = 200 if self.path in ("/healthz", "/hook") else 500
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_approval_health_headers_and_rollback_handlers(
    lab: LabInfo, hook: str, state_dir: dict, tmp_path: Path
) -> None:
    canary = "CANARY-hook-token-8c1f"
    playbook = tmp_path / "gated.yaml"
    playbook.write_text(
        f"""\
# gated: a person approves, a health check with a token, a step that fails, a handler that reports.
version: 1
name: gated
description: approval, then checks; a failure rolls back and tells the on-call hook
on_failure: rollback
steps:
  - {{id: approve, kind: approval, message: "go?"}}
  - id: healthy
    kind: health
    urls: ["{hook}/healthz"]
    headers: {{Authorization: {{env: HOOK_TOKEN}}}}
    needs: [approve]
  - {{id: broken, kind: health, urls: ["{hook}/broken"], timeout: 1, needs: [healthy]}}
rollback:
  - {{id: tell-on-call, kind: notify, url: "{hook}/hook", message: "gated rolled back"}}
"""
    )
    env = {**state_dir, "HOOK_TOKEN": canary}
    waiting = run_cli("run", str(playbook), env=env)
    assert waiting.code == 1 and "needs approval: go?" in waiting.stdout + waiting.stderr
    assert "waiting for approval" in waiting.stdout
    assert _Hook.seen == [], "nothing after the approval ran, and waiting is no reason to roll back"

    result = run_cli("--json", "run", str(playbook), "--yes", env=env)
    assert result.code == 1
    report = result.json
    assert report["outcome"] == "rolled back"
    assert {s["id"]: s["status"] for s in report["steps"]} == {"approve": "ok", "healthy": "ok", "broken": "failed"}
    assert any(line.startswith("tell-on-call: notified") for line in report["rollback"])
    health = next(h for m, p, h, _ in _Hook.seen if p == "/healthz")
    assert health["Authorization"] == canary, "the header value came from the environment"
    posted = json.loads(next(b for m, p, _, b in _Hook.seen if m == "POST"))
    assert posted["message"] == "gated rolled back" and posted["playbook"] == "gated"
    written = "".join(p.read_text() for p in Path(state_dir["FAILOVER_STATE_DIR"]).rglob("*.json"))
    assert canary not in result.stdout + result.stderr + written + waiting.stdout + waiting.stderr


def test_preflight_refuses_before_anything_runs(lab: LabInfo, state_dir: dict) -> None:
    before = _snapshot(lab)
    env = {**state_dir, "FAILOVER_LAB_ONPREM_SECRET_ACCESS_KEY": "CANARY-wrong-secret-33aa"}
    result = run_cli("run", EVACUATE, "--yes", env=env)
    assert result.code in (3, 4), result.stdout + result.stderr
    assert "preflight failed, nothing was changed" in result.stderr and "onprem/storage" in result.stderr
    assert "CANARY-wrong-secret-33aa" not in result.stdout + result.stderr
    assert _snapshot(lab) == before


def test_malformed_playbook_is_refused_with_its_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\ndescription: x\nsteps:\n  - {id: a, kind: sync, source: 'aws:'}\n")
    for command in (["validate", str(bad)], ["run", str(bad), "--dry-run"]):
        result = run_cli(*command)
        assert result.code == 2
        assert f"{bad}:5" in result.stderr and "target" in result.stderr and "Field required" in result.stderr


def test_the_drill_example_runs_and_a_missed_budget_fails(
    lab: LabInfo, failover_seeded_lab: LabInfo, run_drill: Any
) -> None:
    example = REPO / "playbooks" / "examples" / "test_drill.py"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
    report = run_drill(REPO / "playbooks" / "drill.yaml", variables={"recovery_budget_s": "0.5"})
    assert report.outcome == "failed" and not report.ok
    assert any(b.startswith("recovery_time_s:") for b in report.breaches)
