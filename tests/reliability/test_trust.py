"""Nothing lost, nothing falsely verified: each way found to lose or misreport data, reproduced on
the lab's real servers (LocalStack as the source, the rig's SeaweedFS as the target, each behind
the fault proxy) and checked with plain boto3 readers, never failover's own code."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import yaml

from failover.config import load_providers
from failover.connect import open_store
from failover.location import parse_location
from failover.sync import SyncEngine, SyncOptions, VerifyOptions, run_verify
from failover.sync.keys import encode_key
from tests.helpers import list_keys, unique
from tests.reliability import dataset
from tests.reliability.conftest import Rig
from tests.reliability.faultproxy import Plan
from tests.reliability.test_bad_input import cli

MIB = 1024 * 1024


def put_many(client: Any, bucket: str, objects: dict[str, bytes]) -> None:
    try:
        client.create_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as error:
        if "BucketAlreadyOwnedByYou" not in str(error):
            raise
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))


def contents(client: Any, bucket: str) -> dict[str, str]:
    """key -> sha256 of what the target holds, read with plain boto3."""
    keys = list_keys(client, bucket)

    def digest(key: str) -> str:
        return hashlib.sha256(client.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return dict(zip(keys, pool.map(digest, keys), strict=True))


def sha(objects: dict[str, bytes]) -> dict[str, str]:
    return {key: hashlib.sha256(body).hexdigest() for key, body in objects.items()}


def unicode_keys(ascii_first: int, accented: int, cjk: int) -> dict[str, bytes]:
    """More than a page of ASCII keys, then keys beginning with non-ASCII letters: the shape with
    which LocalStack 2026.3.0's listings go wrong (providers/s3/vendors.yaml)."""
    names = [f"posts/{i:05d}.txt" for i in range(ascii_first)]
    names += [f"été/{i:05d}.txt" for i in range(accented)] + [f"日本/{i:05d}.txt" for i in range(cjk)]
    return {name: f"body of {name}".encode() for name in names}


# -- 1. a listing that ends early ----------------------------------------------------------------------


def test_a_listing_that_ends_early_is_never_trusted(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    bucket = unique("unicode")
    objects = unicode_keys(1100, 250, 150)
    put_many(rig.reader("source"), bucket, objects)
    # The emulator's own bug, as its default client meets it: the listing ends early, claiming to
    # be complete, and no error is raised.
    pages = rig.reader("source").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    seen = sum(len(page.get("Contents", [])) for page in pages)
    assert seen < len(objects)
    copy = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}")
    report = json.loads(copy.stdout)
    copied = contents(rig.reader("target"), bucket)
    # Both sides hold the same objects: --delete, from a journal that knows nothing, deletes none.
    again = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--delete", "--journal", str(tmp_path / "j"))
    deleted = len(rig.target_proxy.stats.deletes)
    record(
        "trust 1a: LocalStack listing, non-ASCII keys after a page of ASCII ones, then --delete",
        objects=len(objects),
        default_boto3_paginator_saw=seen,
        listed=report["totals"]["listed"],
        on_target=len(copied),
        deleted_with_delete=deleted,
    )
    assert copy.returncode == 0, copy.stdout[-2000:]
    assert report["totals"]["listed"] == report["totals"]["copied"] == len(objects)
    assert copied == sha(objects)
    assert again.returncode == 0, again.stdout[-2000:]
    assert json.loads(again.stdout)["totals"]["deleted"] == 0 and deleted == 0
    assert contents(rig.reader("target"), bucket) == sha(objects)


