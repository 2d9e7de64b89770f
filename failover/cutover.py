"""Moving a zone's traffic to a new fleet, in two phases a playbook runs at different times.

**Prepare** (early in an evacuation): lower the TTL of the record sets that point at the old fleet,
on the provider that answers for the zone today, so resolvers stop caching them for long; and copy
the zone to the target provider (every portable record, values unchanged), so it is ready to answer.

**Cut over** (once the new fleet is healthy): wait out what is left of the old TTLs, check the new
fleet's health once more, point those record sets at the new fleet's addresses on the target (and
on the source, so resolvers still asking it get the same answer while delegation moves), confirm
with a real DNS query to the target's nameserver (or by reading back through its API when it has
none), and put everything back as it was if any of that fails.

A change touching more than a set share of an existing zone's record sets is refused without
``force``: a wrong address map must not rewrite a whole zone. Plans are data (JSON-able), so the
playbook runner persists them and can roll back after a crash.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar

from .changes import Action, Change, JsonValue
from .dns import Dns, DnsCapability, RecordSet, portable_records, query, record_set
from .errors import FailoverError, NotFound

__all__ = [
    "Confirmation",
    "CutoverPlan",
    "CutoverRefused",
    "CutoverResult",
    "PreparePlan",
    "apply_cutover",
    "apply_prepare",
    "plan_cutover",
    "plan_from_json",
    "plan_prepare",
    "prepare_from_json",
    "records_from_json",
    "records_to_json",
    "restore",
    "rollback_cutover",
    "rollback_prepare",
]

ADDRESS_TYPES = ("A", "AAAA")


class CutoverRefused(FailoverError):
    """The cutover was not started (or was undone): a guard or a health check said no."""

    exit_code = 1


def records_to_json(records: Iterable[RecordSet]) -> list[dict[str, Any]]:
    return [{"name": r.name, "type": r.type, "ttl": r.ttl, "values": list(r.values)} for r in records]


def records_from_json(items: Iterable[Mapping[str, Any]]) -> list[RecordSet]:
    return [record_set(i["name"], i["type"], int(i["ttl"]), i["values"]) for i in items]


def _is_records(spec: Field[Any]) -> bool:
    return str(spec.type) == "list[RecordSet]"


def _to_json(plan: Any) -> dict[str, Any]:
    """A plan as JSON: its fields, record sets as plain mappings (persisted in a run's state)."""
    return {
        spec.name: records_to_json(getattr(plan, spec.name)) if _is_records(spec) else getattr(plan, spec.name)
        for spec in fields(plan)
    }


P = TypeVar("P", "PreparePlan", "CutoverPlan")


def _from_json(kind: type[P], data: Mapping[str, Any]) -> P:
    values: dict[str, Any] = {
        spec.name: records_from_json(data[spec.name]) if _is_records(spec) else data[spec.name]
        for spec in fields(kind)
        if spec.name in data
    }
    return kind(**values)


def _record_state(record: RecordSet) -> dict[str, JsonValue]:
    return {"ttl": record.ttl, "values": list(record.values)}


def _record_change(record: RecordSet, provider: str, previous: RecordSet | None, *, detail: str = "") -> Change:
    """Writing ``record`` on ``provider``: an update of ``previous``, or a create."""
    resource = f"record {record.name} {record.type} on {provider}"
    if previous is None:
        return Change(Action.CREATE, resource, None, _record_state(record), detail)
    return Change(Action.UPDATE, resource, _record_state(previous), _record_state(record), detail)


def _by_key(records: Iterable[RecordSet]) -> dict[tuple[str, str], RecordSet]:
    return {r.key: r for r in records}


def _share(changed: int, existing: int) -> float:
    return changed / existing if existing else 0.0


# -- prepare -----------------------------------------------------------------------------------------


@dataclass
class PreparePlan:
    zone: str
    source: str
    target: str
    ttl: int
    lower: list[RecordSet] = field(default_factory=list)
    """Source sets pointing at the fleet, with their TTL lowered."""
    previous_source: list[RecordSet] = field(default_factory=list)
    """Those sets as they are now (to restore)."""
    copy: list[RecordSet] = field(default_factory=list)
    """Sets written on the target (missing there, or different)."""
    previous_target: list[RecordSet] = field(default_factory=list)
    """Target sets the copy overwrites, as they are now."""
    create_zone: bool = False
    not_copied: list[str] = field(default_factory=list)
    """Records only the source provider can hold (aliases, routing policies)."""
    longest_ttl: int = 0
    """The longest TTL lowered: how long resolvers may still hold the old answers."""

    def changes(self) -> list[Change]:
        """TTLs lowered on the source first (they start expiring now), then the target filled."""
        out = [
            _record_change(r, self.source, p, detail=f"resolvers stop caching it for {p.ttl} s")
            for r, p in zip(self.lower, self.previous_source, strict=True)
        ]
        if self.create_zone:
            out.append(Change(Action.CREATE, f"zone {self.zone} on {self.target}"))
        previous = _by_key(self.previous_target)
        out += [_record_change(r, self.target, previous.get(r.key)) for r in self.copy]
        return out

    def notes(self) -> list[str]:
        return [f"not copied (only {self.source} can hold it): {note}" for note in self.not_copied]

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


def plan_prepare(source: Dns, target: Dns, zone: str, fleet_addresses: Iterable[str], *, ttl: int) -> PreparePlan:
    """Read-only: what preparing ``zone`` for a cutover away from ``fleet_addresses`` changes."""
    fleet = set(fleet_addresses)
    plan = PreparePlan(zone, source.name, target.name, ttl)
    source_records = source.list_records(zone)
    plan.not_copied = [f"{r.name} {r.type}: {r.provider_only}" for r in source_records if r.provider_only]
    portable = portable_records(zone, source_records)
    lowered = {}
    for record in portable:
        if record.type in ADDRESS_TYPES and fleet & set(record.values) and record.ttl > ttl:
            plan.previous_source.append(record)
            new = record_set(record.name, record.type, ttl, record.values)
            plan.lower.append(new)
            lowered[record.key] = new
            plan.longest_ttl = max(plan.longest_ttl, record.ttl)
    existing_zone = target.find_zone(zone)
    plan.create_zone = existing_zone is None
    current = {} if existing_zone is None else _by_key(portable_records(zone, target.list_records(zone)))
    for record in portable:
        wanted = lowered.get(record.key, record)
        if current.get(record.key) != wanted:
            plan.copy.append(wanted)
            if record.key in current:
                plan.previous_target.append(current[record.key])
    return plan


def apply_prepare(plan: PreparePlan, source: Dns, target: Dns) -> None:
    """Lower the TTLs first (they start expiring now), then create and fill the target zone."""
    if plan.lower:
        source.apply(plan.zone, upserts=plan.lower)
    if plan.create_zone:
        target.create_zone(plan.zone)
    if plan.copy:
        target.apply(plan.zone, upserts=plan.copy)


def restore(dns: Dns, zone: str, previous: list[RecordSet], written: list[RecordSet]) -> None:
    """Put ``zone`` back: the ``previous`` sets as they were, and the sets that were ``written``
    without a previous version removed."""
    before = {r.key for r in previous}
    added = [r for r in written if r.key not in before]
    if previous or added:
        # NotFound: the zone itself is gone (deleted by hand, or by another run's rollback): nothing of ours is left.
        with contextlib.suppress(NotFound):
            dns.apply(zone, upserts=previous, deletes=added)


def _delete_zone(dns: Dns, zone: str) -> None:
    """Delete a zone a run created; one already gone is what a rollback wants (a no-op)."""
    with contextlib.suppress(NotFound):
        dns.delete_zone(zone)


# -- cut over ----------------------------------------------------------------------------------------


@dataclass
class CutoverPlan:
    zone: str
    source: str
    target: str
    ttl: int
    address_map: dict[str, list[str]]
    repoint_target: list[RecordSet] = field(default_factory=list)
    previous_target: list[RecordSet] = field(default_factory=list)
    repoint_source: list[RecordSet] = field(default_factory=list)
    previous_source: list[RecordSet] = field(default_factory=list)
    create_zone: bool = False
    warnings: list[str] = field(default_factory=list)
    refused: str | None = None
    """Why the guard refuses this change (None: allowed)."""
    share: dict[str, float] = field(default_factory=dict)
    """Per provider, the share of the zone's existing record sets this changes."""

    def changes(self) -> list[Change]:
        """The target written first (it answers once delegation moves), then the source repointed."""
        out = [Change(Action.CREATE, f"zone {self.zone} on {self.target}")] if self.create_zone else []
        previous_target, previous_source = _by_key(self.previous_target), _by_key(self.previous_source)
        out += [_record_change(r, self.target, previous_target.get(r.key)) for r in self.repoint_target]
        out += [_record_change(r, self.source, previous_source.get(r.key)) for r in self.repoint_source]
        return out

    def notes(self) -> list[str]:
        return [f"warning: {w}" for w in self.warnings]

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


def _repointed(record: RecordSet, address_map: Mapping[str, list[str]], ttl: int) -> RecordSet | None:
    if record.type not in ADDRESS_TYPES or not set(record.values) & set(address_map):
        return None
    values = [new for value in record.values for new in address_map.get(value, [value])]
    return record_set(record.name, record.type, min(record.ttl, ttl), dict.fromkeys(values))


def plan_cutover(
    source: Dns,
    target: Dns,
    zone: str,
    address_map: Mapping[str, list[str]],
    *,
    ttl: int,
    update_source: bool = True,
    max_change_share: float = 0.5,
    force: bool = False,
) -> CutoverPlan:
    """Read-only: point every address record set of ``zone`` that holds an old address at the new
    ones (``address_map``: old -> new addresses), on the target and (``update_source``) the source."""
    plan = CutoverPlan(zone, source.name, target.name, ttl, {k: list(v) for k, v in address_map.items()})
    source_sets = portable_records(zone, source.list_records(zone))
    mapped = set(address_map)
    for record in source_sets:
        new = _repointed(record, address_map, ttl)
        if new is None:
            continue
        unmapped = [v for v in record.values if v not in mapped]
        if unmapped:
            plan.warnings.append(f"{record.name} {record.type} keeps {', '.join(unmapped)} (not in the fleet)")
        if update_source and new != record:
            plan.repoint_source.append(new)
            plan.previous_source.append(record)
    existing_zone = target.find_zone(zone)
    plan.create_zone = existing_zone is None
    current = {} if existing_zone is None else _by_key(portable_records(zone, target.list_records(zone)))
    for record in source_sets:
        wanted = _repointed(record, address_map, ttl) or record
        if current.get(record.key) != wanted:
            plan.repoint_target.append(wanted)
            if record.key in current:
                plan.previous_target.append(current[record.key])
    if len(mapped) and not any(set(r.values) & mapped for r in source_sets if r.type in ADDRESS_TYPES):
        plan.warnings.append(f"no record of {zone} points at the old fleet ({', '.join(sorted(mapped))})")
    # The guard counts changes to record sets that exist (creating a zone's records is not a change).
    changed_source = len(plan.repoint_source)
    changed_target = len(plan.previous_target)
    plan.share = {
        source.name: round(_share(changed_source, len(source_sets)), 3),
        target.name: round(_share(changed_target, len(current)), 3),
    }
    over = {name: share for name, share in plan.share.items() if share > max_change_share}
    if over and not force:
        worst = max(over, key=lambda name: over[name])
        plan.refused = (
            f"this changes {over[worst]:.0%} of the record sets of {zone} on {worst}, more than the "
            f"{max_change_share:.0%} allowed; check the address map, or allow it with force"
        )
    for record in plan.repoint_target:
        if len(record.values) > 1 and DnsCapability.MULTI_VALUE not in target.capabilities:
            plan.refused = plan.refused or (
                f"{record.name} {record.type} needs {len(record.values)} values and {target.name} holds one per set"
            )
    return plan


@dataclass
class Confirmation:
    name: str
    type: str
    expected: list[str]
    answered: list[str]
    how: str

    @property
    def ok(self) -> bool:
        return self.answered == self.expected


def _confirm(dns: Dns, zone: str, records: list[RecordSet], deadline: float) -> list[Confirmation]:
    """Ask the provider's nameserver (or, without one, its API) until every set answers as written."""
    server = dns.nameserver()
    how = f"DNS query to {server[0]}:{server[1]}" if server else f"read back through {dns.name}'s API"
    while True:
        if server:
            answers = {r.key: list(query(server, r.name, r.type)) for r in records}
        else:
            current = _by_key(dns.list_records(zone))
            answers = {r.key: list(current[r.key].values) if r.key in current else [] for r in records}
        found = [Confirmation(r.name, r.type, list(r.values), answers[r.key], how) for r in records]
        if all(c.ok for c in found) or time.monotonic() >= deadline:
            return found
        time.sleep(0.5)


@dataclass
class CutoverResult:
    applied: bool = False
    confirmations: list[Confirmation] = field(default_factory=list)
    rolled_back: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "rolled_back": self.rolled_back,
            "confirmations": [{**vars(c), "ok": c.ok} for c in self.confirmations],
        }


