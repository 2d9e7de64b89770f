"""What an ops engineer meets under time pressure, as rclone, aws-cli, terraform and ansible users
expect it: bad input refused with a hint (and as JSON under --json), shipped playbooks from any
install, required variables, rehost asking first, dry runs that name keys, Ctrl-C that stops at
once and says how to resume, and a re-run that copied nothing not claiming a transfer rate."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from failover.lab import LabInfo

from failover.cutover import CutoverPlan, rollback_cutover
from failover.dns import record_set
from failover.errors import PlaybookError
from failover.playbook.loader import load_playbook_text
from failover.testing import MemoryDns, MemoryDnsOptions, reset_services
from tests.helpers import raw_s3, run_cli, seed, unique

REPO = Path(__file__).resolve().parents[1]


def test_bad_input_is_refused_with_a_hint_and_as_json_under_json(lab: LabInfo) -> None:
    url = run_cli("sync", "s3://media", "onprem:media")
    assert url.code == 2 and "aws:media" in url.stderr and "providers file" in url.stderr
    assert run_cli("ls", "aws:", "--limit", "-1").code == 2
    bogus = run_cli("dns", "query", "onprem", "www.social.example", "--type", "BOGUS")
    assert bogus.code == 2 and "internal error" not in bogus.stderr
    typo = run_cli("validate", str(REPO / "playbooks" / "evacuate-aws.yaml"), "--var", "target=onprme")
    assert typo.code == 2 and "onprme" in typo.stderr and "known providers" in typo.stderr
    missing = run_cli("--json", "sync", "aws:no-such-bucket-here", "onprem:x")
    assert missing.code == 3
    error = missing.json
    assert error["schema"] == 1 and error["error"]["exit_code"] == 3 and "does not exist" in error["error"]["message"]
    usage = run_cli("--json", "sync", "aws:x")
    assert usage.code == 2 and usage.json["error"]["kind"] == "usage"
    listing = run_cli("--json", "playbooks")
    assert listing.code == 0 and listing.json["schema"] == 1


def test_shipped_playbooks_from_any_directory_and_in_the_wheel(lab: LabInfo, tmp_path: Path) -> None:
    names = {p["name"] for p in run_cli("--json", "playbooks").json["playbooks"]}
    assert {"evacuate-aws", "drill", "failback"} <= names
    shown = run_cli("playbooks", "show", "evacuate-aws")
    assert shown.code == 0 and "kind: dns_cutover" in shown.stdout
    assert run_cli("playbooks", "show", "nope").code == 2
    here = subprocess.run(
        [sys.executable, "-m", "failover", "validate", "evacuate-aws"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    assert here.returncode == 0 and "valid playbook 'evacuate-aws'" in here.stdout, here.stderr
    wheel_dir = tmp_path / "wheel"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            str(REPO),
            "-w",
            str(wheel_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    names_in_wheel = set(zipfile.ZipFile(next(wheel_dir.glob("*.whl"))).namelist())
    for needed in (
        "failover/playbooks/evacuate-aws.yaml",
        "failover/playbooks/drill.yaml",
        "failover/playbooks/examples/github-actions-drill.yml",
        "failover/lab/compose.env",
        "failover/lab/docker-compose.yml",
        "failover/lint/rules/messaging.yaml",
    ):
        assert needed in names_in_wheel, needed


def test_a_required_variable_is_refused_with_a_hint_when_missing() -> None:
    text = """
version: 1
name: needs-zone
description: "zone is required"
variables: {zone: ~, ttl: 60}
steps:
  - {id: stock, kind: inventory, provider: aws, description: "of {{ zone }}"}
