"""Failpoints: named places where failover can be made to die as if ``kill -9`` hit it there, so
crash safety is tested at the exact moments that matter (between a write on the target and the
journal's record of it, say) instead of wherever a timer happens to land.

Off unless ``FAILOVER_FAILPOINTS`` names some, as ``name=N[,name=N...]``: the process sends itself
SIGKILL the N-th time it reaches ``name``. The names are listed in :data:`POINTS`; the variable is
read once per process. With nothing set, :func:`hit` costs a dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["ENV", "POINTS", "hit"]

ENV = "FAILOVER_FAILPOINTS"
POINTS = {
    "journal.upload_intent": "committed: a multipart upload is about to be created (no id recorded yet)",
    "journal.upload_started": "committed: the upload id is recorded, no part uploaded",
    "journal.part": "committed: one more uploaded part is recorded",
    "journal.before_verified": "objects are on the target, their verified marks not yet committed",
    "journal.verified": "committed: a batch of verified marks",
}

_lock = threading.Lock()
_counts: dict[str, int] = {}
_armed: dict[str, int] | None = None


def _parse() -> dict[str, int]:
    armed = {}
    for item in filter(None, (part.strip() for part in os.environ.get(ENV, "").split(","))):
        name, _, count = item.partition("=")
        if name not in POINTS or not count.isdigit() or int(count) < 1:
            raise ValueError(f"{ENV}: {item!r} is not NAME=N with NAME one of {', '.join(POINTS)}")
        armed[name] = int(count)
    return armed


def hit(name: str) -> None:
    """Reached failpoint ``name``: die here if it is armed and this is the time."""
    global _armed
    if _armed is None:
        _armed = _parse()
    if name not in _armed:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] == _armed[name]:
            os.kill(os.getpid(), signal.SIGKILL)
