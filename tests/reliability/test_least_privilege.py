"""Least privilege, where a server enforces it: SeaweedFS identities limited to single actions on
single buckets. A read-and-list-only identity on the source and a write identity on the target
are enough for a sync; with one permission missing the sync stops at once, naming it. The AWS IAM
policies that grant the same are in playbooks/iam/ (and RELIABILITY.md)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from failover.lab import LabInfo
from failover.lab.servers import S3Server, ServerState
from failover.providers.s3.errors import PERMISSIONS

from tests.reliability import dataset

REPO = Path(__file__).resolve().parents[2]
SRC, DST = "lp-src", "lp-dst"
IDENTITIES = {
    "reader": [f"Read:{SRC}", f"List:{SRC}"],
    "writer": [f"Read:{DST}", f"Write:{DST}", f"List:{DST}", f"Tagging:{DST}"],
    "writer-no-list": [f"Read:{DST}", f"Write:{DST}", f"Tagging:{DST}"],
    "reader-no-read": [f"List:{SRC}"],
}


@pytest.fixture(scope="module")
def server(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("least-privilege")
    keys = {name: ("lp" + secrets.token_hex(6), "CANARY-lp-" + secrets.token_hex(10)) for name in IDENTITIES}
    identities = [
        {"name": name, "credentials": [{"accessKey": key, "secretKey": secret}], "actions": IDENTITIES[name]}
        for name, (key, secret) in keys.items()
    ]
    s3 = S3Server(root, identities)
    avoid = {port for state in lab.servers.values() for port in state.ports.values()}
    state: ServerState = s3.start(None, avoid)
    try:
        deadline = time.monotonic() + 90
        while not s3.healthy(state):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        admin = state.client("s3")
        items = {k: v for k, v in dataset.build(25, 1, 9).items() if not k.startswith("awkward/")}
        dataset.seed(admin, SRC, items)  # (keys this source cannot hold are not the point here)
        admin.create_bucket(Bucket=DST)
        providers: dict[str, Any] = {"version": 1, "providers": {}}
        env = {}
        for name, (key, secret) in keys.items():
            variable = name.upper().replace("-", "_")
            env[f"LP_{variable}_KEY"], env[f"LP_{variable}_SECRET"] = key, secret
            providers["providers"][name] = {
                "endpoint": state.endpoint,
                "credentials": {"key_env": f"LP_{variable}_KEY", "secret_env": f"LP_{variable}_SECRET"},
                "storage": {"type": "s3", "options": {"vendor": "seaweedfs"}},
            }
        path = root / "providers.yaml"
        path.write_text(yaml.safe_dump(providers))
        yield {"providers": path, "env": env, "admin": admin, "state_dir": root / "state"}
    finally:
        s3.stop(state)


def sync(server: dict[str, Any], source: str, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **server["env"], "FAILOVER_PROVIDERS": str(server["providers"])}
    env["FAILOVER_STATE_DIR"] = str(server["state_dir"])
    result = subprocess.run(
        [sys.executable, "-m", "failover", "--json", "sync", f"{source}:{SRC}", f"{target}:{DST}", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in result.stderr and "CANARY-lp" not in result.stdout + result.stderr
    return result


def test_read_and_list_on_the_source_write_on_the_target_is_enough(server: dict[str, Any], record: Any) -> None:
    result = sync(server, "reader", "writer")
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["errors"] or report["aborted"]
    assert report["totals"]["copied"] == report["totals"]["listed"] > 0
    record("least privilege: read-only source, write target", exit=result.returncode, copied=report["totals"]["copied"])


@pytest.mark.parametrize(
    ("source", "target", "missing", "where"),
    [("reader", "writer-no-list", "s3:ListBucket", DST), ("reader-no-read", "writer", "s3:GetObject", SRC)],
)
def test_a_missing_permission_is_named(
    server: dict[str, Any], record: Any, source: str, target: str, missing: str, where: str
) -> None:
    started = time.monotonic()
    result = sync(server, source, target)
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    message = result.stderr + json.dumps(report)
    assert result.returncode == 4, message
    assert f"lack {missing} on {where}" in message
    record(
        f"least privilege: {target if source == 'reader' else source} lacks {missing}",
        exit=result.returncode,
        seconds=round(time.monotonic() - started, 1),
    )


def test_the_shipped_policies_grant_what_the_operations_need() -> None:
    granted = set()
    for name in ("source-read-only.json", "target-write.json"):
        policy = json.loads((REPO / "playbooks" / "iam" / name).read_text())
        granted |= {action for statement in policy["Statement"] for action in statement["Action"]}
    needed = {part.split(" ")[0] for value in PERMISSIONS.values() for part in value.split(" and ")}
    needed -= {"s3:DeleteBucket"}  # failover never deletes a bucket in a sync
    assert needed <= granted, needed - granted
