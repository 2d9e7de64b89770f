"""botocore exceptions -> failover errors. The only place in the s3 adapter that knows botocore's
exception types; every call into boto3 goes through :func:`converted`."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
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
    converter,
)

__all__ = ["BucketOwnedByYou", "classify", "converted", "translate"]


class BucketOwnedByYou(AlreadyExists):
    """CreateBucket on a bucket this account already owns: success for an idempotent create."""


_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound", "404", "NoSuchTagSet"}
_AUTH = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidSecurity",
    "RequestTimeTooSkewed",
    "UnauthorizedAccess",
    "403",
}
_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "503",
    "429",
}
_TRANSIENT = {
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "500",
    "502",
    "504",
    "OperationAborted",
}
_CONFLICT = {"BucketAlreadyExists"}
_INVALID = {
    "InvalidBucketName",
    "KeyTooLongError",
    "InvalidArgument",
    "InvalidRange",
    "EntityTooLarge",
    "EntityTooSmall",
    "InvalidPart",
    "InvalidPartOrder",
    "MalformedXML",
    "InvalidRequest",
    "MetadataTooLarge",
    "InvalidTag",
    "BucketNotEmpty",
    "NotImplemented",
    "MethodNotAllowed",
    "IllegalLocationConstraintException",
    "InvalidLocationConstraint",
}

_HINTS = {
    "RequestTimeTooSkewed": "this machine's clock differs from the provider's; sync it (NTP) and retry",
    "SignatureDoesNotMatch": "the secret key is wrong, or this machine's clock is far off",
    "InvalidAccessKeyId": "the access key id is not known to this provider",
    "AccessDenied": "the credentials lack a permission this operation needs",
    "NotImplemented": "the store does not implement this API; declare it unsupported in the provider's options",
    "XAmzContentSHA256Mismatch": "the store rejects boto3's default checksums: set options.checksums: when_required",
    "BadDigest": "the body's checksum did not match; the store may not support boto3's default checksums",
}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(parsed.timestamp() - time.time(), 0.0) if parsed else None


def classify(code: str, status: int, message: str, headers: Mapping[str, str], **common: Any) -> FailoverError:
    """The failover error for an S3 error response (code from the XML body, HTTP status, headers).
    Used for botocore's ClientError and for the lean data path alike."""
    text = f"{code}: {message}" if message and message != code else code
    common.update(status=status, hint=_HINTS.get(code))
    if code == "BucketAlreadyOwnedByYou":
        return BucketOwnedByYou(text, **common)
    if code in _NOT_FOUND or status == 404:
        return NotFound(text, **common)
    if code in _THROTTLED or status in (429, 503):
        return Throttled(text, retry_after=_retry_after(headers), **common)
    if code in _AUTH or status in (401, 403):
        return AuthError(text, **common)
    if code in _CONFLICT:
        return AlreadyExists(text, **common)
    if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
        # The body did not arrive as sent: worth another try.
        return IntegrityError(text, **common)
    if code in _TRANSIENT or status >= 500:
        return Transient(text, **common)
    if code in _INVALID or status in (400, 405, 411, 416, 501):
        return InvalidRequest(text, **common)
    return ProviderError(text, **common)


def translate(exc: BaseException, *, operation: str = "", target: str = "") -> FailoverError:
    """The failover error for a botocore/urllib3 exception."""
    common: dict[str, Any] = {"operation": operation, "target": target}
    if isinstance(exc, bx.ClientError):
        response: dict[str, Any] = exc.response  # type: ignore[assignment]
        error = response.get("Error", {})
        meta = response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 0)
        code = str(error.get("Code") or status)
        return classify(code, status, str(error.get("Message") or code), meta.get("HTTPHeaders", {}) or {}, **common)
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


converted = converter((bx.BotoCoreError, bx.ClientError, ux.HTTPError, ConnectionError), translate)
"""Wrap every boto3 call: ``with converted("put", target): ...``."""
