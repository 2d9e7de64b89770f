"""A run-level deadline for making no progress.

Per-request timeouts and retries bound one request, not a run: a server that accepts connections
and then never answers (``kill -STOP``, a black-holed network path) would cost every object of a
run its full set of timed-out attempts. A :class:`Liveness` shared by the stores of a run records
when each endpoint last answered (any HTTP response, an error included, or body bytes arriving);
once one has been asked and has answered nothing for ``timeout`` seconds, :meth:`stalled` says so,
the retry policy stops retrying and the run stops with a message naming the endpoint.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

__all__ = ["DEFAULT_STALL_TIMEOUT", "Liveness"]

DEFAULT_STALL_TIMEOUT = 120.0


@dataclass
class _Endpoint:
    last_answer: float
    waiting: int = 0
    """Requests sent and not yet answered."""
    unanswered: bool = False
    """The latest request ended without an answer (timed out, connection refused or reset)."""


class Liveness:
    def __init__(self, timeout: float | None = DEFAULT_STALL_TIMEOUT) -> None:
        self.timeout = timeout
        self._endpoints: dict[str, _Endpoint] = {}
        self._lock = threading.Lock()
        self._stalled: str | None = None

    def _get(self, who: str) -> _Endpoint:
        endpoint = self._endpoints.get(who)
        if endpoint is None:
            endpoint = self._endpoints[who] = _Endpoint(time.monotonic())
        return endpoint

    def asking(self, who: str) -> None:
        """A request to ``who`` is being sent."""
        with self._lock:
            self._get(who).waiting += 1

    def answered(self, who: str) -> None:
        """``who`` answered (a response arrived, or body bytes did)."""
        with self._lock:
            endpoint = self._get(who)
            endpoint.last_answer = time.monotonic()
            endpoint.unanswered = False

    def finished(self, who: str, *, answered: bool) -> None:
        """A request to ``who`` ended, with an answer or without one."""
        with self._lock:
            endpoint = self._get(who)
            endpoint.waiting = max(0, endpoint.waiting - 1)
            if answered:
                endpoint.last_answer = time.monotonic()
                endpoint.unanswered = False
            else:
                endpoint.unanswered = True

    def stalled(self) -> str | None:
        """Why the run should stop (an endpoint silent past the deadline), or None."""
        if self.timeout is None:
            return None
        with self._lock:
            if self._stalled is not None:
                return self._stalled
            now = time.monotonic()
            for who, endpoint in sorted(self._endpoints.items()):
                silent = now - endpoint.last_answer
                if (endpoint.waiting or endpoint.unanswered) and silent > self.timeout:
                    self._stalled = (
                        f"{who} has not answered for {silent:.0f} s (the run's limit for making no progress is "
                        f"{self.timeout:.0f} s)"
                    )
                    return self._stalled
        return None
