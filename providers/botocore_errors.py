"""What every botocore-based adapter family shares when converting errors: the transport errors
(connection, timeout, credentials); service error codes are classified by each family's
:class:`~failover.providers.http_errors.CodeTable`. Each family (``s3``, ``aws``) keeps its own
table and its own ``errors`` module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions as bx
import urllib3.exceptions as ux

from failover.errors import (
    AuthError,
    ConfigError,
    ConnectionLost,
    FailoverError,
    IntegrityError,
    InvalidRequest,
    ProviderError,
    Timeout,
)

from .http_errors import CodeTable, retry_after, untrusted_certificate

__all__ = ["KINDS", "CodeTable", "retry_after", "translator"]

KINDS: tuple[type[BaseException], ...] = (bx.BotoCoreError, bx.ClientError, ux.HTTPError, ConnectionError)
"""Exceptions a boto3 call can raise that the family's ``converted`` turns into failover errors."""


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
        refused = untrusted_certificate(exc, **common)
        if refused is not None:
            return refused
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
