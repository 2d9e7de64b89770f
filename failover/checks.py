"""Provider health checks: is each configured service reachable, are the credentials accepted, and
what does it declare. Used by ``failover providers check`` and by playbook preflight."""

from __future__ import annotations

import socket
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any

from .config import Providers
from .connect import open_store
from .errors import AuthError, ConfigError, ConnectionLost, FailoverError, Timeout
from .secrets import redact

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


def _check_storage(providers: Providers, name: str, check: ServiceCheck) -> None:
    try:
        store = open_store(providers, name)
    except ConfigError as exc:
        check.error = exc.message
        return
    try:
        check.capabilities = store.capabilities.describe()
        store.retry = type(store.retry)(max_attempts=2)
        buckets = store.list_buckets()
        check.reachable = True if check.reachable is None else check.reachable
        check.authorised = True
        check.notes.append(f"{len(buckets)} bucket(s) visible")
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
        store.close()


_CHECKS = {"storage": _check_storage}


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
                _CHECKS[service](providers, name, check)
            check.error = redact(check.error) if check.error else None
            check.seconds = round(time.monotonic() - started, 3)
            results.append(check)
    return results
