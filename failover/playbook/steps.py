"""What each step kind does. A kind is typed by the step model it runs (``StepKind[Spec, Output]``):

* ``requires``: the providers (and services) it uses, checked in preflight before anything runs.
* ``plan``: read-only; the :class:`~failover.changes.Change` list a dry run shows, the problems
  that would make it fail, notes, and the outputs later steps can plan with (a rehost's fleet
  before it exists).
* ``apply``: do it, idempotently (a re-run after a crash repeats a step safely); returns its
  outcome with typed outputs for later steps, the budgets and the rollback. Raises a
  FailoverError when the step fails.
* ``undo``: put back what ``apply`` changed, from its recorded outputs (kinds that change nothing
  a rollback should touch keep the default: nothing to undo).

The runner finds a step's kind by the type of its model (:func:`kind_of`) and knows no kind by
name. Storage and compute steps call the same application functions as the CLI commands
(:mod:`failover.commands`).
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import httpx
from pydantic import ValidationError

from .. import commands
from ..changes import Action, Change, undo_of
from ..cluster.spec import parse_cluster
from ..compute import Compute, ComputeCapability, InstanceState
from ..config import Providers
from ..connect import open_compute, open_dns
from ..cutover import (
    PreparePlan,
    apply_cutover,
    apply_prepare,
    plan_cutover,
    plan_from_json,
    plan_prepare,
    prepare_from_json,
    rollback_cutover,
    rollback_prepare,
)
from ..dns import Dns, canonical_name
from ..errors import ConfigError, FailoverError, PlaybookError, StepFailed
from ..inventory import take_inventory
from ..location import parse_location
from ..progress import ProgressMeter
from ..rehost import HEALTH_TAG, SOURCE_TAG, check_health
from ..secrets import display_url, register_url_secrets
from ..standby import StandbyOptions
from ..standby.drill import DrillWrites, remove_drill_writes, run_drill
from ..sync import SyncOptions, SyncReport, VerifyOptions
from ..units import human_size
from .outputs import (
    DnsCutoverOutput,
    DnsPrepareOutput,
    FleetInstance,
    HealthOutput,
    InventoryOutput,
    NoOutput,
    RehostOutput,
    StandbyOutput,
    StepOutput,
    SyncOutput,
    VerifyOutput,
)
from .schema import (
    ApprovalStep,
    DnsCutoverStep,
    DnsPrepareStep,
    EnvRef,
    FleetRef,
    HealthStep,
    InventoryStep,
    NotifyStep,
    RehostStep,
    StandbyStep,
    Step,
    StepSpec,
    SyncStep,
    VerifyStep,
)
from .state import DONE, RunState

__all__ = [
    "KINDS",
    "ApprovalPending",
    "Context",
    "Outcome",
    "Planned",
    "Requirement",
    "StepKind",
    "kind_of",
    "plan_undo_step",
    "undo_step",
]

SpecT = TypeVar("SpecT", bound=StepSpec)
OutputT = TypeVar("OutputT", bound=StepOutput)
ReadT = TypeVar("ReadT", bound=StepOutput)


class ApprovalPending(StepFailed):
    """Nobody approved (yet): the run stops here, keeps everything, and resumes here when re-run.
    Never a reason to roll back."""


@dataclass(frozen=True)
class Requirement:
    """A provider a step uses: ``service`` must be configured, reachable and accept the
    credentials (None: the provider must be configured; whatever it has is used)."""

    provider: str
    service: str | None


@dataclass
class Planned(Generic[OutputT]):
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What would make the step fail: the plan is not clean."""
    notes: list[str] = field(default_factory=list)
    """What else to know (metadata not carried, records only the source can hold)."""
    outputs: OutputT | None = None
    """What later steps can plan with (None: nothing until it runs)."""


@dataclass
class Outcome(Generic[OutputT]):
    status: Literal["ok", "changed", "skipped"]
    """ok: nothing needed changing"""
    summary: str
    outputs: OutputT
    details: dict[str, Any] = field(default_factory=dict)
    """The step's own report (the sync report, the rehost report...), for the run report."""


@dataclass
class Context:
    providers: Providers
    state: RunState | None
    yes: bool = False
    force: bool = False
    progress: Callable[[str], None] = lambda message: None
    ask: Callable[[str], bool] | None = None
    """Asks a person (None: nobody to ask)."""
    planned: dict[str, StepOutput] = field(default_factory=dict)
    """Outputs of steps planned in this dry-run."""
    checkpoint: Callable[[StepOutput], None] = lambda outputs: None
    """Persist a step's outputs before it finishes (what a crash mid-step must not lose)."""
    definitions: dict[str, Step] = field(default_factory=dict)
    """The playbook's steps by id."""

    def outputs(self, step_id: str) -> StepOutput | None:
        """A finished step's outputs, or what the dry-run planned for it."""
        if self.state is not None:
            recorded = self.state.steps.get(step_id)
            definition = self.definitions.get(step_id)
            if recorded is not None and recorded.status in DONE and definition is not None:
                found: StepOutput = kind_of(definition).read_outputs(recorded.outputs)
                return found
        return self.planned.get(step_id)

    def outputs_of(self, step_id: str, model: type[ReadT]) -> ReadT | None:
        """:meth:`outputs`, which must be of ``model`` (the loader checked the reference)."""
        found = self.outputs(step_id)
        if found is not None and not isinstance(found, model):
            raise PlaybookError(f"step {step_id!r} hands on {type(found).__name__}, not {model.__name__}")
        return found


