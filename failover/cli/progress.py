"""Progress for long work: a live bar on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..secrets import redact

__all__ = ["ProgressDisplay"]


class ProgressDisplay:
    """Objects and bytes done of those found so far, rate and ETA. Silent when ``enabled`` is False."""

    def __init__(self, console: Console, *, enabled: bool, title: str) -> None:
        self.console = console
        self.enabled = enabled
        self.title = title
        self.live = enabled and console.is_terminal
        self._lock = threading.Lock()
        self.total_objects = self.done_objects = self.total_bytes = self.done_bytes = 0
        self._started = time.monotonic()
        self._last_line = time.monotonic()
        self._progress: Progress | None = None
        self._objects: TaskID | None = None
        self._bytes: TaskID | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._objects = self._progress.add_task(f"{self.title} objects", total=0)
            self._bytes = self._progress.add_task(f"{self.title} bytes", total=0)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif self.enabled and self.done_objects:
            self._line(force=True)

    def planned(self, objects: int, size: int) -> None:
        with self._lock:
            self.total_objects += objects
            self.total_bytes += size
        self._refresh()

    def advanced(self, objects: int, size: int) -> None:
        with self._lock:
            self.done_objects += objects
            self.done_bytes += size
            if objects and self.total_objects < self.done_objects:
                self.total_objects = self.done_objects
            if self.total_bytes < self.done_bytes:
                self.total_bytes = self.done_bytes
        self._refresh()

    def note(self, message: str) -> None:
        if self.enabled:
            self.console.print(redact(message), markup=False)

    def _refresh(self) -> None:
        if self._progress is not None and self._objects is not None and self._bytes is not None:
            self._progress.update(self._objects, total=self.total_objects, completed=self.done_objects)
            self._progress.update(self._bytes, total=self.total_bytes, completed=self.done_bytes)
        elif self.enabled:
            self._line()

    def _line(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_line < 5.0:
            return
        self._last_line = now
        elapsed = max(now - self._started, 1e-6)
        rate = self.done_bytes / elapsed
        remaining = (self.total_bytes - self.done_bytes) / rate if rate > 0 else 0.0
        print(
            f"{self.title}: {self.done_objects}/{self.total_objects} objects, "
            f"{self.done_bytes / 2**20:.1f}/{self.total_bytes / 2**20:.1f} MiB, "
            f"{self.done_objects / elapsed:.0f} obj/s, {rate / 2**20:.1f} MiB/s, ETA {remaining:.0f} s",
            file=sys.stderr,
            flush=True,
        )
