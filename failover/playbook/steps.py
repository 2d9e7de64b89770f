"""What each step kind does. Every kind plans (read-only; what a dry-run prints) and applies, and
the kinds that change a provider know how to undo what they did.

* ``requires``: the (provider, service) pairs it uses, checked in preflight before anything runs.
* ``plan``: lines for a person, problems that would make it fail, and the outputs later steps can
  plan with (a rehost's fleet before it exists).
* ``apply``: do it, idempotently (a re-run after a crash repeats a step safely); returns the
  outputs later steps and the rollback use. Raises a FailoverError when the step fails.
* ``undo``: put back what ``apply`` changed, from its recorded outputs.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import httpx

from ..compute import Compute
from ..config import Providers
from ..connect import open_compute, open_dns
from ..cutover import (
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
from ..errors import ConfigError, FailoverError, StepFailed
from ..inventory import take_inventory
from ..location import parse_location
from ..rehost import HEALTH_TAG, SOURCE_TAG, apply_plan, check_health, plan_rehost, rollback, translation_lines
from ..secrets import display_url, register_url_secrets
from ..sync import SyncEngine, SyncOptions, VerifyOptions, open_locations, run_verify
from ..units import human_size
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
    Step,
    SyncStep,
    VerifyStep,
)
from .state import DONE, RunState

__all__ = ["KINDS", "ApprovalPending", "Context", "Outcome", "Planned", "StepKind", "kind_of", "undo_step"]


class ApprovalPending(StepFailed):
    """Nobody approved (yet): the run stops here, keeps everything, and resumes here when re-run.
    Never a reason to roll back."""


@dataclass
class Planned:
    lines: list[str]
    problems: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    status: Literal["ok", "changed", "skipped"]
    """ok: nothing needed changing"""
    summary: str
    outputs: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    providers: Providers
    state: RunState | None
    yes: bool = False
    force: bool = False
    progress: Callable[[str], None] = lambda message: None
    ask: Callable[[str], bool] | None = None
    """Asks a person (None: nobody to ask)."""
    planned: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Outputs of steps planned in this dry-run."""
    checkpoint: Callable[[dict[str, Any]], None] = lambda outputs: None
    """Persist a step's outputs before it finishes (what a crash mid-step must not lose)."""
    definitions: dict[str, Step] = field(default_factory=dict)
    """The playbook's steps by id."""

    def outputs(self, step_id: str) -> dict[str, Any] | None:
        """A finished step's outputs, or what the dry-run planned for it."""
        if self.state is not None:
            recorded = self.state.steps.get(step_id)
            if recorded is not None and recorded.status in DONE:
                return recorded.outputs
        return self.planned.get(step_id)


class StepKind(Protocol):
    def requires(self, step: Any) -> list[tuple[str, str]]: ...

    def plan(self, step: Any, ctx: Context) -> Planned: ...

    def apply(self, step: Any, ctx: Context) -> Outcome: ...

    def undo(self, step: Any, ctx: Context, outputs: dict[str, Any]) -> str | None: ...


class _NoUndo:
    def undo(self, step: Any, ctx: Context, outputs: dict[str, Any]) -> str | None:
        return None


# -- inventory -----------------------------------------------------------------------------------


class InventoryKind(_NoUndo):
    def requires(self, step: InventoryStep) -> list[tuple[str, str]]:
        return []  # whatever the provider has; what cannot be read is listed as not checked

    def plan(self, step: InventoryStep, ctx: Context) -> Planned:
        services = ", ".join(ctx.providers.services(step.provider))
        return Planned([f"take stock of {step.provider} ({services}); read-only"])

    def apply(self, step: InventoryStep, ctx: Context) -> Outcome:
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
        return Outcome("ok", summary, {"buckets": len(found.buckets), "objects": objects}, found.to_json())


# -- storage ---------------------------------------------------------------------------------------


class _SyncProgress:
    """The sync engine's progress as a line every few seconds."""

    def __init__(self, say: Callable[[str], None], every: float = 3.0) -> None:
        self.say, self.every = say, every
        self.total = self.done = self.total_bytes = self.done_bytes = 0
        self.last = time.monotonic()

    def planned(self, objects: int, size: int) -> None:
        self.total += objects
        self.total_bytes += size

    def advanced(self, objects: int, size: int) -> None:
        self.done += objects
        self.done_bytes += size
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self.say(
                f"  {self.done}/{self.total} objects, {human_size(self.done_bytes)}/{human_size(self.total_bytes)}"
            )

    def note(self, message: str) -> None:
        self.say(f"  {message}")


