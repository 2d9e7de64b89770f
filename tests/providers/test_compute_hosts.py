"""The compute conformance suite against the lab's own servers over SSH (the ``hosts`` provider: real
OpenSSH servers on 127.0.1.x), plus what only it promises: one instance per host, a workload that
outlives the SSH session, host keys pinned."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from failover.lab import LabInfo

from failover.compute import ImageRef, InstanceSpec, InstanceState
from failover.config import Providers
from failover.connect import open_compute
from failover.errors import AuthError, ProviderError
from failover.registry import load_adapter, load_options_model
from tests.conformance.compute import ComputeConformance


class TestOwnServersOverSsh(ComputeConformance):
    provider = "hosts"


def _spec(name: str, script: str | None = None) -> InstanceSpec:
    return InstanceSpec(name, 1, 256, image=ImageRef("any", "1"), user_data=script)


SERVE = (
    "#!/bin/bash\n"
    'echo "$INSTANCE_ID" > whoami\n'
    'exec python3 -m http.server 8321 --bind "$INSTANCE_ADDRESS" --directory "$HOME"\n'
)


def test_workload_answers_on_its_host_after_the_ssh_session_ends(lab_providers: Providers) -> None:
    compute = open_compute(lab_providers, "hosts")
    instance = compute.create(_spec(f"hosts-{uuid.uuid4().hex[:6]}", SERVE), size="host", image="", client_token="t1")
    try:
        compute.close()  # every SSH connection of this adapter is gone
        running = open_compute(lab_providers, "hosts").wait_for(instance.id, InstanceState.RUNNING, timeout=30)
        assert running.address and running.address.startswith("127.0.1.")
        body = b""
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://{running.address}:8321/whoami", timeout=2) as response:
                    body = response.read()
                break
            except OSError:
                time.sleep(0.2)
        assert body.strip() == instance.id.encode()
        # The same client token gives back the first instance, not a second one.
        again = compute.create(_spec(instance.name, SERVE), size="host", image="", client_token="t1")
        assert again.id == instance.id
    finally:
        compute.destroy(instance.id)
        compute.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{running.address}:8321/whoami", timeout=2)


def test_one_instance_per_host_and_a_clear_error_when_none_is_free(lab_providers: Providers) -> None:
    compute = open_compute(lab_providers, "hosts")
    hosts = len(compute.options.hosts)  # type: ignore[attr-defined]
    ids = []
    try:
        for n in range(hosts):
            ids.append(compute.create(_spec(f"fill-{n}"), size="host", image="", client_token=uuid.uuid4().hex).id)
        addresses = {compute.get(i).address for i in ids}
        assert len(addresses) == hosts, "each instance on its own host"
        with pytest.raises(ProviderError, match="no free host"):
            compute.create(_spec("one-too-many"), size="host", image="", client_token=uuid.uuid4().hex)
    finally:
        for instance_id in ids:
            compute.destroy(instance_id)
        compute.close()
    assert compute.list_instances() == []


def test_a_host_presenting_another_key_is_refused(lab: LabInfo) -> None:
    document: dict[str, Any] = yaml.safe_load(lab.providers_file.read_text())["providers"]["hosts"]["compute"]
    options = dict(document["options"])
    first = dict(options["hosts"][0])
    other = options["hosts"][1]["host_key"]  # a real key, but host 2's
    options["hosts"] = [{**first, "host_key": other}]
    compute = load_adapter("compute", "hosts")("hosts", load_options_model("compute", "hosts").model_validate(options))
    with pytest.raises(AuthError, match="not the one pinned"):
        compute.list_instances()
    compute.close()


def test_a_claim_left_by_a_create_that_died_is_taken_back_after_a_minute(
    lab: LabInfo, lab_providers: Providers
) -> None:
    """A create that dies between claiming a host and writing its instance leaves the claim and no
    instance: a fresh one still counts as taken (it may be a create in progress), one older than a
    minute is taken back. The lab's hosts are this machine's own directories, so the test writes
    the dead claims itself."""
    document: dict[str, Any] = yaml.safe_load(lab.providers_file.read_text())["providers"]["hosts"]["compute"]
    roots = [Path(host["root"]) for host in document["options"]["hosts"]]
    compute = open_compute(lab_providers, "hosts")
    claims = []
    try:
        for root in roots:
            dead = f"h-{uuid.uuid4().hex[:16]}"
            (root / ".claim").mkdir(parents=True)
            (root / ".claim" / "id").write_text(dead)
            (root / dead).mkdir()  # the instance's directory, never written
            claims.append((root, dead))
        with pytest.raises(ProviderError, match="no free host"):
            compute.create(_spec("after-a-crash"), size="host", image="", client_token=uuid.uuid4().hex)
        stale_root, stale_id = claims[1]
        old = time.time() - 120
        os.utime(stale_root / ".claim", (old, old))
        instance = compute.create(_spec("after-a-crash"), size="host", image="", client_token=uuid.uuid4().hex)
        try:
            assert (stale_root / ".claim" / "id").read_text() == instance.id, "the stale claim's host was taken"
            assert not (stale_root / stale_id).exists(), "the dead create's directory is gone"
            assert [i.id for i in compute.list_instances()] == [instance.id]
        finally:
            compute.destroy(instance.id)
    finally:
        for root, dead in claims:
            if (root / ".claim" / "id").exists() and (root / ".claim" / "id").read_text() == dead:
                shutil.rmtree(root / ".claim")
            shutil.rmtree(root / dead, ignore_errors=True)
        compute.close()
