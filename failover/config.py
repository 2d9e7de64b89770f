"""The providers file: named providers, each offering storage, compute and/or DNS services.

::

    version: 1
    providers:
      aws:                          # a provider name used on the command line: aws:my-bucket
        region: us-east-1           # defaults shared by the services below
        endpoint: http://127.0.0.1:4566
        credentials: {key_env: AWS_ACCESS_KEY_ID, secret_env: AWS_SECRET_ACCESS_KEY}
        storage: {type: s3, options: {vendor: localstack}}
        compute: {type: ec2}
      onprem:                       # shorthand: top-level type/endpoint/options = the storage service
        type: s3
        endpoint: http://127.0.0.1:8333
        credentials: {profile: onprem}
        options: {vendor: seaweedfs}

Credentials are only ever references: names of environment variables (``key_env``, ``secret_env``,
``token_env``) or an AWS profile. A value written inline is rejected, with a hint saying where to
put it instead.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .registry import SERVICES, adapter, load_options_model
from .secrets import Secret
from .yamlio import Loaded, YamlError, load_yaml_file

__all__ = [
    "CredentialsRef",
    "ProviderConfig",
    "ProvidersFile",
    "ResolvedCredentials",
    "ServiceConfig",
    "ServiceSpec",
    "default_providers_path",
    "load_providers",
    "validation_messages",
]

ENV_PROVIDERS = "FAILOVER_PROVIDERS"

_INLINE_SECRET_NAMES = {
    "key",
    "secret",
    "token",
    "password",
    "access_key",
    "secret_key",
    "access_key_id",
    "secret_access_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "session_token",
    "api_key",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CredentialsRef(_Strict):
    """Where credentials come from. Values are never written here, only where to find them."""

    profile: str | None = Field(default=None, description="AWS shared-config profile name")
    key_env: str | None = Field(default=None, description="env var holding the access key id / user / account")
    secret_env: str | None = Field(default=None, description="env var holding the secret key / password / API key")
    token_env: str | None = Field(default=None, description="env var holding a session token")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_values(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            inline = sorted(k for k in data if str(k).lower() in _INLINE_SECRET_NAMES)
            if inline:
                raise ValueError(
                    f"credential values may not be written in the providers file ({', '.join(inline)}); "
                    "put each value in an environment variable and name it with key_env / secret_env / "
                    "token_env, or use an AWS profile"
                )
        return data

    @field_validator("key_env", "secret_env", "token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError(f"{value!r} is not an environment variable name")
        return value


@dataclass(frozen=True)
class ResolvedCredentials:
    """Credentials read from the environment. Secrets stay wrapped until handed to an SDK."""

    key: str | None = None
    secret: Secret | None = None
    token: Secret | None = None
    profile: str | None = None

    @property
    def empty(self) -> bool:
        return self.key is None and self.secret is None and self.profile is None


def _endpoint_shape(value: str | None) -> str | None:
    """Refuse, at load (so with file:line), an endpoint that is not a URL or that carries
    credentials in its user info. The message never repeats the value of a credential."""
    if value is None:
        return value
    try:
        parsed = urllib.parse.urlsplit(value)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"endpoint is not a valid URL ({exc})") from None
    if parsed.username is not None or parsed.password is not None:
        raise ValueError(
            "the endpoint holds credentials (user:password@host); credentials may not be written in the providers "
            "file: reference them with credentials: {key_env: ..., secret_env: ...}"
        )
    return value


class ServiceConfig(_Strict):
    type: str
    endpoint: str | None = None
    region: str | None = None
    credentials: CredentialsRef | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    verify_tls: bool = True
    ca_bundle: str | None = None
    allow_plain_http: bool = False
    """Plain http:// is refused for anything but loopback unless this is set."""

    _endpoint = field_validator("endpoint")(classmethod(lambda cls, value: _endpoint_shape(value)))


