"""How many workers evacuate 70 TB in 29 hours: a projection from measured inputs only.

Inputs, all from one bench/cluster_bench.py result file (copy phases; the listing phase optional):

* a worker's rate on small objects (objects/s, 1-64 KiB, mean 32.5 KiB) and on large ones (bytes/s,
  64 MiB objects), from the ``--cluster local:N`` runs (the total over N workers, divided by N);
* the coordinator's CPU time per small object and per large object in those runs (listing,
  deciding, committing what the workers report), less what a one-object run costs it (starting
  the cluster, imports): the coordinator is one process, so this is the part that does not
  shrink with more workers. Its share of a LocalCluster's scheduler, which runs inside it, is
  included (a separate scheduler would take that part off it).

Assumptions, stated:

* the data set: 70 TB, 60% of the bytes in objects over 8 MiB (modelled as 64 MiB), 40% in 50 KiB
  media; a 50 KiB object costs a worker what a measured small object costs plus its extra 17.5 KiB
  at the large-object byte rate;
* each worker has its own 10 Gb/s link (1.25 GB/s) and cores like the measuring machine's; the
  source and the target keep up with any number of workers (their limits are not modelled);
* the coordinator's per-object CPU time is serial (one Python process); more workers do not
  reduce it. Efficiency of N workers = (one worker's time / N) / the run's time.

    .venv/bin/python bench/scale_model.py bench/results/cluster-<time>.json
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TB = 10**12
DEADLINE_HOURS = 29
LINK = 1.25e9
SMALL, LARGE = 50 * 1024, 64 * 1024 * 1024
MEASURED_SMALL_MEAN = (1024 + 64 * 1024) / 2


@dataclass(frozen=True)
class Inputs:
    small_ops: float
    """One worker's small objects per second (measured mean size MEASURED_SMALL_MEAN)."""
    large_bps: float
    """One worker's bytes per second on large objects."""
    coordinator_small_s: float
    """Coordinator CPU seconds per small object."""
    coordinator_large_s: float
    """Coordinator CPU seconds per large object."""


def inputs_from(results: dict[str, Any]) -> Inputs:
    small, large = results["small"], results["large"]
    fixed = float(results["fixed"]["coordinator_cpu_seconds"])
    fixed_seconds = float(results["fixed"]["cluster_seconds"])
    workers = small["cluster"]["per_worker_objects_per_second"] and round(
        small["objects"] / small["cluster"]["seconds"] / small["cluster"]["per_worker_objects_per_second"]
    )
    # A worker's rates over the time the copies took (the run less its fixed start-up and stop).
    small_busy = max(1e-9, small["cluster"]["seconds"] - fixed_seconds)
    large_busy = max(1e-9, large["cluster"]["seconds"] - fixed_seconds)
    return Inputs(
        small_ops=small["objects"] / small_busy / workers,
        large_bps=large["bytes"] / large_busy / workers,
        coordinator_small_s=max(0.0, small["cluster"]["coordinator_cpu_seconds"] - fixed) / small["objects"],
        coordinator_large_s=max(0.0, large["cluster"]["coordinator_cpu_seconds"] - fixed) / large["objects"],
    )


def project(given: Inputs, total: float = 70 * TB, hours: float = DEADLINE_HOURS) -> dict[str, float]:
    large_bytes, small_bytes = 0.6 * total, 0.4 * total
    small_objects, large_objects = small_bytes / SMALL, large_bytes / LARGE
    large_rate = min(given.large_bps, LINK)
    per_small = 1 / given.small_ops + (SMALL - MEASURED_SMALL_MEAN) / large_rate
    worker_seconds = max(small_objects * per_small + large_bytes / large_rate, total / LINK)
    coordinator_seconds = small_objects * given.coordinator_small_s + large_objects * given.coordinator_large_s
    deadline = hours * 3600

    def run_seconds(workers: int) -> float:
        return max(worker_seconds / workers, coordinator_seconds)

    def efficiency(workers: int) -> float:
        return (worker_seconds / workers) / run_seconds(workers)

    needed = math.ceil(worker_seconds / deadline)
    feasible = coordinator_seconds < deadline
    # Where adding a worker still gives at least 0.8 of a worker's worth of throughput.
    linear_up_to = math.floor(0.8 * worker_seconds / coordinator_seconds) if coordinator_seconds else math.inf
    # More coordinators: the evacuation split into prefix- or bucket-disjoint runs, each its own
    # command and journal; each needs its share of the workers.
    coordinators = max(1, math.ceil(coordinator_seconds / deadline))
    workers_split = math.ceil(worker_seconds / deadline)
    per_run = math.ceil(workers_split / coordinators)
    split_seconds = max(worker_seconds / coordinators / per_run, coordinator_seconds / coordinators)
    return {
        "small_objects": small_objects,
        "large_objects": large_objects,
        "one_worker_hours": worker_seconds / 3600,
        "coordinator_hours": coordinator_seconds / 3600,
        "workers_needed": needed if feasible else math.inf,
        "hours_with_them": run_seconds(needed) / 3600,
        "efficiency_at_that_size": efficiency(needed),
        "workers_at_0.8_efficiency_or_more": linear_up_to,
        "coordinators_needed": coordinators,
        "workers_with_that_many_coordinators": per_run * coordinators,
        "hours_with_them_split": split_seconds / 3600,
        "efficiency_split": (worker_seconds / (per_run * coordinators)) / split_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a bench/cluster_bench.py result file with its copy phases")
    args = parser.parse_args()
    given = inputs_from(json.loads(args.results.read_text()))
    print(
        f"measured: a worker copies {given.small_ops:.0f} small objects/s or {given.large_bps / 1e6:.1f} MB/s of "
        f"large ones; the coordinator spends {given.coordinator_small_s * 1e6:.0f} us of CPU per small object and "
        f"{given.coordinator_large_s * 1e3:.1f} ms per large one"
    )
    for name, value in project(given).items():
        print(f"{name}: {value:,.2f}" if isinstance(value, float) and not math.isinf(value) else f"{name}: {value}")


if __name__ == "__main__":
    main()