def apply_cutover(
    plan: CutoverPlan,
    source: Dns,
    target: Dns,
    *,
    health_gate: Callable[[], list[str]] | None = None,
    confirm_timeout: float = 30.0,
    progress: Callable[[str], None] = lambda message: None,
) -> CutoverResult:
    """Switch the records (health gate first), confirm, and roll back if either fails."""
    result = CutoverResult()
    if plan.refused:
        raise CutoverRefused(f"DNS cutover of {plan.zone} refused: {plan.refused}")
    if health_gate is not None:
        unhealthy = health_gate()
        if unhealthy:
            raise CutoverRefused(
                f"DNS cutover of {plan.zone} not started: the new fleet is not healthy ({', '.join(unhealthy)})"
            )
    try:
        if plan.create_zone:
            target.create_zone(plan.zone)
        target.apply(plan.zone, upserts=plan.repoint_target)
        result.applied = True
        if plan.repoint_source:
            source.apply(plan.zone, upserts=plan.repoint_source)
        changed = [r for r in plan.repoint_target if r.type in ADDRESS_TYPES and set(r.values) & _new(plan)]
        progress(f"{plan.zone}: {len(plan.repoint_target)} set(s) written on {target.name}; confirming")
        result.confirmations = _confirm(target, plan.zone, changed, time.monotonic() + confirm_timeout)
        bad = [c for c in result.confirmations if not c.ok]
        if bad:
            detail = "; ".join(f"{c.name} {c.type} answered {c.answered or 'nothing'}" for c in bad)
            raise CutoverRefused(f"DNS cutover of {plan.zone} not confirmed ({bad[0].how}): {detail}")
    except FailoverError:
        if result.applied:
            rollback_cutover(plan, source, target)
            result.rolled_back = True
        raise
    return result


def _new(plan: CutoverPlan) -> set[str]:
    return {address for addresses in plan.address_map.values() for address in addresses}


def rollback_cutover(plan: CutoverPlan, source: Dns, target: Dns) -> None:
    """Put both zones back as they were before ``plan`` was applied."""
    if plan.repoint_source:
        restore(source, plan.zone, plan.previous_source, plan.repoint_source)
    if plan.create_zone:
        _delete_zone(target, plan.zone)
    else:
        restore(target, plan.zone, plan.previous_target, plan.repoint_target)


def plan_from_json(data: Mapping[str, Any]) -> CutoverPlan:
    return _from_json(CutoverPlan, data)


def prepare_from_json(data: Mapping[str, Any]) -> PreparePlan:
    return _from_json(PreparePlan, data)


def rollback_prepare(plan: PreparePlan, source: Dns, target: Dns) -> None:
    """Undo a prepare: the source's TTLs back, the target zone removed (if it was created) or its
    sets back as they were."""
    if plan.lower:
        restore(source, plan.zone, plan.previous_source, [])
    if plan.create_zone:
        _delete_zone(target, plan.zone)
    elif plan.copy:
        restore(target, plan.zone, plan.previous_target, plan.copy)