class ProviderConfig(_Strict):
    region: str | None = None
    endpoint: str | None = None
    credentials: CredentialsRef | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    allow_plain_http: bool = False
    description: str | None = None
    storage: ServiceConfig | None = None
    compute: ServiceConfig | None = None
    dns: ServiceConfig | None = None
    account: ServiceConfig | None = None
    feed: ServiceConfig | None = None

    _endpoint = field_validator("endpoint")(classmethod(lambda cls, value: _endpoint_shape(value)))

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # "type:" (with "options:") at the top describes the storage service.
        if isinstance(data, Mapping) and "type" in data:
            data = dict(data)
            if "storage" in data:
                raise ValueError("give either a top-level 'type' (storage shorthand) or a 'storage:' block, not both")
            block = {"type": data.pop("type")}
            if "options" in data:
                block["options"] = data.pop("options")
            data["storage"] = block
        elif isinstance(data, Mapping) and "options" in data:
            raise ValueError("'options' belongs to a service: put it under storage:, compute: or dns:")
        return data

    @model_validator(mode="after")
    def _has_a_service(self) -> ProviderConfig:
        if not any(getattr(self, service) for service in SERVICES):
            raise ValueError(
                "a provider needs at least one service: storage, compute, dns or account (or a top-level type)"
            )
        return self


class ProvidersFile(_Strict):
    version: int = 1
    providers: dict[str, ProviderConfig]

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only version 1 is understood")
        return value

    @field_validator("providers")
    @classmethod
    def _names(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in value:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"provider name {name!r} may only use letters, digits, '-' and '_'")
        return value