class StepKind(abc.ABC, Generic[SpecT, OutputT]):
    """One kind of step: what it needs, plans, does and undoes (see the module's docstring)."""

    spec: ClassVar[type[StepSpec]]
    """The step model this kind runs."""
    output: ClassVar[type[StepOutput]]
    """The model of what it hands on."""

    def requires(self, step: SpecT) -> list[Requirement]:
        return []

    @abc.abstractmethod
    def plan(self, step: SpecT, ctx: Context) -> Planned[OutputT]: ...

    @abc.abstractmethod
    def apply(self, step: SpecT, ctx: Context) -> Outcome[OutputT]: ...

    def undo(self, step: SpecT, ctx: Context, outputs: OutputT) -> str | None:
        """Put back what ``apply`` changed; a line saying what was done (None: nothing to undo)."""
        return None

    def plan_undo(self, step: SpecT, outputs: OutputT) -> list[Change]:
        """What :meth:`undo` would change, from the recorded outputs alone (``--rollback --dry-run``)."""
        return []

    def read_outputs(self, recorded: Mapping[str, Any]) -> OutputT:
        """The outputs as the run's state recorded them."""
        try:
            return self.output.model_validate(dict(recorded))  # type: ignore[return-value]
        except ValidationError as error:
            raise PlaybookError(
                f"the run state holds outputs of a {self.spec.__name__} that cannot be read: "
                f"{error.errors()[0]['msg']}",
                hint="start over with --restart (steps are idempotent: what is done stays done)",
            ) from None


# -- inventory -----------------------------------------------------------------------------------


class InventoryKind(StepKind[InventoryStep, InventoryOutput]):
    spec, output = InventoryStep, InventoryOutput

    def requires(self, step: InventoryStep) -> list[Requirement]:
        return [Requirement(step.provider, None)]  # whatever it has; what cannot be read is listed as not checked

    def plan(self, step: InventoryStep, ctx: Context) -> Planned[InventoryOutput]:
        services = ", ".join(ctx.providers.services(step.provider))
        return Planned([Change(Action.READ, f"provider {step.provider}", detail=f"take stock of {services}")])

    def apply(self, step: InventoryStep, ctx: Context) -> Outcome[InventoryOutput]:
        found = take_inventory(ctx.providers, step.provider, sizes=step.sizes)
        objects = sum(int(b.get("objects", 0)) for b in found.buckets)
        size = sum(int(b.get("bytes", 0)) for b in found.buckets)
        rebuild = ", ".join(f"{n.service} {n.name}" for n in found.non_portable) or "none"
        contents = f", {objects} objects ({human_size(size)})" if step.sizes else ""
        summary = (
            f"{len(found.buckets)} bucket(s){contents}; {len(found.instances)} instance(s); "
            f"{len(found.dns_zones)} zone(s); no portable equivalent: {rebuild}"
        )
        if found.unchecked:
            summary += f"; not checked: {', '.join(u.split(':')[0] for u in found.unchecked)}"
        outputs = InventoryOutput(buckets=len(found.buckets), objects=objects)
        return Outcome("ok", summary, outputs, found.to_json())


# -- storage ---------------------------------------------------------------------------------------


class _SyncProgress(ProgressMeter):
    """The sync or verify engine's progress as one line every few seconds (the run's progress)."""

    def __init__(self, say: Callable[[str], None], every: float = 3.0, title: str = "  progress") -> None:
        super().__init__(title, verb="done")
        self.say, self.every = say, every
        self.last = time.monotonic()
        self.on_note = lambda message: say(f"  {message}")

    def advanced(self, objects: int, size: int) -> None:
        super().advanced(objects, size)
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self.say(self.line())


def _storage_pair(source: str, target: str) -> list[Requirement]:
    return [
        Requirement(parse_location(source).provider, "storage"),
        Requirement(parse_location(target).provider, "storage"),
    ]


def _sync_problems(report: SyncReport) -> list[str]:
    problems = [report.aborted] if report.aborted else []
    return problems + [f"listing of {b.source} incomplete" for b in report.buckets if not b.listing_complete]


class SyncKind(StepKind[SyncStep, SyncOutput]):
    # Copies are not undone: an extra verified copy of the data harms nothing, and deleting it
    # could lose writes made on the target since.
    spec, output = SyncStep, SyncOutput

    def requires(self, step: SyncStep) -> list[Requirement]:
        return _storage_pair(step.source, step.target)

    def _options(self, step: SyncStep, dry_run: bool) -> SyncOptions:
        return SyncOptions(
            dry_run=dry_run,
            delete=step.delete,
            max_delete_share=step.max_delete_percent / 100,
            workers=step.workers,
            digest=step.digest,
            bucket_map=dict(step.bucket_map),
            invalid_keys=step.invalid_keys,
            cluster=parse_cluster(step.cluster) if step.cluster else None,
            bucket_settings=step.bucket_settings,
        )

    def plan(self, step: SyncStep, ctx: Context) -> Planned[SyncOutput]:
        report = commands.sync(ctx.providers, step.source, step.target, self._options(step, True)).report
        notes = [f"{b.source}: {b.skipped} object(s) cannot be stored on the target (skipped)" for b in report.buckets
                 if b.skipped]  # fmt: skip
        notes += [
            f"{b.source}: setting {o.setting} {'would be carried' if o.outcome == 'planned' else 'not carried'}"
            + (f": {o.detail}" if o.detail else "")
            for b in report.buckets
            for o in b.settings
            if o.outcome in ("planned", "not_carried", "translated")
        ]
        if not report.buckets:
            notes.append(f"{step.source}: no buckets")
        return Planned(report.changes(), _sync_problems(report), notes)

    def apply(self, step: SyncStep, ctx: Context) -> Outcome[SyncOutput]:
        run = commands.sync(
            ctx.providers, step.source, step.target, self._options(step, False), _SyncProgress(ctx.progress)
        )
        report = run.report
        data = report.to_json()
        totals = data["totals"]
        unverified = max(totals["listed"] - report.done(), 0) if not report.complete else 0
        summary = (
            f"{totals['copied']} copied ({human_size(totals['copied_bytes'])}), {totals['listed']} listed, "
            f"{unverified} not verified, {totals['deleted']} deleted in {data['duration_s']:.1f} s"
        )
        outputs = SyncOutput(copied=totals["copied"], bytes=totals["copied_bytes"], unverified=unverified)
        if report.interrupted:
            ctx.checkpoint(outputs)
            raise KeyboardInterrupt  # the engine recorded everything; the run stops as interrupted
        if not report.complete:
            reason = data["aborted"] or data["delete_refused"] or "not every object is verified"
            ctx.checkpoint(outputs)
            raise StepFailed(step.id, f"{summary}: {reason}", hint=f"journal: {data['journal']}")
        return Outcome("changed" if totals["copied"] or totals["deleted"] else "ok", summary, outputs, data)


