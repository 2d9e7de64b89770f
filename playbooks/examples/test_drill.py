"""An evacuation drill as a test: copy this file into your repository's tests and run it with
``pytest -p failover.testing`` (or add ``-p failover.testing`` to your pytest addopts).

It starts the lab (or reuses a running one), seeds the reference platform, runs the drill
playbook against its budgets, checks what a user would see after the move, and rolls back.
Point it at your own playbook and providers file to rehearse your platform instead."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from failover.dns import query

PLAYBOOKS = Path(os.environ.get("FAILOVER_PLAYBOOKS", Path(__file__).resolve().parent.parent))


def test_we_can_leave_within_budget(failover_seeded_lab, failover_providers, run_drill):
    report = run_drill(PLAYBOOKS / "drill.yaml", variables={"recovery_budget_s": "300", "rpo_budget_s": "30"})
    assert report.ok, f"{report.outcome}: {report.breaches or [s.summary for s in report.steps]}"
    assert report.recovery_time_s is not None
    assert report.recovery_time_s < 300
    # The data a cutover at the end of the standby would have lost, measured from the drill's writes.
    assert report.recovery_point_s is not None
    assert report.recovery_point_s < 30

    # What users get after the move: the target's nameserver answers with the new fleet,
    # and the app there serves media from the new store.
    dns = failover_providers.spec("onprem", "dns").options.nameserver
    host, port = dns.split(":")
    addresses = query((host, int(port)), "www.social.example", "A")
    assert addresses
    page = httpx.get(f"http://{addresses[0]}:8080/", timeout=10, trust_env=False).json()
    onprem = failover_providers.spec("onprem", "storage").endpoint
    assert page["media"] == f"{onprem}/media"
    image = httpx.get(f"http://{addresses[0]}:8080/media/avatars/user000.png", timeout=10, trust_env=False)
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
