"""The ``route53`` DNS adapter: Amazon Route53 (and LocalStack's) through boto3.

Route53 speaks in hosted-zone ids and record sets; this adapter finds zones by name, reads every
page of record sets, and applies a batch as one ChangeResourceRecordSets call (atomic). A DELETE
must repeat the set's current TTL and values, so deletes are resolved against a fresh listing and
sets already gone are left out (deleting is idempotent)."""

from __future__ import annotations

import hashlib
from typing import Any

from failover.config import ServiceSpec
from failover.dns import Dns, DnsCapabilities, DnsCapability, RecordSet, Zone, canonical_name, record_set

from .errors import converted
from .options import Route53Options
from .session import client_for

__all__ = ["Route53Dns"]

CAPABILITIES = DnsCapabilities(frozenset(DnsCapability))


def _value_text(raw: Any) -> str:
    # LocalStack returns the SOA value as the text of a dict ("{'Value': '...'}"); unwrap it.
    text = str(raw)
    if text.startswith("{'Value': '") and text.endswith("'}"):
        return text[len("{'Value': '") : -2]
    return text


class Route53Dns(Dns):
    options_model = Route53Options

    def __init__(self, spec: ServiceSpec) -> None:
        self.options: Route53Options = spec.options
        super().__init__(spec.provider, CAPABILITIES, nameserver=self.options.nameserver)
        self._client = client_for(spec, "route53")

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> Route53Dns:
        return cls(spec)

    def close(self) -> None:
        self._client.close()

    def _list_zones(self) -> list[Zone]:
        zones = []
        with converted("list_hosted_zones"):
            for page in self._client.get_paginator("list_hosted_zones").paginate():
                for z in page.get("HostedZones", []):
                    zones.append(
                        Zone(
                            name=canonical_name(z["Name"]),
                            id=z["Id"].rsplit("/", 1)[-1],
                            records=int(z.get("ResourceRecordSetCount", 0)),
                            private=bool(z.get("Config", {}).get("PrivateZone")),
                        )
                    )
        return zones

    def _create_zone(self, zone: str) -> Zone:
        # The caller reference names the zone, so AWS answers a retried create with
        # HostedZoneAlreadyExists instead of making a second zone of the same name.
        reference = "failover-" + hashlib.sha256(zone.encode()).hexdigest()[:24]
        with converted("create_hosted_zone", zone):
            created = self._client.create_hosted_zone(Name=zone, CallerReference=reference)["HostedZone"]
        return Zone(name=zone, id=created["Id"].rsplit("/", 1)[-1], records=2)

    def _delete_zone(self, zone: Zone) -> None:
        # Route53 refuses to delete a zone that still has records of its own.
        records = [r for r in self._list_records(zone) if not (r.name == zone.name and r.type in ("SOA", "NS"))]
        self._apply(zone, [], records)
        with converted("delete_hosted_zone", zone.name):
            self._client.delete_hosted_zone(Id=zone.id)

    def _raw_sets(self, zone: Zone) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with converted("list_resource_record_sets", zone.name):
            for page in self._client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone.id):
                found += page.get("ResourceRecordSets", [])
        return found

    def _list_records(self, zone: Zone) -> list[RecordSet]:
        records = []
        for item in self._raw_sets(zone):
            values = [_value_text(r["Value"]) for r in item.get("ResourceRecords", [])]
            only = None
            if "AliasTarget" in item:
                only = f"Route53 alias to {item['AliasTarget'].get('DNSName', '?')}"
            elif "SetIdentifier" in item:
                only = f"Route53 routing-policy set {item['SetIdentifier']!r}"
            records.append(record_set(item["Name"], item["Type"], item.get("TTL", 0), values, provider_only=only))
        return records

    def _apply(self, zone: Zone, upserts: list[RecordSet], deletes: list[RecordSet]) -> None:
        current = {record.key: record for record in self._list_records(zone)} if deletes else {}
        changes: list[dict[str, Any]] = [
            {"Action": "DELETE", "ResourceRecordSet": self._wire(current[record.key])}
            for record in deletes
            if record.key in current and record.key not in {u.key for u in upserts}
        ]
        changes += [{"Action": "UPSERT", "ResourceRecordSet": self._wire(record)} for record in upserts]
        if not changes:
            return
        with converted("change_resource_record_sets", zone.name):
            self._client.change_resource_record_sets(
                HostedZoneId=zone.id, ChangeBatch={"Comment": "failover", "Changes": changes}
            )

    @staticmethod
    def _wire(record: RecordSet) -> dict[str, Any]:
        return {
            "Name": record.name + ".",
            "Type": record.type,
            "TTL": record.ttl,
            "ResourceRecords": [{"Value": value} for value in record.values],
        }