class VerifyKind(StepKind[VerifyStep, VerifyOutput]):
    spec, output = VerifyStep, VerifyOutput

    def requires(self, step: VerifyStep) -> list[Requirement]:
        return _storage_pair(step.source, step.target)

    def plan(self, step: VerifyStep, ctx: Context) -> Planned[VerifyOutput]:
        how = "trusting recorded digests" if step.trust_digests else "re-reading both sides"
        return Planned([Change(Action.READ, f"{step.source} and {step.target}", detail=f"compared, {how}")])

    def apply(self, step: VerifyStep, ctx: Context) -> Outcome[VerifyOutput]:
        options = VerifyOptions(
            trust_digests=step.trust_digests,
            bucket_map=dict(step.bucket_map),
            cluster=parse_cluster(step.cluster) if step.cluster else None,
        )
        report = commands.verify(ctx.providers, step.source, step.target, options, _SyncProgress(ctx.progress))
        data = report.to_json()
        counts = data["counts"]
        summary = (
            f"{data['checked']} checked, {data['matching']} match, {counts['missing']} missing, "
            f"{counts['different']} different, {counts['metadata_different']} with different metadata, "
            f"{counts['extra']} extra"
        )
        outputs = VerifyOutput(missing=counts["missing"], different=counts["different"] + counts["metadata_different"])
        if not report.ok:
            ctx.checkpoint(outputs)
            raise StepFailed(step.id, summary)
        return Outcome("ok", summary, outputs, data)


# -- compute ---------------------------------------------------------------------------------------


def _health_url(template: str | None, address: str | None) -> str | None:
    if not template or not address:
        return None
    return template.replace("{address}", f"[{address}]" if ":" in address else address)


def _rehost_request(step: RehostStep, fleet: str | None = None) -> commands.RehostRequest:
    return commands.RehostRequest(
        source=step.source,
        target=step.target,
        select=dict(step.select),
        fleet=fleet or step.fleet,
        health_check=step.health_check,
        user_data_replace=dict(step.user_data_replace),
        run_timeout=step.run_timeout,
        health_timeout=step.health_timeout,
        on_problem=step.on_problem,
    )


