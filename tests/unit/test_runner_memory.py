"""The playbook runner in this process, on memory providers (storage, compute and DNS from
failover.testing): plan as typed changes, a whole evacuation, resume, rollback after a failure,
and a worker's non-failover exception accounted for. No server, no subprocess."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

from failover.compute import ImageRef, InstanceSpec
from failover.config import Providers, load_providers
from failover.dns import record_set
from failover.playbook import RunOptions, load_playbook, provider_lookup, run_playbook
from failover.playbook.schema import STEP_KINDS, Step
from failover.playbook.steps import KINDS
from failover.testing import (
    MemoryCompute,
    MemoryComputeOptions,
    MemoryDns,
    MemoryDnsOptions,
    MemoryOptions,
    MemoryStore,
    reset_services,
)
from failover.types import ObjectMeta
from tests.test_html_report import browser as browser  # the fixture, for the report page's test
from tests.test_html_report import distinct_pixels, load

ZONE = "social.example"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Two memory providers, ``old`` (seeded: a bucket, two web instances, the zone pointing at
    them) and ``new`` (empty), each in spaces of its own for this test."""
    run = uuid.uuid4().hex[:8]
    spaces = {name: f"{name}-{run}" for name in ("old-s3", "new-s3", "old-vm", "new-vm", "old-dns", "new-dns")}
    providers_file = tmp_path / "providers.yaml"
    providers_file.write_text(
        f"""
providers:
  old:
    storage: {{type: memory, options: {{space: {spaces["old-s3"]}, page_size: 7}}}}
    compute: {{type: memory, options: {{space: {spaces["old-vm"]}, address_prefix: "198.51.100."}}}}
    dns: {{type: memory, options: {{space: {spaces["old-dns"]}}}}}
  new:
    storage: {{type: memory, options: {{space: {spaces["new-s3"]}}}}}
    compute: {{type: memory, options: {{space: {spaces["new-vm"]}, address_prefix: "203.0.113."}}}}
    dns: {{type: memory, options: {{space: {spaces["new-dns"]}}}}}
"""
    )
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(tmp_path / "state"))
    store = MemoryStore("old", MemoryOptions(space=spaces["old-s3"]))
    store.create_bucket("media")
    objects = {f"posts/{i:03d}.jpg": f"image {i}".encode() * (i + 1) for i in range(40)}
    for key, body in objects.items():
        store.put("media", key, body, meta=ObjectMeta(content_type="image/jpeg"))
    for obj in store.space.buckets["media"].values():  # data being evacuated was written before the run
        obj.modified = datetime.now(UTC) - timedelta(hours=2)
    compute = MemoryCompute("old", MemoryComputeOptions(space=spaces["old-vm"]))
    web = [
        compute.create(
            InstanceSpec(f"web-{n}", 1, 1024, image=ImageRef("ubuntu", "22.04"), tags={"app": "social"}),
            size="mem-small",
            image="img-ubuntu-2204",
            client_token=f"seed-{n}",
        )
        for n in (1, 2)
    ]
    dns = MemoryDns("old", MemoryDnsOptions(space=spaces["old-dns"]))
    dns.create_zone(ZONE)
    dns.apply(
        ZONE,
        upserts=[
            record_set(f"www.{ZONE}", "A", 300, [i.address or "" for i in web]),
            record_set(f"mail.{ZONE}", "A", 3600, ["192.0.2.25"]),
            record_set(ZONE, "MX", 3600, [f"10 mail.{ZONE}."]),
            record_set(ZONE, "TXT", 3600, ['"v=spf1 mx -all"']),
        ],
    )
    yield {"providers": load_providers(providers_file), "spaces": spaces, "objects": objects, "web": web,
           "state": tmp_path / "state"}  # fmt: skip
    MemoryStore.reset()
    reset_services()


PLAYBOOK = """
version: 1
name: evacuate
description: leave old for new
on_failure: rollback
budgets: {unverified_objects: 0, unhealthy_instances: 0}
steps:
  - {id: inventory, kind: inventory, provider: old}
  - {id: prepare, kind: dns_prepare, source: old, target: new, zone: social.example, fleet_of: rehost, ttl: 30}
  - {id: copy, kind: sync, source: "old:", target: "new:"}
  - {id: rehost, kind: rehost, source: old, target: new, select: {app: social}, needs: [copy]}
  - {id: cutover, kind: dns_cutover, source: old, target: new, zone: social.example, fleet_of: rehost, ttl: 30,
     max_ttl_wait: 0, confirm_timeout: 5, needs: [prepare]}
  - {id: verify, kind: verify, source: "old:", target: "new:", needs: [cutover]}
"""

