"""The reliability rig: the lab's LocalStack as the source and a SeaweedFS of its own as the target
(so a test may kill and restart it), each behind a seeded fault-injecting proxy, and a providers
file naming them. Plain boto3 clients straight to the servers are the independent readers.

Profiles: ``FAILOVER_RELIABILITY=pr`` (default, part of the test command) or ``large`` (on demand).
Every scenario records its figures in ``.lab/reliability/<profile>.json`` for RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.config import Config
from failover.lab import LabInfo, process
from failover.lab.servers import S3Server, ServerState

from tests.reliability.faultproxy import FaultProxy, Plan

REPO = Path(__file__).resolve().parents[2]
PROFILE = os.environ.get("FAILOVER_RELIABILITY", "pr")
SIZES = {
    "pr": {"small": 1200, "large": 3, "large_mib": 12, "crash_small": 300},
    "large": {"small": 12000, "large": 12, "large_mib": 40, "crash_small": 3000},
}[PROFILE]
RESULTS = REPO / ".lab" / "reliability" / f"{PROFILE}.json"
TIMEOUT = {"pr": 300, "large": 1800}[PROFILE]
"""Seconds any one test may take (pytest-timeout): no hang, at either profile's size."""

# The rig's target runs with canary credentials: test_secrets looks for them everywhere.
CANARY_SECRET = "CANARY-rig-secret-" + secrets.token_hex(8)
CANARY_KEY = "canarykey" + secrets.token_hex(4)
RIG_KEY = "FAILOVER_RIG_TARGET_KEY"
RIG_SECRET = "FAILOVER_RIG_TARGET_SECRET"


@dataclass
class Target:
    """The rig's own SeaweedFS: started here, killable, restartable on the same ports."""

    server: S3Server
    state: ServerState
    avoid: set[int]

    def kill(self) -> None:
        assert self.state.pid
        process.stop(self.state.pid, timeout=0.5)

    def restart(self) -> None:
        self.state = self.server.start(self.state, self.avoid)
        deadline = time.monotonic() + 60
        while not self.server.healthy(self.state):
            assert time.monotonic() < deadline, "the rig's SeaweedFS did not come back"
            time.sleep(0.2)


@dataclass
class Rig:
    lab: LabInfo
    target: Target
    providers: Path
    source_proxy: FaultProxy
    target_proxy: FaultProxy
    env: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    """Everything every command run against the rig printed (scanned for canaries)."""

    def reader(self, side: str) -> Any:
        """boto3 straight to a server (no proxy, not failover's code)."""
        state = self.lab.servers["localstack"] if side == "source" else self.target.state
        return state.client(
            "s3", config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required")
        )

    def target_writes(self) -> int:
        """Write requests the target's proxy has seen since the last :meth:`faults`."""
        requests = self.target_proxy.stats.requests
        return sum(n for kind, n in requests.items() if kind in ("put", "part", "create_upload", "complete", "delete"))

    def restart_target(self) -> None:
        """Start the killed target again (same ports when free) and point the proxy at it."""
        self.target.restart()
        self.target_proxy.retarget(self.target.state.endpoint)

    def faults(self, source: Plan | None = None, target: Plan | None = None) -> None:
        """Swap the fault plans (and reset the counters) of both proxies."""
        for proxy, plan in ((self.source_proxy, source), (self.target_proxy, target)):
            proxy.plan = plan or Plan()
            proxy.reset()


def _write_providers(path: Path, lab: LabInfo, source: FaultProxy, target: FaultProxy) -> None:
    timeouts = {"connect_timeout": 2, "read_timeout": 4}
    document = {
        "version": 1,
        "providers": {
            "src": {
                "endpoint": source.endpoint,
                "credentials": {
                    "key_env": "FAILOVER_LAB_AWS_ACCESS_KEY_ID",
                    "secret_env": "FAILOVER_LAB_AWS_SECRET_ACCESS_KEY",
                },
                "storage": {"type": "s3", "options": {"vendor": "localstack", **timeouts}},
            },
            "dst": {
                "endpoint": target.endpoint,
                "credentials": {"key_env": RIG_KEY, "secret_env": RIG_SECRET},
                "storage": {"type": "s3", "options": {"vendor": "seaweedfs", **timeouts}},
            },
        },
    }
    path.write_text(yaml.safe_dump(document))


@pytest.fixture(scope="session")
def rig(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("rig")
    server = S3Server(root)
    avoid = {port for state in lab.servers.values() for port in state.ports.values()}
    canary = ServerState(S3Server.name, "seaweedfs", "", access_key_id=CANARY_KEY, secret_access_key=CANARY_SECRET)
    state = server.start(canary, avoid)
    target = Target(server, state, avoid)
    try:
        deadline = time.monotonic() + 90
        while not server.healthy(state):
            assert time.monotonic() < deadline, "the rig's SeaweedFS did not start"
            time.sleep(0.3)
        source_proxy = FaultProxy(lab.servers["localstack"].endpoint)
        target_proxy = FaultProxy(state.endpoint)
        providers = root / "providers.yaml"
        _write_providers(providers, lab, source_proxy, target_proxy)
        env = {
            "FAILOVER_PROVIDERS": str(providers),
            RIG_KEY: state.access_key_id,
            RIG_SECRET: state.secret_access_key,
            "FAILOVER_STATE_DIR": str(root / "state"),
        }
        # The target's upstream address moves if it restarts on other ports: the proxy follows.
        yield Rig(lab, target, providers, source_proxy, target_proxy, env)
        source_proxy.close()
        target_proxy.close()
    finally:
        server.stop(target.state)


_results: dict[str, Any] = {}


class Recorder:
    """``record(scenario, **figures)``: kept for RELIABILITY.md; ``record.get(scenario)``."""

    def __call__(self, scenario: str, **figures: Any) -> None:
        _results[scenario] = figures

    def get(self, scenario: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = _results.get(scenario)
        return found


@pytest.fixture(scope="session")
def record() -> Iterator[Recorder]:
    yield Recorder()
    if _results:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        RESULTS.write_text(json.dumps({**previous, **_results, "profile": PROFILE}, indent=2, default=str) + "\n")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.timeout(TIMEOUT))
