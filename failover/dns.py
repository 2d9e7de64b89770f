"""The DNS interface: zones and record sets on one provider, described provider-neutrally.

:class:`Dns` is what every DNS adapter implements. Public methods are the contract; they check
declared capabilities, normalise names and values, and name the provider in errors, then call the
adapter's hooks.

Contract shared by every method:

* Zones are named by their domain (``social.example``), never by a provider's zone id.
* Record names are absolute, lower case, without the trailing dot (``www.social.example``).
* Values are in DNS presentation format: host names inside CNAME, MX, NS, SRV and PTR data end with
  a dot (``10 mail.social.example.``), TXT data is quoted. Adapters convert to and from their
  provider's spelling with :func:`canonical_value`, so two providers' record sets compare equal.
* A missing zone raises :class:`~failover.errors.NotFound`; an undeclared operation raises
  :class:`~failover.errors.NotSupported`.
* The apex SOA and NS record sets belong to the provider hosting the zone: they are listed, but a
  zone copy leaves them alone (:func:`portable_records`).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from pydantic import Field

from .capabilities import Declared, DeclaringService
from .errors import AlreadyExists, ConnectionLost, InvalidRequest, NotFound, NotSupported, ProviderError, Timeout
from .retry import RetryPolicy

__all__ = [
    "PROVIDER_OWNED_TYPES",
    "Dns",
    "DnsCapabilities",
    "DnsCapability",
    "NameserverAddress",
    "RecordSet",
    "Zone",
    "canonical_name",
    "canonical_value",
    "portable_records",
    "query",
    "record_set",
]

NameserverAddress = Annotated[
    str | None,
    Field(
        default=None,
        pattern=r"^[^\s:]+:\d+$",
        description="HOST:PORT of a server answering these zones over DNS, to confirm changes by query",
    ),
]
"""The ``nameserver`` option every DNS adapter takes."""

PROVIDER_OWNED_TYPES = frozenset({"SOA", "NS"})
"""Record types at a zone's apex that the hosting provider writes itself."""

# Types whose data holds host names, and where in the data (field index) the host name is.
_HOST_FIELD = {"CNAME": 0, "NS": 0, "PTR": 0, "DNAME": 0, "MX": 1, "SRV": 3}


class DnsCapability(enum.StrEnum):
    CREATE_ZONE = "create_zone"
    """Zones can be created (and found by name) through the API."""
    DELETE_ZONE = "delete_zone"
    """Zones can be deleted through the API."""
    MULTI_VALUE = "multi_value"
    """A record set holds several values (round-robin A records)."""
    ATOMIC_CHANGES = "atomic_changes"
    """A batch of upserts and deletes is applied all or nothing."""


DnsCapabilities = Declared[DnsCapability]


@dataclass(frozen=True)
class Zone:
    name: str
    id: str
    records: int | None = None
    """Number of record sets, where the provider says without listing them."""
    private: bool = False


