"""What every libcloud adapter (storage, compute, DNS) shares: the driver profile for a name, the
driver's constructor arguments from a service spec, and one driver per thread (a libcloud driver
holds one connection and is not safe to share)."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from failover.errors import ConfigError

from .errors import converted

__all__ = ["ThreadDrivers", "connection_kwargs", "profile_for"]

P = TypeVar("P")
D = TypeVar("D")


def profile_for(profiles: Mapping[str, P], driver: str, provider: str, kind: str) -> P:
    """The profile of ``driver`` among those failover knows for ``kind`` (storage, compute, DNS)."""
    if driver not in profiles:
        raise ConfigError(
            f"provider {provider!r}: libcloud {kind} driver {driver!r} is not supported",
            hint=f"supported drivers: {', '.join(sorted(profiles))}",
        )
    return profiles[driver]


def connection_kwargs(
    endpoint: str | None,
    endpoint_mode: str,
    *,
    region: str | None = None,
    takes_region: bool = False,
    base: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Constructor arguments: the profile's ``base``, the providers file's ``extra``, and where to
    connect: ``host_port`` turns the endpoint into host=, port=, secure=; ``auth_url`` passes it as
    the auth URL (OpenStack); ``none``: the driver knows its endpoint."""
    kwargs: dict[str, Any] = {**(base or {}), **(extra or {})}
    if endpoint and endpoint_mode == "host_port":
        parsed = urllib.parse.urlsplit(endpoint)
        kwargs.update(host=parsed.hostname, secure=parsed.scheme == "https")
        if parsed.port:
            kwargs["port"] = parsed.port
    elif endpoint and endpoint_mode == "auth_url":
        kwargs["ex_force_auth_url"] = endpoint
    if region and takes_region:
        kwargs["region"] = region
    return kwargs


class ThreadDrivers(Generic[D]):
    """One driver per thread, made on first use (``prepare`` adjusts each new one)."""

    def __init__(self, make: Callable[[], D], prepare: Callable[[D], None] | None = None) -> None:
        self._make = make
        self._prepare = prepare
        self._local = threading.local()

    def get(self) -> D:
        driver: D | None = getattr(self._local, "driver", None)
        if driver is None:
            with converted("connect"):
                driver = self._make()
            if self._prepare is not None:
                self._prepare(driver)
            self._local.driver = driver
        return driver
