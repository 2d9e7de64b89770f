"""Bucket settings through libcloud drivers, as data: drivers.yaml names, per setting, the dialect a
driver's service holds it in, and these classes read, write and translate that dialect with
requests on the driver's own (signed) connection. No dialect knows which provider it serves.

Every dialect has the same three operations: ``read`` (the setting in the neutral, S3-shaped form
of failover.settings), ``write`` (an unset value removes it) and ``as_held`` (a neutral value as
the service will hold and read it back, with what the translation changed or cannot keep).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from failover.errors import ProviderError
from failover.headermeta import decode_header_token, decode_value, encode_header_token, encode_value
from failover.settings import CORS_METHODS, SettingOutcome, cors_as_one_rule, cors_rules_merged

__all__ = ["Requester", "SettingDialect", "SettingRequest"]


class SettingRequest(BaseModel):
    """One request through the driver's connection: ``path`` with {bucket} in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "HEAD", "PUT", "POST"]
    path: str = "/{bucket}"
    params: dict[str, str] = {}
    headers: dict[str, str] = {}


class Requester(Protocol):
    """Sends ``request`` for ``bucket`` (with extra ``headers`` and a ``body``); the response."""

    def __call__(
        self, bucket: str, request: SettingRequest, *, headers: Mapping[str, str] | None = None, body: str | None = None
    ) -> Any: ...


def _headers(response: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in response.headers.items()}


class _Dialect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shared: ClassVar[bool] = False
    """The service keeps the setting for more than one bucket (StoreCapabilities.settings_shared)."""

    def read(self, send: Requester, bucket: str) -> Any:
        raise NotImplementedError

    def write(self, send: Requester, bucket: str, value: Any) -> None:
        raise NotImplementedError

    def as_held(self, send: Requester, bucket: str, setting: str, value: Any) -> tuple[Any, list[SettingOutcome]]:
        """``value`` as the service holds it (default: as it is, nothing changed)."""
        return value, []


class SettingRead(SettingRequest):
    header: str
    """The reply header that holds the setting."""
    equals: str | None = None
    contains: str | None = None


class FlagDialect(_Dialect):
    """A setting that is on or off (public read, versioning): a request switches it on, another
    off, and a reply header says which it is."""

    kind: Literal["flag"]
    write_request: SettingRequest = Field(alias="write")
    clear_request: SettingRequest = Field(alias="clear")
    read_request: SettingRead = Field(alias="read")

    def read(self, send: Requester, bucket: str) -> bool:
        check = self.read_request
        value = _headers(send(bucket, check)).get(check.header.lower(), "")
        held = (check.equals is None or value == check.equals) and (
            check.contains is None or check.contains in value.split(",")
        )
        return bool(value) and held

    def write(self, send: Requester, bucket: str, value: Any) -> None:
        send(bucket, self.write_request if value else self.clear_request)


class ContainerMetaCors(_Dialect):
    """CORS as a container's metadata (OpenStack Swift): one space-separated origin list, one max
    age and one list of exposed headers per container; every method and request header is allowed
    for those origins. S3's rules are translated to that one rule (failover.settings.cors_as_one_rule)."""

    kind: Literal["container_meta_cors"]
    read_request: SettingRequest = Field(alias="read")
    write_request: SettingRequest = Field(alias="write")
    origins: str
    max_age: str
    expose: str
    remove_prefix: str
    """What a header name starts with to remove the metadata item named by the rest."""

    def _remove(self, header: str) -> str:
        return self.remove_prefix + header.removeprefix("X-")

    def read(self, send: Requester, bucket: str) -> tuple[Mapping[str, Any], ...]:
        found = _headers(send(bucket, self.read_request))
        origins = found.get(self.origins.lower(), "").split()
        if not origins:
            return ()
        rule: dict[str, Any] = {
            "AllowedOrigins": origins,
            "AllowedMethods": list(CORS_METHODS),
            "AllowedHeaders": ["*"],
        }
        if found.get(self.expose.lower(), "").split():
            rule["ExposeHeaders"] = found[self.expose.lower()].split()
        if found.get(self.max_age.lower(), "").strip().isdigit() and int(found[self.max_age.lower()]):
            rule["MaxAgeSeconds"] = int(found[self.max_age.lower()])
        return (rule,)

    def write(self, send: Requester, bucket: str, value: Any) -> None:
        rule: Mapping[str, Any] = value[0] if value else {}
        headers: dict[str, str] = {}
        for header, items in (
            (self.origins, rule.get("AllowedOrigins")),
            (self.expose, rule.get("ExposeHeaders")),
            (self.max_age, [str(rule["MaxAgeSeconds"])] if rule.get("MaxAgeSeconds") else None),
        ):
            if items:
                headers[header] = " ".join(items)
            else:
                headers[self._remove(header)] = "x"
        send(bucket, self.write_request, headers=headers)

    def as_held(self, send: Requester, bucket: str, setting: str, value: Any) -> tuple[Any, list[SettingOutcome]]:
        if not value:
            return (), []
        rules, notes = cors_as_one_rule(value)
        if not rules:
            return (), [SettingOutcome(setting, "not_carried", "; ".join(notes))]
        return rules, [SettingOutcome(setting, "translated", "; ".join(["one origin list for the container", *notes]))]