@dataclass(frozen=True)
class ServiceSpec:
    """Everything an adapter needs to connect: the resolved, validated configuration of one service."""

    provider: str
    service: str
    type: str
    endpoint: str | None
    region: str | None
    options: Any
    credentials_ref: CredentialsRef | None
    verify_tls: bool = True
    ca_bundle: str | None = None

    def credentials(self, environ: Mapping[str, str] | None = None) -> ResolvedCredentials:
        """Read the referenced credentials. Raises ConfigError naming the variable that is missing."""
        env = os.environ if environ is None else environ
        ref = self.credentials_ref
        if ref is None:
            return ResolvedCredentials()

        def read(field: str, name: str | None) -> str | None:
            if name is None:
                return None
            value = env.get(name)
            if not value:
                raise ConfigError(
                    f"provider {self.provider!r}: environment variable {name} ({field}) is not set",
                    hint=f'export {name}=... before running, or for the lab: eval "$(failover lab env)"',
                )
            return value

        key = read("credentials.key_env", ref.key_env)
        secret = read("credentials.secret_env", ref.secret_env)
        token = read("credentials.token_env", ref.token_env)
        return ResolvedCredentials(
            key=key,
            secret=Secret(secret) if secret is not None else None,
            token=Secret(token) if token is not None else None,
            profile=ref.profile,
        )

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary (credential references only, never values)."""
        ref = self.credentials_ref
        return {
            "provider": self.provider,
            "service": self.service,
            "type": self.type,
            "endpoint": self.endpoint,
            "region": self.region,
            "credentials": ref.model_dump(exclude_none=True) if ref else None,
        }


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str, *, allow_plain_http: bool, where: str) -> None:
    try:
        parsed = urllib.parse.urlsplit(endpoint)
        parsed.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"{where}: endpoint is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{where}: endpoint {endpoint!r} is not an http(s) URL")
    if parsed.scheme == "http" and not allow_plain_http and not _is_loopback(parsed.hostname):
        raise ConfigError(
            f"{where}: plain http:// to {parsed.hostname} would send requests unencrypted",
            hint="use https://, or set allow_plain_http: true on this provider if the network is trusted",
        )


@dataclass(frozen=True)
class Providers:
    """A loaded providers file."""

    path: str
    file: ProvidersFile
    loaded: Loaded | None = None

    @property
    def names(self) -> list[str]:
        return sorted(self.file.providers)

    def get(self, name: str) -> ProviderConfig:
        try:
            return self.file.providers[name]
        except KeyError:
            raise ConfigError(
                f"unknown provider {name!r} (in {self.path})",
                hint=f"known providers: {', '.join(self.names) or 'none'}",
            ) from None

    def services(self, name: str) -> list[str]:
        provider = self.get(name)
        return [service for service in SERVICES if getattr(provider, service) is not None]

    def spec(self, name: str, service: str) -> ServiceSpec:
        provider = self.get(name)
        block: ServiceConfig | None = getattr(provider, service)
        if block is None:
            raise ConfigError(
                f"provider {name!r} has no {service} service",
                hint=f"add a '{service}:' block to it in {self.path}",
            )
        where = f"{self.path}: providers.{name}.{service}"
        entry = adapter(service, block.type)
        model = load_options_model(service, block.type)
        try:
            options = model.model_validate(block.options)
        except ValidationError as exc:
            details = "; ".join(validation_messages(exc, self.loaded, ("providers", name, service, "options")))
            raise ConfigError(f"{where}.options: {details}") from None
        if block.endpoint and not entry.remote:
            raise ConfigError(f"{where}: a {block.type} {service} service takes no endpoint", hint="remove it")
        endpoint = (block.endpoint or provider.endpoint) if entry.remote else None
        allow_http = block.allow_plain_http or provider.allow_plain_http
        if endpoint:
            check_endpoint(endpoint, allow_plain_http=allow_http, where=where)
        return ServiceSpec(
            provider=name,
            service=service,
            type=entry.type,
            endpoint=endpoint,
            region=block.region or provider.region,
            options=options,
            credentials_ref=block.credentials or provider.credentials,
            verify_tls=block.verify_tls and provider.verify_tls,
            ca_bundle=block.ca_bundle or provider.ca_bundle,
        )

    def validate_all(self) -> None:
        """Resolve every service of every provider, so a bad option fails before anything runs."""
        for name in self.names:
            for service in self.services(name):
                self.spec(name, service)


def validation_messages(exc: ValidationError, loaded: Loaded | None, prefix: tuple[str | int, ...] = ()) -> list[str]:
    """One line per pydantic error: ``file:line:col: dotted.path: message``."""
    lines = []
    for error in exc.errors():
        path = (*prefix, *error["loc"])
        dotted = ".".join(str(part) for part in path) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        location = loaded.locate(path) + ": " if loaded is not None else ""
        lines.append(f"{location}{dotted}: {message}")
    return lines


def default_providers_path() -> Path | None:
    explicit = os.environ.get(ENV_PROVIDERS)
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "failover" / "providers.yaml"
    return home if home.exists() else None


def load_providers(path: Path | None = None) -> Providers:
    """Load and validate a providers file (``path``, else $FAILOVER_PROVIDERS, else
    ~/.config/failover/providers.yaml)."""
    path = path or default_providers_path()
    if path is None:
        raise ConfigError(
            "no providers file",
            hint='pass --providers FILE, set FAILOVER_PROVIDERS, or for the lab run: eval "$(failover lab env)"',
        )
    try:
        loaded = load_yaml_file(path)
    except YamlError as exc:
        raise ConfigError(
            exc.message, hint="the providers file is one plain YAML document: version: 1 and providers: {NAME: ...}"
        ) from None
    if not isinstance(loaded.data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'providers:' key")
    try:
        parsed = ProvidersFile.model_validate(loaded.data)
    except ValidationError as exc:
        lines = validation_messages(exc, loaded)
        raise ConfigError(
            f"{path}: invalid providers file\n  " + "\n  ".join(lines),
            hint="fix the fields at the lines shown (the README's 'The providers file' section lists them)",
        ) from None
    providers = Providers(path=str(path), file=parsed, loaded=loaded)
    for name in providers.names:
        for service in providers.services(name):
            block = getattr(providers.get(name), service)
            try:
                adapter(service, block.type)
            except ConfigError as exc:
                location = loaded.locate(("providers", name, service, "type"))
                raise ConfigError(f"{location}: {exc.message}", hint=exc.hint) from None
    return providers