def test_listings_that_end_early_or_omit_keys_lose_nothing(rig: Rig, record: Any, tmp_path: Path) -> None:
    """Listing pages cut short while claiming to be complete, and pages that silently leave keys
    out, on both sides at once, with --delete and stale objects on the target: every run's exit
    code says whether it verified everything, no key the source holds is ever deleted, and re-runs
    converge."""
    bucket = unique("listing-faults")
    objects = unicode_keys(1300, 200, 100)
    put_many(rig.reader("source"), bucket, objects)
    stale = {f"stale/{i}": b"only on the target" for i in range(20)}
    put_many(rig.reader("target"), bucket, stale)
    faults = {"listing_ends_early": 0.3, "listing_omits": 0.3}
    limits = {"listing_ends_early": 6, "listing_omits": 6}  # over all runs: later runs are clean
    rig.faults(source=Plan(seed=31, rates=faults, limit=limits), target=Plan(seed=47, rates=faults, limit=limits))
    codes = []
    summaries: list[dict[str, Any]] = []
    for attempt in range(6):
        result = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--delete", "--force", timeout=600)
        codes.append(result.returncode)
        report = json.loads(result.stdout)
        (tmp_path / f"run-{attempt}.json").write_text(result.stdout)
        summaries.append({k: report["totals"][k] for k in ("listed", "copied", "unchanged", "deleted", "kept")})
        summaries[-1]["checks"] = [b["listing_check"] for b in report["buckets"]]
        assert result.returncode == (0 if report["complete"] else 1), report["errors"][:5]
        if result.returncode == 0:
            break
    deleted = [path.split("/", 2)[2] for path in rig.target_proxy.stats.deletes]
    held = contents(rig.reader("target"), bucket)
    record(
        "trust 1b: listing pages ending early and leaving keys out, both sides, --delete",
        objects=len(objects),
        runs_exit_codes=codes,
        omitted_by_faults=rig.source_proxy.stats.omitted_keys + rig.target_proxy.stats.omitted_keys,
        deleted_source_keys=len(set(deleted) & set(objects)),
        missing=len(set(objects) - set(held)),
    )
    assert codes[-1] == 0, codes
    assert not set(deleted) & set(objects), "a key the source holds was deleted"
    assert len(set(objects) - set(held)) == 0, summaries
    assert {k: v for k, v in held.items() if k in objects} == sha(objects)
    assert not set(held) & set(stale), "the stale objects go once the listings are confirmed"


def test_a_target_listing_that_leaves_keys_out_still_deletes_them(rig: Rig, record: Any) -> None:
    """--delete chooses what to delete from the target listing: a page that silently leaves keys
    out would keep objects the source no longer holds, and the run would still exit 0. The target's
    second listing finds them; each is still looked up on the source before it goes."""
    bucket = unique("target-omits")
    objects = {f"keep/{i:03d}": f"source {i}".encode() for i in range(30)}
    put_many(rig.reader("source"), bucket, objects)
    stale = {f"stale/{i:03d}": b"only on the target" for i in range(40)}
    put_many(rig.reader("target"), bucket, stale)
    # Only the first listing page of the target is damaged: it lists nothing but the stale keys.
    rig.faults(target=Plan(seed=5, rates={"listing_omits": 1.0}, limit={"listing_omits": 1}))
    result = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--delete", "--force")
    report = json.loads(result.stdout)
    held = contents(rig.reader("target"), bucket)
    omitted = rig.target_proxy.stats.omitted_keys
    record(
        "trust 1c: a target listing page leaving keys out, --delete",
        omitted_by_faults=omitted,
        exit=result.returncode,
        stale_left=len(set(held) & set(stale)),
        check=[b["target_listing_check"] for b in report["buckets"]],
    )
    assert omitted, "the fault fired"
    assert result.returncode == 0, report["errors"]
    assert not set(held) & set(stale), f"kept although the source does not hold them: {sorted(set(held) & set(stale))}"
    assert {k: v for k, v in held.items() if k in objects} == sha(objects)
    assert report["buckets"][0]["target_listing_check"].startswith("cross-checked: ")


# -- 2. a resumed multipart upload and a source that changed -------------------------------------------


