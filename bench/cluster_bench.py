"""The cost of ``--cluster local:2`` against the single-process sync, measured in one run.

Two SeaweedFS servers of their own (as bench/sync_bench.py), one bucket of small and large objects
(default 5,000 x 1-64 KiB + 8 x 64 MiB). Interleaved runs of ``failover sync`` without and with
``--cluster local:2``, each into a new bucket; the median time of each, and the peak RSS of the
command and of its largest worker process. On a 2-core machine shared with both servers this shows
the overhead (the goal: under 15%), not the gain; the per-worker throughput and the per-chunk
overhead measured here are what bench/scale_model.py projects from.

    .venv/bin/python bench/cluster_bench.py [--small 5000 --large 8 --large-mib 64 --repeat 3]

Writes bench/results/cluster-<time>.json and prints a table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sync_bench import MIB, _high_water_mib, providers_file, seed, start_seaweed

REPO = Path(__file__).resolve().parents[1]
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--small", type=int, default=5000)
parser.add_argument("--large", type=int, default=8)
parser.add_argument("--large-mib", type=int, default=64)
parser.add_argument("--repeat", type=int, default=3)
parser.add_argument("--workers", type=int, default=2)
parser.add_argument(
    "--listing", type=int, default=0, help="also list this many objects (a synthetic source), dry run (0: skip)"
)
parser.add_argument(
    "--listing-single", action=argparse.BooleanOptionalAction, default=True, help="list in one process too"
)
parser.add_argument("--copy", action=argparse.BooleanOptionalAction, default=True, help="the copy phases")


def _children(pid: int) -> list[int]:
    found = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True, check=False)  # noqa: S603, S607
    return [int(p) for p in found.stdout.split()]


def measured(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Wall time, the command's peak RSS and its largest child's (the Dask workers), and its report.
    Output goes to files: a report larger than a pipe's buffer would block the command."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True)  # noqa: S603
        peak, worker_peak, cpu = 0.0, 0.0, 0.0
        while child.poll() is None:
            peak = max(peak, _high_water_mib(child.pid) or 0.0)
            cpu = max(cpu, _cpu_seconds(child.pid))
            for pid in _children(child.pid):
                worker_peak = max(worker_peak, _high_water_mib(pid) or 0.0)
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(argv[-4:])} failed ({child.returncode}): {err.read()[-2000:]}")
        report = json.loads(out.read())
    return {
        "seconds": seconds,
        "peak_rss_mib": peak,
        "worker_peak_rss_mib": worker_peak,
        "cpu_seconds": cpu,
        "report": report,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (the coordinator's own work, not its workers')."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    args = parser.parse_args()
    work = Path(os.environ.get("FAILOVER_BENCH_DIR") or REPO / ".lab" / "bench-cluster")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    os.environ.setdefault("FAILOVER_LAB_CACHE", str(REPO / ".lab" / "cache"))
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    if args.listing:
        results["listing"] = listing_phase(work, args.listing, args.workers, single=args.listing_single)
        print(json.dumps(results["listing"], indent=2), flush=True)
    if args.copy:
        results |= copy_phase(work, args)
    out = REPO / "bench" / "results" / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    if args.copy:
        print(f"| phase | single process | --cluster local:{args.workers} | overhead | peak RSS: command, a worker |")
        print("|---|---|---|---|---|")
        for phase in ("small", "large"):
            single, cluster = results[phase]["single"], results[phase]["cluster"]
            print(
                f"| {phase} | {single['seconds']} s | {cluster['seconds']} s | "
                f"{cluster['seconds'] / single['seconds'] - 1:+.1%} | "
                f"{cluster['peak_rss_mib']} MiB, {cluster['worker_peak_rss_mib']} MiB |"
            )
        whole = results["whole"]
        print(f"| whole | {whole['single_seconds']} s | {whole['cluster_seconds']} s | {results['overhead']:+.1%} | |")
    print(f"raw results: {out.relative_to(REPO)}")


def listing_phase(work: Path, count: int, workers: int, *, single: bool) -> dict[str, Any]:
    """A dry-run sync of ``count`` objects from the memory adapter's synthetic bucket (computed, never
    stored: seeding millions of objects into a server takes longer than listing them), in one
    process and on the cluster: time, the command's peak RSS, a worker's."""
    providers = work / "providers-listing.yaml"
    providers.write_text(
        "version: 1\nproviders:\n"
        f"  syn: {{storage: {{type: memory, options: {{space: bench, synthetic: {count}}}}}}}\n"
        "  sink: {storage: {type: memory, options: {space: sink}}}\n"
    )
    env = {**os.environ, "FAILOVER_PROVIDERS": str(providers), "FAILOVER_STATE_DIR": str(work / "listing-state")}
    argv = [str(REPO / ".venv" / "bin" / "failover"), "--json", "sync", "syn:synthetic", "sink:listing", "--dry-run"]
    found: dict[str, Any] = {"objects": count}
    modes = [("single", [])] if single else []
    for name, extra in [*modes, ("cluster", ["--cluster", f"local:{workers}"])]:
        run = measured([*argv, *extra], env)
        listed = run["report"]["totals"]["listed"]
        if listed != count:
            raise SystemExit(f"the {name} listing saw {listed} of {count} objects")
        found[name] = {
            "seconds": round(run["seconds"], 1),
            "peak_rss_mib": round(run["peak_rss_mib"], 1),
            "worker_peak_rss_mib": round(run["worker_peak_rss_mib"], 1),
            "us_per_object": round(run["seconds"] / count * 1e6, 1),
            "coordinator_cpu_us_per_object": round(run["cpu_seconds"] / count * 1e6, 1),
            "shards": run["report"]["buckets"][0]["shards"],
        }
    return found


def copy_phase(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The small objects and the large ones, each copied in one process and on the cluster,
    interleaved; then the whole data set's times (the sums)."""
    server_a, a = start_seaweed(work / "a", set())
    server_b, b = start_seaweed(work / "b", set(a.ports.values()) | {p + 10000 for p in a.ports.values()})
    rng = random.Random(42)
    phases = {
        "small": [rng.randint(1024, 64 * 1024) for _ in range(args.small)],
        "large": [args.large_mib * MIB] * args.large,
    }
    results: dict[str, Any] = {}
    try:
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env |= providers_file(work / "providers.yaml", a, b)
        env["FAILOVER_STATE_DIR"] = str(work / "state")
        failover = [str(REPO / ".venv" / "bin" / "failover"), "--json"]
        # What a cluster run costs whatever it copies (starting the worker processes, the coordinator's
        # imports and Dask's own work): one object, measured so the model can take it out.
        seed(a, "one", [1024])
        cluster = ["--cluster", f"local:{args.workers}"]
        baseline = [measured([*failover, "sync", "a:one", f"b:one-{n}", *cluster], env) for n in range(args.repeat)]
        results["fixed"] = {
            "cluster_seconds": round(sorted(m["seconds"] for m in baseline)[len(baseline) // 2], 2),
            "coordinator_cpu_seconds": round(sorted(m["cpu_seconds"] for m in baseline)[len(baseline) // 2], 3),
        }
        for phase, sizes in phases.items():
            total = seed(a, phase, sizes)
            runs: dict[str, list[dict[str, Any]]] = {"single": [], "cluster": []}
            for n in range(args.repeat):  # interleaved: drift on a noisy machine hits both alike
                runs["single"].append(measured([*failover, "sync", f"a:{phase}", f"b:{phase}-single-{n}"], env))
                cluster = ["--cluster", f"local:{args.workers}"]
                runs["cluster"].append(
                    measured([*failover, "sync", f"a:{phase}", f"b:{phase}-cluster-{n}", *cluster], env)
                )
            results[phase] = {"objects": len(sizes), "bytes": total} | {
                name: _summary(measures, len(sizes), total, args.workers) for name, measures in runs.items()
            }
            seconds = {name: results[phase][name]["seconds"] for name in runs}
            print(f"{phase}: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()) + " (medians)", flush=True)
    finally:
        server_a.stop(a)
        server_b.stop(b)
    single = sum(results[p]["single"]["seconds"] for p in phases)
    cluster = sum(results[p]["cluster"]["seconds"] for p in phases)
    results["whole"] = {"single_seconds": round(single, 2), "cluster_seconds": round(cluster, 2)}
    results["overhead"] = round(cluster / single - 1, 3)
    return results


def _summary(measures: list[dict[str, Any]], objects: int, total: int, workers: int) -> dict[str, Any]:
    ordered = sorted(measures, key=lambda m: m["seconds"])
    middle = ordered[len(ordered) // 2]
    entry: dict[str, Any] = {
        "seconds": round(middle["seconds"], 2),
        "all_seconds": [round(m["seconds"], 2) for m in measures],
        "peak_rss_mib": round(max(m["peak_rss_mib"] for m in measures), 1),
        "worker_peak_rss_mib": round(max(m["worker_peak_rss_mib"] for m in measures), 1),
        "coordinator_cpu_us_per_object": round(middle["cpu_seconds"] / objects * 1e6, 1),
        "coordinator_cpu_seconds": round(middle["cpu_seconds"], 3),
    }
    if middle["report"].get("cluster"):
        entry["per_worker_objects_per_second"] = round(objects / middle["seconds"] / workers, 1)
        entry["per_worker_bytes_per_second"] = round(total / middle["seconds"] / workers)
        entry["chunks"] = sum(w["chunks"] for w in middle["report"]["cluster"]["workers"].values())
    return entry


if __name__ == "__main__":
    main()
