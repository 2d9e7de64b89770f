"""The DNS cutover's guards on real servers (LocalStack's Route53 -> PowerDNS): the change-share
guard, the health gate, a target that holds one value per set, and prepare/cutover undone exactly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from failover.config import Providers
from failover.connect import open_dns
from failover.cutover import (
    CutoverRefused,
    apply_cutover,
    apply_prepare,
    plan_cutover,
    plan_prepare,
    rollback_cutover,
    rollback_prepare,
)
from failover.dns import Dns, query, record_set

OLD = ["192.0.2.1", "192.0.2.2"]
NEW = {"192.0.2.1": ["127.0.0.61"], "192.0.2.2": ["127.0.0.62"]}


@pytest.fixture
def zone(lab_providers: Providers) -> Iterator[tuple[str, Dns, Dns]]:
    name = f"cut-{uuid.uuid4().hex[:8]}.example"
    source, target = open_dns(lab_providers, "aws"), open_dns(lab_providers, "onprem")
    source.create_zone(name)
    source.apply(
        name,
        upserts=[
            record_set(f"www.{name}", "A", 300, OLD),
            record_set(name, "A", 300, OLD),
            record_set(f"mail.{name}", "A", 300, ["198.51.100.9"]),
            record_set(name, "MX", 300, [f"10 mail.{name}"]),
            record_set(name, "TXT", 300, ['"v=spf1 -all"']),
        ],
    )
    yield name, source, target
    source.delete_zone(name)
    target.delete_zone(name)
    source.close()
    target.close()


def _state(dns: Dns, zone: str) -> list[object]:
    return dns.list_records(zone) if dns.find_zone(zone) else []


def test_change_share_guard_and_force(zone: tuple[str, Dns, Dns]) -> None:
    name, source, target = zone
    guarded = plan_cutover(source, target, name, NEW, ttl=60, max_change_share=0.3)
    assert guarded.refused and "40%" in guarded.refused and source.name in guarded.refused
    with pytest.raises(CutoverRefused, match="refused"):
        apply_cutover(guarded, source, target)
    assert not target.find_zone(name), "a refused cutover changes nothing"
    forced = plan_cutover(source, target, name, NEW, ttl=60, max_change_share=0.3, force=True)
    assert forced.refused is None


def test_unhealthy_fleet_blocks_the_switch(zone: tuple[str, Dns, Dns]) -> None:
    name, source, target = zone
    before = _state(source, name)
    plan = plan_cutover(source, target, name, NEW, ttl=60)
    with pytest.raises(CutoverRefused, match="web-2: connection refused"):
        apply_cutover(plan, source, target, health_gate=lambda: ["web-2: connection refused"])
    assert _state(source, name) == before and not target.find_zone(name)


def test_prepare_then_cutover_confirmed_by_query_then_both_undone(zone: tuple[str, Dns, Dns]) -> None:
    name, source, target = zone
    original = _state(source, name)
    prepared = plan_prepare(source, target, name, OLD, ttl=60)
    assert {r.name for r in prepared.lower} == {name, f"www.{name}"} and prepared.longest_ttl == 300
    apply_prepare(prepared, source, target)
    assert {r.ttl for r in source.list_records(name) if r.type == "A" and set(r.values) == set(OLD)} == {60}
    server = target.nameserver()
    assert server is not None
    assert query(server, f"mail.{name}", "A") == ("198.51.100.9",), "the zone was copied"

    plan = plan_cutover(source, target, name, NEW, ttl=60)
    result = apply_cutover(plan, source, target, health_gate=list)
    assert all(c.ok and c.how.startswith("DNS query") for c in result.confirmations)
    assert query(server, f"www.{name}", "A") == ("127.0.0.61", "127.0.0.62")
    assert [r.values for r in source.list_records(name) if r.name == f"www.{name}" and r.type == "A"] == [
        ("127.0.0.61", "127.0.0.62")
    ]

    rollback_cutover(plan, source, target)
    assert query(server, f"www.{name}", "A") == tuple(OLD)
    rollback_prepare(prepared, source, target)
    assert _state(source, name) == original, "values and TTLs exactly as before"
    assert not target.find_zone(name), "the zone the prepare created is gone"


def test_a_target_holding_one_value_per_set_is_refused(lab_providers: Providers, zone: tuple[str, Dns, Dns]) -> None:
    name, source, _ = zone
    with open_dns(lab_providers, "onprem-libcloud") as single:
        plan = plan_cutover(source, single, name, NEW, ttl=60, max_change_share=1.0)
    assert plan.refused and "holds one per set" in plan.refused
