import base64
import logging
import urllib.parse

from failover.secrets import RedactingFilter, Secret, redact, register_secret


def test_registered_secrets_are_redacted_in_every_encoding() -> None:
    value = "canary+Secret/Value=42"
    register_secret(value)
    for form in (
        value,
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        base64.b64encode(value.encode()).decode(),
        base64.urlsafe_b64encode(value.encode()).decode(),
    ):
        assert form not in redact(f"before {form} after"), form


def test_signatures_are_redacted() -> None:
    url = "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2024&X-Amz-Signature=deadbeef0123&x=1"
    text = redact(url + " Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=abc123")
    assert "deadbeef0123" not in text
    assert "abc123" not in text
    assert "x=1" in text


def test_secret_never_shows_its_value() -> None:
    secret = Secret("another-canary-value")
    assert "another-canary-value" not in f"{secret} {secret!r} {secret:>30}"
    assert secret.reveal() == "another-canary-value"


def test_logging_filter_redacts_messages_and_arguments(caplog: object) -> None:
    register_secret("log-canary-123456")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value=%s", ("log-canary-123456",), None)
    RedactingFilter().filter(record)
    assert "log-canary-123456" not in record.getMessage()
