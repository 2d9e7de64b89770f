"""libcloud (and requests) exceptions -> failover errors, for the libcloud adapters."""

from __future__ import annotations

import re
from typing import Any

import requests.exceptions as rx
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError, LibcloudError, ServiceUnavailableError
from libcloud.common.types import ProviderError as LibcloudProviderError
from libcloud.dns.types import (
    RecordAlreadyExistsError,
    RecordDoesNotExistError,
    ZoneAlreadyExistsError,
    ZoneDoesNotExistError,
)
from libcloud.storage.types import (
    ContainerAlreadyExistsError,
    ContainerDoesNotExistError,
    ContainerIsNotEmptyError,
    InvalidContainerNameError,
    ObjectDoesNotExistError,
    ObjectHashMismatchError,
)

from failover.errors import (
    AlreadyExists,
    AuthError,
    ConnectionLost,
    FailoverError,
    IntegrityError,
    InvalidRequest,
    NotFound,
    Throttled,
    Timeout,
    converter,
)

from ..http_errors import CodeTable, untrusted_certificate

__all__ = ["converted", "translate"]

# S3-family drivers carry the S3 error code in the message body.
TABLE = CodeTable(auth=frozenset({"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}))

_STATUS = re.compile(r"status[ _]code[=:]?\s*(\d{3})", re.IGNORECASE)
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def _readable(text: str) -> str:
    """S3-family drivers put the raw XML error body in the message: keep its code and message."""
    code, message = _XML_CODE.search(text), _XML_MESSAGE.search(text)
    if code:
        return f"{code.group(1)}: {message.group(1)}" if message else code.group(1)
    return text


def _status(exc: BaseException) -> int | None:
    for attribute in ("http_code", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    match = _STATUS.search(str(exc))
    return int(match.group(1)) if match else None


def translate(exc: BaseException, *, operation: str = "", target: str = "") -> FailoverError:
    common: dict[str, Any] = {"operation": operation, "target": target}
    text = _readable(str(getattr(exc, "value", None) or exc))
    refused = untrusted_certificate(exc, **common)
    if refused is not None:
        return refused
    if isinstance(exc, ContainerDoesNotExistError | ObjectDoesNotExistError):
        return NotFound("no such bucket or key", **common)
    if isinstance(exc, ZoneDoesNotExistError | RecordDoesNotExistError):
        return NotFound("no such zone or record", **common)
    if isinstance(exc, ContainerAlreadyExistsError | ZoneAlreadyExistsError | RecordAlreadyExistsError):
        return AlreadyExists(text, **common)
    if isinstance(exc, ContainerIsNotEmptyError | InvalidContainerNameError):
        return InvalidRequest(text, **common)
    if isinstance(exc, ObjectHashMismatchError):
        return IntegrityError(text, **common)
    if isinstance(exc, InvalidCredsError):
        return AuthError(text or "invalid credentials", **common)
    if isinstance(exc, RateLimitReachedError):
        retry_after = getattr(exc, "retry_after", None)
        return Throttled(text, retry_after=float(retry_after) if retry_after else None, **common)
    if isinstance(exc, ServiceUnavailableError):
        return Throttled(text, **common)
    if isinstance(exc, rx.Timeout):
        return Timeout(text, **common)
    if isinstance(exc, rx.ConnectionError | rx.ChunkedEncodingError | ConnectionError):
        return ConnectionLost(text, **common)
    if isinstance(exc, LibcloudError | LibcloudProviderError | BaseHTTPError | rx.RequestException):
        code = _XML_CODE.search(str(getattr(exc, "value", None) or exc))
        return TABLE.classify(code.group(1) if code else "", _status(exc) or 0, text, {}, **common)
    raise exc


converted = converter((LibcloudError, BaseHTTPError, rx.RequestException, ConnectionError), translate)
"""Wrap every libcloud call: ``with converted("put", target): ...``."""