class ContainerMetaTags(_Dialect):
    """Tags as a container's metadata items (OpenStack Swift), names escaped so that they survive
    the server's case folding (failover.headermeta.encode_header_token); items with ``reserved``
    names are the service's own settings (CORS, temporary URL keys...), never tags."""

    kind: Literal["container_meta_tags"]
    read_request: SettingRequest = Field(alias="read")
    write_request: SettingRequest = Field(alias="write")
    prefix: str
    remove_prefix: str
    reserved: tuple[str, ...]
    """Lower-case name prefixes (after ``prefix``) of items that are not tags."""
    max_name_bytes: int
    max_value_bytes: int
    empty_value_removes: bool = False

    def _current(self, send: Requester, bucket: str) -> dict[str, tuple[str, str]]:
        """Tag name -> (the stored name, its value)."""
        found: dict[str, tuple[str, str]] = {}
        start = self.prefix.lower()
        for header, value in _headers(send(bucket, self.read_request)).items():
            stored = header[len(start) :] if header.startswith(start) else ""
            if stored and not stored.startswith(self.reserved):
                found[decode_header_token(stored)] = (stored, decode_value(value))
        return found

    def read(self, send: Requester, bucket: str) -> dict[str, str]:
        return {name: value for name, (_, value) in self._current(send, bucket).items()}

    def write(self, send: Requester, bucket: str, value: Any) -> None:
        wanted: Mapping[str, str] = value or {}
        headers = {
            self.remove_prefix + stored: "x"
            for name, (stored, _) in self._current(send, bucket).items()
            if name not in wanted
        }
        headers.update({self.prefix + encode_header_token(k): encode_value(v) for k, v in wanted.items()})
        if headers:
            send(bucket, self.write_request, headers=headers)

    def as_held(self, send: Requester, bucket: str, setting: str, value: Any) -> tuple[Any, list[SettingOutcome]]:
        held: dict[str, str] = {}
        outcomes: list[SettingOutcome] = []
        for name, tag in (value or {}).items():
            stored = encode_header_token(name)
            if len(stored) > self.max_name_bytes or len(encode_value(tag)) > self.max_value_bytes:
                why = f"longer than the target's {self.max_name_bytes}-byte names or {self.max_value_bytes}-byte values"
            elif stored.startswith(self.reserved):
                why = "the target reserves that name for a setting of its own"
            elif not tag and self.empty_value_removes:
                why = "an empty value removes a metadata item on the target"
            else:
                held[name] = tag
                continue
            outcomes.append(SettingOutcome(setting, "not_carried", f"tag {name!r}: {why}"))
        return held, outcomes


class ServiceCors(_Dialect):
    """CORS rules kept for a whole storage account's service, not per bucket (Azure Blob storage's
    service properties, XML). A bucket's rules are added to the account's (rules it has already
    are not added twice); so a bucket reads back every rule of the account."""

    kind: Literal["service_properties_cors"]
    shared: ClassVar[bool] = True
    read_request: SettingRequest = Field(alias="read")
    write_request: SettingRequest = Field(alias="write")
    max_rules: int

    def read(self, send: Requester, bucket: str) -> tuple[Mapping[str, Any], ...]:
        root = send(bucket, self.read_request).object  # libcloud parsed the XML reply
        if not isinstance(root, ElementTree.Element):
            raise ProviderError("the service properties reply is not XML", target=bucket)
        rules: list[dict[str, Any]] = []
        for element in root.iterfind("./Cors/CorsRule"):

            def items(name: str, of: ElementTree.Element = element) -> list[str]:
                return [v.strip() for v in (of.findtext(name) or "").split(",") if v.strip()]

            rule: dict[str, Any] = {
                "AllowedOrigins": items("AllowedOrigins"),
                "AllowedMethods": items("AllowedMethods"),
            }
            for name, neutral in (("AllowedHeaders", "AllowedHeaders"), ("ExposedHeaders", "ExposeHeaders")):
                if items(name):
                    rule[neutral] = items(name)
            age = (element.findtext("MaxAgeInSeconds") or "0").strip()
            if age.isdigit() and int(age):
                rule["MaxAgeSeconds"] = int(age)
            rules.append(rule)
        return tuple(rules)

    def write(self, send: Requester, bucket: str, value: Any) -> None:
        root = ElementTree.Element("StorageServiceProperties")
        cors = ElementTree.SubElement(root, "Cors")
        for rule in value or ():
            element = ElementTree.SubElement(cors, "CorsRule")
            for name, neutral in (
                ("AllowedOrigins", "AllowedOrigins"),
                ("AllowedMethods", "AllowedMethods"),
                ("AllowedHeaders", "AllowedHeaders"),
                ("ExposedHeaders", "ExposeHeaders"),
            ):
                ElementTree.SubElement(element, name).text = ",".join(rule.get(neutral) or [])
            ElementTree.SubElement(element, "MaxAgeInSeconds").text = str(rule.get("MaxAgeSeconds") or 0)
        body = ElementTree.tostring(root, encoding="unicode", xml_declaration=True)
        send(bucket, self.write_request, body=body)

    def as_held(self, send: Requester, bucket: str, setting: str, value: Any) -> tuple[Any, list[SettingOutcome]]:
        if not value:
            return (), []  # removing a bucket's CORS removes the account's: only ever asked for explicitly
        existing = self.read(send, bucket)
        merged, new, notes = cors_rules_merged(existing, value)
        if len(merged) > self.max_rules:
            why = (
                f"the account has {len(existing)} CORS rule(s) and holds at most {self.max_rules}: "
                f"{new} more do not fit"
            )
            return (), [SettingOutcome(setting, "not_carried", why)]
        detail = (
            f"added to the storage account's CORS rules, which apply to every container of the account "
            f"({new} new, {len(merged)} there now)"
        )
        return merged, [SettingOutcome(setting, "translated", "; ".join([detail, *notes]))]


SettingDialect = Annotated[
    FlagDialect | ContainerMetaCors | ContainerMetaTags | ServiceCors, Field(discriminator="kind")
]
