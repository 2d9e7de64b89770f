"""A standby's state as data: what it is doing, how far behind it is, what went wrong.

One :class:`StandbyStatus` is updated by the standby as it works and rendered three ways: the JSON
status file (``--status-file``, rewritten atomically every few seconds), Prometheus text on
``--metrics HOST:PORT`` (through ``prometheus_client``), and ``failover standby status``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import write_atomic
from ..secrets import redact

__all__ = ["Outage", "StandbyStatus", "read_status", "serve_metrics", "status_is_fresh"]

RECENT_ERRORS = 20


@dataclass
class Outage:
    since: float
    error: str
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.since


@dataclass
class StandbyStatus:
    source: str
    target: str
    journal: str
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    status_every_s: float = 2.0
    phase: str = "starting"
    """starting, initial sync, following, reconciling, backing off, stopped."""
    mode: str = "listing"
    """feed (changes come from the source's change feed) or listing (incremental listings)."""
    feed: str | None = None
    feed_fallback: str | None = None
    """Why the feed is not used although the source declares one (it was deleted, ...)."""
    interval_s: float = 0.0
    reconcile_every_s: float = 0.0
    propagate_deletes: bool = False
    delete_delay_s: float = 0.0
    behind_objects: int = 0
    """Changes known not to be on the target yet (pending events, the feed's backlog, copies of
    the pass under way, failed copies)."""
    behind_bytes: int = 0
    """Their bytes, where known (events and listings give sizes; a feed's backlog does not)."""
    feed_backlog: int | None = None
    oldest_change_age_s: float = 0.0
    """Age of the oldest source change known not to be on the target (0: none known)."""
    unseen_for_s: float = 0.0
    """Listing mode: time since the last completed listing began; changes made since may not be
    known yet (an upper bound on how old an unseen change can be)."""
    copies: int = 0
    bytes_copied: int = 0
    deletes: int = 0
    delete_pending: int = 0
    errors: int = 0
    passes: int = 0
    reconciliations: int = 0
    last_pass: dict[str, Any] | None = None
    last_reconciliation: dict[str, Any] | None = None
    outage: dict[str, Any] | None = None
    gaps: list[dict[str, Any]] = field(default_factory=list)
    """Past outages: when each began and ended, how long, and the error."""
    recent_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()

    def update(self, **values: Any) -> None:
        with self._lock:
            for name, value in values.items():
                if not hasattr(self, name):
                    raise AttributeError(name)
                setattr(self, name, value)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def error(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self.recent_errors = [*self.recent_errors, redact(message)][-RECENT_ERRORS:]

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            data = asdict(self)
        data["updated_at"] = time.time()
        data["recovery_point_s"] = data["oldest_change_age_s"]
        return data

    def write(self, path: Path) -> None:
        self.updated_at = time.time()
        write_atomic(path, redact(json.dumps(self.to_json(), indent=2, default=str)) + "\n")


def read_status(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no standby status file at {path}",
            hint="failover standby SRC DST --status-file PATH writes one (the default is beside the journal)",
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not a standby status file ({exc})") from None
    if not isinstance(data, dict) or "phase" not in data:
        raise ConfigError(f"{path}: not a standby status file")
    return data


def status_is_fresh(data: dict[str, Any], now: float | None = None) -> bool:
    """Whether the standby that wrote ``data`` is still writing it (three intervals' grace)."""
    every = float(data.get("status_every_s") or 2.0)
    return data.get("phase") != "stopped" and (now or time.time()) - float(data.get("updated_at") or 0) < 3 * every + 1


def _metrics(status: StandbyStatus) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    data = status.to_json()
    labels = ["source", "target"]
    values = [data["source"], data["target"]]

    def gauge(name: str, doc: str, value: float) -> Any:
        family = GaugeMetricFamily(f"failover_standby_{name}", doc, labels=labels)
        family.add_metric(values, value)
        return family

    def counter(name: str, doc: str, value: float) -> Any:
        family = CounterMetricFamily(f"failover_standby_{name}", doc, labels=labels)
        family.add_metric(values, value)
        return family

    yield gauge("behind_objects", "Source changes known not to be on the target yet", data["behind_objects"])
    yield gauge("behind_bytes", "Bytes of those changes, where known", data["behind_bytes"])
    yield gauge(
        "oldest_unreplicated_change_age_seconds",
        "Age of the oldest source change known not to be on the target",
        data["oldest_change_age_s"],
    )
    yield gauge("unseen_seconds", "Listing mode: time since the last completed listing began", data["unseen_for_s"])
    yield gauge("feed_mode", "1 when following the change feed, 0 when following by listings", data["mode"] == "feed")
    yield gauge("up", "1 unless backing off from an outage or stopped", data["outage"] is None)
    yield gauge("delete_pending", "Target objects waiting out the delete delay", data["delete_pending"])
    last = data["last_reconciliation"] or {}
    yield gauge(
        "last_reconciliation_timestamp_seconds", "When the last full reconciliation finished", last.get("finished", 0)
    )
    yield counter("copies", "Objects copied and verified", data["copies"])
    yield counter("copied_bytes", "Bytes copied and verified", data["bytes_copied"])
    yield counter("deletes", "Target objects deleted after their source was deleted", data["deletes"])
    yield counter("errors", "Errors (each also in the status file)", data["errors"])
    yield counter("passes", "Copy passes run (feed batches, listings, reconciliations)", data["passes"])


def serve_metrics(status: StandbyStatus, host: str, port: int) -> Any:
    """Serve Prometheus text for ``status`` on HOST:PORT; returns the server (``shutdown()`` it)."""
    from prometheus_client import CollectorRegistry, start_http_server

    class Collector:
        def collect(self) -> Iterator[Any]:
            return _metrics(status)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"--metrics {host}:{port}: cannot listen there ({exc.strerror or exc})") from None
    return server
