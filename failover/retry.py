"""One retry policy for every provider call: bounded attempts, exponential backoff with full jitter,
and the server's Retry-After honoured (up to a cap). Only errors marked ``retryable`` are retried, so
authorisation failures fail fast instead of starting a retry storm."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from .errors import ProviderError

__all__ = ["Counters", "RetryPolicy"]

T = TypeVar("T")


@dataclass
class Counters:
    """Thread-safe counters a store keeps for reports (requests, retries, bytes)."""

    retries: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    listings_ended_early: int = 0
    """Listings that claimed to be complete and were not (found by confirming their end)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "retries": self.retries,
                "bytes_read": self.bytes_read,
                "bytes_written": self.bytes_written,
                "listings_ended_early": self.listings_ended_early,
            }


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    max_retry_after: float = 30.0
    """Longest Retry-After we obey; a server asking for more gets this instead."""

    def delay(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if isinstance(error, ProviderError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)

    def call(
        self,
        fn: Callable[[], T],
        *,
        on_retry: Callable[[ProviderError, float], None] | None = None,
        stop: Callable[[], str | None] | None = None,
    ) -> T:
        """Run ``fn``; retry it while it raises a retryable ProviderError, up to ``max_attempts``.

        The last error is re-raised unchanged when attempts run out, or as soon as ``stop()`` gives
        a reason (the run has a deadline of its own, see :mod:`failover.liveness`). The first
        attempt runs directly: tenacity's bookkeeping is only set up once something has failed.
        """

        def retryable(error: BaseException) -> bool:
            return isinstance(error, ProviderError) and error.retryable and (stop is None or stop() is None)

        try:
            return fn()
        except ProviderError as error:
            if not retryable(error) or self.max_attempts <= 1:
                raise
            first = error
        pause = self.delay(1, first)
        if on_retry is not None:
            on_retry(first, pause)
        time.sleep(pause)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.delay(state.attempt_number + 1, error)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if on_retry is not None and isinstance(error, ProviderError):
                sleep = state.next_action.sleep if state.next_action else 0.0
                on_retry(error, sleep)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts - 1),
            wait=wait,
            retry=tenacity.retry_if_exception(retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)


NO_RETRY = RetryPolicy(max_attempts=1)
