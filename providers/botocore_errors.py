"""What every botocore-based adapter family shares when converting errors: the transport errors
(connection, timeout, credentials) and classification of service error codes by table. Each family
(``s3``, ``aws``) keeps its own code table and its own ``errors`` module."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions as bx
import urllib3.exceptions as ux

from failover.errors import (
    AlreadyExists,
    AuthError,
    ConfigError,
    ConnectionLost,
    FailoverError,
    IntegrityError,
    InvalidRequest,
    NotFound,
    ProviderError,
    Throttled,
    Timeout,
    Transient,
)

__all__ = ["KINDS", "CodeTable", "retry_after", "translator"]

KINDS: tuple[type[BaseException], ...] = (bx.BotoCoreError, bx.ClientError, ux.HTTPError, ConnectionError)
"""Exceptions a boto3 call can raise that the family's ``converted`` turns into failover errors."""


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(parsed.timestamp() - time.time(), 0.0) if parsed else None


@dataclass(frozen=True)
class CodeTable:
    """A service family's error codes, by the failover error they become."""

    not_found: frozenset[str] = frozenset()
    not_found_suffix: str | None = None
    """Codes ending like this are NotFound too (EC2: ``InvalidInstanceID.NotFound``)."""
    auth: frozenset[str] = frozenset()
    throttled: frozenset[str] = frozenset()
    transient: frozenset[str] = frozenset()
    conflict: frozenset[str] = frozenset()
    integrity: frozenset[str] = frozenset()
    invalid: frozenset[str] = frozenset()
    hints: Mapping[str, str] = field(default_factory=dict)

    def classify(
        self, code: str, status: int, message: str, headers: Mapping[str, str], **common: Any
    ) -> FailoverError:
        text = f"{code}: {message}" if message and message != code else code
        common.update(status=status, hint=self.hints.get(code))
        suffix = self.not_found_suffix
        if code in self.not_found or status == 404 or (suffix is not None and code.endswith(suffix)):
            return NotFound(text, **common)
        if code in self.throttled or status in (429, 503):
            return Throttled(text, retry_after=retry_after(headers), **common)
        if code in self.auth or status in (401, 403):
            return AuthError(text, **common)
        if code in self.conflict:
            return AlreadyExists(text, **common)
        if code in self.integrity:
            return IntegrityError(text, **common)  # the body did not arrive as sent: worth another try
        if code in self.transient or status >= 500:
            return Transient(text, **common)
        if code in self.invalid or status in (400, 405, 411, 416, 501):
            return InvalidRequest(text, **common)
        return ProviderError(text, **common)


Classify = Callable[..., FailoverError]


def translator(classify: Classify) -> Callable[..., FailoverError]:
    """A ``translate(exc, operation=, target=)`` for botocore exceptions, service errors going to
    ``classify(code, status, message, headers, operation=, target=)``."""

    def translate(exc: BaseException, *, operation: str = "", target: str = "") -> FailoverError:
        common: dict[str, Any] = {"operation": operation, "target": target}
        if isinstance(exc, bx.ClientError):
            response: dict[str, Any] = exc.response  # type: ignore[assignment]
            error = response.get("Error", {})
            meta = response.get("ResponseMetadata", {})
            status = int(meta.get("HTTPStatusCode") or 0)
            code = str(error.get("Code") or status)
            headers = meta.get("HTTPHeaders", {}) or {}
            return classify(code, status, str(error.get("Message") or code), headers, **common)
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return AuthError(
                "no usable credentials",
                hint="reference them in the providers file (key_env/secret_env or profile)",
                **common,
            )
        if isinstance(exc, bx.ProfileNotFound):
            return ConfigError(f"AWS profile not found: {exc}")
        if isinstance(exc, bx.ReadTimeoutError | bx.ConnectTimeoutError | ux.ReadTimeoutError | ux.ConnectTimeoutError):
            return Timeout(str(exc), **common)
        if isinstance(exc, bx.IncompleteReadError):
            return IntegrityError(f"truncated body: {exc}", **common)
        if isinstance(
            exc,
            bx.EndpointConnectionError
            | bx.ConnectionClosedError
            | bx.ResponseStreamingError
            | bx.HTTPClientError
            | ux.ProtocolError
            | ux.HTTPError
            | ConnectionError,
        ):
            return ConnectionLost(str(exc), **common)
        if isinstance(exc, bx.ParamValidationError):
            return InvalidRequest(str(exc), **common)
        if isinstance(exc, bx.ChecksumError | bx.FlexibleChecksumError):
            return IntegrityError(str(exc), **common)
        if isinstance(exc, bx.BotoCoreError):
            return ProviderError(str(exc), **common)
        raise exc

    return translate
