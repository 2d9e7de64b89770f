"""One application function per command. The CLI command and the playbook step of the same name
both call it and render its result; neither repeats what it does (open the providers, run the
engine, close, record).

* :func:`sync`: copy buckets (``failover sync``, the ``sync`` step);
* :func:`verify`: compare them (``failover verify``, the ``verify`` step);
* :func:`plan_rehost_fleet`, :func:`rehost`, :func:`rehost_rollback`: rebuild instances
  (``failover rehost``, the ``rehost`` step and its undo);
* :func:`standby`, :func:`standby_feed`: follow a source (``failover standby``, the ``standby`` step);
* :func:`failover.inventory.take_inventory`: take stock (``failover inventory``, the ``inventory`` step).
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .config import Providers
from .connect import open_compute
from .errors import ConfigError, FailoverError
from .files import write_atomic
from .secrets import redact
from .sync import (
    ClusterRun,
    Progress,
    SyncEngine,
    SyncOptions,
    SyncReport,
    VerifyOptions,
    VerifyReport,
    default_journal_path,
    open_locations,
    run_verify,
)

if TYPE_CHECKING:  # the rehost machinery is imported when a rehost runs, not by every command
    from .changes import Change
    from .compute import Compute
    from .rehost import RehostPlan, RehostReport
    from .standby import StandbyOptions, StandbyStatus

__all__ = [
    "RehostRefused",
    "RehostRequest",
    "RehostRun",
    "SyncRun",
    "plan_rehost_fleet",
    "rehost",
    "rehost_rollback",
    "standby",
    "standby_feed",
    "sync",
    "verify",
    "write_json",
    "write_report",
    "write_sync_json",
]


def write_json(path: Path, data: object) -> None:
    """A report file, redacted and written atomically."""
    write_atomic(path, redact(json.dumps(data, indent=2, default=str, ensure_ascii=False)) + "\n")


def write_report(path: Path, data: dict[str, object], report: SyncReport | None = None) -> None:
    """``--report FILE``: the HTML page when FILE ends in .html, the JSON report otherwise (a sync's
    ``report``, when given, with every key named: see :func:`write_sync_json`)."""
    from .htmlreport import HTML_SUFFIXES, write_html

    if path.suffix.lower() in HTML_SUFFIXES:
        write_html(data, path)
    elif report is not None:
        write_sync_json(path, report)
    else:
        write_json(path, data)


def write_sync_json(path: Path, report: SyncReport) -> None:
    """A sync's JSON report naming every key, streamed and redacted piece by piece, written
    atomically."""
    write_atomic(path, lambda write: report.write_json(write, transform=redact))


# -- storage ---------------------------------------------------------------------------------------


@dataclass
class SyncRun:
    report: SyncReport
    abandoned: bool
    """Copies were left waiting on a server that stopped answering (their threads still run)."""
    report_file: Path | None
    """The run's JSON report beside its journal (None for a dry run)."""


def sync(
    providers: Providers, source: str, target: str, options: SyncOptions, progress: Progress | None = None
) -> SyncRun:
    """Copy ``source`` to ``target`` (``PROVIDER:BUCKET[/PREFIX]``, or ``PROVIDER:``) as the sync
    engine does, or plan it (``options.dry_run``). The run's report is kept beside its journal."""
    src, dst, source_store, target_store = open_locations(providers, source, target)
    with contextlib.ExitStack() as stack:
        cluster = _cluster_run(stack, providers, source, target, options)  # a dry run lists on it too
        engine = SyncEngine(source_store, target_store, src, dst, options, progress, cluster)
        try:
            report = engine.run()
        finally:
            # Abandoned copies still hold the stores; closing them under those threads helps nobody.
            if not engine.abandoned:
                source_store.close()
                if target_store is not source_store:
                    target_store.close()
    report_file = None
    if not options.dry_run:
        report_file = Path(report.journal).with_suffix(f".run-{report.run}.json")
        write_sync_json(report_file, report)
    return SyncRun(report, engine.abandoned, report_file)


_JOB_OPTIONS = ("digest", "readback", "parts_in_flight", "stall_timeout", "check_metadata", "bandwidth")


def _cluster_run(
    stack: contextlib.ExitStack, providers: Providers, source: str, target: str, options: SyncOptions | VerifyOptions
) -> ClusterRun | None:
    """The run's cluster when ``options`` asks for one (started or reached here, stopped when
    ``stack`` closes), and what its tasks share: data without secrets (the providers file holds
    references only) and the options the workers apply."""
    if options.cluster is None:
        return None
    from .cluster.pool import StartingClient
    from .cluster.tasks import Job

    starting = StartingClient(options.cluster)
    stack.callback(starting.close)
    applied = {name: getattr(options, name) for name in _JOB_OPTIONS if hasattr(options, name)}
    job = Job(providers.file, providers.path, source, target, run_token=uuid.uuid4().hex, **applied)
    return ClusterRun(starting, job, options.cluster)


def verify(
    providers: Providers, source: str, target: str, options: VerifyOptions, progress: Progress | None = None
) -> VerifyReport:
    """Compare ``source`` with ``target``: missing, different and extra keys. The sync journal of
    the pair (its default place unless ``options.journal``) supplies recorded digests."""
    src, dst, source_store, target_store = open_locations(providers, source, target)
    options = replace(options, journal=options.journal or default_journal_path(src, dst))
    try:
        with contextlib.ExitStack() as stack:
            cluster = _cluster_run(stack, providers, source, target, options)
            return run_verify(source_store, target_store, src, dst, options, progress, cluster)
    finally:
        source_store.close()
        if target_store is not source_store:
            target_store.close()


