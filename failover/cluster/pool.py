"""The coordinator's side of a cluster: a Dask client, and the copy stage's pool on it.

:class:`ClusterPool` has the contract of :class:`failover.sync.workers.Workers` (every submitted
item ends in exactly one of its two callbacks, whatever happened to the worker that had it), with
items sent in chunks to a task (:func:`~.tasks.copy_chunk`, :func:`~.tasks.compare_chunk`). For
copies, before a chunk's outcomes reach the callbacks, the journal calls the copies made are
committed to the coordinator's journal, in the order they were made (:func:`ledger_replay`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError, ProviderError
from ..sync.journal import Ledger
from .spec import ClusterSpec
from .tasks import LEDGER_METHODS, ChunkOutcome, ItemOutcome, Job, copy_chunk

__all__ = [
    "ClusterPool",
    "ClusterUnreachable",
    "StartingClient",
    "WorkerStats",
    "copy_pool",
    "ledger_replay",
    "open_client",
]

CHUNK_OBJECTS = 32
CHUNK_BYTES = 64 * 1024 * 1024
"""A chunk is what a lost worker costs: at most this many objects or bytes (one object above it
travels alone). Small enough that re-sending one is cheap, large enough that Dask's per-task
overhead is small against the copies."""
LOCAL_TASKS = 4
"""Large objects whose part ranges are coordinated at once (see Copier.spread)."""
RECOMPUTED_AT_MOST = 3
"""How many times a chunk whose result was lost with a worker is waited for again before its
objects end as failed (the scheduler's own limit, distributed.scheduler.allowed-failures, counts
the workers that died running it)."""
LINGER = 0.05
"""How long a chunk that is not full waits for more objects before it is sent anyway."""
CONNECT_TIMEOUT = 15.0


class ClusterUnreachable(ProviderError):
    """The Dask scheduler could not be reached, or the cluster could not be started."""

    exit_code = 3


def quiet_dask_logs() -> None:
    """Dask's own logs would drown failover's output; its failures come back as exceptions, and
    failover says what they mean (Dask configures its loggers one by one: each is set here)."""
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def client_lost(client: Any) -> bool:
    """The client's connection to the scheduler is gone for good (Dask closed it)."""
    return str(getattr(client, "status", "running")) in ("closing", "closed")


@dataclass
class WorkerStats:
    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    chunks: int = 0


@contextlib.contextmanager
def open_client(spec: ClusterSpec, *, threads_per_worker: int = 4) -> Iterator[Any]:
    """A Dask client for ``spec``: a LocalCluster of worker processes on 127.0.0.1 started (and
    stopped) here, or a connection to a running scheduler."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            "--cluster needs Dask's distributed package, which is not installed",
            hint="pip install 'failover[cluster]' (on the workers too)",
        ) from None
    quiet_dask_logs()
    cluster = None
    try:
        if spec.address is None:
            import dask

            # Dask's statistical profiler samples every thread of the scheduler and of each worker
            # 100 times a second, for a dashboard failover does not use: on a small machine that is
            # CPU the copies need (the workers get this configuration when they are started).
            dask.config.set({"distributed.worker.profile.enabled": False})
            cluster = LocalCluster(
                n_workers=spec.workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                host="127.0.0.1",
                # Its HTTP server (health, metrics) on a free loopback port, never the default 8787.
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.CRITICAL,
                # Imported while the workers start, not by their first task.
                preload=["failover.cluster.tasks"],
            )
            client = Client(cluster, timeout=CONNECT_TIMEOUT)
        else:
            _listening(spec)
            client = Client(spec.address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, RuntimeError) as error:
        # RuntimeError: a LocalCluster whose worker processes did not start ("Nanny failed to start").
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        what = "start the local cluster" if spec.address is None else f"reach the Dask scheduler at {spec}"
        raise ClusterUnreachable(
            f"cannot {what}: {error}",
            operation="connect",
            hint="start one with `dask scheduler` (and workers with `dask worker ADDRESS`), or use --cluster local:N",
        ) from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def _listening(spec: ClusterSpec) -> None:
    """Raise OSError at once when nothing listens at the scheduler's address (connection refused,
    no route): Dask's client would retry that for its whole timeout before saying so."""
    with socket.create_connection(spec.host_port, timeout=CONNECT_TIMEOUT):
        pass


class _Item(Protocol):
    @property
    def name(self) -> tuple[str, str]: ...
    @property
    def size(self) -> int: ...


