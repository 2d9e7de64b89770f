"""Secret hygiene: the rig's target runs with canary credentials and the lab's own secrets are
known; every command (failures and --debug included) must leave none of them, in any encoding,
and no request signature, in stdout, stderr, log files, journals, reports, run states or temporary
files. Runs after the fault, bad-input and scenario tests, so it scans what they left too."""

from __future__ import annotations

import base64
import os
import pickle
import re
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import unique
from tests.reliability import dataset
from tests.reliability.conftest import CANARY_SECRET, Rig
from tests.reliability.faultproxy import Plan
from tests.reliability.test_bad_input import cli

SIGNATURE = re.compile(rb"(?i)signature[=:]\s*[0-9a-f]{16}")


def forms(secret: str) -> set[bytes]:
    raw = secret.encode()
    found = {
        raw,
        base64.b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        urllib.parse.quote(secret, safe="").encode(),
        urllib.parse.quote_plus(secret).encode(),
    }
    return {f for f in found if len(f) >= 8}


def scan(blob: bytes, needles: set[bytes]) -> list[str]:
    hits = [needle.decode(errors="replace")[:12] + "..." for needle in needles if needle in blob]
    hits += [match.group(0).decode(errors="replace")[:24] for match in SIGNATURE.finditer(blob)]
    return hits


def test_no_secret_leaves_a_trace(rig: Rig, record: Any, tmp_path: Path) -> None:
    lab_secrets = [state.secret_access_key for state in rig.lab.servers.values() if state.secret_access_key]
    needles = {form for secret in [CANARY_SECRET, *lab_secrets] for form in forms(secret)}
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {"TMPDIR": str(private_tmp), "FAILOVER_DEBUG": "1"}

    bucket = unique("canary")
    dataset.seed(rig.reader("source"), bucket, dataset.build(30, 1, 9))
    playbook = tmp_path / "canary.yaml"
    playbook.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "name": "canary",
                "description": "copy and prove, with debug logs",
                "steps": [
                    {"id": "copy", "kind": "sync", "source": f"src:{bucket}", "target": f"dst:{bucket}"},
                    {"id": "prove", "kind": "verify", "source": f"src:{bucket}", "target": f"dst:{bucket}"},
                ],
            }
        )
    )
    commands: list[tuple[list[str], dict[str, str]]] = [
        (["providers", "check"], {}),
        (["ls", "dst:"], {}),
        (["sync", f"src:{bucket}", f"dst:{bucket}", "--dry-run"], {}),
        (["sync", f"src:{bucket}", f"dst:{bucket}"], {}),  # with faults (below): retries, errors in the logs
        (["verify", f"src:{bucket}", f"dst:{bucket}"], {}),
        (["sync", f"src:{bucket}", f"dst:{bucket}-x"], {"FAILOVER_RIG_TARGET_SECRET": CANARY_SECRET + "-wrong"}),
        (["sync", f"src:{bucket}", f"dst:{bucket}-y"], {"FAILOVER_RIG_TARGET_KEY": "nobody-at-all"}),
        (["run", str(playbook), "--yes"], {}),
        (["run", str(playbook), "--dry-run"], {}),
        # On a Dask cluster: tasks, worker logs and Dask's scratch space (under the private TMPDIR).
        (["sync", f"src:{bucket}", f"dst:{bucket}-c", "--cluster", "local:2"], {}),
        (["verify", f"src:{bucket}", f"dst:{bucket}-c", "--cluster", "local:2"], {}),
    ]
    rig.faults(target=Plan(seed=3, rates={"slowdown": 0.1, "error500": 0.1, "complete_error": 0.5}))
    for number, (args, extra) in enumerate(commands):
        log = logs / f"{number}.log"
        result = cli(rig, "--debug", "--log-file", str(log), *args, env={**env, **extra})
        assert result.returncode in (0, 1, 3, 4), (args, result.stderr[-2000:])
    rig.faults()
    assert (logs / "3.log").stat().st_size > 10_000, "the debug log really has the requests in it"

    hits: dict[str, list[str]] = {}
    scanned_files = scanned_bytes = 0
    for index, output in enumerate(rig.outputs):
        found = scan(output.encode(), needles)
        if found:
            hits[f"output of command {index}"] = found
    roots = [logs, private_tmp, Path(rig.env["FAILOVER_STATE_DIR"])]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                blob = path.read_bytes()
                scanned_files += 1
                scanned_bytes += len(blob)
                found = scan(blob, needles)
                if found:
                    hits[str(path)] = found
    record(
        "secrets",
        secrets_checked=len(lab_secrets) + 1,
        encodings_per_secret=len(forms(CANARY_SECRET)),
        commands_captured=len(rig.outputs),
        files_scanned=scanned_files,
        bytes_scanned=scanned_bytes,
        canary_hits=sum(len(v) for v in hits.values()),
    )
    # What every cluster task carries (the job), as it travels: pickled.
    from failover.cluster.tasks import Job
    from failover.config import load_providers

    providers = load_providers(Path(rig.env["FAILOVER_PROVIDERS"]))
    job = pickle.dumps(Job(providers.file, providers.path, f"src:{bucket}", f"dst:{bucket}"))
    found_in_job = scan(job, needles)
    if found_in_job:
        hits["a cluster task's job"] = found_in_job
    assert hits == {}, hits
    assert os.environ.get("FAILOVER_RIG_TARGET_SECRET") is None, "the secret only ever lived in subprocess envs"