def test_a_resumed_upload_never_mixes_two_versions(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    bucket = unique("versions")
    old = os.urandom(20 * MIB)
    put_many(rig.reader("source"), bucket, {"video.mp4": old, "small.txt": b"x"})
    killed = cli(rig, "sync", f"src:{bucket}", f"dst:{bucket}", env={"FAILOVER_FAILPOINTS": "journal.part=2"})
    assert killed.returncode == -9
    new = os.urandom(20 * MIB)
    rig.reader("source").put_object(Bucket=bucket, Key="video.mp4", Body=new)  # overwritten meanwhile
    resumed = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}")
    report = json.loads(resumed.stdout)
    assert resumed.returncode == 0, report["errors"]
    held = contents(rig.reader("target"), bucket)
    verified = cli(rig, "--json", "verify", f"src:{bucket}", f"dst:{bucket}")
    trusted = cli(rig, "--json", "verify", f"src:{bucket}", f"dst:{bucket}", "--trust-digests")
    orphans = dataset.orphans(rig.reader("target"), bucket)
    record(
        "trust 2: kill -9 mid multipart upload, source overwritten, re-run",
        exit=resumed.returncode,
        target_is_new_version=held["video.mp4"] == hashlib.sha256(new).hexdigest(),
        uploads_abandoned=report["multipart"].get("abandoned_source_changed"),
        verify_exit=verified.returncode,
        orphans=len(orphans),
    )
    assert held["video.mp4"] == hashlib.sha256(new).hexdigest(), "the target holds the new version, whole"
    assert report["multipart"].get("abandoned_source_changed") == 1
    assert verified.returncode == 0 and json.loads(verified.stdout)["matching"] == 2
    assert trusted.returncode == 0
    assert orphans == []


# -- 3. a target's record believed over its bytes ------------------------------------------------------


def test_what_verify_finds_different_is_repaired_by_the_next_sync(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    bucket = unique("tampered")
    objects = {f"doc/{i:03d}.bin": os.urandom(2048) for i in range(30)}
    put_many(rig.reader("source"), bucket, objects)
    assert cli(rig, "sync", f"src:{bucket}", f"dst:{bucket}").returncode == 0
    target = rig.reader("target")
    for key in ("doc/003.bin", "doc/017.bin"):  # same size, metadata (the recorded digest) kept
        head = target.head_object(Bucket=bucket, Key=key)
        target.put_object(Bucket=bucket, Key=key, Body=os.urandom(2048), Metadata=head["Metadata"])
    plain = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}")
    assert json.loads(plain.stdout)["verified"]["earlier_unchanged"] == 30, "says what it did not read"
    verify = cli(rig, "--json", "verify", f"src:{bucket}", f"dst:{bucket}")
    assert verify.returncode == 1 and json.loads(verify.stdout)["counts"]["different"] == 2
    repair = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}")
    report = json.loads(repair.stdout)
    assert repair.returncode == 0
    assert sorted(item["key"] for item in report["keys"]["repaired"]) == ["doc/003.bin", "doc/017.bin"]
    assert contents(target, bucket) == sha(objects)
    # --checksum finds the same without a verify first.
    target.put_object(Bucket=bucket, Key="doc/020.bin", Body=os.urandom(2048), Metadata={"x": "y"})
    checked = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--checksum")
    found = json.loads(checked.stdout)
    assert checked.returncode == 0 and found["totals"]["repaired"] == 1 and found["totals"]["reverified"] == 29
    assert contents(target, bucket) == sha(objects)
    record(
        "trust 3: target bytes overwritten behind the journal's back",
        found_by_verify=2,
        repaired_by_next_sync=len(report["keys"]["repaired"]),
        found_by_checksum=found["totals"]["repaired"],
    )


# -- 4. two runs on one pair -----------------------------------------------------------------------------


def test_two_runs_on_one_pair_cannot_undo_each_other(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    bucket = unique("concurrent")
    objects = {f"o/{i:04d}": os.urandom(512) for i in range(1000)}
    put_many(rig.reader("source"), bucket, objects)
    stale = {"stale-1": b"s", "stale-2": b"s"}
    put_many(rig.reader("target"), bucket, stale)
    argv = [sys.executable, "-m", "failover", "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--delete"]
    env = {**os.environ, **rig.env}
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.2)
    second = cli(rig, "sync", f"src:{bucket}", f"dst:{bucket}", "--delete")
    _out, err = first.communicate(timeout=600)
    assert second.returncode == 2 and "in use by another failover run" in second.stderr
    assert first.returncode == 0, err[-2000:]
    # Runs with journals of their own: deletes are looked up on the source first.
    other = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--delete", "--journal", str(tmp_path / "x"))
    deleted = {path.split("/", 2)[2] for path in rig.target_proxy.stats.deletes}
    assert other.returncode == 0
    assert deleted <= set(stale), "only keys the source does not hold were deleted"
    assert contents(rig.reader("target"), bucket) == sha(objects)
    record(
        "trust 4: two runs of one pair 0.2 s apart, --delete",
        second_exit=second.returncode,
        source_keys_deleted=len(deleted & set(objects)),
    )


