"""kill -9 at every failpoint of the journal during a sync from LocalStack to Azure Blob storage
(Azurite, through libcloud's driver), then a resume: nothing the journal had verified is sent again,
and Microsoft's Azure SDK finds every object with the source's bytes. (The rest of the reliability
suite runs against its own SeaweedFS behind a fault proxy; this is the same crash class on a store
of another family.)"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from failover.lab import LabInfo

from failover.capabilities import Capability
from failover.failpoints import POINTS
from failover.registry import declared_storage_capabilities
from tests.helpers import azure_blobs, raw_s3, run_cli, seed, unique
from tests.reliability.conftest import SIZES

MULTIPART_POINTS = {"journal.upload_intent", "journal.upload_started", "journal.part"}


def _azure_objects(lab: LabInfo, container: str) -> dict[str, dict[str, Any]]:
    client = azure_blobs(lab).get_container_client(container)
    return {
        blob.name: {"sha256": hashlib.sha256(client.download_blob(blob.name).readall()).hexdigest(), "etag": blob.etag}
        for blob in client.list_blobs()
    }


@pytest.mark.parametrize("point", sorted(POINTS))
def test_kill_9_at_each_journal_point_then_resume_to_azure(
    lab: LabInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(tmp_path / "state"))
    declared = declared_storage_capabilities("libcloud", {"driver": "azure_blobs"})
    if point in MULTIPART_POINTS and Capability.MULTIPART not in declared:
        pytest.skip(
            f"declared: azure declares no multipart upload (libcloud sends blocks), so {point} is never reached"
        )
    bucket = unique("az-crash")
    count = max(60, SIZES["crash_small"] // 4)
    # Multipart failpoints need objects above the part size: a few large ones among many small.
    objects = {f"objects/{i:04d}.bin": {"body": os.urandom(2_000 + i)} for i in range(count)}
    objects |= {f"large/{i}.bin": {"body": os.urandom(9 * 1024 * 1024 + i)} for i in range(2)}
    seed(raw_s3(lab, "aws"), bucket, objects)
    nth = 1 if point.startswith("journal.upload") else 2
    env = {**os.environ, "FAILOVER_FAILPOINTS": f"{point}={nth}"}
    argv = [sys.executable, "-m", "failover", "-q", "--json", "sync", f"aws:{bucket}", f"azure:{bucket}"]
    killed = subprocess.run([*argv, "--max-workers", "8"], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, f"the failpoint {point} was reached and killed the run: {killed.stderr[-500:]}"

    before = _azure_objects(lab, bucket)
    [journal] = list((tmp_path / "state" / "journals").glob("*.sqlite"))
    with sqlite3.connect(journal) as db:
        verified = {row[0] for row in db.execute("SELECT src_key FROM objects WHERE state = 'verified'")}

    resumed = run_cli("--json", "sync", f"aws:{bucket}", f"azure:{bucket}")
    assert resumed.code == 0, resumed.stderr
    after = _azure_objects(lab, bucket)
    assert set(after) == set(objects)
    for key, spec in objects.items():
        assert after[key]["sha256"] == hashlib.sha256(spec["body"]).hexdigest(), key
    rewritten = {key for key in verified if after[key]["etag"] != before[key]["etag"]}
    assert rewritten == set(), "nothing verified before the kill was sent again"
