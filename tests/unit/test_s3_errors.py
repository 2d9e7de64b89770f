"""The s3 adapter's mapping of botocore errors (pure translation logic, no server involved)."""

import botocore.exceptions as bx
import pytest
from failover.providers.s3.errors import translate

from failover.errors import AlreadyExists, AuthError, InvalidRequest, NotFound, ProviderError, Throttled, Transient


def client_error(code: str, status: int, headers: dict[str, str] | None = None) -> bx.ClientError:
    response = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return bx.ClientError(response, "PutObject")  # type: ignore[arg-type]


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
        ("InvalidRange", 416, InvalidRequest),
        ("KeyTooLongError", 400, InvalidRequest),
        ("Weird", 418, ProviderError),
    ],
)
def test_client_errors(code: str, status: int, expected: type[Exception]) -> None:
    error = translate(client_error(code, status))
    assert type(error) is expected


def test_retry_after_header_is_carried() -> None:
    error = translate(client_error("SlowDown", 503, {"retry-after": "7"}))
    assert isinstance(error, Throttled)
    assert error.retry_after == 7.0


def test_clock_skew_has_a_hint() -> None:
    error = translate(client_error("RequestTimeTooSkewed", 403))
    assert error.hint is not None
    assert "clock" in error.hint


def test_connection_errors_are_transient() -> None:
    error = translate(bx.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert isinstance(error, Transient)
    assert isinstance(translate(bx.ReadTimeoutError(endpoint_url="http://x")), Transient)