# -- 5. keys the target rewrites ---------------------------------------------------------------------------


def test_keys_the_target_rewrites_are_never_an_overwrite(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    bucket = unique("rewrites")
    objects = {"reports/2024.csv": b"slash", "reports\\2024.csv": b"backslash", "other.txt": b"o"}
    put_many(rig.reader("source"), bucket, objects)
    runs = [cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--delete") for _ in range(3)]
    outcomes = [(run.returncode, json.loads(run.stdout)["totals"]["copied"]) for run in runs]
    for run in runs:
        report = json.loads(run.stdout)
        assert run.returncode == 1
        assert [item["key"] for item in report["skipped_keys"]] == ["reports\\2024.csv"]
        assert "key_backslash" in report["skipped_keys"][0]["reason"]
        assert report["totals"]["deleted"] == 0
    target = rig.reader("target")
    assert target.get_object(Bucket=bucket, Key="reports/2024.csv")["Body"].read() == b"slash"
    encoded = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}", "--invalid-keys", "encode")
    assert encoded.returncode == 0, encoded.stdout[-2000:]
    held = contents(target, bucket)
    assert held[encode_key("reports\\2024.csv")] == hashlib.sha256(b"backslash").hexdigest()
    assert held["reports/2024.csv"] == hashlib.sha256(b"slash").hexdigest()

    # A literal source key that looks like an encoded one lands where the key it "decodes" to does.
    clash = unique("clash")
    put_many(rig.reader("source"), clash, {"photo.jpg": b"the photo", encode_key("photo.jpg"): b"an impostor"})
    result = cli(rig, "--json", "sync", f"src:{clash}", f"dst:{clash}")
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert {k["key"] for k in report["skipped_keys"]} == {"photo.jpg", encode_key("photo.jpg")}
    assert all("same target key" in k["reason"] for k in report["skipped_keys"])
    assert "photo.jpg" not in list_keys(target, clash), "neither was written over the other"
    record(
        "trust 5: keys the target rewrites (SeaweedFS stores \\\\ as /), 3 runs with --delete",
        runs_exit_and_copied=outcomes,
        slash_key_overwritten=int(held["reports/2024.csv"] != hashlib.sha256(b"slash").hexdigest()),
        collisions_refused=len(report["skipped_keys"]),
    )


# -- 6. exceptions in workers ------------------------------------------------------------------------------


def test_every_worker_exception_is_a_named_error(rig: Rig, record: Any, tmp_path: Path, monkeypatch: Any) -> None:
    rig.faults()
    bucket = unique("bugs")
    objects = {f"k{i:02d}": os.urandom(100) for i in range(20)}
    put_many(rig.reader("source"), bucket, objects)
    monkeypatch.setenv("FAILOVER_PROVIDERS", rig.env["FAILOVER_PROVIDERS"])
    for name, value in rig.env.items():
        monkeypatch.setenv(name, value)
    providers = load_providers(Path(rig.env["FAILOVER_PROVIDERS"]))
    source, target = open_store(providers, "src"), open_store(providers, "dst")
    real_open = source._open

    def broken_open(bucket_: str, key: str, byte_range: Any) -> Any:
        if key.endswith("7"):
            raise RuntimeError("a bug that is not a failover error")
        return real_open(bucket_, key, byte_range)

    monkeypatch.setattr(source, "_open", broken_open)
    options = SyncOptions(journal=tmp_path / "j.sqlite")
    report = SyncEngine(source, target, parse_location(f"src:{bucket}"), parse_location(f"dst:{bucket}"), options).run()
    data = report.to_json()
    assert not report.complete
    assert sorted(item["key"] for item in data["keys"]["failed"]) == ["k07", "k17"]
    assert all("RuntimeError" in item["detail"] for item in data["keys"]["failed"])
    monkeypatch.setattr(source, "_open", real_open)
    real_target_open = target._open
    monkeypatch.setattr(target, "_open", lambda *a: (_ for _ in ()).throw(ValueError("a reader bug")))
    checked = run_verify(
        source, target, parse_location(f"src:{bucket}"), parse_location(f"dst:{bucket}"), VerifyOptions()
    )
    monkeypatch.setattr(target, "_open", real_target_open)
    assert not checked.ok and checked.matching == 0 and len(checked.errors) == 18
    source.close()
    target.close()
    record(
        "trust 6: exceptions of any kind in workers",
        sync_failed_named=len(data["keys"]["failed"]),
        verify_errors_named=len(checked.errors),
    )


# -- 7. a frozen target ----------------------------------------------------------------------------------


def test_a_frozen_target_stops_the_run_in_bounded_time(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    bucket = unique("frozen")
    objects = {f"f/{i:04d}": os.urandom(4096) for i in range(600)}
    put_many(rig.reader("source"), bucket, objects)
    argv = [sys.executable, "-m", "failover", "sync", f"src:{bucket}", f"dst:{bucket}", "--stall-timeout", "6"]
    env = {**os.environ, **rig.env}
    started = time.monotonic()
    run = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = rig.target.state.pid
    assert pid
    while sum(rig.target_proxy.stats.requests.values()) < 100 and run.poll() is None:
        time.sleep(0.02)
    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        out, err = run.communicate(timeout=120)
        stopped_after = time.monotonic() - frozen_at
    finally:
        os.kill(pid, signal.SIGCONT)
    assert run.returncode == 3, err[-2000:]
    assert "has not answered" in err + out and f"127.0.0.1:{rig.target_proxy.port}" in err + out
    assert stopped_after < 6 + 4 + 10, stopped_after  # the deadline + one read timeout + the grace
    resumed = cli(rig, "sync", f"src:{bucket}", f"dst:{bucket}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert contents(rig.reader("target"), bucket) == sha(objects)
    record(
        "trust 7: target frozen (kill -STOP) mid-run, --stall-timeout 6",
        exit=run.returncode,
        seconds_to_stop=round(stopped_after, 1),
        total_seconds=round(time.monotonic() - started, 1),
        rerun_exit=resumed.returncode,
    )


# -- 8. the guards -------------------------------------------------------------------------------------


def test_a_second_name_for_the_same_store_is_the_same_place(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    bucket = unique("alias")
    put_many(rig.reader("source"), bucket, {"a": b"1"})
    document = yaml.safe_load(Path(rig.env["FAILOVER_PROVIDERS"]).read_text())
    alias = dict(document["providers"]["src"])
    alias["storage"] = {**alias["storage"], "options": {**alias["storage"]["options"], "part_size_mib": 16}}
    document["providers"]["src-alias"] = alias
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(document))
    nested = cli(rig, "--providers", str(path), "sync", f"src:{bucket}", f"src-alias:{bucket}/backup/")
    assert nested.returncode == 2 and "reach the same store" in nested.stderr
    assert list_keys(rig.reader("source"), bucket).keys() == {"a"}
    missing = unique("nosuch")
    mistyped = cli(rig, "sync", f"src:{missing}", f"dst:{missing}-copy")
    assert mistyped.returncode == 3 and "does not exist" in mistyped.stderr
    names = [b["Name"] for b in rig.reader("target").list_buckets().get("Buckets", [])]
    assert f"{missing}-copy" not in names, "nothing created for a mistyped source"
    record(
        "trust 8: a second name for the same store; a mistyped source bucket",
        overlap_exit=nested.returncode,
        mistyped_exit=mistyped.returncode,
        buckets_created=int(f"{missing}-copy" in names),
    )


# -- 9. secrets in playbooks and endpoints ------------------------------------------------------------


class _Hook(threading.Thread):
    """A webhook receiver on loopback: counts what it was sent."""

    def __init__(self) -> None:
        import http.server

        received: list[bytes] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.received = received
        super().__init__(target=self.server.serve_forever, daemon=True)
        self.start()


def test_webhook_urls_and_endpoint_credentials_never_show(rig: Rig, record: Any, tmp_path: Path) -> None:
    hook = _Hook()
    port = hook.server.server_address[1]
    literal = f"http://127.0.0.1:{port}/hooks/T0HOOKSECRET123/B0ANOTHERSECRET456?token=QUERYSECRET789xyz"
    by_env = f"http://127.0.0.1:{port}/hooks/ENVSECRET000111222"
    playbook = tmp_path / "notify.yaml"
    playbook.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "name": "notify-secrets",
                "description": "webhooks carry tokens",
                "steps": [
                    {"id": "tell", "kind": "notify", "url": literal, "message": "going"},
                    {"id": "tell-env", "kind": "notify", "url": {"env": "HOOK_URL"}, "message": "gone"},
                ],
            }
        )
    )
    state = tmp_path / "state"
    outputs = []
    for args in (["run", str(playbook), "--dry-run"], ["--debug", "run", str(playbook), "--yes"]):
        result = cli(rig, *args, env={"HOOK_URL": by_env, "FAILOVER_STATE_DIR": str(state)})
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout + result.stderr)
    assert len(hook.received) == 2
    files = "".join(p.read_text(errors="replace") for p in state.rglob("*") if p.is_file())
    secrets = ["T0HOOKSECRET123", "B0ANOTHERSECRET456", "QUERYSECRET789xyz", "ENVSECRET000111222"]
    leaks = [s for s in secrets if any(s in text for text in [*outputs, files])]
    hook.server.shutdown()
    endpoint = tmp_path / "providers.yaml"
    endpoint.write_text(
        "version: 1\nproviders:\n  leaky: {type: s3, endpoint: 'http://AKIDLEAK:CANARY-userinfo-secret@127.0.0.1:9'}\n"
    )
    shown = [cli(rig, "--providers", str(endpoint), *cmd) for cmd in (["providers", "list"], ["providers", "check"])]
    assert all(r.returncode == 2 for r in shown)
    assert not any("CANARY-userinfo-secret" in r.stdout + r.stderr for r in shown)
    record(
        "trust 9: webhook URLs and endpoint credentials", leaks=len(leaks), outputs_scanned=len(outputs) + len(shown)
    )
    assert leaks == []