@contextmanager
def _stores(ctx: Context, source: str, target: str) -> Iterator[tuple[Any, Any, Any, Any]]:
    src, dst, source_store, target_store = open_locations(ctx.providers, source, target)
    try:
        yield src, dst, source_store, target_store
    finally:
        source_store.close()
        if target_store is not source_store:
            target_store.close()


def _storage_pair(source: str, target: str) -> list[tuple[str, str]]:
    return [(parse_location(source).provider, "storage"), (parse_location(target).provider, "storage")]


class SyncKind(_NoUndo):
    # Copies are not undone: an extra verified copy of the data harms nothing, and deleting it
    # could lose writes made on the target since.

    def requires(self, step: SyncStep) -> list[tuple[str, str]]:
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
        )

    def plan(self, step: SyncStep, ctx: Context) -> Planned:
        with _stores(ctx, step.source, step.target) as (src, dst, source_store, target_store):
            report = SyncEngine(source_store, target_store, src, dst, self._options(step, True)).run()
        data = report.to_json()
        lines = [
            f"{b['source']} -> {b['target']}: {b['to_copy']} to copy ({human_size(b['to_copy_bytes'])}), "
            f"{b['unchanged']} unchanged, {b['skipped']} skipped, {b['delete_candidates']} to delete"
            for b in data["buckets"]
        ] or [f"{step.source}: no buckets"]
        problems = [data["aborted"]] if data["aborted"] else []
        problems += [f"listing of {b['source']} incomplete" for b in data["buckets"] if not b["listing_complete"]]
        return Planned(lines, problems)

    def apply(self, step: SyncStep, ctx: Context) -> Outcome:
        with _stores(ctx, step.source, step.target) as (src, dst, source_store, target_store):
            engine = SyncEngine(
                source_store, target_store, src, dst, self._options(step, False), _SyncProgress(ctx.progress)
            )
            report = engine.run()
        data = report.to_json()
        totals = data["totals"]
        unverified = max(totals["listed"] - report.done(), 0) if not report.complete else 0
        summary = (
            f"{totals['copied']} copied ({human_size(totals['copied_bytes'])}), {totals['listed']} listed, "
            f"{unverified} not verified, {totals['deleted']} deleted in {data['duration_s']:.1f} s"
        )
        outputs = {"copied": totals["copied"], "bytes": totals["copied_bytes"], "unverified": unverified}
        if not report.complete:
            reason = data["aborted"] or data["delete_refused"] or "not every object is verified"
            raise StepFailed(step.id, f"{summary}: {reason}", hint=f"journal: {data['journal']}")
        return Outcome("changed" if totals["copied"] or totals["deleted"] else "ok", summary, outputs, data)


class VerifyKind(_NoUndo):
    def requires(self, step: VerifyStep) -> list[tuple[str, str]]:
        return _storage_pair(step.source, step.target)

    def plan(self, step: VerifyStep, ctx: Context) -> Planned:
        how = "trusting recorded digests" if step.trust_digests else "re-reading both sides"
        return Planned([f"compare {step.source} with {step.target} ({how}); read-only"])

    def apply(self, step: VerifyStep, ctx: Context) -> Outcome:
        with _stores(ctx, step.source, step.target) as (src, dst, source_store, target_store):
            options = VerifyOptions(trust_digests=step.trust_digests, bucket_map=dict(step.bucket_map))
            report = run_verify(source_store, target_store, src, dst, options)
        data = report.to_json()
        counts = data["counts"]
        summary = (
            f"{data['checked']} checked, {data['matching']} match, {counts['missing']} missing, "
            f"{counts['different']} different, {counts['metadata_different']} with different metadata, "
            f"{counts['extra']} extra"
        )
        outputs = {"missing": counts["missing"], "different": counts["different"] + counts["metadata_different"]}
        if not report.ok:
            raise StepFailed(step.id, summary)
        return Outcome("ok", summary, outputs, data)


# -- compute ---------------------------------------------------------------------------------------


def _health_url(template: str | None, address: str | None) -> str | None:
    if not template or not address:
        return None
    return template.replace("{address}", f"[{address}]" if ":" in address else address)