class RehostKind(StepKind[RehostStep, RehostOutput]):
    spec, output = RehostStep, RehostOutput

    def requires(self, step: RehostStep) -> list[Requirement]:
        return [Requirement(step.source, "compute"), Requirement(step.target, "compute")]

    def plan(self, step: RehostStep, ctx: Context) -> Planned[RehostOutput]:
        plan = commands.plan_rehost_fleet(ctx.providers, _rehost_request(step))
        problems = []
        if not plan.instances:
            problems.append(f"no instance of {step.source} matches {step.select}")
        if step.on_problem == "fail":
            problems += [f"{p.source.name}: {problem}" for p in plan.instances for problem in p.translation.problems]
        instances = [
            FleetInstance(
                name=p.source.name,
                source=p.key,
                source_address=p.source.address,
                health_url=p.target_spec.health_check,
            )
            for p in plan.creatable
        ]
        outputs = RehostOutput(fleet=plan.fleet, instances=instances, planned=True)
        changes = plan.changes()
        if step.leave == "stopped":
            with open_compute(ctx.providers, step.target) as target:
                if ComputeCapability.START_STOP not in target.capabilities:
                    problems.append(f"{step.target} cannot stop and start instances: leave: stopped is not possible")
            changes += [
                Change(Action.UPDATE, f"instance {i.name} on {step.target}", {"state": "running"}, {"state": "stopped"},
                       "a standby fleet: the cutover starts it")
                for i in instances
            ]  # fmt: skip
        return Planned(changes, problems, plan.notes(), outputs)

    def apply(self, step: RehostStep, ctx: Context) -> Outcome[RehostOutput]:
        def before_create(plan: Any) -> None:
            # The fleet is recorded before anything is created, so a crash now still rolls back.
            ctx.checkpoint(RehostOutput(fleet=plan.fleet))

        run = commands.rehost(ctx.providers, _rehost_request(step), progress=ctx.progress, before_create=before_create)
        plan, report = run.plan, run.report
        templates = {p.key: p.target_spec.health_check for p in plan.instances}
        instances = [
            FleetInstance(
                name=r.name,
                source=r.source,
                source_address=r.source_address,
                target_id=r.target_id,
                target_address=r.address,
                action=r.action,
                healthy=None if r.health is None else r.health.healthy,
                health_url=_health_url(templates.get(r.source), r.address),
            )
            for r in report.results
        ]
        unhealthy = [r.name for r in report.results if r.error or (r.health and r.health.healthy is False)]
        outputs = RehostOutput(fleet=plan.fleet, instances=instances, unhealthy=len(unhealthy))
        actions = [r.action for r in report.results]
        summary = (
            f"fleet {plan.fleet} on {step.target}: "
            + ", ".join(f"{actions.count(a)} {a}" for a in dict.fromkeys(actions))
            + f"; {len(report.results) - len(unhealthy)} healthy"
        )
        if unhealthy:
            ctx.checkpoint(outputs)
            raise StepFailed(step.id, f"{summary}; NOT healthy: {', '.join(unhealthy)}")
        if step.leave == "stopped":
            outputs = self._stop_fleet(step, ctx, outputs)
            summary += f"; {len(outputs.instances)} stopped (a standby fleet: the cutover starts it)"
        changed = any(a in ("created", "started") for a in actions) or step.leave == "stopped"
        return Outcome("changed" if changed else "ok", summary, outputs, report.to_json())

    @staticmethod
    def _stop_fleet(step: RehostStep, ctx: Context, outputs: RehostOutput) -> RehostOutput:
        """Stop the healthy new fleet (it was proven to work first); each instance is recorded as
        stopped once it is."""
        stopped = []
        with open_compute(ctx.providers, step.target) as target:
            for instance in outputs.instances:
                if instance.target_id:
                    target.stop(instance.target_id)
                    target.wait_for(instance.target_id, InstanceState.STOPPED, timeout=step.run_timeout)
                    instance = instance.model_copy(update={"stopped": True})
                stopped.append(instance)
        return outputs.model_copy(update={"instances": stopped})

    def plan_undo(self, step: RehostStep, outputs: RehostOutput) -> list[Change]:
        return [
            Change(
                Action.DELETE,
                f"instance {i.name} on {step.target}",
                {"id": i.target_id},
                None,
                f"fleet {outputs.fleet}",
            )
            for i in outputs.instances
            if i.target_id
        ]

    def undo(self, step: RehostStep, ctx: Context, outputs: RehostOutput) -> str | None:
        destroyed = commands.rehost_rollback(ctx.providers, _rehost_request(step, outputs.fleet), ctx.progress)
        return f"destroyed {len(destroyed)} instance(s) of fleet {outputs.fleet} on {step.target}"


