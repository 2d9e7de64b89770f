"""Planning a rehost: the source fleet, what each instance needs, and what the target gives it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..changes import Action, Change, JsonValue
from ..compute import Compute, ComputeCapability, ImageRef, Instance, InstanceSpec, InstanceState
from .mapping import Translation, translate

__all__ = [
    "FLEET_TAG",
    "HEALTH_TAG",
    "SOURCE_TAG",
    "PlannedInstance",
    "RehostPlan",
    "plan_rehost",
    "spec_from_instance",
    "translation_lines",
    "translation_notes",
]

FLEET_TAG = "failover:fleet"
SOURCE_TAG = "failover:source"
HEALTH_TAG = "failover:health-check"
"""A source instance tag naming its health-check URL template, e.g. http://{address}:8080/healthz."""
_INTERNAL_PREFIXES = ("aws:", "failover:")


@dataclass(frozen=True)
class PlannedInstance:
    source: Instance
    key: str
    """Stable identity of the source instance: provider/id."""
    translation: Translation
    target_spec: InstanceSpec
    """What is created on the target: the spec with failover's tags, minus what the target cannot hold."""
    existing: Instance | None = None
    """The target instance an earlier run created for this one (found by its tags), if any."""

    def row(self) -> dict[str, Any]:
        t = self.translation
        return {
            "source": self.key,
            "name": self.source.name,
            "source_type": self.source.size,
            "spec": f"{t.spec.vcpus} vCPU, {t.spec.memory_mib} MiB, {t.spec.arch}"
            + (f", {t.spec.gpus} GPU" if t.spec.gpus else ""),
            "source_image": str(t.spec.image),
            "target_size": t.size.id if t.size else None,
            "target_image": t.image.id if t.image else None,
            "target_os": f"{t.image.os} {t.image.version}" if t.image else None,
            "hourly_price": t.size.price_per_hour if t.size else None,
            "shortfall": list(t.shortfall),
            "losses": list(t.losses),
            "problems": list(t.problems),
            "health_check": self.target_spec.health_check,
        }


@dataclass(frozen=True)
class RehostPlan:
    source_provider: str
    target_provider: str
    fleet: str
    instances: list[PlannedInstance] = field(default_factory=list)

    @property
    def creatable(self) -> list[PlannedInstance]:
        return [p for p in self.instances if p.translation.creatable]

    def changes(self) -> list[Change]:
        """One per instance that can be rebuilt: created, started again (an earlier run's instance
        was stopped), or found running (nothing to do but check it)."""
        out = []
        for planned in self.creatable:
            t = planned.translation
            resource = f"instance {planned.source.name} on {self.target_provider} (fleet {self.fleet})"
            existing = planned.existing
            if existing is None:
                wanted: dict[str, JsonValue] = {
                    "size": t.size.id if t.size else None,
                    "image": f"{t.image.os} {t.image.version} ({t.image.id})" if t.image else None,
                }
                if t.size and t.size.price_per_hour is not None:
                    wanted["hourly_price"] = t.size.price_per_hour
                source = f"{planned.key}: {planned.source.size}, {t.spec.image}"
                out.append(Change(Action.CREATE, resource, None, wanted, f"rebuilt from {source}"))
            elif existing.state in (InstanceState.STOPPED, InstanceState.STOPPING):
                before = {"id": existing.id, "state": existing.state.value}
                out.append(Change(Action.UPDATE, resource, before, {"id": existing.id, "state": "running"}))
            else:
                state = {"id": existing.id, "state": existing.state.value}
                out.append(Change(Action.READ, resource, state, None, "created by an earlier run: reused"))
        return out

    def notes(self) -> list[str]:
        """What each instance's translation misses, and the instances that cannot be rebuilt."""
        return translation_notes([p.row() for p in self.instances])

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source_provider,
            "target": self.target_provider,
            "fleet": self.fleet,
            "instances": [p.row() for p in self.instances],
        }


