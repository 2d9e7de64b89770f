"""The ``libcloud`` DNS adapter: any apache-libcloud DNS driver by name, writing whole record sets
through libcloud's one-value records as ``dns.yaml`` describes per driver. libcloud's Zone and
Record never leave this module."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal

from libcloud.dns.base import DNSDriver
from libcloud.dns.providers import get_driver
from pydantic import BaseModel, ConfigDict

from failover.config import ServiceSpec
from failover.dns import (
    Dns,
    DnsCapabilities,
    DnsCapability,
    RecordSet,
    Zone,
    canonical_name,
    canonical_value,
    record_set,
)
from failover.errors import NotFound
from failover.yamlio import load_yaml

from .drivers import ThreadDrivers, connection_kwargs, profile_for
from .errors import converted
from .options import LibcloudDnsOptions

__all__ = ["LibcloudDns", "dns_profiles"]


class _CreateZone(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    extra: dict[str, Any] = {}


class DnsDriverProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    endpoint: Literal["host_port", "none"]
    credentials: Literal["key_secret", "secret_only"]
    record_names: Literal["absolute_dot", "relative"]
    zone_names: Literal["absolute_dot", "plain"] = "plain"
    set_semantics: Literal["replace", "per_value"]
    operations: tuple[DnsCapability, ...]
    create_zone: _CreateZone = _CreateZone()
    driver_args: dict[str, Any] = {}
    tested: bool


class _ProfileFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drivers: dict[str, DnsDriverProfile]


@functools.cache
def dns_profiles() -> dict[str, DnsDriverProfile]:
    text = resources.files(__package__).joinpath("dns.yaml").read_text(encoding="utf-8")
    return _ProfileFile.model_validate(load_yaml(text, "dns.yaml").data).drivers


class LibcloudDns(Dns):
    options_model = LibcloudDnsOptions

    def __init__(self, name: str, options: LibcloudDnsOptions, *, make: Callable[[], DNSDriver]) -> None:
        self.profile = profile_for(dns_profiles(), options.driver, name, "DNS")
        super().__init__(name, DnsCapabilities(frozenset(self.profile.operations)), nameserver=options.nameserver)
        self.options = options
        self._drivers = ThreadDrivers(make)
        self._driver  # noqa: B018 - build one now so bad arguments fail at construction

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> LibcloudDns:
        options: LibcloudDnsOptions = spec.options
        profile = dns_profiles().get(options.driver)
        creds = spec.credentials()
        kwargs = connection_kwargs(
            spec.endpoint,
            profile.endpoint if profile else "none",
            base=profile.driver_args if profile else None,
            extra=options.driver_args,
        )
        secret = creds.secret.reveal() if creds.secret else None
        args = (secret,) if profile is not None and profile.credentials == "secret_only" else (creds.key, secret)
        with converted("connect"):
            driver_class: Callable[..., DNSDriver] = get_driver(options.driver)
        return cls(spec.provider, options, make=lambda: driver_class(*args, **kwargs))

    @property
    def _driver(self) -> Any:
        return self._drivers.get()

    # -- names -------------------------------------------------------------------------------------

    def _absolute(self, name: str, zone: Zone) -> str:
        if self.profile.record_names == "absolute_dot":
            return canonical_name(name)
        return zone.name if name in ("", "@", None) else f"{canonical_name(name)}.{zone.name}"

    def _driver_name(self, name: str, zone: Zone) -> str:
        if self.profile.record_names == "absolute_dot":
            return name + "."
        return "" if name == zone.name else name[: -len(zone.name) - 1]

    def _libcloud_zone(self, zone: Zone) -> Any:
        with converted("get_zone", zone.name):
            return self._driver.get_zone(zone.id)

    # -- hooks -------------------------------------------------------------------------------------

    def _list_zones(self) -> list[Zone]:
        with converted("list_zones"):
            zones = self._driver.list_zones()
        return [Zone(name=canonical_name(z.domain), id=str(z.id)) for z in zones]

    def _create_zone(self, zone: str) -> Zone:
        with converted("create_zone", zone):
            domain = zone + "." if self.profile.zone_names == "absolute_dot" else zone
            self._driver.create_zone(domain, extra=dict(self.profile.create_zone.extra))
        # Read the id back: libcloud's PowerDNS driver returns "name.." for a name given with its dot.
        found = next((z for z in self._list_zones() if z.name == zone), None)
        if found is None:
            raise NotFound(f"zone {zone} was created but is not listed", provider=self.name)
        return found

    def _delete_zone(self, zone: Zone) -> None:
        with converted("delete_zone", zone.name):
            self._driver.delete_zone(self._libcloud_zone(zone))

    def _records(self, zone: Zone) -> dict[tuple[str, str], list[Any]]:
        with converted("list_records", zone.name):
            records = self._driver.list_records(self._libcloud_zone(zone))
        grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for record in records:
            grouped[(self._absolute(record.name, zone), str(record.type))].append(record)
        return grouped

    def _list_records(self, zone: Zone) -> list[RecordSet]:
        return [
            record_set(name, kind, int(items[0].ttl or 0), [str(r.data) for r in items])
            for (name, kind), items in self._records(zone).items()
        ]

    def _apply(self, zone: Zone, upserts: list[RecordSet], deletes: list[RecordSet]) -> None:
        target = self._libcloud_zone(zone)
        existing = self._records(zone)
        replaced = {u.key for u in upserts}
        for record in deletes:
            if record.key not in replaced:
                for item in existing.get(record.key, []):
                    with converted("delete_record", record.name):
                        self._driver.delete_record(item)
        for record in upserts:
            name = self._driver_name(record.name, zone)
            current = existing.get(record.key, [])
            if self.profile.set_semantics == "replace":
                # One call replaces the set; the base class allowed one value only (no MULTI_VALUE).
                with converted("create_record", record.name):
                    self._driver.create_record(name, target, record.type, record.values[0], extra={"ttl": record.ttl})
                continue
            # One record per value: add the new values first, then drop the old ones, so the name
            # never resolves to nothing while it changes.
            have = {canonical_value(record.type, str(item.data)): item for item in current}
            for value in record.values:
                with converted("create_record", record.name):
                    if value not in have:
                        self._driver.create_record(name, target, record.type, value, extra={"ttl": record.ttl})
                    elif have[value].ttl != record.ttl:
                        self._driver.update_record(have[value], name, record.type, value, extra={"ttl": record.ttl})
            for value, item in have.items():
                if value not in record.values:
                    with converted("delete_record", record.name):
                        self._driver.delete_record(item)