# -- 10. metadata the target cannot hold ----------------------------------------------------------------


def test_a_website_redirect_is_carried_or_named(rig: Rig, record: Any, tmp_path: Path) -> None:
    rig.faults()
    bucket = unique("redirect")
    client = rig.reader("source")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="old.html", Body=b"moved", WebsiteRedirectLocation="/new.html")
    to_seaweed = cli(rig, "--json", "sync", f"src:{bucket}", f"dst:{bucket}")
    report = json.loads(to_seaweed.stdout)
    assert not report["fidelity"]["lossless"]
    assert report["fidelity"]["fields_not_carried"] == {"website_redirect_location": 1}
    to_localstack = cli(rig, "--json", "sync", f"src:{bucket}", f"src:{bucket}-copy")
    assert to_localstack.returncode == 0 and json.loads(to_localstack.stdout)["fidelity"]["lossless"]
    copied = client.head_object(Bucket=f"{bucket}-copy", Key="old.html")
    assert copied["WebsiteRedirectLocation"] == "/new.html"
    record(
        "trust 10: a website redirect (SeaweedFS cannot hold it; LocalStack can)",
        lossless_to_seaweedfs=report["fidelity"]["lossless"],
        named_not_carried=sorted(report["fidelity"]["fields_not_carried"]),
        carried_to_localstack=copied["WebsiteRedirectLocation"] == "/new.html",
    )


def test_a_damaged_journal_is_refused_with_its_name(rig: Rig, tmp_path: Path) -> None:
    import sqlite3

    rig.faults()
    bucket = unique("journal")
    put_many(rig.reader("source"), bucket, {"a": b"1"})
    journal = tmp_path / "j.sqlite"
    assert cli(rig, "sync", f"src:{bucket}", f"dst:{bucket}", "--journal", str(journal)).returncode == 0
    db = sqlite3.connect(journal)
    db.execute("ALTER TABLE objects DROP COLUMN digest")
    db.commit()
    db.close()
    result = cli(rig, "sync", f"src:{bucket}", f"dst:{bucket}", "--journal", str(journal))
    assert result.returncode == 2 and str(journal) in result.stderr and "lacks column" in result.stderr
    assert "hint:" in result.stderr
