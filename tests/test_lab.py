"""The lab's contract: up twice is harmless, down stops only what up started, all data in one place."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from failover.lab import Lab, LabInfo, process


def test_up_again_is_harmless(lab: LabInfo) -> None:
    again = Lab(lab.root).up()
    for name, state in lab.servers.items():
        assert again.servers[name].pid == state.pid
        assert again.servers[name].endpoint == state.endpoint


def test_providers_file_references_credentials_only(lab: LabInfo) -> None:
    text = lab.providers_file.read_text()
    document = yaml.safe_load(text)
    assert {"aws", "aws-west", "onprem", "onprem-libcloud", "azure", "swift", "hosts", "disk"} <= set(
        document["providers"]
    )
    assert document["providers"]["onprem"]["dns"]["credentials"] == {"secret_env": "FAILOVER_LAB_ONPREM_DNS_API_KEY"}
    for name, state in lab.servers.items():
        if state.secret_access_key:
            assert state.secret_access_key not in text, name
    assert document["providers"]["aws"]["credentials"] == {
        "key_env": "FAILOVER_LAB_AWS_ACCESS_KEY_ID",
        "secret_env": "FAILOVER_LAB_AWS_SECRET_ACCESS_KEY",
    }


def test_server_data_lives_under_the_lab_directory(lab: LabInfo) -> None:
    for state in lab.servers.values():
        if state.started_by_lab:
            assert Path(state.log).is_relative_to(lab.root)


def test_down_stops_only_what_up_started(lab: LabInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second lab that uses the session's LocalStack, PowerDNS and Azurite as external servers starts only
    its own S3 server, Swift and SSH hosts, and its down stops only those (all of Swift's servers,
    which leave the process group they were started in)."""
    monkeypatch.setenv("FAILOVER_LAB_LOCALSTACK_ENDPOINT", lab.servers["localstack"].endpoint)
    powerdns = lab.servers["onprem-dns"]
    monkeypatch.setenv("FAILOVER_LAB_POWERDNS_API", powerdns.endpoint)
    monkeypatch.setenv("FAILOVER_LAB_POWERDNS_API_KEY", powerdns.secret_access_key)
    monkeypatch.setenv("FAILOVER_LAB_POWERDNS_NAMESERVER", powerdns.nameserver)
    azurite = lab.servers["azure-blob"]
    monkeypatch.setenv("FAILOVER_LAB_AZURITE_ENDPOINT", azurite.endpoint)
    monkeypatch.setenv("FAILOVER_LAB_AZURITE_ACCOUNT", azurite.access_key_id)
    monkeypatch.setenv("FAILOVER_LAB_AZURITE_KEY", azurite.secret_access_key)
    monkeypatch.setenv("FAILOVER_LAB_CACHE", os.environ.get("FAILOVER_LAB_CACHE") or str(lab.root / "venvs"))
    second = Lab(tmp_path / "second-lab")
    info = second.up()
    try:
        assert info.servers["localstack"].kind == "localstack (external)"
        assert not info.servers["localstack"].started_by_lab
        assert info.servers["onprem-dns"].kind == "powerdns (external)"
        dns = yaml.safe_load(info.providers_file.read_text())["providers"]["onprem"]["dns"]
        assert dns["endpoint"] == powerdns.endpoint and dns["options"]["nameserver"] == powerdns.nameserver
        own = info.servers["onprem-s3"]
        assert own.started_by_lab
        assert own.pid is not None
        assert process.alive(own.pid)
        assert own.endpoint != lab.servers["onprem-s3"].endpoint
        assert Path(own.log).is_relative_to(tmp_path / "second-lab")
    finally:
        stopped = second.down()
    assert stopped == ["onprem-s3", "swift", "ssh-hosts"]  # its own: the SSH hosts are always the lab's
    swift_servers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "second-lab" / "swift" / "etc")], capture_output=True, text=True, check=False
    )
    assert swift_servers.stdout == "", "no Swift server outlives lab down"
    assert not process.alive(own.pid)
    status = Lab(lab.root).status()
    assert all(status.health.values()), "the session lab must be untouched"
