"""Progress on stderr: one line updated in place on a terminal, a new line every few seconds
otherwise (logs, CI), both from :class:`failover.progress.ProgressMeter`."""

from __future__ import annotations

import sys
import threading
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..progress import ProgressMeter
from ..secrets import redact

__all__ = ["ProgressDisplay"]

EVERY = 5.0
"""Seconds between progress lines when stderr is not a terminal."""


class _Line:
    def __init__(self, meter: ProgressMeter) -> None:
        self.meter = meter

    def __rich__(self) -> Text:
        return Text(redact(self.meter.line()), no_wrap=True, overflow="ellipsis")


class ProgressDisplay(ProgressMeter):
    """A meter that draws itself while the work runs. Silent when ``enabled`` is False; after
    :meth:`stop` it draws nothing more (the summary and any error come after it, never a stale line)."""

    def __init__(self, console: Console, *, enabled: bool, title: str, verb: str = "copied") -> None:
        super().__init__(title, verb=verb)
        self.console = console
        self.enabled = enabled
        self.live_display = enabled and console.is_terminal
        self._live: Live | None = None
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None
        self.on_note = self._print_note

    def _print_note(self, message: str) -> None:
        if self.enabled and not self._stopped.is_set():
            self.console.print(redact(message), markup=False)

    def __enter__(self) -> ProgressDisplay:
        if self.live_display:
            self._live = Live(_Line(self), console=self.console, refresh_per_second=4, transient=True)
            self._live.start()
        elif self.enabled:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stopped.wait(EVERY):
            if self.total_objects or self.checked_objects:
                print(redact(self.line()), file=sys.stderr, flush=True)

    def stop(self) -> None:
        """Stop drawing (idempotent). The last line stays on screen when work was done."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._live is not None:
            self._live.stop()
        if self.enabled and (self.done_objects or self.checked_objects):
            print(redact(self.line()), file=sys.stderr, flush=True)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