FAILING_AFTER_CUTOVER = (
    PLAYBOOK
    + """
  - {id: smoke, kind: health, urls: ["http://127.0.0.1:9/healthz"], timeout: 0.5, needs: [verify]}
"""
)


def _run(lab: dict[str, Any], text: str, tmp: Path, **options: Any) -> Any:
    path = tmp / "playbook.yaml"
    path.write_text(text)
    loaded = load_playbook(path, {}, provider_lookup(lambda: lab["providers"]))
    return run_playbook(loaded, lab["providers"], RunOptions(state_root=lab["state"], **options))


def _zone(providers: Providers, name: str) -> dict[tuple[str, str], tuple[int, tuple[str, ...]]]:
    dns = MemoryDns(name, providers.spec(name, "dns").options)
    if dns.find_zone(ZONE) is None:
        return {}
    return {r.key: (r.ttl, r.values) for r in dns.list_records(ZONE) if r.type == "A"}


def _new_instances(lab: dict[str, Any]) -> list[Any]:
    return MemoryCompute("new", MemoryComputeOptions(space=lab["spaces"]["new-vm"])).list_instances()


def test_every_step_kind_has_one_kind_and_the_runner_names_none(lab: dict[str, Any]) -> None:
    union = get_args(get_args(Step)[0])
    assert {kind.spec for kind in KINDS} == set(union) and len(KINDS) == len(union)
    runner = Path(__file__).parents[2] / "failover" / "playbook" / "runner.py"
    strings = {n.value for n in ast.walk(ast.parse(runner.read_text())) if isinstance(n, ast.Constant)}
    assert not strings & set(STEP_KINDS), "the runner decides nothing by a kind's name"


def test_the_dry_run_is_typed_changes_and_changes_nothing(lab: dict[str, Any], tmp_path: Path) -> None:
    before = _zone(lab["providers"], "old")
    report = _run(lab, PLAYBOOK, tmp_path, dry_run=True)
    assert report.outcome == "planned", [s.problems for s in report.steps]
    changes = {s.id: [(c.action.value, c.resource) for c in s.changes] for s in report.steps}
    assert ("update", f"record www.{ZONE} A on old") in changes["prepare"]
    assert ("create", f"zone {ZONE} on new") in changes["prepare"]
    assert ("create", "bucket new:media") in changes["copy"] and ("copy", "old:media -> new:media") in changes["copy"]
    assert sorted(r for a, r in changes["rehost"] if a == "create")[0].startswith("instance web-1 on new")
    assert ("update", f"record www.{ZONE} A on new") in changes["cutover"] or (
        "create",
        f"record www.{ZONE} A on new",
    ) in changes["cutover"]
    copy = next(c for s in report.steps if s.id == "copy" for c in s.changes if c.action.value == "copy")
    assert copy.after == {"objects": 40, "bytes": sum(len(b) for b in lab["objects"].values())}
    as_json = report.to_json()["steps"]
    assert all(isinstance(c["action"], str) and "resource" in c for s in as_json for c in s["changes"])
    assert _zone(lab["providers"], "old") == before and _zone(lab["providers"], "new") == {}
    assert _new_instances(lab) == []
    assert not MemoryStore("new", MemoryOptions(space=lab["spaces"]["new-s3"])).list_buckets()


def test_an_evacuation_runs_to_the_end_and_a_rerun_does_nothing_again(lab: dict[str, Any], tmp_path: Path) -> None:
    report = _run(lab, PLAYBOOK, tmp_path)
    assert report.outcome == "succeeded", [(s.id, s.status, s.summary) for s in report.steps]
    assert report.ok and report.recovery_time_s is not None
    assert report.budgets["unverified_objects"]["measured"] == 0
    copied = MemoryStore("new", MemoryOptions(space=lab["spaces"]["new-s3"])).objects("media")
    assert copied == lab["objects"]
    new = _new_instances(lab)
    assert sorted(i.name for i in new) == ["web-1", "web-2"]
    ttl, values = _zone(lab["providers"], "new")[(f"www.{ZONE}", "A")]
    assert set(values) == {i.address for i in new} and ttl == 30
    assert set(_zone(lab["providers"], "old")[(f"www.{ZONE}", "A")][1]) == {i.address for i in new}

    again = _run(lab, PLAYBOOK, tmp_path)
    assert all(s.done_earlier for s in again.steps) and again.outcome == "succeeded"
    assert len(_new_instances(lab)) == 2


