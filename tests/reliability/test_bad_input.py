"""Bad input: each refused before anything is written, with a message that says what is wrong and
where, a non-zero exit, and no traceback. The proxy in front of the target counts what reached it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from failover.lab.servers import _Installer, unpack_debian

from tests.helpers import unique
from tests.reliability import dataset
from tests.reliability.conftest import Rig
from tests.reliability.faultproxy import Plan

ALIAS_BOMB = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)
)


def cli(
    rig: Rig, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the rig; no traceback unless --debug asked for one; every output kept
    for the secret scan (test_secrets.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "failover", *args],
        env={**os.environ, **rig.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    debug = "--debug" in args or (env or {}).get("FAILOVER_DEBUG") == "1"
    assert debug or "Traceback" not in result.stderr, result.stderr  # --debug shows them on purpose
    rig.outputs.append(result.stdout + result.stderr)
    return result


@pytest.fixture
def tally(record: Any) -> Any:
    """Counts the bad inputs tried and refused, for RELIABILITY.md."""
    found: dict[str, int] = {"tried": 0, "refused": 0}
    yield found
    previous = record.get("bad input") or {"tried": 0, "refused": 0}
    record("bad input", tried=previous["tried"] + found["tried"], refused=previous["refused"] + found["refused"])


def refused(
    rig: Rig, tally: dict[str, int], args: list[str], code: int | tuple[int, ...], *expected: str, **env: str
) -> subprocess.CompletedProcess[str]:
    rig.faults()
    before = rig.target_writes()
    tally["tried"] += 1
    result = cli(rig, *args, env=env or None)
    codes = code if isinstance(code, tuple) else (code,)
    assert result.returncode in codes, (result.returncode, result.stderr)
    for part in expected:
        assert part in result.stderr + result.stdout, (part, result.stderr)
    assert rig.target_writes() == before, "nothing was written"
    tally["refused"] += 1
    return result


BROKEN_PROVIDERS = {
    "malformed": "version: 1\nproviders:\n  dst: {type: s3\n",
    "duplicate-key": "version: 1\nproviders:\n  dst: {type: s3}\n  dst: {type: local}\n",
    "unknown-field": "version: 1\nproviders:\n  dst: {type: s3, colour: blue}\n",
    "python-tag": "version: 1\nproviders: !!python/object/apply:os.system ['true']\n",
    "alias-bomb": ALIAS_BOMB,
    "inline-secret": (
        "version: 1\nproviders:\n  dst: {type: s3, credentials: {secret_access_key: CANARY-inline-1234}}\n"
    ),
    "secret-in-endpoint": "version: 1\nproviders:\n  dst: {type: s3, endpoint: 'http://KEY:CANARY-inline-1234@127.0.0.1:9'}\n",
    "huge-integer": "version: 1\nproviders:\n  dst:\n    type: s3\n    options: {part_size_mib: " + "9" * 5001 + "}\n",
    "nested-20000-deep": "version: 1\nproviders:\n  dst: {type: s3, options: {operations: "
    + "[" * 20000
    + "]" * 20000
    + "}}\n",
    "broken-ipv6-endpoint": "version: 1\nproviders:\n  dst: {type: s3, endpoint: 'http://[::1'}\n",
}
# file:line and what is wrong, for the cases that are not about YAML syntax
WHERE_PROVIDERS = {
    "secret-in-endpoint": (":3", "holds credentials"),
    "huge-integer": (":5", "4300 digits"),
    "nested-20000-deep": (":3", "nested more than"),
    "broken-ipv6-endpoint": (":3", "not a valid URL"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PROVIDERS))
def test_broken_providers_files(rig: Rig, tally: dict[str, int], tmp_path: Path, case: str) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(BROKEN_PROVIDERS[case])
    result = refused(
        rig, tally, ["--providers", str(path), "sync", "src:b", "dst:b"], 2, str(path), *WHERE_PROVIDERS.get(case, ())
    )
    assert "CANARY-inline" not in result.stdout + result.stderr
    assert "hint:" in result.stderr or case in ("unknown-field", "inline-secret", "duplicate-key", "python-tag")


BROKEN_PLAYBOOKS = {
    "malformed": ("version: 1\nname: x\n  steps: [\n", ":3"),
    "duplicate-key": ("version: 1\nname: x\nname: y\n", ":3"),
    "unknown-field": ("version: 1\nname: x\ndescription: d\nsteps:\n  - {id: a, kind: approval, mesage: m}\n", ":5"),
    "python-tag": ("version: 1\nname: !!python/object/apply:os.system ['true']\n", ":2"),
    "alias-bomb": (ALIAS_BOMB, "alias bomb"),
    "unknown-provider": (
        "version: 1\nname: x\ndescription: d\nsteps:\n  - {id: a, kind: sync, source: 'nowhere:', target: 'dst:'}\n",
        "unknown provider 'nowhere'",
    ),
    "huge-integer": (
        "version: 1\nname: x\ndescription: d\nsteps:\n  - {id: a, kind: approval, message: m}\nbudgets:\n"
        "  recovery_time_s: " + "9" * 5001 + "\n",
        ":7",
    ),
    "nested-20000-deep": (
        "version: 1\nname: x\ndescription: d\nvariables: {v: " + "[" * 20000 + "]" * 20000 + "}\nsteps: []\n",
        ":4",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PLAYBOOKS))
def test_broken_playbooks(rig: Rig, tally: dict[str, int], tmp_path: Path, case: str) -> None:
    text, where = BROKEN_PLAYBOOKS[case]
    path = tmp_path / "play.yaml"
    path.write_text(text)
    refused(rig, tally, ["run", str(path), "--yes"], 2, where)
    assert not (Path(rig.env["FAILOVER_STATE_DIR"]) / "runs" / "x").exists(), "no run state for a refused playbook"


def test_unknown_provider_and_bad_locations(rig: Rig, tally: dict[str, int]) -> None:
    refused(rig, tally, ["sync", "nowhere:b", "dst:b"], 2, "unknown provider 'nowhere'", "known providers")
    refused(rig, tally, ["sync", "src", "dst:b"], 2, "is not a location")
    refused(rig, tally, ["sync", "src:b", "dst:b/"], (1, 2, 3))  # a missing source bucket: nothing written


def test_bad_credentials_fail_fast_without_a_retry_storm(rig: Rig, tally: dict[str, int]) -> None:
    bucket = unique("creds")
    dataset.seed(rig.reader("source"), bucket, dataset.build(20, 0, 0))
    rig.faults()
    result = refused(
        rig,
        tally,
        ["sync", f"src:{bucket}", f"dst:{bucket}"],
        4,
        "SignatureDoesNotMatch",
        FAILOVER_RIG_TARGET_SECRET="CANARY-wrong-77ab",
    )
    assert rig.target_proxy.stats.auth_failures <= 2, "one refusal is enough to stop"
    assert "CANARY-wrong-77ab" not in result.stdout + result.stderr


def test_bucket_name_invalid_on_the_target(rig: Rig, tally: dict[str, int]) -> None:
    bucket = unique("names")
    dataset.seed(rig.reader("source"), bucket, dataset.build(3, 0, 0))
    refused(rig, tally, ["sync", f"src:{bucket}", "dst:Not_A_Bucket"], 2, "'Not_A_Bucket' is not a valid bucket name")
    refused(rig, tally, ["sync", "src:", "dst:", "--bucket-map", f"{bucket}=UPPER"], 2, "not a valid bucket name")


def test_keys_invalid_on_the_target_by_policy(rig: Rig, tally: dict[str, int], tmp_path: Path) -> None:
    items = dataset.build(10, 0, 0)  # with every awkward key
    bucket = unique("keys")
    dataset.seed(rig.reader("source"), bucket, items)
    # abort: the whole bucket is looked at first; nothing is written, not even the bucket.
    abort = refused(
        rig, tally, ["sync", f"src:{bucket}", f"dst:{bucket}", "--invalid-keys", "abort"], 1, "nothing was written"
    )
    assert "key_empty_segments" in abort.stdout + abort.stderr
    assert bucket not in [b["Name"] for b in rig.reader("target").list_buckets().get("Buckets", [])]
    # skip: the rest is copied, the refused keys are reported, and the exit says not everything is there.
    tally["tried"] += 1
    skip = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--invalid-keys", "skip")
    report = json.loads(skip.stdout)
    assert skip.returncode == 1 and report["totals"]["skipped"] == 5
    assert {item["key"] for item in report["skipped_keys"]} == {
        "awkward/a//b///c",
        "awkward/folder/",
        "awkward/a/./b/../c/.../d",
        "awkward/reports\\2024\\q1.csv",
        "awkward/" + "x" * (1024 - len("awkward/")),
    }
    tally["refused"] += 1


def test_two_source_keys_landing_on_one_target_name(rig: Rig, tally: dict[str, int], tmp_path: Path) -> None:
    """A target that normalises Unicode (as macOS file systems do) holds "café" in NFC and NFD as one
    name: both are refused, and neither overwrites the other."""
    bucket = unique("collide")
    nfc, nfd = "caf\u00e9.txt", "cafe\u0301.txt"
    source = rig.reader("source")
    source.create_bucket(Bucket=bucket)
    source.put_object(Bucket=bucket, Key=nfc, Body=b"composed")
    source.put_object(Bucket=bucket, Key=nfd, Body=b"decomposed")
    source.put_object(Bucket=bucket, Key="plain.txt", Body=b"plain")
    providers = yaml.safe_load(Path(rig.env["FAILOVER_PROVIDERS"]).read_text())
    providers["providers"]["mac"] = {
        "storage": {
            "type": "local",
            "options": {"root": str(tmp_path / "mac"), "create_root": True, "normalize_unicode": "NFD"},
        }
    }
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(providers))
    tally["tried"] += 1
    result = cli(rig, "--json", "--providers", str(path), "sync", f"src:{bucket}", f"mac:{bucket}")
    report = json.loads(result.stdout)
    assert result.returncode == 1
    reasons = {item["key"]: item["reason"] for item in report["skipped_keys"]}
    assert set(reasons) == {nfc, nfd} and all("same target key" in r for r in reasons.values())
    stored = sorted(p.name for p in (tmp_path / "mac" / bucket).iterdir() if not p.name.startswith("%"))
    assert stored == ["plain.txt"], "neither spelling was written"
    tally["refused"] += 1
    refused(
        rig,
        tally,
        ["--providers", str(path), "sync", f"src:{bucket}", f"mac:{bucket}-2", "--invalid-keys", "abort"],
        1,
        "land on one target key",
    )


def test_sizes_from_zero_to_beyond_the_single_put_limit_are_planned(tmp_path: Path, rig: Rig) -> None:
    """Sparse files on a local-disk source (no disk space used): the plan says how each would be
    sent; nothing is uploaded. Objects larger than the target allows are refused by name."""
    root = tmp_path / "disk"
    bucket = root / "big"
    bucket.mkdir(parents=True)
    mib, gib, tib = 1024**2, 1024**3, 1024**4
    sizes = {"zero": 0, "part-1": 8 * mib - 1, "part": 8 * mib, "part+1": 8 * mib + 1, "6GiB": 6 * gib, "6TiB": 6 * tib}
    for name, size in sizes.items():
        with open(bucket / name, "wb") as handle:
            handle.truncate(size)
    providers = yaml.safe_load(Path(rig.env["FAILOVER_PROVIDERS"]).read_text())
    providers["providers"]["disk"] = {"storage": {"type": "local", "options": {"root": str(root)}}}
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(providers))
    rig.faults()
    before = rig.target_writes()
    result = cli(rig, "--json", "--providers", str(path), "sync", "disk:big", "dst:big", "--dry-run")
    plan = json.loads(result.stdout)
    bucket_plan = plan["buckets"][0]
    assert bucket_plan["to_copy"] == 5 and bucket_plan["to_copy_bytes"] == sum(
        v for k, v in sizes.items() if k != "6TiB"
    )
    assert [item["key"] for item in plan["skipped_keys"]] == ["6TiB"]
    assert "exceeds this store's limit" in plan["skipped_keys"][0]["reason"]
    assert rig.target_writes() == before


def test_clock_skew_is_named_and_fails_fast(rig: Rig, tally: dict[str, int], tmp_path: Path) -> None:
    """The toolkit's clock 30 minutes behind (libfaketime, from Debian's packages): SeaweedFS refuses
    the signatures as too old; the message says the clock is the problem, after one refusal."""
    with _Installer(rig.lab.root) as installer:
        cache = installer.root / "libfaketime"
        if not (cache / ".failover-installed").exists():
            unpack_debian(["libfaketime"], cache, hint="install libfaketime")
            (cache / ".failover-installed").write_text("libfaketime")
    library = next((cache / "root").glob("usr/lib/*/faketime/libfaketime.so.1"))
    bucket = unique("skew")
    dataset.seed(rig.reader("source"), bucket, dataset.build(5, 0, 0))
    rig.faults(target=Plan())
    result = refused(
        rig,
        tally,
        ["sync", f"src:{bucket}", f"dst:{bucket}"],
        4,
        "RequestTimeTooSkewed",
        "clock",
        LD_PRELOAD=str(library),
        FAKETIME="-30m",
        DONT_FAKE_MONOTONIC="1",
    )
    assert rig.target_proxy.stats.auth_failures <= 2
    assert "NTP" in result.stderr
