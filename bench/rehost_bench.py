"""Time to rehost N instances from the lab's ``aws`` (LocalStack EC2) to ``onprem`` (local
processes), from the command to every instance answering its health check.

Run on demand (not by CI):   .venv/bin/python bench/rehost_bench.py [--instances 10] [--repeat 3]

Peer, measured in the same run: the same N user-data scripts started directly with bash (no
failover, no provider) and polled until healthy: the workload's own boot time, which no rehost can
beat. The ratio says what failover adds (reading the source, planning, creating, health checks).

Also prints the translation table of the lab's sample fleet (``failover lab seed``) for the README.

Results: Markdown on stdout and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from failover.lab import Lab  # noqa: E402
from failover.lab.platform import APP_PORT, FLEET, app_user_data, image_id  # noqa: E402

FAILOVER = [sys.executable, "-m", "failover"]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*FAILOVER, *args], capture_output=True, text=True, env=os.environ, timeout=600)  # noqa: S603
    if check and result.returncode != 0:
        raise SystemExit(f"failover {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def seed_instances(lab_info: Any, count: int, run: str) -> None:
    """N web instances on LocalStack, tagged for this run, with the social app's user-data."""

    state = lab_info.servers["localstack"]
    ec2 = state.client("ec2")
    image = image_id(ec2, FLEET[0].image_name)
    for n in range(count):
        tags = {
            "Name": f"bench-{n + 1}",
            "bench": run,
            "failover:health-check": f"http://{{address}}:{APP_PORT}/healthz",
        }
        ec2.run_instances(
            ImageId=image,
            InstanceType="t3.small",
            MinCount=1,
            MaxCount=1,
            UserData=app_user_data("web"),
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )


def boot_directly(count: int, work: Path) -> float:
    """The peer: the same user-data run with bash on 127.0.3.x, until every /healthz answers."""
    script = work / "user-data"
    script.write_text(app_user_data("web"))
    started = time.perf_counter()
    children = []
    for n in range(count):
        home = work / f"direct-{n}"
        home.mkdir(exist_ok=True)
        env = {**os.environ, "HOME": str(home), "INSTANCE_ADDRESS": f"127.0.3.{n + 2}", "INSTANCE_NAME": f"d{n}"}
        children.append(
            subprocess.Popen(  # noqa: S603
                ["bash", str(script)],  # noqa: S607
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    try:
        pending = {f"http://127.0.3.{n + 2}:{APP_PORT}/healthz" for n in range(count)}
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=2, trust_env=False) as client:
            while pending and time.monotonic() < deadline:
                for url in list(pending):
                    try:
                        if client.get(url).status_code == 200:
                            pending.discard(url)
                    except httpx.TransportError:
                        pass
                if pending:
                    time.sleep(0.05)
        if pending:
            raise SystemExit(f"direct boot: {len(pending)} instance(s) never answered")
        return time.perf_counter() - started
    finally:
        for child in children:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()


def rehost_once(run: str, fleet: str) -> dict[str, Any]:
    started = time.perf_counter()
    result = cli("--json", "rehost", "aws", "onprem", "--select", f"bench={run}", "--fleet", fleet)
    wall = time.perf_counter() - started
    report = json.loads(result.stdout)
    if not report["ok"] or {r["action"] for r in report["results"]} != {"created"}:
        raise SystemExit(f"rehost did not create a healthy fleet: {result.stdout}")
    rolled = time.perf_counter()
    cli("--json", "rehost", "aws", "onprem", "--select", f"bench={run}", "--fleet", fleet, "--rollback")
    return {
        "wall_s": round(wall, 3),
        "seconds_to_healthy": report["seconds_to_healthy"],
        "rollback_s": round(time.perf_counter() - rolled, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("FAILOVER_LAB_DIR", str(REPO / ".lab" / "bench"))
    os.environ.setdefault("FAILOVER_LAB_CACHE", str(REPO / ".lab" / "cache"))
    lab = Lab()
    was_running = bool(lab.status().servers)
    info = lab.up(progress=lambda message: print(f"  lab: {message}", file=sys.stderr))
    os.environ.update(info.env())
    run = uuid.uuid4().hex[:8]
    try:
        cli("lab", "seed")
        table = cli("rehost", "aws", "onprem", "--select", "failover:lab-seed=1", "--dry-run", check=False).stdout
        seed_instances(info, args.instances, run)
        direct, rehosts = [], []
        with tempfile.TemporaryDirectory(prefix="rehost-bench-") as scratch:
            for attempt in range(args.repeat):
                direct.append(boot_directly(args.instances, Path(scratch)))
                rehosts.append(rehost_once(run, f"bench-{run}-{attempt}"))
                print(f"  run {attempt + 1}: direct {direct[-1]:.2f} s, rehost {rehosts[-1]}", file=sys.stderr)
    finally:
        if not was_running:
            lab.down()
    wall = statistics.median(r["wall_s"] for r in rehosts)
    healthy = statistics.median(r["seconds_to_healthy"] for r in rehosts)
    floor = statistics.median(direct)
    result = {
        "instances": args.instances,
        "repeat": args.repeat,
        "cores": os.cpu_count(),
        "direct_boot_s": [round(d, 3) for d in direct],
        "rehosts": rehosts,
        "median": {"direct_boot_s": round(floor, 3), "rehost_wall_s": wall, "rehost_seconds_to_healthy": healthy},
        "ratio_rehost_wall_to_direct_boot": round(wall / floor, 2),
        "sample_fleet_translation": table,
    }
    out = REPO / "bench" / "results" / f"rehost-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| {args.instances} instances aws -> onprem (median of {args.repeat}) | seconds |")
    print("|---|---|")
    print(f"| the workload booting by itself (bash, no failover) | {floor:.2f} |")
    print(f"| `failover rehost`, whole command (plan, create, wait, health-check) | {wall:.2f} |")
    print(f"| `failover rehost`, create to healthy (its report) | {healthy:.2f} |")
    print(f"| ratio whole command / workload alone | {wall / floor:.2f}x |")
    print("\nTranslation of the sample fleet (failover rehost aws onprem --dry-run):\n")
    print(table)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
