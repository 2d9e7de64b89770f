"""Provider health checks: is each configured service reachable, are the credentials accepted, and
what does it declare. Used by ``failover providers check`` and by playbook preflight."""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .config import Providers
from .connect import open_account, open_compute, open_dns, open_feed, open_store
from .errors import AuthError, ConfigError, ConnectionLost, FailoverError, NotFound, Timeout
from .feed import ChangeFeed
from .secrets import redact
from .storage import ObjectStore

__all__ = ["ServiceCheck", "check_providers"]


@dataclass
class ServiceCheck:
    provider: str
    service: str
    type: str
    endpoint: str | None
    reachable: bool | None = None
    """None when there is nothing to connect to (a local directory) or it was not tried."""
    authorised: bool | None = None
    capabilities: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.reachable is not False and self.authorised is not False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _tcp_reachable(endpoint: str, timeout: float = 3.0) -> tuple[bool, str | None]:
    parsed = urllib.parse.urlsplit(endpoint)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, None
    except OSError as exc:
        return False, f"cannot connect to {host}:{port}: {exc.strerror or exc}"


@dataclass(frozen=True)
class _Probe:
    """How to check one kind of service: open its adapter, read what it declares, and make one
    cheap authenticated call that says what it sees."""

    open: Callable[[Providers, str], Any]
    declared: Callable[[Any], dict[str, Any] | None]
    call: Callable[[Any], str]


def _list_buckets(store: ObjectStore) -> str:
    store.retry = type(store.retry)(max_attempts=2)  # a check answers quickly; the error says why
    return f"{len(store.list_buckets())} bucket(s) visible"


_PROBES = {
    "storage": _Probe(open_store, lambda store: store.capabilities.describe(), _list_buckets),
    "compute": _Probe(
        open_compute,
        lambda compute: compute.capabilities.describe(),
        lambda compute: f"{len(compute.list_instances())} instance(s) visible",
    ),
    "dns": _Probe(
        open_dns,
        lambda dns: dns.capabilities.describe(),
        lambda dns: f"{len(dns.list_zones())} zone(s) visible",
    ),
    "account": _Probe(open_account, lambda account: None, lambda account: f"identity {account.identity()}"),
    "feed": _Probe(open_feed, lambda feed: None, lambda feed: _feed_state(feed)),
}


def _feed_state(feed: ChangeFeed) -> str:
    try:
        waiting = feed.backlog()
    except NotFound as exc:
        return f"not set up yet ({exc.hint or exc.message})"
    return "reachable" if waiting is None else f"{waiting} event(s) waiting"


def _check_service(providers: Providers, name: str, check: ServiceCheck) -> None:
    probe = _PROBES[check.service]
    try:
        adapter = probe.open(providers, name)
    except ConfigError as exc:
        check.error = exc.message
        return
    try:
        check.capabilities = probe.declared(adapter)
        check.notes.append(probe.call(adapter))
        check.reachable = True if check.reachable is None else check.reachable
        check.authorised = True
    except AuthError as exc:
        check.reachable = True
        check.authorised = False
        check.error = str(exc)
    except (ConnectionLost, Timeout) as exc:
        check.reachable = False
        check.error = str(exc)
    except FailoverError as exc:
        check.error = str(exc)
    finally:
        adapter.close()


def check_providers(providers: Providers, names: list[str] | None = None) -> list[ServiceCheck]:
    """Check every service of the named providers (all when ``names`` is empty)."""
    results = []
    for name in names or providers.names:
        for service in providers.services(name):
            started = time.monotonic()
            try:
                spec = providers.spec(name, service)
            except ConfigError as exc:
                block = getattr(providers.get(name), service)
                results.append(ServiceCheck(name, service, block.type, block.endpoint, error=exc.message))
                continue
            check = ServiceCheck(name, service, spec.type, spec.endpoint)
            if spec.endpoint:
                check.reachable, check.error = _tcp_reachable(spec.endpoint)
            if check.reachable is not False:
                _check_service(providers, name, check)
            check.error = redact(check.error) if check.error else None
            check.seconds = round(time.monotonic() - started, 3)
            results.append(check)
    return results
