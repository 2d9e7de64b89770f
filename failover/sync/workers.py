"""A bounded pool of worker threads that accounts for every task it was given.

Each submitted task ends in exactly one of its two callbacks, ``on_result`` or ``on_error``, with
whatever it raised (a failover error or not), so no exception raised in a worker can vanish; and
:meth:`Workers.close` checks that as many tasks finished as were submitted. At most ``backlog``
tasks wait at once, so memory does not grow with the work.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Workers"]

R = TypeVar("R")


class Workers(Generic[R]):
    def __init__(
        self, size: int, *, name: str, backlog: int | None = None, stopping: Callable[[], bool] = lambda: False
    ) -> None:
        self._stopping = stopping
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, size), thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(backlog or max(1, size) * 2)
        self._lock = threading.Lock()
        self.submitted = 0
        self.finished = 0
        self.callback_errors: list[BaseException] = []
        """Exceptions raised by the callbacks themselves (bugs): reported by the caller."""
        self.abandoned = False
        """Set when :meth:`close` gave up waiting: outcomes arriving later are ignored."""

    def submit(
        self,
        task: Callable[[], R],
        on_result: Callable[[R], None],
        on_error: Callable[[BaseException], None],
    ) -> bool:
        """Run ``task`` when a worker is free (blocks while the backlog is full). False, and the task
        is not run, when the owner is stopping while it waits."""
        while not self._slots.acquire(timeout=0.1):
            if self._stopping():
                return False
        with self._lock:
            self.submitted += 1

        def done(future: concurrent.futures.Future[R]) -> None:
            if self.abandoned:
                self._slots.release()
                return
            try:
                if future.cancelled():
                    on_error(concurrent.futures.CancelledError("stopped before it started"))
                    return
                error = future.exception()
                if error is None:
                    on_result(future.result())
                else:
                    on_error(error)
            except BaseException as bug:  # noqa: BLE001 - a callback's own failure is kept, not lost
                with self._lock:
                    self.callback_errors.append(bug)
            finally:
                with self._lock:
                    self.finished += 1
                self._slots.release()

        try:
            future = self._pool.submit(task)
        except BaseException:
            with self._lock:
                self.submitted -= 1
            self._slots.release()
            raise
        future.add_done_callback(done)
        return True

    def close(self, *, cancel: bool = False, timeout: float | None = None) -> bool:
        """Wait for every task (``cancel``: tasks not started yet never run; their ``on_error`` gets
        a CancelledError). With ``timeout``, give up waiting after that long (tasks blocked on a
        server that stopped answering): returns False, and later outcomes are ignored."""
        if cancel:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if timeout is None:
            self._pool.shutdown(wait=True)
            return True
        deadline = time.monotonic() + timeout
        while not self.accounted:
            if time.monotonic() >= deadline:
                self.abandoned = True
                self._pool.shutdown(wait=False)
                return False
            time.sleep(0.05)
        self._pool.shutdown(wait=True)
        return True

    @property
    def accounted(self) -> bool:
        with self._lock:
            return self.finished == self.submitted