class RehostKind:
    def requires(self, step: RehostStep) -> list[tuple[str, str]]:
        return [(step.source, "compute"), (step.target, "compute")]

    def _plan(self, step: RehostStep, src: Compute, dst: Compute) -> Any:
        return plan_rehost(
            src,
            dst,
            selector=step.select,
            fleet=step.fleet,
            health_check=step.health_check,
            user_data_replace=step.user_data_replace,
        )

    def plan(self, step: RehostStep, ctx: Context) -> Planned:
        with open_compute(ctx.providers, step.source) as src, open_compute(ctx.providers, step.target) as dst:
            plan = self._plan(step, src, dst)
        rows = [p.row() for p in plan.instances]
        lines = translation_lines(rows) or [f"no instance of {step.source} matches {step.select}"]
        problems = [f"{r['name']}: {p}" for r in rows for p in r["problems"]] if step.on_problem == "fail" else []
        if not rows:
            problems.append(f"no instance of {step.source} matches {step.select}")
        instances = [
            {
                "name": p.source.name,
                "source": p.key,
                "source_address": p.source.address,
                "target_address": None,
                "health_url": p.target_spec.health_check,
            }
            for p in plan.instances
            if p.translation.creatable
        ]
        return Planned(lines, problems, {"fleet": plan.fleet, "instances": instances, "planned": True})

    def apply(self, step: RehostStep, ctx: Context) -> Outcome:
        with open_compute(ctx.providers, step.source) as src, open_compute(ctx.providers, step.target) as dst:
            plan = self._plan(step, src, dst)
            if not plan.instances:
                raise StepFailed(step.id, f"no instance of {step.source} matches {step.select}")
            problems = [f"{p.source.name}: {'; '.join(p.translation.problems)}" for p in plan.instances
                        if not p.translation.creatable]  # fmt: skip
            if problems and step.on_problem == "fail":
                raise StepFailed(step.id, "cannot rebuild " + ", ".join(problems), hint="or set on_problem: skip")
            # The fleet is recorded before anything is created, so a crash now still rolls back.
            ctx.checkpoint({"fleet": plan.fleet})
            creatable = [p for p in plan.instances if p.translation.creatable]
            plan = replace(plan, instances=creatable)
            report = apply_plan(
                plan, dst, run_timeout=step.run_timeout, health_timeout=step.health_timeout, progress=ctx.progress
            )
        templates = {p.key: p.target_spec.health_check for p in creatable}
        instances = [
            {
                "name": r.name,
                "source": r.source,
                "source_address": r.source_address,
                "target_id": r.target_id,
                "target_address": r.address,
                "action": r.action,
                "healthy": None if r.health is None else r.health.healthy,
                "health_url": _health_url(templates.get(r.source), r.address),
            }
            for r in report.results
        ]
        unhealthy = [r.name for r in report.results if r.error or (r.health and r.health.healthy is False)]
        outputs = {"fleet": plan.fleet, "instances": instances, "unhealthy": len(unhealthy)}
        actions = [r.action for r in report.results]
        summary = (
            f"fleet {plan.fleet} on {step.target}: "
            + ", ".join(f"{actions.count(a)} {a}" for a in dict.fromkeys(actions))
            + f"; {len(report.results) - len(unhealthy)} healthy"
        )
        if unhealthy:
            ctx.checkpoint(outputs)
            raise StepFailed(step.id, f"{summary}; NOT healthy: {', '.join(unhealthy)}")
        changed = any(a in ("created", "started") for a in actions)
        return Outcome("changed" if changed else "ok", summary, outputs, report.to_json())

    def undo(self, step: RehostStep, ctx: Context, outputs: dict[str, Any]) -> str | None:
        fleet = outputs.get("fleet")
        if not fleet:
            return None
        with open_compute(ctx.providers, step.target) as dst:
            destroyed = rollback(dst, fleet, ctx.progress)
        return f"destroyed {len(destroyed)} instance(s) of fleet {fleet} on {step.target}"


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


