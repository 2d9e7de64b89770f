"""What ``--cluster`` names: a LocalCluster started for the run, or an existing scheduler."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["MAX_LOCAL_WORKERS", "ClusterSpec", "parse_cluster"]

MAX_LOCAL_WORKERS = 64
_TCP = re.compile(r"^(tcp|tls)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


@dataclass(frozen=True)
class ClusterSpec:
    """``local`` with ``workers`` processes, or ``address`` of a running Dask scheduler."""

    workers: int | None = None
    address: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        """The scheduler's host and port (an address only)."""
        assert self.address is not None
        found = _TCP.match(self.address)
        assert found is not None  # parse_cluster accepted it
        return found.group(2).strip("[]"), int(found.group(3))

    def __str__(self) -> str:
        return f"local:{self.workers}" if self.address is None else self.address


def parse_cluster(text: str, what: str = "--cluster") -> ClusterSpec:
    """``local:N`` (1..64 worker processes on this machine) or ``tcp://HOST:PORT``; ``what`` names
    the input in the error (the option, or a playbook's field)."""
    value = text.strip()
    hint = "--cluster local:N starts N worker processes here; --cluster tcp://HOST:PORT uses a running scheduler"
    if value.startswith("local:"):
        count = value.removeprefix("local:")
        if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise ConfigError(f"{what} {text!r}: N must be a whole number from 1 to {MAX_LOCAL_WORKERS}", hint=hint)
        return ClusterSpec(workers=int(count))
    found = _TCP.match(value)
    if found is None or not 0 < int(found.group(3)) < 65536:
        raise ConfigError(f"{what} {text!r} is neither local:N nor tcp://HOST:PORT", hint=hint)
    return ClusterSpec(address=value)