def _check_all(urls: list[str], timeout: float, headers: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """url -> None when healthy, else why not; checked in parallel within one deadline."""
    deadline = time.monotonic() + timeout
    with concurrent.futures.ThreadPoolExecutor(max(1, min(16, len(urls)))) as pool:
        results = list(pool.map(lambda u: check_health(u, deadline=deadline, headers=headers), urls))
    return {r.url or "": None if r.healthy else (r.error or f"HTTP {r.status}") for r in results}


def _headers(step_id: str, refs: Mapping[str, EnvRef]) -> dict[str, str]:
    """Header values read from the environment (a playbook names the variables, never the values)."""
    headers = {}
    for name, ref in refs.items():
        value = os.environ.get(ref.env)
        if value is None:
            raise ConfigError(f"step {step_id!r}: header {name} reads ${ref.env}, which is not set")
        headers[name] = value
    return headers


class HealthKind(StepKind[HealthStep, HealthOutput]):
    spec, output = HealthStep, HealthOutput

    def _urls(self, step: HealthStep, ctx: Context) -> tuple[list[str], list[str]] | None:
        """URLs to check now, and instances still to be created (a dry run); None: the fleet is
        not known yet."""
        urls, later = list(step.urls), []
        if step.fleet_of:
            fleet = ctx.outputs_of(step.fleet_of, RehostOutput)
            if fleet is None:
                return None
            for instance in fleet.instances:
                template = step.url or instance.health_url
                if fleet.planned:
                    later += [f"{template} of {instance.name}, once created"] if template else []
                else:
                    urls += [u for u in [_health_url(template, instance.target_address)] if u]
        return urls, later

    def plan(self, step: HealthStep, ctx: Context) -> Planned[HealthOutput]:
        found = self._urls(step, ctx)
        if found is None:
            return Planned([Change(Action.READ, f"the fleet of step {step.fleet_of!r}", detail="once it exists")])
        urls, later = found
        within = f"2xx within {step.timeout:.0f} s"
        changes = [Change(Action.READ, f"GET {u}", detail=within) for u in [*urls, *later]]
        return Planned(changes, notes=[] if changes else ["nothing to check"])

    def apply(self, step: HealthStep, ctx: Context) -> Outcome[HealthOutput]:
        found = self._urls(step, ctx)
        urls = found[0] if found else []
        if not urls:
            raise StepFailed(step.id, "no health check to run (no URLs, or the fleet has no health-check URL)")
        results = _check_all(urls, step.timeout, _headers(step.id, step.headers))
        bad = {url: why for url, why in results.items() if why}
        summary = f"{len(results) - len(bad)}/{len(results)} healthy"
        outputs = HealthOutput(unhealthy=len(bad))
        if bad:
            ctx.checkpoint(outputs)
            raise StepFailed(step.id, summary + "; " + "; ".join(f"{u}: {w}" for u, w in bad.items()))
        return Outcome("ok", summary, outputs, {"checked": sorted(results)})


# -- DNS -------------------------------------------------------------------------------------------


@dataclass
class _Pair:
    name: str
    old: str | None
    new: str | None
    health_url: str | None


def _fleet_pairs(step: DnsPrepareStep | DnsCutoverStep, ctx: Context) -> list[_Pair] | None:
    """Old and new address of each instance moving; None when the fleet does not exist yet."""
    if step.fleet_of:
        fleet = ctx.outputs_of(step.fleet_of, RehostOutput)
        if fleet is None:
            return None
        return [_Pair(i.name, i.source_address, i.target_address, i.health_url) for i in fleet.instances]
    assert step.fleet is not None
    return _pairs_from_tags(step.fleet, ctx.providers)


def _pairs_from_tags(ref: FleetRef, providers: Providers) -> list[_Pair]:
    """Instances rehosted earlier find their sources by their failover:source tag (provider/id)."""
    pairs = []
    computes: dict[str, Compute] = {}
    try:
        fleet = computes.setdefault(ref.provider, open_compute(providers, ref.provider))
        for instance in fleet.list_instances(ref.select):
            source_ref = instance.tags.get(SOURCE_TAG, "")
            provider, _, instance_id = source_ref.partition("/")
            if not instance_id:
                raise ConfigError(f"instance {instance.name} on {ref.provider} has no {SOURCE_TAG} tag")
            if provider not in computes:
                computes[provider] = open_compute(providers, provider)
            source = computes[provider].get(instance_id)
            template = instance.tags.get(HEALTH_TAG) or source.tags.get(HEALTH_TAG)
            old, new = (instance, source) if ref.back_to_sources else (source, instance)
            pairs.append(_Pair(instance.name, old.address, new.address, _health_url(template, new.address)))
    finally:
        for compute in computes.values():
            compute.close()
    return pairs


@contextmanager
def _dns_pair(ctx: Context, step: DnsPrepareStep | DnsCutoverStep) -> Iterator[tuple[Dns, Dns]]:
    with open_dns(ctx.providers, step.source) as source, open_dns(ctx.providers, step.target) as target:
        yield source, target


def _dns_requires(step: DnsPrepareStep | DnsCutoverStep) -> list[Requirement]:
    found = [Requirement(step.source, "dns"), Requirement(step.target, "dns")]
    return found + ([Requirement(step.fleet.provider, "compute")] if step.fleet else [])


class DnsPrepareKind(StepKind[DnsPrepareStep, DnsPrepareOutput]):
    spec, output = DnsPrepareStep, DnsPrepareOutput

    def requires(self, step: DnsPrepareStep) -> list[Requirement]:
        return _dns_requires(step)

    def _addresses(self, step: DnsPrepareStep, ctx: Context) -> list[str]:
        """The addresses traffic moves away from: known before the rehost step runs (its source
        instances), so the TTLs can be lowered first thing."""
        pairs = _fleet_pairs(step, ctx)
        if pairs is None:
            rehost = ctx.definitions.get(step.fleet_of or "")
            assert isinstance(rehost, RehostStep)
            with open_compute(ctx.providers, rehost.source) as src:
                return [i.address for i in src.list_instances(rehost.select or None) if i.address]
        return [p.old for p in pairs if p.old]

    def plan(self, step: DnsPrepareStep, ctx: Context) -> Planned[DnsPrepareOutput]:
        with _dns_pair(ctx, step) as (source, target):
            plan = plan_prepare(source, target, step.zone, self._addresses(step, ctx), ttl=step.ttl)
        outputs = DnsPrepareOutput(plan=plan.to_json(), longest_ttl=plan.longest_ttl, planned=True)
        return Planned(plan.changes(), [], plan.notes(), outputs)

    def apply(self, step: DnsPrepareStep, ctx: Context) -> Outcome[DnsPrepareOutput]:
        with _dns_pair(ctx, step) as (source, target):
            plan = plan_prepare(source, target, step.zone, self._addresses(step, ctx), ttl=step.ttl)
            outputs = DnsPrepareOutput(plan=plan.to_json(), lowered_at=time.time(), longest_ttl=plan.longest_ttl)
            ctx.checkpoint(outputs)
            apply_prepare(plan, source, target)
        changed = bool(plan.lower or plan.copy or plan.create_zone)
        summary = (
            f"{len(plan.lower)} TTL(s) lowered to {step.ttl} s on {step.source}; "
            f"{'zone created and ' if plan.create_zone else ''}{len(plan.copy)} set(s) copied to {step.target}"
        )
        if plan.not_copied:
            summary += f"; {len(plan.not_copied)} not copied (provider-only)"
        return Outcome("changed" if changed else "ok", summary, outputs, plan.to_json())

    def plan_undo(self, step: DnsPrepareStep, outputs: DnsPrepareOutput) -> list[Change]:
        return undo_of(prepare_from_json(outputs.plan).changes())

    def undo(self, step: DnsPrepareStep, ctx: Context, outputs: DnsPrepareOutput) -> str | None:
        plan = prepare_from_json(outputs.plan)
        with _dns_pair(ctx, step) as (source, target):
            rollback_prepare(plan, source, target)
        return f"TTLs restored on {step.source}; {step.zone} on {step.target} put back"


class DnsCutoverKind(StepKind[DnsCutoverStep, DnsCutoverOutput]):
    spec, output = DnsCutoverStep, DnsCutoverOutput

    def requires(self, step: DnsCutoverStep) -> list[Requirement]:
        return _dns_requires(step)

    def _address_map(
        self, step: DnsCutoverStep, ctx: Context, woken: Mapping[str, _Pair] | None = None
    ) -> tuple[dict[str, list[str]], list[_Pair]]:
        pairs = _fleet_pairs(step, ctx)
        if pairs is None:
            raise StepFailed(step.id, f"the fleet of step {step.fleet_of!r} is not known yet")
        pairs = [(woken or {}).get(pair.name, pair) for pair in pairs]
        mapping: dict[str, list[str]] = {}
        for pair in pairs:
            if pair.old:
                new = pair.new or f"(new address of {pair.name})"
                mapping.setdefault(pair.old, []).append(new)
        return mapping, pairs

    def _wake(self, step: DnsCutoverStep, ctx: Context) -> dict[str, _Pair]:
        """Start the instances a rehost step left stopped (a standby fleet); their pairs with the
        address each has now (a restarted instance may have another)."""
        fleet = ctx.outputs_of(step.fleet_of, RehostOutput) if step.fleet_of else None
        rehost = ctx.definitions.get(step.fleet_of or "")
        if fleet is None or not isinstance(rehost, RehostStep) or not any(i.stopped for i in fleet.instances):
            return {}
        woken = {}
        with open_compute(ctx.providers, rehost.target) as compute:
            for instance in fleet.instances:
                if not (instance.stopped and instance.target_id):
                    continue
                ctx.progress(f"  starting {instance.name} (standby fleet {fleet.fleet})")
                compute.start(instance.target_id)
                running = compute.wait_for(instance.target_id, InstanceState.RUNNING, timeout=rehost.run_timeout)
                url = instance.health_url
                if url and instance.target_address and running.address:
                    url = url.replace(instance.target_address, running.address)
                woken[instance.name] = _Pair(instance.name, instance.source_address, running.address, url)
        urls = {p.health_url: p.name for p in woken.values() if p.health_url}
        deadline = time.monotonic() + rehost.health_timeout
        while urls:
            failing = {u: why for u, why in _check_all(list(urls), 10.0).items() if why}
            if not failing:
                break
            if time.monotonic() > deadline:
                names = ", ".join(f"{urls[u]}: {why}" for u, why in failing.items())
                raise StepFailed(step.id, f"the standby fleet did not become healthy after starting: {names}")
            time.sleep(1.0)
        return woken

    def _plan(
        self, step: DnsCutoverStep, ctx: Context, source: Dns, target: Dns, woken: Mapping[str, _Pair] | None = None
    ) -> Any:
        mapping, _ = self._address_map(step, ctx, woken)
        return plan_cutover(
            source,
            target,
            step.zone,
            mapping,
            ttl=step.ttl,
            update_source=step.update_source,
            max_change_share=step.max_change_percent / 100,
            force=step.force or ctx.force,
        )

    def plan(self, step: DnsCutoverStep, ctx: Context) -> Planned[DnsCutoverOutput]:
        with _dns_pair(ctx, step) as (source, target):
            plan = self._plan(step, ctx, source, target)
        changes: list[Change] = []
        if step.health_gate:
            changes.append(Change(Action.READ, "the new fleet's health", detail="checked again just before switching"))
        wait = self._ttl_wait(step, ctx)
        if wait:
            changes.append(Change(Action.WAIT, f"lowered TTLs of {step.zone}", None, {"seconds": round(wait)}))
        outputs = DnsCutoverOutput(plan=plan.to_json(), planned=True)
        return Planned([*changes, *plan.changes()], [plan.refused] if plan.refused else [], plan.notes(), outputs)

    def _ttl_wait(self, step: DnsCutoverStep, ctx: Context) -> float:
        """What is left of the old TTLs lowered by a dns_prepare step of this run (bounded)."""
        remaining = 0.0
        zone = canonical_name(step.zone)
        for step_id in ctx.definitions:
            prepared = ctx.outputs(step_id)
            if not isinstance(prepared, DnsPrepareOutput) or prepared.lowered_at is None:
                continue
            if canonical_name(str(prepared.plan.get("zone", ""))) == zone:
                remaining = max(remaining, prepared.lowered_at + prepared.longest_ttl - time.time())
        return min(max(remaining, 0.0), step.max_ttl_wait)

    def apply(self, step: DnsCutoverStep, ctx: Context) -> Outcome[DnsCutoverOutput]:
        wait = self._ttl_wait(step, ctx)
        if wait > 0:
            ctx.progress(f"  waiting {wait:.0f} s for the lowered TTLs to expire")
            time.sleep(wait)
        woken = self._wake(step, ctx)
        _, pairs = self._address_map(step, ctx, woken)
        missing = [p.name for p in pairs if not p.new]
        if missing:
            raise StepFailed(step.id, f"no new address for {', '.join(missing)}")

        def gate() -> list[str]:
            urls = {p.health_url: p.name for p in pairs if p.health_url}
            results = _check_all(list(urls), 30.0)
            return [f"{urls[u]}: {why}" for u, why in results.items() if why]

        with _dns_pair(ctx, step) as (source, target):
            plan = self._plan(step, ctx, source, target, woken)
            ctx.checkpoint(DnsCutoverOutput(plan=plan.to_json()))  # before any change: a crash can still roll back
            result = apply_cutover(
                plan,
                source,
                target,
                health_gate=gate if step.health_gate else None,
                confirm_timeout=step.confirm_timeout,
                progress=ctx.progress,
            )
        outputs = DnsCutoverOutput(plan=plan.to_json(), result=result.to_json())
        if ctx.state is not None:
            ctx.state.cutover_at = time.time()
        confirmed = ", ".join(f"{c.name} {c.type} = {' '.join(c.answered)}" for c in result.confirmations)
        how = result.confirmations[0].how if result.confirmations else "nothing to confirm"
        summary = f"{len(plan.repoint_target)} set(s) written on {step.target}"
        if plan.repoint_source:
            summary += f" and {len(plan.repoint_source)} repointed on {step.source}"
        summary += f"; confirmed by {how}: {confirmed or '-'}"
        changed = bool(plan.repoint_target or plan.repoint_source or plan.create_zone)
        return Outcome("changed" if changed else "ok", summary, outputs, outputs.model_dump(mode="json"))

    def plan_undo(self, step: DnsCutoverStep, outputs: DnsCutoverOutput) -> list[Change]:
        return undo_of(plan_from_json(outputs.plan).changes())

    def undo(self, step: DnsCutoverStep, ctx: Context, outputs: DnsCutoverOutput) -> str | None:
        plan = plan_from_json(outputs.plan)
        with _dns_pair(ctx, step) as (source, target):
            rollback_cutover(plan, source, target)
        return f"{step.zone} points at the old fleet again on {step.target} and {step.source}"


# -- people ----------------------------------------------------------------------------------------


class NotifyKind(StepKind[NotifyStep, NoOutput]):
    spec, output = NotifyStep, NoOutput

    @staticmethod
    def _url(step: NotifyStep) -> str:
        """The webhook URL, read from the environment when given by reference. Either way it is
        registered as a secret (webhook URLs are credentials) and shown as its host only."""
        if isinstance(step.url, EnvRef):
            value = os.environ.get(step.url.env)
            if not value:
                raise ConfigError(f"step {step.id!r}: url reads ${step.url.env}, which is not set")
            register_url_secrets(value)
            return value
        return step.url

    @staticmethod
    def _shown(step: NotifyStep) -> str:
        return f"${step.url.env}" if isinstance(step.url, EnvRef) else display_url(step.url)

    def plan(self, step: NotifyStep, ctx: Context) -> Planned[NoOutput]:
        return Planned([Change(Action.SEND, f"POST to {self._shown(step)}", None, {"message": step.message})])

    def apply(self, step: NotifyStep, ctx: Context) -> Outcome[NoOutput]:
        body = {"message": step.message, "step": step.id}
        if ctx.state is not None:
            body.update(playbook=ctx.state.name, run=ctx.state.run_id)
        url, shown = self._url(step), self._shown(step)
        try:
            with httpx.Client(timeout=step.timeout, trust_env=False) as client:
                response = client.post(url, json=body, headers=_headers(step.id, step.headers))
        except httpx.HTTPError as error:
            raise StepFailed(step.id, f"POST {shown} failed: {type(error).__name__}") from None
        if not response.is_success:
            raise StepFailed(step.id, f"POST {shown} answered {response.status_code}")
        return Outcome("ok", f"notified {shown} ({response.status_code})", NoOutput())


class ApprovalKind(StepKind[ApprovalStep, NoOutput]):
    spec, output = ApprovalStep, NoOutput

    def plan(self, step: ApprovalStep, ctx: Context) -> Planned[NoOutput]:
        detail = "approved in advance by --yes" if ctx.yes else ""
        return Planned([Change(Action.ASK, "approval", None, {"question": step.message}, detail)])

    def apply(self, step: ApprovalStep, ctx: Context) -> Outcome[NoOutput]:
        if ctx.yes:
            return Outcome("ok", "approved in advance (--yes)", NoOutput())
        if ctx.ask is None:
            raise ApprovalPending(
                step.id,
                f"needs approval: {step.message}",
                hint="re-run interactively, or with --yes; the run resumes here",
            )
        if not ctx.ask(step.message):
            raise ApprovalPending(step.id, "not approved", hint="re-run when ready; the run resumes here")
        return Outcome("ok", "approved interactively", NoOutput())


# -- standby -------------------------------------------------------------------------------------


class _ZoneFollower:
    """The DNS standby: the target zone's record sets copied from the source zone, again each time
    :meth:`follow` is called (nothing is switched: no TTL is lowered, no address repointed). What
    it wrote, and what those writes replaced, add up to one plan for the rollback."""

    def __init__(self, source: Dns, target: Dns, zone: str) -> None:
        self.source, self.target, self.zone = source, target, zone
        self.plan: PreparePlan | None = None
        self.errors: list[str] = []

    def follow(self) -> None:
        try:
            step = plan_prepare(self.source, self.target, self.zone, [], ttl=60)
            apply_prepare(step, self.source, self.target)
        except FailoverError as error:
            self.errors.append(str(error))
            return
        if self.plan is None:
            self.plan = step
            return
        written = {r.key for r in self.plan.copy}
        self.plan.previous_target += [r for r in step.previous_target if r.key not in written]
        self.plan.copy = [r for r in self.plan.copy if r.key not in {n.key for n in step.copy}] + step.copy


class StandbyKind(StepKind[StandbyStep, StandbyOutput]):
    spec, output = StandbyStep, StandbyOutput

    def requires(self, step: StandbyStep) -> list[Requirement]:
        dns = [Requirement(p, "dns") for p in (step.dns_source, step.dns_target) if p is not None]
        return _storage_pair(step.source, step.target) + dns

    def _options(self, step: StandbyStep, ctx: Context) -> StandbyOptions:
        return StandbyOptions(
            sync=SyncOptions(workers=step.workers, bucket_map=dict(step.bucket_map)),
            interval=step.interval,
            use_feed=step.use_feed,
            status_every=1.0,
        )

    def _writes(self, step: StandbyStep, ctx: Context) -> DrillWrites | None:
        spec = step.drill_writes
        if spec is None:
            return None
        run = ctx.state.run_id if ctx.state is not None else "plan"
        return DrillWrites(spec.bucket, f"{spec.prefix}{run}/", spec.rate, spec.size)

    def plan(self, step: StandbyStep, ctx: Context) -> Planned[StandbyOutput]:
        report = commands.sync(ctx.providers, step.source, step.target, SyncOptions(dry_run=True)).report
        changes = report.changes()
        changes.append(Change(Action.WAIT, f"standby {step.source} -> {step.target} for {step.follow_for:g} s"))
        writes = self._writes(step, ctx)
        if writes is not None:
            changes.append(
                Change(
                    Action.CREATE,
                    f"drill writes {step.source.split(':')[0]}:{writes.bucket}/{writes.prefix}",
                    after={"per_second": writes.rate, "bytes": writes.size},
                )
            )
        if step.zone is not None and step.dns_source and step.dns_target:
            with open_dns(ctx.providers, step.dns_source) as source, open_dns(ctx.providers, step.dns_target) as target:
                changes += plan_prepare(source, target, step.zone, [], ttl=60).changes()
        return Planned(changes, _sync_problems(report), [], StandbyOutput(mode="planned"))

    def apply(self, step: StandbyStep, ctx: Context) -> Outcome[StandbyOutput]:
        writes = self._writes(step, ctx)
        ctx.checkpoint(StandbyOutput(drill_prefix=writes.prefix if writes else None))
        with contextlib.ExitStack() as stack:
            follower = None
            if step.zone is not None and step.dns_source and step.dns_target:
                source = stack.enter_context(open_dns(ctx.providers, step.dns_source))
                target = stack.enter_context(open_dns(ctx.providers, step.dns_target))
                follower = _ZoneFollower(source, target, step.zone)
                follower.follow()
            result = run_drill(
                ctx.providers,
                step.source,
                step.target,
                self._options(step, ctx),
                follow_for=step.follow_for,
                writes=writes,
                note=lambda message: ctx.progress(f"  {message}"),
                during=follower.follow if follower is not None else lambda: None,
            )
        outputs = StandbyOutput(
            notice_at=result.notice_at,
            recovery_point_s=result.recovery_point_s,
            claimed_recovery_point_s=result.claimed_recovery_point_s,
            writes=result.writes,
            missing_at_cutover=result.missing,
            missing_count=result.missing_count,
            mode=result.mode,
            copies=result.copies,
            drill_prefix=writes.prefix if writes else None,
            dns=follower.plan.to_json() if follower is not None and follower.plan is not None else None,
        )
        summary = (
            f"followed {step.source} for {result.followed_s:.1f} s ({result.mode}), {result.copies} copied; "
            f"cut over: recovery point {result.recovery_point_s:.2f} s"
        )
        if writes is not None:
            summary += f" ({result.missing_count} of {result.writes} drill writes not on the target)"
        if follower is not None and follower.errors:
            ctx.checkpoint(outputs)
            raise StepFailed(step.id, f"{summary}; the zone could not follow: {follower.errors[-1]}")
        return Outcome("changed", summary, outputs, {"standby": outputs.model_dump()})

    def plan_undo(self, step: StandbyStep, outputs: StandbyOutput) -> list[Change]:
        changes = undo_of(prepare_from_json(outputs.dns).changes()) if outputs.dns else []
        if outputs.drill_prefix and step.drill_writes is not None:
            changes.append(Change(Action.DELETE, f"drill writes under {outputs.drill_prefix} on both sides"))
        return changes

    def undo(self, step: StandbyStep, ctx: Context, outputs: StandbyOutput) -> str | None:
        done = []
        if outputs.dns and step.dns_source and step.dns_target:
            with open_dns(ctx.providers, step.dns_source) as source, open_dns(ctx.providers, step.dns_target) as target:
                rollback_prepare(prepare_from_json(outputs.dns), source, target)
            done.append(f"{step.zone} on {step.dns_target} put back")
        if outputs.drill_prefix and step.drill_writes is not None:
            spec = step.drill_writes
            writes = DrillWrites(spec.bucket, outputs.drill_prefix, spec.rate, spec.size)
            removed = remove_drill_writes(ctx.providers, step.source, step.target, writes, dict(step.bucket_map))
            done.append(f"{removed} drill write(s) removed")
        return "; ".join(done) or None


KINDS: tuple[StepKind[Any, Any], ...] = (
    InventoryKind(),
    SyncKind(),
    VerifyKind(),
    RehostKind(),
    StandbyKind(),
    HealthKind(),
    DnsPrepareKind(),
    DnsCutoverKind(),
    ApprovalKind(),
    NotifyKind(),
)
_BY_SPEC: dict[type[StepSpec], StepKind[Any, Any]] = {kind.spec: kind for kind in KINDS}


def kind_of(step: StepSpec) -> StepKind[Any, Any]:
    """The kind that runs ``step`` (by the type of its model)."""
    return _BY_SPEC[type(step)]


def plan_undo_step(step: StepSpec, recorded: Mapping[str, Any]) -> list[Change]:
    """What undoing ``step`` would change, from the outputs its run recorded."""
    if not recorded:
        return []
    kind = kind_of(step)
    return kind.plan_undo(step, kind.read_outputs(recorded))


def undo_step(step: StepSpec, ctx: Context, recorded: Mapping[str, Any]) -> str | None:
    """Undo ``step`` from the outputs its run recorded; None: nothing to undo (none recorded)."""
    if not recorded:
        return None
    kind = kind_of(step)
    try:
        return kind.undo(step, ctx, kind.read_outputs(recorded))
    except FailoverError as error:
        raise StepFailed(step.id, f"rollback failed: {error}") from error
