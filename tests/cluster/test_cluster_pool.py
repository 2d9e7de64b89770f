"""The cluster pool against a real Dask LocalCluster of worker processes (no lab servers): every
item ends in exactly one of its callbacks, whatever happens to the worker that had it."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from failover.cluster.pool import ClusterPool, quiet_dask_logs
from failover.cluster.tasks import ChunkOutcome, ItemOutcome


@dataclass(frozen=True)
class Item:
    name: tuple[str, str]
    size: int = 1


@pytest.fixture
def client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    quiet_dask_logs()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    dask = Client(cluster)
    try:
        yield dask
    finally:
        dask.close()
        cluster.close()


def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.01)


def test_a_chunk_whose_result_died_with_its_worker_is_waited_for_again(client: Any) -> None:
    """The chunk finished, but the worker holding its result is killed before the coordinator reads
    it: the scheduler runs it again, and its items end with that run's results, not as failed."""

    def slow_echo(job: Any, items: list[Any]) -> ChunkOutcome:
        import os as worker_os
        import time as worker_time

        worker_time.sleep(1.0)  # the second run is still going when the coordinator looks
        return ChunkOutcome(
            [ItemOutcome(item.name, worker_os.getpid(), None) for item in items], str(worker_os.getpid()), 1.0
        )

    results: list[Any] = []
    errors: list[BaseException] = []
    pool = ClusterPool(client, None, slow_echo, name="test")  # type: ignore[arg-type]
    assert pool.submit(Item(("b", "k")), results.append, errors.append)
    _until(lambda: bool(pool._futures), 10, "the chunk sent")
    with pool._lock:  # the collector cannot take the chunk's outcome while this is held
        (future,) = list(pool._futures)
        _until(lambda: future.status == "finished", 30, "the chunk finished")
        (holder,) = client.who_has(future)[future.key]
        first = client.run(os.getpid, workers=[holder])[holder]
        os.kill(first, signal.SIGKILL)
        _until(lambda: future.status != "finished", 30, "the result lost with its worker")
    assert pool.close(timeout=60)
    assert errors == [], errors
    assert len(results) == 1 and results[0] != first, "the result is the second run's"
    assert pool.lost_chunks == 0 and pool.chunks_run_again == 1


def test_a_chunk_that_raises_fails_only_its_own_items(client: Any) -> None:
    def picky(job: Any, items: list[Any]) -> ChunkOutcome:
        if any(item.name[1] == "bad" for item in items):
            raise ValueError("refused")
        return ChunkOutcome([ItemOutcome(item.name, "ok", None) for item in items], "w", 0.0)

    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def keep(into: list[Any]) -> Callable[[Any], None]:
        def add(value: Any) -> None:
            with lock:
                into.append(value)

        return add

    pool = ClusterPool(client, None, picky, name="test")  # type: ignore[arg-type]
    assert pool.submit(Item(("b", "bad")), keep(results), keep(errors))
    pool._send(pool._take())  # the bad item alone in its chunk
    for n in range(40):
        assert pool.submit(Item(("b", f"k{n}")), keep(results), keep(errors))
    assert pool.close(timeout=60)
    assert len(results) == 40 and all(r == "ok" for r in results)
    assert len(errors) == 1 and "refused" in str(errors[0])
    assert pool.accounted
