"""Progress of long work (sync, verify, a playbook's sync and verify steps), in rclone ``-P``'s terms.

:class:`ProgressMeter` is what the engines report to (it satisfies the sync engine's ``Progress``
protocol) and what every display reads: objects and bytes done of those found so far, the rate and
ETA over a moving window (not since the start, so a stall shows at once and a resumed run that
checked thousands of unchanged objects does not claim a transfer rate), and the transfers in
flight. Binary units throughout (KiB, MiB, GiB), as :func:`failover.units.human_size` prints them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from .units import human_size

__all__ = ["ProgressMeter", "duration"]

WINDOW = 10.0
"""Seconds of recent transfers the rate and ETA are computed from."""


def duration(seconds: float) -> str:
    """``75`` -> ``1m15s``, ``3700`` -> ``1h01m40s`` (as rclone prints times)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{seconds:.1f}s" if seconds < 10 else f"{secs}s"


class ProgressMeter:
    """Thread-safe counters of one piece of long work, and the line that shows them."""

    def __init__(self, title: str, *, verb: str = "copied", clock: Callable[[], float] = time.monotonic) -> None:
        self.title = title
        self.verb = verb
        self.clock = clock
        self.started = clock()
        self.total_objects = self.total_bytes = 0
        self.done_objects = self.done_bytes = 0
        self.checked_objects = self.checked_bytes = 0
        """Found done already (unchanged since an earlier run): counted, not part of the rate."""
        self.moved_bytes = 0
        """Bytes sent so far, as they go when the engine says (:meth:`transferring`): the rate's measure."""
        self._streamed = False
        self._window: deque[tuple[float, int, int]] = deque([(self.started, 0, 0)])
        self._in_flight: Callable[[], int] | None = None
        self._lock = threading.Lock()
        self.notes: list[str] = []
        self.on_note: Callable[[str], None] | None = None

    # -- what the engines call -------------------------------------------------------------------

    def planned(self, objects: int, size: int) -> None:
        with self._lock:
            self.total_objects += objects
            self.total_bytes += size

    def advanced(self, objects: int, size: int) -> None:
        """``objects`` of the planned ones finished (copied, compared, or failed with ``size`` 0)."""
        with self._lock:
            self.done_objects += objects
            self.done_bytes += size
            if not self._streamed:
                self.moved_bytes += size
            self.total_objects = max(self.total_objects, self.done_objects)
            self.total_bytes = max(self.total_bytes, self.done_bytes)
            self._sample()

    def transferring(self, size: int) -> None:
        with self._lock:
            self._streamed = True
            self.moved_bytes += size
            self._sample()

    def checked(self, objects: int, size: int) -> None:
        """Objects found done already (verified earlier, unchanged): part of the total, not of the rate."""
        with self._lock:
            self.checked_objects += objects
            self.checked_bytes += size

    def watch_in_flight(self, count: Callable[[], int]) -> None:
        self._in_flight = count

    def note(self, message: str) -> None:
        self.notes.append(message)
        if self.on_note is not None:
            self.on_note(message)

    # -- what displays read ------------------------------------------------------------------------

    def _sample(self) -> None:
        now = self.clock()
        if now - self._window[-1][0] >= 0.2:
            self._window.append((now, self.moved_bytes, self.done_objects))
        while len(self._window) > 2 and now - self._window[1][0] > WINDOW:
            self._window.popleft()

    def rates(self) -> tuple[float, float] | None:
        """(bytes/s, objects/s) over the window; None until a second of work has been seen."""
        with self._lock:
            self._sample()
            now = self.clock()
            first_t, first_bytes, first_objects = self._window[0]
            span = now - first_t
            if span < 1.0 or (self.moved_bytes == first_bytes and self.done_objects == first_objects and span < WINDOW):
                return None if span < 1.0 else (0.0, 0.0)
            return (self.moved_bytes - first_bytes) / span, (self.done_objects - first_objects) / span

    def eta(self) -> float | None:
        rates = self.rates()
        if rates is None:
            return None
        byte_rate, object_rate = rates
        left_bytes = self.total_bytes - max(self.done_bytes, self.moved_bytes if self._streamed else 0)
        left_objects = self.total_objects - self.done_objects
        if left_objects <= 0:
            return 0.0
        if left_bytes > 0:
            return left_bytes / byte_rate if byte_rate > 0 else None
        return left_objects / object_rate if object_rate > 0 else None

    def line(self) -> str:
        """``sync: 1234/5000 objects copied (300 unchanged), 1.2 GiB / 2.0 GiB (60%), 12.3 MiB/s, ETA 1m02s,
        16 in flight, 1m40s``"""
        elapsed = self.clock() - self.started
        parts = [f"{self.done_objects}/{self.total_objects} objects {self.verb}"]
        if self.checked_objects:
            parts[0] += f" ({self.checked_objects} unchanged)"
        share = f" ({self.done_bytes / self.total_bytes:.0%})" if self.total_bytes else ""
        parts.append(f"{human_size(self.done_bytes)} / {human_size(self.total_bytes)}{share}")
        rates = self.rates()
        if rates is None:
            parts.append("rate -")
        else:
            parts.append(f"{human_size(rates[0])}/s")
        eta = self.eta()
        if self.total_objects > self.done_objects:
            parts.append(f"ETA {duration(eta)}" if eta is not None else "ETA -")
        if self._in_flight is not None:
            parts.append(f"{self._in_flight()} in flight")
        parts.append(duration(elapsed))
        return f"{self.title}: " + ", ".join(parts)