def test_a_failure_after_the_cutover_rolls_everything_back(lab: dict[str, Any], tmp_path: Path) -> None:
    before_old = _zone(lab["providers"], "old")
    report = _run(lab, FAILING_AFTER_CUTOVER, tmp_path)
    assert report.outcome == "rolled back"
    statuses = {s.id: s.status for s in report.steps}
    assert statuses["smoke"] == "failed"
    assert {statuses[i] for i in ("prepare", "rehost", "cutover")} == {"rolled_back"}
    undone = " ".join(report.rollback)
    assert "destroyed 2 instance(s)" in undone and "kept (a sync step is not undone)" in undone
    assert _new_instances(lab) == [], "the new fleet is destroyed"
    assert _zone(lab["providers"], "old") == before_old, "the old zone answers as before (TTL too)"
    assert _zone(lab["providers"], "new") == {}, "the zone created on new is gone"


def test_a_non_failover_exception_in_a_copy_worker_fails_the_step_and_rolls_back(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    faults = MemoryStore.space_faults(lab["spaces"]["new-s3"])
    faults.raise_on["put"] = (5, RuntimeError("a bug in a worker thread"))
    report = _run(lab, PLAYBOOK, tmp_path)
    assert report.outcome == "rolled back"
    copy = next(s for s in report.steps if s.id == "copy")
    assert copy.status == "failed" and "1 not verified" in copy.summary, copy.summary
    assert report.budgets["unverified_objects"]["measured"] == 1, "the failed step's outputs count"
    assert any("prepare" in line for line in report.rollback)
    assert _zone(lab["providers"], "new") == {}
    assert next(s for s in report.steps if s.id == "rehost").status == "not run"
    journal = copy.summary.split("journal: ")[1].rstrip(")")
    run_report = json.loads(next(Path(journal).parent.glob(Path(journal).stem + ".run-*.json")).read_text())
    assert [e["error"] for e in run_report["errors"]] == [
        "internal error in a worker: RuntimeError: a bug in a worker thread"
    ]


def test_the_run_writes_an_html_report_that_loads_alone_in_a_browser(
    lab: dict[str, Any],
    tmp_path: Path,
    browser: Any,
) -> None:
    planned = _run(lab, PLAYBOOK, tmp_path, dry_run=True)
    assert planned.outcome == "planned"
    report = _run(lab, PLAYBOOK, tmp_path)
    assert report.outcome == "succeeded"
    page = next(Path(p) for p in report.report_files if p.endswith("report.html"))
    assert any(p.endswith("report-1.json") for p in report.report_files), "each attempt keeps its own report"
    data = json.loads(Path(report.report_files[0]).read_text())
    assert data["schema"] == 1 and data["started"].endswith("Z") and data["plan"]["steps"], (
        "ISO times, the approved plan"
    )
    assert all(s["started_at"] and s["finished_at"] for s in data["steps"])
    html = page.read_text()
    assert "<script" not in html
    for section in ("Timeline", "Throughput over time", "What was not carried", "The plan that was approved"):
        assert section in html
    assert html.count("<rect") >= len(data["steps"]), "every step is a bar on the time axis"
    assert "create bucket new:media" in html, "the dry run's plan is the one shown as approved"
    console, requests = load(browser, page, tmp_path / "run.png")
    assert console == [] and requests == []
    assert distinct_pixels(tmp_path / "run.png") > 40
    again = _run(lab, PLAYBOOK, tmp_path)
    assert any(p.endswith("report-2.json") for p in again.report_files)


STANDBY_DRILL = """
version: 1
name: standby-drill
description: follow old, write to it, cut over, then move traffic
on_failure: rollback
budgets: {recovery_point_s: 30, recovery_time_s: 120, unverified_objects: 0}
steps:
  - {id: standby, kind: standby, source: "old:", target: "new:", follow_for: 2, interval: 0.3,
     drill_writes: {bucket: media, rate: 20, size: 512}, zone: social.example, dns_source: old, dns_target: new}
  - {id: prepare, kind: dns_prepare, source: old, target: new, zone: social.example, fleet_of: rehost, ttl: 30,
     needs: [standby]}
  - {id: copy, kind: sync, source: "old:", target: "new:", needs: [standby]}
  - {id: rehost, kind: rehost, source: old, target: new, select: {app: social}, needs: [copy]}
  - {id: cutover, kind: dns_cutover, source: old, target: new, zone: social.example, fleet_of: rehost, ttl: 30,
     max_ttl_wait: 0, confirm_timeout: 5, needs: [prepare]}
"""


def test_a_standby_drill_reports_its_recovery_point_and_time(lab: dict[str, Any], tmp_path: Path) -> None:
    report = _run(lab, STANDBY_DRILL, tmp_path, yes=True)
    assert report.outcome == "succeeded", report.steps
    standby = next(s for s in report.steps if s.id == "standby")
    outputs = lab_state_outputs(lab, "standby")
    assert outputs["writes"] >= 20, "about 20 writes a second for 2 s"
    assert outputs["recovery_point_s"] is not None and report.recovery_point_s == outputs["recovery_point_s"]
    assert 0 <= report.recovery_point_s < 30
    assert report.budgets["recovery_point_s"] == {"budget": 30.0, "measured": report.recovery_point_s}
    assert report.recovery_time_s is not None and report.started and report.finished
    assert report.recovery_time_s < report.finished - report.started, "counted from the cutover, not the start"
    assert "recovery point" in standby.summary
    new = MemoryStore("new", MemoryOptions(space=lab["spaces"]["new-s3"]))
    drill_keys = [i.key for i in new.list_objects("media", outputs["drill_prefix"])]
    assert len(drill_keys) == outputs["writes"], "the final sync brought every drill write over"
    assert _zone(lab["providers"], "new"), "the target zone followed the source zone"

    rolled = _run(lab, STANDBY_DRILL, tmp_path, yes=True, rollback=True)
    assert any("drill write(s) removed" in line for line in rolled.rollback), rolled.rollback
    assert list(new.list_objects("media", outputs["drill_prefix"])) == []
    old = MemoryStore("old", MemoryOptions(space=lab["spaces"]["old-s3"]))
    assert list(old.list_objects("media", outputs["drill_prefix"])) == []


def test_a_recovery_point_over_budget_fails_the_drill(lab: dict[str, Any], tmp_path: Path) -> None:
    # Nothing can be copied in time: the target refuses writes while the drill writes.
    faults = MemoryStore.space_faults(lab["spaces"]["new-s3"])
    faults.raise_on["put"] = (-1, RuntimeError("the target refuses writes"))
    text = STANDBY_DRILL.replace("recovery_point_s: 30", "recovery_point_s: 0.5").replace(
        "follow_for: 2", "follow_for: 1.5"
    )
    report = _run(lab, text.split("  - {id: prepare")[0], tmp_path, yes=True)
    assert report.recovery_point_s is not None and report.recovery_point_s > 0.5
    assert any(b.startswith("recovery_point_s") for b in report.breaches), report.breaches
    assert report.outcome != "succeeded"


def lab_state_outputs(lab: dict[str, Any], step_id: str) -> dict[str, Any]:
    states = list((lab["state"] / "runs").glob("*/state.json"))
    assert len(states) == 1, states
    return dict(json.loads(states[0].read_text())["steps"][step_id]["outputs"])


def test_a_standby_fleet_is_left_stopped_and_the_cutover_starts_it(lab: dict[str, Any], tmp_path: Path) -> None:
    text = PLAYBOOK.replace(
        "select: {app: social}, needs: [copy]}", "select: {app: social}, needs: [copy], leave: stopped}"
    )
    plan = _run(lab, text, tmp_path, dry_run=True)
    rehost_plan = next(s for s in plan.steps if s.id == "rehost")
    assert sum('"stopped"' in json.dumps(c.to_json()) for c in rehost_plan.changes) == 2
    report = _run(lab, text, tmp_path, yes=True)
    assert report.outcome == "succeeded", report.steps
    rehost = next(s for s in report.steps if s.id == "rehost")
    assert "2 stopped" in rehost.summary
    assert all(i["stopped"] for i in lab_state_outputs(lab, "rehost")["instances"])
    new = _new_instances(lab)
    assert {i.state.value for i in new} == {"running"}, "the cutover started the standby fleet"
    pointed = {a for _, values in _zone(lab["providers"], "new").values() for a in values}
    assert {i.address for i in new} <= pointed