class HealthKind(_NoUndo):
    def requires(self, step: HealthStep) -> list[tuple[str, str]]:
        return []

    def _urls(self, step: HealthStep, ctx: Context) -> list[str] | None:
        urls = list(step.urls)
        if step.fleet_of:
            fleet = ctx.outputs(step.fleet_of)
            if fleet is None:
                return None
            for instance in fleet.get("instances", []):
                template = step.url or instance.get("health_url")
                if fleet.get("planned"):
                    urls.append(f"{template} of {instance['name']}, once created" if template else "")
                else:
                    urls.append(_health_url(template, instance.get("target_address")) or "")
            urls = [u for u in urls if u]
        return urls

    def plan(self, step: HealthStep, ctx: Context) -> Planned:
        urls = self._urls(step, ctx)
        if urls is None:
            return Planned([f"check the fleet of step {step.fleet_of!r} once it exists"])
        return Planned([f"GET {u} (2xx within {step.timeout:.0f} s)" for u in urls] or ["nothing to check"])

    def apply(self, step: HealthStep, ctx: Context) -> Outcome:
        urls = self._urls(step, ctx)
        if not urls:
            raise StepFailed(step.id, "no health check to run (no URLs, or the fleet has no health-check URL)")
        results = _check_all(urls, step.timeout, _headers(step.id, step.headers))
        bad = {url: why for url, why in results.items() if why}
        summary = f"{len(results) - len(bad)}/{len(results)} healthy"
        outputs = {"unhealthy": len(bad)}
        if bad:
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
        fleet = ctx.outputs(step.fleet_of)
        if fleet is None:
            return None
        return [
            _Pair(i["name"], i.get("source_address"), i.get("target_address"), i.get("health_url"))
            for i in fleet.get("instances", [])
        ]
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


def _dns_requires(step: DnsPrepareStep | DnsCutoverStep) -> list[tuple[str, str]]:
    found = [(step.source, "dns"), (step.target, "dns")]
    return found + ([(step.fleet.provider, "compute")] if step.fleet else [])


class DnsPrepareKind:
    def requires(self, step: DnsPrepareStep) -> list[tuple[str, str]]:
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

    def plan(self, step: DnsPrepareStep, ctx: Context) -> Planned:
        with _dns_pair(ctx, step) as (source, target):
            plan = plan_prepare(source, target, step.zone, self._addresses(step, ctx), ttl=step.ttl)
        return Planned(plan.lines(), [], {"plan": plan.to_json(), "planned": True})

    def apply(self, step: DnsPrepareStep, ctx: Context) -> Outcome:
        with _dns_pair(ctx, step) as (source, target):
            plan = plan_prepare(source, target, step.zone, self._addresses(step, ctx), ttl=step.ttl)
            outputs = {"plan": plan.to_json(), "lowered_at": time.time(), "longest_ttl": plan.longest_ttl}
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

    def undo(self, step: DnsPrepareStep, ctx: Context, outputs: dict[str, Any]) -> str | None:
        if "plan" not in outputs:
            return None
        plan = prepare_from_json(outputs["plan"])
        with _dns_pair(ctx, step) as (source, target):
            rollback_prepare(plan, source, target)
        return f"TTLs restored on {step.source}; {step.zone} on {step.target} put back"