# -- compute ---------------------------------------------------------------------------------------


class RehostRefused(FailoverError):
    """Some selected instance cannot be rebuilt on the target: nothing was created."""


@dataclass(frozen=True)
class RehostRequest:
    source: str
    target: str
    select: Mapping[str, str] = field(default_factory=dict)
    fleet: str | None = None
    health_check: str | None = None
    """Overrides each instance's own health-check URL template; "" turns health checks off."""
    user_data_replace: Mapping[str, str] = field(default_factory=dict)
    run_timeout: float = 300.0
    health_timeout: float = 120.0
    on_problem: Literal["fail", "skip"] = "fail"
    """An instance that cannot be rebuilt: refuse before creating anything, or leave it out."""

    @property
    def fleet_name(self) -> str:
        """The target fleet: as given, or derived from source, target and selection (so a re-run
        of the same command finds the same fleet)."""
        from .rehost import fleet_id

        return self.fleet or fleet_id(self.source, self.target, self.select)


@dataclass
class RehostRun:
    plan: RehostPlan
    report: RehostReport


def plan_rehost_fleet(providers: Providers, request: RehostRequest) -> RehostPlan:
    """Read-only: the target fleet for the selected source instances (what a dry run shows)."""
    with open_compute(providers, request.source) as src, open_compute(providers, request.target) as dst:
        return _plan(request, src, dst)


def _plan(request: RehostRequest, src: Compute, dst: Compute) -> RehostPlan:
    from .rehost import plan_rehost

    return plan_rehost(
        src,
        dst,
        selector=request.select,
        fleet=request.fleet,
        health_check=request.health_check,
        user_data_replace=request.user_data_replace,
    )


def rehost(
    providers: Providers,
    request: RehostRequest,
    *,
    progress: Callable[[str], None] = lambda message: None,
    before_create: Callable[[RehostPlan], None] = lambda plan: None,
) -> RehostRun:
    """Rebuild the selected instances on the target: create (or find, or start) each, wait until
    it runs, health-check it. ``before_create`` is called with the plan before anything is created
    (a playbook records the fleet there, so a crash from then on can still be rolled back)."""
    from .rehost import apply_plan

    with open_compute(providers, request.source) as src, open_compute(providers, request.target) as dst:
        plan = _plan(request, src, dst)
        if not plan.instances:
            raise ConfigError(
                f"no instances on {request.source} match the selection {dict(request.select) or '(all)'}",
                hint="check --select TAG=VALUE (failover inventory shows the instances and their tags)",
            )
        blocked = [p for p in plan.instances if not p.translation.creatable]
        if blocked and request.on_problem == "fail":
            reasons = ", ".join(f"{p.source.name}: {'; '.join(p.translation.problems)}" for p in blocked)
            raise RehostRefused(
                f"cannot rebuild {reasons}; nothing was created",
                hint="leave them out with on_problem: skip (--on-problem skip), or select other instances",
            )
        plan = replace(plan, instances=plan.creatable)
        before_create(plan)
        report = apply_plan(
            plan, dst, run_timeout=request.run_timeout, health_timeout=request.health_timeout, progress=progress
        )
    return RehostRun(plan, report)


def rehost_rollback(
    providers: Providers, request: RehostRequest, progress: Callable[[str], None] = lambda message: None
) -> list[str]:
    """Destroy every instance of the request's fleet on its target (only what rehost created:
    tagged with the fleet); the ids destroyed."""
    from .rehost import rollback

    with open_compute(providers, request.target) as dst:
        return rollback(dst, request.fleet_name, progress)


# -- standby ---------------------------------------------------------------------------------------


def standby(
    providers: Providers,
    source: str,
    target: str,
    options: StandbyOptions,
    *,
    stop: threading.Event,
    note: Callable[[str], None] = lambda message: None,
    metrics: tuple[str, int] | None = None,
) -> StandbyStatus:
    """Keep ``target`` following ``source`` until ``stop`` is set (``failover standby``, the
    ``standby`` step), serving Prometheus metrics on ``metrics`` (host, port) if given; returns
    the final status."""
    from .standby import Standby
    from .standby.status import serve_metrics

    runner = Standby(providers, source, target, options, note)
    server = serve_metrics(runner.status, *metrics) if metrics is not None else None
    if metrics is not None:
        note(f"metrics on http://{metrics[0]}:{metrics[1]}/metrics")

    def watch() -> None:
        stop.wait()
        runner.request_stop()

    threading.Thread(target=watch, name="standby-stop", daemon=True).start()
    try:
        return runner.run()
    finally:
        if server is not None:
            server.shutdown()


def standby_feed(providers: Providers, source: str, action: Literal["plan", "setup", "teardown"]) -> list[Change]:
    """Plan, create or remove the change feed of ``source``'s buckets (``--setup-feed``,
    ``--teardown-feed``; ``plan`` for a dry run)."""
    from .connect import open_feed, open_store
    from .location import parse_location

    location = parse_location(source)
    feed = open_feed(providers, location.provider)
    if feed is None:
        raise ConfigError(
            f"provider {location.provider!r} declares no change feed",
            hint=f"add a 'feed:' block (type: sqs on AWS) to it in {providers.path}, or follow it by listings "
            "(without --setup-feed)",
        )
    try:
        if location.bucket is not None:
            buckets = [location.bucket]
        else:
            store = open_store(providers, location.provider)
            try:
                buckets = sorted(b.name for b in store.list_buckets())
            finally:
                store.close()
        if action == "plan":
            return feed.plan_setup(buckets)
        return feed.setup(buckets) if action == "setup" else feed.teardown(buckets)
    finally:
        feed.close()
