"""The DNS conformance suite, written once and run against every DNS provider of the lab.

A provider test file subclasses :class:`DnsConformance` and names a provider. Every test works in
a zone of its own (created, then deleted whatever happens). Skips happen only on a declaration
(``declared:``): a capability, or a providers-file option the provider lacks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest

from failover.config import Providers
from failover.connect import open_dns
from failover.dns import Dns, DnsCapability, RecordSet, portable_records, query, record_set
from failover.errors import InvalidRequest, NotFound, NotSupported

from .declared import declared


class DnsConformance:
    provider: ClassVar[str]

    @pytest.fixture(scope="class")
    @classmethod
    def dns(cls, lab_providers: Providers) -> Iterator[Dns]:
        dns = open_dns(lab_providers, cls.provider)
        yield dns
        dns.close()

    @pytest.fixture
    def zone(self, dns: Dns) -> Iterator[str]:
        declared(dns, DnsCapability.CREATE_ZONE)
        name = f"conf-{uuid.uuid4().hex[:10]}.example"
        dns.create_zone(name)
        yield name
        if DnsCapability.DELETE_ZONE in dns.capabilities:
            dns.delete_zone(name)

    # -- tests -------------------------------------------------------------------------------------

    def test_zone_lifecycle_is_idempotent(self, dns: Dns) -> None:
        declared(dns, DnsCapability.CREATE_ZONE)
        declared(dns, DnsCapability.DELETE_ZONE)
        name = f"Conf-{uuid.uuid4().hex[:10]}.Example."
        first = dns.create_zone(name)
        try:
            assert first.name == name.lower().rstrip(".")
            assert dns.create_zone(name).id == first.id, "creating an existing zone returns it"
            assert [z.id for z in dns.list_zones() if z.name == first.name] == [first.id]
            found = dns.find_zone(first.name)
            assert found is not None and found.id == first.id
        finally:
            dns.delete_zone(name)
        dns.delete_zone(name)  # idempotent
        assert dns.find_zone(first.name) is None

    def test_a_new_zone_has_its_providers_soa_and_ns(self, dns: Dns, zone: str) -> None:
        records = dns.list_records(zone)
        types_at_apex = {r.type for r in records if r.name == zone}
        assert {"SOA", "NS"} <= types_at_apex
        assert portable_records(zone, records) == []

    def test_record_sets_round_trip_in_canonical_form(self, dns: Dns, zone: str) -> None:
        wanted = [
            record_set(f"www.{zone}", "A", 300, ["192.0.2.10"]),
            record_set(f"www.{zone}", "AAAA", 300, ["2001:db8::10"]),
            record_set(f"api.{zone}", "CNAME", 120, [f"www.{zone}"]),  # no trailing dot on the way in
            record_set(zone, "MX", 3600, [f"10 mail.{zone}"]),
            record_set(zone, "TXT", 600, ['"v=spf1 -all"']),
        ]
        dns.apply(zone, upserts=wanted)
        found = portable_records(zone, dns.list_records(zone))
        assert sorted(found, key=lambda r: r.key) == sorted(wanted, key=lambda r: r.key)
        assert next(r for r in found if r.type == "CNAME").values == (f"www.{zone}.",)
        assert next(r for r in found if r.type == "MX").values == (f"10 mail.{zone}.",)

    def test_upsert_replaces_a_set_and_delete_is_idempotent(self, dns: Dns, zone: str) -> None:
        name = f"app.{zone}"
        dns.apply(zone, upserts=[record_set(name, "A", 300, ["192.0.2.1"])])
        dns.apply(zone, upserts=[record_set(name, "A", 60, ["192.0.2.2"])])
        assert [r for r in dns.list_records(zone) if r.name == name] == [record_set(name, "A", 60, ["192.0.2.2"])]
        gone = record_set(name, "A", 60, ["192.0.2.2"])
        dns.apply(zone, deletes=[gone])
        dns.apply(zone, deletes=[gone])  # already gone: not an error
        assert [r for r in dns.list_records(zone) if r.name == name] == []

    def test_several_values_in_one_set(self, dns: Dns, zone: str) -> None:
        declared(dns, DnsCapability.MULTI_VALUE)
        wanted = record_set(f"www.{zone}", "A", 60, ["192.0.2.3", "192.0.2.1", "192.0.2.2"])
        dns.apply(zone, upserts=[wanted])
        assert [r for r in dns.list_records(zone) if r.key == wanted.key] == [wanted]
        fewer = record_set(f"www.{zone}", "A", 60, ["192.0.2.2"])
        dns.apply(zone, upserts=[fewer])
        assert [r for r in dns.list_records(zone) if r.key == wanted.key] == [fewer]

    def test_changes_are_answered_over_dns(self, dns: Dns, zone: str) -> None:
        server = dns.nameserver()
        if server is None:
            pytest.skip(f"declared: {dns.name} names no nameserver to query (option nameserver)")
        name = f"live.{zone}"
        values = ["192.0.2.7", "192.0.2.8"] if DnsCapability.MULTI_VALUE in dns.capabilities else ["192.0.2.7"]
        dns.apply(zone, upserts=[record_set(name, "A", 30, values)])
        assert query(server, name, "A") == tuple(values)
        dns.apply(zone, deletes=[record_set(name, "A", 30, values)])
        assert query(server, name, "A") == ()

    def test_missing_zone_and_foreign_names(self, dns: Dns, zone: str) -> None:
        with pytest.raises(NotFound):
            dns.list_records(f"missing-{uuid.uuid4().hex[:8]}.example")
        with pytest.raises(InvalidRequest, match="not in zone"):
            dns.apply(zone, upserts=[record_set("www.elsewhere.example", "A", 60, ["192.0.2.1"])])
        with pytest.raises(InvalidRequest, match="no values"):
            dns.apply(zone, upserts=[RecordSet(f"www.{zone}", "A", 60, ())])

    def test_undeclared_capabilities_raise_not_supported(self, dns: Dns) -> None:
        probes = {
            DnsCapability.CREATE_ZONE: lambda: dns.create_zone(f"never-{uuid.uuid4().hex[:8]}.example"),
            DnsCapability.DELETE_ZONE: lambda: dns.delete_zone("never.example"),
            DnsCapability.MULTI_VALUE: lambda: dns.apply(
                "never.example", upserts=[record_set("www.never.example", "A", 60, ["192.0.2.1", "192.0.2.2"])]
            ),
        }
        undeclared = [c for c in probes if c not in dns.capabilities]
        if not undeclared:
            pytest.skip(f"declared: {dns.name} declares every probed capability")
        for capability in undeclared:
            with pytest.raises(NotSupported):
                probes[capability]()