class StartingClient:
    """A Dask client being started in the background (a LocalCluster takes a second or two to
    start its processes): the run lists the target and opens its journal meanwhile. ``client``
    waits for it (and raises what starting it raised); ``close`` stops what was started."""

    def __init__(self, spec: ClusterSpec) -> None:
        self._context = open_client(spec)
        self._starter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cluster-start")
        self._started = self._starter.submit(self._context.__enter__)
        self._starter.shutdown(wait=False)

    @property
    def client(self) -> Any:
        return self._started.result()

    def close(self) -> None:
        try:
            self._started.result()
        except Exception:  # noqa: BLE001 - it did not start: nothing to stop (the error was raised to the run)
            return
        self._context.__exit__(None, None, None)


@dataclass
class _Pending:
    item: _Item | None
    """None: a task run here (:meth:`ClusterPool.submit_local`)."""
    on_result: Callable[[Any], None]
    on_error: Callable[[BaseException], None]
    settled: bool = False
    """Its callback ran (exactly once, whatever else goes wrong)."""


@dataclass
class _Chunk:
    entries: list[_Pending] = field(default_factory=list)
    size: int = 0
    opened: float = field(default_factory=time.monotonic)


def ledger_replay(ledger: Ledger) -> Callable[[ItemOutcome], None]:
    """Commit a copy's journal calls, made on a worker, to ``ledger`` (the coordinator's journal)."""

    def replay(item: ItemOutcome) -> None:
        for call in item.calls:
            if call.method not in LEDGER_METHODS:
                raise RuntimeError(f"a worker asked for journal call {call.method!r}")
            getattr(ledger, call.method)(*call.args)

    return replay


def copy_pool(
    client: Any,
    job: Job,
    ledger: Ledger,
    *,
    on_chunk: Callable[[ChunkOutcome], None],
    stopping: Callable[[], bool] = lambda: False,
    on_lost: Callable[[], None] = lambda: None,
) -> ClusterPool:
    """The copy stage's pool on the cluster."""
    return ClusterPool(
        client,
        job,
        copy_chunk,
        name="copy",
        before=ledger_replay(ledger),
        on_chunk=on_chunk,
        stopping=stopping,
        on_lost=on_lost,
    )