class DnsCutoverKind:
    def requires(self, step: DnsCutoverStep) -> list[tuple[str, str]]:
        return _dns_requires(step)

    def _address_map(self, step: DnsCutoverStep, ctx: Context) -> tuple[dict[str, list[str]], list[_Pair]]:
        pairs = _fleet_pairs(step, ctx)
        if pairs is None:
            raise StepFailed(step.id, f"the fleet of step {step.fleet_of!r} is not known yet")
        mapping: dict[str, list[str]] = {}
        for pair in pairs:
            if pair.old:
                new = pair.new or f"(new address of {pair.name})"
                mapping.setdefault(pair.old, []).append(new)
        return mapping, pairs

    def _plan(self, step: DnsCutoverStep, ctx: Context, source: Dns, target: Dns) -> Any:
        mapping, _ = self._address_map(step, ctx)
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

    def plan(self, step: DnsCutoverStep, ctx: Context) -> Planned:
        with _dns_pair(ctx, step) as (source, target):
            plan = self._plan(step, ctx, source, target)
        lines = plan.lines()
        wait = self._ttl_wait(step, ctx)
        if wait:
            lines.insert(0, f"wait up to {wait:.0f} s for lowered TTLs to expire")
        if step.health_gate:
            lines.insert(0, "health-check the new fleet again just before switching")
        return Planned(lines, [plan.refused] if plan.refused else [], {"plan": plan.to_json(), "planned": True})

    def _ttl_wait(self, step: DnsCutoverStep, ctx: Context) -> float:
        """What is left of the old TTLs lowered by a dns_prepare step of this run (bounded)."""
        if ctx.state is None:
            return 0.0
        remaining = 0.0
        zone = canonical_name(step.zone)
        for state in ctx.state.steps.values():
            prepared = state.outputs.get("plan", {}).get("zone") if state.kind == "dns_prepare" else None
            if state.status in DONE and prepared and canonical_name(prepared) == zone:
                expires = float(state.outputs["lowered_at"]) + float(state.outputs["longest_ttl"])
                remaining = max(remaining, expires - time.time())
        return min(max(remaining, 0.0), step.max_ttl_wait)

    def apply(self, step: DnsCutoverStep, ctx: Context) -> Outcome:
        wait = self._ttl_wait(step, ctx)
        if wait > 0:
            ctx.progress(f"  waiting {wait:.0f} s for the lowered TTLs to expire")
            time.sleep(wait)
        _, pairs = self._address_map(step, ctx)
        missing = [p.name for p in pairs if not p.new]
        if missing:
            raise StepFailed(step.id, f"no new address for {', '.join(missing)}")

        def gate() -> list[str]:
            urls = {p.health_url: p.name for p in pairs if p.health_url}
            results = _check_all(list(urls), 30.0)
            return [f"{urls[u]}: {why}" for u, why in results.items() if why]

        with _dns_pair(ctx, step) as (source, target):
            plan = self._plan(step, ctx, source, target)
            outputs: dict[str, Any] = {"plan": plan.to_json()}
            ctx.checkpoint(outputs)  # before any change: a crash from here on can still be rolled back
            result = apply_cutover(
                plan,
                source,
                target,
                health_gate=gate if step.health_gate else None,
                confirm_timeout=step.confirm_timeout,
                progress=ctx.progress,
            )
        outputs["result"] = result.to_json()
        if ctx.state is not None:
            ctx.state.cutover_at = time.time()
        confirmed = ", ".join(f"{c.name} {c.type} = {' '.join(c.answered)}" for c in result.confirmations)
        how = result.confirmations[0].how if result.confirmations else "nothing to confirm"
        summary = f"{len(plan.repoint_target)} set(s) written on {step.target}"
        if plan.repoint_source:
            summary += f" and {len(plan.repoint_source)} repointed on {step.source}"
        summary += f"; confirmed by {how}: {confirmed or '-'}"
        changed = bool(plan.repoint_target or plan.repoint_source or plan.create_zone)
        return Outcome("changed" if changed else "ok", summary, outputs, outputs)

    def undo(self, step: DnsCutoverStep, ctx: Context, outputs: dict[str, Any]) -> str | None:
        if "plan" not in outputs:
            return None
        plan = plan_from_json(outputs["plan"])
        with _dns_pair(ctx, step) as (source, target):
            rollback_cutover(plan, source, target)
        return f"{step.zone} points at the old fleet again on {step.target} and {step.source}"


# -- people ----------------------------------------------------------------------------------------


class NotifyKind(_NoUndo):
    def requires(self, step: NotifyStep) -> list[tuple[str, str]]:
        return []

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

    def plan(self, step: NotifyStep, ctx: Context) -> Planned:
        return Planned([f"POST to {self._shown(step)}: {step.message}"])

    def apply(self, step: NotifyStep, ctx: Context) -> Outcome:
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
        return Outcome("ok", f"notified {shown} ({response.status_code})")


class ApprovalKind(_NoUndo):
    def requires(self, step: ApprovalStep) -> list[tuple[str, str]]:
        return []

    def plan(self, step: ApprovalStep, ctx: Context) -> Planned:
        return Planned([f"ask: {step.message}" + (" (approved in advance by --yes)" if ctx.yes else "")])

    def apply(self, step: ApprovalStep, ctx: Context) -> Outcome:
        if ctx.yes:
            return Outcome("ok", "approved in advance (--yes)")
        if ctx.ask is None:
            raise ApprovalPending(
                step.id,
                f"needs approval: {step.message}",
                hint="re-run interactively, or with --yes; the run resumes here",
            )
        if not ctx.ask(step.message):
            raise ApprovalPending(step.id, "not approved", hint="re-run when ready; the run resumes here")
        return Outcome("ok", "approved interactively")


KINDS: dict[str, StepKind] = {
    "inventory": InventoryKind(),
    "sync": SyncKind(),
    "verify": VerifyKind(),
    "rehost": RehostKind(),
    "health": HealthKind(),
    "dns_prepare": DnsPrepareKind(),
    "dns_cutover": DnsCutoverKind(),
    "approval": ApprovalKind(),
    "notify": NotifyKind(),
}


def kind_of(step: Step) -> StepKind:
    return KINDS[step.kind]


def undo_step(step: Step, ctx: Context, outputs: dict[str, Any]) -> str | None:
    try:
        return kind_of(step).undo(step, ctx, outputs)
    except FailoverError as error:
        raise StepFailed(step.id, f"rollback failed: {error}") from error
