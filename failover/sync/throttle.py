"""A bandwidth limit shared by every worker (token bucket)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from ..errors import ConfigError

__all__ = ["Bandwidth", "parse_rate"]

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_rate(text: str) -> float:
    """'50M' -> bytes per second (K, M, G are powers of 1024; a trailing 'B' or '/s' is allowed)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:/s)?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--bwlimit {text!r} is not a rate", hint="write e.g. 20M for 20 MiB/s, 512K, 1G")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Bandwidth:
    """``take(n)`` blocks until ``n`` more bytes fit under the limit. Without a limit it returns at once.
    Every byte sent passes through it, so ``on_bytes`` (the progress meter) sees them as they go."""

    def __init__(self, bytes_per_second: float | None, on_bytes: Callable[[int], None] | None = None) -> None:
        self.rate = bytes_per_second
        self.on_bytes = on_bytes
        self._lock = threading.Lock()
        self._available = bytes_per_second or 0.0
        self._stamp = time.monotonic()

    def take(self, amount: int) -> None:
        if self.on_bytes is not None:
            self.on_bytes(amount)
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            self._available = min(self.rate, self._available + (now - self._stamp) * self.rate)
            self._stamp = now
            self._available -= amount
            wait = -self._available / self.rate if self._available < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
