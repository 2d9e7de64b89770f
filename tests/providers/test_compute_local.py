"""The compute conformance suite against local processes (the lab's ``onprem`` compute), plus what
only the local adapter promises: own loopback addresses, state across restarts, processes ended."""

from __future__ import annotations

import os
import time
import uuid

from failover.lab import LabInfo
from failover.providers.local.compute import _session_pids

from failover.compute import ImageRef, InstanceSpec, InstanceState
from failover.config import Providers
from failover.connect import open_compute
from tests.conformance.compute import ComputeConformance


class TestLocalProcesses(ComputeConformance):
    provider = "onprem"


def test_instances_get_their_own_address_and_survive_a_restart(lab: LabInfo, lab_providers: Providers) -> None:
    compute = open_compute(lab_providers, "onprem")
    script = '#!/bin/bash\necho "$INSTANCE_ID $INSTANCE_NAME $INSTANCE_ADDRESS" > whoami\nexec sleep 300\n'
    ids = []
    try:
        for n in range(2):
            spec = InstanceSpec(
                f"local-{uuid.uuid4().hex[:6]}-{n}", 1, 256, image=ImageRef("any", "1"), user_data=script
            )
            ids.append(compute.create(spec, size="host", image="", client_token="t").id)
        first, second = (compute.wait_for(i, InstanceState.RUNNING, timeout=30) for i in ids)
        assert first.address != second.address
        assert first.address.startswith("127.0.0.")
        whoami = lab.root / "instances" / first.id / "whoami"
        deadline = time.monotonic() + 10
        while not whoami.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert whoami.read_text().split() == [first.id, first.name, first.address]
        # A new adapter object (a new CLI process) sees the same running instances.
        again = open_compute(lab_providers, "onprem")
        assert again.get(first.id).state is InstanceState.RUNNING
        record = (lab.root / "instances" / first.id / "instance.json").read_text()
        session = int(__import__("json").loads(record)["session"])
        assert _session_pids(session)
        again.destroy(first.id)
        assert not _session_pids(session), "destroy ends the instance's processes"
        assert not (lab.root / "instances" / first.id).exists()
    finally:
        for instance_id in ids:
            compute.destroy(instance_id)
    assert os.environ.get("FAILOVER_LAB_DIR")
