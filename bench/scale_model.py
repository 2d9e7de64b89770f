"""How many workers evacuate 70 TB in 29 hours: a projection from measured inputs only.

Inputs (from a bench/cluster_bench.py result file, or given): the per-worker throughput of large
objects and of small ones, and the coordinator's per-chunk overhead. Stated assumptions:

* the data set: 70 TB, 60% of the bytes in objects over 8 MiB (here: 64 MiB), 40% in 50 KiB media;
* each worker has a 10 Gb/s link (1.25 GB/s) and never exceeds it; source and target scale with
  the workers (their own throughput limits are not modelled);
* the coordinator handles one chunk at a time (journal commits, decisions): its time per chunk is
  serial, so it bounds the whole cluster; chunks are 32 objects or 64 MiB, as in failover/cluster;
* efficiency of N workers = throughput(N) / (N x throughput(1)).

    .venv/bin/python bench/scale_model.py bench/results/cluster-<time>.json
    .venv/bin/python bench/scale_model.py --large-bps 2.0e8 --small-ops 900 --chunk-overhead 0.004
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

TB = 10**12
HOURS = 29
LINK = 1.25e9  # bytes per second, 10 Gb/s
SMALL = 50 * 1024
LARGE = 64 * 1024 * 1024
CHUNK_OBJECTS, CHUNK_BYTES = 32, 64 * 1024 * 1024


def project(large_bps: float, small_ops: float, chunk_overhead: float, *, total: float = 70 * TB) -> dict[str, float]:
    large_bytes, small_bytes = 0.6 * total, 0.4 * total
    small_objects = small_bytes / SMALL
    large_objects = large_bytes / LARGE
    # One worker: the time for its share of each kind, capped by its link.
    per_worker_large = min(large_bps, LINK)
    per_worker_small = min(small_ops * SMALL, LINK)
    worker_seconds = large_bytes / per_worker_large + small_bytes / per_worker_small
    chunks = small_objects / CHUNK_OBJECTS + large_objects  # one large object per chunk at 64 MiB
    coordinator_seconds = chunks * chunk_overhead
    deadline = HOURS * 3600.0

    def seconds(workers: int) -> float:
        return max(worker_seconds / workers, coordinator_seconds)

    needed = math.ceil(worker_seconds / deadline)
    if coordinator_seconds >= deadline:
        needed = -1  # the coordinator alone cannot finish in time: more workers do not help
    efficiency = (worker_seconds / seconds(needed)) / needed if needed > 0 else 0.0
    return {
        "workers_needed": needed,
        "hours_with_them": seconds(needed) / 3600 if needed > 0 else math.inf,
        "coordinator_hours": coordinator_seconds / 3600,
        "efficiency_at_that_size": efficiency,
        "max_useful_workers": math.floor(worker_seconds / coordinator_seconds) if coordinator_seconds else math.inf,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, help="a bench/cluster_bench.py result file")
    parser.add_argument("--large-bps", type=float, help="one worker's bytes per second on large objects")
    parser.add_argument("--small-ops", type=float, help="one worker's small objects per second")
    parser.add_argument("--chunk-overhead", type=float, help="the coordinator's seconds per chunk")
    args = parser.parse_args()
    large_bps, small_ops, overhead = args.large_bps, args.small_ops, args.chunk_overhead
    if args.results:
        measured = json.loads(args.results.read_text())
        cluster = measured["cluster"]
        large_bps = large_bps or cluster["per_worker_bytes_per_second"]
        small_ops = small_ops or measured["objects"] / cluster["seconds"] / 2
        overhead = overhead if overhead is not None else measured["per_chunk_overhead_s"]
    if large_bps is None or small_ops is None or overhead is None:
        parser.error("give a results file, or --large-bps, --small-ops and --chunk-overhead")
    found = project(large_bps, small_ops, overhead)
    print(
        f"inputs: {large_bps / 1e6:.1f} MB/s per worker (large), {small_ops:.0f} small objects/s per worker, "
        f"{overhead * 1000:.2f} ms coordinator time per chunk"
    )
    for name, value in found.items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    main()
