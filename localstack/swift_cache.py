"""A cache for the lab's single-process Swift proxy, in place of memcached: tempauth keeps its tokens
in ``env['swift.cache']``, and the proxy its account and container info. Loaded by Swift (from its
own virtualenv, through PYTHONPATH) as a paste.deploy filter; never imported by failover."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["MemoryCache", "filter_factory"]


class MemoryCache:
    """The part of swift.common.memcached.MemcacheRing that the proxy and tempauth use."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> tuple[Any, float] | None:
        item = self._items.get(key)
        if item is not None and item[1] and item[1] < time.time():
            del self._items[key]
            return None
        return item

    def get(self, key: str, raise_on_error: bool = False) -> Any:
        with self._lock:
            item = self._live(key)
        return None if item is None else item[0]

    def set(self, key: str, value: Any, serialize: bool = True, time: float = 0, **_: Any) -> None:
        with self._lock:
            self._items[key] = (value, _expiry(time))

    def incr(self, key: str, delta: int = 1, time: float = 0, **_: Any) -> int:
        with self._lock:
            item = self._live(key)
            value = max(int(item[0]) + delta if item else delta, 0)
            self._items[key] = (value, _expiry(time))
        return value

    def decr(self, key: str, delta: int = 1, time: float = 0, **_: Any) -> int:
        return self.incr(key, -delta, time)

    def delete(self, key: str, server_key: str | None = None) -> None:
        with self._lock:
            self._items.pop(key, None)

    def get_multi(self, keys: Iterable[str], server_key: str, **_: Any) -> list[Any]:
        return [self.get(key) for key in keys]

    def set_multi(self, mapping: dict[str, Any], server_key: str, time: float = 0, **_: Any) -> None:
        for key, value in mapping.items():
            self.set(key, value, time=time)


def _expiry(seconds: float) -> float:
    return time.time() + seconds if seconds else 0.0


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Callable[[Any], Any]:
    cache = MemoryCache()

    def make(app: Any) -> Any:
        def middleware(env: dict[str, Any], start_response: Any) -> Any:
            env["swift.cache"] = cache
            return app(env, start_response)

        return middleware

    return make