@dataclass(frozen=True)
class RecordSet:
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]
    provider_only: str | None = None
    """Why this set exists only on its provider (a Route53 alias, a weighted set...): a zone copy
    cannot carry it and reports it instead."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)

    def __str__(self) -> str:
        return f"{self.name} {self.ttl} {self.type} {' '.join(self.values)}"


def canonical_name(name: str) -> str:
    """``WWW.Social.Example.`` -> ``www.social.example``."""
    return name.strip().rstrip(".").lower()


def canonical_value(record_type: str, value: str) -> str:
    """A value in presentation format, with the host name inside it absolute (ending in a dot)."""
    value = value.strip()
    index = _HOST_FIELD.get(record_type.upper())
    if index is None:
        return value
    fields = value.split()
    if len(fields) <= index:
        return value
    host = fields[index]
    fields[index] = host if host.endswith(".") else host + "."
    fields[index] = fields[index].lower()
    return " ".join(fields)


def record_set(
    name: str, record_type: str, ttl: int, values: Iterable[str], *, provider_only: str | None = None
) -> RecordSet:
    """A record set in canonical form (values sorted, so two providers' sets compare equal)."""
    kind = record_type.upper()
    values = tuple(sorted(canonical_value(kind, v) for v in values))
    return RecordSet(canonical_name(name), kind, int(ttl), values, provider_only)


def portable_records(zone: str, records: Iterable[RecordSet]) -> list[RecordSet]:
    """The record sets a zone copy carries: all but the apex SOA and NS and provider-only sets."""
    apex = canonical_name(zone)
    return [r for r in records if r.provider_only is None and not (r.name == apex and r.type in PROVIDER_OWNED_TYPES)]


def query(server: tuple[str, int], name: str, record_type: str, *, timeout: float = 3.0) -> tuple[str, ...]:
    """Ask the DNS server at ``server`` (host, port) directly, as a resolver would, for one record
    set: its values in canonical form, sorted; empty when the name or type does not exist, or the
    server does not host the zone (it refuses)."""
    host, port = server
    request = dns.message.make_query(canonical_name(name) + ".", record_type.upper())
    try:
        response, _ = dns.query.udp_with_fallback(request, host, port=port, timeout=timeout)
    except dns.exception.Timeout:
        raise Timeout(f"no DNS answer from {host}:{port} within {timeout:.0f} s", operation="query") from None
    except OSError as exc:
        raise ConnectionLost(f"DNS query to {host}:{port} failed: {exc}", operation="query") from None
    if response.rcode() == dns.rcode.REFUSED:
        return ()  # the server does not host that zone (any more)
    if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise ProviderError(f"{host}:{port} answered {dns.rcode.to_text(response.rcode())} for {name}")
    wanted = dns.rdatatype.from_text(record_type.upper())
    values = [item.to_text() for rrset in response.answer if rrset.rdtype == wanted for item in rrset]
    return tuple(sorted(canonical_value(record_type, v) for v in values))


class Dns(DeclaringService[DnsCapability], abc.ABC):
    """Zones and record sets of one provider."""

    def __init__(self, name: str, capabilities: DnsCapabilities, *, nameserver: str | None = None) -> None:
        super().__init__(name, capabilities)
        self._nameserver = nameserver
        self.retry = RetryPolicy()
        """DNS APIs throttle hard (Route53: five requests a second); every call is retried by it."""

    # -- the contract ------------------------------------------------------------------------------

    def list_zones(self) -> list[Zone]:
        """Every zone of the account, sorted by name."""
        try:
            return sorted(self.retry.call(self._list_zones), key=lambda z: z.name)
        except ProviderError as error:
            raise self._named(error, "list_zones") from None

    def find_zone(self, zone: str) -> Zone | None:
        """The zone named ``zone``, or None."""
        wanted = canonical_name(zone)
        return next((z for z in self.list_zones() if z.name == wanted), None)

    def create_zone(self, zone: str) -> Zone:
        """Create the zone (CREATE_ZONE). Idempotent: an existing zone of that name is returned."""
        self._require(DnsCapability.CREATE_ZONE, "create_zone")
        existing = self.find_zone(zone)
        if existing is not None:
            return existing
        try:
            return self.retry.call(lambda: self._create_zone(canonical_name(zone)))
        except AlreadyExists:
            # A retried create whose first attempt did arrive.
            return self._zone(zone)
        except ProviderError as error:
            raise self._named(error, "create_zone") from None

    def delete_zone(self, zone: str) -> None:
        """Delete the zone and its records (DELETE_ZONE). Idempotent."""
        self._require(DnsCapability.DELETE_ZONE, "delete_zone")
        found = self.find_zone(zone)
        if found is None:
            return
        try:
            self.retry.call(lambda: self._delete_zone(found))
        except NotFound:
            return
        except ProviderError as error:
            raise self._named(error, "delete_zone") from None

    def list_records(self, zone: str) -> list[RecordSet]:
        """Every record set of the zone (apex SOA and NS included), sorted by name and type."""
        found = self._zone(zone)
        try:
            return sorted(self.retry.call(lambda: self._list_records(found)), key=lambda r: r.key)
        except ProviderError as error:
            raise self._named(error, "list_records") from None

    def apply(self, zone: str, upserts: Sequence[RecordSet] = (), deletes: Sequence[RecordSet] = ()) -> None:
        """Replace the record sets ``upserts`` (create or overwrite each whole set) and remove the
        sets named by ``deletes`` (name and type; a set already gone is not an error). All or
        nothing where ATOMIC_CHANGES is declared."""
        apex = canonical_name(zone)
        for record in (*upserts, *deletes):
            if record.name != apex and not record.name.endswith("." + apex):
                raise InvalidRequest(f"record {record.name} is not in zone {apex}", provider=self.name)
        for record in upserts:
            if not record.values:
                raise InvalidRequest(f"record set {record.name} {record.type} has no values", provider=self.name)
            if len(record.values) > 1:
                self._require(DnsCapability.MULTI_VALUE, "apply")
        if not upserts and not deletes:
            return
        found = self._zone(zone)
        try:
            # Upserts replace whole sets and deletes tolerate missing ones, so a retry is harmless.
            self.retry.call(lambda: self._apply(found, list(upserts), list(deletes)))
        except ProviderError as error:
            raise self._named(error, "apply") from None

    def nameserver(self) -> tuple[str, int] | None:
        """An authoritative server for this provider's zones that answers DNS queries directly
        (host, port), for confirming a change with a real query; None when there is none to ask."""
        if not self._nameserver:
            return None
        host, _, port = self._nameserver.rpartition(":")
        return host, int(port)

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Dns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _zone(self, zone: str) -> Zone:
        found = self.find_zone(zone)
        if found is None:
            raise NotFound(f"zone {canonical_name(zone)} not found", provider=self.name)
        return found

    # -- adapter hooks -----------------------------------------------------------------------------
    #
    # What an adapter implements. Every hook raises failover errors only (the adapter converts its
    # SDK's in one place): NotFound for a zone that is not there, AuthError for refused credentials,
    # ProviderError with ``retryable`` set for throttling and outages (the public methods retry those
    # with ``self.retry``), NotSupported for an operation the provider cannot do. Hooks are called
    # with canonical names (lower case, no trailing dot) and must return them.

    @abc.abstractmethod
    def _list_zones(self) -> list[Zone]:
        """Every zone of the account, in any order, names canonical. Private zones are included
        with ``private=True``; ``records`` is filled only where the provider says without listing."""

    @abc.abstractmethod
    def _list_records(self, zone: Zone) -> list[RecordSet]:
        """Every record set of ``zone`` (apex SOA and NS included), in canonical form (build them
        with :func:`record_set`), in any order. Records only this provider can hold (aliases,
        routing policies) carry ``provider_only`` with a short description. Raises NotFound when
        the zone is gone."""

    @abc.abstractmethod
    def _apply(self, zone: Zone, upserts: list[RecordSet], deletes: list[RecordSet]) -> None:
        """Replace each set in ``upserts`` whole (create it if missing; its values and TTL after
        the call are exactly the given ones) and remove the sets named by ``deletes`` (name and
        type; one already gone is not an error). A set in both lists is replaced. Called again
        with the same arguments after a failure, it must reach the same end state. All or nothing
        where the adapter declares ATOMIC_CHANGES."""

    def _create_zone(self, zone: str) -> Zone:
        """Create ``zone`` and return it (CREATE_ZONE), with the apex SOA and NS sets the provider
        writes itself. Raises AlreadyExists when it exists (the caller then returns the existing
        zone)."""
        raise NotSupported(DnsCapability.CREATE_ZONE.value, provider=self.name)

    def _delete_zone(self, zone: Zone) -> None:
        """Delete ``zone`` with all its record sets (DELETE_ZONE). Raises NotFound when it is
        already gone (the caller treats that as done)."""
        raise NotSupported(DnsCapability.DELETE_ZONE.value, provider=self.name)
