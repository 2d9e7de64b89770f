"""The ``powerdns`` DNS adapter: PowerDNS Authoritative's HTTP API (v1), through httpx.

libcloud's PowerDNS driver writes one value per call and each call replaces the whole set, so it
cannot hold a round-robin A record of several addresses; this adapter writes whole record sets
with the API's PATCH, which PowerDNS applies atomically."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from failover.config import ServiceSpec
from failover.dns import Dns, DnsCapabilities, DnsCapability, RecordSet, Zone, canonical_name, record_set
from failover.errors import ConfigError

from .errors import ApiError, converted
from .options import PowerDnsOptions

__all__ = ["PowerDns"]

CAPABILITIES = DnsCapabilities(frozenset(DnsCapability))


class PowerDns(Dns):
    options_model = PowerDnsOptions

    def __init__(self, spec: ServiceSpec) -> None:
        self.options: PowerDnsOptions = spec.options
        super().__init__(spec.provider, CAPABILITIES, nameserver=self.options.nameserver)
        if not spec.endpoint:
            raise ConfigError(
                f"provider {spec.provider!r}: the powerdns DNS service needs an endpoint",
                hint="the server's API URL, e.g. endpoint: http://127.0.0.1:8081",
            )
        creds = spec.credentials()
        key = creds.secret.reveal() if creds.secret else ""
        verify: bool | str = spec.ca_bundle or spec.verify_tls
        self._base = f"{spec.endpoint.rstrip('/')}/api/v1/servers/{quote(self.options.server_id, safe='')}"
        self._http = httpx.Client(
            headers={"X-API-Key": key, "Accept": "application/json"},
            timeout=self.options.timeout,
            verify=verify,
            trust_env=False,
        )

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> PowerDns:
        return cls(spec)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, operation: str, target: str = "", body: Any = None) -> Any:
        with converted(operation, target):
            response = self._http.request(method, self._base + path, json=body)
            if response.status_code >= 400:
                raise ApiError(response)
        return response.json() if response.content else None

    def _list_zones(self) -> list[Zone]:
        zones = self._call("GET", "/zones", "list_zones")
        return [Zone(name=canonical_name(z["name"]), id=z["id"]) for z in zones]

    def _create_zone(self, zone: str) -> Zone:
        body = {"name": zone + ".", "kind": "Native", "nameservers": self.options.zone_nameservers}
        created = self._call("POST", "/zones", "create_zone", zone, body)
        return Zone(name=zone, id=created["id"])

    def _delete_zone(self, zone: Zone) -> None:
        self._call("DELETE", f"/zones/{quote(zone.id, safe='')}", "delete_zone", zone.name)

    def _list_records(self, zone: Zone) -> list[RecordSet]:
        found = self._call("GET", f"/zones/{quote(zone.id, safe='')}", "list_records", zone.name)
        return [
            record_set(r["name"], r["type"], r["ttl"], [v["content"] for v in r["records"] if not v.get("disabled")])
            for r in found.get("rrsets", [])
            if r.get("records")
        ]

    def _apply(self, zone: Zone, upserts: list[RecordSet], deletes: list[RecordSet]) -> None:
        replaced = {u.key for u in upserts}
        rrsets: list[dict[str, Any]] = [
            {"name": d.name + ".", "type": d.type, "changetype": "DELETE"} for d in deletes if d.key not in replaced
        ]
        rrsets += [
            {
                "name": u.name + ".",
                "type": u.type,
                "ttl": u.ttl,
                "changetype": "REPLACE",
                "records": [{"content": v, "disabled": False} for v in u.values],
            }
            for u in upserts
        ]
        self._call("PATCH", f"/zones/{quote(zone.id, safe='')}", "apply", zone.name, {"rrsets": rrsets})
