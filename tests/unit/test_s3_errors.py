"""The s3 adapter's one error mapper (S3 error documents and statuses) and its transport-failure
mapping (pure translation logic, no server involved)."""

import http.client

import pytest
from failover.providers.s3.codec import error_code
from failover.providers.s3.errors import BucketOwnedByYou, classify
from failover.providers.s3.wire import network_error

from failover.errors import (
    AlreadyExists,
    AuthError,
    ConnectionLost,
    IntegrityError,
    InvalidRequest,
    NotFound,
    ProviderError,
    Throttled,
    Timeout,
    Transient,
)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, NotFound),
        ("404", 404, NotFound),
        ("AccessDenied", 403, AuthError),
        ("InvalidAccessKeyId", 403, AuthError),
        ("RequestTimeTooSkewed", 403, AuthError),
        ("SlowDown", 503, Throttled),
        ("TooManyRequests", 429, Throttled),
        ("InternalError", 500, Transient),
        ("BucketAlreadyExists", 409, AlreadyExists),
        ("BucketAlreadyOwnedByYou", 409, BucketOwnedByYou),
        ("BadDigest", 400, IntegrityError),
        ("InvalidRange", 416, InvalidRequest),
        ("KeyTooLongError", 400, InvalidRequest),
        ("Weird", 418, ProviderError),
    ],
)
def test_error_codes(code: str, status: int, expected: type[Exception]) -> None:
    assert type(classify(code, status, f"{code} happened", {})) is expected


def test_retry_after_header_is_carried() -> None:
    error = classify("SlowDown", 503, "slow down", {"retry-after": "7"})
    assert isinstance(error, Throttled)
    assert error.retry_after == 7.0


def test_clock_skew_has_a_hint() -> None:
    error = classify("RequestTimeTooSkewed", 403, "skewed", {})
    assert error.hint is not None
    assert "clock" in error.hint


def test_access_denied_names_the_permission() -> None:
    error = classify("AccessDenied", 403, "denied", {}, operation="open", target="media/a.png")
    assert error.hint == "the credentials lack s3:GetObject on media/a.png"


def test_error_documents_are_read() -> None:
    body = b'<?xml version="1.0"?><Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>'
    assert error_code(body) == ("NoSuchBucket", "gone")
    assert error_code(b"not xml") == (None, None)
    assert error_code(b"<ListBucketResult/>") == (None, None)


def test_transport_failures() -> None:
    assert isinstance(network_error(TimeoutError("timed out"), "open", "b/k"), Timeout)
    assert isinstance(network_error(TimeoutError("timed out"), "open", "b/k"), Timeout)
    refused = network_error(ConnectionRefusedError(111, "Connection refused"), "put", "b/k")
    assert isinstance(refused, ConnectionLost) and refused.retryable and "cannot connect" in str(refused)
    assert isinstance(network_error(ConnectionResetError(104, "reset"), "read", "b/k"), ConnectionLost)
    truncated = network_error(http.client.IncompleteRead(b"abc", 7), "read", "b/k")
    assert isinstance(truncated, IntegrityError) and truncated.retryable