"""
    with pytest.raises(PlaybookError, match=r"required variable\(s\) not given: zone") as refused:
        load_playbook_text(text, "needs.yaml")
    assert "--var zone=VALUE" in str(refused.value.hint)
    loaded = load_playbook_text(text, "needs.yaml", {"zone": "example.org"})
    assert loaded.variables["zone"] == "example.org"
    # A variable only a description uses does not change what a step does: the same run.
    assert loaded.digest == load_playbook_text(text, "needs.yaml", {"zone": "other.org"}).digest
    assert (
        loaded.digest
        != load_playbook_text(text.replace("provider: aws", "provider: onprem"), "needs.yaml", {"zone": "x"}).digest
    )


def test_rehost_asks_before_creating_and_refuses_without_a_terminal(lab: LabInfo, failover_seeded_lab: LabInfo) -> None:
    fleet = unique("ask")
    refused = run_cli("rehost", "aws", "onprem", "--select", "role=web", "--fleet", fleet, "--no-health-check")
    assert refused.code == 2 and "--yes" in refused.stderr and "nobody is at a terminal" in refused.stderr
    instances = lab.root / "instances"
    created = [p for p in instances.glob("*/instance.json") if fleet in p.read_text()] if instances.exists() else []
    assert created == [], "nothing was created"
    gone = run_cli("rehost", "aws", "onprem", "--select", "role=web", "--fleet", fleet, "--rollback")
    assert gone.code == 2 and "--yes" in gone.stderr


def test_a_rollback_of_what_is_already_gone_is_a_no_op() -> None:
    options = MemoryDnsOptions(space=unique("gone"))
    source, target = MemoryDns("old", options), MemoryDns("new", MemoryDnsOptions(space=unique("gone-new")))
    source.create_zone("z.example")
    before = record_set("www.z.example", "A", 300, ["192.0.2.1"])
    source.apply("z.example", upserts=[before])
    plan = CutoverPlan(
        zone="z.example",
        source="old",
        target="new",
        ttl=60,
        address_map={"192.0.2.1": ["203.0.113.1"]},
        create_zone=True,
        repoint_source=[record_set("www.z.example", "A", 60, ["203.0.113.1"])],
        previous_source=[before],
    )
    rollback_cutover(plan, source, target)  # the target zone never existed (or was deleted by hand)
    assert [r.values for r in source.list_records("z.example") if r.type == "A"] == [("192.0.2.1",)]
    reset_services()


def test_dry_run_names_keys_and_a_rerun_claims_no_rate(lab: LabInfo, tmp_path: Path) -> None:
    aws, onprem = raw_s3(lab, "aws"), raw_s3(lab, "onprem")
    bucket = unique("named")
    seed(aws, bucket, {f"k{i:02d}": {"body": b"x" * 100} for i in range(15)})
    seed(onprem, bucket, {f"extra{i}": {"body": b"y"} for i in range(3)})
    env = {"FAILOVER_STATE_DIR": str(tmp_path / "state")}
    plan = run_cli("--json", "sync", f"aws:{bucket}", f"onprem:{bucket}", "--dry-run", "--delete", "--force", env=env)
    assert plan.code == 0
    keys = plan.json["keys"]
    assert sorted(k["key"] for k in keys["to_copy"]) == [f"k{i:02d}" for i in range(15)]
    assert sorted(k["key"] for k in keys["deleted"]) == ["extra0", "extra1", "extra2"]
    text = run_cli("sync", f"aws:{bucket}", f"onprem:{bucket}", "--dry-run", "--delete", "--force", env=env)
    assert "would copy 'k00'" in text.stdout and "and 5 more to copy" in text.stdout
    assert "would delete 'extra0'" in text.stdout
    report = tmp_path / "done.json"
    done = run_cli(
        "sync", f"aws:{bucket}", f"onprem:{bucket}", "--delete", "--force", "-v", "--report", str(report), env=env
    )
    assert done.code == 0
    assert "copied 'k00'" in done.stderr and "deleted 'extra0'" in done.stderr, "-v names each key as it goes"
    named = json.loads(report.read_text())["keys"]["deleted"]
    assert sorted(k["key"] for k in named) == ["extra0", "extra1", "extra2"]
    again = run_cli("sync", f"aws:{bucket}", f"onprem:{bucket}", env=env)
    assert again.code == 0 and "nothing needed copying" in again.stdout and "MiB/s" not in again.stdout


def test_ctrl_c_stops_within_two_seconds_and_says_how_to_resume(lab: LabInfo, tmp_path: Path) -> None:
    aws = raw_s3(lab, "aws")
    bucket = unique("sigint")
    seed(aws, bucket, {f"o{i}": {"body": os.urandom(256 * 1024)} for i in range(24)})  # 6 MiB
    report = tmp_path / "report.json"
    env = {**os.environ, "FAILOVER_STATE_DIR": str(tmp_path / "state")}
    argv = [sys.executable, "-m", "failover", "sync", f"aws:{bucket}", f"onprem:{bucket}", "--bwlimit", "1M"]
    process = subprocess.Popen(
        [*argv, "--report", str(report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # As from a terminal: a test run started in the background inherits SIGINT ignored, and so
        # would the command (Python keeps an ignored SIGINT ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Ctrl-C once copies are under way (a fixed delay is too early or too late on a loaded machine).
    onprem = raw_s3(lab, "onprem")
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if onprem.list_objects_v2(Bucket=bucket).get("KeyCount", 0) >= 3:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = process.communicate(timeout=60)
    stopped_in = time.monotonic() - sent
    assert process.returncode == 130, err[-2000:]
    assert stopped_in < 2.0, f"took {stopped_in:.1f} s to stop"
    assert "stopping (Ctrl-C)" in err and "Traceback" not in err
    assert "re-run the same command to resume" in out
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and 0 < data["totals"]["copied"] < 24
    after_summary = err.split("stopping (Ctrl-C)")[-1]
    assert "objects copied" not in after_summary.split("\n", 2)[-1], "no progress line after the stop"
    resumed = run_cli("sync", f"aws:{bucket}", f"onprem:{bucket}", env={"FAILOVER_STATE_DIR": str(tmp_path / "state")})
    assert resumed.code == 0 and "every object verified" in resumed.stdout


def test_verify_shows_progress(lab: LabInfo, tmp_path: Path) -> None:
    aws = raw_s3(lab, "aws")
    bucket = unique("vprog")
    seed(aws, bucket, {f"o{i}": {"body": b"z" * 1000} for i in range(8)})
    env = {"FAILOVER_STATE_DIR": str(tmp_path / "state")}
    assert run_cli("sync", f"aws:{bucket}", f"onprem:{bucket}", env=env).code == 0
    checked = run_cli("verify", f"aws:{bucket}", f"onprem:{bucket}", env=env)
    assert checked.code == 0
    assert "verify: 8/8 objects compared, 7.8 KiB / 7.8 KiB (100%)" in checked.stderr