class ClusterPool:
    """Items run in chunks on a Dask cluster, with :class:`~failover.sync.workers.Workers`' accounting."""

    def __init__(
        self,
        client: Any,
        job: Job,
        task: Callable[[Job, list[Any]], ChunkOutcome],
        *,
        name: str,
        before: Callable[[ItemOutcome], None] | None = None,
        on_chunk: Callable[[ChunkOutcome], None] | None = None,
        stopping: Callable[[], bool] = lambda: False,
        on_lost: Callable[[], None] = lambda: None,
        backlog: int | None = None,
    ) -> None:
        """``task(job, items)`` runs on a worker; ``before(outcome)`` runs here for each item's
        outcome before its callback (an error it raises is the item's error); ``on_chunk`` gets
        each chunk's counters."""
        from distributed import as_completed

        self._client, self._job, self._task, self.name = client, job, task, name
        self._before = before
        self._on_chunk, self._stopping, self._on_lost = on_chunk, stopping, on_lost
        workers = max(1, sum(client.nthreads().values()))
        self._slots = threading.BoundedSemaphore(backlog or workers * 2)
        self._lock = threading.Lock()
        self._chunk = _Chunk()
        self._futures: dict[Any, list[_Pending]] = {}
        self._completed = as_completed([], with_results=False)
        self.submitted = 0
        self.finished = 0
        self.callback_errors: list[BaseException] = []
        self.abandoned = False
        self.workers: dict[str, WorkerStats] = {}
        self.lost_chunks = 0
        self.chunks_run_again = 0
        """Chunks whose result was lost with a worker, waited for again while the scheduler ran them again."""
        self._recomputed: dict[Any, int] = {}
        self._closing = threading.Event()
        self._local = concurrent.futures.ThreadPoolExecutor(LOCAL_TASKS, thread_name_prefix=f"cluster-{name}-local")
        self._collector = threading.Thread(target=self._collect, name=f"cluster-{name}", daemon=True)
        self._collector.start()
        self._linger = threading.Thread(target=self._send_lingering, name="cluster-linger", daemon=True)
        self._linger.start()

    # -- submitting ----------------------------------------------------------------------------------

    def submit(self, item: _Item, on_result: Callable[[Any], None], on_error: Callable[[BaseException], None]) -> bool:
        """Queue ``item`` for a chunk (sent when full, or after LINGER). False, and it is not copied,
        when the owner is stopping; once True, its outcome arrives through one of its callbacks
        (a chunk that cannot be sent settles every item in it)."""
        if self._stopping():
            return False
        with self._lock:
            self.submitted += 1
            self._chunk.entries.append(_Pending(item, on_result, on_error))
            self._chunk.size += item.size
            full = len(self._chunk.entries) >= CHUNK_OBJECTS or self._chunk.size >= CHUNK_BYTES
            chunk = self._take() if full else None
        if chunk is not None:
            self._send(chunk)
        return True

    def submit_local(
        self, task: Callable[[], Any], on_result: Callable[[Any], None], on_error: Callable[[BaseException], None]
    ) -> bool:
        """Run ``task`` here, in one of LOCAL_TASKS threads (work that coordinates tasks of its own,
        as a large object's part ranges), with the same accounting as a chunk's items."""
        if self._stopping():
            return False
        entry = _Pending(None, on_result, on_error)
        with self._lock:
            self.submitted += 1

        def run() -> None:
            if self._stopping():
                self._settle([entry], concurrent.futures.CancelledError("stopped before it started"))
                return
            try:
                result = task()
            except BaseException as error:  # noqa: BLE001 - the task's failure is its outcome
                self._settle([entry], error)
                return
            self._deliver(entry, ItemOutcome(("", ""), result, None))

        self._local.submit(run)
        return True

    def _take(self) -> list[_Pending]:
        entries, self._chunk = self._chunk.entries, _Chunk()
        return entries

    def _send_lingering(self) -> None:
        while not self._closing.wait(LINGER):
            with self._lock:
                due = self._chunk.entries and time.monotonic() - self._chunk.opened >= LINGER
                chunk = self._take() if due else None
            if chunk:
                self._send(chunk)

    def _send(self, entries: list[_Pending]) -> bool:
        if client_lost(self._client):
            self._on_lost()
            self._settle(entries, concurrent.futures.CancelledError("the cluster's scheduler was lost"))
            return False
        while not self._slots.acquire(timeout=0.1):
            if not self._collector.is_alive():
                self._settle(entries, RuntimeError("the cluster's results stopped arriving"))
                return False
            if self._stopping():
                self._settle(entries, concurrent.futures.CancelledError("stopped before it started"))
                return False
        try:
            # The job travels with every chunk (a few KB): data scattered to the workers beforehand
            # is lost with a killed worker, and every chunk waiting on it is cancelled.
            items = [e.item for e in entries if e.item is not None]
            future = self._client.submit(self._task, self._job, items, pure=False, retries=1)
        except BaseException as error:  # noqa: BLE001 - the chunk's objects are accounted for as failed
            self._slots.release()
            self._settle(entries, error)
            return False
        with self._lock:
            self._futures[future] = entries
        self._completed.add(future)
        return True

    # -- outcomes ------------------------------------------------------------------------------------

    def _collect(self) -> None:
        """Hand each finished chunk to :meth:`_finish`. Nothing it raises may end this thread: a
        chunk's failure is its items' errors, and a failure of the collector itself settles every
        item still waiting (:meth:`close` and :meth:`_send` check that this thread is alive)."""
        try:
            while not self._closing.is_set() or self._futures:
                try:
                    batch = self._completed.next_batch(block=False) if not self._completed.is_empty() else []
                except Exception:  # noqa: BLE001 - as_completed's own failure: retried on the next pass
                    batch = []
                if not batch:
                    time.sleep(0.02)
                    continue
                for future in batch:
                    with self._lock:
                        entries = self._futures.pop(future, None)
                    if entries is None:
                        continue
                    done = True
                    try:
                        done = self._finish(future, entries)
                    except BaseException as bug:  # noqa: BLE001 - its items end as failed, named
                        self.callback_errors.append(bug)
                        self._settle(entries, RuntimeError(f"the chunk's outcome could not be read: {bug!r}"))
                    finally:
                        if done:
                            self._slots.release()
        except BaseException as bug:  # noqa: BLE001 - kept for the caller; waiting items are settled
            self.callback_errors.append(bug)
            self._fail_outstanding(RuntimeError(f"the cluster's results stopped arriving: {bug!r}"))

    def _fail_outstanding(self, error: BaseException) -> None:
        with self._lock:
            waiting = [entry for entries in self._futures.values() for entry in entries]
            self._futures.clear()
            waiting += self._take()
        self._settle(waiting, error)

    def _finish(self, future: Any, entries: list[_Pending]) -> bool:
        """Settle a chunk's items from its future: True, or False when the chunk is waited for
        again (its result was lost with a worker, and the scheduler runs it again)."""
        if self.abandoned:
            return True
        if future.status in ("lost", "pending") and self._recomputed.get(future.key, 0) < RECOMPUTED_AT_MOST:
            # The chunk ran, but its result was held by a worker that died before it was fetched:
            # the scheduler runs it again because this client still holds the future. Its objects
            # are not settled until that run reports (copying them again is what a re-run does).
            self._recomputed[future.key] = self._recomputed.get(future.key, 0) + 1
            self.chunks_run_again += 1
            with self._lock:
                self._futures[future] = entries
            self._completed.add(future)
            return False
        self._recomputed.pop(future.key, None)
        if future.status != "finished":
            error = future.exception() if future.status == "error" else None
            if client_lost(self._client):
                self._on_lost()
            if future.status == "cancelled":
                # Not ours (the run stopping) or the cluster's (its scheduler lost or restarted): the
                # objects were not done, and the next run does them; counted as not attempted.
                if not self._stopping():
                    self.lost_chunks += 1
                self._settle(entries, concurrent.futures.CancelledError("cancelled before it finished"))
                return True
            self.lost_chunks += 1
            self._settle(entries, error or RuntimeError(f"the chunk ended as {future.status}"))
            return True
        outcome: ChunkOutcome = future.result()
        stats = self.workers.setdefault(outcome.worker, WorkerStats())
        stats.chunks += 1
        stats.seconds += outcome.seconds
        stats.bytes += outcome.bytes_sent
        try:
            if self._on_chunk is not None:
                self._on_chunk(outcome)
        except BaseException as bug:  # noqa: BLE001 - kept for the caller
            self.callback_errors.append(bug)
        pending = {e.item.name: e for e in entries if e.item is not None}
        for item in outcome.items:
            entry = pending.pop(item.name, None)
            if entry is None:
                continue
            stats.objects += 1
            self._deliver(entry, item)
        self._settle(list(pending.values()), RuntimeError("the worker did not report this object"))
        return True

    def _deliver(self, entry: _Pending, item: ItemOutcome) -> None:
        if entry.settled:
            return
        entry.settled = True
        try:
            try:
                if self._before is not None:
                    self._before(item)
            except BaseException as error:  # noqa: BLE001 - not committed: the object is not verified
                entry.on_error(error)
                return
            if item.error is not None:
                entry.on_error(item.error)
            elif item.result is not None:
                entry.on_result(item.result)
            else:
                entry.on_error(RuntimeError("the worker returned neither a result nor an error"))
        except BaseException as bug:  # noqa: BLE001 - a callback's own failure is kept, not lost
            self.callback_errors.append(bug)
        finally:
            with self._lock:
                self.finished += 1

    def _settle(self, entries: list[_Pending], error: BaseException) -> None:
        for entry in entries:
            if entry.settled:
                continue
            entry.settled = True
            try:
                entry.on_error(error)
            except BaseException as bug:  # noqa: BLE001 - a callback's own failure is kept, not lost
                self.callback_errors.append(bug)
            finally:
                with self._lock:
                    self.finished += 1

    # -- the end -------------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self.submitted - self.finished

    @property
    def accounted(self) -> bool:
        with self._lock:
            return self.finished == self.submitted

    def close(self, *, cancel: bool = False, timeout: float | None = None) -> bool:
        """Send what is left and wait for every chunk (``cancel``: chunks not finished are cancelled
        and their objects end as not started). With ``timeout``, give up after that long: False."""
        with self._lock:
            rest = self._take()
        if rest:
            if cancel:
                self._settle(rest, concurrent.futures.CancelledError("stopped before it started"))
            else:
                self._send(rest)
        if cancel:
            with self._lock:
                futures = list(self._futures)
            with contextlib.suppress(Exception):
                self._client.cancel(futures)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.accounted:
            if not self._collector.is_alive():
                self._fail_outstanding(RuntimeError("the cluster's results stopped arriving"))
                break
            if deadline is not None and time.monotonic() >= deadline:
                self.abandoned = True
                break
            time.sleep(0.02)
        self._closing.set()
        self._collector.join(5)
        self._linger.join(5)
        self._local.shutdown(wait=False)
        return not self.abandoned