def spec_from_instance(
    instance: Instance, source: Compute, *, health_check: str | None = None
) -> tuple[InstanceSpec, list[str], list[str]]:
    """The provider-neutral spec of a running instance, with what cannot be carried (losses) and
    what stops it being rebuilt at all (problems). ``health_check`` overrides the instance's
    health-check tag; an empty string means no health check."""
    losses = list(instance.not_portable)
    problems: list[str] = []
    readable = ComputeCapability.READ_USER_DATA in source.capabilities
    if not readable:
        losses.append(f"user-data: {source.name} does not return it; give the target its boot script by hand")
    size = source.describe_size(instance.size)
    if size is None:
        problems.append(f"size {instance.size!r} is unknown to the source provider")
    image = source.describe_image(instance.image) if instance.image else None
    image_ref = ImageRef(image.os, image.version) if image else ImageRef(id=instance.image or None)
    tags = {k: v for k, v in instance.tags.items() if not k.startswith(_INTERNAL_PREFIXES) and k != "Name"}
    spec = InstanceSpec(
        name=instance.name,
        vcpus=size.vcpus if size else 1,
        memory_mib=size.memory_mib if size else 512,
        arch=size.arch if size else (instance.arch or "x86_64"),
        gpus=size.gpus if size else 0,
        disk_gib=instance.disk_gib or 8,
        image=image_ref,
        user_data=source.user_data(instance.id) if readable else None,
        tags=tags,
        ports=instance.ports,
        health_check=instance.tags.get(HEALTH_TAG) if health_check is None else (health_check or None),
    )
    return spec, losses, problems


def fleet_id(source: str, target: str, selector: Mapping[str, str]) -> str:
    identity = f"{source}->{target}:" + ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def plan_rehost(
    source: Compute,
    target: Compute,
    *,
    selector: Mapping[str, str] | None = None,
    fleet: str | None = None,
    health_check: str | None = None,
    user_data_replace: Mapping[str, str] | None = None,
) -> RehostPlan:
    """Read-only: the target fleet for the source instances matching ``selector`` (tags)."""
    selector = dict(selector or {})
    fleet = fleet or fleet_id(source.name, target.name, selector)
    catalog = target.catalog()
    caps = target.capabilities
    plan = RehostPlan(source.name, target.name, fleet)
    images_apply = bool(catalog.images)
    earlier = {}
    if ComputeCapability.TAGS in caps:
        earlier = {i.tags.get(SOURCE_TAG): i for i in target.list_instances({FLEET_TAG: fleet})}
    for instance in source.list_instances(selector or None):
        spec, losses, problems = spec_from_instance(instance, source, health_check=health_check)
        if spec.user_data and user_data_replace:
            text = spec.user_data
            for old, new in user_data_replace.items():
                text = text.replace(old, new)
            spec = replace(spec, user_data=text)
        translation = translate(spec, losses, catalog, caps, images_apply=images_apply)
        if ComputeCapability.TAGS not in caps:
            problems.append("the target cannot tag instances, so a re-run could not find what it created")
        translation = replace(translation, problems=(*problems, *translation.problems))
        key = f"{source.name}/{instance.id}"
        # What the target cannot hold is dropped here (and listed in the translation's losses).
        target_spec = replace(
            spec,
            user_data=spec.user_data if ComputeCapability.USER_DATA in caps else None,
            ports=spec.ports if ComputeCapability.OPEN_PORTS in caps else (),
            ssh_keys=spec.ssh_keys if ComputeCapability.SSH_KEYS in caps else (),
            tags={**spec.tags, FLEET_TAG: fleet, SOURCE_TAG: key},
        )
        plan.instances.append(PlannedInstance(instance, key, translation, target_spec, earlier.get(key)))
    return plan


def translation_notes(rows: list[dict[str, Any]]) -> list[str]:
    """What each instance's translation misses (problems, shortfalls, losses); a loss every
    instance shares (the target's own limits) once at the end."""
    shared = set.intersection(*(set(r["losses"]) for r in rows)) if rows else set()
    notes = []
    for r in rows:
        for label, items in (("PROBLEM", r["problems"]), ("short", r["shortfall"]), ("lost", r["losses"])):
            notes += [f"  {r['name']}: {label}: {item}" for item in items if label != "lost" or item not in shared]
    return notes + [f"  all instances: lost: {item}" for item in sorted(shared)]


def translation_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The translation table as lines: one per instance, then :func:`translation_notes`."""
    lines = [
        f"{r['name']} ({r['source_type']}, {r['source_image']}) -> {r['target_size'] or '-'} "
        f"{r['target_os'] or r['target_image'] or ''}".rstrip()
        for r in rows
    ]
    return lines + translation_notes(rows) if rows else []
